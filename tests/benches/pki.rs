//! What one certificate login costs the server: parse the presented chain, build and check the
//! path to the anchor, check revocation against the installed CRL, verify the CMS signature over
//! the challenge. For a bign chain (the bee2 reference vectors) and an ECDSA P-256 chain made
//! here; and what refusing a hostile login costs (look-alike CAs built to make path building
//! expensive). `cargo bench --bench pki`; figures in README.

use criterion::{Criterion, criterion_group, criterion_main};

use vhod::pki::cert::Cert;
use vhod::pki::cms_sign::{SignOptions, sign_detached};
use vhod::pki::crl::Crl;
use vhod::pki::issue::{self, CertSpec, Issuer, Revocation};
use vhod::pki::keys::{KeyAlgorithm, PrivateKey};
use vhod::pki::oids;
use vhod::pki::profile::Profiles;
use vhod::pki::trust::{PkiSettings, Trust};
use vhod::pki::verify::{Proof, verify_signed};

struct Case {
    trust: Trust,
    bundle: Vec<u8>,
    cms: Vec<u8>,
    challenge: Vec<u8>,
}

const NOW: i64 = 1_893_456_000; // 2030-01-01

fn settings() -> PkiSettings {
    PkiSettings {
        fetch_crls: false,
        ..PkiSettings::default()
    }
}

fn vectors(rel: &str) -> Vec<u8> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/bign")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bign_case() -> Case {
    let root = Cert::from_der(&vectors("x509/root-ca.der")).expect("root");
    let crl = Crl::from_pem_or_der(&vectors("x509/intermediate-ca.crl.der")).expect("crl");
    let mut bundle = vectors("x509/citizen.pem");
    bundle.extend_from_slice(&vectors("x509/chain.pem"));
    Case {
        trust: Trust::new(vec![root], vec![crl], Profiles::embedded(), settings()),
        bundle,
        cms: vectors("login/challenge.citizen.cms.der"),
        challenge: vectors("login/challenge.json"),
    }
}

fn generated_case(alg: KeyAlgorithm) -> Case {
    let subject = |cn: &str| {
        vec![
            (oids::AT_COUNTRY, "BY".to_string()),
            (oids::AT_COMMON_NAME, cn.to_string()),
        ]
    };
    let (from, to) = (NOW - 86_400, NOW + 365 * 86_400);
    let root_key = PrivateKey::generate(alg).expect("key");
    let root = issue::self_signed(
        &CertSpec::root(subject("Bench Root"), &[1], from, to),
        &root_key,
    )
    .expect("root");
    let root_issuer = Issuer::new(&root, root_key).expect("issuer");
    let ca_key = PrivateKey::generate(alg).expect("key");
    let ca = issue::issue(
        &CertSpec::intermediate(subject("Bench CA"), &[2], from, to, Some(0)),
        &ca_key.spki(),
        &root_issuer,
    )
    .expect("ca");
    let ca_issuer = Issuer::new(&ca, ca_key).expect("issuer");
    let leaf_key = PrivateKey::generate(alg).expect("key");
    let mut person = subject("Иванов Иван Иванович");
    person.push((oids::AT_SURNAME, "Иванов".into()));
    person.push((oids::AT_GIVEN_NAME, "Иван".into()));
    person.push((oids::AT_SERIAL_NUMBER, "3010185A001PB3".into()));
    let leaf = issue::issue(
        &CertSpec::leaf(person, &[3], from, to),
        &leaf_key.spki(),
        &ca_issuer,
    )
    .expect("leaf");
    // A CRL with a thousand entries, as a busy CA's would have.
    let revoked: Vec<Revocation> = (0..1000u32)
        .map(|i| Revocation {
            serial: (i + 10_000).to_be_bytes().to_vec(),
            revoked_at: from,
            reason: None,
        })
        .collect();
    let crl = issue::crl(&ca_issuer, &revoked, from, to, 1).expect("crl");
    let challenge = br#"{"nonce":"q8Rk1uZ0bY3vXw2Jm5NcTgq8Rk1uZ0bY3vXw2Jm5NcT","aud":"https://vhod.example.by"}"#.to_vec();
    let cms = sign_detached(&challenge, &leaf, &leaf_key, SignOptions::default()).expect("cms");
    let mut bundle = issue::to_pem("CERTIFICATE", &leaf).into_bytes();
    bundle.extend_from_slice(issue::to_pem("CERTIFICATE", &ca).as_bytes());
    Case {
        trust: Trust::new(
            vec![Cert::from_der(&root).expect("root")],
            vec![Crl::from_der(&crl).expect("crl")],
            Profiles::embedded(),
            settings(),
        ),
        bundle,
        cms,
        challenge,
    }
}

