//! The login transaction: a validated authorization request waiting for the person to sign in.
//! Lives in the ephemeral store under a random id that the browser's cookie session also holds,
//! so a transaction cannot be continued from another browser.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::oidc::authorize::request::AuthorizationRequest;
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, Key, keys};
use crate::{clock, secrets};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub id: String,
    pub request: AuthorizationRequest,
    pub created_at: i64,
    /// Set when the person is already signed in (this account) but not strongly enough for
    /// this request: only a stronger method may finish, and a certificate they present may be
    /// linked to this account, since they have just proved its password.
    #[serde(default)]
    pub step_up: Option<String>,
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

pub async fn start(
    eph: &Ephemeral,
    request: AuthorizationRequest,
    step_up: Option<String>,
    ttl: u64,
) -> Result<LoginTransaction, StoreError> {
    let tx = LoginTransaction {
        id: secrets::random_id(),
        request,
        created_at: clock::now(),
        step_up,
    };
    save(eph, &tx, ttl).await?;
    Ok(tx)
}

/// Stores (or overwrites) the transaction; its lifetime still counts from its creation.
pub async fn save(eph: &Ephemeral, tx: &LoginTransaction, ttl: u64) -> Result<(), StoreError> {
    let left = (tx.created_at + ttl as i64 - clock::now()).max(1) as u64;
    eph.put_json(&key(&tx.id), tx, Duration::from_secs(left))
        .await
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
