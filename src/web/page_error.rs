//! The one error of the browser pages. A handler answers `Err(PageError)` (or uses `?`) and
//! never renders an error page by hand: the page is drawn in one place, [`render`], a layer
//! that has the deployment's templates, in the language the handler found for the person.
//!
//! A `PageError` is carried to the layer as a response extension, because the templates live
//! in the assembled state and `IntoResponse` has none; without the layer (a handler tested on
//! its own) it still answers its status with a plain text body.

use std::fmt::Display;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;
use super::pages::Pages;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub lang: Lang,
    pub status: StatusCode,
    /// The message key of the page (also what a log line or a JSON answer calls it).
    pub key: &'static str,
    /// What exactly was wrong with the request, when telling helps (never a secret, never our
    /// own trouble's cause).
    pub detail: Option<String>,
}

impl PageError {
    pub fn new(lang: Lang, status: StatusCode, key: &'static str) -> PageError {
        PageError {
            lang,
            status,
            key,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> PageError {
        self.detail = Some(detail.into());
        self
    }

    /// The request itself is wrong (a missing field, a stale link): 400 with its message.
    pub fn bad_request(lang: Lang, key: &'static str) -> PageError {
        PageError::new(lang, StatusCode::BAD_REQUEST, key)
    }

    /// Our own trouble (storage down): logged with its cause, shown without it.
    pub fn unavailable(lang: Lang, cause: &dyn Display) -> PageError {
        tracing::error!(error = %cause, "request failed");
        PageError::new(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error")
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.key).into_response();
        r.extensions_mut().insert(self);
        r
    }
}

/// The layer that draws the pages of `PageError`s, with the deployment's templates and face.
pub async fn render(
    State(pages): State<std::sync::Arc<Pages>>,
    req: Request,
    next: Next,
) -> Response {
    let mut r = next.run(req).await;
    match r.extensions_mut().remove::<PageError>() {
        Some(e) => pages.error(e.lang, e.status, e.key, e.detail.as_deref()),
        None => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn refused() -> Result<&'static str, PageError> {
        Err(PageError::bad_request(Lang::Be, "tx_expired"))
    }

    #[tokio::test]
    async fn the_layer_draws_the_page_in_the_language_the_handler_found() {
        let pages = std::sync::Arc::new(Pages::new());
        let app = Router::new()
            .route("/", get(refused))
            .layer(axum::middleware::from_fn_with_state(pages, render));
        let r = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("lang=\"be\""), "{html}");
        assert!(
            html.contains(crate::web::i18n::text(Lang::Be, "tx_expired")),
            "{html}"
        );
    }

    #[test]
    fn without_the_layer_it_still_answers_its_status() {
        let r = PageError::unavailable(Lang::Ru, &"db down").into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
