//! Certificates for the sign-in tests: the reference vectors' PKI (tests/vectors/bign), a bign
//! PKI of our own for people the vectors do not have, deployments that trust both, and the
//! certificate login as the signing software and the login page's script do it.

use std::path::PathBuf;

use base64::Engine;
use serde_json::{Value, json};
use vhod::pki::cms_sign::{SignOptions, sign_detached};
use vhod::pki::keys::PrivateKey;

use super::{Backend, Browser, Deployment, LoginPage, Server, param};

pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bign")
}

pub fn vector(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn vector_anchors() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("vectors-root.pem", vector("x509/root-ca.pem")),
        ("own-root.pem", own_pki().root_pem.clone().into_bytes()),
    ]
}

pub fn vector_crls() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "vectors-intermediate.crl.pem",
            vector("x509/intermediate-ca.crl.pem"),
        ),
        (
            "own-issuing.crl.pem",
            own_pki().crl_pem.clone().into_bytes(),
        ),
    ]
}

/// The check digit of a personal identification number: 7-3-1 weights, digits as values,
/// A=10 … Z=35, sum mod 10 (as in the vectors' README).
pub fn with_check_digit(first13: &str) -> String {
    let sum: u32 = first13
        .chars()
        .zip([7u32, 3, 1].iter().cycle())
        .map(|(c, w)| c.to_digit(36).expect("alphanumeric") * w)
        .sum();
    format!("{first13}{}", sum % 10)
}

pub struct OwnPki {
    pub root_pem: String,
    pub issuing_pem: String,
    pub crl_pem: String,
    pub people: Vec<Person>,
}

/// ((surname, given name, personal number), leaf DER, leaf key as PKCS#8 PEM)
pub type Person = ((String, String, String), Vec<u8>, String);

/// The people of our own PKI: a namesake of the vectors' citizen with another personal
/// number, and Пётр Сидоров's certificate written in capitals and with е for ё.
pub const NAMESAKE: (&str, &str, &str) = ("Иванов", "Иван", "3010185A002PB");
pub const SIDOROV: (&str, &str, &str) = ("СИДОРОВ", "Петр", "3150575B004PB");

pub fn own_pki() -> &'static OwnPki {
    use vhod::pki::issue::{self, CertSpec, Issuer};
    use vhod::pki::keys::KeyAlgorithm;
    use vhod::pki::oids;
    static PKI: std::sync::OnceLock<OwnPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let ca = |cn: &str| {
            vec![
                (oids::AT_COUNTRY, "BY".to_string()),
                (oids::AT_ORGANIZATION, "vhod step-up tests".to_string()),
                (oids::AT_COMMON_NAME, cn.to_string()),
            ]
        };
        let root_key = PrivateKey::generate(KeyAlgorithm::Bign).expect("key");
        let root_der = issue::self_signed(
            &CertSpec::root(
                ca("step-up Root CA"),
                &issue::random_serial().expect("serial"),
                now - 86_400,
                now + 10 * 365 * 86_400,
            ),
            &root_key,
        )
        .expect("root");
        let root = Issuer::new(&root_der, root_key).expect("root issuer");
        let issuing_key = PrivateKey::generate(KeyAlgorithm::Bign).expect("key");
        let issuing_der = issue::issue(
            &CertSpec::intermediate(
                ca("step-up Issuing CA"),
                &issue::random_serial().expect("serial"),
                now - 86_400,
                now + 5 * 365 * 86_400,
                Some(0),
            ),
            &issuing_key.spki(),
            &root,
        )
        .expect("intermediate");
        let issuing = Issuer::new(&issuing_der, issuing_key).expect("issuing issuer");
        let mut people = Vec::new();
        for (surname, given, pn13) in [NAMESAKE, SIDOROV] {
            let pn = with_check_digit(pn13);
            let key = PrivateKey::generate(KeyAlgorithm::Bign).expect("key");
            let der = issue::issue(
                &CertSpec::leaf(
                    vec![
                        (oids::AT_COUNTRY, "BY".to_string()),
                        (oids::AT_SURNAME, surname.to_string()),
                        (oids::AT_GIVEN_NAME, given.to_string()),
                        (oids::AT_COMMON_NAME, format!("{surname} {given}")),
                        (oids::AT_SERIAL_NUMBER, pn.clone()),
                    ],
                    &issue::random_serial().expect("serial"),
                    now - 3600,
                    now + 365 * 86_400,
                ),
                &key.spki(),
                &issuing,
            )
            .expect("leaf");
            people.push((
                (surname.to_string(), given.to_string(), pn),
                der,
                key.to_pkcs8_pem(),
            ));
        }
        let crl = issue::crl(&issuing, &[], now - 3600, now + 30 * 86_400, 1).expect("CRL");
        OwnPki {
            root_pem: issue::to_pem("CERTIFICATE", &root_der),
            issuing_pem: issue::to_pem("CERTIFICATE", &issuing_der),
            crl_pem: issue::to_pem("X509 CRL", &crl),
            people,
        }
    })
}

