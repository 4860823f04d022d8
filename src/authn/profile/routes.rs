//! The profile pages: /profile and its forms (notifications, a new phone number and its code,
//! a new email address and its link). They read the browser session (its SSO session, when the
//! password was entered again, the number a code is pending for) and draw the page; every
//! decision is the service's.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::{Access, ChangeError, LinkError, Presence, PresenceError, Reentered};
use crate::authn::{Acr, browser};
use crate::identity::account::Account;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::form::{self, FieldError, field, lang_of};
use crate::web::i18n::{self, Lang};
use crate::web::page_error::PageError;
use crate::web::pages::Notice;
use crate::web::params::{ParamError, Params, RequestParams};

/// The new number a code was sent to (masked, for display) while the change is pending.
const PHONE_PENDING: &str = "profile_phone_pending";
/// When the password was last entered again here ([`Reentered`]).
const REENTERED: &str = "profile_password_reentered";

fn text(lang: Lang, key: &str) -> String {
    i18n::text(lang, key).to_string()
}

/// Where a request stops short of what it asked: a page (the profile with the refusal, a
/// notice), or an error page.
pub enum Stop {
    Page(Response),
    Error(PageError),
}

impl From<PageError> for Stop {
    fn from(e: PageError) -> Stop {
        Stop::Error(e)
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Page(r) => r,
            Stop::Error(e) => e.into_response(),
        }
    }
}

/// The profile page's message and refusal.
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

/// A notice on the profile's address that offers the sign-in it needs.
fn sign_in_notice(
    app: &App,
    lang: Lang,
    status: StatusCode,
    key: &str,
    extra: &[(&str, &str)],
) -> Stop {
    let mut n = Notice::new("profile_title", key).error();
    if let Some(url) = sign_in_url(app, lang, extra) {
        n = n.link(url, "sign_in");
    }
    // A POST answered with it switches language on the profile page itself.
    Stop::Page(app.pages.notice(lang, status, &n, Some("/profile")))
}

/// The signed-in person's account, or the page to show instead.
async fn signed_in(app: &Arc<App>, s: &Session, lang: Lang) -> Result<Account, Stop> {
    let sid = browser::sid(s)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let access = app.profile().signed_in(sid.as_deref()).await;
    match access.map_err(|e| PageError::unavailable(lang, &e))? {
        Access::SignedIn(a) => Ok(*a),
        // Signed in, but not strongly enough for this account: say what it takes, and offer
        // the sign-in that gives it.
        Access::NeedsAcr(need) => {
            let (status, key) = (StatusCode::FORBIDDEN, "profile_needs_certificate");
            Err(sign_in_notice(
                app,
                lang,
                status,
                key,
                &[("acr_values", need)],
            ))
        }
        Access::NotSignedIn => {
            let (status, key) = (StatusCode::UNAUTHORIZED, "profile_sign_in");
            Err(sign_in_notice(app, lang, status, key, &[]))
        }
    }
}

/// Is the browser's last proof of presence recent enough for a contact change?
async fn recently_proven(app: &Arc<App>, s: &Session, presence: Presence) -> Result<bool, String> {
    let Some(sid) = browser::sid(s).await.map_err(|e| e.to_string())? else {
        return Ok(false);
    };
    let reentered: Option<Reentered> = s.get(REENTERED).await.map_err(|e| e.to_string())?;
    let proven = app
        .profile()
        .recently_proven(&sid, reentered, presence)
        .await;
    proven.map_err(|e| e.to_string())
}

