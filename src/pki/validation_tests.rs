//! Path validation decisions on PKIs made here at run time (bign and ECDSA): each rule of
//! `chain`, `crl`, `cms` and `profile` refuses with its own reason, and only that rule.

use std::sync::Arc;

use der::asn1::ObjectIdentifier;

use super::budget::Budget;
use super::cert::Cert;
use super::cms_sign::{SignOptions, sign_detached};
use super::crl::Crl;
use super::issue::{self, CertSpec, Issuer, Revocation};
use super::keys::{KeyAlgorithm, PrivateKey};
use super::profile::{CertKind, Profiles};
use super::trust::{PkiSettings, Trust, Validated};
use super::verify::{Proof, verify_signed_with};
use super::{PkiError, Reason, oids};

const NOW: i64 = 1_900_000_000;
const DAY: i64 = 86_400;

struct Pki {
    root: Vec<u8>,
    ca: Issuer,
    ca_der: Vec<u8>,
}

fn subject(cn: &str) -> Vec<(ObjectIdentifier, String)> {
    vec![
        (oids::AT_COUNTRY, "BY".into()),
        (oids::AT_COMMON_NAME, cn.into()),
    ]
}

fn person() -> Vec<(ObjectIdentifier, String)> {
    vec![
        (oids::AT_COUNTRY, "BY".into()),
        (oids::AT_SURNAME, "Петров".into()),
        (oids::AT_GIVEN_NAME, "Пётр".into()),
        (oids::AT_COMMON_NAME, "Петров Пётр Петрович".into()),
        (oids::AT_SERIAL_NUMBER, "3120290A001PB7".into()),
    ]
}

fn pki(alg: KeyAlgorithm) -> Pki {
    let root_key = PrivateKey::generate(alg).unwrap();
    let root = issue::self_signed(
        &CertSpec::root(subject("Root"), &[1], NOW - DAY, NOW + 900 * DAY),
        &root_key,
    )
    .unwrap();
    let root_issuer = Issuer::new(&root, root_key).unwrap();
    let ca_key = PrivateKey::generate(alg).unwrap();
    let ca_der = issue::issue(
        &CertSpec::intermediate(subject("CA"), &[2], NOW - DAY, NOW + 800 * DAY, Some(0)),
        &ca_key.spki(),
        &root_issuer,
    )
    .unwrap();
    Pki {
        ca: Issuer::new(&ca_der, ca_key).unwrap(),
        ca_der,
        root,
    }
}

impl Pki {
    fn leaf(&self, spec: CertSpec) -> (Vec<u8>, PrivateKey) {
        let key = PrivateKey::generate(self.ca.key().algorithm()).unwrap();
        (issue::issue(&spec, &key.spki(), &self.ca).unwrap(), key)
    }

    fn crl(&self, revoked: &[Vec<u8>]) -> Crl {
        let list: Vec<Revocation> = revoked
            .iter()
            .map(|s| Revocation {
                serial: s.clone(),
                revoked_at: NOW - DAY,
                reason: None,
            })
            .collect();
        Crl::from_der(&issue::crl(&self.ca, &list, NOW - DAY, NOW + 7 * DAY, 1).unwrap()).unwrap()
    }

    fn trust(&self, profiles: Profiles) -> Trust {
        Trust::new(
            vec![Cert::from_der(&self.root).unwrap()],
            vec![self.crl(&[])],
            profiles,
            PkiSettings {
                fetch_crls: false,
                ..PkiSettings::default()
            },
        )
    }
}

fn leaf_spec(serial: u8) -> CertSpec {
    CertSpec::leaf(person(), &[serial], NOW - DAY, NOW + 300 * DAY)
}

async fn login(
    trust: &Trust,
    leaf: &[u8],
    key: &PrivateKey,
    chain: &[&[u8]],
    opts: SignOptions,
) -> Result<Validated, PkiError> {
    let challenge = b"{\"nonce\":\"test\",\"aud\":\"https://vhod.test\"}";
    let cms = sign_detached(challenge, leaf, key, opts).unwrap();
    let pool = chain.iter().map(|c| Cert::from_der(c).unwrap()).collect();
    let pem = issue::to_pem("CERTIFICATE", leaf);
    verify_signed_with(
        trust,
        Some(pem.as_bytes()),
        pool,
        Proof::Cms(&cms),
        challenge,
        NOW,
        &reqwest::Client::new(),
    )
    .await
}

