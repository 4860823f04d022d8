//! `vhod org …`, `vhod admin …`, `vhod delegation …` and `vhod policy …`: the administration
//! service (`crate::admin`) for bootstrap and scripting. The operator at the CLI acts as the
//! system (the first main administrator is made here); every change is audited as `cli`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin::{Actor, Admin, AdminError};
use crate::audit::Audit;
use crate::config::Settings;
use crate::identity::account::{self, Account};
use crate::identity::delegation::{Filter, NewDelegation};
use crate::identity::org::NewOrganisation;
use crate::identity::roles::Catalogue;
use crate::policy::Policies;
use crate::server;
use crate::store::sql::Db;

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Register an organisation (a state body, an organisation or a structural unit).
    Add(OrgAdd),
    /// List the organisations as a tree (id, kind, name; inactive ones marked).
    List,
    /// Move an organisation, with its subtree, under another one.
    Move(OrgMove),
    /// Change an organisation's names, УНП or kind.
    Update(OrgUpdate),
    /// Deactivate an organisation: nobody holds anything there (nor below) from the next
    /// token on.
    Deactivate(OrgId),
}

#[derive(Args)]
pub struct OrgUpdate {
    #[arg(long)]
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    name_be: Option<String>,
    #[arg(long)]
    unp: Option<String>,
    #[arg(long)]
    kind: Option<String>,
}

#[derive(Args)]
pub struct OrgId {
    #[arg(long)]
    id: String,
}

#[derive(Args)]
pub struct OrgAdd {
    /// The stable id (a-z, 0-9, '.', '_', '-'): what tokens carry.
    #[arg(long)]
    id: String,
    /// The name in Russian.
    #[arg(long)]
    name: String,
    #[arg(long)]
    name_be: Option<String>,
    /// The organisation above it (none: top level).
    #[arg(long)]
    parent: Option<String>,
    #[arg(long)]
    unp: Option<String>,
    /// state_body, organisation (default) or unit.
    #[arg(long)]
    kind: Option<String>,
}

#[derive(Args)]
pub struct OrgMove {
    #[arg(long)]
    id: String,
    /// The new parent.
    #[arg(long)]
    parent: String,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Make an account the main administrator (--system) or an organisation's external
    /// administrator (--org).
    Grant(AdminGrant),
    /// Take an administrator scope away.
    Revoke(AdminGrant),
}

#[derive(Args)]
pub struct AdminGrant {
    #[arg(long)]
    username: String,
    /// The main administrator: the whole system.
    #[arg(long, conflicts_with = "org", required_unless_present = "org")]
    system: bool,
    /// An external administrator of this organisation and its subtree.
    #[arg(long)]
    org: Option<String>,
}

#[derive(Subcommand)]
pub enum DelegationCommand {
    /// Transfer some of an employee's organisation roles to another account for a while.
    Add(DelegationAdd),
    /// End a delegation now.
    Revoke(DelegationRevoke),
    /// List delegations (all, or of one organisation).
    List(DelegationList),
}

#[derive(Args)]
pub struct DelegationAdd {
    /// The delegator's username.
    #[arg(long)]
    from: String,
    /// The delegate's username.
    #[arg(long)]
    to: String,
    #[arg(long)]
    org: String,
    /// An organisation role of the delegator's to pass on; repeatable.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// The end (RFC 3339), at most delegation_max_days after the start.
    #[arg(long)]
    until: String,
    /// The start (RFC 3339; default now).
    #[arg(long)]
    from_time: Option<String>,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Args)]
pub struct DelegationRevoke {
    /// The delegation's id (random: it may start with '-').
    #[arg(long, allow_hyphen_values = true)]
    id: String,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Args)]
pub struct DelegationList {
    #[arg(long)]
    org: Option<String>,
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policies folder (schema, *.cedar, roles.toml) offline; exit 0 when valid.
    Check(PolicyCheck),
    /// Why may (or may not) an account do an action: the decision and the policies behind it.
    Explain(PolicyExplain),
}

#[derive(Args)]
pub struct PolicyCheck {
    /// The folder (default: the configured policies folder).
    dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct PolicyExplain {
    /// The acting account's username.
    #[arg(long)]
    username: String,
    /// sign_in, or an administration action (create_organisation, block_account, …).
    #[arg(long)]
    action: String,
    /// The resource: client:ID, org:ID, account:USERNAME or system.
    #[arg(long)]
    resource: String,
    /// The assurance of the sign-in asked about (low, substantial, high; default high).
    #[arg(long, default_value = "high")]
    acr: String,
    /// For sign_in: the method (password, certificate, upstream).
    #[arg(long, default_value = "")]
    method: String,
}

/// The service for the CLI, with its own audit writer (drained before the command ends).
struct Ground {
    db: Db,
    audit: Audit,
    worker: crate::audit::AuditWorker,
    policies: Policies,
    catalogue: Catalogue,
    max_days: u64,
}

impl Ground {
    async fn open(settings: &Settings) -> anyhow::Result<Ground> {
        let (policies, catalogue) = server::load_policies(settings)?;
        let db = server::open_db(settings).await?;
        // The command line's events are chained with the deployment's digest; the server's
        // writer checkpoints them (the CLI signs nothing).
        let mut sealer = crate::audit::Sealer::unsigned(settings.audit.chain.clone());
        sealer.mac = Some(crate::audit::checkpoint::chain_key(&settings.keys_dir)?);
        let (audit, worker) = Audit::start_with(db.clone(), sealer);
        Ok(Ground {
            db,
            audit,
            worker,
            policies,
            catalogue,
            max_days: settings.delegation_max_days,
        })
    }

