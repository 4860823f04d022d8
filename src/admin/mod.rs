//! Administration: every operation on organisations, administrators, employees and their
//! roles, delegations and accounts, as one service that the operator's CLI and the
//! administration API share. Each operation is asked of the policies for the actor (the CLI's
//! operator acts as the system itself), validated whole before anything is written, and
//! audited with who did it, what changed (before and after) and why.

pub mod api;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::{Audit, Event, Kind, Outcome, ReasonCode};
use crate::authn::Acr;
use crate::clock::Clock;
use crate::identity::account::{self, Account, AccountError, NewAccount};
use crate::identity::client::Client;
use crate::identity::delegation::{self, Delegation, DelegationError, NewDelegation};
use crate::identity::org::{self, NewOrganisation, OrgError, Organisation, TreeError};
use crate::identity::roles::Catalogue;
use crate::identity::standing::Standing;
use crate::policy::engine::{Ask, uid};
use crate::policy::{Policies, entities, level};
use crate::store::StoreError;
use crate::store::memberships::Membership;
use crate::store::sql::Db;

/// Who asks.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The operator at the CLI: with the database in hand, they act as the system.
    Operator,
    /// A person, through a token of scope `vhod:admin`: their standing and their sign-in's
    /// assurance.
    Person { standing: Box<Standing>, acr: Acr },
    /// An automation client, through a client-credentials token of scope `vhod:admin`, with
    /// the administrator scope it was registered with.
    Client { client: Arc<Client> },
}

impl Actor {
    /// How the audit names the actor: the account's `sub`, `client:<id>`, or `cli`.
    pub fn id(&self) -> String {
        match self {
            Actor::Operator => "cli".into(),
            Actor::Person { standing, .. } => standing.account.id.clone(),
            Actor::Client { client } => format!("client:{}", client.id),
        }
    }

    /// The account acting, if a person.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Actor::Person { standing, .. } => Some(&standing.account.id),
            _ => None,
        }
    }
}

/// The operations, as the audit's reason codes name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    OrgCreated,
    OrgUpdated,
    OrgMoved,
    OrgDeactivated,
    MemberRemoved,
    AccountBlocked,
    AccountUnblocked,
    SessionsEnded,
    PersonalNumberBound,
    AdminGranted,
    AdminRevoked,
    EmployeeCreated,
    RolesAssigned,
    RolesRemoved,
    DelegationCreated,
    DelegationRevoked,
    ClientRegistered,
    ClientUpdated,
    ClientSecretRotated,
    ClientDisabled,
    ClientEnabled,
    /// A refusal by the policies.
    Denied,
}

impl ReasonCode for Op {
    fn code(&self) -> &'static str {
        match self {
            Op::OrgCreated => "org_created",
            Op::OrgUpdated => "org_updated",
            Op::OrgMoved => "org_moved",
            Op::OrgDeactivated => "org_deactivated",
            Op::MemberRemoved => "member_removed",
            Op::AccountBlocked => "account_blocked",
            Op::AccountUnblocked => "account_unblocked",
            Op::SessionsEnded => "sessions_ended",
            Op::PersonalNumberBound => "personal_number_bound",
            Op::AdminGranted => "admin_granted",
            Op::AdminRevoked => "admin_revoked",
            Op::EmployeeCreated => "employee_created",
            Op::RolesAssigned => "roles_assigned",
            Op::RolesRemoved => "roles_removed",
            Op::DelegationCreated => "delegation_created",
            Op::DelegationRevoked => "delegation_revoked",
            Op::ClientRegistered => "client_registered",
            Op::ClientUpdated => "client_updated",
            Op::ClientSecretRotated => "client_secret_rotated",
            Op::ClientDisabled => "client_disabled",
            Op::ClientEnabled => "client_enabled",
            Op::Denied => "policy_denied",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not allowed (policy {policy})")]
    Denied { policy: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("changed meanwhile: read it again")]
    Stale,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OrgError> for AdminError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Invalid(m) => AdminError::Invalid(m),
            OrgError::Tree(t) => t.into(),
        }
    }
}

