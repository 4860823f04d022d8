//! Federated login against a misbehaving upstream: the mock provider of tests/common/upstream.rs
//! (a correct OpenID provider until a knob breaks one thing) drives the real vhod server, on both
//! backends. Each failure is checked three ways: the page the browser gets (its status, and the
//! failure named in Russian), the audit reason of the refusal (each its own), and that nothing
//! half-made stays behind (no upstream identity, no account).
//!
//! Every upstream of a deployment is one `[[upstream]]` pointing at a mock; several upstreams
//! share one mock and one server start, and a scenario changes the mock with `set` and puts it
//! back with [`correct`]. A connector caches the upstream's metadata and keys, so scenarios
//! that depend on discovery (RFC 9207 support) or on the key cache use upstreams of their own.

mod common;

use std::time::{Duration, Instant};

use common::upstream::{IssParam, MockUpstream, UPSTREAM_CLIENT_ID, UPSTREAM_SECRET};
use common::*;
use openidconnect::core::CoreIdTokenClaims;
use openidconnect::{AuthorizationCode, PkceCodeVerifier, TokenResponse};
use serde_json::{Map, Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The claims every upstream here maps (besides what a test adds): the names, and an email
/// read with its verified flag.
const NAMES: &str = r#"family_name = "family_name"
given_name = "given_name"
middle_name = "middle_name"
email = "email"
email_verified = "email_verified""#;

/// client_secret_basic with the mock's secret (vhod's default client authentication).
fn basic() -> String {
    format!("client_secret = \"{UPSTREAM_SECRET}\"")
}

/// An OpenID `[[upstream]]` called `name` for the mock at `issuer`: `top` goes in the
/// upstream's own table, `claims` in its claim mapping; the mock's acr values map to vhod's.
fn oidc(name: &str, issuer: &str, top: &str, claims: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "{name}"
kind = "oidc"
issuer = "{issuer}"
client_id = "{UPSTREAM_CLIENT_ID}"
scopes = ["openid", "profile", "email"]
display_name = {{ ru = "Тестовый вход {name}", en = "Test sign-in {name}" }}
{top}
[upstream.claims]
{claims}
[upstream.acr]
default = "substantial"
map = {{ "urn:mock:high" = "high", "urn:mock:low" = "low" }}
"#
    )
}

/// What a test means by "the page names the failure": the `«{name}»: …` of
/// `upstream_err_*` in src/web/messages/ru.toml.
fn says(name: &str, message: &str) -> String {
    format!("«Тестовый вход {name}»: {message}")
}

const DENIED: &str = "вход отменён.";
const FAILED: &str = "вход не удался, ответ сервиса не прошёл проверку.";
const UNAVAILABLE: &str = "сервис сейчас не отвечает.";
const MISSING: &str = "не переданы сведения, без которых вход невозможен";
const TOO_WEAK: &str = "для этого сервиса такой вход недостаточно надёжен.";
const STALE: &str = "сервис не подтвердил, что вход выполнен заново.";
const AMBIGUOUS: &str = "по этим сведениям нашлось несколько учётных записей";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Мария Петрова as the mock's ID token names her (no email).
fn maria() -> Map<String, Value> {
    obj(json!({
        "family_name": "Петрова",
        "given_name": "Мария",
        "middle_name": "Ивановна",
    }))
}

/// The mock back to a correct provider whose ID token carries [`maria`]'s names.
fn correct(m: &MockUpstream) {
    m.reset();
    m.set(|b| b.id_token_claims = maria());
}

/// One sign-in of the client `rp` through an upstream, in a browser of its own.
struct Trip {
    pending: Pending,
    /// The login transaction.
    tx: String,
    browser: Browser,
    /// vhod's answer to the upstream's redirect back: status, Location, page.
    status: u16,
    location: String,
    html: String,
    /// How long vhod took to answer the callback.
    took: Duration,
}

/// A fresh browser from the client's authorization request (with `extra` parameters) to the
/// login page, away to upstream `name` (the mock answers at once) and back to vhod's callback.
async fn trip(down: &Server, client: &Rp, name: &str, extra: &[(&str, &str)]) -> Trip {
    let browser = Browser::new();
    let pending = authorization(client, &[], extra);
    let page = browser
        .authorize(down, &pending.url)
        .await
        .expect_err("a login page");
    let start = browser
        .get(&down.url(&format!("/login/upstream/{name}?tx={}", page.tx)))
        .await;
    assert_eq!(
        start.status().as_u16(),
        303,
        "the start sends the browser away"
    );
    let to_upstream = location(&start);
    let at_mock = browser.get(&to_upstream).await;
    assert_eq!(
        at_mock.status().as_u16(),
        302,
        "the mock took {to_upstream}"
    );
    let callback = location(&at_mock);
    assert!(
        callback.starts_with(&down.url(&format!("/login/upstream/{name}/callback?"))),
        "{callback}"
    );
    let started = Instant::now();
    let res = browser.get(&callback).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    let location = location(&res);
    let html = res.text().await.expect("vhod's answer");
    Trip {
        pending,
        tx: page.tx,
        browser,
        status,
        location,
        html,
        took,
    }
}

