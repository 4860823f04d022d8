//! Protocol behaviour beyond the basic code flow: single sign-on across clients and signing
//! algorithms, prompt/max_age, public clients, code replay, revocation, client_credentials,
//! private_key_jwt, RP-initiated logout, localised pages and their headers, discovery.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use openidconnect::core::{CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreTokenResponse};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, Nonce, OAuth2TokenResponse, PkceCodeVerifier,
    RefreshToken, RequestTokenError, Scope, StandardErrorResponse, TokenIntrospectionResponse,
    TokenResponse,
};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const RP3_SECRET: &str = "rp3-secret-0123456789abcdefghij";
const RP3_REDIRECT: &str = "http://127.0.0.1:9/cb3";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

fn b64e(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decoded JSON of one part of a compact JWS (0 = header, 1 = payload).
fn jwt_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&b64d(token.split('.').nth(i).expect("a JWS part"))).expect("JSON")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// The OAuth `error` of a failed openidconnect request; panics on success or transport errors.
fn oauth_error<T, RE, TE>(r: Result<T, RequestTokenError<RE, StandardErrorResponse<TE>>>) -> String
where
    RE: std::error::Error + 'static,
    TE: openidconnect::ErrorResponseType + std::fmt::Display + 'static,
{
    match r {
        Ok(_) => panic!("expected an OAuth error response, the request succeeded"),
        Err(RequestTokenError::ServerResponse(e)) => e.error().to_string(),
        Err(other) => panic!("expected an OAuth error response, got: {other:?}"),
    }
}

/// A form POST without cookies; returns the status and the JSON body (Null when empty).
async fn post_form(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = http().post(url).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.expect("POST");
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    (status, json)
}

async fn redeem(client: &Rp, code: &str, p: &Pending) -> CoreTokenResponse {
    client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange")
}

struct Signed {
    access: AccessToken,
    refresh: Option<RefreshToken>,
    claims: CoreIdTokenClaims,
    id_token: String,
    alg: CoreJwsSigningAlgorithm,
}

/// Verifies the ID token (signature, nonce, at_hash) with openidconnect.
fn verify(client: &Rp, tokens: &CoreTokenResponse, nonce: &Nonce) -> Signed {
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, nonce)
        .expect("ID token verifies")
        .clone();
    let alg = id_token.signing_alg().expect("alg").clone();
    let key = id_token.signing_key(&verifier).expect("key");
    let expected = AccessTokenHash::from_token(tokens.access_token(), &alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash");
    Signed {
        access: tokens.access_token().clone(),
        refresh: tokens.refresh_token().cloned(),
        claims,
        id_token: id_token.to_string(),
        alg,
    }
}

/// The whole code flow in `browser` (signing in when needed) for `client`.
async fn code_flow(server: &Server, browser: &Browser, client: &Rp, scopes: &[&str]) -> Signed {
    let p = authorization(client, scopes, &[]);
    let back = browser.sign_in(server, &p.url, USER, PASSWORD).await;
    let code = code_from(server, &back, &p);
    let tokens = redeem(client, &code, &p).await;
    verify(client, &tokens, &p.nonce)
}

/// Opens an authorization URL that must be answered at once (no login form).
async fn immediate(server: &Server, browser: &Browser, url: &str) -> String {
    match browser.authorize(server, url).await {
        Ok(loc) => loc,
        Err(page) => panic!(
            "expected an immediate redirect, got the login page {}",
            page.url
        ),
    }
}

/// Opens an authorization URL that must show the login form.
async fn login_form(server: &Server, browser: &Browser, url: &str) -> LoginPage {
    match browser.authorize(server, url).await {
        Ok(loc) => panic!("expected the login page, was redirected to {loc}"),
        Err(page) => {
            assert!(
                page.html.contains("action=\"/login/password\""),
                "login form: {}",
                page.html
            );
            assert!(!page.tx.is_empty() && !page.csrf.is_empty());
            page
        }
    }
}

async fn introspect_active(client: &Rp, token: &AccessToken) -> bool {
    client
        .introspect(token)
        .request_async(&http())
        .await
        .expect("introspection")
        .active()
}

async fn refresh(client: &Rp, rt: &RefreshToken) -> Result<CoreTokenResponse, String> {
    let r = client
        .exchange_refresh_token(rt)
        .expect("token endpoint")
        .request_async(&http())
        .await;
    match r {
        Ok(t) => Ok(t),
        Err(e) => Err(oauth_error::<(), _, _>(Err(e))),
    }
}

