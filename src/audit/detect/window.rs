//! Sliding windows over event times, per key, bounded in memory: what the rules count with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// Keys a rule tracks at most; past it, keys quiet for a whole window go first.
pub const MAX_KEYS: usize = 50_000;

/// "N events within W" per key, remembering only the last N times of each key.
pub struct Burst<K> {
    pub threshold: usize,
    pub window_ms: i64,
    times: HashMap<K, VecDeque<i64>>,
    /// Until when a key that fired stays quiet (one alert per burst, not one per event).
    quiet_until: HashMap<K, i64>,
}

impl<K: Hash + Eq + Clone> Burst<K> {
    pub fn new(threshold: usize, window_ms: i64) -> Self {
        Burst {
            threshold: threshold.max(1),
            window_ms,
            times: HashMap::new(),
            quiet_until: HashMap::new(),
        }
    }

    /// Counts an event of `key` at `at`; true when it completes a burst (once per window).
    pub fn hit(&mut self, key: &K, at: i64) -> bool {
        self.bound(at);
        let times = self.times.entry(key.clone()).or_default();
        times.push_back(at);
        while times.len() > self.threshold {
            times.pop_front();
        }
        let full = times.len() == self.threshold
            && times
                .front()
                .is_some_and(|first| at - first <= self.window_ms);
        if !full || self.quiet_until.get(key).is_some_and(|until| at < *until) {
            return false;
        }
        self.quiet_until.insert(key.clone(), at + self.window_ms);
        true
    }

    fn bound(&mut self, now: i64) {
        if self.times.len() < MAX_KEYS {
            return;
        }
        let w = self.window_ms;
        self.times
            .retain(|_, t| t.back().is_some_and(|last| now - last <= w));
        self.quiet_until.retain(|_, until| *until > now);
        if self.times.len() >= MAX_KEYS {
            // A flood of distinct keys inside one window: start over rather than grow.
            tracing::warn!("a detection window overflowed; its counts restart");
            self.times.clear();
        }
    }
}

/// "N distinct values within W" per key (accounts per address).
pub struct Distinct<K, V> {
    pub threshold: usize,
    pub window_ms: i64,
    seen: HashMap<K, HashMap<V, i64>>,
    quiet_until: HashMap<K, i64>,
}

impl<K: Hash + Eq + Clone, V: Hash + Eq + Clone> Distinct<K, V> {
    pub fn new(threshold: usize, window_ms: i64) -> Self {
        Distinct {
            threshold: threshold.max(1),
            window_ms,
            seen: HashMap::new(),
            quiet_until: HashMap::new(),
        }
    }

    /// Counts `value` for `key` at `at`; the distinct values when they reach the threshold
    /// (once per window).
    pub fn hit(&mut self, key: &K, value: &V, at: i64) -> Option<HashSet<V>> {
        if self.seen.len() >= MAX_KEYS {
            let w = self.window_ms;
            self.seen.retain(|_, vs| vs.values().any(|t| at - t <= w));
            self.quiet_until.retain(|_, until| *until > at);
            if self.seen.len() >= MAX_KEYS {
                tracing::warn!("a detection window overflowed; its counts restart");
                self.seen.clear();
            }
        }
        let w = self.window_ms;
        let values = self.seen.entry(key.clone()).or_default();
        values.insert(value.clone(), at);
        values.retain(|_, t| at - *t <= w);
        // Never more than a burst's worth of values per key.
        if values.len() > self.threshold * 2 {
            let mut by_age: Vec<(V, i64)> = values.drain().collect();
            by_age.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
            by_age.truncate(self.threshold * 2);
            values.extend(by_age);
        }
        if values.len() < self.threshold
            || self.quiet_until.get(key).is_some_and(|until| at < *until)
        {
            return None;
        }
        self.quiet_until.insert(key.clone(), at + self.window_ms);
        Some(values.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_fires_once_within_its_window() {
        let mut b = Burst::new(3, 1_000);
        assert!(!b.hit(&"ip", 0));
        assert!(!b.hit(&"ip", 400));
        assert!(b.hit(&"ip", 900), "three within a second");
        assert!(!b.hit(&"ip", 950), "quiet for the window");
        assert!(!b.hit(&"other", 950));
        // Spread out: never three within a second.
        let mut slow = Burst::new(3, 1_000);
        assert!(![0, 600, 1_200, 1_800].iter().any(|t| slow.hit(&"ip", *t)));
        // After the quiet window, a new burst fires again.
        assert!(!b.hit(&"ip", 2_000) && !b.hit(&"ip", 2_100));
        assert!(b.hit(&"ip", 2_200));
    }

    #[test]
    fn distinct_values_are_counted_within_the_window() {
        let mut d = Distinct::new(3, 1_000);
        assert!(d.hit(&"ip", &"a", 0).is_none());
        assert!(d.hit(&"ip", &"a", 10).is_none(), "the same account again");
        assert!(d.hit(&"ip", &"b", 20).is_none());
        let fired = d.hit(&"ip", &"c", 30).expect("three accounts");
        assert_eq!(fired.len(), 3);
        assert!(d.hit(&"ip", &"d", 40).is_none(), "quiet for the window");
        let mut late = Distinct::new(3, 1_000);
        late.hit(&"ip", &"a", 0);
        late.hit(&"ip", &"b", 1_500);
        assert!(late.hit(&"ip", &"c", 1_600).is_none(), "a aged out");
    }
}
