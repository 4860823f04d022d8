//! /admin/v1/clients: relying subsystems (the main administrator's).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::Caller;
use super::http::{self, Json, Page, PageQuery, with_etag};
use super::problem::{Problem, ProblemBody};
use crate::config::{ClientSpec, Localized};
use crate::server::App;
use crate::store::clients::ClientRow;

/// A name per language.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Names {
    pub ru: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub be: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl From<Names> for Localized {
    fn from(n: Names) -> Localized {
        Localized {
            ru: Some(n.ru),
            be: n.be,
            en: n.en,
        }
    }
}

/// A registered client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    /// none (public), client_secret_basic (also _post) or private_key_jwt.
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: String,
    pub token_signing_alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<Names>,
    pub introspection_audiences: Vec<String>,
    /// System roles of which an account must hold one to sign in (empty: any).
    pub allowed_roles: Vec<String>,
    /// Restricted claims it may receive.
    pub claims: Vec<String>,
    /// What it administers with client credentials: system or an organisation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_scope: Option<String>,
    pub disabled: bool,
    /// Also the ETag.
    pub version: i64,
}

impl ClientView {
    fn of(r: &ClientRow) -> ClientView {
        let list = |j: &str| serde_json::from_str::<Vec<String>>(j).unwrap_or_default();
        let names: Option<Localized> = r
            .display_name
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        ClientView {
            client_id: r.client_id.clone(),
            auth_method: if r.public {
                "none"
            } else if r.jwks.is_some() {
                "private_key_jwt"
            } else {
                "client_secret_basic"
            }
            .to_string(),
            redirect_uris: list(&r.redirect_uris),
            post_logout_redirect_uris: list(&r.post_logout_redirect_uris),
            grant_types: list(&r.grant_types),
            scope: r.scope.clone(),
            token_signing_alg: r.token_alg.clone(),
            min_acr: r.min_acr.clone(),
            backchannel_logout_uri: r.backchannel_logout_uri.clone(),
            display_name: names.and_then(|n| {
                Some(Names {
                    ru: n.ru?,
                    be: n.be,
                    en: n.en,
                })
            }),
            introspection_audiences: list(&r.introspection_audiences),
            allowed_roles: list(&r.allowed_roles),
            claims: list(&r.allowed_claims),
            admin_scope: r.admin_scope.clone(),
            disabled: r.disabled,
            version: r.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPage {
    pub items: Vec<ClientView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A client with its new secret, shown this once (vhod keeps only its hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A new client. A confidential client without `jwks` gets a generated secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    pub client_id: String,
    /// A public client (no secret; PKCE required).
    #[serde(default)]
    pub public: bool,
    /// A JWK Set with the client's public keys (private_key_jwt).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// authorization_code, refresh_token, client_credentials (default: the first two).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Space-separated.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// ES256 (default), RS256 or EdDSA.
    #[serde(default)]
    pub token_signing_alg: Option<String>,
    /// low, substantial or high.
    #[serde(default)]
    pub min_acr: Option<String>,
    #[serde(default)]
    pub display_name: Option<Names>,
    #[serde(default)]
    pub introspection_audiences: Vec<String>,
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    #[serde(default)]
    pub claims: Vec<String>,
    #[serde(default)]
    pub admin_scope: Option<String>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Fields to change; absent ones stay, `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub min_acr: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Names>, nullable)]
    pub display_name: Option<Option<Names>>,
    #[serde(default)]
    pub allowed_roles: Option<Vec<String>>,
    #[serde(default)]
    pub claims: Option<Vec<String>>,
}

async fn refreshed(app: &App) {
    // This instance serves the change at once; the others within their refresh interval.
    if let Err(e) = app.clients.refresh(&app.db).await {
        tracing::warn!(error = %e, "reloading the clients after a change failed");
    }
}

/// List the registered clients.
#[utoipa::path(get, path = "/admin/v1/clients", params(PageQuery),
    responses(
        (status = 200, body = ClientPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let limit = page.limit()?;
    let after = page.after()?;
    app.admin()
        .authorize(
            &actor,
            "manage_clients",
            crate::admin::Resource::System,
            serde_json::json!({}),
        )
        .await?;
    let rows = app.db.clients().page(after.as_deref(), limit + 1).await?;
    let page = Page::of(rows.iter().map(ClientView::of).collect(), limit, |c| {
        c.client_id.clone()
    });
    Ok(axum::Json(ClientPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Register a client.
#[utoipa::path(post, path = "/admin/v1/clients", request_body = NewClientBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, body = ClientWithSecret, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn create(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Json<NewClientBody>,
) -> Result<Response, Problem> {
    let caller = actor.id();
    http::idempotent(&app, &caller, &headers, &body.raw, async {
        let b = &body.value;
        let spec = ClientSpec {
            client_id: b.client_id.clone(),
            secret: None,
            public: b.public,
            redirect_uris: b.redirect_uris.clone(),
            post_logout_redirect_uris: b.post_logout_redirect_uris.clone(),
            grant_types: b.grant_types.clone(),
            scope: b.scope.clone(),
            backchannel_logout_uri: b.backchannel_logout_uri.clone(),
            token_signing_alg: b.token_signing_alg.clone(),
            min_acr: b.min_acr.clone(),
            jwks: b.jwks.as_ref().map(|j| j.to_string()),
            display_name: b.display_name.clone().map(Localized::from),
            introspection_audiences: b.introspection_audiences.clone(),
            allowed_roles: b.allowed_roles.clone(),
            claims: b.claims.clone(),
            disabled: false,
            admin_scope: b.admin_scope.clone(),
        };
        let (row, secret) = app
            .admin()
            .create_client(&actor, spec, app.settings.dev)
            .await?;
        refreshed(&app).await;
        let body = ClientWithSecret {
            client: ClientView::of(&row),
            client_secret: secret,
        };
        Ok(with_etag(StatusCode::CREATED, &body, row.version))
    })
    .await
}

async fn existing(app: &App, id: &str) -> Result<ClientRow, Problem> {
    if id.len() > 128 || http::has_control(id) {
        return Err(Problem::not_found("client"));
    }
    app.db
        .clients()
        .get(id)
        .await?
        .ok_or_else(|| Problem::not_found("client"))
}

/// Read a client.
#[utoipa::path(get, path = "/admin/v1/clients/{id}", params(("id" = String, Path)),
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn get(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    app.admin()
        .authorize(
            &actor,
            "manage_clients",
            crate::admin::Resource::System,
            serde_json::json!({}),
        )
        .await?;
    let row = existing(&app, &id).await?;
    Ok(with_etag(
        StatusCode::OK,
        &ClientView::of(&row),
        row.version,
    ))
}

/// Change redirect URIs, scopes, names, the assurance it requires, who may sign in to it.
#[utoipa::path(patch, path = "/admin/v1/clients/{id}", request_body = ClientChanges,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn update(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<ClientChanges>,
) -> Result<Response, Problem> {
    let row = existing(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    let c = body.value;
    let (after, _) = app
        .admin()
        .update_client(
            &actor,
            &row.client_id,
            expected,
            app.settings.dev,
            false,
            |s| {
                if let Some(v) = c.redirect_uris {
                    s.redirect_uris = v;
                }
                if let Some(v) = c.post_logout_redirect_uris {
                    s.post_logout_redirect_uris = v;
                }
                if let Some(v) = c.scope {
                    s.scope = Some(v);
                }
                if let Some(v) = c.min_acr {
                    s.min_acr = v;
                }
                if let Some(v) = c.backchannel_logout_uri {
                    s.backchannel_logout_uri = v;
                }
                if let Some(v) = c.display_name {
                    s.display_name = v.map(Localized::from);
                }
                if let Some(v) = c.allowed_roles {
                    s.allowed_roles = v;
                }
                if let Some(v) = c.claims {
                    s.claims = v;
                }
            },
        )
        .await?;
    refreshed(&app).await;
    Ok(with_etag(
        StatusCode::OK,
        &ClientView::of(&after),
        after.version,
    ))
}

/// A new secret for the client; the old one stops working now. Shown this once.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/rotate-secret",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = ClientWithSecret, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn rotate_secret(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let row = existing(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    let (after, secret) = app
        .admin()
        .update_client(
            &actor,
            &row.client_id,
            expected,
            app.settings.dev,
            true,
            |_| {},
        )
        .await?;
    refreshed(&app).await;
    let body = ClientWithSecret {
        client: ClientView::of(&after),
        client_secret: secret,
    };
    Ok(with_etag(StatusCode::OK, &body, after.version))
}

async fn set_disabled(
    app: &Arc<App>,
    actor: &crate::admin::Actor,
    id: &str,
    headers: &HeaderMap,
    disabled: bool,
) -> Result<Response, Problem> {
    let row = existing(app, id).await?;
    let expected = http::if_match(headers)?;
    let (after, _) = app
        .admin()
        .update_client(
            actor,
            &row.client_id,
            expected,
            app.settings.dev,
            false,
            |s| {
                s.disabled = disabled;
            },
        )
        .await?;
    refreshed(app).await;
    Ok(with_etag(
        StatusCode::OK,
        &ClientView::of(&after),
        after.version,
    ))
}

/// Disable the client: no sign-ins, no tokens (its refresh tokens stop working).
#[utoipa::path(post, path = "/admin/v1/clients/{id}/disable",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn disable(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    set_disabled(&app, &actor, &id, &headers, true).await
}

/// Enable a disabled client again.
#[utoipa::path(post, path = "/admin/v1/clients/{id}/enable",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = ClientView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "clients")]
pub async fn enable(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    set_disabled(&app, &actor, &id, &headers, false).await
}
