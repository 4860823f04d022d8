//! The JSON calls of the certificate login, made by the login page's script (or a native
//! client) within the login transaction the browser's cookies name:
//!
//! - `POST /login/certificate/challenge` → `{"challenge": "<base64url>", "expires_in": 120}`
//! - `POST /login/certificate` with `{"certificate": "<PEM>", "signature": "<base64 CMS>"}` or
//!   `{"certificate": …, "signature_raw": "<hex>"}` → `{"redirect": "<URL>"}`
//!
//! Both need the page's CSRF token in `X-CSRF-Token`. Both bodies may name the transaction
//! (`"tx"`, as the login page does, so two tabs signing in at once never cross); without it the
//! transaction this browser started last is meant. Refusals are
//! `{"error": "<reason>", "error_description": "…"}` with the reasons of `pki::Reason`, each
//! written to the audit trail before the answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::challenge;
use super::method::parse_body;
use crate::authn::login::{Attempt, Refusal};
use crate::authn::{browser, transaction};
use crate::pki::Reason;
use crate::secrets;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;

fn answer(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn unavailable() -> Response {
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the service is temporarily unavailable",
    )
}

fn status_of(reason: Reason) -> StatusCode {
    match reason {
        Reason::Malformed | Reason::BadChallenge | Reason::TooComplex => StatusCode::BAD_REQUEST,
        Reason::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    }
}

fn csrf_header(headers: &HeaderMap) -> &str {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn csrf_refused() -> Response {
    answer(
        StatusCode::FORBIDDEN,
        "csrf",
        "missing or wrong X-CSRF-Token",
    )
}

/// The page's CSRF token and the transaction this browser is signing in for.
async fn context(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    named: Option<&str>,
) -> Result<transaction::LoginTransaction, Response> {
    match browser::csrf_ok(session, csrf_header(headers)).await {
        Ok(true) => {}
        Ok(false) => return Err(csrf_refused()),
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return Err(unavailable());
        }
    }
    transaction_of(app, session, named).await
}

/// The transaction this browser is signing in for: the one named, if this browser started
/// it, else the one it started last.
async fn transaction_of(
    app: &App,
    session: &Session,
    named: Option<&str>,
) -> Result<transaction::LoginTransaction, Response> {
    let expired = || {
        answer(
            StatusCode::BAD_REQUEST,
            "tx_expired",
            "no sign-in is in progress in this browser; start again from the service",
        )
    };
    let found = match named {
        Some(id) => browser::owns_transaction(session, id)
            .await
            .map(|owned| owned.then(|| id.to_string())),
        None => browser::current_transaction(session).await,
    };
    let tx_id = match found {
        Ok(Some(id)) => id,
        Ok(None) => return Err(expired()),
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return Err(unavailable());
        }
    };
    match transaction::load(&app.eph, &tx_id).await {
        Ok(Some(tx)) => Ok(tx),
        Ok(None) => Err(expired()),
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            Err(unavailable())
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChallengeBody {
    #[serde(default)]
    tx: Option<String>,
}

pub async fn challenge(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // An empty body is `{}`.
    let named = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(ChallengeBody::default())
    } else {
        serde_json::from_slice::<ChallengeBody>(&body)
    };
    let Ok(named) = named else {
        return answer(
            StatusCode::BAD_REQUEST,
            Reason::Malformed.as_str(),
            "the body must be {} or {\"tx\": \"…\"}",
        );
    };
    let tx = match context(&app, &session, &headers, named.tx.as_deref()).await {
        Ok(tx) => tx,
        Err(r) => return r,
    };
    match challenge::issue(&app.eph, &tx.id, &app.settings.issuer).await {
        Ok(bytes) => Json(json!({
            "challenge": secrets::b64url(&bytes),
            "expires_in": challenge::TTL_SECS,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            unavailable()
        }
    }
}

pub async fn login(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    meta: RequestMeta,
    body: Bytes,
) -> Response {
    let body = parse_body(&body);
    let named = body.as_ref().ok().and_then(|b| b.tx.clone());
    let tx = match transaction_of(&app, &session, named.as_deref()).await {
        Ok(tx) => tx,
        Err(r) => return r,
    };
    let at = Attempt {
        session: &session,
        meta: &meta,
        tx: &tx,
        csrf: csrf_header(&headers),
        lang: Lang::negotiate(tx.request.ui_locales.as_deref(), &headers),
    };
    match app
        .login_runner()
        .attempt(at, &app.certificate(), body)
        .await
    {
        Ok(next) => Json(json!({"redirect": next})).into_response(),
        Err(Refusal::Csrf) => csrf_refused(),
        Err(Refusal::IpLocked) => answer(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed sign-ins from this address; try again later",
        ),
        Err(Refusal::Failed { failure, .. }) => {
            let e = failure.error;
            answer(status_of(e.reason), e.reason.as_str(), &e.detail)
        }
        // A certificate names no login, so none is locked; the answer is a refusal all the same.
        Err(Refusal::Locked { .. }) => answer(
            StatusCode::FORBIDDEN,
            Reason::Policy.as_str(),
            "the account is locked",
        ),
        Err(Refusal::Resume(e)) => answer(
            crate::authn::routes::resume_status(e),
            e.key(),
            "the sign-in cannot continue",
        ),
        Err(Refusal::Unavailable) => unavailable(),
    }
}
