//! The whole check of a signed login (or any signed data an operator asks about): the
//! certificate is validated against the configured trust, then the signature over the data is
//! verified with its key. Callers handle the challenge itself (issued, bound, single-use).

use super::cert::{self, Cert};
use super::cms::SignedMessage;
use super::signature::SigError;
use super::trust::{Trust, Validated};
use super::{PkiError, Reason};

/// The proof of possession a client sends.
pub enum Proof<'a> {
    /// CMS SignedData, DER or base64 of DER.
    Cms(&'a [u8]),
    /// A bare signature: 48 octets for bign (over belt-hash of the data), DER ECDSA, or RSA.
    Raw(&'a [u8]),
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
    let mut presented = match certificates {
        Some(bundle) => cert::parse_bundle(bundle)?,
        None => Vec::new(),
    };
    let message = match proof {
        Proof::Cms(bytes) => Some(SignedMessage::from_der_or_base64(bytes)?),
        Proof::Raw(_) => None,
    };
    let leaf: Cert = if presented.is_empty() {
        message
            .as_ref()
            .and_then(|m| m.embedded_signer().cloned())
            .ok_or_else(|| PkiError::malformed("no signer certificate"))?
    } else {
        presented.remove(0)
    };
    let mut pool = presented;
    pool.extend(intermediates);
    if let Some(m) = &message {
        pool.extend(
            m.certificates
                .iter()
                .filter(|c| c.fingerprint != leaf.fingerprint)
                .cloned(),
        );
    }
    let validated = trust.validate(leaf, pool, now, http).await?;
    let signer = &validated.path[0];
    match (proof, &message) {
        (Proof::Cms(_), Some(m)) => m.verify(signer, data)?,
        (Proof::Raw(sig), _) => signer
            .key
            .verify(&signer.key.raw_algorithm(), data, sig)
            .map_err(|e| match e {
                SigError::Invalid => {
                    PkiError::new(Reason::BadSignature, "the signature does not verify")
                }
                other => PkiError::malformed(other.to_string()),
            })?,
        (Proof::Cms(_), None) => return Err(PkiError::malformed("no CMS message")),
    }
    Ok(validated)
}
