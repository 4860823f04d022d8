//! Certificate revocation lists (RFC 5280 §5): parsed once, signature checked against the
//! issuing CA of the path being validated (a CRL is only as good as its signer), fresh until
//! nextUpdate.

use std::collections::HashSet;

use der::Decode;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::cert::{Cert, names_issuer, signed_part, unsigned};
use super::{PkiError, oids};

/// CRLs of national CAs can hold many entries; this bounds what one fetch or file may be.
pub const MAX_CRL: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Crl {
    pub tbs: Vec<u8>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
    pub issuer_der: Vec<u8>,
    pub authority_key_id: Option<Vec<u8>>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Revoked serial numbers, as `Cert::serial` gives them.
    pub revoked: HashSet<Vec<u8>>,
    pub fingerprint: [u8; 32],
}

impl Crl {
    pub fn from_der(der: &[u8]) -> Result<Crl, PkiError> {
        if der.len() > MAX_CRL {
            return Err(PkiError::malformed("the CRL is too large"));
        }
        let list = CertificateList::from_der(der)
            .map_err(|e| PkiError::malformed(format!("not a DER CRL: {e}")))?;
        let tbs = signed_part(der).map_err(|e| PkiError::malformed(e.to_string()))?;
        let t = &list.tbs_cert_list;
        if t.signature != list.signature_algorithm {
            return Err(PkiError::malformed(
                "the CRL's inner and outer signature algorithms differ",
            ));
        }
        let mut authority_key_id = None;
        for ext in t.crl_extensions.as_deref().unwrap_or(&[]) {
            match ext.extn_id {
                oids::EXT_AUTHORITY_KEY_ID => {
                    let aki = AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| PkiError::malformed(format!("CRL AKI: {e}")))?;
                    authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
                }
                oids::EXT_CRL_NUMBER => {}
                // A delta CRL, an issuing distribution point (partitioned CRL) or anything else
                // critical changes what the list means; vhod does not guess.
                other if ext.critical => {
                    return Err(PkiError::malformed(format!(
                        "unsupported critical CRL extension {other}"
                    )));
                }
                _ => {}
            }
        }
        let mut revoked = HashSet::new();
        for entry in t.revoked_certificates.as_deref().unwrap_or(&[]) {
            if entry
                .crl_entry_extensions
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|e| e.critical && e.extn_id != oids::EXT_CRL_REASON)
            {
                return Err(PkiError::malformed(
                    "unsupported critical CRL entry extension",
                ));
            }
            revoked.insert(unsigned(entry.serial_number.as_bytes()).to_vec());
        }
        let secs = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Crl {
            signature: list
                .signature
                .as_bytes()
                .ok_or_else(|| PkiError::malformed("CRL signature is not whole octets"))?
                .to_vec(),
            signature_algorithm: list.signature_algorithm.clone(),
            issuer_der: der::Encode::to_der(&t.issuer)
                .map_err(|e| PkiError::malformed(e.to_string()))?,
            authority_key_id,
            this_update: secs(&t.this_update),
            next_update: t.next_update.as_ref().map(secs),
            revoked,
            fingerprint: crate::secrets::sha256(der),
            tbs,
        })
    }

    /// DER, or one PEM "X509 CRL" block.
    pub fn from_pem_or_der(input: &[u8]) -> Result<Crl, PkiError> {
        if input.len() > MAX_CRL {
            return Err(PkiError::malformed("the CRL is too large"));
        }
        if input.starts_with(b"-----BEGIN") || input.trim_ascii_start().starts_with(b"-----BEGIN") {
            let text = std::str::from_utf8(input)
                .map_err(|_| PkiError::malformed("PEM that is not text"))?;
            let blocks = super::cert::pem_blocks(text)?;
            return match blocks.as_slice() {
                [(label, der)] if label == "X509 CRL" => Crl::from_der(der),
                _ => Err(PkiError::malformed("expected one X509 CRL PEM block")),
            };
        }
        Crl::from_der(input)
    }

    /// Is this list about certificates `ca` issued (by name and, when both say, key id)?
    pub fn is_from(&self, ca: &Cert) -> bool {
        names_issuer(&self.issuer_der, self.authority_key_id.as_deref(), ca)
    }

    pub fn signed_by(&self, ca: &Cert) -> bool {
        // RFC 5280 §6.3.3 (f): the CRL signer's key must be allowed to sign CRLs.
        if let Some(ku) = &ca.key_usage
            && !ku.crl_sign()
        {
            return false;
        }
        ca.key
            .verify(&self.signature_algorithm, &self.tbs, &self.signature)
            .is_ok()
    }

    /// Usable now: issued, and its next update not yet due. A CRL without nextUpdate is never
    /// taken as fresh (RFC 5280 requires the field; its absence says nothing about freshness).
    pub fn is_fresh(&self, now: i64, skew: i64) -> bool {
        self.this_update <= now + skew && self.next_update.is_some_and(|n| now < n)
    }

    pub fn lists(&self, cert: &Cert) -> bool {
        self.revoked.contains(cert.serial())
    }
}
