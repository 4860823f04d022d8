//! Who may do what through the administration service, as a table that is the specification
//! (`MATRIX`, `SELF_GRANTS`), and the ceiling of every grant, as properties over random trees.
//!
//! Both run on every backend of `test_dbs()`. A cell starts from the world as built: the
//! world's rows are copied aside once (`Snapshot`), every cell is compared with that copy
//! afterwards (a denied cell must leave every row of every table as it was; the audit log is
//! the only table a denial writes to) and the copy is put back after a cell that changed
//! anything. That is the whole state the service reads, so a cell cannot see another's doing.
//!
//! The service level has no anonymous caller: a request without a token is answered 401 by
//! the HTTP layer (`admin::api::Caller`) before the service is reached. "No rights at all" is
//! the column `nobody`: an account with no role, membership or administrator scope.

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use super::*;
use crate::audit::AuditWorker;
use crate::authn::{AuthFacts, Authenticated, session};
use crate::identity::client::{AdminScope, ClientId};
use crate::store::accounts::NewAccount;
use crate::store::sql::{Backend, test_dbs};

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
/// `identity::delegation`'s tolerance for a clock a little behind: a start this much in the
/// past is taken as "now".
const SKEW: i64 = 60;

// ---------------------------------------------------------------------------------------------
// The state, copied aside and compared.

/// Every table the service may write, parents before children (the order rows go back in);
/// `every_table_is_tracked` fails when a migration adds one that is not here.
const TABLES: [&str; 16] = [
    "organisations",
    "accounts",
    "accounts_email_fold",
    "clients",
    "generation",
    "web_sessions",
    "revoked_access_tokens",
    "sso_sessions",
    "upstream_sessions",
    "grants",
    "refresh_tokens",
    "certificate_identities",
    "upstream_identities",
    "memberships",
    "administrators",
    "delegations",
];
/// Written by denials too (each is audited), and the migrator's own.
const UNTRACKED: [&str; 4] = [
    "audit_events",
    "audit_chain",
    "audit_checkpoints",
    "_sqlx_migrations",
];

/// A copy of every table in `TABLES`, as tables `zz<tag>_<table>` beside them.
struct Snapshot {
    tag: &'static str,
}

impl Snapshot {
    async fn take(db: &Db, tag: &'static str) -> Snapshot {
        let mut sql = String::new();
        for t in TABLES {
            sql += &format!(
                "DROP TABLE IF EXISTS zz{tag}_{t}; CREATE TABLE zz{tag}_{t} AS SELECT * FROM {t};\n"
            );
        }
        db.tamper(&sql).await;
        Snapshot { tag }
    }

    /// Copies every table again into the same copies (rows only: cheaper than new tables).
    async fn refresh(&self, db: &Db) {
        let mut sql = String::from("BEGIN;\n");
        for t in TABLES {
            let c = self.copy(t);
            sql += &format!("DELETE FROM {c}; INSERT INTO {c} SELECT * FROM {t};\n");
        }
        sql += "COMMIT;";
        db.tamper(&sql).await;
    }

    fn copy(&self, t: &str) -> String {
        format!("zz{}_{t}", self.tag)
    }

    fn differing(&self, t: &str) -> String {
        let c = self.copy(t);
        format!(
            "(SELECT COUNT(*) FROM (SELECT * FROM {t} EXCEPT SELECT * FROM {c}) a) + \
             (SELECT COUNT(*) FROM (SELECT * FROM {c} EXCEPT SELECT * FROM {t}) b)"
        )
    }

    /// How many rows differ from the copy, over every table (one round trip).
    async fn changed(&self, db: &Db) -> i64 {
        let sum: Vec<String> = TABLES.iter().map(|t| self.differing(t)).collect();
        db.scalar::<i64>(&format!("SELECT {}", sum.join(" + ")))
            .await
    }

    /// The tables that differ from the copy, for a failure's message.
    async fn changed_tables(&self, db: &Db) -> Vec<&'static str> {
        let mut out = Vec::new();
        for t in TABLES {
            if db
                .scalar::<i64>(&format!("SELECT {}", self.differing(t)))
                .await
                > 0
            {
                out.push(t);
            }
        }
        out
    }

    /// Puts every table back as copied.
    async fn restore(&self, db: &Db) {
        let mut sql = String::from("BEGIN;\n");
        for t in TABLES.iter().rev() {
            sql += &format!("DELETE FROM {t};\n");
        }
        for t in TABLES {
            sql += &format!("INSERT INTO {t} SELECT * FROM {};\n", self.copy(t));
        }
        sql += "COMMIT;";
        db.tamper(&sql).await;
    }
}

/// The tables of the schema that neither `TABLES` nor `UNTRACKED` names (nor a copy).
async fn untracked_tables(db: &Db) -> Option<String> {
    let known: Vec<String> = TABLES
        .iter()
        .chain(UNTRACKED.iter())
        .map(|t| format!("'{t}'"))
        .collect();
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "SELECT group_concat(name, ',') FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'zz%' AND name NOT IN ({})",
            known.join(", ")
        ),
        Backend::Postgres => format!(
            "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename NOT LIKE 'zz%' AND tablename NOT IN ({})",
            known.join(", ")
        ),
    };
    db.scalar::<Option<String>>(&sql).await
}

#[tokio::test]
async fn every_table_is_tracked() {
    for t in test_dbs().await {
        assert_eq!(untracked_tables(&t.db).await, None, "{:?}", t.db.backend);
    }
}

/// Sessions ended by a cell go nowhere: no client is listening.
struct Quiet;

impl crate::authn::session::EndedSessions for Quiet {
    fn ended(&self, _: String, _: String) {}
}

// ---------------------------------------------------------------------------------------------
// The world of the matrix.

/// Organisations: (id, parent, kind). X1a lets a move stay inside X's subtree.
const ORGS: [(&str, Option<&str>, &str); 7] = [
    ("r", None, "state_body"),
    ("p", Some("r"), "organisation"),
    ("x", Some("p"), "organisation"),
    ("x1", Some("x"), "unit"),
    ("x1a", Some("x1"), "unit"),
    ("s", Some("p"), "organisation"),
    ("t", None, "state_body"),
];

/// An account of the world: its handle, home, system roles, memberships, administrator
/// scopes (None: main administrator), blocked, with an open session.
struct Acc {
    name: &'static str,
    home: Option<&'static str>,
    roles: &'static [&'static str],
    member: &'static [(&'static str, &'static [&'static str])],
    admin: &'static [Option<&'static str>],
    blocked: bool,
    session: bool,
}

const fn acc(name: &'static str, home: Option<&'static str>) -> Acc {
    Acc {
        name,
        home,
        roles: &[],
        member: &[],
        admin: &[],
        blocked: false,
        session: false,
    }
}

