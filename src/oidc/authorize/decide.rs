//! Does the browser's single sign-on session satisfy this request, or must the person sign in?

use tower_sessions::Session;

use super::request::{AuthorizationRequest, Prompt};
use crate::authn::browser;
use crate::authn::session::{self, SsoSession};
use crate::identity::account;
use crate::identity::client::Client;
use crate::identity::standing::Standing;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::policy::{self, Denied, Policies};
use crate::store::sql::Db;

pub enum Decision {
    Issue(SsoSession),
    Login,
    /// The session's person must sign in again with a stronger method (certificate); a
    /// certificate they present may then be linked to this account.
    StepUp {
        account_id: String,
    },
    Refuse(OAuthError),
    /// The policies do not let this account use the client: the person is told why, the client
    /// gets `access_denied`.
    Denied(Denied),
}

/// Why the session cannot be used as it is, at `now`.
fn needs_login(req: &AuthorizationRequest, s: &SsoSession, now: i64) -> bool {
    if req.prompt == Prompt::Login {
        return true;
    }
    // max_age=0 always demands a fresh sign-in: within the same second the elapsed time is 0,
    // which is not greater than 0, yet the client asked for an authentication made now.
    if let Some(max_age) = req.max_age
        && (max_age == 0 || now - s.facts.auth_time > max_age)
    {
        return true;
    }
    if let Some(sub) = &req.id_token_hint_sub
        && sub != &s.account_id
    {
        return true;
    }
    false
}

pub async fn decide(
    db: &Db,
    policies: &Policies,
    now: i64,
    browser_session: &Session,
    client: &Client,
    req: &AuthorizationRequest,
) -> Result<Decision, OAuthError> {
    let sid = browser::sid(browser_session).await.map_err(|e| {
        tracing::error!(error = %e, "browser session store failed");
        OAuthError::server_error()
    })?;
    let sso = match sid {
        Some(sid) => session::find_active(db, &sid).await?,
        None => None,
    };
    let usable = match sso {
        Some(s) if !needs_login(req, &s, now) => Some(s),
        _ => None,
    };
    let Some(s) = usable else {
        return Ok(if req.prompt == Prompt::None {
            Decision::Refuse(OAuthError::new(
                ErrorCode::LoginRequired,
                "the person must sign in",
            ))
        } else {
            Decision::Login
        });
    };
    let Some(acc) = account::find_by_id(db, &s.account_id).await? else {
        return Ok(Decision::Login);
    };
    let standing = Standing::of(db, &acc, now).await?;
    match policy::may_sign_in(
        policies,
        &standing,
        client,
        &s.facts,
        &req.acr_values,
        &s.method,
    ) {
        Ok(()) => {}
        Err(Denied::AcrTooLow(_)) if req.prompt == Prompt::None => {
            return Ok(Decision::Refuse(OAuthError::new(
                ErrorCode::InteractionRequired,
                "the session's assurance is too low; the person must sign in with a certificate",
            )));
        }
        Err(Denied::AcrTooLow(_)) => {
            return Ok(Decision::StepUp { account_id: acc.id });
        }
        Err(denied) if req.prompt == Prompt::None => {
            return Ok(Decision::Refuse(OAuthError::new(
                ErrorCode::AccessDenied,
                denied.to_string(),
            )));
        }
        Err(denied) => return Ok(Decision::Denied(denied)),
    }
    Ok(Decision::Issue(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::{Acr, AuthFacts};

    /// The moment every decision here is taken at.
    const NOW: i64 = 1_800_000_000;

    fn session(auth_age: i64) -> SsoSession {
        SsoSession {
            sid: "s".into(),
            account_id: "alice".into(),
            facts: AuthFacts {
                auth_time: NOW - auth_age,
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: "password".into(),
            expires_at: NOW + 3600,
        }
    }

    fn request() -> AuthorizationRequest {
        AuthorizationRequest::new("rp", "https://rp.example/cb", None)
    }

    #[test]
    fn a_fresh_session_is_used() {
        assert!(!needs_login(&request(), &session(10), NOW));
    }

    #[test]
    fn prompt_login_forces_authentication() {
        let mut r = request();
        r.prompt = Prompt::Login;
        assert!(needs_login(&r, &session(0), NOW));
    }

    #[test]
    fn max_age_counts_from_the_last_authentication() {
        let mut r = request();
        r.max_age = Some(60);
        assert!(!needs_login(&r, &session(30), NOW));
        assert!(needs_login(&r, &session(61), NOW));
        r.max_age = Some(0);
        assert!(needs_login(&r, &session(1), NOW));
    }

    #[test]
    fn id_token_hint_for_someone_else_forces_authentication() {
        let mut r = request();
        r.id_token_hint_sub = Some("bob".into());
        assert!(needs_login(&r, &session(0), NOW));
        r.id_token_hint_sub = Some("alice".into());
        assert!(!needs_login(&r, &session(0), NOW));
    }
}
