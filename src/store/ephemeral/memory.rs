//! In-process ephemeral store for a single instance. Sharded map; expired entries are invisible
//! at once and swept periodically.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

#[derive(Default)]
pub struct MemoryStore {
    values: DashMap<String, (Vec<u8>, Instant)>,
    counters: DashMap<String, (u64, Instant)>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        let store = Arc::new(MemoryStore::default());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&store);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    let Some(store) = weak.upgrade() else { break };
                    store.sweep();
                }
            });
        }
        store
    }

    fn sweep(&self) {
        let now = Instant::now();
        self.values.retain(|_, (_, exp)| *exp > now);
        self.counters.retain(|_, (_, exp)| *exp > now);
    }

    pub fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        self.values
            .insert(key.to_string(), (value.to_vec(), Instant::now() + ttl));
    }

    pub fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let now = Instant::now();
        match self.values.entry(key.to_string()) {
            Entry::Occupied(mut e) if e.get().1 <= now => {
                e.insert((value.to_vec(), now + ttl));
                true
            }
            Entry::Occupied(_) => false,
            Entry::Vacant(e) => {
                e.insert((value.to_vec(), now + ttl));
                true
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.values
            .get(key)
            .filter(|v| v.1 > now)
            .map(|v| v.0.clone())
    }

    pub fn take(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.values
            .remove(key)
            .filter(|(_, (_, exp))| *exp > now)
            .map(|(_, (v, _))| v)
    }

    /// Removes the key whether it holds a value or a counter (one keyspace, as in Redis).
    pub fn delete(&self, key: &str) {
        self.values.remove(key);
        self.counters.remove(key);
    }

    pub fn incr(&self, key: &str, window: Duration) -> u64 {
        let now = Instant::now();
        let mut entry = self
            .counters
            .entry(key.to_string())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        entry.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn take_is_single_use_and_ttl_is_respected() {
        let s = MemoryStore::new();
        s.put("a", b"1", Duration::from_secs(60));
        assert_eq!(s.take("a").as_deref(), Some(&b"1"[..]));
        assert_eq!(s.take("a"), None);
        s.put("b", b"1", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.get("b"), None);
        assert!(s.put_if_absent("b", b"2", Duration::from_secs(60)));
        assert!(!s.put_if_absent("b", b"3", Duration::from_secs(60)));
    }

    #[tokio::test]
    async fn counters_reset_after_their_window() {
        let s = MemoryStore::new();
        assert_eq!(s.incr("c", Duration::from_millis(20)), 1);
        assert_eq!(s.incr("c", Duration::from_millis(20)), 2);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(s.incr("c", Duration::from_millis(20)), 1);
    }
}
