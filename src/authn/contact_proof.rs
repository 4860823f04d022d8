//! Proving control of a phone number (a code by SMS) or an email address (a link by email):
//! budgets checked, the secret issued, the message handed to its provider, and every step
//! audited, the provider's answer too. Remote providers are answered in the background (see
//! [`deliver`]), so the page never waits on them: a person who gets nothing can ask again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::otp::{self, OtpError, Purpose};
use super::throttle::{self, SmsRefused};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::config::Settings;
use crate::identity::contact::PhoneNumber;
use crate::notify::{Message, Notifier};
use crate::store::ephemeral::{Ephemeral, Key, keys};
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::pages::Pages;
use crate::web::sms::{self, CodeFor};
use crate::{secrets, store::StoreError};

/// What proving a contact needs: the ephemeral store (codes, links, budgets), the messengers,
/// the audit sink, the settings (limits, addresses) and the deployment's name in messages.
#[derive(Clone, Copy)]
pub struct Proofs<'a> {
    pub eph: &'a Ephemeral,
    pub notifier: &'a Notifier,
    pub audit: &'a Audit,
    pub settings: &'a Settings,
    pub pages: &'a Pages,
}

/// Why a code or link was not sent; each has a message for the person.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Otp(#[from] OtpError),
    #[error(transparent)]
    Limit(#[from] SmsRefused),
    #[error("the provider did not take the message")]
    Failed,
    #[error("storage is unavailable")]
    Store,
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure while sending");
        SendError::Store
    }
}

impl SendError {
    pub fn message_key(&self) -> &'static str {
        match self {
            SendError::Otp(e) => e.message_key(),
            SendError::Limit(_) => "sms_limit",
            SendError::Failed => "send_failed",
            SendError::Store => "server_error",
        }
    }

    /// The audit reason.
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Otp(e) => e.reason(),
            SendError::Limit(l) => l.reason(),
            SendError::Failed => "provider_failed",
            SendError::Store => "store_unavailable",
        }
    }
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::Phone => "confirm_phone",
        Purpose::Recovery => "recovery",
    }
}

/// Sends a fresh code to `phone` for what it confirms, on behalf of account `subject` (or, when
/// `to` is another account that has confirmed the number, tells that account's owner instead).
pub async fn send_code(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    lang: Lang,
    code_for: CodeFor,
    subject: &str,
    phone: &PhoneNumber,
    to: Recipient<'_>,
) -> Result<(), SendError> {
    send_code_with(
        proofs,
        meta,
        lang,
        code_for,
        subject,
        phone,
        Budget::All,
        to,
    )
    .await
}

/// Who a proof goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<'a> {
    /// The contact being proved.
    Contact,
    /// Another account (`owner`) has confirmed this contact: its owner is told, at most once a
    /// day, that someone tried to register with it or to add it to another account, and no
    /// code or link reaches anyone. For the person asking, everything else is as with
    /// [`Recipient::Contact`]: the same budgets, waits and caps are taken, and the same answers
    /// given, so the answer does not tell that the contact is registered.
    Owner(&'a str),
}

impl<'a> Recipient<'a> {
    pub fn of(owner: Option<&'a str>) -> Recipient<'a> {
        owner.map_or(Recipient::Contact, Recipient::Owner)
    }
}

/// What the owner of a contact is told someone tried: its notice texts and audit kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// A registration with the contact.
    Registration,
    /// Adding the contact to another account on its profile page.
    Change,
}

impl Attempt {
    fn of(code_for: CodeFor) -> Attempt {
        match code_for {
            CodeFor::PhoneChange => Attempt::Change,
            CodeFor::Registration | CodeFor::Recovery => Attempt::Registration,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Attempt::Registration => "registration_attempt",
            Attempt::Change => "contact_attempt",
        }
    }

    fn sms_key(self) -> &'static str {
        match self {
            Attempt::Registration => "register_attempt_sms",
            Attempt::Change => "contact_attempt_sms",
        }
    }

    /// (subject, body) of the email.
    fn email_keys(self) -> (&'static str, &'static str) {
        match self {
            Attempt::Registration => ("register_attempt_subject", "register_attempt_email"),
            Attempt::Change => ("contact_attempt_subject", "contact_attempt_email"),
        }
    }
}

