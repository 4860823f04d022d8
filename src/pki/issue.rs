//! Issuing certificates and CRLs for test PKIs: the `vhod dev test-pki` tool and tests that need
//! certificate chains. Nothing on the login path calls this.
//!
//! The output mirrors what OpenSSL + bee2evp write for the vectors in tests/vectors/bign: X.509
//! v3, names in UTF8String except countryName and serialNumber (PrintableString), UTCTime up to
//! 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), leaves with basicConstraints CA:FALSE
//! and keyUsage digitalSignature, both critical.
//!
//! Key identifiers: the subjectKeyIdentifier is the leftmost 160 bits of SHA-256 over the
//! subjectPublicKey BIT STRING contents (RFC 7093 §2 method 1), which avoids SHA-1; the
//! authorityKeyIdentifier copies the issuer certificate's subjectKeyIdentifier.
//!
//! Long because its tests are (a third of the file): each builds a chain and reads it back
//! with the login path's own parser, so the issuing side and the checking side stay in step.

use std::time::Duration;

use base64::Engine;
use der::asn1::{
    BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, PrintableString, Uint,
    UtcTime,
};
use der::flagset::FlagSet;
use der::{Any, Decode, Encode};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    CrlReason, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier, crl::CrlNumber,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::pki::keys::{KeyError, PrivateKey};
use crate::pki::oids;

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("time {0} is before 1970 or out of range")]
    Time(i64),
    #[error("the value {value:?} of attribute {oid} is not a PrintableString")]
    NotPrintable {
        oid: ObjectIdentifier,
        value: String,
    },
    #[error("the CRL distribution point {0:?} is not an IA5 (ASCII) URI")]
    NotIa5(String),
    #[error("the issuer key does not match the issuer certificate")]
    KeyMismatch,
}

/// What to put into a certificate. Construct with [`CertSpec::root`], [`CertSpec::intermediate`]
/// or [`CertSpec::leaf`] and adjust the public fields for unusual test cases.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject attributes in order, one per RDN. Values are UTF8String, except countryName and
    /// serialNumber, which are PrintableString.
    pub subject: Vec<(ObjectIdentifier, String)>,
    /// Unsigned big-endian serial number (1 to 20 octets; leading zeros are dropped).
    pub serial: Vec<u8>,
    /// Validity in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints (written critical); `None` leaves the extension out.
    pub basic_constraints: Option<BasicConstraints>,
    /// keyUsage (written critical); `None` leaves the extension out.
    pub key_usage: Option<FlagSet<KeyUsages>>,
    /// A URI for a CRL distribution point.
    pub crl_distribution_point: Option<String>,
    /// certificatePolicies, without qualifiers; empty leaves the extension out.
    pub policies: Vec<ObjectIdentifier>,
    /// extendedKeyUsage (non-critical); empty leaves the extension out.
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// Further extensions, appended as given: (extnID, critical, DER of the extnValue contents).
    pub extra_extensions: Vec<(ObjectIdentifier, bool, Vec<u8>)>,
    /// Whether to write the subjectKeyIdentifier (and, when issued by another certificate, the
    /// authorityKeyIdentifier). On by default; off only to test how a verifier copes without.
    pub key_identifiers: bool,
}

