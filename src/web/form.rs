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