fn reason(r: Result<Validated, PkiError>) -> Reason {
    r.err().map(|e| e.reason).expect("refused")
}

#[tokio::test]
async fn every_cms_shape_verifies_with_bign_and_ecdsa() {
    for alg in [
        KeyAlgorithm::Bign,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
    ] {
        let p = pki(alg);
        let trust = p.trust(Profiles::embedded());
        let (leaf, key) = p.leaf(leaf_spec(10));
        for (attached, signed_attributes) in
            [(false, true), (true, true), (false, false), (true, false)]
        {
            let opts = SignOptions {
                attached,
                signed_attributes,
                ..SignOptions::default()
            };
            let v = login(&trust, &leaf, &key, &[&p.ca_der], opts).await;
            let v = v.unwrap_or_else(|e| {
                panic!("{alg:?} attached={attached} attrs={signed_attributes}: {e}")
            });
            assert_eq!(
                v.identity.personal_number.as_deref(),
                Some("3120290A001PB7")
            );
            assert_eq!(v.identity.given_name.as_deref(), Some("Пётр"));
        }
    }
}

#[tokio::test]
async fn constraints_refuse_with_key_usage() {
    let p = pki(KeyAlgorithm::Bign);
    let trust = p.trust(Profiles::embedded());
    // A person's certificate without digitalSignature.
    let mut spec = leaf_spec(11);
    spec.key_usage = Some(x509_cert::ext::pkix::KeyUsages::KeyEncipherment.into());
    let (leaf, key) = p.leaf(spec);
    let r = login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default()).await;
    assert_eq!(reason(r), Reason::KeyUsage);
    // A CA below a pathLen 0 CA.
    let sub_key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
    let sub = issue::issue(
        &CertSpec::intermediate(subject("Sub CA"), &[12], NOW - DAY, NOW + DAY, None),
        &sub_key.spki(),
        &p.ca,
    )
    .unwrap();
    let sub_issuer = Issuer::new(&sub, sub_key).unwrap();
    let leaf_key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
    let leaf = issue::issue(&leaf_spec(13), &leaf_key.spki(), &sub_issuer).unwrap();
    let r = login(
        &trust,
        &leaf,
        &leaf_key,
        &[&sub, &p.ca_der],
        SignOptions::default(),
    )
    .await;
    assert_eq!(reason(r), Reason::KeyUsage);
    // A "CA" that is not one: an end entity used as issuer.
    let (ee, ee_key) = p.leaf(CertSpec::leaf(
        subject("Not a CA"),
        &[14],
        NOW - DAY,
        NOW + DAY,
    ));
    let fake = Issuer::new(&ee, ee_key).unwrap();
    let leaf_key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
    let leaf = issue::issue(&leaf_spec(15), &leaf_key.spki(), &fake).unwrap();
    let r = login(
        &trust,
        &leaf,
        &leaf_key,
        &[&ee, &p.ca_der],
        SignOptions::default(),
    )
    .await;
    assert_eq!(reason(r), Reason::KeyUsage);
}

