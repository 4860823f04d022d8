//! ID tokens presented back to us as hints (authorize, end_session): signed by one of our keys
//! and issued by us; expiry is not checked because a hint may legitimately be old.

use crate::tokens::claims::IdTokenClaims;
use crate::tokens::jws::{self, JwsError};
use crate::tokens::keys::KeyStore;

/// `issuer` is ours: a token of another issuer is no hint.
pub fn verify(keys: &KeyStore, issuer: &str, token: &str) -> Result<IdTokenClaims, JwsError> {
    let keys = keys.current();
    let (header, claims): (_, IdTokenClaims) =
        jws::verify(token, |h| keys.verifier(h.kid.as_deref()?))?;
    if header.typ.as_deref().is_some_and(|t| t != "JWT") || claims.iss != issuer {
        return Err(JwsError::Malformed);
    }
    Ok(claims)
}
