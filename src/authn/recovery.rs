//! "Forgot password": a single-use code by SMS to the confirmed phone, or a single-use link by
//! email to the confirmed address (15 minutes), both stored only as hashes. The answer to a
//! request never tells whether the account exists. A reset ends every SSO session and revokes
//! every grant (refresh and access tokens) of the account, lifts a lockout, and tells the person
//! on their other channels.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tower_sessions::Session;

use super::contact_proof::{self, LinkFor, LinkPurpose, Recipient, SendError};
use super::otp::{self, Purpose};
use super::password::policy::PasswordPolicy;
use super::session::EndedSessions;
use super::{browser, throttle};
use crate::audit::{Event, Kind, Outcome, Reason, ReasonCode};
use crate::identity::account::{self, Account};
use crate::identity::contact::{Email, PhoneNumber};
use crate::secrets;
use crate::server::App;
use crate::store::StoreError;
use crate::web::RequestMeta;
use crate::web::form::{FieldError, Problem, field, lang_of, unavailable};
use crate::web::i18n::{self, Lang};
use crate::web::pages::Notice;
use crate::web::params::RequestParams;
use crate::web::sms::CodeFor;

/// The account this browser is recovering by SMS (a random id when none was found, so that the
/// next step looks the same either way).
const RECOVERING: &str = "recovering";
/// The login transaction to continue after the reset.
const RECOVERY_TX: &str = "recovery_tx";

fn bad_request(app: &App, headers: &HeaderMap) -> Response {
    let lang = Lang::negotiate(None, headers);
    app.pages
        .error(lang, StatusCode::BAD_REQUEST, "bad_request", None)
}

/// The personal strings a new password must not contain.
fn personal(acc: &Account) -> Vec<String> {
    let mut out = vec![acc.username.clone()];
    if let Some(p) = acc
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
    {
        let digits: String = p.as_str().chars().filter(char::is_ascii_digit).collect();
        let national = digits.get(3..).unwrap_or("").to_string();
        out.push(digits);
        out.push(national);
    }
    if let Some(e) = acc.email.as_deref().and_then(|e| Email::parse(e).ok()) {
        out.push(e.as_str().to_string());
        out.push(e.local_part().to_string());
    }
    out
}

/// The message of a refused new password, or None when it is acceptable.
fn check_password(
    app: &App,
    lang: Lang,
    acc: Option<&Account>,
    password: &str,
) -> Option<FieldError> {
    let policy = PasswordPolicy::new(app.settings.limits.password_min_length);
    let personal = acc.map(personal).unwrap_or_default();
    let refs: Vec<&str> = personal.iter().map(String::as_str).collect();
    policy.check(password, &refs).err().map(|v| {
        let msg =
            i18n::text(lang, v.message_key()).replace("{min}", &policy.min_chars().to_string());
        FieldError::new("password", msg)
    })
}

/// GET addresses that show the recovery pages again (their language links).
const AT_CODE: &str = "/forgot?step=code";
const AT_SENT: &str = "/forgot?step=sent";
const AT_DONE: &str = "/forgot?step=done";

async fn render_forgot(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    login: &str,
    channel: &str,
    error: Option<impl Into<Problem>>,
) -> Response {
    let problem = Problem::context(error.map(Into::into));
    crate::web::form::render_with_csrf(
        app,
        session,
        "forgot.html",
        lang,
        status,
        crate::web::form::merge(
            problem,
            json!({
                "title": i18n::text(lang, "forgot_title"),
                "here": "/forgot",
                "login": login.chars().take(254).collect::<String>(),
                "email_channel": channel == "email",
            }),
        ),
    )
    .await
}

/// The new-password form: after an SMS (`token` None) or from an emailed link.
async fn render_reset(
    app: &App,
    session: &Session,
    lang: Lang,
    status: StatusCode,
    token: Option<&str>,
    message: Option<&str>,
    error: Option<impl Into<Problem>>,
) -> Response {
    let min = app.settings.limits.password_min_length.to_string();
    let here = match token {
        Some(t) => crate::web::pages::with_query("/forgot/email", "", &[("token", t)]),
        None => AT_CODE.to_string(),
    };
    let problem = Problem::context(error.map(Into::into));
    crate::web::form::render_with_csrf(
        app,
        session,
        "reset.html",
        lang,
        status,
        crate::web::form::merge(
            problem,
            json!({
                "title": i18n::text(lang, "reset_title"),
                "here": here,
                "token": token,
                "action": if token.is_some() { "/forgot/email" } else { "/forgot/reset" },
                "message": message.map(|k| i18n::text(lang, k)),
                "password_hint": i18n::text(lang, "password_hint").replace("{min}", &min),
                "min": min,
            }),
        ),
    )
    .await
}

