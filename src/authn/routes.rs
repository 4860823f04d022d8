//! The login pages: GET /login shows the methods for a login transaction; each method posts to
//! its own route, and the login runner (`login::Runner::attempt`) takes it from there.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::certificate::method::Certificate;
use super::login::{self, Attempt, LoginMethod, Refusal, ResumeError};
use super::password::{Credentials, Password, PasswordFailure};
use super::{Acr, browser, registration, transaction};
use crate::identity::standing::Standing;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::page_error::PageError;
use crate::web::params::{ParamError, Params, RequestParams};

struct LoginView<'a> {
    tx: &'a str,
    client_id: &'a str,
    username: &'a str,
    error: Option<&'static str>,
    /// The field the error is about, marked on the page.
    field: Option<&'static str>,
    /// Shown when the password was right but the registration is not confirmed yet.
    finish_link: Option<String>,
    /// Only a certificate can finish this request (the client or request needs more than a
    /// password). A password still opens the way: the certificate is then linked to it.
    cert_required: bool,
    /// The person has just proved their password and must now present a certificate: the
    /// password form is not offered again.
    step_up: bool,
    /// The assurance the sign-in needs: the upstreams that cannot give it are not offered.
    need: Acr,
}

/// The assurance this sign-in must reach: the client's and the request's, and in a step-up the
/// signed-in account's own (one level above what its session has when nothing says more).
pub(crate) async fn sign_in_need(
    app: &App,
    tx: &transaction::LoginTransaction,
) -> Result<Acr, crate::store::StoreError> {
    let account = match &tx.step_up {
        Some(id) => crate::identity::account::find_by_id(&app.db, id).await?,
        None => None,
    };
    let standing = match &account {
        Some(a) => Some(Standing::of(&app.db, a, app.clock.now()).await?),
        None => None,
    };
    Ok(app
        .clients
        .get(&tx.request.client_id)
        .map(|client| {
            crate::policy::required_acr(
                &app.policies,
                standing.as_ref(),
                &client,
                &tx.request.acr_values,
            )
        })
        .unwrap_or(Acr::Low))
}

/// Does this transaction need more than a password can give?
fn needs_certificate(app: &App, tx: &transaction::LoginTransaction) -> bool {
    if tx.step_up.is_some() {
        return true;
    }
    app.clients
        .get(&tx.request.client_id)
        .is_some_and(|client| {
            crate::policy::required_acr(&app.policies, None, &client, &tx.request.acr_values)
                > Password::MAX_ACR
        })
}

async fn render_login(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    view: LoginView<'_>,
) -> Response {
    let client_name = app
        .clients
        .get(view.client_id)
        .map(|c| c.name(lang).to_string())
        .unwrap_or_else(|| view.client_id.to_string());
    let methods = login::offered(&app.trust, app.settings.dev);
    let upstreams: Vec<_> = app
        .upstreams
        .able(view.need)
        .map(|u| json!({"name": u.name, "label": u.display_name(lang)}))
        .collect();
    let error = view.error.map(|k| i18n::text(lang, k));
    let field = view
        .field
        .zip(error)
        .map(|(f, e)| crate::web::form::FieldError::new(f, e));
    let ctx = json!({
            "title": i18n::text(lang, "login_title"),
            "tx": view.tx,
            "client_id": view.client_id,
            "client_name": client_name,
            "username": view.username,
            "finish_link": view.finish_link,
            "forgot_enabled": true,
            // The language links open this login again, whatever request showed it.
            "here": format!("/login?tx={}", view.tx),
            "methods": methods.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            "cert_enabled": methods.iter().any(|(name, _)| *name == Certificate::NAME),
            "cert_dev": app.settings.dev,
            "step_up": view.step_up,
            "cert_required": view.cert_required,
            "upstreams": upstreams,
    });
    let ctx = crate::web::form::merge(
        ctx,
        crate::web::form::FieldError::context(error, field.as_ref()),
    );
    crate::web::form::render_with_csrf(app, session, "login.html", lang, status, ctx).await
}

/// This browser's signed-in account, if any (for the pages that offer a way on).
async fn signed_in_account(app: &App, session: &Session) -> Option<String> {
    let sid = browser::sid(session).await.ok().flatten()?;
    super::session::find_active(&app.db, &sid)
        .await
        .ok()
        .flatten()
        .map(|s| s.account_id)
}

/// The services this browser's recent logins were for: (transaction, client), so that a login
/// page opened again after the login finished (Back) can lead back to the service.
const RECENT_LOGINS: &str = "recent_logins";
const MAX_RECENT: usize = 8;

