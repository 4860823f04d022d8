//! The whole check of a signed login (or any signed data an operator asks about): the
//! certificate is validated against the configured trust, the signature over the data is
//! verified with its key, and only then is revocation checked, because that may fetch CRLs from
//! the network and nothing should be fetched for a login that has not proven its key. Callers
//! handle the challenge itself (issued, bound, single-use).
//!
//! Everything before revocation runs on the verifier threads (`Trust::offline`), within the
//! sign-in's budget of signature verifications and its deadline.

use super::budget::Budget;
use super::cert::{self, Cert};
use super::cms::SignedMessage;
use super::signature::SigError;
use super::trust::{Checked, Offline, Trust, Validated};
use super::{PkiError, Reason};

/// The proof of possession a client sends.
pub enum Proof<'a> {
    /// CMS SignedData, DER or base64 of DER.
    Cms(&'a [u8]),
    /// A bare signature: 48 octets for bign (over belt-hash of the data), DER ECDSA, or RSA.
    Raw(&'a [u8]),
}

/// A proof the verifier threads own.
enum OwnedProof {
    Cms(Vec<u8>),
    Raw(Vec<u8>),
}

impl From<Proof<'_>> for OwnedProof {
    fn from(p: Proof<'_>) -> OwnedProof {
        match p {
            Proof::Cms(b) => OwnedProof::Cms(b.to_vec()),
            Proof::Raw(b) => OwnedProof::Raw(b.to_vec()),
        }
    }
}

/// `certificates`: the signer's certificate first, then any intermediates (PEM), or none when
/// a CMS message carries the signer's certificate.
pub async fn verify_signed(
    trust: &Trust,
    certificates: Option<&[u8]>,
    proof: Proof<'_>,
    data: &[u8],
    now: i64,
    http: &reqwest::Client,
) -> Result<Validated, PkiError> {
    verify_signed_with(trust, certificates, Vec::new(), proof, data, now, http).await
}

/// As `verify_signed`, with more certificates to build the path from (`intermediates`).
pub async fn verify_signed_with(
    trust: &Trust,
    certificates: Option<&[u8]>,
    intermediates: Vec<Cert>,
    proof: Proof<'_>,
    data: &[u8],
    now: i64,
    http: &reqwest::Client,
) -> Result<Validated, PkiError> {
    let certificates = certificates.map(<[u8]>::to_vec);
    let proof = OwnedProof::from(proof);
    let data = data.to_vec();
    let checked = trust
        .offline(move |offline, budget| {
            check_offline(
                offline,
                certificates.as_deref(),
                intermediates,
                &proof,
                &data,
                now,
                budget,
            )
        })
        .await?;
    trust.finish(checked, now, http).await
}

/// Parse, the path and its checks, then the proof of possession.
fn check_offline(
    offline: &Offline,
    certificates: Option<&[u8]>,
    intermediates: Vec<Cert>,
    proof: &OwnedProof,
    data: &[u8],
    now: i64,
    budget: &mut Budget,
) -> Result<Checked, PkiError> {
    let max = offline.settings.max_chain_certs;
    // The leaf and at most `max` others; anything beyond is refused before it is parsed.
    let mut presented = match certificates {
        Some(bundle) => cert::parse_bundle_at_most(bundle, max + 1)?,
        None => Vec::new(),
    };
    let message = match proof {
        OwnedProof::Cms(bytes) => Some(SignedMessage::from_der_or_base64(bytes, max + 1)?),
        OwnedProof::Raw(_) => None,
    };
    let leaf: Cert = if presented.is_empty() {
        message
            .as_ref()
            .and_then(|m| m.embedded_signer().cloned())
            .ok_or_else(|| PkiError::malformed("no signer certificate"))?
    } else {
        presented.remove(0)
    };
    let mut sent = presented;
    sent.extend(intermediates);
    if let Some(m) = &message {
        sent.extend(m.certificates.iter().cloned());
    }
    let checked = offline.check_path(leaf, sent, now, budget)?;
    budget.spend()?;
    let signer = checked.leaf();
    match (proof, &message) {
        (OwnedProof::Cms(_), Some(m)) => m.verify(signer, data)?,
        (OwnedProof::Raw(sig), _) => signer
            .key
            .verify(&signer.key.raw_algorithm(), data, sig)
            .map_err(|e| match e {
                SigError::Invalid => {
                    PkiError::new(Reason::BadSignature, "the signature does not verify")
                }
                other => PkiError::malformed(other.to_string()),
            })?,
        (OwnedProof::Cms(_), None) => return Err(PkiError::malformed("no CMS message")),
    }
    Ok(checked)
}
