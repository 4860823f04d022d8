//! Brute-force and SMS-pumping defences, counted in the shared ephemeral store (Redis in
//! production, so every replica sees the same counts).
//!
//! Logins: failures count under the submitted login identifier, normalised as account lookup
//! does (a phone number in any writing is one identifier) and hashed, whether or not an account
//! has it, so delays and locks look the same for existing and unknown logins; nothing is stored
//! but short-lived counters. Failures also count per existing account (its login name and phone
//! number together). A run of `lockout_threshold` failures starts a lock episode of
//! `lockout_seconds` for the identifier (and the account): during it even the right password
//! gets the generic answer, failures are not counted, and every answer waits the longest delay;
//! when it ends the count starts again from zero. Failures per IP lock that address out.
//! SMS: per IP, per phone prefix (operator) and global hourly budgets.

use std::time::Duration;

use crate::config::Limits;
use crate::identity::account;
use crate::secrets;
use crate::store::StoreError;
use crate::store::ephemeral::keys::{DAY, HOUR};
use crate::store::ephemeral::{Ephemeral, Key, keys};

/// Consecutive failures are forgotten after a day without any.
const FAILURE_MEMORY: Duration = DAY;
/// The longest delay is this many times the base (the 7th consecutive failure on).
const MAX_DELAY_FACTOR: u32 = 16;

/// Where a login's failures count: the submitted identifier, normalised as account lookup
/// normalises it, then hashed (the store never holds what was typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKey(String);

impl LoginKey {
    pub fn of(login: &str) -> LoginKey {
        LoginKey(secrets::token_hash(&account::login_identifier(login)))
    }

    /// As the audit trail records it (the officers search failures by login through it).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What failures are counted for: a login identifier, or an account.
#[derive(Clone, Copy)]
enum Counted<'a> {
    Login(&'a LoginKey),
    Account(&'a str),
}

impl Counted<'_> {
    fn stored(&self) -> keys::Counted<'_> {
        match self {
            Counted::Login(k) => keys::Counted::Login(&k.0),
            Counted::Account(id) => keys::Counted::Account(id),
        }
    }

    fn lock_key(&self) -> Key {
        keys::lock(self.stored())
    }

