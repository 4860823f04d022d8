//! The profile service's decisions, without an HTTP server: SQLite, the in-memory store, a set
//! clock and the dev outbox.

use std::sync::Mutex;

use super::*;
use crate::audit::AuditWorker;
use crate::authn::password::hasher::HasherLimits;
use crate::authn::{AuthFacts, Authenticated};
use crate::notify::{Notifier, read_outbox};
use crate::store::accounts::NewAccount;
use crate::store::audit_log::StoredEvent;
use crate::web::pages::Pages;

const PHONE: &str = "+375291234567";
const NEW_PHONE: &str = "+375297654321";
const EMAIL: &str = "ivan@example.by";
const PASSWORD: &str = "the old one, long";

/// The accounts whose owners were told of a lock.
#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl LockNotices for Told {
    fn locked(&self, _: RequestMeta, account_id: String, _: Lang) {
        self.0.lock().expect("unpoisoned").push(account_id);
    }
}

/// What the profile takes, on SQLite and the in-memory store, with the clock set and the
/// messages in the dev outbox of a directory of its own; failures lock after three.
struct Kit {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    settings: Settings,
    clock: Clock,
    db: Db,
    eph: Ephemeral,
    audit: Audit,
    worker: AuditWorker,
    notifier: Notifier,
    pages: Pages,
    hasher: PasswordHasher,
    told: Told,
}

impl Kit {
    async fn new() -> Kit {
        let dir = tempfile::tempdir().expect("a directory");
        let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
        std::fs::create_dir_all(&data).expect("the data directory");
        let file = dir.path().join("vhod.toml");
        let toml = format!(
            "dev = true\ndata_dir = {data:?}\nkeys_dir = {keys:?}\nlockout_threshold = 3\n\
             login_delay_ms = 1\nprofile_reauth_seconds = 300\n"
        );
        std::fs::write(&file, toml).expect("settings");
        let settings = Settings::load(Some(&file)).expect("settings load");
        let clock = Clock::at(1_800_000_000);
        let (db_dir, db) = crate::store::sql::test_db().await;
        let db = db.with_clock(clock.clone());
        let (audit, worker) = Audit::start(db.clone());
        let notifier = Notifier::new(&settings, reqwest::Client::new()).expect("outbox");
        let hasher = PasswordHasher::new(HasherLimits {
            slots: 1,
            sign_in_queue: 4,
            sign_in_reserve: 0,
            other_queue: 4,
        })
        .expect("hasher");
        Kit {
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
            told: Told::default(),
        }
    }

    fn profile(&self) -> Profile<'_> {
        Profile {
            db: &self.db,
            eph: &self.eph,
            proofs: Proofs {
                eph: &self.eph,
                notifier: &self.notifier,
                audit: &self.audit,
                settings: &self.settings,
                pages: &self.pages,
            },
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            lock_notice: &self.told,
        }
    }

    /// An active account "ivan" with PHONE and EMAIL confirmed and PASSWORD.
    async fn ivan(&self) -> Account {
        self.person("ivan", &[], Some(PHONE), Some(EMAIL)).await
    }

    /// An active account with PASSWORD, of `roles`, its contacts confirmed.
    async fn person(
        &self,
        username: &str,
        roles: &[&str],
        phone: Option<&str>,
        email: Option<&str>,
    ) -> Account {
        let hash = self.hasher.hash(PASSWORD).await.expect("hash");
        let new = NewAccount {
            username: username.into(),
            password_hash: Some(hash),
            phone: phone.map(Into::into),
            email: email.map(Into::into),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            verified: true,
            ..NewAccount::default()
        };
        account::create(&self.db, new).await.expect("an account")
    }

    /// An SSO session of `acc` signed in now with a password; its sid.
    async fn signed_in(&self, acc: &Account) -> String {
        let who = Authenticated {
            account_id: acc.id.clone(),
            facts: AuthFacts {
                auth_time: self.clock.now(),
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: "password",
        };
        let s = session::create(&self.db, &who, 3600)
            .await
            .expect("a session");
        s.sid
    }

    /// The body of the last message the outbox has for `to`.
    fn last_to(&self, to: &str) -> Option<String> {
        let all = read_outbox(&self.settings.data_dir).expect("the outbox");
        all.into_iter().rev().find(|m| m.to == to).map(|m| m.body)
    }

    fn code_to(&self, to: &str) -> String {
        let body = self.last_to(to).expect("an SMS");
        let at = body.find(|c: char| c.is_ascii_digit()).expect("a code");
        body[at..at + 6].to_string()
    }

    fn token_to(&self, to: &str) -> String {
        let body = self.last_to(to).expect("an email");
        let at = body.find("token=").expect("a link") + "token=".len();
        body[at..]
            .split_whitespace()
            .next()
            .expect("a token")
            .into()
    }

    /// Stops the audit writer: every event, in order.
    async fn audited(self) -> Vec<StoredEvent> {
        self.worker.finish().await;
        self.db.audit_log().after(0, 1000).await.expect("the log")
    }
}

