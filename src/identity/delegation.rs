//! Delegations («временная передача полномочий»): some of a delegator's own organisation
//! roles, in one organisation, for a bounded time, to another account. A delegation passes on
//! only roles the delegator holds as a member (never delegated ones: nothing is re-delegated),
//! and while it is in force the delegate holds only those the delegator still has
//! (`identity::standing`).

use crate::store::StoreError;
pub use crate::store::delegations::{Delegation, Filter};
use crate::store::sql::Db;

use super::roles::Catalogue;

/// A delegation may start at most this much in the past (a clock a little behind).
const SKEW: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such delegation")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A delegation as asked for.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub delegator_id: String,
    pub delegate_id: String,
    pub org_id: String,
    pub roles: Vec<String>,
    /// Unix seconds; None: now.
    pub not_before: Option<i64>,
    pub not_after: i64,
    pub reason: Option<String>,
    /// Who makes it (an account's `sub`, or `cli` for the operator).
    pub created_by: String,
}

/// The checks that need no database: times and roles. `held` is the delegator's own roles in
/// the organisation.
pub fn check(
    new: &NewDelegation,
    held: &[String],
    catalogue: &Catalogue,
    now: i64,
    max_days: u64,
) -> Result<(i64, Vec<String>), DelegationError> {
    let invalid = |m: String| Err(DelegationError::Invalid(m));
    if new.delegator_id == new.delegate_id {
        return invalid("a delegation is to another account".into());
    }
    let not_before = new.not_before.unwrap_or(now);
    if not_before < now - SKEW {
        return invalid("a delegation cannot start in the past".into());
    }
    if new.not_after <= not_before {
        return invalid("not_after must be later than the start".into());
    }
    let max = i64::try_from(max_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    if new.not_after - not_before > max {
        return invalid(format!(
            "a delegation lasts at most {max_days} days (delegation_max_days)"
        ));
    }
    if new.roles.is_empty() {
        return invalid("a delegation passes on at least one role".into());
    }
    let roles = catalogue
        .check(new.roles.iter().map(String::as_str))
        .map_err(DelegationError::Invalid)?;
    for r in &roles {
        if catalogue.get(r).is_some_and(|role| !role.delegable) {
            return invalid(format!("the role {r:?} is not delegable"));
        }
        if !held.contains(r) {
            return invalid(format!(
                "the delegator does not hold the role {r:?} in this organisation"
            ));
        }
    }
    if let Some(reason) = &new.reason
        && (reason.chars().count() > 500 || reason.chars().any(char::is_control))
    {
        return invalid("the reason is at most 500 printable characters".into());
    }
    Ok((not_before, roles))
}

/// Validates and stores the delegation at `now`.
pub async fn create(
    db: &Db,
    new: &NewDelegation,
    catalogue: &Catalogue,
    now: i64,
    max_days: u64,
) -> Result<Delegation, DelegationError> {
    let org = db
        .organisations()
        .get(&new.org_id)
        .await?
        .filter(|o| o.active)
        .ok_or_else(|| DelegationError::Invalid("no such active organisation".into()))?;
    let delegator = db.accounts().find_by_id(&new.delegator_id).await?;
    let delegate = db.accounts().find_by_id(&new.delegate_id).await?;
    if !delegator.as_ref().is_some_and(|a| a.is_active())
        || !delegate.as_ref().is_some_and(|a| a.is_active())
    {
        return Err(DelegationError::Invalid(
            "the delegator and the delegate must be active accounts".into(),
        ));
    }
    let held = db
        .memberships()
        .roles_in(&new.delegator_id, &org.id)
        .await?
        .unwrap_or_default();
    let (not_before, roles) = check(new, &held, catalogue, now, max_days)?;
    let d = Delegation {
        id: crate::secrets::random_id(),
        delegator_id: new.delegator_id.clone(),
        delegate_id: new.delegate_id.clone(),
        org_id: org.id,
        roles,
        not_before,
        not_after: new.not_after,
        reason: new.reason.clone(),
        created_by: new.created_by.clone(),
        created_at: now,
        revoked_at: None,
        revoked_by: None,
    };
    db.delegations().insert(&d).await?;
    Ok(d)
}

/// Revokes it; [`DelegationError::NotFound`] when there is none not revoked already.
pub async fn revoke(db: &Db, id: &str, by: &str) -> Result<Delegation, DelegationError> {
    if !db.delegations().revoke(id, by).await? {
        return Err(DelegationError::NotFound);
    }
    db.delegations()
        .get(id)
        .await?
        .ok_or(DelegationError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn new(roles: &[&str], not_before: Option<i64>, not_after: i64) -> NewDelegation {
        NewDelegation {
            delegator_id: "a".into(),
            delegate_id: "b".into(),
            org_id: "org".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            not_before,
            not_after,
            reason: None,
            created_by: "admin".into(),
        }
    }

    #[test]
    fn a_delegation_is_bounded_in_time_and_by_what_the_delegator_holds() {
        let cat = Catalogue::embedded();
        let held = vec!["registrar".to_string(), "reviewer".to_string()];
        let ok = check(&new(&["reviewer"], None, NOW + DAY), &held, &cat, NOW, 90).unwrap();
        assert_eq!(ok, (NOW, vec!["reviewer".to_string()]));
        let later = check(
            &new(&["reviewer", "registrar"], Some(NOW + DAY), NOW + 91 * DAY),
            &held,
            &cat,
            NOW,
            90,
        )
        .unwrap();
        assert_eq!(later.0, NOW + DAY);
        for (bad, why) in [
            (new(&["reviewer"], None, NOW + 91 * DAY), "at most 90 days"),
            (new(&["reviewer"], Some(NOW - DAY), NOW + DAY), "past"),
            (new(&["reviewer"], None, NOW - 1), "later than"),
            (new(&["reviewer"], Some(NOW + 10), NOW + 10), "later than"),
            (new(&[], None, NOW + DAY), "at least one"),
            (new(&["head"], None, NOW + DAY), "does not hold"),
            (new(&["boss"], None, NOW + DAY), "unknown organisation role"),
        ] {
            let e = check(&bad, &held, &cat, NOW, 90).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let mut to_self = new(&["reviewer"], None, NOW + DAY);
        to_self.delegate_id = "a".into();
        assert!(check(&to_self, &held, &cat, NOW, 90).is_err());
    }
}
