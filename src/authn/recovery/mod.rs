//! "Forgot password": a single-use code by SMS to the confirmed phone, or a single-use link by
//! email to the confirmed address (15 minutes), both stored only as hashes. The answer to a
//! request never tells whether the account exists. A reset ends every SSO session and revokes
//! every grant (refresh and access tokens) of the account, lifts a lockout, and tells the person
//! on their other channels.
//!
//! This is the service: what is decided and changed. What the browser session holds (the
//! account being recovered, the sign-in to continue) and the pages are [`routes`]'.

pub mod routes;

use serde_json::json;

use super::contact_proof::{self, LinkFor, LinkPurpose, Proofs, Recipient, SendError};
use super::otp::{self, OtpError, Purpose};
use super::password::PasswordHasher;
use super::password::policy::{PasswordPolicy, PolicyViolation};
use super::session::EndedSessions;
use super::throttle;
use crate::audit::{Audit, AuditError, Event, Kind, Outcome, Reason, ReasonCode};
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::account::{self, Account};
use crate::identity::contact::{Email, PhoneNumber};
use crate::secrets;
use crate::store::StoreError;
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::sms::CodeFor;

/// What recovery needs: accounts, codes and budgets, the senders of codes and links, the
/// hasher, the audit sink, the time, the limits, and who tells clients of ended sessions.
#[derive(Clone, Copy)]
pub struct Recovery<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub proofs: Proofs<'a>,
    pub hasher: &'a PasswordHasher,
    pub audit: &'a Audit,
    pub clock: &'a Clock,
    pub settings: &'a Settings,
    pub ended: &'a dyn EndedSessions,
}

/// How the person asked to be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    /// The form's choice: email only when asked for by name.
    pub fn of(field: &str) -> Channel {
        if field == "email" {
            Channel::Email
        } else {
            Channel::Sms
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

/// The answer to a request, the same whether the login names an account or not.
#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    /// By email: a link went out if there was a confirmed address to send it to.
    LinkAnswered,
    /// By SMS: the code step follows for `subject` (the account, or the unknown login's own
    /// name), with a code or a decoy waiting for it.
    CodeStep { subject: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no login, or one longer than 254 bytes")]
    BadLogin,
    #[error("the client address's SMS budget is used up")]
    SmsLimit,
    #[error("{0}")]
    Unavailable(String),
}

/// A password reset went through.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub sessions_ended: usize,
    pub grants_revoked: u64,
    /// The other channels the person was told on.
    pub notified: Vec<&'static str>,
}

/// Why a reset did not happen. All but `InvalidLink` and `Unavailable` leave the code or link
/// usable for another try.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("the new password is refused: {0}")]
    WeakPassword(PolicyViolation),
    #[error(transparent)]
    Code(OtpError),
    /// The code went to a number that is no longer the account's.
    #[error("the phone number changed since the code was sent")]
    PhoneChanged,
    #[error("the link is unknown, used, expired or no longer the account's address")]
    InvalidLink,
    #[error("too many resets from this address")]
    RateLimited,
    #[error("the password hasher is busy")]
    Busy,
    #[error("{0}")]
    Unavailable(String),
}

macro_rules! unavailable_from {
    ($($e:ty),*) => {$(
        impl From<$e> for RequestError {
            fn from(e: $e) -> Self {
                RequestError::Unavailable(e.to_string())
            }
        }
        impl From<$e> for ResetError {
            fn from(e: $e) -> Self {
                ResetError::Unavailable(e.to_string())
            }
        }
    )*};
}
unavailable_from!(StoreError, AuditError);

/// Why no code or link went out to an account.
enum Unsent {
    /// No confirmed contact on the channel (or no account): nothing to send to.
    Nowhere(Reason),
    Refused(SendError),
}

/// The personal strings a new password must not contain.
fn personal(acc: &Account) -> Vec<String> {
    let mut out = vec![acc.username.clone()];
    if let Some(p) = acc
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
    {
        let digits: String = p.as_str().chars().filter(char::is_ascii_digit).collect();
        let national = digits.get(3..).unwrap_or("").to_string();
        out.push(digits);
        out.push(national);
    }
    if let Some(e) = acc.email.as_deref().and_then(|e| Email::parse(e).ok()) {
        out.push(e.as_str().to_string());
        out.push(e.local_part().to_string());
    }
    out
}

