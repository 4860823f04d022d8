//! The token endpoint (RFC 6749 §3.2): authenticate the client, then hand over to its grant.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::client_auth;
use super::error::{OAuthError, json_no_store};
use super::grants;
use crate::audit::{Event, Kind, Outcome};
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::params::RequestParams;

pub async fn token(
    State(app): State<Arc<App>>,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    match handle(&app, &meta, &headers, params).await {
        Ok(body) => json_no_store(body),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &App,
    meta: &RequestMeta,
    headers: &HeaderMap,
    params: Result<crate::web::params::Params, crate::web::params::ParamError>,
) -> Result<grants::TokenResponse, OAuthError> {
    let params = params?;
    let authed = match client_auth::authenticate(app, headers, &params, "/token").await {
        Ok(a) => a,
        Err(e) => {
            app.audit
                .enqueue(
                    Event::new(Kind::ClientAuth, Outcome::Failure)
                        .reason(e.code)
                        .from(meta)
                        .details(serde_json::json!({
                            "endpoint": "token",
                            "description": e.description,
                        })),
                )
                .await;
            return Err(e);
        }
    };
    let grant_type = params.require("grant_type")?;
    let ctx = app.grant_ctx(&authed.client, &params, meta);
    grants::dispatch(&ctx, grant_type).await
}
