//! Certificate sign-in under attack and across trust anchors, over HTTP:
//!
//! - a login whose certificates make path building expensive (many look-alike CAs with the same
//!   names and key) is refused at once with a reason, while other sign-ins go on;
//! - CRLs are fetched only after the proof of possession, once per URL however many logins wait
//!   for it, and an oversize CRL is cut off while it streams;
//! - a personal number finds an account only through a profile authoritative for numbers; a
//!   certificate of another anchor with the same number gets an account of its own;
//! - accounts made by a certificate get a readable `preferred_username`.
//!
//! The PKIs are made at run time with `vhod::pki::issue`; the CRL distribution point is a small
//! server on 127.0.0.1 that counts its requests.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use der::{Decode, Encode};
use openidconnect::core::CoreIdTokenClaims;
use openidconnect::{AuthorizationCode, PkceCodeVerifier, TokenResponse};
use serde_json::{Value, json};
use vhod::pki::cert::Cert;
use vhod::pki::cms_sign::{SignOptions, sign_detached};
use vhod::pki::issue::{self, CertSpec, Issuer, Revocation};
use vhod::pki::keys::{KeyAlgorithm, PrivateKey};
use vhod::pki::oids;

const DAY: i64 = 86_400;
/// Generous: what a refused or accepted sign-in takes is milliseconds; an exponential path
/// search takes hours. Only a hang trips this.
const PATIENCE: Duration = Duration::from_secs(60);

macro_rules! per_backend {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                $body($crate::common::Backend::Shared).await;
            }
        }
    };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn b64url_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn pem(der: &[u8]) -> String {
    issue::to_pem("CERTIFICATE", der)
}

fn name(cn: &str) -> Vec<(der::asn1::ObjectIdentifier, String)> {
    vec![
        (oids::AT_COUNTRY, "BY".to_string()),
        (oids::AT_COMMON_NAME, cn.to_string()),
    ]
}

/// A certificate holder: the PEM it presents (leaf first), its leaf's DER and its key.
struct Holder {
    pem: String,
    leaf: Vec<u8>,
    key: PrivateKey,
}

impl Holder {
    /// The same holder presenting `extra` certificates after its own in the PEM.
    fn with_pem_extra(&self, extra: &[Vec<u8>]) -> Holder {
        let mut pem_bundle = self.pem.clone();
        for c in extra {
            pem_bundle.push_str(&pem(c));
        }
        Holder {
            pem: pem_bundle,
            leaf: self.leaf.clone(),
            key: PrivateKey::from_pkcs8_der(&self.key.to_pkcs8_der()).expect("the key"),
        }
    }

    /// `{"certificate", "signature"}`: detached CMS over `content`, with `extra` certificates
    /// added to the message's `certificates` set.
    fn cms_with(&self, content: &[u8], extra: &[Vec<u8>]) -> Value {
        let der = sign_detached(content, &self.leaf, &self.key, SignOptions::default())
            .expect("CMS signing");
        let der = if extra.is_empty() {
            der
        } else {
            with_certificates(&der, extra)
        };
        json!({"certificate": self.pem, "signature": b64(&der)})
    }

    fn cms(&self, content: &[u8]) -> Value {
        self.cms_with(content, &[])
    }
}

/// The CMS message with more certificates in its `certificates` set.
fn with_certificates(cms_der: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{CertificateSet, SignedData};
    let mut ci = ContentInfo::from_der(cms_der).expect("ContentInfo");
    let mut sd: SignedData = ci.content.decode_as().expect("SignedData");
    let mut all: Vec<CertificateChoices> = sd
        .certificates
        .take()
        .map(|s| s.0.into_vec())
        .unwrap_or_default();
    for der in extra {
        all.push(CertificateChoices::Certificate(
            x509_cert::Certificate::from_der(der).expect("certificate"),
        ));
    }
    sd.certificates = Some(CertificateSet(
        der::asn1::SetOfVec::try_from(all).expect("a set of distinct certificates"),
    ));
    ci.content = der::Any::encode_from(&sd).expect("SignedData DER");
    ci.to_der().expect("ContentInfo DER")
}

