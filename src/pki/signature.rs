//! Public keys from certificates and the signature algorithms vhod accepts with them:
//! bign-with-hbelt (through `bign`), ECDSA P-256/P-384 and RSA PKCS#1 v1.5 (through ring).
//! The algorithm named next to a signature must fit the key; nothing is inferred from the
//! signature bytes.

use der::Decode;
use der::asn1::ObjectIdentifier;
use ring::signature::{self as rs, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::bign;
use super::oids;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    P256,
    P384,
}

#[derive(Debug, Clone)]
pub enum PublicKey {
    Bign(bign::PublicKey),
    /// Uncompressed SEC1 point; ring checks it is on the curve when verifying.
    Ec {
        curve: EcCurve,
        point: Vec<u8>,
    },
    /// PKCS#1 RSAPublicKey DER.
    Rsa {
        der: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("unsupported public key algorithm")]
    UnsupportedKey,
    #[error("malformed public key")]
    BadKey,
    #[error("the signature algorithm does not fit the key or is not supported")]
    AlgorithmMismatch,
    #[error("the signature does not verify")]
    Invalid,
    #[error("the signature is not of the length its algorithm gives")]
    BadEncoding,
}

/// Parameters that must be absent or NULL (bee2evp writes NULL where RFCs say absent).
fn absent_or_null(alg: &AlgorithmIdentifierOwned) -> bool {
    match &alg.parameters {
        None => true,
        Some(p) => der::Tagged::tag(p) == der::Tag::Null && p.value().is_empty(),
    }
}

impl PublicKey {
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, SigError> {
        let bits = spki.subject_public_key.as_bytes().ok_or(SigError::BadKey)?;
        let param_oid = || -> Option<ObjectIdentifier> {
            spki.algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        };
        match spki.algorithm.oid {
            oids::BIGN_PUBKEY => {
                if param_oid() != Some(oids::BIGN_CURVE256V1) {
                    return Err(SigError::UnsupportedKey);
                }
                bign::PublicKey::from_stb_bytes(bits)
                    .map(PublicKey::Bign)
                    .map_err(|_| SigError::BadKey)
            }
            oids::EC_PUBLIC_KEY => {
                let (curve, len) = match param_oid() {
                    Some(oids::SECP256R1) => (EcCurve::P256, 65),
                    Some(oids::SECP384R1) => (EcCurve::P384, 97),
                    _ => return Err(SigError::UnsupportedKey),
                };
                if bits.len() != len || bits[0] != 0x04 {
                    return Err(SigError::BadKey);
                }
                Ok(PublicKey::Ec {
                    curve,
                    point: bits.to_vec(),
                })
            }
            oids::RSA_ENCRYPTION => Ok(PublicKey::Rsa { der: bits.to_vec() }),
            _ => Err(SigError::UnsupportedKey),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, SigError> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|_| SigError::BadKey)?;
        PublicKey::from_spki(&spki)
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self {
            PublicKey::Bign(_) => "bign-curve256v1",
            PublicKey::Ec {
                curve: EcCurve::P256,
                ..
            } => "ecdsa-p256",
            PublicKey::Ec {
                curve: EcCurve::P384,
                ..
            } => "ecdsa-p384",
            PublicKey::Rsa { .. } => "rsa",
        }
    }

    /// Verifies `signature` over `message` under the named algorithm.
    pub fn verify(
        &self,
        alg: &AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SigError> {
        match self {
            PublicKey::Bign(key) => {
                if alg.oid != oids::BIGN_WITH_HBELT || !absent_or_null(alg) {
                    return Err(SigError::AlgorithmMismatch);
                }
                key.verify(message, signature).map_err(|e| match e {
                    bign::BignError::SignatureLength => SigError::BadEncoding,
                    _ => SigError::Invalid,
                })
            }
            PublicKey::Ec { curve, point } => {
                if !absent_or_null(alg) {
                    return Err(SigError::AlgorithmMismatch);
                }
                let ring_alg: &dyn VerificationAlgorithm = match (curve, alg.oid) {
                    (EcCurve::P256, oids::ECDSA_WITH_SHA256) => &rs::ECDSA_P256_SHA256_ASN1,
                    (EcCurve::P256, oids::ECDSA_WITH_SHA384) => &rs::ECDSA_P256_SHA384_ASN1,
                    (EcCurve::P384, oids::ECDSA_WITH_SHA256) => &rs::ECDSA_P384_SHA256_ASN1,
                    (EcCurve::P384, oids::ECDSA_WITH_SHA384) => &rs::ECDSA_P384_SHA384_ASN1,
                    _ => return Err(SigError::AlgorithmMismatch),
                };
                UnparsedPublicKey::new(ring_alg, point)
                    .verify(message, signature)
                    .map_err(|_| SigError::Invalid)
            }
            PublicKey::Rsa { der } => {
                if !absent_or_null(alg) {
                    return Err(SigError::AlgorithmMismatch);
                }
                let ring_alg: &dyn VerificationAlgorithm = match alg.oid {
                    oids::SHA256_WITH_RSA => &rs::RSA_PKCS1_2048_8192_SHA256,
                    oids::SHA384_WITH_RSA => &rs::RSA_PKCS1_2048_8192_SHA384,
                    oids::SHA512_WITH_RSA => &rs::RSA_PKCS1_2048_8192_SHA512,
                    _ => return Err(SigError::AlgorithmMismatch),
                };
                UnparsedPublicKey::new(ring_alg, der)
                    .verify(message, signature)
                    .map_err(|_| SigError::Invalid)
            }
        }
    }

    /// The algorithm a raw signature (no CMS around it) is taken to use with this key:
    /// bign-with-hbelt, ECDSA with the curve's own hash, RSA PKCS#1 with SHA-256.
    pub fn raw_algorithm(&self) -> AlgorithmIdentifierOwned {
        let oid = match self {
            PublicKey::Bign(_) => oids::BIGN_WITH_HBELT,
            PublicKey::Ec {
                curve: EcCurve::P256,
                ..
            } => oids::ECDSA_WITH_SHA256,
            PublicKey::Ec {
                curve: EcCurve::P384,
                ..
            } => oids::ECDSA_WITH_SHA384,
            PublicKey::Rsa { .. } => oids::SHA256_WITH_RSA,
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }
}

/// Digest of `data` under a CMS digestAlgorithm; None for an algorithm vhod does not accept
/// (MD5 and SHA-1 among them).
pub fn digest(alg: &AlgorithmIdentifierOwned, data: &[u8]) -> Option<Vec<u8>> {
    if !absent_or_null(alg) {
        return None;
    }
    let ring_alg = match alg.oid {
        oids::BELT_HASH => return Some(bign::belt_hash(data).to_vec()),
        oids::SHA256 => &ring::digest::SHA256,
        oids::SHA384 => &ring::digest::SHA384,
        oids::SHA512 => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(ring_alg, data).as_ref().to_vec())
}