/// Audit rows of `kind` (events written with `Audit::write` are durable before the response).
async fn audit_count(d: &Deployment, kind: &str) -> i64 {
    d.count_events(|e| e.kind == kind).await
}

// ---------------------------------------------------------------------------------------------
// 1. Single sign-on, prompt and max_age
// ---------------------------------------------------------------------------------------------

async fn single_sign_on(d: Deployment) {
    let server = d.start().await;
    let rp1 = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let rp2 = rp(&server, "rp2", Some(RP2_SECRET), RP2_REDIRECT).await;
    let rp3 = rp(&server, "rp-eddsa", Some(RP3_SECRET), RP3_REDIRECT).await;
    let browser = Browser::new();

    // The first client: the person signs in with the form.
    let p = authorization(&rp1, &[], &[]);
    let page = login_form(&server, &browser, &p.url).await;
    let res = browser
        .submit_password(&server, &page, USER, PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let code = code_from(&server, &location(&res), &p);
    let first = verify(&rp1, &redeem(&rp1, &code, &p).await, &p.nonce);
    assert_eq!(first.alg, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    assert_eq!(jwt_part(&first.id_token, 0)["alg"], "ES256");
    let sub = first.claims.subject().as_str().to_string();
    let sid = jwt_part(&first.id_token, 1)["sid"]
        .as_str()
        .expect("sid")
        .to_string();
    assert!(!sid.is_empty());

    // The other clients: straight back with a code, ID tokens in their own algorithms.
    for (client, id, redirect, alg, name) in [
        (
            &rp2,
            "rp2",
            RP2_REDIRECT,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            "RS256",
        ),
        (
            &rp3,
            "rp-eddsa",
            RP3_REDIRECT,
            CoreJwsSigningAlgorithm::EdDsa,
            "EdDSA",
        ),
    ] {
        let p = authorization(client, &[], &[]);
        let back = immediate(&server, &browser, &p.url).await;
        assert!(
            back.starts_with(&format!("{redirect}?")),
            "back to {redirect}: {back}"
        );
        let code = code_from(&server, &back, &p);
        let s = verify(client, &redeem(client, &code, &p).await, &p.nonce);
        assert_eq!(s.alg, alg, "{id}");
        assert_eq!(jwt_part(&s.id_token, 0)["alg"], name);
        assert_eq!(
            s.claims
                .audiences()
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>(),
            vec![id]
        );
        assert_eq!(s.claims.subject().as_str(), sub, "same person for {id}");
        assert_eq!(
            jwt_part(&s.id_token, 1)["sid"].as_str(),
            Some(sid.as_str()),
            "same session for {id}"
        );
        assert_eq!(
            s.claims.auth_time(),
            first.claims.auth_time(),
            "no new authentication for {id}"
        );
    }
    // One password sign-in served all three clients.
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.outcome == "success")
            .await,
        1
    );

    // A browser without a session and prompt=none: login_required, never a page.
    let p = authorization(&rp1, &[], &[("prompt", "none")]);
    let back = immediate(&server, &Browser::new(), &p.url).await;
    assert!(back.starts_with(&format!("{RP_REDIRECT}?")), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&back, "state").as_deref(), Some(p.state.as_str()));
    assert_eq!(param(&back, "code"), None);

    // With the session: prompt=login and max_age=0 demand a fresh sign-in...
    let p = authorization(&rp1, &[], &[("prompt", "login")]);
    login_form(&server, &browser, &p.url).await;
    let p = authorization(&rp1, &[], &[("max_age", "0")]);
    login_form(&server, &browser, &p.url).await;
    // ...max_age=3600 is satisfied by the sign-in a moment ago, and prompt=none still works.
    for extra in [("max_age", "3600"), ("prompt", "none")] {
        let p = authorization(&rp1, &[], &[extra]);
        let back = immediate(&server, &browser, &p.url).await;
        assert!(
            back.starts_with(&format!("{RP_REDIRECT}?")),
            "{extra:?}: {back}"
        );
        let code = code_from(&server, &back, &p);
        let s = verify(&rp1, &redeem(&rp1, &code, &p).await, &p.nonce);
        assert_eq!(s.claims.subject().as_str(), sub);
    }
}
both_backends!(sso_across_clients_and_algorithms, super::single_sign_on);

