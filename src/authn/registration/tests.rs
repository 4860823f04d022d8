//! The registration service's decisions, on SQLite, the in-memory ephemeral store, the dev
//! outbox and a set clock; no HTTP server.

use super::*;
use crate::authn::testkit::{Ground, from};
use crate::store::audit_log::StoredEvent;

/// How long a registration may stay unconfirmed in these tests.
const TTL: i64 = 3_600;

impl Ground {
    fn registrar(&self) -> Registrar<'_> {
        Registrar {
            db: &self.db,
            eph: &self.eph,
            proofs: self.proofs(),
            hasher: &self.hasher,
            audit: &self.audit,
            clock: &self.clock,
            settings: &self.settings,
        }
    }
}

/// Registrations kept unconfirmed for TTL, and `extra` settings lines.
async fn world(extra: &str) -> Ground {
    Ground::new(&format!("pending_account_ttl = {TTL}\n{extra}")).await
}

fn meta() -> RequestMeta {
    from("192.0.2.7")
}

/// A complete form; `set` overrides its fields.
fn form(set: &[(&str, &str)]) -> Params {
    let mut fields = vec![
        ("family_name", "Иванова"),
        ("given_name", "Алеся"),
        ("middle_name", ""),
        ("username", "Alesya.I"),
        ("phone", "+375 29 123-45-67"),
        ("email", "alesya@example.by"),
        ("password", "Vetla-kryvi-2024!"),
        ("consent", "on"),
    ];
    for (k, v) in set {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = v,
            None => fields.push((k, v)),
        }
    }
    let query = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencoding(v)))
        .collect::<Vec<_>>()
        .join("&");
    Params::parse(query.as_bytes()).expect("a form")
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn registered(w: &Ground, set: &[(&str, &str)]) -> Result<Registered, Refusal> {
    let r = w.registrar();
    let reg = r.validate(&form(set), Lang::En).expect("a valid form");
    r.register(reg, &meta()).await
}

fn count(events: &[StoredEvent], kind: Kind, outcome: &str, reason: Option<&str>) -> usize {
    events
        .iter()
        .filter(|e| e.kind == kind.as_str() && e.outcome == outcome)
        .filter(|e| e.reason.as_deref() == reason)
        .count()
}

#[test]
fn names_are_letters() {
    assert!(valid_name("Иванов-Петров", true));
    assert!(valid_name("Ў'ясёва", true));
    assert!(valid_name("O’Neil", true));
    assert!(!valid_name("", true));
    assert!(valid_name("", false));
    assert!(!valid_name("<script>", true));
    assert!(!valid_name("Robert'); DROP TABLE accounts;--", true));
    assert!(!valid_name("---", true));
    assert!(!valid_name(&"я".repeat(101), true));
}

#[test]
fn usernames_are_plain_and_not_phone_numbers() {
    assert!(valid_username("ivan.ivanov"));
    assert!(!valid_username("iv"));
    assert!(!valid_username("Иван"));
    assert!(!valid_username("375291234567"));
    assert!(!valid_username("a b"));
}

/// The form is refused at its first problem, named at its field; a good one is read as the
/// account will be stored (the login lower-cased, an empty patronymic absent).
#[tokio::test]
async fn the_form_is_refused_at_its_field() {
    let w = world("").await;
    let r = w.registrar();
    for (set, at) in [
        (vec![("family_name", "<b>")], "family_name"),
        (vec![("given_name", "")], "given_name"),
        (vec![("middle_name", "42")], "middle_name"),
        (vec![("username", "+375291234567")], "username"),
        (vec![("phone", "12345")], "phone"),
        (vec![("email", "alesya@")], "email"),
        (vec![("password", "short")], "password"),
        // The password may not be the login or a contact.
        (vec![("password", "alesya.i")], "password"),
        (vec![("password", "375291234567")], "password"),
        (vec![("consent", "")], "consent"),
    ] {
        let refused = r.validate(&form(&set), Lang::En).err();
        assert_eq!(refused.map(|e| e.field), Some(at), "{set:?}");
    }
    let reg = r.validate(&form(&[]), Lang::En).expect("valid");
    assert_eq!(reg.username, "alesya.i");
    assert_eq!(reg.phone.as_str(), "+375291234567");
    assert_eq!(reg.middle_name, None);
    assert_eq!(reg.password, "Vetla-kryvi-2024!");
    w.audited().await;
}

/// A registration is stored pending and holds its login name; a second one with it is
/// refused (audited) until the first expires unconfirmed, and then makes way.
#[tokio::test]
async fn a_pending_registration_holds_its_login_until_it_expires() {
    let w = world("").await;
    let first = registered(&w, &[]).await.expect("registered");
    assert!(first.account.is_pending());
    assert_eq!(first.account.roles, vec!["applicant".to_string()]);
    assert!(!first.account.phone_verified && !first.account.email_verified);
    let other = [("phone", "+375291112233"), ("email", "other@example.by")];
    let again = registered(&w, &other).await.err();
    assert!(
        matches!(&again, Some(Refusal::LoginTaken(l)) if l == "alesya.i"),
        "{again:?}"
    );

    w.clock.advance(TTL);
    let r = w.registrar();
    assert!(r.pending(&first.account.id).await.expect("read").is_some());
    w.clock.advance(1);
    assert!(r.pending(&first.account.id).await.expect("read").is_none());
    let second = registered(&w, &other)
        .await
        .expect("the expired one made way");
    let stored = account::find_by_id(&w.db, &first.account.id).await;
    assert!(stored.expect("read").is_none(), "deleted");
    assert_ne!(second.account.id, first.account.id);

    let events = w.audited().await;
    assert_eq!(count(&events, Kind::Registration, "success", None), 2);
    assert_eq!(
        count(&events, Kind::Registration, "failure", Some("taken")),
        1
    );
}

