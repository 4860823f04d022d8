//! Private keys for the signing side: bign on bign-curve256v1 (through `bign256`) and ECDSA
//! P-256 / P-384 (through ring). Used by the developer tools and tests that build PKIs and sign
//! challenges; the login path only verifies and never holds a private key.
//!
//! Encodings follow bee2 / bee2evp for bign (see the vectors README): the private key d and the
//! public key x ‖ y are little-endian, and a PKCS#8 file carries the 32 octets of d directly in
//! the privateKey OCTET STRING with the curve OID as the algorithm parameter. `bign256` works
//! big-endian with SEC1 points, so this module reverses byte order at its edges.

use std::fmt;
use std::str::FromStr;

use bign256::dsa::signature::Signer;
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair};
use x509_cert::attr::Attributes;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::pki::oids;

/// PEM label of an unencrypted PKCS#8 private key.
pub const PKCS8_PEM_LABEL: &str = "PRIVATE KEY";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key algorithm {0:?} (expected bign, ecdsa-p256 or ecdsa-p384)")]
    UnknownAlgorithm(String),
    #[error("not a PEM private key: {0}")]
    Pem(String),
    #[error("the PEM label is {0:?}, expected \"PRIVATE KEY\" (unencrypted PKCS#8)")]
    PemLabel(String),
    #[error("malformed key encoding: {0}")]
    Der(#[from] der::Error),
    #[error("unsupported key algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    #[error("unsupported or missing curve parameter")]
    UnsupportedCurve,
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    #[error("the system random generator failed")]
    Random,
    #[error("signing failed")]
    Signing,
}

/// The signature algorithms a key can be generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// bign-with-hbelt on bign-curve256v1 (STB 34.101.45).
    Bign,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Bign => "bign",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
        }
    }

    fn ring_alg(self) -> Option<&'static ring::signature::EcdsaSigningAlgorithm> {
        match self {
            KeyAlgorithm::Bign => None,
            KeyAlgorithm::EcdsaP256 => Some(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING),
            KeyAlgorithm::EcdsaP384 => Some(&ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "bign" => Ok(KeyAlgorithm::Bign),
            "ecdsa-p256" => Ok(KeyAlgorithm::EcdsaP256),
            "ecdsa-p384" => Ok(KeyAlgorithm::EcdsaP384),
            other => Err(KeyError::UnknownAlgorithm(other.to_string())),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958). The trailing optional fields are
/// declared only so that keys carrying them still decode.
#[derive(Sequence)]
struct PrivateKeyInfo {
    version: u8,
    algorithm: AlgorithmIdentifierOwned,
    private_key: OctetString,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    attributes: Option<Attributes>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    public_key: Option<BitString>,
}

/// Secret octets that are wiped when dropped and never printed.
struct SecretBytes(Vec<u8>);

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the optimiser from treating the wipe of memory about to be freed as dead.
        std::hint::black_box(&mut self.0);
    }
}

enum Inner {
    // bign256's SigningKey does not wipe its scalar on drop; acceptable for throwaway test
    // keys, which is all this module is for.
    Bign(bign256::dsa::SigningKey),
    Ecdsa(EcdsaKeyPair),
}