impl CertSpec {
    fn base(
        subject: Vec<(ObjectIdentifier, String)>,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> CertSpec {
        CertSpec {
            subject,
            serial: serial.to_vec(),
            not_before,
            not_after,
            basic_constraints: None,
            key_usage: None,
            crl_distribution_point: None,
            policies: Vec::new(),
            extended_key_usage: Vec::new(),
            extra_extensions: Vec::new(),
            key_identifiers: true,
        }
    }

    /// A self-signed trust anchor: CA without a path length limit, keyCertSign + cRLSign.
    pub fn root(
        subject: Vec<(ObjectIdentifier, String)>,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> CertSpec {
        CertSpec::intermediate(subject, serial, not_before, not_after, None)
    }

    /// A subordinate CA with the given pathLenConstraint (0: may issue leaves only).
    pub fn intermediate(
        subject: Vec<(ObjectIdentifier, String)>,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
        path_len: Option<u8>,
    ) -> CertSpec {
        CertSpec {
            basic_constraints: Some(BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            }),
            key_usage: Some(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            ..CertSpec::base(subject, serial, not_before, not_after)
        }
    }

    /// An end-entity signing certificate: CA:FALSE, digitalSignature.
    pub fn leaf(
        subject: Vec<(ObjectIdentifier, String)>,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> CertSpec {
        CertSpec {
            basic_constraints: Some(BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }),
            key_usage: Some(KeyUsages::DigitalSignature.into()),
            ..CertSpec::base(subject, serial, not_before, not_after)
        }
    }
}

/// A CA that signs: its certificate (for the issuer name and key identifier) and its key.
pub struct Issuer {
    cert: Certificate,
    key: PrivateKey,
}

impl Issuer {
    /// Refuses a key that is not the certificate's.
    pub fn new(cert_der: &[u8], key: PrivateKey) -> Result<Issuer, IssueError> {
        let issuer = Issuer::new_unchecked(cert_der, key)?;
        if !issuer
            .key
            .matches_spki(&issuer.cert.tbs_certificate.subject_public_key_info)
        {
            return Err(IssueError::KeyMismatch);
        }
        Ok(issuer)
    }

    /// Accepts any key, so tests can make certificates that name a CA they were not signed by.
    pub fn new_unchecked(cert_der: &[u8], key: PrivateKey) -> Result<Issuer, IssueError> {
        Ok(Issuer {
            cert: Certificate::from_der(cert_der)?,
            key,
        })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The issuer certificate's subjectKeyIdentifier, or the one we would compute for its key.
    fn key_identifier(&self) -> Result<Vec<u8>, IssueError> {
        let tbs = &self.cert.tbs_certificate;
        for ext in tbs.extensions.iter().flatten() {
            if ext.extn_id == oids::EXT_SUBJECT_KEY_ID {
                let ski = SubjectKeyIdentifier::from_der(ext.extn_value.as_bytes())?;
                return Ok(ski.0.as_bytes().to_vec());
            }
        }
        Ok(key_identifier(&tbs.subject_public_key_info))
    }
}

/// The subjectKeyIdentifier this module writes: SHA-256 of the subjectPublicKey BIT STRING
/// contents (no tag, length or unused-bits octet), first 20 octets (RFC 7093 §2 method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    crate::secrets::sha256(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

/// A self-signed certificate (no authorityKeyIdentifier, as in the vectors' root). Returns DER.
pub fn self_signed(spec: &CertSpec, key: &PrivateKey) -> Result<Vec<u8>, IssueError> {
    let subject = name(&spec.subject)?;
    build(spec, subject.clone(), &key.spki(), subject, None, key)
}

/// A certificate for `subject_spki` signed by `issuer`. Returns DER.
pub fn issue(
    spec: &CertSpec,
    subject_spki: &SubjectPublicKeyInfoOwned,
    issuer: &Issuer,
) -> Result<Vec<u8>, IssueError> {
    let aki = if spec.key_identifiers {
        Some(issuer.key_identifier()?)
    } else {
        None
    };
    build(
        spec,
        issuer.cert.tbs_certificate.subject.clone(),
        subject_spki,
        name(&spec.subject)?,
        aki,
        &issuer.key,
    )
}

fn build(
    spec: &CertSpec,
    issuer_name: Name,
    spki: &SubjectPublicKeyInfoOwned,
    subject: Name,
    authority_key_id: Option<Vec<u8>>,
    signer: &PrivateKey,
) -> Result<Vec<u8>, IssueError> {
    let mut extensions = Vec::new();
    if let Some(bc) = &spec.basic_constraints {
        extensions.push(extension(oids::EXT_BASIC_CONSTRAINTS, true, bc)?);
    }
    if let Some(ku) = spec.key_usage {
        extensions.push(extension(oids::EXT_KEY_USAGE, true, &KeyUsage(ku))?);
    }
    if !spec.extended_key_usage.is_empty() {
        let eku = ExtendedKeyUsage(spec.extended_key_usage.clone());
        extensions.push(extension(oids::EXT_EXTENDED_KEY_USAGE, false, &eku)?);
    }
    if spec.key_identifiers {
        let ski = SubjectKeyIdentifier(OctetString::new(key_identifier(spki))?);
        extensions.push(extension(oids::EXT_SUBJECT_KEY_ID, false, &ski)?);
    }
    if let Some(keyid) = authority_key_id {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(keyid)?),
            ..Default::default()
        };
        extensions.push(extension(oids::EXT_AUTHORITY_KEY_ID, false, &aki)?);
    }
    if let Some(uri) = &spec.crl_distribution_point {
        let uri = Ia5String::new(uri).map_err(|_| IssueError::NotIa5(uri.clone()))?;
        let dps = CrlDistributionPoints(vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![
                GeneralName::UniformResourceIdentifier(uri),
            ])),
            reasons: None,
            crl_issuer: None,
        }]);
        extensions.push(extension(oids::EXT_CRL_DISTRIBUTION_POINTS, false, &dps)?);
    }
    if !spec.policies.is_empty() {
        let policies = CertificatePolicies(
            spec.policies
                .iter()
                .map(|oid| PolicyInformation {
                    policy_identifier: *oid,
                    policy_qualifiers: None,
                })
                .collect(),
        );
        extensions.push(extension(oids::EXT_CERTIFICATE_POLICIES, false, &policies)?);
    }
    for (oid, critical, value) in &spec.extra_extensions {
        extensions.push(Extension {
            extn_id: *oid,
            critical: *critical,
            extn_value: OctetString::new(value.clone())?,
        });
    }

    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&spec.serial)?,
        signature: signer.signature_algorithm(),
        issuer: issuer_name,
        validity: Validity {
            not_before: time(spec.not_before)?,
            not_after: time(spec.not_after)?,
        },
        subject,
        subject_public_key_info: spki.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let signature = signer.sign(&tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signer.signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(cert.to_der()?)
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, IssueError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// A Name with one attribute per RDN, in the order given.
pub fn name(attributes: &[(ObjectIdentifier, String)]) -> Result<Name, IssueError> {
    let mut rdns = Vec::with_capacity(attributes.len());
    for (oid, value) in attributes {
        let value = if *oid == oids::AT_COUNTRY || *oid == oids::AT_SERIAL_NUMBER {
            let printable = PrintableString::new(value).map_err(|_| IssueError::NotPrintable {
                oid: *oid,
                value: value.clone(),
            })?;
            Any::encode_from(&printable)?
        } else {
            // A Rust String encodes as UTF8String.
            Any::encode_from(value)?
        };
        let atv = AttributeTypeAndValue { oid: *oid, value };
        rdns.push(RelativeDistinguishedName::try_from(vec![atv])?);
    }
    Ok(RdnSequence(rdns))
}

/// Unix seconds as an X.509 Time: UTCTime through 2049, GeneralizedTime from 2050.
pub fn time(unix: i64) -> Result<Time, IssueError> {
    let secs = u64::try_from(unix).map_err(|_| IssueError::Time(unix))?;
    let duration = Duration::from_secs(secs);
    let general =
        GeneralizedTime::from_unix_duration(duration).map_err(|_| IssueError::Time(unix))?;
    if general.to_date_time().year() <= UtcTime::MAX_YEAR {
        Ok(Time::UtcTime(
            UtcTime::from_unix_duration(duration).map_err(|_| IssueError::Time(unix))?,
        ))
    } else {
        Ok(Time::GeneralTime(general))
    }
}

/// One CRL entry.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Unsigned big-endian serial number of the revoked certificate.
    pub serial: Vec<u8>,
    /// Unix seconds.
    pub revoked_at: i64,
    /// The reasonCode entry extension; `None` leaves it out.
    pub reason: Option<CrlReason>,
}

