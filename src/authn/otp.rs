//! One-time codes sent by SMS: 6 digits, 5 minutes, at most 5 attempts (then a new code is
//! needed), resent at most once a minute, with a daily cap per phone number. Codes live in the
//! ephemeral store only as salted hashes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secrets;
use crate::store::StoreError;
use crate::store::ephemeral::keys::{self, DAY, OtpPart};
use crate::store::ephemeral::{Ephemeral, Key};

pub const CODE_TTL: Duration = Duration::from_secs(300);
pub const MAX_ATTEMPTS: u64 = 5;
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// What a code confirms; codes of one purpose never satisfy another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirming a phone number (registration, change of number).
    Phone,
    /// Resetting a forgotten password.
    Recovery,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Phone => "phone",
            Purpose::Recovery => "recovery",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtpError {
    #[error("a code was sent less than a minute ago")]
    TooSoon,
    #[error("the daily number of codes for this phone number is used up")]
    DailyCap,
    #[error("the code is wrong")]
    Wrong { attempts_left: u64 },
    #[error("too many wrong attempts: request a new code")]
    TooManyAttempts,
    #[error("no valid code: it expired or was never sent")]
    Expired,
    #[error("storage is unavailable")]
    Store,
}

impl From<StoreError> for OtpError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "otp store failure");
        OtpError::Store
    }
}

