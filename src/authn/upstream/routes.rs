//! `GET /login/upstream/{name}` sets off for the upstream from the browser's login
//! transaction; `GET /login/upstream/{name}/callback` comes back and hands the answer to the
//! login runner. A refusal is a page in the person's language with the way on: try again, the
//! other methods, or back to the service (which then hears `access_denied`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::connector::Connector;
use super::{
    Answer, Callback, Failure, Flow, Purpose, Refused, claims, redirect_uri, save_flow, take_flow,
};
use crate::audit::{Event, Kind, Outcome, ReasonCode};
use crate::authn::login::{Attempt, LoginMethod, MethodFailure, Refusal};
use crate::authn::routes::{owned_login, resume_status, sign_in_need};
use crate::authn::{browser, transaction};
use crate::identity::upstream::Linked;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::Lang;
use crate::web::page_error::PageError;
use crate::web::pages::Notice;
use crate::web::params::RequestParams;

/// GET /login/upstream/{name}?tx=…
pub async fn start(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    meta: RequestMeta,
    Path(name): Path<String>,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let (_, tx, lang) = owned_login(&app, &session, &headers, params).await?;
    let connector =
        app.upstreams
            .get(&name)
            .ok_or(PageError::new(lang, StatusCode::NOT_FOUND, "not_found"))?;
    let need = sign_in_need(&app, &tx)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let refuse = |failure| Refused {
        upstream: name.clone(),
        failure,
    };
    let Some(acr_values) = claims::acr_values_for(&connector.config, need) else {
        let have = connector.config.max_acr();
        return refused(
            &app,
            &meta,
            lang,
            Some(&tx),
            refuse(Failure::AcrTooLow { have, need }),
        )
        .await;
    };
    let purpose = Purpose::Login {
        tx_id: tx.id.clone(),
    };
    let asked = Asked {
        need,
        acr_values: &acr_values,
        fresh_within: tx.request.fresh_within,
    };
    match set_off_asking(&app, &session, connector, purpose, asked, lang).await {
        Ok((url, _)) => Ok(Redirect::to(&url).into_response()),
        Err(SetOff::Failed(f)) => refused(&app, &meta, lang, Some(&tx), refuse(f)).await,
        Err(SetOff::Store(e)) => Err(PageError::unavailable(lang, &e)),
    }
}

/// Why the browser could not be sent to the upstream.
#[derive(Debug)]
pub enum SetOff {
    /// The upstream (its discovery) could not be reached.
    Failed(Failure),
    /// Our own storage failed.
    Store(String),
}

/// Sends the browser to the upstream for `purpose` from a page in `lang`: the flow is kept
/// under its `state`, which is bound to this browser. Where to send it, and the flow.
pub async fn set_off(
    app: &App,
    session: &Session,
    connector: &Connector,
    purpose: Purpose,
    asked: Asked<'_>,
    lang: Lang,
) -> Result<(String, Flow), SetOff> {
    set_off_asking(app, session, connector, purpose, asked, lang).await
}

/// What a flow asks of the upstream.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The assurance the sign-in needs…
    pub need: crate::authn::Acr,
    /// …in the upstream's own words.
    pub acr_values: &'a [String],
    /// How recent its authentication must be (0: made now).
    pub fresh_within: Option<i64>,
}

async fn set_off_asking(
    app: &App,
    session: &Session,
    connector: &Connector,
    purpose: Purpose,
    asked: Asked<'_>,
    lang: Lang,
) -> Result<(String, Flow), SetOff> {
    let name = &connector.config.name;
    let back = redirect_uri(&app.settings.issuer, name);
    let (url, secrets) = connector
        .begin(&back, asked.acr_values, asked.fresh_within)
        .await
        .map_err(SetOff::Failed)?;
    browser::begin_upstream_flow(session, &secrets.state)
        .await
        .map_err(|e| SetOff::Store(e.to_string()))?;
    let flow = Flow {
        upstream: name.clone(),
        purpose,
        secrets,
        need: asked.need,
        lang: Some(lang),
        fresh_within: asked.fresh_within,
        created_at: app.clock.now(),
    };
    save_flow(&app.eph, &flow, app.settings.login_ttl)
        .await
        .map_err(|e| SetOff::Store(e.to_string()))?;
    Ok((url, flow))
}