/// A v2 CRL signed by `issuer`, with the authorityKeyIdentifier and cRLNumber extensions.
/// Returns DER.
pub fn crl(
    issuer: &Issuer,
    revoked: &[Revocation],
    this_update: i64,
    next_update: i64,
    crl_number: u64,
) -> Result<Vec<u8>, IssueError> {
    let mut entries = Vec::with_capacity(revoked.len());
    for r in revoked {
        let extensions = match r.reason {
            Some(reason) => Some(vec![extension(oids::EXT_CRL_REASON, false, &reason)?]),
            None => None,
        };
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(&r.serial)?,
            revocation_date: time(r.revoked_at)?,
            crl_entry_extensions: extensions,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(issuer.key_identifier()?)?),
        ..Default::default()
    };
    let number = CrlNumber(Uint::new(&crl_number.to_be_bytes())?);
    let tbs = TbsCertList {
        version: Version::V2,
        signature: issuer.key.signature_algorithm(),
        issuer: issuer.cert.tbs_certificate.subject.clone(),
        this_update: time(this_update)?,
        next_update: Some(time(next_update)?),
        // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(vec![
            extension(oids::EXT_AUTHORITY_KEY_ID, false, &aki)?,
            extension(oids::EXT_CRL_NUMBER, false, &number)?,
        ]),
    };
    let signature = issuer.key.sign(&tbs.to_der()?)?;
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: issuer.key.signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(list.to_der()?)
}