pub async fn trusting(backend: Backend) -> Option<Deployment> {
    let d = Deployment::with_trust(backend, &vector_anchors(), &vector_crls()).await?;
    // Two anchors: the embedded profile, authoritative for personal numbers, must name the CAs
    // it is the authority for (vhod refuses to start otherwise).
    let roots: Vec<String> = vector_anchors()
        .iter()
        .map(|(_, pem)| {
            let pem = std::str::from_utf8(pem).expect("PEM");
            let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).expect("a PEM certificate");
            format!("\"{}\"", hex::encode(vhod::secrets::sha256(&der)))
        })
        .collect();
    let policy = vhod::pki::profile::EMBEDDED.replacen(
        "name = \"national\"\n",
        &format!(
            "name = \"national\"\nmatch_ca_sha256 = [{}]\n",
            roots.join(", ")
        ),
        1,
    );
    std::fs::write(d.dir.path().join("certificates.toml"), policy).expect("policies");
    Some(d)
}

/// Someone with a certificate and its key: what the signing software holds.
pub struct Holder {
    /// Leaf followed by the chain, as the login posts it.
    pub pem_bundle: String,
    pub leaf_der: Vec<u8>,
    pub key: PrivateKey,
}

impl Holder {
    /// A leaf of the vectors (citizen, employee, revoked…), with chain.pem.
    pub fn vector(name: &str) -> Holder {
        let pem = String::from_utf8(vector(&format!("x509/{name}.pem"))).expect("PEM");
        let chain = String::from_utf8(vector("x509/chain.pem")).expect("PEM");
        let key = std::str::from_utf8(&vector(&format!("x509/{name}.key.pem")))
            .expect("PEM")
            .to_string();
        Holder {
            pem_bundle: format!("{}\n{}", pem.trim_end(), chain),
            leaf_der: vector(&format!("x509/{name}.der")),
            key: PrivateKey::from_pkcs8_pem(&key).expect("key"),
        }
    }

    /// A leaf of our own PKI: (holder, its personal number).
    pub fn own(person: (&str, &str, &str)) -> (Holder, String) {
        let pki = own_pki();
        let ((_, _, pn), der, key) = pki
            .people
            .iter()
            .find(|((sn, gn, _), _, _)| sn == person.0 && gn == person.1)
            .expect("a person of the own PKI");
        let leaf_pem = vhod::pki::issue::to_pem("CERTIFICATE", der);
        (
            Holder {
                pem_bundle: format!("{leaf_pem}{}{}", pki.issuing_pem, pki.root_pem),
                leaf_der: der.clone(),
                key: PrivateKey::from_pkcs8_pem(key).expect("key"),
            },
            pn.clone(),
        )
    }

    pub fn sign_cms(&self, challenge: &[u8]) -> String {
        let cms = sign_detached(challenge, &self.leaf_der, &self.key, SignOptions::default())
            .expect("CMS signature");
        base64::engine::general_purpose::STANDARD.encode(cms)
    }

    pub fn sign_raw(&self, challenge: &[u8]) -> String {
        hex::encode(self.key.sign(challenge).expect("raw signature"))
    }
}

/// The CSRF token of a login page: the password form's hidden field, or (when the page shows
/// only the certificate method) the `<meta name="csrf-token">` the script reads.
pub fn csrf_of(page: &LoginPage) -> String {
    if !page.csrf.is_empty() {
        return page.csrf.clone();
    }
    let marker = "name=\"csrf-token\" content=\"";
    page.html
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

pub fn tx_of(url: &str) -> String {
    param(
        &if url.starts_with('/') {
            format!("http://x{url}")
        } else {
            url.to_string()
        },
        "tx",
    )
    .unwrap_or_default()
}

/// Challenge → signature → `POST /login/certificate`: (status, JSON).
pub async fn cert_attempt(
    server: &Server,
    browser: &Browser,
    page: &LoginPage,
    holder: &Holder,
    raw: bool,
) -> (u16, Value) {
    let csrf = csrf_of(page);
    assert!(!csrf.is_empty(), "no CSRF token on the login page");
    let (status, ch) = browser.cert_challenge(server, &csrf).await;
    assert_eq!(status, 200, "challenge: {ch}");
    assert_eq!(ch["expires_in"], 120, "{ch}");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(
            ch["challenge"]
                .as_str()
                .expect("challenge")
                .trim_end_matches('='),
        )
        .expect("base64url challenge");
    let body = if raw {
        json!({"certificate": holder.pem_bundle, "signature_raw": holder.sign_raw(&challenge)})
    } else {
        json!({"certificate": holder.pem_bundle, "signature": holder.sign_cms(&challenge)})
    };
    browser.cert_login(server, &csrf, &body).await
}

/// A certificate sign-in that must succeed: returns the `redirect` it answers.
pub async fn cert_sign_in(
    server: &Server,
    browser: &Browser,
    page: &LoginPage,
    holder: &Holder,
) -> String {
    let (status, body) = cert_attempt(server, browser, page, holder, false).await;
    assert_eq!(status, 200, "certificate login: {body}");
    body["redirect"].as_str().expect("a redirect").to_string()
}