async fn remember_login(session: &Session, tx: &transaction::LoginTransaction) {
    let mut recent: Vec<(String, String, String)> = session
        .get(RECENT_LOGINS)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    if recent.iter().any(|(t, ..)| *t == tx.id) {
        return;
    }
    let home = service_home(&tx.request.client_id, &tx.request.redirect_uri).unwrap_or_default();
    recent.push((tx.id.clone(), tx.request.client_id.clone(), home));
    if recent.len() > MAX_RECENT {
        recent.drain(..recent.len() - MAX_RECENT);
    }
    if let Err(e) = session.insert(RECENT_LOGINS, recent).await {
        tracing::warn!(error = %e, "could not remember a login");
    }
}

/// The service's own site: the origin of the redirect URI its request used (web clients only).
fn service_home(client_id: &str, redirect_uri: &str) -> Option<String> {
    if client_id == crate::config::PROFILE_CLIENT {
        return None;
    }
    let url = url::Url::parse(redirect_uri).ok()?;
    matches!(url.scheme(), "https" | "http")
        .then(|| format!("{}/", url.origin().ascii_serialization()))
}

/// GET /login for a login that is over or unknown. A signed-in browser (Back after a login) is
/// offered the way on: back to the service, or the profile; any other is told to start again.
async fn no_transaction(app: &App, session: &Session, lang: Lang, tx_id: Option<&str>) -> Response {
    use crate::web::pages::Notice;
    if signed_in_account(app, session).await.is_none() {
        let n = Notice::new("login_title", "tx_expired")
            .error()
            .link("/profile", "profile_link_open");
        return app.pages.notice(lang, StatusCode::BAD_REQUEST, &n, None);
    }
    let recent: Vec<(String, String, String)> = session
        .get(RECENT_LOGINS)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let service = tx_id.and_then(|id| recent.into_iter().find(|(t, ..)| t == id));
    let mut n = Notice::new("login_title", "already_signed_in");
    if let Some((_, client_id, home)) = service.filter(|(_, _, home)| !home.is_empty()) {
        let name = app
            .clients
            .get(&client_id)
            .map(|c| c.name(lang).to_string())
            .unwrap_or(client_id);
        n = n.link_with(home, "back_to_service", &[("name", &name)]);
    }
    app.pages.notice(
        lang,
        StatusCode::OK,
        &n.link("/profile", "profile_link_open"),
        None,
    )
}

/// The transaction named by the request, if this browser started it, and the page's language:
/// the form's (the person may have switched), else the transaction's, else the browser's.
async fn login_tx(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(Option<transaction::LoginTransaction>, Lang), PageError> {
    let tx = match params.get("tx") {
        None => None,
        Some(tx_id) => match browser::owns_transaction(session, tx_id).await {
            Ok(true) => transaction::load(&app.eph, tx_id)
                .await
                .map_err(|e| PageError::unavailable(Lang::Ru, &e))?,
            Ok(false) => None,
            Err(e) => return Err(PageError::unavailable(Lang::Ru, &e)),
        },
    };
    let ui = params
        .get("ui_locales")
        .or(tx.as_ref().and_then(|t| t.request.ui_locales.as_deref()));
    let lang = Lang::negotiate(ui, headers);
    Ok((tx, lang))
}

/// A POST (or a link) that continues this browser's login transaction: the parameters, the
/// transaction they name and the page's language; a page saying why not otherwise.
pub(crate) async fn owned_login(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    params: Result<Params, ParamError>,
) -> Result<(Params, transaction::LoginTransaction, Lang), PageError> {
    let params = params
        .map_err(|_| PageError::bad_request(Lang::negotiate(None, headers), "bad_request"))?;
    let (tx, lang) = login_tx(app, session, headers, &params).await?;
    let tx = tx.ok_or(PageError::bad_request(lang, "tx_expired"))?;
    Ok((params, tx, lang))
}

pub async fn login_page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let (tx, lang) = login_tx(&app, &session, &headers, &params).await?;
    let Some(tx) = tx else {
        return Ok(no_transaction(&app, &session, lang, params.get("tx")).await);
    };
    if tx.refused.is_some() {
        return Ok(Redirect::to(&format!("/login/refused?tx={}", tx.id)).into_response());
    }
    remember_login(&session, &tx).await;
    let need = sign_in_need(&app, &tx)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let hint = tx.request.login_hint.clone().unwrap_or_default();
    Ok(render_login(
        &app,
        &session,
        lang,
        StatusCode::OK,
        LoginView {
            tx: &tx.id,
            client_id: &tx.request.client_id,
            username: &hint,
            error: None,
            field: None,
            finish_link: None,
            cert_required: needs_certificate(&app, &tx),
            step_up: tx.step_up.is_some(),
            need,
        },
    )
    .await)
}

