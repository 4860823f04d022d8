//! Login methods. Each proves who someone is and ends in the same value, `Authenticated`;
//! none of them knows about clients, codes or tokens, nor which protocol asked for the login:
//! the way back to it is the `login::Resume` the assembly plugs in.

pub mod browser;
pub mod certificate;
pub mod contact_proof;
pub mod lockout;
pub mod login;
pub mod otp;
pub mod password;
pub mod profile;
pub mod recovery;
pub mod registration;
pub mod routes;
pub mod session;
#[cfg(test)]
pub(crate) mod testkit;
pub mod throttle;
pub mod transaction;
pub mod upstream;

use serde::{Deserialize, Serialize};

use crate::store::sso_sessions::StoredFacts;

/// Authentication context class, ordered by assurance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acr {
    /// Password.
    Low,
    /// Password plus a second factor, or an upstream that asserts it.
    Substantial,
    /// Qualified certificate or ID card.
    High,
}

impl Acr {
    pub const ALL: [Acr; 3] = [Acr::Low, Acr::Substantial, Acr::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::Low => "low",
            Acr::Substantial => "substantial",
            Acr::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What a session knows about how the person authenticated; copied into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFacts {
    pub auth_time: i64,
    pub acr: Acr,
    /// RFC 8176 values: pwd, otp, hwk, sc, fed, ...
    pub amr: Vec<String>,
    /// The organisation a representative signed in for, as their certificate names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<LegalEntity>,
}

/// A legal entity (its УНП and name) a person acts for in this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalEntity {
    pub unp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl AuthFacts {
    /// As the `sso_sessions` and `grants` rows keep them: `amr` and the legal entity as JSON.
    pub fn to_stored(&self) -> StoredFacts {
        StoredFacts {
            auth_time: self.auth_time,
            acr: self.acr.as_str().to_string(),
            amr: serde_json::to_string(&self.amr).unwrap_or_else(|_| "[]".into()),
            legal_entity: self
                .legal_entity
                .as_ref()
                .and_then(|l| serde_json::to_string(l).ok()),
        }
    }

    /// Read back; a value that no longer parses reads as the weakest (acr `low`, no amr).
    pub fn from_stored(s: StoredFacts) -> AuthFacts {
        AuthFacts {
            auth_time: s.auth_time,
            acr: Acr::parse(&s.acr).unwrap_or(Acr::Low),
            amr: serde_json::from_str(&s.amr).unwrap_or_default(),
            legal_entity: s.legal_entity.and_then(|j| serde_json::from_str(&j).ok()),
        }
    }
}

/// The one result every login method ends in.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account_id: String,
    pub facts: AuthFacts,
    /// The method's name for the audit trail ("password", "certificate", ...).
    pub method: &'static str,
    /// The upstream login it was, for a sign-in through an upstream provider.
    pub upstream: Option<upstream::UpstreamLogin>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_levels_are_ordered() {
        assert!(Acr::Low < Acr::Substantial && Acr::Substantial < Acr::High);
        assert_eq!(Acr::parse("high"), Some(Acr::High));
        assert_eq!(Acr::parse("HIGH"), None);
    }
}
