//! Small helpers shared by the self-service pages (registration, recovery, profile).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;
use super::page_error::PageError;
use crate::server::App;
use crate::web::params::Params;

/// A text field, trimmed; empty when absent. Never for passwords, which are taken as typed.
pub fn field<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).map(str::trim).unwrap_or("")
}

/// The page language: the form's `ui_locales`, else Accept-Language, else Russian.
pub fn lang_of(p: &Params, headers: &HeaderMap) -> Lang {
    Lang::negotiate(p.get("ui_locales"), headers)
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
        Err(e) => return PageError::unavailable(lang, &e).into_response(),
    };
    if let serde_json::Value::Object(map) = &mut ctx {
        map.insert("csrf".into(), serde_json::Value::String(csrf));
    }
    app.pages.render(template, lang, status, ctx)
}

/// The field a form was refused for, and what to tell about it: marked on the page
/// (`aria-invalid`, its own message, focus) besides the summary at the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }

    /// The page context: the summary (`error`) and the field's mark (`fe`).
    pub fn context(error: Option<&str>, field: Option<&FieldError>) -> serde_json::Value {
        serde_json::json!({
            "error": error.or(field.map(|f| f.message.as_str())),
            "fe": field.map(|f| serde_json::json!({"field": f.field, "message": f.message})),
        })
    }
}

/// Why a form was refused: a message, and the field it is about when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Option<&'static str>,
    pub message: String,
}

impl From<String> for Problem {
    fn from(message: String) -> Problem {
        Problem {
            field: None,
            message,
        }
    }
}

impl From<FieldError> for Problem {
    fn from(f: FieldError) -> Problem {
        Problem {
            field: Some(f.field),
            message: f.message,
        }
    }
}

impl Problem {
    /// The page context of an optional problem (see `FieldError::context`).
    pub fn context(p: Option<Problem>) -> serde_json::Value {
        let field = p
            .as_ref()
            .and_then(|p| p.field.map(|f| FieldError::new(f, p.message.clone())));
        FieldError::context(p.as_ref().map(|p| p.message.as_str()), field.as_ref())
    }
}

/// Merges `extra`'s keys into `ctx`.
pub fn merge(mut ctx: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    ctx
}

/// What to say when an email (a confirmation or recovery link) was not sent: an email's own
/// wording; "too soon" is the person's to wait for (429), only our failures are 503.
pub fn email_not_sent(e: &crate::authn::contact_proof::SendError) -> (StatusCode, &'static str) {
    use crate::authn::contact_proof::SendError;
    use crate::authn::otp::OtpError;
    match e {
        SendError::Otp(OtpError::TooSoon) => (StatusCode::TOO_MANY_REQUESTS, "email_too_soon"),
        SendError::Limit(_) => (StatusCode::TOO_MANY_REQUESTS, "email_too_soon"),
        SendError::Failed => (StatusCode::SERVICE_UNAVAILABLE, "email_send_failed"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
    }
}

/// The notice last shown in this browser and the GET address that shows it again (its
/// language links), e.g. a used email link: the link no longer works, the page still does.
const SHOWN: &str = "shown_notice";

#[derive(serde::Serialize, serde::Deserialize)]
struct Shown {
    at: String,
    notice: super::pages::Notice,
}

/// Shows `notice` and remembers it for `at` (a GET address), so that its language links work.
pub async fn show_remembered(
    app: &App,
    session: &tower_sessions::Session,
    lang: Lang,
    status: StatusCode,
    notice: super::pages::Notice,
    at: &str,
) -> Response {
    let shown = Shown {
        at: at.to_string(),
        notice,
    };
    if let Err(e) = session.insert(SHOWN, &shown).await {
        tracing::warn!(error = %e, "could not remember a notice");
    }
    app.pages.notice(lang, status, &shown.notice, Some(at))
}

/// The notice remembered for the page this GET request shows, if any.
pub async fn remembered(session: &tower_sessions::Session) -> Option<super::pages::Notice> {
    let here = super::current_page()?;
    let shown: Shown = session.get(SHOWN).await.ok().flatten()?;
    (shown.at == here).then_some(shown.notice)
}
