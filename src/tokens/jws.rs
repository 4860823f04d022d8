//! Compact JWS (RFC 7515) over ring's primitives.
//!
//! Hand-written on purpose: the serialisation is three base64url parts and a dot, while the JWT
//! crates re-parse and re-validate the PKCS#8 key on every signature, which would halve ES256
//! throughput on the token endpoint. Verification pins the algorithm to the key (no `alg`
//! confusion, no `none`), refuses `crit`, and caps the size before any decoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::jwk::Verifier;
use super::keys::SigningKey;
use crate::secrets::{b64url, b64url_decode};

pub const MAX_JWS_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signing key is unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
}

pub fn sign<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> Option<String> {
    let header = Header {
        alg: key.alg.as_str().to_string(),
        kid: Some(key.kid.clone()),
        typ: Some(typ.to_string()),
        crit: None,
    };
    // Serialising our own plain structs cannot fail.
    let h = serde_json::to_vec(&header).unwrap_or_default();
    let c = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = String::with_capacity(h.len() * 4 / 3 + c.len() * 4 / 3 + 100);
    out.push_str(&b64url(&h));
    out.push('.');
    out.push_str(&b64url(&c));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&b64url(&sig));
    Some(out)
}

/// Splits and decodes the header without verifying: used to pick the key.
pub fn peek_header(token: &str) -> Result<Header, JwsError> {
    if token.len() > MAX_JWS_LEN {
        return Err(JwsError::Malformed);
    }
    let h = token.split('.').next().ok_or(JwsError::Malformed)?;
    let bytes = b64url_decode(h).ok_or(JwsError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwsError::Malformed)
}

/// Verifies the signature with the key `find` selects and decodes the claims.
pub fn verify<'a, T: DeserializeOwned>(
    token: &str,
    find: impl FnOnce(&Header) -> Option<&'a Verifier>,
) -> Result<(Header, T), JwsError> {
    if token.len() > MAX_JWS_LEN {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header: Header = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwsError::Malformed)?;
    if header.crit.is_some() {
        return Err(JwsError::Malformed);
    }
    let verifier = find(&header).ok_or(JwsError::UnknownKey)?;
    if verifier.alg.as_str() != header.alg {
        return Err(JwsError::BadSignature);
    }
    let sig = b64url_decode(s).ok_or(JwsError::Malformed)?;
    let signed_len = h.len() + 1 + p.len();
    if !verifier.verify(&token.as_bytes()[..signed_len], &sig) {
        return Err(JwsError::BadSignature);
    }
    let claims = b64url_decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwsError::Malformed)?;
    Ok((header, claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::keys::{KeyStore, SigningAlg};

    #[test]
    fn round_trip_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 60).unwrap();
        let set = store.current();
        for alg in SigningAlg::ALL {
            let key = set.signer(alg).unwrap();
            let t = sign(key, "JWT", &serde_json::json!({"sub": "a"})).unwrap();
            let (h, c): (Header, serde_json::Value) =
                verify(&t, |h| set.verifier(h.kid.as_deref()?)).unwrap();
            assert_eq!(h.alg, alg.as_str());
            assert_eq!(c["sub"], "a");

            // Claims swapped under the same signature.
            let mut parts: Vec<&str> = t.split('.').collect();
            let forged = b64url(br#"{"sub":"b"}"#);
            parts[1] = &forged;
            let forged = parts.join(".");
            assert_eq!(
                verify::<serde_json::Value>(&forged, |h| set.verifier(h.kid.as_deref()?))
                    .unwrap_err(),
                JwsError::BadSignature
            );
        }
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 60).unwrap();
        let set = store.current();
        let key = set.signer(SigningAlg::Es256).unwrap();
        let none = format!(
            "{}.{}.",
            b64url(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid).as_bytes()),
            b64url(br#"{"sub":"a"}"#)
        );
        assert!(verify::<serde_json::Value>(&none, |h| set.verifier(h.kid.as_deref()?)).is_err());
        for junk in ["", "a", "a.b", "a.b.c.d", "....", "\u{0}.\u{1}.\u{2}"] {
            assert!(
                verify::<serde_json::Value>(junk, |h| set.verifier(h.kid.as_deref()?)).is_err()
            );
        }
    }
}
