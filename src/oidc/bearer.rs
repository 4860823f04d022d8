//! Validation of our own access tokens (userinfo, introspection): signature by a published key,
//! `typ` at+jwt, issuer, expiry, and not revoked (individually or with its grant).

use axum::http::{HeaderMap, header};

use super::error::OAuthError;
use crate::server::App;
use crate::tokens::claims::AccessTokenClaims;
use crate::tokens::jws;
use crate::web::params::Params;

/// The bearer token of a request: Authorization header (RFC 6750 §2.1) or, on a form POST,
/// the `access_token` body parameter (§2.2) — never both.
pub fn extract(headers: &HeaderMap, params: Option<&Params>) -> Result<String, OAuthError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            let (scheme, token) = v
                .split_once(' ')
                .ok_or_else(|| OAuthError::invalid_request("malformed Authorization header"))?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(OAuthError::invalid_request(
                    "use the Bearer authorization scheme",
                ));
            }
            Some(token.trim().to_string())
        }
        None => None,
    };
    let from_body = params.and_then(|p| p.get("access_token")).map(String::from);
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the access token once")),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(OAuthError::invalid_token("an access token is required")),
    }
}

pub async fn validate(app: &App, token: &str) -> Result<AccessTokenClaims, OAuthError> {
    let keys = app.keys.current();
    let (header, claims): (_, AccessTokenClaims) =
        jws::verify(token, |h| keys.verifier(h.kid.as_deref()?))
            .map_err(|e| OAuthError::invalid_token(e.to_string()))?;
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(OAuthError::invalid_token("not an access token"));
    }
    if claims.iss != app.settings.issuer {
        return Err(OAuthError::invalid_token("token from another issuer"));
    }
    if claims.exp <= app.clock.now() {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    if app.db.grants().is_access_token_revoked(&claims.jti).await? {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    if let Some(grant) = claims.grant_id()
        && app.db.grants().is_revoked(grant).await?
    {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    Ok(claims)
}