/// A private signing key. Debug output shows the algorithm and public key only.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    inner: Inner,
    /// bign: x ‖ y little-endian (64 octets); ECDSA: the uncompressed SEC1 point.
    public_key: Vec<u8>,
    spki: SubjectPublicKeyInfoOwned,
    /// Kept because ring cannot export a key; for bign it is encoded once, at load, so that
    /// writing the key out cannot fail.
    pkcs8: SecretBytes,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .field("public_key", &hex::encode(&self.public_key))
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<PrivateKey, KeyError> {
        let rng = SystemRandom::new();
        match algorithm.ring_alg() {
            None => {
                // Rejection sampling over uniform 256-bit strings: `from_slice` refuses 0 and
                // values ≥ q, and q is so close to 2^256 that a retry essentially never happens.
                for _ in 0..64 {
                    let mut d = SecretBytes(vec![0u8; 32]);
                    rng.fill(&mut d.0).map_err(|_| KeyError::Random)?;
                    if let Ok(key) = bign256::dsa::SigningKey::from_slice(&d.0) {
                        return PrivateKey::from_bign(key);
                    }
                }
                Err(KeyError::Random)
            }
            Some(alg) => {
                let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| KeyError::Random)?;
                PrivateKey::from_ecdsa_pkcs8(algorithm, doc.as_ref())
            }
        }
    }

    /// From a PEM "PRIVATE KEY" (unencrypted PKCS#8): bee2evp bign keys, ring or OpenSSL ECDSA keys.
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        let der = SecretBytes(der);
        if label != PKCS8_PEM_LABEL {
            return Err(KeyError::PemLabel(label.to_string()));
        }
        PrivateKey::from_pkcs8_der(&der.0)
    }

    /// From DER PKCS#8 PrivateKeyInfo.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        let info = PrivateKeyInfo::from_der(der)?;
        let curve = info
            .algorithm
            .parameters
            .as_ref()
            .map(|p| p.decode_as::<ObjectIdentifier>())
            .transpose()
            .map_err(|_| KeyError::UnsupportedCurve)?;
        match info.algorithm.oid {
            oids::BIGN_PUBKEY => {
                // bee2evp always names the curve; a missing parameter is not something it writes.
                if curve != Some(oids::BIGN_CURVE256V1) {
                    return Err(KeyError::UnsupportedCurve);
                }
                let d_le = info.private_key.as_bytes();
                if d_le.len() != 32 {
                    return Err(KeyError::InvalidKey(
                        "a bign private key is 32 octets".to_string(),
                    ));
                }
                let mut d_be = SecretBytes(d_le.to_vec());
                d_be.0.reverse();
                let key = bign256::dsa::SigningKey::from_slice(&d_be.0).map_err(|_| {
                    KeyError::InvalidKey("d is not in the range 0 < d < q".to_string())
                })?;
                PrivateKey::from_bign(key)
            }
            oids::EC_PUBLIC_KEY => {
                let algorithm = match curve {
                    Some(oids::SECP256R1) => KeyAlgorithm::EcdsaP256,
                    Some(oids::SECP384R1) => KeyAlgorithm::EcdsaP384,
                    _ => return Err(KeyError::UnsupportedCurve),
                };
                PrivateKey::from_ecdsa_pkcs8(algorithm, der)
            }
            other => Err(KeyError::UnsupportedAlgorithm(other)),
        }
    }

    fn from_bign(key: bign256::dsa::SigningKey) -> Result<PrivateKey, KeyError> {
        let sec1 = key.verifying_key().to_sec1_bytes();
        // Uncompressed SEC1: 0x04 ‖ X ‖ Y, big-endian; STB wants each coordinate reversed.
        if sec1.len() != 65 || sec1[0] != 0x04 {
            return Err(KeyError::InvalidKey(
                "unexpected public key encoding".to_string(),
            ));
        }
        let mut public_key = Vec::with_capacity(64);
        for coord in sec1[1..].chunks(32) {
            public_key.extend(coord.iter().rev());
        }
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oids::BIGN_PUBKEY,
                parameters: Some(Any::encode_from(&oids::BIGN_CURVE256V1)?),
            },
            subject_public_key: BitString::from_bytes(&public_key)?,
        };
        let mut d = SecretBytes(key.to_bytes().to_vec());
        d.0.reverse();
        let info = PrivateKeyInfo {
            version: 0,
            algorithm: spki.algorithm.clone(),
            private_key: OctetString::new(d.0.clone())?,
            attributes: None,
            public_key: None,
        };
        // The OctetString inside `info` is freed unwiped; see the note on Inner::Bign.
        let pkcs8 = SecretBytes(info.to_der()?);
        Ok(PrivateKey {
            algorithm: KeyAlgorithm::Bign,
            inner: Inner::Bign(key),
            public_key,
            spki,
            pkcs8,
        })
    }

    fn from_ecdsa_pkcs8(algorithm: KeyAlgorithm, der: &[u8]) -> Result<PrivateKey, KeyError> {
        let (alg, curve) = match algorithm {
            KeyAlgorithm::EcdsaP256 => (
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                oids::SECP256R1,
            ),
            KeyAlgorithm::EcdsaP384 => (
                &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                oids::SECP384R1,
            ),
            KeyAlgorithm::Bign => return Err(KeyError::UnsupportedCurve),
        };
        let pair = EcdsaKeyPair::from_pkcs8(alg, der, &SystemRandom::new())
            .map_err(|e| KeyError::InvalidKey(e.to_string()))?;
        let public_key = pair.public_key().as_ref().to_vec();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oids::EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&curve)?),
            },
            subject_public_key: BitString::from_bytes(&public_key)?,
        };
        Ok(PrivateKey {
            algorithm,
            inner: Inner::Ecdsa(pair),
            public_key,
            spki,
            pkcs8: SecretBytes(der.to_vec()),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as it appears in the SubjectPublicKeyInfo BIT STRING: bign x ‖ y (64
    /// octets, little-endian), ECDSA the uncompressed point.
    pub fn public_key_bytes(&self) -> &[u8] {
        &self.public_key
    }

    /// PKCS#8 DER: bign in the bee2evp layout, ECDSA as it was loaded or generated (ring
    /// writes PKCS#8 v1 with the public key inside ECPrivateKey).
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.pkcs8.0.clone()
    }

    /// PEM "PRIVATE KEY" (PKCS#8, unencrypted).
    pub fn to_pkcs8_pem(&self) -> String {
        crate::pki::issue::to_pem(PKCS8_PEM_LABEL, &self.pkcs8.0)
    }

    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }

    /// Whether `spki` holds this key's public key (same algorithm, parameters and key bits).
    pub fn matches_spki(&self, spki: &SubjectPublicKeyInfoOwned) -> bool {
        *spki == self.spki
    }

    /// The certificate / CMS signatureAlgorithm: bign-with-hbelt with a NULL parameter (as
    /// bee2evp writes it), ecdsa-with-SHA256/384 without parameters (RFC 5758).
    pub fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.algorithm {
            KeyAlgorithm::Bign => AlgorithmIdentifierOwned {
                oid: oids::BIGN_WITH_HBELT,
                parameters: Some(Any::null()),
            },
            KeyAlgorithm::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: oids::ECDSA_WITH_SHA256,
                parameters: None,
            },
            KeyAlgorithm::EcdsaP384 => AlgorithmIdentifierOwned {
                oid: oids::ECDSA_WITH_SHA384,
                parameters: None,
            },
        }
    }

    /// The CMS digestAlgorithm: belt-hash with a NULL parameter, sha256/sha384 without
    /// parameters (RFC 5754).
    pub fn digest_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.algorithm {
            KeyAlgorithm::Bign => AlgorithmIdentifierOwned {
                oid: oids::BELT_HASH,
                parameters: Some(Any::null()),
            },
            KeyAlgorithm::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: oids::SHA256,
                parameters: None,
            },
            KeyAlgorithm::EcdsaP384 => AlgorithmIdentifierOwned {
                oid: oids::SHA384,
                parameters: None,
            },
        }
    }

    /// The digest the signature algorithm applies to a message (CMS messageDigest).
    pub fn digest(&self, data: &[u8]) -> Vec<u8> {
        // The verifier's table of digest algorithms knows every one a key here names.
        crate::pki::signature::digest(&self.digest_algorithm(), data).unwrap_or_default()
    }

    /// Signs `message` (hashed inside): bign gives the 48 octets s0 ‖ s1 of STB 34.101.45,
    /// ECDSA a DER Ecdsa-Sig-Value.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Bign(key) => {
                // `Signature::to_bytes` is already the STB layout (s0 16 octets ‖ s1 32 octets,
                // both little-endian), not a big-endian r ‖ s.
                let sig: bign256::dsa::Signature =
                    key.try_sign(message).map_err(|_| KeyError::Signing)?;
                Ok(sig.to_bytes().to_vec())
            }
            Inner::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Signing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bign");

    // Written by `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` (throwaway).
    const OPENSSL_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgte+ty9UpxfkPazC7
