//! Server-rendered pages (minijinja, templates compiled into the binary, HTML auto-escaped).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::i18n::{self, Lang};
use crate::config::Face;

pub struct Pages {
    env: Environment<'static>,
    /// The service's name, operator, support and privacy notice (from the settings, once).
    face: Face,
}

pub const CSS: &str = include_str!("templates/vhod.css");
/// The certificate-login adapter (`/static/cert-login.js`), loaded only where certificate login
/// is enabled.
pub const CERT_LOGIN_JS: &str = include_str!("static/cert-login.js");

/// The languages in the order the menu lists them, each named in itself.
const LANGS: [(Lang, &str); 3] = [
    (Lang::Ru, "Русский"),
    (Lang::Be, "Беларуская"),
    (Lang::En, "English"),
];

/// `path?query` with `ui_locales` and the keys of `set` removed from the query, then `set`
/// appended: the same page with other parameters.
pub fn with_query(path: &str, query: &str, set: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "ui_locales" && !set.iter().any(|(s, _)| *s == k) {
            out.append_pair(&k, &v);
        }
    }
    for (k, v) in set {
        out.append_pair(k, v);
    }
    let q = out.finish();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// `url` (a page address, maybe with a query) in language `lang`.
pub fn in_lang(url: &str, lang: Lang) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    with_query(path, query, &[("ui_locales", lang.code())])
}

/// A message page: what happened and the ways on. Its texts are message keys, so the same
/// notice can be shown again in another language (see `web::form::remember`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Notice {
    pub title: String,
    pub message: String,
    /// Values of the message's `{name}` placeholders.
    #[serde(default)]
    pub args: Vec<(String, String)>,
    /// `ok` (default) or `error`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub links: Vec<NoticeLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoticeLink {
    /// A page of ours (`/…`, shown in the page's language) or another site's address.
    pub href: String,
    /// Message key of the link text; `{name}` placeholders filled from `args`.
    pub text: String,
    #[serde(default)]
    pub args: Vec<(String, String)>,
}

impl Notice {
    pub fn new(title: &str, message: &str) -> Notice {
        Notice {
            title: title.into(),
            message: message.into(),
            ..Notice::default()
        }
    }

    pub fn error(mut self) -> Notice {
        self.kind = Some("error".into());
        self
    }

    pub fn arg(mut self, name: &str, value: &str) -> Notice {
        self.args.push((name.into(), value.into()));
        self
    }

    pub fn link(mut self, href: impl Into<String>, text: &str) -> Notice {
        self.links.push(NoticeLink {
            href: href.into(),
            text: text.into(),
            args: Vec::new(),
        });
        self
    }

