//! Time, injected: the stores and the services ask a [`Clock`] rather than the system, so that
//! every decision that depends on time (lock-outs, code and session lifetimes, certificate
//! validity) can be tested at a chosen moment. Unix seconds are what tokens, sessions and audit
//! rows carry.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the time comes from: the system's, or (tests) one that moves only when told.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds since the epoch when set; the system's time otherwise.
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock standing at `secs` (Unix seconds) until moved.
    pub fn at(secs: i64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicI64::new(secs.saturating_mul(1000)))),
        }
    }

    /// Moves a set clock on by `secs` (every copy of it sees the move); a system clock moves on
    /// its own.
    pub fn advance(&self, secs: i64) {
        if let Some(ms) = &self.fixed {
            ms.fetch_add(secs.saturating_mul(1000), Ordering::AcqRel);
        }
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    pub fn now_millis(&self) -> i64 {
        match &self.fixed {
            Some(ms) => ms.load(Ordering::Acquire),
            None => system_millis(),
        }
    }
}

fn system_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The system's time, for what has no clock handed to it: the command line; audit events
/// (stamped when they happen, whatever clock the decision used); state whose lifetime the
/// store itself counts (ephemeral entries with their TTL, browser sessions dated by
/// tower-sessions); signing key files.
pub fn now() -> i64 {
    system_millis().div_euclid(1000)
}

pub fn now_millis() -> i64 {
    system_millis()
}

/// RFC 3339 UTC time for human-facing output (outbox, logs).
pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_moves_only_when_told_and_every_copy_with_it() {
        let clock = Clock::at(1_000);
        let copy = clock.clone();
        assert_eq!(clock.now(), 1_000);
        clock.advance(61);
        assert_eq!(copy.now(), 1_061);
        assert_eq!(copy.now_millis(), 1_061_000);
        let system = Clock::system();
        assert!((system.now() - now()).abs() <= 1);
    }
}
