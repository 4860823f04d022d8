//! Reading the person out of a validated certificate: which subject attributes carry the
//! personal identification number, the name parts and, for a legal entity's representative, the
//! УНП and organisation. Deployments describe their CAs in `policies/certificates.toml`; the
//! code knows no CA's layout.

use der::asn1::ObjectIdentifier;
use serde::{Deserialize, Serialize};

use super::cert::Cert;
use super::{PkiError, Reason};

pub const EMBEDDED: &str = include_str!("../../policies/certificates.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertKind {
    /// A key on a hardware token (GosSUOK via AvPass and the like).
    Eds,
    IdCard,
}

impl CertKind {
    /// RFC 8176 method reference.
    pub fn amr(self) -> &'static str {
        match self {
            CertKind::Eds => "hwk",
            CertKind::IdCard => "sc",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeRule {
    oid: String,
    #[serde(default)]
    word: Option<usize>,
    #[serde(default)]
    strip_prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    profile: Vec<RawProfile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    kind: CertKind,
    #[serde(default)]
    authoritative_personal_number: bool,
    #[serde(default)]
    match_ca_sha256: Vec<String>,
    #[serde(default)]
    match_policies: Vec<String>,
    #[serde(default)]
    id_card_policies: Vec<String>,
    #[serde(default)]
    required_policies: Vec<String>,
    #[serde(default)]
    required_extended_key_usage: Vec<String>,
    #[serde(default)]
    personal_number: Vec<AttributeRule>,
    #[serde(default)]
    personal_number_pattern: Option<String>,
    #[serde(default)]
    surname: Vec<AttributeRule>,
    #[serde(default)]
    given_name: Vec<AttributeRule>,
    #[serde(default)]
    patronymic: Vec<AttributeRule>,
    #[serde(default)]
    unp: Vec<AttributeRule>,
    #[serde(default)]
    unp_pattern: Option<String>,
    #[serde(default)]
    organization: Vec<AttributeRule>,
    #[serde(default)]
    title: Vec<AttributeRule>,
}

#[derive(Debug, Clone)]
struct Rule {
    oid: ObjectIdentifier,
    word: Option<usize>,
    strip_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    kind: CertKind,
    /// The CAs this profile describes are the deployment's authority on personal numbers: a
    /// number they certify finds the person's account whichever way it was made. Any other
    /// profile's identities live in a scope of their own (see `identity::certificate`).
    pub authoritative_personal_number: bool,
    match_ca_sha256: Vec<[u8; 32]>,
    match_policies: Vec<ObjectIdentifier>,
    id_card_policies: Vec<ObjectIdentifier>,
    required_policies: Vec<ObjectIdentifier>,
    required_eku: Vec<ObjectIdentifier>,
    personal_number: Vec<Rule>,
    personal_number_pattern: Option<String>,
    surname: Vec<Rule>,
    given_name: Vec<Rule>,
    patronymic: Vec<Rule>,
    unp: Vec<Rule>,
    unp_pattern: Option<String>,
    organization: Vec<Rule>,
    title: Vec<Rule>,
}

/// Who the certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertIdentity {
    pub profile: String,
    /// The profile is authoritative for personal numbers: the number names the person across
    /// the deployment. Otherwise the identity means something only among the certificates this
    /// profile read under this anchor (see `identity::certificate`).
    pub authoritative: bool,
    /// SHA-256 (hex) of the anchor's SubjectPublicKeyInfo: a root re-issued with the same key
    /// keeps it.
    pub anchor_key: String,
    pub kind: CertKind,
    pub personal_number: Option<String>,
    pub surname: Option<String>,
    pub given_name: Option<String>,
    pub patronymic: Option<String>,
    /// Set for a legal entity's representative.
    pub unp: Option<String>,
    pub organization: Option<String>,
    pub title: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fingerprint: String,
}

fn oid(s: &str) -> Result<ObjectIdentifier, String> {
    ObjectIdentifier::new(s).map_err(|e| format!("bad OID {s:?}: {e}"))
}

fn oids(list: &[String]) -> Result<Vec<ObjectIdentifier>, String> {
    list.iter().map(|s| oid(s)).collect()
}

fn rules(list: &[AttributeRule]) -> Result<Vec<Rule>, String> {
    list.iter()
        .map(|r| {
            if r.word == Some(0) {
                return Err("`word` counts from 1".into());
            }
            Ok(Rule {
                oid: oid(&r.oid)?,
                word: r.word,
                strip_prefix: r.strip_prefix.clone(),
            })
        })
        .collect()
}

fn check_pattern(p: &Option<String>) -> Result<(), String> {
    match p {
        Some(p) if !p.chars().all(|c| c == '9' || c == 'A') => Err(format!(
            "pattern {p:?}: use 9 for a digit and A for a Latin capital letter"
        )),
        _ => Ok(()),
    }
}

/// `9` a digit, `A` a Latin capital letter; the whole value must fit.
fn fits(pattern: &str, value: &str) -> bool {
    pattern.len() == value.len()
        && pattern.chars().zip(value.chars()).all(|(p, c)| match p {
            '9' => c.is_ascii_digit(),
            _ => c.is_ascii_uppercase(),
        })
}

fn apply(rules: &[Rule], cert: &Cert) -> Option<String> {
    for r in rules {
        for v in cert.subject_values(r.oid) {
            let v = v.trim();
            let v = match &r.strip_prefix {
                Some(p) => match v.strip_prefix(p.as_str()) {
                    Some(rest) => rest,
                    None => continue,
                },
                None => v,
            };
            let v = match r.word {
                Some(n) => match v.split_whitespace().nth(n - 1) {
                    Some(w) => w,
                    None => continue,
                },
                None => v,
            };
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    None
}

impl Profile {
    fn matches(&self, leaf: &Cert, cas: &[&Cert]) -> bool {
        (self.match_ca_sha256.is_empty()
            || cas
                .iter()
                .any(|c| self.match_ca_sha256.contains(&c.fingerprint)))
            && (self.match_policies.is_empty()
                || leaf
                    .policies
                    .iter()
                    .any(|p| self.match_policies.contains(p)))
    }

    /// Certificate policy and extended key usage requirements of this CA.
    /// Whether the profile names the CAs it describes; a profile that does not describes every
    /// path.
    pub fn matches_any_ca(&self) -> bool {
        self.match_ca_sha256.is_empty()
    }

    pub fn check_requirements(&self, leaf: &Cert) -> Result<(), PkiError> {
        if !self.required_policies.is_empty()
            && !leaf
                .policies
                .iter()
                .any(|p| self.required_policies.contains(p))
        {
            return Err(PkiError::new(
                Reason::Policy,
                "the certificate lacks a required certificate policy",
            ));
        }
        if !self.required_eku.is_empty() {
            let ok = leaf
                .extended_key_usage
                .as_ref()
                .is_some_and(|eku| eku.iter().any(|p| self.required_eku.contains(p)));
            if !ok {
                return Err(PkiError::new(
                    Reason::Policy,
                    "the certificate lacks a required extended key usage",
                ));
            }
        }
        Ok(())
    }

    /// The person `leaf` names, as this profile reads it, under the path's `anchor`.
    pub fn identity(&self, leaf: &Cert, anchor: &Cert) -> Result<CertIdentity, PkiError> {
        let personal_number = apply(&self.personal_number, leaf).map(|s| s.to_ascii_uppercase());
        if let (Some(p), Some(pn)) = (&self.personal_number_pattern, &personal_number)
            && !fits(p, pn)
        {
            return Err(PkiError::new(
                Reason::Policy,
                "the personal identification number has the wrong format",
            ));
        }
        let unp = apply(&self.unp, leaf);
        if let (Some(p), Some(u)) = (&self.unp_pattern, &unp)
            && !fits(p, u)
        {
            return Err(PkiError::new(
                Reason::Policy,
                "the УНП has the wrong format",
            ));
        }
        if personal_number.is_none() && unp.is_none() {
            return Err(PkiError::new(
                Reason::Policy,
                "the certificate names neither a personal identification number nor an УНП",
            ));
        }
        let kind = if leaf
            .policies
            .iter()
            .any(|p| self.id_card_policies.contains(p))
        {
            CertKind::IdCard
        } else {
            self.kind
        };
        Ok(CertIdentity {
            profile: self.name.clone(),
            authoritative: self.authoritative_personal_number,
            anchor_key: hex::encode(anchor.spki_sha256),
            kind,
            personal_number,
            surname: apply(&self.surname, leaf),
            given_name: apply(&self.given_name, leaf),
            patronymic: apply(&self.patronymic, leaf),
            organization: if unp.is_some() {
                apply(&self.organization, leaf)
            } else {
                None
            },
            unp,
            title: apply(&self.title, leaf),
            subject: leaf.subject(),
            issuer: leaf.issuer(),
            serial: leaf.serial_hex(),
            fingerprint: hex::encode(leaf.fingerprint),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Profiles(Vec<Profile>);

impl Profiles {
    pub fn parse(text: &str) -> Result<Profiles, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.profile.is_empty() {
            return Err("no [[profile]]".into());
        }
        let mut out: Vec<Profile> = Vec::new();
        for p in file.profile {
            let ctx = |e: String| format!("profile {:?}: {e}", p.name);
            // The name scopes the identities a non-authoritative profile reads (stored in
            // `certificate_identities`), so it must be unique and delimit cleanly.
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(ctx(
                    "a name is 1 to 64 Latin letters, digits, '-', '_' or '.'".into(),
                ));
            }
            if out.iter().any(|o| o.name == p.name) {
                return Err(ctx("the name is used twice".into()));
            }
            check_pattern(&p.personal_number_pattern).map_err(ctx)?;
            check_pattern(&p.unp_pattern).map_err(ctx)?;
            let mut match_ca_sha256 = Vec::new();
            for h in &p.match_ca_sha256 {
                let bytes = hex::decode(h.trim()).map_err(|e| ctx(format!("{h:?}: {e}")))?;
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| ctx(format!("{h:?} is not a SHA-256")))?;
                match_ca_sha256.push(arr);
            }
            out.push(Profile {
                kind: p.kind,
                authoritative_personal_number: p.authoritative_personal_number,
                match_ca_sha256,
                match_policies: oids(&p.match_policies).map_err(ctx)?,
                id_card_policies: oids(&p.id_card_policies).map_err(ctx)?,
                required_policies: oids(&p.required_policies).map_err(ctx)?,
                required_eku: oids(&p.required_extended_key_usage).map_err(ctx)?,
                personal_number: rules(&p.personal_number).map_err(ctx)?,
                personal_number_pattern: p.personal_number_pattern.clone(),
                surname: rules(&p.surname).map_err(ctx)?,
                given_name: rules(&p.given_name).map_err(ctx)?,
                patronymic: rules(&p.patronymic).map_err(ctx)?,
                unp: rules(&p.unp).map_err(ctx)?,
                unp_pattern: p.unp_pattern.clone(),
                organization: rules(&p.organization).map_err(ctx)?,
                title: rules(&p.title).map_err(ctx)?,
                name: p.name,
            });
        }
        Ok(Profiles(out))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.0.iter()
    }

    pub fn embedded() -> Profiles {
        // The embedded file is part of the build and covered by a test below.
        Profiles::parse(EMBEDDED).unwrap_or(Profiles(Vec::new()))
    }

    /// The profile for a validated path (leaf first, anchor last).
    pub fn for_path(&self, path: &[std::sync::Arc<Cert>]) -> Result<&Profile, PkiError> {
        let Some((leaf, cas)) = path.split_first() else {
            return Err(PkiError::new(Reason::Policy, "empty path"));
        };
        let cas: Vec<&Cert> = cas.iter().map(|c| c.as_ref()).collect();
        self.0
            .iter()
            .find(|p| p.matches(leaf, &cas))
            .ok_or_else(|| {
                PkiError::new(
                    Reason::Policy,
                    "no certificate profile describes this CA (policies/certificates.toml)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_profiles_parse() {
        let p = Profiles::parse(EMBEDDED).unwrap();
        assert_eq!(p.0[0].name, "national");
        // Existing `pn:` rows were made through it: it stays the authority on numbers.
        assert!(p.0[0].authoritative_personal_number);
    }

    #[test]
    fn only_profiles_marked_so_are_authoritative_and_names_are_unique() {
        let two = "[[profile]]\nname='a'\nkind='eds'\nauthoritative_personal_number=true\n\
                   [[profile]]\nname='b'\nkind='eds'\n";
        let p = Profiles::parse(two).unwrap();
        assert!(p.0[0].authoritative_personal_number);
        assert!(!p.0[1].authoritative_personal_number);
        let twice = "[[profile]]\nname='a'\nkind='eds'\n[[profile]]\nname='a'\nkind='eds'\n";
        assert!(Profiles::parse(twice).unwrap_err().contains("twice"));
        for bad in ["", "a/b", "a:b", "a b"] {
            let text = format!("[[profile]]\nname='{bad}'\nkind='eds'\n");
            assert!(Profiles::parse(&text).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_say_what_they_mean() {
        assert!(fits("9999999A999AA9", "3010185A001PB3"));
        assert!(!fits("9999999A999AA9", "3010185a001PB3"));
        assert!(!fits("9999999A999AA9", "3010185A001PB"));
        assert!(fits("999999999", "190000001"));
        assert!(!fits("999999999", "19000000Х"));
    }

    #[test]
    fn bad_profiles_are_refused_with_a_reason() {
        assert!(Profiles::parse("").is_err());
        let bad_oid = "[[profile]]\nname='x'\nkind='eds'\npersonal_number=[{oid='x.y'}]\n";
        assert!(Profiles::parse(bad_oid).unwrap_err().contains("bad OID"));
        let unknown = "[[profile]]\nname='x'\nkind='eds'\nsurnme=[]\n";
        assert!(Profiles::parse(unknown).is_err());
        let kind = "[[profile]]\nname='x'\nkind='token'\n";
        assert!(Profiles::parse(kind).is_err());
    }
}
