//! `vhod dev test-pki`: a throwaway PKI for trying sign-in with an EDS certificate locally — a
//! root (the trust anchor), an issuing CA with its CRL, and leaves for a citizen, a legal-entity
//! representative, a revoked and an expired holder. All names and numbers are fictitious.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::CrlReason;

use crate::pki::issue::{self, CertSpec, Issuer, Revocation};
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::oids;

const DAY: i64 = 86_400;
const YEAR: i64 = 365 * DAY;

#[derive(Debug, Clone)]
pub struct TestPkiOptions {
    pub algorithm: KeyAlgorithm,
    /// Written into the leaves' CRL distribution point.
    pub crl_url: Option<String>,
    /// Unix seconds every validity period is counted from.
    pub now: i64,
}

/// Where things went, for the summary.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub dir: PathBuf,
    pub trust_anchor: PathBuf,
    pub crl: PathBuf,
    pub chain: PathBuf,
    /// (name, certificate, private key)
    pub leaves: Vec<(&'static str, PathBuf, PathBuf)>,
}

impl TestPki {
    /// What to copy where, for the person at the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Test PKI written to {dir}\n\
             \n  Trust anchor:   {anchor}\n  CRL:            {crl}\n  Chain:          {chain}\n\
             \nCopy {trust} into the keys/trust/ directory of your vhod settings\n\
             (the CRL under trust/crl/ as well), then sign in with one of:\n",
            dir = self.dir.display(),
            anchor = self.trust_anchor.display(),
            crl = self.crl.display(),
            chain = self.chain.display(),
            trust = self.dir.join("trust").display(),
        );
        for (name, cert, key) in &self.leaves {
            s.push_str(&format!(
                "  {name:<15} {} (key {})\n",
                cert.display(),
                key.display()
            ));
        }
        s.push_str(
            "\nSign a login challenge with:\n  vhod dev sign-challenge --key KEY.pem --cert CERT.pem CHALLENGE\n",
        );
        s
    }
}

struct Leaf {
    file: &'static str,
    subject: Vec<(ObjectIdentifier, String)>,
    not_before: i64,
    not_after: i64,
    revoked: bool,
}

fn attrs(list: &[(ObjectIdentifier, &str)]) -> Vec<(ObjectIdentifier, String)> {
    list.iter().map(|(o, v)| (*o, (*v).to_string())).collect()
}

fn leaves(now: i64) -> Vec<Leaf> {
    use oids::*;
    // Personal numbers follow the 7-3-1 check-digit pattern of the vectors README, so they look
    // plausible to a profile parser; they are invented.
    vec![
        Leaf {
            file: "citizen",
            subject: attrs(&[
                (AT_COUNTRY, "BY"),
                (AT_SURNAME, "Петрова"),
                (AT_GIVEN_NAME, "Мария"),
                (AT_COMMON_NAME, "Петрова Мария Александровна"),
                (AT_SERIAL_NUMBER, "4120290A012PB3"),
            ]),
            not_before: now - 3600,
            not_after: now + 2 * YEAR,
            revoked: false,
        },
        Leaf {
            file: "representative",
            subject: attrs(&[
                (AT_COUNTRY, "BY"),
                (AT_ORGANIZATION, "ООО «Пример-Сервис»"),
                (AT_ORGANIZATION_IDENTIFIER, "VATBY-191234567"),
                (AT_BY_UNP, "191234567"),
                (AT_TITLE, "Генеральный директор"),
                (AT_SURNAME, "Ковалёв"),
                (AT_GIVEN_NAME, "Андрей"),
                (AT_COMMON_NAME, "Ковалёв Андрей Николаевич"),
                (AT_SERIAL_NUMBER, "3070592B034PB4"),
            ]),
            not_before: now - 3600,
            not_after: now + 2 * YEAR,
            revoked: false,
        },
        Leaf {
            file: "revoked",
            subject: attrs(&[
                (AT_COUNTRY, "BY"),
                (AT_SURNAME, "Сидоренко"),
                (AT_GIVEN_NAME, "Ольга"),
                (AT_COMMON_NAME, "Сидоренко Ольга Викторовна"),
                (AT_SERIAL_NUMBER, "4231187C056PB5"),
            ]),
            not_before: now - 3600,
            not_after: now + 2 * YEAR,
            revoked: true,
        },
        Leaf {
            file: "expired",
            subject: attrs(&[
                (AT_COUNTRY, "BY"),
                (AT_SURNAME, "Мельник"),
                (AT_GIVEN_NAME, "Виктор"),
                (AT_COMMON_NAME, "Мельник Виктор Павлович"),
                (AT_SERIAL_NUMBER, "3150874E078PB5"),
            ]),
            not_before: now - 2 * YEAR,
            not_after: now - DAY,
            revoked: false,
        },
    ]
}

