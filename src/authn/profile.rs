//! The person's own page: name, login, contacts and notification channels. Open to a browser
//! with an active SSO session. A new phone number is proven by an SMS code, a new email address
//! by a link sent to it; the old number or address is told of the change. The choices are
//! released to relying subsystems as claims (`notify_sms` under the `phone` scope).
//!
//! The profile asks the assurance the account asks of any sign-in (an employee's password
//! session does not open it), and a contact change needs proof of presence no older than
//! `VHOD_PROFILE_REAUTH_SECONDS`: the sign-in itself, or the password entered again.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_sessions::Session;

use super::contact_proof::{self, LinkFor, LinkPurpose, Recipient};
use super::login::LockNotices;
use super::otp::{self, Purpose};
use super::throttle::{Gate, LoginKey};
use super::{Acr, browser, session, throttle};
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::identity::account::{self, Account, AccountError};
use crate::identity::contact::{Email, PhoneNumber};
use crate::policy::{self, Denied};
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::form::{FieldError, field, lang_of, unavailable};
use crate::web::i18n::{self, Lang};
use crate::web::pages::Notice;
use crate::web::params::{Params, RequestParams};
use crate::web::sms::CodeFor;

/// The new number a code was sent to (masked, for display) while the change is pending.
const PHONE_PENDING: &str = "profile_phone_pending";
/// When the password was last entered again here, and for which SSO session (the browser's
/// cookie session outlives a change of person).
const REENTERED: &str = "profile_password_reentered";

#[derive(serde::Serialize, serde::Deserialize)]
struct Reentered {
    sid: String,
    at: i64,
}

/// The signed-in person's account, or the page to show instead.
async fn signed_in(app: &App, s: &Session, lang: Lang) -> Result<Account, Response> {
    let sid = browser::sid(s)
        .await
        .map_err(|e| unavailable(app, lang, &e))?;
    let sso = match sid {
        Some(sid) => session::find_active(&app.db, &sid)
            .await
            .map_err(|e| unavailable(app, lang, &e))?,
        None => None,
    };
    let acc = match &sso {
        Some(sso) => account::find_by_id(&app.db, &sso.account_id)
            .await
            .map_err(|e| unavailable(app, lang, &e))?,
        None => None,
    };
    let verdict = match (&acc, &sso) {
        (Some(a), Some(sso)) => policy::may_use_profile(a, &sso.facts),
        _ => Err(Denied::Inactive),
    };
    // A POST answered with these pages switches language on the profile page itself.
    match (acc, verdict) {
        (Some(a), Ok(())) => Ok(a),
        // Signed in, but not strongly enough for this account: say what it takes, and offer
        // the sign-in that gives it.
        (Some(_), Err(Denied::AcrTooLow(need))) => {
            let mut n = Notice::new("profile_title", "profile_needs_certificate").error();
            if let Some(url) = sign_in_url(app, lang, &[("acr_values", need)]) {
                n = n.link(url, "sign_in");
            }
            Err(app
                .pages
                .notice(lang, StatusCode::FORBIDDEN, &n, Some("/profile")))
        }
        _ => {
            let mut n = Notice::new("profile_title", "profile_sign_in").error();
            if let Some(url) = sign_in_url(app, lang, &[]) {
                n = n.link(url, "sign_in");
            }
            Err(app
                .pages
                .notice(lang, StatusCode::UNAUTHORIZED, &n, Some("/profile")))
        }
    }
}

/// The profile's own sign-in: an authorization request of the built-in profile client, which
/// comes back to /profile signed in (its code is never redeemed: the session is what counts).
/// Its `state` starts with the page's language, which the answer brings back.
/// `extra` adds request parameters: `acr_values` for the assurance an employee's account needs,
/// `prompt=login` for a fresh sign-in before a contact change.
fn sign_in_url(app: &App, lang: Lang, extra: &[(&str, &str)]) -> Option<String> {
    use crate::config::PROFILE_CLIENT;
    let client = app.clients.get(PROFILE_CLIENT)?;
    let redirect = client.redirect_uris.first()?.as_str().to_string();
    // PKCE is required of the public profile client; its code is never redeemed, so the
    // challenge is random (a verifier's digest has the same shape).
    let challenge = crate::secrets::b64url(&crate::secrets::random_bytes::<32>());
    let state = format!("{}.{}", lang.code(), crate::secrets::random_id());
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", PROFILE_CLIENT),
        ("redirect_uri", &redirect),
        ("scope", "openid"),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    Some(crate::web::pages::with_query("/authorize", "", &query))
}

