//! After a login method has said who the person is: apply policy, create the single sign-on
//! session, and continue the authorization that the login transaction holds.

use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::issue_code::redirect_with_code;
use super::{error_redirect, request::AuthorizationRequest};
use crate::audit::Event;
use crate::authn::{Authenticated, browser, session, transaction};
use crate::identity::account;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::policy;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;

pub async fn finish(
    app: &App,
    browser_session: &Session,
    tx_id: &str,
    who: Authenticated,
    meta: &RequestMeta,
    lang: Lang,
) -> Response {
    let server_error = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "completing the login failed");
        app.pages
            .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None)
    };
    let tx = match transaction::finish(&app.eph, tx_id).await {
        Ok(Some(tx)) => tx,
        Ok(None) => {
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
        }
        Err(e) => return server_error(&e),
    };
    let _ = browser::remove_transaction(browser_session, tx_id).await;
    let req: AuthorizationRequest = tx.request;
    let Some(client) = app.clients.get(&req.client_id) else {
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "unknown_client", None);
    };
    let acc = match account::find_by_id(&app.db, &who.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
        }
        Err(e) => return server_error(&e),
    };

    let event = Event::new("login", "success")
        .subject(Some(&acc.id))
        .client(client.id.as_str())
        .method(who.method)
        .from(meta)
        .details(serde_json::json!({"acr": who.facts.acr, "amr": who.facts.amr}));

    if let Err(denied) = policy::may_sign_in(&acc, &client, &who.facts) {
        let e = OAuthError::new(ErrorCode::AccessDenied, denied.to_string());
        let mut ev = event.reason(denied.reason());
        ev.outcome = "failure";
        if let Err(err) = app.audit.write(ev).await {
            return server_error(&err);
        }
        return error_redirect(app, &req, &e);
    }

    // A new sign-in replaces whatever session this browser had (another person, or a step-up).
    if let Ok(Some(old)) = browser::sid(browser_session).await {
        let _ = session::end(&app.db, &old).await;
    }
    let sso = match session::create(&app.db, &who, app.settings.session_ttl).await {
        Ok(s) => s,
        Err(e) => return server_error(&e),
    };
    if let Err(e) = browser::sign_in(browser_session, &sso.sid).await {
        return server_error(&e);
    }
    // Sign-in events are durable before the person is sent on.
    if let Err(e) = app
        .audit
        .write(event.details(serde_json::json!({
            "acr": who.facts.acr, "amr": who.facts.amr, "sid": sso.sid,
        })))
        .await
    {
        return server_error(&e);
    }
    redirect_with_code(app, &req, &sso, meta).await
}