/// A root and an issuing CA of one algorithm, named after `label`.
struct TestCa {
    root_der: Vec<u8>,
    issuing_pem: String,
    issuing: Issuer,
    alg: KeyAlgorithm,
}

impl TestCa {
    fn new(alg: KeyAlgorithm, label: &str) -> TestCa {
        let now = now();
        let root_key = PrivateKey::generate(alg).expect("root key");
        let root_der = issue::self_signed(
            &CertSpec::root(
                name(&format!("{label} Root")),
                &[1],
                now - DAY,
                now + 3650 * DAY,
            ),
            &root_key,
        )
        .expect("root");
        let root = Issuer::new(&root_der, root_key).expect("root issuer");
        let issuing_key = PrivateKey::generate(alg).expect("issuing key");
        let issuing_der = issue::issue(
            &CertSpec::intermediate(
                name(&format!("{label} Issuing")),
                &[2],
                now - DAY,
                now + 1825 * DAY,
                Some(0),
            ),
            &issuing_key.spki(),
            &root,
        )
        .expect("issuing CA");
        TestCa {
            root_der,
            issuing_pem: pem(&issuing_der),
            issuing: Issuer::new(&issuing_der, issuing_key).expect("issuing issuer"),
            alg,
        }
    }

    fn root_sha256(&self) -> String {
        hex::encode(Cert::from_der(&self.root_der).expect("root").fingerprint)
    }

    /// A person's certificate (+ the issuing CA), optionally naming a CRL distribution point.
    fn person(&self, pn: &str, surname: &str, given: &str, crl_url: Option<String>) -> Holder {
        let key = PrivateKey::generate(self.alg).expect("leaf key");
        let serial = issue::random_serial().expect("serial");
        let mut spec = CertSpec::leaf(
            vec![
                (oids::AT_COUNTRY, "BY".to_string()),
                (oids::AT_SURNAME, surname.to_string()),
                (oids::AT_GIVEN_NAME, given.to_string()),
                (oids::AT_COMMON_NAME, format!("{surname} {given} Тестович")),
                (oids::AT_SERIAL_NUMBER, pn.to_string()),
            ],
            &serial,
            now() - 3600,
            now() + 365 * DAY,
        );
        spec.crl_distribution_point = crl_url;
        let leaf = issue::issue(&spec, &key.spki(), &self.issuing).expect("leaf");
        Holder {
            pem: format!("{}{}", pem(&leaf), self.issuing_pem),
            leaf,
            key,
        }
    }

    /// A current, empty CRL of the issuing CA (DER).
    fn crl(&self) -> Vec<u8> {
        let none: Vec<Revocation> = Vec::new();
        issue::crl(&self.issuing, &none, now() - 3600, now() + 7 * DAY, 1).expect("CRL")
    }

    fn anchor(&self, file: &'static str) -> (&'static str, Vec<u8>) {
        (file, pem(&self.root_der).into_bytes())
    }

    fn installed_crl(&self, file: &'static str) -> (&'static str, Vec<u8>) {
        (file, issue::to_pem("X509 CRL", &self.crl()).into_bytes())
    }
}