struct View {
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
    /// The field the error is about.
    field: Option<&'static str>,
}

impl View {
    fn ok(message: Option<String>) -> View {
        View {
            status: StatusCode::OK,
            message,
            error: None,
            field: None,
        }
    }
    fn err(status: StatusCode, error: String) -> View {
        View {
            status,
            message: None,
            error: Some(error),
            field: None,
        }
    }
    /// An error about one field of the page's forms.
    fn at(mut self, field: &'static str) -> View {
        self.field = Some(field);
        self
    }
}

async fn render(app: &App, s: &Session, lang: Lang, acc: &Account, view: View) -> Response {
    let pending: Option<String> = s.get(PHONE_PENDING).await.ok().flatten();
    // The contact forms ask for the password when the last proof of presence is too old.
    let reauth = policy::password_reproves_presence(acc)
        && !matches!(recently_proven(app, s).await, Ok(true));
    let (phone, email) = (acc.masked_phone(), acc.masked_email());
    let field = view
        .field
        .zip(view.error.as_deref())
        .map(|(f, e)| FieldError::new(f, e));
    let problem = FieldError::context(view.error.as_deref(), field.as_ref());
    crate::web::form::render_with_csrf(
        app,
        s,
        "profile.html",
        lang,
        view.status,
        crate::web::form::merge(
            problem,
            json!({
                "title": i18n::text(lang, "profile_title"),
                "here": "/profile",
                "no_profile_link": true,
                "name": acc.full_name(),
                "username": acc.username,
                "phone": phone,
                "phone_verified": acc.phone_verified,
                "email": email,
                "email_verified": acc.email_verified,
                "notify_sms": acc.notify_sms,
                "phone_pending": pending,
                "reauth": reauth,
                "message": view.message,
            }),
        ),
    )
    .await
}

/// Common start of every POST: parameters, language, the signed-in account, the CSRF check.
async fn post_start(
    app: &App,
    s: &Session,
    headers: &HeaderMap,
    params: Result<Params, crate::web::params::ParamError>,
) -> Result<(Params, Lang, Account), Response> {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, headers);
        return Err(app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "bad_request", None));
    };
    let lang = lang_of(&params, headers);
    let acc = signed_in(app, s, lang).await?;
    match browser::csrf_ok(s, field(&params, "csrf")).await {
        Ok(true) => Ok((params, lang, acc)),
        Ok(false) => {
            let v = View::err(StatusCode::FORBIDDEN, i18n::text(lang, "csrf").to_string());
            Err(render(app, s, lang, &acc, v).await)
        }
        Err(e) => Err(unavailable(app, lang, &e)),
    }
}

/// Is the browser's last proof of presence recent enough for a contact change?
async fn recently_proven(app: &App, s: &Session) -> Result<bool, String> {
    let Some(sid) = browser::sid(s).await.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let Some(sso) = session::find_active(&app.db, &sid)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    let reentered: Option<Reentered> = s.get(REENTERED).await.map_err(|e| e.to_string())?;
    let reentered_at = reentered.filter(|r| r.sid == sid).map(|r| r.at);
    Ok(policy::recently_proven(
        sso.facts.auth_time,
        reentered_at,
        app.clock.now(),
        app.settings.profile_reauth_seconds,
    ))
}

