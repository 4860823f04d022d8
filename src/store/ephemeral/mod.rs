//! Short-lived shared state: authorization codes, login transactions, replay caches, counters,
//! browser sessions when Redis is configured. One small interface, two implementations:
//! in-process (default, one instance) and Redis (several instances behave as one).
//!
//! An enum rather than a trait object: two known backends, no boxing of futures on hot paths.

pub mod keys;
mod memory;
mod redis_store;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use keys::Key;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;

use super::StoreError;

#[derive(Clone)]
pub enum Ephemeral {
    Memory(std::sync::Arc<MemoryStore>),
    Redis(RedisStore),
}

impl Ephemeral {
    pub fn memory() -> Self {
        Ephemeral::Memory(MemoryStore::new())
    }

    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Ok(Ephemeral::Redis(RedisStore::connect(url, prefix).await?))
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Ephemeral::Redis(_))
    }

    pub async fn put(&self, key: &Key, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.put(key.as_str(), value, ttl);
                Ok(())
            }
            Ephemeral::Redis(r) => r.put(key.as_str(), value, ttl).await,
        }
    }

    /// Stores only if the key is absent; true when this call stored it (replay caches, locks).
    pub async fn put_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Ephemeral::Memory(m) => Ok(m.put_if_absent(key.as_str(), value, ttl)),
            Ephemeral::Redis(r) => r.put_if_absent(key.as_str(), value, ttl).await,
        }
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => Ok(m.get(key.as_str())),
            Ephemeral::Redis(r) => r.get(key.as_str()).await,
        }
    }

    /// Atomically reads and deletes: of two concurrent takers exactly one gets the value.
    pub async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Ephemeral::Memory(m) => Ok(m.take(key.as_str())),
            Ephemeral::Redis(r) => r.take(key.as_str()).await,
        }
    }

    pub async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(m) => {
                m.delete(key.as_str());
                Ok(())
            }
            Ephemeral::Redis(r) => r.delete(key.as_str()).await,
        }
    }

    /// Increments a counter that lives `window` from its first increment; returns the new count.
    pub async fn incr(&self, key: &Key, window: Duration) -> Result<u64, StoreError> {
        match self {
            Ephemeral::Memory(m) => Ok(m.incr(key.as_str(), window)),
            Ephemeral::Redis(r) => r.incr(key.as_str(), window).await,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Ephemeral::Memory(_) => Ok(()),
            Ephemeral::Redis(r) => r.ping().await,
        }
    }

    pub async fn put_json<T: Serialize>(
        &self,
        key: &Key,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put(key, &bytes, ttl).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        decode(self.get(key).await?)
    }

    pub async fn take_json<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        decode(self.take(key).await?)
    }
}

fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}