/// GET /login/upstream/{name}/callback?code=…&state=…[&iss=…] or ?error=…&state=…
pub async fn callback(
    State(app): State<Arc<App>>,
    session: Session,
    headers: HeaderMap,
    meta: RequestMeta,
    Path(name): Path<String>,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let lang = Lang::negotiate(None, &headers);
    let connector = (app.upstreams.get(&name).cloned()).ok_or(PageError::new(
        lang,
        StatusCode::NOT_FOUND,
        "not_found",
    ))?;
    let params = params.map_err(|_| PageError::bad_request(lang, "bad_request"))?;
    let state = params.get("state").unwrap_or_default();
    // The state is spent whatever else is wrong: a callback is answered once.
    let bound = browser::finish_upstream_flow(&session, state)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let flow = take_flow(&app.eph, state)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    let state_mismatch = || Refused {
        upstream: name.clone(),
        failure: Failure::StateMismatch,
    };
    let flow = match flow {
        Some(f) if bound && f.upstream == name => f,
        _ => return refused(&app, &meta, lang, None, state_mismatch()).await,
    };
    // The page the person set off from chose the language; the redirect back says none.
    let chosen = flow.lang;
    let lang = chosen.unwrap_or(lang);
    let answer = Answer {
        code: params.get("code").map(str::to_string),
        error: params.get("error").map(str::to_string),
        iss: params.get("iss").map(str::to_string),
    };
    let tx_id = match &flow.purpose {
        Purpose::Login { tx_id } => tx_id.clone(),
        Purpose::Link { account_id } => {
            let account_id = account_id.clone();
            return finish_link(&app, &session, &meta, lang, flow, account_id, answer).await;
        }
    };
    let tx = match browser::owns_transaction(&session, &tx_id).await {
        Ok(true) => transaction::load(&app.eph, &tx_id)
            .await
            .map_err(|e| PageError::unavailable(lang, &e))?,
        Ok(false) => None,
        Err(e) => return Err(PageError::unavailable(lang, &e)),
    };
    let tx = tx.ok_or(PageError::bad_request(lang, "tx_expired"))?;
    let lang =
        chosen.unwrap_or_else(|| Lang::negotiate(tx.request.ui_locales.as_deref(), &headers));
    let input = Callback { flow, answer };
    let at = Attempt {
        session: &session,
        meta: &meta,
        tx: &tx,
        csrf: "",
        lang,
    };
    let method = app.federated(&connector);
    match app.login_runner().attempt(at, &method, input).await {
        Ok(next) => Ok(Redirect::to(&next).into_response()),
        // Audited by the runner.
        Err(Refusal::Failed { failure, .. }) => Ok(page(&app, lang, Some(&tx), &failure)),
        Err(Refusal::IpLocked) => Err(PageError::new(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
        )),
        Err(Refusal::Resume(e)) => Err(PageError::new(lang, resume_status(e), e.key())),
        Err(Refusal::Csrf | Refusal::Locked { .. } | Refusal::Unavailable) => Err(PageError::new(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
        )),
    }
}

/// A refusal before the runner (no state, nothing reachable): audited here, then the page.
pub(super) async fn refused(
    app: &App,
    meta: &RequestMeta,
    lang: Lang,
    tx: Option<&transaction::LoginTransaction>,
    r: Refused,
) -> Result<Response, PageError> {
    let mut ev = refusal(Kind::Login, &r, meta);
    if let Some(tx) = tx {
        ev = ev.client(&tx.request.client_id);
    }
    app.audit
        .write(ev)
        .await
        .map_err(|e| PageError::unavailable(lang, &e))?;
    Ok(page(app, lang, tx, &r))
}

