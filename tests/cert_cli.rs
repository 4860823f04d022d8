//! `vhod cert check`, `vhod cert verify`, `vhod dev test-pki` and `vhod dev sign-challenge` as an
//! operator runs them: the binary, a keys directory with trust anchors and CRLs, no server.
//!
//! The reference vectors (tests/vectors/bign, made with bee2 + OpenSSL/bee2evp) give the
//! expected answers for the bign PKI; the test PKIs made by `dev test-pki` close the loop for
//! every algorithm the tool offers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vhod")
}

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/bign")
}

fn x509(name: &str) -> PathBuf {
    vectors().join("x509").join(name)
}

fn login(name: &str) -> PathBuf {
    vectors().join("login").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A keys directory (trust anchors in `trust/`, CRLs in `trust/crl/`) and an empty policies
/// directory, so the embedded certificate profiles apply.
struct Env {
    keys: tempfile::TempDir,
    policies: tempfile::TempDir,
}

impl Env {
    fn new(anchors: &[(&str, &Path)], crls: &[(&str, &Path)]) -> Env {
        let keys = tempfile::tempdir().expect("tempdir");
        let policies = tempfile::tempdir().expect("tempdir");
        let trust = keys.path().join("trust");
        std::fs::create_dir_all(trust.join("crl")).expect("mkdir trust/crl");
        for (name, from) in anchors {
            std::fs::copy(from, trust.join(name)).expect("copy anchor");
        }
        for (name, from) in crls {
            std::fs::copy(from, trust.join("crl").join(name)).expect("copy CRL");
        }
        Env { keys, policies }
    }

    /// The vectors' trust: root-ca as the only anchor, the intermediate's CRL.
    fn vectors() -> Env {
        Env::new(
            &[("root-ca.pem", &x509("root-ca.pem"))],
            &[("intermediate-ca.crl.pem", &x509("intermediate-ca.crl.pem"))],
        )
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .env("VHOD_KEYS_DIR", self.keys.path())
            .env("VHOD_DATABASE_URL", "sqlite::memory:")
            .env("VHOD_POLICIES_DIR", self.policies.path())
            .env("VHOD_DEV", "false")
            .env_remove("VHOD_CONFIG")
            .output()
            .expect("running vhod")
    }

    /// Runs a `cert` command: (exit success, the JSON it printed).
    fn cert(&self, args: &[&str]) -> (bool, Value) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let json: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "vhod {args:?} printed no JSON ({e}): stdout {stdout:?}, stderr {:?}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), json)
    }

    fn check(&self, cert: &Path, chain: Option<&Path>) -> (bool, Value) {
        let mut args = vec!["cert", "check", s(cert)];
        if let Some(c) = chain {
            args.extend(["--chain", s(c)]);
        }
        self.cert(&args)
    }
}

/// Asserts a refusal: non-zero exit and this reason.
fn refused(got: (bool, Value), reason: &str, what: &str) {
    let (ok, json) = got;
    assert_eq!(json["result"], reason, "{what}: {json}");
    assert!(!ok, "{what}: exit status must be non-zero for {reason}");
}

fn valid(got: (bool, Value), what: &str) -> Value {
    let (ok, json) = got;
    assert_eq!(json["result"], "valid", "{what}: {json}");
    assert!(ok, "{what}: exit status must be zero when valid");
    json
}