impl From<TreeError> for AdminError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::NotFound => AdminError::NotFound("organisation"),
            TreeError::Stale => AdminError::Stale,
            TreeError::Exists => AdminError::Conflict("an organisation with this id exists".into()),
            TreeError::Store(s) => AdminError::Store(s),
            e @ (TreeError::NoParent | TreeError::Cycle | TreeError::TooDeep) => {
                AdminError::Invalid(e.to_string())
            }
        }
    }
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Duplicate => AdminError::Conflict(e.to_string()),
            AccountError::Invalid(m) => AdminError::Invalid(m),
            AccountError::Store(s) => AdminError::Store(s),
        }
    }
}

impl From<crate::identity::client::ClientError> for AdminError {
    fn from(e: crate::identity::client::ClientError) -> Self {
        use crate::identity::client::ClientError;
        match e {
            ClientError::Invalid(m) => AdminError::Invalid(m),
            ClientError::Duplicate => AdminError::Conflict(e.to_string()),
            ClientError::NotFound => AdminError::NotFound("client"),
            ClientError::Stale => AdminError::Stale,
            ClientError::Store(s) => AdminError::Store(s),
        }
    }
}

impl From<DelegationError> for AdminError {
    fn from(e: DelegationError) -> Self {
        match e {
            DelegationError::Invalid(m) => AdminError::Invalid(m),
            DelegationError::NotFound => AdminError::NotFound("delegation"),
            DelegationError::Store(s) => AdminError::Store(s),
        }
    }
}

