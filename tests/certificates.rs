//! Sign-in with an EDS certificate over HTTP: the challenge, the signed answer (CMS or raw), the
//! verdict of the PKI checks (each refusal with its reason, in the answer and the audit trail),
//! and the tokens a relying party gets (acr high, amr hwk, legal_entity for a representative).
//!
//! PKIs: the bee2 reference vectors (tests/vectors/bign, see its README), and test PKIs
//! issued at run time with `vhod::pki::issue` (bign and ECDSA P-256), with CRLs installed,
//! forged, stale, missing, or served over HTTP by a small local server.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use openidconnect::core::CoreIdTokenClaims;
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, TokenResponse,
};
use serde_json::{Value, json};
use vhod::pki::cms_sign::{SignOptions, sign_detached};
use vhod::pki::issue::{self, CertSpec, Issuer, Revocation};
use vhod::pki::keys::{KeyAlgorithm, PrivateKey};
use vhod::pki::oids;

const DAY: i64 = 86_400;
/// The personal number of the vectors' citizen (and of rogue-leaf / forged-issuer).
const CITIZEN_PN: &str = "3010185A001PB3";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Declares `name::sqlite` and `name::postgres_redis` for a scenario that builds its own
/// deployment (with trust anchors) from the backend.
macro_rules! per_backend {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                $body($crate::common::Backend::Shared).await;
            }
        }
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// Decoded JSON of one part of a compact JWS (0 = header, 1 = payload).
fn jwt_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&b64url_decode(token.split('.').nth(i).expect("a JWS part")))
        .expect("JSON")
}

/// A file of the reference vectors (path relative to tests/vectors/bign).
fn vector(rel: &str) -> Vec<u8> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/bign")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("the reference vector {}: {e}", p.display()))
}

fn vector_text(rel: &str) -> String {
    String::from_utf8(vector(rel)).expect("UTF-8")
}

/// The DER of the first certificate of a PEM bundle.
fn first_cert_der(pem: &str) -> Vec<u8> {
    const END: &str = "-----END CERTIFICATE-----";
    let end = pem.find(END).expect("a PEM certificate") + END.len();
    let (label, der) = pem_rfc7468::decode_vec(pem[..end].trim_start().as_bytes()).expect("PEM");
    assert_eq!(label, "CERTIFICATE");
    der
}

/// Detached CMS SignedData (what signing software sends) over the challenge, base64 of the DER.
fn sign_cms(challenge_b64url: &str, cert_pem: &str, key: &PrivateKey) -> String {
    let content = b64url_decode(challenge_b64url);
    let der = sign_detached(
        &content,
        &first_cert_der(cert_pem),
        key,
        SignOptions::default(),
    )
    .expect("CMS signing");
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// A certificate holder: the PEM to present (leaf first, then intermediates) and the key.
struct Holder {
    pem: String,
    key: PrivateKey,
}

impl Holder {
    /// `{"certificate", "signature"}` with a CMS over `challenge`.
    fn cms(&self, challenge: &[u8]) -> Value {
        json!({
            "certificate": self.pem,
            "signature": sign_cms(&b64url(challenge), &self.pem, &self.key),
        })
    }

    /// `{"certificate", "signature_raw"}` with a bare signature over `challenge`.
    fn raw(&self, challenge: &[u8]) -> Value {
        json!({
            "certificate": self.pem,
            "signature_raw": hex::encode(self.key.sign(challenge).expect("raw signing")),
        })
    }
}

/// A holder from the vectors: `leaf`.pem (+ `chain` appended) and `key`.key.pem.
fn vholder(leaf: &str, chain: Option<&str>, key: &str) -> Holder {
    let mut pem = vector_text(&format!("x509/{leaf}.pem"));
    if let Some(chain) = chain {
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        pem.push_str(&vector_text(&format!("x509/{chain}")));
    }
    let key = PrivateKey::from_pkcs8_pem(&vector_text(&format!("x509/{key}.key.pem")))
        .expect("the vectors' key");
    Holder { pem, key }
}

/// A deployment trusting the vectors' root, with the vectors' CRL installed.
async fn vectors_deployment(backend: Backend) -> Option<Deployment> {
    Deployment::with_trust(
        backend,
        &[("root-ca.pem", vector("x509/root-ca.pem"))],
        &[("ica.crl.pem", vector("x509/intermediate-ca.crl.pem"))],
    )
    .await
}

/// Audit rows of refused certificate logins with this reason.
async fn audit_reason_count(d: &Deployment, reason: &str) -> i64 {
    d.count_events(|e| cert_login(e, "failure") && e.reason.as_deref() == Some(reason))
        .await
}

/// 1 when the identity key is linked to an account, else 0.
async fn linked(d: &Deployment, key: &str) -> i64 {
    let owner = d.store().await.certificates().owner(key).await;
    i64::from(owner.expect("the identities").is_some())
}

/// A certificate sign-in's audit event with this outcome.
fn cert_login(e: &StoredEvent, outcome: &str) -> bool {
    e.kind == "login" && e.outcome == outcome && e.method.as_deref() == Some("certificate")
}

fn cert_success(e: &StoredEvent) -> bool {
    cert_login(e, "success")
}

/// Starts a sign-in for client "rp" (PKCE S256, nonce, state, prompt=login so that an existing
/// session in the browser does not skip the form) and returns the login page.
async fn start_login(browser: &Browser, server: &Server) -> LoginPage {
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&server.url("/authorize")).expect("URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "rp")
        .append_pair("redirect_uri", RP_REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", CsrfToken::new_random().secret())
        .append_pair("nonce", Nonce::new_random().secret())
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "login");
    match browser.authorize(server, url.as_str()).await {
        Err(page) => {
            assert!(!page.csrf.is_empty(), "the login page has a CSRF token");
            page
        }
        Ok(loc) => panic!("expected the login page, got a redirect to {loc}"),
    }
}

/// What the relying party ends up with.
struct Signed {
    claims: CoreIdTokenClaims,
    /// The ID token's payload as JSON (for claims openidconnect does not model).
    payload: Value,
    access: AccessToken,
}

/// The redirect back → code (state and RFC 9207 iss checked) → tokens → verified ID token.
async fn finish(server: &Server, client: &Rp, back: &str, p: &Pending) -> Signed {
    let code = code_from(server, back, p);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &p.nonce)
        .expect("the ID token verifies")
        .clone();
    let alg = id_token.signing_alg().expect("alg");
    let key = id_token.signing_key(&verifier).expect("key");
    let expected = AccessTokenHash::from_token(tokens.access_token(), alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash");
    Signed {
        claims,
        payload: jwt_part(&id_token.to_string(), 1),
        access: tokens.access_token().clone(),
    }
}

fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .map(|v| v.iter().map(|a| a.as_str().to_string()).collect())
        .unwrap_or_default()
}

