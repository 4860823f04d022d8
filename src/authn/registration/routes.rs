//! The registration pages: the form, the confirmation page (the SMS code, sending again) and
//! the emailed link. Each reads the request, asks the service ([`super::Registrar`]) and draws
//! its answer. The browser session's part of the flow stays here: which account this browser
//! is registering, and the login to continue once it is active.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::{EmailConfirmation, MAX_NAME, PhoneConfirmation, Refusal, Resend, Resent};
use crate::authn::browser;
use crate::authn::otp::OtpError;
use crate::identity::account::Account;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::form::{self, FieldError, Problem, field, lang_of};
use crate::web::i18n::{self, Lang};
use crate::web::page_error::PageError;
use crate::web::pages::{Notice, with_query};
use crate::web::params::{Params, RequestParams};

/// The account this browser is registering (set at registration, or after a password login of a
/// pending account): only it can be confirmed from this browser.
const REGISTERING: &str = "registering";
/// The login transaction to continue once the account is active.
const REG_TX: &str = "registering_tx";

/// What the form says about a refused registration, and with which status.
fn refusal_form(lang: Lang, r: Refusal) -> Result<(StatusCode, Problem), PageError> {
    let text = |k: &str| i18n::text(lang, k).to_string();
    Ok(match r {
        Refusal::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            text("too_many_requests").into(),
        ),
        // Naming the login, and nothing about the contacts.
        Refusal::LoginTaken(login) => {
            let msg = text("login_taken").replace("{login}", &login);
            (
                StatusCode::CONFLICT,
                FieldError::new("username", msg).into(),
            )
        }
        Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, text("busy").into()),
        Refusal::InvalidUsername => (StatusCode::BAD_REQUEST, text("username_invalid").into()),
        Refusal::Unavailable(e) => return Err(PageError::unavailable(lang, &e)),
    })
}

async fn render_form(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    values: &Params,
    problem: Option<Problem>,
) -> Response {
    let min = app.settings.limits.password_min_length.to_string();
    let typed = |k: &str, max: usize| field(values, k).chars().take(max).collect::<String>();
    let ctx = json!({
        "title": i18n::text(lang, "register_title"),
        // The language links open the form again (typed values are not carried).
        "here": "/register",
        "password_hint": i18n::text(lang, "password_hint").replace("{min}", &min),
        "min": min,
        "v": {
            "family_name": typed("family_name", MAX_NAME),
            "given_name": typed("given_name", MAX_NAME),
            "middle_name": typed("middle_name", MAX_NAME),
            "username": typed("username", 64),
            "phone": typed("phone", 32),
            "email": typed("email", 254),
            "consent": field(values, "consent") == "on",
        },
    });
    let ctx = form::merge(Problem::context(problem), ctx);
    form::render_with_csrf(app, session, "register.html", lang, status, ctx).await
}

pub async fn form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    // Registering from a login page: remember which authorization to continue afterwards.
    browser::remember_owned_transaction(&session, REG_TX, params.get("tx"))
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let (status, values) = (StatusCode::OK, Params::default());
    Ok(render_form(&app, &session, lang, status, &values, None).await)
}

pub async fn submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, &headers);
        return Err(PageError::bad_request(lang, "bad_request"));
    };
    let lang = lang_of(&params, &headers);
    let again = |status, problem: Problem| {
        render_form(&app, &session, lang, status, &params, Some(problem))
    };
    let csrf = browser::csrf_ok(&session, field(&params, "csrf")).await;
    if !csrf.map_err(|e| PageError::unavailable(lang, &e))? {
        let msg = i18n::text(lang, "csrf").to_string();
        return Ok(again(StatusCode::FORBIDDEN, msg.into()).await);
    }
    let registrar = app.registrar();
    let reg = match registrar.validate(&params, lang) {
        Ok(r) => r,
        Err(problem) => return Ok(again(StatusCode::BAD_REQUEST, problem.into()).await),
    };
    let registered = match registrar.register(reg, &meta).await {
        Ok(r) => r,
        Err(r) => {
            let (status, problem) = refusal_form(lang, r)?;
            return Ok(again(status, problem).await);
        }
    };
    let remembered = session.insert(REGISTERING, &registered.account.id).await;
    remembered.map_err(|e| PageError::unavailable(lang, &e))?;
    // A failed send is shown on the confirmation page, where the person can resend.
    let note = registrar.send_proofs(&registered, &meta, lang).await;
    let note = note.map(|k| format!("&note={k}")).unwrap_or_default();
    let to = format!("/register/confirm?ui_locales={}{note}", lang.code());
    Ok(Redirect::to(&to).into_response())
}

