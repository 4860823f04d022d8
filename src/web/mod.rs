//! Browser-facing plumbing: pages and their languages, security headers, request metadata and
//! the per-request log line.

pub mod conn;
pub mod form;
pub mod headers;
pub mod i18n;
pub mod page_error;
pub mod pages;
pub mod params;
pub mod sms;

use std::net::{IpAddr, SocketAddr};
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
            .map(|c| c.0.ip());
        // X-Forwarded-For is believed only behind proxies the operator vouches for.
        let ip = match (peer, app.settings.trust_forwarded_for) {
            (Some(peer), true) => {
                let values: Vec<&str> = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                client_address(peer, &values, app.settings.trusted_proxies).to_string()
            }
            (Some(peer), false) => peer.to_string(),
            (None, _) => "unknown".into(),
        };
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        Ok(RequestMeta { ip, user_agent })
    }
}

/// The client's address behind `trusted` proxies that each append the address they saw to
/// X-Forwarded-For (`values`: the header's lines, in order). Everything left of what the
/// outermost trusted proxy wrote came from the client and may be anything, so the address is
/// the `trusted`-th from the right; with fewer entries (a proxy was bypassed or did not
/// append), the leftmost, which a trusted proxy still wrote. Without the header, or when that
/// entry is not an address, the peer itself.
pub fn client_address(peer: IpAddr, values: &[&str], trusted: usize) -> IpAddr {
    let entries: Vec<&str> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if entries.is_empty() || trusted == 0 {
        return peer;
    }
    let chosen = entries[entries.len().saturating_sub(trusted)];
    parse_forwarded(chosen).unwrap_or(peer)
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, or with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_address_the_trusted_proxy_saw_counts() {
        let peer = ip("10.0.0.1");
        // One appending proxy: the rightmost entry, whatever the client put on the left.
        assert_eq!(
            client_address(peer, &["198.51.100.1, 203.0.113.7"], 1),
            ip("203.0.113.7")
        );
        assert_eq!(client_address(peer, &["203.0.113.7"], 1), ip("203.0.113.7"));
        // Header lines join in order.
        assert_eq!(
            client_address(peer, &["198.51.100.1", "203.0.113.7"], 1),
            ip("203.0.113.7")
        );
        // Two proxies: second from the right.
        assert_eq!(
            client_address(peer, &["1.1.1.1, 203.0.113.20, 10.0.0.2"], 2),
            ip("203.0.113.20")
        );
        // Fewer entries than proxies: the leftmost, written by a trusted proxy.
        assert_eq!(client_address(peer, &["203.0.113.9"], 3), ip("203.0.113.9"));
        // Ports and IPv6.
        assert_eq!(
            client_address(peer, &["x, [2001:db8::1]:4711"], 1),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(peer, &["203.0.113.7:80"], 1),
            ip("203.0.113.7")
        );
        assert_eq!(client_address(peer, &["2001:db8::2"], 1), ip("2001:db8::2"));
    }

    #[test]
    fn garbage_or_no_header_means_the_peer() {
        let peer = ip("10.0.0.1");
        assert_eq!(client_address(peer, &[], 1), peer);
        assert_eq!(client_address(peer, &["unknown"], 1), peer);
        assert_eq!(client_address(peer, &["203.0.113.7, "], 1), peer);
        assert_eq!(client_address(peer, &["203.0.113.7, evil"], 1), peer);
        assert_eq!(client_address(peer, &["203.0.113.7"], 0), peer);
    }
}
