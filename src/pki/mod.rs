//! Public-key infrastructure for signing in with an EDS certificate or ID card. Belarusian
//! national cryptography first: bign signatures (STB 34.101.45) over belt-hash (STB 34.101.31);
//! ECDSA (P-256, P-384) and RSA for other PKIs through ring.
//!
//! Verification, in the order the login applies it: `cert` parses, `chain` builds and checks
//! the path to a configured anchor (within the `budget` of signature verifications),
//! `profile` reads the person out of the subject, `cms` / `signature` check the proof over the
//! challenge, `crl` checks revocation last (it may need the network, and nothing is fetched for
//! a login that has not proven its key). `trust` holds the configured anchors, CRLs and profiles
//! and runs the checks that need no network on blocking threads; `verify` runs the whole
//! sequence. The signing side (`keys`, `issue`, `cms_sign`) serves developer tools and tests
//! only.

pub mod bign;
pub mod budget;
pub mod cert;
pub mod chain;
pub mod cms;
pub mod cms_sign;
pub mod crl;
pub mod issue;
pub mod keys;
pub mod oids;
pub mod profile;
pub mod signature;
pub mod trust;

impl crate::audit::ReasonCode for Reason {
    fn code(&self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod validation_tests;
pub mod verify;

/// Why a certificate or signature was refused: the same strings in HTTP answers, the CLI and
/// the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Malformed,
    Untrusted,
    /// On the chain, the CRL or the challenge.
    BadSignature,
    Expired,
    NotYetValid,
    Revoked,
    CrlUnavailable,
    KeyUsage,
    /// Unknown, expired or already used challenge.
    BadChallenge,
    Policy,
    /// Building the path would take more signature verifications than a sign-in may cost
    /// (`VHOD_CERT_MAX_SIGNATURE_CHECKS`): the certificates sent are built to be expensive.
    TooComplex,
    /// The verifier was saturated (or the machine too slow) for `VHOD_CERT_VERIFY_TIMEOUT_MS`;
    /// nothing was decided about the certificate, the person may try again.
    Busy,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::Untrusted => "untrusted",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Revoked => "revoked",
            Reason::CrlUnavailable => "crl_unavailable",
            Reason::KeyUsage => "key_usage",
            Reason::BadChallenge => "bad_challenge",
            Reason::Policy => "policy",
            Reason::TooComplex => "too_complex",
            Reason::Busy => "busy",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the reason callers act on, and a description for people (never secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct PkiError {
    pub reason: Reason,
    pub detail: String,
}

impl PkiError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> PkiError {
        PkiError {
            reason,
            detail: detail.into(),
        }
    }

    pub fn malformed(detail: impl Into<String>) -> PkiError {
        PkiError::new(Reason::Malformed, detail)
    }
}

/// The size any one input (a certificate bundle, a CMS message, a CRL from a file) may have;
/// certificates and signatures are a few kilobytes, so anything near this is hostile.
pub const MAX_INPUT: usize = 64 * 1024;
/// How many certificates may come along with the person's own in one PEM bundle read by
/// `cert::parse_bundle` (files, the CLI); a sign-in's limit is `VHOD_CERT_MAX_CHAIN_CERTS`.
pub const MAX_PRESENTED_CERTS: usize = 8;