fn field<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).unwrap_or("")
}

pub async fn password_login(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    meta: RequestMeta,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let (params, tx, lang) = owned_login(&app, &session, &headers, params).await?;
    let need = sign_in_need(&app, &tx)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let username = field(&params, "username");
    let shown_username: String = username.chars().take(256).collect();
    let view = |error| LoginView {
        tx: &tx.id,
        client_id: &tx.request.client_id,
        username: &shown_username,
        error: Some(error),
        field: (error == "bad_credentials").then_some("password"),
        finish_link: None,
        cert_required: needs_certificate(&app, &tx),
        step_up: tx.step_up.is_some(),
        need,
    };
    let credentials = Credentials {
        login: username.to_string(),
        password: field(&params, "password").to_string(),
    };
    let at = Attempt {
        session: &session,
        meta: &meta,
        tx: &tx,
        csrf: field(&params, "csrf"),
        lang,
    };
    let refusal = match app
        .login_runner()
        .attempt(at, &app.password(), credentials)
        .await
    {
        Ok(next) => return Ok(Redirect::to(&next).into_response()),
        Err(r) => r,
    };
    let (status, msg) = match refusal {
        Refusal::Failed {
            failure: PasswordFailure::Pending,
            account_id,
        } => {
            // The password was right: let this browser finish the confirmation.
            let id = account_id.unwrap_or_default();
            registration::resume_registration(&session, &id)
                .await
                .map_err(|e| PageError::unavailable(lang, &e))?;
            let mut v = view("registration_incomplete");
            v.finish_link = Some(format!("/register/confirm?ui_locales={}", lang.code()));
            return Ok(render_login(&app, &session, lang, StatusCode::FORBIDDEN, v).await);
        }
        Refusal::Resume(e) => return Err(PageError::new(lang, resume_status(e), e.key())),
        // The runner has logged the cause.
        Refusal::Unavailable => {
            return Err(PageError::new(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
            ));
        }
        other => answer(&other),
    };
    Ok(render_login(&app, &session, lang, status, view(msg)).await)
}

/// How a sign-in that cannot continue is answered: our own trouble, or a request gone stale.
pub(crate) fn resume_status(e: ResumeError) -> StatusCode {
    match e {
        ResumeError::Server => StatusCode::SERVICE_UNAVAILABLE,
        ResumeError::TxExpired | ResumeError::UnknownClient => StatusCode::BAD_REQUEST,
    }
}

/// What the form says to a refused attempt.
fn answer(refusal: &Refusal<PasswordFailure>) -> (StatusCode, &'static str) {
    match refusal {
        Refusal::Csrf => (StatusCode::FORBIDDEN, "csrf"),
        Refusal::IpLocked => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        Refusal::Failed { failure, .. } => match failure {
            PasswordFailure::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            PasswordFailure::Internal => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            PasswordFailure::TooLong | PasswordFailure::Empty => {
                (StatusCode::BAD_REQUEST, "bad_credentials")
            }
            // One message whatever the cause: the page never tells whether a login exists.
            _ => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        },
        Refusal::Locked { .. } => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        Refusal::Resume(e) => (resume_status(*e), e.key()),
        Refusal::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
    }
}

/// GET /login/refused?tx=…: the person signed in, but the policies keep the account out of
/// this service: why, and the way back to it (through the cancel, so it hears
/// `access_denied`).
pub async fn refused(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let (_, tx, lang) = owned_login(&app, &session, &headers, params).await?;
    let Some(reason) = &tx.refused else {
        return Ok(Redirect::to(&format!("/login?tx={}", tx.id)).into_response());
    };
    let client_name = app
        .clients
        .get(&tx.request.client_id)
        .map(|c| c.name(lang).to_string())
        .unwrap_or_else(|| tx.request.client_id.clone());
    let back = format!("/login/cancel?tx={}", tx.id);
    let notice = crate::oidc::authorize::refused_notice(reason, &client_name, back);
    Ok(app.pages.notice(lang, StatusCode::FORBIDDEN, &notice, None))
}

/// GET /login/cancel?tx=…: the person gives up signing in; the service hears `access_denied`.
pub async fn cancel(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    meta: RequestMeta,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let (_, tx, lang) = owned_login(&app, &session, &headers, params).await?;
    use super::login::Resume;
    match app.abandon(&session, &tx.id, &meta).await {
        Ok(next) => Ok(Redirect::to(&next).into_response()),
        Err(e) => Err(PageError::new(lang, resume_status(e), e.key())),
    }
}