/// As [`send_code`], when the caller has already charged the client address's SMS budget
/// (recovery charges it whatever the lookup found, so its answer cannot tell).
pub async fn send_code_ip_charged(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    lang: Lang,
    code_for: CodeFor,
    subject: &str,
    phone: &PhoneNumber,
) -> Result<(), SendError> {
    let (budget, to) = (Budget::RouteOnly, Recipient::Contact);
    send_code_with(proofs, meta, lang, code_for, subject, phone, budget, to).await
}

/// Which SMS budgets a send still has to take from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Budget {
    All,
    /// Only the prefix and global budgets (the caller took the address's, or the send is a
    /// notice to an owner that the address must not be able to suppress).
    RouteOnly,
}

async fn charge(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    phone: &PhoneNumber,
    b: Budget,
) -> Result<(), SendError> {
    let limits = &proofs.settings.limits;
    if b == Budget::All {
        throttle::allow_sms_from(proofs.eph, limits, &meta.ip).await??;
    }
    throttle::allow_sms_to(proofs.eph, limits, phone.prefix()).await??;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn send_code_with(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    lang: Lang,
    code_for: CodeFor,
    subject: &str,
    phone: &PhoneNumber,
    budget: Budget,
    to: Recipient<'_>,
) -> Result<(), SendError> {
    let purpose = code_for.purpose();
    let ev = Event::new(Kind::SmsCode, Outcome::Success)
        .subject(Some(subject))
        .from(meta)
        .details(serde_json::json!({
            "purpose": purpose_name(purpose),
            "to": phone.masked(),
            "confirmed_by_another": matches!(to, Recipient::Owner(_)),
        }));
    let cap = proofs.settings.limits.otp_daily_cap;
    let prepared = async {
        charge(proofs, meta, phone, budget).await?;
        match to {
            Recipient::Contact => {
                let code = otp::issue(proofs.eph, purpose, subject, phone.as_str(), cap).await?;
                let body = sms::code_text(lang, code_for, &proofs.pages.sms_name(lang), &code);
                Ok(Some(Message::sms(phone.as_str(), body)))
            }
            Recipient::Owner(owner) => {
                // A code that reaches nobody (so the next steps answer as usual), with a cap of
                // its own: the owner's own codes are not spent by someone else's attempts.
                otp::issue_decoy(proofs.eph, purpose, subject, phone.as_str(), cap).await?;
                // One such notice a day per number, whatever was attempted.
                if throttle::first_today(proofs.eph, "registration-attempt-sms", phone.as_str())
                    .await?
                {
                    let attempt = Attempt::of(code_for);
                    let text = i18n::text(lang, attempt.sms_key())
                        .replace("{name}", &proofs.pages.sms_name(lang));
                    let msg = Message::sms(phone.as_str(), text);
                    let notice = notice_event(meta, attempt.kind(), owner, "sms");
                    // Its outcome is the notice's own audit event.
                    let _ = deliver(proofs, msg, notice).await;
                }
                Ok(None)
            }
        }
    }
    .await;
    finish(proofs, prepared, ev).await
}

/// After the budgets and the secret: hands the message (if any) to [`deliver`], or audits the
/// reason nothing was sent.
async fn finish(
    proofs: &Proofs<'_>,
    prepared: Result<Option<Message>, SendError>,
    ev: Event,
) -> Result<(), SendError> {
    match prepared {
        Ok(Some(msg)) => deliver(proofs, msg, ev).await,
        Ok(None) => {
            proofs.audit.enqueue(ev).await;
            Ok(())
        }
        Err(e) => {
            proofs.audit.enqueue(outcome(ev, Err(&e))).await;
            Err(e)
        }
    }
}

/// Hands `msg` to its provider and audits `ev` with the outcome.
///
/// A remote provider (Twilio, SMTP) answers after a network round trip, and there is one only
/// when there is someone to write to: waiting for it would let the answer's timing tell
/// whether a login or a contact exists. So those sends go on in the background, and `ev` is
/// written once the provider has answered; the page says the message is on its way (a person
/// who gets nothing can ask again). The dev outbox is a local file, written at once.
async fn deliver(proofs: &Proofs<'_>, msg: Message, ev: Event) -> Result<(), SendError> {
    if proofs.notifier.is_local(msg.channel) {
        let sent = send_now(proofs.notifier, &msg).await;
        proofs
            .audit
            .enqueue(outcome(ev, sent.as_ref().copied()))
            .await;
        return sent;
    }
    let (notifier, audit) = (proofs.notifier.clone(), proofs.audit.clone());
    tokio::spawn(async move {
        let sent = send_now(&notifier, &msg).await;
        audit.enqueue(outcome(ev, sent.as_ref().copied())).await;
    });
    Ok(())
}

async fn send_now(notifier: &crate::notify::Notifier, msg: &Message) -> Result<(), SendError> {
    // The notifier logs the provider's answer (never the body).
    notifier.send(msg).await.map_err(|_| SendError::Failed)
}

/// `ev` with the outcome of its send.
fn outcome(mut ev: Event, result: Result<(), &SendError>) -> Event {
    if let Err(e) = result {
        ev.outcome = Outcome::Failure;
        ev = ev.reason(e);
    }
    ev
}

/// A notice by SMS (not a code) to the owner of an account, audited as `notice` with its
/// `kind` ("account_locked"). It takes from the operator prefix's and the global budgets, not
/// from the address of whoever caused it: a guesser who has spent their own address's budget
/// must not thereby keep the owner from being warned (such notices are bounded per account
/// and day by their caller).
pub async fn send_notice_sms(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    kind: &'static str,
    subject: &str,
    phone: &PhoneNumber,
    text: &str,
) -> Result<(), SendError> {
    let ev = notice_event(meta, kind, subject, "sms");
    let prepared = charge(proofs, meta, phone, Budget::RouteOnly)
        .await
        .map(|()| Some(Message::sms(phone.as_str(), text.to_string())));
    finish(proofs, prepared, ev).await
}

/// A notice by email (not a link), audited as `notice` with its `kind`.
pub async fn send_notice_email(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    kind: &'static str,
    subject: &str,
    email: &str,
    texts: (&str, &str),
) -> Result<(), SendError> {
    let msg = Message::email(email, texts.0, texts.1.to_string());
    deliver(proofs, msg, notice_event(meta, kind, subject, "email")).await
}

fn notice_event(meta: &RequestMeta, kind: &'static str, subject: &str, channel: &str) -> Event {
    Event::new(Kind::Notice, Outcome::Success)
        .subject(Some(subject))
        .method(channel)
        .from(meta)
        .details(serde_json::json!({"kind": kind}))
}

/// What an emailed link stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkPurpose {
    /// Confirm the address (registration, change of address).
    Confirm,
    /// Reset a forgotten password.
    Recovery,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Confirm => "confirm",
            LinkPurpose::Recovery => "recovery",
        }
    }

    pub fn ttl(self) -> Duration {
        match self {
            LinkPurpose::Confirm => Duration::from_secs(86_400),
            LinkPurpose::Recovery => Duration::from_secs(900),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailLink {
    pub account_id: String,
    pub email: String,
    pub purpose: LinkPurpose,
}

fn link_key(purpose: LinkPurpose, token: &str) -> Key {
    keys::email_link(purpose.as_str(), token)
}

/// What an emailed link is for; each has its own page and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFor {
    /// The address given at registration.
    Registration,
    /// A new address on the profile page.
    EmailChange,
    /// Resetting a forgotten password.
    Recovery,
}

impl LinkFor {
    fn purpose(self) -> LinkPurpose {
        match self {
            LinkFor::Registration | LinkFor::EmailChange => LinkPurpose::Confirm,
            LinkFor::Recovery => LinkPurpose::Recovery,
        }
    }

    fn path(self) -> &'static str {
        match self {
            LinkFor::Registration => "/register/email",
            LinkFor::EmailChange => "/profile/email/confirm",
            LinkFor::Recovery => "/forgot/email",
        }
    }

    /// (subject, body) of the email; the body has a `{link}`.
    fn texts(self) -> (&'static str, &'static str) {
        match self {
            LinkFor::Registration => ("email_confirm_subject", "email_confirm_body"),
            LinkFor::EmailChange => ("email_change_subject", "email_change_body"),
            LinkFor::Recovery => ("recovery_email_subject", "recovery_email_body"),
        }
    }

    fn attempt(self) -> Attempt {
        match self {
            LinkFor::EmailChange => Attempt::Change,
            LinkFor::Registration | LinkFor::Recovery => Attempt::Registration,
        }
    }
}

