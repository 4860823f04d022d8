//! The mock upstream (tests/common/upstream.rs) checked by a library relying party: as a
//! correct provider the openidconnect crate accepts it, and its knobs break what they say.
//! The federated-login tests trust it only because of these.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::upstream::{IssParam, MockUpstream, UPSTREAM_CLIENT_ID, UPSTREAM_SECRET, UPSTREAM_SUB};
use common::{http, location, param};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreProviderMetadata,
    CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SubjectIdentifier, TokenResponse,
};
use serde_json::{Value, json};

/// vhod's callback for an upstream called `mock` (nothing listens there: no redirect is
/// followed).
const CALLBACK: &str = "http://127.0.0.1:9/login/upstream/mock/callback";

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A relying party of the mock configured by discovery.
async fn relying_party(up: &MockUpstream, secret: &str) -> Rp {
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(up.issuer()).expect("issuer"), &http())
            .await
            .expect("discovery of the mock");
    CoreClient::from_provider_metadata(
        meta,
        ClientId::new(UPSTREAM_CLIENT_ID.into()),
        Some(ClientSecret::new(secret.into())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).expect("redirect"))
}

/// One trip to the authorization endpoint and back: what the relying party kept and what the
/// redirect carried.
struct Login {
    location: String,
    code: Option<String>,
    state: String,
    nonce: Nonce,
    verifier: String,
}

async fn login(client: &Rp) -> Login {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let res = http().get(url).send().await.expect("GET /authorize");
    assert_eq!(res.status().as_u16(), 302, "authorize answered {res:?}");
    let back = location(&res);
    assert!(back.starts_with(CALLBACK), "redirected to {back}");
    Login {
        code: param(&back, "code"),
        location: back,
        state: state.secret().clone(),
        nonce,
        verifier: verifier.secret().clone(),
    }
}

/// The code exchange; Err is the OAuth error the token endpoint answered.
async fn exchange(
    client: &Rp,
    code: &str,
    verifier: &str,
) -> Result<CoreTokenResponse, CoreErrorResponseType> {
    let res = client
        .exchange_code(AuthorizationCode::new(code.into()))
        .expect("a token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.into()))
        .request_async(&http())
        .await;
    match res {
        Ok(tokens) => Ok(tokens),
        Err(RequestTokenError::ServerResponse(e)) => Err(e.error().clone()),
        Err(other) => panic!("the token endpoint failed otherwise: {other:?}"),
    }
}

/// Login, exchange and ID token verification with the nonce: the verification's result.
async fn verified_login(client: &Rp) -> Result<String, ClaimsVerificationError> {
    let l = login(client).await;
    let tokens = exchange(client, l.code.as_deref().expect("a code"), &l.verifier)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    id_token
        .claims(&client.id_token_verifier(), &l.nonce)
        .map(|c| c.subject().to_string())
}

#[tokio::test]
async fn a_correct_provider_that_breaks_on_request() {
    let up = MockUpstream::start().await;
    up.set(|b| {
        b.userinfo_claims
            .insert("email".into(), json!("ivan@example.by"));
    });
    let client = relying_party(&up, UPSTREAM_SECRET).await;
    assert_eq!(up.discovery_fetches(), 1);
    assert_eq!(up.jwks_fetches(), 1, "discovery fetched the JWK Set");

    // The authorization request as the mock saw it, and the redirect back (RFC 9207 iss).
    let l = login(&client).await;
    let asked = &up.authorization_requests()[0];
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["redirect_uri"], CALLBACK);
    assert_eq!(asked["nonce"], *l.nonce.secret());
    assert_eq!(
        param(&l.location, "state").as_deref(),
        Some(l.state.as_str())
    );
    assert_eq!(param(&l.location, "iss"), Some(up.issuer()));
    let code = l.code.clone().expect("a code");

    // client_secret_basic, PKCE, and an ID token the library accepts with the nonce.
    let tokens = exchange(&client, &code, &l.verifier)
        .await
        .expect("code exchange");
    let sent = &up.token_requests()[0];
    assert_eq!(
        sent.basic_credentials(),
        Some((UPSTREAM_CLIENT_ID.into(), UPSTREAM_SECRET.into()))
    );
    assert_eq!(sent.form["code_verifier"], l.verifier);
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &l.nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.subject().as_str(), UPSTREAM_SUB);
    assert_eq!(claims.issuer().as_str(), up.issuer());
    assert!(claims.auth_time().is_some());
    let alg = id_token.signing_alg().expect("alg");
    let key = id_token.signing_key(&verifier).expect("key");
    let at_hash = AccessTokenHash::from_token(tokens.access_token(), alg, key).expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&at_hash));

    // Userinfo with the access token, the subject checked by the library.
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(SubjectIdentifier::new(UPSTREAM_SUB.into())),
        )
        .expect("a userinfo endpoint")
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some("ivan@example.by"));

    // A code is good once.
    assert_eq!(
        exchange(&client, &code, &l.verifier).await.err(),
        Some(CoreErrorResponseType::InvalidGrant)
    );

    // A flipped bit of the signature: the library refuses the ID token.
    up.set(|b| b.bad_signature = true);
    assert!(
        matches!(
            verified_login(&client).await,
            Err(ClaimsVerificationError::SignatureVerification(_))
        ),
        "a corrupted signature verified"
    );
    up.reset();

    // A verifier that is not the challenge's: invalid_grant.
    let l = login(&client).await;
    let (_, other) = PkceCodeChallenge::new_random_sha256();
    assert_eq!(
        exchange(&client, l.code.as_deref().expect("a code"), other.secret())
            .await
            .err(),
        Some(CoreErrorResponseType::InvalidGrant)
    );
}