async fn render(app: &Arc<App>, s: &Session, lang: Lang, acc: &Account, view: View) -> Response {
    let pending: Option<String> = s.get(PHONE_PENDING).await.ok().flatten();
    // The contact forms ask for the password when the last proof of presence is too old.
    let reproves = matches!(app.profile().password_reproves(acc).await, Ok(true));
    let reauth = reproves && !matches!(recently_proven(app, s, Presence::Any).await, Ok(true));
    let links_reauth = reproves
        && !matches!(
            recently_proven(app, s, Presence::OfTheAccount).await,
            Ok(true)
        );
    let upstreams = upstreams_view(app, acc, lang).await;
    let field = view
        .field
        .zip(view.error.as_deref())
        .map(|(f, e)| FieldError::new(f, e));
    let problem = FieldError::context(view.error.as_deref(), field.as_ref());
    let ctx = json!({
        "title": i18n::text(lang, "profile_title"),
        "here": "/profile",
        "no_profile_link": true,
        "name": acc.full_name(),
        "username": acc.username,
        "phone": acc.masked_phone(),
        "phone_verified": acc.phone_verified,
        "email": acc.masked_email(),
        "email_verified": acc.email_verified,
        "notify_sms": acc.notify_sms,
        "phone_pending": pending,
        "reauth": reauth,
        "links_reauth": links_reauth,
        "upstreams": upstreams,
        "message": view.message,
    });
    let ctx = form::merge(problem, ctx);
    form::render_with_csrf(app, s, "profile.html", lang, view.status, ctx).await
}

/// Common start of every POST: parameters, language, the signed-in account, the CSRF check.
async fn post_start(
    app: &Arc<App>,
    s: &Session,
    headers: &HeaderMap,
    params: Result<Params, ParamError>,
) -> Result<(Params, Lang, Account), Stop> {
    let Ok(params) = params else {
        let lang = Lang::negotiate(None, headers);
        return Err(PageError::bad_request(lang, "bad_request").into());
    };
    let lang = lang_of(&params, headers);
    let acc = signed_in(app, s, lang).await?;
    let csrf = browser::csrf_ok(s, field(&params, "csrf")).await;
    match csrf.map_err(|e| PageError::unavailable(lang, &e))? {
        true => Ok((params, lang, acc)),
        false => {
            let v = View::err(StatusCode::FORBIDDEN, text(lang, "csrf"));
            Err(Stop::Page(render(app, s, lang, &acc, v).await))
        }
    }
}

