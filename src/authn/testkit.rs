//! What the authn services' unit tests stand on: SQLite, the in-memory store, a set clock and
//! the dev outbox, in directories of their own, so that each test sees only its own accounts,
//! messages and audit events.

use std::sync::Mutex;

use crate::audit::{Audit, AuditWorker, Kind};
use crate::authn::contact_proof::Proofs;
use crate::authn::login::LockNotices;
use crate::authn::password::PasswordHasher;
use crate::authn::password::hasher::HasherLimits;
use crate::authn::{Acr, AuthFacts, Authenticated, session};
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::account::{self, Account, NewAccount};
use crate::notify::{Notifier, OutboxEntry, read_outbox};
use crate::store::audit_log::StoredEvent;
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;
use crate::web::pages::Pages;

/// The phone and address of [`Ground::ivan`], both confirmed.
pub(crate) const PHONE: &str = "+375291234567";
pub(crate) const EMAIL: &str = "ivan@example.by";
/// The password of every account [`Ground::person`] makes.
pub(crate) const PASSWORD: &str = "the old one, long";

/// The pieces a service's view is built of. `told` is the test's own fake for what the service
/// tells the rest of the server (locks, ended sessions), kept here so that the view can borrow
/// it for as long as it borrows the rest.
pub(crate) struct Ground<T = ()> {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    pub settings: Settings,
    pub clock: Clock,
    pub db: Db,
    pub eph: Ephemeral,
    pub audit: Audit,
    pub worker: AuditWorker,
    pub notifier: Notifier,
    pub pages: Pages,
    pub hasher: PasswordHasher,
    pub policies: crate::policy::Policies,
    pub told: T,
}

impl<T: Default> Ground<T> {
    /// Development settings (the outbox for both channels) with `extra_settings_lines` on top.
    pub async fn new(extra_settings_lines: &str) -> Ground<T> {
        let dir = tempfile::tempdir().expect("a directory");
        let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
        std::fs::create_dir_all(&data).expect("the data directory");
        let file = dir.path().join("vhod.toml");
        let toml =
            format!("dev = true\ndata_dir = {data:?}\nkeys_dir = {keys:?}\n{extra_settings_lines}");
        std::fs::write(&file, toml).expect("settings");
        let settings = Settings::load(Some(&file)).expect("settings load");
        let clock = Clock::at(1_800_000_000);
        let (db_dir, db) = crate::store::sql::test_db().await;
        let db = db.with_clock(clock.clone());
        let (audit, worker) = Audit::start(db.clone());
        let notifier = Notifier::new(&settings, reqwest::Client::new()).expect("outbox");
        // One slot and short queues: the tests hash a handful of passwords, one at a time.
        let hasher = PasswordHasher::new(HasherLimits {
            slots: 1,
            sign_in_queue: 4,
            sign_in_reserve: 0,
            other_queue: 4,
        })
        .expect("hasher");
        Ground {
            _dirs: (dir, db_dir),
            settings,
            clock,
            db,
            eph: Ephemeral::memory(),
            audit,
            worker,
            notifier,
            pages: Pages::new(),
            hasher,
            policies: crate::policy::Policies::embedded().expect("the embedded policies"),
            told: T::default(),
        }
    }
}

impl<T> Ground<T> {
    pub fn proofs(&self) -> Proofs<'_> {
        Proofs {
            eph: &self.eph,
            notifier: &self.notifier,
            audit: &self.audit,
            settings: &self.settings,
            pages: &self.pages,
        }
    }

    /// An active account "ivan" with PHONE and EMAIL confirmed and PASSWORD.
    pub async fn ivan(&self) -> Account {
        self.person("ivan", &[], Some(PHONE), Some(EMAIL), true)
            .await
    }

    /// An account with PASSWORD, of `roles`; active with its contacts confirmed if `verified`,
    /// pending otherwise.
    pub async fn person(
        &self,
        username: &str,
        roles: &[&str],
        phone: Option<&str>,
        email: Option<&str>,
        verified: bool,
    ) -> Account {
        let hash = self.hasher.hash(PASSWORD).await.expect("hash");
        let new = NewAccount {
            username: username.into(),
            password_hash: Some(hash),
            phone: phone.map(Into::into),
            email: email.map(Into::into),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            verified,
            ..NewAccount::default()
        };
        account::create(&self.db, new).await.expect("an account")
    }

    /// An SSO session of `acc` signed in now with a password; its sid.
    pub async fn signed_in(&self, acc: &Account) -> String {
        let who = Authenticated {
            account_id: acc.id.clone(),
            facts: AuthFacts {
                auth_time: self.clock.now(),
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: "password",
            upstream: None,
        };
        let s = session::create(&self.db, &who, 3600)
            .await
            .expect("a session");
        s.sid
    }

    /// Every message sent so far, oldest first.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        read_outbox(&self.settings.data_dir).expect("the outbox")
    }

    /// The body of the last message the outbox has for `to`.
    pub fn last_to(&self, to: &str) -> Option<String> {
        let all = self.outbox();
        all.into_iter().rev().find(|m| m.to == to).map(|m| m.body)
    }

    /// The code of the last SMS to `to`: its word of digits, whatever the text around it.
    pub fn code_to(&self, to: &str) -> String {
        let body = self.last_to(to).expect("an SMS");
        let code = body
            .split_whitespace()
            .find(|w| w.len() >= 4 && w.bytes().all(|b| b.is_ascii_digit()));
        code.expect("a code in the SMS").to_string()
    }

    /// The token of the last link to `to`.
    pub fn token_to(&self, to: &str) -> String {
        let body = self.last_to(to).expect("an email");
        let at = body.find("token=").expect("a link") + "token=".len();
        body[at..]
            .split_whitespace()
            .next()
            .expect("a token")
            .into()
    }

    /// Stops the audit writer: every event, in order.
    pub async fn audited(self) -> Vec<StoredEvent> {
        self.worker.finish().await;
        self.db.audit_log().after(0, 1000).await.expect("the log")
    }
}

/// The accounts whose owners were told of a lock.
#[derive(Default)]
pub(crate) struct ToldOfLocks(pub Mutex<Vec<String>>);

impl LockNotices for ToldOfLocks {
    fn locked(&self, _: RequestMeta, account_id: String, _: Lang) {
        self.0.lock().expect("unpoisoned").push(account_id);
    }
}

/// Sessions ended elsewhere: a kit whose tests do not follow them does not tell anyone.
impl crate::authn::session::EndedSessions for ToldOfLocks {
    fn ended(&self, _: String, _: String) {}
}

/// A request from `ip`, of no particular browser.
pub(crate) fn from(ip: &str) -> RequestMeta {
    RequestMeta {
        ip: ip.into(),
        user_agent: None,
    }
}

/// The outcome and reason of each event of `kind`, in order.
pub(crate) fn reasons(events: &[StoredEvent], kind: Kind) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter(|e| e.kind == kind.as_str())
        .map(|e| (e.outcome.clone(), e.reason.clone()))
        .collect()
}

pub(crate) fn failure(reason: &str) -> (String, Option<String>) {
    ("failure".into(), Some(reason.into()))
}