/// Marks a browser as registering `account_id` (after a password login of a pending account).
pub async fn resume_registration(
    session: &Session,
    account_id: &str,
) -> Result<(), browser::BrowserError> {
    session.insert(REGISTERING, account_id).await?;
    Ok(())
}

/// The account this browser is registering, unless it expired unconfirmed.
async fn registering(app: &App, session: &Session, lang: Lang) -> Result<Account, PageError> {
    let id: Option<String> = session.get(REGISTERING).await.ok().flatten();
    let pending = match id {
        Some(id) => {
            (app.registrar().pending(&id).await).map_err(|e| PageError::unavailable(lang, &e))?
        }
        None => None,
    };
    pending.ok_or(PageError::bad_request(lang, "tx_expired"))
}

/// Where the confirmation page is drawn: for this browser, in this language.
struct ConfirmPage<'a> {
    app: &'a App,
    session: &'a Session,
    lang: Lang,
}

impl ConfirmPage<'_> {
    async fn show(
        &self,
        status: StatusCode,
        acc: &Account,
        message: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        // A wrong, used-up or expired code is said at the code field too.
        let at_code =
            error.is_some_and(|k| matches!(k, "otp_wrong" | "otp_too_many" | "otp_expired"));
        let error = error.map(|k| i18n::text(self.lang, k).to_string());
        self.show_text(status, acc, message, error, at_code).await
    }

    /// As [`Self::show`], with the error already in words (a wrong code's attempts left) and
    /// whether it is about the code field.
    async fn show_text(
        &self,
        status: StatusCode,
        acc: &Account,
        message: Option<&str>,
        error: Option<String>,
        at_code: bool,
    ) -> Response {
        let (session, lang) = (self.session, self.lang);
        let tx: Option<String> = session.get(REG_TX).await.ok().flatten();
        // A contact's confirmation is said once, in its own section.
        let message = message.filter(|k| !matches!(*k, "phone_confirmed" | "email_confirmed"));
        let code_problem = error
            .as_ref()
            .filter(|_| at_code)
            .map(|m| FieldError::new("code", m.clone()));
        let problem = FieldError::context(error.as_deref(), code_problem.as_ref());
        let ctx = json!({
            "title": i18n::text(lang, "confirm_title"),
            "phone": acc.masked_phone(),
            "email": acc.masked_email(),
            "phone_verified": acc.phone_verified,
            "email_verified": acc.email_verified,
            "active": acc.is_active(),
            "continue": tx.map(|t| format!("/login?tx={t}&ui_locales={}", lang.code())),
            "message": message.map(|k| i18n::text(lang, k)),
            "here": "/register/confirm",
        });
        let ctx = form::merge(problem, ctx);
        form::render_with_csrf(self.app, session, "confirm.html", lang, status, ctx).await
    }
}

pub async fn confirm_page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let acc = registering(&app, &session, lang).await?;
    // Only known message keys are echoed from the query.
    let note = params.get("note").filter(|k| {
        matches!(
            *k,
            "sms_limit" | "send_failed" | "otp_too_soon" | "otp_daily_cap" | "server_error"
        )
    });
    let page = ConfirmPage {
        app: &app,
        session: &session,
        lang,
    };
    Ok(page.show(StatusCode::OK, &acc, None, note).await)
}

/// What the confirmation page says after sending again: (status, message, error). An SMS
/// refused is the person's to wait for; an email's refusal has its own wording.
fn sent_again(what: Resend, r: Resent) -> (StatusCode, Option<&'static str>, Option<&'static str>) {
    match r {
        Resent::Nothing => (StatusCode::OK, None, None),
        Resent::Sent => (StatusCode::OK, Some("resent"), None),
        Resent::NotSent(e) if what == Resend::Sms => {
            (StatusCode::TOO_MANY_REQUESTS, None, Some(e.message_key()))
        }
        Resent::NotSent(e) => {
            let (status, key) = form::email_not_sent(&e);
            (status, None, Some(key))
        }
    }
}