    pub fn link_with(
        mut self,
        href: impl Into<String>,
        text: &str,
        args: &[(&str, &str)],
    ) -> Notice {
        self.links.push(NoticeLink {
            href: href.into(),
            text: text.into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        self
    }
}

fn fill(text: &str, args: &[(String, String)]) -> String {
    args.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

/// `tel:` form of a phone number as people write it.
fn tel(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

/// Does the client want a page rather than JSON (a browser)?
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

impl Pages {
    /// Pages with the built-in face (tests, tools).
    pub fn new() -> Pages {
        Pages::with_face(Face::default())
    }

    /// Pages showing the service's face from the settings.
    pub fn with_face(face: Face) -> Pages {
        let mut env = Environment::new();
        for (name, src) in [
            ("base.html", include_str!("templates/base.html")),
            ("fields.html", include_str!("templates/fields.html")),
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
        Pages { env, face }
    }

    /// What every page shows of the service, in `lang`.
    fn face(&self, lang: Lang) -> Value {
        let face = &self.face;
        let text = |l: &Option<crate::config::Localized>, key: &str| -> String {
            l.as_ref()
                .and_then(|l| l.get(lang))
                .map(String::from)
                .unwrap_or_else(|| i18n::text(lang, key).to_string())
        };
        json!({
            "service_name": text(&face.service_name, "service_name"),
            "operator": face.operator.as_ref().and_then(|o| o.get(lang)),
            "support_email": face.support_email,
            "support_phone": face.support_phone,
            "support_tel": face.support_phone.as_deref().map(tel),
            "privacy_url": face.privacy_url,
            "consent_text": text(&face.consent_text, "consent_text"),
        })
    }

    /// The sender named in SMS texts, in `lang`.
    pub fn sms_name(&self, lang: Lang) -> String {
        self.face
            .sms_name
            .as_ref()
            .and_then(|n| n.get(lang))
            .map(String::from)
            .unwrap_or_else(|| i18n::text(lang, "sms_name").to_string())
    }

    /// The language menu: the other languages, each a GET of `here` in that language.
    fn langs(lang: Lang, here: Option<&str>) -> Value {
        let Some(here) = here else {
            return Value::Null;
        };
        let links: Vec<Value> = LANGS
            .iter()
            .filter(|(l, _)| *l != lang)
            .map(|(l, name)| json!({"code": l.code(), "name": name, "href": in_lang(here, *l)}))
            .collect();
        Value::Array(links)
    }

    /// Renders `name` with the language's messages as `t` and `ctx` merged in. The language
    /// links go to `ctx.here` (a GET address; null for none), else to the page a GET request
    /// shows.
    pub fn render(&self, name: &str, lang: Lang, status: StatusCode, ctx: Value) -> Response {
        let here = match ctx.get("here") {
            Some(Value::String(h)) if !h.is_empty() => Some(h.clone()),
            Some(_) => None,
            None => super::current_page(),
        };
        let mut base = json!({
            "lang": lang.code(),
            "t": i18n::messages(lang),
            "langs": Self::langs(lang, here.as_deref()),
            "face": self.face(lang),
            "profile_href": in_lang("/profile", lang),
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

    /// A message page; its language links go to `here` (a GET that shows it again), or to the
    /// page a GET request shows.
    pub fn notice(
        &self,
        lang: Lang,
        status: StatusCode,
        n: &Notice,
        here: Option<&str>,
    ) -> Response {
        let links: Vec<Value> = n
            .links
            .iter()
            .map(|l| {
                let href = if l.href.starts_with('/') {
                    in_lang(&l.href, lang)
                } else {
                    l.href.clone()
                };
                json!({"href": href, "text": fill(i18n::text(lang, &l.text), &l.args)})
            })
            .collect();
        let mut ctx = json!({
            "title": i18n::text(lang, &n.title),
            "message": fill(i18n::text(lang, &n.message), &n.args),
            "kind": n.kind,
            "links": links,
        });
        if let Some(h) = here {
            ctx["here"] = Value::String(h.to_string());
        }
        self.render("notice.html", lang, status, ctx)
    }

    /// An unknown address: a page for browsers, JSON for API clients.
    pub fn not_found(&self, headers: &HeaderMap, ui_locales: Option<&str>) -> Response {
        if !wants_html(headers) {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "not_found"})),
            )
                .into_response();
        }
        let lang = Lang::negotiate(ui_locales, headers);
        let n = Notice::new("not_found_title", "not_found")
            .error()
            .link("/profile", "profile_link");
        self.notice(lang, StatusCode::NOT_FOUND, &n, None)
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
    fn language_links_keep_the_page_and_name_the_language_once() {
        assert_eq!(
            in_lang("/login?tx=abc&ui_locales=ru", Lang::Be),
            "/login?tx=abc&ui_locales=be"
        );
        assert_eq!(
            in_lang("/register/confirm", Lang::En),
            "/register/confirm?ui_locales=en"
        );
        assert_eq!(
            with_query("/forgot/email", "token=a%2Bb&ui_locales=be", &[]),
            "/forgot/email?token=a%2Bb"
        );
        assert_eq!(with_query("/x", "", &[("a", "1 2")]), "/x?a=1+2");
        assert_eq!(tel("+375 (17) 000-00-00"), "tel:+375170000000");
    }

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
            "langs": [],
            "face": {"service_name": "Вход"},
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
        assert!(html.contains("Гэты сэрвіс патрабуе ўваходу з ЭЛП або ID-картай."));
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
