//! The authorization endpoint (OIDC Core §3.1.2). A pipeline of small named checks:
//! first the two that decide whether we may redirect at all (client, redirect_uri) — their
//! failures show an error page and never redirect — then the rest, whose failures go back to the
//! client as `error` parameters (RFC 6749 §4.1.2.1).

pub mod checks;
pub mod decide;
pub mod issue_code;
pub mod request;
pub mod resume;

use crate::audit::Audit;
use crate::authn::session::EndedSessions;
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::client::ClientRegistry;
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;

/// What continuing an authorization needs (issuing a code, resuming after a sign-in, ending
/// the session a new person's sign-in replaces): the stores, the clients, the audit trail, the
/// settings (lifetimes, the issuer), and who tells clients of ended sessions.
pub struct Authorization<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub clients: &'a ClientRegistry,
    pub audit: &'a Audit,
    pub settings: &'a Settings,
    pub clock: &'a Clock,
    pub policies: &'a crate::policy::Policies,
    pub ended: &'a dyn EndedSessions,
}

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use self::checks::{Check, Ctx};
use self::decide::Decision;
use self::request::AuthorizationRequest;
use crate::audit::{Event, Kind, Outcome};
use crate::authn::{browser, transaction};
use crate::identity::client::Client;
use crate::identity::redirect_uri::RedirectUri;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;
use crate::web::pages::Notice;
use crate::web::params::{Params, RequestParams};

/// In the order of OIDC Core §3.1.2.1–2.
const PIPELINE: [Check; 11] = [
    checks::check_request_object,
    checks::check_response_type,
    checks::check_response_mode,
    checks::check_scope,
    checks::check_pkce,
    checks::check_nonce,
    checks::check_prompt,
    checks::check_max_age,
    checks::check_acr_values,
    checks::check_login_hint,
    checks::check_ui_locales,
];

/// Why we cannot trust the request enough to redirect.
enum Untrusted {
    Params(String),
    UnknownClient,
    RedirectUri,
}

fn check_client(app: &App, params: &Params) -> Result<Arc<Client>, Untrusted> {
    params
        .get("client_id")
        .and_then(|id| app.clients.get(id))
        .ok_or(Untrusted::UnknownClient)
}

fn check_redirect_uri<'a>(client: &Client, params: &'a Params) -> Result<&'a str, Untrusted> {
    let uri = params.get("redirect_uri").ok_or(Untrusted::RedirectUri)?;
    client.redirect_uri(uri).ok_or(Untrusted::RedirectUri)?;
    Ok(uri)
}

fn check_state(params: &Params) -> Result<Option<&str>, Untrusted> {
    checks::bounded(params, "state", 2048)
        .map_err(|e| Untrusted::Params(e.description.into_owned()))
}

/// The redirect back to the client with an error (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub fn error_redirect(issuer: &str, req: &AuthorizationRequest, e: &OAuthError) -> Response {
    Redirect::to(&error_redirect_url(issuer, req, e)).into_response()
}

/// `issuer` is ours (RFC 9207).
pub fn error_redirect_url(issuer: &str, req: &AuthorizationRequest, e: &OAuthError) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("error", e.code.as_str()),
        ("error_description", &e.description),
    ];
    if let Some(s) = &req.state {
        p.push(("state", s));
    }
    p.push(("iss", issuer));
    RedirectUri::with_params(&req.redirect_uri, &p)
}

