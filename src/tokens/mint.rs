//! The one place that builds token claims and signs them.

use super::claims::{AccessTokenClaims, IdTokenClaims};
use super::jws;
use super::keys::KeyStore;
use super::keys::SigningAlg;
use crate::authn::AuthFacts;
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::client::Client;
use crate::secrets;

/// What minting needs: the signing keys, the issuer and lifetimes, the time.
#[derive(Clone, Copy)]
pub struct Minter<'a> {
    pub keys: &'a KeyStore,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
}

/// Signs with the active key of `alg`.
fn sign<C: serde::Serialize>(
    m: &Minter<'_>,
    alg: SigningAlg,
    typ: &str,
    claims: &C,
) -> Result<String, MintError> {
    let keys = m.keys.current();
    let key = keys.signer(alg).ok_or(MintError::NoKey)?;
    jws::sign(key, typ, claims).ok_or(MintError::Signing)
}

pub struct Minted {
    pub token: String,
    pub jti: String,
    pub expires_in: u64,
}

/// Who and what an access token is for.
pub struct AccessSpec<'a> {
    pub client: &'a Client,
    /// The person's `sub`, or the client's id for client_credentials.
    pub sub: &'a str,
    pub scope: &'a str,
    /// The grant (authorization) behind a person's token; its id prefixes the jti.
    pub grant_id: Option<&'a str>,
    pub facts: Option<&'a AuthFacts>,
    pub sid: Option<&'a str>,
    /// The `roles` and `org` claims, when their scopes were granted.
    pub roles: Option<serde_json::Value>,
    pub org: Option<serde_json::Value>,
    /// When the `legal_entity` scope was granted.
    pub legal_entity: Option<crate::authn::LegalEntity>,
}

pub fn access_token(m: &Minter<'_>, spec: AccessSpec<'_>) -> Result<Minted, MintError> {
    let s: &Settings = m.settings;
    let now = m.clock.now();
    let jti = match spec.grant_id {
        Some(g) => format!("{g}.{}", secrets::random_id()),
        None => secrets::random_id(),
    };
    let claims = AccessTokenClaims {
        iss: s.issuer.clone(),
        sub: spec.sub.to_string(),
        aud: spec.client.id.as_str().to_string(),
        exp: now + s.access_token_ttl as i64,
        iat: now,
        jti: jti.clone(),
        client_id: spec.client.id.as_str().to_string(),
        scope: spec.scope.to_string(),
        auth_time: spec.facts.map(|f| f.auth_time),
        acr: spec.facts.map(|f| f.acr.as_str().to_string()),
        amr: spec.facts.map(|f| f.amr.clone()),
        sid: spec.sid.map(String::from),
        roles: spec.roles,
        org: spec.org,
        legal_entity: spec.legal_entity,
    };
    Ok(Minted {
        token: sign(m, spec.client.token_alg, "at+jwt", &claims)?,
        jti,
        expires_in: s.access_token_ttl,
    })
}

pub struct IdSpec<'a> {
    pub client: &'a Client,
    pub sub: &'a str,
    pub facts: &'a AuthFacts,
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// The claims released by the granted scopes.
    pub user: serde_json::Map<String, serde_json::Value>,
    /// When the `legal_entity` scope was granted.
    pub legal_entity: Option<crate::authn::LegalEntity>,
    pub access_token: Option<&'a str>,
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash of the
/// signing algorithm: SHA-256 for ES256 and RS256, SHA-512 for Ed25519 (as certified RPs expect).
fn at_hash(alg: SigningAlg, token: &str) -> String {
    match alg {
        SigningAlg::Es256 | SigningAlg::Rs256 => {
            secrets::b64url(&secrets::sha256(token.as_bytes())[..16])
        }
        SigningAlg::EdDsa => {
            let d = ring::digest::digest(&ring::digest::SHA512, token.as_bytes());
            secrets::b64url(&d.as_ref()[..32])
        }
    }
}

pub fn id_token(m: &Minter<'_>, spec: IdSpec<'_>) -> Result<String, MintError> {
    let s = &m.settings;
    let now = m.clock.now();
    let claims = IdTokenClaims {
        iss: s.issuer.clone(),
        sub: spec.sub.to_string(),
        aud: spec.client.id.as_str().to_string(),
        azp: spec.client.id.as_str().to_string(),
        exp: now + s.id_token_ttl as i64,
        iat: now,
        auth_time: spec.facts.auth_time,
        nonce: spec.nonce.map(String::from),
        acr: spec.facts.acr.as_str().to_string(),
        amr: spec.facts.amr.clone(),
        sid: spec.sid.map(String::from),
        at_hash: spec.access_token.map(|t| at_hash(spec.client.token_alg, t)),
        legal_entity: spec.legal_entity,
        user: spec.user,
    };
    sign(m, spec.client.token_alg, "JWT", &claims)
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no active signing key for the client's algorithm")]
    NoKey,
    #[error("signing failed (random number generator)")]
    Signing,
}

/// A logout token for `client` about session `sid` of `sub` (Back-Channel Logout 1.0 §2.4):
/// no nonce, typ logout+jwt, short-lived.
pub fn logout_token(
    m: &Minter<'_>,
    client: &Client,
    sub: &str,
    sid: &str,
) -> Result<String, MintError> {
    use super::claims::{BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
    let now = m.clock.now();
    let claims = LogoutTokenClaims {
        iss: m.settings.issuer.clone(),
        aud: client.id.as_str().to_string(),
        iat: now,
        exp: now + 120,
        jti: secrets::random_id(),
        sub: sub.to_string(),
        sid: sid.to_string(),
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    };
    sign(m, client.token_alg, "logout+jwt", &claims)
}