#[test]
fn cert_check_with_the_reference_vectors() {
    let env = Env::vectors();
    let chain = x509("chain.pem");

    let citizen = valid(env.check(&x509("citizen.pem"), Some(&chain)), "citizen.pem");
    assert_eq!(citizen["personal_number"], "3010185A001PB3", "{citizen}");
    assert_eq!(citizen["surname"], "Иванов", "{citizen}");
    assert_eq!(citizen["given_name"], "Иван", "{citizen}");
    assert!(citizen["unp"].is_null(), "{citizen}");
    assert!(
        citizen["subject"]
            .as_str()
            .is_some_and(|s| s.contains("Иванов Иван Иванович")),
        "{citizen}"
    );
    assert_eq!(
        citizen["sha256"],
        "6632f1992b394dd6bc59fc6083452dddaea71a07f8f5310c21bbeafdecb075a3"
    );
    assert_eq!(
        citizen["path"].as_array().map(Vec::len),
        Some(3),
        "leaf, intermediate, root: {citizen}"
    );

    // The DER leaf with a PEM chain is the same certificate.
    let der = valid(env.check(&x509("citizen.der"), Some(&chain)), "citizen.der");
    assert_eq!(der["sha256"], citizen["sha256"]);

    let employee = valid(
        env.check(&x509("employee.pem"), Some(&chain)),
        "employee.pem",
    );
    assert_eq!(employee["unp"], "190000001", "{employee}");
    assert_eq!(employee["surname"], "Петров", "{employee}");
    assert!(
        employee["organization"]
            .as_str()
            .is_some_and(|o| o.contains("Тестовая организация")),
        "{employee}"
    );

    // Without the chain the intermediate is missing: no path to the anchor.
    refused(
        env.check(&x509("citizen.pem"), None),
        "untrusted",
        "citizen without chain",
    );

    for (file, reason) in [
        ("revoked.pem", "revoked"),
        ("expired.pem", "expired"),
        ("rogue-leaf.pem", "untrusted"),
        ("forged-issuer.pem", "bad_signature"),
        ("citizen-badsig.pem", "bad_signature"),
    ] {
        refused(env.check(&x509(file), Some(&chain)), reason, file);
    }
    // The rogue leaf with its own root as "chain" is still untrusted: only anchors count.
    refused(
        env.check(&x509("rogue-leaf.pem"), Some(&x509("rogue-root-ca.pem"))),
        "untrusted",
        "rogue-leaf with rogue root",
    );

    // Not a certificate at all.
    refused(
        env.check(&login("challenge.json"), None),
        "malformed",
        "a JSON file",
    );
}

#[test]
fn cert_check_without_the_crl() {
    // The anchor alone: with CRLs required (the default) revocation cannot be decided.
    let env = Env::new(&[("root-ca.pem", &x509("root-ca.pem"))], &[]);
    let out = Command::new(bin())
        .args([
            "cert",
            "check",
            s(&x509("citizen.pem")),
            "--chain",
            s(&x509("chain.pem")),
        ])
        .env("VHOD_KEYS_DIR", env.keys.path())
        .env("VHOD_DATABASE_URL", "sqlite::memory:")
        .env("VHOD_POLICIES_DIR", env.policies.path())
        .env("VHOD_CRL_FETCH", "false")
        .env_remove("VHOD_CONFIG")
        .output()
        .expect("vhod");
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["result"], "crl_unavailable", "{json}");
    assert!(!out.status.success());
}

