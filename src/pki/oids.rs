//! Object identifiers vhod's PKI code names. The national ones come from STB 34.101.45/31; the
//! rest are the usual PKIX/CMS ones (RFC 5280, 5652, 5758, 8017).

use der::asn1::ObjectIdentifier as Oid;

// STB 34.101.31 / 34.101.45 (bign, belt).
pub const BELT_HASH: Oid = Oid::new_unwrap("1.2.112.0.2.0.34.101.31.81");
pub const BIGN_WITH_HBELT: Oid = Oid::new_unwrap("1.2.112.0.2.0.34.101.45.12");
pub const BIGN_PUBKEY: Oid = Oid::new_unwrap("1.2.112.0.2.0.34.101.45.2.1");
pub const BIGN_CURVE256V1: Oid = Oid::new_unwrap("1.2.112.0.2.0.34.101.45.3.1");

// Elliptic curves (RFC 5480, 5758).
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");

// RSA (RFC 8017).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");

// Digests (NIST).
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

// CMS (RFC 5652).
pub const CMS_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
pub const CMS_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
pub const ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
pub const ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
pub const ATTR_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");

// Certificate extensions (RFC 5280 §4.2).
pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
pub const EXT_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");
pub const EXT_ISSUER_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.18");
pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
pub const EXT_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
pub const EXT_CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
pub const EXT_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
pub const EXT_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
pub const EXT_EXTENDED_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
pub const EXT_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");

// Subject attributes (X.520) and the national taxpayer number.
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
pub const AT_SURNAME: Oid = Oid::new_unwrap("2.5.4.4");
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
pub const AT_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
pub const AT_TITLE: Oid = Oid::new_unwrap("2.5.4.12");
pub const AT_GIVEN_NAME: Oid = Oid::new_unwrap("2.5.4.42");
pub const AT_ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");
/// УНП (taxpayer number) in GosSUOK certificates.
pub const AT_BY_UNP: Oid = Oid::new_unwrap("1.2.112.1.2.1.1.1.1.2");