// ---------------------------------------------------------------------------------------------
// 2. Public client with PKCE
// ---------------------------------------------------------------------------------------------

async fn public_client(d: Deployment) {
    let server = d.start().await;
    let spa = rp(&server, "spa", None, SPA_REDIRECT).await;
    let browser = Browser::new();

    // Through openidconnect as a public client (no secret).
    let s = code_flow(&server, &browser, &spa, &[]).await;
    assert_eq!(
        s.claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        vec!["spa"]
    );

    // By hand: the token request carries client_id and code_verifier, and no credentials at all.
    let p = authorization(&spa, &[], &[]);
    let back = immediate(&server, &browser, &p.url).await;
    let code = code_from(&server, &back, &p);
    let (status, body) = post_form(
        &server.url("/token"),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("client_id", "spa"),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["id_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        jwt_part(body["access_token"].as_str().unwrap(), 1)["client_id"],
        "spa"
    );

    // Without the code_verifier the code is worthless.
    let p = authorization(&spa, &[], &[]);
    let back = immediate(&server, &browser, &p.url).await;
    let code = code_from(&server, &back, &p);
    let (status, body) = post_form(
        &server.url("/token"),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}
both_backends!(public_client_with_pkce, super::public_client);

// ---------------------------------------------------------------------------------------------
// 3. Authorization code replay
// ---------------------------------------------------------------------------------------------

async fn code_reuse(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let back = browser.sign_in(&server, &p.url, USER, PASSWORD).await;
    let code = code_from(&server, &back, &p);

    let first = redeem(&client, &code, &p).await;
    let s = verify(&client, &first, &p.nonce);
    let rt = s.refresh.clone().expect("a refresh token");
    assert!(
        introspect_active(&client, &s.access).await,
        "active before the replay"
    );
    assert_eq!(audit_count(&d, "code_reuse").await, 0);

    let again = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await;
    assert_eq!(oauth_error(again), "invalid_grant");

    // RFC 6749 §4.1.2: what the code produced is revoked.
    assert!(
        !introspect_active(&client, &s.access).await,
        "access token of a replayed code"
    );
    assert_eq!(
        refresh(&client, &rt).await.err().as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(audit_count(&d, "code_reuse").await, 1);
}
both_backends!(code_reuse_revokes_the_grant, super::code_reuse);

// ---------------------------------------------------------------------------------------------
// 4. Revocation (RFC 7009)
// ---------------------------------------------------------------------------------------------

async fn userinfo_status(server: &Server, token: &AccessToken) -> u16 {
    http()
        .get(server.url("/userinfo"))
        .bearer_auth(token.secret())
        .send()
        .await
        .expect("GET /userinfo")
        .status()
        .as_u16()
}

/// An RFC 7009 revocation request as openidconnect's `revoke_token` sends it (client_secret_basic,
/// token, token_type_hint). The crate itself refuses non-https revocation URLs (RFC 7009 §2), and
/// the test servers speak plain HTTP on 127.0.0.1, so the request is made by hand.
async fn revoke(server: &Server, (id, secret): (&str, &str), token: &str, hint: &str) -> u16 {
    let (status, body) = post_form(
        &server.url("/revoke"),
        Some((id, secret)),
        &[("token", token), ("token_type_hint", hint)],
    )
    .await;
    assert_eq!(body, Value::Null, "RFC 7009 §2.2: an empty body");
    status
}

async fn revocation(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();

    // Revoking a refresh token ends its grant, and the access tokens minted under it.
    let a = code_flow(&server, &browser, &client, &[]).await;
    let rt_a = a.refresh.clone().expect("a refresh token");
    assert!(introspect_active(&client, &a.access).await);
    assert_eq!(
        revoke(&server, ("rp", RP_SECRET), rt_a.secret(), "refresh_token").await,
        200
    );
    assert_eq!(
        refresh(&client, &rt_a).await.err().as_deref(),
        Some("invalid_grant")
    );
    assert!(
        !introspect_active(&client, &a.access).await,
        "access token of a revoked grant"
    );

    // Revoking an access token: userinfo and introspection refuse it.
    let b = code_flow(&server, &browser, &client, &[]).await;
    assert_eq!(userinfo_status(&server, &b.access).await, 200);
    assert_eq!(
        revoke(
            &server,
            ("rp", RP_SECRET),
            b.access.secret(),
            "access_token"
        )
        .await,
        200
    );
    assert_eq!(userinfo_status(&server, &b.access).await, 401);
    assert!(
        !introspect_active(&client, &b.access).await,
        "revoked access token"
    );
    assert_eq!(audit_count(&d, "token_revoked").await, 2);

    // Another client cannot revoke rp's tokens: 200 (no oracle), and nothing happens.
    let c = code_flow(&server, &browser, &client, &[]).await;
    let rt_c = c.refresh.clone().expect("a refresh token");
    for (token, hint) in [
        (c.access.secret(), "access_token"),
        (rt_c.secret(), "refresh_token"),
    ] {
        assert_eq!(
            revoke(&server, ("rp2", RP2_SECRET), token, hint).await,
            200,
            "{hint}"
        );
        // Without the hint too: the server goes by the token's shape.
        let (status, body) = post_form(
            &server.url("/revoke"),
            Some(("rp2", RP2_SECRET)),
            &[("token", token)],
        )
        .await;
        assert_eq!(status, 200, "{hint}: {body}");
    }
    assert!(
        introspect_active(&client, &c.access).await,
        "still active after a foreign revocation"
    );
    assert_eq!(userinfo_status(&server, &c.access).await, 200);
    let rotated = refresh(&client, &rt_c)
        .await
        .expect("the refresh token still works");
    assert!(rotated.refresh_token().is_some());
    assert_eq!(
        audit_count(&d, "token_revoked").await,
        2,
        "foreign revocations change nothing"
    );
}
both_backends!(token_revocation, super::revocation);

// ---------------------------------------------------------------------------------------------
// 5. client_credentials
// ---------------------------------------------------------------------------------------------

async fn client_credentials(d: Deployment) {
    let server = d.start().await;
    let token_url = server.url("/token");
    let svc = Some(("svc", SVC_SECRET));

    // client_secret_basic, default scope: everything registered.
    let (status, body) = post_form(&token_url, svc, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "appeals.read appeals.write");
    assert!(body["expires_in"].as_u64().is_some_and(|n| n > 0));
    assert!(
        body.get("id_token").is_none(),
        "no ID token without a person: {body}"
    );
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token for client_credentials: {body}"
    );
    let token = body["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["sub"], "svc");

    // The token introspects active, for its resource server.
    let (status, intro) = post_form(&server.url("/introspect"), svc, &[("token", &token)]).await;
    assert_eq!(status, 200, "{intro}");
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "svc");
    assert_eq!(intro["scope"], "appeals.read appeals.write");

    // Through openidconnect, with a narrower scope.
    let oc = rp(&server, "svc", Some(SVC_SECRET), RP_REDIRECT).await;
    let narrow = oc
        .exchange_client_credentials()
        .expect("token endpoint")
        .add_scope(Scope::new("appeals.read".into()))
        .request_async(&http())
        .await
        .expect("client_credentials");
    assert_eq!(
        narrow
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
        Some(vec!["appeals.read".to_string()])
    );
    assert!(narrow.refresh_token().is_none());
    assert!(narrow.id_token().is_none());
    assert_eq!(
        jwt_part(narrow.access_token().secret(), 1)["scope"],
        "appeals.read"
    );

    // Scopes outside the registration, person scopes included, are refused.
    for scope in ["appeals.delete", "appeals.read appeals.admin", "openid"] {
        let (status, body) = post_form(
            &token_url,
            svc,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(status, 400, "{scope}: {body}");
        assert_eq!(body["error"], "invalid_scope", "{scope}");
    }

    // client_secret_post works too; a wrong secret does not.
    let (status, body) = post_form(
        &token_url,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", SVC_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "appeals.read appeals.write");
    let (status, body) = post_form(
        &token_url,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "wrong-secret-0123456789abcdef"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
}
both_backends!(client_credentials_grant, super::client_credentials);

// ---------------------------------------------------------------------------------------------
// 6. private_key_jwt (RFC 7523)
// ---------------------------------------------------------------------------------------------

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn es256_key() -> EcdsaKeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("key generation");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key")
}

fn public_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
    let point = key.public_key().as_ref();
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    assert_eq!(point[0], 4);
    json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64e(&point[1..33]),
        "y": b64e(&point[33..65]),
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    })
}

fn sign_assertion(key: &EcdsaKeyPair, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64e(header.to_string().as_bytes()),
        b64e(claims.to_string().as_bytes())
    );
    let rng = ring::rand::SystemRandom::new();
    let sig = key.sign(&rng, signing_input.as_bytes()).expect("signing");
    format!("{signing_input}.{}", b64e(sig.as_ref()))
}

