//! CMS SignedData (RFC 5652 §5) as national signing software produces it: detached or
//! attached content, with or without signed attributes. With signed attributes the
//! messageDigest must equal the digest of the content and the signature is over the DER of the
//! attributes (tag SET OF, §5.4); without them the signature is over the content itself.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};

use super::cert::Cert;
use super::signature;
use super::{MAX_INPUT, PkiError, Reason, oids};

#[derive(Debug, Clone)]
pub struct SignedMessage {
    data: SignedData,
    /// Content carried inside the message (attached signature).
    pub content: Option<Vec<u8>>,
    /// Certificates embedded in the message (candidates for the signer and its chain).
    pub certificates: Vec<Cert>,
}

fn bad_signature(detail: impl Into<String>) -> PkiError {
    PkiError::new(Reason::BadSignature, detail)
}

impl SignedMessage {
    /// DER of a ContentInfo holding SignedData with at most `max_certificates` certificates
    /// (each is parsed, and each is a candidate for path building).
    pub fn from_der(der: &[u8], max_certificates: usize) -> Result<SignedMessage, PkiError> {
        if der.len() > MAX_INPUT {
            return Err(PkiError::malformed("the signature is too large"));
        }
        let ci = ContentInfo::from_der(der)
            .map_err(|e| PkiError::malformed(format!("not a DER CMS ContentInfo: {e}")))?;
        if ci.content_type != oids::CMS_SIGNED_DATA {
            return Err(PkiError::malformed("the CMS message is not SignedData"));
        }
        let data: SignedData = ci
            .content
            .decode_as()
            .map_err(|e| PkiError::malformed(format!("SignedData: {e}")))?;
        if data.encap_content_info.econtent_type != oids::CMS_DATA {
            return Err(PkiError::malformed("the signed content is not id-data"));
        }
        let content = match &data.encap_content_info.econtent {
            None => None,
            Some(any) => Some(
                any.decode_as::<OctetString>()
                    .map_err(|e| PkiError::malformed(format!("eContent: {e}")))?
                    .into_bytes(),
            ),
        };
        let carried = data.certificates.as_ref().map_or(0, |s| s.0.len());
        if carried > max_certificates {
            return Err(PkiError::malformed(format!(
                "too many certificates: the signature carries {carried}, at most {max_certificates} are read"
            )));
        }
        let mut certificates = Vec::new();
        for choice in data.certificates.iter().flat_map(|s| s.0.iter()) {
            if let CertificateChoices::Certificate(c) = choice {
                let der = c.to_der().map_err(|e| PkiError::malformed(e.to_string()))?;
                certificates.push(Cert::from_der(&der)?);
            }
        }
        if data.signer_infos.0.is_empty() {
            return Err(PkiError::malformed("the CMS message has no signer"));
        }
        Ok(SignedMessage {
            data,
            content,
            certificates,
        })
    }

    /// DER, or its base64 (how the JSON API and files carry it).
    pub fn from_der_or_base64(
        input: &[u8],
        max_certificates: usize,
    ) -> Result<SignedMessage, PkiError> {
        if input.first() == Some(&0x30) {
            return SignedMessage::from_der(input, max_certificates);
        }
        use base64::Engine;
        let text: Vec<u8> = input
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|_| PkiError::malformed("the signature is neither DER nor base64"))?;
        SignedMessage::from_der(&der, max_certificates)
    }

    fn signer_info_for(&self, cert: &Cert) -> Option<&SignerInfo> {
        self.data.signer_infos.0.iter().find(|si| match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer.to_der().ok().as_deref() == Some(cert.issuer_der.as_slice())
                    && ias.serial_number == cert.parsed.tbs_certificate.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                cert.subject_key_id.as_deref() == Some(ski.0.as_bytes())
            }
        })
    }

    /// The embedded certificate that made one of the signatures, if any.
    pub fn embedded_signer(&self) -> Option<&Cert> {
        self.certificates
            .iter()
            .find(|c| self.signer_info_for(c).is_some())
    }

    /// Verifies that `signer` signed `expected` (the challenge). An attached content must be
    /// exactly `expected`; a detached one is `expected` by construction.
    pub fn verify(&self, signer: &Cert, expected: &[u8]) -> Result<(), PkiError> {
        let si = self.signer_info_for(signer).ok_or_else(|| {
            bad_signature("the CMS message has no signature by the presented certificate")
        })?;
        if let Some(content) = &self.content
            && content.as_slice() != expected
        {
            return Err(bad_signature("the signed content is not the challenge"));
        }
        let signed_over: Vec<u8> = match &si.signed_attrs {
            None => expected.to_vec(),
            Some(attrs) => {
                let digest = signature::digest(&si.digest_alg, expected)
                    .ok_or_else(|| PkiError::malformed("unsupported digest algorithm"))?;
                let one = |oid: ObjectIdentifier| {
                    let mut found = attrs.iter().filter(|a| a.oid == oid);
                    match (found.next(), found.next()) {
                        (Some(a), None) if a.values.len() == 1 => Ok(a.values.get(0)),
                        (None, _) => Ok(None),
                        _ => Err(PkiError::malformed(format!(
                            "signed attribute {oid} must appear once with one value"
                        ))),
                    }
                };
                let content_type = one(oids::ATTR_CONTENT_TYPE)?
                    .and_then(|v| v.decode_as::<ObjectIdentifier>().ok());
                if content_type != Some(oids::CMS_DATA) {
                    return Err(PkiError::malformed(
                        "the contentType signed attribute is missing or not id-data",
                    ));
                }
                let md = one(oids::ATTR_MESSAGE_DIGEST)?
                    .and_then(|v| v.decode_as::<OctetString>().ok())
                    .ok_or_else(|| {
                        PkiError::malformed("the messageDigest signed attribute is missing")
                    })?;
                if md.as_bytes() != digest.as_slice() {
                    return Err(bad_signature(
                        "the messageDigest does not match the challenge",
                    ));
                }
                attrs
                    .to_der()
                    .map_err(|e| PkiError::malformed(e.to_string()))?
            }
        };
        signer
            .key
            .verify(
                &si.signature_algorithm,
                &signed_over,
                si.signature.as_bytes(),
            )
            .map_err(|e| match e {
                signature::SigError::Invalid => bad_signature("the CMS signature does not verify"),
                other => PkiError::malformed(other.to_string()),
            })
    }
}
