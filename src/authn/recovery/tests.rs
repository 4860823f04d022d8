//! The recovery service's decisions, without an HTTP server: SQLite, the in-memory store, a
//! set clock and the dev outbox.

use std::sync::Mutex;

use super::*;
use crate::authn::testkit::{EMAIL, Ground, PHONE, failure, from, reasons};

const GOOD: &str = "вясновы дождж над Свіслаччу";

/// The sessions a reset ended, as their clients would be told.
#[derive(Default)]
struct Told(Mutex<Vec<(String, String)>>);

impl EndedSessions for Told {
    fn ended(&self, sid: String, account_id: String) {
        self.0.lock().expect("unpoisoned").push((sid, account_id));
    }
}

type Kit = Ground<Told>;

impl Kit {
    fn recovery(&self) -> Recovery<'_> {
        Recovery {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
            ended: &self.told,
        }
    }
}

/// A login that names nobody, a pending registration whose time is up, and an account
/// without a confirmed phone all get the code step, with a decoy that answers as a code
/// does; only the audit trail tells them apart.
#[tokio::test]
async fn a_login_without_a_phone_to_send_to_meets_a_decoy() {
    let kit = Kit::new("").await;
    let r = kit.recovery();
    let meta = from("192.0.2.1");
    let pending = kit.person("olga", &[], Some(PHONE), None, false).await;

    let asked = r.request(&meta, Lang::Ru, "nobody", Channel::Sms).await;
    let Ok(Requested::CodeStep { subject }) = asked else {
        panic!("{asked:?}")
    };
    assert!(subject.starts_with("unknown:"), "{subject}");
    let again = r.request(&meta, Lang::Ru, "Nobody", Channel::Sms).await;
    assert_eq!(
        again.ok(),
        Some(Requested::CodeStep {
            subject: subject.clone()
        }),
        "the same name, the resend wait taken in silence"
    );
    let tried = r
        .reset_by_code(&meta, Lang::Ru, &subject, "123456", GOOD)
        .await;
    assert!(
        matches!(
            tried,
            Err(ResetError::Code(OtpError::Wrong { attempts_left: 4 }))
        ),
        "{tried:?}"
    );

    let asked = r.request(&meta, Lang::Ru, "olga", Channel::Sms).await;
    assert_eq!(
        asked.ok(),
        Some(Requested::CodeStep {
            subject: pending.id.clone()
        })
    );
    kit.clock
        .advance(kit.settings.limits.pending_account_ttl as i64 + 1);
    let asked = r.request(&meta, Lang::Ru, "olga", Channel::Sms).await;
    let Ok(Requested::CodeStep { subject }) = asked else {
        panic!("{asked:?}")
    };
    assert!(subject.starts_with("unknown:"), "expired: nobody");
    let by_email = r
        .request(&meta, Lang::Ru, "x@example.by", Channel::Email)
        .await;
    assert_eq!(by_email.ok(), Some(Requested::LinkAnswered));
    assert!(kit.last_to(PHONE).is_none(), "no message to anyone");

    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::RecoveryRequest),
        vec![
            failure("unknown_account"),
            failure("unknown_account"),
            failure("no_verified_phone"),
            failure("unknown_account"),
            failure("unknown_account"),
        ]
    );
}

/// The code step: a password refused for its length keeps the code unchecked, one refused
/// for the account's own data only after the code is proven (the code staying valid), and
/// the reset ends every session (their clients told), lifts the lock and tells the email.
#[tokio::test]
async fn a_code_resets_the_password_once_and_ends_every_session() {
    let kit = Kit::new("").await;
    let r = kit.recovery();
    let meta = from("192.0.2.2");
    let ivan = kit.ivan().await;
    let sid = kit.signed_in(&ivan).await;
    let key = throttle::LoginKey::of("ivan");
    for _ in 0..kit.settings.limits.lockout_threshold {
        throttle::record_login_failure(
            &kit.eph,
            &kit.settings.limits,
            &key,
            Some(&ivan.id),
            "198.51.100.9",
        )
        .await
        .expect("counted");
    }
    assert!(
        throttle::account_locked(&kit.eph, &ivan.id)
            .await
            .expect("read")
    );

    let asked = r
        .request(&meta, Lang::Ru, "+375 29 123-45-67", Channel::Sms)
        .await;
    assert_eq!(
        asked.ok(),
        Some(Requested::CodeStep {
            subject: ivan.id.clone()
        })
    );
    let code = kit.code_to(PHONE);
    let short = r
        .reset_by_code(&meta, Lang::Ru, &ivan.id, "000000", "short")
        .await;
    assert!(
        matches!(
            short,
            Err(ResetError::WeakPassword(PolicyViolation::TooShort { .. }))
        ),
        "before the code: {short:?}"
    );
    let personal = r
        .reset_by_code(&meta, Lang::Ru, &ivan.id, &code, "ivan-1234567-ivan")
        .await;
    assert!(
        matches!(
            personal,
            Err(ResetError::WeakPassword(PolicyViolation::ContainsPersonal))
        ),
        "{personal:?}"
    );
    let done = r
        .reset_by_code(&meta, Lang::Ru, &ivan.id, &code, GOOD)
        .await;
    assert_eq!(
        done.ok(),
        Some(Done {
            sessions_ended: 1,
            grants_revoked: 0,
            notified: vec!["email"],
        })
    );
    assert_eq!(
        *kit.told.0.lock().expect("unpoisoned"),
        vec![(sid.clone(), ivan.id.clone())]
    );
    assert!(
        !throttle::account_locked(&kit.eph, &ivan.id)
            .await
            .expect("read")
    );
    let stored = account::find_by_id(&kit.db, &ivan.id).await.expect("read");
    let hash = stored.and_then(|a| a.password_hash);
    assert!(
        kit.hasher
            .verify(hash.as_deref(), GOOD)
            .await
            .expect("verified")
    );
    let again = r
        .reset_by_code(&meta, Lang::Ru, &ivan.id, &code, GOOD)
        .await;
    assert!(
        matches!(again, Err(ResetError::Code(OtpError::Expired))),
        "{again:?}"
    );

    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::PasswordReset),
        vec![
            failure("weak_password"),
            failure("weak_password"),
            ("success".into(), None),
            failure("code_expired"),
        ]
    );
}

