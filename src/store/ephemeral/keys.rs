//! Every key of the ephemeral store, in one list: what it holds and how long it lives. The
//! store takes only a [`Key`], and a `Key` is made only here, so no module writes a key by hand
//! (an operator reading `vhod:*` in Redis finds each one below). Secrets and identifiers people
//! type (codes, tokens, jti) appear only as hashes. The names are stable: replicas of two
//! versions share them during an upgrade.

use std::fmt;
use std::time::Duration;

use crate::secrets;

pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86_400);

/// A key of the ephemeral store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keys name people's accounts and addresses: shown only by their kind.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.0.split(':').next().unwrap_or_default();
        write!(f, "Key({kind}:…)")
    }
}

// --- Sign-in ---------------------------------------------------------------------------------

/// A login transaction (the authorization request waiting for a sign-in); for the login's
/// lifetime (`VHOD_LOGIN_TTL`).
pub fn login_transaction(id: &str) -> Key {
    Key(format!("tx:{id}"))
}

/// The certificate sign-in challenge of a login transaction; two minutes.
pub fn certificate_challenge(tx_id: &str) -> Key {
    Key(format!("certch:{tx_id}"))
}

/// A login through an upstream provider on its way there and back (the nonce, the PKCE
/// verifier, the login transaction, the browser it is bound to), under the hash of its `state`;
/// taken at the callback, and for at most the login's lifetime.
pub fn upstream_flow(state: &str) -> Key {
    Key(format!("upflow:{}", secrets::token_hash(state)))
}

/// An account owner's pending link of an upstream identity (which upstream, from which SSO
/// session), one per account: taken by the upstream's answer, deleted by an unlink; ten
/// minutes.
pub fn upstream_link(account_id: &str) -> Key {
    Key(format!("uplink:{account_id}"))
}

/// An upstream's back-channel logout token's `jti`, accepted once; ten minutes (older tokens
/// are refused by their `iat`).
pub fn upstream_logout(upstream: &str, jti: &str) -> Key {
    Key(format!("uplogout:{upstream}:{}", secrets::token_hash(jti)))
}

/// An administration API create under an `Idempotency-Key` (by one caller): the request's
/// fingerprint and, once answered, the answer to replay; a day.
pub fn admin_idempotency(caller: &str, key: &str) -> Key {
    Key(format!("idem:{caller}:{}", secrets::token_hash(key)))
}

/// What an authorization code stands for; the code's lifetime (`VHOD_CODE_TTL`).
pub fn authorization_code(code: &str) -> Key {
    Key(format!("code:{}", secrets::token_hash(code)))
}

/// A redeemed code, with the grant it produced (a second redemption revokes it); as long as
/// the code could have lived.
pub fn redeemed_code(code: &str) -> Key {
    Key(format!("code-used:{}", secrets::token_hash(code)))
}

/// A client assertion's `jti`, accepted once (RFC 7523 §3); until the assertion expires.
pub fn client_assertion(client_id: &str, jti: &str) -> Key {
    Key(format!(
        "assertion:{client_id}:{}",
        secrets::token_hash(jti)
    ))
}

// --- Codes by SMS, links by email -------------------------------------------------------------

/// The parts of a one-time code, for `purpose` and `subject` (an account id or a stand-in).
#[derive(Debug, Clone, Copy)]
pub enum OtpPart {
    /// The code's hash and what it was sent to; the code's lifetime.
    Code,
    /// Attempts at it; as long as the code.
    Tries,
    /// The wait before another code may be sent; a minute.
    Wait,
}

pub fn otp(part: OtpPart, purpose: &str, subject: &str) -> Key {
    let part = match part {
        OtpPart::Code => "code",
        OtpPart::Tries => "tries",
        OtpPart::Wait => "wait",
    };
    Key(format!("otp-{part}:{purpose}:{subject}"))
}

/// Codes sent to one target (a phone number) today; a day from the first.
pub fn otp_today(target: &str) -> Key {
    Key(format!("otp-day:{target}"))
}

/// What an emailed link stands for, by its token's hash; the link's lifetime.
pub fn email_link(purpose: &str, token: &str) -> Key {
    Key(format!(
        "email-link:{purpose}:{}",
        secrets::token_hash(token)
    ))
}

/// The wait before another email of a kind goes to the account; a minute.
pub fn email_wait(purpose: &str, account_id: &str) -> Key {
    Key(format!("email-wait:{purpose}:{account_id}"))
}

// --- Brute force and budgets ------------------------------------------------------------------

/// What failures are counted for: a login identifier (already hashed) or an account.
#[derive(Debug, Clone, Copy)]
pub enum Counted<'a> {
    Login(&'a str),
    Account(&'a str),
}

impl Counted<'_> {
    fn suffix(&self) -> String {
        match self {
            Counted::Login(hash) => format!("login:{hash}"),
            Counted::Account(id) => format!("acct:{id}"),
        }
    }
}

/// A lock episode; `VHOD_LOCKOUT_SECONDS`.
pub fn lock(what: Counted<'_>) -> Key {
    Key(format!("lock:{}", what.suffix()))
}

/// Consecutive failures; a day after the last.
pub fn failures(what: Counted<'_>) -> Key {
    Key(format!("fail:{}", what.suffix()))
}

/// An address locked out; `VHOD_LOCKOUT_SECONDS`.
pub fn address_lock(ip: &str) -> Key {
    Key(format!("lock:ip:{ip}"))
}

/// Failures from an address; `VHOD_LOCKOUT_SECONDS` from the first.
pub fn address_failures(ip: &str) -> Key {
    Key(format!("fail:ip:{ip}"))
}

/// Something done at most once a day for a subject (hashed): a notice not to repeat.
pub fn once_today(what: &str, subject: &str) -> Key {
    Key(format!("once:{what}:{}", secrets::token_hash(subject)))
}

/// Requests of a kind from an address this hour (registrations, password resets).
pub fn per_address_hour(what: &str, ip: &str) -> Key {
    Key(format!("rate:{what}:{ip}"))
}

/// SMS asked from an address this hour.
pub fn sms_from(ip: &str) -> Key {
    Key(format!("sms:ip:{ip}"))
}

/// SMS to an operator prefix this hour.
pub fn sms_to(prefix: &str) -> Key {
    Key(format!("sms:prefix:{prefix}"))
}

/// Every SMS this hour.
pub fn sms_all() -> Key {
    Key("sms:global".to_string())
}

// --- Browser sessions -------------------------------------------------------------------------

/// A browser session's data, by its id's hash; the session's expiry.
pub fn browser_session(id: &str) -> Key {
    Key(format!("sess:{}", secrets::token_hash(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_names_and_hide_secrets() {
        // The stored names replicas of the previous version read too.
        assert_eq!(login_transaction("t1").as_str(), "tx:t1");
        assert_eq!(
            otp(OtpPart::Wait, "recovery", "a").as_str(),
            "otp-wait:recovery:a"
        );
        assert_eq!(lock(Counted::Account("a")).as_str(), "lock:acct:a");
        assert_eq!(address_failures("192.0.2.1").as_str(), "fail:ip:192.0.2.1");
        assert_eq!(sms_all().as_str(), "sms:global");
        for (key, secret) in [
            (authorization_code("c0de"), "c0de"),
            (email_link("confirm", "t0ken"), "t0ken"),
            (client_assertion("rp", "j1d"), "j1d"),
            (browser_session("s1d"), "s1d"),
        ] {
            assert!(!key.as_str().contains(secret), "{}", key.as_str());
            assert!(!format!("{key:?}").contains(secret));
        }
    }
}
