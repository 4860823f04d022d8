//! Client authentication at the token, introspection and revocation endpoints: one function for
//! every method (client_secret_basic, client_secret_post, private_key_jwt, none). A client must
//! use the method it was registered with, and exactly one method per request.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::error::OAuthError;
use crate::identity::client::{Client, ClientAuth};
use crate::server::App;
use crate::tokens::jws;
use crate::web::params::Params;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far ahead a client assertion may expire; longer-lived assertions are refused.
const MAX_ASSERTION_LIFETIME: i64 = 600;
/// How far a client's clock may run ahead of ours: an assertion issued (`iat`) or valid from
/// (`nbf`) later than this is refused, as it would be minted now for use later.
pub const ASSERTION_CLOCK_SKEW: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SecretBasic,
    SecretPost,
    PrivateKeyJwt,
    None,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::SecretBasic => "client_secret_basic",
            Method::SecretPost => "client_secret_post",
            Method::PrivateKeyJwt => "private_key_jwt",
            Method::None => "none",
        }
    }
}

pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    pub method: Method,
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic authorization header");
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(OAuthError::invalid_client(
            "only Basic authorization is accepted here",
        ));
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

/// The assertion's times against `now`: not expired, not too long-lived, not from the future.
fn check_times(c: &AssertionClaims, now: i64) -> Result<(), &'static str> {
    if c.exp <= now {
        return Err("client assertion has expired");
    }
    if c.exp - now > MAX_ASSERTION_LIFETIME {
        return Err("client assertion lives too long (max 10 minutes)");
    }
    if c.iat.is_some_and(|t| t > now + ASSERTION_CLOCK_SKEW) {
        return Err("client assertion is issued in the future (iat)");
    }
    if c.nbf.is_some_and(|t| t > now + ASSERTION_CLOCK_SKEW) {
        return Err("client assertion is not valid yet (nbf)");
    }
    Ok(())
}

fn audience_ok(aud: &serde_json::Value, accepted: &[String]) -> bool {
    match aud {
        serde_json::Value::String(s) => accepted.contains(s),
        serde_json::Value::Array(a) => a
            .iter()
            .any(|v| v.as_str().is_some_and(|s| accepted.iter().any(|x| x == s))),
        _ => false,
    }
}

async fn verify_assertion(
    app: &App,
    client: &Client,
    assertion: &str,
    endpoint: &str,
) -> Result<(), OAuthError> {
    let ClientAuth::PrivateKeyJwt { keys } = &client.auth else {
        return Err(OAuthError::invalid_client(
            "this client is not registered for private_key_jwt",
        ));
    };
    let (_, claims): (_, AssertionClaims) = jws::verify(assertion, |h| {
        keys.iter().find(|k| {
            k.alg.as_str() == h.alg && (h.kid.is_none() || k.kid.is_none() || k.kid == h.kid)
        })
    })
    .map_err(|e| OAuthError::invalid_client(format!("client assertion: {e}")))?;
    let id = client.id.as_str();
    if claims.iss != id || claims.sub != id {
        return Err(OAuthError::invalid_client(
            "client assertion iss and sub must be the client_id",
        ));
    }
    let accepted = [
        app.settings.issuer.clone(),
        app.settings.endpoint("/token"),
        app.settings.endpoint(endpoint),
    ];
    if !audience_ok(&claims.aud, &accepted) {
        return Err(OAuthError::invalid_client(
            "client assertion audience is not this provider",
        ));
    }
    let now = app.clock.now();
    check_times(&claims, now).map_err(OAuthError::invalid_client)?;
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(OAuthError::invalid_client("client assertion needs a jti"));
    }
    // Each assertion is accepted once (RFC 7523 §3 item 7), remembered until it expires.
    let key = crate::store::ephemeral::keys::client_assertion(id, &claims.jti);
    let ttl = Duration::from_secs((claims.exp - now + 60) as u64);
    if !app.eph.put_if_absent(&key, b"1", ttl).await? {
        return Err(OAuthError::invalid_client(
            "client assertion was already used",
        ));
    }
    Ok(())
}