/// A running server plus everything secret the test sent through it (challenges, nonces,
/// signatures), to check that none of it reaches the log.
struct Live<'a> {
    d: &'a Deployment,
    server: Server,
    secrets: Mutex<Vec<String>>,
    /// Refusal rows per reason the test has caused so far.
    refusals: Mutex<std::collections::HashMap<String, i64>>,
}

impl<'a> Live<'a> {
    async fn start(d: &'a Deployment, extra: &[(&str, &str)]) -> Live<'a> {
        Live {
            d,
            server: d.start_with(extra).await,
            secrets: Mutex::new(Vec::new()),
            refusals: Mutex::default(),
        }
    }

    fn remember(&self, secret: &str) {
        if secret.len() >= 16 {
            self.secrets.lock().unwrap().push(secret.to_string());
        }
    }

    /// A fresh challenge for the browser's current sign-in: its bytes.
    async fn challenge(&self, browser: &Browser, csrf: &str) -> Vec<u8> {
        let (status, body) = browser.cert_challenge(&self.server, csrf).await;
        assert_eq!(status, 200, "challenge: {body}");
        assert_eq!(body["expires_in"], 120, "{body}");
        let text = body["challenge"].as_str().expect("a challenge").to_string();
        self.remember(&text);
        let bytes = b64url_decode(&text);
        assert!(bytes.len() >= 32, "a challenge of {} octets", bytes.len());
        if let Ok(doc) = serde_json::from_slice::<Value>(&bytes)
            && let Some(nonce) = doc["nonce"].as_str()
        {
            self.remember(nonce);
        }
        bytes
    }

    /// `POST /login/certificate`; never a 5xx.
    async fn post(&self, browser: &Browser, csrf: &str, body: &Value) -> (u16, Value) {
        for field in ["signature", "signature_raw"] {
            if let Some(s) = body[field].as_str() {
                self.remember(s);
            }
        }
        let (status, answer) = browser.cert_login(&self.server, csrf, body).await;
        assert!(
            status < 500,
            "POST /login/certificate answered {status}: {answer}"
        );
        (status, answer)
    }

    /// `POST /login/certificate` with any body and content type, the CSRF header optional.
    async fn post_raw(
        &self,
        browser: &Browser,
        csrf: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = browser
            .http
            .post(self.server.url("/login/certificate"))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(csrf) = csrf {
            req = req.header("X-CSRF-Token", csrf);
        }
        let res = req.send().await.expect("POST /login/certificate");
        let status = res.status().as_u16();
        let answer = res.json().await.unwrap_or(Value::Null);
        assert!(
            status < 500,
            "POST /login/certificate answered {status}: {answer}"
        );
        (status, answer)
    }

    /// A successful sign-in: the redirect back to the client.
    async fn accepted(&self, browser: &Browser, csrf: &str, body: &Value) -> String {
        let before = self.d.count_events(cert_success).await;
        let (status, answer) = self.post(browser, csrf, body).await;
        assert_eq!(status, 200, "certificate login refused: {answer}");
        let redirect = answer["redirect"].as_str().expect("a redirect").to_string();
        assert!(
            redirect.starts_with("http://127.0.0.1:9/"),
            "back to the client: {redirect}"
        );
        assert!(param(&redirect, "code").is_some(), "a code in {redirect}");
        assert_eq!(
            self.d.wait_events(before + 1, cert_success).await,
            before + 1,
            "a login success row with method certificate"
        );
        redirect
    }

    /// A refusal: status, reason, a description, and an audit row with the reason written
    /// before the answer.
    async fn refused(
        &self,
        browser: &Browser,
        csrf: &str,
        body: &Value,
        status: u16,
        reason: &str,
    ) {
        let (got, answer) = self.post(browser, csrf, body).await;
        self.check_refusal(got, &answer, status, reason).await;
    }

    async fn check_refusal(&self, got: u16, answer: &Value, status: u16, reason: &str) {
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(reason)),
            "expected {status} {reason}, got {got} {answer}"
        );
        assert!(
            answer["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "a description: {answer}"
        );
        self.audited(reason).await;
    }