/// `count` CA certificates that all carry the same subject and issuer name and the same key,
/// each signed by that key, and a person's certificate issued under that name: every one of them
/// is a candidate issuer of every other, which is what made path building try every ordering.
fn look_alikes(count: usize) -> (Holder, Vec<Vec<u8>>) {
    let now = now();
    let alg = KeyAlgorithm::EcdsaP256;
    let key = PrivateKey::generate(alg).expect("key");
    let spec = |serial: u32| {
        CertSpec::intermediate(
            name("L"),
            &(serial + 1).to_be_bytes(),
            now - DAY,
            now + DAY,
            None,
        )
    };
    let seed = issue::self_signed(&spec(0), &key).expect("seed");
    let signer = Issuer::new(
        &seed,
        PrivateKey::from_pkcs8_der(&key.to_pkcs8_der()).unwrap(),
    )
    .expect("issuer");
    let pool: Vec<Vec<u8>> = (1..=count as u32)
        .map(|i| issue::issue(&spec(i), &key.spki(), &signer).expect("look-alike"))
        .collect();
    let person_key = PrivateKey::generate(alg).expect("person key");
    let leaf = issue::issue(
        &CertSpec::leaf(
            vec![
                (oids::AT_COUNTRY, "BY".to_string()),
                (oids::AT_SURNAME, "Злоумышленник".to_string()),
                (oids::AT_GIVEN_NAME, "Пётр".to_string()),
                (oids::AT_SERIAL_NUMBER, "3010185A001PB3".to_string()),
            ],
            &[7],
            now - DAY,
            now + DAY,
        ),
        &person_key.spki(),
        &signer,
    )
    .expect("leaf");
    (
        Holder {
            pem: pem(&leaf),
            leaf,
            key: person_key,
        },
        pool,
    )
}

/// A browser at the login page of a fresh sign-in for "rp", with a challenge issued.
struct Attempt {
    browser: Browser,
    csrf: String,
    challenge: Vec<u8>,
    pending: Pending,
}

async fn attempt(server: &Server, client: &Rp) -> Attempt {
    let browser = Browser::new();
    let pending = authorization(client, &["profile"], &[("prompt", "login")]);
    let page = browser
        .authorize(server, &pending.url)
        .await
        .expect_err("a login page");
    let (status, body) = browser.cert_challenge(server, &page.csrf).await;
    assert_eq!(status, 200, "challenge: {body}");
    let challenge = b64url_decode(body["challenge"].as_str().expect("a challenge"));
    Attempt {
        browser,
        csrf: page.csrf,
        challenge,
        pending,
    }
}

/// `POST /login/certificate` within `PATIENCE`; never a 5xx.
async fn post_login(server: &Server, a: &Attempt, body: &Value) -> (u16, Value) {
    let res = a
        .browser
        .http
        .post(server.url("/login/certificate"))
        .header("X-CSRF-Token", &a.csrf)
        .json(body)
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /login/certificate got no answer in {PATIENCE:?}: {e}"));
    let status = res.status().as_u16();
    let answer: Value = res.json().await.unwrap_or(Value::Null);
    assert!(
        status < 500,
        "POST /login/certificate answered {status}: {answer}"
    );
    (status, answer)
}

fn assert_refused(got: (u16, Value), status: u16, reason: &str) {
    let (code, answer) = got;
    assert_eq!(
        (code, answer["error"].as_str()),
        (status, Some(reason)),
        "expected {status} {reason}, got {code} {answer}"
    );
    assert!(
        answer["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "a description: {answer}"
    );
}

async fn audit_reason_count(d: &Deployment, reason: &str) -> i64 {
    d.count_events(|e| {
        e.kind == "login"
            && e.outcome == "failure"
            && e.method.as_deref() == Some("certificate")
            && e.reason.as_deref() == Some(reason)
    })
    .await
}

/// The code of a successful sign-in → tokens → the verified ID token's claims.
async fn finish(server: &Server, client: &Rp, answer: &Value, p: &Pending) -> CoreIdTokenClaims {
    let back = answer["redirect"].as_str().expect("a redirect");
    let code = code_from(server, back, p);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &p.nonce)
        .expect("the ID token verifies")
        .clone()
}

/// Signs `holder` in with a fresh browser and returns the ID token's claims.
async fn signs_in(server: &Server, client: &Rp, holder: &Holder) -> CoreIdTokenClaims {
    let a = attempt(server, client).await;
    let (status, answer) = post_login(server, &a, &holder.cms(&a.challenge)).await;
    assert_eq!(status, 200, "certificate login refused: {answer}");
    finish(server, client, &answer, &a.pending).await
}