/// The code of a trip that signed in, redeemed by `rp`: the ID token it gets.
async fn redeem(down: &Server, client: &Rp, t: &Trip) -> CoreIdTokenClaims {
    assert_eq!(t.status, 303, "signed in: {}", t.html);
    assert!(t.location.starts_with(RP_REDIRECT), "{}", t.location);
    let code = code_from(down, &t.location, &t.pending);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(t.pending.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &t.pending.nonce)
        .expect("vhod's ID token verifies")
        .clone()
}

/// A sign-in through upstream `name` that succeeds: vhod's ID token for the client.
async fn signs_in(down: &Server, client: &Rp, name: &str) -> CoreIdTokenClaims {
    let t = trip(down, client, name, &[]).await;
    redeem(down, client, &t).await
}

fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    (claims.auth_method_refs().into_iter().flatten())
        .map(|a| a.as_str().to_string())
        .collect()
}

fn acr(claims: &CoreIdTokenClaims) -> Option<String> {
    claims.auth_context_ref().map(|a| a.as_str().to_string())
}

/// (accounts, upstream identities) as stored.
async fn rows(d: &Deployment) -> (i64, i64) {
    let db = d.store().await;
    (
        db.accounts().count().await.expect("accounts"),
        db.upstream_identities().count().await.expect("identities"),
    )
}

fn is_refusal(e: &StoredEvent, reason: &str) -> bool {
    e.kind == "login"
        && e.outcome == "failure"
        && e.method.as_deref() == Some("upstream")
        && e.reason.as_deref() == Some(reason)
}

/// A sign-in through upstream `name` refused: the page (`status`, naming the failure with
/// `message`), one more audited refusal of `reason` (returned, details parsed), and no account
/// or identity written.
async fn refused(
    d: &Deployment,
    down: &Server,
    client: &Rp,
    name: &str,
    extra: &[(&str, &str)],
    (reason, status, message): (&str, u16, &str),
) -> (Trip, Value) {
    let before = rows(d).await;
    let seen = d.count_events(|e| is_refusal(e, reason)).await;
    let t = trip(down, client, name, extra).await;
    assert_eq!(t.status, status, "{reason}: {}", t.html);
    let text = says(name, message);
    assert!(
        t.html.contains(&text),
        "{reason}: no {text:?} in {}",
        t.html
    );
    let n = d.wait_events(seen + 1, |e| is_refusal(e, reason)).await;
    assert_eq!(n, seen + 1, "one refusal audited as {reason}");
    let event = d
        .events()
        .await
        .into_iter()
        .rev()
        .find(|e| is_refusal(e, reason))
        .expect("the refusal");
    let details: Value =
        serde_json::from_str(event.details.as_deref().unwrap_or("null")).expect("JSON details");
    assert_eq!(details["upstream"], name, "{reason}: {details}");
    assert_eq!(event.client_id.as_deref(), Some("rp"));
    assert_eq!(rows(d).await, before, "{reason}: nothing half-made stays");
    (t, details)
}

/// How many times an identity was linked to the account `id` (audited `upstream_linked`).
async fn linked(d: &Deployment, id: &str) -> i64 {
    d.count_events(|e| e.kind == "upstream_linked" && e.subject.as_deref() == Some(id))
        .await
}

async fn account(d: &Deployment, id: &str) -> vhod::store::accounts::Account {
    d.store()
        .await
        .accounts()
        .find_by_id(id)
        .await
        .expect("the accounts")
        .unwrap_or_else(|| panic!("no account {id}"))
}

// --- 1, 10, 11: sign-in, client authentication, a plain OAuth 2.0 upstream -----------------

