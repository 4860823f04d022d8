//! The recovery pages: /forgot (the request), /forgot/reset (the SMS code's step) and
//! /forgot/email (the emailed link's). They keep in the browser session which account is being
//! recovered and which sign-in to continue afterwards; every decision is the service's.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tower_sessions::Session;

use super::{Channel, RequestError, Requested, ResetError};
use crate::authn::browser;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::form::{self, FieldError, Problem, field, lang_of};
use crate::web::i18n::{self, Lang};
use crate::web::page_error::PageError;
use crate::web::pages::Notice;
use crate::web::params::{Params, RequestParams};

/// The account this browser is recovering by SMS (a random id when none was found, so that the
/// next step looks the same either way).
const RECOVERING: &str = "recovering";
/// The login transaction to continue after the reset.
const RECOVERY_TX: &str = "recovery_tx";

/// GET addresses that show the recovery pages again (their language links).
const AT_CODE: &str = "/forgot?step=code";
const AT_SENT: &str = "/forgot?step=sent";
const AT_DONE: &str = "/forgot?step=done";

fn text(lang: Lang, key: &str) -> String {
    i18n::text(lang, key).to_string()
}

fn bad_request(headers: &HeaderMap) -> PageError {
    PageError::bad_request(Lang::negotiate(None, headers), "bad_request")
}

/// The form's CSRF token is this browser's.
async fn csrf_ok(session: &Session, params: &Params, lang: Lang) -> Result<bool, PageError> {
    browser::csrf_ok(session, field(params, "csrf"))
        .await
        .map_err(|e| PageError::unavailable(lang, &e))
}

/// The two forms of recovery, for one request.
struct Forms<'a> {
    app: &'a App,
    session: &'a Session,
    lang: Lang,
}

impl Forms<'_> {
    /// The request form: the login and the channel.
    async fn forgot(
        &self,
        status: StatusCode,
        login: &str,
        channel: Channel,
        error: Option<Problem>,
    ) -> Response {
        let lang = self.lang;
        let ctx = json!({
            "title": i18n::text(lang, "forgot_title"),
            "here": "/forgot",
            "login": login.chars().take(254).collect::<String>(),
            "email_channel": channel == Channel::Email,
        });
        let ctx = form::merge(Problem::context(error), ctx);
        form::render_with_csrf(self.app, self.session, "forgot.html", lang, status, ctx).await
    }

    /// The new-password form: after an SMS (`token` None) or from an emailed link.
    async fn reset(
        &self,
        status: StatusCode,
        token: Option<&str>,
        message: Option<&str>,
        error: Option<Problem>,
    ) -> Response {
        let lang = self.lang;
        let min = self.app.settings.limits.password_min_length.to_string();
        let here = match token {
            Some(t) => crate::web::pages::with_query("/forgot/email", "", &[("token", t)]),
            None => AT_CODE.to_string(),
        };
        let ctx = json!({
            "title": i18n::text(lang, "reset_title"),
            "here": here,
            "token": token,
            "action": if token.is_some() { "/forgot/email" } else { "/forgot/reset" },
            "message": message.map(|k| i18n::text(lang, k)),
            "password_hint": i18n::text(lang, "password_hint").replace("{min}", &min),
            "min": min,
        });
        let ctx = form::merge(Problem::context(error), ctx);
        form::render_with_csrf(self.app, self.session, "reset.html", lang, status, ctx).await
    }

    /// A refused reset: its form again with the reason (at its field), or an error page.
    async fn refused(&self, token: Option<&str>, e: ResetError) -> Result<Response, PageError> {
        let lang = self.lang;
        let at = |field, msg: String| Problem::from(FieldError::new(field, msg));
        let (status, problem) = match e {
            ResetError::WeakPassword(v) => {
                let min = super::policy(&self.app.settings).min_chars().to_string();
                let msg = i18n::text(lang, v.message_key()).replace("{min}", &min);
                (StatusCode::BAD_REQUEST, at("password", msg))
            }
            ResetError::Code(e) => (StatusCode::BAD_REQUEST, at("code", e.message(lang))),
            ResetError::PhoneChanged => (
                StatusCode::BAD_REQUEST,
                at("code", text(lang, "otp_expired")),
            ),
            ResetError::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                text(lang, "too_many_requests").into(),
            ),
            ResetError::Busy => (StatusCode::SERVICE_UNAVAILABLE, text(lang, "busy").into()),
            ResetError::InvalidLink => {
                return Err(PageError::bad_request(lang, "email_link_invalid"));
            }
            ResetError::Unavailable(cause) => return Err(PageError::unavailable(lang, &cause)),
        };
        Ok(self.reset(status, token, None, Some(problem)).await)
    }
}

/// GET /forgot: the form (optionally continuing a login transaction afterwards).
pub async fn form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    browser::remember_owned_transaction(&session, RECOVERY_TX, params.get("tx"))
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let forms = Forms {
        app: &app,
        session: &session,
        lang,
    };
    // The pages that answered a POST, again (in another language).
    match params.get("step") {
        Some("code") if matches!(session.get::<String>(RECOVERING).await, Ok(Some(_))) => {
            return Ok(forms.reset(StatusCode::OK, None, None, None).await);
        }
        Some(_) => {
            if let Some(n) = form::remembered(&session).await {
                return Ok(app.pages.notice(lang, StatusCode::OK, &n, None));
            }
        }
        None => {}
    }
    Ok(forms.forgot(StatusCode::OK, "", Channel::Sms, None).await)
}