const README: &str = "\
Throwaway test PKI made by `vhod dev test-pki`. Never trust it outside development.

trust/root-ca.pem              trust anchor: copy into keys/trust/
trust/crl/issuing-ca.crl.pem   CRL of the issuing CA (lists revoked.pem), valid 30 days
issuing-ca.pem                 issuing CA certificate (pathlen 0)
chain.pem                      issuing-ca then root-ca
NAME.pem, NAME.key.pem         leaf certificates and their private keys (PKCS#8, unencrypted):
                               citizen, representative (legal-entity head), revoked, expired
private/                       CA private keys (only needed to issue more)

Names, personal identification numbers and UNP are fictitious.
";

/// Writes the test PKI into `dir` (created if missing; it must be empty so nothing is clobbered).
pub fn write(dir: &Path, opts: &TestPkiOptions) -> anyhow::Result<TestPki> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} is not empty; choose a new directory", dir.display());
    }
    for sub in ["trust/crl", "private"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let now = opts.now;
    let alg = opts.algorithm;

    let root_key = PrivateKey::generate(alg)?;
    let ca_subject = |cn: &str| {
        attrs(&[
            (oids::AT_COUNTRY, "BY"),
            (oids::AT_ORGANIZATION, "Тестовый удостоверяющий центр vhod"),
            (oids::AT_COMMON_NAME, cn),
        ])
    };
    let root_der = issue::self_signed(
        &CertSpec::root(
            ca_subject(&format!("vhod test Root CA ({alg})")),
            &issue::random_serial()?,
            now - DAY,
            now + 20 * YEAR,
        ),
        &root_key,
    )?;
    let issuing_key = PrivateKey::generate(alg)?;
    let root = Issuer::new(&root_der, root_key)?;
    let issuing_der = issue::issue(
        &CertSpec::intermediate(
            ca_subject(&format!("vhod test Issuing CA ({alg})")),
            &issue::random_serial()?,
            now - DAY,
            now + 10 * YEAR,
            Some(0),
        ),
        &issuing_key.spki(),
        &root,
    )?;
    let issuing = Issuer::new(&issuing_der, issuing_key)?;

    let root_pem = issue::to_pem("CERTIFICATE", &root_der);
    let issuing_pem = issue::to_pem("CERTIFICATE", &issuing_der);
    let trust_anchor = dir.join("trust/root-ca.pem");
    write_file(&trust_anchor, &root_pem, false)?;
    write_file(&dir.join("issuing-ca.pem"), &issuing_pem, false)?;
    let chain = dir.join("chain.pem");
    write_file(&chain, &format!("{issuing_pem}{root_pem}"), false)?;
    write_file(
        &dir.join("private/root-ca.key.pem"),
        &root.key().to_pkcs8_pem(),
        true,
    )?;
    write_file(
        &dir.join("private/issuing-ca.key.pem"),
        &issuing.key().to_pkcs8_pem(),
        true,
    )?;

    let mut revoked = Vec::new();
    let mut written = Vec::new();
    for leaf in leaves(now) {
        let key = PrivateKey::generate(alg)?;
        let serial = issue::random_serial()?;
        let mut spec = CertSpec::leaf(leaf.subject, &serial, leaf.not_before, leaf.not_after);
        spec.crl_distribution_point = opts.crl_url.clone();
        let der = issue::issue(&spec, &key.spki(), &issuing)?;
        if leaf.revoked {
            revoked.push(Revocation {
                serial,
                revoked_at: now - 2 * 3600,
                reason: Some(CrlReason::KeyCompromise),
            });
        }
        let cert_path = dir.join(format!("{}.pem", leaf.file));
        let key_path = dir.join(format!("{}.key.pem", leaf.file));
        write_file(&cert_path, &issue::to_pem("CERTIFICATE", &der), false)?;
        write_file(&key_path, &key.to_pkcs8_pem(), true)?;
        written.push((leaf.file, cert_path, key_path));
    }

    let crl_der = issue::crl(&issuing, &revoked, now - 3600, now + 30 * DAY, 1)?;
    let crl = dir.join("trust/crl/issuing-ca.crl.pem");
    write_file(&crl, &issue::to_pem("X509 CRL", &crl_der), false)?;
    write_file(&dir.join("README.txt"), README, false)?;

    Ok(TestPki {
        dir: dir.to_path_buf(),
        trust_anchor,
        crl,
        chain,
        leaves: written,
    })
}