/// The principals, in the matrix's column order.
const PEOPLE: [&str; 7] = [
    "main",
    "adm_x",
    "adm_p",
    "adm_s",
    "emp_x",
    "applicant",
    "nobody",
];

const ACCOUNTS: [Acc; 16] = [
    // The principals.
    Acc {
        admin: &[None],
        ..acc("main", None)
    },
    Acc {
        admin: &[Some("x")],
        ..acc("adm_x", Some("x"))
    },
    Acc {
        admin: &[Some("p")],
        ..acc("adm_p", Some("p"))
    },
    Acc {
        admin: &[Some("s")],
        ..acc("adm_s", Some("s"))
    },
    Acc {
        member: &[("x", &["registrar"])],
        ..acc("emp_x", Some("x"))
    },
    Acc {
        roles: &["applicant"],
        ..acc("applicant", None)
    },
    acc("nobody", None),
    // What they act on.
    Acc {
        member: &[("x", &["registrar", "reviewer"])],
        session: true,
        ..acc("xe", Some("x"))
    },
    Acc {
        member: &[("x", &["executor"])],
        ..acc("xd", Some("x"))
    },
    Acc {
        member: &[("s", &["registrar", "reviewer"])],
        session: true,
        ..acc("se", Some("s"))
    },
    Acc {
        member: &[("s", &["executor"])],
        ..acc("sd", Some("s"))
    },
    Acc {
        blocked: true,
        ..acc("xb", Some("x"))
    },
    Acc {
        blocked: true,
        ..acc("sb", Some("s"))
    },
    acc("cand", None),
    Acc {
        admin: &[Some("x1")],
        ..acc("adm_x1", Some("x1"))
    },
    // A main administrator whose home is X: X's administrators still may not touch them.
    Acc {
        admin: &[None],
        ..acc("main2", Some("x"))
    },
];

/// The delegations of the world: (handle, from, to, organisation, roles).
const DELEGATIONS: [(&str, &str, &str, &str, &[&str]); 2] = [
    ("dx", "xe", "xd", "x", &["reviewer"]),
    ("ds", "se", "sd", "s", &["reviewer"]),
];

/// Stands for the acting person in `SELF_GRANTS`.
const ME: &str = "<the actor>";

struct World {
    db: Db,
    audit: Audit,
    _worker: AuditWorker,
    policies: Policies,
    catalogue: Catalogue,
    clock: Clock,
    accounts: BTreeMap<&'static str, Account>,
    delegations: BTreeMap<&'static str, String>,
    /// Read once: every cell starts from the same state, so from the same standings.
    standings: BTreeMap<&'static str, Standing>,
    world: Snapshot,
}

impl World {
    async fn build(db: &Db) -> World {
        let clock = Clock::at(NOW);
        let db = db.clone().with_clock(clock.clone());
        for (id, parent, kind) in ORGS {
            let new = NewOrganisation {
                id: id.into(),
                parent: parent.map(Into::into),
                name: format!("Организация {id}"),
                kind: Some(kind.into()),
                ..NewOrganisation::default()
            };
            org::create(&db, &new).await.expect("an organisation");
        }
        let mut accounts = BTreeMap::new();
        for a in &ACCOUNTS {
            let created = account::create(
                &db,
                NewAccount {
                    username: a.name.into(),
                    roles: a.roles.iter().map(|r| r.to_string()).collect(),
                    home_org: a.home.map(Into::into),
                    verified: true,
                    ..NewAccount::default()
                },
            )
            .await
            .expect("an account");
            for (o, roles) in a.member {
                db.memberships()
                    .set(&Membership {
                        account_id: created.id.clone(),
                        org_id: o.to_string(),
                        roles: roles.iter().map(|r| r.to_string()).collect(),
                    })
                    .await
                    .expect("a membership");
            }
            for scope in a.admin {
                db.memberships()
                    .grant_admin(&created.id, *scope, None)
                    .await
                    .expect("an administrator");
            }
            if a.blocked {
                db.accounts()
                    .set_status(&created.id, "blocked")
                    .await
                    .expect("blocked");
            }
            if a.session {
                let who = Authenticated {
                    account_id: created.id.clone(),
                    facts: AuthFacts {
                        auth_time: NOW,
                        acr: Acr::High,
                        amr: vec!["hwk".into()],
                        legal_entity: None,
                    },
                    method: "certificate",
                    upstream: None,
                };
                session::create(&db, &who, 3600).await.expect("a session");
            }
            accounts.insert(a.name, created);
        }
        // As stored, with the versions the blocks moved.
        for a in accounts.values_mut() {
            *a = account::find_by_id(&db, &a.id)
                .await
                .expect("read")
                .expect("the account");
        }
        let mut delegations = BTreeMap::new();
        for (name, from, to, o, roles) in DELEGATIONS {
            let d = delegation::create(
                &db,
                &NewDelegation {
                    delegator_id: accounts[from].id.clone(),
                    delegate_id: accounts[to].id.clone(),
                    org_id: o.into(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    not_before: None,
                    not_after: NOW + 30 * DAY,
                    reason: Some("отпуск".into()),
                    created_by: "cli".into(),
                },
                &Catalogue::embedded(),
                NOW,
                90,
            )
            .await
            .expect("a delegation");
            delegations.insert(name, d.id);
        }
        let mut standings = BTreeMap::new();
        for p in PEOPLE {
            let s = Standing::of(&db, &accounts[p], NOW)
                .await
                .expect("a standing");
            standings.insert(p, s);
        }
        let (audit, worker) = Audit::start(db.clone());
        let world = Snapshot::take(&db, "world").await;
        assert_eq!(world.changed(&db).await, 0, "a copy equals what it copies");
        World {
            db,
            audit,
            _worker: worker,
            policies: Policies::embedded().expect("the embedded policies"),
            catalogue: Catalogue::embedded(),
            clock,
            accounts,
            delegations,
            standings,
            world,
        }
    }

    fn admin(&self) -> Admin<'_> {
        Admin {
            db: &self.db,
            audit: &self.audit,
            policies: &self.policies,
            catalogue: &self.catalogue,
            clock: &self.clock,
            delegation_max_days: 90,
        }
    }

    fn actor(&self, who: &Who) -> Actor {
        match who {
            Who::Person(p, acr) => Actor::Person {
                standing: Box::new(self.standings[p].clone()),
                acr: *acr,
            },
            Who::Client(scope) => {
                let mut c = Client::profile();
                c.id = ClientId::parse("automation").expect("a client id");
                c.admin_scope = scope.clone();
                Actor::Client {
                    client: Arc::new(c),
                }
            }
        }
    }

    fn account(&self, name: &str, who: &Who) -> &Account {
        match (name, who) {
            (ME, Who::Person(p, _)) => &self.accounts[p],
            (ME, Who::Client(_)) => panic!("a client has no account of its own"),
            _ => &self.accounts[name],
        }
    }

