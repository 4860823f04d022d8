//! Browser-facing plumbing: pages and their languages, security headers, request metadata and
//! the per-request log line.

pub mod form;
pub mod headers;
pub mod i18n;
pub mod pages;
pub mod sms;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::server::App;

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl FromRequestParts<Arc<App>> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        // X-Forwarded-For is believed only behind a proxy the operator vouches for.
        let forwarded = app
            .settings
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .map(|v| v.trim().to_string())
                    .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
            })
            .flatten();
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        Ok(RequestMeta {
            ip: forwarded.unwrap_or(peer),
            user_agent,
        })
    }
}

#[derive(Clone)]
pub struct RequestId(pub String);

tokio::task_local! {
    /// The page a GET request shows (path and query without `ui_locales`): where its language
    /// links point. None for other methods, whose handlers name the page to switch to.
    static PAGE: Option<String>;
}

/// The address of the page this request shows, for its language links; None unless a GET.
pub fn current_page() -> Option<String> {
    PAGE.try_with(Clone::clone).ok().flatten()
}

/// `path?query` without `ui_locales` (bounded: a page address is not unbounded input).
fn page_of(method: &Method, uri: &axum::http::Uri) -> Option<String> {
    if method != Method::GET {
        return None;
    }
    let query = uri.query().unwrap_or("");
    if uri.path().len() + query.len() > 4096 {
        return None;
    }
    Some(pages::with_query(uri.path(), query, &[]))
}

/// One log line per request, with a request id that is also returned as `X-Request-Id`.
/// Only the path is logged: queries carry codes and tokens.
pub async fn log_request(State(_app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let page = page_of(req.method(), req.uri());
    let id = crate::secrets::random_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let start = Instant::now();
    let mut res = PAGE.scope(page, next.run(req)).await;
    let status = res.status().as_u16();
    tracing::info!(
        target: "http",
        request_id = %id,
        method = %method,
        path = %path,
        status,
        ms = start.elapsed().as_secs_f64() * 1000.0,
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}