// ---------------------------------------------------------------------------------------------
// 1. Path building is bounded: look-alike CAs are refused at once, other sign-ins go on
// ---------------------------------------------------------------------------------------------

async fn hostile_pools(backend: Backend) {
    let ca = TestCa::new(KeyAlgorithm::EcdsaP256, "Honest");
    let Some(d) = Deployment::with_trust(
        backend,
        &[ca.anchor("root.pem")],
        &[ca.installed_crl("issuing.crl.pem")],
    )
    .await
    else {
        return;
    };
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // A hundred look-alikes in the CMS message (the PEM carries the leaf alone): the whole
    // request stays under the 64 KiB body limit.
    let (attacker, hundred) = look_alikes(100);
    let a = attempt(&server, &client).await;
    let body = attacker.cms_with(&a.challenge, &hundred);
    let size = serde_json::to_vec(&body).unwrap().len();
    assert!(size < 64 * 1024, "the hostile body is {size} octets");
    assert_refused(post_login(&server, &a, &body).await, 400, "malformed");
    assert_eq!(audit_reason_count(&d, "malformed").await, 1);

    // Within the cap (the PEM carries eight look-alikes): refused as untrusted after a handful
    // of signature checks, not after every ordering of the eight.
    let (attacker, eight) = look_alikes(8);
    let in_pem = attacker.with_pem_extra(&eight);
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &in_pem.cms(&a.challenge)).await,
        403,
        "untrusted",
    );

    // Several hostile logins at once, and an honest person signing in meanwhile: everyone gets
    // an answer, the honest one a session.
    let honest = ca.person("4120290A012PB3", "Петрова", "Мария", None);
    let mut hostile = Vec::new();
    for _ in 0..4 {
        let a = attempt(&server, &client).await;
        let body = attacker.cms_with(&a.challenge, &hundred);
        hostile.push((a, body));
    }
    let honest_try = attempt(&server, &client).await;
    let honest_body = honest.cms(&honest_try.challenge);
    let refusals = futures_util::future::join_all(
        hostile.iter().map(|(a, body)| post_login(&server, a, body)),
    );
    let (refusals, accepted, health) = tokio::join!(
        refusals,
        post_login(&server, &honest_try, &honest_body),
        http().get(server.url("/healthz")).timeout(PATIENCE).send()
    );
    for r in refusals {
        assert_refused(r, 400, "malformed");
    }
    assert_eq!(accepted.0, 200, "the honest sign-in: {}", accepted.1);
    assert!(health.expect("/healthz answers").status().is_success());
    finish(&server, &client, &accepted.1, &honest_try.pending).await;
    drop(server);

    // The ceiling on signature checks is a setting: below what the eight need, the login is
    // refused for the work it asks, with its own reason.
    let server = d
        .start_with(&[("VHOD_CERT_MAX_SIGNATURE_CHECKS", "4")])
        .await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &in_pem.cms(&a.challenge)).await,
        400,
        "too_complex",
    );
    assert_eq!(audit_reason_count(&d, "too_complex").await, 1);
    // An honest chain needs far fewer: it still signs in.
    signs_in(&server, &client, &honest).await;
    // And the cap on certificates is a setting too.
    drop(server);
    let server = d.start_with(&[("VHOD_CERT_MAX_CHAIN_CERTS", "4")]).await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &in_pem.cms(&a.challenge)).await,
        400,
        "malformed",
    );
    // It counts the PEM's certificates and the CMS message's together (besides the leaf,
    // each once): three look-alikes in one and two in the other are within it alone, five
    // in all are not.
    let split = attacker.with_pem_extra(&eight[..3]);
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &split.cms_with(&a.challenge, &eight[3..5])).await,
        400,
        "malformed",
    );
    signs_in(&server, &client, &honest).await;
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "a panic in the log:\n{logs}");
}
per_backend!(hostile_certificate_pools, super::hostile_pools);

// ---------------------------------------------------------------------------------------------
// 2. CRLs: after the proof, once per URL, cut off while streaming
// ---------------------------------------------------------------------------------------------