/// What an operation is done to, as the policies see it.
#[derive(Debug, Clone)]
pub enum Resource<'a> {
    System,
    Org(&'a str),
    Account(&'a Account),
    Delegation(&'a Delegation),
}

/// An employee account made by an administrator.
#[derive(Debug, Clone, Default)]
pub struct NewEmployee {
    pub account: NewAccount,
    pub org: String,
    pub org_roles: Vec<String>,
    /// Binds the account to the person's personal identification number: their first
    /// certificate sign-in finds this account.
    pub personal_number: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Holder {
    Nobody,
    ThisAccount,
    Another,
}

fn number_taken() -> AdminError {
    AdminError::Conflict("the personal number is bound to another account".into())
}

/// The service, over the state it needs.
pub struct Admin<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub policies: &'a Policies,
    pub catalogue: &'a Catalogue,
    pub clock: &'a Clock,
    pub delegation_max_days: u64,
}

/// Who tells the clients of the sessions an administrator ended (back-channel logout).
pub trait Told: Send + Sync {
    fn ended(&self, sid: String, account_id: String);
}

impl<T: crate::authn::session::EndedSessions + ?Sized> Told for T {
    fn ended(&self, sid: String, account_id: String) {
        crate::authn::session::EndedSessions::ended(self, sid, account_id)
    }
}

/// A personal identification number as the national certificates write it: 14 characters of
/// Latin capitals and digits.
pub fn personal_number(s: &str) -> Result<String, AdminError> {
    let t = s.trim().to_ascii_uppercase();
    if t.len() == 14
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(t)
    } else {
        Err(AdminError::Invalid(
            "a personal number is 14 Latin letters and digits".into(),
        ))
    }
}

/// Every administration action of the schema.
pub const ACTIONS: [&str; 21] = [
    "read_organisation",
    "create_organisation",
    "update_organisation",
    "move_organisation",
    "deactivate_organisation",
    "grant_admin",
    "revoke_admin",
    "create_employee",
    "assign_roles",
    "remove_roles",
    "read_account",
    "search_accounts",
    "block_account",
    "unblock_account",
    "end_sessions",
    "bind_personal_number",
    "create_delegation",
    "revoke_delegation",
    "read_delegation",
    "manage_clients",
    "read_audit",
];

/// Actions whose context names the account whose roles or rights change.
const ON_ACCOUNT: [&str; 6] = [
    "grant_admin",
    "revoke_admin",
    "create_employee",
    "assign_roles",
    "remove_roles",
    "create_delegation",
];

impl Admin<'_> {
    /// The policies' answer for a person, without acting on it: what `vhod policy explain`
    /// and the explain endpoint show. The context names the resource's account (or the
    /// person) as the target where the action has one.
    pub async fn explain(
        &self,
        actor: &Actor,
        action: &'static str,
        resource: Resource<'_>,
    ) -> Result<crate::policy::Verdict, AdminError> {
        let target = match &resource {
            Resource::Account(a) => a.id.clone(),
            _ => actor.account_id().unwrap_or_default().to_string(),
        };
        let context = if ON_ACCOUNT.contains(&action) {
            json!({"target": {"__entity": uid("Account", &target)}, "roles": []})
        } else {
            json!({})
        };
        self.ask(actor, action, resource, context).await
    }

    /// Asks the policies; a deny is audited with the policy that decided it.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: &'static str,
        resource: Resource<'_>,
        context: Value,
    ) -> Result<(), AdminError> {
        if matches!(actor, Actor::Operator) {
            return Ok(());
        }
        let what = match &resource {
            Resource::System => ("System", "vhod".to_string()),
            Resource::Org(id) => ("Organisation", id.to_string()),
            Resource::Account(a) => ("Account", a.id.clone()),
            Resource::Delegation(d) => ("Delegation", d.id.clone()),
        };
        let verdict = self.ask(actor, action, resource, context).await?;
        if verdict.allowed {
            return Ok(());
        }
        let _ = self
            .audit
            .write(
                Event::new(Kind::Admin, Outcome::Failure)
                    .reason(Op::Denied)
                    .subject(Some(actor.id()))
                    .details(json!({
                        "action": action,
                        "resource": {"type": what.0, "id": what.1},
                        "policy": verdict.policy(),
                        "reason": verdict.reason(),
                    })),
            )
            .await;
        Err(AdminError::Denied {
            policy: verdict.policy().to_string(),
            reason: verdict.reason().to_string(),
        })
    }

    async fn ask(
        &self,
        actor: &Actor,
        action: &'static str,
        resource: Resource<'_>,
        context: Value,
    ) -> Result<crate::policy::Verdict, AdminError> {
        let mut orgs: BTreeSet<String> = BTreeSet::new();
        let mut ents = Vec::new();
        let (principal, acr) = match actor {
            Actor::Operator => {
                return Ok(crate::policy::Verdict {
                    allowed: true,
                    policies: vec!["operator".into()],
                    reasons: vec![],
                    errors: vec![],
                });
            }
            Actor::Person { standing, acr } => {
                orgs.extend(standing.places.keys().cloned());
                orgs.extend(standing.account.home_org.iter().cloned());
                ents.push(entities::account(standing));
                (("Account", standing.account.id.clone()), level(*acr))
            }
            Actor::Client { client } => {
                let mut held = client.as_ref().clone();
                if let Some(crate::identity::client::AdminScope::Org(o)) = &client.admin_scope {
                    // As a person's standing leaves out a deactivated organisation (and all
                    // under one), a client's scope there holds nothing either.
                    if self.in_force(o).await? {
                        orgs.insert(o.clone());
                    } else {
                        held.admin_scope = None;
                    }
                }
                ents.push(entities::client(&held));
                (("Client", client.id.as_str().to_string()), 0)
            }
        };
        let self_id = actor.account_id().unwrap_or_default().to_string();
        let resource_uid = match &resource {
            Resource::System => ("System", "vhod".to_string()),
            Resource::Org(id) => {
                orgs.insert(id.to_string());
                ("Organisation", id.to_string())
            }
            Resource::Account(a) => {
                if a.id != self_id {
                    let s = Standing::of(self.db, a, self.clock.now()).await?;
                    orgs.extend(a.home_org.iter().cloned());
                    ents.push(entities::account(&s));
                }
                ("Account", a.id.clone())
            }
            Resource::Delegation(d) => {
                orgs.insert(d.org_id.clone());
                ents.push(json!({
                    "uid": uid("Delegation", &d.id),
                    "attrs": {
                        "delegator": {"__entity": uid("Account", &d.delegator_id)},
                        "delegate": {"__entity": uid("Account", &d.delegate_id)},
                    },
                    "parents": [uid("Organisation", &d.org_id)],
                }));
                ("Delegation", d.id.clone())
            }
        };
        ents.push(json!({"uid": uid("System", "vhod"), "attrs": {}, "parents": []}));
        ents.extend(self.lineages(&orgs).await?);
        let mut context = context;
        if let Value::Object(m) = &mut context {
            m.insert("acr".into(), json!(acr));
        }
        Ok(self.policies.decide(&Ask {
            principal,
            action,
            resource: (resource_uid.0, resource_uid.1),
            context,
            entities: ents,
        }))
    }

    /// The organisation exists and neither it nor any above it is deactivated.
    async fn in_force(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .organisations()
            .lineage(id)
            .await?
            .is_some_and(|l| l.iter().all(|o| o.active)))
    }

    /// The organisations with everything above them, as entities.
    async fn lineages(&self, ids: &BTreeSet<String>) -> Result<Vec<Value>, StoreError> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for id in ids {
            if seen.contains(id) {
                continue;
            }
            let Some(lineage) = self.db.organisations().lineage(id).await? else {
                continue;
            };
            for org in lineage {
                if seen.insert(org.id.clone()) {
                    out.push(entities::organisation(&org));
                }
            }
        }
        Ok(out)
    }

    async fn record(&self, actor: &Actor, op: Op, subject: Option<&str>, details: Value) {
        let mut d = details;
        if let Value::Object(m) = &mut d {
            m.insert("actor".into(), json!(actor.id()));
        }
        let _ = self
            .audit
            .write(
                Event::new(Kind::Admin, Outcome::Success)
                    .reason(op)
                    .subject(subject)
                    .details(d),
            )
            .await;
    }

    fn caller(&self) -> Value {
        json!({})
    }

    pub async fn create_org(
        &self,
        actor: &Actor,
        new: &NewOrganisation,
    ) -> Result<Organisation, AdminError> {
        let checked = new.validate()?;
        let resource = match &checked.parent_id {
            Some(p) => Resource::Org(p),
            None => Resource::System,
        };
        self.authorize(actor, "create_organisation", resource, self.caller())
            .await?;
        let created = org::create(self.db, new).await?;
        self.record(
            actor,
            Op::OrgCreated,
            None,
            json!({"organisation": created.id, "after": org_json(&created)}),
        )
        .await;
        Ok(created)
    }

    pub async fn move_org(
        &self,
        actor: &Actor,
        id: &str,
        parent: Option<&str>,
        expected: Option<i64>,
    ) -> Result<Organisation, AdminError> {
        let before = org::get(self.db, id)
            .await?
            .ok_or(AdminError::NotFound("organisation"))?;
        self.authorize(actor, "move_organisation", Resource::Org(id), self.caller())
            .await?;
        let to = match parent {
            Some(p) => Resource::Org(p),
            None => Resource::System,
        };
        // Said, so that the policies tell taking a unit in from moving the organisation itself.
        self.authorize(actor, "move_organisation", to, json!({"destination": true}))
            .await?;
        let after = org::move_to(self.db, id, parent, expected).await?;
        self.record(
            actor,
            Op::OrgMoved,
            None,
            json!({"organisation": id, "before": {"parent": before.parent_id}, "after": {"parent": after.parent_id}}),
        )
        .await;
        Ok(after)
    }

    pub async fn update_org(
        &self,
        actor: &Actor,
        id: &str,
        expected: Option<i64>,
        changes: &org::Changes,
    ) -> Result<Organisation, AdminError> {
        let before = org::get(self.db, id)
            .await?
            .ok_or(AdminError::NotFound("organisation"))?;
        let changes = org::Changes {
            name: changes
                .name
                .as_deref()
                .map(|n| org::name(n, "name"))
                .transpose()?,
            name_be: changes
                .name_be
                .clone()
                .map(|n| n.as_deref().map(|n| org::name(n, "name_be")).transpose())
                .transpose()?,
            unp: changes
                .unp
                .clone()
                .map(|u| u.as_deref().map(org::unp).transpose())
                .transpose()?,
            kind: changes
                .kind
                .as_deref()
                .map(|k| org::OrgKind::parse(k).map(|k| k.as_str().to_string()))
                .transpose()?,
            active: None,
        };
        self.authorize(
            actor,
            "update_organisation",
            Resource::Org(id),
            self.caller(),
        )
        .await?;
        let after = self
            .db
            .organisations()
            .update(id, expected, &changes)
            .await?;
        self.record(
            actor,
            Op::OrgUpdated,
            None,
            json!({"organisation": id, "before": org_json(&before), "after": org_json(&after)}),
        )
        .await;
        Ok(after)
    }

    /// Deactivates the organisation: its members, administrators and delegates hold nothing
    /// there (nor in its subtree) from the next token on.
    pub async fn deactivate_org(
        &self,
        actor: &Actor,
        id: &str,
        expected: Option<i64>,
    ) -> Result<Organisation, AdminError> {
        org::get(self.db, id)
            .await?
            .ok_or(AdminError::NotFound("organisation"))?;
        self.authorize(
            actor,
            "deactivate_organisation",
            Resource::Org(id),
            self.caller(),
        )
        .await?;
        let changes = org::Changes {
            active: Some(false),
            ..org::Changes::default()
        };
        let after = self
            .db
            .organisations()
            .update(id, expected, &changes)
            .await?;
        self.record(
            actor,
            Op::OrgDeactivated,
            None,
            json!({"organisation": id, "before": {"active": true}, "after": {"active": after.active}}),
        )
        .await;
        Ok(after)
    }

    /// Takes an administrator scope away (None: the main administrator's); false when the
    /// account did not have it.
    pub async fn revoke_admin(
        &self,
        actor: &Actor,
        target: &Account,
        org: Option<&str>,
    ) -> Result<bool, AdminError> {
        self.change_admin(actor, target, org, false).await
    }

    /// Ends `target`'s membership of `org` (their roles there go with it).
    pub async fn remove_member(
        &self,
        actor: &Actor,
        target: &Account,
        org_id: &str,
    ) -> Result<(), AdminError> {
        let held = self
            .db
            .memberships()
            .roles_in(&target.id, org_id)
            .await?
            .ok_or(AdminError::NotFound("membership"))?;
        let context = json!({"target": {"__entity": uid("Account", &target.id)}, "roles": held});
        self.authorize(actor, "remove_roles", Resource::Org(org_id), context)
            .await?;
        self.db.memberships().remove(&target.id, org_id).await?;
        self.record(
            actor,
            Op::MemberRemoved,
            Some(&target.id),
            json!({"org": org_id, "before": {"roles": held}, "after": null}),
        )
        .await;
        Ok(())
    }

    /// Blocks (or unblocks) the account when its version is still `expected`; a block ends its
    /// sessions and revokes its grants at once, and its clients are told.
    pub async fn set_blocked(
        &self,
        actor: &Actor,
        target: &Account,
        expected: i64,
        blocked: bool,
        told: &dyn Told,
    ) -> Result<Account, AdminError> {
        let action = if blocked {
            "block_account"
        } else {
            "unblock_account"
        };
        self.authorize(actor, action, Resource::Account(target), self.caller())
            .await?;
        if !self.db.accounts().touch(&target.id, expected).await? {
            return Err(AdminError::Stale);
        }
        let before = target.status.clone();
        if blocked {
            let ended = crate::store::units::end_everything_of(
                self.db,
                &target.id,
                Some("blocked"),
                "account_blocked",
            )
            .await?;
            for sid in ended {
                told.ended(sid, target.id.clone());
            }
        } else {
            self.db.accounts().set_status(&target.id, "active").await?;
        }
        let after = account::find_by_id(self.db, &target.id)
            .await?
            .ok_or(AdminError::NotFound("account"))?;
        self.record(
            actor,
            if blocked {
                Op::AccountBlocked
            } else {
                Op::AccountUnblocked
            },
            Some(&target.id),
            json!({"before": {"status": before}, "after": {"status": after.status}}),
        )
        .await;
        Ok(after)
    }

    /// Binds the account to a personal identification number (when its version is still
    /// `expected`): the person's certificate sign-in, and an upstream that vouches for
    /// numbers, find this account. A number another account holds is a conflict.
    pub async fn bind_personal_number(
        &self,
        actor: &Actor,
        target: &Account,
        number: &str,
        expected: i64,
    ) -> Result<(), AdminError> {
        let number = personal_number(number)?;
        self.authorize(
            actor,
            "bind_personal_number",
            Resource::Account(target),
            self.caller(),
        )
        .await?;
        match self.number_held(&number, &target.id).await? {
            Holder::ThisAccount => return Ok(()),
            Holder::Another => return Err(number_taken()),
            Holder::Nobody => {}
        }
        if !self.db.accounts().touch(&target.id, expected).await? {
            return Err(AdminError::Stale);
        }
        match self
            .db
            .certificates()
            .bind_number(&target.id, &number)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(number_taken()),
            Err(e) => return Err(e.into()),
        }
        self.record(
            actor,
            Op::PersonalNumberBound,
            Some(&target.id),
            json!({"before": {"personal_number_bound": false}, "after": {"personal_number_bound": true}}),
        )
        .await;
        Ok(())
    }

    /// Who holds the personal number as a verified fact or a binding, seen from `account_id`.
    async fn number_held(&self, number: &str, account_id: &str) -> Result<Holder, StoreError> {
        let holders = self
            .db
            .upstream_identities()
            .accounts_with_personal_number(number)
            .await?;
        Ok(if holders.iter().any(|h| h == account_id) {
            Holder::ThisAccount
        } else if holders.is_empty() {
            Holder::Nobody
        } else {
            Holder::Another
        })
    }

    /// Ends every session of the account and revokes its grants; how many sessions ended.
    pub async fn end_sessions(
        &self,
        actor: &Actor,
        target: &Account,
        told: &dyn Told,
    ) -> Result<usize, AdminError> {
        self.authorize(
            actor,
            "end_sessions",
            Resource::Account(target),
            self.caller(),
        )
        .await?;
        let ended =
            crate::store::units::end_everything_of(self.db, &target.id, None, "sessions_ended")
                .await?;
        let n = ended.len();
        for sid in ended {
            told.ended(sid, target.id.clone());
        }
        self.record(
            actor,
            Op::SessionsEnded,
            Some(&target.id),
            json!({"sessions": n}),
        )
        .await;
        Ok(n)
    }

    /// Makes `target` an administrator of `org` (None: a main administrator); false when it
    /// already was.
    pub async fn grant_admin(
        &self,
        actor: &Actor,
        target: &Account,
        org: Option<&str>,
    ) -> Result<bool, AdminError> {
        self.change_admin(actor, target, org, true).await
    }

    async fn change_admin(
        &self,
        actor: &Actor,
        target: &Account,
        org: Option<&str>,
        grant: bool,
    ) -> Result<bool, AdminError> {
        if grant && let Some(o) = org {
            org::get(self.db, o)
                .await?
                .filter(|o| o.active)
                .ok_or(AdminError::NotFound("organisation"))?;
        }
        let resource = org.map_or(Resource::System, Resource::Org);
        let context =
            json!({"target": {"__entity": uid("Account", &target.id)}, "roles": ["admin"]});
        let (action, op) = if grant {
            ("grant_admin", Op::AdminGranted)
        } else {
            ("revoke_admin", Op::AdminRevoked)
        };
        self.authorize(actor, action, resource, context).await?;
        let scopes = self.db.memberships();
        let changed = if grant {
            scopes
                .grant_admin(&target.id, org, Some(&actor.id()))
                .await?
        } else {
            scopes.revoke_admin(&target.id, org).await?
        };
        if changed {
            self.record(
                actor,
                op,
                Some(&target.id),
                json!({"scope": org.map_or(json!("system"), |o| json!({"org": o})), "after": {"admin": grant}}),
            )
            .await;
        }
        Ok(changed)
    }

    /// Creates an employee account in `org` with organisation roles, bound (optionally) to a
    /// personal number, as one transaction.
    pub async fn create_employee(
        &self,
        actor: &Actor,
        new: NewEmployee,
    ) -> Result<Account, AdminError> {
        let org = org::get(self.db, &new.org)
            .await?
            .filter(|o| o.active)
            .ok_or(AdminError::NotFound("organisation"))?;
        let roles = self
            .catalogue
            .check(new.org_roles.iter().map(String::as_str))
            .map_err(AdminError::Invalid)?;
        let number = new
            .personal_number
            .as_deref()
            .map(personal_number)
            .transpose()?;
        let mut account = new.account;
        account.home_org = Some(org.id.clone());
        if !account.roles.iter().any(|r| r == "applicant") {
            account.roles.insert(0, "applicant".into());
        }
        account.roles.retain(|r| r != "employee" && r != "admin");
        let row = account::validate(account)?;
        let context = json!({
            "target": {"__entity": uid("Account", &row.id)}, "roles": roles,
        });
        self.authorize(actor, "create_employee", Resource::Org(&org.id), context)
            .await?;
        if let Some(n) = &number
            && self.number_held(n, &row.id).await? != Holder::Nobody
        {
            return Err(number_taken());
        }
        let membership = Membership {
            account_id: row.id.clone(),
            org_id: org.id.clone(),
            roles: roles.clone(),
        };
        crate::store::units::create_employee(self.db, &row, &membership, number.as_deref())
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AdminError::Conflict(
                    "an account with this username, contact or personal number exists".into(),
                ),
                e => AdminError::Store(e),
            })?;
        let created = account::find_by_id(self.db, &row.id)
            .await?
            .ok_or(AdminError::NotFound("account"))?;
        self.record(
            actor,
            Op::EmployeeCreated,
            Some(&created.id),
            json!({"org": org.id, "after": {"roles": roles, "personal_number_bound": number.is_some()}}),
        )
        .await;
        Ok(created)
    }

    /// Sets `target`'s organisation roles in `org` to `roles` (adding the membership when there
    /// was none).
    pub async fn set_roles(
        &self,
        actor: &Actor,
        target: &Account,
        org_id: &str,
        roles: &[String],
        expected: Option<i64>,
    ) -> Result<Vec<String>, AdminError> {
        org::get(self.db, org_id)
            .await?
            .filter(|o| o.active)
            .ok_or(AdminError::NotFound("organisation"))?;
        let roles = self
            .catalogue
            .check(roles.iter().map(String::as_str))
            .map_err(AdminError::Invalid)?;
        let before = self.db.memberships().roles_in(&target.id, org_id).await?;
        let held = before.clone().unwrap_or_default();
        let added: Vec<&String> = roles.iter().filter(|r| !held.contains(r)).collect();
        let removed: Vec<&String> = held.iter().filter(|r| !roles.contains(r)).collect();
        let context =
            |r: &[&String]| json!({"target": {"__entity": uid("Account", &target.id)}, "roles": r});
        // Everything but a pure removal asks assign_roles, a change of nothing too: it still
        // writes (the version moves, the audit records a success) and answers with the roles
        // held, so it is no less the administrator's than a change.
        if !added.is_empty() || removed.is_empty() {
            self.authorize(
                actor,
                "assign_roles",
                Resource::Org(org_id),
                context(&added),
            )
            .await?;
        }
        if !removed.is_empty() {
            self.authorize(
                actor,
                "remove_roles",
                Resource::Org(org_id),
                context(&removed),
            )
            .await?;
        }
        if let Some(v) = expected
            && !self.db.accounts().touch(&target.id, v).await?
        {
            return Err(AdminError::Stale);
        }
        self.db
            .memberships()
            .set(&Membership {
                account_id: target.id.clone(),
                org_id: org_id.to_string(),
                roles: roles.clone(),
            })
            .await?;
        self.record(
            actor,
            if removed.is_empty() {
                Op::RolesAssigned
            } else {
                Op::RolesRemoved
            },
            Some(&target.id),
            json!({"org": org_id, "before": {"roles": before}, "after": {"roles": roles}}),
        )
        .await;
        Ok(roles)
    }

    pub async fn create_delegation(
        &self,
        actor: &Actor,
        new: &NewDelegation,
    ) -> Result<Delegation, AdminError> {
        let context = json!({
            "target": {"__entity": uid("Account", &new.delegator_id)},
            "delegate": {"__entity": uid("Account", &new.delegate_id)},
            "roles": new.roles,
        });
        self.authorize(
            actor,
            "create_delegation",
            Resource::Org(&new.org_id),
            context,
        )
        .await?;
        let mut new = new.clone();
        new.created_by = actor.id();
        let d = delegation::create(
            self.db,
            &new,
            self.catalogue,
            self.clock.now(),
            self.delegation_max_days,
        )
        .await?;
        self.record(
            actor,
            Op::DelegationCreated,
            Some(&d.delegate_id),
            json!({"after": delegation_json(&d)}),
        )
        .await;
        Ok(d)
    }

    pub async fn revoke_delegation(
        &self,
        actor: &Actor,
        id: &str,
        why: Option<&str>,
    ) -> Result<Delegation, AdminError> {
        let d = self
            .db
            .delegations()
            .get(id)
            .await?
            .ok_or(AdminError::NotFound("delegation"))?;
        self.authorize(
            actor,
            "revoke_delegation",
            Resource::Delegation(&d),
            self.caller(),
        )
        .await?;
        let after = delegation::revoke(self.db, id, &actor.id()).await?;
        self.record(
            actor,
            Op::DelegationRevoked,
            Some(&after.delegate_id),
            json!({"delegation": id, "why": why, "before": {"revoked_at": null}, "after": {"revoked_at": after.revoked_at}}),
        )
        .await;
        Ok(after)
    }
}

