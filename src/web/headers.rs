//! Security headers on every response. Handlers that want something else (cacheable discovery
//! and JWKS) set their own header and this layer leaves it alone.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Scripts and their requests only from this origin (the certificate-login adapter and a
/// deployment's signer plug-in): nothing inline, no eval.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
                   img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let too_large = res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, "no-store");
    set(header::PRAGMA, "no-cache");
    // The body of a refused oversized request is left unread, so the connection cannot carry
    // another request: say so, or a client reusing it sees the next request fail.
    if too_large {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::CSP;

    #[test]
    fn csp_allows_own_scripts_only() {
        assert!(CSP.contains("script-src 'self';"));
        assert!(CSP.contains("connect-src 'self';"));
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}
