//! Small helpers shared by the self-service pages (registration, recovery, profile).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::i18n::Lang;
use crate::oidc::params::Params;
use crate::server::App;

/// A text field, trimmed; empty when absent. Never for passwords, which are taken as typed.
pub fn field<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).map(str::trim).unwrap_or("")
}

/// The page language: the form's `ui_locales`, else Accept-Language, else Russian.
pub fn lang_of(p: &Params, headers: &HeaderMap) -> Lang {
    Lang::negotiate(p.get("ui_locales"), headers)
}

/// Our own trouble (storage down): logged with its cause, shown without it.
pub fn unavailable(app: &App, lang: Lang, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    app.pages
        .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None)
}

/// Renders a page that carries a form: the browser session's CSRF token is added to `ctx` as
/// `csrf` (the hidden field and the `<meta name="csrf-token">` of the page).
pub async fn render_with_csrf(
    app: &App,
    session: &tower_sessions::Session,
    template: &str,
    lang: Lang,
    status: StatusCode,
    mut ctx: serde_json::Value,
) -> Response {
    let csrf = match crate::authn::browser::csrf_token(session).await {
        Ok(c) => c,
        Err(e) => return unavailable(app, lang, &e),
    };
    if let serde_json::Value::Object(map) = &mut ctx {
        map.insert("csrf".into(), serde_json::Value::String(csrf));
    }
    app.pages.render(template, lang, status, ctx)
}
