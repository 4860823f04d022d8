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
    let mut need = Acr::Low;
    if let Some(min) = client.min_acr {
        need = need.max(min);
    }
    if let Some(asked) = requested.iter().min() {
        need = need.max(*asked);
    }
    if account.is_some_and(|a| a.roles.iter().any(|r| r == "employee")) {
        need = Acr::High;
    }
    need
}

pub fn may_sign_in(
    account: &Account,
    client: &Client,
    facts: &AuthFacts,
    requested: &[Acr],
) -> Result<(), Denied> {
    if !account.is_active() {
        return Err(Denied::Inactive);
    }
    let need = required_acr(Some(account), client, requested);
    if facts.acr < need {
        return Err(Denied::AcrTooLow(need.as_str()));
    }
    Ok(())
}