// Clients: the main administrator's (`manage_clients` on the system).
impl Admin<'_> {
    /// Registers a client; a confidential one without keys gets a generated secret, returned
    /// here once (only its hash is kept).
    pub async fn create_client(
        &self,
        actor: &Actor,
        spec: crate::config::ClientSpec,
        allow_http: bool,
    ) -> Result<(crate::store::clients::ClientRow, Option<String>), AdminError> {
        use crate::identity::client;
        self.authorize(actor, "manage_clients", Resource::System, self.caller())
            .await?;
        if spec.client_id == crate::config::PROFILE_CLIENT {
            return Err(AdminError::Invalid(format!(
                "the client_id {} is reserved for the profile page's sign-in",
                crate::config::PROFILE_CLIENT
            )));
        }
        let mut spec = spec;
        let generated = (!spec.public && spec.jwks.is_none()).then(crate::secrets::random_token);
        spec.secret = generated.clone();
        client::save(self.db, &spec, allow_http, false).await?;
        let row = self
            .db
            .clients()
            .get(&spec.client_id)
            .await?
            .ok_or(AdminError::NotFound("client"))?;
        self.record(
            actor,
            Op::ClientRegistered,
            None,
            json!({"client": row.client_id, "after": client_json(&row)}),
        )
        .await;
        Ok((row, generated))
    }

    /// Changes a client's registration (validated whole) when its version is still
    /// `expected`; with `rotate`, a new secret replaces the old one at once (returned once).
    pub async fn update_client(
        &self,
        actor: &Actor,
        client_id: &str,
        expected: i64,
        allow_http: bool,
        rotate: bool,
        change: impl FnOnce(&mut crate::config::ClientSpec),
    ) -> Result<(crate::store::clients::ClientRow, Option<String>), AdminError> {
        use crate::identity::client::{self, SecretChange};
        self.authorize(actor, "manage_clients", Resource::System, self.caller())
            .await?;
        if client_id == crate::config::PROFILE_CLIENT {
            return Err(AdminError::Invalid(format!(
                "the client {} is vhod's own profile sign-in",
                crate::config::PROFILE_CLIENT
            )));
        }
        let before = self
            .db
            .clients()
            .get(client_id)
            .await?
            .ok_or(AdminError::NotFound("client"))?;
        let new_secret = rotate.then(crate::secrets::random_token);
        let secret = match &new_secret {
            Some(s) => SecretChange::New(s),
            None => SecretChange::Keep,
        };
        let after =
            client::update(self.db, client_id, expected, allow_http, secret, change).await?;
        let op = if rotate {
            Op::ClientSecretRotated
        } else if after.disabled && !before.disabled {
            Op::ClientDisabled
        } else if !after.disabled && before.disabled {
            Op::ClientEnabled
        } else {
            Op::ClientUpdated
        };
        self.record(
            actor,
            op,
            None,
            json!({"client": client_id, "before": client_json(&before), "after": client_json(&after)}),
        )
        .await;
        Ok((after, new_secret))
    }
}

