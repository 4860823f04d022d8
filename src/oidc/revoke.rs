//! Token revocation (RFC 7009). Revoking a refresh token revokes its grant (and so the access
//! tokens minted under it); revoking an access token revokes that token. Unknown tokens, or
//! tokens of another client, get the same 200 (§2.2), so the endpoint is no token oracle.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::bearer;
use super::client_auth;
use super::error::OAuthError;
use super::grants::records;
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::server::App;
use crate::web::RequestMeta;
use crate::web::params::{Params, RequestParams};

pub async fn revoke(
    State(app): State<Arc<App>>,
    meta: RequestMeta,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    match handle(&app, &meta, &headers, params).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &App,
    meta: &RequestMeta,
    headers: &HeaderMap,
    params: Result<Params, crate::web::params::ParamError>,
) -> Result<(), OAuthError> {
    let params = params?;
    let authed = client_auth::authenticate(app, headers, &params, "/revoke").await?;
    let token = params.require("token")?;
    let client_id = authed.client.id.as_str();
    if token.bytes().filter(|b| *b == b'.').count() == 2 {
        if let Ok(claims) = bearer::validate(app, token).await
            && claims.client_id == client_id
        {
            app.db
                .grants()
                .revoke_access_token(&claims.jti, claims.exp)
                .await?;
            app.audit
                .write(
                    Event::new(Kind::TokenRevoked, Outcome::Success)
                        .reason(Reason::AccessToken)
                        .subject(Some(claims.sub))
                        .client(client_id)
                        .from(meta),
                )
                .await?;
        }
        return Ok(());
    }
    if token.len() <= 128
        && let Some(grant) = records::find_by_refresh(&app.db, token).await?
        && grant.client_id == client_id
    {
        app.db
            .grants()
            .revoke(&grant.id, "revoked_by_client")
            .await?;
        app.audit
            .write(
                Event::new(Kind::TokenRevoked, Outcome::Success)
                    .reason(Reason::RefreshToken)
                    .subject(Some(grant.account_id))
                    .client(client_id)
                    .from(meta)
                    .details(serde_json::json!({"grant": grant.id})),
            )
            .await?;
    }
    Ok(())
}