    /// Exactly one more audit row with this reason than before (the rows are written before
    /// the answer, so no waiting).
    async fn audited(&self, reason: &str) {
        let expected = {
            let mut r = self.refusals.lock().unwrap();
            let n = r.entry(reason.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        assert_eq!(
            audit_reason_count(self.d, reason).await,
            expected,
            "audit rows with reason {reason}"
        );
    }

    /// Nothing secret in the server log, and no 5xx logged as a panic.
    fn check_logs(&self) {
        let logs = self.server.logs();
        assert!(!logs.trim().is_empty(), "the server logs something");
        assert!(!logs.contains("PRIVATE KEY"), "a private key in the log");
        assert!(!logs.contains("panicked"), "a panic in the log:\n{logs}");
        for s in self.secrets.lock().unwrap().iter() {
            assert!(!logs.contains(s.as_str()), "the log contains {s}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The citizen of the vectors: CMS, then raw, same person
// ---------------------------------------------------------------------------------------------

async fn citizen_signs_in(backend: Backend) {
    let Some(d) = vectors_deployment(backend).await else {
        return;
    };
    let live = Live::start(&d, &[]).await;
    let server = &live.server;
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let citizen = vholder("citizen", Some("chain.pem"), "citizen");

    // First sign-in: detached CMS, as signing software makes it.
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = browser
        .authorize(server, &p.url)
        .await
        .expect_err("a login page");
    let challenge = live.challenge(&browser, &page.csrf).await;
    let doc: Value = serde_json::from_slice(&challenge).expect("the challenge is JSON");
    assert_eq!(doc["aud"], server.issuer.as_str(), "{doc}");
    let back = live
        .accepted(&browser, &page.csrf, &citizen.cms(&challenge))
        .await;
    let first = finish(server, &client, &back, &p).await;
    assert_eq!(
        first.claims.auth_context_ref().map(|a| a.as_str()),
        Some("high")
    );
    assert_eq!(amr(&first.claims), ["hwk"]);
    assert_eq!(first.payload["family_name"], "Иванов", "{}", first.payload);
    assert_eq!(first.payload["given_name"], "Иван", "{}", first.payload);
    assert!(
        first.payload.get("legal_entity").is_none(),
        "a citizen acts for no legal entity: {}",
        first.payload
    );
    let sub = first.claims.subject().as_str().to_string();
    assert_eq!(linked(&d, &format!("pn:{CITIZEN_PN}")).await, 1);

    // Another browser, a raw signature: the same person, the same account.
    let other = Browser::new();
    let p2 = authorization(&client, &["profile"], &[]);
    let page2 = other
        .authorize(server, &p2.url)
        .await
        .expect_err("a login page");
    let challenge2 = live.challenge(&other, &page2.csrf).await;
    assert_ne!(challenge, challenge2, "every challenge is fresh");
    let back2 = live
        .accepted(&other, &page2.csrf, &citizen.raw(&challenge2))
        .await;
    let second = finish(server, &client, &back2, &p2).await;
    assert_eq!(second.claims.subject().as_str(), sub, "the same sub");
    assert_eq!(amr(&second.claims), ["hwk"]);
    assert_eq!(
        d.store().await.certificates().count().await.unwrap(),
        1,
        "one identity for the person"
    );
    assert_eq!(d.count_events(cert_success).await, 2);
    live.check_logs();
}
per_backend!(citizen_cms_then_raw, super::citizen_signs_in);

// ---------------------------------------------------------------------------------------------
// 2. The employee of the vectors: a legal entity's director
// ---------------------------------------------------------------------------------------------

async fn representative_signs_in(backend: Backend) {
    let Some(d) = vectors_deployment(backend).await else {
        return;
    };
    let live = Live::start(&d, &[]).await;
    let server = &live.server;
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let employee = vholder("employee", Some("chain.pem"), "employee");
    let expected = json!({"unp": "190000001", "name": "ООО «Тестовая организация»"});

    // The legal entity is released by its scope.
    let browser = Browser::new();
    let p = authorization(&client, &["profile", "legal_entity"], &[]);
    let page = browser
        .authorize(server, &p.url)
        .await
        .expect_err("a login page");
    let challenge = live.challenge(&browser, &page.csrf).await;
    let back = live
        .accepted(&browser, &page.csrf, &employee.cms(&challenge))
        .await;
    let s = finish(server, &client, &back, &p).await;
    assert_eq!(
        s.claims.auth_context_ref().map(|a| a.as_str()),
        Some("high")
    );
    assert_eq!(amr(&s.claims), ["hwk"]);
    assert_eq!(
        s.payload["legal_entity"], expected,
        "ID token: {}",
        s.payload
    );
    assert_eq!(s.payload["family_name"], "Петров", "{}", s.payload);
    let at = jwt_part(s.access.secret(), 1);
    assert_eq!(at["legal_entity"], expected, "access token: {at}");

    let res = http()
        .get(server.url("/userinfo"))
        .bearer_auth(s.access.secret())
        .send()
        .await
        .expect("GET /userinfo");
    assert_eq!(res.status().as_u16(), 200);
    let info: Value = res.json().await.expect("userinfo JSON");
    assert_eq!(info["sub"], s.claims.subject().as_str());
    assert_eq!(info["legal_entity"], expected, "userinfo: {info}");
    live.check_logs();
}
per_backend!(representative_legal_entity, super::representative_signs_in);

// ---------------------------------------------------------------------------------------------
// 3. Refusals with the vectors
// ---------------------------------------------------------------------------------------------

async fn vector_refusals(backend: Backend) {
    let Some(d) = vectors_deployment(backend).await else {
        return;
    };
    let live = Live::start(&d, &[]).await;
    let server = &live.server;
    let browser = Browser::new();
    let page = start_login(&browser, server).await;
    let csrf = page.csrf.as_str();
    let citizen = vholder("citizen", Some("chain.pem"), "citizen");

    // Each refusal below spends its own fresh challenge.
    let cases: Vec<(&str, Holder, &str)> = vec![
        (
            "revoked",
            vholder("revoked", Some("chain.pem"), "revoked"),
            "revoked",
        ),
        (
            "expired",
            vholder("expired", Some("chain.pem"), "expired"),
            "expired",
        ),
        (
            "rogue leaf with its own root",
            vholder("rogue-leaf", Some("rogue-root-ca.pem"), "rogue-leaf"),
            "untrusted",
        ),
        (
            "forged issuer",
            vholder("forged-issuer", Some("chain.pem"), "forged-issuer"),
            "bad_signature",
        ),
        (
            "citizen certificate with a broken signature",
            vholder("citizen-badsig", Some("chain.pem"), "citizen"),
            "bad_signature",
        ),
        (
            "citizen certificate, employee's key",
            vholder("citizen", Some("chain.pem"), "employee"),
            "bad_signature",
        ),
        (
            "leaf without its chain",
            vholder("citizen", None, "citizen"),
            "untrusted",
        ),
    ];
    for (what, holder, reason) in &cases {
        let challenge = live.challenge(&browser, csrf).await;
        let (status, answer) = live.post(&browser, csrf, &holder.cms(&challenge)).await;
        assert_eq!(
            answer["error"].as_str(),
            Some(*reason),
            "{what}: {status} {answer}"
        );
        live.check_refusal(status, &answer, 403, reason).await;
    }

    // The raw form of a wrong key is refused the same way.
    let challenge = live.challenge(&browser, csrf).await;
    let wrong_key = vholder("citizen", Some("chain.pem"), "employee");
    live.refused(
        &browser,
        csrf,
        &wrong_key.raw(&challenge),
        403,
        "bad_signature",
    )
    .await;

    // A signature over other bytes than the challenge (here: the vectors' fixed challenge).
    let _ = live.challenge(&browser, csrf).await;
    let other_bytes = vector("login/challenge.json");
    live.refused(
        &browser,
        csrf,
        &citizen.cms(&other_bytes),
        403,
        "bad_signature",
    )
    .await;
    let _ = live.challenge(&browser, csrf).await;
    live.refused(
        &browser,
        csrf,
        &citizen.raw(&other_bytes),
        403,
        "bad_signature",
    )
    .await;
    // The vectors' own CMS (made by bee2evp) over the vectors' challenge: good, but not ours.
    let _ = live.challenge(&browser, csrf).await;
    let body = json!({
        "certificate": citizen.pem,
        "signature": vector_text("login/challenge.citizen.cms.b64").trim(),
    });
    live.refused(&browser, csrf, &body, 403, "bad_signature")
        .await;

    // Every attempt spends the challenge: a refused one, and then the good signature over the
    // same challenge is too late.
    let challenge = live.challenge(&browser, csrf).await;
    let revoked = vholder("revoked", Some("chain.pem"), "revoked");
    live.refused(&browser, csrf, &revoked.cms(&challenge), 403, "revoked")
        .await;
    live.refused(
        &browser,
        csrf,
        &citizen.cms(&challenge),
        400,
        "bad_challenge",
    )
    .await;
    // No challenge requested at all (this sign-in has none left).
    live.refused(
        &browser,
        csrf,
        &citizen.raw(&challenge),
        400,
        "bad_challenge",
    )
    .await;

    // Malformed input (each after a fresh challenge, so the input is what is judged).
    let _ = live.challenge(&browser, csrf).await;
    let body = json!({"certificate": "hello", "signature": "aGVsbG8="});
    live.refused(&browser, csrf, &body, 400, "malformed").await;
    let citizen_der = vector("x509/citizen.der");
    let truncated = issue::to_pem("CERTIFICATE", &citizen_der[..100]);
    let challenge = live.challenge(&browser, csrf).await;
    let body = json!({
        "certificate": truncated,
        "signature": sign_cms(&b64url(&challenge), &citizen.pem, &citizen.key),
    });
    live.refused(&browser, csrf, &body, 400, "malformed").await;
    let _ = live.challenge(&browser, csrf).await;
    let (status, answer) = live
        .post_raw(
            &browser,
            Some(csrf),
            "application/json",
            b"certificate=hello&signature=x".to_vec(),
        )
        .await;
    live.check_refusal(status, &answer, 400, "malformed").await;
    let challenge = live.challenge(&browser, csrf).await;
    let mut body = citizen.cms(&challenge);
    body["signature_raw"] = json!("00");
    live.refused(&browser, csrf, &body, 400, "malformed").await;
    let _ = live.challenge(&browser, csrf).await;
    let body = json!({"certificate": citizen.pem, "signature_raw": "not hex at all"});
    live.refused(&browser, csrf, &body, 400, "malformed").await;
    // Hex, but not the 48 octets of a bign signature.
    let _ = live.challenge(&browser, csrf).await;
    let body = json!({"certificate": citizen.pem, "signature_raw": "deadbeef"});
    live.refused(&browser, csrf, &body, 400, "malformed").await;

    // Missing or wrong CSRF token: refused before anything else.
    let challenge = live.challenge(&browser, csrf).await;
    let body = serde_json::to_vec(&citizen.cms(&challenge)).unwrap();
    let (status, answer) = live
        .post_raw(&browser, None, "application/json", body.clone())
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("csrf")),
        "{answer}"
    );
    let (status, answer) = live
        .post_raw(&browser, Some("not-the-token"), "application/json", body)
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("csrf")),
        "{answer}"
    );
    let (status, answer) = browser.cert_challenge(server, "").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("csrf")),
        "{answer}"
    );
    // A browser that started no sign-in has no transaction.
    let stranger = Browser::new();
    let (status, _) = stranger.cert_challenge(server, csrf).await;
    assert!(
        (400..500).contains(&status),
        "challenge without a sign-in: {status}"
    );

