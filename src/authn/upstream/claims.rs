//! What the upstream said, read through the deployment's claim and acr mappings. Each value is
//! read with its verified flag from the same document (the ID token, else userinfo): an
//! `email_verified` in the ID token does not vouch for another email that userinfo gives.

use serde_json::{Map, Value};

use crate::authn::{Acr, LegalEntity};
use crate::config::upstream::Upstream;
use crate::identity::upstream::{Person, Vouched};

/// The documents an upstream login produced, verified before they are read here.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    pub id_token: Option<Map<String, Value>>,
    pub userinfo: Option<Map<String, Value>>,
}

/// A claim read as text: strings as they are, numbers written out; anything else is absent.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flag is true only as JSON `true` or the string "true": anything else vouches for nothing.
fn flag(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

impl Documents {
    fn each(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.id_token.iter().chain(self.userinfo.iter())
    }

    /// The claim from the first document that has it.
    pub fn text(&self, claim: &str) -> Option<String> {
        self.each().find_map(|d| d.get(claim).and_then(text))
    }

    /// The value and, from that same document, whether `verified_claim` vouches for it.
    pub fn vouched(&self, claim: &str, verified_claim: Option<&str>) -> Option<Vouched> {
        self.each().find_map(|d| {
            let value = d.get(claim).and_then(text)?;
            let verified = verified_claim.is_some_and(|f| flag(d.get(f)));
            Some(Vouched { value, verified })
        })
    }

    /// A claim that is a list of strings (`amr`), or one string, from the first document.
    fn list(&self, claim: &str) -> Vec<String> {
        let v = self.each().find_map(|d| d.get(claim));
        match v {
            Some(Value::Array(items)) => items.iter().take(16).filter_map(text).collect(),
            Some(v) => text(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Is any of the mapped claims missing from the ID token (so userinfo must be asked)?
    pub fn id_token_lacks(&self, up: &Upstream) -> bool {
        let Some(id) = &self.id_token else {
            return true;
        };
        mapped(up).any(|claim| !id.contains_key(claim))
    }
}

fn mapped(up: &Upstream) -> impl Iterator<Item = &str> {
    let c = &up.claims;
    [
        &c.personal_number,
        &c.family_name,
        &c.given_name,
        &c.middle_name,
        &c.email,
        &c.phone,
        &c.legal_entity_unp,
        &c.legal_entity_name,
    ]
    .into_iter()
    .filter_map(|c| c.as_deref())
}

/// The claim naming the person at the upstream.
pub fn subject_claim(up: &Upstream) -> &str {
    up.claims.subject.as_deref().unwrap_or("sub")
}

/// The person as the mapping reads them, with the legal entity they act for; or the mapped
/// claims a login cannot do without that are missing: the subject, the personal number of an
/// upstream that vouches for numbers (without it the person's existing account is not found),
/// and the surname and given name.
pub fn person(
    up: &Upstream,
    docs: &Documents,
) -> Result<(Person, Option<LegalEntity>), Vec<String>> {
    let c = &up.claims;
    let read = |claim: &Option<String>| claim.as_deref().and_then(|n| docs.text(n));
    let mut missing = Vec::new();
    let mut require = |claim: &Option<String>, needed: bool| {
        let v = read(claim);
        if needed
            && v.is_none()
            && let Some(name) = claim
        {
            missing.push(name.clone());
        }
        v
    };
    let number = require(&c.personal_number, c.personal_number_verified);
    let family_name = require(&c.family_name, true);
    let given_name = require(&c.given_name, true);
    if docs.text(subject_claim(up)).is_none() {
        missing.push(subject_claim(up).to_string());
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let person = Person {
        verified_personal_number: number.filter(|_| c.personal_number_verified),
        family_name,
        given_name,
        middle_name: read(&c.middle_name),
        email: c
            .email
            .as_deref()
            .and_then(|e| docs.vouched(e, c.email_verified.as_deref())),
        phone: c
            .phone
            .as_deref()
            .and_then(|p| docs.vouched(p, c.phone_verified.as_deref())),
    };
    let legal_entity = read(&c.legal_entity_unp).map(|unp| LegalEntity {
        unp,
        name: read(&c.legal_entity_name),
    });
    Ok((person, legal_entity))
}

/// The assurance the login gives and its amr: what the mapping gives for the upstream's `acr`
/// and `amr` values (the strongest of them), else the upstream's default; never more. amr is
/// `fed` and the upstream's amr values the mapping names.
pub fn assurance(up: &Upstream, docs: &Documents) -> (Acr, Vec<String>) {
    let acr = docs.text("acr");
    let amr = docs.list("amr");
    let mapped = acr
        .iter()
        .chain(amr.iter())
        .filter_map(|v| up.acr_map.get(v).copied())
        .max()
        .unwrap_or(up.acr_default);
    let mut out = vec!["fed".to_string()];
    for v in amr {
        if up.acr_map.contains_key(&v) && !out.contains(&v) {
            out.push(v);
        }
    }
    (mapped, out)
}

/// The upstream's own acr values to ask for when a sign-in needs `need`: those the mapping
/// gives `need` or more for, the weakest first. Empty when any login through it will do; None
/// when none can.
pub fn acr_values_for(up: &Upstream, need: Acr) -> Option<Vec<String>> {
    // Whatever the upstream answers gives `need` (a sign-in that needs nothing, an upstream
    // whose every level is enough): asking for its strongest logins would only force them.
    if up.acr_default >= need && up.acr_map.values().all(|level| *level >= need) {
        return Some(Vec::new());
    }
    let mut enough: Vec<(&String, Acr)> = (up.acr_map.iter())
        .filter(|(_, level)| **level >= need)
        .map(|(v, level)| (v, *level))
        .collect();
    if enough.is_empty() {
        return (up.acr_default >= need).then(Vec::new);
    }
    enough.sort_by_key(|(_, level)| *level);
    Some(enough.into_iter().map(|(v, _)| v.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream(extra: &str) -> Upstream {
        let text = format!(
            r#"
            name = "npes"
            kind = "oidc"
            issuer = "https://npes.example.by"
            client_id = "vhod"
            client_secret = "s"
            display_name = "НПЭС"
            {extra}
            [claims]
            personal_number = "pn"
            personal_number_verified = true
            family_name = "family_name"
            given_name = "given_name"
            email = "email"
            email_verified = "email_verified"
            phone = "phone_number"
            phone_verified = "phone_number_verified"
            legal_entity_unp = "unp"
            [acr]
            default = "substantial"
            map = {{ "loa-high" = "high", "loa-low" = "low", "hwk" = "high" }}
            "#
        );
        let spec = toml::from_str(&text).expect("spec");
        let env = |_: &str| None;
        crate::config::upstream::validate(vec![spec], false, std::path::Path::new("."), &env)
            .expect("valid")
            .remove(0)
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn docs(id: Value, userinfo: Option<Value>) -> Documents {
        Documents {
            id_token: Some(obj(id)),
            userinfo: userinfo.map(obj),
        }
    }

    /// The ID token says the email is verified; userinfo gives another email and no flag:
    /// the flag stays with its own document's value.
    #[test]
    fn a_verified_flag_vouches_only_for_its_own_documents_value() {
        let up = upstream("");
        let base =
            json!({"sub": "1", "pn": "3101", "family_name": "Петрова", "given_name": "Мария"});
        let mut id = base.clone();
        id["email_verified"] = json!(true);
        let (p, _) = person(&up, &docs(id, Some(json!({"email": "other@example.by"})))).unwrap();
        assert_eq!(
            p.email,
            Some(Vouched {
                value: "other@example.by".into(),
                verified: false
            })
        );
        let mut id = base;
        id["email"] = json!("maria@example.by");
        id["email_verified"] = json!(true);
        let ui = json!({"email": "other@example.by", "email_verified": true});
        let (p, _) = person(&up, &docs(id, Some(ui))).unwrap();
        assert_eq!(
            p.email.unwrap().value,
            "maria@example.by",
            "the first document's"
        );
        // Truthy-looking values that are not true vouch for nothing.
        for not_true in [json!("yes"), json!(1), json!("TRUE"), json!(null)] {
            let d = docs(
                json!({"sub": "1", "pn": "3", "family_name": "a", "given_name": "b",
                       "phone_number": "+375291112233", "phone_number_verified": not_true}),
                None,
            );
            assert!(!person(&up, &d).unwrap().0.phone.unwrap().verified);
        }
    }

    #[test]
    fn the_claims_a_login_needs_are_named_when_missing() {
        let up = upstream("");
        let d = docs(json!({"sub": "1", "family_name": "Петрова"}), None);
        assert_eq!(
            person(&up, &d).unwrap_err(),
            ["pn".to_string(), "given_name".into()]
        );
        let d = docs(
            json!({"pn": 3101, "family_name": "a", "given_name": "b"}),
            None,
        );
        assert_eq!(person(&up, &d).unwrap_err(), ["sub".to_string()]);
        let d = docs(
            json!({"sub": "1", "pn": 3101, "family_name": "a", "given_name": "b", "unp": "190000001"}),
            None,
        );
        let (p, le) = person(&up, &d).unwrap();
        assert_eq!(p.verified_personal_number.as_deref(), Some("3101"));
        assert_eq!(le.unwrap().unp, "190000001");
    }

    #[test]
    fn the_mapping_gives_the_assurance_and_never_more() {
        let up = upstream("");
        let at = |v: Value| assurance(&up, &docs(v, None));
        assert_eq!(at(json!({})), (Acr::Substantial, vec!["fed".to_string()]));
        assert_eq!(at(json!({"acr": "loa-high"})).0, Acr::High);
        assert_eq!(at(json!({"acr": "loa-low"})).0, Acr::Low);
        assert_eq!(
            at(json!({"acr": "unknown"})).0,
            Acr::Substantial,
            "an unmapped value gives the default"
        );
        assert_eq!(
            at(json!({"acr": "loa-low", "amr": ["pwd", "hwk"]})),
            (Acr::High, vec!["fed".to_string(), "hwk".into()])
        );
    }

    #[test]
    fn a_client_s_need_is_asked_of_the_upstream_in_its_own_values() {
        let up = upstream("");
        assert_eq!(
            acr_values_for(&up, Acr::High),
            Some(vec!["hwk".to_string(), "loa-high".into()])
        );
        assert_eq!(acr_values_for(&up, Acr::Substantial).unwrap().len(), 2);
        assert_eq!(
            acr_values_for(&up, Acr::Low),
            Some(Vec::new()),
            "any login will do: nothing is asked"
        );
        let only_high = Upstream {
            acr_map: [("loa-high".to_string(), Acr::High)].into(),
            ..up.clone()
        };
        assert_eq!(
            acr_values_for(&only_high, Acr::Substantial),
            Some(Vec::new()),
            "the default is enough: the upstream is not made to sign in more strongly"
        );
        assert_eq!(
            acr_values_for(&only_high, Acr::High),
            Some(vec!["loa-high".to_string()])
        );
        let plain = Upstream {
            acr_map: Default::default(),
            ..up
        };
        assert_eq!(acr_values_for(&plain, Acr::Substantial), Some(Vec::new()));
        assert_eq!(acr_values_for(&plain, Acr::High), None);
        assert_eq!(plain.max_acr(), Acr::Substantial);
    }
}
