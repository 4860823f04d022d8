//! The code flow end to end, driven by the openidconnect crate as relying party.

mod common;

use common::*;
use openidconnect::core::{CoreIdTokenClaims, CoreUserInfoClaims};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, Nonce, OAuth2TokenResponse, PkceCodeVerifier,
    RefreshToken, TokenIntrospectionResponse, TokenResponse,
};

struct Signed {
    access: AccessToken,
    refresh: Option<RefreshToken>,
    claims: CoreIdTokenClaims,
    id_token: String,
}

/// Runs the whole flow for `client` in `browser` and returns the verified result.
async fn code_flow(server: &Server, browser: &Browser, client: &Rp, scopes: &[&str]) -> Signed {
    let p = authorization(client, scopes, &[]);
    let back = browser.sign_in(server, &p.url, USER, PASSWORD).await;
    let code = code_from(server, &back, &p);
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
        .expect("ID token verifies")
        .clone();
    // at_hash binds the access token to the ID token.
    let alg = id_token.signing_alg().expect("alg");
    let key = id_token.signing_key(&verifier).expect("key");
    let expected = AccessTokenHash::from_token(tokens.access_token(), alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected));
    Signed {
        access: tokens.access_token().clone(),
        refresh: tokens.refresh_token().cloned(),
        claims,
        id_token: id_token.to_string(),
    }
}

async fn full_flow(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let s = code_flow(&server, &browser, &client, &["profile", "email", "phone"]).await;

    let c = &s.claims;
    assert_eq!(c.issuer().as_str(), server.issuer);
    assert_eq!(c.auth_context_ref().map(|a| a.as_str()), Some("low"));
    assert_eq!(
        c.auth_method_refs()
            .map(|v| v.iter().map(|a| a.as_str().to_string()).collect::<Vec<_>>()),
        Some(vec!["pwd".to_string()])
    );
    assert!(c.auth_time().is_some());
    let sub = c.subject().as_str().to_string();
    assert_ne!(sub, USER, "sub is a random identifier, not the login");
    assert_eq!(sub.len(), 22);
    assert_eq!(c.preferred_username().map(|u| u.as_str()), Some(USER));
    let raw: serde_json::Value =
        serde_json::from_slice(&base64_decode(s.id_token.split('.').nth(1).unwrap())).unwrap();
    assert!(
        raw["sid"].as_str().is_some_and(|v| !v.is_empty()),
        "sid claim"
    );

    // UserInfo with the access token: same subject, claims of the granted scopes.
    let info: CoreUserInfoClaims = client
        .user_info(s.access.clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.phone_number().map(|p| p.as_str()), Some(PHONE));
    assert_eq!(info.email().map(|e| e.as_str()), Some("ivan@example.by"));

    // The access token is an RFC 9068 JWT.
    let header: serde_json::Value =
        serde_json::from_slice(&base64_decode(s.access.secret().split('.').next().unwrap()))
            .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    let at: serde_json::Value =
        serde_json::from_slice(&base64_decode(s.access.secret().split('.').nth(1).unwrap()))
            .unwrap();
    assert_eq!(at["client_id"], "rp");
    assert_eq!(at["sub"], sub.as_str());
    assert!(at["jti"].as_str().is_some());
    assert!(at["scope"].as_str().unwrap().contains("openid"));

    // Introspection by a confidential client.
    let intro = client
        .introspect(&s.access)
        .request_async(&http())
        .await
        .expect("introspection");
    assert!(intro.active());
    assert_eq!(intro.sub(), Some(sub.as_str()));

    // Every issuance and the sign-in are in the audit trail.
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.outcome == "success")
            .await,
        1
    );
    // token_issued is written by the batching writer: give it a moment.
    let mut issued = 0;
    for _ in 0..50 {
        issued = d.count_events(|e| e.kind == "token_issued").await;
        if issued == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(issued, 1);
}
both_backends!(full_code_flow, super::full_flow);

pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

