//! Proving control of a phone number (a code by SMS) or an email address (a link by email):
//! budgets checked, the secret issued, the message sent, and every step audited. A failed send
//! is reported to the person, who can resend; nothing is silently lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::otp::{self, OtpError, Purpose};
use super::throttle::{self, SmsRefused};
use crate::audit::Event;
use crate::identity::contact::PhoneNumber;
use crate::notify::Message;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::sms::{self, CodeFor};
use crate::{secrets, store::StoreError};

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

    fn reason(&self) -> &'static str {
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

/// Sends a fresh code to `phone` for what it confirms, on behalf of account `subject`.
pub async fn send_code(
    app: &App,
    meta: &RequestMeta,
    lang: Lang,
    code_for: CodeFor,
    subject: &str,
    phone: &PhoneNumber,
) -> Result<(), SendError> {
    let purpose = code_for.purpose();
    let result = async {
        throttle::allow_sms(&app.eph, &app.settings.limits, &meta.ip, phone.prefix()).await??;
        let code = otp::issue(
            &app.eph,
            purpose,
            subject,
            phone.as_str(),
            app.settings.limits.otp_daily_cap,
        )
        .await?;
        let body = sms::code_text(lang, code_for, &app.pages.sms_name(lang), &code);
        app.notifier
            .send(&Message::sms(phone.as_str(), body))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "SMS not sent");
                SendError::Failed
            })
    }
    .await;
    let mut ev = Event::new(
        "sms_code",
        if result.is_ok() { "success" } else { "failure" },
    )
    .subject(Some(subject))
    .from(meta)
    .details(serde_json::json!({"purpose": purpose_name(purpose), "to": phone.masked()}));
    if let Err(e) = &result {
        ev = ev.reason(e.reason());
    }
    app.audit.enqueue(ev).await;
    result
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

fn link_key(purpose: LinkPurpose, token: &str) -> String {
    format!(
        "email-link:{}:{}",
        purpose.as_str(),
        secrets::token_hash(token)
    )
}

/// Emails a single-use link (`path?token=…`) to `email`; only the token's hash is stored.
#[allow(clippy::too_many_arguments)]
pub async fn send_link(
    app: &App,
    meta: &RequestMeta,
    lang: Lang,
    purpose: LinkPurpose,
    account_id: &str,
    email: &str,
    path: &str,
    texts: (&str, &str),
) -> Result<(), SendError> {
    let result = async {
        // As with SMS codes: at most one email of a kind per account and minute.
        let wait = format!("email-wait:{}:{account_id}", purpose.as_str());
        if !app
            .eph
            .put_if_absent(&wait, b"1", otp::RESEND_INTERVAL)
            .await?
        {
            return Err(SendError::Otp(OtpError::TooSoon));
        }
        let token = secrets::random_token();
        let link = EmailLink {
            account_id: account_id.to_string(),
            email: email.to_string(),
            purpose,
        };
        app.eph
            .put_json(&link_key(purpose, &token), &link, purpose.ttl())
            .await?;
        let url = format!("{}?token={token}", app.settings.endpoint(path));
        let body = i18n::text(lang, texts.1).replace("{link}", &url);
        app.notifier
            .send(&Message::email(email, i18n::text(lang, texts.0), body))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "email not sent");
                SendError::Failed
            })
    }
    .await;
    let mut ev = Event::new(
        "email_link",
        if result.is_ok() { "success" } else { "failure" },
    )
    .subject(Some(account_id))
    .from(meta)
    .details(serde_json::json!({"purpose": purpose.as_str()}));
    if let Err(e) = &result {
        ev = ev.reason(e.reason());
    }
    app.audit.enqueue(ev).await;
    result
}

/// Reads a link's token without using it up (to show a form).
pub async fn peek_link(
    app: &App,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<EmailLink>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    app.eph.get_json(&link_key(purpose, token)).await
}

/// Uses a link's token up: of two concurrent uses exactly one succeeds.
pub async fn take_link(
    app: &App,
    purpose: LinkPurpose,
    token: &str,
) -> Result<Option<EmailLink>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    app.eph.take_json(&link_key(purpose, token)).await
}
