//! The HTTP conventions of the administration API: JSON bodies (strict: unknown fields are
//! refused), pages under opaque cursors, ETags and `If-Match`, and `Idempotency-Key` on
//! creates.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::problem::{Problem, code};
use crate::identity::account::Account;
use crate::server::App;
use crate::store::ephemeral::keys;

/// A JSON body: `application/json`, parsed strictly; the raw bytes are kept for an
/// idempotent create's fingerprint.
pub struct Json<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "send the body as application/json",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(status, "too_large", "the body is too large")
            } else {
                Problem::bad_request("the body could not be read")
            }
        })?;
        // Serde's derived structs also take a JSON array of their fields in order: `[]` would
        // pass as a body of absent fields. Every body of this API is an object.
        let object = raw
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .is_some_and(|b| *b == b'{');
        if !object {
            return Err(Problem::bad_request("the body: a JSON object is expected"));
        }
        let value = serde_json::from_slice(&raw)
            .map_err(|e| Problem::bad_request(format!("the body: {e}")))?;
        Ok(Json { value, raw })
    }
}

/// `?cursor=&limit=` of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

pub const MAX_LIMIT: u32 = 200;

impl PageQuery {
    pub fn limit(&self) -> Result<u32, Problem> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Problem::bad_request("limit: 1 to 200")),
        }
    }

    /// The id after which the page starts.
    pub fn after(&self) -> Result<Option<String>, Problem> {
        let Some(c) = &self.cursor else {
            return Ok(None);
        };
        let bad = || Problem::bad_request("cursor: not one this API gave");
        let bytes = crate::secrets::b64url_decode(c).ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let after = text.strip_prefix("v1:").ok_or_else(bad)?;
        if has_control(after) {
            return Err(bad());
        }
        Ok(Some(after.to_string()))
    }
}

/// No id, name or address of this API holds a control character, and PostgreSQL refuses a NUL
/// in text (a storage error, answered 503): such a value is refused before it is looked up.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Refuses (400) a text of the request that holds a control character (`has_control`).
pub fn printable(name: &str, value: Option<&str>) -> Result<(), Problem> {
    match value {
        Some(v) if has_control(v) => Err(Problem::bad_request(format!(
            "{name}: no control characters"
        ))),
        _ => Ok(()),
    }
}

/// A page of a list: its items and the cursor of the next page (absent on the last one).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `limit` asked for one more than that: the extra one says there is a next page.
    pub fn of(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|last| cursor(&id(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// The opaque cursor of the page after `id`.
pub fn cursor(id: &str) -> String {
    crate::secrets::b64url(format!("v1:{id}").as_bytes())
}

/// The ETag of a resource at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The version an `If-Match` names (strong comparison, RFC 9110 §13.1.1): required on
/// updates, so that two administrators cannot overwrite each other unknowingly.
pub fn if_match(headers: &HeaderMap) -> Result<i64, Problem> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Err(Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            code::PRECONDITION_REQUIRED,
            "send If-Match with the ETag of the resource as read",
        ));
    };
    let stale = || {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            code::PRECONDITION_FAILED,
            "the If-Match is not the resource's current ETag; read it again",
        )
    };
    let text = v.to_str().map_err(|_| stale())?.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(stale)
}

/// A JSON answer with the resource's ETag.
pub fn with_etag<T: Serialize>(status: StatusCode, body: &T, version: i64) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn account(app: &App, id: &str) -> Result<Account, Problem> {
    if id.is_empty() || id.len() > 64 || has_control(id) {
        return Err(Problem::not_found("account"));
    }
    crate::identity::account::find_by_id(&app.db, id)
        .await?
        .filter(|a| !a.is_pending())
        .ok_or_else(|| Problem::not_found("account"))
}

#[derive(Serialize, Deserialize)]
struct Stored {
    fingerprint: String,
    status: Option<u16>,
    body: Option<String>,
    etag: Option<String>,
}

const IDEMPOTENCY_TTL: std::time::Duration = keys::DAY;

/// Runs a create once per `Idempotency-Key` (per caller): a repeat with the same request gets
/// the first answer again; the same key with another request is refused.
pub async fn idempotent<F>(
    app: &App,
    caller: &str,
    headers: &HeaderMap,
    raw: &[u8],
    create: F,
) -> Result<Response, Problem>
where
    F: std::future::Future<Output = Result<Response, Problem>>,
{
    let Some(v) = headers.get("idempotency-key") else {
        return create.await;
    };
    let key = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| Problem::bad_request("Idempotency-Key: 1 to 255 visible characters"))?;
    let slot = keys::admin_idempotency(caller, key);
    let fingerprint = hex::encode(crate::secrets::sha256(raw));
    let claim = Stored {
        fingerprint: fingerprint.clone(),
        status: None,
        body: None,
        etag: None,
    };
    let claimed = app
        .eph
        .put_if_absent(
            &slot,
            &serde_json::to_vec(&claim).unwrap_or_default(),
            IDEMPOTENCY_TTL,
        )
        .await?;
    if !claimed {
        let stored: Option<Stored> = app.eph.get_json(&slot).await?;
        return match stored {
            Some(s) if s.fingerprint != fingerprint => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with another request",
            )),
            Some(Stored {
                status: Some(status),
                body: Some(body),
                etag,
                ..
            }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                let mut res = (status, body).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                if let Some(e) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
                    res.headers_mut().insert(header::ETAG, e);
                }
                Ok(res)
            }
            _ => Err(Problem::new(
                StatusCode::CONFLICT,
                code::CONFLICT,
                "a request with this Idempotency-Key is still being answered",
            )),
        };
    }
    let res = match create.await {
        Ok(res) if res.status().is_success() => res,
        other => {
            // Nothing was made: the key is free for a corrected request.
            let _ = app.eph.delete(&slot).await;
            return other;
        }
    };
    // The answer is replayed from its JSON; the handlers' bodies are small.
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let stored = Stored {
        fingerprint,
        status: Some(parts.status.as_u16()),
        body: Some(String::from_utf8_lossy(&bytes).into_owned()),
        etag: parts
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    app.eph.put_json(&slot, &stored, IDEMPOTENCY_TTL).await?;
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}
