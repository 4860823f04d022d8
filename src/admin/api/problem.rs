//! RFC 9457 problem details: every error of the administration API, in one shape, with a
//! stable `type` (`urn:vhod:problem:<code>`) that clients switch on; the title and detail are
//! for people. `ensure` turns whatever else answers an error under /admin/v1 (the body limit,
//! an unknown route, a wrong method) into one too.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::admin::AdminError;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// The stable codes of the problems (`urn:vhod:problem:<code>`): clients switch on them.
pub mod code {
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const PRECONDITION_FAILED: &str = "precondition_failed";
    pub const PRECONDITION_REQUIRED: &str = "precondition_required";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const TOO_LARGE: &str = "too_large";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const SERVER_ERROR: &str = "server_error";
}

/// A problem, as the API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemBody {
    /// `urn:vhod:problem:<code>`: stable, what a client switches on.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For a refusal by the policies: the policy that decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// For a refusal by the policies: its reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Option<String>,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: Some(detail.into()),
            extra: Map::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, code::FORBIDDEN, detail)
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("no such {what}"),
        )
    }

    pub fn unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::UNAVAILABLE,
            "storage is unavailable; try again",
        )
    }

    fn title(&self) -> &'static str {
        match self.code {
            "invalid_request" => "The request is not valid",
            "unauthorized" => "An access token of scope vhod:admin is needed",
            "forbidden" => "Not allowed",
            "not_found" => "Not found",
            "conflict" => "Conflicts with what exists",
            "precondition_failed" => "Changed meanwhile",
            "precondition_required" => "If-Match is required",
            "unsupported_media_type" => "The body must be application/json",
            "too_large" => "The body is too large",
            "method_not_allowed" => "The method is not allowed here",
            "idempotency_key_reused" => "The Idempotency-Key was used for another request",
            "unavailable" => "Temporarily unavailable",
            _ => "Server error",
        }
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "type".into(),
            json!(format!("urn:vhod:problem:{}", self.code)),
        );
        m.insert("title".into(), json!(self.title()));
        m.insert("status".into(), json!(self.status.as_u16()));
        if let Some(d) = &self.detail {
            m.insert("detail".into(), json!(d));
        }
        m.extend(self.extra.clone());
        Value::Object(m)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body().to_string()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer scope=\"vhod:admin\""),
            );
        }
        res
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Problem {
        match e {
            AdminError::Denied { policy, reason } => {
                let mut p = Problem::forbidden(format!("refused by policy {policy}"));
                p.extra.insert("policy".into(), json!(policy));
                p.extra.insert("reason".into(), json!(reason));
                p
            }
            AdminError::Invalid(m) => Problem::bad_request(m),
            AdminError::NotFound(what) => Problem::not_found(what),
            AdminError::Conflict(m) => Problem::new(StatusCode::CONFLICT, code::CONFLICT, m),
            AdminError::Stale => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                code::PRECONDITION_FAILED,
                "the resource changed since its ETag was read; read it again",
            ),
            AdminError::Store(e) => {
                tracing::error!(error = %e, "administration: storage failed");
                Problem::unavailable()
            }
        }
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        AdminError::Store(e).into()
    }
}

/// Under /admin/v1 every error is a problem: an answer of another kind (the body limit's 413,
/// an unknown route's 404, a 405) is replaced by the problem of its status.
pub async fn ensure(req: Request, next: Next) -> Response {
    let admin = req.uri().path().starts_with("/admin/v1");
    let res = next.run(req).await;
    if !admin || res.status().as_u16() < 400 {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()));
    if is_problem {
        return res;
    }
    let status = res.status();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "invalid_request",
        _ => "server_error",
    };
    let mut out = Problem {
        status,
        code,
        detail: None,
        extra: Map::new(),
    }
    .into_response();
    // Keep what the answer said of the connection and retries.
    for h in [header::ALLOW, header::RETRY_AFTER, header::CONNECTION] {
        if let Some(v) = res.headers().get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}
