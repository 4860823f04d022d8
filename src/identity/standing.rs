//! An account's standing at a moment: its system roles, where it works and with which
//! organisation roles, what it administers, and the delegations in force to it. Decisions
//! (`policy`) and claims (`roles`, `org`) are made from this one reading, so a token and the
//! decision to issue it never disagree, and every refresh reads it again: a revoked or ended
//! delegation, a removed role or a blocked account shows at the next one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::account::Account;
use super::client::Client;
use super::roles::SystemRole;
use crate::store::StoreError;
use crate::store::organisations::Organisation;
use crate::store::sql::Db;

/// Roles held in one organisation through one delegation in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegated {
    pub delegation_id: String,
    /// The delegator's `sub`.
    pub from: String,
    /// The delegated roles the delegator still holds (a role they lost is not passed on).
    pub roles: Vec<String>,
    /// Unix seconds: `not_after`.
    pub until: i64,
}

/// The account's place in one organisation.
#[derive(Debug, Clone)]
pub struct Place {
    pub org: Organisation,
    /// Organisation ids from the root down to this one.
    pub path: Vec<String>,
    /// Own organisation roles (None: not a member, only a delegate or administrator here).
    pub roles: Option<Vec<String>>,
    pub delegated: Vec<Delegated>,
    /// An external administrator of this organisation (and its subtree).
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub struct Standing {
    pub account: Account,
    pub roles: BTreeSet<SystemRole>,
    /// The main administrator.
    pub system_admin: bool,
    /// Organisations where the account is a member, a delegate or an administrator, by id;
    /// an organisation that is deactivated (or under a deactivated one) is not among them.
    pub places: BTreeMap<String, Place>,
    /// Personal numbers the account holds as verified facts.
    pub personal_numbers: Vec<String>,
}

impl Standing {
    /// Reads the account's standing at `now`.
    pub async fn of(db: &Db, account: &Account, now: i64) -> Result<Standing, StoreError> {
        let memberships = db.memberships().of_account(&account.id).await?;
        let scopes = db.memberships().admin_scopes_of(&account.id).await?;
        let delegations = db.delegations().in_force_for(&account.id, now).await?;

        let mut places: BTreeMap<String, Place> = BTreeMap::new();
        let mut lineage = Lineage::new(db);
        for m in memberships {
            if let Some(place) = lineage.place(&m.org_id).await? {
                places.entry(m.org_id.clone()).or_insert(place).roles = Some(m.roles);
            }
        }
        let mut system_admin = false;
        for s in scopes {
            match s.org_id {
                None => system_admin = true,
                Some(org) => {
                    if let Some(place) = lineage.place(&org).await? {
                        places.entry(org).or_insert(place).admin = true;
                    }
                }
            }
        }
        for d in delegations {
            // Never more than the delegator holds now: an ended membership, a removed role or a
            // blocked delegator takes the delegated role away with it.
            let Some(delegator) = db.accounts().find_by_id(&d.delegator_id).await? else {
                continue;
            };
            if !delegator.is_active() {
                continue;
            }
            let held = db
                .memberships()
                .roles_in(&d.delegator_id, &d.org_id)
                .await?
                .unwrap_or_default();
            let roles: Vec<String> = d.roles.into_iter().filter(|r| held.contains(r)).collect();
            if roles.is_empty() {
                continue;
            }
            if let Some(place) = lineage.place(&d.org_id).await? {
                places
                    .entry(d.org_id.clone())
                    .or_insert(place)
                    .delegated
                    .push(Delegated {
                        delegation_id: d.id,
                        from: d.delegator_id,
                        roles,
                        until: d.not_after,
                    });
            }
        }

        let mut roles: BTreeSet<SystemRole> = account
            .roles
            .iter()
            .filter_map(|r| SystemRole::parse(r))
            .collect();
        if places
            .values()
            .any(|p| p.roles.is_some() || !p.delegated.is_empty())
        {
            roles.insert(SystemRole::Employee);
        }
        if system_admin || places.values().any(|p| p.admin) {
            roles.insert(SystemRole::Admin);
        }
        let personal_numbers = db.upstream_identities().numbers_of(&account.id).await?;
        Ok(Standing {
            account: account.clone(),
            roles,
            system_admin,
            places,
            personal_numbers,
        })
    }

