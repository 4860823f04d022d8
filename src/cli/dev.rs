//! `vhod dev …`: developer tools for sign-in with an EDS certificate. They work offline, without
//! settings or a database.

use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use x509_cert::Certificate;
use x509_cert::der::Decode;

use crate::dev::test_pki::{self, TestPkiOptions};
use crate::pki::cms_sign::{self, SignOptions};
use crate::pki::keys::{KeyAlgorithm, PrivateKey};

#[derive(Subcommand)]
pub enum DevCommand {
    /// Write a throwaway test PKI (root, issuing CA, CRL, leaf certificates and keys) into DIR.
    TestPki(TestPkiArgs),
    /// Sign a login challenge as a citizen's signing software would, for trying the login by hand.
    SignChallenge(SignChallengeArgs),
}

#[derive(Args)]
pub struct TestPkiArgs {
    /// A new or empty directory.
    dir: PathBuf,
    /// bign (STB 34.101.45), ecdsa-p256 or ecdsa-p384.
    #[arg(long, default_value = "bign", value_parser = parse_algorithm)]
    algorithm: KeyAlgorithm,
    /// CRL distribution point URI to write into the leaf certificates.
    #[arg(long)]
    crl_url: Option<String>,
}

#[derive(Args)]
pub struct SignChallengeArgs {
    /// The signer's private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// The signer's certificate, PEM or DER.
    #[arg(long)]
    cert: PathBuf,
    /// Print the raw signature in hex instead of a CMS SignedData in base64.
    #[arg(long)]
    raw: bool,
    /// The challenge: base64url of the octets to sign (padding optional).
    challenge: String,
}

fn parse_algorithm(s: &str) -> Result<KeyAlgorithm, String> {
    s.parse()
        .map_err(|e: crate::pki::keys::KeyError| e.to_string())
}

pub fn run(command: DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::TestPki(a) => {
            let pki = test_pki::write(
                &a.dir,
                &TestPkiOptions {
                    algorithm: a.algorithm,
                    crl_url: a.crl_url,
                    now: crate::clock::now(),
                },
            )?;
            emit(&pki.summary())
        }
        DevCommand::SignChallenge(a) => emit(&format!("{}\n", sign_challenge(&a)?)),
    }
}

/// Writes to stdout, reporting a closed pipe (`… | head`) as an error instead of panicking.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn sign_challenge(a: &SignChallengeArgs) -> anyhow::Result<String> {
    let key_pem =
        std::fs::read_to_string(&a.key).with_context(|| format!("reading {}", a.key.display()))?;
    // The path, not the key error's detail, is what the developer needs; key errors never carry
    // secret material either way.
    let key = PrivateKey::from_pkcs8_pem(&key_pem)
        .with_context(|| format!("loading the private key {}", a.key.display()))?;
    let cert_der = read_certificate(&a.cert)?;
    let cert = Certificate::from_der(&cert_der)
        .with_context(|| format!("parsing the certificate {}", a.cert.display()))?;
    if !key.matches_spki(&cert.tbs_certificate.subject_public_key_info) {
        bail!(
            "the key {} does not belong to the certificate {}",
            a.key.display(),
            a.cert.display()
        );
    }
    let challenge = decode_base64url(&a.challenge)?;
    if a.raw {
        Ok(hex::encode(key.sign(&challenge)?))
    } else {
        let cms = cms_sign::sign_detached(&challenge, &cert_der, &key, SignOptions::default())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(cms))
    }
}

/// A certificate file in PEM ("CERTIFICATE", the first one if several) or DER.
fn read_certificate(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if text_start.is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN")) {
        let mut chain = Certificate::load_pem_chain(&bytes)
            .with_context(|| format!("parsing the PEM certificate {}", path.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        Ok(x509_cert::der::Encode::to_der(&chain.remove(0))?)
    } else {
        Ok(bytes)
    }
}

fn decode_base64url(s: &str) -> anyhow::Result<Vec<u8>> {
    let trimmed = s.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .context("the challenge is not base64url")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_decode_with_and_without_padding() {
        assert_eq!(decode_base64url("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(decode_base64url("_-8=").unwrap(), [0xff, 0xef]);
        assert!(decode_base64url("+/8=").is_err());
    }

    #[test]
    fn sign_challenge_refuses_a_foreign_key_and_signs_with_the_right_one() {
        let v = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bign");
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(std::fs::read(format!("{v}/login/challenge.json")).unwrap());
        let args = |key: &str, raw: bool| SignChallengeArgs {
            key: format!("{v}/x509/{key}.key.pem").into(),
            cert: format!("{v}/x509/citizen.der").into(),
            raw,
            challenge: challenge.clone(),
        };
        let err = sign_challenge(&args("employee", false)).unwrap_err();
        assert!(err.to_string().contains("does not belong"));

        let raw = hex::decode(sign_challenge(&args("citizen", true)).unwrap()).unwrap();
        let expected_pub = hex::decode("52A86608697A5F6BEDDAECE246A7226E00C8C842EE97CF693465FA1E45B1F550EB34202460D605FF80D23A7C0E7141DA21A4D39E24CC7CB2C2C0E6FB5A3678BD").unwrap();
        let public = crate::pki::bign::PublicKey::from_stb_bytes(&expected_pub).unwrap();
        let content = std::fs::read(format!("{v}/login/challenge.json")).unwrap();
        public.verify(&content, &raw).unwrap();

        let cms = sign_challenge(&args("citizen", false)).unwrap();
        let der = base64::engine::general_purpose::STANDARD
            .decode(cms)
            .unwrap();
        cms::content_info::ContentInfo::from_der(&der).unwrap();
    }
}
