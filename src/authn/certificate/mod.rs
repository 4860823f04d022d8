//! Sign-in with an EDS key or ID card. The browser (or a native client) asks for a challenge,
//! signs it with the certificate's key and posts the certificate and signature; `pki` decides
//! whether they are good, this module decides whose account that is, and the login ends in
//! the same `Authenticated` as every other method, with acr `high`.
//!
//! Accounts: the person's identity (personal number, else the certificate's names, scoped by
//! the profile unless it is authoritative for personal numbers) finds their account, or a new
//! one is made. An account that exists with a password is linked only in a
//! step-up, where the person has just proved that password in this browser; and never to a
//! certificate that names someone else.

pub mod challenge;
pub mod method;
pub mod routes;

use crate::identity::account;
use crate::identity::certificate::{self, IdentityKey, LinkError};
use crate::pki::trust::Validated;
use crate::pki::{PkiError, Reason};
use crate::store::StoreError;
use crate::store::sql::Db;

use super::login::LoginMethod;
use super::{Acr, AuthFacts, Authenticated, LegalEntity};

/// Whose account a validated certificate signs in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub account_id: String,
    /// The certificate was linked to an existing (password) account just now.
    pub linked: bool,
    pub created: bool,
}

fn refuse(detail: &str) -> PkiError {
    PkiError::new(Reason::Policy, detail)
}

/// Case and ё/е differences are not differences between names.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.trim()
            .to_lowercase()
            .chars()
            .map(|c| if c == 'ё' { 'е' } else { c })
            .collect()
    };
    norm(a) == norm(b)
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Refused(PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn resolve(
    db: &Db,
    v: &Validated,
    step_up: Option<&str>,
) -> Result<Resolved, ResolveError> {
    let key = IdentityKey::of(&v.identity, &v.path[0]);
    let owner = certificate::owner(db, &key).await?;
    match (step_up, owner) {
        (Some(me), Some(owner)) if me == owner => Ok(Resolved {
            account_id: owner,
            linked: false,
            created: false,
        }),
        (Some(_), Some(_)) => Err(ResolveError::Refused(refuse(
            "the certificate belongs to another account than the one signed in",
        ))),
        (Some(me), None) => {
            let Some(acc) = account::find_by_id(db, me).await? else {
                return Err(ResolveError::Refused(refuse(
                    "the account no longer exists",
                )));
            };
            // Another number in the same scope is another person (this one names nobody yet).
            if let Some(prefix) = key.personal_number_prefix()
                && certificate::identities_of(db, me)
                    .await?
                    .iter()
                    .any(|k| k.starts_with(prefix))
            {
                return Err(ResolveError::Refused(refuse(
                    "the account belongs to a person with another personal number",
                )));
            }
            // The password proved the account; the certificate proved the person. They must
            // be the same person as far as both say: an account or certificate without the
            // names to compare is not linked.
            let mismatch = |acc_v: &Option<String>, cert_v: &Option<String>| match (acc_v, cert_v) {
                (Some(a), Some(c)) => !same_name(a, c),
                _ => true,
            };
            if mismatch(&acc.family_name, &v.identity.surname)
                || mismatch(&acc.given_name, &v.identity.given_name)
            {
                return Err(ResolveError::Refused(refuse(
                    "the name on the certificate differs from the account's",
                )));
            }
            match certificate::link(db, &key, &v.identity, me).await {
                Ok(()) => Ok(Resolved {
                    account_id: me.to_string(),
                    linked: true,
                    created: false,
                }),
                Err(LinkError::Taken) => Err(ResolveError::Refused(refuse(
                    "the certificate belongs to another account than the one signed in",
                ))),
                Err(LinkError::Store(e)) => Err(e.into()),
            }
        }
        (None, Some(owner)) => Ok(Resolved {
            account_id: owner,
            linked: false,
            created: false,
        }),
        (None, None) => match certificate::create_account(db, &key, &v.identity).await {
            Ok(acc) => Ok(Resolved {
                account_id: acc.id,
                linked: false,
                created: true,
            }),
            // Another sign-in of the same person created it a moment ago.
            Err(LinkError::Taken) => match certificate::owner(db, &key).await? {
                Some(owner) => Ok(Resolved {
                    account_id: owner,
                    linked: false,
                    created: false,
                }),
                None => Err(StoreError::NotFound.into()),
            },
            Err(LinkError::Store(e)) => Err(e.into()),
        },
    }
}

/// The login result at `now`: acr high, amr after the kind of credential.
pub fn authenticated(account_id: String, v: &Validated, now: i64) -> Authenticated {
    Authenticated {
        account_id,
        facts: AuthFacts {
            auth_time: now,
            acr: Acr::High,
            amr: vec![v.identity.kind.amr().to_string()],
            legal_entity: v.identity.unp.as_ref().map(|unp| LegalEntity {
                unp: unp.clone(),
                name: v.identity.organization.clone(),
            }),
        },
        method: method::Certificate::NAME,
        upstream: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_or_yo() {
        assert!(same_name("Пётр", "петр"));
        assert!(same_name(" Иванов ", "ИВАНОВ"));
        assert!(!same_name("Иванов", "Иванова"));
    }
}
