//! The profile service's decisions, without an HTTP server: SQLite, the in-memory store, a set
//! clock and the dev outbox.

use super::*;
use crate::authn::testkit::{EMAIL, Ground, PASSWORD, PHONE, ToldOfLocks, failure, from, reasons};

const NEW_PHONE: &str = "+375297654321";

/// Failures lock after three; a contact change needs a sign-in or password of the last five
/// minutes.
const SETTINGS: &str = "lockout_threshold = 3\nlogin_delay_ms = 1\nprofile_reauth_seconds = 300\n";

type Kit = Ground<ToldOfLocks>;

impl Kit {
    fn profile(&self) -> Profile<'_> {
        Profile {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            lock_notice: &self.told,
            ended: &self.told,
            policies: &self.policies,
        }
    }
}

fn meta() -> RequestMeta {
    from("192.0.2.10")
}

/// The page opens to an active SSO session strong enough for its account, until it expires;
/// a contact change needs its sign-in, or the password entered again in it, no older than
/// the setting.
#[tokio::test]
async fn the_profile_opens_to_a_strong_enough_session_and_presence_ages() {
    let kit = Kit::new(SETTINGS).await;
    let p = kit.profile();
    let ivan = kit.ivan().await;
    let petr = kit.person("petr", &["employee"], None, None, true).await;
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

    assert!(
        p.recently_proven(&sid, None, Presence::Any)
            .await
            .expect("read")
    );
    kit.clock.advance(301);
    assert!(
        !p.recently_proven(&sid, None, Presence::Any)
            .await
            .expect("read"),
        "too old"
    );
    let mark = |sid: &str| Reentered {
        sid: sid.into(),
        at: kit.clock.now(),
    };
    let here = p
        .recently_proven(&sid, Some(mark(&sid)), Presence::Any)
        .await;
    assert!(here.expect("read"), "entered again in this session");
    let other = p
        .recently_proven(&sid, Some(mark("another")), Presence::Any)
        .await;
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
    let kit = Kit::new(SETTINGS).await;
    let p = kit.profile();
    let m = meta();
    let ivan = kit.ivan().await;
    let petr = kit.person("petr", &["employee"], None, None, true).await;

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
    let kit = Kit::new(SETTINGS).await;
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
    let anna = kit.person("anna", &[], None, None, true).await;
    let third = "+375331112233";
    assert!(p.send_phone_code(&m, Lang::Ru, &anna, third).await.is_ok());
    let code = kit.code_to(third);
    kit.person("olga", &[], Some(third), None, true).await;
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
    let kit = Kit::new(SETTINGS).await;
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