    fn fail_key(&self) -> Key {
        keys::failures(self.stored())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too many failures from this address: no password is checked at all.
    IpLocked,
}

/// Before any password work: is this address locked out?
pub async fn login_gate(eph: &Ephemeral, ip: &str) -> Result<Gate, StoreError> {
    Ok(if eph.get(&keys::address_lock(ip)).await?.is_some() {
        Gate::IpLocked
    } else {
        Gate::Open
    })
}

pub async fn account_locked(eph: &Ephemeral, account_id: &str) -> Result<bool, StoreError> {
    Ok(eph
        .get(&Counted::Account(account_id).lock_key())
        .await?
        .is_some())
}

/// Is this login in a lock episode, by its identifier or by the account it names?
pub async fn login_locked(
    eph: &Ephemeral,
    key: &LoginKey,
    account_id: Option<&str>,
) -> Result<bool, StoreError> {
    if eph.get(&Counted::Login(key).lock_key()).await?.is_some() {
        return Ok(true);
    }
    match account_id {
        Some(id) => account_locked(eph, id).await,
        None => Ok(false),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// Consecutive failures so far (of the login identifier; of the account for
    /// [`record_failure`]).
    pub consecutive: u64,
    /// In a lock episode (it may have started with this failure).
    pub locked: bool,
    /// This failure started the account's lock episode (tell its owner).
    pub locked_now: bool,
}

impl Failure {
    /// The growing delay before answering: nothing for the first two failures, then doubling
    /// from `base` up to 16 × `base`, which is also the delay of every answer during a lock.
    pub fn delay(&self, base: Duration) -> Duration {
        if self.locked {
            return base * MAX_DELAY_FACTOR;
        }
        match self.consecutive {
            0..=2 => Duration::ZERO,
            n => base * 2u32.pow((n - 3).min(4) as u32),
        }
    }
}

/// Counts one failure for `what`, starting a lock episode at the threshold.
async fn count(eph: &Ephemeral, limits: &Limits, what: Counted<'_>) -> Result<Failure, StoreError> {
    if eph.get(&what.lock_key()).await?.is_some() {
        // During a lock nothing is counted: when it ends, the run starts from zero.
        return Ok(Failure {
            consecutive: limits.lockout_threshold,
            locked: true,
            locked_now: false,
        });
    }
    let consecutive = eph.incr(&what.fail_key(), FAILURE_MEMORY).await?;
    if consecutive < limits.lockout_threshold {
        return Ok(Failure {
            consecutive,
            ..Failure::default()
        });
    }
    let window = Duration::from_secs(limits.lockout_seconds);
    let locked_now = eph.put_if_absent(&what.lock_key(), b"1", window).await?;
    if locked_now {
        eph.delete(&what.fail_key()).await?;
    }
    Ok(Failure {
        consecutive,
        locked: true,
        locked_now,
    })
}

async fn count_ip(eph: &Ephemeral, limits: &Limits, ip: &str) -> Result<(), StoreError> {
    let window = Duration::from_secs(limits.lockout_seconds);
    if eph.incr(&keys::address_failures(ip), window).await? >= limits.ip_failure_limit {
        eph.put(&keys::address_lock(ip), b"1", window).await?;
    }
    Ok(())
}

/// A failed password login: counted for the address, the submitted identifier and the account
/// it names (if any). The delay and the lock state come from the identifier alone, so they are
/// the same whether an account has it or not; `locked_now` is the account's.
pub async fn record_login_failure(
    eph: &Ephemeral,
    limits: &Limits,
    key: &LoginKey,
    account_id: Option<&str>,
    ip: &str,
) -> Result<Failure, StoreError> {
    count_ip(eph, limits, ip).await?;
    let by_login = count(eph, limits, Counted::Login(key)).await?;
    let locked_now = match account_id {
        Some(id) => count(eph, limits, Counted::Account(id)).await?.locked_now,
        None => false,
    };
    Ok(Failure {
        locked_now,
        ..by_login
    })
}

/// A failed login of a method without a login identifier (certificates): counted for the
/// address and, when known, the account.
pub async fn record_failure(
    eph: &Ephemeral,
    limits: &Limits,
    account_id: Option<&str>,
    ip: &str,
) -> Result<Failure, StoreError> {
    count_ip(eph, limits, ip).await?;
    match account_id {
        Some(id) => count(eph, limits, Counted::Account(id)).await,
        None => Ok(Failure::default()),
    }
}

/// A successful login ends the run of consecutive failures of its identifier and account.
pub async fn record_success(
    eph: &Ephemeral,
    key: &LoginKey,
    account_id: &str,
) -> Result<(), StoreError> {
    eph.delete(&Counted::Login(key).fail_key()).await?;
    eph.delete(&Counted::Account(account_id).fail_key()).await
}

/// After a password reset the owner is back in control: lift the locks of the account and of
/// its login identifiers (`logins`: its login name and phone number).
pub async fn unlock(eph: &Ephemeral, account_id: &str, logins: &[&str]) -> Result<(), StoreError> {
    let mut all = vec![Counted::Account(account_id)];
    let keys: Vec<LoginKey> = logins.iter().map(|l| LoginKey::of(l)).collect();
    all.extend(keys.iter().map(Counted::Login));
    for what in all {
        eph.delete(&what.lock_key()).await?;
        eph.delete(&what.fail_key()).await?;
    }
    Ok(())
}

/// True the first time today for (`what`, `subject`): notices that must not be repeated
/// (a lock-out notice, "someone tried to register with your number"). The subject is hashed.
pub async fn first_today(eph: &Ephemeral, what: &str, subject: &str) -> Result<bool, StoreError> {
    eph.put_if_absent(&once_key(what, subject), b"1", DAY).await
}

/// Undoes [`first_today`] when the notice could not go out after all, so a later occasion
/// tries again instead of the day passing in silence.
pub async fn forget_today(eph: &Ephemeral, what: &str, subject: &str) -> Result<(), StoreError> {
    eph.delete(&once_key(what, subject)).await
}

fn once_key(what: &str, subject: &str) -> Key {
    keys::once_today(what, subject)
}

/// Takes one request from a per-IP hourly budget (`what`: registration, password reset…);
/// false when it is used up.
pub async fn allow_per_ip(
    eph: &Ephemeral,
    what: &str,
    ip: &str,
    per_hour: u64,
) -> Result<bool, StoreError> {
    Ok(eph.incr(&keys::per_address_hour(what, ip), HOUR).await? <= per_hour)
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

/// Takes one SMS from the client address's hourly budget.
pub async fn allow_sms_from(
    eph: &Ephemeral,
    limits: &Limits,
    ip: &str,
) -> Result<Result<(), SmsRefused>, StoreError> {
    if eph.incr(&keys::sms_from(ip), HOUR).await? > limits.sms_per_ip_hour {
        return Ok(Err(SmsRefused::Ip));
    }
    Ok(Ok(()))
}

/// Takes one SMS from the operator prefix's and the global hourly budgets.
pub async fn allow_sms_to(
    eph: &Ephemeral,
    limits: &Limits,
    phone_prefix: &str,
) -> Result<Result<(), SmsRefused>, StoreError> {
    if eph.incr(&keys::sms_to(phone_prefix), HOUR).await? > limits.sms_per_prefix_hour {
        return Ok(Err(SmsRefused::Prefix));
    }
    if eph.incr(&keys::sms_all(), HOUR).await? > limits.sms_global_hour {
        return Ok(Err(SmsRefused::Global));
    }
    Ok(Ok(()))
}

impl crate::audit::ReasonCode for SmsRefused {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One SMS from each hourly budget, as a code to a person takes it.
    async fn allow_sms(
        eph: &Ephemeral,
        limits: &Limits,
        ip: &str,
        phone_prefix: &str,
    ) -> Result<Result<(), SmsRefused>, StoreError> {
        if let Err(r) = allow_sms_from(eph, limits, ip).await? {
            return Ok(Err(r));
        }
        allow_sms_to(eph, limits, phone_prefix).await
    }

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
            register_per_ip_hour: 20,
            reset_per_ip_hour: 20,
            password_signin_reserve: 1,
            password_other_queue: 16,
            pending_account_ttl: 86_400,
        }
    }

    fn key(s: &str) -> LoginKey {
        LoginKey::of(s)
    }

    #[tokio::test]
    async fn ten_consecutive_failures_lock_the_account_once() {
        let eph = Ephemeral::memory();
        let l = limits();
        let k = key("ivan");
        for n in 1..=9 {
            let f = record_login_failure(&eph, &l, &k, Some("acc"), "1.2.3.4")
                .await
                .unwrap();
            assert_eq!(f.consecutive, n);
            assert!(!f.locked_now && !f.locked);
        }
        assert!(!account_locked(&eph, "acc").await.unwrap());
        let tenth = record_login_failure(&eph, &l, &k, Some("acc"), "1.2.3.4")
            .await
            .unwrap();
        assert!(tenth.locked_now && tenth.locked);
        assert!(account_locked(&eph, "acc").await.unwrap());
        assert!(login_locked(&eph, &k, None).await.unwrap());
        let eleventh = record_login_failure(&eph, &l, &k, Some("acc"), "1.2.3.4")
            .await
            .unwrap();
        assert!(!eleventh.locked_now, "the owner is told once");
        assert!(eleventh.locked);
    }

    #[tokio::test]
    async fn unknown_and_existing_logins_count_alike() {
        let eph = Ephemeral::memory();
        let l = limits();
        for n in 1..=12 {
            let known = record_login_failure(&eph, &l, &key("ivan"), Some("acc"), "ip")
                .await
                .unwrap();
            let unknown = record_login_failure(&eph, &l, &key("nobody"), None, "ip")
                .await
                .unwrap();
            assert_eq!(
                (known.consecutive, known.locked),
                (unknown.consecutive, unknown.locked),
                "failure {n}"
            );
            let base = Duration::from_millis(100);
            assert_eq!(known.delay(base), unknown.delay(base), "failure {n}");
        }
        assert!(login_locked(&eph, &key("nobody"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_phone_number_in_any_writing_is_one_login() {
        let eph = Ephemeral::memory();
        let l = limits();
        assert_eq!(key("+375 29 123-45-67"), key("80291234567"));
        assert_eq!(key("IVAN "), key("ivan"));
        assert_ne!(key("ivan"), key("+375291234567"));
        for w in ["+375 29 123-45-67", "80291234567", "8 (029) 123 45 67"] {
            record_login_failure(&eph, &l, &key(w), None, "ip")
                .await
                .unwrap();
        }
        let f = record_login_failure(&eph, &l, &key("375291234567"), None, "ip")
            .await
            .unwrap();
        assert_eq!(f.consecutive, 4);
    }

    #[tokio::test]
    async fn a_lock_ends_with_a_fresh_count() {
        let eph = Ephemeral::memory();
        let mut l = limits();
        l.lockout_threshold = 3;
        l.lockout_seconds = 1;
        let k = key("ivan");
        for _ in 0..3 {
            record_login_failure(&eph, &l, &k, Some("acc"), "ip")
                .await
                .unwrap();
        }
        // Failures during the lock are not counted.
        let during = record_login_failure(&eph, &l, &k, Some("acc"), "ip")
            .await
            .unwrap();
        assert!(during.locked && !during.locked_now);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(!login_locked(&eph, &k, Some("acc")).await.unwrap());
        let after = record_login_failure(&eph, &l, &k, Some("acc"), "ip")
            .await
            .unwrap();
        assert_eq!((after.consecutive, after.locked), (1, false));
        assert!(!account_locked(&eph, "acc").await.unwrap());
    }

    #[tokio::test]
    async fn success_resets_the_run() {
        let eph = Ephemeral::memory();
        let l = limits();
        let k = key("ivan");
        for _ in 0..9 {
            record_login_failure(&eph, &l, &k, Some("acc"), "ip")
                .await
                .unwrap();
        }
        record_success(&eph, &k, "acc").await.unwrap();
        let f = record_login_failure(&eph, &l, &k, Some("acc"), "ip")
            .await
            .unwrap();
        assert_eq!(f.consecutive, 1);
    }

    #[tokio::test]
    async fn unlock_lifts_the_account_and_its_logins() {
        let eph = Ephemeral::memory();
        let mut l = limits();
        l.lockout_threshold = 2;
        for _ in 0..2 {
            record_login_failure(&eph, &l, &key("ivan"), Some("acc"), "ip")
                .await
                .unwrap();
        }
        assert!(login_locked(&eph, &key("ivan"), Some("acc")).await.unwrap());
        unlock(&eph, "acc", &["ivan", "+375291234567"])
            .await
            .unwrap();
        assert!(!login_locked(&eph, &key("ivan"), Some("acc")).await.unwrap());
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let base = Duration::from_millis(100);
        let d = |n| {
            Failure {
                consecutive: n,
                ..Failure::default()
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
        let locked = Failure {
            consecutive: 1,
            locked: true,
            locked_now: false,
        };
        assert_eq!(locked.delay(base), Duration::from_millis(1600));
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
    async fn notices_once_a_day_and_per_ip_budgets() {
        let eph = Ephemeral::memory();
        assert!(first_today(&eph, "lock", "acc").await.unwrap());
        assert!(!first_today(&eph, "lock", "acc").await.unwrap());
        assert!(first_today(&eph, "lock", "other").await.unwrap());
        for _ in 0..2 {
            assert!(allow_per_ip(&eph, "register", "ip", 2).await.unwrap());
        }
        assert!(!allow_per_ip(&eph, "register", "ip", 2).await.unwrap());
        assert!(allow_per_ip(&eph, "reset", "ip", 2).await.unwrap());
        assert!(allow_per_ip(&eph, "register", "ip2", 2).await.unwrap());
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
