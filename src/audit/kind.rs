//! What an audit event records, as types: the strings stored in `audit_events.kind` and
//! `outcome` (which operators query, so they never change) come from here alone.

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    // Sign-in and sessions
    /// An authorization request refused before any sign-in.
    Authorize,
    /// A sign-in attempt, any method.
    Login,
    /// An SSO session ended (logout, a new person's sign-in).
    Logout,
    /// A relying party told of a logout over the back channel.
    BackchannelLogout,
    /// The password entered again on the profile page.
    ProfileReauth,
    /// A lock episode began after repeated failed sign-ins.
    AccountLocked,
    // Accounts and contacts
    /// A registration form submitted.
    Registration,
    /// A registration's phone code entered.
    ConfirmPhone,
    /// A registration's email link opened.
    ConfirmEmail,
    /// A registration with both contacts confirmed became an account.
    AccountActivated,
    /// An account made at a first certificate sign-in.
    AccountCreated,
    /// A certificate identity linked to an existing account.
    CertificateLinked,
    /// An upstream identity (НПЭС, ЕС ИФЮЛ) linked to an existing account.
    UpstreamLinked,
    /// An upstream identity unlinked by the account's owner.
    UpstreamUnlinked,
    /// "Forgot password" asked.
    RecoveryRequest,
    PasswordReset,
    ChangePhone,
    ChangeEmail,
    ProfileNotifications,
    // Messages
    /// A code sent by SMS (or a decoy issued in its place).
    SmsCode,
    /// A link sent by email.
    EmailLink,
    /// A notice to a person (a lock, a password change, someone using their contact).
    Notice,
    // Tokens
    /// A client's authentication at the token endpoint failed.
    ClientAuth,
    CodeIssued,
    /// An authorization code presented a second time.
    CodeReuse,
    TokenIssued,
    TokenRevoked,
    /// A rotated refresh token presented again.
    RefreshReuse,
    // Administration
    /// An administrative operation (the reason names it): organisations, administrators,
    /// employees and their roles, delegations, accounts, clients; or its refusal by policy.
    Admin,
    // The audit itself
    /// A security officer read the audit trail (a search, an export, a timeline).
    AuditRead,
    /// A detection rule fired (the reason names the rule).
    Alert,
}

impl Kind {
    pub const ALL: [Kind; 31] = [
        Kind::Authorize,
        Kind::Login,
        Kind::Logout,
        Kind::BackchannelLogout,
        Kind::ProfileReauth,
        Kind::AccountLocked,
        Kind::Registration,
        Kind::ConfirmPhone,
        Kind::ConfirmEmail,
        Kind::AccountActivated,
        Kind::AccountCreated,
        Kind::CertificateLinked,
        Kind::UpstreamLinked,
        Kind::UpstreamUnlinked,
        Kind::RecoveryRequest,
        Kind::PasswordReset,
        Kind::ChangePhone,
        Kind::ChangeEmail,
        Kind::ProfileNotifications,
        Kind::SmsCode,
        Kind::EmailLink,
        Kind::Notice,
        Kind::ClientAuth,
        Kind::CodeIssued,
        Kind::CodeReuse,
        Kind::TokenIssued,
        Kind::TokenRevoked,
        Kind::RefreshReuse,
        Kind::Admin,
        Kind::AuditRead,
        Kind::Alert,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Authorize => "authorize",
            Kind::Login => "login",
            Kind::Logout => "logout",
            Kind::BackchannelLogout => "backchannel_logout",
            Kind::ProfileReauth => "profile_reauth",
            Kind::AccountLocked => "account_locked",
            Kind::Registration => "registration",
            Kind::ConfirmPhone => "confirm_phone",
            Kind::ConfirmEmail => "confirm_email",
            Kind::AccountActivated => "account_activated",
            Kind::AccountCreated => "account_created",
            Kind::CertificateLinked => "certificate_linked",
            Kind::UpstreamLinked => "upstream_linked",
            Kind::UpstreamUnlinked => "upstream_unlinked",
            Kind::RecoveryRequest => "recovery_request",
            Kind::PasswordReset => "password_reset",
            Kind::ChangePhone => "change_phone",
            Kind::ChangeEmail => "change_email",
            Kind::ProfileNotifications => "profile_notifications",
            Kind::SmsCode => "sms_code",
            Kind::EmailLink => "email_link",
            Kind::Notice => "notice",
            Kind::ClientAuth => "client_auth",
            Kind::CodeIssued => "code_issued",
            Kind::CodeReuse => "code_reuse",
            Kind::TokenIssued => "token_issued",
            Kind::TokenRevoked => "token_revoked",
            Kind::RefreshReuse => "refresh_reuse",
            Kind::Admin => "admin",
            Kind::AuditRead => "audit_read",
            Kind::Alert => "alert",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn of(ok: bool) -> Outcome {
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_stored_name() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "two kinds share a stored name");
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }
}