/// Before a contact change or a link: a recent proof of presence of the kind asked, or the
/// password entered again with the form (its errors shown at `password_field`), then kept with
/// the SSO session.
async fn require_presence(
    app: &Arc<App>,
    s: &Session,
    meta: &RequestMeta,
    lang: Lang,
    acc: &Account,
    params: &Params,
    (password_field, presence): (&'static str, Presence),
) -> Result<(), Stop> {
    match recently_proven(app, s, presence).await {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(PageError::unavailable(lang, &e).into()),
    }
    let profile = app.profile();
    let password = field(params, "password");
    let refused = match profile.reprove(meta, lang, acc, password).await {
        Ok(at) => {
            let sid = browser::sid(s).await;
            let sid = sid.map_err(|e| PageError::unavailable(lang, &e))?;
            let mark = Reentered {
                sid: sid.unwrap_or_default(),
                at,
            };
            if let Err(e) = s.insert(REENTERED, mark).await {
                return Err(PageError::unavailable(lang, &e).into());
            }
            match profile.reproved(meta, acc).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            }
        }
        Err(e) => e,
    };
    let refuse = |status, key: &str| View::err(status, text(lang, key)).at(password_field);
    let v = match refused {
        // A fresh sign-in at the assurance the account needs is the proof.
        PresenceError::SignInAgain { need } => {
            let mut extra = vec![("prompt", "login")];
            if need > Acr::Low {
                extra.push(("acr_values", need.as_str()));
            }
            let (status, key) = (StatusCode::FORBIDDEN, "profile_reauth_sign_in");
            return Err(sign_in_notice(app, lang, status, key, &extra));
        }
        PresenceError::PasswordNeeded => refuse(StatusCode::FORBIDDEN, "profile_reauth_needed"),
        PresenceError::Locked => refuse(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        PresenceError::WrongPassword => refuse(StatusCode::FORBIDDEN, "profile_reauth_failed"),
        PresenceError::Busy => View::err(StatusCode::SERVICE_UNAVAILABLE, text(lang, "busy")),
        PresenceError::Unavailable(e) => return Err(PageError::unavailable(lang, &e).into()),
    };
    Err(Stop::Page(render(app, s, lang, acc, v).await))
}

/// A refused choice or contact change: the profile again with the reason (at its field).
async fn change_refused(
    app: &Arc<App>,
    s: &Session,
    lang: Lang,
    acc: &Account,
    e: ChangeError,
) -> Result<Response, Stop> {
    let bad = StatusCode::BAD_REQUEST;
    let v = match e {
        ChangeError::InvalidPhone(key) => View::err(bad, text(lang, key)).at("phone"),
        ChangeError::SamePhone => View::err(bad, text(lang, "phone_same")).at("phone"),
        ChangeError::CodeNotSent(e) => {
            View::err(StatusCode::TOO_MANY_REQUESTS, text(lang, e.message_key()))
        }
        ChangeError::Code(e) => View::err(bad, e.message(lang)).at("code"),
        ChangeError::Taken => View::err(StatusCode::CONFLICT, text(lang, "taken")),
        ChangeError::InvalidEmail(key) => View::err(bad, text(lang, key)).at("email"),
        ChangeError::SameEmail => View::err(bad, text(lang, "email_same")).at("email"),
        ChangeError::LinkNotSent(e) => {
            let (status, key) = form::email_not_sent(&e);
            View::err(status, text(lang, key)).at("email")
        }
        ChangeError::Unavailable(e) => return Err(PageError::unavailable(lang, &e).into()),
    };
    Ok(render(app, s, lang, acc, v).await)
}

/// GET /profile
pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    // Back from the profile's own sign-in: the same page, in the language it was asked in,
    // without the code in its address.
    if let Some(state) = params.get("state") {
        let asked = state.split('.').next();
        let to = crate::web::pages::in_lang("/profile", Lang::negotiate(asked, &headers));
        return Ok(Redirect::to(&to).into_response());
    }
    let acc = signed_in(&app, &session, lang).await?;
    Ok(render(&app, &session, lang, &acc, View::ok(None)).await)
}

/// POST /profile/notifications: the SMS notifications checkbox.
pub async fn notifications(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let (params, lang, mut acc) = post_start(&app, &session, &headers, params).await?;
    let on = matches!(field(&params, "notify_sms"), "on" | "1" | "true" | "yes");
    if let Err(e) = app.profile().set_notifications(&meta, &mut acc, on).await {
        return change_refused(&app, &session, lang, &acc, e).await;
    }
    let v = View::ok(Some(text(lang, "saved")));
    Ok(render(&app, &session, lang, &acc, v).await)
}

/// POST /profile/phone: a code to the new number.
pub async fn phone(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let (params, lang, acc) = post_start(&app, &session, &headers, params).await?;
    let field_name = "phone_password";
    let asked = (field_name, Presence::Any);
    require_presence(&app, &session, &meta, lang, &acc, &params, asked).await?;
    let typed = field(&params, "phone");
    let new = match app
        .profile()
        .send_phone_code(&meta, lang, &acc, typed)
        .await
    {
        Ok(new) => new,
        Err(e) => return change_refused(&app, &session, lang, &acc, e).await,
    };
    if let Err(e) = session.insert(PHONE_PENDING, new.masked()).await {
        return Err(PageError::unavailable(lang, &e).into());
    }
    let msg = text(lang, "profile_code_sent").replace("{phone}", &new.masked());
    Ok(render(&app, &session, lang, &acc, View::ok(Some(msg))).await)
}