LOcvMv8pK2a61hqROK1aEO5vGFqhRANCAASakoSW5pQZKLi20WgOip32ctFTvdhv
paSvpKKtd3YwmlYTQjQrkdcLVZ/gopfx5Ul7IfZqVZKLEer8Uq/e1/8R
-----END PRIVATE KEY-----
";
    const OPENSSL_P384: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBVpG0C/jXzDeJq1byO
caWcfamWIAjsRVjhvpjEqO5IRZ/h0hE2qhZf1UbjzFvlD2ihZANiAATgAfjhGeN+
TJ0eBRwbUtyCGY2CbjxVHcxPPDH3w91HZSqmti3UCH37mZBjGPlGxCFOfutaQnjK
jT13vj2ZhAggfaojJ0d5QTLb0wYSTVHyU1h08KFtYx5nCIL+qbYx97c=
-----END PRIVATE KEY-----
";

    fn read(rel: &str) -> String {
        std::fs::read_to_string(format!("{VECTORS}/{rel}")).unwrap()
    }

    #[test]
    fn algorithm_names_parse() {
        for a in [
            KeyAlgorithm::Bign,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
        ] {
            assert_eq!(a.as_str().parse::<KeyAlgorithm>().unwrap(), a);
        }
        assert!("rsa".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn the_bee2evp_citizen_key_loads_and_signs() {
        let keys: serde_json::Value = serde_json::from_str(&read("x509/keys.json")).unwrap();
        let key = PrivateKey::from_pkcs8_pem(&read("x509/citizen.key.pem")).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Bign);
        let expected = keys["citizen"]["public_key_hex"].as_str().unwrap();
        assert_eq!(hex::encode_upper(key.public_key_bytes()), expected);

        // Writing the key back gives the file bee2evp wrote, octet for octet.
        assert_eq!(
            key.to_pkcs8_pem().trim(),
            read("x509/citizen.key.pem").trim()
        );

        let msg = read("login/challenge.json");
        let sig = key.sign(msg.as_bytes()).unwrap();
        assert_eq!(sig.len(), 48);
        let public = crate::pki::bign::PublicKey::from_stb_bytes(key.public_key_bytes()).unwrap();
        public.verify(msg.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"another message", &sig).is_err());
        assert_eq!(
            key.digest(msg.as_bytes()),
            hex::decode("02CA60EF28499D30272839307D29BCD6858854FC3C7E46A2881FA6C8E1438DDE")
                .unwrap()
        );
    }

    #[test]
    fn the_spki_is_the_one_in_the_vectors_certificate() {
        use x509_cert::Certificate;
        use x509_cert::der::DecodePem;
        let cert = Certificate::from_pem(read("x509/citizen.pem")).unwrap();
        let key = PrivateKey::from_pkcs8_pem(&read("x509/citizen.key.pem")).unwrap();
        assert!(key.matches_spki(&cert.tbs_certificate.subject_public_key_info));
        assert_eq!(cert.signature_algorithm, key.signature_algorithm());
        let other = PrivateKey::from_pkcs8_pem(&read("x509/employee.key.pem")).unwrap();
        assert!(!other.matches_spki(&cert.tbs_certificate.subject_public_key_info));
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for alg in [
            KeyAlgorithm::Bign,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let pem = key.to_pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = PrivateKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.public_key_bytes(), key.public_key_bytes());
            assert_eq!(back.spki(), key.spki());
        }
    }

    #[test]
    fn generated_bign_signatures_verify() {
        let key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
        assert_eq!(key.public_key_bytes().len(), 64);
        let public = crate::pki::bign::PublicKey::from_stb_bytes(key.public_key_bytes()).unwrap();
        let sig = key.sign(b"hello").unwrap();
        public.verify(b"hello", &sig).unwrap();
    }

    #[test]
    fn ecdsa_signatures_verify_with_ring() {
        for (alg, verify_alg) in [
            (KeyAlgorithm::EcdsaP256, &ECDSA_P256_SHA256_ASN1),
            (KeyAlgorithm::EcdsaP384, &ECDSA_P384_SHA384_ASN1),
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let sig = key.sign(b"hello").unwrap();
            assert_eq!(sig[0], 0x30, "DER SEQUENCE");
            UnparsedPublicKey::new(verify_alg, key.public_key_bytes())
                .verify(b"hello", &sig)
                .unwrap();
            assert!(
                UnparsedPublicKey::new(verify_alg, key.public_key_bytes())
                    .verify(b"hellO", &sig)
                    .is_err()
            );
        }
    }

    #[test]
    fn openssl_written_ecdsa_keys_load() {
        let p256 = PrivateKey::from_pkcs8_pem(OPENSSL_P256).unwrap();
        assert_eq!(p256.algorithm(), KeyAlgorithm::EcdsaP256);
        assert_eq!(p256.public_key_bytes().len(), 65);
        let p384 = PrivateKey::from_pkcs8_pem(OPENSSL_P384).unwrap();
        assert_eq!(p384.algorithm(), KeyAlgorithm::EcdsaP384);
        assert_eq!(p384.public_key_bytes().len(), 97);
        let sig = p384.sign(b"x").unwrap();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, p384.public_key_bytes())
            .verify(b"x", &sig)
            .unwrap();
    }

    #[test]
    fn debug_output_has_no_secret() {
        let key = PrivateKey::from_pkcs8_pem(&read("x509/citizen.key.pem")).unwrap();
        let shown = format!("{key:?}").to_uppercase();
        assert!(!shown.contains("A5BE6591A091927B"));
        assert!(shown.contains("52A86608697A5F6B"));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(PrivateKey::from_pkcs8_pem("not a key").is_err());
        assert!(PrivateKey::from_pkcs8_der(&[0x30, 0x00]).is_err());
        let cert_pem = read("x509/citizen.pem");
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&cert_pem),
            Err(KeyError::PemLabel(_))
        ));
    }
}
