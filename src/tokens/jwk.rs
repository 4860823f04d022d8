//! Public JSON Web Keys (RFC 7517/7518/8037): what JWKS publishes for our keys and what clients
//! register for private_key_jwt. A JWK becomes a `Verifier` over ring's primitives.
//!
//! The conversion is a few lines per key type; the JOSE crates that do it either bring a second
//! crypto stack or re-parse keys on every signature (see `jws`).

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::keys::SigningAlg;
use crate::secrets::{b64url, b64url_decode, sha256};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct JwkSet {
    pub keys: Vec<PublicJwk>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkError {
    #[error("unsupported key type or curve")]
    Unsupported,
    #[error("malformed key parameters")]
    Malformed,
}

/// A public key ready to verify signatures of exactly one algorithm.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub kid: Option<String>,
    pub alg: SigningAlg,
    key: VerifierKey,
}

#[derive(Debug, Clone)]
enum VerifierKey {
    Point(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn part(v: &Option<String>) -> Result<Vec<u8>, JwkError> {
    v.as_deref()
        .and_then(b64url_decode)
        .ok_or(JwkError::Malformed)
}

impl PublicJwk {
    pub fn ec_p256(kid: &str, point: &[u8]) -> Self {
        PublicJwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            alg: Some("ES256".into()),
            crv: Some("P-256".into()),
            x: Some(b64url(&point[1..33])),
            y: Some(b64url(&point[33..65])),
            n: None,
            e: None,
        }
    }

    pub fn rsa(kid: &str, n: &[u8], e: &[u8]) -> Self {
        PublicJwk {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            alg: Some("RS256".into()),
            crv: None,
            x: None,
            y: None,
            n: Some(b64url(n)),
            e: Some(b64url(e)),
        }
    }

    pub fn ed25519(kid: &str, public: &[u8]) -> Self {
        PublicJwk {
            kty: "OKP".into(),
            kid: Some(kid.into()),
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
            crv: Some("Ed25519".into()),
            x: Some(b64url(public)),
            y: None,
            n: None,
            e: None,
        }
    }

    /// RFC 7638 thumbprint: our key ids, stable across restarts and instances.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                self.crv.as_deref().unwrap_or(""),
                self.x.as_deref().unwrap_or(""),
                self.y.as_deref().unwrap_or("")
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                self.e.as_deref().unwrap_or(""),
                self.n.as_deref().unwrap_or("")
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
                self.crv.as_deref().unwrap_or(""),
                self.kty,
                self.x.as_deref().unwrap_or("")
            ),
        };
        b64url(&sha256(canonical.as_bytes()))
    }

    pub fn verifier(&self) -> Result<Verifier, JwkError> {
        if let Some(u) = &self.use_
            && u != "sig"
        {
            return Err(JwkError::Unsupported);
        }
        let (alg, key) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("EC", Some("P-256")) => {
                let (x, y) = (part(&self.x)?, part(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwkError::Malformed);
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (SigningAlg::Es256, VerifierKey::Point(point))
            }
            ("OKP", Some("Ed25519")) => {
                let x = part(&self.x)?;
                if x.len() != 32 {
                    return Err(JwkError::Malformed);
                }
                (SigningAlg::EdDsa, VerifierKey::Point(x))
            }
            ("RSA", _) => {
                let (n, e) = (part(&self.n)?, part(&self.e)?);
                if n.len() < 256 || e.is_empty() {
                    return Err(JwkError::Malformed);
                }
                (SigningAlg::Rs256, VerifierKey::Rsa { n, e })
            }
            _ => return Err(JwkError::Unsupported),
        };
        if let Some(a) = &self.alg
            && a != alg.as_str()
        {
            return Err(JwkError::Unsupported);
        }
        Ok(Verifier {
            kid: self.kid.clone(),
            alg,
            key,
        })
    }
}

impl Verifier {
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match (&self.key, self.alg) {
            (VerifierKey::Point(p), SigningAlg::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p)
                    .verify(message, sig)
                    .is_ok()
            }
            (VerifierKey::Point(p), SigningAlg::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, p)
                    .verify(message, sig)
                    .is_ok()
            }
            (VerifierKey::Rsa { n, e }, SigningAlg::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

impl JwkSet {
    pub fn verifiers(&self) -> Result<Vec<Verifier>, JwkError> {
        self.keys.iter().map(PublicJwk::verifier).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_unsupported_keys_are_refused() {
        let mut k = PublicJwk::ed25519("k", &[1u8; 32]);
        assert!(k.verifier().is_ok());
        k.x = Some("!!".into());
        assert_eq!(k.verifier().unwrap_err(), JwkError::Malformed);
        k.kty = "oct".into();
        assert_eq!(k.verifier().unwrap_err(), JwkError::Unsupported);
        let mut enc = PublicJwk::ed25519("k", &[1u8; 32]);
        enc.use_ = Some("enc".into());
        assert_eq!(enc.verifier().unwrap_err(), JwkError::Unsupported);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let k = PublicJwk {
            kty: "RSA".into(),
            kid: None,
            use_: None,
            alg: None,
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(
            k.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
