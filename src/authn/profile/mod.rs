//! The person's own page: name, login, contacts and notification channels. Open to a browser
//! with an active SSO session. A new phone number is proven by an SMS code, a new email address
//! by a link sent to it; the old number or address is told of the change. The choices are
//! released to relying subsystems as claims (`notify_sms` under the `phone` scope).
//!
//! The profile asks the assurance the account asks of any sign-in (an employee's password
//! session does not open it), and a contact change needs proof of presence no older than
//! `VHOD_PROFILE_REAUTH_SECONDS`: the sign-in itself, or the password entered again.
//!
//! This is the service: what is decided and changed. What the browser session holds (its SSO
//! session, when the password was entered again, the pending number) and the pages are
//! [`routes`]'.

pub mod routes;

use serde_json::json;

use super::contact_proof::{self, EmailLink, LinkFor, LinkPurpose, Proofs, Recipient, SendError};
use super::login::LockNotices;
use super::otp::{self, OtpError, Purpose};
use super::password::{HashError, MAX_PASSWORD_LEN, PasswordHasher};
use super::throttle::{self, Gate, LoginKey};
use super::{Acr, session};
use crate::audit::{Audit, AuditError, Event, Kind, Outcome, Reason};
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::account::{self, Account, AccountError};
use crate::identity::contact::{Email, PhoneNumber};
use crate::identity::standing::Standing;
use crate::policy::{self, Denied};
use crate::store::StoreError;
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::sms::CodeFor;

/// What the profile needs: accounts and SSO sessions, codes and locks, the senders of codes,
/// links and notices, the hasher, the audit sink, the time, the settings, and the lock notice.
#[derive(Clone, Copy)]
pub struct Profile<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub proofs: Proofs<'a>,
    pub hasher: &'a PasswordHasher,
    pub audit: &'a Audit,
    pub clock: &'a Clock,
    pub settings: &'a Settings,
    pub lock_notice: &'a dyn LockNotices,
    /// Who tells the clients of sessions an unlink ends.
    pub ended: &'a dyn session::EndedSessions,
    pub policies: &'a policy::Policies,
}

/// Who the browser's SSO session opens the profile to.
#[derive(Debug)]
pub enum Access {
    SignedIn(Box<Account>),
    /// Signed in, but not at the assurance (`acr` value) the account asks of any sign-in.
    NeedsAcr(&'static str),
    NotSignedIn,
}

/// When the password was last entered again on the profile, and in which SSO session (the
/// browser's cookie session outlives a change of person): what the browser session keeps.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reentered {
    pub sid: String,
    pub at: i64,
}

/// What a recent proof of presence must have been made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Any sign-in of the account (a contact change).
    Any,
    /// A sign-in with the account's own credential (password, certificate) or its password
    /// entered again: linking an upstream identity to it.
    OfTheAccount,
}

/// Why a contact change may not go on yet.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The password cannot prove presence for this account: a fresh sign-in at `need`.
    #[error("a fresh sign-in is needed")]
    SignInAgain { need: Acr },
    #[error("the password is needed")]
    PasswordNeeded,
    /// The address or the account is locked: no password was checked.
    #[error("locked")]
    Locked,
    #[error("the password is wrong")]
    WrongPassword,
    #[error("the password hasher is busy")]
    Busy,
    #[error("{0}")]
    Unavailable(String),
}

/// Why a notification choice or a contact change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The new number does not parse: its message key.
    #[error("not a phone number ({0})")]
    InvalidPhone(&'static str),
    #[error("the number is the account's already")]
    SamePhone,
    #[error("no code sent: {0}")]
    CodeNotSent(SendError),
    #[error(transparent)]
    Code(OtpError),
    /// The number was confirmed for another account meanwhile.
    #[error("the number is another account's")]
    Taken,
    /// The new address does not parse: its message key.
    #[error("not an email address ({0})")]
    InvalidEmail(&'static str),
    #[error("the address is the account's already")]
    SameEmail,
    #[error("no link sent: {0}")]
    LinkNotSent(SendError),
    #[error("{0}")]
    Unavailable(String),
}

/// Why an emailed link did not change the address.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Unknown, used, a registration's, or its account gone.
    #[error("the link is not a change of address")]
    Invalid,
    #[error("the address is another account's")]
    Taken,
    #[error("{0}")]
    Unavailable(String),
}

macro_rules! unavailable_from {
    ($($err:ty),*) => {$(
        impl From<StoreError> for $err {
            fn from(e: StoreError) -> Self {
                Self::Unavailable(e.to_string())
            }
        }
        impl From<AuditError> for $err {
            fn from(e: AuditError) -> Self {
                Self::Unavailable(e.to_string())
            }
        }
    )*};
}
unavailable_from!(PresenceError, ChangeError, LinkError);

