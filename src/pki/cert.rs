//! A parsed, not yet trusted, X.509 certificate: the facts path validation needs, read once.
//! Parsing is strict DER (the `der` crate refuses BER and trailing data) and refuses critical
//! extensions vhod does not understand (RFC 5280 §4.2).

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode, Reader, SliceReader};
use x509_cert::Certificate;
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    SubjectKeyIdentifier,
};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::signature::PublicKey;
use super::{MAX_INPUT, MAX_PRESENTED_CERTS, PkiError, oids};

/// Extensions vhod processes (or that carry no constraint it must enforce); any other critical
/// extension makes the certificate unusable.
const UNDERSTOOD: [ObjectIdentifier; 10] = [
    oids::EXT_SUBJECT_KEY_ID,
    oids::EXT_KEY_USAGE,
    oids::EXT_SUBJECT_ALT_NAME,
    oids::EXT_ISSUER_ALT_NAME,
    oids::EXT_BASIC_CONSTRAINTS,
    oids::EXT_CRL_DISTRIBUTION_POINTS,
    oids::EXT_CERTIFICATE_POLICIES,
    oids::EXT_AUTHORITY_KEY_ID,
    oids::EXT_EXTENDED_KEY_USAGE,
    oids::EXT_AUTHORITY_INFO_ACCESS,
];

#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    /// The exact octets the issuer signed.
    pub tbs: Vec<u8>,
    pub parsed: Certificate,
    pub key: PublicKey,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
    /// DER of the subject and issuer Names: issuers are matched by these octets.
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints: Some(path length limit) for a CA.
    pub ca: Option<Option<u8>>,
    pub key_usage: Option<KeyUsage>,
    pub extended_key_usage: Option<Vec<ObjectIdentifier>>,
    pub policies: Vec<ObjectIdentifier>,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    /// http(s) URLs of the CRL distribution points.
    pub crl_urls: Vec<String>,
    pub fingerprint: [u8; 32],
    /// SHA-256 of the DER SubjectPublicKeyInfo: names the key whatever certificate carries it.
    pub spki_sha256: [u8; 32],
}

/// Splits a signed X.509 structure (certificate or CRL: SEQUENCE { tbs, algorithm, signature })
/// and returns the exact DER of its first element.
pub fn signed_part(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let mut reader = SliceReader::new(der)?;
    let tbs = reader.sequence(|r| {
        let tbs = AnyRef::decode(r)?;
        AnyRef::decode(r)?;
        AnyRef::decode(r)?;
        Ok(tbs)
    })?;
    let tbs = reader.finish(tbs)?;
    tbs.to_der()
}

