//! Email through an SMTP server (lettre, rustls): STARTTLS on 587 by default, TLS from the first
//! byte on 465, or no encryption for a relay on the same host (and tests).

use std::time::Duration;

use anyhow::{Context, bail};
use lettre::message::{Mailbox, Message as Email, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, NotifyError, error_chain, scrub};
use crate::config::{EmailSettings, SmtpTls};

/// Bound on each SMTP command (connect, greeting, every reply).
const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// ASCII (IDNA) domain of the sender, for Message-ID.
    id_domain: String,
    /// Kept only to scrub it from error texts.
    password: Option<String>,
}

impl Smtp {
    pub(super) fn new(settings: &EmailSettings) -> anyhow::Result<Self> {
        let EmailSettings::Smtp {
            host,
            port,
            username,
            password,
            from,
            tls,
        } = settings
        else {
            bail!("not SMTP settings");
        };
        // lettre's connection pool spawns its housekeeping task when the transport is built.
        if tokio::runtime::Handle::try_current().is_err() {
            bail!("the SMTP transport must be created inside the Tokio runtime");
        }
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("VHOD_SMTP_FROM {from:?} is not an email address"))?;
        let id_domain = match url::Host::parse(from.email.domain()) {
            Ok(url::Host::Domain(d)) => d,
            _ => "localhost".to_string(),
        };
        let builder = match tls {
            // Tls::Required: refuses to go on (and to send credentials or mail) unless the
            // server upgrades the connection.
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host.as_str(),
            )),
        }
        .with_context(|| format!("TLS settings for the SMTP server {host}"))?
        .port(*port)
        .timeout(Some(TIMEOUT));
        let builder = match (username, password) {
            (Some(user), Some(pass)) => {
                builder.credentials(Credentials::new(user.clone(), pass.0.clone()))
            }
            (None, None) => builder,
            _ => bail!("VHOD_SMTP_USERNAME and VHOD_SMTP_PASSWORD go together"),
        };
        if *tls == SmtpTls::None && username.is_some() {
            tracing::warn!(
                host = %host,
                "SMTP credentials are sent without encryption (VHOD_SMTP_TLS=none)"
            );
        }
        Ok(Smtp {
            transport: builder.build(),
            from,
            id_domain,
            password: password.as_ref().map(|p| p.0.clone()),
        })
    }

    pub(super) async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let secrets = [self.password.as_deref().unwrap_or(""), msg.body.as_str()];
        let to: Mailbox = msg.to.parse().map_err(|e| {
            NotifyError::Rejected(scrub(
                &format!("{:?} is not an email address: {e}", msg.to),
                &secrets,
            ))
        })?;
        let email = Email::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.as_str())
            .message_id(Some(format!(
                "<{}@{}>",
                crate::secrets::random_id(),
                self.id_domain
            )))
            // A MIME single part: MIME-Version, text/plain; charset=utf-8, and the transfer
            // encoding (7bit, quoted-printable or base64) lettre finds best for the text.
            .singlepart(SinglePart::plain(msg.body.clone()))
            .map_err(|e| {
                NotifyError::Rejected(scrub(&format!("building the email: {e}"), &secrets))
            })?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e, scrub(&error_chain(&e), &secrets))),
        }
    }
}

/// A permanent (5xx) answer refuses this message (unknown mailbox, bad address) — except the
/// 53x family, our credentials. Transient (4xx) answers, network, TLS and timeouts, and a server
/// that cannot STARTTLS, make the channel unavailable.
fn classify(e: &lettre::transport::smtp::Error, text: String) -> NotifyError {
    let auth = e.status().is_some_and(|c| c.to_string().starts_with("53"));
    if e.is_permanent() && !auth {
        NotifyError::Rejected(format!("the SMTP server refused the message: {text}"))
    } else {
        NotifyError::Unavailable(format!("SMTP: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(tls: SmtpTls, user: Option<&str>, pass: Option<&str>) -> EmailSettings {
        EmailSettings::Smtp {
            host: "mail.example.by".into(),
            port: 587,
            username: user.map(Into::into),
            password: pass.map(|p| Secret(p.into())),
            from: "Уваход <noreply@обращения.бел>".into(),
            tls,
        }
    }

    #[tokio::test]
    async fn settings_are_checked_when_building() {
        for tls in [SmtpTls::StartTls, SmtpTls::Tls, SmtpTls::None] {
            let s = Smtp::new(&settings(tls, Some("u"), Some("p"))).unwrap();
            assert_eq!(s.id_domain, "xn--80abnmycp7evc.xn--90ais");
        }
        assert!(Smtp::new(&settings(SmtpTls::StartTls, Some("u"), None)).is_err());
        let mut bad = settings(SmtpTls::StartTls, None, None);
        if let EmailSettings::Smtp { from, .. } = &mut bad {
            *from = "not an address".into();
        }
        assert!(Smtp::new(&bad).is_err());
    }

    #[test]
    fn outside_a_runtime_building_is_an_error_not_a_panic() {
        assert!(Smtp::new(&settings(SmtpTls::StartTls, None, None)).is_err());
    }

    #[tokio::test]
    async fn a_bad_recipient_is_rejected_before_connecting() {
        let s = Smtp::new(&settings(SmtpTls::StartTls, Some("u"), Some("pw-secret"))).unwrap();
        let err = s
            .send(&Message::email("no-at-sign", "Тэма", "Код 777"))
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Rejected(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            !text.contains("777") && !text.contains("pw-secret"),
            "{text}"
        );
    }
}
