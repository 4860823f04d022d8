//! Reason codes: the strings stored in `audit_events.reason` (which operators query, so they
//! never change) and, where an answer carries one, in HTTP answers. Every source of reasons
//! implements [`ReasonCode`]: the domain's own failure types (a password login's, a code's, a
//! certificate's, a sign-in policy's, a protocol error's) and, for what belongs to none of
//! them, [`Reason`]. No call site writes a reason by hand.

/// Something that has a reason code.
pub trait ReasonCode {
    fn code(&self) -> &'static str;
}

impl<T: ReasonCode + ?Sized> ReasonCode for &T {
    fn code(&self) -> &'static str {
        (**self).code()
    }
}

/// The reasons that belong to no failure type of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // Accounts and contacts
    /// A login name, number or address belongs to another account.
    Taken,
    UnknownAccount,
    /// Too many requests of a kind from the address.
    RateLimited,
    WrongPassword,
    WeakPassword,
    /// The address (IP) is locked out after too many failures.
    IpLocked,
    /// The account or login is in a lock episode.
    AccountLocked,
    /// An emailed link that is unknown, used or expired.
    InvalidLink,
    /// A link for the address the account already has.
    SameAddress,
    RegistrationExpired,
    PhoneConfirmedElsewhere,
    EmailConfirmedElsewhere,
    /// The number a code was sent to is no longer the account's.
    PhoneChanged,
    /// The address a link was sent to is no longer the account's.
    EmailChanged,
    NoVerifiedPhone,
    NoVerifiedEmail,
    /// The database did not take a write the event reports.
    StoreFailed,
    // Tokens: what a token event concerned.
    AccessToken,
    RefreshToken,
    AuthorizationCode,
    ClientCredentials,
    /// An authorization code was redeemed a second time (its grant is revoked).
    AuthorizationCodeReused,
    /// A rotated refresh token was presented again (its grant is revoked).
    RefreshTokenReused,
    /// A relying party's back-channel logout endpoint did not take the logout token.
    NotDelivered,
}

impl Reason {
    pub const ALL: [Reason; 24] = [
        Reason::Taken,
        Reason::UnknownAccount,
        Reason::RateLimited,
        Reason::WrongPassword,
        Reason::WeakPassword,
        Reason::IpLocked,
        Reason::AccountLocked,
        Reason::InvalidLink,
        Reason::SameAddress,
        Reason::RegistrationExpired,
        Reason::PhoneConfirmedElsewhere,
        Reason::EmailConfirmedElsewhere,
        Reason::PhoneChanged,
        Reason::EmailChanged,
        Reason::NoVerifiedPhone,
        Reason::NoVerifiedEmail,
        Reason::StoreFailed,
        Reason::AccessToken,
        Reason::RefreshToken,
        Reason::AuthorizationCode,
        Reason::ClientCredentials,
        Reason::AuthorizationCodeReused,
        Reason::RefreshTokenReused,
        Reason::NotDelivered,
    ];
}

impl ReasonCode for Reason {
    fn code(&self) -> &'static str {
        match self {
            Reason::Taken => "taken",
            Reason::UnknownAccount => "unknown_account",
            Reason::RateLimited => "rate_limited",
            Reason::WrongPassword => "wrong_password",
            Reason::WeakPassword => "weak_password",
            Reason::IpLocked => "ip_locked",
            Reason::AccountLocked => "account_locked",
            Reason::InvalidLink => "invalid_link",
            Reason::SameAddress => "same_address",
            Reason::RegistrationExpired => "registration_expired",
            Reason::PhoneConfirmedElsewhere => "phone_confirmed_elsewhere",
            Reason::EmailConfirmedElsewhere => "email_confirmed_elsewhere",
            Reason::PhoneChanged => "phone_changed",
            Reason::EmailChanged => "email_changed",
            Reason::NoVerifiedPhone => "no_verified_phone",
            Reason::NoVerifiedEmail => "no_verified_email",
            Reason::StoreFailed => "store_failed",
            Reason::AccessToken => "access_token",
            Reason::RefreshToken => "refresh_token",
            Reason::AuthorizationCode => "authorization_code",
            Reason::ClientCredentials => "client_credentials",
            Reason::AuthorizationCodeReused => "authorization_code_reused",
            Reason::RefreshTokenReused => "refresh_token_reused",
            Reason::NotDelivered => "not_delivered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_plain_codes() {
        for r in Reason::ALL {
            let code = r.code();
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{r:?}: {code}"
            );
        }
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            Reason::ALL.len(),
            "each reason has its own code"
        );
    }
}