#[tokio::test]
async fn unknown_critical_extensions_are_malformed_known_ones_are_not() {
    let p = pki(KeyAlgorithm::EcdsaP256);
    let trust = p.trust(Profiles::embedded());
    let mut spec = leaf_spec(20);
    spec.extra_extensions = vec![(
        ObjectIdentifier::new_unwrap("1.2.3.4.5"),
        true,
        vec![0x05, 0x00],
    )];
    let (leaf, key) = p.leaf(spec);
    let r = login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default()).await;
    assert_eq!(reason(r), Reason::Malformed);
    let mut spec = leaf_spec(21);
    spec.extra_extensions = vec![(
        ObjectIdentifier::new_unwrap("1.2.3.4.5"),
        false,
        vec![0x05, 0x00],
    )];
    let (leaf, key) = p.leaf(spec);
    assert!(
        login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn profiles_decide_policy_and_the_kind_of_credential() {
    let p = pki(KeyAlgorithm::Bign);
    let id_card = ObjectIdentifier::new_unwrap("1.2.112.1.2.1.1.5.1");
    let ca_sha = hex::encode(Cert::from_der(&p.ca_der).unwrap().fingerprint);
    let profiles = Profiles::parse(&format!(
        r#"
[[profile]]
name = "this-ca"
kind = "eds"
match_ca_sha256 = ["{ca_sha}"]
id_card_policies = ["{id_card}"]
required_extended_key_usage = ["1.3.6.1.5.5.7.3.2"]
personal_number = [{{ oid = "2.5.4.5" }}]
surname = [{{ oid = "2.5.4.4" }}]
given_name = [{{ oid = "2.5.4.42" }}]
"#
    ))
    .unwrap();
    let trust = p.trust(profiles);
    // Without the required EKU: policy.
    let (leaf, key) = p.leaf(leaf_spec(30));
    let r = login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default()).await;
    assert_eq!(reason(r), Reason::Policy);
    // With it: an EDS token; with the ID card policy as well: an ID card.
    let client_auth = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    let mut spec = leaf_spec(31);
    spec.extended_key_usage = vec![client_auth];
    let (leaf, key) = p.leaf(spec);
    let v = login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default())
        .await
        .unwrap();
    assert_eq!(v.identity.kind, CertKind::Eds);
    let mut spec = leaf_spec(32);
    spec.extended_key_usage = vec![client_auth];
    spec.policies = vec![id_card];
    let (leaf, key) = p.leaf(spec);
    let v = login(&trust, &leaf, &key, &[&p.ca_der], SignOptions::default())
        .await
        .unwrap();
    assert_eq!(v.identity.kind, CertKind::IdCard);
    assert_eq!(v.identity.kind.amr(), "sc");
    // Another CA's certificates match no profile of this file: policy.
    let other = pki(KeyAlgorithm::Bign);
    let other_trust = Trust::new(
        vec![Cert::from_der(&other.root).unwrap()],
        vec![other.crl(&[])],
        trust.profiles().clone(),
        PkiSettings::default(),
    );
    let (leaf, key) = other.leaf(leaf_spec(33));
    let r = login(
        &other_trust,
        &leaf,
        &key,
        &[&other.ca_der],
        SignOptions::default(),
    )
    .await;
    assert_eq!(reason(r), Reason::Policy);
}

#[tokio::test]
async fn revocation_uses_only_fresh_crls_signed_by_the_issuer() {
    let p = pki(KeyAlgorithm::Bign);
    let (leaf, key) = p.leaf(leaf_spec(40));
    let serial = vec![40u8];
    let settings = || PkiSettings {
        fetch_crls: false,
        ..PkiSettings::default()
    };
    let anchors = || vec![Cert::from_der(&p.root).unwrap()];
    let go = |crls: Vec<Crl>, s: PkiSettings| {
        let trust = Trust::new(anchors(), crls, Profiles::embedded(), s);
        let leaf = leaf.clone();
        let ca = p.ca_der.clone();
        let key = &key;
        async move { login(&trust, &leaf, key, &[&ca], SignOptions::default()).await }
    };
    assert_eq!(
        reason(go(vec![p.crl(std::slice::from_ref(&serial))], settings()).await),
        Reason::Revoked
    );
    // Stale: nextUpdate passed.
    let stale =
        Crl::from_der(&issue::crl(&p.ca, &[], NOW - 9 * DAY, NOW - DAY, 1).unwrap()).unwrap();
    assert_eq!(
        reason(go(vec![stale.clone()], settings()).await),
        Reason::CrlUnavailable
    );
    // Signed by another key under the issuer's name.
    let impostor_key = PrivateKey::generate(KeyAlgorithm::Bign).unwrap();
    let impostor = Issuer::new_unchecked(&p.ca_der, impostor_key).unwrap();
    let forged =
        Crl::from_der(&issue::crl(&impostor, &[], NOW - DAY, NOW + DAY, 2).unwrap()).unwrap();
    assert_eq!(
        reason(go(vec![forged.clone()], settings()).await),
        Reason::BadSignature
    );
    // A forged list does not hide a good one, and the newest good one wins.
    assert!(go(vec![forged, p.crl(&[])], settings()).await.is_ok());
    // Fail open only when configured so.
    let open = PkiSettings {
        require_crl: false,
        fetch_crls: false,
        ..PkiSettings::default()
    };
    assert!(go(vec![stale], open).await.is_ok());
}