    // A challenge belongs to one sign-in of one browser: signed for this browser, presented
    // by another (that has a challenge of its own), it is the wrong data.
    let other = Browser::new();
    let other_page = start_login(&other, server).await;
    let _ = live.challenge(&other, &other_page.csrf).await;
    let mine = live.challenge(&browser, csrf).await;
    live.refused(
        &other,
        &other_page.csrf,
        &citizen.cms(&mine),
        403,
        "bad_signature",
    )
    .await;

    // The challenge survived the CSRF refusals: the citizen signs in with it.
    let challenge = live.challenge(&browser, csrf).await;
    let good = citizen.cms(&challenge);
    live.accepted(&browser, csrf, &good).await;
    // A new sign-in in the same browser; replaying the successful answer is refused.
    let page2 = start_login(&browser, server).await;
    live.refused(&browser, &page2.csrf, &good, 400, "bad_challenge")
        .await;
    // With a fresh challenge, the old signature is over the wrong bytes.
    let _ = live.challenge(&browser, &page2.csrf).await;
    live.refused(&browser, &page2.csrf, &good, 403, "bad_signature")
        .await;

    // A huge certificate field: refused before or by the handler, never a server error.
    let _ = live.challenge(&browser, &page2.csrf).await;
    let huge = json!({"certificate": "A".repeat(200 * 1024), "signature": "AAAA"});
    let (status, answer) = live.post(&browser, &page2.csrf, &huge).await;
    assert!(
        status == 413 || status == 400,
        "a 200 KiB certificate: {status} {answer}"
    );
    if status == 400 {
        live.check_refusal(status, &answer, 400, "malformed").await;
    }
    // The 413 says `Connection: close`, so the browser's next request goes over a new
    // connection instead of failing on the one the server closed.
    for _ in 0..3 {
        let _ = live.challenge(&browser, &page2.csrf).await;
    }

