//! Organisations: state bodies, organisations and their structural units, in a tree. Ids are
//! stable and chosen by the operator (tokens and relying subsystems key on them); names,
//! УНП, kind and the place in the tree may change, a cycle never.

use std::fmt;

pub use crate::store::organisations::{Changes, MAX_DEPTH, Organisation, TreeError};
use crate::store::sql::Db;

/// A validated organisation id: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

impl OrgId {
    pub fn parse(s: &str) -> Result<OrgId, OrgError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(OrgId(s.to_string()))
        } else {
            Err(OrgError::Invalid(format!(
                "organisation id {s:?}: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an organisation is, in the seeds' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    /// A state body (государственный орган).
    StateBody,
    /// Another organisation (a legal entity).
    Organisation,
    /// A structural unit that is not a legal entity.
    Unit,
}

impl OrgKind {
    pub const ALL: [OrgKind; 3] = [OrgKind::StateBody, OrgKind::Organisation, OrgKind::Unit];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::StateBody => "state_body",
            OrgKind::Organisation => "organisation",
            OrgKind::Unit => "unit",
        }
    }

    pub fn parse(s: &str) -> Result<OrgKind, OrgError> {
        OrgKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                OrgError::Invalid(format!("kind {s:?}: one of state_body, organisation, unit"))
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
}

impl From<crate::store::StoreError> for OrgError {
    fn from(e: crate::store::StoreError) -> Self {
        OrgError::Tree(TreeError::Store(e))
    }
}

/// A name as people read it: 1 to 300 characters, no control characters, trimmed.
pub fn name(s: &str, what: &str) -> Result<String, OrgError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 300 || t.chars().any(char::is_control) {
        return Err(OrgError::Invalid(format!(
            "{what}: 1 to 300 printable characters"
        )));
    }
    Ok(t.to_string())
}

/// A УНП (учётный номер плательщика): nine digits.
pub fn unp(s: &str) -> Result<String, OrgError> {
    let t = s.trim();
    if t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(OrgError::Invalid(format!("УНП {s:?}: nine digits")))
    }
}

/// A new organisation as asked for: checked by [`NewOrganisation::validate`].
#[derive(Debug, Clone, Default)]
pub struct NewOrganisation {
    pub id: String,
    pub parent: Option<String>,
    pub name: String,
    pub name_be: Option<String>,
    pub unp: Option<String>,
    pub kind: Option<String>,
}

impl NewOrganisation {
    pub fn validate(&self) -> Result<Organisation, OrgError> {
        let id = OrgId::parse(&self.id)?;
        let parent = self.parent.as_deref().map(OrgId::parse).transpose()?;
        Ok(Organisation {
            id: id.0,
            parent_id: parent.map(|p| p.0),
            name: name(&self.name, "name")?,
            name_be: self
                .name_be
                .as_deref()
                .map(|n| name(n, "name_be"))
                .transpose()?,
            unp: self.unp.as_deref().map(unp).transpose()?,
            kind: self
                .kind
                .as_deref()
                .map(OrgKind::parse)
                .transpose()?
                .unwrap_or(OrgKind::Organisation)
                .as_str()
                .to_string(),
            active: true,
            version: 1,
            created_at: 0,
            updated_at: 0,
        })
    }
}

/// Creates the organisation under its parent, which must exist and be active.
pub async fn create(db: &Db, new: &NewOrganisation) -> Result<Organisation, OrgError> {
    let org = new.validate()?;
    if let Some(parent) = &org.parent_id {
        let p = db
            .organisations()
            .get(parent)
            .await?
            .ok_or(TreeError::NoParent)?;
        if !p.active {
            return Err(OrgError::Invalid(format!(
                "the parent organisation {parent} is deactivated"
            )));
        }
    }
    db.organisations().insert(&org).await?;
    Ok(db
        .organisations()
        .get(&org.id)
        .await?
        .ok_or(TreeError::NotFound)?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Organisation>, OrgError> {
    match OrgId::parse(id) {
        Ok(id) => Ok(db.organisations().get(id.as_str()).await?),
        Err(_) => Ok(None),
    }
}

/// Moves the organisation (with its subtree) under `parent` (None: the top level).
pub async fn move_to(
    db: &Db,
    id: &str,
    parent: Option<&str>,
    expected: Option<i64>,
) -> Result<Organisation, OrgError> {
    let id = OrgId::parse(id)?;
    let parent = parent.map(OrgId::parse).transpose()?;
    Ok(db
        .organisations()
        .move_to(id.as_str(), parent.as_ref().map(OrgId::as_str), expected)
        .await?)
}

/// The ids from the root down to the organisation (inclusive).
pub async fn path(db: &Db, id: &str) -> Result<Vec<String>, OrgError> {
    Ok(db
        .organisations()
        .path(id)
        .await?
        .ok_or(TreeError::NotFound)?)
}

impl Organisation {
    /// The name in the language asked for (Belarusian when given, else the Russian one).
    pub fn name_in(&self, lang: crate::web::i18n::Lang) -> &str {
        match (lang, &self.name_be) {
            (crate::web::i18n::Lang::Be, Some(be)) => be,
            _ => &self.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_machine_words() {
        assert!(OrgId::parse("mintruda").is_ok());
        assert!(OrgId::parse("minjust.grodno-1_a").is_ok());
        for bad in ["", "Mintruda", "-x", "a b", "а", &"x".repeat(65), "x/y"] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_new_organisation_is_validated_whole() {
        let ok = NewOrganisation {
            id: "mintruda".into(),
            name: "  Министерство труда  ".into(),
            unp: Some("100000001".into()),
            kind: Some("state_body".into()),
            ..NewOrganisation::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.name, "Министерство труда");
        assert_eq!(ok.kind, "state_body");
        let default_kind = NewOrganisation {
            id: "x".into(),
            name: "X".into(),
            ..NewOrganisation::default()
        };
        assert_eq!(default_kind.validate().unwrap().kind, "organisation");
        for bad in [
            NewOrganisation {
                unp: Some("12345678".into()),
                ..default_kind.clone()
            },
            NewOrganisation {
                kind: Some("ministry".into()),
                ..default_kind.clone()
            },
            NewOrganisation {
                name: " ".into(),
                ..default_kind.clone()
            },
            NewOrganisation {
                name: "a\u{7}".into(),
                ..default_kind.clone()
            },
            NewOrganisation {
                parent: Some("Bad".into()),
                ..default_kind.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