/// Registrations from one address are limited per hour, before any work is done.
#[tokio::test]
async fn registrations_from_one_address_are_limited() {
    let w = world("register_per_ip_hour = 1\n").await;
    registered(&w, &[]).await.expect("the first");
    let set = [("username", "second"), ("phone", "+375291112233")];
    let r = registered(&w, &set).await.err();
    assert!(matches!(r, Some(Refusal::RateLimited)), "{r:?}");
    let events = w.audited().await;
    let limited = count(&events, Kind::Registration, "failure", Some("rate_limited"));
    assert_eq!(limited, 1);
}

/// The code confirms the phone, the link the email; the second of them activates the account.
/// A wrong code, an email asked for again within the minute and a used link are refused.
#[tokio::test]
async fn confirming_both_contacts_activates_the_account() {
    let w = world("").await;
    let r = w.registrar();
    let reg = registered(&w, &[]).await.expect("registered");
    assert_eq!(r.send_proofs(&reg, &meta(), Lang::En).await, None);
    let acc = reg.account;

    let wrong = r.confirm_phone(&acc, "000000", &meta()).await.expect("ok");
    assert!(
        matches!(wrong, PhoneConfirmation::Refused(OtpError::Wrong { .. })),
        "{wrong:?}"
    );
    let code = w.code_to("+375291234567");
    let confirmed = r.confirm_phone(&acc, &code, &meta()).await.expect("ok");
    let PhoneConfirmation::Confirmed(acc) = confirmed else {
        panic!("{confirmed:?}");
    };
    assert!(acc.phone_verified && acc.is_pending());
    let resent = r.resend(&acc, Resend::Sms, &meta(), Lang::En).await;
    assert!(matches!(resent, Ok(Resent::Nothing)), "confirmed already");
    let resent = r.resend(&acc, Resend::Email, &meta(), Lang::En).await;
    assert!(
        matches!(
            resent,
            Ok(Resent::NotSent(SendError::Otp(OtpError::TooSoon)))
        ),
        "one email a minute: {resent:?}"
    );

    let token = w.token_to("alesya@example.by");
    let link = r.take_link(&token).await.expect("read");
    let confirmed = r.confirm_email(link, &meta()).await.expect("ok");
    let EmailConfirmation::Confirmed(acc) = confirmed else {
        panic!("{confirmed:?}");
    };
    assert!(acc.email_verified && acc.is_active());
    let used = r.take_link(&token).await.expect("read");
    assert!(used.is_none(), "single use");
    let again = r.confirm_email(used, &meta()).await.expect("ok");
    assert!(matches!(again, EmailConfirmation::Invalid), "{again:?}");

    let events = w.audited().await;
    let wrong = count(&events, Kind::ConfirmPhone, "failure", Some("wrong_code"));
    assert_eq!(wrong, 1, "{events:?}");
    assert_eq!(count(&events, Kind::ConfirmPhone, "success", None), 1);
    assert_eq!(count(&events, Kind::ConfirmEmail, "success", None), 1);
    let invalid = count(&events, Kind::ConfirmEmail, "failure", Some("invalid_link"));
    assert_eq!(invalid, 1);
    assert_eq!(count(&events, Kind::AccountActivated, "success", None), 1);
}

/// A registration that expired unconfirmed is gone, whatever its link says.
#[tokio::test]
async fn the_link_of_an_expired_registration_does_not_work() {
    let w = world("").await;
    let r = w.registrar();
    let reg = registered(&w, &[]).await.expect("registered");
    assert_eq!(r.send_proofs(&reg, &meta(), Lang::En).await, None);
    w.clock.advance(TTL + 1);
    let link = r.take_link(&w.token_to("alesya@example.by")).await;
    let confirmed = r.confirm_email(link.expect("read"), &meta()).await;
    assert!(
        matches!(confirmed, Ok(EmailConfirmation::Invalid)),
        "{confirmed:?}"
    );
    let stored = account::find_by_id(&w.db, &reg.account.id)
        .await
        .expect("read");
    assert!(!stored.expect("not swept yet").email_verified);
    let events = w.audited().await;
    let expired = count(
        &events,
        Kind::ConfirmEmail,
        "failure",
        Some("registration_expired"),
    );
    assert_eq!(expired, 1);
}

/// Contacts confirmed for another account do not stop a registration, and are not sent a
/// code or link: their owner is told instead, and the answer is the same.
#[tokio::test]
async fn contacts_confirmed_elsewhere_are_told_to_their_owner() {
    let w = world("").await;
    let owner = w
        .person(
            "owner",
            &["applicant"],
            Some("+375291234567"),
            Some("alesya@example.by"),
            true,
        )
        .await;
    let reg = registered(&w, &[]).await.expect("registered all the same");
    assert_eq!(reg.phone_owner.as_deref(), Some(owner.id.as_str()));
    assert_eq!(reg.email_owner.as_deref(), Some(owner.id.as_str()));
    let r = w.registrar();
    assert_eq!(r.send_proofs(&reg, &meta(), Lang::En).await, None);
    let outbox = w.outbox();
    assert!(
        outbox.iter().all(|m| !m.body.contains("token=")
            && !m.body.contains("to confirm your registration")),
        "no code or link: {outbox:?}"
    );
    assert_eq!(outbox.len(), 2, "a notice by each channel: {outbox:?}");
    w.audited().await;
}
