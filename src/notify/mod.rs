//! Messages to people: one-time codes by SMS, letters by email.
//!
//! Each channel has a real provider (Twilio for SMS, an SMTP server for email) and the dev
//! outbox: a JSON-lines file in the data directory that a developer (or a test) reads instead of
//! a phone or a mailbox. The outbox is the default for both channels; outside development mode
//! it is allowed but warned about at startup.
//!
//! Bodies carry codes and the providers' credentials are secrets: neither ever appears in an
//! error text, a log line or a `Debug` output.

mod outbox;
mod smtp;
mod twilio;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{EmailSettings, Settings, SmsSettings};

pub use outbox::{OUTBOX_FILE, OutboxEntry, outbox_path, read_outbox};

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to one person. `to` is an E.164 phone number for SMS (`+375291234567`) and an
/// email address for email; `subject` is used by email only (empty for SMS).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    /// Plain UTF-8 text; carries codes, so it is never logged.
    pub body: String,
}

impl Message {
    pub fn sms(to: impl Into<String>, body: impl Into<String>) -> Self {
        Message {
            channel: Channel::Sms,
            to: to.into(),
            subject: String::new(),
            body: body.into(),
        }
    }

    pub fn email(
        to: impl Into<String>,
        subject: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Message {
            channel: Channel::Email,
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }
}

/// The body stays out of debug output (and so out of logs and panic messages).
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"***")
            .finish()
    }
}

/// Why a message was not sent. The texts name the provider and its answer, never a credential
/// or the message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The provider refused this message: a bad phone number or address, a refused recipient
    /// (Twilio 4xx, SMTP 5xx). Sending the same message again will not help.
    #[error("message rejected: {0}")]
    Rejected(String),
    /// The channel cannot deliver now: network failure, timeout, provider 5xx or rate limit
    /// (429), refused provider credentials, an SMTP server without the required TLS.
    #[error("messaging provider unavailable: {0}")]
    Unavailable(String),
    /// The dev outbox file could not be written.
    #[error("outbox: {0}")]
    Io(String),
}

/// Sends messages by the configured provider of each channel. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Routes>,
}

struct Routes {
    sms: SmsRoute,
    email: EmailRoute,
}

enum SmsRoute {
    Outbox(Arc<outbox::Outbox>),
    Twilio(twilio::Twilio),
}

enum EmailRoute {
    Outbox(Arc<outbox::Outbox>),
    Smtp(smtp::Smtp),
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sms", &self.provider(Channel::Sms))
            .field("email", &self.provider(Channel::Email))
            .finish()
    }
}

impl Notifier {
    /// The notifier of a running server: providers from the settings, the outbox in the data
    /// directory. Warns when a channel uses the outbox outside development mode.
    /// Must be called inside a Tokio runtime (the SMTP connection pool starts its task here).
    pub fn new(settings: &Settings, http: reqwest::Client) -> anyhow::Result<Notifier> {
        let notifier = Self::from_parts(&settings.sms, &settings.email, &settings.data_dir, http)?;
        if !settings.dev {
            let path = outbox_path(&settings.data_dir);
            if matches!(settings.sms, SmsSettings::Outbox) {
                tracing::warn!(
                    outbox = %path.display(),
                    "SMS go to the dev outbox file, not to phones: set VHOD_SMS_PROVIDER=twilio"
                );
            }
            if matches!(settings.email, EmailSettings::Outbox) {
                tracing::warn!(
                    outbox = %path.display(),
                    "email goes to the dev outbox file, not to mailboxes: set VHOD_EMAIL_PROVIDER=smtp"
                );
            }
        }
        Ok(notifier)
    }

    /// A notifier from explicit provider settings; `http` is used for Twilio.
    pub fn from_parts(
        sms: &SmsSettings,
        email: &EmailSettings,
        data_dir: &Path,
        http: reqwest::Client,
    ) -> anyhow::Result<Notifier> {
        // One outbox (one lock) for both channels: their lines share the file.
        let outbox = Arc::new(outbox::Outbox::new(outbox_path(data_dir)));
        let sms = match sms {
            SmsSettings::Outbox => SmsRoute::Outbox(outbox.clone()),
            twilio @ SmsSettings::Twilio { .. } => {
                SmsRoute::Twilio(twilio::Twilio::new(twilio, http)?)
            }
        };
        let email = match email {
            EmailSettings::Outbox => EmailRoute::Outbox(outbox),
            smtp @ EmailSettings::Smtp { .. } => EmailRoute::Smtp(smtp::Smtp::new(smtp)?),
        };
        Ok(Notifier {
            inner: Arc::new(Routes { sms, email }),
        })
    }

