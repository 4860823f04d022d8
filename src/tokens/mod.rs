//! Keys, signing and JWTs: the key set (active signers, published verification keys, rotation),
//! JWK conversion, compact JWS, and `mint`, the one place that builds token claims and signs them.

pub mod claims;
pub mod jwk;
pub mod jws;
pub mod keys;
pub mod mint;

pub use keys::SigningAlg;