impl OtpError {
    pub fn message_key(&self) -> &'static str {
        match self {
            OtpError::TooSoon => "otp_too_soon",
            OtpError::DailyCap => "otp_daily_cap",
            OtpError::Wrong { .. } => "otp_wrong",
            OtpError::TooManyAttempts => "otp_too_many",
            OtpError::Expired => "otp_expired",
            OtpError::Store => "server_error",
        }
    }

    /// The message for the person, with the attempts left after a wrong code.
    pub fn message(&self, lang: crate::web::i18n::Lang) -> String {
        use crate::web::i18n::text;
        match self {
            OtpError::Wrong { attempts_left } => {
                text(lang, "otp_wrong_left").replace("{n}", &attempts_left.to_string())
            }
            other => text(lang, other.message_key()).to_string(),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            OtpError::TooSoon => "resend_too_soon",
            OtpError::DailyCap => "daily_cap",
            OtpError::Wrong { .. } => "wrong_code",
            OtpError::TooManyAttempts => "too_many_attempts",
            OtpError::Expired => "code_expired",
            OtpError::Store => "store_unavailable",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    salt: String,
    hash: String,
    /// What the code was sent to (a phone number); returned on success.
    target: String,
}

/// The target of a decoy code starts with this (a phone number never does).
const DECOY: &str = "decoy:";

fn key(part: OtpPart, purpose: Purpose, subject: &str) -> Key {
    keys::otp(part, purpose.as_str(), subject)
}

fn digest(salt: &str, code: &str) -> String {
    secrets::b64url(&secrets::sha256(format!("{salt}:{code}").as_bytes()))
}

/// Six uniformly random digits (rejection sampling: no modulo bias).
pub fn random_code() -> String {
    loop {
        let n = u32::from_le_bytes(secrets::random_bytes::<4>());
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Issues a new code for `subject` (an account id) sent to `target` (its phone number).
/// The caller sends it; the previous code of the same purpose stops working.
pub async fn issue(
    eph: &Ephemeral,
    purpose: Purpose,
    subject: &str,
    target: &str,
    daily_cap: u64,
) -> Result<String, OtpError> {
    if !eph
        .put_if_absent(&key(OtpPart::Wait, purpose, subject), b"1", RESEND_INTERVAL)
        .await?
    {
        return Err(OtpError::TooSoon);
    }
    if eph.incr(&keys::otp_today(target), DAY).await? > daily_cap {
        return Err(OtpError::DailyCap);
    }
    let code = random_code();
    let salt = secrets::random_id();
    let stored = Stored {
        hash: digest(&salt, &code),
        salt,
        target: target.to_string(),
    };
    eph.delete(&key(OtpPart::Tries, purpose, subject)).await?;
    eph.put_json(&key(OtpPart::Code, purpose, subject), &stored, CODE_TTL)
        .await?;
    Ok(code)
}

/// Issues a code that is sent to nobody, for `subject` (a login that names no account, an
/// account with no phone to send to, a registration with someone else's confirmed number):
/// with the same resend wait, and a daily cap of its own counted for `stands_for` (what a real
/// code's cap would count: the number, where there is one), so the next step answers wrong
/// codes, spent attempts and expiry exactly as for a real code, and a real owner's cap is
/// never spent by someone else's attempts.
pub async fn issue_decoy(
    eph: &Ephemeral,
    purpose: Purpose,
    subject: &str,
    stands_for: &str,
    daily_cap: u64,
) -> Result<(), OtpError> {
    let target = format!("{DECOY}{stands_for}");
    issue(eph, purpose, subject, &target, daily_cap)
        .await
        .map(drop)
}

/// Checks a code; on success the code is consumed and its target returned.
pub async fn verify(
    eph: &Ephemeral,
    purpose: Purpose,
    subject: &str,
    code: &str,
) -> Result<String, OtpError> {
    let target = check(eph, purpose, subject, code).await?;
    consume(eph, purpose, subject).await?;
    Ok(target)
}

/// Checks a code without using it up (the caller then checks the rest of the request and
/// calls [`consume`]); returns its target. Every attempt counts.
pub async fn check(
    eph: &Ephemeral,
    purpose: Purpose,
    subject: &str,
    code: &str,
) -> Result<String, OtpError> {
    let code_key = key(OtpPart::Code, purpose, subject);
    // Every attempt counts, atomically, before the comparison: concurrent guesses cannot
    // exceed the limit.
    let tries = eph
        .incr(&key(OtpPart::Tries, purpose, subject), CODE_TTL)
        .await?;
    if tries > MAX_ATTEMPTS {
        eph.delete(&code_key).await?;
        return Err(OtpError::TooManyAttempts);
    }
    let Some(stored) = eph.get_json::<Stored>(&code_key).await? else {
        return Err(OtpError::Expired);
    };
    let code = code.trim();
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let equal = secrets::ct_eq(
        digest(&stored.salt, code).as_bytes(),
        stored.hash.as_bytes(),
    );
    // A decoy was sent to nobody: even a lucky guess of it proves nothing.
    if !well_formed || !equal || stored.target.starts_with(DECOY) {
        if tries == MAX_ATTEMPTS {
            eph.delete(&code_key).await?;
            return Err(OtpError::TooManyAttempts);
        }
        return Err(OtpError::Wrong {
            attempts_left: MAX_ATTEMPTS - tries,
        });
    }
    Ok(stored.target)
}

/// Uses up a code that [`check`] accepted.
pub async fn consume(eph: &Ephemeral, purpose: Purpose, subject: &str) -> Result<(), OtpError> {
    // Single use: of two concurrent correct submissions only one takes the code.
    if eph
        .take(&key(OtpPart::Code, purpose, subject))
        .await?
        .is_none()
    {
        return Err(OtpError::Expired);
    }
    eph.delete(&key(OtpPart::Tries, purpose, subject)).await?;
    Ok(())
}

impl crate::audit::ReasonCode for OtpError {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = random_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn a_code_works_once() {
        let eph = Ephemeral::memory();
        let code = issue(&eph, Purpose::Phone, "acc", "+375291234567", 10)
            .await
            .unwrap();
        assert_eq!(
            verify(&eph, Purpose::Phone, "acc", &code).await.unwrap(),
            "+375291234567"
        );
        assert_eq!(
            verify(&eph, Purpose::Phone, "acc", &code).await,
            Err(OtpError::Expired)
        );
    }

    #[tokio::test]
    async fn a_decoy_answers_like_a_real_code() {
        let eph = Ephemeral::memory();
        issue(&eph, Purpose::Recovery, "real", "+375291234567", 10)
            .await
            .unwrap();
        issue_decoy(&eph, Purpose::Recovery, "decoy", "decoy", 10)
            .await
            .unwrap();
        // Like a real code, a decoy is not replaced within the resend wait.
        assert_eq!(
            issue_decoy(&eph, Purpose::Recovery, "decoy", "decoy", 10).await,
            Err(OtpError::TooSoon)
        );
        for subject in ["real", "decoy"] {
            // A code that is not the real one: 000000 or 111111 cannot both be it.
            let r0 = verify(&eph, Purpose::Recovery, subject, "bad").await;
            assert_eq!(r0, Err(OtpError::Wrong { attempts_left: 4 }), "{subject}");
        }
        let lang = crate::web::i18n::Lang::En;
        assert!(
            OtpError::Wrong { attempts_left: 3 }
                .message(lang)
                .contains('3')
        );
    }

    #[tokio::test]
    async fn a_decoy_never_verifies_even_when_guessed() {
        let eph = Ephemeral::memory();
        // What issue_decoy stores, with the code it would throw away.
        let target = format!("{DECOY}+375291234567");
        let code = issue(&eph, Purpose::Phone, "acc", &target, 10)
            .await
            .unwrap();
        assert_eq!(
            verify(&eph, Purpose::Phone, "acc", &code).await,
            Err(OtpError::Wrong { attempts_left: 4 })
        );
    }

    #[tokio::test]
    async fn a_checked_code_stays_until_consumed() {
        let eph = Ephemeral::memory();
        let code = issue(&eph, Purpose::Recovery, "acc", "+375291234567", 10)
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(
                check(&eph, Purpose::Recovery, "acc", &code).await.unwrap(),
                "+375291234567"
            );
        }
        consume(&eph, Purpose::Recovery, "acc").await.unwrap();
        assert_eq!(
            check(&eph, Purpose::Recovery, "acc", &code).await,
            Err(OtpError::Expired)
        );
        assert_eq!(
            consume(&eph, Purpose::Recovery, "acc").await,
            Err(OtpError::Expired)
        );
    }

    #[tokio::test]
    async fn purposes_do_not_mix() {
        let eph = Ephemeral::memory();
        let code = issue(&eph, Purpose::Phone, "acc", "+375291234567", 10)
            .await
            .unwrap();
        assert_eq!(
            verify(&eph, Purpose::Recovery, "acc", &code).await,
            Err(OtpError::Expired)
        );
        assert_eq!(
            verify(&eph, Purpose::Phone, "other", &code).await,
            Err(OtpError::Expired)
        );
    }

    #[tokio::test]
    async fn five_attempts_then_a_new_code_is_needed() {
        let eph = Ephemeral::memory();
        let code = issue(&eph, Purpose::Phone, "acc", "+375291234567", 10)
            .await
            .unwrap();
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for left in (1..=4).rev() {
            assert_eq!(
                verify(&eph, Purpose::Phone, "acc", wrong).await,
                Err(OtpError::Wrong {
                    attempts_left: left
                })
            );
        }
        assert_eq!(
            verify(&eph, Purpose::Phone, "acc", wrong).await,
            Err(OtpError::TooManyAttempts)
        );
        // The right code no longer helps: it was destroyed.
        assert_eq!(
            verify(&eph, Purpose::Phone, "acc", &code).await,
            Err(OtpError::TooManyAttempts)
        );
    }

    #[tokio::test]
    async fn resend_waits_a_minute_and_the_day_has_a_cap() {
        let eph = Ephemeral::memory();
        issue(&eph, Purpose::Phone, "a", "+375291234567", 2)
            .await
            .unwrap();
        assert_eq!(
            issue(&eph, Purpose::Phone, "a", "+375291234567", 2).await,
            Err(OtpError::TooSoon)
        );
        // Other subjects sending to the same phone count against its daily cap.
        issue(&eph, Purpose::Phone, "b", "+375291234567", 2)
            .await
            .unwrap();
        assert_eq!(
            issue(&eph, Purpose::Phone, "c", "+375291234567", 2).await,
            Err(OtpError::DailyCap)
        );
    }
}
