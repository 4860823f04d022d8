//! One signed HTTP POST per record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use reqwest::header::CONTENT_TYPE;
use ring::hmac;

use super::{DeliveryError, WebhookSettings};

const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct WebhookClient {
    url: url::Url,
    /// For messages: the URL may carry credentials in its user part or query.
    host: String,
    key: hmac::Key,
    client: reqwest::Client,
}

impl WebhookClient {
    pub(super) fn new(settings: &WebhookSettings) -> anyhow::Result<WebhookClient> {
        anyhow::ensure!(
            matches!(settings.url.scheme(), "https" | "http"),
            "the webhook URL must be http or https"
        );
        anyhow::ensure!(!settings.secret.is_empty(), "the webhook secret is empty");
        let host = settings.url.host_str().unwrap_or_default().to_string();
        if settings.url.scheme() == "http" {
            tracing::warn!(host = %host, "the audit webhook is plain HTTP");
        }
        let client = reqwest::Client::builder()
            // A redirect could carry signed audit records to a host nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("vhod/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the webhook HTTP client")?;
        Ok(WebhookClient {
            url: settings.url.clone(),
            host,
            key: hmac::Key::new(hmac::HMAC_SHA256, settings.secret.as_bytes()),
            client,
        })
    }

    /// `body` is the record's JSON; any 2xx answer delivers it.
    pub(super) async fn deliver(&self, seq: i64, body: &[u8]) -> Result<(), DeliveryError> {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("Vhod-Signature", signature_header(&self.key, t, body))
            .header("Vhod-Seq", seq.to_string())
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| DeliveryError::Http {
                host: self.host.clone(),
                source: e.without_url(),
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Status {
                host: self.host.clone(),
                status: status.as_u16(),
            })
        }
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the time is signed with the
/// body so a captured request cannot be replayed later as new.
pub(super) fn signature_header(key: &hmac::Key, t: u64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // Computed apart from ring: Python's hmac over b'1700000000.{"seq":1}'.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"whsec-test");
        assert_eq!(
            signature_header(&key, 1_700_000_000, br#"{"seq":1}"#),
            "t=1700000000,v1=80816fa7a537301a9319ba60b7073f875fa1f3feab2df82cf320ac7162d90068"
        );
    }
}
