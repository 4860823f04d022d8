//! UserInfo (OIDC Core §5.3), GET and POST, bearer-protected.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use super::bearer;
use super::error::{BearerError, ErrorCode, OAuthError, json_no_store};
use crate::identity::account;
use crate::identity::standing::Standing;
use crate::server::App;
use crate::web::params::RequestParams;

pub async fn userinfo(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    match handle(&app, &method, &headers, params).await {
        Ok(v) => json_no_store(v),
        Err(e) => BearerError(e).into_response(),
    }
}

async fn handle(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    params: Result<crate::web::params::Params, crate::web::params::ParamError>,
) -> Result<serde_json::Value, OAuthError> {
    // A POST without a form body is fine when the token is in the header.
    let params = match (method, params) {
        (_, Ok(p)) => Some(p),
        (&Method::POST, Err(crate::web::params::ParamError::ContentType)) => None,
        (_, Err(e)) => return Err(e.into()),
    };
    let token = bearer::extract(headers, params.as_ref())?;
    let claims = bearer::validate(app, &token).await?;
    if !claims.scopes().any(|s| s == "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token was not granted the openid scope",
        ));
    }
    let acc = account::find_by_id(&app.db, &claims.sub)
        .await?
        .filter(|a| a.is_active())
        .ok_or_else(|| OAuthError::invalid_token("the account is no longer active"))?;
    let client = app
        .clients
        .get(&claims.client_id)
        .ok_or_else(|| OAuthError::invalid_token("the client is no longer registered"))?;
    let standing = Standing::of(&app.db, &acc, app.clock.now()).await?;
    let scopes: Vec<&str> = claims.scopes().collect();
    let mut out = standing.claims(&scopes, &client);
    if let Some(le) = &claims.legal_entity {
        out.insert("legal_entity".into(), serde_json::json!(le));
    }
    out.insert("sub".into(), serde_json::Value::String(acc.id));
    Ok(serde_json::Value::Object(out))
}
