//! RP-Initiated Logout 1.0. With an id_token_hint for this browser's session the logout happens
//! at once; otherwise the person confirms on a page (a bare link must not be able to log people
//! out). Then back to a registered post_logout_redirect_uri with `state`, or a "signed out" page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tower_sessions::Session;

use super::id_token_hint;
use crate::audit::{Event, Kind, Outcome};
use crate::authn::{browser, session};
use crate::identity::redirect_uri::RedirectUri;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::page_error::PageError;
use crate::web::params::{Params, RequestParams};

struct Validated {
    redirect: Option<String>,
    hint_sid: Option<String>,
    client_id: Option<String>,
}

fn validate(app: &App, p: &Params) -> Result<Validated, &'static str> {
    let hint = match p.get("id_token_hint") {
        Some(h) => Some(
            id_token_hint::verify(&app.keys, &app.settings.issuer, h).map_err(|_| "bad_request")?,
        ),
        None => None,
    };
    let client_id = match (p.get("client_id"), &hint) {
        (Some(c), Some(h)) if c != h.aud => return Err("bad_request"),
        (Some(c), _) => Some(c.to_string()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let redirect = match p.get("post_logout_redirect_uri") {
        Some(uri) => {
            let client = client_id
                .as_deref()
                .and_then(|c| app.clients.get(c))
                .ok_or("unknown_client")?;
            client.post_logout_redirect_uri(uri).ok_or("bad_redirect")?;
            let mut params: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = p.get("state") {
                params.push(("state", s));
            }
            Some(RedirectUri::with_params(uri, &params))
        }
        None => None,
    };
    if p.get("state").is_some_and(|s| s.len() > 2048) {
        return Err("bad_request");
    }
    Ok(Validated {
        redirect,
        hint_sid: hint.and_then(|h| h.sid),
        client_id,
    })
}

pub async fn end_session(
    State(app): State<Arc<App>>,
    browser_session: Session,
    meta: RequestMeta,
    method: Method,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Result<Response, PageError> {
    let params = params.map_err(|e| {
        PageError::bad_request(Lang::negotiate(None, &headers), "bad_request")
            .with_detail(e.to_string())
    })?;
    let lang = Lang::negotiate(params.get("ui_locales"), &headers);
    let v = validate(&app, &params).map_err(|key| PageError::bad_request(lang, key))?;
    let unavailable = |e: &dyn std::fmt::Display| PageError::unavailable(lang, e);
    let current = browser::sid(&browser_session)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut upstream = None;
    if let Some(sid) = current {
        // The confirmation is a POST of our own form: a link (GET) can never log anyone out.
        let confirmed = method == Method::POST
            && params.get("confirm") == Some("yes")
            && matches!(
                browser::csrf_ok(&browser_session, params.get("csrf").unwrap_or("")).await,
                Ok(true)
            );
        let hinted = v.hint_sid.as_deref() == Some(sid.as_str());
        if !confirmed && !hinted {
            return Ok(confirm_page(&app, &browser_session, lang, &params).await);
        }
        upstream = app
            .db
            .upstream_identities()
            .upstream_of_session(&sid)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Err(e) = end_sso_session(
            &app.authorization(),
            &sid,
            &meta,
            v.client_id.as_deref(),
            "logout",
        )
        .await
        {
            return Err(unavailable(&e));
        }
        browser::sign_out(&browser_session)
            .await
            .map_err(|e| unavailable(&e))?;
    }
    Ok(match v.redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => app.pages.render(
            "logout.html",
            lang,
            StatusCode::OK,
            json!({
                "title": i18n::text(lang, "logout_title"), "done": true,
                "upstream_logout": upstream_logout(&app, upstream.as_deref(), lang).await,
            }),
        ),
    })
}

/// Signing out here does not end the person's session at the upstream they signed in
/// through; where its metadata names an `end_session_endpoint`, the page offers it.
async fn upstream_logout(
    app: &App,
    upstream: Option<&str>,
    lang: Lang,
) -> Option<serde_json::Value> {
    let connector = app.upstreams.get(upstream?)?;
    let endpoint = connector.end_session_endpoint().await?;
    let href = RedirectUri::with_params(
        &endpoint,
        &[("client_id", connector.config.client_id.as_str())],
    );
    let label = connector.config.display_name(lang);
    let text = i18n::text(lang, "upstream_logout").replace("{name}", label);
    Some(json!({"href": href, "text": text}))
}

#[derive(Debug, thiserror::Error)]
pub enum EndError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("audit: {0}")]
    Audit(String),
}

/// What a logout does to a single sign-on session, whatever ended it (the person's logout, or
/// another sign-in in the same browser, `cause`): the session ends, its grants are revoked
/// (except offline_access), the end is audited before the answer, and its clients are told over
/// the back channel.
pub async fn end_sso_session(
    az: &super::authorize::Authorization<'_>,
    sid: &str,
    meta: &RequestMeta,
    client_id: Option<&str>,
    cause: &'static str,
) -> Result<(), EndError> {
    // Expired or not: its grants and its clients' sessions end with it.
    let sso = session::find_not_ended(az.db, sid).await?;
    let revoked = crate::store::units::logout(az.db, sid)
        .await?
        .grants_revoked;
    let account = sso.map(|s| s.account_id);
    let mut ev = Event::new(Kind::Logout, Outcome::Success)
        .subject(account.clone())
        .from(meta)
        .details(json!({"sid": sid, "grants_revoked": revoked, "cause": cause}));
    if let Some(c) = client_id {
        ev = ev.client(c);
    }
    az.audit
        .write(ev)
        .await
        .map_err(|e| EndError::Audit(e.to_string()))?;
    if let Some(sub) = account {
        az.ended.ended(sid.to_string(), sub);
    }
    Ok(())
}

async fn confirm_page(app: &App, s: &Session, lang: Lang, params: &Params) -> Response {
    let carried: Vec<(&String, &String)> = params
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "id_token_hint" | "client_id" | "post_logout_redirect_uri" | "state" | "ui_locales"
            )
        })
        .collect();
    crate::web::form::render_with_csrf(
        app,
        s,
        "logout.html",
        lang,
        StatusCode::OK,
        json!({
            "title": i18n::text(lang, "logout_title"),
            "done": false,
            "params": carried,
        }),
    )
    .await
}