fn meta() -> RequestMeta {
    RequestMeta {
        ip: "192.0.2.10".into(),
        user_agent: None,
    }
}

fn reasons(events: &[StoredEvent], kind: Kind) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter(|e| e.kind == kind.as_str())
        .map(|e| (e.outcome.clone(), e.reason.clone()))
        .collect()
}

fn failure(reason: &str) -> (String, Option<String>) {
    ("failure".into(), Some(reason.into()))
}

/// The page opens to an active SSO session strong enough for its account, until it expires;
/// a contact change needs its sign-in, or the password entered again in it, no older than
/// the setting.
#[tokio::test]
async fn the_profile_opens_to_a_strong_enough_session_and_presence_ages() {
    let kit = Kit::new().await;
    let p = kit.profile();
    let ivan = kit.ivan().await;
    let petr = kit.person("petr", &["employee"], None, None).await;
    let sid = kit.signed_in(&ivan).await;
    let employee = kit.signed_in(&petr).await;

    assert!(matches!(p.signed_in(None).await, Ok(Access::NotSignedIn)));
    let opened = p.signed_in(Some(&sid)).await;
    assert!(
        matches!(&opened, Ok(Access::SignedIn(a)) if a.id == ivan.id),
        "{opened:?}"
    );
    let weak = p.signed_in(Some(&employee)).await;
    assert!(matches!(weak, Ok(Access::NeedsAcr("high"))), "{weak:?}");

    assert!(p.recently_proven(&sid, None).await.expect("read"));
    kit.clock.advance(301);
    assert!(
        !p.recently_proven(&sid, None).await.expect("read"),
        "too old"
    );
    let mark = |sid: &str| Reentered {
        sid: sid.into(),
        at: kit.clock.now(),
    };
    let here = p.recently_proven(&sid, Some(mark(&sid))).await;
    assert!(here.expect("read"), "entered again in this session");
    let other = p.recently_proven(&sid, Some(mark("another"))).await;
    assert!(
        !other.expect("read"),
        "another session's mark proves nothing"
    );

    kit.clock.advance(3600);
    assert!(
        matches!(p.signed_in(Some(&sid)).await, Ok(Access::NotSignedIn)),
        "expired"
    );
}

/// The password entered again is checked like a login: an employee signs in afresh instead,
/// wrong answers are counted until the account locks (its owner told once), and then not
/// even the right one is checked.
#[tokio::test]
async fn the_password_entered_again_is_checked_like_a_login() {
    let kit = Kit::new().await;
    let p = kit.profile();
    let m = meta();
    let ivan = kit.ivan().await;
    let petr = kit.person("petr", &["employee"], None, None).await;

    let fresh = p.reprove(&m, Lang::Ru, &petr, PASSWORD).await;
    assert!(
        matches!(fresh, Err(PresenceError::SignInAgain { need: Acr::High })),
        "{fresh:?}"
    );
    let empty = p.reprove(&m, Lang::Ru, &ivan, "").await;
    assert!(
        matches!(empty, Err(PresenceError::PasswordNeeded)),
        "{empty:?}"
    );
    assert_eq!(
        p.reprove(&m, Lang::Ru, &ivan, PASSWORD).await.ok(),
        Some(kit.clock.now())
    );
    p.reproved(&m, &ivan).await.expect("audited");

    for _ in 0..3 {
        let wrong = p.reprove(&m, Lang::Ru, &ivan, "not it at all").await;
        assert!(
            matches!(wrong, Err(PresenceError::WrongPassword)),
            "{wrong:?}"
        );
    }
    assert_eq!(
        *kit.told.0.lock().expect("unpoisoned"),
        vec![ivan.id.clone()]
    );
    let locked = p.reprove(&m, Lang::Ru, &ivan, PASSWORD).await;
    assert!(matches!(locked, Err(PresenceError::Locked)), "{locked:?}");

    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::ProfileReauth),
        vec![
            ("success".into(), None),
            failure("wrong_password"),
            failure("wrong_password"),
            failure("wrong_password"),
            failure("account_locked"),
        ]
    );
}

