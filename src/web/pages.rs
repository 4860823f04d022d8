//! Server-rendered pages (minijinja, templates compiled into the binary, HTML auto-escaped).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

use super::i18n::{self, Lang};

pub struct Pages {
    env: Environment<'static>,
}

pub const CSS: &str = include_str!("templates/vhod.css");

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("error.html", include_str!("templates/error.html")),
            ("logout.html", include_str!("templates/logout.html")),
            ("demo.html", include_str!("templates/demo.html")),
            ("register.html", include_str!("templates/register.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("notice.html", include_str!("templates/notice.html")),
            ("forgot.html", include_str!("templates/forgot.html")),
            ("reset.html", include_str!("templates/reset.html")),
            ("profile.html", include_str!("templates/profile.html")),
        ] {
            // The templates are part of the binary; a syntax error is a build defect caught by tests.
            if let Err(e) = env.add_template(name, src) {
                panic!("template {name}: {e}");
            }
        }
        Pages { env }
    }

    /// Renders `name` with the language's messages as `t` and `ctx` merged in.
    pub fn render(&self, name: &str, lang: Lang, status: StatusCode, ctx: Value) -> Response {
        let mut base = json!({
            "lang": lang.code(),
            "t": i18n::messages(lang),
            "lang_query": "",
        });
        if let (Some(b), Value::Object(extra)) = (base.as_object_mut(), ctx) {
            b.extend(extra);
        }
        let html = self.env.get_template(name).and_then(|t| t.render(&base));
        match html {
            Ok(h) => (status, Html(h)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "page rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// The error page for failures that must not redirect (unknown client, bad redirect_uri, ...).
    pub fn error(
        &self,
        lang: Lang,
        status: StatusCode,
        message_key: &str,
        detail: Option<&str>,
    ) -> Response {
        self.render(
            "error.html",
            lang,
            status,
            json!({
                "title": i18n::text(lang, "error_title"),
                "message": i18n::text(lang, message_key),
                "detail": detail,
            }),
        )
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_escape_input() {
        let p = Pages::new();
        let r = p.render(
            "login.html",
            Lang::En,
            StatusCode::OK,
            json!({"title": "x", "client_id": "<script>alert(1)</script>", "csrf": "c", "tx": "t", "username": "\"><b>"}),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let _ = p.error(
            Lang::Be,
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("<i>"),
        );
    }
}
