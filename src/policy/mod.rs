//! Sign-in decisions: may this account use this client with this assurance?
//! One function the whole flow calls, so rules move here (and later to Cedar policies in
//! `policies/`) without touching the login methods or the protocol.

use crate::authn::AuthFacts;
use crate::identity::account::Account;
use crate::identity::client::Client;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("the account is not active")]
    Inactive,
}

impl Denied {
    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Inactive => "account_inactive",
        }
    }
}

pub fn may_sign_in(account: &Account, _client: &Client, _facts: &AuthFacts) -> Result<(), Denied> {
    if !account.is_active() {
        return Err(Denied::Inactive);
    }
    Ok(())
}