    fn admin(&self) -> Admin<'_> {
        Admin {
            db: &self.db,
            audit: &self.audit,
            policies: &self.policies,
            catalogue: &self.catalogue,
            clock: &self.db.clock,
            delegation_max_days: self.max_days,
        }
    }

    async fn done(self) {
        drop(self.audit);
        self.worker.finish().await;
    }
}

/// `vhod user add … --org ORG`: an employee account made in the organisation.
pub async fn employee(
    settings: &Settings,
    new: crate::admin::NewEmployee,
) -> anyhow::Result<Account> {
    let g = Ground::open(settings).await?;
    let result = g
        .admin()
        .create_employee(&Actor::Operator, new)
        .await
        .map_err(admin_error);
    g.done().await;
    result
}

pub async fn account_by_username(db: &Db, username: &str) -> anyhow::Result<Account> {
    account::find_by_login(db, username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account {username:?}"))
}

fn admin_error(e: AdminError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn org(settings: &Settings, cmd: OrgCommand) -> anyhow::Result<()> {
    let g = Ground::open(settings).await?;
    let result = async {
        match cmd {
            OrgCommand::Add(a) => {
                let new = NewOrganisation {
                    id: a.id,
                    parent: a.parent,
                    name: a.name,
                    name_be: a.name_be,
                    unp: a.unp,
                    kind: a.kind,
                };
                let o = g
                    .admin()
                    .create_org(&Actor::Operator, &new)
                    .await
                    .map_err(admin_error)?;
                println!("organisation {} created", o.id);
            }
            OrgCommand::Move(m) => {
                let o = g
                    .admin()
                    .move_org(&Actor::Operator, &m.id, Some(&m.parent), None)
                    .await
                    .map_err(admin_error)?;
                println!(
                    "organisation {} moved under {}",
                    o.id,
                    o.parent_id.unwrap_or_default()
                );
            }
            OrgCommand::Update(u) => {
                let changes = crate::identity::org::Changes {
                    name: u.name,
                    name_be: u.name_be.map(Some),
                    unp: u.unp.map(Some),
                    kind: u.kind,
                    active: None,
                };
                let o = g
                    .admin()
                    .update_org(&Actor::Operator, &u.id, None, &changes)
                    .await
                    .map_err(admin_error)?;
                println!("organisation {} updated", o.id);
            }
            OrgCommand::Deactivate(d) => {
                let o = g
                    .admin()
                    .deactivate_org(&Actor::Operator, &d.id, None)
                    .await
                    .map_err(admin_error)?;
                println!("organisation {} deactivated", o.id);
            }
            OrgCommand::List => {
                let mut all = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page =
                        g.db.organisations()
                            .list(None, None, after.as_deref(), 500)
                            .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    all.extend(page);
                }
                print_tree(&all, None, 0);
            }
        }
        anyhow::Ok(())
    }
    .await;
    g.done().await;
    result
}

fn print_tree(all: &[crate::identity::org::Organisation], parent: Option<&str>, depth: usize) {
    if depth > crate::identity::org::MAX_DEPTH {
        return;
    }
    for o in all.iter().filter(|o| o.parent_id.as_deref() == parent) {
        println!(
            "{}{}\t{}\t{}{}",
            "  ".repeat(depth),
            o.id,
            o.kind,
            o.name,
            if o.active { "" } else { "\t(inactive)" }
        );
        print_tree(all, Some(&o.id), depth + 1);
    }
}

pub async fn admin(settings: &Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    let g = Ground::open(settings).await?;
    let result = async {
        let (grant, a) = match cmd {
            AdminCommand::Grant(a) => (true, a),
            AdminCommand::Revoke(a) => (false, a),
        };
        let target = account_by_username(&g.db, &a.username).await?;
        let org = if a.system { None } else { a.org.as_deref() };
        let scope = org.map_or("the system".to_string(), |o| format!("organisation {o}"));
        let admin = g.admin();
        let changed = if grant {
            admin.grant_admin(&Actor::Operator, &target, org).await
        } else {
            admin.revoke_admin(&Actor::Operator, &target, org).await
        }
        .map_err(admin_error)?;
        let who = &target.username;
        match (grant, changed) {
            (true, true) => println!("{who} is now an administrator of {scope}"),
            (true, false) => println!("{who} already was an administrator of {scope}"),
            (false, true) => println!("{who} is no longer an administrator of {scope}"),
            (false, false) => bail!("{who} is not an administrator of {scope}"),
        }
        anyhow::Ok(())
    }
    .await;
    g.done().await;
    result
}

fn rfc3339(s: &str, what: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{what}: an RFC 3339 time, e.g. 2026-12-31T18:00:00+03:00"))?;
    Ok(t.unix_timestamp())
}

pub async fn delegation(settings: &Settings, cmd: DelegationCommand) -> anyhow::Result<()> {
    let g = Ground::open(settings).await?;
    let result = async {
        match cmd {
            DelegationCommand::Add(a) => {
                let from = account_by_username(&g.db, &a.from).await?;
                let to = account_by_username(&g.db, &a.to).await?;
                let new = NewDelegation {
                    delegator_id: from.id,
                    delegate_id: to.id,
                    org_id: a.org,
                    roles: a.roles,
                    not_before: a
                        .from_time
                        .as_deref()
                        .map(|t| rfc3339(t, "--from-time"))
                        .transpose()?,
                    not_after: rfc3339(&a.until, "--until")?,
                    reason: a.reason,
                    created_by: String::new(),
                };
                let d = g
                    .admin()
                    .create_delegation(&Actor::Operator, &new)
                    .await
                    .map_err(admin_error)?;
                println!("delegation {} created", d.id);
            }
            DelegationCommand::Revoke(r) => {
                g.admin()
                    .revoke_delegation(&Actor::Operator, &r.id, r.reason.as_deref())
                    .await
                    .map_err(admin_error)?;
                println!("delegation {} revoked", r.id);
            }
            DelegationCommand::List(l) => {
                let filter = Filter {
                    org_id: l.org.as_deref(),
                    ..Filter::default()
                };
                let mut after: Option<String> = None;
                loop {
                    let page =
                        g.db.delegations()
                            .list(&filter, after.as_deref(), 500)
                            .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    for d in &page {
                        println!("{}", crate::admin::delegation_json(d));
                    }
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    g.done().await;
    result
}

pub async fn policy(settings: &Settings, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Check(c) => {
            let dir = c.dir.unwrap_or_else(|| settings.policies_dir.clone());
            if !dir.is_dir() {
                bail!("{} is not a folder", dir.display());
            }
            let policies = Policies::load(&dir)?;
            let catalogue = Catalogue::load(&dir)?;
            println!(
                "{}: {} policies valid against the schema, {} organisation roles{}",
                dir.display(),
                policies.len(),
                catalogue.iter().count(),
                if policies.dir.is_none() {
                    " (no .cedar files: the embedded policies)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        PolicyCommand::Explain(e) => explain(settings, e).await,
    }
}

async fn explain(settings: &Settings, e: PolicyExplain) -> anyhow::Result<()> {
    let g = Ground::open(settings).await?;
    let result = async {
        let acc = account_by_username(&g.db, &e.username).await?;
        let standing =
            crate::identity::standing::Standing::of(&g.db, &acc, g.db.clock.now()).await?;
        let acr = crate::authn::Acr::parse(&e.acr)
            .ok_or_else(|| anyhow::anyhow!("--acr: low, substantial or high"))?;
        let (kind, id) = e.resource.split_once(':').unwrap_or((&e.resource, ""));
        let answer = if e.action == "sign_in" {
            if kind != "client" {
                bail!("sign_in is asked of a client: --resource client:ID");
            }
            let registry = crate::identity::client::ClientRegistry::load(&g.db).await?;
            let client = registry
                .get(id)
                .ok_or_else(|| anyhow::anyhow!("no client {id:?}"))?;
            let attempt = crate::policy::Attempt {
                acr,
                requested: None,
                method: &e.method,
                legal_entity: false,
            };
            let v = crate::policy::sign_in(&g.policies, Some(&standing), &client, attempt);
            json!({"allowed": v.allowed, "policies": v.policies, "reasons": v.reasons, "errors": v.errors,
                   "required_acr": crate::policy::required_acr(&g.policies, Some(&standing), &client, &[]).as_str()})
        } else {
            let action: &'static str = crate::admin::ACTIONS
                .iter()
                .find(|a| **a == e.action)
                .ok_or_else(|| anyhow::anyhow!("unknown action {:?}", e.action))?;
            let target;
            let resource = match kind {
                "system" => crate::admin::Resource::System,
                "org" => crate::admin::Resource::Org(id),
                "account" => {
                    target = account_by_username(&g.db, id).await?;
                    crate::admin::Resource::Account(&target)
                }
                _ => bail!("--resource: system, org:ID or account:USERNAME"),
            };
            let actor = Actor::Person {
                standing: Box::new(standing),
                acr,
            };
            let v = g.admin().explain(&actor, action, resource).await?;
            json!({"allowed": v.allowed, "policies": v.policies, "reasons": v.reasons, "errors": v.errors})
        };
        println!("{}", serde_json::to_string_pretty(&answer)?);
        anyhow::Ok(())
    }
    .await;
    g.done().await;
    result
}