/// A new number: refused when it is no number or the account's own; otherwise a code to it,
/// which makes it the account's and tells the old number; a number confirmed for another
/// account meanwhile is refused at the code.
#[tokio::test]
async fn a_new_number_is_the_accounts_once_its_code_is_entered() {
    let kit = Kit::new().await;
    let p = kit.profile();
    let m = meta();
    let ivan = kit.ivan().await;

    let bad = p.send_phone_code(&m, Lang::Ru, &ivan, "12").await;
    assert!(matches!(bad, Err(ChangeError::InvalidPhone(_))), "{bad:?}");
    let same = p
        .send_phone_code(&m, Lang::Ru, &ivan, "8 029 123-45-67")
        .await;
    assert!(matches!(same, Err(ChangeError::SamePhone)), "{same:?}");
    let sent = p.send_phone_code(&m, Lang::Ru, &ivan, NEW_PHONE).await;
    assert_eq!(
        sent.ok().map(|n| n.as_str().to_string()),
        Some(NEW_PHONE.into())
    );
    let code = kit.code_to(NEW_PHONE);
    let other = if code == "000000" { "111111" } else { "000000" };
    let wrong = p.confirm_phone(&m, Lang::Ru, &ivan, other).await;
    assert!(
        matches!(wrong, Err(ChangeError::Code(OtpError::Wrong { .. }))),
        "{wrong:?}"
    );
    let now = p
        .confirm_phone(&m, Lang::Ru, &ivan, &code)
        .await
        .expect("changed");
    assert_eq!(now.phone.as_deref(), Some(NEW_PHONE));
    assert!(now.phone_verified);
    let told = kit.last_to(PHONE).expect("the old number told");
    assert!(told.contains(&PhoneNumber::parse(NEW_PHONE).expect("a number").masked()));

    // A number that another account confirms before the code is entered.
    let anna = kit.person("anna", &[], None, None).await;
    let third = "+375331112233";
    assert!(p.send_phone_code(&m, Lang::Ru, &anna, third).await.is_ok());
    let code = kit.code_to(third);
    kit.person("olga", &[], Some(third), None).await;
    let taken = p.confirm_phone(&m, Lang::Ru, &anna, &code).await;
    assert!(matches!(taken, Err(ChangeError::Taken)), "{taken:?}");

    let events = kit.audited().await;
    let changes = reasons(&events, Kind::ChangePhone);
    assert_eq!(changes.last(), Some(&failure("taken")));
    assert!(changes.contains(&("success".into(), None)));
}

/// A new address: a link to it, which makes it the account's once and tells the old one; a
/// token that stands for nothing and a registration's link (the address already the account's)
/// change nothing. The notifications choice is kept and audited.
#[tokio::test]
async fn a_new_address_is_the_accounts_once_its_link_is_opened() {
    let kit = Kit::new().await;
    let p = kit.profile();
    let m = meta();
    let mut ivan = kit.ivan().await;

    let bad = p
        .send_email_link(&m, Lang::Ru, &ivan, "not an address")
        .await;
    assert!(matches!(bad, Err(ChangeError::InvalidEmail(_))), "{bad:?}");
    let same = p
        .send_email_link(&m, Lang::Ru, &ivan, "IVAN@example.by")
        .await;
    assert!(matches!(same, Err(ChangeError::SameEmail)), "{same:?}");
    let new = "ivan@example.com";
    assert!(p.send_email_link(&m, Lang::Ru, &ivan, new).await.is_ok());
    let token = kit.token_to(new);
    let link = p.take_link(&token).await.expect("read");
    assert!(link.is_some());
    p.confirm_email(&m, Lang::Ru, link).await.expect("changed");
    let now = account::find_by_id(&kit.db, &ivan.id).await.expect("read");
    assert_eq!(now.and_then(|a| a.email).as_deref(), Some(new));
    assert!(kit.last_to(EMAIL).is_some(), "the old address told");
    let again = p.take_link(&token).await.expect("read");
    let used = p.confirm_email(&m, Lang::Ru, again).await;
    assert!(matches!(used, Err(LinkError::Invalid)), "{used:?}");

    let registration = EmailLink {
        account_id: ivan.id.clone(),
        email: new.into(),
        purpose: LinkPurpose::Confirm,
    };
    let same = p.confirm_email(&m, Lang::Ru, Some(registration)).await;
    assert!(matches!(same, Err(LinkError::Invalid)), "{same:?}");

    p.set_notifications(&m, &mut ivan, true)
        .await
        .expect("saved");
    assert!(ivan.notify_sms);
    let stored = account::find_by_id(&kit.db, &ivan.id).await.expect("read");
    assert_eq!(stored.map(|a| a.notify_sms), Some(true));

    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::ChangeEmail),
        vec![
            ("success".into(), None),
            failure("invalid_link"),
            failure("same_address"),
        ]
    );
    assert_eq!(
        reasons(&events, Kind::ProfileNotifications),
        vec![("success".into(), None)]
    );
}
