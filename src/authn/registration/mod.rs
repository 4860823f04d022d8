//! Citizen registration: surname, given name, patronymic, mobile phone, email, login, password.
//! The account stays pending (it cannot sign in to any client) until the phone is confirmed by
//! an SMS code and the email by a link; then it becomes active.
//!
//! This is the service: what a registration may be, when it is refused, and the state changes
//! of creating and confirming it, with their audit events. What the browser session holds
//! (which account it is registering) and the pages are [`routes`]'.

pub mod routes;

pub use routes::resume_registration;

use crate::audit::{Audit, AuditError, Event, Kind, Outcome, Reason};
use crate::authn::contact_proof::{
    self, EmailLink, LinkFor, LinkPurpose, Proofs, Recipient, SendError,
};
use crate::authn::otp::{self, OtpError, Purpose};
use crate::authn::password::PasswordHasher;
use crate::authn::password::policy::PasswordPolicy;
use crate::authn::throttle;
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::account::{self, Account, AccountError, NewAccount};
use crate::identity::contact::{Email, PhoneNumber, looks_like_phone};
use crate::store::StoreError;
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::store::units::Confirmed;
use crate::web::RequestMeta;
use crate::web::form::{FieldError, field};
use crate::web::i18n::{self, Lang};
use crate::web::params::Params;
use crate::web::sms::CodeFor;

const MAX_NAME: usize = 100;

/// What registering needs: the accounts, the ephemeral store (budgets, codes), sending codes
/// and links, the hasher for the new password, the audit trail, the time, and the limits.
#[derive(Clone, Copy)]
pub struct Registrar<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub proofs: Proofs<'a>,
    pub hasher: &'a PasswordHasher,
    pub audit: &'a Audit,
    pub clock: &'a Clock,
    pub settings: &'a Settings,
}

/// Everything the form says, validated.
pub struct Registration {
    family_name: String,
    given_name: String,
    middle_name: Option<String>,
    username: String,
    phone: PhoneNumber,
    email: Email,
    password: String,
}

/// Why a registration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("too many registrations from this address")]
    RateLimited,
    /// The login name is held by another account (registration cannot help telling, as login
    /// names are unique).
    #[error("the login name {0} is taken")]
    LoginTaken(String),
    #[error("the password hasher is busy")]
    Busy,
    #[error("the login name is not valid")]
    InvalidUsername,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Our own trouble: nothing was decided, the person may retry.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Account(AccountError),
    /// A confirmed account could not be read back (the page has nothing to show).
    #[error("the confirmed account could not be read back")]
    Reread,
}

/// A stored (pending) registration, its first code and link not sent yet.
pub struct Registered {
    pub account: Account,
    phone: PhoneNumber,
    email: Email,
    /// Other accounts that have confirmed the contacts: their owners are told instead (see
    /// [`Recipient::Owner`]).
    phone_owner: Option<String>,
    email_owner: Option<String>,
}

/// What to send again from the confirmation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    Sms,
    Email,
}

#[derive(Debug)]
pub enum Resent {
    /// Nothing left to confirm there (confirmed already, or no such contact).
    Nothing,
    Sent,
    NotSent(SendError),
}

#[derive(Debug)]
pub enum PhoneConfirmation {
    /// Confirmed; the account as it is now (active when that completed it).
    Confirmed(Box<Account>),
    /// The code was refused.
    Refused(OtpError),
    /// Confirmed for another account meanwhile.
    ConfirmedElsewhere,
    /// The code was sent to a number that is no longer the account's.
    NotCurrent,
}

#[derive(Debug)]
pub enum EmailConfirmation {
    /// Confirmed; the account as it is now.
    Confirmed(Box<Account>),
    /// Used up, unknown, for an expired registration, or for an address no longer the
    /// account's: the person is told only that the link does not work.
    Invalid,
    ConfirmedElsewhere,
}

fn valid_name(s: &str, required: bool) -> bool {
    if s.is_empty() {
        return !required;
    }
    s.chars().count() <= MAX_NAME
        && s.chars().any(char::is_alphabetic)
        && s.chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'' || c == '’')
}