/// The page of a refused upstream login, with the ways on that are still open.
fn page(
    app: &App,
    lang: Lang,
    tx: Option<&transaction::LoginTransaction>,
    r: &Refused,
) -> Response {
    let label = app
        .upstreams
        .get(&r.upstream)
        .map(|c| c.config.display_name(lang).to_string())
        .unwrap_or_else(|| r.upstream.clone());
    let title = "login_title";
    let mut n = Notice::new(title, r.failure.message_key())
        .error()
        .arg("name", &label);
    if let Failure::MissingClaims(claims) = &r.failure {
        n = n.arg("claims", &claims.join(", "));
    }
    match tx {
        Some(tx) => {
            if !matches!(r.failure, Failure::Ambiguous(_) | Failure::OtherAccount) {
                n = n.link(
                    format!("/login/upstream/{}?tx={}", r.upstream, tx.id),
                    "upstream_retry",
                );
            }
            n = n
                .link(format!("/login?tx={}", tx.id), "upstream_other_methods")
                .link(format!("/login/cancel?tx={}", tx.id), "login_cancel");
        }
        None => n = n.link("/profile", "profile_link_open"),
    }
    let status = match r.failure {
        Failure::StateMismatch | Failure::LinkProofInvalid => StatusCode::BAD_REQUEST,
        Failure::NumberMismatch
        | Failure::Denied
        | Failure::AcrTooLow { .. }
        | Failure::Ambiguous(_)
        | Failure::OtherAccount
        | Failure::MissingClaims(_) => StatusCode::FORBIDDEN,
        // The upstream did not answer, or answered what does not hold.
        _ => StatusCode::BAD_GATEWAY,
    };
    // The language links must not open the callback again (its state is spent): they open
    // the login page, in the language chosen.
    let here = tx.map(|tx| format!("/login?tx={}", tx.id));
    app.pages.notice(lang, status, &n, here.as_deref())
}