#[tokio::test]
async fn the_other_knobs_break_what_they_say() {
    let up = MockUpstream::start().await;
    let client = relying_party(&up, UPSTREAM_SECRET).await;

    // Discovery that names another issuer: the library refuses it.
    up.set(|b| b.metadata_issuer = Some("https://elsewhere.example".into()));
    let lie =
        CoreProviderMetadata::discover_async(IssuerUrl::new(up.issuer()).expect("issuer"), &http())
            .await;
    assert!(lie.is_err(), "a lying discovery document was accepted");
    up.reset();

    // The redirect back without iss, with another state, or with an error.
    up.set(|b| {
        b.iss_param = IssParam::Absent;
        b.state_override = Some("forged".into());
    });
    let l = login(&client).await;
    assert_eq!(param(&l.location, "iss"), None);
    assert_eq!(param(&l.location, "state").as_deref(), Some("forged"));
    up.set(|b| b.authorize_error = Some("access_denied".into()));
    let l = login(&client).await;
    assert_eq!(
        param(&l.location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(l.code, None);
    up.reset();

    // A wrong secret is invalid_client; client_secret_post with the right one works.
    let wrong = relying_party(&up, "not-the-secret").await;
    let l = login(&wrong).await;
    assert_eq!(
        exchange(&wrong, l.code.as_deref().expect("a code"), &l.verifier)
            .await
            .err(),
        Some(CoreErrorResponseType::InvalidClient)
    );
    let post = relying_party(&up, UPSTREAM_SECRET)
        .await
        .set_auth_type(AuthType::RequestBody);
    let l = login(&post).await;
    exchange(&post, l.code.as_deref().expect("a code"), &l.verifier)
        .await
        .expect("client_secret_post");
    let sent = up.token_requests().pop().expect("a token request");
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.form["client_secret"], UPSTREAM_SECRET);

    // Expired, wrong nonce, unpublished key, unknown kid: each refused by the library.
    up.set(|b| b.exp_offset = -60);
    assert!(matches!(
        verified_login(&client).await,
        Err(ClaimsVerificationError::Expired(_))
    ));
    up.reset();
    up.set(|b| b.nonce_override = Some("another".into()));
    assert!(matches!(
        verified_login(&client).await,
        Err(ClaimsVerificationError::InvalidNonce(_))
    ));
    up.reset();
    up.set(|b| b.sign_with_unpublished_key = true);
    assert!(matches!(
        verified_login(&client).await,
        Err(ClaimsVerificationError::SignatureVerification(_))
    ));
    up.reset();
    up.set(|b| b.kid_override = Some("nobody".into()));
    assert!(verified_login(&client).await.is_err(), "an unknown kid");
    up.reset();
    // A claim given as null is taken away.
    up.set(|b| {
        b.id_token_claims.insert("nonce".into(), Value::Null);
    });
    assert!(matches!(
        verified_login(&client).await,
        Err(ClaimsVerificationError::InvalidNonce(_))
    ));
    up.reset();

    // After a rotation only the new key is published; a logout token verifies under it.
    let old = up.kid();
    up.rotate_key();
    let keys: Value = http()
        .get(up.url("/jwks"))
        .send()
        .await
        .expect("GET /jwks")
        .json()
        .await
        .expect("a JWK Set");
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1));
    let jwk = &keys["keys"][0];
    assert_eq!(jwk["kid"], up.kid());
    assert_ne!(up.kid(), old);
    let token = up.logout_token("up-sub-1", Some("sid-1"), UPSTREAM_CLIENT_ID);
    let parts: Vec<&str> = token.split('.').collect();
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).expect("base64url");
    let header: Value = serde_json::from_slice(&decode(parts[0])).expect("header");
    let claims: Value = serde_json::from_slice(&decode(parts[1])).expect("claims");
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["kid"], up.kid());
    assert_eq!(claims["iss"], up.issuer());
    assert_eq!(claims["sid"], "sid-1");
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    let mut point = vec![4u8];
    point.extend(decode(jwk["x"].as_str().expect("x")));
    point.extend(decode(jwk["y"].as_str().expect("y")));
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &decode(parts[2]),
        )
        .expect("the logout token verifies under the published key");

    // A broken client is refused at once, without a redirect.
    let res = http()
        .get(format!(
            "{}/authorize?response_type=code&client_id=vhod&redirect_uri={CALLBACK}&code_challenge=x&code_challenge_method=plain",
            up.issuer()
        ))
        .send()
        .await
        .expect("GET /authorize");
    assert_eq!(res.status().as_u16(), 400);
}
