//! ID tokens presented back to us as hints (authorize, end_session): signed by one of our keys
//! and issued by us; expiry is not checked because a hint may legitimately be old.

use crate::server::App;
use crate::tokens::claims::IdTokenClaims;
use crate::tokens::jws::{self, JwsError};

pub fn verify(app: &App, token: &str) -> Result<IdTokenClaims, JwsError> {
    let keys = app.keys.current();
    let (header, claims): (_, IdTokenClaims) =
        jws::verify(token, |h| keys.verifier(h.kid.as_deref()?))?;
    if header.typ.as_deref().is_some_and(|t| t != "JWT") || claims.iss != app.settings.issuer {
        return Err(JwsError::Malformed);
    }
    Ok(claims)
}