#[test]
fn path_building_prefers_the_configured_anchor_and_refuses_loops() {
    let p = pki(KeyAlgorithm::EcdsaP256);
    let root = Arc::new(Cert::from_der(&p.root).unwrap());
    let ca = Arc::new(Cert::from_der(&p.ca_der).unwrap());
    let (leaf, _) = p.leaf(leaf_spec(50));
    let leaf = Arc::new(Cert::from_der(&leaf).unwrap());
    let path = super::chain::build(
        leaf.clone(),
        &[ca.clone(), root.clone()],
        std::slice::from_ref(&root),
        &mut unlimited(),
    )
    .unwrap();
    assert_eq!(path.len(), 3);
    assert_eq!(path[2].fingerprint, root.fingerprint);
    // Without the anchor there is no path, whatever the client sends.
    let e = super::chain::build(leaf, &[ca, root], &[], &mut unlimited()).unwrap_err();
    assert_eq!(e.reason, Reason::Untrusted);
}

fn unlimited() -> Budget {
    Budget::new(usize::MAX, None)
}

/// `count` CA certificates with one name and one key, each signed by that key (so each is a
/// valid issuer of every other), and a person's certificate issued under that name.
fn look_alikes(count: u8) -> (Arc<Cert>, Vec<Arc<Cert>>, Issuer) {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let spec = |serial: u8| {
        CertSpec::intermediate(subject("Look-alike"), &[serial], NOW - DAY, NOW + DAY, None)
    };
    let seed = issue::self_signed(&spec(100), &key).unwrap();
    let signer = Issuer::new(&seed, key).unwrap();
    let pool = (1..=count)
        .map(|i| {
            let der = issue::issue(&spec(i), &signer.key().spki(), &signer).unwrap();
            Arc::new(Cert::from_der(&der).unwrap())
        })
        .collect();
    let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let leaf = issue::issue(&leaf_spec(60), &leaf_key.spki(), &signer).unwrap();
    (Arc::new(Cert::from_der(&leaf).unwrap()), pool, signer)
}

#[test]
fn path_building_verifies_each_pair_at_most_once() {
    // Ten look-alikes and no anchor for them: every ordering of them is a candidate path, and
    // trying each (10 + 10·9 + 10·9·8 + … signatures) is what a hostile login asked for.
    let n = 10;
    let (leaf, pool, _) = look_alikes(n);
    let mut budget = unlimited();
    let e = super::chain::build(leaf.clone(), &pool, &[], &mut budget).unwrap_err();
    assert_eq!(e.reason, Reason::Untrusted);
    let n = usize::from(n);
    assert!(
        budget.used() <= n * (n + 1),
        "{} signature verifications for {n} certificates",
        budget.used()
    );
    // The ceiling stops the search with its own reason.
    let mut small = Budget::new(3, None);
    let e = super::chain::build(leaf, &pool, &[], &mut small).unwrap_err();
    assert_eq!(e.reason, Reason::TooComplex);
    assert_eq!(small.used(), 3);
}

#[test]
fn look_alikes_do_not_hide_the_path_to_the_anchor() {
    // The look-alikes' own key is the anchor's: a path exists and is found, and the shortest.
    let (leaf, pool, signer) = look_alikes(6);
    let anchor =
        Arc::new(Cert::from_der(&der::Encode::to_der(signer.certificate()).unwrap()).unwrap());
    let mut budget = unlimited();
    let path =
        super::chain::build(leaf, &pool, std::slice::from_ref(&anchor), &mut budget).unwrap();
    assert_eq!(path.len(), 2);
    assert_eq!(path[1].fingerprint, anchor.fingerprint);
    assert!(budget.used() <= 2, "{} verifications", budget.used());
}
