//! Login with a username (or phone number) and password.

pub mod hasher;
pub mod policy;

use super::login::{Begin, Completion, LoginMethod, MethodFailure};
use super::throttle::LoginKey;
use super::transaction::LoginTransaction;
use super::{Acr, AuthFacts, Authenticated};
use crate::config::Limits;
use crate::identity::account;
use crate::store::sql::Db;
use crate::web::RequestMeta;

pub use hasher::{HashError, PasswordHasher};

/// Inputs longer than these are refused before any lookup or hashing.
pub const MAX_LOGIN_LEN: usize = 256;
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a password login failed. Recorded in the audit trail; the person sees one generic message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordFailure {
    Empty,
    TooLong,
    UnknownAccount,
    NoPassword,
    WrongPassword,
    /// Right password, but the registration is not confirmed yet.
    Pending,
    Inactive,
    Busy,
    Internal,
}

impl PasswordFailure {
    /// Failures that count towards the brute-force limits: guesses, not our own trouble.
    pub fn is_guess(self) -> bool {
        matches!(
            self,
            PasswordFailure::UnknownAccount
                | PasswordFailure::NoPassword
                | PasswordFailure::WrongPassword
        )
    }

    pub fn reason(self) -> &'static str {
        match self {
            PasswordFailure::Empty => "empty_credentials",
            PasswordFailure::TooLong => "input_too_long",
            PasswordFailure::UnknownAccount => "unknown_account",
            PasswordFailure::NoPassword => "no_password",
            PasswordFailure::WrongPassword => "wrong_password",
            PasswordFailure::Pending => "registration_incomplete",
            PasswordFailure::Inactive => "account_inactive",
            PasswordFailure::Busy => "busy",
            PasswordFailure::Internal => "internal_error",
        }
    }
}

pub struct PasswordLogin {
    pub account_id: Option<String>,
    pub result: Result<Authenticated, PasswordFailure>,
}

/// Checks the credentials. An unknown login costs the same argon2 verification as a known one,
/// so timing does not reveal which logins exist; a registration left unconfirmed past
/// `pending_account_ttl` counts as unknown.
pub async fn authenticate(
    db: &Db,
    hasher: &PasswordHasher,
    limits: &Limits,
    login: &str,
    password: &str,
) -> PasswordLogin {
    let fail = |id: Option<String>, f| PasswordLogin {
        account_id: id,
        result: Err(f),
    };
    if login.trim().is_empty() || password.is_empty() {
        return fail(None, PasswordFailure::Empty);
    }
    if login.len() > MAX_LOGIN_LEN || password.len() > MAX_PASSWORD_LEN {
        return fail(None, PasswordFailure::TooLong);
    }
    let found = match account::find_by_login(db, login).await {
        Ok(a) => a.filter(|a| !a.is_expired_pending(limits.pending_account_ttl, db.clock.now())),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return fail(None, PasswordFailure::Internal);
        }
    };
    let hash = found.as_ref().and_then(|a| a.password_hash.as_deref());
    let verified = match hasher.verify(hash, password).await {
        Ok(v) => v,
        Err(HashError::Busy) => return fail(found.map(|a| a.id), PasswordFailure::Busy),
        Err(HashError::Internal) => return fail(found.map(|a| a.id), PasswordFailure::Internal),
    };
    let Some(acc) = found else {
        return fail(None, PasswordFailure::UnknownAccount);
    };
    if acc.password_hash.is_none() {
        return fail(Some(acc.id), PasswordFailure::NoPassword);
    }
    if !verified {
        return fail(Some(acc.id), PasswordFailure::WrongPassword);
    }
    if acc.is_pending() {
        return fail(Some(acc.id), PasswordFailure::Pending);
    }
    if !acc.is_active() {
        return fail(Some(acc.id), PasswordFailure::Inactive);
    }
    PasswordLogin {
        account_id: Some(acc.id.clone()),
        result: Ok(Authenticated {
            account_id: acc.id,
            facts: AuthFacts {
                auth_time: db.clock.now(),
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: Password::NAME,
            upstream: None,
        }),
    }
}

impl crate::audit::ReasonCode for PasswordFailure {
    fn code(&self) -> &'static str {
        self.reason()
    }
}

impl MethodFailure for PasswordFailure {
    fn is_guess(&self) -> bool {
        PasswordFailure::is_guess(*self)
    }

    /// A right password of a pending or disabled account is hidden by a lock too: otherwise
    /// a locked login would still tell a guesser that the password was right.
    fn hidden_by_lock(&self) -> bool {
        PasswordFailure::is_guess(*self)
            || matches!(self, PasswordFailure::Pending | PasswordFailure::Inactive)
    }
}

/// The password method: a login name (or phone number) and a password, posted from the login
/// page's form.
pub struct Password<'a> {
    pub db: &'a Db,
    pub hasher: &'a PasswordHasher,
    pub limits: &'a Limits,
}

/// What the form posts.
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl LoginMethod for Password<'_> {
    type Input = Credentials;
    type Failure = PasswordFailure;
    const NAME: &'static str = "password";
    const MAX_ACR: Acr = Acr::Low;
    const BEGINS: Begin = Begin::Form;

    fn login_key(&self, input: &Credentials) -> Option<LoginKey> {
        Some(LoginKey::of(&input.login))
    }

    async fn complete(
        &self,
        _meta: &RequestMeta,
        _tx: &LoginTransaction,
        input: Credentials,
    ) -> Completion<PasswordFailure> {
        let attempt = authenticate(
            self.db,
            self.hasher,
            self.limits,
            &input.login,
            &input.password,
        )
        .await;
        match attempt.result {
            Ok(who) => Completion::Authenticated(who),
            Err(failure) => Completion::Failed {
                failure,
                account_id: attempt.account_id,
            },
        }
    }
}