/// The recovery subject of a login that names no account: stable for the login, never an
/// account id.
fn unknown_subject(login: &str) -> String {
    format!(
        "unknown:{}",
        secrets::token_hash(&account::login_identifier(login))
    )
}

/// What a new password must be, by the deployment's minimum length.
pub fn policy(settings: &Settings) -> PasswordPolicy {
    PasswordPolicy::new(settings.limits.password_min_length)
}

impl Recovery<'_> {
    /// Why `password` may not be the new one; `acc` None checks only what is the same for
    /// every login (length, the common list).
    fn refusal(&self, acc: Option<&Account>, password: &str) -> Option<PolicyViolation> {
        let personal = acc.map(personal).unwrap_or_default();
        let refs: Vec<&str> = personal.iter().map(String::as_str).collect();
        policy(self.settings).check(password, &refs).err()
    }

    /// The account a login, confirmed phone number (any writing) or confirmed email address
    /// (any case) names: an unconfirmed contact names nobody.
    async fn lookup(&self, login: &str) -> Result<Option<Account>, StoreError> {
        let found = if login.contains('@') {
            account::find_by_email(self.db, login).await?
        } else {
            account::find_by_login(self.db, login).await?
        };
        let ttl = self.settings.limits.pending_account_ttl;
        Ok(found.filter(|a| !a.is_expired_pending(ttl, self.clock.now())))
    }

    /// Sends a code or a link if the login names an account; the answer is the same either
    /// way. By SMS, the client address's SMS budget is charged first, whatever the lookup
    /// finds, and only its refusal is told; a code is then sent if there is a confirmed phone
    /// to send it to, and otherwise a decoy code is kept for the next step, which so answers
    /// alike.
    pub async fn request(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        login: &str,
        channel: Channel,
    ) -> Result<Requested, RequestError> {
        if login.is_empty() || login.len() > 254 {
            return Err(RequestError::BadLogin);
        }
        let acc = self.lookup(login).await?;
        let ev = Event::new(Kind::RecoveryRequest, Outcome::Failure)
            .subject(acc.as_ref().map(|a| a.id.clone()))
            .method(channel.as_str())
            .from(meta);
        if channel == Channel::Sms
            && let Err(refused) =
                throttle::allow_sms_from(self.eph, &self.settings.limits, &meta.ip).await?
        {
            self.audit.write(ev.reason(refused)).await?;
            return Err(RequestError::SmsLimit);
        }
        let sent = match &acc {
            Some(a) => self.send_proof(meta, lang, a, channel).await,
            None => Err(Unsent::Nowhere(Reason::UnknownAccount)),
        };
        let ev = match &sent {
            Ok(()) => ev.succeeded(),
            Err(Unsent::Nowhere(reason)) => ev.reason(*reason),
            Err(Unsent::Refused(e)) => ev.reason(e),
        };
        self.audit.write(ev).await?;
        if channel == Channel::Email {
            return Ok(Requested::LinkAnswered);
        }
        // A login that names nobody is recovered under a name of its own, so that asking again
        // meets the same resend wait and daily cap as an account does.
        let subject = acc.map(|a| a.id).unwrap_or_else(|| unknown_subject(login));
        // Without a code on its way (no such account, no confirmed phone, a budget refused it),
        // the next step checks a decoy issued like a code. When the code itself was refused
        // (sent under a minute ago, the daily cap) the code already there stays, as a decoy
        // would.
        if !matches!(sent, Ok(()) | Err(Unsent::Refused(SendError::Otp(_)))) {
            let cap = self.settings.limits.otp_daily_cap;
            match otp::issue_decoy(self.eph, Purpose::Recovery, &subject, &subject, cap).await {
                Ok(()) | Err(OtpError::TooSoon | OtpError::DailyCap) => {}
                Err(e) => return Err(RequestError::Unavailable(e.to_string())),
            }
        }
        Ok(Requested::CodeStep { subject })
    }

    /// The code or link to the account's confirmed contact on `channel`.
    async fn send_proof(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        a: &Account,
        channel: Channel,
    ) -> Result<(), Unsent> {
        let proofs = &self.proofs;
        match channel {
            Channel::Sms => {
                let phone = a
                    .phone
                    .as_deref()
                    .filter(|_| a.phone_verified)
                    .and_then(|p| PhoneNumber::parse(p).ok())
                    .ok_or(Unsent::Nowhere(Reason::NoVerifiedPhone))?;
                let code_for = CodeFor::Recovery;
                contact_proof::send_code_ip_charged(proofs, meta, lang, code_for, &a.id, &phone)
                    .await
            }
            Channel::Email => {
                let email = a
                    .email
                    .as_deref()
                    .filter(|_| a.email_verified)
                    .ok_or(Unsent::Nowhere(Reason::NoVerifiedEmail))?;
                let (what, to) = (LinkFor::Recovery, Recipient::Contact);
                contact_proof::send_link(proofs, meta, lang, what, &a.id, email, to).await
            }
        }
        .map_err(Unsent::Refused)
    }

    /// The SMS code's step: the code sent for `subject` (what the request answered) and the
    /// new password.
    pub async fn reset_by_code(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        subject: &str,
        code: &str,
        password: &str,
    ) -> Result<Done, ResetError> {
        let acc = account::find_by_id(self.db, subject).await?;
        let audited = acc.as_ref().map(|a| a.id.clone());
        let fail = |reason: &dyn ReasonCode| {
            Event::new(Kind::PasswordReset, Outcome::Failure)
                .subject(audited.clone())
                .method("sms")
                .reason(reason)
                .from(meta)
        };
        // Checked before the code, so a refusal does not use it up; but only against what is
        // the same for every login: a refusal for the account's own data would tell that the
        // login names one.
        if let Some(v) = self.refusal(None, password) {
            self.audit.enqueue(fail(&Reason::WeakPassword)).await;
            return Err(ResetError::WeakPassword(v));
        }
        let target = match otp::check(self.eph, Purpose::Recovery, subject, code).await {
            Ok(t) => t,
            Err(e) => {
                self.audit.enqueue(fail(&e)).await;
                return Err(ResetError::Code(e));
            }
        };
        // The code proves the number it was sent to; it must still be the account's number.
        let Some(acc) = acc.filter(|a| a.phone.as_deref() == Some(target.as_str())) else {
            self.audit.enqueue(fail(&Reason::PhoneChanged)).await;
            return Err(ResetError::PhoneChanged);
        };
        // The code is proven: now the account's own data, the code staying valid for a retry.
        if let Some(v) = self.refusal(Some(&acc), password) {
            self.audit.enqueue(fail(&Reason::WeakPassword)).await;
            return Err(ResetError::WeakPassword(v));
        }
        let hash = self.new_hash(meta, &acc, password, Channel::Sms).await?;
        if let Err(e) = otp::consume(self.eph, Purpose::Recovery, subject).await {
            self.audit.enqueue(fail(&e)).await;
            return Err(ResetError::Code(e));
        }
        self.complete(meta, lang, &acc, &hash, Channel::Sms).await
    }

    /// Whether an emailed link can still be used (to show its form); it is only read.
    pub async fn link_usable(&self, token: &str) -> Result<bool, StoreError> {
        let link = contact_proof::peek_link(&self.proofs, LinkPurpose::Recovery, token).await?;
        Ok(link.is_some())
    }

    /// The emailed link's step: its token and the new password; the token is used up.
    pub async fn reset_by_link(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        token: &str,
        password: &str,
    ) -> Result<Done, ResetError> {
        let invalid = |subject: Option<String>, reason: &dyn ReasonCode| {
            Event::new(Kind::PasswordReset, Outcome::Failure)
                .subject(subject)
                .method("email")
                .reason(reason)
                .from(meta)
        };
        let proofs = &self.proofs;
        // Read first: a refused password leaves the link usable.
        let Some(peeked) = contact_proof::peek_link(proofs, LinkPurpose::Recovery, token).await?
        else {
            self.audit
                .enqueue(invalid(None, &Reason::InvalidLink))
                .await;
            return Err(ResetError::InvalidLink);
        };
        let acc = account::find_by_id(self.db, &peeked.account_id).await?;
        // The link proves the address it was sent to; it must still be the account's address.
        let Some(acc) = acc.filter(|a| a.email.as_deref() == Some(peeked.email.as_str())) else {
            let _ = contact_proof::take_link(proofs, LinkPurpose::Recovery, token).await;
            let ev = invalid(Some(peeked.account_id.clone()), &Reason::EmailChanged);
            self.audit.enqueue(ev).await;
            return Err(ResetError::InvalidLink);
        };
        if let Some(v) = self.refusal(Some(&acc), password) {
            let ev = invalid(Some(acc.id.clone()), &Reason::WeakPassword);
            self.audit.enqueue(ev).await;
            return Err(ResetError::WeakPassword(v));
        }
        let hash = self.new_hash(meta, &acc, password, Channel::Email).await?;
        // Of two concurrent uses exactly one gets here with the link (what it stands for was
        // read above; a link never changes).
        if contact_proof::take_link(proofs, LinkPurpose::Recovery, token)
            .await?
            .is_none()
        {
            let ev = invalid(Some(acc.id.clone()), &Reason::InvalidLink);
            self.audit.enqueue(ev).await;
            return Err(ResetError::InvalidLink);
        }
        self.complete(meta, lang, &acc, &hash, Channel::Email).await
    }

    /// The new password's hash, before the code or link is used up: a reset refused here (too
    /// many from this address, the hasher busy) leaves the proof usable for another try.
    async fn new_hash(
        &self,
        meta: &RequestMeta,
        acc: &Account,
        password: &str,
        via: Channel,
    ) -> Result<String, ResetError> {
        let per_hour = self.settings.limits.reset_per_ip_hour;
        if !throttle::allow_per_ip(self.eph, "reset", &meta.ip, per_hour).await? {
            let ev = Event::new(Kind::PasswordReset, Outcome::Failure)
                .subject(Some(&acc.id))
                .method(via.as_str())
                .reason(Reason::RateLimited)
                .from(meta);
            self.audit.enqueue(ev).await;
            return Err(ResetError::RateLimited);
        }
        self.hasher
            .hash(password)
            .await
            .map_err(|_| ResetError::Busy)
    }

    /// Sets the new password (`hash`) and ends everything signed in with the old one.
    async fn complete(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        hash: &str,
        via: Channel,
    ) -> Result<Done, ResetError> {
        // The new password, the end of every session and of every grant: together or not at all.
        let stored = crate::store::units::reset_password(self.db, &acc.id, hash).await;
        let Ok(Some(reset)) = stored else {
            let ev = Event::new(Kind::PasswordReset, Outcome::Failure)
                .subject(Some(&acc.id))
                .method(via.as_str())
                .reason(Reason::StoreFailed)
                .from(meta);
            self.audit.enqueue(ev).await;
            return Err(match stored {
                Err(e) => e.into(),
                Ok(_) => ResetError::Unavailable("the account disappeared".into()),
            });
        };
        let logins: Vec<&str> = std::iter::once(acc.username.as_str())
            .chain(acc.phone.as_deref())
            .collect();
        if let Err(e) = throttle::unlock(self.eph, &acc.id, &logins).await {
            tracing::warn!(error = %e, "could not lift the lockout after a password reset");
        }
        let notified = self.tell_owner(meta, lang, acc, via).await;
        let done = Done {
            sessions_ended: reset.sessions_ended.len(),
            grants_revoked: reset.grants_revoked,
            notified,
        };
        let ev = Event::new(Kind::PasswordReset, Outcome::Success)
            .subject(Some(&acc.id))
            .method(via.as_str())
            .from(meta)
            .details(json!({
                "sessions_ended": done.sessions_ended,
                "grants_revoked": done.grants_revoked,
                "notified": done.notified,
            }));
        self.audit.write(ev).await?;
        for sid in reset.sessions_ended {
            self.ended.ended(sid, acc.id.clone());
        }
        Ok(done)
    }

    /// Tells the person on the channels not used for the reset: if it was not them, they
    /// learn. The channels told.
    async fn tell_owner(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        via: Channel,
    ) -> Vec<&'static str> {
        let text = i18n::text(lang, "password_changed_text");
        let mut notified = Vec::new();
        if via != Channel::Sms
            && let Some(phone) = acc.phone.as_deref().filter(|_| acc.phone_verified)
            && let Ok(phone) = PhoneNumber::parse(phone)
            && contact_proof::send_notice_sms(
                &self.proofs,
                meta,
                "password_changed",
                &acc.id,
                &phone,
                text,
            )
            .await
            .is_ok()
        {
            notified.push("sms");
        }
        if via != Channel::Email
            && let Some(email) = acc.email.as_deref().filter(|_| acc.email_verified)
            && contact_proof::send_notice_email(
                &self.proofs,
                meta,
                "password_changed",
                &acc.id,
                email,
                (i18n::text(lang, "password_changed_subject"), text),
            )
            .await
            .is_ok()
        {
            notified.push("email");
        }
        notified
    }
}

#[cfg(test)]
mod tests;