/// A wrong, used-up or expired code: said at the code field.
fn code_problem(lang: Lang, key: &str) -> FieldError {
    FieldError::new("code", i18n::text(lang, key))
}

/// GET /forgot: the form (optionally continuing a login transaction afterwards).
pub async fn form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    if let Some(tx) = params.get("tx")
        && matches!(browser::owns_transaction(&session, tx).await, Ok(true))
        && session.insert(RECOVERY_TX, tx).await.is_err()
    {
        return unavailable(&app, lang, &"browser session store");
    }
    // The pages that answered a POST, again (in another language).
    match params.get("step") {
        Some("code") if matches!(session.get::<String>(RECOVERING).await, Ok(Some(_))) => {
            let none = None::<String>;
            return render_reset(&app, &session, lang, StatusCode::OK, None, None, none).await;
        }
        Some(_) => {
            if let Some(n) = crate::web::form::remembered(&session).await {
                return app.pages.notice(lang, StatusCode::OK, &n, None);
            }
        }
        None => {}
    }
    render_forgot(
        &app,
        &session,
        lang,
        StatusCode::OK,
        "",
        "sms",
        None::<String>,
    )
    .await
}

/// The account a login, confirmed phone number (any writing) or confirmed email address (any
/// case) names: an unconfirmed contact names nobody.
async fn lookup(app: &App, login: &str) -> Result<Option<Account>, StoreError> {
    let found = if login.contains('@') {
        account::find_by_email(&app.db, login).await?
    } else {
        account::find_by_login(&app.db, login).await?
    };
    let ttl = app.settings.limits.pending_account_ttl;
    Ok(found.filter(|a| !a.is_expired_pending(ttl, app.clock.now())))
}

/// The recovery subject of a login that names no account: stable for the login, never an
/// account id.
fn unknown_subject(login: &str) -> String {
    format!(
        "unknown:{}",
        secrets::token_hash(&account::login_identifier(login))
    )
}

/// POST /forgot: sends a code or a link if the account exists; the answer is the same either way.
/// By SMS, the client address's SMS budget is charged first, whatever the lookup finds, and
/// only its refusal is shown; a code is then sent if there is a confirmed phone to send it to,
/// and otherwise a decoy code is kept for the next step, which so answers alike.
pub async fn submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let Ok(params) = params else {
        return bad_request(&app, &headers);
    };
    let lang = lang_of(&params, &headers);
    let login = field(&params, "login");
    let channel = if field(&params, "channel") == "email" {
        "email"
    } else {
        "sms"
    };
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = i18n::text(lang, "csrf").to_string();
            return render_forgot(
                &app,
                &session,
                lang,
                StatusCode::FORBIDDEN,
                login,
                channel,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    if login.is_empty() || login.len() > 254 {
        let msg = FieldError::new("login", i18n::text(lang, "forgot_login_empty"));
        return render_forgot(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            login,
            channel,
            Some(msg),
        )
        .await;
    }
    let acc = match lookup(&app, login).await {
        Ok(a) => a,
        Err(e) => return unavailable(&app, lang, &e),
    };
    let mut ev = Event::new(Kind::RecoveryRequest, Outcome::Failure)
        .subject(acc.as_ref().map(|a| a.id.clone()))
        .method(channel)
        .from(&meta);
    if channel == "sms" {
        match throttle::allow_sms_from(&app.eph, &app.settings.limits, &meta.ip).await {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => {
                if let Err(e) = app.audit.write(ev.reason(refused)).await {
                    return unavailable(&app, lang, &e);
                }
                let msg = i18n::text(lang, "sms_limit").to_string();
                return render_forgot(
                    &app,
                    &session,
                    lang,
                    StatusCode::TOO_MANY_REQUESTS,
                    login,
                    channel,
                    Some(msg),
                )
                .await;
            }
            Err(e) => return unavailable(&app, lang, &e),
        }
    }
    let sent: Result<(), SendError> = match (&acc, channel) {
        (None, _) => {
            ev = ev.reason(Reason::UnknownAccount);
            Ok(())
        }
        (Some(a), "sms") => match a
            .phone
            .as_deref()
            .filter(|_| a.phone_verified)
            .and_then(|p| PhoneNumber::parse(p).ok())
        {
            Some(phone) => {
                contact_proof::send_code_ip_charged(
                    &app.proofs(),
                    &meta,
                    lang,
                    CodeFor::Recovery,
                    &a.id,
                    &phone,
                )
                .await
            }
            None => {
                ev = ev.reason(Reason::NoVerifiedPhone);
                Ok(())
            }
        },
        (Some(a), _) => match a.email.as_deref().filter(|_| a.email_verified) {
            Some(email) => {
                contact_proof::send_link(
                    &app.proofs(),
                    &meta,
                    lang,
                    LinkFor::Recovery,
                    &a.id,
                    email,
                    Recipient::Contact,
                )
                .await
            }
            None => {
                ev = ev.reason(Reason::NoVerifiedEmail);
                Ok(())
            }
        },
    };
    let code_sent = ev.reason.is_none() && sent.is_ok();
    if ev.reason.is_none() {
        match &sent {
            Ok(()) => ev.outcome = Outcome::Success,
            Err(e) => ev = ev.reason(e),
        }
    }
    if let Err(e) = app.audit.write(ev).await {
        return unavailable(&app, lang, &e);
    }
    if channel == "email" {
        let n = Notice::new("forgot_title", "recovery_email_sent");
        return crate::web::form::show_remembered(&app, &session, lang, StatusCode::OK, n, AT_SENT)
            .await;
    }
    // A login that names nobody is recovered under a name of its own, so that asking again
    // meets the same resend wait and daily cap as an account does.
    let id = acc.map(|a| a.id).unwrap_or_else(|| unknown_subject(login));
    // Without a code on its way (no such account, no confirmed phone, a budget refused it),
    // the next step checks a decoy issued like a code. When the code itself was refused (sent
    // under a minute ago, the daily cap) the code already there stays, as a decoy would.
    if !code_sent && !matches!(sent, Err(SendError::Otp(_))) {
        let cap = app.settings.limits.otp_daily_cap;
        match otp::issue_decoy(&app.eph, Purpose::Recovery, &id, &id, cap).await {
            Ok(()) | Err(otp::OtpError::TooSoon | otp::OtpError::DailyCap) => {}
            Err(e) => return unavailable(&app, lang, &e),
        }
    }
    if let Err(e) = session.insert(RECOVERING, &id).await {
        return unavailable(&app, lang, &e);
    }
    render_reset(
        &app,
        &session,
        lang,
        StatusCode::OK,
        None,
        Some("recovery_sms_sent"),
        None::<String>,
    )
    .await
}