fn assertion_claims(aud: &str, exp: i64) -> Value {
    json!({
        "iss": "pkjwt",
        "sub": "pkjwt",
        "aud": aud,
        "iat": now(),
        "exp": exp,
        "jti": random_suffix() + &b64e(&rand_bytes()),
    })
}

fn rand_bytes() -> [u8; 16] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("random");
    b
}

async fn token_with_assertion(server: &Server, assertion: &str) -> (u16, Value) {
    post_form(
        &server.url("/token"),
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn private_key_jwt(d: Deployment) {
    let server = d.start().await;
    let key = es256_key();
    let kid = "pkjwt-key-1";
    let jwks_path = d.dir.path().join("pkjwt.jwks.json");
    std::fs::write(
        &jwks_path,
        json!({"keys": [public_jwk(&key, kid)]}).to_string(),
    )
    .expect("writing the JWKS");
    let path = jwks_path.display().to_string();
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "pkjwt",
        "--jwks",
        &path,
        "--grant-type",
        "client_credentials",
        "--scope",
        "appeals.read",
    ]);
    assert!(
        out.status.success(),
        "client add: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let aud = server.url("/token");
    // The running server reloads its clients every second: poll until it knows this one.
    let deadline = Instant::now() + Duration::from_secs(5);
    let accepted = loop {
        let assertion = sign_assertion(&key, kid, &assertion_claims(&aud, now() + 60));
        let (status, body) = token_with_assertion(&server, &assertion).await;
        if status == 200 {
            assert_eq!(body["scope"], "appeals.read");
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(
                jwt_part(body["access_token"].as_str().expect("access token"), 1)["client_id"],
                "pkjwt"
            );
            break assertion;
        }
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "before the reload: {body}"
        );
        assert!(
            Instant::now() < deadline,
            "the server did not pick up the new client within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Each assertion is accepted once.
    let (status, body) = token_with_assertion(&server, &accepted).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "replay: {body}"
    );

    let other_key = es256_key();
    let cases = [
        (
            "wrong audience",
            sign_assertion(
                &key,
                kid,
                &assertion_claims("https://elsewhere.example/token", now() + 60),
            ),
        ),
        (
            "expired",
            sign_assertion(&key, kid, &assertion_claims(&aud, now() - 30)),
        ),
        (
            "expires in 15 minutes",
            sign_assertion(&key, kid, &assertion_claims(&aud, now() + 900)),
        ),
        (
            "signed by another key",
            sign_assertion(&other_key, kid, &assertion_claims(&aud, now() + 60)),
        ),
    ];
    for (what, assertion) in &cases {
        let (status, body) = token_with_assertion(&server, assertion).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {body}"
        );
        assert!(body.get("access_token").is_none());
    }

    // A fresh, correct assertion still works: the refusals above were about the assertions.
    let fresh = sign_assertion(&key, kid, &assertion_claims(&aud, now() + 60));
    let (status, body) = token_with_assertion(&server, &fresh).await;
    assert_eq!(status, 200, "{body}");
}
both_backends!(private_key_jwt_client_auth, super::private_key_jwt);

