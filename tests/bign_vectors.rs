//! bign and belt-hash against the reference vectors made with bee2 (tests/vectors/bign/,
//! beside the repository; see its README): every vector gives its expected result.

use std::path::PathBuf;

use vhod::pki::bign::{BignError, PublicKey, belt_hash};

fn vectors(name: &str) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bign");
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the reference vectors are missing at {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("vector JSON")
}

fn hex(v: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or_else(|| panic!("{field}"))).expect("hex")
}

#[test]
fn belt_hash_matches_every_vector() {
    let list = vectors("belt-hash.json");
    let list = list.as_array().expect("a list");
    assert!(list.len() >= 10);
    for v in list {
        let digest = belt_hash(&hex(v, "input_hex"));
        assert_eq!(digest.to_vec(), hex(v, "digest_hex"), "{}", v["id"]);
    }
}

#[test]
fn bign_signatures_give_their_expected_result() {
    let list = vectors("bign-signatures.json");
    let list = list.as_array().expect("a list");
    assert!(list.len() >= 15);
    let (mut valid, mut invalid) = (0, 0);
    for v in list {
        let id = v["id"].as_str().unwrap_or_default();
        let message = hex(v, "message_hex");
        assert_eq!(
            belt_hash(&message).to_vec(),
            hex(v, "hash_hex"),
            "{id}: hash"
        );
        let result = PublicKey::from_stb_bytes(&hex(v, "public_key_hex"))
            .and_then(|k| k.verify(&message, &hex(v, "signature_hex")));
        if v["valid"].as_bool() == Some(true) {
            assert_eq!(result, Ok(()), "{id} must verify");
            valid += 1;
        } else {
            assert!(result.is_err(), "{id} must be refused");
            invalid += 1;
        }
        match id {
            "bad-s1-equals-q" => assert_eq!(result, Err(BignError::SignatureRange)),
            "bad-pubkey-not-on-curve" => assert_eq!(result, Err(BignError::KeyNotOnCurve)),
            "bad-flip-s0" | "bad-wrong-message" | "bad-wrong-key" => {
                assert_eq!(result, Err(BignError::BadSignature), "{id}")
            }
            _ => {}
        }
    }
    assert_eq!((valid, invalid), (7, 8));
}