/// POST /forgot/reset: the SMS code and the new password.
pub async fn reset_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let Ok(params) = params else {
        return bad_request(&app, &headers);
    };
    let lang = lang_of(&params, &headers);
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = i18n::text(lang, "csrf").to_string();
            return render_reset(
                &app,
                &session,
                lang,
                StatusCode::FORBIDDEN,
                None,
                None,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let id: Option<String> = session.get(RECOVERING).await.ok().flatten();
    let Some(id) = id else {
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "recovery_expired", None);
    };
    let acc = match account::find_by_id(&app.db, &id).await {
        Ok(a) => a,
        Err(e) => return unavailable(&app, lang, &e),
    };
    // The password is taken as typed. Checked before the code, so a refusal does not use it
    // up; but only against what is the same for every login (length, the common list): a
    // refusal for the account's own data would tell that the login names one.
    let password = params.get("password").unwrap_or("").to_string();
    if let Some(msg) = check_password(&app, lang, None, &password) {
        let ev = Event::new(Kind::PasswordReset, Outcome::Failure)
            .subject(acc.as_ref().map(|a| a.id.clone()))
            .method("sms")
            .reason(Reason::WeakPassword)
            .from(&meta);
        app.audit.enqueue(ev).await;
        return render_reset(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(msg),
        )
        .await;
    }
    let outcome = otp::check(&app.eph, Purpose::Recovery, &id, field(&params, "code")).await;
    let subject = acc.as_ref().map(|a| a.id.clone());
    let fail = |reason: &dyn ReasonCode| {
        Event::new(Kind::PasswordReset, Outcome::Failure)
            .subject(subject.clone())
            .method("sms")
            .reason(reason)
            .from(&meta)
    };
    let target = match outcome {
        Ok(t) => t,
        Err(e) => {
            app.audit.enqueue(fail(&e)).await;
            let msg = FieldError::new("code", e.message(lang));
            return render_reset(
                &app,
                &session,
                lang,
                StatusCode::BAD_REQUEST,
                None,
                None,
                Some(msg),
            )
            .await;
        }
    };
    // The code proves the number it was sent to; it must still be the account's number.
    let Some(acc) = acc.filter(|a| a.phone.as_deref() == Some(target.as_str())) else {
        app.audit.enqueue(fail(&Reason::PhoneChanged)).await;
        let msg = code_problem(lang, "otp_expired");
        return render_reset(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(msg),
        )
        .await;
    };
    // The code is proven: now the account's own data, the code staying valid for a retry.
    if let Some(msg) = check_password(&app, lang, Some(&acc), &password) {
        app.audit.enqueue(fail(&Reason::WeakPassword)).await;
        return render_reset(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(msg),
        )
        .await;
    }
    let hash = match new_hash(&app, &session, &meta, lang, &acc, &password, "sms", None).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    if let Err(e) = otp::consume(&app.eph, Purpose::Recovery, &id).await {
        app.audit.enqueue(fail(&e)).await;
        let msg = FieldError::new("code", e.message(lang));
        return render_reset(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(msg),
        )
        .await;
    }
    let done = complete(&app, &session, &meta, lang, &acc, &hash, "sms").await;
    let _ = session.remove::<String>(RECOVERING).await;
    done
}

