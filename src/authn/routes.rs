//! The login pages: GET /login shows the methods for a login transaction; each method posts to
//! its own route and, on success, hands its `Authenticated` to `oidc::authorize::resume`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tower_sessions::Session;

use super::password::{self, PasswordFailure};
use super::{browser, transaction};
use crate::audit::Event;
use crate::oidc::authorize::resume;
use crate::oidc::params::{Params, RequestParams};
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};

struct LoginView<'a> {
    tx: &'a str,
    client_id: &'a str,
    username: &'a str,
    error: Option<&'static str>,
}

async fn render_login(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    view: LoginView<'_>,
) -> Response {
    let csrf = match browser::csrf_token(session).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return app
                .pages
                .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
        }
    };
    app.pages.render(
        "login.html",
        lang,
        status,
        json!({
            "title": i18n::text(lang, "login_title"),
            "csrf": csrf,
            "tx": view.tx,
            "client_id": view.client_id,
            "username": view.username,
            "error": view.error.map(|k| i18n::text(lang, k)),
            "lang_query": format!("tx={}&", view.tx),
        }),
    )
}

/// The transaction named by the request, if this browser started it.
async fn owned_transaction(
    app: &App,
    session: &Session,
    tx_id: Option<&str>,
) -> Result<Option<transaction::LoginTransaction>, Response> {
    let Some(tx_id) = tx_id else { return Ok(None) };
    match browser::owns_transaction(session, tx_id).await {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return Err(app.pages.error(
                Lang::Ru,
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                None,
            ));
        }
    }
    transaction::load(&app.eph, tx_id).await.map_err(|e| {
        tracing::error!(error = %e, "ephemeral store failed");
        app.pages.error(
            Lang::Ru,
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            None,
        )
    })
}

pub async fn login_page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let tx = match owned_transaction(&app, &session, params.get("tx")).await {
        Ok(tx) => tx,
        Err(r) => return r,
    };
    let ui = params
        .get("ui_locales")
        .or(tx.as_ref().and_then(|t| t.request.ui_locales.as_deref()));
    let lang = Lang::negotiate(ui, &headers);
    let Some(tx) = tx else {
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
    };
    let hint = tx.request.login_hint.clone().unwrap_or_default();
    render_login(
        &app,
        &session,
        lang,
        StatusCode::OK,
        LoginView {
            tx: &tx.id,
            client_id: &tx.request.client_id,
            username: &hint,
            error: None,
        },
    )
    .await
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
) -> Response {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, &headers);
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "bad_request", None);
    };
    let tx = match owned_transaction(&app, &session, params.get("tx")).await {
        Ok(tx) => tx,
        Err(r) => return r,
    };
    let lang = Lang::negotiate(
        tx.as_ref().and_then(|t| t.request.ui_locales.as_deref()),
        &headers,
    );
    let Some(tx) = tx else {
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
    };
    let username = field(&params, "username");
    let shown_username: String = username.chars().take(256).collect();
    let view = |error| LoginView {
        tx: &tx.id,
        client_id: &tx.request.client_id,
        username: &shown_username,
        error: Some(error),
    };
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            return render_login(&app, &session, lang, StatusCode::FORBIDDEN, view("csrf")).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return app
                .pages
                .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
        }
    }

    let attempt =
        password::authenticate(&app.db, &app.hasher, username, field(&params, "password")).await;
    match attempt.result {
        Ok(who) => resume::finish(&app, &session, &tx.id, who, &meta, lang).await,
        Err(failure) => {
            let event = Event::new("login", "failure")
                .reason(failure.reason())
                .subject(attempt.account_id)
                .client(&tx.request.client_id)
                .method("password")
                .from(&meta);
            if let Err(e) = app.audit.write(event).await {
                tracing::error!(error = %e, "audit write failed");
                return app.pages.error(
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    None,
                );
            }
            let (status, msg) = match failure {
                PasswordFailure::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
                PasswordFailure::Internal => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
                PasswordFailure::TooLong | PasswordFailure::Empty => {
                    (StatusCode::BAD_REQUEST, "bad_credentials")
                }
                // One message whatever the cause: the page never tells whether a login exists.
                _ => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            };
            render_login(&app, &session, lang, status, view(msg)).await
        }
    }
}
