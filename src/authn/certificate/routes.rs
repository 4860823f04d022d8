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

use super::{ResolveError, authenticated, challenge, resolve};
use crate::audit::{Event, Kind, Outcome};
use crate::authn::throttle::{self, Gate};
use crate::authn::{browser, transaction};
use crate::oidc::authorize::resume;
use crate::pki::cert::leaf_of_bundle;
use crate::pki::verify::{Proof, verify_signed};
use crate::pki::{PkiError, Reason};
use crate::secrets;
use crate::server::App;
use crate::web::RequestMeta;

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

/// The page's CSRF token and the transaction this browser is signing in for.
async fn context(
    app: &App,
    session: &Session,
    headers: &HeaderMap,
    named: Option<&str>,
) -> Result<transaction::LoginTransaction, Response> {
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match browser::csrf_ok(session, presented).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(answer(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "browser session store failed");
            return Err(unavailable());
        }
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    tx: Option<String>,
    certificate: String,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    signature_raw: Option<String>,
}

fn parse_body(body: &[u8]) -> Result<LoginBody, PkiError> {
    let b: LoginBody = serde_json::from_slice(body).map_err(|e| {
        PkiError::malformed(format!(
            "the body must be JSON with certificate and signature or signature_raw: {e}"
        ))
    })?;
    if b.signature.is_some() == b.signature_raw.is_some() {
        return Err(PkiError::malformed(
            "give exactly one of signature (CMS) and signature_raw (hex)",
        ));
    }
    Ok(b)
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
    let tx = match context(&app, &session, &headers, named.as_deref()).await {
        Ok(tx) => tx,
        Err(r) => return r,
    };
    match throttle::login_gate(&app.eph, &meta.ip).await {
        Ok(Gate::Open) => {}
        Ok(Gate::IpLocked) => {
            return answer(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed sign-ins from this address; try again later",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            return unavailable();
        }
    }
    let certificate = body.as_ref().ok().map(|b| b.certificate.clone());
    let outcome = check(&app, &tx, body).await;
    let (validated, resolved) = match outcome {
        Ok(v) => v,
        Err(Failed::Store) => return unavailable(),
        Err(Failed::Refused(e)) => {
            // Who tried, as far as the certificate they sent says (it may be anyone's).
            let leaf = certificate
                .as_deref()
                .and_then(|c| leaf_of_bundle(c.as_bytes()));
            let event = Event::new(Kind::Login, Outcome::Failure)
                .reason(e.reason)
                .client(&tx.request.client_id)
                .method("certificate")
                .from(&meta)
                .details(json!({
                    "detail": e.detail,
                    "certificate": leaf.as_ref().map(|c| json!({
                        "subject": c.subject(), "issuer": c.issuer(),
                        "serial": c.serial_hex(), "sha256": hex::encode(c.fingerprint),
                    })),
                }));
            if let Err(err) = app.audit.write(event).await {
                tracing::error!(error = %err, "audit write failed");
                return unavailable();
            }
            // A spent challenge or a saturated verifier says nothing about the certificate.
            if !matches!(e.reason, Reason::BadChallenge | Reason::Busy)
                && let Err(err) =
                    throttle::record_failure(&app.eph, &app.settings.limits, None, &meta.ip).await
            {
                tracing::warn!(error = %err, "could not count a failed login");
            }
            return answer(status_of(e.reason), e.reason.as_str(), &e.detail);
        }
    };
    if resolved.linked || resolved.created {
        let kind = if resolved.linked {
            Kind::CertificateLinked
        } else {
            Kind::AccountCreated
        };
        app.audit
            .enqueue(
                Event::new(kind, Outcome::Success)
                    .subject(Some(&resolved.account_id))
                    .method("certificate")
                    .from(&meta)
                    .details(json!({"certificate": validated.identity.fingerprint})),
            )
            .await;
    }
    let who = authenticated(resolved.account_id, &validated, app.clock.now());
    match resume::complete(&app, &session, &tx.id, who, &meta).await {
        Ok(url) => Json(json!({"redirect": url})).into_response(),
        Err(e) => answer(e.status(), e.key(), "the sign-in cannot continue"),
    }
}

enum Failed {
    Refused(PkiError),
    Store,
}

async fn check(
    app: &App,
    tx: &transaction::LoginTransaction,
    body: Result<LoginBody, PkiError>,
) -> Result<(crate::pki::trust::Validated, super::Resolved), Failed> {
    // The challenge is spent by any attempt, good or bad: a signature is tried once.
    let challenge = match challenge::take(&app.eph, &tx.id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Failed::Refused(PkiError::new(
                Reason::BadChallenge,
                "no current challenge for this sign-in: it expired, was used, or was never issued",
            )));
        }
        Err(e) => {
            tracing::error!(error = %e, "ephemeral store failed");
            return Err(Failed::Store);
        }
    };
    let body = body.map_err(Failed::Refused)?;
    let raw;
    let proof = match (&body.signature, &body.signature_raw) {
        (Some(cms), _) => Proof::Cms(cms.as_bytes()),
        (None, Some(h)) => {
            raw = hex::decode(h.trim())
                .map_err(|_| Failed::Refused(PkiError::malformed("signature_raw is not hex")))?;
            Proof::Raw(&raw)
        }
        (None, None) => return Err(Failed::Refused(PkiError::malformed("no signature"))),
    };
    let validated = verify_signed(
        &app.trust,
        Some(body.certificate.as_bytes()),
        proof,
        &challenge,
        app.clock.now(),
        &app.http,
    )
    .await
    .map_err(Failed::Refused)?;
    match resolve(&app.db, &validated, tx.step_up.as_deref()).await {
        Ok(r) => Ok((validated, r)),
        Err(ResolveError::Refused(e)) => Err(Failed::Refused(e)),
        Err(ResolveError::Store(e)) => {
            tracing::error!(error = %e, "database failed");
            Err(Failed::Store)
        }
    }
}