fn unix(t: &x509_cert::time::Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Result<Cert, PkiError> {
        if der.len() > MAX_INPUT {
            return Err(PkiError::malformed("the certificate is too large"));
        }
        let parsed = Certificate::from_der(der)
            .map_err(|e| PkiError::malformed(format!("not a DER X.509 certificate: {e}")))?;
        let tbs = signed_part(der).map_err(|e| PkiError::malformed(e.to_string()))?;
        let t = &parsed.tbs_certificate;
        if t.version != x509_cert::Version::V3 && t.extensions.is_some() {
            return Err(PkiError::malformed("extensions in a certificate before v3"));
        }
        if t.signature != parsed.signature_algorithm {
            return Err(PkiError::malformed(
                "the inner and outer signature algorithms differ",
            ));
        }
        let key = PublicKey::from_spki(&t.subject_public_key_info)
            .map_err(|e| PkiError::malformed(format!("subject public key: {e}")))?;
        let signature = parsed
            .signature
            .as_bytes()
            .ok_or_else(|| PkiError::malformed("the signature is not whole octets"))?
            .to_vec();
        let mut cert = Cert {
            der: der.to_vec(),
            tbs,
            key,
            signature_algorithm: parsed.signature_algorithm.clone(),
            signature,
            subject_der: t
                .subject
                .to_der()
                .map_err(|e| PkiError::malformed(e.to_string()))?,
            issuer_der: t
                .issuer
                .to_der()
                .map_err(|e| PkiError::malformed(e.to_string()))?,
            not_before: unix(&t.validity.not_before),
            not_after: unix(&t.validity.not_after),
            ca: None,
            key_usage: None,
            extended_key_usage: None,
            policies: Vec::new(),
            subject_key_id: None,
            authority_key_id: None,
            crl_urls: Vec::new(),
            fingerprint: crate::secrets::sha256(der),
            spki_sha256: crate::secrets::sha256(
                &t.subject_public_key_info
                    .to_der()
                    .map_err(|e| PkiError::malformed(e.to_string()))?,
            ),
            parsed: parsed.clone(),
        };
        cert.read_extensions()?;
        Ok(cert)
    }

    fn read_extensions(&mut self) -> Result<(), PkiError> {
        let t = &self.parsed.tbs_certificate;
        let bad = |what: &str, e: der::Error| PkiError::malformed(format!("{what}: {e}"));
        let mut seen = std::collections::HashSet::new();
        for ext in t.extensions.as_deref().unwrap_or(&[]) {
            if !seen.insert(ext.extn_id) {
                return Err(PkiError::malformed(format!(
                    "extension {} appears twice",
                    ext.extn_id
                )));
            }
            if ext.critical && !UNDERSTOOD.contains(&ext.extn_id) {
                return Err(PkiError::malformed(format!(
                    "unknown critical extension {}",
                    ext.extn_id
                )));
            }
        }
        if let Some((_, bc)) = t
            .get::<BasicConstraints>()
            .map_err(|e| bad("basicConstraints", e))?
        {
            self.ca = bc.ca.then_some(bc.path_len_constraint);
        }
        self.key_usage = t
            .get::<KeyUsage>()
            .map_err(|e| bad("keyUsage", e))?
            .map(|(_, ku)| ku);
        self.extended_key_usage = t
            .get::<ExtendedKeyUsage>()
            .map_err(|e| bad("extendedKeyUsage", e))?
            .map(|(_, eku)| eku.0);
        if let Some((_, cp)) = t
            .get::<CertificatePolicies>()
            .map_err(|e| bad("certificatePolicies", e))?
        {
            self.policies = cp.0.iter().map(|p| p.policy_identifier).collect();
        }
        self.subject_key_id = t
            .get::<SubjectKeyIdentifier>()
            .map_err(|e| bad("subjectKeyIdentifier", e))?
            .map(|(_, ski)| ski.0.as_bytes().to_vec());
        self.authority_key_id = t
            .get::<AuthorityKeyIdentifier>()
            .map_err(|e| bad("authorityKeyIdentifier", e))?
            .and_then(|(_, aki)| aki.key_identifier.map(|k| k.as_bytes().to_vec()));
        if let Some((_, dps)) = t
            .get::<CrlDistributionPoints>()
            .map_err(|e| bad("cRLDistributionPoints", e))?
        {
            for dp in dps.0 {
                if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
                    for n in names {
                        if let GeneralName::UniformResourceIdentifier(uri) = n {
                            let s = uri.as_str();
                            if s.starts_with("http://") || s.starts_with("https://") {
                                self.crl_urls.push(s.to_string());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn is_ca(&self) -> bool {
        self.ca.is_some()
    }

    pub fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// Serial number octets as encoded (big-endian, without a leading sign octet).
    pub fn serial(&self) -> &[u8] {
        unsigned(self.parsed.tbs_certificate.serial_number.as_bytes())
    }

    pub fn serial_hex(&self) -> String {
        hex::encode_upper(self.serial())
    }

    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.parsed.tbs_certificate.issuer.to_string()
    }

    /// Values of one subject attribute, in order, whatever directory string type carries them.
    pub fn subject_values(&self, oid: ObjectIdentifier) -> Vec<String> {
        let mut out = Vec::new();
        for rdn in self.parsed.tbs_certificate.subject.0.iter() {
            for atv in rdn.0.iter() {
                if atv.oid == oid
                    && let Some(s) = directory_string(&atv.value)
                {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Does `issuer` name (and, when both say, key-identify) the issuer of this certificate?
    pub fn named_issuer_is(&self, issuer: &Cert) -> bool {
        names_issuer(&self.issuer_der, self.authority_key_id.as_deref(), issuer)
    }

    /// Checks this certificate's signature with `issuer`'s key.
    pub fn signed_by(&self, issuer: &Cert) -> bool {
        issuer
            .key
            .verify(&self.signature_algorithm, &self.tbs, &self.signature)
            .is_ok()
    }
}

/// A serial number's octets without the sign octet DER adds before a high bit.
pub fn unsigned(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => serial,
    }
}

/// Whether a signed object (certificate or CRL) with this issuer name and authority key id
/// points at `ca`: the names must be equal and, when both carry one, the key ids too.
pub fn names_issuer(issuer_der: &[u8], authority_key_id: Option<&[u8]>, ca: &Cert) -> bool {
    if issuer_der != ca.subject_der {
        return false;
    }
    match (authority_key_id, &ca.subject_key_id) {
        (Some(aki), Some(ski)) => aki == ski.as_slice(),
        _ => true,
    }
}

/// The text of a DirectoryString (UTF8String, PrintableString, IA5String, BMPString,
/// TeletexString taken as Latin-1 is refused: it is ambiguous).
fn directory_string(value: &der::Any) -> Option<String> {
    use der::{Tag, Tagged};
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(value.value()).ok().map(str::to_string)
        }
        Tag::BmpString => value
            .decode_as::<der::asn1::BmpString>()
            .ok()
            .map(|s| s.to_string()),
        _ => None,
    }
}

/// Certificates from a file or the CLI: PEM (one or more CERTIFICATE blocks and nothing
/// else) or one DER certificate, at most `1 + MAX_PRESENTED_CERTS`. The first is the end entity
/// when the caller says so.
pub fn parse_bundle(input: &[u8]) -> Result<Vec<Cert>, PkiError> {
    parse_bundle_at_most(input, 1 + MAX_PRESENTED_CERTS)
}

/// As `parse_bundle`, refusing (before parsing them) more than `max` certificates.
pub fn parse_bundle_at_most(input: &[u8], max: usize) -> Result<Vec<Cert>, PkiError> {
    if input.len() > MAX_INPUT {
        return Err(PkiError::malformed("the certificate bundle is too large"));
    }
    let text = std::str::from_utf8(input).ok();
    let pem_like = text.is_some_and(|t| t.trim_start().starts_with("-----BEGIN"));
    if !pem_like {
        return Ok(vec![Cert::from_der(input)?]);
    }
    let blocks = pem_blocks(text.unwrap_or_default())?;
    if blocks.len() > max {
        return Err(PkiError::malformed(format!(
            "too many certificates: {} sent, at most {max} are read",
            blocks.len()
        )));
    }
    let mut out = Vec::new();
    for (label, der) in blocks {
        if label != "CERTIFICATE" {
            return Err(PkiError::malformed(format!(
                "unexpected PEM block {label:?} among certificates"
            )));
        }
        out.push(Cert::from_der(&der)?);
    }
    if out.is_empty() {
        return Err(PkiError::malformed("no certificate"));
    }
    Ok(out)
}

/// The first certificate of a bundle, whatever follows it (for the audit trail of a refusal).
pub fn leaf_of_bundle(input: &[u8]) -> Option<Cert> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let text = match std::str::from_utf8(input) {
        Ok(t) if t.trim_start().starts_with("-----BEGIN") => t.trim_start(),
        _ => return Cert::from_der(input).ok(),
    };
    const END: &str = "-----END CERTIFICATE-----";
    let end = text.find(END)? + END.len();
    match pem_blocks(&text[..end]).ok()?.into_iter().next() {
        Some((label, der)) if label == "CERTIFICATE" => Cert::from_der(&der).ok(),
        _ => None,
    }
}

/// Every PEM block of `text` as (label, DER); anything between blocks other than whitespace is
/// refused, so a bundle cannot smuggle text past the parser.
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, PkiError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some(begin) = rest.strip_prefix("-----BEGIN ") else {
            return Err(PkiError::malformed("text outside PEM blocks"));
        };
        let label_end = begin
            .find("-----")
            .ok_or_else(|| PkiError::malformed("broken PEM header"))?;
        let label = &begin[..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = rest
            .find(&end_marker)
            .ok_or_else(|| PkiError::malformed("PEM block without its end"))?;
        let block = &rest[..end + end_marker.len()];
        let (l, der) = pem_rfc7468::decode_vec(block.as_bytes())
            .map_err(|e| PkiError::malformed(format!("PEM: {e}")))?;
        out.push((l.to_string(), der));
        rest = rest[end + end_marker.len()..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncation_are_malformed() {
        for input in [&b""[..], b"\x30\x03\x02\x01", b"hello", b"\x30\x80\x00\x00"] {
            let e = parse_bundle(input).unwrap_err();
            assert_eq!(e.reason, super::super::Reason::Malformed, "{input:?}");
        }
        let e = parse_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert_eq!(e.reason, super::super::Reason::Malformed);
        let e = parse_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
        assert_eq!(e.reason, super::super::Reason::Malformed);
    }

    #[test]
    fn directory_strings_of_every_accepted_type_read_the_same() {
        let bmp: Vec<u8> = "Иван".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let any = der::Any::new(der::Tag::BmpString, bmp).unwrap();
        assert_eq!(directory_string(&any).as_deref(), Some("Иван"));
        let utf8 = der::Any::new(der::Tag::Utf8String, "Иван".as_bytes()).unwrap();
        assert_eq!(directory_string(&utf8).as_deref(), Some("Иван"));
        // An odd number of octets is no BMPString; a TeletexString is ambiguous: neither reads.
        let odd = der::Any::new(der::Tag::BmpString, vec![0x04, 0x18, 0x04]).unwrap();
        assert_eq!(directory_string(&odd), None);
        let teletex = der::Any::new(der::Tag::TeletexString, b"Ivan".to_vec()).unwrap();
        assert_eq!(directory_string(&teletex), None);
    }

    #[test]
    fn huge_input_is_refused_before_parsing() {
        let big = vec![0x30u8; MAX_INPUT + 1];
        assert_eq!(
            parse_bundle(&big).unwrap_err().reason,
            super::super::Reason::Malformed
        );
    }
}