    /// Which provider a channel uses: `outbox`, `twilio` or `smtp`.
    pub fn provider(&self, channel: Channel) -> &'static str {
        match (channel, &self.inner.sms, &self.inner.email) {
            (Channel::Sms, SmsRoute::Outbox(_), _) | (Channel::Email, _, EmailRoute::Outbox(_)) => {
                "outbox"
            }
            (Channel::Sms, SmsRoute::Twilio(_), _) => "twilio",
            (Channel::Email, _, EmailRoute::Smtp(_)) => "smtp",
        }
    }

    /// Does this channel write locally (the dev outbox) rather than through a remote provider?
    pub fn is_local(&self, channel: Channel) -> bool {
        self.provider(channel) == "outbox"
    }

    /// The outbox file, when a channel writes to it.
    pub fn outbox(&self) -> Option<PathBuf> {
        match (&self.inner.sms, &self.inner.email) {
            (SmsRoute::Outbox(o), _) | (_, EmailRoute::Outbox(o)) => Some(o.path().to_path_buf()),
            _ => None,
        }
    }

    /// Sends one message by its channel's provider; returns once the provider accepted it.
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        if msg.to.trim().is_empty() {
            return Err(NotifyError::Rejected("the message has no recipient".into()));
        }
        let result = match (msg.channel, &self.inner.sms, &self.inner.email) {
            (Channel::Sms, SmsRoute::Outbox(o), _) | (Channel::Email, _, EmailRoute::Outbox(o)) => {
                o.append(msg).await
            }
            (Channel::Sms, SmsRoute::Twilio(t), _) => t.send(msg).await,
            (Channel::Email, _, EmailRoute::Smtp(s)) => s.send(msg).await,
        };
        let provider = self.provider(msg.channel);
        match &result {
            Ok(()) => tracing::debug!(channel = %msg.channel, provider, "message sent"),
            Err(e) => {
                tracing::warn!(channel = %msg.channel, provider, error = %e, "message not sent")
            }
        }
        result
    }
}

/// Replaces every non-empty secret (a credential, the message body) in a text with `***`, and
/// keeps the text short: provider answers may be long.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s, "***");
        }
    }
    const MAX: usize = 500;
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// An error with its sources, each once (many errors already print their source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_serialize_in_lower_case() {
        assert_eq!(serde_json::to_string(&Channel::Sms).unwrap(), "\"sms\"");
        assert_eq!(serde_json::to_string(&Channel::Email).unwrap(), "\"email\"");
        let c: Channel = serde_json::from_str("\"email\"").unwrap();
        assert_eq!(c, Channel::Email);
    }

    #[test]
    fn message_debug_hides_the_body() {
        let m = Message::sms("+375291234567", "Код: 987654");
        let d = format!("{m:?}");
        assert!(!d.contains("987654"), "{d}");
        assert!(d.contains("+375291234567"));
    }

    #[test]
    fn scrub_removes_secrets_and_bounds_length() {
        let t = scrub(
            "token hunter2 and body Код 4711",
            &["hunter2", "Код 4711", ""],
        );
        assert_eq!(t, "token *** and body ***");
        let long = "ж".repeat(400);
        let s = scrub(&long, &[]);
        assert!(s.len() <= 504 && s.ends_with('…'));
    }

    #[tokio::test]
    async fn providers_are_chosen_by_settings() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::from_parts(
            &SmsSettings::Outbox,
            &EmailSettings::Outbox,
            dir.path(),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(n.provider(Channel::Sms), "outbox");
        assert_eq!(n.provider(Channel::Email), "outbox");
        assert_eq!(n.outbox().unwrap(), dir.path().join("outbox.jsonl"));
        assert_eq!(
            n.send(&Message::sms(" ", "x")).await,
            Err(NotifyError::Rejected("the message has no recipient".into()))
        );

        let n = Notifier::from_parts(
            &SmsSettings::Twilio {
                account_sid: "AC1".into(),
                auth_token: crate::config::Secret("t".into()),
                from: Some("+375290000000".into()),
                messaging_service_sid: None,
                api_base: "https://api.twilio.com".into(),
            },
            &EmailSettings::Smtp {
                host: "mail.example".into(),
                port: 587,
                username: None,
                password: None,
                from: "vhod <noreply@example.by>".into(),
                tls: crate::config::SmtpTls::StartTls,
            },
            dir.path(),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(n.provider(Channel::Sms), "twilio");
        assert_eq!(n.provider(Channel::Email), "smtp");
        assert!(n.outbox().is_none());
    }
}