    pub fn has(&self, role: SystemRole) -> bool {
        self.roles.contains(&role)
    }

    /// Organisations the account administers (each with its subtree).
    pub fn admin_of(&self) -> impl Iterator<Item = &str> {
        self.places
            .values()
            .filter(|p| p.admin)
            .map(|p| p.org.id.as_str())
    }

    /// Organisations the account is a member of (not by delegation).
    pub fn member_of(&self) -> impl Iterator<Item = &str> {
        self.places
            .values()
            .filter(|p| p.roles.is_some())
            .map(|p| p.org.id.as_str())
    }

    /// The account's own roles in `org` (empty when it is no member there).
    pub fn own_roles_in(&self, org: &str) -> &[String] {
        self.places
            .get(org)
            .and_then(|p| p.roles.as_deref())
            .unwrap_or(&[])
    }

    /// The claims of the granted scopes that the client may receive: the account's own
    /// (profile, email, phone) and the standing's: `roles`, `org` (always arrays, of the same
    /// shape on every refresh) and `personal_number` (only to clients registered for it).
    pub fn claims(&self, scopes: &[&str], client: &Client) -> Map<String, Value> {
        let mut m = self.account.claims(scopes.iter().copied());
        for scope in scopes {
            match *scope {
                "roles" => {
                    m.insert("roles".into(), self.roles_claim());
                }
                "org" => {
                    m.insert("org".into(), self.org_claim());
                }
                "personal_number" if client.may_receive("personal_number") => {
                    if let Some(n) = self.personal_numbers.first() {
                        m.insert("personal_number".into(), json!(n));
                    }
                }
                _ => {}
            }
        }
        m
    }

    /// The `roles` claim: system roles, always an array.
    pub fn roles_claim(&self) -> Value {
        json!(self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
    }

    /// The `org` claim: one object per organisation, in id order, always of the same shape.
    pub fn org_claim(&self) -> Value {
        let entries: Vec<Value> = self
            .places
            .values()
            .map(|p| {
                json!({
                    "id": p.org.id,
                    "name": p.org.name,
                    "path": p.path,
                    "roles": p.roles.clone().unwrap_or_default(),
                    "delegated": p.delegated.iter().map(|d| json!({
                        "roles": d.roles,
                        "from": d.from,
                        "delegation_id": d.delegation_id,
                        "until": d.until,
                    })).collect::<Vec<_>>(),
                    "admin": p.admin,
                })
            })
            .collect();
        Value::Array(entries)
    }
}

/// Reads organisations and their paths once per standing.
struct Lineage<'a> {
    db: &'a Db,
    seen: BTreeMap<String, Option<Place>>,
}

impl<'a> Lineage<'a> {
    fn new(db: &'a Db) -> Self {
        Lineage {
            db,
            seen: BTreeMap::new(),
        }
    }

    /// An empty place in `org`, or None when it (or an organisation above it) is deactivated
    /// or gone.
    async fn place(&mut self, org: &str) -> Result<Option<Place>, StoreError> {
        if let Some(p) = self.seen.get(org) {
            return Ok(p.clone());
        }
        let place = match self.db.organisations().lineage(org).await? {
            Some(lineage) if lineage.iter().all(|o| o.active) => {
                let path = lineage.iter().map(|o| o.id.clone()).collect();
                lineage.into_iter().last().map(|org| Place {
                    org,
                    path,
                    roles: None,
                    delegated: Vec::new(),
                    admin: false,
                })
            }
            _ => None,
        };
        self.seen.insert(org.to_string(), place.clone());
        Ok(place)
    }
}
