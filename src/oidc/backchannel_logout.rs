//! OpenID Connect Back-Channel Logout 1.0: when a single sign-on session ends, every client that
//! obtained tokens in it and registered a backchannel_logout_uri is told, server to server.
//!
//! Delivery runs after the person's logout has completed (a slow relying party must not hold up
//! the browser), with a few retries; every delivery's outcome is an audit event.

use std::time::Duration;

use crate::audit::{Audit, Event, Kind, Reason};
use crate::identity::client::ClientRegistry;
use crate::store::sql::Db;
use crate::tokens::mint::{self, Minter};

const ATTEMPTS: u32 = 3;

/// What telling the clients needs: the session's grants, the clients, the token minter, the
/// outbound HTTP client, the audit trail.
pub struct Backchannel<'a> {
    pub db: &'a Db,
    pub clients: &'a ClientRegistry,
    pub minter: Minter<'a>,
    pub http: &'a reqwest::Client,
    pub audit: &'a Audit,
}

/// Tells every client of session `sid` (of the person `sub`) that it ended. The assembly runs
/// this on its own task, after the logout has answered.
pub async fn notify(b: &Backchannel<'_>, sid: &str, sub: &str) {
    let clients = match b.db.grants().clients_of_session(sid).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout: listing the session's clients failed");
            return;
        }
    };
    for client_id in clients {
        let Some(client) = b.clients.get(&client_id) else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = match mint::logout_token(&b.minter, &client, sub, sid) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout: minting failed");
                continue;
            }
        };
        let outcome = deliver(b.http, &uri, &token).await;
        let mut ev = Event::of(Kind::BackchannelLogout, outcome.is_ok())
            .subject(Some(sub))
            .client(client.id.as_str())
            .details(serde_json::json!({"sid": sid}));
        if let Err(why) = outcome {
            ev = ev
                .reason(Reason::NotDelivered)
                .details(serde_json::json!({"sid": sid, "error": why}));
        }
        b.audit.enqueue(ev).await;
    }
}

async fn deliver(http: &reqwest::Client, uri: &str, token: &str) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
        }
        match http.post(uri).form(&[("logout_token", token)]).send().await {
            // §2.8: 200 OK on success (204 is common in practice); 4xx will not get better.
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() => {
                return Err(format!("relying party answered {}", r.status()));
            }
            Ok(r) => last = format!("relying party answered {}", r.status()),
            Err(e) => {
                last = format!(
                    "delivery failed: {}",
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection"
                    }
                )
            }
        }
    }
    Err(last)
}