/// Before a contact change: a recent sign-in, or the password entered again with the form
/// (checked like a login: the address's and the account's locks, failure counting and delays
/// apply). An account whose sign-in needs more than a password (an employee's) and an account
/// without one sign in afresh instead. `Err` is the page asking for it.
async fn require_presence(
    app: &Arc<App>,
    s: &Session,
    meta: &RequestMeta,
    lang: Lang,
    acc: &Account,
    params: &Params,
    password_field: &'static str,
) -> Result<(), Response> {
    match recently_proven(app, s).await {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(unavailable(app, lang, &e)),
    }
    let refuse = |status, key: &str| View::err(status, text(lang, key)).at(password_field);
    if !policy::password_reproves_presence(acc) {
        // A fresh sign-in at the assurance the account needs is the proof.
        let need = policy::account_acr(acc);
        let mut extra = vec![("prompt", "login")];
        if need > Acr::Low {
            extra.push(("acr_values", need.as_str()));
        }
        let mut n = Notice::new("profile_title", "profile_reauth_sign_in").error();
        if let Some(url) = sign_in_url(app, lang, &extra) {
            n = n.link(url, "sign_in");
        }
        return Err(app
            .pages
            .notice(lang, StatusCode::FORBIDDEN, &n, Some("/profile")));
    }
    let password = field(params, "password");
    if password.is_empty() {
        let v = refuse(StatusCode::FORBIDDEN, "profile_reauth_needed");
        return Err(render(app, s, lang, acc, v).await);
    }
    let ev = Event::new(Kind::ProfileReauth, Outcome::Failure)
        .subject(Some(&acc.id))
        .method("password")
        .from(meta);
    // Locked, by the address or the account: no password is checked at all.
    let ip_locked = throttle::login_gate(&app.eph, &meta.ip).await;
    let account_locked = throttle::account_locked(&app.eph, &acc.id).await;
    let locked = match (ip_locked, account_locked) {
        (Ok(Gate::IpLocked), _) => Some(Reason::IpLocked),
        (_, Ok(true)) => Some(Reason::AccountLocked),
        (Ok(Gate::Open), Ok(false)) => None,
        (Err(e), _) | (_, Err(e)) => return Err(unavailable(app, lang, &e)),
    };
    if let Some(reason) = locked {
        if let Err(e) = app.audit.write(ev.reason(reason)).await {
            return Err(unavailable(app, lang, &e));
        }
        let v = refuse(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
        return Err(render(app, s, lang, acc, v).await);
    }
    let verified = if password.len() > super::password::MAX_PASSWORD_LEN {
        false
    } else {
        match app
            .hasher
            .verify(acc.password_hash.as_deref(), password)
            .await
        {
            Ok(v) => v,
            Err(super::password::HashError::Busy) => {
                let v = View::err(StatusCode::SERVICE_UNAVAILABLE, text(lang, "busy"));
                return Err(render(app, s, lang, acc, v).await);
            }
            Err(e) => return Err(unavailable(app, lang, &format!("{e:?}"))),
        }
    };
    if !verified {
        if let Err(e) = app.audit.write(ev.reason(Reason::WrongPassword)).await {
            return Err(unavailable(app, lang, &e));
        }
        let limits = &app.settings.limits;
        match throttle::record_failure(&app.eph, limits, Some(&acc.id), &meta.ip).await {
            Ok(f) => {
                if f.locked_now {
                    app.locked(meta.clone(), acc.id.clone(), lang);
                }
                let base = std::time::Duration::from_millis(limits.login_delay_ms);
                tokio::time::sleep(f.delay(base)).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not count a failed password re-entry"),
        }
        let v = refuse(StatusCode::FORBIDDEN, "profile_reauth_failed");
        return Err(render(app, s, lang, acc, v).await);
    }
    if let Err(e) = throttle::record_success(&app.eph, &LoginKey::of(&acc.username), &acc.id).await
    {
        tracing::warn!(error = %e, "could not reset the failure counter");
    }
    let sid = browser::sid(s)
        .await
        .map_err(|e| unavailable(app, lang, &e))?
        .unwrap_or_default();
    let mark = Reentered {
        sid,
        at: app.clock.now(),
    };
    if let Err(e) = s.insert(REENTERED, mark).await {
        return Err(unavailable(app, lang, &e));
    }
    let mut ok = ev;
    ok.outcome = Outcome::Success;
    if let Err(e) = app.audit.write(ok).await {
        return Err(unavailable(app, lang, &e));
    }
    Ok(())
}

fn text(lang: Lang, key: &str) -> String {
    i18n::text(lang, key).to_string()
}

/// GET /profile
pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    // Back from the profile's own sign-in: the same page, in the language it was asked in,
    // without the code in its address.
    if let Some(state) = params.get("state") {
        let asked = state.split('.').next();
        let to = crate::web::pages::in_lang("/profile", Lang::negotiate(asked, &headers));
        return axum::response::Redirect::to(&to).into_response();
    }
    match signed_in(&app, &session, lang).await {
        Ok(acc) => render(&app, &session, lang, &acc, View::ok(None)).await,
        Err(r) => r,
    }
}

/// POST /profile/notifications: the SMS notifications checkbox.
pub async fn notifications(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let (params, lang, mut acc) = match post_start(&app, &session, &headers, params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let on = matches!(field(&params, "notify_sms"), "on" | "1" | "true" | "yes");
    if let Err(e) = account::set_notify_sms(&app.db, &acc.id, on).await {
        return unavailable(&app, lang, &e);
    }
    let ev = Event::new(Kind::ProfileNotifications, Outcome::Success)
        .subject(Some(&acc.id))
        .from(&meta)
        .details(json!({"notify_sms": on}));
    if let Err(e) = app.audit.write(ev).await {
        return unavailable(&app, lang, &e);
    }
    acc.notify_sms = on;
    render(
        &app,
        &session,
        lang,
        &acc,
        View::ok(Some(text(lang, "saved"))),
    )
    .await
}

/// POST /profile/phone: a code to the new number.
pub async fn phone(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let (params, lang, acc) = match post_start(&app, &session, &headers, params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) =
        require_presence(&app, &session, &meta, lang, &acc, &params, "phone_password").await
    {
        return r;
    }
    let new = match PhoneNumber::parse(field(&params, "phone")) {
        Ok(p) => p,
        Err(e) => {
            let v = View::err(StatusCode::BAD_REQUEST, text(lang, e.message_key())).at("phone");
            return render(&app, &session, lang, &acc, v).await;
        }
    };
    if acc.phone.as_deref() == Some(new.as_str()) {
        let v = View::err(StatusCode::BAD_REQUEST, text(lang, "phone_same")).at("phone");
        return render(&app, &session, lang, &acc, v).await;
    }
    // A number confirmed for another account: its owner is told, and this page answers as
    // for any number (see `Recipient::Owner`), so it cannot be used to find who is registered.
    let owner = match account::find_by_login(&app.db, new.as_str()).await {
        Ok(a) => a.map(|a| a.id).filter(|id| *id != acc.id),
        Err(e) => return unavailable(&app, lang, &e),
    };
    let to = Recipient::of(owner.as_deref());
    let code_for = CodeFor::PhoneChange;
    if let Err(e) =
        contact_proof::send_code(&app.proofs(), &meta, lang, code_for, &acc.id, &new, to).await
    {
        let v = View::err(StatusCode::TOO_MANY_REQUESTS, text(lang, e.message_key()));
        return render(&app, &session, lang, &acc, v).await;
    }
    if let Err(e) = session.insert(PHONE_PENDING, new.masked()).await {
        return unavailable(&app, lang, &e);
    }
    let msg = text(lang, "profile_code_sent").replace("{phone}", &new.masked());
    render(&app, &session, lang, &acc, View::ok(Some(msg))).await
}

/// POST /profile/phone/confirm: the code; the number it was sent to becomes the account's.
pub async fn phone_confirm(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let (params, lang, acc) = match post_start(&app, &session, &headers, params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ev = Event::new(Kind::ChangePhone, Outcome::Failure)
        .subject(Some(&acc.id))
        .from(&meta);
    let target = match otp::verify(&app.eph, Purpose::Phone, &acc.id, field(&params, "code")).await
    {
        Ok(t) => t,
        Err(e) => {
            app.audit.enqueue(ev.reason(&e)).await;
            let v = View::err(StatusCode::BAD_REQUEST, e.message(lang)).at("code");
            return render(&app, &session, lang, &acc, v).await;
        }
    };
    let _ = session.remove::<String>(PHONE_PENDING).await;
    match account::change_phone(&app.db, &acc.id, &target).await {
        Ok(true) => {}
        Ok(false) => return unavailable(&app, lang, &"the account disappeared"),
        Err(AccountError::Duplicate) => {
            app.audit.enqueue(ev.reason(Reason::Taken)).await;
            let v = View::err(StatusCode::CONFLICT, text(lang, "taken"));
            return render(&app, &session, lang, &acc, v).await;
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let new = PhoneNumber::parse(&target)
        .map(|p| p.masked())
        .unwrap_or_default();
    // The old number learns of the change: if it was not its owner, they can act.
    let mut told = false;
    if let Some(old) = acc.phone.as_deref().filter(|p| *p != target)
        && let Ok(old) = PhoneNumber::parse(old)
    {
        let body = i18n::text(lang, "phone_changed_text").replace("{phone}", &new);
        told = contact_proof::send_notice_sms(
            &app.proofs(),
            &meta,
            "phone_changed",
            &acc.id,
            &old,
            &body,
        )
        .await
        .is_ok();
    }
    let mut ok = ev.details(json!({
        "from": acc.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok()).map(|p| p.masked()),
        "to": new,
        "old_told": told,
    }));
    ok.outcome = Outcome::Success;
    if let Err(e) = app.audit.write(ok).await {
        return unavailable(&app, lang, &e);
    }
    let acc = match account::find_by_id(&app.db, &acc.id).await {
        Ok(Some(a)) => a,
        Ok(None) => return unavailable(&app, lang, &"the account disappeared"),
        Err(e) => return unavailable(&app, lang, &e),
    };
    render(
        &app,
        &session,
        lang,
        &acc,
        View::ok(Some(text(lang, "phone_changed"))),
    )
    .await
}

/// POST /profile/email: a confirmation link to the new address.
pub async fn email(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let (params, lang, acc) = match post_start(&app, &session, &headers, params).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) =
        require_presence(&app, &session, &meta, lang, &acc, &params, "email_password").await
    {
        return r;
    }
    let new = match Email::parse(field(&params, "email")) {
        Ok(e) => e,
        Err(e) => {
            let v = View::err(StatusCode::BAD_REQUEST, text(lang, e.message_key())).at("email");
            return render(&app, &session, lang, &acc, v).await;
        }
    };
    if acc.email.as_deref() == Some(new.as_str()) {
        let v = View::err(StatusCode::BAD_REQUEST, text(lang, "email_same")).at("email");
        return render(&app, &session, lang, &acc, v).await;
    }
    // As for a phone number: an address confirmed elsewhere answers like any other.
    let owner = match account::find_by_email(&app.db, new.as_str()).await {
        Ok(a) => a.map(|a| a.id).filter(|id| *id != acc.id),
        Err(e) => return unavailable(&app, lang, &e),
    };
    let to = Recipient::of(owner.as_deref());
    let what = LinkFor::EmailChange;
    let sent =
        contact_proof::send_link(&app.proofs(), &meta, lang, what, &acc.id, new.as_str(), to).await;
    if let Err(e) = sent {
        let (status, key) = crate::web::form::email_not_sent(&e);
        let v = View::err(status, text(lang, key)).at("email");
        return render(&app, &session, lang, &acc, v).await;
    }
    let msg = text(lang, "profile_link_sent")
        .replace("{email}", &new.masked())
        .replace("{old}", &acc.masked_email().unwrap_or_default());
    render(&app, &session, lang, &acc, View::ok(Some(msg))).await
}

/// GET /profile/email/confirm?token=…: the link from the email to the new address.
pub async fn email_confirm(
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
    let ev = Event::new(Kind::ChangeEmail, Outcome::Failure).from(&meta);
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
    let ev = ev.subject(Some(&link.account_id));
    let acc = match account::find_by_id(&app.db, &link.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            app.audit.enqueue(ev.reason(Reason::UnknownAccount)).await;
            return app
                .pages
                .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
        }
        Err(e) => return unavailable(&app, lang, &e),
    };
    // A registration link is not a change of address (and is refused here).
    if acc.email.as_deref() == Some(link.email.as_str()) {
        app.audit.enqueue(ev.reason(Reason::SameAddress)).await;
        return app
            .pages
            .error(lang, StatusCode::BAD_REQUEST, "email_link_invalid", None);
    }
    match account::change_email(&app.db, &acc.id, &link.email).await {
        Ok(true) => {}
        Ok(false) => return unavailable(&app, lang, &"the account disappeared"),
        Err(AccountError::Duplicate) => {
            app.audit.enqueue(ev.reason(Reason::Taken)).await;
            return app.pages.error(lang, StatusCode::CONFLICT, "taken", None);
        }
        Err(e) => return unavailable(&app, lang, &e),
    }
    let new = Email::parse(&link.email)
        .map(|e| e.masked())
        .unwrap_or_default();
    let mut told = false;
    if let Some(old) = acc.email.as_deref() {
        let body = i18n::text(lang, "email_changed_text").replace("{email}", &new);
        let texts = (i18n::text(lang, "email_changed_subject"), body.as_str());
        told = contact_proof::send_notice_email(
            &app.proofs(),
            &meta,
            "email_changed",
            &acc.id,
            old,
            texts,
        )
        .await
        .is_ok();
    }
    let mut ok = ev.details(json!({
        "from": acc.email.as_deref().and_then(|e| Email::parse(e).ok()).map(|e| e.masked()),
        "to": new,
        "old_told": told,
    }));
    ok.outcome = Outcome::Success;
    if let Err(e) = app.audit.write(ok).await {
        return unavailable(&app, lang, &e);
    }
    let n = Notice::new("profile_title", "email_changed").link("/profile", "profile_link");
    let at = crate::web::pages::with_query(
        "/profile/email/confirm",
        "",
        &[("token", field(&params, "token"))],
    );
    crate::web::form::show_remembered(&app, &session, lang, StatusCode::OK, n, &at).await
}