/// POST /profile/phone/confirm: the code; the number it was sent to becomes the account's.
pub async fn phone_confirm(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let (params, lang, acc) = post_start(&app, &session, &headers, params).await?;
    let code = field(&params, "code");
    let confirmed = app.profile().confirm_phone(&meta, lang, &acc, code).await;
    // A code that was accepted ends the pending change, whatever came of it.
    if !matches!(confirmed, Err(ChangeError::Code(_))) {
        let _ = session.remove::<String>(PHONE_PENDING).await;
    }
    match confirmed {
        Ok(now) => {
            let v = View::ok(Some(text(lang, "phone_changed")));
            Ok(render(&app, &session, lang, &now, v).await)
        }
        Err(e) => change_refused(&app, &session, lang, &acc, e).await,
    }
}

/// POST /profile/email: a confirmation link to the new address.
pub async fn email(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let (params, lang, acc) = post_start(&app, &session, &headers, params).await?;
    let field_name = "email_password";
    let asked = (field_name, Presence::Any);
    require_presence(&app, &session, &meta, lang, &acc, &params, asked).await?;
    let typed = field(&params, "email");
    let new = match app
        .profile()
        .send_email_link(&meta, lang, &acc, typed)
        .await
    {
        Ok(new) => new,
        Err(e) => return change_refused(&app, &session, lang, &acc, e).await,
    };
    let msg = text(lang, "profile_link_sent")
        .replace("{email}", &new.masked())
        .replace("{old}", &acc.masked_email().unwrap_or_default());
    Ok(render(&app, &session, lang, &acc, View::ok(Some(msg))).await)
}

/// GET /profile/email/confirm?token=…: the link from the email to the new address.
pub async fn email_confirm(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.unwrap_or_default();
    let lang = lang_of(&params, &headers);
    let token = field(&params, "token");
    let profile = app.profile();
    let link = profile.take_link(token).await;
    let link = link.map_err(|e| PageError::unavailable(lang, &e))?;
    if link.is_none()
        && let Some(n) = form::remembered(&session).await
    {
        // This browser used the link just now: the page again (another language).
        return Ok(app.pages.notice(lang, StatusCode::OK, &n, None));
    }
    match profile.confirm_email(&meta, lang, link).await {
        Ok(()) => {}
        Err(LinkError::Invalid) => return Err(PageError::bad_request(lang, "email_link_invalid")),
        Err(LinkError::Taken) => return Err(PageError::new(lang, StatusCode::CONFLICT, "taken")),
        Err(LinkError::Unavailable(e)) => return Err(PageError::unavailable(lang, &e)),
    }
    let n = Notice::new("profile_title", "email_changed").link("/profile", "profile_link");
    let at = crate::web::pages::with_query("/profile/email/confirm", "", &[("token", token)]);
    Ok(form::show_remembered(&app, &session, lang, StatusCode::OK, n, &at).await)
}

/// The upstreams on the profile: each configured one with the identities the account has
/// there (a link no longer configured is still listed, to be unlinked).
async fn upstreams_view(app: &App, acc: &Account, lang: Lang) -> Vec<serde_json::Value> {
    let links = crate::identity::upstream::links_of(&app.db, &acc.id)
        .await
        .unwrap_or_default();
    let since = |at: i64| {
        time::OffsetDateTime::from_unix_timestamp(at)
            .map(|t| t.date().to_string())
            .unwrap_or_default()
    };
    let row = |name: &str, label: &str, configured: bool| {
        let own: Vec<_> = (links.iter())
            .filter(|l| l.upstream == name)
            .map(|l| {
                let since =
                    text(lang, "upstream_linked_since").replace("{date}", &since(l.created_at));
                json!({"subject": l.subject, "since": since})
            })
            .collect();
        json!({"name": name, "label": label, "configured": configured, "links": own})
    };
    let mut out: Vec<_> = (app.upstreams.all())
        .map(|u| row(&u.name, u.display_name(lang), true))
        .collect();
    let mut gone: Vec<&str> = (links.iter())
        .map(|l| l.upstream.as_str())
        .filter(|n| app.upstreams.get(n).is_none())
        .collect();
    gone.dedup();
    out.extend(gone.into_iter().map(|n| row(n, n, false)));
    out
}