/// A CRL distribution point: `/slow/…` answers after a pause (so that parallel logins overlap),
/// `/endless.crl` streams octets until the client hangs up; every request is counted.
#[derive(Default)]
struct CrlPoint {
    files: Mutex<HashMap<String, Vec<u8>>>,
    hits: Mutex<HashMap<String, usize>>,
    streamed: AtomicUsize,
    hung_up: AtomicBool,
}

impl CrlPoint {
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// What the endless stream would send in all if nobody cut it off.
const ENDLESS_TOTAL: usize = 16 * 1024 * 1024;
const ENDLESS_CHUNK: usize = 16 * 1024;

/// Counts what the stream handed to the connection and notices when it is dropped.
struct Streamed(Arc<CrlPoint>);

impl Drop for Streamed {
    fn drop(&mut self) {
        self.0.hung_up.store(true, Ordering::SeqCst);
    }
}

async fn serve_crl_point(state: Arc<CrlPoint>) -> u16 {
    use axum::body::Body;
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let state = state.clone();
        async move {
            let path = uri.path().to_string();
            *state.hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
            if path == "/endless.crl" {
                let guard = Streamed(state.clone());
                let chunks = futures_util::stream::unfold(0usize, move |sent| {
                    let state = guard.0.clone();
                    async move {
                        if sent >= ENDLESS_TOTAL {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        state.streamed.fetch_add(ENDLESS_CHUNK, Ordering::SeqCst);
                        Some((
                            Ok::<_, std::io::Error>(vec![0x30u8; ENDLESS_CHUNK]),
                            sent + ENDLESS_CHUNK,
                        ))
                    }
                });
                return (
                    [("content-type", "application/pkix-crl")],
                    Body::from_stream(chunks),
                )
                    .into_response();
            }
            if path.starts_with("/slow/") {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let file = state.files.lock().unwrap().get(&path).cloned();
            match file {
                Some(der) => ([("content-type", "application/pkix-crl")], der).into_response(),
                None => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

async fn crl_fetching(backend: Backend) {
    let ca = TestCa::new(KeyAlgorithm::EcdsaP256, "Fetching");
    // No CRL installed: every CRL comes from the distribution point.
    let Some(d) = Deployment::with_trust(backend, &[ca.anchor("root.pem")], &[]).await else {
        return;
    };
    let point = Arc::new(CrlPoint::default());
    let port = serve_crl_point(point.clone()).await;
    let url = |path: &str| Some(format!("http://127.0.0.1:{port}{path}"));
    point
        .files
        .lock()
        .unwrap()
        .insert("/slow/shared.crl".into(), ca.crl());
    point
        .files
        .lock()
        .unwrap()
        .insert("/never.crl".into(), ca.crl());
    let server = d
        .start_with(&[
            ("VHOD_CRL_MAX_BYTES", "65536"),
            ("VHOD_CRL_FETCH_TIMEOUT_MS", "60000"),
        ])
        .await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // A signature over other bytes than the challenge: refused before anything is fetched.
    let holder = ca.person("3070592B034PB4", "Ковалёв", "Андрей", url("/never.crl"));
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &holder.cms(b"{\"nonce\":\"other\"}")).await,
        403,
        "bad_signature",
    );
    assert_eq!(
        point.hits("/never.crl"),
        0,
        "no CRL fetched before the proof"
    );

    // Four people of the same CA at once: one download serves them all.
    let people = [
        ("4120290A012PB3", "Петрова", "Мария"),
        ("4150390B002PB5", "Сидорова", "Анна"),
        ("3220775C003PB9", "Козлов", "Олег"),
        ("3150874E078PB5", "Мельник", "Виктор"),
    ];
    let mut tries = Vec::new();
    for (pn, surname, given) in people {
        let h = ca.person(pn, surname, given, url("/slow/shared.crl"));
        let a = attempt(&server, &client).await;
        let body = h.cms(&a.challenge);
        tries.push((a, body));
    }
    let answers =
        futures_util::future::join_all(tries.iter().map(|(a, b)| post_login(&server, a, b))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
    }
    assert_eq!(
        point.hits("/slow/shared.crl"),
        1,
        "parallel logins share one download"
    );

    // A CRL that does not end: the download stops once it passes VHOD_CRL_MAX_BYTES.
    let holder = ca.person("4231187C056PB5", "Сидоренко", "Ольга", url("/endless.crl"));
    let a = attempt(&server, &client).await;
    assert_refused(
        post_login(&server, &a, &holder.cms(&a.challenge)).await,
        403,
        "crl_unavailable",
    );
    for _ in 0..200 {
        if point.hung_up.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        point.hung_up.load(Ordering::SeqCst),
        "vhod closed the endless download"
    );
    let streamed = point.streamed.load(Ordering::SeqCst);
    assert!(
        streamed < 1024 * 1024,
        "{streamed} octets streamed before vhod hung up; the cap is 64 KiB"
    );
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "a panic in the log:\n{logs}");
}
per_backend!(crl_fetches_after_proof_once_and_capped, super::crl_fetching);

// ---------------------------------------------------------------------------------------------
// 3. Personal numbers are authoritative only from the profiles marked so
// ---------------------------------------------------------------------------------------------

fn profile_toml(name: &str, root_sha256: &str, authoritative: bool) -> String {
    format!(
        r#"
[[profile]]
name = "{name}"
kind = "eds"
authoritative_personal_number = {authoritative}
match_ca_sha256 = ["{root_sha256}"]
personal_number = [{{ oid = "2.5.4.5" }}]
personal_number_pattern = "9999999A999AA9"
surname = [{{ oid = "2.5.4.4" }}]
given_name = [{{ oid = "2.5.4.42" }}]
patronymic = [{{ oid = "2.5.4.3", word = 3 }}]
"#
    )
}

async fn scoped_numbers(backend: Backend) {
    let national = TestCa::new(KeyAlgorithm::Bign, "National");
    let partner = TestCa::new(KeyAlgorithm::EcdsaP256, "Partner");
    let Some(d) = Deployment::with_trust(
        backend,
        &[
            national.anchor("national.pem"),
            partner.anchor("partner.pem"),
        ],
        &[
            national.installed_crl("national.crl.pem"),
            partner.installed_crl("partner.crl.pem"),
        ],
    )
    .await
    else {
        return;
    };
    let policies = format!(
        "{}{}",
        profile_toml("national", &national.root_sha256(), true),
        profile_toml("partner", &partner.root_sha256(), false)
    );
    std::fs::write(d.dir.path().join("certificates.toml"), policies).expect("policies");
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    const PN: &str = "4120290A012PB3";
    let citizen = national.person(PN, "Петрова", "Мария", None);
    // Another anchor's certificate naming the same person and number.
    let same_number = partner.person(PN, "Петрова", "Мария", None);

    let first = signs_in(&server, &client, &citizen).await;
    let citizen_sub = first.subject().as_str().to_string();
    // Rows keyed by the authoritative number keep the form they always had.
    assert!(
        d.store()
            .await
            .certificates()
            .owner(&format!("pn:{PN}"))
            .await
            .unwrap()
            .is_some()
    );

    let other = signs_in(&server, &client, &same_number).await;
    let other_sub = other.subject().as_str().to_string();
    assert_ne!(
        other_sub, citizen_sub,
        "a non-authoritative anchor signed in to the account the national one created"
    );
    assert_eq!(
        d.store()
            .await
            .certificates()
            .count_accounts()
            .await
            .unwrap(),
        2
    );

    // Each keeps finding its own account.
    let again = signs_in(&server, &client, &same_number).await;
    assert_eq!(again.subject().as_str(), other_sub);
    let again = signs_in(&server, &client, &citizen).await;
    assert_eq!(again.subject().as_str(), citizen_sub);
    // A renewed partner certificate (new key, same number) finds the partner's account.
    let renewed = partner.person(PN, "Петрова", "Мария", None);
    let again = signs_in(&server, &client, &renewed).await;
    assert_eq!(again.subject().as_str(), other_sub);
    assert_eq!(d.store().await.certificates().count().await.unwrap(), 2);
}
per_backend!(personal_numbers_scoped_by_profile, super::scoped_numbers);

// ---------------------------------------------------------------------------------------------
// 4. Accounts made by a certificate get a readable preferred_username
// ---------------------------------------------------------------------------------------------

fn readable(username: &str, stem: &str) -> bool {
    let Some(rest) = username.strip_prefix(&format!("~{stem}.")) else {
        return false;
    };
    rest.len() >= 5
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

async fn readable_usernames(backend: Backend) {
    let ca = TestCa::new(KeyAlgorithm::EcdsaP256, "Names");
    let Some(d) = Deployment::with_trust(
        backend,
        &[ca.anchor("root.pem")],
        &[ca.installed_crl("issuing.crl.pem")],
    )
    .await
    else {
        return;
    };
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    let names = [
        ("4120290A012PB3", "Петрова", "Мария", "petrova.mariia"),
        ("4150390B002PB5", "Шчарбакоў", "Юрый", "shcharbakou.iuryi"),
        // Namesakes: the same readable stem, never the same username.
        ("3220775C003PB9", "Петрова", "Мария", "petrova.mariia"),
    ];
    let mut seen = Vec::new();
    for (pn, surname, given, stem) in names {
        let holder = ca.person(pn, surname, given, None);
        let claims = signs_in(&server, &client, &holder).await;
        let username = claims
            .preferred_username()
            .map(|u| u.as_str().to_string())
            .expect("a preferred_username");
        assert!(
            readable(&username, stem),
            "{surname} {given}: preferred_username {username:?}, expected ~{stem}.<suffix>"
        );
        assert!(!seen.contains(&username), "{username} given twice");
        seen.push(username);
    }
    // Not a login anyone can use: the password form answers it as it answers any wrong login.
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("a login page");
    let res = browser
        .submit_password(&server, &page, &seen[0], "any password at all")
        .await;
    assert_ne!(
        res.status().as_u16(),
        303,
        "a password sign-in as {}",
        seen[0]
    );
}
per_backend!(
    certificate_accounts_readable_username,
    super::readable_usernames
);

// ---------------------------------------------------------------------------------------------
// 16. A certificate account (no password) changing a contact after its sign-in grew old: the
// profile offers a fresh sign-in (prompt=login), after which the change goes through.
// ---------------------------------------------------------------------------------------------

async fn change_email(server: &Server, b: &Browser, csrf: &str) -> (u16, String) {
    let res = b
        .http
        .post(server.url("/profile/email"))
        .form(&[
            ("csrf", csrf),
            ("ui_locales", "en"),
            ("email", "maria@example.by"),
        ])
        .send()
        .await
        .expect("POST /profile/email");
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn fresh_certificate_sign_in(backend: Backend) {
    let ca = TestCa::new(KeyAlgorithm::EcdsaP256, "Profile");
    let Some(d) = Deployment::with_trust(
        backend,
        &[ca.anchor("root.pem")],
        &[ca.installed_crl("issuing.crl.pem")],
    )
    .await
    else {
        return;
    };
    let server = d.start_with(&[("VHOD_PROFILE_REAUTH_SECONDS", "1")]).await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let holder = ca.person("4120290A012PB3", "Петрова", "Мария", None);
    let a = attempt(&server, &client).await;
    let (status, answer) = post_login(&server, &a, &holder.cms(&a.challenge)).await;
    assert_eq!(status, 200, "certificate login refused: {answer}");
    // Sign-in times are whole seconds: past 1 s for certain.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let page = a.browser.get(&server.url("/profile?ui_locales=en")).await;
    assert_eq!(page.status().as_u16(), 200);
    let csrf = csrf_in(&page.text().await.expect("profile"));
    let (status, html) = change_email(&server, &a.browser, &csrf).await;
    assert_eq!(status, 403, "an old sign-in changes no contact: {html}");
    let link = authorize_link(&html);
    assert_eq!(
        param(&server.url(&link), "prompt").as_deref(),
        Some("login")
    );

    // The link asks for a sign-in even though the session is active; the certificate again.
    let login = a
        .browser
        .authorize(&server, &server.url(&link))
        .await
        .expect_err("prompt=login shows the login page");
    let (status, body) = a.browser.cert_challenge(&server, &login.csrf).await;
    assert_eq!(status, 200, "challenge: {body}");
    let challenge = b64url_decode(body["challenge"].as_str().expect("a challenge"));
    let again = Attempt {
        browser: a.browser,
        csrf: login.csrf,
        challenge,
        pending: a.pending,
    };
    let (status, answer) = post_login(&server, &again, &holder.cms(&again.challenge)).await;
    assert_eq!(status, 200, "certificate login refused: {answer}");
    let back = answer["redirect"].as_str().expect("a redirect");
    assert!(
        back.starts_with(&server.url("/profile")),
        "back to the profile: {back}"
    );
    let (status, html) = change_email(&server, &again.browser, &csrf).await;
    assert_eq!(status, 200, "a fresh sign-in changes the contact: {html}");
    assert!(
        d.outbox().iter().any(|m| m.to == "maria@example.by"),
        "the confirmation link went to the new address"
    );
}
per_backend!(
    certificate_accounts_sign_in_again_before_contact_changes,
    super::fresh_certificate_sign_in
);

// ---------------------------------------------------------------------------------------------
// 13. Trust that would let any anchor vouch for any citizen's number, or that would orphan the
// identities stored before scoping, stops the start.
// ---------------------------------------------------------------------------------------------

/// Runs `vhod serve` and expects it to refuse to start; returns what it said.
fn refused_start(d: &Deployment) -> String {
    let mut child = std::process::Command::new(bin())
        .arg("serve")
        .envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("VHOD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vhod serve");
    let started = std::time::Instant::now();
    while started.elapsed() < PATIENCE {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "vhod serve exited successfully");
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("stderr");
            return err;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("vhod serve started although its trust is unsafe");
}

async fn unsafe_authority(backend: Backend) {
    let national = TestCa::new(KeyAlgorithm::EcdsaP256, "National");
    let partner = TestCa::new(KeyAlgorithm::EcdsaP256, "Partner");
    let Some(d) = Deployment::with_trust(
        backend,
        &[
            national.anchor("national.pem"),
            partner.anchor("partner.pem"),
        ],
        &[
            national.installed_crl("national.crl.pem"),
            partner.installed_crl("partner.crl.pem"),
        ],
    )
    .await
    else {
        return;
    };
    // The embedded profile is authoritative and names no CA.
    let said = refused_start(&d);
    assert!(said.contains("match_ca_sha256"), "{said}");
    // Naming the authority makes it start.
    let policies = format!(
        "{}{}",
        profile_toml("national", &national.root_sha256(), true),
        profile_toml("partner", &partner.root_sha256(), false)
    );
    std::fs::write(d.dir.path().join("certificates.toml"), policies).expect("policies");
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    signs_in(
        &server,
        &client,
        &national.person("4120290A012PB3", "Петрова", "Мария", None),
    )
    .await;
    drop(server);
    // Then no profile is the authority: the identity just stored as pn: would be found by
    // nobody, and its owner would get a new account.
    let policies = format!(
        "{}{}",
        profile_toml("national", &national.root_sha256(), false),
        profile_toml("partner", &partner.root_sha256(), false)
    );
    std::fs::write(d.dir.path().join("certificates.toml"), policies).expect("policies");
    let said = refused_start(&d);
    assert!(said.contains("authoritative_personal_number"), "{said}");
}
per_backend!(
    unsafe_certificate_authority_stops_the_start,
    super::unsafe_authority
);