/// POST /forgot: sends a code or a link if the account exists; the answer is the same either way.
pub async fn submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let Ok(params) = params else {
        return Err(bad_request(&headers));
    };
    let lang = lang_of(&params, &headers);
    let forms = Forms {
        app: &app,
        session: &session,
        lang,
    };
    let login = field(&params, "login");
    let channel = Channel::of(field(&params, "channel"));
    if !csrf_ok(&session, &params, lang).await? {
        let msg = Some(text(lang, "csrf").into());
        return Ok(forms
            .forgot(StatusCode::FORBIDDEN, login, channel, msg)
            .await);
    }
    let (status, problem): (_, Problem) =
        match app.recovery().request(&meta, lang, login, channel).await {
            Ok(Requested::LinkAnswered) => {
                let n = Notice::new("forgot_title", "recovery_email_sent");
                let ok = StatusCode::OK;
                return Ok(form::show_remembered(&app, &session, lang, ok, n, AT_SENT).await);
            }
            Ok(Requested::CodeStep { subject }) => {
                if let Err(e) = session.insert(RECOVERING, &subject).await {
                    return Err(PageError::unavailable(lang, &e));
                }
                let sent = Some("recovery_sms_sent");
                return Ok(forms.reset(StatusCode::OK, None, sent, None).await);
            }
            Err(RequestError::BadLogin) => {
                let msg = FieldError::new("login", text(lang, "forgot_login_empty"));
                (StatusCode::BAD_REQUEST, msg.into())
            }
            Err(RequestError::SmsLimit) => (
                StatusCode::TOO_MANY_REQUESTS,
                text(lang, "sms_limit").into(),
            ),
            Err(RequestError::Unavailable(cause)) => {
                return Err(PageError::unavailable(lang, &cause));
            }
        };
    Ok(forms.forgot(status, login, channel, Some(problem)).await)
}

/// POST /forgot/reset: the SMS code and the new password.
pub async fn reset_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let Ok(params) = params else {
        return Err(bad_request(&headers));
    };
    let lang = lang_of(&params, &headers);
    let forms = Forms {
        app: &app,
        session: &session,
        lang,
    };
    if !csrf_ok(&session, &params, lang).await? {
        let msg = Some(text(lang, "csrf").into());
        return Ok(forms.reset(StatusCode::FORBIDDEN, None, None, msg).await);
    }
    let subject: Option<String> = session.get(RECOVERING).await.ok().flatten();
    let Some(subject) = subject else {
        return Err(PageError::bad_request(lang, "recovery_expired"));
    };
    // The password is taken as typed.
    let password = params.get("password").unwrap_or("");
    let code = field(&params, "code");
    let recovery = app.recovery();
    match recovery
        .reset_by_code(&meta, lang, &subject, code, password)
        .await
    {
        Ok(_) => {
            let done = finished(&app, &session, lang).await;
            let _ = session.remove::<String>(RECOVERING).await;
            Ok(done)
        }
        Err(e) => forms.refused(None, e).await,
    }
}

/// GET /forgot/email?token=…: the new-password form; the token is only read here.
pub async fn email_form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let token = field(&params, "token");
    match app.recovery().link_usable(token).await {
        Ok(true) => {}
        Ok(false) => return Err(PageError::bad_request(lang, "email_link_invalid")),
        Err(e) => return Err(PageError::unavailable(lang, &e)),
    }
    let forms = Forms {
        app: &app,
        session: &session,
        lang,
    };
    Ok(forms.reset(StatusCode::OK, Some(token), None, None).await)
}

/// POST /forgot/email: the token from the link and the new password; the token is used up.
pub async fn email_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let Ok(params) = params else {
        return Err(bad_request(&headers));
    };
    let lang = lang_of(&params, &headers);
    let forms = Forms {
        app: &app,
        session: &session,
        lang,
    };
    let token = field(&params, "token");
    if !csrf_ok(&session, &params, lang).await? {
        let msg = Some(text(lang, "csrf").into());
        return Ok(forms
            .reset(StatusCode::FORBIDDEN, Some(token), None, msg)
            .await);
    }
    let password = params.get("password").unwrap_or("");
    match app
        .recovery()
        .reset_by_link(&meta, lang, token, password)
        .await
    {
        Ok(_) => Ok(finished(&app, &session, lang).await),
        Err(e) => forms.refused(Some(token), e).await,
    }
}

/// After a reset: this browser's own SSO session (if any) has just ended, and the way on is
/// the sign-in the recovery interrupted, else the profile (which offers a sign-in).
async fn finished(app: &App, session: &Session, lang: Lang) -> Response {
    if matches!(browser::sid(session).await, Ok(Some(_))) {
        let _ = browser::sign_out(session).await;
    }
    let tx: Option<String> = session.remove(RECOVERY_TX).await.ok().flatten();
    let mut n = Notice::new("reset_title", "password_reset_done");
    if let Some(t) = tx {
        n = n.link(format!("/login?tx={t}"), "continue");
    }
    let n = n.link("/profile", "profile_link_open");
    form::show_remembered(app, session, lang, StatusCode::OK, n, AT_DONE).await
}