#[test]
fn the_raw_login_signature_of_the_citizen_verifies_and_its_tampered_twins_do_not() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bign/login");
    let read = |n: &str| std::fs::read(dir.join(n)).expect(n);
    let challenge = read("challenge.json");
    let tampered = read("challenge-tampered.json");
    let sig = hex::decode(
        String::from_utf8(read("challenge.citizen.sig.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let bad = hex::decode(
        String::from_utf8(read("challenge.citizen.badsig.sig.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let keys = vectors("x509/keys.json");
    let citizen = keys.get("citizen").cloned().expect("the citizen's key");
    let key = PublicKey::from_stb_bytes(&hex(&citizen, "public_key_hex")).expect("key");
    assert_eq!(key.verify(&challenge, &sig), Ok(()));
    assert_eq!(key.verify(&tampered, &sig), Err(BignError::BadSignature));
    assert!(key.verify(&challenge, &bad).is_err());
}

// ---- X.509, CRL and CMS: the verifier reaches the README's conclusion for every file ----

mod pki_vectors {
    use std::path::PathBuf;

    use vhod::pki::cert::{Cert, parse_bundle};
    use vhod::pki::crl::Crl;
    use vhod::pki::profile::{CertKind, Profiles};
    use vhod::pki::trust::{PkiSettings, Trust, Validated};
    use vhod::pki::verify::{Proof, verify_signed};
    use vhod::pki::{PkiError, Reason};

    fn file(rel: &str) -> Vec<u8> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/bign")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// 2030-01-01: inside the README's "now" window.
    const NOW: i64 = 1_893_456_000;

    fn trust_with(crls: Vec<Crl>) -> Trust {
        let root = Cert::from_der(&file("x509/root-ca.der")).expect("root");
        Trust::new(
            vec![root],
            crls,
            Profiles::embedded(),
            PkiSettings {
                fetch_crls: false,
                ..PkiSettings::default()
            },
        )
    }

    fn trust() -> Trust {
        let crl = Crl::from_pem_or_der(&file("x509/intermediate-ca.crl.pem")).expect("crl");
        trust_with(vec![crl])
    }

    fn bundle(leaf: &str) -> Vec<u8> {
        let mut b = file(&format!("x509/{leaf}.pem"));
        b.extend_from_slice(&file("x509/chain.pem"));
        b
    }

    async fn cms(
        t: &Trust,
        signer: &str,
        content: &str,
        variant: &str,
    ) -> Result<Validated, PkiError> {
        let sig = file(&format!("login/challenge.{signer}{variant}.cms.der"));
        verify_signed(
            t,
            Some(&bundle(signer)),
            Proof::Cms(&sig),
            &file(content),
            NOW,
            &reqwest::Client::new(),
        )
        .await
    }

    fn reason(r: Result<Validated, PkiError>) -> Reason {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.reason,
        }
    }

    #[tokio::test]
    async fn citizen_and_employee_cms_verify_and_name_the_person() {
        let t = trust();
        let v = cms(&t, "citizen", "login/challenge.json", "")
            .await
            .expect("citizen");
        let id = &v.identity;
        assert_eq!(id.personal_number.as_deref(), Some("3010185A001PB3"));
        assert_eq!(id.surname.as_deref(), Some("Иванов"));
        assert_eq!(id.given_name.as_deref(), Some("Иван"));
        assert_eq!(id.patronymic.as_deref(), Some("Иванович"));
        assert_eq!(id.unp, None);
        assert_eq!(id.kind, CertKind::Eds);
        assert_eq!(v.path.len(), 3);

        let v = cms(&t, "employee", "login/challenge.json", "")
            .await
            .expect("employee");
        let id = &v.identity;
        assert_eq!(id.unp.as_deref(), Some("190000001"));
        assert_eq!(
            id.organization.as_deref(),
            Some("ООО «Тестовая организация»")
        );
        assert_eq!(id.surname.as_deref(), Some("Петров"));
        assert_eq!(id.given_name.as_deref(), Some("Пётр"));
        assert_eq!(id.patronymic.as_deref(), Some("Петрович"));
        assert_eq!(id.title.as_deref(), Some("Директор"));
        assert_eq!(id.personal_number, None);
    }

    #[tokio::test]
    async fn the_base64_form_of_each_cms_is_the_same_message() {
        let t = trust();
        let sig = file("login/challenge.citizen.cms.b64");
        verify_signed(
            &t,
            Some(&bundle("citizen")),
            Proof::Cms(&sig),
            &file("login/challenge.json"),
            NOW,
            &reqwest::Client::new(),
        )
        .await
        .expect("base64 CMS");
        // Without a presented certificate the one embedded in the CMS is the signer; the
        // intermediate is not embedded, so without the chain there is no path.
        let alone = verify_signed(
            &t,
            None,
            Proof::Cms(&sig),
            &file("login/challenge.json"),
            NOW,
            &reqwest::Client::new(),
        )
        .await;
        assert_eq!(reason(alone), Reason::Untrusted);
    }

    #[tokio::test]
    async fn refused_signers_get_their_reasons() {
        let t = trust();
        let c = "login/challenge.json";
        assert_eq!(reason(cms(&t, "revoked", c, "").await), Reason::Revoked);
        assert_eq!(reason(cms(&t, "expired", c, "").await), Reason::Expired);
        assert_eq!(
            reason(cms(&t, "rogue-leaf", c, "").await),
            Reason::Untrusted
        );
        assert_eq!(
            reason(cms(&t, "forged-issuer", c, "").await),
            Reason::BadSignature
        );
        assert_eq!(
            reason(cms(&t, "citizen", "login/challenge-tampered.json", "").await),
            Reason::BadSignature
        );
        assert_eq!(
            reason(cms(&t, "citizen", c, ".badsig").await),
            Reason::BadSignature
        );
        // The rogue leaf verifies only if its root is wrongly trusted.
        let rogue = Trust::new(
            vec![Cert::from_der(&file("x509/rogue-root-ca.der")).expect("rogue root")],
            vec![],
            Profiles::embedded(),
            PkiSettings {
                require_crl: false,
                fetch_crls: false,
                ..PkiSettings::default()
            },
        );
        let sig = file("login/challenge.rogue-leaf.cms.der");
        verify_signed(
            &rogue,
            Some(&file("x509/rogue-leaf.pem")),
            Proof::Cms(&sig),
            &file(c),
            NOW,
            &reqwest::Client::new(),
        )
        .await
        .expect("valid under its own root");
    }

    #[tokio::test]
    async fn certificates_alone_reach_the_readme_conclusions() {
        let t = trust();
        let http = reqwest::Client::new();
        let check = |name: &'static str| {
            let t = &t;
            let http = &http;
            async move {
                let certs = parse_bundle(&bundle(name)).expect("parse");
                let mut it = certs.into_iter();
                let leaf = it.next().expect("leaf");
                t.validate(leaf, it.collect(), NOW, http)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.reason)
            }
        };
        assert_eq!(check("citizen").await, Ok(()));
        assert_eq!(check("employee").await, Ok(()));
        assert_eq!(check("revoked").await, Err(Reason::Revoked));
        assert_eq!(check("expired").await, Err(Reason::Expired));
        assert_eq!(check("rogue-leaf").await, Err(Reason::Untrusted));
        assert_eq!(check("forged-issuer").await, Err(Reason::BadSignature));
        assert_eq!(check("citizen-badsig").await, Err(Reason::BadSignature));
        // The intermediate used as a person's certificate.
        assert_eq!(check("intermediate-ca").await, Err(Reason::KeyUsage));
        // Before the citizen's notBefore (2025-01-01).
        let certs = parse_bundle(&bundle("citizen")).expect("parse");
        let mut it = certs.into_iter();
        let leaf = it.next().expect("leaf");
        let early = t.validate(leaf, it.collect(), 1_704_153_600, &http).await;
        assert_eq!(
            early.map(|_| ()).map_err(|e| e.reason),
            Err(Reason::NotYetValid)
        );
    }

    #[tokio::test]
    async fn without_a_current_crl_the_login_fails_closed() {
        let t = trust_with(vec![]);
        assert_eq!(
            reason(cms(&t, "citizen", "login/challenge.json", "").await),
            Reason::CrlUnavailable
        );
        // After the CRL's nextUpdate (2036-12-31) it is stale: 2036-12-31T23:59:30 is still
        // inside the certificate but the CRL is not fresh past its nextUpdate.
        let crl = Crl::from_pem_or_der(&file("x509/intermediate-ca.crl.der")).expect("crl");
        assert!(crl.is_fresh(NOW, 0));
        assert!(!crl.is_fresh(2_114_380_800, 0));
    }

    #[tokio::test]
    async fn raw_signatures_verify_with_the_certificate_key() {
        let t = trust();
        let http = reqwest::Client::new();
        let raw =
            |f: &str| hex::decode(String::from_utf8(file(f)).expect("text").trim()).expect("hex");
        let ok = verify_signed(
            &t,
            Some(&bundle("citizen")),
            Proof::Raw(&raw("login/challenge.citizen.sig.hex")),
            &file("login/challenge.json"),
            NOW,
            &http,
        )
        .await;
        assert!(ok.is_ok(), "{ok:?}");
        let tampered = verify_signed(
            &t,
            Some(&bundle("citizen")),
            Proof::Raw(&raw("login/challenge.citizen.sig.hex")),
            &file("login/challenge-tampered.json"),
            NOW,
            &http,
        )
        .await;
        assert_eq!(reason(tampered), Reason::BadSignature);
        let flipped = verify_signed(
            &t,
            Some(&bundle("citizen")),
            Proof::Raw(&raw("login/challenge.citizen.badsig.sig.hex")),
            &file("login/challenge.json"),
            NOW,
            &http,
        )
        .await;
        assert_eq!(reason(flipped), Reason::BadSignature);
        // The employee's certificate with the citizen's signature: signed by another key.
        let other = verify_signed(
            &t,
            Some(&bundle("employee")),
            Proof::Raw(&raw("login/challenge.citizen.sig.hex")),
            &file("login/challenge.json"),
            NOW,
            &http,
        )
        .await;
        assert_eq!(reason(other), Reason::BadSignature);
    }

    #[test]
    fn the_crl_and_anchors_parse_and_verify() {
        let crl = Crl::from_pem_or_der(&file("x509/intermediate-ca.crl.pem")).expect("crl");
        let ica = Cert::from_der(&file("x509/intermediate-ca.der")).expect("ica");
        let root = Cert::from_der(&file("x509/root-ca.der")).expect("root");
        assert!(crl.is_from(&ica) && crl.signed_by(&ica));
        assert!(!crl.signed_by(&root));
        assert!(root.signed_by(&root));
        assert!(ica.signed_by(&root));
        let revoked = Cert::from_der(&file("x509/revoked.der")).expect("revoked");
        assert!(crl.lists(&revoked));
        assert_eq!(revoked.serial_hex(), "0A12");
        let citizen = Cert::from_der(&file("x509/citizen.der")).expect("citizen");
        assert!(!crl.lists(&citizen));
        assert_eq!(
            hex::encode(citizen.fingerprint),
            "6632f1992b394dd6bc59fc6083452dddaea71a07f8f5310c21bbeafdecb075a3"
        );
        assert!(citizen.crl_urls.iter().all(|u| u.starts_with("http")));
    }
}
