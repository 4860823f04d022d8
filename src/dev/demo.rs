//! A demo relying party inside vhod (development mode only): the whole code flow with PKCE in a
//! browser, without setting up a client application. The code is redeemed through the same grant
//! handler the /token endpoint uses.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use super::DEMO_CLIENT;
use crate::oidc::authorize::checks::s256;
use crate::oidc::grants;
use crate::oidc::{bearer, id_token_hint};
use crate::secrets;
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::i18n::{self, Lang};
use crate::web::params::{Params, RequestParams};

#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

const PENDING: &str = "demo_pending";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/demo", get(home))
        .route("/demo/start", get(start))
        .route("/demo/callback", get(callback))
}

async fn home(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let params = params.unwrap_or_default();
    let lang = Lang::negotiate(params.get("ui_locales"), &headers);
    app.pages.render(
        "demo.html",
        lang,
        StatusCode::OK,
        json!({"title": i18n::text(lang, "demo_title")}),
    )
}

async fn start(State(app): State<Arc<App>>, session: Session) -> Response {
    let p = Pending {
        state: secrets::random_id(),
        nonce: secrets::random_id(),
        verifier: secrets::random_token(),
    };
    let url = crate::identity::redirect_uri::RedirectUri::with_params(
        &app.settings.endpoint("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT),
            ("redirect_uri", &app.settings.endpoint("/demo/callback")),
            ("scope", "openid profile email phone roles"),
            ("state", &p.state),
            ("nonce", &p.nonce),
            ("code_challenge", &s256(&p.verifier)),
            ("code_challenge_method", "S256"),
        ],
    );
    if session.insert(PENDING, &p).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Redirect::to(&url).into_response()
}

async fn callback(
    State(app): State<Arc<App>>,
    session: Session,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    let lang = Lang::negotiate(None, &headers);
    let fail = |detail: &str| {
        app.pages
            .error(lang, StatusCode::BAD_REQUEST, "bad_request", Some(detail))
    };
    let params = params.unwrap_or_default();
    let pending: Option<Pending> = session.remove(PENDING).await.ok().flatten();
    let Some(p) = pending else {
        return fail("no sign-in was started from /demo");
    };
    if params.get("state") != Some(p.state.as_str()) {
        return fail("state does not match");
    }
    if let Some(e) = params.get("error") {
        return fail(e);
    }
    let Some(code) = params.get("code") else {
        return fail("no code");
    };
    let Some(client) = app.clients.get(DEMO_CLIENT) else {
        return fail("demo client missing");
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &app.settings.endpoint("/demo/callback"))
        .append_pair("code_verifier", &p.verifier)
        .finish();
    let Ok(token_params) = Params::parse(form.as_bytes()) else {
        return fail("bad form");
    };
    let ctx = app.grant_ctx(&client, &token_params, &meta);
    let tokens = match grants::dispatch(&ctx, "authorization_code").await {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string()),
    };
    let id_token = tokens.id_token.unwrap_or_default();
    let Ok(id_claims) = id_token_hint::verify(&app.keys, &app.settings.issuer, &id_token) else {
        return fail("ID token does not verify");
    };
    if id_claims.nonce.as_deref() != Some(p.nonce.as_str()) {
        return fail("nonce does not match");
    }
    let access = match bearer::validate(&app, &tokens.access_token).await {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let logout = crate::identity::redirect_uri::RedirectUri::with_params(
        &app.settings.endpoint("/end_session"),
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", &app.settings.endpoint("/demo")),
        ],
    );
    app.pages.render(
        "demo.html",
        lang,
        StatusCode::OK,
        json!({
            "title": i18n::text(lang, "demo_title"),
            // The callback's code is spent: another language starts from the demo's home.
            "here": "/demo",
            "claims": serde_json::to_string_pretty(&id_claims).unwrap_or_default(),
            "access": serde_json::to_string_pretty(&access).unwrap_or_default(),
            "logout": logout,
            "no_langs": true,
        }),
    )
}