    // Refusals never wrote a success, and the failures carry the client.
    assert_eq!(d.count_events(cert_success).await, 1);
    assert_eq!(
        d.count_events(|e| cert_login(e, "failure") && e.client_id.as_deref() != Some("rp"))
            .await,
        0
    );
    live.check_logs();
}
per_backend!(refusals_with_the_vectors, super::vector_refusals);

// ---------------------------------------------------------------------------------------------
// 4. Test PKIs issued at run time: bign and ECDSA P-256, CRLs in every state
// ---------------------------------------------------------------------------------------------

/// A root (the anchor) and an issuing CA whose key the test holds.
struct TestCa {
    root_pem: String,
    issuing_pem: String,
    issuing: Issuer,
    alg: KeyAlgorithm,
}

impl TestCa {
    fn new(alg: KeyAlgorithm) -> TestCa {
        let now = now();
        let subject = |cn: &str| {
            vec![
                (oids::AT_COUNTRY, "BY".to_string()),
                (oids::AT_ORGANIZATION, "Тестовый центр".to_string()),
                (oids::AT_COMMON_NAME, format!("{cn} ({alg})")),
            ]
        };
        let root_key = PrivateKey::generate(alg).expect("root key");
        let root_der = issue::self_signed(
            &CertSpec::root(subject("Root"), &[1], now - DAY, now + 3650 * DAY),
            &root_key,
        )
        .expect("root");
        let root = Issuer::new(&root_der, root_key).expect("root issuer");
        let issuing_key = PrivateKey::generate(alg).expect("issuing key");
        let issuing_der = issue::issue(
            &CertSpec::intermediate(
                subject("Issuing"),
                &[2],
                now - DAY,
                now + 1825 * DAY,
                Some(0),
            ),
            &issuing_key.spki(),
            &root,
        )
        .expect("issuing CA");
        TestCa {
            root_pem: issue::to_pem("CERTIFICATE", &root_der),
            issuing_pem: issue::to_pem("CERTIFICATE", &issuing_der),
            issuing: Issuer::new(&issuing_der, issuing_key).expect("issuing issuer"),
            alg,
        }
    }