/// A hostile login: the person's certificate and eight CA certificates sharing one name and one
/// key (each a valid issuer of every other), under no configured anchor. Path building used to
/// try every ordering of them (8 800 signature verifications); it now tries each pair once.
fn hostile_case() -> Case {
    let alg = KeyAlgorithm::EcdsaP256;
    let (from, to) = (NOW - 86_400, NOW + 86_400);
    let spec = |serial: u8| {
        CertSpec::intermediate(
            vec![(oids::AT_COMMON_NAME, "Look-alike".to_string())],
            &[serial],
            from,
            to,
            None,
        )
    };
    let key = PrivateKey::generate(alg).expect("key");
    let seed = issue::self_signed(&spec(100), &key).expect("seed");
    let signer = Issuer::new(&seed, key).expect("issuer");
    let leaf_key = PrivateKey::generate(alg).expect("key");
    let person = vec![
        (oids::AT_SURNAME, "Иванов".to_string()),
        (oids::AT_GIVEN_NAME, "Иван".to_string()),
        (oids::AT_SERIAL_NUMBER, "3010185A001PB3".to_string()),
    ];
    let leaf = issue::issue(
        &CertSpec::leaf(person, &[3], from, to),
        &leaf_key.spki(),
        &signer,
    )
    .expect("leaf");
    let mut bundle = issue::to_pem("CERTIFICATE", &leaf).into_bytes();
    for i in 1..=8 {
        let der = issue::issue(&spec(i), &signer.key().spki(), &signer).expect("look-alike");
        bundle.extend_from_slice(issue::to_pem("CERTIFICATE", &der).as_bytes());
    }
    let challenge = b"{\"nonce\":\"hostile\",\"aud\":\"https://vhod.example.by\"}".to_vec();
    let cms = sign_detached(&challenge, &leaf, &leaf_key, SignOptions::default()).expect("cms");
    let honest = generated_case(alg);
    Case {
        trust: honest.trust,
        bundle,
        cms,
        challenge,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::new();
    for (name, case) in [
        ("bign (bee2 vectors)", bign_case()),
        ("ecdsa-p256", generated_case(KeyAlgorithm::EcdsaP256)),
    ] {
        // The case must verify, or the figure means nothing.
        rt.block_on(verify_signed(
            &case.trust,
            Some(&case.bundle),
            Proof::Cms(&case.cms),
            &case.challenge,
            NOW,
            &http,
        ))
        .expect("the bench case verifies");
        c.bench_function(&format!("login verification: {name}"), |b| {
            b.iter(|| {
                rt.block_on(verify_signed(
                    &case.trust,
                    Some(&case.bundle),
                    Proof::Cms(&case.cms),
                    &case.challenge,
                    NOW,
                    &http,
                ))
                .expect("verifies")
            })
        });
    }
}

fn bench_hostile(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = reqwest::Client::new();
    let case = hostile_case();
    let refuse = || {
        rt.block_on(verify_signed(
            &case.trust,
            Some(&case.bundle),
            Proof::Cms(&case.cms),
            &case.challenge,
            NOW,
            &http,
        ))
        .expect_err("the hostile login is refused")
    };
    assert_eq!(refuse().reason, vhod::pki::Reason::Untrusted);
    c.bench_function(
        "hostile login refused: 8 look-alike CAs (ecdsa-p256)",
        |b| b.iter(refuse),
    );
}

criterion_group!(benches, bench, bench_hostile);
criterion_main!(benches);
