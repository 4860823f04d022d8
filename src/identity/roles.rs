//! Roles: the system roles every token speaks of (`applicant`, `employee`, `admin`,
//! `auditor`), and the catalogue of organisation roles the deployment defines in
//! `policies/roles.toml` (registrar, reviewer, executor, controller, head, …).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::config::Localized;

pub const EMBEDDED_CATALOGUE: &str = include_str!("../../policies/roles.toml");

/// A system role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemRole {
    /// A person who files appeals: every verified person (a citizen, a representative).
    Applicant,
    /// Works in one or more organisations (a membership or a delegation in force).
    Employee,
    /// The main administrator or an organisation's external administrator.
    Admin,
    /// A security officer.
    Auditor,
}

impl SystemRole {
    pub const ALL: [SystemRole; 4] = [
        SystemRole::Applicant,
        SystemRole::Employee,
        SystemRole::Admin,
        SystemRole::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemRole::Applicant => "applicant",
            SystemRole::Employee => "employee",
            SystemRole::Admin => "admin",
            SystemRole::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<SystemRole> {
        SystemRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One organisation role of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRole {
    pub id: String,
    pub name: Localized,
    pub delegable: bool,
}

/// The deployment's organisation roles, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    roles: BTreeMap<String, OrgRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    role: Vec<RawRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    id: String,
    name: String,
    #[serde(default)]
    name_be: Option<String>,
    #[serde(default)]
    name_en: Option<String>,
    #[serde(default = "yes")]
    delegable: bool,
}

fn yes() -> bool {
    true
}

/// Is `s` a well-formed organisation role id: 1 to 32 of `a-z 0-9 _`, starting with a letter.
pub fn valid_role_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Catalogue {
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut roles = BTreeMap::new();
        for r in file.role {
            if !valid_role_id(&r.id) {
                return Err(format!(
                    "role id {:?}: 1 to 32 of a-z, 0-9, '_', starting with a letter",
                    r.id
                ));
            }
            if SystemRole::parse(&r.id).is_some() {
                return Err(format!(
                    "role id {:?} is a system role, not an organisation role",
                    r.id
                ));
            }
            if r.name.trim().is_empty() {
                return Err(format!("role {:?} has no name", r.id));
            }
            let role = OrgRole {
                id: r.id.clone(),
                name: Localized {
                    ru: Some(r.name),
                    be: r.name_be,
                    en: r.name_en,
                },
                delegable: r.delegable,
            };
            if roles.insert(r.id.clone(), role).is_some() {
                return Err(format!("role {:?} is defined twice", r.id));
            }
        }
        Ok(Catalogue { roles })
    }

    pub fn embedded() -> Catalogue {
        // The embedded file is checked by a test below.
        Catalogue::parse(EMBEDDED_CATALOGUE).unwrap_or_default()
    }

    /// `<policies_dir>/roles.toml`, or the embedded catalogue when it is absent.
    pub fn load(policies_dir: &Path) -> anyhow::Result<Catalogue> {
        let path = policies_dir.join("roles.toml");
        if !path.exists() {
            return Ok(Catalogue::embedded());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Catalogue::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn get(&self, id: &str) -> Option<&OrgRole> {
        self.roles.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &OrgRole> {
        self.roles.values()
    }

    /// Checks that every role is in the catalogue; returns them sorted, without duplicates.
    pub fn check<'a>(
        &self,
        roles: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for r in roles {
            if self.get(r).is_none() {
                let known: Vec<&str> = self.roles.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown organisation role {r:?} (the catalogue in policies/roles.toml has: {})",
                    known.join(", ")
                ));
            }
            out.push(r.to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalogue_is_valid() {
        let c = Catalogue::parse(EMBEDDED_CATALOGUE).unwrap();
        for id in ["registrar", "reviewer", "executor", "controller", "head"] {
            assert!(c.get(id).is_some(), "{id}");
        }
        assert_eq!(
            c.check(["head", "registrar", "head"]).unwrap(),
            ["head", "registrar"]
        );
        assert!(c.check(["admin"]).is_err());
    }

    #[test]
    fn a_bad_catalogue_is_refused_with_its_reason() {
        for (text, says) in [
            ("[[role]]\nid = \"Reg\"\nname = \"R\"\n", "role id"),
            ("[[role]]\nid = \"admin\"\nname = \"R\"\n", "system role"),
            (
                "[[role]]\nid = \"r\"\nname = \"R\"\n[[role]]\nid = \"r\"\nname = \"S\"\n",
                "twice",
            ),
            (
                "[[role]]\nid = \"r\"\nname = \"R\"\ncolour = 1\n",
                "unknown field",
            ),
            ("[[role]]\nid = \"r\"\nname = \" \"\n", "no name"),
        ] {
            let e = Catalogue::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