/// POST /register/confirm: the SMS code, or a request to resend the code or the email.
pub async fn confirm_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, &headers);
        return Err(PageError::bad_request(lang, "bad_request"));
    };
    let lang = lang_of(&params, &headers);
    let acc = registering(&app, &session, lang).await?;
    let page = ConfirmPage {
        app: &app,
        session: &session,
        lang,
    };
    let csrf = browser::csrf_ok(&session, field(&params, "csrf")).await;
    if !csrf.map_err(|e| PageError::unavailable(lang, &e))? {
        return Ok(page
            .show(StatusCode::FORBIDDEN, &acc, None, Some("csrf"))
            .await);
    }
    let registrar = app.registrar();
    let resend = match field(&params, "action") {
        "resend_sms" => Some(Resend::Sms),
        "resend_email" => Some(Resend::Email),
        _ => None,
    };
    if let Some(what) = resend {
        let resent = registrar.resend(&acc, what, &meta, lang).await;
        let resent = resent.map_err(|e| PageError::unavailable(lang, &e))?;
        let (status, message, error) = sent_again(what, resent);
        return Ok(page.show(status, &acc, message, error).await);
    }
    let confirmed = registrar
        .confirm_phone(&acc, field(&params, "code"), &meta)
        .await;
    Ok(
        match confirmed.map_err(|e| PageError::unavailable(lang, &e))? {
            PhoneConfirmation::Confirmed(acc) => {
                page.show(StatusCode::OK, &acc, Some("phone_confirmed"), None)
                    .await
            }
            PhoneConfirmation::Refused(e) => {
                let at_code = matches!(
                    e,
                    OtpError::Wrong { .. } | OtpError::TooManyAttempts | OtpError::Expired
                );
                let (status, words) = (StatusCode::BAD_REQUEST, Some(e.message(lang)));
                page.show_text(status, &acc, None, words, at_code).await
            }
            PhoneConfirmation::ConfirmedElsewhere => {
                let key = Some("phone_confirmed_elsewhere");
                page.show(StatusCode::CONFLICT, &acc, None, key).await
            }
            PhoneConfirmation::NotCurrent => {
                let key = Some("otp_expired");
                page.show(StatusCode::BAD_REQUEST, &acc, None, key).await
            }
        },
    )
}

/// GET /register/email?token=…: the link from the confirmation email.
pub async fn confirm_email(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let (registrar, token) = (app.registrar(), field(&params, "token"));
    let link = registrar.take_link(token).await;
    let link = link.map_err(|e| PageError::unavailable(lang, &e))?;
    if link.is_none()
        && let Some(n) = form::remembered(&session).await
    {
        // This browser used the link just now: the page again (another language).
        return Ok(app.pages.notice(lang, StatusCode::OK, &n, None));
    }
    let confirmed = registrar.confirm_email(link, &meta).await;
    let acc = match confirmed.map_err(|e| PageError::unavailable(lang, &e))? {
        EmailConfirmation::Confirmed(acc) => acc,
        EmailConfirmation::Invalid => {
            return Err(PageError::bad_request(lang, "email_link_invalid"));
        }
        EmailConfirmation::ConfirmedElsewhere => {
            let key = "email_confirmed_elsewhere";
            return Err(PageError::new(lang, StatusCode::CONFLICT, key));
        }
    };
    // In the browser that is registering this account, show the whole picture.
    let mine: Option<String> = session.get(REGISTERING).await.ok().flatten();
    if mine.as_deref() == Some(acc.id.as_str()) {
        let page = ConfirmPage {
            app: &app,
            session: &session,
            lang,
        };
        let message = Some("email_confirmed");
        return Ok(page.show(StatusCode::OK, &acc, message, None).await);
    }
    let said = if acc.is_active() {
        "account_active"
    } else {
        "email_confirmed"
    };
    let n = Notice::new("confirm_title", said).link("/profile", "profile_link_open");
    let at = with_query("/register/email", "", &[("token", token)]);
    Ok(form::show_remembered(&app, &session, lang, StatusCode::OK, n, &at).await)
}
