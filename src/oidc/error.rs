//! Protocol errors, and their mapping to responses in exactly one place per kind of endpoint:
//! JSON (RFC 6749 §5.2) for token-style endpoints, `WWW-Authenticate: Bearer` for resource
//! endpoints (RFC 6750 §3), and a redirect for /authorize once the client and redirect_uri are
//! trusted (RFC 6749 §4.1.2.1, see `authorize`).

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
    }
}

/// Infrastructure failures: logged with their cause, answered without it.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "storage is unavailable, try again",
        )
    }
}

impl From<crate::web::params::Missing> for OAuthError {
    fn from(e: crate::web::params::Missing) -> Self {
        OAuthError::invalid_request(e.to_string())
    }
}

impl From<crate::web::params::ParamError> for OAuthError {
    fn from(e: crate::web::params::ParamError) -> Self {
        OAuthError::invalid_request(e.to_string())
    }
}

/// An event that had to be recorded before the answer was not: the answer is not given.
impl From<crate::audit::AuditError> for OAuthError {
    fn from(e: crate::audit::AuditError) -> Self {
        tracing::error!(error = %e, "audit failure");
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the service is unavailable, try again",
        )
    }
}

/// A JSON answer of a token-style endpoint: never cached (RFC 6749 §5.1).
pub fn json_no_store<T: serde::Serialize>(body: T) -> Response {
    no_store(Json(body).into_response())
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// RFC 6749 §5.2 JSON.
impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut res = (
            status,
            Json(json!({"error": self.code.as_str(), "error_description": self.description})),
        )
            .into_response();
        if self.code == ErrorCode::InvalidClient {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vhod\""),
            );
        }
        no_store(res)
    }
}

/// RFC 6750 §3: errors of bearer-protected resources (userinfo).
pub struct BearerError(pub OAuthError);

impl From<OAuthError> for BearerError {
    fn from(e: OAuthError) -> Self {
        BearerError(e)
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.code {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            other => other.status(),
        };
        let challenge = format!(
            "Bearer realm=\"vhod\", error=\"{}\", error_description=\"{}\"",
            e.code.as_str(),
            e.description.replace(['"', '\\'], "'")
        );
        let mut res = (
            status,
            Json(json!({"error": e.code.as_str(), "error_description": e.description})),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(res)
    }
}

impl crate::audit::ReasonCode for ErrorCode {
    fn code(&self) -> &'static str {
        self.as_str()
    }
}
