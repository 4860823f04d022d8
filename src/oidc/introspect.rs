//! Token introspection (RFC 7662) for confidential clients. A token is described only to the
//! client it was issued to and, for access tokens, to the resource servers registered for its
//! audience (`introspection_audiences`); to anyone else, as to anything not active, the answer
//! is `{"active": false}` and nothing more (RFC 7662 §4: a token's secrets are not for every
//! client that can authenticate).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::bearer;
use super::client_auth;
use super::error::{OAuthError, json_no_store};
use super::grants::records;
use crate::identity::client::Client;
use crate::server::App;
use crate::tokens::claims::AccessTokenClaims;
use crate::web::params::{Params, RequestParams};

pub async fn introspect(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RequestParams(params): RequestParams,
) -> Response {
    match handle(&app, &headers, params).await {
        Ok(v) => json_no_store(v),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    params: Result<Params, crate::web::params::ParamError>,
) -> Result<Value, OAuthError> {
    let params = params?;
    let authed = client_auth::authenticate(app, headers, &params, "/introspect").await?;
    if authed.client.is_public() {
        return Err(OAuthError::invalid_client(
            "public clients may not introspect tokens",
        ));
    }
    let token = params.require("token")?;
    let inactive = json!({"active": false});
    // token_type_hint is only a hint (RFC 7662 §2.1): the token's shape decides where to look.
    let looks_like_jwt = token.bytes().filter(|b| *b == b'.').count() == 2;
    if looks_like_jwt {
        return Ok(match bearer::validate(app, token).await {
            Ok(c) if !may_see(&authed.client, &c) => inactive,
            Ok(c) if c.grant_id().is_some() => match current(app, &c).await? {
                Some(now) => {
                    let mut answer = active_answer(&c);
                    if let (Some(m), Value::Object(extra)) = (answer.as_object_mut(), now) {
                        m.extend(extra);
                    }
                    answer
                }
                None => inactive,
            },
            Ok(c) => active_answer(&c),
            Err(e) if e.code == super::error::ErrorCode::InvalidToken => inactive,
            Err(e) => return Err(e),
        });
    }
    Ok(match records::find_by_refresh(&app.db, token).await? {
        // A refresh token is introspectable only by the client that holds it.
        Some(g) if g.client_id == authed.client.id.as_str() => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": g.scope_string(),
            "client_id": g.client_id,
            "sub": g.account_id,
            "iss": app.settings.issuer,
            "exp": g.expires_at,
            "auth_time": g.facts.auth_time,
            "acr": g.facts.acr,
        }),
        _ => inactive,
    })
}

fn active_answer(c: &AccessTokenClaims) -> Value {
    json!({
        "active": true,
        "token_type": "Bearer",
        "scope": c.scope,
        "client_id": c.client_id,
        "sub": c.sub,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
        "auth_time": c.auth_time,
        "acr": c.acr,
    })
}

/// A person's token as things stand now: None when the account is no longer active; else the
/// `roles` and `org` of its scopes read afresh (a removed role or an ended delegation shows
/// here before the token expires).
async fn current(app: &App, c: &AccessTokenClaims) -> Result<Option<Value>, OAuthError> {
    let Some(acc) = crate::identity::account::find_by_id(&app.db, &c.sub)
        .await?
        .filter(|a| a.is_active())
    else {
        return Ok(None);
    };
    let standing = crate::identity::standing::Standing::of(&app.db, &acc, app.clock.now()).await?;
    let mut extra = serde_json::Map::new();
    if c.scopes().any(|s| s == "roles") {
        extra.insert("roles".into(), standing.roles_claim());
    }
    if c.scopes().any(|s| s == "org") {
        extra.insert("org".into(), standing.org_claim());
    }
    Ok(Some(Value::Object(extra)))
}

/// The access token's own client, or a resource server registered for its audience.
fn may_see(caller: &Client, token: &AccessTokenClaims) -> bool {
    caller.id.as_str() == token.client_id || caller.may_introspect(&token.aud)
}