/// The happy path through the mock: a first login makes an applicant account with the mock's
/// names and its email, verified only as the same document says; acr and amr as mapped; the
/// next logins find the account. Client authentication by secret in the form and by a client
/// assertion of our key; and an OAuth 2.0 upstream whose identity comes from userinfo.
async fn signs_in_through_the_mock(d: Deployment) {
    let mock = MockUpstream::start().await;
    let iss = mock.issuer();
    // private_key_jwt with an ES256 key of ours in the keys directory.
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("a P-256 key");
    let ours = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
    let pem =
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, pkcs8.as_ref())
            .expect("PEM");
    std::fs::write(d.keys_dir().join("upstream.pem"), pem).expect("writing upstream.pem");
    let pn = format!("{NAMES}\npersonal_number = \"personal_number\"");
    let post = format!("{}\nclient_auth = \"client_secret_post\"", basic());
    let jwt = "client_auth = \"private_key_jwt\"\nprivate_key = \"upstream.pem\"";
    d.append_config(&oidc("mock", &iss, &basic(), &pn));
    d.append_config(&oidc("post", &iss, &post, NAMES));
    d.append_config(&oidc("jwt", &iss, jwt, NAMES));
    d.append_config(&format!(
        r#"
[[upstream]]
name = "plain"
kind = "oauth2"
authorization_endpoint = "{iss}/authorize"
token_endpoint = "{iss}/token"
userinfo_endpoint = "{iss}/userinfo"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret = "{UPSTREAM_SECRET}"
scopes = ["profile"]
display_name = "Тестовый вход plain"
[upstream.claims]
family_name = "family_name"
given_name = "given_name"
[upstream.acr]
default = "substantial"
"#
    ));
    let down = d.start().await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = d.account(USER).await.expect("the seeded Ivan");
    let (accounts, _) = rows(&d).await;

    // The login page offers every upstream.
    let page = Browser::new()
        .authorize(&down, &authorization(&client, &[], &[]).url)
        .await
        .expect_err("a login page");
    for name in ["mock", "post", "jwt", "plain"] {
        assert!(
            page.html.contains(&format!("id=\"upstream-{name}\"")),
            "{name}: {}",
            page.html
        );
    }

    // First login: everything in the ID token, the email verified in it; acr as mapped.
    correct(&mock);
    mock.set(|b| {
        b.subject = "maria".into();
        let c = &mut b.id_token_claims;
        c.insert("personal_number".into(), json!("3101000A001PB1"));
        c.insert("email".into(), json!("Maria.Petrova@example.by"));
        c.insert("email_verified".into(), json!(true));
        c.insert("acr".into(), json!("urn:mock:high"));
        c.insert("amr".into(), json!(["pwd", "otp"]));
    });
    let first = signs_in(&down, &client, "mock").await;
    assert_eq!(
        first.issuer().as_str(),
        down.issuer,
        "the client sees only vhod"
    );
    assert_eq!(acr(&first).as_deref(), Some("high"));
    assert_eq!(
        amr(&first),
        ["fed"],
        "unmapped amr values are not passed on"
    );
    let maria = first.subject().as_str().to_string();
    assert_ne!(maria, ivan.id);
    let acc = account(&d, &maria).await;
    assert!(
        acc.username.starts_with("~petrova.mariia."),
        "{}",
        acc.username
    );
    assert_eq!(acc.family_name.as_deref(), Some("Петрова"));
    assert_eq!(acc.given_name.as_deref(), Some("Мария"));
    assert_eq!(acc.middle_name.as_deref(), Some("Ивановна"));
    assert_eq!(acc.email.as_deref(), Some("maria.petrova@example.by"));
    assert!(acc.email_verified, "the ID token vouched for its own email");
    assert_eq!(acc.roles, ["applicant"]);
    assert!(acc.password_hash.is_none());
    assert_eq!(mock.userinfo_requests().len(), 0, "the ID token had it all");
    let sent = mock.token_requests().pop().expect("a token request");
    assert_eq!(
        sent.basic_credentials(),
        Some((UPSTREAM_CLIENT_ID.into(), UPSTREAM_SECRET.into())),
        "client_secret_basic by default"
    );
    assert_eq!(sent.form.get("client_secret"), None);
    let asked = mock
        .authorization_requests()
        .pop()
        .expect("an authorization request");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(
        asked["redirect_uri"],
        down.url("/login/upstream/mock/callback")
    );
    assert_eq!(asked["scope"], "openid profile email");
    assert!(asked.contains_key("nonce") && asked.contains_key("state"));
    assert!(!asked.contains_key("acr_values"), "any login will do here");
    let ids = d.store().await.upstream_identities();
    let mine = ids.of_account(&maria).await.expect("links");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].upstream.as_str(),
            mine[0].issuer.as_str(),
            mine[0].subject.as_str()
        ),
        ("mock", iss.as_str(), "maria")
    );
    // The number of an upstream that does not vouch for numbers is not kept: it links nothing.
    let holders = ids
        .accounts_with_personal_number("3101000A001PB1")
        .await
        .expect("holders");
    assert!(holders.is_empty(), "{holders:?}");
    assert_eq!(rows(&d).await.0, accounts + 1);

    // The next logins find her account; acr as the mapping gives, else the default.
    mock.set(|b| {
        b.id_token_claims
            .insert("acr".into(), json!("urn:mock:low"));
    });
    let second = signs_in(&down, &client, "mock").await;
    assert_eq!(second.subject().as_str(), maria);
    assert_eq!(acr(&second).as_deref(), Some("low"));
    mock.set(|b| {
        b.id_token_claims.insert("acr".into(), Value::Null);
        b.id_token_claims.insert("amr".into(), Value::Null);
    });
    let third = signs_in(&down, &client, "mock").await;
    assert_eq!(third.subject().as_str(), maria);
    assert_eq!(acr(&third).as_deref(), Some("substantial"));
    assert_eq!(amr(&third), ["fed"]);
    assert_eq!(
        rows(&d).await.0,
        accounts + 1,
        "one account for three logins"
    );

    // client_secret_post: the secret in the form, no Authorization header. The email is not
    // verified in its document: the account does not get it.
    correct(&mock);
    mock.set(|b| {
        b.subject = "post-person".into();
        b.id_token_claims
            .insert("email".into(), json!("post@example.by"));
        b.id_token_claims
            .insert("email_verified".into(), json!(false));
    });
    let by_post = signs_in(&down, &client, "post").await;
    let sent = mock.token_requests().pop().expect("a token request");
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.form["client_secret"], UPSTREAM_SECRET);
    assert_eq!(sent.form["client_id"], UPSTREAM_CLIENT_ID);
    let acc = account(&d, by_post.subject().as_str()).await;
    assert_eq!(acc.email, None, "an unverified email is not copied");
    assert!(!acc.email_verified);

    // private_key_jwt: a client assertion signed with our key, no secret anywhere.
    correct(&mock);
    mock.set(|b| b.subject = "jwt-person".into());
    signs_in(&down, &client, "jwt").await;
    let sent = mock.token_requests().pop().expect("a token request");
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.form.get("client_secret"), None);
    assert_eq!(sent.form["client_assertion_type"], JWT_BEARER);
    let claims = sent.assertion_claims().expect("a client assertion");
    assert_eq!(claims["iss"], UPSTREAM_CLIENT_ID);
    assert_eq!(claims["sub"], UPSTREAM_CLIENT_ID);
    assert_eq!(claims["aud"], mock.url("/token"));
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
    assert_eq!(sent.assertion_header().expect("its header")["alg"], "ES256");
    let assertion = &sent.form["client_assertion"];
    let (input, signature) = assertion.rsplit_once('.').expect("a JWS");
    use base64::Engine;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url");
    use ring::signature::KeyPair;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        ours.public_key().as_ref(),
    )
    .verify(input.as_bytes(), &signature)
    .expect("the assertion is signed with our key");

    // OAuth 2.0: no ID token, the identity from userinfo (a plain OAuth 2.0 server sends no
    // RFC 9207 iss).
    correct(&mock);
    mock.set(|b| {
        b.subject = "oauth2-person".into();
        b.iss_param = IssParam::Absent;
        b.id_token_claims = Map::new();
        b.userinfo_claims = obj(json!({"family_name": "Сидоров", "given_name": "Пётр"}));
    });
    let userinfo_calls = mock.userinfo_requests().len();
    let plain = signs_in(&down, &client, "plain").await;
    assert_eq!(acr(&plain).as_deref(), Some("substantial"));
    assert_eq!(amr(&plain), ["fed"]);
    let asked = mock
        .authorization_requests()
        .pop()
        .expect("an authorization request");
    assert_eq!(asked["scope"], "profile");
    assert!(!asked.contains_key("nonce"));
    assert_eq!(asked["code_challenge_method"], "S256");
    let called = mock.userinfo_requests();
    assert_eq!(called.len(), userinfo_calls + 1);
    assert!(
        called
            .last()
            .and_then(|a| a.as_deref())
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{called:?}"
    );
    let acc = account(&d, plain.subject().as_str()).await;
    assert_eq!(acc.family_name.as_deref(), Some("Сидоров"));
    assert_eq!(acc.given_name.as_deref(), Some("Пётр"));
    let link = ids.of_account(&acc.id).await.expect("links");
    assert_eq!(
        (
            link[0].upstream.as_str(),
            link[0].issuer.as_str(),
            link[0].subject.as_str()
        ),
        ("plain", mock.url("/authorize").as_str(), "oauth2-person"),
        "an OAuth 2.0 upstream without an issuer is known by its authorization endpoint"
    );

    assert_eq!(rows(&d).await, (accounts + 4, 4));
    let logins = d
        .wait_events(6, |e| {
            e.kind == "login" && e.outcome == "success" && e.method.as_deref() == Some("upstream")
        })
        .await;
    assert_eq!(logins, 6);
    let created = d
        .wait_events(4, |e| {
            e.kind == "account_created" && e.method.as_deref() == Some("upstream")
        })
        .await;
    assert_eq!(created, 4);
}