async fn refresh_rotation(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let s = code_flow(&server, &Browser::new(), &client, &[]).await;
    let rt1 = s
        .refresh
        .expect("a refresh token for a client registered with the grant");

    let second = client
        .exchange_refresh_token(&rt1)
        .expect("token endpoint")
        .request_async(&http())
        .await
        .expect("first refresh");
    let rt2 = second.refresh_token().expect("rotated").clone();
    assert_ne!(rt1.secret(), rt2.secret(), "rotation on every use");
    let refreshed_id = second.id_token().expect("refresh returns an ID token");
    let claims = refreshed_id
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("refreshed ID token verifies");
    assert_eq!(claims.subject(), s.claims.subject());

    // Reusing the old token fails, and revokes the whole family.
    let reuse = client
        .exchange_refresh_token(&rt1)
        .expect("endpoint")
        .request_async(&http())
        .await;
    assert!(reuse.is_err(), "a used refresh token must not work twice");
    let after = client
        .exchange_refresh_token(&rt2)
        .expect("endpoint")
        .request_async(&http())
        .await;
    assert!(after.is_err(), "the successor dies with the family");
    let intro = client
        .introspect(second.access_token())
        .request_async(&http())
        .await
        .expect("introspection");
    assert!(
        !intro.active(),
        "access tokens of a revoked family are inactive"
    );
    assert_eq!(d.count_events(|e| e.kind == "refresh_reuse").await, 1);
}
both_backends!(refresh_rotation_and_reuse, super::refresh_rotation);

/// Back-Channel Logout 1.0: logging out tells the clients of the session, server to server.
async fn backchannel_logout(d: Deployment) {
    use axum::routing::post;
    use std::sync::{Arc, Mutex};

    // The relying party's back-channel endpoint: records what it receives.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/bcl",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let bcl_uri = format!("http://127.0.0.1:{port}/bcl");
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "bcl",
        "--secret",
        "bcl-secret-0123456789abcdefghij",
        "--redirect-uri",
        "http://127.0.0.1:9/bcl-cb",
        "--backchannel-logout-uri",
        &bcl_uri,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = d.start().await;
    let client = rp(
        &server,
        "bcl",
        Some("bcl-secret-0123456789abcdefghij"),
        "http://127.0.0.1:9/bcl-cb",
    )
    .await;
    let browser = Browser::new();
    let s = code_flow(&server, &browser, &client, &[]).await;
    let id_claims: serde_json::Value =
        serde_json::from_slice(&base64_decode(s.id_token.split('.').nth(1).unwrap())).unwrap();

    let res = browser
        .get(&format!(
            "{}?id_token_hint={}",
            server.url("/end_session"),
            s.id_token
        ))
        .await;
    assert_eq!(res.status().as_u16(), 200, "logged-out page");

    let mut body = None;
    for _ in 0..100 {
        if let Some(b) = received.lock().unwrap().first().cloned() {
            body = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = body.expect("the back-channel logout arrived");
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("logout_token parameter");

    // Verify it against the published keys, as the relying party would.
    let jwks: vhod::tokens::jwk::JwkSet = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verifiers = jwks.verifiers().unwrap();
    let (header, claims): (_, serde_json::Value) =
        vhod::tokens::jws::verify(&token, |h| verifiers.iter().find(|v| v.kid == h.kid))
            .expect("logout token signature");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert_eq!(claims["aud"], "bcl");
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(
        claims.get("nonce").is_none(),
        "a logout token never has a nonce"
    );
}
both_backends!(backchannel_logout_is_delivered, super::backchannel_logout);

/// Browser-based clients may call the token endpoint cross-origin, but only from the origin of
/// a registered redirect URI.
async fn cors(d: Deployment) {
    let server = d.start().await;
    let preflight = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, server.url("/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight("http://127.0.0.1:9").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://127.0.0.1:9")
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    assert!(
        evil.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}
both_backends!(cors_only_for_registered_origins, super::cors);
