//! Citizen registration: surname, given name, patronymic, mobile phone, email, login, password.
//! The account stays pending (it cannot sign in to any client) until the phone is confirmed by
//! an SMS code and the email by a link; then it becomes active.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::contact_proof::{self, LinkFor, LinkPurpose, Recipient};
use super::otp::{self, Purpose};
use super::password::policy::PasswordPolicy;
use super::{browser, throttle};
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::identity::account::{self, Account, AccountError, NewAccount};
use crate::identity::contact::{Email, PhoneNumber, looks_like_phone};
use crate::server::App;
use crate::store::StoreError;
use crate::store::units::Confirmed;
use crate::web::RequestMeta;
use crate::web::form::{FieldError, Problem, field, lang_of, unavailable};
use crate::web::i18n::{self, Lang};
use crate::web::params::{Params, RequestParams};
use crate::web::sms::CodeFor;

/// The account this browser is registering (set at registration, or after a password login of a
/// pending account): only it can be confirmed from this browser.
const REGISTERING: &str = "registering";
/// The login transaction to continue once the account is active.
const REG_TX: &str = "registering_tx";

const MAX_NAME: usize = 100;

fn valid_name(s: &str, required: bool) -> bool {
    if s.is_empty() {
        return !required;
    }
    s.chars().count() <= MAX_NAME
        && s.chars().any(char::is_alphabetic)
        && s.chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'' || c == '’')
}

fn valid_username(s: &str) -> bool {
    (3..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !looks_like_phone(s)
}

async fn render_form(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    values: &Params,
    error: Option<impl Into<Problem>>,
) -> Response {
    let min = app.settings.limits.password_min_length.to_string();
    let problem = Problem::context(error.map(Into::into));
    crate::web::form::render_with_csrf(app, session, "register.html",
        lang,
        status,
        crate::web::form::merge(problem, json!({
            "title": i18n::text(lang, "register_title"),
            // The language links open the form again (typed values are not carried).
            "here": "/register",
            "password_hint": i18n::text(lang, "password_hint").replace("{min}", &min),
            "min": min,
            "v": {
                "family_name": field(values, "family_name").chars().take(MAX_NAME).collect::<String>(),
                "given_name": field(values, "given_name").chars().take(MAX_NAME).collect::<String>(),
                "middle_name": field(values, "middle_name").chars().take(MAX_NAME).collect::<String>(),
                "username": field(values, "username").chars().take(64).collect::<String>(),
                "phone": field(values, "phone").chars().take(32).collect::<String>(),
                "email": field(values, "email").chars().take(254).collect::<String>(),
                "consent": field(values, "consent") == "on",
            },
        })),
    ).await
}

pub async fn form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    // Registering from a login page: remember which authorization to continue afterwards.
    if let Some(tx) = params.get("tx")
        && matches!(browser::owns_transaction(&session, tx).await, Ok(true))
        && session.insert(REG_TX, tx).await.is_err()
    {
        return app
            .pages
            .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
    }
    render_form(
        &app,
        &session,
        lang,
        StatusCode::OK,
        &Params::default(),
        None::<String>,
    )
    .await
}

/// Everything the form says, validated; or the message key of the first problem.
struct Registration {
    family_name: String,
    given_name: String,
    middle_name: Option<String>,
    username: String,
    phone: PhoneNumber,
    email: Email,
    password: String,
}