/// A deployment with a keys directory of its own (for the client assertion key).
mod signs_in_through_the_mock {
    use crate::common::{Backend, Deployment};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(d) = Deployment::with_trust(Backend::Sqlite, &[], &[]).await {
            super::signs_in_through_the_mock(d).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        if let Some(d) = Deployment::with_trust(Backend::Shared, &[], &[]).await {
            super::signs_in_through_the_mock(d).await;
        }
    }
}

// --- 2, 3: the ID token ---------------------------------------------------------------------

/// One way to break the mock.
type Knob = fn(&mut common::upstream::Behaviour);

/// An ID token that does not hold is refused, each for its own reason: a bad signature, a key
/// that is not the upstream's, a kid unknown even after the keys are fetched again; another
/// issuer, audience, an expired token, another nonce, no ID token at all. A rotated key is
/// learnt by fetching the keys again.
async fn id_tokens_that_do_not_hold(d: Deployment) {
    let mock = MockUpstream::start().await;
    let iss = mock.issuer();
    // Two connectors of one mock, each with its own key cache.
    d.append_config(&oidc("keys", &iss, &basic(), NAMES));
    d.append_config(&oidc("rotating", &iss, &basic(), NAMES));
    let down = d.start().await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    correct(&mock);
    let first = signs_in(&down, &client, "keys").await;
    mock.set(|b| b.subject = "rotating-person".into());
    let other = signs_in(&down, &client, "rotating").await;
    // The keys each connector has were fetched with its metadata.
    assert_eq!(mock.jwks_fetches(), 2, "one with each discovery");
    correct(&mock);

    let failures: [(&str, Knob); 7] = [
        ("bad_signature", |b| b.bad_signature = true),
        ("bad_signature", |b| b.sign_with_unpublished_key = true),
        ("wrong_issuer", |b| {
            b.id_token_iss = Some("https://elsewhere.example".into())
        }),
        ("wrong_audience", |b| {
            b.id_token_aud = Some(json!("another-client"))
        }),
        ("id_token_expired", |b| b.exp_offset = -120),
        ("nonce_mismatch", |b| {
            b.nonce_override = Some("another".into())
        }),
        ("no_id_token", |b| b.omit_id_token = true),
    ];
    for (reason, knob) in failures {
        // Someone not signed in through it before: nothing of theirs may be written.
        mock.set(|b| b.subject = "stranger".into());
        mock.set(knob);
        let (t, _) = refused(&d, &down, &client, "keys", &[], (reason, 502, FAILED)).await;
        assert!(
            links(&t.html)
                .iter()
                .any(|l| l.starts_with("/login/upstream/keys?tx=")),
            "{reason}: a retry link"
        );
        correct(&mock);
    }
    assert_eq!(
        mock.jwks_fetches(),
        2,
        "a known kid with a bad signature fetches nothing"
    );

    // A kid the keys do not have: fetched once more, then refused; another such token a moment
    // later fetches nothing (a stream of bad tokens is not a stream of fetches).
    for _ in 0..2 {
        mock.set(|b| {
            b.subject = "stranger".into();
            b.kid_override = Some("nobody".into());
        });
        refused(
            &d,
            &down,
            &client,
            "keys",
            &[],
            ("unknown_key", 502, FAILED),
        )
        .await;
        assert_eq!(mock.jwks_fetches(), 3, "exactly one refetch");
    }
    correct(&mock);

    // The upstream rotates its key: the next login fetches the new one and succeeds.
    mock.rotate_key();
    mock.set(|b| b.subject = "rotating-person".into());
    let again = signs_in(&down, &client, "rotating").await;
    assert_eq!(again.subject(), other.subject(), "the same account");
    assert_eq!(mock.jwks_fetches(), 4, "the rotated key fetched once");
    assert_ne!(first.subject(), other.subject());
}
both_backends!(
    id_tokens_that_do_not_hold_mock,
    super::id_tokens_that_do_not_hold
);