pub async fn authorize(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = match params {
        Ok(p) => p,
        Err(e) => return untrusted_page(&app, &headers, None, Untrusted::Params(e.to_string())),
    };
    let lang_hint = params.get("ui_locales").map(String::from);
    let trusted = check_client(&app, &params).and_then(|client| {
        let uri = check_redirect_uri(&client, &params)?;
        let state = check_state(&params)?;
        Ok((
            client.clone(),
            AuthorizationRequest::new(client.id.as_str(), uri, state),
        ))
    });
    let (client, mut req) = match trusted {
        Ok(t) => t,
        Err(u) => return untrusted_page(&app, &headers, lang_hint.as_deref(), u),
    };

    let ctx = Ctx {
        keys: &app.keys,
        issuer: &app.settings.issuer,
        client: &client,
        params: &params,
    };
    let checked = PIPELINE
        .iter()
        .try_for_each(|check| check(&ctx, &mut req))
        .and_then(|()| checks::check_id_token_hint(&ctx, &mut req));
    if let Err(e) = checked {
        app.audit
            .enqueue(
                Event::new(Kind::Authorize, Outcome::Failure)
                    .reason(e.code)
                    .client(client.id.as_str())
                    .from(&meta)
                    .details(serde_json::json!({"description": e.description})),
            )
            .await;
        return error_redirect(&app.settings.issuer, &req, &e);
    }

    let decided = decide::decide(
        &app.db,
        &app.policies,
        app.clock.now(),
        &session,
        &client,
        &req,
    )
    .await;
    match decided {
        Ok(Decision::Issue(sso)) => {
            let to = issue_code::code_redirect_url(&app.authorization(), &req, &sso, &meta).await;
            Redirect::to(&to).into_response()
        }
        Ok(Decision::Refuse(e)) => error_redirect(&app.settings.issuer, &req, &e),
        Ok(Decision::Denied(denied)) => {
            app.audit
                .enqueue(
                    Event::new(Kind::Authorize, Outcome::Failure)
                        .reason(&denied)
                        .client(client.id.as_str())
                        .from(&meta)
                        .details(serde_json::json!({"policy": denied.policy()})),
                )
                .await;
            let lang = Lang::negotiate(req.ui_locales.as_deref(), &headers);
            let e = OAuthError::new(ErrorCode::AccessDenied, denied.to_string());
            let back = error_redirect_url(&app.settings.issuer, &req, &e);
            let notice = refused_notice(denied.reason(), client.name(lang), back);
            app.pages.notice(lang, StatusCode::FORBIDDEN, &notice, None)
        }
        Ok(Decision::Login) => start_login(&app, &session, req, None).await,
        Ok(Decision::StepUp { account_id }) => {
            start_login(&app, &session, req, Some(account_id)).await
        }
        Err(e) => error_redirect(&app.settings.issuer, &req, &e),
    }
}

/// The page of a sign-in the policies refused for this client: why, in the person's words,
/// and the way back to the service (which then hears `access_denied`).
pub fn refused_notice(reason: &str, client_name: &str, back: String) -> Notice {
    Notice::new("refused_title", refused::message_key(reason))
        .error()
        .link_with(back, "back_to_service", &[("name", client_name)])
}

mod refused {
    pub fn message_key(reason: &str) -> &'static str {
        match reason {
            "role_not_allowed" => "refused_role_not_allowed",
            "method_not_allowed" => "refused_method_not_allowed",
            "client_disabled" => "refused_client_disabled",
            _ => "refused_by_policy",
        }
    }
}

async fn start_login(
    app: &App,
    session: &Session,
    req: AuthorizationRequest,
    step_up: Option<String>,
) -> Response {
    let pending = match req.pending() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the authorization request did not serialise");
            return error_redirect(&app.settings.issuer, &req, &OAuthError::server_error());
        }
    };
    let started = transaction::start(
        &app.eph,
        pending,
        step_up,
        app.settings.login_ttl,
        app.clock.now(),
    )
    .await;
    let tx = match started {
        Ok(tx) => tx,
        Err(e) => return error_redirect(&app.settings.issuer, &req, &e.into()),
    };
    if let Err(e) = browser::add_transaction(session, &tx.id).await {
        tracing::error!(error = %e, "browser session store failed");
        return error_redirect(&app.settings.issuer, &req, &OAuthError::server_error());
    }
    Redirect::to(&format!("/login?tx={}", tx.id)).into_response()
}

fn untrusted_page(
    app: &App,
    headers: &HeaderMap,
    ui_locales: Option<&str>,
    why: Untrusted,
) -> Response {
    let lang = Lang::negotiate(ui_locales, headers);
    match why {
        Untrusted::Params(detail) => {
            app.pages
                .error(lang, StatusCode::BAD_REQUEST, "bad_request", Some(&detail))
        }
        Untrusted::UnknownClient => {
            app.pages
                .error(lang, StatusCode::BAD_REQUEST, "unknown_client", None)
        }
        Untrusted::RedirectUri => {
            app.pages
                .error(lang, StatusCode::BAD_REQUEST, "bad_redirect", None)
        }
    }
}
