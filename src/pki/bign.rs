//! bign-with-hbelt signature verification (STB 34.101.45 on bign-curve256v1) and belt-hash
//! (STB 34.101.31), through the RustCrypto `bign256` and `belt-hash` crates. This module only
//! adapts encodings: the national standard writes numbers little-endian (public key x ‖ y, 64
//! octets, no 0x04 prefix; signature s0 ‖ s1, 48 octets), while the crate takes SEC1 points.
//!
//! The crate panics when s1 ≥ q (bign256 0.13.1 unwraps the scalar conversion inside verify), so
//! step 3 of the verification algorithm — "if S1 ⩾ q, return NO" — is done here, first, with the
//! crate's own field arithmetic deciding what a valid scalar is.

use belt_hash::{BeltHash, Digest};
use bign256::dsa::signature::Verifier;
use bign256::dsa::{Signature, VerifyingKey};
use bign256::elliptic_curve::PrimeField;
use bign256::{FieldBytes, Scalar};

/// DER of the belt-hash OID 1.2.112.0.2.0.34.101.31.81: hashed together with the message
/// digest by the signature algorithm.
pub const BELT_HASH_OID_DER: [u8; 11] = [
    0x06, 0x09, 0x2A, 0x70, 0x00, 0x02, 0x00, 0x22, 0x65, 0x1F, 0x51,
];

pub const PUBLIC_KEY_LEN: usize = 64;
pub const SIGNATURE_LEN: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BignError {
    #[error("a bign-curve256v1 public key is 64 octets")]
    KeyLength,
    #[error("the public key is not a point of bign-curve256v1")]
    KeyNotOnCurve,
    #[error("a bign signature is 48 octets")]
    SignatureLength,
    #[error("the signature is out of range")]
    SignatureRange,
    #[error("the signature does not verify")]
    BadSignature,
}

/// belt-hash of `data`: 32 octets.
pub fn belt_hash(data: &[u8]) -> [u8; 32] {
    BeltHash::digest(data).into()
}

/// A bign public key, checked to be a curve point.
#[derive(Debug, Clone)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// From the STB encoding: x ‖ y, each 32 octets little-endian (as in certificates' BIT STRING).
    pub fn from_stb_bytes(bytes: &[u8]) -> Result<PublicKey, BignError> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(BignError::KeyLength);
        }
        let mut sec1 = [0u8; 1 + PUBLIC_KEY_LEN];
        sec1[0] = 0x04;
        for (i, half) in bytes.chunks(32).enumerate() {
            let mut be = [0u8; 32];
            be.copy_from_slice(half);
            be.reverse();
            sec1[1 + 32 * i..1 + 32 * (i + 1)].copy_from_slice(&be);
        }
        VerifyingKey::from_sec1_bytes(&sec1)
            .map(PublicKey)
            .map_err(|_| BignError::KeyNotOnCurve)
    }

    /// Verifies a 48-octet signature over `message` (hashed here with belt-hash).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BignError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(BignError::SignatureLength);
        }
        // s1: octets 16..48, little-endian; it must be a scalar (< q).
        let mut s1 = FieldBytes::default();
        s1.copy_from_slice(&signature[16..]);
        s1.reverse();
        if bool::from(Scalar::from_repr(s1).is_none()) {
            return Err(BignError::SignatureRange);
        }
        let sig = Signature::from_slice(signature).map_err(|_| BignError::SignatureRange)?;
        self.0
            .verify(message, &sig)
            .map_err(|_| BignError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_oid_is_the_der_the_standard_gives() {
        assert_eq!(
            BELT_HASH_OID_DER,
            [
                0x06, 0x09, 0x2A, 0x70, 0x00, 0x02, 0x00, 0x22, 0x65, 0x1F, 0x51
            ]
        );
    }

    #[test]
    fn malformed_inputs_are_refused_not_panicked_on() {
        assert_eq!(
            PublicKey::from_stb_bytes(&[1u8; 63]).unwrap_err(),
            BignError::KeyLength
        );
        assert_eq!(
            PublicKey::from_stb_bytes(&[1u8; 64]).unwrap_err(),
            BignError::KeyNotOnCurve
        );
        assert_eq!(
            PublicKey::from_stb_bytes(&[0u8; 64]).unwrap_err(),
            BignError::KeyNotOnCurve
        );
    }
}
