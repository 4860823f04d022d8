//! Decisions: may this principal do this action on this resource? The rules are Cedar
//! policies in `policies/` (`engine`), asked over entities built from an account's standing,
//! a client and the organisation tree (`entities`). What this module adds is the meaning of
//! the answers for the flow: a deny for assurance alone is a step-up, any other deny a
//! refusal with the deciding policy's reason.

pub mod engine;
pub mod entities;

pub use engine::{Policies, Verdict};

use crate::authn::{Acr, AuthFacts};
use crate::identity::client::Client;
use crate::identity::standing::Standing;

/// The reason code of a deny for assurance only: the person signs in with a stronger method.
pub const ACR_TOO_LOW: &str = "acr_too_low";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("the account is not active")]
    Inactive,
    #[error("this sign-in needs a higher assurance level ({0})")]
    AcrTooLow(&'static str),
    #[error("this service does not take sign-ins of this account (policy {policy})")]
    RoleNotAllowed { policy: String },
    #[error("this account may not sign in by this method (policy {policy})")]
    MethodNotAllowed { policy: String },
    #[error("this service is disabled")]
    ClientDisabled { policy: String },
    #[error("refused by policy {policy}")]
    Policy { policy: String },
}

impl Denied {
    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Inactive => "account_inactive",
            Denied::AcrTooLow(_) => ACR_TOO_LOW,
            Denied::RoleNotAllowed { .. } => "role_not_allowed",
            Denied::MethodNotAllowed { .. } => "method_not_allowed",
            Denied::ClientDisabled { .. } => "client_disabled",
            Denied::Policy { .. } => "policy_denied",
        }
    }

    /// The policy that decided it, for the audit (None for an assurance step-up).
    pub fn policy(&self) -> Option<&str> {
        match self {
            Denied::Inactive | Denied::AcrTooLow(_) => None,
            Denied::RoleNotAllowed { policy }
            | Denied::MethodNotAllowed { policy }
            | Denied::ClientDisabled { policy }
            | Denied::Policy { policy } => Some(policy),
        }
    }

    fn of(verdict: &Verdict, need: Acr) -> Denied {
        let other = verdict.reasons.iter().find(|r| r.as_str() != ACR_TOO_LOW);
        let policy = verdict.policy().to_string();
        match other.map(String::as_str) {
            None if !verdict.reasons.is_empty() => Denied::AcrTooLow(need.as_str()),
            Some("account_inactive") => Denied::Inactive,
            Some("role_not_allowed") => Denied::RoleNotAllowed { policy },
            Some("method_not_allowed") => Denied::MethodNotAllowed { policy },
            Some("client_disabled") => Denied::ClientDisabled { policy },
            _ => Denied::Policy { policy },
        }
    }
}

impl crate::audit::ReasonCode for Denied {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

/// The acr levels as the policies' context carries them.
pub fn level(acr: Acr) -> i64 {
    match acr {
        Acr::Low => 1,
        Acr::Substantial => 2,
        Acr::High => 3,
    }
}

/// A sign-in as the policies see it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub acr: Acr,
    /// The lowest level `acr_values` asked for.
    pub requested: Option<Acr>,
    /// password, certificate, upstream; "" while not known.
    pub method: &'a str,
    pub legal_entity: bool,
}

/// Asks `sign_in` for the account (None: someone not known yet) and the client.
pub fn sign_in(
    policies: &Policies,
    standing: Option<&Standing>,
    client: &Client,
    attempt: Attempt<'_>,
) -> Verdict {
    policies.decide(&entities::sign_in(standing, client, attempt))
}

/// The assurance a sign-in must reach: the lowest level at which the policies deny it for no
/// assurance reason (what the client requires, what the request asks, what the account's
/// roles need); `High` when even that is not enough.
pub fn required_acr(
    policies: &Policies,
    standing: Option<&Standing>,
    client: &Client,
    requested: &[Acr],
) -> Acr {
    let requested = requested.iter().min().copied();
    for acr in Acr::ALL {
        let attempt = Attempt {
            acr,
            requested,
            method: "",
            legal_entity: false,
        };
        let v = sign_in(policies, standing, client, attempt);
        if !v.reasons.iter().any(|r| r == ACR_TOO_LOW) {
            return acr;
        }
    }
    Acr::High
}

/// May this sign-in (or this session, for a new code) use the client?
pub fn may_sign_in(
    policies: &Policies,
    standing: &Standing,
    client: &Client,
    facts: &AuthFacts,
    requested: &[Acr],
    method: &str,
) -> Result<(), Denied> {
    let attempt = Attempt {
        acr: facts.acr,
        requested: requested.iter().min().copied(),
        method,
        legal_entity: facts.legal_entity.is_some(),
    };
    let v = sign_in(policies, Some(standing), client, attempt);
    if v.allowed {
        return Ok(());
    }
    let need = required_acr(policies, Some(standing), client, requested);
    Err(Denied::of(&v, need))
}

/// The assurance the account's own profile needs: a sign-in to vhod itself.
pub fn account_acr(policies: &Policies, standing: &Standing) -> Acr {
    required_acr(policies, Some(standing), &Client::profile(), &[])
}

/// May this session use the account's own profile: the same rules as a sign-in, to the
/// profile pages as the client.
pub fn may_use_profile(
    policies: &Policies,
    standing: &Standing,
    facts: &AuthFacts,
    method: &str,
) -> Result<(), Denied> {
    may_sign_in(policies, standing, &Client::profile(), facts, &[], method)
}

/// May the password, entered again, stand in for a fresh sign-in before a contact change?
/// Only where a password sign-in is enough for the account at all: an employee's account (and
/// one without a password) signs in afresh, with the assurance it needs.
pub fn password_reproves_presence(policies: &Policies, standing: &Standing) -> bool {
    standing.account.password_hash.is_some() && account_acr(policies, standing) == Acr::Low
}

/// A contact change needs proof of presence at most `max_age` seconds old: the sign-in
/// (`auth_time`) or a password entered again since (`reentered_at`).
pub fn recently_proven(auth_time: i64, reentered_at: Option<i64>, now: i64, max_age: u64) -> bool {
    let last = reentered_at.map_or(auth_time, |r| r.max(auth_time));
    now.saturating_sub(last) <= max_age as i64
}

#[cfg(test)]
mod tests;