// --- 4, 5, 6, 7, 9: the redirect back, the token endpoint, userinfo, the claims, the acr ----

/// The redirect back and what follows it: RFC 9207 iss wrong or missing where promised,
/// the person declining, the upstream's error, the token endpoint refusing or too slow,
/// userinfo about someone else, claims a login needs missing, an assurance too low.
async fn the_way_back_fails_closed(d: Deployment) {
    let mock = MockUpstream::start().await;
    // An upstream whose discovery does not promise RFC 9207 iss (a mock of its own: the
    // metadata is cached from its first fetch).
    let quiet = MockUpstream::start().await;
    quiet.set(|b| {
        b.advertise_iss_param = false;
        b.iss_param = IssParam::Absent;
        b.id_token_claims = maria();
    });
    let iss = mock.issuer();
    let vouching =
        format!("{NAMES}\npersonal_number = \"personal_number\"\npersonal_number_verified = true");
    d.append_config(&oidc("mock", &iss, &basic(), NAMES));
    d.append_config(&oidc("quiet", &quiet.issuer(), &basic(), NAMES));
    d.append_config(&oidc(
        "slow",
        &iss,
        &format!("{}\ntimeout_ms = 500", basic()),
        NAMES,
    ));
    d.append_config(&oidc("pn", &iss, &basic(), &vouching));
    let down = d.start().await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let fail = |reason| (reason, 502, FAILED);

    // RFC 9207: another issuer's iss; none where discovery promised it.
    correct(&mock);
    mock.set(|b| b.iss_param = IssParam::Wrong("https://elsewhere.example".into()));
    refused(&d, &down, &client, "mock", &[], fail("issuer_mismatch")).await;
    mock.set(|b| b.iss_param = IssParam::Absent);
    refused(&d, &down, &client, "mock", &[], fail("issuer_mismatch")).await;
    assert_eq!(mock.token_requests().len(), 0, "the code is not redeemed");
    // None from an upstream that never promised it.
    let quietly = signs_in(&down, &client, "quiet").await;
    assert_eq!(acr(&quietly).as_deref(), Some("substantial"));

    // The person declines at the upstream; the upstream fails.
    correct(&mock);
    mock.set(|b| b.authorize_error = Some("access_denied".into()));
    refused(
        &d,
        &down,
        &client,
        "mock",
        &[],
        ("upstream_denied", 403, DENIED),
    )
    .await;
    mock.set(|b| b.authorize_error = Some("server_error".into()));
    let (_, details) = refused(&d, &down, &client, "mock", &[], fail("upstream_error")).await;
    assert_eq!(details["detail"], "server_error");

    // The token endpoint refuses the code; or answers later than the upstream's timeout.
    correct(&mock);
    mock.set(|b| b.token_status = Some(400));
    refused(&d, &down, &client, "mock", &[], fail("token_refused")).await;
    correct(&mock);
    mock.set(|b| b.token_delay_ms = 3000);
    let (t, _) = refused(
        &d,
        &down,
        &client,
        "slow",
        &[],
        ("upstream_unavailable", 502, UNAVAILABLE),
    )
    .await;
    assert!(
        t.took < Duration::from_secs(3),
        "bounded by the timeout: {:?}",
        t.took
    );
    assert!(links(&t.html).iter().any(|l| l.starts_with("/login?tx=")));

    // A mapped claim the ID token lacks (the email) is asked of userinfo.
    correct(&mock);
    mock.set(|b| {
        b.subject = "userinfo-person".into();
        b.userinfo_claims = obj(json!({"email": "ui@example.by", "email_verified": true}));
    });
    let calls = mock.userinfo_requests().len();
    let by_userinfo = signs_in(&down, &client, "mock").await;
    assert_eq!(mock.userinfo_requests().len(), calls + 1);
    let acc = account(&d, by_userinfo.subject().as_str()).await;
    assert_eq!(acc.email.as_deref(), Some("ui@example.by"));
    assert!(acc.email_verified, "userinfo vouched for its own email");
    // Userinfo about another person.
    mock.set(|b| {
        b.subject = "someone".into();
        b.userinfo_sub = Some("someone-else".into());
    });
    refused(
        &d,
        &down,
        &client,
        "mock",
        &[],
        fail("userinfo_sub_mismatch"),
    )
    .await;
    // The claims a login needs are nowhere (a vouching upstream needs the number too).
    correct(&mock);
    mock.set(|b| b.id_token_claims = Map::new());
    let (t, details) = refused(
        &d,
        &down,
        &client,
        "pn",
        &[],
        ("missing_claims", 403, MISSING),
    )
    .await;
    assert_eq!(
        details["detail"],
        json!(["personal_number", "family_name", "given_name"])
    );
    assert!(
        t.html
            .contains("(personal_number, family_name, given_name)"),
        "{}",
        t.html
    );

    // The client needs acr high: vhod asks the upstream for its own value of it, and refuses
    // the login the upstream answers with a lower one; the client hears access_denied.
    correct(&mock);
    mock.set(|b| {
        b.subject = "weak-person".into();
        b.id_token_claims
            .insert("acr".into(), json!("urn:mock:low"));
    });
    let (t, details) = refused(
        &d,
        &down,
        &client,
        "mock",
        &[("acr_values", "high")],
        ("acr_too_low", 403, TOO_WEAK),
    )
    .await;
    assert_eq!(details["detail"], json!({"have": "low", "need": "high"}));
    let asked = mock
        .authorization_requests()
        .pop()
        .expect("an authorization request");
    assert_eq!(asked["acr_values"], "urn:mock:high");
    let ways = links(&t.html);
    let cancel = ways
        .iter()
        .find(|l| l.starts_with(&format!("/login/cancel?tx={}", t.tx)))
        .unwrap_or_else(|| panic!("back to the service: {ways:?}"));
    let res = t.browser.get(&down.url(cancel)).await;
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(back.starts_with(RP_REDIRECT), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "code"), None, "the client never gets a code");
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(t.pending.state.as_str())
    );

    // A client that asks for a fresh sign-in (prompt=login): the upstream is asked for one, and
    // its auth_time must show it.
    correct(&mock);
    mock.set(|b| b.subject = "fresh-person".into());
    let t = trip(&down, &client, "mock", &[("prompt", "login")]).await;
    assert_eq!(t.status, 303, "a fresh login signs in: {}", t.html);
    let asked = mock.authorization_requests().pop().expect("a request");
    assert_eq!(asked.get("prompt").map(String::as_str), Some("login"));
    assert_eq!(asked.get("max_age").map(String::as_str), Some("0"));
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 - 3600)
        .expect("time");
    mock.set(|b| {
        b.subject = "stale-person".into();
        b.id_token_claims
            .insert("auth_time".into(), json!(an_hour_ago));
    });
    let fresh = [("prompt", "login")];
    refused(
        &d,
        &down,
        &client,
        "mock",
        &fresh,
        ("stale_login", 502, STALE),
    )
    .await;
    // Without the ask, the upstream's earlier authentication is its own business.
    let t = trip(&down, &client, "mock", &[]).await;
    assert_eq!(t.status, 303, "{}", t.html);
}
both_backends!(
    the_way_back_fails_closed_mock,
    super::the_way_back_fails_closed
);