/// A client's registration as the audit records it (never its secret or its hash).
pub fn client_json(r: &crate::store::clients::ClientRow) -> Value {
    let list = |j: &str| serde_json::from_str::<Value>(j).unwrap_or(Value::Null);
    json!({
        "client_id": r.client_id, "public": r.public, "redirect_uris": list(&r.redirect_uris),
        "post_logout_redirect_uris": list(&r.post_logout_redirect_uris),
        "grant_types": list(&r.grant_types), "scope": r.scope, "min_acr": r.min_acr,
        "allowed_roles": list(&r.allowed_roles), "claims": list(&r.allowed_claims),
        "admin_scope": r.admin_scope, "disabled": r.disabled,
        "backchannel_logout_uri": r.backchannel_logout_uri,
    })
}

pub fn org_json(o: &Organisation) -> Value {
    json!({
        "id": o.id, "parent": o.parent_id, "name": o.name, "name_be": o.name_be, "unp": o.unp,
        "kind": o.kind, "active": o.active,
    })
}

pub fn delegation_json(d: &Delegation) -> Value {
    json!({
        "id": d.id, "from": d.delegator_id, "to": d.delegate_id, "org": d.org_id, "roles": d.roles,
        "not_before": d.not_before, "not_after": d.not_after, "reason": d.reason,
        "created_by": d.created_by, "created_at": d.created_at, "revoked_at": d.revoked_at,
        "revoked_by": d.revoked_by,
    })
}