/// GET /forgot/email?token=…: the new-password form; the token is only read here.
pub async fn email_form(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let token = field(&params, "token");
    match contact_proof::peek_link(&app.proofs(), LinkPurpose::Recovery, token).await {
        Ok(Some(_)) => {
            render_reset(
                &app,
                &session,
                lang,
                StatusCode::OK,
                Some(token),
                None,
                None::<String>,
            )
            .await
        }
        Ok(None) => app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None),
        Err(e) => unavailable(&app, lang, &e),
    }
}

/// POST /forgot/email: the token from the link and the new password; the token is used up.
pub async fn email_submit(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let Ok(params) = params else {
        return bad_request(&app, &headers);
    };
    let lang = lang_of(&params, &headers);
    let token = field(&params, "token");
    match browser::csrf_ok(&session, field(&params, "csrf")).await {
        Ok(true) => {}
        Ok(false) => {
            let msg = i18n::text(lang, "csrf").to_string();
            return render_reset(
                &app,
                &session,
                lang,
                StatusCode::FORBIDDEN,
                Some(token),
                None,
                Some(msg),
            )
            .await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let invalid = |subject: Option<String>, reason: &dyn ReasonCode| {
        Event::new(Kind::PasswordReset, Outcome::Failure)
            .subject(subject)
            .method("email")
            .reason(reason)
            .from(&meta)
    };
    // Read first: a refused password leaves the link usable.
    let peeked = match contact_proof::peek_link(&app.proofs(), LinkPurpose::Recovery, token).await {
        Ok(l) => l,
        Err(e) => return unavailable(&app, lang, &e),
    };
    let Some(peeked) = peeked else {
        app.audit.enqueue(invalid(None, &Reason::InvalidLink)).await;
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
    };
    let acc = match account::find_by_id(&app.db, &peeked.account_id).await {
        Ok(a) => a,
        Err(e) => return unavailable(&app, lang, &e),
    };
    // The link proves the address it was sent to; it must still be the account's address.
    let Some(acc) = acc.filter(|a| a.email.as_deref() == Some(peeked.email.as_str())) else {
        let _ = contact_proof::take_link(&app.proofs(), LinkPurpose::Recovery, token).await;
        app.audit
            .enqueue(invalid(
                Some(peeked.account_id.clone()),
                &Reason::EmailChanged,
            ))
            .await;
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
    };
    let password = params.get("password").unwrap_or("").to_string();
    if let Some(msg) = check_password(&app, lang, Some(&acc), &password) {
        app.audit
            .enqueue(invalid(Some(acc.id.clone()), &Reason::WeakPassword))
            .await;
        return render_reset(
            &app,
            &session,
            lang,
            StatusCode::BAD_REQUEST,
            Some(token),
            None,
            Some(msg),
        )
        .await;
    }
    let via = "email";
    let hash = match new_hash(
        &app,
        &session,
        &meta,
        lang,
        &acc,
        &password,
        via,
        Some(token),
    )
    .await
    {
        Ok(h) => h,
        Err(r) => return r,
    };
    // Of two concurrent uses exactly one gets here with the link (what it stands for was
    // read above; a link never changes).
    match contact_proof::take_link(&app.proofs(), LinkPurpose::Recovery, token).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            app.audit
                .enqueue(invalid(Some(acc.id.clone()), &Reason::InvalidLink))
                .await;
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    complete(&app, &session, &meta, lang, &acc, &hash, "email").await
}

/// The new password's hash, before the code or link is used up: a reset refused here (too
/// many from this address, the hasher busy) leaves the proof usable for another try, and the
/// form keeps the link's `token`.
#[allow(clippy::too_many_arguments)]
async fn new_hash(
    app: &Arc<App>,
    session: &Session,
    meta: &RequestMeta,
    lang: Lang,
    acc: &Account,
    password: &str,
    via: &'static str,
    token: Option<&str>,
) -> Result<String, Response> {
    match throttle::allow_per_ip(
        &app.eph,
        "reset",
        &meta.ip,
        app.settings.limits.reset_per_ip_hour,
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            let ev = Event::new(Kind::PasswordReset, Outcome::Failure)
                .subject(Some(&acc.id))
                .method(via)
                .reason(Reason::RateLimited)
                .from(meta);
            app.audit.enqueue(ev).await;
            let msg = i18n::text(lang, "too_many_requests").to_string();
            let status = StatusCode::TOO_MANY_REQUESTS;
            return Err(render_reset(app, session, lang, status, token, None, Some(msg)).await);
        }
        Err(e) => return Err(unavailable(app, lang, &e)),
    }
    match app.hasher.hash(password).await {
        Ok(h) => Ok(h),
        Err(_) => {
            let msg = i18n::text(lang, "busy").to_string();
            let status = StatusCode::SERVICE_UNAVAILABLE;
            Err(render_reset(app, session, lang, status, token, None, Some(msg)).await)
        }
    }
}

/// Sets the new password (`hash`) and ends everything signed in with the old one.
async fn complete(
    app: &Arc<App>,
    session: &Session,
    meta: &RequestMeta,
    lang: Lang,
    acc: &Account,
    hash: &str,
    via: &'static str,
) -> Response {
    // The new password, the end of every session and of every grant: together or not at all.
    let stored = crate::store::units::reset_password(&app.db, &acc.id, hash).await;
    let Ok(Some(reset)) = stored else {
        let ev = Event::new(Kind::PasswordReset, Outcome::Failure)
            .subject(Some(&acc.id))
            .method(via)
            .reason(Reason::StoreFailed)
            .from(meta);
        app.audit.enqueue(ev).await;
        return match stored {
            Err(e) => unavailable(app, lang, &e),
            Ok(_) => unavailable(app, lang, &"the account disappeared"),
        };
    };
    let (sids, revoked) = (reset.sessions_ended, reset.grants_revoked);
    let logins: Vec<&str> = std::iter::once(acc.username.as_str())
        .chain(acc.phone.as_deref())
        .collect();
    if let Err(e) = throttle::unlock(&app.eph, &acc.id, &logins).await {
        tracing::warn!(error = %e, "could not lift the lockout after a password reset");
    }
    // Tell the person on the channels not used for the reset: if it was not them, they learn.
    let text = i18n::text(lang, "password_changed_text");
    let mut notified = Vec::new();
    if via != "sms"
        && let Some(phone) = acc.phone.as_deref().filter(|_| acc.phone_verified)
        && let Ok(phone) = PhoneNumber::parse(phone)
        && contact_proof::send_notice_sms(
            &app.proofs(),
            meta,
            "password_changed",
            &acc.id,
            &phone,
            text,
        )
        .await
        .is_ok()
    {
        notified.push("sms");
    }
    if via != "email"
        && let Some(email) = acc.email.as_deref().filter(|_| acc.email_verified)
        && contact_proof::send_notice_email(
            &app.proofs(),
            meta,
            "password_changed",
            &acc.id,
            email,
            (i18n::text(lang, "password_changed_subject"), text),
        )
        .await
        .is_ok()
    {
        notified.push("email");
    }
    let ev = Event::new(Kind::PasswordReset, Outcome::Success)
        .subject(Some(&acc.id))
        .method(via)
        .from(meta)
        .details(json!({
            "sessions_ended": sids.len(),
            "grants_revoked": revoked,
            "notified": notified,
        }));
    if let Err(e) = app.audit.write(ev).await {
        return unavailable(app, lang, &e);
    }
    for sid in sids {
        app.ended(sid, acc.id.clone());
    }
    // This browser's own SSO session (if any) has just ended.
    if matches!(browser::sid(session).await, Ok(Some(_))) {
        let _ = browser::sign_out(session).await;
    }
    let tx: Option<String> = session.remove(RECOVERY_TX).await.ok().flatten();
    // The way on: the sign-in it interrupted, else the profile (which offers a sign-in).
    let mut n = Notice::new("reset_title", "password_reset_done");
    if let Some(t) = tx {
        n = n.link(format!("/login?tx={t}"), "continue");
    }
    let n = n.link("/profile", "profile_link_open");
    crate::web::form::show_remembered(app, session, lang, StatusCode::OK, n, AT_DONE).await
}
