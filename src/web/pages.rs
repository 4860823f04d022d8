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
/// The certificate-login adapter (`/static/cert-login.js`), loaded only where certificate login
/// is enabled.
pub const CERT_LOGIN_JS: &str = include_str!("static/cert-login.js");

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
            json!({"title": "x", "client_id": "<script>alert(1)</script>", "csrf": "c", "tx": "t", "username": "\"><b>",
                   "cert_enabled": true, "step_up": false, "cert_dev": false}),
        );
        assert_eq!(r.status(), StatusCode::OK);
        let _ = p.error(
            Lang::Be,
            StatusCode::BAD_REQUEST,
            "bad_request",
            Some("<i>"),
        );
    }

    fn login(p: &Pages, lang: Lang, extra: Value) -> String {
        let mut ctx = json!({
            "lang": lang.code(),
            "t": i18n::messages(lang),
            "lang_query": "tx=t&",
            "title": "x",
            "client_id": "demo",
            "csrf": "c",
            "tx": "t",
            "username": "",
            "forgot_enabled": true,
        });
        if let (Some(c), Value::Object(extra)) = (ctx.as_object_mut(), extra) {
            c.extend(extra);
        }
        p.env
            .get_template("login.html")
            .and_then(|t| t.render(&ctx))
            .expect("login.html renders")
    }

    #[test]
    fn login_offers_certificate_only_when_enabled() {
        let p = Pages::new();
        let plain = login(&p, Lang::Ru, json!({}));
        assert!(plain.contains("/login/password"));
        assert!(
            !plain.contains("cert-login"),
            "no certificate section by default"
        );

        let cert = login(&p, Lang::Ru, json!({"cert_enabled": true}));
        assert!(cert.contains("/login/password"));
        assert!(cert.contains("Войти с ЭЦП &#x2f; ID-картой"));
        assert!(cert.contains(r#"<script src="/static/cert-login.js" defer></script>"#));
        assert!(cert.contains(
            r#"data-err-untrusted="Сертификат выдан не доверенным удостоверяющим центром.""#
        ));
        assert!(
            cert.contains(r#"id="cert-dev" class="cert-dev" hidden"#),
            "dev panel hidden"
        );
        assert!(
            !cert.contains("<script>"),
            "no inline script: the CSP forbids it"
        );

        let dev = login(
            &p,
            Lang::En,
            json!({"cert_enabled": true, "cert_dev": true}),
        );
        // The developer signer is offered (data-dev), shown only once the button finds no
        // signing software.
        assert!(dev.contains(r#"data-dev="1""#));
        assert!(dev.contains(r#"id="cert-dev" class="cert-dev" hidden"#));
        assert!(dev.contains("Sign in with an EDS key &#x2f; ID card"));
    }

    #[test]
    fn step_up_hides_the_password_form() {
        let p = Pages::new();
        let html = login(&p, Lang::Be, json!({"cert_enabled": true, "step_up": true}));
        assert!(!html.contains("/login/password"));
        assert!(!html.contains(r#"name="password""#));
        assert!(html.contains("Гэты сэрвіс патрабуе ўваходу з ЭЦП або ID-картай."));
        assert!(html.contains(r#"id="cert-start""#));
    }

    #[test]
    fn a_client_that_needs_a_certificate_still_takes_the_password_that_links_it() {
        let p = Pages::new();
        let html = login(
            &p,
            Lang::Ru,
            json!({"cert_enabled": true, "cert_required": true}),
        );
        assert!(html.contains("/login/password"));
        assert!(html.contains("Этот сервис требует входа с ЭЦП или ID-картой."));
        assert!(html.contains("сертификат будет привязан"));
        assert!(!html.contains(r#"id="cert-start" class="secondary""#));
    }

    #[test]
    fn every_certificate_error_reason_has_a_message() {
        let p = Pages::new();
        for lang in [Lang::Ru, Lang::Be, Lang::En] {
            let html = login(&p, lang, json!({"cert_enabled": true}));
            for reason in [
                "malformed",
                "untrusted",
                "bad_signature",
                "expired",
                "not_yet_valid",
                "revoked",
                "crl_unavailable",
                "key_usage",
                "bad_challenge",
                "policy",
                "too_complex",
                "busy",
                "csrf",
                "tx_expired",
                "no_signer",
            ] {
                let attr = format!("data-err-{}=\"", reason.replace('_', "-"));
                let at = html.find(&attr).unwrap_or_else(|| panic!("{reason}"));
                assert_ne!(
                    html[at + attr.len()..].chars().next(),
                    Some('"'),
                    "{reason} empty"
                );
            }
        }
        assert!(CERT_LOGIN_JS.contains("window.vhodSigner"));
    }
}
