//! The login transaction: a validated authorization request waiting for the person to sign in.
//! Lives in the ephemeral store under a random id that the browser's cookie session also holds,
//! so a transaction cannot be continued from another browser.
//!
//! Sign-in knows only what it needs of the request that started it ([`Pending`]); the
//! protocol's own fields ride along untouched for the protocol to continue with, so `authn`
//! knows nothing of OpenID Connect (and stored transactions keep their shape).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Acr;
use crate::secrets;
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, Key, keys};

/// The request waiting for a sign-in, as the login sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The relying client (its name on the page, its acr rules, the audit).
    pub client_id: String,
    /// Where the client is: the "back to the service" link.
    pub redirect_uri: String,
    /// The assurance the client asked for, strongest first.
    #[serde(default)]
    pub acr_values: Vec<Acr>,
    /// The login to fill in on the form.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The languages the client asked for.
    #[serde(default)]
    pub ui_locales: Option<String>,
    /// The sign-in must be at most this many seconds old (0: made now), when the request says
    /// so: an upstream is then asked to authenticate the person again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_within: Option<i64>,
    /// The rest of the protocol's request, for the protocol alone.
    #[serde(flatten)]
    pub protocol: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub id: String,
    pub request: Pending,
    pub created_at: i64,
    /// Set when the person is already signed in (this account) but not strongly enough for
    /// this request: only a stronger method may finish, and a certificate they present may be
    /// linked to this account, since they have just proved its password.
    #[serde(default)]
    pub step_up: Option<String>,
    /// The person signed in but the policies keep the account out of the client: the reason
    /// code the refusal page explains (the login then only ends, with access_denied).
    #[serde(default)]
    pub refused: Option<String>,
}

fn key(id: &str) -> Key {
    keys::login_transaction(id)
}

pub fn valid_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Starts a transaction at `now`, to live `ttl` seconds.
pub async fn start(
    eph: &Ephemeral,
    request: Pending,
    step_up: Option<String>,
    ttl: u64,
    now: i64,
) -> Result<LoginTransaction, StoreError> {
    let tx = LoginTransaction {
        id: secrets::random_id(),
        request,
        created_at: now,
        step_up,
        refused: None,
    };
    save(eph, &tx, ttl, now).await?;
    Ok(tx)
}

/// Stores (or overwrites) the transaction at `now`; its lifetime still counts from its
/// creation, so a step-up cannot stretch it.
pub async fn save(
    eph: &Ephemeral,
    tx: &LoginTransaction,
    ttl: u64,
    now: i64,
) -> Result<(), StoreError> {
    let left = Duration::from_secs(lifetime_left(tx.created_at, ttl, now));
    eph.put_json(&key(&tx.id), tx, left).await
}

/// Seconds left of a lifetime `ttl` that began at `created_at`; at least one, so that a
/// transaction saved at its very end is still stored (and expires at once) rather than refused.
fn lifetime_left(created_at: i64, ttl: u64, now: i64) -> u64 {
    (created_at + ttl as i64 - now).max(1) as u64
}

pub async fn load(eph: &Ephemeral, id: &str) -> Result<Option<LoginTransaction>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    eph.get_json(&key(id)).await
}

/// Consumes the transaction: a finished login cannot be replayed into a second code.
pub async fn finish(eph: &Ephemeral, id: &str) -> Result<Option<LoginTransaction>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    eph.take_json(&key(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_transaction_keeps_only_the_rest_of_its_life() {
        let created = 1_800_000_000;
        assert_eq!(lifetime_left(created, 600, created), 600);
        assert_eq!(lifetime_left(created, 600, created + 450), 150);
        assert_eq!(lifetime_left(created, 600, created + 600), 1);
        assert_eq!(lifetime_left(created, 600, created + 10_000), 1);
    }

    #[test]
    fn the_protocol_fields_ride_along_unchanged() {
        let stored = serde_json::json!({
            "client_id": "c", "redirect_uri": "https://c.example/cb", "state": "s",
            "scope": ["openid"], "acr_values": ["high"], "login_hint": null, "ui_locales": "be",
            "prompt": "Login", "max_age": 0,
        });
        let p: Pending = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(p.acr_values, vec![Acr::High]);
        assert_eq!(p.ui_locales.as_deref(), Some("be"));
        assert_eq!(p.protocol["state"], "s");
        assert_eq!(serde_json::to_value(&p).unwrap(), stored);
    }
}