pub async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    params: &Params,
    endpoint: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = basic_credentials(headers)?;
    let post_secret = params.get("client_secret");
    let assertion_type = params.get("client_assertion_type");
    let assertion = params.get("client_assertion");
    let used = [
        basic.is_some(),
        post_secret.is_some(),
        assertion.is_some() || assertion_type.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if used > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let (claimed_id, method) = if let Some((id, _)) = &basic {
        (id.clone(), Method::SecretBasic)
    } else if post_secret.is_some() {
        (
            params
                .require("client_id")
                .map_err(|_| OAuthError::invalid_client("client_id is required"))?
                .to_string(),
            Method::SecretPost,
        )
    } else if assertion.is_some() || assertion_type.is_some() {
        if assertion_type != Some(JWT_BEARER) || assertion.is_none() {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        // The client is named by the assertion's sub (and client_id, when sent, must agree).
        let sub = jws::peek_header(assertion.unwrap_or(""))
            .ok()
            .and(unverified_sub(assertion.unwrap_or("")))
            .ok_or_else(|| OAuthError::invalid_client("client assertion is malformed"))?;
        (sub, Method::PrivateKeyJwt)
    } else {
        let id = params
            .get("client_id")
            .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
        (id.to_string(), Method::None)
    };
    if let Some(id) = params.get("client_id")
        && id != claimed_id
    {
        return Err(OAuthError::invalid_client(
            "client_id does not match the authenticated client",
        ));
    }
    let client = app
        .clients
        .get(&claimed_id)
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
    match (method, &client.auth) {
        (Method::SecretBasic, ClientAuth::Secret { .. }) => {
            let secret = basic.map(|b| b.1).unwrap_or_default();
            if !client.secret_matches(&secret) {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
        }
        (Method::SecretPost, ClientAuth::Secret { .. }) => {
            if !client.secret_matches(post_secret.unwrap_or("")) {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
        }
        (Method::PrivateKeyJwt, ClientAuth::PrivateKeyJwt { .. }) => {
            verify_assertion(app, &client, assertion.unwrap_or(""), endpoint).await?;
        }
        (Method::None, ClientAuth::None) => {}
        _ => {
            return Err(OAuthError::invalid_client(format!(
                "this client must authenticate with {}",
                client.auth_method()
            )));
        }
    }
    Ok(AuthenticatedClient { client, method })
}

/// The `sub` of an assertion before verification: only to find which client's keys to verify with.
fn unverified_sub(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = crate::secrets::b64url_decode(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let enc = STANDARD.encode("my%3Aclient:s%2Bcr+t");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my:client".to_string(), "s+cr t".to_string()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).is_err());
    }

    #[test]
    fn assertion_times_allow_a_small_skew_only() {
        let now = 1_000_000;
        let c = |exp: i64, iat: Option<i64>, nbf: Option<i64>| AssertionClaims {
            iss: "c".into(),
            sub: "c".into(),
            aud: serde_json::json!("x"),
            exp,
            iat,
            nbf,
            jti: "j".into(),
        };
        assert!(check_times(&c(now + 60, Some(now), None), now).is_ok());
        assert!(check_times(&c(now + 60, None, None), now).is_ok());
        let skewed = now + ASSERTION_CLOCK_SKEW;
        assert!(check_times(&c(now + 120, Some(skewed), Some(skewed)), now).is_ok());
        assert!(check_times(&c(now + 120, Some(skewed + 1), None), now).is_err());
        assert!(check_times(&c(now + 120, None, Some(skewed + 1)), now).is_err());
        assert!(check_times(&c(now, None, None), now).is_err(), "expired");
        assert!(
            check_times(&c(now + 601, None, None), now).is_err(),
            "too long"
        );
    }

    #[test]
    fn audience_may_be_string_or_list() {
        let ok = vec!["https://id.example".to_string()];
        assert!(audience_ok(&serde_json::json!("https://id.example"), &ok));
        assert!(audience_ok(
            &serde_json::json!(["x", "https://id.example"]),
            &ok
        ));
        assert!(!audience_ok(&serde_json::json!(["x"]), &ok));
        assert!(!audience_ok(&serde_json::json!(1), &ok));
    }
}