fn valid_username(s: &str) -> bool {
    (3..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !looks_like_phone(s)
}

/// The audit event of a refused registration.
fn refused(meta: &RequestMeta, reason: Reason) -> Event {
    Event::new(Kind::Registration, Outcome::Failure)
        .reason(reason)
        .method("password")
        .from(meta)
}

impl Registrar<'_> {
    /// The form, validated; or the first problem, in words, at its field.
    pub fn validate(&self, p: &Params, lang: Lang) -> Result<Registration, FieldError> {
        let policy = PasswordPolicy::new(self.settings.limits.password_min_length);
        let text = |k: &str| i18n::text(lang, k).to_string();
        let at = |f: &'static str, k: &str| FieldError::new(f, text(k));
        let (family, given, middle) = (
            field(p, "family_name"),
            field(p, "given_name"),
            field(p, "middle_name"),
        );
        for (name, value, required) in [
            ("family_name", family, true),
            ("given_name", given, true),
            ("middle_name", middle, false),
        ] {
            if !valid_name(value, required) {
                return Err(at(name, "name_invalid"));
            }
        }
        let username = account::normalize_username(field(p, "username"));
        if !valid_username(&username) {
            return Err(at("username", "username_invalid"));
        }
        let phone =
            PhoneNumber::parse(field(p, "phone")).map_err(|e| at("phone", e.message_key()))?;
        let email = Email::parse(field(p, "email")).map_err(|e| at("email", e.message_key()))?;
        // The password is taken as typed: no trimming, any characters.
        let password = p.get("password").unwrap_or("").to_string();
        let digits: String = phone
            .as_str()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let national = digits.get(3..).unwrap_or("").to_string();
        let personal = [
            username.as_str(),
            &digits,
            &national,
            email.as_str(),
            email.local_part(),
        ];
        policy.check(&password, &personal).map_err(|v| {
            let msg = text(v.message_key()).replace("{min}", &policy.min_chars().to_string());
            FieldError::new("password", msg)
        })?;
        // Personal data are processed only with the person's consent (Law No. 99-З, art. 5).
        if field(p, "consent") != "on" {
            return Err(at("consent", "consent_required"));
        }
        Ok(Registration {
            family_name: family.to_string(),
            given_name: given.to_string(),
            middle_name: (!middle.is_empty()).then(|| middle.to_string()),
            username,
            phone,
            email,
            password,
        })
    }

    /// Stores `reg` as a pending account (audited, with the consent), unless refused.
    pub async fn register(
        &self,
        reg: Registration,
        meta: &RequestMeta,
    ) -> Result<Registered, Refusal> {
        // Everything cheap first; the hasher only for a registration that can be stored.
        self.admissible(&reg.username, meta).await?;
        // Contacts confirmed for someone else: the registration goes on as usual, but their
        // owner is told instead of the contact being sent a code or link.
        let phone_owner = self.owner_of_phone(None, &reg.phone).await;
        let phone_owner = phone_owner.map_err(Unavailable::from)?;
        let email_owner = self.owner_of_email(None, reg.email.as_str()).await;
        let email_owner = email_owner.map_err(Unavailable::from)?;
        let Ok(hash) = self.hasher.hash(&reg.password).await else {
            return Err(Refusal::Busy);
        };
        let created = account::create(
            self.db,
            NewAccount {
                username: reg.username.clone(),
                password_hash: Some(hash),
                phone: Some(reg.phone.as_str().to_string()),
                email: Some(reg.email.as_str().to_string()),
                given_name: Some(reg.given_name),
                family_name: Some(reg.family_name),
                middle_name: reg.middle_name,
                roles: vec!["applicant".into()],
                home_org: None,
                verified: false,
            },
        )
        .await;
        let account = match created {
            Ok(a) => a,
            // Only the login name is unique among unconfirmed accounts: someone took it
            // meanwhile.
            Err(AccountError::Duplicate) => {
                self.audit.enqueue(refused(meta, Reason::Taken)).await;
                return Err(Refusal::LoginTaken(reg.username));
            }
            Err(AccountError::Invalid(_)) => return Err(Refusal::InvalidUsername),
            Err(e) => return Err(Unavailable::Account(e).into()),
        };
        let ev = Event::new(Kind::Registration, Outcome::Success)
            .subject(Some(&account.id))
            .method("password")
            .from(meta)
            .details(serde_json::json!({"personal_data_consent": true}));
        self.audit.write(ev).await.map_err(Unavailable::from)?;
        Ok(Registered {
            account,
            phone: reg.phone,
            email: reg.email,
            phone_owner,
            email_owner,
        })
    }

    /// May a registration from `meta` with `username` be stored: within the address's budget,
    /// and the login name free (an expired registration holding it is deleted first)?
    async fn admissible(&self, username: &str, meta: &RequestMeta) -> Result<(), Refusal> {
        let limits = &self.settings.limits;
        let per_hour = limits.register_per_ip_hour;
        let allowed = throttle::allow_per_ip(self.eph, "register", &meta.ip, per_hour).await;
        if !allowed.map_err(Unavailable::from)? {
            self.audit.enqueue(refused(meta, Reason::RateLimited)).await;
            return Err(Refusal::RateLimited);
        }
        let (ttl, now) = (limits.pending_account_ttl, self.clock.now());
        // An expired registration holds nothing: the one with this login name makes way.
        account::delete_expired_pending(self.db, ttl, now, Some(username))
            .await
            .map_err(Unavailable::from)?;
        let taken = account::username_taken(self.db, username, ttl, now).await;
        if taken.map_err(Unavailable::from)? {
            self.audit.enqueue(refused(meta, Reason::Taken)).await;
            return Err(Refusal::LoginTaken(username.to_string()));
        }
        Ok(())
    }

    /// Sends a new registration its code and its link. A failed send does not undo anything:
    /// the answer is the message key of what to say (the SMS's before the email's), and the
    /// person can ask again from the confirmation page.
    pub async fn send_proofs(
        &self,
        r: &Registered,
        meta: &RequestMeta,
        lang: Lang,
    ) -> Option<&'static str> {
        let id = &r.account.id;
        let to = Recipient::of(r.phone_owner.as_deref());
        let code_for = CodeFor::Registration;
        let sms =
            contact_proof::send_code(&self.proofs, meta, lang, code_for, id, &r.phone, to).await;
        let (email, to) = (r.email.as_str(), Recipient::of(r.email_owner.as_deref()));
        let link_for = LinkFor::Registration;
        let mail =
            contact_proof::send_link(&self.proofs, meta, lang, link_for, id, email, to).await;
        match (sms, mail) {
            (Err(e), _) | (_, Err(e)) => Some(e.message_key()),
            _ => None,
        }
    }

    /// The registration of `account_id`, unless it expired unconfirmed (then it is treated as
    /// gone, whatever is stored).
    pub async fn pending(&self, account_id: &str) -> Result<Option<Account>, StoreError> {
        let ttl = self.settings.limits.pending_account_ttl;
        Ok(account::find_by_id(self.db, account_id)
            .await?
            .filter(|a| !a.is_expired_pending(ttl, self.clock.now())))
    }

    /// Sends `acc` its code or its link again, if that contact is still to be confirmed.
    pub async fn resend(
        &self,
        acc: &Account,
        what: Resend,
        meta: &RequestMeta,
        lang: Lang,
    ) -> Result<Resent, Unavailable> {
        let sent = match what {
            Resend::Sms => {
                let phone = acc
                    .phone
                    .as_deref()
                    .and_then(|p| PhoneNumber::parse(p).ok());
                let Some(phone) = phone.filter(|_| !acc.phone_verified) else {
                    return Ok(Resent::Nothing);
                };
                let owner = self.owner_of_phone(Some(acc), &phone).await?;
                let (to, code_for) = (Recipient::of(owner.as_deref()), CodeFor::Registration);
                contact_proof::send_code(&self.proofs, meta, lang, code_for, &acc.id, &phone, to)
                    .await
            }
            Resend::Email => {
                let Some(email) = acc.email.as_deref().filter(|_| !acc.email_verified) else {
                    return Ok(Resent::Nothing);
                };
                self.send_confirmation_link(meta, lang, acc, email).await
            }
        };
        Ok(sent.map_or_else(Resent::NotSent, |()| Resent::Sent))
    }

    /// Sends `acc` a new confirmation link (or, if another account has confirmed the address
    /// meanwhile, tells that account's owner instead). A failed lookup is a failed send, so
    /// the page says the email was not sent.
    async fn send_confirmation_link(
        &self,
        meta: &RequestMeta,
        lang: Lang,
        acc: &Account,
        email: &str,
    ) -> Result<(), SendError> {
        let owner = self.owner_of_email(Some(acc), email).await.map_err(|e| {
            tracing::error!(error = %e, "account lookup failed");
            SendError::Store
        })?;
        let (to, link_for) = (Recipient::of(owner.as_deref()), LinkFor::Registration);
        contact_proof::send_link(&self.proofs, meta, lang, link_for, &acc.id, email, to).await
    }

    /// The account, other than `acc`, that has confirmed `phone`.
    async fn owner_of_phone(
        &self,
        acc: Option<&Account>,
        phone: &PhoneNumber,
    ) -> Result<Option<String>, StoreError> {
        let found = account::find_by_login(self.db, phone.as_str()).await?;
        Ok(found
            .map(|a| a.id)
            .filter(|id| acc.is_none_or(|acc| *id != acc.id)))
    }

    /// The account, other than `acc`, that has confirmed `email`.
    async fn owner_of_email(
        &self,
        acc: Option<&Account>,
        email: &str,
    ) -> Result<Option<String>, StoreError> {
        let found = account::find_by_email(self.db, email).await?;
        Ok(found
            .map(|a| a.id)
            .filter(|id| acc.is_none_or(|acc| *id != acc.id)))
    }

    /// The SMS code typed on the confirmation page of `acc`; every answer is audited.
    pub async fn confirm_phone(
        &self,
        acc: &Account,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<PhoneConfirmation, Unavailable> {
        let outcome = otp::verify(self.eph, Purpose::Phone, &acc.id, code).await;
        let ev = Event::of(Kind::ConfirmPhone, outcome.is_ok())
            .subject(Some(&acc.id))
            .from(meta);
        let target = match outcome {
            Ok(t) => t,
            Err(e) => {
                self.audit.enqueue(ev.reason(&e)).await;
                return Ok(PhoneConfirmation::Refused(e));
            }
        };
        // The code proves the number it was sent to; it must still be the account's number.
        let activated = match account::confirm_phone(self.db, &acc.id, &target).await {
            Ok(Confirmed::Done { activated }) => activated,
            Err(AccountError::Duplicate) => {
                // Confirmed for another account meanwhile: the person holds the phone, so may
                // know.
                let ev = ev.reason(Reason::PhoneConfirmedElsewhere);
                self.audit.enqueue(ev).await;
                return Ok(PhoneConfirmation::ConfirmedElsewhere);
            }
            // A store failure too: the code is used up, and a new one is the way on.
            Ok(Confirmed::NotCurrent) | Err(_) => {
                self.audit.enqueue(ev.reason(Reason::PhoneChanged)).await;
                return Ok(PhoneConfirmation::NotCurrent);
            }
        };
        self.confirmed(ev, &acc.id, activated, meta)
            .await
            .map(|a| PhoneConfirmation::Confirmed(Box::new(a)))
    }

    /// Uses up the token of an emailed link.
    pub async fn take_link(&self, token: &str) -> Result<Option<EmailLink>, StoreError> {
        contact_proof::take_link(&self.proofs, LinkPurpose::Confirm, token).await
    }

    /// The emailed link (taken by [`Self::take_link`]; None when there was none); every
    /// answer is audited.
    pub async fn confirm_email(
        &self,
        link: Option<EmailLink>,
        meta: &RequestMeta,
    ) -> Result<EmailConfirmation, Unavailable> {
        let ev = Event::new(Kind::ConfirmEmail, Outcome::Failure).from(meta);
        let Some(link) = link else {
            self.audit.enqueue(ev.reason(Reason::InvalidLink)).await;
            return Ok(EmailConfirmation::Invalid);
        };
        // A registration that expired unconfirmed is gone, whatever its links say.
        if self.pending(&link.account_id).await?.is_none() {
            let ev = ev.reason(Reason::RegistrationExpired);
            self.audit.enqueue(ev).await;
            return Ok(EmailConfirmation::Invalid);
        }
        let ev = ev.subject(Some(&link.account_id));
        // The link proves the address it was sent to, for the account it was sent for.
        let activated = match account::confirm_email(self.db, &link.account_id, &link.email).await {
            Ok(Confirmed::Done { activated }) => activated,
            Err(AccountError::Duplicate) => {
                let ev = ev.reason(Reason::EmailConfirmedElsewhere);
                self.audit.enqueue(ev).await;
                return Ok(EmailConfirmation::ConfirmedElsewhere);
            }
            Ok(Confirmed::NotCurrent) => {
                self.audit.enqueue(ev.reason(Reason::EmailChanged)).await;
                return Ok(EmailConfirmation::Invalid);
            }
            Err(e) => return Err(Unavailable::Account(e)),
        };
        let mut ok = ev;
        ok.outcome = Outcome::Success;
        self.confirmed(ok, &link.account_id, activated, meta)
            .await
            .map(|a| EmailConfirmation::Confirmed(Box::new(a)))
    }

    /// After a contact's confirmation: its event written (durably), the activation it may
    /// have completed audited, and the account read back.
    async fn confirmed(
        &self,
        ev: Event,
        account_id: &str,
        activated: bool,
        meta: &RequestMeta,
    ) -> Result<Account, Unavailable> {
        self.audit.write(ev).await?;
        if activated {
            let ev = Event::new(Kind::AccountActivated, Outcome::Success)
                .subject(Some(account_id))
                .from(meta);
            self.audit.enqueue(ev).await;
        }
        match account::find_by_id(self.db, account_id).await {
            Ok(Some(a)) => Ok(a),
            _ => Err(Unavailable::Reread),
        }
    }
}

#[cfg(test)]
mod tests;
