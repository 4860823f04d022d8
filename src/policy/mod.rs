//! Sign-in decisions: may this account use this client with this assurance?
//! Functions the whole flow calls, so rules move here (and later to Cedar policies in
//! `policies/`) without touching the login methods or the protocol.

use crate::authn::{Acr, AuthFacts};
use crate::identity::account::Account;
use crate::identity::client::Client;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("the account is not active")]
    Inactive,
    #[error("this sign-in needs a higher assurance level ({0})")]
    AcrTooLow(&'static str),
}

impl Denied {
    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Inactive => "account_inactive",
            Denied::AcrTooLow(_) => "acr_too_low",
        }
    }
}

/// The assurance a sign-in must reach: what the client requires, what the request asks
/// (`acr_values`: any of the listed levels satisfies it, so the lowest counts), and the seed's
/// rule that an employee of a state body with access to appeals signs in only with an EDS key
/// or ID card.
pub fn required_acr(account: Option<&Account>, client: &Client, requested: &[Acr]) -> Acr {
    let mut need = account.map(account_acr).unwrap_or(Acr::Low);
    if let Some(min) = client.min_acr {
        need = need.max(min);
    }
    if let Some(asked) = requested.iter().min() {
        need = need.max(*asked);
    }
    need
}

/// The assurance the account itself needs, whatever it signs in to: an employee of a state
/// body with access to appeals signs in only with an EDS key or ID card.
pub fn account_acr(account: &Account) -> Acr {
    roles_acr(&account.roles)
}

fn roles_acr(roles: &[String]) -> Acr {
    if roles.iter().any(|r| r == "employee") {
        Acr::High
    } else {
        Acr::Low
    }
}

/// May this session use the account's own profile: the same assurance rule as a sign-in,
/// without a client.
pub fn may_use_profile(account: &Account, facts: &AuthFacts) -> Result<(), Denied> {
    verdict(account.is_active(), account_acr(account), facts.acr)
}

/// May the password, entered again, stand in for a fresh sign-in before a contact change?
/// Only where a password sign-in is enough for the account at all: an employee's account (and
/// one without a password) signs in afresh, with the assurance it needs.
pub fn password_reproves_presence(account: &Account) -> bool {
    account.password_hash.is_some() && account_acr(account) == Acr::Low
}

fn verdict(active: bool, need: Acr, have: Acr) -> Result<(), Denied> {
    if !active {
        return Err(Denied::Inactive);
    }
    if have < need {
        return Err(Denied::AcrTooLow(need.as_str()));
    }
    Ok(())
}

/// A contact change needs proof of presence at most `max_age` seconds old: the sign-in
/// (`auth_time`) or a password entered again since (`reentered_at`).
pub fn recently_proven(auth_time: i64, reentered_at: Option<i64>, now: i64, max_age: u64) -> bool {
    let last = reentered_at.map_or(auth_time, |r| r.max(auth_time));
    now.saturating_sub(last) <= max_age as i64
}

pub fn may_sign_in(
    account: &Account,
    client: &Client,
    facts: &AuthFacts,
    requested: &[Acr],
) -> Result<(), Denied> {
    let need = required_acr(Some(account), client, requested);
    verdict(account.is_active(), need, facts.acr)
}

impl crate::audit::ReasonCode for Denied {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_employee_needs_a_certificate_session() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(roles_acr(&roles(&["applicant"])), Acr::Low);
        assert_eq!(roles_acr(&roles(&["applicant", "employee"])), Acr::High);
        assert_eq!(verdict(true, Acr::Low, Acr::Low), Ok(()));
        assert_eq!(
            verdict(true, Acr::High, Acr::Substantial),
            Err(Denied::AcrTooLow("high"))
        );
        assert_eq!(verdict(true, Acr::High, Acr::High), Ok(()));
        assert_eq!(verdict(false, Acr::Low, Acr::High), Err(Denied::Inactive));
    }

    #[test]
    fn only_a_password_enough_to_sign_in_reproves_presence() {
        let account = |hash: Option<&str>, roles: &[&str]| Account {
            id: "a".into(),
            username: "ivan".into(),
            password_hash: hash.map(str::to_string),
            phone: None,
            phone_verified: false,
            email: None,
            email_verified: false,
            given_name: None,
            family_name: None,
            middle_name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            org: None,
            status: "active".into(),
            notify_sms: false,
            created_at: 0,
        };
        assert!(password_reproves_presence(&account(
            Some("h"),
            &["applicant"]
        )));
        assert!(!password_reproves_presence(&account(None, &["applicant"])));
        assert!(
            !password_reproves_presence(&account(Some("h"), &["applicant", "employee"])),
            "an employee signs in again with a certificate"
        );
    }

    #[test]
    fn presence_is_recent_within_the_max_age() {
        assert!(recently_proven(1000, None, 1300, 300));
        assert!(!recently_proven(1000, None, 1301, 300));
        assert!(recently_proven(1000, Some(1200), 1500, 300), "re-entered");
        assert!(!recently_proven(1000, Some(1100), 1500, 300));
        assert!(
            recently_proven(1400, Some(900), 1500, 300),
            "the later counts"
        );
    }
}
