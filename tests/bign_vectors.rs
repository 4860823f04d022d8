//! bign and belt-hash against the reference vectors made with bee2 (../shared/vectors/bign/,
//! beside the repository; see its README): every vector gives its expected result.

use std::path::PathBuf;

use vhod::pki::bign::{BignError, PublicKey, belt_hash};

fn vectors(name: &str) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/bign");
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/bign/login");
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
