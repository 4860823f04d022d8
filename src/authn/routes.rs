//! The login pages: GET /login shows the methods for a login transaction; each method posts to
//! its own route and, on success, hands its `Authenticated` to `oidc::authorize::resume`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tower_sessions::Session;

use std::time::Duration;

use super::password::{self, PasswordFailure};
use super::throttle::{self, Gate};
use super::{browser, lockout, registration, transaction};
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
    /// Shown when the password was right but the registration is not confirmed yet.
    finish_link: Option<String>,
    /// Only a certificate can finish this request (the client or request needs more than a
    /// password). A password still opens the way: the certificate is then linked to it.
    cert_required: bool,
    /// The person has just proved their password and must now present a certificate: the
    /// password form is not offered again.
    step_up: bool,
}

/// Does this transaction need more than a password can give?
fn needs_certificate(app: &App, tx: &transaction::LoginTransaction) -> bool {
    if tx.step_up.is_some() {
        return true;
    }
    app.clients
        .get(&tx.request.client_id)
        .is_some_and(|client| {
            crate::policy::required_acr(None, &client, &tx.request.acr_values) > super::Acr::Low
        })
}

async fn render_login(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    view: LoginView<'_>,
) -> Response {
    crate::web::form::render_with_csrf(
        app,
        session,
        "login.html",
        lang,
        status,
        json!({
            "title": i18n::text(lang, "login_title"),
            "tx": view.tx,
            "client_id": view.client_id,
            "username": view.username,
            "error": view.error.map(|k| i18n::text(lang, k)),
            "finish_link": view.finish_link,
            "forgot_enabled": true,
            "lang_query": format!("tx={}&", view.tx),
            // Without a trust anchor no certificate can succeed; development shows the
            // method anyway, with the developer signer, so it can be tried with a test PKI.
            "cert_enabled": app.trust.anchor_count() > 0 || app.settings.dev,
            "cert_dev": app.settings.dev,
            "step_up": view.step_up,
            "cert_required": view.cert_required,
        }),
    )
    .await
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
            finish_link: None,
            cert_required: needs_certificate(&app, &tx),
            step_up: tx.step_up.is_some(),
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
        finish_link: None,
        cert_required: needs_certificate(&app, &tx),
        step_up: tx.step_up.is_some(),
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

    let limits = &app.settings.limits;
    let audit_failure = |reason: &'static str, subject: Option<String>| {
        Event::new("login", "failure")
            .reason(reason)
            .subject(subject)
            .client(&tx.request.client_id)
            .method("password")
            .from(&meta)
    };
    match throttle::login_gate(&app.eph, &meta.ip).await {
        Ok(Gate::Open) => {}
        Ok(Gate::IpLocked) => {
            if let Err(e) = app.audit.write(audit_failure("ip_locked", None)).await {
                tracing::error!(error = %e, "audit write failed");
                return app.pages.error(
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    None,
                );
            }
            let v = view("too_many_attempts");
            return render_login(&app, &session, lang, StatusCode::TOO_MANY_REQUESTS, v).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            return app
                .pages
                .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
        }
    }

    let login_key = throttle::LoginKey::of(username);
    let attempt = password::authenticate(
        &app.db,
        &app.hasher,
        limits,
        username,
        field(&params, "password"),
    )
    .await;
    // A locked login (by what was typed, or the account it names) answers exactly like a wrong
    // password, after the same work, whatever the password and the account's state.
    let lockable = match &attempt.result {
        Ok(_) => true,
        Err(f) => f.is_guess() || matches!(f, PasswordFailure::Pending | PasswordFailure::Inactive),
    };
    let locked = lockable
        && matches!(
            throttle::login_locked(&app.eph, &login_key, attempt.account_id.as_deref()).await,
            Ok(true)
        );
    match attempt.result {
        Ok(who) if !locked => {
            if let Err(e) = throttle::record_success(&app.eph, &login_key, &who.account_id).await {
                tracing::warn!(error = %e, "could not reset the failure counter");
            }
            resume::finish(&app, &session, &tx.id, who, &meta, lang).await
        }
        result => {
            let failure = result.err().unwrap_or(PasswordFailure::WrongPassword);
            let reason = if locked {
                "account_locked"
            } else {
                failure.reason()
            };
            if let Err(e) = app
                .audit
                .write(audit_failure(reason, attempt.account_id.clone()))
                .await
            {
                tracing::error!(error = %e, "audit write failed");
                return app.pages.error(
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    None,
                );
            }
            if failure == PasswordFailure::Pending && !locked {
                // The password was right: let this browser finish the confirmation.
                let id = attempt.account_id.unwrap_or_default();
                if let Err(e) = registration::resume_registration(&session, &id).await {
                    tracing::error!(error = %e, "browser session store failed");
                    return app.pages.error(
                        lang,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server_error",
                        None,
                    );
                }
                let mut v = view("registration_incomplete");
                v.finish_link = Some(format!("/register/confirm?ui_locales={}", lang.code()));
                return render_login(&app, &session, lang, StatusCode::FORBIDDEN, v).await;
            }
            if locked || failure.is_guess() {
                let counted = throttle::record_login_failure(
                    &app.eph,
                    limits,
                    &login_key,
                    attempt.account_id.as_deref(),
                    &meta.ip,
                )
                .await;
                match counted {
                    Ok(f) => {
                        if f.locked_now
                            && let Some(id) = &attempt.account_id
                        {
                            lockout::notify_locked_later(
                                app.clone(),
                                meta.clone(),
                                id.clone(),
                                lang,
                            );
                        }
                        tokio::time::sleep(f.delay(Duration::from_millis(limits.login_delay_ms)))
                            .await;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not count a failed login"),
                }
            }
            let (status, msg) = match failure {
                _ if locked => (StatusCode::UNAUTHORIZED, "bad_credentials"),
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