fn validate(p: &Params, policy: &PasswordPolicy, lang: Lang) -> Result<Registration, FieldError> {
    let text = |k: &str| i18n::text(lang, k).to_string();
    let at = |f: &'static str, k: &str| FieldError::new(f, text(k));
    let (family, given, middle) = (
        field(p, "family_name"),
        field(p, "given_name"),
        field(p, "middle_name"),
    );
    for (name, value, required) in [
        ("family_name", family, true),
        ("given_name", given, true),
        ("middle_name", middle, false),
    ] {
        if !valid_name(value, required) {
            return Err(at(name, "name_invalid"));
        }
    }
    let username = account::normalize_username(field(p, "username"));
    if !valid_username(&username) {
        return Err(at("username", "username_invalid"));
    }
    let phone = PhoneNumber::parse(field(p, "phone")).map_err(|e| at("phone", e.message_key()))?;
    let email = Email::parse(field(p, "email")).map_err(|e| at("email", e.message_key()))?;
    // The password is taken as typed: no trimming, any characters.
    let password = p.get("password").unwrap_or("").to_string();
    let digits: String = phone
        .as_str()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let national = digits.get(3..).unwrap_or("").to_string();
    policy
        .check(
            &password,
            &[
                &username,
                &digits,
                &national,
                email.as_str(),
                email.local_part(),
            ],
        )
        .map_err(|v| {
            let msg = text(v.message_key()).replace("{min}", &policy.min_chars().to_string());
            FieldError::new("password", msg)
        })?;
    // Personal data are processed only with the person's consent (Law No. 99-З, art. 5).
    if field(p, "consent") != "on" {
        return Err(at("consent", "consent_required"));
    }
    Ok(Registration {
        family_name: family.to_string(),
        given_name: given.to_string(),
        middle_name: (!middle.is_empty()).then(|| middle.to_string()),
        username,
        phone,
        email,
        password,
    })
}

