//! After a login method has said who the person is: apply policy, create the single sign-on
//! session, and continue the authorization that the login transaction holds.
//!
//! `complete` returns where the browser goes next, so form posts (a redirect) and the JSON
//! certificate login (`{"redirect": …}`) share every decision.

use tower_sessions::Session;

use super::issue_code::code_redirect_url;
use super::request::AuthorizationRequest;
use super::{Authorization, error_redirect_url};
use crate::audit::{Event, Kind, Outcome};
use crate::authn::login::ResumeError;
use crate::authn::{Authenticated, browser, session, transaction};
use crate::identity::account;
use crate::identity::standing::Standing;
use crate::oidc::end_session;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::policy::{self, Denied};
use crate::web::RequestMeta;

fn server_error(e: &dyn std::fmt::Display) -> ResumeError {
    tracing::error!(error = %e, "completing the login failed");
    ResumeError::Server
}

/// Signs the person in and returns the URL that continues the authorization: the client's
/// redirect URI with a code or an error, or the login page again when the request needs a
/// stronger method than the one just used (step-up).
pub async fn complete(
    az: &Authorization<'_>,
    browser_session: &Session,
    tx_id: &str,
    who: Authenticated,
    meta: &RequestMeta,
) -> Result<String, ResumeError> {
    let mut tx = match transaction::load(az.eph, tx_id).await {
        Ok(Some(tx)) => tx,
        Ok(None) => return Err(ResumeError::TxExpired),
        Err(e) => return Err(server_error(&e)),
    };
    let request = AuthorizationRequest::resumed(&tx.request).map_err(|e| server_error(&e))?;
    let Some(client) = az.clients.get(&request.client_id) else {
        return Err(ResumeError::UnknownClient);
    };
    let acc = match account::find_by_id(az.db, &who.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Err(ResumeError::TxExpired),
        Err(e) => return Err(server_error(&e)),
    };

    let event = Event::new(Kind::Login, Outcome::Success)
        .subject(Some(&acc.id))
        .client(client.id.as_str())
        .method(who.method)
        .from(meta)
        .acr(Some(who.facts.acr.as_str()));
    let event = match &who.upstream {
        Some(u) => event.upstream(&u.upstream),
        None => event,
    };
    let details = |sid: Option<&str>, step_up: bool| {
        serde_json::json!({
            "acr": who.facts.acr, "amr": who.facts.amr, "sid": sid,
            "legal_entity": who.facts.legal_entity, "step_up_required": step_up,
        })
    };

    let standing = Standing::of(az.db, &acc, az.clock.now())
        .await
        .map_err(|e| server_error(&e))?;
    // The officers find an employee's sign-ins by organisation, and a delegate's by the
    // delegator: the one organisation the account stands in, and whose roles it carries.
    let sole_org = (standing.places.len() == 1)
        .then(|| standing.places.keys().next().cloned())
        .flatten();
    let delegator = standing
        .places
        .values()
        .flat_map(|p| p.delegated.iter())
        .map(|d| d.from.clone())
        .next();
    let event = event.org(sole_org).delegator(delegator);
    let verdict = policy::may_sign_in(
        az.policies,
        &standing,
        &client,
        &who.facts,
        &request.acr_values,
        who.method,
    );
    match &verdict {
        Err(denied @ Denied::Inactive) => {
            let mut ev = event.reason(denied).details(details(None, false));
            ev.outcome = Outcome::Failure;
            az.audit.write(ev).await.map_err(|e| server_error(&e))?;
            let _ = transaction::finish(az.eph, tx_id).await;
            let _ = browser::remove_transaction(browser_session, tx_id).await;
            let e = OAuthError::new(ErrorCode::AccessDenied, denied.to_string());
            return Ok(error_redirect_url(&az.settings.issuer, &request, &e));
        }
        // The person is who they said, but the policies keep this account out of this client:
        // no session is made for it; the person is told why, and the client hears
        // access_denied when they go back to it.
        Err(denied) if !matches!(denied, Denied::AcrTooLow(_)) => {
            let mut ev = event.reason(denied).details(serde_json::json!({
                "acr": who.facts.acr, "amr": who.facts.amr, "policy": denied.policy(),
            }));
            ev.outcome = Outcome::Failure;
            az.audit.write(ev).await.map_err(|e| server_error(&e))?;
            tx.refused = Some(denied.reason().to_string());
            transaction::save(az.eph, &tx, az.settings.login_ttl, az.clock.now())
                .await
                .map_err(|e| server_error(&e))?;
            return Ok(format!("/login/refused?tx={}", tx.id));
        }
        _ => {}
    }
    let step_up = matches!(verdict, Err(Denied::AcrTooLow(_)));

    // The person proved who they are: that becomes the browser's session even when this
    // request needs more (they step up from it). The same person signing in again (a re-login,
    // a step-up) renews their session in place: its grants stay tied to it. Another person's
    // sign-in ends the session the browser had as a logout ends it: its grants revoked, its
    // clients told, so nothing of the previous person's outlives them in a shared browser.
    let previous = browser::sid(browser_session)
        .await
        .map_err(|e| server_error(&e))?;
    let mut renewed = None;
    if let Some(old) = previous {
        // Another person's session is ended even when it has expired: the grants made under it
        // outlive its expiry, and must not outlive the next person's sign-in.
        let kept = session::find_not_ended(az.db, &old)
            .await
            .map_err(|e| server_error(&e))?;
        match kept {
            Some(s) if s.account_id == who.account_id => {
                renewed = session::renew(az.db, &old, &who, az.settings.session_ttl)
                    .await
                    .map_err(|e| server_error(&e))?;
            }
            Some(_) => {
                end_session::end_sso_session(az, &old, meta, None, "new_sign_in")
                    .await
                    .map_err(|e| server_error(&e))?;
            }
            None => {}
        }
    }
    let sso = match renewed {
        Some(sso) => sso,
        None => session::create(az.db, &who, az.settings.session_ttl)
            .await
            .map_err(|e| server_error(&e))?,
    };
    browser::sign_in(browser_session, &sso.sid)
        .await
        .map_err(|e| server_error(&e))?;
    // Sign-in events are durable before the person is sent on.
    az.audit
        .write(event.details(details(Some(&sso.sid), step_up)))
        .await
        .map_err(|e| server_error(&e))?;

    if step_up {
        tx.step_up = Some(acc.id.clone());
        transaction::save(az.eph, &tx, az.settings.login_ttl, az.clock.now())
            .await
            .map_err(|e| server_error(&e))?;
        return Ok(format!("/login?tx={}", tx.id));
    }
    match transaction::finish(az.eph, tx_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ResumeError::TxExpired),
        Err(e) => return Err(server_error(&e)),
    }
    let _ = browser::remove_transaction(browser_session, tx_id).await;
    Ok(code_redirect_url(az, &request, &sso, meta).await)
}

/// The person gave up signing in: the login transaction ends, and the client hears
/// `access_denied` at its redirect URI (with its `state`), so it is not left waiting.
pub async fn abandon(
    az: &Authorization<'_>,
    browser_session: &Session,
    tx_id: &str,
    meta: &RequestMeta,
) -> Result<String, ResumeError> {
    let tx = match transaction::finish(az.eph, tx_id).await {
        Ok(Some(tx)) => tx,
        Ok(None) => return Err(ResumeError::TxExpired),
        Err(e) => return Err(server_error(&e)),
    };
    let _ = browser::remove_transaction(browser_session, tx_id).await;
    let request = AuthorizationRequest::resumed(&tx.request).map_err(|e| server_error(&e))?;
    if az.clients.get(&request.client_id).is_none() {
        return Err(ResumeError::UnknownClient);
    }
    let e = OAuthError::new(ErrorCode::AccessDenied, "the person did not sign in");
    az.audit
        .write(
            Event::new(Kind::Authorize, Outcome::Failure)
                .reason(e.code)
                .client(request.client_id.as_str())
                .from(meta),
        )
        .await
        .map_err(|e| server_error(&e))?;
    Ok(error_redirect_url(&az.settings.issuer, &request, &e))
}
