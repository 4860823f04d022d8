//! `vhod cert check` and `vhod cert verify`: the login's certificate checks, for operators and
//! support staff, against the same trust anchors, CRLs and profiles the server uses. Both
//! print one JSON object and exit 0 only when the answer is "valid".

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::pki::cert::parse_bundle;
use crate::pki::trust::Validated;
use crate::pki::verify::{Proof, verify_signed, verify_signed_with};
use crate::pki::{PkiError, Reason};

#[derive(Subcommand)]
pub enum CertCommand {
    /// Validate a certificate: chain to a trust anchor, signatures, validity, usage, CRLs.
    Check(CheckArgs),
    /// Verify a signature (CMS SignedData, or a raw signature with --cert) over a file.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The certificate (PEM or DER); a PEM may carry the intermediates after it.
    cert: PathBuf,
    /// Intermediate certificates (PEM bundle).
    #[arg(long)]
    chain: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The signed data.
    #[arg(long)]
    data: PathBuf,
    /// CMS SignedData over the data, DER or base64.
    #[arg(
        long,
        conflicts_with = "signature_raw",
        required_unless_present = "signature_raw"
    )]
    signature: Option<PathBuf>,
    /// Raw signature over the data, hex (bign: 48 octets).
    #[arg(long, requires = "cert")]
    signature_raw: Option<String>,
    /// The signer's certificate (needed with --signature-raw; with CMS, the embedded one is
    /// used when absent).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Intermediate certificates (PEM bundle).
    #[arg(long)]
    chain: Option<PathBuf>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn bundle(cert: Option<&PathBuf>, chain: Option<&PathBuf>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(cert) = cert else {
        return Ok(None);
    };
    let mut out = read(cert)?;
    if let Some(chain) = chain {
        let more = read(chain)?;
        // A DER leaf cannot be followed by a PEM chain: turn it into PEM first.
        if !out.trim_ascii_start().starts_with(b"-----BEGIN") {
            out = pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &out)
                .map_err(|e| anyhow::anyhow!("encoding the certificate as PEM: {e}"))?
                .into_bytes();
        }
        out.push(b'\n');
        out.extend_from_slice(&more);
    }
    Ok(Some(out))
}

fn report(result: Result<Validated, PkiError>) -> (bool, Value) {
    match result {
        Ok(v) => {
            let id = &v.identity;
            (
                true,
                json!({
                    "result": "valid",
                    "subject": id.subject,
                    "issuer": id.issuer,
                    "serial": id.serial,
                    "sha256": id.fingerprint,
                    "personal_number": id.personal_number,
                    "surname": id.surname,
                    "given_name": id.given_name,
                    "patronymic": id.patronymic,
                    "unp": id.unp,
                    "organization": id.organization,
                    "kind": id.kind,
                    "profile": id.profile,
                    "authoritative_personal_number": id.authoritative,
                    "path": v.path.iter().map(|c| c.subject()).collect::<Vec<_>>(),
                }),
            )
        }
        Err(e) => (
            false,
            json!({"result": e.reason.as_str(), "detail": e.detail}),
        ),
    }
}

fn finish(valid: bool, out: Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out}")?;
    stdout.flush()?;
    if !valid {
        // The answer is printed; the exit status carries "not valid" for scripts.
        std::process::exit(1);
    }
    Ok(())
}

pub async fn run(settings: &Settings, command: CertCommand) -> anyhow::Result<()> {
    let trust = crate::server::load_trust(settings)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let now = crate::clock::now();
    match command {
        CertCommand::Check(a) => {
            let input = bundle(Some(&a.cert), a.chain.as_ref())?.unwrap_or_default();
            let result = match parse_bundle(&input) {
                Ok(certs) => {
                    let mut it = certs.into_iter();
                    match it.next() {
                        Some(leaf) => trust.validate(leaf, it.collect(), now, &http).await,
                        None => Err(PkiError::malformed("no certificate")),
                    }
                }
                Err(e) => Err(e),
            };
            let (valid, out) = report(result);
            finish(valid, out)
        }
        CertCommand::Verify(a) => {
            let data = read(&a.data)?;
            let certs = bundle(a.cert.as_ref(), a.chain.as_ref())?;
            // Without --cert the CMS names its signer; --chain then only helps build the path.
            let intermediates = match (&a.cert, &a.chain) {
                (None, Some(chain)) => match parse_bundle(&read(chain)?) {
                    Ok(c) => c,
                    Err(e) => {
                        return finish(
                            false,
                            json!({"result": e.reason.as_str(), "detail": e.detail}),
                        );
                    }
                },
                _ => Vec::new(),
            };
            let result = match (&a.signature, &a.signature_raw) {
                (Some(sig), _) => {
                    let sig = read(sig)?;
                    verify_signed_with(
                        &trust,
                        certs.as_deref(),
                        intermediates,
                        Proof::Cms(&sig),
                        &data,
                        now,
                        &http,
                    )
                    .await
                }
                (None, Some(h)) => match hex::decode(h.trim()) {
                    Ok(raw) => {
                        verify_signed(
                            &trust,
                            certs.as_deref(),
                            Proof::Raw(&raw),
                            &data,
                            now,
                            &http,
                        )
                        .await
                    }
                    Err(_) => Err(PkiError::new(
                        Reason::Malformed,
                        "--signature-raw is not hex",
                    )),
                },
                (None, None) => Err(PkiError::malformed("no signature")),
            };
            let (valid, out) = report(result);
            finish(valid, out)
        }
    }
}
