//! SMS through Twilio's Programmable Messaging API: one form POST per message.
//!
//! A thin client over the project's reqwest rather than the `twilio` crate: twilio-rs 1.1.0
//! depends on hyper 0.14 with hyper-tls, i.e. a second HTTP stack and OpenSSL in a project that
//! is rustls/ring throughout; its base URL is hard-coded, so it can be neither tested against a
//! local server nor pointed at a proxy; and it cannot send through a MessagingServiceSid. The API
//! we need is one request: <https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>.

use anyhow::{Context, bail};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{Message, NotifyError, error_chain, scrub};
use crate::config::{Secret, SmsSettings};

/// Twilio's error answers are small; anything beyond this is not read.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// Who sends: a messaging service picks the sender itself, and is preferred when both are set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    MessagingService(String),
    From(String),
}

impl Sender {
    fn field(&self) -> (&'static str, &str) {
        match self {
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid),
            Sender::From(from) => ("From", from),
        }
    }
}

pub(super) struct Twilio {
    /// `{api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`
    url: String,
    account_sid: String,
    auth_token: Secret,
    sender: Sender,
    /// The server's client: no redirects, short timeouts.
    http: reqwest::Client,
}

/// Twilio's error document: `{"code": 21211, "message": "Invalid 'To' Phone Number", …}`.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
    message: Option<String>,
}

impl Twilio {
    pub(super) fn new(settings: &SmsSettings, http: reqwest::Client) -> anyhow::Result<Self> {
        let SmsSettings::Twilio {
            account_sid,
            auth_token,
            from,
            messaging_service_sid,
            api_base,
        } = settings
        else {
            bail!("not Twilio settings");
        };
        let sender = match (messaging_service_sid, from) {
            (Some(sid), _) => Sender::MessagingService(sid.clone()),
            (None, Some(from)) => Sender::From(from.clone()),
            (None, None) => {
                bail!("Twilio needs VHOD_TWILIO_FROM or VHOD_TWILIO_MESSAGING_SERVICE_SID")
            }
        };
        if account_sid.is_empty() || auth_token.0.is_empty() {
            bail!("Twilio needs VHOD_TWILIO_ACCOUNT_SID and VHOD_TWILIO_AUTH_TOKEN");
        }
        let base = api_base.trim_end_matches('/');
        let parsed = url::Url::parse(base)
            .with_context(|| format!("VHOD_TWILIO_API_BASE {base:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            bail!("VHOD_TWILIO_API_BASE must be an https URL");
        }
        let url = format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            utf8_percent_encode(account_sid, NON_ALPHANUMERIC)
        );
        Ok(Twilio {
            url,
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            sender,
            http,
        })
    }

    pub(super) async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let secrets = [self.auth_token.0.as_str(), msg.body.as_str()];
        let form = [
            ("To", msg.to.as_str()),
            ("Body", msg.body.as_str()),
            self.sender.field(),
        ];
        let res = self
            .http
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(&self.auth_token.0))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                NotifyError::Unavailable(scrub(
                    &format!("Twilio is unreachable: {}", error_chain(&e)),
                    &secrets,
                ))
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = read_error(res).await;
        let text = scrub(&format!("Twilio answered {status}{detail}"), &secrets);
        Err(classify(status, text))
    }
}

/// 4xx: the message was refused — except 429 (rate limit) and 401/403 (our credentials), which
/// are about the channel, not this message. 5xx, and anything else unexpected (a redirect we
/// do not follow), mean the channel is unavailable.
fn classify(status: reqwest::StatusCode, text: String) -> NotifyError {
    use reqwest::StatusCode as S;
    match status {
        S::TOO_MANY_REQUESTS | S::UNAUTHORIZED | S::FORBIDDEN => NotifyError::Unavailable(text),
        s if s.is_client_error() => NotifyError::Rejected(text),
        _ => NotifyError::Unavailable(text),
    }
}

/// `: error 21211: Invalid 'To' Phone Number`, or nothing when the answer is not Twilio's JSON.
async fn read_error(mut res: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    describe_error(&body)
}

fn describe_error(body: &[u8]) -> String {
    match serde_json::from_slice::<TwilioError>(body) {
        Ok(TwilioError {
            code: Some(code),
            message: Some(m),
        }) => format!(": error {code}: {m}"),
        Ok(TwilioError {
            code: None,
            message: Some(m),
        }) => format!(": {m}"),
        Ok(TwilioError {
            code: Some(code),
            message: None,
        }) => format!(": error {code}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(from: Option<&str>, service: Option<&str>) -> SmsSettings {
        SmsSettings::Twilio {
            account_sid: "AC0123".into(),
            auth_token: Secret("tok".into()),
            from: from.map(Into::into),
            messaging_service_sid: service.map(Into::into),
            api_base: "https://api.twilio.com/".into(),
        }
    }

    #[test]
    fn the_messaging_service_is_preferred_over_a_sender_number() {
        let http = reqwest::Client::new();
        let t = Twilio::new(&settings(Some("+375290000000"), Some("MG1")), http.clone()).unwrap();
        assert_eq!(t.sender.field(), ("MessagingServiceSid", "MG1"));
        assert_eq!(
            t.url,
            "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json"
        );
        let t = Twilio::new(&settings(Some("+375290000000"), None), http.clone()).unwrap();
        assert_eq!(t.sender.field(), ("From", "+375290000000"));
        assert!(Twilio::new(&settings(None, None), http.clone()).is_err());
        let mut bad = settings(Some("+1"), None);
        if let SmsSettings::Twilio { api_base, .. } = &mut bad {
            *api_base = "ftp://x".into();
        }
        assert!(Twilio::new(&bad, http).is_err());
    }

    #[test]
    fn twilio_errors_are_described_and_classified() {
        assert_eq!(
            describe_error(br#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#),
            ": error 21211: Invalid 'To' Phone Number"
        );
        assert_eq!(describe_error(b"<html>bad gateway</html>"), "");
        use reqwest::StatusCode as S;
        assert!(matches!(
            classify(S::BAD_REQUEST, "x".into()),
            NotifyError::Rejected(_)
        ));
        assert!(matches!(
            classify(S::NOT_FOUND, "x".into()),
            NotifyError::Rejected(_)
        ));
        for s in [
            S::TOO_MANY_REQUESTS,
            S::UNAUTHORIZED,
            S::INTERNAL_SERVER_ERROR,
            S::SERVICE_UNAVAILABLE,
            S::FOUND,
        ] {
            assert!(
                matches!(classify(s, "x".into()), NotifyError::Unavailable(_)),
                "{s}"
            );
        }
    }
}