/// The upstream's answer to an owner's link (set off from the profile): the proof, the same
/// checks as a login, the link; audited either way, and a page that leads back to the profile.
async fn finish_link(
    app: &Arc<App>,
    session: &Session,
    meta: &RequestMeta,
    lang: Lang,
    flow: Flow,
    account_id: String,
    answer: Answer,
) -> Result<Response, PageError> {
    let unavailable = |e: &dyn std::fmt::Display| PageError::unavailable(lang, e);
    let connector = app.upstreams.get(&flow.upstream).ok_or(PageError::new(
        lang,
        StatusCode::NOT_FOUND,
        "not_found",
    ))?;
    // The proof counts only in the SSO session that made it, while it is still this account's.
    let sid = browser::sid(session).await.map_err(|e| unavailable(&e))?;
    let active = match &sid {
        Some(sid) => crate::authn::session::find_active(&app.db, sid)
            .await
            .map_err(|e| unavailable(&e))?
            .filter(|s| s.account_id == account_id),
        None => None,
    };
    let sid = active.map(|s| s.sid);
    let proven = super::prove(
        connector,
        &app.settings.issuer,
        answer,
        &flow,
        app.clock.now(),
    );
    let event = |outcome| {
        Event::new(Kind::UpstreamLinked, outcome)
            .subject(Some(&account_id))
            .method(<super::Federated<'_> as LoginMethod>::NAME)
            .from(meta)
    };
    let up = &connector.config;
    let done = super::link::finish(
        &app.db,
        &app.eph,
        &account_id,
        sid.as_deref(),
        &flow,
        proven,
        up,
    )
    .await;
    let (linked, _) = match done {
        Ok(v) => v,
        Err(super::link::Refusal::Store(e)) => return Err(unavailable(&e)),
        Err(super::link::Refusal::Failed(failure)) => {
            let r = Refused {
                upstream: flow.upstream.clone(),
                failure,
            };
            let ev = refusal(Kind::UpstreamLinked, &r, meta).subject(Some(&account_id));
            app.audit.write(ev).await.map_err(|e| unavailable(&e))?;
            return Ok(page(app, lang, None, &r));
        }
    };
    let key = match linked {
        Linked::Now => {
            let details = serde_json::json!({
                "upstream": up.name, "issuer": up.link_issuer(), "by": "owner",
            });
            let ev = event(Outcome::Success).details(details);
            app.audit.write(ev).await.map_err(|e| unavailable(&e))?;
            tell_owner_later(app, meta, &account_id, up, lang);
            "upstream_linked_now"
        }
        Linked::Already => "upstream_linked_already",
    };
    let title = "profile_title";
    let n = Notice::new(title, key)
        .arg("name", up.display_name(lang))
        .link("/profile", "profile_link_open");
    Ok(app.pages.notice(lang, StatusCode::OK, &n, Some("/profile")))
}

/// POST /login/upstream/{name}/backchannel_logout (`logout_token` in the form): the upstream
/// ended a person's session there; the sessions its logins made here end too. Refusals are
/// audited.
pub async fn backchannel_logout(
    State(app): State<Arc<App>>,
    meta: RequestMeta,
    Path(name): Path<String>,
    RequestParams(params): RequestParams,
) -> LogoutAnswer {
    let Some(connector) = app.upstreams.get(&name) else {
        return LogoutAnswer::NoSuchUpstream;
    };
    let token = match &params {
        Ok(p) => p.get("logout_token").unwrap_or_default(),
        Err(_) => "",
    };
    if token.is_empty() || token.len() > 16 * 1024 {
        return LogoutAnswer::Invalid("logout_token is required");
    }
    match app.upstream_logout().logout(connector, token, &meta).await {
        Ok(_) => LogoutAnswer::Done,
        Err(super::backchannel::LogoutError::Refused(failure)) => {
            let r = Refused {
                upstream: name.clone(),
                failure,
            };
            match app.audit.write(refusal(Kind::Logout, &r, &meta)).await {
                Ok(_) => LogoutAnswer::Invalid(r.failure.code()),
                Err(e) => {
                    tracing::error!(error = %e, "audit failed");
                    LogoutAnswer::Unavailable
                }
            }
        }
        Err(super::backchannel::LogoutError::Store(e)) => {
            tracing::error!(error = %e, "upstream back-channel logout failed");
            LogoutAnswer::Unavailable
        }
    }
}

/// What a back-channel logout is answered (Back-Channel Logout 1.0 §2.8): 200, or a JSON
/// error; never cached.
pub enum LogoutAnswer {
    Done,
    NoSuchUpstream,
    /// The token was refused: why (a reason code, or what is missing).
    Invalid(&'static str),
    Unavailable,
}

impl IntoResponse for LogoutAnswer {
    fn into_response(self) -> Response {
        use axum::Json;
        use axum::http::header;
        let (status, error, description) = match self {
            LogoutAnswer::Done => {
                return (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response();
            }
            LogoutAnswer::NoSuchUpstream => {
                (StatusCode::NOT_FOUND, "not_found", "no such upstream")
            }
            // OAuth's error code, not a message of ours.
            LogoutAnswer::Invalid(why) => {
                let status = StatusCode::BAD_REQUEST;
                (status, "invalid_request", why)
            }
            LogoutAnswer::Unavailable => {
                let status = StatusCode::SERVICE_UNAVAILABLE;
                (status, "temporarily_unavailable", "try again")
            }
        };
        let body = serde_json::json!({"error": error, "error_description": description});
        (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
    }
}

/// The audit event of a refusal of `kind`: its reason, the method, where from, the details.
fn refusal(kind: Kind, r: &Refused, meta: &RequestMeta) -> Event {
    let ev = Event::new(kind, Outcome::Failure)
        .reason(r)
        .method(<super::Federated<'_> as LoginMethod>::NAME)
        .from(meta);
    match r.details() {
        Some(d) => ev.details(d),
        None => ev,
    }
}

/// The owner hears of a new link in the background (the page does not wait on a provider).
fn tell_owner_later(
    app: &Arc<App>,
    meta: &RequestMeta,
    account_id: &str,
    up: &crate::config::upstream::Upstream,
    lang: Lang,
) {
    let app = app.clone();
    let (meta, account_id) = (meta.clone(), account_id.to_string());
    let label = up.display_name(lang).to_string();
    tokio::spawn(async move {
        let proofs = app.proofs();
        super::link::tell_owner(&app.db, &proofs, &meta, &account_id, &label, lang).await;
    });
}
