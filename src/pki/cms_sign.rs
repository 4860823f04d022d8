//! CMS SignedData (RFC 5652) producer for developer tools and tests: signs a login challenge the
//! way a citizen's signing software does (OpenSSL + bee2evp: detached, signer certificate
//! embedded, signed attributes contentType, signingTime, messageDigest).

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::pki::issue::{self, IssueError};
use crate::pki::keys::{KeyError, PrivateKey};
use crate::pki::oids;

#[derive(Debug, thiserror::Error)]
pub enum CmsSignError {
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Time(#[from] IssueError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// Put the content into eContent; otherwise it is detached (eContent absent).
    pub attached: bool,
    /// Sign contentType, signingTime and messageDigest; otherwise the signature is directly over
    /// the content.
    pub signed_attributes: bool,
    /// Put the signer certificate into `certificates`.
    pub include_certificate: bool,
    /// signingTime in Unix seconds; `None` is now.
    pub signing_time: Option<i64>,
}

impl Default for SignOptions {
    /// What the login expects: detached, signed attributes, certificate embedded.
    fn default() -> SignOptions {
        SignOptions {
            attached: false,
            signed_attributes: true,
            include_certificate: true,
            signing_time: None,
        }
    }
}

/// A DER ContentInfo holding SignedData over `content`, signed with `key` as the holder of the
/// certificate `cert_der`. The key is not checked against the certificate, so tests can make
/// messages whose signature does not match their signer.
pub fn sign_detached(
    content: &[u8],
    cert_der: &[u8],
    key: &PrivateKey,
    opts: SignOptions,
) -> Result<Vec<u8>, CmsSignError> {
    let cert = Certificate::from_der(cert_der)?;

    let (signed_attrs, signature) = if opts.signed_attributes {
        let now = opts.signing_time.unwrap_or_else(crate::clock::now);
        let attrs = SetOfVec::try_from(vec![
            attribute(oids::ATTR_CONTENT_TYPE, Any::encode_from(&oids::CMS_DATA)?)?,
            attribute(
                oids::ATTR_SIGNING_TIME,
                Any::encode_from(&issue::time(now)?)?,
            )?,
            attribute(
                oids::ATTR_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(key.digest(content))?)?,
            )?,
        ])?;
        // RFC 5652 §5.4: the signature covers the attributes as a SET OF (tag 0x31), not the
        // [0] IMPLICIT form they take inside SignerInfo; encoding the SetOfVec gives the former.
        let signature = key.sign(&attrs.to_der()?)?;
        (Some(attrs), signature)
    } else {
        (None, key.sign(content)?)
    };

    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: key.digest_algorithm(),
        signed_attrs,
        signature_algorithm: key.signature_algorithm(),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let econtent = if opts.attached {
        Some(Any::encode_from(&OctetString::new(content)?)?)
    } else {
        None
    };
    let certificates = if opts.include_certificate {
        Some(CertificateSet(SetOfVec::try_from(vec![
            cms::cert::CertificateChoices::Certificate(cert),
        ])?))
    } else {
        None
    };
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![key.digest_algorithm()])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids::CMS_DATA,
            econtent,
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer])?),
    };
    let info = ContentInfo {
        content_type: oids::CMS_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    };
    Ok(info.to_der()?)
}