pub async fn submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, &headers);
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "bad_request", None);
    };
    let lang = lang_of(&params, &headers);
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = i18n::text(lang, "csrf").to_string();
            return render_form(
                &app,
                &session,
                lang,
                StatusCode::FORBIDDEN,
                &params,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let policy = PasswordPolicy::new(app.settings.limits.password_min_length);
    let reg = match validate(&params, &policy, lang) {
        Ok(r) => r,
        Err(msg) => {
            return render_form(
                &app,
                &session,
                lang,
                StatusCode::BAD_REQUEST,
                &params,
                Some(msg),
            )
            .await;
        }
    };
    // Everything cheap first; the hasher only for a registration that can be stored.
    let limits = &app.settings.limits;
    match throttle::allow_per_ip(&app.eph, "register", &meta.ip, limits.register_per_ip_hour).await
    {
        Ok(true) => {}
        Ok(false) => {
            let ev = Event::new(Kind::Registration, Outcome::Failure)
                .reason(Reason::RateLimited)
                .method("password")
                .from(&meta);
            app.audit.enqueue(ev).await;
            let msg = i18n::text(lang, "too_many_requests").to_string();
            return render_form(
                &app,
                &session,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                &params,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let (ttl, now) = (limits.pending_account_ttl, app.clock.now());
    // An expired registration holds nothing: the one with this login name makes way.
    if let Err(e) = account::delete_expired_pending(&app.db, ttl, now, Some(&reg.username)).await {
        return unavailable(&app, lang, &e);
    }
    match account::username_taken(&app.db, &reg.username, ttl, now).await {
        Ok(false) => {}
        Ok(true) => return login_taken(&app, &session, &meta, lang, &params, &reg.username).await,
        Err(e) => return unavailable(&app, lang, &e),
    }
    // Contacts confirmed for someone else: the registration goes on as usual, but their owner
    // is told instead of the contact being sent a code or link (see `Recipient::Owner`).
    let phone_owner = match account::find_by_login(&app.db, reg.phone.as_str()).await {
        Ok(a) => a.map(|a| a.id),
        Err(e) => return unavailable(&app, lang, &e),
    };
    let email_owner = match account::find_by_email(&app.db, reg.email.as_str()).await {
        Ok(a) => a.map(|a| a.id),
        Err(e) => return unavailable(&app, lang, &e),
    };
    let hash = match app.hasher.hash(&reg.password).await {
        Ok(h) => h,
        Err(_) => {
            let msg = i18n::text(lang, "busy").to_string();
            return render_form(
                &app,
                &session,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                &params,
                Some(msg),
            )
            .await;
        }
    };
    let created = account::create(
        &app.db,
        NewAccount {
            username: reg.username.clone(),
            password_hash: Some(hash),
            phone: Some(reg.phone.as_str().to_string()),
            email: Some(reg.email.as_str().to_string()),
            given_name: Some(reg.given_name),
            family_name: Some(reg.family_name),
            middle_name: reg.middle_name,
            roles: vec!["applicant".into()],
            org: None,
            verified: false,
        },
    )
    .await;
    let acc = match created {
        Ok(a) => a,
        // Only the login name is unique among unconfirmed accounts: someone took it meanwhile.
        Err(AccountError::Duplicate) => {
            return login_taken(&app, &session, &meta, lang, &params, &reg.username).await;
        }
        Err(AccountError::Invalid(_)) => {
            let msg = i18n::text(lang, "username_invalid").to_string();
            return render_form(
                &app,
                &session,
                lang,
                StatusCode::BAD_REQUEST,
                &params,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    };
    if let Err(e) = app
        .audit
        .write(
            Event::new(Kind::Registration, Outcome::Success)
                .subject(Some(&acc.id))
                .method("password")
                .from(&meta)
                .details(json!({"personal_data_consent": true})),
        )
        .await
    {
        return unavailable(&app, lang, &e);
    }
    if let Err(e) = session.insert(REGISTERING, &acc.id).await {
        return unavailable(&app, lang, &e);
    }
    // A failed send is shown on the confirmation page, where the person can resend.
    let sms = contact_proof::send_code(
        &app.proofs(),
        &meta,
        lang,
        CodeFor::Registration,
        &acc.id,
        &reg.phone,
        Recipient::of(phone_owner.as_deref()),
    )
    .await;
    let mail = contact_proof::send_link(
        &app.proofs(),
        &meta,
        lang,
        LinkFor::Registration,
        &acc.id,
        reg.email.as_str(),
        Recipient::of(email_owner.as_deref()),
    )
    .await;
    let note = match (sms, mail) {
        (Err(e), _) | (_, Err(e)) => format!("&note={}", e.message_key()),
        _ => String::new(),
    };
    Redirect::to(&format!(
        "/register/confirm?ui_locales={}{note}",
        lang.code()
    ))
    .into_response()
}

/// The login name is held by another account: say so (registration cannot help telling, as
/// login names are unique), naming it, and nothing about the contacts.
async fn login_taken(
    app: &App,
    session: &Session,
    meta: &RequestMeta,
    lang: Lang,
    params: &Params,
    username: &str,
) -> Response {
    app.audit
        .enqueue(
            Event::new(Kind::Registration, Outcome::Failure)
                .reason(Reason::Taken)
                .method("password")
                .from(meta),
        )
        .await;
    let msg = i18n::text(lang, "login_taken").replace("{login}", username);
    let problem = FieldError::new("username", msg);
    render_form(
        app,
        session,
        lang,
        StatusCode::CONFLICT,
        params,
        Some(problem),
    )
    .await
}

/// The other account, if any, that has confirmed `acc`'s phone number.
async fn phone_owner(
    app: &App,
    acc: &Account,
    phone: &PhoneNumber,
) -> Result<Option<String>, StoreError> {
    Ok(account::find_by_login(&app.db, phone.as_str())
        .await?
        .map(|a| a.id)
        .filter(|id| *id != acc.id))
}

/// The other account, if any, that has confirmed `email`.
async fn email_owner(app: &App, acc: &Account, email: &str) -> Result<Option<String>, StoreError> {
    Ok(account::find_by_email(&app.db, email)
        .await?
        .map(|a| a.id)
        .filter(|id| *id != acc.id))
}

/// Sends `acc` a new confirmation link (or, if another account has confirmed the address
/// meanwhile, tells that account's owner instead).
pub async fn send_confirmation_link(
    app: &App,
    meta: &RequestMeta,
    lang: Lang,
    acc: &Account,
    email: &str,
) -> Result<(), contact_proof::SendError> {
    let owner = email_owner(app, acc, email).await.map_err(|e| {
        tracing::error!(error = %e, "account lookup failed");
        contact_proof::SendError::Store
    })?;
    contact_proof::send_link(
        &app.proofs(),
        meta,
        lang,
        LinkFor::Registration,
        &acc.id,
        email,
        Recipient::of(owner.as_deref()),
    )
    .await
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
async fn registering(app: &App, session: &Session) -> Result<Option<Account>, Response> {
    let id: Option<String> = session.get(REGISTERING).await.ok().flatten();
    let Some(id) = id else { return Ok(None) };
    let ttl = app.settings.limits.pending_account_ttl;
    account::find_by_id(&app.db, &id)
        .await
        .map(|a| a.filter(|a| !a.is_expired_pending(ttl, app.clock.now())))
        .map_err(|e| unavailable(app, Lang::Ru, &e))
}

async fn render_confirm(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    acc: &Account,
    message: Option<&str>,
    error: Option<&str>,
) -> Response {
    // A wrong, used-up or expired code is said at the code field too.
    let at_code = error.is_some_and(|k| matches!(k, "otp_wrong" | "otp_too_many" | "otp_expired"));
    let error = error.map(|k| i18n::text(lang, k).to_string());
    render_confirm_text(app, session, lang, status, acc, message, error, at_code).await
}

/// As [`render_confirm`], with the error already in words (a wrong code's attempts left) and
/// whether it is about the code field.
#[allow(clippy::too_many_arguments)]
async fn render_confirm_text(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    acc: &Account,
    message: Option<&str>,
    error: Option<String>,
    at_code: bool,
) -> Response {
    let tx: Option<String> = session.get(REG_TX).await.ok().flatten();
    let (phone, email) = (acc.masked_phone(), acc.masked_email());
    // A contact's confirmation is said once, in its own section.
    let message = message.filter(|k| !matches!(*k, "phone_confirmed" | "email_confirmed"));
    let code_problem = error
        .as_ref()
        .filter(|_| at_code)
        .map(|m| FieldError::new("code", m.clone()));
    let problem = FieldError::context(error.as_deref(), code_problem.as_ref());
    crate::web::form::render_with_csrf(
        app,
        session,
        "confirm.html",
        lang,
        status,
        crate::web::form::merge(
            problem,
            json!({
                "title": i18n::text(lang, "confirm_title"),
                "phone": phone,
                "email": email,
                "phone_verified": acc.phone_verified,
                "email_verified": acc.email_verified,
                "active": acc.is_active(),
                "continue": tx.map(|t| format!("/login?tx={t}&ui_locales={}", lang.code())),
                "message": message.map(|k| i18n::text(lang, k)),
                "here": "/register/confirm",
            }),
        ),
    )
    .await
}

pub async fn confirm_page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let acc = match registering(&app, &session).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
        }
        Err(r) => return r,
    };
    // Only known message keys are echoed from the query.
    let note = params.get("note").filter(|k| {
        matches!(
            *k,
            "sms_limit" | "send_failed" | "otp_too_soon" | "otp_daily_cap" | "server_error"
        )
    });
    render_confirm(&app, &session, lang, StatusCode::OK, &acc, None, note).await
}

/// POST /register/confirm: the SMS code, or a request to resend the code or the email.
pub async fn confirm_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, &headers);
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "bad_request", None);
    };
    let lang = lang_of(&params, &headers);
    let acc = match registering(&app, &session).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "tx_expired", None);
        }
        Err(r) => return r,
    };
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            return render_confirm(
                &app,
                &session,
                lang,
                StatusCode::FORBIDDEN,
                &acc,
                None,
                Some("csrf"),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let phone = acc
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok());
    match field(&params, "action") {
        "resend_sms" => {
            let Some(phone) = phone.filter(|_| !acc.phone_verified) else {
                return render_confirm(&app, &session, lang, StatusCode::OK, &acc, None, None)
                    .await;
            };
            let owner = match phone_owner(&app, &acc, &phone).await {
                Ok(o) => o,
                Err(e) => return unavailable(&app, lang, &e),
            };
            let to = Recipient::of(owner.as_deref());
            let code_for = CodeFor::Registration;
            return match contact_proof::send_code(
                &app.proofs(),
                &meta,
                lang,
                code_for,
                &acc.id,
                &phone,
                to,
            )
            .await
            {
                Ok(()) => {
                    render_confirm(
                        &app,
                        &session,
                        lang,
                        StatusCode::OK,
                        &acc,
                        Some("resent"),
                        None,
                    )
                    .await
                }
                Err(e) => {
                    render_confirm(
                        &app,
                        &session,
                        lang,
                        StatusCode::TOO_MANY_REQUESTS,
                        &acc,
                        None,
                        Some(e.message_key()),
                    )
                    .await
                }
            };
        }
        "resend_email" => {
            let Some(email) = acc.email.clone().filter(|_| !acc.email_verified) else {
                return render_confirm(&app, &session, lang, StatusCode::OK, &acc, None, None)
                    .await;
            };
            return match send_confirmation_link(&app, &meta, lang, &acc, &email).await {
                Ok(()) => {
                    render_confirm(
                        &app,
                        &session,
                        lang,
                        StatusCode::OK,
                        &acc,
                        Some("resent"),
                        None,
                    )
                    .await
                }
                Err(e) => {
                    let (status, key) = crate::web::form::email_not_sent(&e);
                    render_confirm(&app, &session, lang, status, &acc, None, Some(key)).await
                }
            };
        }
        _ => {}
    }
    let code = field(&params, "code");
    let outcome = otp::verify(&app.eph, Purpose::Phone, &acc.id, code).await;
    let ev = Event::of(Kind::ConfirmPhone, outcome.is_ok())
        .subject(Some(&acc.id))
        .from(&meta);
    let target = match outcome {
        Ok(t) => t,
        Err(e) => {
            app.audit.enqueue(ev.reason(&e)).await;
            let at_code = matches!(
                e,
                otp::OtpError::Wrong { .. }
                    | otp::OtpError::TooManyAttempts
                    | otp::OtpError::Expired
            );
            return render_confirm_text(
                &app,
                &session,
                lang,
                StatusCode::BAD_REQUEST,
                &acc,
                None,
                Some(e.message(lang)),
                at_code,
            )
            .await;
        }
    };
    // The code proves the number it was sent to; it must still be the account's number.
    let confirmed = account::confirm_phone(&app.db, &acc.id, &target).await;
    if let Err(AccountError::Duplicate) = confirmed {
        // Confirmed for another account meanwhile: the person holds the phone, so may know.
        app.audit
            .enqueue(ev.reason(Reason::PhoneConfirmedElsewhere))
            .await;
        return render_confirm(
            &app,
            &session,
            lang,
            StatusCode::CONFLICT,
            &acc,
            None,
            Some("phone_confirmed_elsewhere"),
        )
        .await;
    }
    let Ok(Confirmed::Done { activated }) = confirmed else {
        app.audit.enqueue(ev.reason(Reason::PhoneChanged)).await;
        return render_confirm(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            &acc,
            None,
            Some("otp_expired"),
        )
        .await;
    };
    if let Err(e) = app.audit.write(ev).await {
        return unavailable(&app, lang, &e);
    }
    if activated {
        audit_activation(&app, &acc.id, &meta).await;
    }
    let acc = match account::find_by_id(&app.db, &acc.id).await {
        Ok(Some(a)) => a,
        _ => {
            return app
                .pages
                .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
        }
    };
    render_confirm(
        &app,
        &session,
        lang,
        StatusCode::OK,
        &acc,
        Some("phone_confirmed"),
        None,
    )
    .await
}

