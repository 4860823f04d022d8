//! The challenge a certificate holder signs: fresh random bytes bound to one login transaction
//! (which only the browser that started it can use), single-use, two minutes.
//!
//! The signed bytes are a small JSON document, `{"nonce":"…","aud":"<issuer>"}`: the audience
//! lets signing software show where the signature goes, and a signature made for another
//! site's challenge can never match one of ours.

use std::time::Duration;

use crate::secrets;
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, Key, keys};

pub const TTL_SECS: u64 = 120;

fn key(tx_id: &str) -> Key {
    keys::certificate_challenge(tx_id)
}

/// Issues a new challenge for the transaction, replacing any earlier one; returns its bytes.
pub async fn issue(eph: &Ephemeral, tx_id: &str, audience: &str) -> Result<Vec<u8>, StoreError> {
    let nonce = secrets::b64url(&secrets::random_bytes::<32>());
    let bytes = serde_json::to_vec(&serde_json::json!({"nonce": nonce, "aud": audience}))
        .unwrap_or_else(|_| nonce.clone().into_bytes());
    eph.put(&key(tx_id), &bytes, Duration::from_secs(TTL_SECS))
        .await?;
    Ok(bytes)
}

/// Takes the transaction's challenge: whatever happens next, it cannot be used again.
pub async fn take(eph: &Ephemeral, tx_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    eph.take(&key(tx_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_challenge_is_fresh_bound_and_single_use() {
        let eph = Ephemeral::memory();
        let a = issue(&eph, "tx-a", "https://vhod.example").await.unwrap();
        let b = issue(&eph, "tx-b", "https://vhod.example").await.unwrap();
        assert_ne!(a, b);
        let doc: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(doc["aud"], "https://vhod.example");
        assert_eq!(
            secrets::b64url_decode(doc["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(take(&eph, "tx-a").await.unwrap(), Some(a));
        assert_eq!(take(&eph, "tx-a").await.unwrap(), None);
        // A newer challenge replaces the older one of the same transaction.
        let c = issue(&eph, "tx-b", "https://vhod.example").await.unwrap();
        assert_eq!(take(&eph, "tx-b").await.unwrap(), Some(c));
    }
}