/// A code proves the number it went to: after a change of number it resets nothing.
/// The address budgets refuse before anything is sent or checked, and a reset refused by
/// one leaves the proof usable.
#[tokio::test]
async fn budgets_and_a_changed_number_refuse_a_reset() {
    let kit = Kit::new("sms_per_ip_hour = 1\nreset_per_ip_hour = 1\n").await;
    let r = kit.recovery();
    let meta = from("192.0.2.3");
    let ivan = kit.ivan().await;
    assert!(
        r.request(&meta, Lang::Ru, "ivan", Channel::Sms)
            .await
            .is_ok()
    );
    let refused = r.request(&meta, Lang::Ru, "ivan", Channel::Sms).await;
    assert!(
        matches!(refused, Err(RequestError::SmsLimit)),
        "{refused:?}"
    );
    let code = kit.code_to(PHONE);

    assert!(
        throttle::allow_per_ip(&kit.eph, "reset", &meta.ip, 1)
            .await
            .expect("taken")
    );
    let limited = r
        .reset_by_code(&meta, Lang::Ru, &ivan.id, &code, GOOD)
        .await;
    assert!(
        matches!(limited, Err(ResetError::RateLimited)),
        "{limited:?}"
    );

    account::change_phone(&kit.db, &ivan.id, "+375297654321")
        .await
        .expect("changed");
    let elsewhere = from("192.0.2.4");
    let changed = r
        .reset_by_code(&elsewhere, Lang::Ru, &ivan.id, &code, GOOD)
        .await;
    assert!(
        matches!(changed, Err(ResetError::PhoneChanged)),
        "{changed:?}"
    );
    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::PasswordReset),
        vec![failure("rate_limited"), failure("phone_changed")]
    );
    assert_eq!(
        reasons(&events, Kind::RecoveryRequest),
        vec![("success".into(), None), failure("sms_limit_ip")]
    );
}

/// An emailed link: readable until used, usable once, kept by a refused password, and
/// worth nothing once the address it went to is no longer the account's.
#[tokio::test]
async fn an_emailed_link_is_used_once_and_only_for_its_address() {
    let kit = Kit::new("").await;
    let r = kit.recovery();
    let meta = from("192.0.2.5");
    kit.ivan().await;
    let asked = r
        .request(&meta, Lang::Ru, "IVAN@example.by", Channel::Email)
        .await;
    assert_eq!(asked.ok(), Some(Requested::LinkAnswered));
    let token = kit.token_to(EMAIL);
    assert!(r.link_usable(&token).await.expect("read"));
    let weak = r
        .reset_by_link(&meta, Lang::Ru, &token, "ivan@example.by!")
        .await;
    assert!(matches!(weak, Err(ResetError::WeakPassword(_))), "{weak:?}");
    let done = r.reset_by_link(&meta, Lang::Ru, &token, GOOD).await;
    assert_eq!(done.ok().map(|d| d.notified), Some(vec!["sms"]));
    assert!(!r.link_usable(&token).await.expect("read"), "used up");
    let again = r.reset_by_link(&meta, Lang::Ru, &token, GOOD).await;
    assert!(matches!(again, Err(ResetError::InvalidLink)), "{again:?}");

    let petr = kit
        .person("petr", &[], None, Some("petr@example.by"), true)
        .await;
    assert!(
        r.request(&meta, Lang::Ru, "petr", Channel::Email)
            .await
            .is_ok()
    );
    let token = kit.token_to("petr@example.by");
    account::change_email(&kit.db, &petr.id, "petr@example.com")
        .await
        .expect("changed");
    let moved = r.reset_by_link(&meta, Lang::Ru, &token, GOOD).await;
    assert!(matches!(moved, Err(ResetError::InvalidLink)), "{moved:?}");
    assert!(!r.link_usable(&token).await.expect("read"), "taken");
    let events = kit.audited().await;
    assert_eq!(
        reasons(&events, Kind::PasswordReset),
        vec![
            failure("weak_password"),
            ("success".into(), None),
            failure("invalid_link"),
            failure("email_changed"),
        ]
    );
}