// ---------------------------------------------------------------------------------------------
// 7. RP-Initiated Logout
// ---------------------------------------------------------------------------------------------

/// prompt=none in `browser`: Some(code) when the SSO session is alive, None on login_required.
async fn silent(server: &Server, browser: &Browser, client: &Rp) -> Option<String> {
    let p = authorization(client, &[], &[("prompt", "none")]);
    let back = immediate(server, browser, &p.url).await;
    assert_eq!(param(&back, "state").as_deref(), Some(p.state.as_str()));
    match param(&back, "error") {
        Some(e) => {
            assert_eq!(e, "login_required", "{back}");
            None
        }
        None => Some(param(&back, "code").expect("a code")),
    }
}

fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(String::from)
}

async fn logout(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // With an id_token_hint: at once, back to the registered URI with state.
    let browser = Browser::new();
    let online = code_flow(&server, &browser, &client, &[]).await;
    let offline = code_flow(&server, &browser, &client, &["offline_access"]).await;
    let rt_online = online.refresh.clone().expect("a refresh token");
    let rt_offline = offline.refresh.clone().expect("a refresh token");
    assert_eq!(
        jwt_part(&online.id_token, 1)["sid"],
        jwt_part(&offline.id_token, 1)["sid"],
        "both grants belong to one session"
    );
    assert!(
        silent(&server, &browser, &client).await.is_some(),
        "signed in before the logout"
    );

    let mut url = url::Url::parse(&server.url("/end_session")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &online.id_token)
        .append_pair("post_logout_redirect_uri", RP_LOGOUT)
        .append_pair("state", "bye-1");
    let res = browser.get(url.as_str()).await;
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(back.starts_with(&format!("{RP_LOGOUT}?")), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("bye-1"));

    assert_eq!(
        silent(&server, &browser, &client).await,
        None,
        "the session has ended"
    );
    assert_eq!(
        refresh(&client, &rt_online).await.err().as_deref(),
        Some("invalid_grant")
    );
    assert!(!introspect_active(&client, &online.access).await);
    let kept = refresh(&client, &rt_offline)
        .await
        .expect("offline_access survives the logout");
    assert!(kept.refresh_token().is_some());
    assert_eq!(audit_count(&d, "logout").await, 1);

    // Without a hint: a confirmation page first, and nothing ends until it is posted.
    let browser = Browser::new();
    code_flow(&server, &browser, &client, &[]).await;
    let mut url = url::Url::parse(&server.url("/end_session")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", "rp")
        .append_pair("post_logout_redirect_uri", RP_LOGOUT)
        .append_pair("state", "bye-2");
    let res = browser.get(url.as_str()).await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.expect("confirmation page");
    assert!(
        html.contains(r#"<form method="post" action="/end_session">"#),
        "{html}"
    );
    assert_eq!(hidden_value(&html, "confirm").as_deref(), Some("yes"));
    let csrf = hidden_value(&html, "csrf").expect("a csrf field");
    assert!(!csrf.is_empty());
    assert!(
        silent(&server, &browser, &client).await.is_some(),
        "the page alone does not log out"
    );
    assert_eq!(audit_count(&d, "logout").await, 1);

    // A forged post (wrong csrf) only shows the page again.
    let forged = [
        ("csrf", "forged"),
        ("confirm", "yes"),
        ("client_id", "rp"),
        ("post_logout_redirect_uri", RP_LOGOUT),
        ("state", "bye-2"),
    ];
    let res = browser
        .http
        .post(server.url("/end_session"))
        .form(&forged)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        silent(&server, &browser, &client).await.is_some(),
        "a forged confirmation does not log out"
    );

    let confirmed = [
        ("csrf", csrf.as_str()),
        ("confirm", "yes"),
        ("client_id", "rp"),
        ("post_logout_redirect_uri", RP_LOGOUT),
        ("state", "bye-2"),
    ];
    let res = browser
        .http
        .post(server.url("/end_session"))
        .form(&confirmed)
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(back.starts_with(&format!("{RP_LOGOUT}?")), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("bye-2"));
    assert_eq!(
        silent(&server, &browser, &client).await,
        None,
        "logged out after confirming"
    );
    assert_eq!(audit_count(&d, "logout").await, 2);
}
both_backends!(rp_initiated_logout, super::logout);

// ---------------------------------------------------------------------------------------------
// 8. Pages: language, security headers, cookie
// ---------------------------------------------------------------------------------------------

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn assert_page_headers(res: &reqwest::Response) {
    let csp = header(res, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "CSP: {csp:?}");
    assert_eq!(header(res, "x-frame-options"), "DENY");
    assert!(
        header(res, "cache-control").contains("no-store"),
        "{:?}",
        header(res, "cache-control")
    );
}

/// Starts a login in a fresh browser; returns the browser and the /login URL.
async fn login_url(
    server: &Server,
    client: &Rp,
    extra: &[(&str, &str)],
) -> (Browser, String, reqwest::Response) {
    let browser = Browser::new();
    let p = authorization(client, &[], extra);
    let res = browser.get(&p.url).await;
    assert_eq!(res.status().as_u16(), 303);
    let loc = location(&res);
    assert!(loc.starts_with("/login?tx="), "{loc}");
    (browser, server.url(&loc), res)
}

async fn pages(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // The session cookie set when the login starts.
    let (browser, url, res) = login_url(&server, &client, &[]).await;
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("vhod="))
        .unwrap_or_else(|| panic!("a session cookie in {cookies:?}"));
    let attrs: Vec<String> = session
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "{session}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{session}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{session}");

    // Russian by default.
    let res = browser.get(&url).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_page_headers(&res);
    let html = res.text().await.expect("page");
    assert!(html.contains(r#"<html lang="ru">"#), "{html}");
    assert!(html.contains("<h1>Вход</h1>"), "{html}");
    assert!(
        !html.contains("Sign in") && !html.contains("Уваход"),
        "{html}"
    );

    // Belarusian with ui_locales=be.
    let (browser, url, _) = login_url(&server, &client, &[("ui_locales", "be")]).await;
    let res = browser.get(&url).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_page_headers(&res);
    let html = res.text().await.expect("page");
    assert!(html.contains(r#"<html lang="be">"#), "{html}");
    assert!(html.contains("<h1>Уваход</h1>"), "{html}");

    // English by Accept-Language.
    let (browser, url, _) = login_url(&server, &client, &[]).await;
    let res = browser
        .http
        .get(&url)
        .header("accept-language", "en")
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    assert_page_headers(&res);
    let html = res.text().await.expect("page");
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    assert!(!html.contains("Вход"), "{html}");

    // Error pages carry the same headers.
    let res = browser
        .get(&server.url("/authorize?client_id=nobody"))
        .await;
    assert_eq!(res.status().as_u16(), 400);
    assert_page_headers(&res);
}
both_backends!(localised_pages_and_headers, super::pages);

// ---------------------------------------------------------------------------------------------
// 9. Discovery and JWKS
// ---------------------------------------------------------------------------------------------

async fn discovery(d: Deployment) {
    let server = d.start().await;
    let res = http()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(res.status().as_u16(), 200);
    let meta: Value = res.json().await.expect("JSON");
    assert_eq!(meta["issuer"], server.issuer.as_str());
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["response_types_supported"], json!(["code"]));

    // Every advertised endpoint exists (an unknown path does answer 404).
    let missing = http()
        .get(server.url("/no-such-endpoint"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    let endpoints = [
        ("authorization_endpoint", false),
        ("token_endpoint", true),
        ("userinfo_endpoint", false),
        ("jwks_uri", false),
        ("end_session_endpoint", false),
        ("introspection_endpoint", true),
        ("revocation_endpoint", true),
    ];
    let advertised = meta
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| k.ends_with("_endpoint") || k.as_str() == "jwks_uri")
        .count();
    assert_eq!(
        advertised,
        endpoints.len(),
        "every advertised endpoint is checked: {meta}"
    );
    for (name, post) in endpoints {
        let url = meta[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {meta}"));
        assert!(url.starts_with(&server.issuer), "{name}: {url}");
        let res = if post {
            http().post(url).form(&[("x", "y")]).send().await
        } else {
            http().get(url).send().await
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = res.status().as_u16();
        assert!(
            status != 404 && status != 405 && status < 500,
            "{name} {url} answered {status}"
        );
    }

    // JWKS: one key per algorithm, each with a kid and the right key type.
    let jwks: Value = http()
        .get(meta["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    for (alg, kty) in [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")] {
        let k = keys
            .iter()
            .find(|k| k["alg"] == alg)
            .unwrap_or_else(|| panic!("an {alg} key in {jwks}"));
        assert_eq!(k["kty"], kty, "{alg}");
        assert!(
            k["kid"].as_str().is_some_and(|kid| !kid.is_empty()),
            "{alg} kid"
        );
        assert!(k.get("d").is_none(), "no private parts in JWKS");
    }
    let kids: std::collections::HashSet<&str> =
        keys.iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids.len(), keys.len(), "kids are unique");
    let algs = meta["id_token_signing_alg_values_supported"]
        .as_array()
        .expect("algs");
    for alg in ["ES256", "RS256", "EdDSA"] {
        assert!(algs.iter().any(|a| a == alg), "{alg} in {algs:?}");
    }
}
both_backends!(discovery_and_jwks, super::discovery);