#[test]
fn cert_verify_with_the_reference_vectors() {
    let env = Env::vectors();
    let chain = x509("chain.pem");
    let data = login("challenge.json");
    let tampered = login("challenge-tampered.json");
    // The CMS messages embed only the signer's certificate, so the intermediate comes from
    // --chain, which the CLI takes only together with --cert (see
    // cms_chain_without_cert_is_used below).
    let verify_as = |data: &Path, sig: &Path, signer: &str| {
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(data),
            "--signature",
            s(sig),
            "--cert",
            s(&x509(&format!("{signer}.pem"))),
            "--chain",
            s(&chain),
        ])
    };
    let verify = |data: &Path, sig: &Path| {
        let name = sig.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let signer = name
            .strip_prefix("challenge.")
            .and_then(|n| n.split(".cms").next())
            .and_then(|n| n.split(".badsig").next())
            .expect("challenge.<signer>…");
        verify_as(data, sig, signer)
    };

    let v = valid(
        verify(&data, &login("challenge.citizen.cms.der")),
        "citizen CMS (DER)",
    );
    assert_eq!(v["personal_number"], "3010185A001PB3", "{v}");
    valid(
        verify(&data, &login("challenge.citizen.cms.b64")),
        "citizen CMS (base64)",
    );
    let e = valid(
        verify(&data, &login("challenge.employee.cms.der")),
        "employee CMS",
    );
    assert_eq!(e["unp"], "190000001", "{e}");

    refused(
        verify(&tampered, &login("challenge.citizen.cms.der")),
        "bad_signature",
        "citizen CMS over tampered content",
    );
    refused(
        verify(&data, &login("challenge.citizen.badsig.cms.der")),
        "bad_signature",
        "citizen CMS with a flipped bit",
    );
    for (signer, reason) in [
        ("revoked", "revoked"),
        ("expired", "expired"),
        ("rogue-leaf", "untrusted"),
        ("forged-issuer", "bad_signature"),
    ] {
        refused(
            verify(&data, &login(&format!("challenge.{signer}.cms.der"))),
            reason,
            signer,
        );
    }

    // A CMS attributed to another certificate than its signer's is not valid.
    let (ok, json) = verify_as(&data, &login("challenge.citizen.cms.der"), "employee");
    assert!(
        !ok && json["result"] != "valid",
        "citizen CMS as employee: {json}"
    );
    // Without --chain the intermediate is unknown.
    refused(
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(&data),
            "--signature",
            s(&login("challenge.citizen.cms.der")),
        ]),
        "untrusted",
        "citizen CMS without the chain",
    );

    // Raw bign signature with the certificate given separately.
    let raw = |data: &Path, hex_file: &str| {
        let hex = std::fs::read_to_string(login(hex_file)).expect("hex");
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(data),
            "--signature-raw",
            hex.trim(),
            "--cert",
            s(&x509("citizen.pem")),
            "--chain",
            s(&chain),
        ])
    };
    let r = valid(raw(&data, "challenge.citizen.sig.hex"), "raw citizen");
    assert_eq!(r["personal_number"], "3010185A001PB3", "{r}");
    refused(
        raw(&tampered, "challenge.citizen.sig.hex"),
        "bad_signature",
        "raw over tampered content",
    );
    refused(
        raw(&data, "challenge.citizen.badsig.sig.hex"),
        "bad_signature",
        "raw with a flipped bit",
    );

    // The raw signature attributed to another certificate (employee's key) does not verify.
    let hex = std::fs::read_to_string(login("challenge.citizen.sig.hex")).expect("hex");
    refused(
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(&data),
            "--signature-raw",
            hex.trim(),
            "--cert",
            s(&x509("employee.pem")),
            "--chain",
            s(&chain),
        ]),
        "bad_signature",
        "raw citizen signature under the employee's certificate",
    );
    refused(
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(&data),
            "--signature-raw",
            "not-hex",
            "--cert",
            s(&x509("citizen.pem")),
        ]),
        "malformed",
        "non-hex raw signature",
    );
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `dev test-pki` for one algorithm, then its trust in a keys directory, `dev sign-challenge`
/// and `cert verify` / `cert check` over the result.
fn test_pki_round_trip(algorithm: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["dev", "test-pki", s(&pki), "--algorithm", algorithm])
        .output()
        .expect("vhod dev test-pki");
    assert!(
        out.status.success(),
        "test-pki {algorithm}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("root-ca.pem"), "{summary}");
    for f in [
        "trust/root-ca.pem",
        "trust/crl/issuing-ca.crl.pem",
        "chain.pem",
        "issuing-ca.pem",
        "citizen.pem",
        "citizen.key.pem",
        "representative.pem",
        "representative.key.pem",
        "revoked.pem",
        "expired.pem",
    ] {
        assert!(pki.join(f).is_file(), "{algorithm}: {f} missing");
    }
    // A second run into the same (now non-empty) directory refuses.
    let again = Command::new(bin())
        .args(["dev", "test-pki", s(&pki), "--algorithm", algorithm])
        .output()
        .expect("vhod");
    assert!(!again.status.success(), "test-pki must not clobber a PKI");

    let env = Env::new(
        &[("root-ca.pem", &pki.join("trust/root-ca.pem"))],
        &[(
            "issuing-ca.crl.pem",
            &pki.join("trust/crl/issuing-ca.crl.pem"),
        )],
    );
    let chain = pki.join("chain.pem");

    let citizen = valid(env.check(&pki.join("citizen.pem"), Some(&chain)), "citizen");
    assert_eq!(citizen["personal_number"], "4120290A012PB3", "{citizen}");
    let rep = valid(
        env.check(&pki.join("representative.pem"), Some(&chain)),
        "representative",
    );
    assert_eq!(rep["unp"], "191234567", "{rep}");
    refused(
        env.check(&pki.join("revoked.pem"), Some(&chain)),
        "revoked",
        &format!("{algorithm} revoked"),
    );
    refused(
        env.check(&pki.join("expired.pem"), Some(&chain)),
        "expired",
        &format!("{algorithm} expired"),
    );
    // The vectors' trust does not know this PKI.
    refused(
        Env::vectors().check(&pki.join("citizen.pem"), Some(&chain)),
        "untrusted",
        &format!("{algorithm} citizen under the vectors' anchor"),
    );

    // Sign a challenge as the citizen's signing software would.
    let data = tmp.path().join("challenge.bin");
    let bytes = format!(r#"{{"nonce":"{}","aud":"https://vhod.test"}}"#, algorithm).into_bytes();
    std::fs::write(&data, &bytes).expect("write data");
    let tampered = tmp.path().join("tampered.bin");
    let mut t = bytes.clone();
    t.push(b' ');
    std::fs::write(&tampered, &t).expect("write");
    let challenge = b64url(&bytes);
    let sign = |leaf: &str, raw: bool| -> String {
        let mut args = vec![
            "dev".to_string(),
            "sign-challenge".into(),
            "--key".into(),
            s(&pki.join(format!("{leaf}.key.pem"))).into(),
            "--cert".into(),
            s(&pki.join(format!("{leaf}.pem"))).into(),
        ];
        if raw {
            args.push("--raw".into());
        }
        args.push(challenge.clone());
        let out = Command::new(bin())
            .args(&args)
            .env("VHOD_POLICIES_DIR", empty.path())
            .output()
            .expect("vhod dev sign-challenge");
        assert!(
            out.status.success(),
            "sign-challenge {leaf}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_string()
    };

    // CMS, base64 in a file.
    let cms_file = tmp.path().join("citizen.cms.b64");
    std::fs::write(&cms_file, sign("citizen", false)).expect("write");
    let verify_cms = |data: &Path, sig: &Path, signer: &str| {
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(data),
            "--signature",
            s(sig),
            "--cert",
            s(&pki.join(format!("{signer}.pem"))),
            "--chain",
            s(&chain),
        ])
    };
    let v = valid(
        verify_cms(&data, &cms_file, "citizen"),
        &format!("{algorithm} citizen CMS"),
    );
    assert_eq!(v["personal_number"], "4120290A012PB3", "{v}");
    refused(
        verify_cms(&tampered, &cms_file, "citizen"),
        "bad_signature",
        &format!("{algorithm} CMS over other data"),
    );

    // Raw, hex.
    let raw_hex = sign("citizen", true);
    assert!(raw_hex.chars().all(|c| c.is_ascii_hexdigit()), "{raw_hex}");
    if algorithm == "bign" {
        assert_eq!(raw_hex.len(), 96, "48 octets of bign signature");
    }
    let verify_raw = |data: &Path, hex: &str, leaf: &str| {
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(data),
            "--signature-raw",
            hex,
            "--cert",
            s(&pki.join(format!("{leaf}.pem"))),
            "--chain",
            s(&chain),
        ])
    };
    valid(
        verify_raw(&data, &raw_hex, "citizen"),
        &format!("{algorithm} citizen raw"),
    );
    refused(
        verify_raw(&tampered, &raw_hex, "citizen"),
        "bad_signature",
        &format!("{algorithm} raw over other data"),
    );
    refused(
        verify_raw(&data, &raw_hex, "representative"),
        "bad_signature",
        &format!("{algorithm} raw under another certificate"),
    );

    // The revoked holder's signature is mathematically fine and still refused.
    let revoked_cms = tmp.path().join("revoked.cms.b64");
    std::fs::write(&revoked_cms, sign("revoked", false)).expect("write");
    refused(
        verify_cms(&data, &revoked_cms, "revoked"),
        "revoked",
        &format!("{algorithm} revoked CMS"),
    );
    let expired_cms = tmp.path().join("expired.cms.b64");
    std::fs::write(&expired_cms, sign("expired", false)).expect("write");
    refused(
        verify_cms(&data, &expired_cms, "expired"),
        "expired",
        &format!("{algorithm} expired CMS"),
    );

    // sign-challenge refuses a key that is not the certificate's.
    let out = Command::new(bin())
        .args([
            "dev",
            "sign-challenge",
            "--key",
            s(&pki.join("revoked.key.pem")),
            "--cert",
            s(&pki.join("citizen.pem")),
            &challenge,
        ])
        .output()
        .expect("vhod");
    assert!(!out.status.success(), "a foreign key must be refused");
}

#[test]
fn test_pki_bign_round_trip() {
    test_pki_round_trip("bign");
}

#[test]
fn test_pki_ecdsa_p256_round_trip() {
    test_pki_round_trip("ecdsa-p256");
}

/// `cert verify --signature CMS --chain PEM` without `--cert`: the signer certificate embedded
/// in the CMS is the leaf and --chain supplies the intermediates (once dropped, which left the
/// embedded leaf without a path to the anchor).
#[test]
fn cms_chain_without_cert_is_used() {
    let env = Env::vectors();
    valid(
        env.cert(&[
            "cert",
            "verify",
            "--data",
            s(&login("challenge.json")),
            "--signature",
            s(&login("challenge.citizen.cms.der")),
            "--chain",
            s(&x509("chain.pem")),
        ]),
        "citizen CMS with --chain only",
    );
}
