//! Brute-force and SMS-pumping defences, counted in the shared ephemeral store (Redis in
//! production, so every replica sees the same counts).
//!
//! Logins: consecutive failures per account lock it for a while (default 10 → 15 minutes) and
//! slow each further answer down; failures per IP address lock that address out. A locked account
//! is refused with the same generic answer as a wrong password, after the same password work.
//! SMS: per IP, per phone prefix (operator) and global hourly budgets.

use std::time::Duration;

use crate::config::Limits;
use crate::store::StoreError;
use crate::store::ephemeral::Ephemeral;

const HOUR: Duration = Duration::from_secs(3600);
/// Consecutive failures are forgotten after a day without any.
const FAILURE_MEMORY: Duration = Duration::from_secs(86_400);

fn account_lock(id: &str) -> String {
    format!("lock:acct:{id}")
}
fn ip_lock(ip: &str) -> String {
    format!("lock:ip:{ip}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too many failures from this address: no password is checked at all.
    IpLocked,
}

/// Before any password work: is this address locked out?
pub async fn login_gate(eph: &Ephemeral, ip: &str) -> Result<Gate, StoreError> {
    Ok(if eph.get(&ip_lock(ip)).await?.is_some() {
        Gate::IpLocked
    } else {
        Gate::Open
    })
}

pub async fn account_locked(eph: &Ephemeral, account_id: &str) -> Result<bool, StoreError> {
    Ok(eph.get(&account_lock(account_id)).await?.is_some())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// Consecutive failures of the account so far (0 when the login names no account).
    pub consecutive: u64,
    /// This failure locked the account (tell its owner).
    pub locked_now: bool,
}

impl Failure {
    /// The growing delay before answering: nothing for the first two failures, then doubling
    /// from `base` up to 16 × `base`.
    pub fn delay(&self, base: Duration) -> Duration {
        match self.consecutive {
            0..=2 => Duration::ZERO,
            n => base * 2u32.pow((n - 3).min(4) as u32),
        }
    }
}

pub async fn record_failure(
    eph: &Ephemeral,
    limits: &Limits,
    account_id: Option<&str>,
    ip: &str,
) -> Result<Failure, StoreError> {
    let window = Duration::from_secs(limits.lockout_seconds);
    if eph.incr(&format!("fail:ip:{ip}"), window).await? >= limits.ip_failure_limit {
        eph.put(&ip_lock(ip), b"1", window).await?;
    }
    let Some(id) = account_id else {
        return Ok(Failure::default());
    };
    let consecutive = eph.incr(&format!("fail:acct:{id}"), FAILURE_MEMORY).await?;
    let mut locked_now = false;
    if consecutive >= limits.lockout_threshold
        && eph.put_if_absent(&account_lock(id), b"1", window).await?
    {
        locked_now = true;
    }
    Ok(Failure {
        consecutive,
        locked_now,
    })
}

/// A successful login ends the run of consecutive failures.
pub async fn record_success(eph: &Ephemeral, account_id: &str) -> Result<(), StoreError> {
    eph.delete(&format!("fail:acct:{account_id}")).await
}

/// After a password reset the owner is back in control: lift the lock.
pub async fn unlock(eph: &Ephemeral, account_id: &str) -> Result<(), StoreError> {
    eph.delete(&account_lock(account_id)).await?;
    eph.delete(&format!("fail:acct:{account_id}")).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsRefused {
    #[error("too many SMS from this address")]
    Ip,
    #[error("too many SMS to this operator prefix")]
    Prefix,
    #[error("the hourly SMS budget is used up")]
    Global,
}

impl SmsRefused {
    pub fn reason(self) -> &'static str {
        match self {
            SmsRefused::Ip => "sms_limit_ip",
            SmsRefused::Prefix => "sms_limit_prefix",
            SmsRefused::Global => "sms_limit_global",
        }
    }
}

/// Takes one SMS from each hourly budget, or says which budget is exhausted.
pub async fn allow_sms(
    eph: &Ephemeral,
    limits: &Limits,
    ip: &str,
    phone_prefix: &str,
) -> Result<Result<(), SmsRefused>, StoreError> {
    if eph.incr(&format!("sms:ip:{ip}"), HOUR).await? > limits.sms_per_ip_hour {
        return Ok(Err(SmsRefused::Ip));
    }
    if eph
        .incr(&format!("sms:prefix:{phone_prefix}"), HOUR)
        .await?
        > limits.sms_per_prefix_hour
    {
        return Ok(Err(SmsRefused::Prefix));
    }
    if eph.incr("sms:global", HOUR).await? > limits.sms_global_hour {
        return Ok(Err(SmsRefused::Global));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            password_min_length: 8,
            lockout_threshold: 10,
            lockout_seconds: 900,
            ip_failure_limit: 100,
            otp_daily_cap: 10,
            sms_per_ip_hour: 3,
            sms_per_prefix_hour: 5,
            sms_global_hour: 7,
            login_delay_ms: 1,
        }
    }

    #[tokio::test]
    async fn ten_consecutive_failures_lock_the_account_once() {
        let eph = Ephemeral::memory();
        let l = limits();
        for n in 1..=9 {
            let f = record_failure(&eph, &l, Some("acc"), "1.2.3.4")
                .await
                .unwrap();
            assert_eq!(f.consecutive, n);
            assert!(!f.locked_now);
        }
        assert!(!account_locked(&eph, "acc").await.unwrap());
        let tenth = record_failure(&eph, &l, Some("acc"), "1.2.3.4")
            .await
            .unwrap();
        assert!(tenth.locked_now);
        assert!(account_locked(&eph, "acc").await.unwrap());
        let eleventh = record_failure(&eph, &l, Some("acc"), "1.2.3.4")
            .await
            .unwrap();
        assert!(!eleventh.locked_now, "the owner is told once");
    }

    #[tokio::test]
    async fn success_resets_the_run() {
        let eph = Ephemeral::memory();
        let l = limits();
        for _ in 0..9 {
            record_failure(&eph, &l, Some("acc"), "ip").await.unwrap();
        }
        record_success(&eph, "acc").await.unwrap();
        let f = record_failure(&eph, &l, Some("acc"), "ip").await.unwrap();
        assert_eq!(f.consecutive, 1);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let base = Duration::from_millis(100);
        let d = |n| {
            Failure {
                consecutive: n,
                locked_now: false,
            }
            .delay(base)
        };
        assert_eq!(d(1), Duration::ZERO);
        assert_eq!(d(2), Duration::ZERO);
        assert_eq!(d(3), Duration::from_millis(100));
        assert_eq!(d(4), Duration::from_millis(200));
        assert_eq!(d(6), Duration::from_millis(800));
        assert_eq!(d(7), Duration::from_millis(1600));
        assert_eq!(d(50), Duration::from_millis(1600));
    }

    #[tokio::test]
    async fn the_ip_is_locked_out_at_its_limit() {
        let eph = Ephemeral::memory();
        let mut l = limits();
        l.ip_failure_limit = 3;
        for _ in 0..2 {
            record_failure(&eph, &l, None, "9.9.9.9").await.unwrap();
        }
        assert_eq!(login_gate(&eph, "9.9.9.9").await.unwrap(), Gate::Open);
        record_failure(&eph, &l, None, "9.9.9.9").await.unwrap();
        assert_eq!(login_gate(&eph, "9.9.9.9").await.unwrap(), Gate::IpLocked);
        assert_eq!(login_gate(&eph, "8.8.8.8").await.unwrap(), Gate::Open);
    }

    #[tokio::test]
    async fn sms_budgets_per_ip_prefix_and_hour() {
        let eph = Ephemeral::memory();
        let l = limits();
        for _ in 0..3 {
            assert_eq!(allow_sms(&eph, &l, "ip1", "+37529").await.unwrap(), Ok(()));
        }
        assert_eq!(
            allow_sms(&eph, &l, "ip1", "+37529").await.unwrap(),
            Err(SmsRefused::Ip)
        );
        assert_eq!(allow_sms(&eph, &l, "ip2", "+37529").await.unwrap(), Ok(()));
        assert_eq!(allow_sms(&eph, &l, "ip3", "+37529").await.unwrap(), Ok(()));
        assert_eq!(
            allow_sms(&eph, &l, "ip4", "+37529").await.unwrap(),
            Err(SmsRefused::Prefix)
        );
        assert_eq!(allow_sms(&eph, &l, "ip5", "+37533").await.unwrap(), Ok(()));
        assert_eq!(allow_sms(&eph, &l, "ip6", "+37544").await.unwrap(), Ok(()));
        assert_eq!(
            allow_sms(&eph, &l, "ip7", "+37525").await.unwrap(),
            Err(SmsRefused::Global)
        );
    }
}