/// The cause logged when the signed-in account is gone half-way.
const GONE: &str = "the account disappeared";

impl Profile<'_> {
    /// The account of the browser's SSO session `sid`, if that session is active and strong
    /// enough for it.
    pub async fn signed_in(&self, sid: Option<&str>) -> Result<Access, StoreError> {
        let sso = match sid {
            Some(sid) => session::find_active(self.db, sid).await?,
            None => None,
        };
        let acc = match &sso {
            Some(sso) => account::find_by_id(self.db, &sso.account_id).await?,
            None => None,
        };
        let verdict = match (&acc, &sso) {
            (Some(a), Some(sso)) => {
                let standing = Standing::of(self.db, a, self.clock.now()).await?;
                policy::may_use_profile(self.policies, &standing, &sso.facts, &sso.method)
            }
            _ => Err(Denied::Inactive),
        };
        Ok(match (acc, verdict) {
            (Some(a), Ok(())) => Access::SignedIn(Box::new(a)),
            (Some(_), Err(Denied::AcrTooLow(need))) => Access::NeedsAcr(need),
            _ => Access::NotSignedIn,
        })
    }

    /// May the password, entered again, stand in for a fresh sign-in on this account's profile
    /// (only where a password sign-in is enough for the account at all)?
    pub async fn password_reproves(&self, acc: &Account) -> Result<bool, StoreError> {
        let standing = Standing::of(self.db, acc, self.clock.now()).await?;
        Ok(policy::password_reproves_presence(self.policies, &standing))
    }

    /// Is the last proof of presence in SSO session `sid` recent enough for a contact change:
    /// its sign-in, or the password entered again in it (`reentered`)?
    pub async fn recently_proven(
        &self,
        sid: &str,
        reentered: Option<Reentered>,
        presence: Presence,
    ) -> Result<bool, StoreError> {
        let Some(sso) = session::find_active(self.db, sid).await? else {
            return Ok(false);
        };
        let reentered_at = reentered.filter(|r| r.sid == sid).map(|r| r.at);
        // An upstream's sign-in proves the upstream identity, not the account: linking another
        // identity to the account needs the account's own proof.
        let upstream = <crate::authn::upstream::Federated<'_> as super::login::LoginMethod>::NAME;
        let signed_in_by_upstream = sso.method == upstream;
        let auth_time = match presence {
            Presence::OfTheAccount if signed_in_by_upstream => i64::MIN,
            _ => sso.facts.auth_time,
        };
        Ok(policy::recently_proven(
            auth_time,
            reentered_at,
            self.clock.now(),
            self.settings.profile_reauth_seconds,
        ))
    }

    /// Proof of presence by the password entered again, when there is no recent one: checked
    /// like a login (the address's and the account's locks, failure counting and delays apply).
    /// An account whose sign-in needs more than a password (an employee's) and an account
    /// without one sign in afresh instead. The moment it was proven, to be kept with the SSO
    /// session; [`Profile::reproved`] records it once kept.
    pub async fn reprove(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        password: &str,
    ) -> Result<i64, PresenceError> {
        let standing = Standing::of(self.db, acc, self.clock.now()).await?;
        if !policy::password_reproves_presence(self.policies, &standing) {
            return Err(PresenceError::SignInAgain {
                need: policy::account_acr(self.policies, &standing),
            });
        }
        if password.is_empty() {
            return Err(PresenceError::PasswordNeeded);
        }
        let ev = Event::new(Kind::ProfileReauth, Outcome::Failure)
            .subject(Some(&acc.id))
            .method("password")
            .from(meta);
        // Locked, by the address or the account: no password is checked at all.
        let ip_locked = throttle::login_gate(self.eph, &meta.ip).await;
        let account_locked = throttle::account_locked(self.eph, &acc.id).await;
        let locked = match (ip_locked, account_locked) {
            (Ok(Gate::IpLocked), _) => Some(Reason::IpLocked),
            (_, Ok(true)) => Some(Reason::AccountLocked),
            (Ok(Gate::Open), Ok(false)) => None,
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        if let Some(reason) = locked {
            self.audit.write(ev.reason(reason)).await?;
            return Err(PresenceError::Locked);
        }
        let verified = password.len() <= MAX_PASSWORD_LEN
            && match self
                .hasher
                .verify(acc.password_hash.as_deref(), password)
                .await
            {
                Ok(v) => v,
                Err(HashError::Busy) => return Err(PresenceError::Busy),
                Err(e) => return Err(PresenceError::Unavailable(format!("{e:?}"))),
            };
        if !verified {
            self.audit.write(ev.reason(Reason::WrongPassword)).await?;
            let limits = &self.settings.limits;
            match throttle::record_failure(self.eph, limits, Some(&acc.id), &meta.ip).await {
                Ok(f) => {
                    if f.locked_now {
                        self.lock_notice.locked(meta.clone(), acc.id.clone(), lang);
                    }
                    let base = std::time::Duration::from_millis(limits.login_delay_ms);
                    tokio::time::sleep(f.delay(base)).await;
                }
                Err(e) => tracing::warn!(error = %e, "could not count a failed password re-entry"),
            }
            return Err(PresenceError::WrongPassword);
        }
        let key = LoginKey::of(&acc.username);
        if let Err(e) = throttle::record_success(self.eph, &key, &acc.id).await {
            tracing::warn!(error = %e, "could not reset the failure counter");
        }
        Ok(self.clock.now())
    }

    /// The password entered again is kept with the SSO session: audited as proven.
    pub async fn reproved(&self, meta: &RequestMeta, acc: &Account) -> Result<(), PresenceError> {
        let ev = Event::new(Kind::ProfileReauth, Outcome::Success)
            .subject(Some(&acc.id))
            .method("password")
            .from(meta);
        self.audit.write(ev).await?;
        Ok(())
    }

    /// The SMS notifications choice.
    pub async fn set_notifications(
        &self,
        meta: &RequestMeta,
        acc: &mut Account,
        on: bool,
    ) -> Result<(), ChangeError> {
        account::set_notify_sms(self.db, &acc.id, on).await?;
        let ev = Event::new(Kind::ProfileNotifications, Outcome::Success)
            .subject(Some(&acc.id))
            .from(meta)
            .details(json!({"notify_sms": on}));
        self.audit.write(ev).await?;
        acc.notify_sms = on;
        Ok(())
    }

    /// A code to the new number `phone` (as typed); the number it went to.
    pub async fn send_phone_code(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        phone: &str,
    ) -> Result<PhoneNumber, ChangeError> {
        let new =
            PhoneNumber::parse(phone).map_err(|e| ChangeError::InvalidPhone(e.message_key()))?;
        if acc.phone.as_deref() == Some(new.as_str()) {
            return Err(ChangeError::SamePhone);
        }
        // A number confirmed for another account: its owner is told, and this page answers as
        // for any number (see `Recipient::Owner`), so it cannot be used to find who is
        // registered.
        let owner = account::find_by_login(self.db, new.as_str())
            .await?
            .map(|a| a.id)
            .filter(|id| *id != acc.id);
        let to = Recipient::of(owner.as_deref());
        let code_for = CodeFor::PhoneChange;
        contact_proof::send_code(&self.proofs, meta, lang, code_for, &acc.id, &new, to)
            .await
            .map_err(ChangeError::CodeNotSent)?;
        Ok(new)
    }

    /// The code: the number it was sent to becomes the account's, and the old number is told.
    /// The account as it is now.
    pub async fn confirm_phone(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        code: &str,
    ) -> Result<Account, ChangeError> {
        let ev = Event::new(Kind::ChangePhone, Outcome::Failure)
            .subject(Some(&acc.id))
            .from(meta);
        let target = match otp::verify(self.eph, Purpose::Phone, &acc.id, code).await {
            Ok(t) => t,
            Err(e) => {
                self.audit.enqueue(ev.reason(&e)).await;
                return Err(ChangeError::Code(e));
            }
        };
        match account::change_phone(self.db, &acc.id, &target).await {
            Ok(true) => {}
            Ok(false) => return Err(ChangeError::Unavailable(GONE.into())),
            Err(AccountError::Duplicate) => {
                self.audit.enqueue(ev.reason(Reason::Taken)).await;
                return Err(ChangeError::Taken);
            }
            Err(e) => return Err(ChangeError::Unavailable(e.to_string())),
        }
        let new = PhoneNumber::parse(&target)
            .map(|p| p.masked())
            .unwrap_or_default();
        // The old number learns of the change: if it was not its owner, they can act.
        let mut told = false;
        if let Some(old) = acc.phone.as_deref().filter(|p| *p != target)
            && let Ok(old) = PhoneNumber::parse(old)
        {
            let body = i18n::text(lang, "phone_changed_text").replace("{phone}", &new);
            let kind = "phone_changed";
            told = contact_proof::send_notice_sms(&self.proofs, meta, kind, &acc.id, &old, &body)
                .await
                .is_ok();
        }
        let from = acc
            .phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok());
        let ev = ev.succeeded().details(json!({
            "from": from.map(|p| p.masked()),
            "to": new,
            "old_told": told,
        }));
        self.audit.write(ev).await?;
        account::find_by_id(self.db, &acc.id)
            .await?
            .ok_or_else(|| ChangeError::Unavailable(GONE.into()))
    }

    /// A confirmation link to the new address `email` (as typed); the address it went to.
    pub async fn send_email_link(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        email: &str,
    ) -> Result<Email, ChangeError> {
        let new = Email::parse(email).map_err(|e| ChangeError::InvalidEmail(e.message_key()))?;
        if acc.email.as_deref() == Some(new.as_str()) {
            return Err(ChangeError::SameEmail);
        }
        // As for a phone number: an address confirmed elsewhere answers like any other.
        let owner = account::find_by_email(self.db, new.as_str())
            .await?
            .map(|a| a.id)
            .filter(|id| *id != acc.id);
        let (what, to) = (LinkFor::EmailChange, Recipient::of(owner.as_deref()));
        contact_proof::send_link(&self.proofs, meta, lang, what, &acc.id, new.as_str(), to)
            .await
            .map_err(ChangeError::LinkNotSent)?;
        Ok(new)
    }

    /// Uses up an emailed confirmation link's token: what it stood for, if anything.
    pub async fn take_link(&self, token: &str) -> Result<Option<EmailLink>, StoreError> {
        contact_proof::take_link(&self.proofs, LinkPurpose::Confirm, token).await
    }

    /// The link from the email to the new address (`link`, None for a token that stood for
    /// nothing): the address becomes the account's, and the old one is told.
    pub async fn confirm_email(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        link: Option<EmailLink>,
    ) -> Result<(), LinkError> {
        let ev = Event::new(Kind::ChangeEmail, Outcome::Failure).from(meta);
        let Some(link) = link else {
            self.audit.enqueue(ev.reason(Reason::InvalidLink)).await;
            return Err(LinkError::Invalid);
        };
        let ev = ev.subject(Some(&link.account_id));
        let Some(acc) = account::find_by_id(self.db, &link.account_id).await? else {
            self.audit.enqueue(ev.reason(Reason::UnknownAccount)).await;
            return Err(LinkError::Invalid);
        };
        // A registration link is not a change of address (and is refused here).
        if acc.email.as_deref() == Some(link.email.as_str()) {
            self.audit.enqueue(ev.reason(Reason::SameAddress)).await;
            return Err(LinkError::Invalid);
        }
        match account::change_email(self.db, &acc.id, &link.email).await {
            Ok(true) => {}
            Ok(false) => return Err(LinkError::Unavailable(GONE.into())),
            Err(AccountError::Duplicate) => {
                self.audit.enqueue(ev.reason(Reason::Taken)).await;
                return Err(LinkError::Taken);
            }
            Err(e) => return Err(LinkError::Unavailable(e.to_string())),
        }
        let new = Email::parse(&link.email)
            .map(|e| e.masked())
            .unwrap_or_default();
        let mut told = false;
        if let Some(old) = acc.email.as_deref() {
            let body = i18n::text(lang, "email_changed_text").replace("{email}", &new);
            let texts = (i18n::text(lang, "email_changed_subject"), body.as_str());
            let kind = "email_changed";
            told = contact_proof::send_notice_email(&self.proofs, meta, kind, &acc.id, old, texts)
                .await
                .is_ok();
        }
        let from = acc.email.as_deref().and_then(|e| Email::parse(e).ok());
        let ev = ev.succeeded().details(json!({
            "from": from.map(|e| e.masked()),
            "to": new,
            "old_told": told,
        }));
        self.audit.write(ev).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

impl Profile<'_> {
    /// Unlinks an upstream identity from the account (never its last way in): its pending link
    /// is voided, the sessions logins through it made are ended (whoever made them, they are
    /// not the account's any more), the unlink audited.
    pub async fn unlink_upstream(
        &self,
        meta: &RequestMeta,
        acc: &Account,
        key: &crate::identity::upstream::UpstreamKey<'_>,
    ) -> Result<(), crate::identity::upstream::UnlinkError> {
        crate::identity::upstream::unlink(self.db, acc, key).await?;
        crate::authn::upstream::link::void(self.eph, &acc.id).await?;
        let sids = self
            .db
            .upstream_identities()
            .open_sessions(key, None)
            .await?;
        let cause = "upstream_unlinked";
        crate::authn::upstream::end_sessions(
            self.db,
            self.audit,
            self.ended,
            &sids,
            meta,
            cause,
            key.upstream,
        )
        .await?;
        let ev = Event::new(Kind::UpstreamUnlinked, Outcome::Success)
            .subject(Some(&acc.id))
            .from(meta)
            .details(json!({"upstream": key.upstream, "issuer": key.issuer}));
        self.audit.enqueue(ev).await;
        Ok(())
    }
}