/// The confirmation that completed a registration also activated the account.
async fn audit_activation(app: &App, account_id: &str, meta: &RequestMeta) {
    app.audit
        .enqueue(
            Event::new(Kind::AccountActivated, Outcome::Success)
                .subject(Some(account_id))
                .from(meta),
        )
        .await;
}

/// GET /register/email?token=…: the link from the confirmation email.
pub async fn confirm_email(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let link = match contact_proof::take_link(
        &app.proofs(),
        LinkPurpose::Confirm,
        field(&params, "token"),
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return unavailable(&app, lang, &e),
    };
    let ev = Event::new(Kind::ConfirmEmail, Outcome::Failure).from(&meta);
    if link.is_none()
        && let Some(n) = crate::web::form::remembered(&session).await
    {
        // This browser used the link just now: the page again (another language).
        return app.pages.notice(lang, StatusCode::OK, &n, None);
    }
    let Some(link) = link else {
        app.audit.enqueue(ev.reason(Reason::InvalidLink)).await;
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
    };
    // A registration that expired unconfirmed is gone, whatever its links say.
    let ttl = app.settings.limits.pending_account_ttl;
    match account::find_by_id(&app.db, &link.account_id).await {
        Ok(Some(a)) if !a.is_expired_pending(ttl, app.clock.now()) => {}
        Ok(_) => {
            app.audit
                .enqueue(ev.reason(Reason::RegistrationExpired))
                .await;
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    // The link proves the address it was sent to, for the account it was sent for.
    let activated = match account::confirm_email(&app.db, &link.account_id, &link.email).await {
        Ok(Confirmed::Done { activated }) => activated,
        Err(AccountError::Duplicate) => {
            app.audit
                .enqueue(
                    ev.subject(Some(&link.account_id))
                        .reason(Reason::EmailConfirmedElsewhere),
                )
                .await;
            return app.pages.error(
                lang,
                StatusCode::CONFLICT,
                "email_confirmed_elsewhere",
                None,
            );
        }
        Ok(Confirmed::NotCurrent) => {
            app.audit
                .enqueue(
                    ev.subject(Some(&link.account_id))
                        .reason(Reason::EmailChanged),
                )
                .await;
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
        }
        Err(e) => return unavailable(&app, lang, &e),
    };
    let mut ok = ev.subject(Some(&link.account_id));
    ok.outcome = Outcome::Success;
    if let Err(e) = app.audit.write(ok).await {
        return unavailable(&app, lang, &e);
    }
    if activated {
        audit_activation(&app, &link.account_id, &meta).await;
    }
    let acc = match account::find_by_id(&app.db, &link.account_id).await {
        Ok(Some(a)) => a,
        _ => {
            return app
                .pages
                .error(lang, StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
        }
    };
    // In the browser that is registering this account, show the whole picture.
    let mine: Option<String> = session.get(REGISTERING).await.ok().flatten();
    if mine.as_deref() == Some(acc.id.as_str()) {
        return render_confirm(
            &app,
            &session,
            lang,
            StatusCode::OK,
            &acc,
            Some("email_confirmed"),
            None,
        )
        .await;
    }
    let n = crate::web::pages::Notice::new(
        "confirm_title",
        if acc.is_active() {
            "account_active"
        } else {
            "email_confirmed"
        },
    )
    .link("/profile", "profile_link_open");
    let at =
        crate::web::pages::with_query("/register/email", "", &[("token", field(&params, "token"))]);
    crate::web::form::show_remembered(&app, &session, lang, StatusCode::OK, n, &at).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters() {
        assert!(valid_name("Иванов-Петров", true));
        assert!(valid_name("Ў'ясёва", true));
        assert!(valid_name("O’Neil", true));
        assert!(!valid_name("", true));
        assert!(valid_name("", false));
        assert!(!valid_name("<script>", true));
        assert!(!valid_name("Robert'); DROP TABLE accounts;--", true));
        assert!(!valid_name("---", true));
        assert!(!valid_name(&"я".repeat(101), true));
    }

    #[test]
    fn usernames_are_plain_and_not_phone_numbers() {
        assert!(valid_username("ivan.ivanov"));
        assert!(!valid_username("iv"));
        assert!(!valid_username("Иван"));
        assert!(!valid_username("375291234567"));
        assert!(!valid_username("a b"));
    }
}
