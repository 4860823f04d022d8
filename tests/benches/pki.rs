//! What one certificate login costs the server: parse the presented chain, build and check the
//! path to the anchor, check revocation against the installed CRL, verify the CMS signature over
//! the challenge. For a bign chain (the bee2 reference vectors) and an ECDSA P-256 chain made
//! here. `cargo bench --bench pki`; figures in README.

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

criterion_group!(benches, bench);
criterion_main!(benches);