/// PEM text (RFC 7468: 64-character lines, LF endings) for DER with the given label, e.g.
/// "CERTIFICATE", "X509 CRL", "PRIVATE KEY".
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // base64 output is ASCII, so splitting at any byte offset stays on char boundaries.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// 16 random octets for a serial number (positive: the top bit is cleared).
pub fn random_serial() -> Result<Vec<u8>, IssueError> {
    use ring::rand::SecureRandom;
    let mut serial = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| IssueError::Key(KeyError::Random))?;
    serial[0] &= 0x7f;
    // A leading zero octet would be dropped by the INTEGER encoding; keep the length stable.
    serial[0] |= 0x40;
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::KeyAlgorithm;
    use der::Tagged;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    const NOW: i64 = 1_780_000_000; // 2026-05-28

    fn subject(cn: &str) -> Vec<(ObjectIdentifier, String)> {
        vec![
            (oids::AT_COUNTRY, "BY".into()),
            (oids::AT_ORGANIZATION, "Тестовый центр".into()),
            (oids::AT_COMMON_NAME, cn.into()),
        ]
    }

    struct Pki {
        root: Vec<u8>,
        intermediate: Vec<u8>,
        leaf: Vec<u8>,
        crl: Vec<u8>,
    }

    fn make(alg: KeyAlgorithm) -> Pki {
        let root_key = PrivateKey::generate(alg).unwrap();
        let root = self_signed(
            &CertSpec::root(subject("Root"), &[1], NOW - 86400, NOW + 30 * 365 * 86400),
            &root_key,
        )
        .unwrap();
        let root_issuer = Issuer::new(&root, root_key).unwrap();
        let int_key = PrivateKey::generate(alg).unwrap();
        let intermediate = issue(
            &CertSpec::intermediate(subject("Issuing"), &[2], NOW - 86400, NOW + 86400, Some(0)),
            &int_key.spki(),
            &root_issuer,
        )
        .unwrap();
        let int_issuer = Issuer::new(&intermediate, int_key).unwrap();
        let leaf_key = PrivateKey::generate(alg).unwrap();
        let mut spec = CertSpec::leaf(
            vec![
                (oids::AT_COUNTRY, "BY".into()),
                (oids::AT_COMMON_NAME, "Иванов Иван Иванович".into()),
                (oids::AT_SERIAL_NUMBER, "3010185A001PB3".into()),
            ],
            &[0x0A, 0x10],
            NOW - 60,
            NOW + 86400,
        );
        spec.crl_distribution_point = Some("http://pki.example.by/issuing.crl".into());
        let leaf = issue(&spec, &leaf_key.spki(), &int_issuer).unwrap();
        let crl = crl(
            &int_issuer,
            &[Revocation {
                serial: vec![0x0A, 0x12],
                revoked_at: NOW - 3600,
                reason: Some(CrlReason::KeyCompromise),
            }],
            NOW - 3600,
            NOW + 86400,
            4096,
        )
        .unwrap();
        Pki {
            root,
            intermediate,
            leaf,
            crl,
        }
    }

    fn ext(cert: &Certificate, oid: ObjectIdentifier) -> &Extension {
        cert.tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == oid)
            .unwrap()
    }

    fn ski(cert: &Certificate) -> Vec<u8> {
        SubjectKeyIdentifier::from_der(ext(cert, oids::EXT_SUBJECT_KEY_ID).extn_value.as_bytes())
            .unwrap()
            .0
            .as_bytes()
            .to_vec()
    }

    fn aki(cert: &Certificate) -> Vec<u8> {
        AuthorityKeyIdentifier::from_der(
            ext(cert, oids::EXT_AUTHORITY_KEY_ID).extn_value.as_bytes(),
        )
        .unwrap()
        .key_identifier
        .unwrap()
        .as_bytes()
        .to_vec()
    }

    fn check_chain(pki: &Pki, verify: impl Fn(&SubjectPublicKeyInfoOwned, &[u8], &[u8])) {
        let root = Certificate::from_der(&pki.root).unwrap();
        let int = Certificate::from_der(&pki.intermediate).unwrap();
        let leaf = Certificate::from_der(&pki.leaf).unwrap();
        for (cert, by) in [(&root, &root), (&int, &root), (&leaf, &int)] {
            assert_eq!(cert.tbs_certificate.version, Version::V3);
            assert_eq!(cert.tbs_certificate.issuer, by.tbs_certificate.subject);
            assert_eq!(cert.tbs_certificate.signature, cert.signature_algorithm);
            verify(
                &by.tbs_certificate.subject_public_key_info,
                &cert.tbs_certificate.to_der().unwrap(),
                cert.signature.raw_bytes(),
            );
        }
        // Our DER re-encodes identically, so verifiers hashing the original TBS octets agree.
        assert_eq!(leaf.to_der().unwrap(), pki.leaf);

        assert!(
            root.tbs_certificate
                .extensions
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.extn_id != oids::EXT_AUTHORITY_KEY_ID)
        );
        assert_eq!(aki(&int), ski(&root));
        assert_eq!(aki(&leaf), ski(&int));
        assert_eq!(
            ski(&leaf),
            key_identifier(&leaf.tbs_certificate.subject_public_key_info)
        );

        let bc = ext(&int, oids::EXT_BASIC_CONSTRAINTS);
        assert!(bc.critical);
        let bc = BasicConstraints::from_der(bc.extn_value.as_bytes()).unwrap();
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let bc = ext(&leaf, oids::EXT_BASIC_CONSTRAINTS);
        assert!(bc.critical);
        assert_eq!(bc.extn_value.as_bytes(), [0x30, 0x00]);
        let ku = ext(&leaf, oids::EXT_KEY_USAGE);
        assert!(ku.critical);
        assert!(
            KeyUsage::from_der(ku.extn_value.as_bytes())
                .unwrap()
                .digital_signature()
        );
        let dps = CrlDistributionPoints::from_der(
            ext(&leaf, oids::EXT_CRL_DISTRIBUTION_POINTS)
                .extn_value
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(dps.0.len(), 1);

        // Root validity ends after 2049: GeneralizedTime; the others are UTCTime.
        assert!(matches!(
            root.tbs_certificate.validity.not_after,
            Time::GeneralTime(_)
        ));
        assert!(matches!(
            leaf.tbs_certificate.validity.not_after,
            Time::UtcTime(_)
        ));
        assert_eq!(
            leaf.tbs_certificate
                .validity
                .not_before
                .to_unix_duration()
                .as_secs() as i64,
            NOW - 60
        );

        let list = CertificateList::from_der(&pki.crl).unwrap();
        assert_eq!(list.tbs_cert_list.version, Version::V2);
        assert_eq!(list.tbs_cert_list.issuer, int.tbs_certificate.subject);
        let revoked = list.tbs_cert_list.revoked_certificates.as_ref().unwrap();
        assert_eq!(revoked[0].serial_number.as_bytes(), [0x0A, 0x12]);
        let exts = list.tbs_cert_list.crl_extensions.as_ref().unwrap();
        let number = exts
            .iter()
            .find(|e| e.extn_id == oids::EXT_CRL_NUMBER)
            .unwrap();
        assert_eq!(
            CrlNumber::from_der(number.extn_value.as_bytes())
                .unwrap()
                .0
                .as_bytes(),
            [0x10, 0x00]
        );
        verify(
            &int.tbs_certificate.subject_public_key_info,
            &list.tbs_cert_list.to_der().unwrap(),
            list.signature.raw_bytes(),
        );
    }

    #[test]
    fn a_bign_chain_verifies() {
        let pki = make(KeyAlgorithm::Bign);
        check_chain(&pki, |spki, tbs, sig| {
            assert_eq!(spki.algorithm.oid, oids::BIGN_PUBKEY);
            assert_eq!(sig.len(), 48);
            let key =
                crate::pki::bign::PublicKey::from_stb_bytes(spki.subject_public_key.raw_bytes())
                    .unwrap();
            key.verify(tbs, sig).unwrap();
            let mut bad = sig.to_vec();
            bad[47] ^= 1;
            assert!(key.verify(tbs, &bad).is_err());
        });
        let root = Certificate::from_der(&pki.root).unwrap();
        assert_eq!(root.signature_algorithm.oid, oids::BIGN_WITH_HBELT);
        assert!(
            root.signature_algorithm
                .parameters
                .as_ref()
                .unwrap()
                .is_null()
        );
    }

    #[test]
    fn an_ecdsa_p256_chain_verifies() {
        let pki = make(KeyAlgorithm::EcdsaP256);
        check_chain(&pki, |spki, tbs, sig| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki.subject_public_key.raw_bytes())
                .verify(tbs, sig)
                .unwrap();
        });
        let root = Certificate::from_der(&pki.root).unwrap();
        assert_eq!(root.signature_algorithm.oid, oids::ECDSA_WITH_SHA256);
        assert!(root.signature_algorithm.parameters.is_none());
    }

    #[test]
    fn names_use_printable_string_for_country_and_serial_number() {
        let n = name(&[
            (oids::AT_COUNTRY, "BY".into()),
            (oids::AT_COMMON_NAME, "Иван".into()),
            (oids::AT_SERIAL_NUMBER, "3010185A001PB3".into()),
        ])
        .unwrap();
        let tags: Vec<der::Tag> =
            n.0.iter()
                .map(|rdn| rdn.0.get(0).unwrap().value.tag())
                .collect();
        assert_eq!(
            tags,
            [
                der::Tag::PrintableString,
                der::Tag::Utf8String,
                der::Tag::PrintableString
            ]
        );
        assert!(name(&[(oids::AT_SERIAL_NUMBER, "Ы".into())]).is_err());
    }

    #[test]
    fn the_vectors_name_re_encodes_identically() {
        use x509_cert::der::DecodePem;
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/bign/x509/citizen.pem"
        ))
        .unwrap();
        let cert = Certificate::from_pem(pem).unwrap();
        let ours = name(&[
            (oids::AT_COUNTRY, "BY".into()),
            (oids::AT_SURNAME, "Иванов".into()),
            (oids::AT_GIVEN_NAME, "Иван".into()),
            (oids::AT_COMMON_NAME, "Иванов Иван Иванович".into()),
            (oids::AT_SERIAL_NUMBER, "3010185A001PB3".into()),
        ])
        .unwrap();
        assert_eq!(
            ours.to_der().unwrap(),
            cert.tbs_certificate.subject.to_der().unwrap()
        );
    }

    #[test]
    fn issuer_refuses_a_foreign_key_unless_told() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert = self_signed(&CertSpec::root(subject("R"), &[1], NOW, NOW + 10), &key).unwrap();
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(
            Issuer::new(&cert, other),
            Err(IssueError::KeyMismatch)
        ));
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(Issuer::new_unchecked(&cert, other).is_ok());
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        assert!(matches!(time(2_524_607_999).unwrap(), Time::UtcTime(_))); // 2049-12-31T23:59:59Z
        assert!(matches!(time(2_524_608_000).unwrap(), Time::GeneralTime(_)));
        assert!(time(-1).is_err());
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = to_pem("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
        let (label, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "CERTIFICATE");
        assert_eq!(der, [0u8; 100]);
    }
}