    fn anchors(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![("root-ca.pem", self.root_pem.clone().into_bytes())]
    }

    /// A person's certificate (+ the issuing CA) and key, and its serial number.
    fn person(
        &self,
        pn: &str,
        surname: &str,
        given: &str,
        not_before: i64,
        crl_url: Option<String>,
    ) -> (Holder, Vec<u8>) {
        let key = PrivateKey::generate(self.alg).expect("leaf key");
        let serial = issue::random_serial().expect("serial");
        let mut spec = CertSpec::leaf(
            vec![
                (oids::AT_COUNTRY, "BY".to_string()),
                (oids::AT_SURNAME, surname.to_string()),
                (oids::AT_GIVEN_NAME, given.to_string()),
                (oids::AT_COMMON_NAME, format!("{surname} {given} Тестович")),
                (oids::AT_SERIAL_NUMBER, pn.to_string()),
            ],
            &serial,
            not_before,
            now() + 365 * DAY,
        );
        spec.crl_distribution_point = crl_url;
        let der = issue::issue(&spec, &key.spki(), &self.issuing).expect("leaf");
        let pem = format!("{}{}", issue::to_pem("CERTIFICATE", &der), self.issuing_pem);
        (Holder { pem, key }, serial)
    }

    /// The issuing CA presenting itself as a person (it holds the key, the usage is wrong).
    fn issuing_as_person(&self) -> Holder {
        Holder {
            pem: format!("{}{}", self.issuing_pem, self.root_pem),
            key: PrivateKey::from_pkcs8_der(&self.issuing.key().to_pkcs8_der()).expect("key"),
        }
    }

    /// A CRL of the issuing CA (DER) listing `revoked`.
    fn crl(&self, revoked: &[Vec<u8>], this_update: i64, next_update: i64) -> Vec<u8> {
        crl_by(&self.issuing, revoked, this_update, next_update)
    }

    /// A current CRL naming the issuing CA but signed by another key.
    fn forged_crl(&self) -> Vec<u8> {
        let other = PrivateKey::generate(self.alg).expect("key");
        let der = self.issuing.certificate();
        let der = der::Encode::to_der(der).expect("DER");
        let impostor = Issuer::new_unchecked(&der, other).expect("issuer");
        crl_by(&impostor, &[], now() - 3600, now() + 7 * DAY)
    }
}

fn crl_by(issuer: &Issuer, revoked: &[Vec<u8>], this_update: i64, next_update: i64) -> Vec<u8> {
    let list: Vec<Revocation> = revoked
        .iter()
        .map(|serial| Revocation {
            serial: serial.clone(),
            revoked_at: this_update - 60,
            reason: None,
        })
        .collect();
    issue::crl(issuer, &list, this_update, next_update, 7).expect("CRL")
}

fn pem_crl(der: &[u8]) -> Vec<u8> {
    issue::to_pem("X509 CRL", der).into_bytes()
}