fn attribute(oid: der::asn1::ObjectIdentifier, value: Any) -> Result<Attribute, CmsSignError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::issue::{CertSpec, self_signed};
    use crate::pki::keys::KeyAlgorithm;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bign");

    fn decode(der: &[u8]) -> SignedData {
        let info = ContentInfo::from_der(der).unwrap();
        assert_eq!(info.content_type, oids::CMS_SIGNED_DATA);
        info.content.decode_as::<SignedData>().unwrap()
    }

    fn attr_value(attrs: &SetOfVec<Attribute>, oid: der::asn1::ObjectIdentifier) -> Any {
        let attr = attrs.iter().find(|a| a.oid == oid).unwrap();
        assert_eq!(attr.values.len(), 1);
        attr.values.get(0).unwrap().clone()
    }

    fn test_cert(key: &PrivateKey) -> Vec<u8> {
        let spec = CertSpec::leaf(
            vec![(oids::AT_COMMON_NAME, "Тест".into())],
            &[0x42],
            1_700_000_000,
            2_000_000_000,
        );
        self_signed(&spec, key).unwrap()
    }

    #[test]
    fn bign_detached_with_attributes_verifies() {
        let key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
        let cert_der = test_cert(&key);
        let content = br#"{"nonce":"abc","aud":"https://vhod.example.by"}"#;
        let der = sign_detached(
            content,
            &cert_der,
            &key,
            SignOptions {
                signing_time: Some(1_800_000_000),
                ..SignOptions::default()
            },
        )
        .unwrap();

        let sd = decode(&der);
        assert_eq!(sd.version, CmsVersion::V1);
        assert_eq!(sd.encap_content_info.econtent_type, oids::CMS_DATA);
        assert!(sd.encap_content_info.econtent.is_none());
        assert_eq!(sd.digest_algorithms.len(), 1);
        assert_eq!(sd.digest_algorithms.get(0).unwrap().oid, oids::BELT_HASH);
        let certs = sd.certificates.as_ref().unwrap();
        assert_eq!(certs.0.len(), 1);
        assert_eq!(certs.0.get(0).unwrap().to_der().unwrap(), cert_der);

        let si = sd.signer_infos.0.get(0).unwrap();
        assert_eq!(si.version, CmsVersion::V1);
        assert_eq!(si.signature_algorithm, key.signature_algorithm());
        let attrs = si.signed_attrs.as_ref().unwrap();
        let digest = attr_value(attrs, oids::ATTR_MESSAGE_DIGEST)
            .decode_as::<OctetString>()
            .unwrap();
        assert_eq!(digest.as_bytes(), crate::pki::bign::belt_hash(content));
        assert_eq!(
            attr_value(attrs, oids::ATTR_CONTENT_TYPE)
                .decode_as::<der::asn1::ObjectIdentifier>()
                .unwrap(),
            oids::CMS_DATA
        );
        let signed = attrs.to_der().unwrap();
        assert_eq!(signed[0], 0x31);
        let public = crate::pki::bign::PublicKey::from_stb_bytes(key.public_key_bytes()).unwrap();
        assert_eq!(si.signature.as_bytes().len(), 48);
        public.verify(&signed, si.signature.as_bytes()).unwrap();
    }

    #[test]
    fn ecdsa_attached_without_attributes_verifies() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert_der = test_cert(&key);
        let content = b"challenge bytes";
        let der = sign_detached(
            content,
            &cert_der,
            &key,
            SignOptions {
                attached: true,
                signed_attributes: false,
                include_certificate: false,
                signing_time: None,
            },
        )
        .unwrap();
        let sd = decode(&der);
        assert!(sd.certificates.is_none());
        let econtent = sd.encap_content_info.econtent.unwrap();
        assert_eq!(
            econtent.decode_as::<OctetString>().unwrap().as_bytes(),
            content
        );
        assert_eq!(sd.digest_algorithms.get(0).unwrap().oid, oids::SHA256);
        let si = sd.signer_infos.0.get(0).unwrap();
        assert!(si.signed_attrs.is_none());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key_bytes())
            .verify(content, si.signature.as_bytes())
            .unwrap();
    }

    #[test]
    fn the_bee2evp_challenge_decodes_with_the_same_types() {
        let der = std::fs::read(format!("{VECTORS}/login/challenge.citizen.cms.der")).unwrap();
        let sd = decode(&der);
        assert!(sd.encap_content_info.econtent.is_none());
        let si = sd.signer_infos.0.get(0).unwrap();
        assert_eq!(si.digest_alg.oid, oids::BELT_HASH);
        assert_eq!(si.signature_algorithm.oid, oids::BIGN_WITH_HBELT);
        let attrs = si.signed_attrs.as_ref().unwrap();
        let content = std::fs::read(format!("{VECTORS}/login/challenge.json")).unwrap();
        let digest = attr_value(attrs, oids::ATTR_MESSAGE_DIGEST)
            .decode_as::<OctetString>()
            .unwrap();
        assert_eq!(digest.as_bytes(), crate::pki::bign::belt_hash(&content));

        // Our re-encoding of their signed attributes is what they signed, and our key loader
        // and algorithm identifiers agree with theirs.
        let key = PrivateKey::from_pkcs8_pem(
            &std::fs::read_to_string(format!("{VECTORS}/x509/citizen.key.pem")).unwrap(),
        )
        .unwrap();
        assert_eq!(si.digest_alg, key.digest_algorithm());
        assert_eq!(si.signature_algorithm, key.signature_algorithm());
        let public = crate::pki::bign::PublicKey::from_stb_bytes(key.public_key_bytes()).unwrap();
        public
            .verify(&attrs.to_der().unwrap(), si.signature.as_bytes())
            .unwrap();
        // And the whole message re-encodes to the same octets.
        let info = ContentInfo::from_der(&der).unwrap();
        assert_eq!(info.to_der().unwrap(), der);
    }
}