    fn id(&self, name: &str, who: &Who) -> String {
        self.account(name, who).id.clone()
    }

    async fn denials(&self) -> i64 {
        self.db
            .scalar::<i64>("SELECT COUNT(*) FROM audit_events WHERE reason = 'policy_denied'")
            .await
    }

    async fn last_denial(&self) -> String {
        self.db
            .scalar::<Option<String>>(
                "SELECT (SELECT details FROM audit_events WHERE reason = 'policy_denied' \
                 ORDER BY id DESC LIMIT 1)",
            )
            .await
            .unwrap_or_default()
    }

    /// Does `op` as `who`.
    async fn act(&self, op: &Do, who: &Who) -> Result<(), AdminError> {
        let admin = self.admin();
        let actor = self.actor(who);
        let a = &actor;
        match *op {
            Do::CreateOrg(parent) => {
                let new = NewOrganisation {
                    id: "new-unit".into(),
                    parent: parent.map(Into::into),
                    name: "Новое подразделение".into(),
                    kind: Some(
                        if parent.is_some() {
                            "unit"
                        } else {
                            "state_body"
                        }
                        .into(),
                    ),
                    ..NewOrganisation::default()
                };
                admin.create_org(a, &new).await.map(drop)
            }
            Do::UpdateOrg(id) => {
                let changes = org::Changes {
                    name: Some("Переименована".into()),
                    ..org::Changes::default()
                };
                admin.update_org(a, id, None, &changes).await.map(drop)
            }
            Do::MoveOrg(id, to) => admin.move_org(a, id, to, None).await.map(drop),
            Do::DeactivateOrg(id) => admin.deactivate_org(a, id, None).await.map(drop),
            Do::GrantAdmin(target, o) => admin
                .grant_admin(a, self.account(target, who), o)
                .await
                .map(drop),
            Do::RevokeAdmin(target, o) => admin
                .revoke_admin(a, self.account(target, who), o)
                .await
                .map(drop),
            Do::CreateEmployee(o) => {
                let new = NewEmployee {
                    account: NewAccount {
                        username: "new.employee".into(),
                        verified: true,
                        ..NewAccount::default()
                    },
                    org: o.into(),
                    org_roles: vec!["registrar".into()],
                    personal_number: None,
                };
                admin.create_employee(a, new).await.map(drop)
            }
            Do::SetRoles(target, o, roles) => {
                let t = self.account(target, who);
                let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
                admin
                    .set_roles(a, t, o, &roles, Some(t.version))
                    .await
                    .map(drop)
            }
            Do::RemoveMember(target, o) => {
                admin.remove_member(a, self.account(target, who), o).await
            }
            Do::Block(target) | Do::Unblock(target) => {
                let t = self.account(target, who);
                let block = matches!(op, Do::Block(_));
                admin
                    .set_blocked(a, t, t.version, block, &Quiet)
                    .await
                    .map(drop)
            }
            Do::EndSessions(target) => admin
                .end_sessions(a, self.account(target, who), &Quiet)
                .await
                .map(drop),
            Do::Delegate(from, to, o, roles) => {
                let new = NewDelegation {
                    delegator_id: self.id(from, who),
                    delegate_id: self.id(to, who),
                    org_id: o.into(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    not_before: None,
                    not_after: NOW + 7 * DAY,
                    reason: Some("командировка".into()),
                    created_by: String::new(),
                };
                admin.create_delegation(a, &new).await.map(drop)
            }
            Do::RevokeDelegation(d) => admin
                .revoke_delegation(a, &self.delegations[d], Some("вернулся"))
                .await
                .map(drop),
            Do::BindPersonalNumber(target) => {
                let t = self.account(target, who);
                admin
                    .bind_personal_number(a, t, "3150575B004PB9", t.version)
                    .await
            }
            Do::Read(action, res) => {
                let held;
                let resource = match res {
                    On::System => Resource::System,
                    On::Org(o) => Resource::Org(o),
                    On::Account(n) => Resource::Account(self.account(n, who)),
                    On::Delegation(d) => {
                        held = self
                            .db
                            .delegations()
                            .get(&self.delegations[d])
                            .await?
                            .ok_or(AdminError::NotFound("delegation"))?;
                        Resource::Delegation(&held)
                    }
                };
                admin.authorize(a, action, resource, json!({})).await
            }
        }
    }

    /// Does `op` as `who` from the world as built, checks the outcome against `want`, and
    /// puts the world back; a mismatch is returned as its description.
    async fn cell(&self, row: &str, op: &Do, who: &Who, want: Expect) -> Result<(), String> {
        let denials = self.denials().await;
        let got = self.act(op, who).await;
        let changed = self.world.changed(&self.db).await;
        let changed_tables = if changed > 0 {
            self.world.changed_tables(&self.db).await
        } else {
            Vec::new()
        };
        let denied = self.denials().await - denials;
        let last_denial = self.last_denial().await;
        if changed > 0 {
            self.world.restore(&self.db).await;
            assert_eq!(self.world.changed(&self.db).await, 0, "restored");
        }
        let cell = format!("{row:?} by {who}");
        match (want, got) {
            (Expect::Allow, Ok(())) => {
                if op.writes() && changed == 0 {
                    return Err(format!("{cell}: allowed, but nothing was stored"));
                }
                if !op.writes() && changed > 0 {
                    return Err(format!("{cell}: a read changed {changed_tables:?}"));
                }
                if denied != 0 {
                    return Err(format!("{cell}: allowed, yet a denial was audited"));
                }
                Ok(())
            }
            (Expect::Deny(want), Err(AdminError::Denied { policy, .. })) => {
                if policy != want {
                    return Err(format!("{cell}: denied by {policy}, not by {want}"));
                }
                if changed > 0 {
                    return Err(format!("{cell}: denied, yet {changed_tables:?} changed"));
                }
                if denied != 1 || !last_denial.contains(&format!("\"policy\":\"{want}\"")) {
                    return Err(format!(
                        "{cell}: {denied} denials audited, the last {last_denial}"
                    ));
                }
                Ok(())
            }
            (want, got) => Err(format!("{cell}: expected {want:?}, got {got:?}")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix.

/// What a cell does; account names are the world's handles.
#[derive(Debug, Clone, Copy)]
enum Do {
    CreateOrg(Option<&'static str>),
    UpdateOrg(&'static str),
    MoveOrg(&'static str, Option<&'static str>),
    DeactivateOrg(&'static str),
    GrantAdmin(&'static str, Option<&'static str>),
    RevokeAdmin(&'static str, Option<&'static str>),
    CreateEmployee(&'static str),
    SetRoles(&'static str, &'static str, &'static [&'static str]),
    RemoveMember(&'static str, &'static str),
    Block(&'static str),
    Unblock(&'static str),
    EndSessions(&'static str),
    /// From, to, in, roles.
    Delegate(
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    ),
    RevokeDelegation(&'static str),
    BindPersonalNumber(&'static str),
    Read(&'static str, On),
}

#[derive(Debug, Clone, Copy)]
enum On {
    System,
    Org(&'static str),
    Account(&'static str),
    Delegation(&'static str),
}

impl Do {
    fn writes(&self) -> bool {
        !matches!(self, Do::Read(..))
    }

    /// The service's operation, or the action a read asks.
    fn name(&self) -> &'static str {
        match self {
            Do::CreateOrg(..) => "create_org",
            Do::UpdateOrg(..) => "update_org",
            Do::MoveOrg(..) => "move_org",
            Do::DeactivateOrg(..) => "deactivate_org",
            Do::GrantAdmin(..) => "grant_admin",
            Do::RevokeAdmin(..) => "revoke_admin",
            Do::CreateEmployee(..) => "create_employee",
            Do::SetRoles(..) => "set_roles",
            Do::RemoveMember(..) => "remove_member",
            Do::Block(..) => "block",
            Do::Unblock(..) => "unblock",
            Do::EndSessions(..) => "end_sessions",
            Do::Delegate(..) => "create_delegation",
            Do::RevokeDelegation(..) => "revoke_delegation",
            Do::BindPersonalNumber(..) => "bind_personal_number",
            Do::Read(action, _) => action,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allow,
    /// Denied by this policy.
    Deny(&'static str),
}

/// Allowed.
const Y: Expect = Expect::Allow;
/// No policy permits it.
const N: Expect = Expect::Deny("default-deny");
/// An external administrator neither moves nor deactivates the organisation they administer.
const OWN: Expect = Expect::Deny("own-organisation-stays-put");
/// A main administrator's account is for main administrators only.
const MAIN: Expect = Expect::Deny("main-administrators-by-main-administrators");
const SELF: Expect = Expect::Deny("no-grant-to-oneself");
const SELF_D: Expect = Expect::Deny("no-delegation-to-oneself");

#[derive(Debug, Clone)]
enum Who {
    Person(&'static str, Acr),
    Client(Option<AdminScope>),
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Person(p, acr) => write!(f, "{p} (acr {acr:?})"),
            Who::Client(None) => f.write_str("a client without admin_scope"),
            Who::Client(Some(AdminScope::System)) => f.write_str("a client of admin_scope system"),
            Who::Client(Some(AdminScope::Org(o))) => write!(f, "a client of admin_scope {o}"),
        }
    }
}

/// The columns: the seven people of `PEOPLE` at acr high, then an automation client whose
/// admin_scope is X.
const COLUMNS: usize = 8;

/// The objects: X1a under X1 under X under P under R; S beside X under P; T another top.
/// xe, xd: employees of X (home X); se, sd: of S; xb, sb: blocked accounts of X and S; cand: an
/// account with nothing; adm_x1: X1's administrator; main2: a main administrator whose home is
/// X; dx: xe's delegation to xd in X; ds: se's to sd in S.
#[rustfmt::skip]
const MATRIX: &[(&str, Do, [Expect; COLUMNS])] = &[
    //                                                                                          main adm_x adm_p adm_s emp_x appl. nobody client(X)
    ("create a unit under X1",            Do::CreateOrg(Some("x1")),                            [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("create a unit under X",             Do::CreateOrg(Some("x")),                             [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("create a unit under S",             Do::CreateOrg(Some("s")),                             [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("create a unit under R",             Do::CreateOrg(Some("r")),                             [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("create a top-level organisation",   Do::CreateOrg(None),                                  [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("update X1",                         Do::UpdateOrg("x1"),                                  [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("update X",                          Do::UpdateOrg("x"),                                   [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("update S",                          Do::UpdateOrg("s"),                                   [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("update T",                          Do::UpdateOrg("t"),                                   [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("move X1a up to X",                  Do::MoveOrg("x1a", Some("x")),                        [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("move X1 up to P",                   Do::MoveOrg("x1", Some("p")),                         [Y,  N,    Y,    N,    N,    N,    N,    N]),
    ("move X1 to S",                      Do::MoveOrg("x1", Some("s")),                         [Y,  N,    Y,    N,    N,    N,    N,    N]),
    ("move X1 to the top level",          Do::MoveOrg("x1", None),                              [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("move S under X",                    Do::MoveOrg("s", Some("x")),                          [Y,  N,    Y,    OWN,  N,    N,    N,    N]),
    ("move X under S",                    Do::MoveOrg("x", Some("s")),                          [Y,  OWN,  Y,    N,    N,    N,    N,    OWN]),
    ("deactivate X1",                     Do::DeactivateOrg("x1"),                              [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("deactivate X",                      Do::DeactivateOrg("x"),                               [Y,  OWN,  Y,    N,    N,    N,    N,    OWN]),
    ("deactivate S",                      Do::DeactivateOrg("s"),                               [Y,  N,    Y,    OWN,  N,    N,    N,    N]),
    ("make cand administrator of X1",     Do::GrantAdmin("cand", Some("x1")),                   [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("make cand administrator of S",      Do::GrantAdmin("cand", Some("s")),                    [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("make cand a main administrator",    Do::GrantAdmin("cand", None),                         [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("revoke adm_x1's administration",    Do::RevokeAdmin("adm_x1", Some("x1")),                [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("revoke main2's main administration",Do::RevokeAdmin("main2", None),                       [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("create an employee in X1",          Do::CreateEmployee("x1"),                             [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("create an employee in X",           Do::CreateEmployee("x"),                              [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("create an employee in S",           Do::CreateEmployee("s"),                              [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("give xe the role head in X",        Do::SetRoles("xe", "x", &["head", "registrar", "reviewer"]), [Y, Y, Y,  N,    N,    N,    N,    Y]),
    ("take reviewer from xe in X",        Do::SetRoles("xe", "x", &["registrar"]),              [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("set xe's roles in X unchanged",     Do::SetRoles("xe", "x", &["registrar", "reviewer"]),  [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("give se the role head in S",        Do::SetRoles("se", "s", &["head", "registrar", "reviewer"]), [Y, N, Y,  Y,    N,    N,    N,    N]),
    ("make se (of S) a member of X",      Do::SetRoles("se", "x", &["executor"]),               [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("remove xe from X",                  Do::RemoveMember("xe", "x"),                          [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("remove se from S",                  Do::RemoveMember("se", "s"),                          [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("block xe (home X)",                 Do::Block("xe"),                                      [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("block se (home S)",                 Do::Block("se"),                                      [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("unblock xb (home X)",               Do::Unblock("xb"),                                    [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("unblock sb (home S)",               Do::Unblock("sb"),                                    [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("block main2 (home X)",              Do::Block("main2"),                                   [Y,  MAIN, MAIN, MAIN, MAIN, MAIN, MAIN, MAIN]),
    ("end xe's sessions",                 Do::EndSessions("xe"),                                [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("end se's sessions",                 Do::EndSessions("se"),                                [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("delegate xe's registrar to xd in X",Do::Delegate("xe", "xd", "x", &["registrar"]),        [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("delegate se's registrar to sd in S",Do::Delegate("se", "sd", "s", &["registrar"]),        [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("revoke the delegation dx in X",     Do::RevokeDelegation("dx"),                           [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("revoke the delegation ds in S",     Do::RevokeDelegation("ds"),                           [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("bind xe to a personal number",      Do::BindPersonalNumber("xe"),                         [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("bind se to a personal number",      Do::BindPersonalNumber("se"),                         [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("manage the clients",                Do::Read("manage_clients", On::System),               [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("read X1",                           Do::Read("read_organisation", On::Org("x1")),         [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("read S",                            Do::Read("read_organisation", On::Org("s")),          [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("read R",                            Do::Read("read_organisation", On::Org("r")),          [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("read the account xe",               Do::Read("read_account", On::Account("xe")),          [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("read the account se",               Do::Read("read_account", On::Account("se")),          [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("read the account main2",            Do::Read("read_account", On::Account("main2")),       [Y,  MAIN, MAIN, MAIN, MAIN, MAIN, MAIN, MAIN]),
    ("search the accounts of X",          Do::Read("search_accounts", On::Org("x")),            [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("search the accounts of S",          Do::Read("search_accounts", On::Org("s")),            [Y,  N,    Y,    Y,    N,    N,    N,    N]),
    ("search every account",              Do::Read("search_accounts", On::System),              [Y,  N,    N,    N,    N,    N,    N,    N]),
    ("read the delegation dx",            Do::Read("read_delegation", On::Delegation("dx")),    [Y,  Y,    Y,    N,    N,    N,    N,    Y]),
    ("read the delegation ds",            Do::Read("read_delegation", On::Delegation("ds")),    [Y,  N,    Y,    Y,    N,    N,    N,    N]),
];

/// Nobody raises their own rights, the main administrator included. People only: a client has
/// no account to grant itself anything on.
#[rustfmt::skip]
const SELF_GRANTS: &[(&str, Do, [Expect; 7])] = &[
    //                                                                                          main   adm_x  adm_p  adm_s  emp_x  appl.  nobody
    ("make oneself administrator of X1",  Do::GrantAdmin(ME, Some("x1")),                       [SELF,  SELF,  SELF,  SELF,  SELF,  SELF,  SELF]),
    ("make oneself a main administrator", Do::GrantAdmin(ME, None),                             [SELF,  SELF,  SELF,  SELF,  SELF,  SELF,  SELF]),
    ("give oneself the role head in X",   Do::SetRoles(ME, "x", &["head"]),                     [SELF,  SELF,  SELF,  SELF,  SELF,  SELF,  SELF]),
    ("delegate xe's reviewer to oneself", Do::Delegate("xe", ME, "x", &["reviewer"]),           [SELF_D,SELF_D,SELF_D,SELF_D,SELF_D,SELF_D,SELF_D]),
];

fn column(i: usize) -> Who {
    match PEOPLE.get(i) {
        Some(p) => Who::Person(p, Acr::High),
        None => Who::Client(Some(AdminScope::Org("x".into()))),
    }
}

/// Every admin operation of the service appears in the matrix, and every read the brief
/// names: a row cannot silently go missing.
#[test]
fn the_matrix_covers_every_operation() {
    let ops = MATRIX
        .iter()
        .map(|(_, op, _)| op)
        .chain(SELF_GRANTS.iter().map(|(_, op, _)| op));
    let seen: std::collections::BTreeSet<&str> = ops.map(Do::name).collect();
    for want in [
        "create_org",
        "update_org",
        "move_org",
        "deactivate_org",
        "grant_admin",
        "revoke_admin",
        "create_employee",
        "set_roles",
        "remove_member",
        "block",
        "unblock",
        "end_sessions",
        "create_delegation",
        "revoke_delegation",
        "bind_personal_number",
        "manage_clients",
        "read_organisation",
        "read_account",
        "search_accounts",
        "read_delegation",
    ] {
        assert!(seen.contains(want), "{want} has no row");
    }
    for (_, op, _) in MATRIX {
        if let Do::Read(action, _) = op {
            assert!(ACTIONS.contains(action), "{action}");
        }
    }
}

#[tokio::test]
async fn the_authorisation_matrix() {
    let started = std::time::Instant::now();
    for t in test_dbs().await {
        let w = World::build(&t.db).await;
        let mut failures = Vec::new();
        let mut cells = 0;
        for (row, op, want) in MATRIX {
            for (i, want) in want.iter().enumerate() {
                cells += 1;
                if let Err(e) = w.cell(row, op, &column(i), *want).await {
                    failures.push(e);
                }
            }
        }
        for (row, op, want) in SELF_GRANTS {
            for (i, want) in want.iter().enumerate() {
                cells += 1;
                if let Err(e) = w.cell(row, op, &column(i), *want).await {
                    failures.push(e);
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{:?}: {} of {cells} cells differ from the table:\n{}",
            t.db.backend,
            failures.len(),
            failures.join("\n")
        );
        eprintln!(
            "{:?}: {cells} cells agree with the table ({:?} so far)",
            t.db.backend,
            started.elapsed()
        );
    }
}

/// A person signed in below acr high is denied everything, whatever they administer; a client
/// holds exactly its admin_scope's rights: none without one, the main administrator's with
/// the system's.
#[tokio::test]
async fn low_assurance_and_scopeless_clients_get_nothing() {
    for t in test_dbs().await {
        let w = World::build(&t.db).await;
        let mut failures = Vec::new();
        let high = Expect::Deny("administrators-act-with-high-assurance");
        for (row, op, want) in MATRIX {
            let mut cells: Vec<(Who, Expect)> = PEOPLE
                .iter()
                .map(|p| (Who::Person(p, Acr::Low), high))
                .collect();
            cells.push((Who::Person("main", Acr::Substantial), high));
            // Without a scope, a client stands where `nobody` does.
            cells.push((Who::Client(None), want[6]));
            cells.push((Who::Client(Some(AdminScope::System)), want[0]));
            for (who, expect) in cells {
                if let Err(e) = w.cell(row, op, &who, expect).await {
                    failures.push(e);
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{:?}:\n{}",
            t.db.backend,
            failures.join("\n")
        );
    }
}

/// A deactivated organisation's administrators hold nothing there from then on, people and
/// automation clients alike.
#[tokio::test]
async fn a_deactivated_scope_holds_nothing() {
    for t in test_dbs().await {
        let w = World::build(&t.db).await;
        w.admin()
            .deactivate_org(&Actor::Operator, "x", None)
            .await
            .expect("deactivated");
        let adm_x = account::find_by_id(&w.db, &w.accounts["adm_x"].id)
            .await
            .expect("read")
            .expect("adm_x");
        let person = Actor::Person {
            standing: Box::new(Standing::of(&w.db, &adm_x, NOW).await.expect("standing")),
            acr: Acr::High,
        };
        let client = w.actor(&Who::Client(Some(AdminScope::Org("x".into()))));
        for (who, actor) in [("adm_x", &person), ("the client of X", &client)] {
            for (action, resource) in [
                ("read_organisation", Resource::Org("x1")),
                ("update_organisation", Resource::Org("x1")),
                ("read_account", Resource::Account(&w.accounts["xe"])),
                ("block_account", Resource::Account(&w.accounts["xe"])),
            ] {
                let verdict = w
                    .admin()
                    .authorize(actor, action, resource, json!({}))
                    .await;
                assert!(
                    matches!(verdict, Err(AdminError::Denied { .. })),
                    "{:?}: {who} may still {action} under a deactivated X: {verdict:?}",
                    t.db.backend
                );
            }
        }
        // P's administrator, above it, still runs the subtree (to reorganise or close it).
        let p = w.actor(&Who::Person("adm_p", Acr::High));
        w.admin()
            .authorize(&p, "read_organisation", Resource::Org("x1"), json!({}))
            .await
            .expect("P's administrator reads under a deactivated X");
    }
}

// ---------------------------------------------------------------------------------------------
// The grant ceiling, as properties. After every attempt, by a person at acr high whose standing
// is read afresh:
// - allowed: the principal is a main administrator, or the organisation is inside one of their
//   administrator subtrees (as the administrators table and the case's own tree say, not as
//   the policies do);
// - allowed: the target is not the principal (of a grant_admin; of a set_roles that adds a role
//   or a membership, since dropping one's own roles raises nothing; a delegation's delegate);
// - every membership's roles are in the catalogue;
// - an allowed delegation passes on only delegable roles the delegator held there just before,
//   for at most 90 days, from no earlier than now less the service's 60 s clock tolerance;
// - a refused attempt, denied or invalid, leaves every table as it was.
//
// proptest gives the cases and shrinks a failing one to a small tree and a short history, which
// is most of what makes a failure here readable. Its runner is synchronous, so the test is a
// plain #[test] that owns a Tokio runtime and blocks on each case; no proptest feature that
// forks or times out is used (a case holds database connections of that runtime). Persisted
// failures are off: the seed is fixed (below) and the suite must not write into src/.
// The cases are few and small: each one builds its world in a real database, on every backend.

/// Roles an attempt may ask for: the catalogue's, and some that are not in it.
const ROLE_POOL: [&str; 8] = [
    "registrar",
    "reviewer",
    "executor",
    "controller",
    "head",
    "boss",
    "Head",
    "admin",
];
const KNOWN: [&str; 5] = ["registrar", "reviewer", "executor", "controller", "head"];

#[derive(Debug, Clone)]
struct Person {
    main: bool,
    admin_of: Option<usize>,
    member: Vec<(usize, Vec<&'static str>)>,
    home: Option<usize>,
}

#[derive(Debug, Clone)]
enum Attempt {
    GrantAdmin {
        by: usize,
        target: usize,
        org: Option<usize>,
    },
    /// `org` None: the target's first membership's organisation (else org 0). `keep` picks
    /// from the target's roles there (bit i: the i-th; all of them asks for no change),
    /// `extra` adds any roles at all.
    SetRoles {
        by: usize,
        target: usize,
        org: Option<usize>,
        keep: u8,
        extra: Vec<&'static str>,
    },
    /// `org` None: the delegator's first membership's organisation (else org 0). `own` picks
    /// from the delegator's roles there (bit i: the i-th), `extra` adds any roles at all.
    /// `by` None: the first external administrator whose scopes cover the organisation, else
    /// the first main administrator, else person 0: so that some delegations get past the
    /// policies to the delegation's own checks.
    Delegate {
        by: Option<usize>,
        from: usize,
        to: usize,
        org: Option<usize>,
        own: u8,
        extra: Vec<&'static str>,
        start: Option<i64>,
        length: i64,
    },
}

#[derive(Debug, Clone)]
struct Case {
    /// Organisation i's parent: an earlier one, or None (the top).
    parents: Vec<Option<usize>>,
    people: Vec<Person>,
    attempts: Vec<Attempt>,
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..=6, 3usize..=6).prop_flat_map(|(orgs, people)| {
        let parents: Vec<BoxedStrategy<Option<usize>>> = (0..orgs)
            .map(|i| (0..=i).prop_map(move |p| (p < i).then_some(p)).boxed())
            .collect();
        let person = (
            prop::bool::weighted(0.35),
            prop::option::weighted(0.6, 0..orgs),
            prop::collection::vec(
                (0..orgs, prop::sample::subsequence(KNOWN.to_vec(), 1..=3)),
                0..=2,
            ),
            prop::option::of(0..orgs),
        )
            .prop_map(|(main, admin_of, member, home)| Person {
                main,
                admin_of,
                member,
                home,
            });
        let extra =
            |most| prop::collection::vec(prop::sample::select(ROLE_POOL.to_vec()), 0..=most);
        // Mostly bits that keep everything (no change) or drop one role, sometimes any.
        let keep = prop_oneof![
            Just(u8::MAX),
            Just(u8::MAX - 1),
            Just(u8::MAX - 2),
            any::<u8>()
        ];
        let start = prop::option::weighted(
            0.5,
            prop_oneof![1 => -2 * DAY..-SKEW, 1 => -SKEW..=0, 2 => 0..10 * DAY],
        );
        let length = prop_oneof![
            1 => -DAY..=0,
            4 => 1..=90 * DAY,
            1 => Just(90 * DAY),
            1 => Just(90 * DAY + 1),
            1 => 90 * DAY + 1..=120 * DAY,
        ];
        let attempt = prop_oneof![
            (0..people, 0..people, prop::option::weighted(0.8, 0..orgs))
                .prop_map(|(by, target, org)| Attempt::GrantAdmin { by, target, org }),
            (
                0..people,
                0..people,
                prop::option::weighted(0.5, 0..orgs),
                keep,
                extra(2)
            )
                .prop_map(|(by, target, org, keep, extra)| Attempt::SetRoles {
                    by,
                    target,
                    org,
                    keep,
                    extra,
                }),
            (
                // The delegate is never the delegator (the service refuses that before the
                // policies are asked), but may well be the principal.
                (prop::option::weighted(0.5, 0..people), 0..people, 1..people),
                prop::option::weighted(0.3, 0..orgs),
                any::<u8>(),
                prop::collection::vec(prop::sample::select(ROLE_POOL.to_vec()), 0..=1),
                start,
                length,
            )
                .prop_map(move |((by, from, step), org, own, extra, start, length)| {
                    Attempt::Delegate {
                        by,
                        from,
                        to: (from + step) % people,
                        org,
                        own,
                        extra,
                        start,
                        length,
                    }
                }),
        ];
        (
            parents,
            prop::collection::vec(person, people),
            prop::collection::vec(attempt, 1..=8),
        )
            .prop_map(|(parents, people, attempts)| Case {
                parents,
                people,
                attempts,
            })
    })
}

/// Roles picked by bit from `held`, then `extra`.
fn pick(held: &[String], bits: u8, extra: &[&str]) -> Vec<String> {
    held.iter()
        .enumerate()
        .filter(|(i, _)| *i < 8 && bits & (1 << i) != 0)
        .map(|(_, r)| r.clone())
        .chain(extra.iter().map(|r| r.to_string()))
        .collect()
}

/// What the properties saw, per kind of attempt: allowed to a main administrator, allowed to
/// someone else, refused.
#[derive(Debug, Default)]
struct Seen(BTreeMap<&'static str, [u32; 3]>);

impl Seen {
    fn count(&mut self, kind: &'static str, main: bool, allowed: bool) {
        let at = match (allowed, main) {
            (true, true) => 0,
            (true, false) => 1,
            (false, _) => 2,
        };
        self.0.entry(kind).or_default()[at] += 1;
    }
}

fn oid(i: usize) -> String {
    format!("o{i}")
}

/// Inside `scope`'s subtree: `org` is `scope` or below it.
fn inside(parents: &[Option<usize>], org: usize, scope: &str) -> bool {
    let mut at = Some(org);
    while let Some(i) = at {
        if oid(i) == scope {
            return true;
        }
        at = parents[i];
    }
    false
}

struct Ceiling {
    main: bool,
    scopes: Vec<String>,
}

impl Ceiling {
    async fn of(db: &Db, account: &str) -> Ceiling {
        let scopes = db
            .memberships()
            .admin_scopes_of(account)
            .await
            .expect("scopes");
        Ceiling {
            main: scopes.iter().any(|s| s.org_id.is_none()),
            scopes: scopes.into_iter().filter_map(|s| s.org_id).collect(),
        }
    }

    fn covers(&self, parents: &[Option<usize>], org: Option<usize>) -> bool {
        self.main || org.is_some_and(|o| self.scopes.iter().any(|s| inside(parents, o, s)))
    }
}

async fn roles_in(db: &Db, account: &str, org: &str) -> Option<Vec<String>> {
    db.memberships()
        .of_account(account)
        .await
        .expect("memberships")
        .into_iter()
        .find(|m| m.org_id == org)
        .map(|m| m.roles)
}

/// `org`, or else the account's first membership's organisation, or else the first one.
async fn org_or_first(db: &Db, account: &str, org: Option<usize>) -> usize {
    if let Some(o) = org {
        return o;
    }
    let first = db
        .memberships()
        .of_account(account)
        .await
        .expect("memberships")
        .into_iter()
        .next();
    first.map_or(0, |m| m.org_id[1..].parse().expect("an index of ours"))
}

/// Builds the case's world in the emptied database and makes its attempts, checking the
/// properties after each.
async fn grant_ceiling(
    db: &Db,
    empty: &Snapshot,
    ground: &(Audit, Policies, Catalogue, Clock),
    case: &Case,
    seen: &mut Seen,
) -> Result<(), TestCaseError> {
    let (audit, policies, catalogue, clock) = ground;
    empty.restore(db).await;
    for (i, parent) in case.parents.iter().enumerate() {
        let new = NewOrganisation {
            id: oid(i),
            parent: parent.map(oid),
            name: format!("Организация {i}"),
            ..NewOrganisation::default()
        };
        org::create(db, &new).await.expect("an organisation");
    }
    let mut ids = Vec::new();
    for (i, p) in case.people.iter().enumerate() {
        let a = account::create(
            db,
            NewAccount {
                username: format!("u{i}"),
                home_org: p.home.map(oid),
                verified: true,
                ..NewAccount::default()
            },
        )
        .await
        .expect("an account");
        for (o, roles) in &p.member {
            db.memberships()
                .set(&Membership {
                    account_id: a.id.clone(),
                    org_id: oid(*o),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                })
                .await
                .expect("a membership");
        }
        if p.main {
            db.memberships()
                .grant_admin(&a.id, None, None)
                .await
                .expect("main");
        }
        if let Some(o) = p.admin_of {
            db.memberships()
                .grant_admin(&a.id, Some(&oid(o)), None)
                .await
                .expect("admin");
        }
        ids.push(a.id);
    }
    let before = Snapshot::take(db, "before").await;
    // The copy is taken again only after an allowed attempt: a refused one is checked to have
    // left everything as the copy has it.
    let mut copied = true;
    let admin = Admin {
        db,
        audit,
        policies,
        catalogue,
        clock,
        delegation_max_days: 90,
    };
    let parents = &case.parents;
    for (n, attempt) in case.attempts.iter().enumerate() {
        let by = match attempt {
            Attempt::GrantAdmin { by, .. } | Attempt::SetRoles { by, .. } => *by,
            Attempt::Delegate { by: Some(by), .. } => *by,
            Attempt::Delegate {
                by: None,
                from,
                org,
                ..
            } => {
                let o = org_or_first(db, &ids[*from], *org).await;
                let mut external = None;
                let mut main = None;
                for (i, id) in ids.iter().enumerate() {
                    let c = Ceiling::of(db, id).await;
                    if c.main {
                        main = main.or(Some(i));
                    } else if c.covers(parents, Some(o)) {
                        external = external.or(Some(i));
                    }
                }
                external.or(main).unwrap_or(0)
            }
        };
        let me = account::find_by_id(db, &ids[by])
            .await
            .expect("read")
            .expect("the principal");
        let actor = Actor::Person {
            standing: Box::new(Standing::of(db, &me, NOW).await.expect("a standing")),
            acr: Acr::High,
        };
        let ceiling = Ceiling::of(db, &me.id).await;
        if !copied {
            before.refresh(db).await;
            copied = true;
        }
        let what = format!("attempt {n} ({attempt:?})");
        let result: Result<(), AdminError> = match attempt {
            Attempt::GrantAdmin { target, org, .. } => {
                let t = account::find_by_id(db, &ids[*target])
                    .await
                    .expect("read")
                    .expect("the target");
                let o = org.map(oid);
                let r = admin.grant_admin(&actor, &t, o.as_deref()).await;
                if r.is_ok() {
                    prop_assert!(ceiling.covers(parents, *org), "{what}: above the ceiling");
                    prop_assert_ne!(*target, by, "{}: granted to oneself", what);
                    prop_assert!(
                        Ceiling::of(db, &t.id).await.covers(parents, *org),
                        "{what}: allowed, but not stored"
                    );
                }
                r.map(drop)
            }
            Attempt::SetRoles {
                target,
                org,
                keep,
                extra,
                ..
            } => {
                let t = account::find_by_id(db, &ids[*target])
                    .await
                    .expect("read")
                    .expect("the target");
                let o_index = org_or_first(db, &t.id, *org).await;
                let o = oid(o_index);
                let held = roles_in(db, &t.id, &o).await;
                let asked = pick(held.as_deref().unwrap_or_default(), *keep, extra);
                let r = admin
                    .set_roles(&actor, &t, &o, &asked, Some(t.version))
                    .await;
                if let Ok(set) = &r {
                    prop_assert!(
                        ceiling.covers(parents, Some(o_index)),
                        "{what}: above the ceiling"
                    );
                    let gained = held
                        .as_ref()
                        .is_none_or(|h| set.iter().any(|r| !h.contains(r)));
                    prop_assert!(!(gained && *target == by), "{what}: gave roles to oneself");
                    prop_assert!(
                        set.iter().all(|r| catalogue.get(r).is_some()),
                        "{what}: {set:?} outside the catalogue"
                    );
                    let stored = roles_in(db, &t.id, &o).await;
                    prop_assert_eq!(stored.as_ref(), Some(set), "{}: stored otherwise", what);
                }
                r.map(drop)
            }
            Attempt::Delegate {
                from,
                to,
                org,
                own,
                extra,
                start,
                length,
                ..
            } => {
                let o_index = org_or_first(db, &ids[*from], *org).await;
                let o = oid(o_index);
                let held = roles_in(db, &ids[*from], &o).await.unwrap_or_default();
                let roles = pick(&held, *own, extra);
                let not_before = start.map(|s| NOW + s);
                let new = NewDelegation {
                    delegator_id: ids[*from].clone(),
                    delegate_id: ids[*to].clone(),
                    org_id: o.clone(),
                    roles,
                    not_before,
                    not_after: not_before.unwrap_or(NOW) + length,
                    reason: None,
                    created_by: String::new(),
                };
                let r = admin.create_delegation(&actor, &new).await;
                if let Ok(d) = &r {
                    prop_assert!(
                        ceiling.covers(parents, Some(o_index)),
                        "{what}: above the ceiling"
                    );
                    prop_assert_ne!(*to, by, "{}: delegated to oneself", what);
                    prop_assert_ne!(*to, *from, "{}: delegated to the delegator", what);
                    prop_assert!(
                        !d.roles.is_empty() && d.roles.iter().all(|r| held.contains(r)),
                        "{what}: {:?} beyond the delegator's own {held:?}",
                        d.roles
                    );
                    prop_assert!(
                        d.roles
                            .iter()
                            .all(|r| catalogue.get(r).is_some_and(|r| r.delegable)),
                        "{what}: {:?} outside the delegable catalogue",
                        d.roles
                    );
                    prop_assert!(d.not_before >= NOW - SKEW, "{what}: starts in the past");
                    prop_assert!(
                        d.not_before < d.not_after && d.not_after - d.not_before <= 90 * DAY,
                        "{what}: lasts {} s",
                        d.not_after - d.not_before
                    );
                    prop_assert_eq!(&d.org_id, &o);
                    let stored = db.delegations().get(&d.id).await.expect("read");
                    prop_assert_eq!(stored.as_ref(), Some(d), "{}: stored otherwise", what);
                }
                r.map(drop)
            }
        };
        let kind = match attempt {
            Attempt::GrantAdmin { .. } => "grant_admin",
            Attempt::SetRoles { .. } => "set_roles",
            Attempt::Delegate { .. } => "create_delegation",
        };
        seen.count(kind, ceiling.main, result.is_ok());
        match result {
            Ok(()) => copied = false,
            Err(e) => {
                match &e {
                    AdminError::Denied { policy, .. } => {
                        prop_assert!(!policy.is_empty(), "{what}: denied by no policy")
                    }
                    AdminError::Invalid(_) | AdminError::NotFound(_) => {}
                    other => prop_assert!(false, "{what}: {other:?}"),
                }
                let changed = before.changed(db).await;
                prop_assert_eq!(
                    changed,
                    0,
                    "{}: refused ({:?}), yet {:?} changed",
                    what,
                    e,
                    before.changed_tables(db).await
                );
            }
        }
        // Whatever was allowed, nothing outside the catalogue is ever held.
        for id in &ids {
            for m in db.memberships().of_account(id).await.expect("memberships") {
                prop_assert!(
                    m.roles.iter().all(|r| catalogue.get(r).is_some()),
                    "{what}: {m:?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_grant_ceiling_holds() {
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dbs = rt.block_on(test_dbs());
    for t in &dbs {
        let clock = Clock::at(NOW);
        let db = t.db.clone().with_clock(clock.clone());
        let (ground, _worker, empty) = rt.block_on(async {
            let (audit, worker) = Audit::start(db.clone());
            let ground = (
                audit,
                Policies::embedded().expect("the embedded policies"),
                Catalogue::embedded(),
                clock.clone(),
            );
            (ground, worker, Snapshot::take(&db, "empty").await)
        });
        let seen = std::cell::RefCell::new(Seen::default());
        // A fixed seed: every run, CI's included, tries the same cases, so that the check
        // below that some of each kind were allowed cannot fail by chance. Another seed
        // explores other trees.
        let seed = *b"vhod admin grant ceiling seed 01";
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 64,
                max_shrink_iters: 200,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        let outcome = runner.run(&case(), |c| {
            rt.block_on(grant_ceiling(
                &db,
                &empty,
                &ground,
                &c,
                &mut seen.borrow_mut(),
            ))
        });
        if let Err(e) = outcome {
            panic!("{:?}: {e}", db.backend);
        }
        let seen = seen.into_inner();
        eprintln!(
            "{:?}: [allowed to a main administrator, to another, refused] {:?} in {:?}",
            db.backend,
            seen.0,
            started.elapsed()
        );
        // The properties are implications from "allowed": they say something only where some
        // of each kind were allowed and some refused, and where someone other than a main
        // administrator was allowed (grant_admin is the main administrator's alone).
        for kind in ["grant_admin", "set_roles", "create_delegation"] {
            let [main, other, refused] = seen.0.get(kind).copied().unwrap_or_default();
            assert!(
                main > 0 && refused > 0 && (other > 0 || kind == "grant_admin"),
                "{:?}: {kind}: {main} + {other} allowed, {refused} refused",
                db.backend
            );
        }
    }
}