/// Signs in `holder` in a new browser (CMS or raw) and returns the redirect.
async fn sign_in_ok(live: &Live<'_>, holder: &Holder, raw: bool) -> String {
    let browser = Browser::new();
    let page = start_login(&browser, &live.server).await;
    let challenge = live.challenge(&browser, &page.csrf).await;
    let body = if raw {
        holder.raw(&challenge)
    } else {
        holder.cms(&challenge)
    };
    live.accepted(&browser, &page.csrf, &body).await
}

/// Signs in `holder` in a new browser and expects a refusal.
async fn sign_in_refused(live: &Live<'_>, holder: &Holder, status: u16, reason: &str) {
    let browser = Browser::new();
    let page = start_login(&browser, &live.server).await;
    let challenge = live.challenge(&browser, &page.csrf).await;
    live.refused(
        &browser,
        &page.csrf,
        &holder.cms(&challenge),
        status,
        reason,
    )
    .await;
}

/// What a tiny CRL distribution point serves (path → DER) and how many requests it had.
#[derive(Default)]
struct CrlServer {
    files: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    hits: AtomicUsize,
}

/// Runs a CRL distribution point on 127.0.0.1; returns its port. Files can be added later.
async fn serve_crls(state: std::sync::Arc<CrlServer>) -> u16 {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let state = state.clone();
        async move {
            state.hits.fetch_add(1, Ordering::SeqCst);
            match state.files.lock().unwrap().get(uri.path()) {
                Some(der) => (
                    axum::http::StatusCode::OK,
                    [("content-type", "application/pkix-crl")],
                    der.clone(),
                ),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    [("content-type", "text/plain")],
                    b"not found".to_vec(),
                ),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn generated_pki(backend: Backend, alg: KeyAlgorithm) {
    let ca = TestCa::new(alg);
    let now = now();

    // A current CRL installed: sign-in end to end; the CA as a person; not yet valid.
    let (revoked_one, revoked_serial) =
        ca.person("4231187C056PB5", "Сидоренко", "Ольга", now - 3600, None);
    let Some(d) = Deployment::with_trust(
        backend,
        &ca.anchors(),
        &[(
            "issuing.crl.pem",
            pem_crl(&ca.crl(&[revoked_serial], now - 3600, now + 7 * DAY)),
        )],
    )
    .await
    else {
        return;
    };
    {
        let live = Live::start(&d, &[]).await;
        let server = &live.server;
        let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
        let (maria, _) = ca.person("4120290A012PB3", "Петрова", "Мария", now - 3600, None);
        let browser = Browser::new();
        let p = authorization(&client, &["profile"], &[]);
        let page = browser
            .authorize(server, &p.url)
            .await
            .expect_err("a login page");
        let challenge = live.challenge(&browser, &page.csrf).await;
        let back = live
            .accepted(&browser, &page.csrf, &maria.cms(&challenge))
            .await;
        let s = finish(server, &client, &back, &p).await;
        assert_eq!(
            s.claims.auth_context_ref().map(|a| a.as_str()),
            Some("high")
        );
        assert_eq!(amr(&s.claims), ["hwk"]);
        assert_eq!(s.payload["family_name"], "Петрова", "{}", s.payload);
        assert_eq!(s.payload["given_name"], "Мария", "{}", s.payload);
        // The raw form works for this algorithm too, for the same account.
        let back = sign_in_ok(&live, &maria, true).await;
        assert!(param(&back, "code").is_some());
        assert_eq!(linked(&d, "pn:4120290A012PB3").await, 1);

        sign_in_refused(&live, &revoked_one, 403, "revoked").await;
        sign_in_refused(&live, &ca.issuing_as_person(), 403, "key_usage").await;
        let (future, _) = ca.person("3150874E078PB5", "Мельник", "Виктор", now + DAY, None);
        sign_in_refused(&live, &future, 403, "not_yet_valid").await;
        live.check_logs();
    }

    // Only a CRL signed by another key: the revocation status is a forgery.
    let Some(forged) = Deployment::with_trust(
        backend,
        &ca.anchors(),
        &[("issuing.crl.pem", pem_crl(&ca.forged_crl()))],
    )
    .await
    else {
        return;
    };
    {
        let live = Live::start(&forged, &[]).await;
        let (p, _) = ca.person("3070592B034PB4", "Ковалёв", "Андрей", now - 3600, None);
        sign_in_refused(&live, &p, 403, "bad_signature").await;
        live.check_logs();
    }

    // Only a stale CRL (its nextUpdate has passed).
    let stale_crl = ca.crl(&[], now - 10 * DAY, now - DAY);
    let Some(stale) = Deployment::with_trust(
        backend,
        &ca.anchors(),
        &[("issuing.crl.pem", pem_crl(&stale_crl))],
    )
    .await
    else {
        return;
    };
    {
        let live = Live::start(&stale, &[]).await;
        let (p, _) = ca.person("3070592B034PB4", "Ковалёв", "Андрей", now - 3600, None);
        sign_in_refused(&live, &p, 403, "crl_unavailable").await;
        live.check_logs();
    }

    // No CRL installed: refused unless CRLs are optional; a distribution point over HTTP
    // supplies one.
    let Some(bare) = Deployment::with_trust(backend, &ca.anchors(), &[]).await else {
        return;
    };
    {
        let live = Live::start(&bare, &[]).await;
        let (p, _) = ca.person("3070592B034PB4", "Ковалёв", "Андрей", now - 3600, None);
        sign_in_refused(&live, &p, 403, "crl_unavailable").await;

        // The distribution point: /clean.crl lists nobody, /listed.crl lists Олег.
        let dp = std::sync::Arc::new(CrlServer::default());
        let port = serve_crls(dp.clone()).await;
        let url = |path: &str| Some(format!("http://127.0.0.1:{port}{path}"));
        let (fetched, _) = ca.person(
            "4150390B002PB5",
            "Сидорова",
            "Анна",
            now - 3600,
            url("/clean.crl"),
        );
        let (listed, listed_serial) = ca.person(
            "3220775C003PB9",
            "Козлов",
            "Олег",
            now - 3600,
            url("/listed.crl"),
        );
        {
            let mut files = dp.files.lock().unwrap();
            files.insert("/clean.crl".into(), ca.crl(&[], now - 3600, now + 7 * DAY));
            files.insert(
                "/listed.crl".into(),
                ca.crl(&[listed_serial], now - 3600, now + 7 * DAY),
            );
        }
        sign_in_ok(&live, &fetched, false).await;
        let after_first = dp.hits.load(Ordering::SeqCst);
        assert!(after_first >= 1, "the CRL was fetched");
        sign_in_refused(&live, &listed, 403, "revoked").await;
        assert!(
            dp.hits.load(Ordering::SeqCst) > after_first,
            "the second CRL was fetched"
        );
        live.check_logs();
    }
    {
        let live = Live::start(&bare, &[("VHOD_CRL_REQUIRED", "false")]).await;
        let (p, _) = ca.person("3070592B034PB4", "Ковалёв", "Андрей", now - 3600, None);
        sign_in_ok(&live, &p, false).await;
        live.check_logs();
    }
}

async fn bign_pki(backend: Backend) {
    generated_pki(backend, KeyAlgorithm::Bign).await;
}
per_backend!(generated_bign_pki, super::bign_pki);

async fn ecdsa_pki(backend: Backend) {
    generated_pki(backend, KeyAlgorithm::EcdsaP256).await;
}
per_backend!(generated_ecdsa_p256_pki, super::ecdsa_pki);

// ---------------------------------------------------------------------------------------------
// 6. The challenge call's own input: its body and the transaction it names
// ---------------------------------------------------------------------------------------------

/// `POST /login/certificate/challenge` with a body: 400 with a clear error for anything but
/// `{}` or `{"tx": …}` of this browser, and no challenge stored by a refused call.
async fn challenge_inputs(backend: Backend) {
    let Some(d) = vectors_deployment(backend).await else {
        return;
    };
    let live = Live::start(&d, &[]).await;
    let server = &live.server;
    let browser = Browser::new();
    let page = start_login(&browser, server).await;
    let csrf = page.csrf.as_str();
    let post = |body: &'static str| {
        browser
            .http
            .post(server.url("/login/certificate/challenge"))
            .header("X-CSRF-Token", csrf)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (body, status, error) in [
        ("not json", 400, "malformed"),
        (r#"{"tx": 5}"#, 400, "malformed"),
        (r#"{"unexpected": "field"}"#, 400, "malformed"),
        (r#"{"tx": "AAAAAAAAAAAAAAAAAAAAAA"}"#, 400, "tx_expired"),
        (r#"{"tx": "../../etc/passwd"}"#, 400, "tx_expired"),
    ] {
        let res = post(body).await.expect("POST challenge");
        let got = res.status().as_u16();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(error)),
            "{body}: {answer}"
        );
        assert!(
            answer["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    // None of those issued a challenge: a login now finds none.
    let citizen = vholder("citizen", Some("chain.pem"), "citizen");
    let body = citizen.cms(b"{\"nonce\":\"none\",\"aud\":\"none\"}");
    live.refused(&browser, csrf, &body, 400, "bad_challenge")
        .await;
    // Another browser's transaction is not this browser's to name.
    let other = Browser::new();
    let other_page = start_login(&other, server).await;
    let res = browser
        .http
        .post(server.url("/login/certificate/challenge"))
        .header("X-CSRF-Token", csrf)
        .json(&json!({"tx": other_page.tx}))
        .send()
        .await
        .expect("POST challenge");
    assert_eq!(res.status().as_u16(), 400);
    let answer: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(answer["error"], "tx_expired", "{answer}");
    // Naming its own transaction works, as the login page does.
    let res = browser
        .http
        .post(server.url("/login/certificate/challenge"))
        .header("X-CSRF-Token", csrf)
        .json(&json!({"tx": page.tx}))
        .send()
        .await
        .expect("POST challenge");
    assert_eq!(res.status().as_u16(), 200);
}

per_backend!(challenge_call_inputs, super::challenge_inputs);