/// POST /profile/upstream/link: with a fresh proof of the account, off to the upstream to
/// prove the identity to link.
pub async fn upstream_link(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    let (params, lang, acc) = post_start(&app, &session, &headers, params).await?;
    let Some(connector) = app.upstreams.get(field(&params, "upstream")).cloned() else {
        let v = View::err(StatusCode::BAD_REQUEST, text(lang, "bad_request"));
        return Ok(render(&app, &session, lang, &acc, v).await);
    };
    let field_name = "link_password";
    let asked = (field_name, Presence::OfTheAccount);
    require_presence(&app, &session, &meta, lang, &acc, &params, asked).await?;
    let sid = browser::sid(&session).await;
    let sid = sid
        .map_err(|e| PageError::unavailable(lang, &e))?
        .unwrap_or_default();
    let purpose = crate::authn::upstream::Purpose::Link {
        account_id: acc.id.clone(),
    };
    // The upstream authenticates the person for this link, not from a session it had.
    let asked = crate::authn::upstream::routes::Asked {
        need: Acr::Low,
        acr_values: &[],
        fresh_within: Some(0),
    };
    let set_off =
        crate::authn::upstream::routes::set_off(&app, &session, &connector, purpose, asked, lang);
    match set_off.await {
        Ok((url, flow)) => {
            let offered = crate::authn::upstream::link::offer(&app.eph, &acc.id, &sid, &flow).await;
            offered.map_err(|e| PageError::unavailable(lang, &e))?;
            Ok(Redirect::to(&url).into_response())
        }
        Err(crate::authn::upstream::routes::SetOff::Store(e)) => {
            Err(PageError::unavailable(lang, &e).into())
        }
        Err(crate::authn::upstream::routes::SetOff::Failed(f)) => {
            let msg =
                text(lang, f.message_key()).replace("{name}", connector.config.display_name(lang));
            let v = View::err(StatusCode::BAD_GATEWAY, msg);
            Ok(render(&app, &session, lang, &acc, v).await)
        }
    }
}

/// POST /profile/upstream/unlink: an identity off the account, never its last way in.
pub async fn upstream_unlink(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, Stop> {
    use crate::identity::upstream::{UnlinkError, UpstreamKey, links_of};
    let (params, lang, acc) = post_start(&app, &session, &headers, params).await?;
    let field_name = "unlink_password";
    let asked = (field_name, Presence::Any);
    require_presence(&app, &session, &meta, lang, &acc, &params, asked).await?;
    let (name, subject) = (field(&params, "upstream"), field(&params, "subject"));
    let links = links_of(&app.db, &acc.id).await;
    let links = links.map_err(|e| PageError::unavailable(lang, &e))?;
    let link = links
        .iter()
        .find(|l| l.upstream == name && l.subject == subject);
    let unlinked = match link {
        Some(l) => {
            let key = UpstreamKey {
                upstream: &l.upstream,
                issuer: &l.issuer,
                subject: &l.subject,
            };
            app.profile().unlink_upstream(&meta, &acc, &key).await
        }
        None => Err(UnlinkError::NotLinked),
    };
    let label = app
        .upstreams
        .get(name)
        .map(|c| c.config.display_name(lang).to_string())
        .unwrap_or_else(|| name.to_string());
    let v = match unlinked {
        Ok(()) => View::ok(Some(
            text(lang, "upstream_unlinked").replace("{name}", &label),
        )),
        Err(UnlinkError::NotLinked) => {
            View::err(StatusCode::BAD_REQUEST, text(lang, "bad_request"))
        }
        Err(UnlinkError::LastWayIn) => {
            View::err(StatusCode::CONFLICT, text(lang, "upstream_unlink_last"))
        }
        Err(UnlinkError::Store(e)) => return Err(PageError::unavailable(lang, &e).into()),
    };
    Ok(render(&app, &session, lang, &acc, v).await)
}