/// Emails a single-use link (`path?token=…`) to `email` for account `account_id`; only the
/// token's hash is stored. When `to` is another account that has confirmed the address, its
/// owner is told instead (see [`Recipient::Owner`]).
pub async fn send_link(
    proofs: &Proofs<'_>,
    meta: &RequestMeta,
    lang: Lang,
    what: LinkFor,
    account_id: &str,
    email: &str,
    to: Recipient<'_>,
) -> Result<(), SendError> {
    let purpose = what.purpose();
    let ev = Event::new(Kind::EmailLink, Outcome::Success)
        .subject(Some(account_id))
        .from(meta)
        .details(serde_json::json!({
            "purpose": purpose.as_str(),
            "confirmed_by_another": matches!(to, Recipient::Owner(_)),
        }));
    let prepared = async {
        // As with SMS codes: at most one email of a kind per account and minute.
        let wait = keys::email_wait(purpose.as_str(), account_id);
        if !proofs
            .eph
            .put_if_absent(&wait, b"1", otp::RESEND_INTERVAL)
            .await?
        {
            return Err(SendError::Otp(OtpError::TooSoon));
        }
        if let Recipient::Owner(owner) = to {
            // One such notice a day per address, whatever was attempted.
            if throttle::first_today(proofs.eph, "registration-attempt-email", email).await? {
                let attempt = what.attempt();
                let (subject, body) = attempt.email_keys();
                let msg = Message::email(
                    email,
                    i18n::text(lang, subject),
                    i18n::text(lang, body).to_string(),
                );
                let notice = notice_event(meta, attempt.kind(), owner, "email");
                // Its outcome is the notice's own audit event.
                let _ = deliver(proofs, msg, notice).await;
            }
            return Ok(None);
        }
        let token = secrets::random_token();
        let link = EmailLink {
            account_id: account_id.to_string(),
            email: email.to_string(),
            purpose,
        };
        proofs
            .eph
            .put_json(&link_key(purpose, &token), &link, purpose.ttl())
            .await?;
        let url = format!("{}?token={token}", proofs.settings.endpoint(what.path()));
        let (subject, body) = what.texts();
        let body = i18n::text(lang, body).replace("{link}", &url);
        Ok(Some(Message::email(email, i18n::text(lang, subject), body)))
    }
    .await;
    finish(proofs, prepared, ev).await
}

/// Reads a link's token without using it up (to show a form).
pub async fn peek_link(
    proofs: &Proofs<'_>,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<EmailLink>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    proofs.eph.get_json(&link_key(purpose, token)).await
}

/// Uses a link's token up: of two concurrent uses exactly one succeeds.
pub async fn take_link(
    proofs: &Proofs<'_>,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<EmailLink>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    proofs.eph.take_json(&link_key(purpose, token)).await
}

impl crate::audit::ReasonCode for SendError {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

#[cfg(test)]
mod tests {
    use crate::web::i18n::{self, Lang};
    use crate::web::sms::fits_one_segment;

    #[test]
    fn the_attempt_notices_fit_one_sms_segment() {
        for lang in [Lang::Ru, Lang::Be, Lang::En] {
            for attempt in [super::Attempt::Registration, super::Attempt::Change] {
                let text = i18n::text(lang, attempt.sms_key())
                    .replace("{name}", i18n::text(lang, "sms_name"));
                assert!(fits_one_segment(&text), "{lang:?}: {text}");
            }
        }
    }
}