fn write_file(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::Certificate;
    use x509_cert::crl::CertificateList;
    use x509_cert::der::{Decode, DecodePem, Encode};

    const NOW: i64 = 1_780_000_000;

    fn run(alg: KeyAlgorithm) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let pki = write(
            &dir,
            &TestPkiOptions {
                algorithm: alg,
                crl_url: Some("http://127.0.0.1:8080/crl/issuing-ca.crl".into()),
                now: NOW,
            },
        )
        .unwrap();

        let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).unwrap();
        let root = Certificate::from_pem(read("trust/root-ca.pem")).unwrap();
        let issuing = Certificate::from_pem(read("issuing-ca.pem")).unwrap();
        let chain = Certificate::load_pem_chain(read("chain.pem").as_bytes()).unwrap();
        assert_eq!(chain, vec![issuing.clone(), root.clone()]);
        for ca in ["root-ca", "issuing-ca"] {
            PrivateKey::from_pkcs8_pem(&read(&format!("private/{ca}.key.pem"))).unwrap();
        }
        assert!(dir.join("README.txt").exists());

        let crl_pem = read("trust/crl/issuing-ca.crl.pem");
        let (label, crl_der) = pem_rfc7468::decode_vec(crl_pem.as_bytes()).unwrap();
        assert_eq!(label, "X509 CRL");
        let crl = CertificateList::from_der(&crl_der).unwrap();
        let revoked = crl.tbs_cert_list.revoked_certificates.unwrap();
        assert_eq!(revoked.len(), 1);

        let names: Vec<&str> = pki.leaves.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names, ["citizen", "representative", "revoked", "expired"]);
        for (name, cert_path, key_path) in &pki.leaves {
            let cert = Certificate::from_pem(std::fs::read_to_string(cert_path).unwrap()).unwrap();
            let key =
                PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(key_path).unwrap()).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert!(
                key.matches_spki(&cert.tbs_certificate.subject_public_key_info),
                "{name}"
            );
            assert_eq!(cert.tbs_certificate.issuer, issuing.tbs_certificate.subject);
            let on_crl = revoked[0].serial_number == cert.tbs_certificate.serial_number;
            assert_eq!(on_crl, *name == "revoked");
            let not_after = cert
                .tbs_certificate
                .validity
                .not_after
                .to_unix_duration()
                .as_secs() as i64;
            assert_eq!(not_after < NOW, *name == "expired");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(key_path).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{name} key readable by others");
            }
        }
        if alg == KeyAlgorithm::Bign {
            // The leaf verifies under the issuing CA with the verification adapter.
            let leaf = Certificate::from_pem(read("citizen.pem")).unwrap();
            let ca_key = crate::pki::bign::PublicKey::from_stb_bytes(
                issuing
                    .tbs_certificate
                    .subject_public_key_info
                    .subject_public_key
                    .raw_bytes(),
            )
            .unwrap();
            ca_key
                .verify(
                    &leaf.tbs_certificate.to_der().unwrap(),
                    leaf.signature.raw_bytes(),
                )
                .unwrap();
        }

        // A second run into the same directory refuses to clobber it.
        assert!(
            write(
                &dir,
                &TestPkiOptions {
                    algorithm: alg,
                    crl_url: None,
                    now: NOW
                }
            )
            .is_err()
        );
        assert!(pki.summary().contains("root-ca.pem"));
    }

    #[test]
    fn writes_a_complete_bign_pki() {
        run(KeyAlgorithm::Bign);
    }

    #[test]
    fn writes_a_complete_ecdsa_pki() {
        run(KeyAlgorithm::EcdsaP256);
    }
}