// --- 8: linking ------------------------------------------------------------------------------

/// Where other providers shipped account takeovers: a verified flag of one document applied to
/// another's value, linking by email, linking by a number the upstream does not vouch for, and
/// picking one of several holders of a number.
async fn accounts_are_linked_by_a_vouched_number_only(d: Deployment) {
    let mock = MockUpstream::start().await;
    let iss = mock.issuer();
    let pn = format!("{NAMES}\npersonal_number = \"personal_number\"");
    d.append_config(&oidc(
        "vouch",
        &iss,
        &basic(),
        &format!("{pn}\npersonal_number_verified = true"),
    ));
    d.append_config(&oidc("novouch", &iss, &basic(), &pn));
    let down = d.start().await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = d.account(USER).await.expect("the seeded Ivan");
    assert_eq!(ivan.email.as_deref(), Some("ivan@example.by"));
    assert!(ivan.email_verified, "Ivan's email is confirmed");
    let ids = d.store().await.upstream_identities();

    // The ID token says email_verified with no email; userinfo gives an email without the
    // flag: the flag does not vouch for it.
    correct(&mock);
    mock.set(|b| {
        b.subject = "flag-elsewhere".into();
        b.id_token_claims
            .insert("email_verified".into(), json!(true));
        b.userinfo_claims = obj(json!({"email": "maria@example.by"}));
    });
    let (accounts, identities) = rows(&d).await;
    let flagged = signs_in(&down, &client, "novouch").await;
    assert_eq!(mock.userinfo_requests().len(), 1);
    let acc = account(&d, flagged.subject().as_str()).await;
    assert!(
        acc.email.is_none() || !acc.email_verified,
        "another document's flag vouched for {:?}",
        acc.email
    );
    assert_eq!(rows(&d).await, (accounts + 1, identities + 1));

    // The upstream releases Ivan's confirmed email, verified, with his names: a new account.
    correct(&mock);
    mock.set(|b| {
        b.subject = "namesake".into();
        b.id_token_claims = obj(json!({
            "family_name": "Иванов", "given_name": "Иван",
            "email": "ivan@example.by", "email_verified": true,
        }));
    });
    let namesake = signs_in(&down, &client, "novouch").await;
    assert_ne!(
        namesake.subject().as_str(),
        ivan.id,
        "never linked by email"
    );
    let acc = account(&d, namesake.subject().as_str()).await;
    assert!(
        !(acc.email.as_deref() == Some("ivan@example.by") && acc.email_verified),
        "two accounts confirm one email"
    );
    assert!(ids.of_account(&ivan.id).await.expect("links").is_empty());
    assert_eq!(linked(&d, &ivan.id).await, 0);
    let ivan_now = d.account(USER).await.expect("Ivan");
    assert_eq!(ivan_now.email.as_deref(), Some("ivan@example.by"));
    assert!(ivan_now.email_verified);

    // Ivan holds a personal number from his certificate; an upstream that vouches for
    // numbers releases it: linked to Ivan.
    d.tamper(&format!(
        "INSERT INTO certificate_identities (identity, account_id, created_at) \
         VALUES ('pn:3101000A001PB1', '{}', 1)",
        ivan.id
    ))
    .await;
    correct(&mock);
    mock.set(|b| {
        b.subject = "vouched-ivan".into();
        b.id_token_claims = obj(json!({
            "family_name": "Иванов", "given_name": "Иван", "personal_number": "3101000A001PB1",
        }));
    });
    let (accounts, identities) = rows(&d).await;
    let as_ivan = signs_in(&down, &client, "vouch").await;
    assert_eq!(
        as_ivan.subject().as_str(),
        ivan.id,
        "the client sees Ivan's account"
    );
    assert_eq!(
        rows(&d).await,
        (accounts, identities + 1),
        "a link, no account"
    );
    let mine = ids.of_account(&ivan.id).await.expect("links");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].upstream.as_str(), mine[0].subject.as_str()),
        ("vouch", "vouched-ivan")
    );
    let n = d
        .wait_events(1, |e| {
            e.kind == "upstream_linked"
                && e.subject.as_deref() == Some(&ivan.id)
                && e.method.as_deref() == Some("upstream")
        })
        .await;
    assert_eq!(n, 1, "audited upstream_linked");
    // The same number from an upstream that does not vouch for numbers: a new account.
    mock.set(|b| b.subject = "unvouched-ivan".into());
    let unvouched = signs_in(&down, &client, "novouch").await;
    assert_ne!(unvouched.subject().as_str(), ivan.id);
    assert_eq!(rows(&d).await, (accounts + 1, identities + 2));
    assert_eq!(linked(&d, &ivan.id).await, 1);

    // Two accounts hold a number: a vouching upstream's first login of it is refused, and
    // nobody is picked. (The first holder got it through this upstream, the second from a
    // certificate.)
    mock.set(|b| {
        b.subject = "first-holder".into();
        b.id_token_claims
            .insert("personal_number".into(), json!("3101000B002PB2"));
    });
    let holder = signs_in(&down, &client, "vouch").await;
    assert_ne!(
        holder.subject().as_str(),
        ivan.id,
        "nobody held it: a new account"
    );
    d.tamper(&format!(
        "INSERT INTO certificate_identities (identity, account_id, created_at) \
         VALUES ('pn:3101000B002PB2', '{}', 1)",
        ivan.id
    ))
    .await;
    mock.set(|b| b.subject = "second-login".into());
    let (t, details) = refused(
        &d,
        &down,
        &client,
        "vouch",
        &[],
        ("ambiguous_match", 403, AMBIGUOUS),
    )
    .await;
    assert_eq!(details["detail"], json!({"accounts": 2}));
    assert!(
        !links(&t.html)
            .iter()
            .any(|l| l.starts_with("/login/upstream/")),
        "no retry of what cannot succeed"
    );
    assert_eq!(ids.of_account(&ivan.id).await.expect("links").len(), 1);
    assert_eq!(
        ids.accounts_with_personal_number("3101000B002PB2")
            .await
            .expect("holders")
            .len(),
        2
    );
}
both_backends!(
    accounts_are_linked_by_a_vouched_number_only_mock,
    super::accounts_are_linked_by_a_vouched_number_only
);
