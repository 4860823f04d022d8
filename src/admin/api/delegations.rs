//! /admin/v1/delegations: temporary transfers of organisation roles.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use super::http::{self, Json, Page, PageQuery};
use super::problem::{Problem, ProblemBody, code};
use crate::admin::Resource;
use crate::identity::delegation::{Delegation, Filter, NewDelegation};
use crate::server::App;

/// A delegation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationView {
    pub id: String,
    /// The delegator's `sub`.
    pub from: String,
    /// The delegate's `sub`.
    pub to: String,
    pub org: String,
    pub roles: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// In force now.
    pub in_force: bool,
}

impl DelegationView {
    fn of(d: &Delegation, now: i64) -> DelegationView {
        DelegationView {
            id: d.id.clone(),
            from: d.delegator_id.clone(),
            to: d.delegate_id.clone(),
            org: d.org_id.clone(),
            roles: d.roles.clone(),
            not_before: d.not_before,
            not_after: d.not_after,
            reason: d.reason.clone(),
            created_by: d.created_by.clone(),
            created_at: d.created_at,
            revoked_at: d.revoked_at,
            revoked_by: d.revoked_by.clone(),
            in_force: d.in_force(now),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DelegationPage {
    pub items: Vec<DelegationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DelegationFilter {
    pub org: Option<String>,
    /// The delegate's `sub`.
    pub to: Option<String>,
    /// The delegator's `sub`.
    pub from: Option<String>,
    /// Only those in force now.
    pub in_force: Option<bool>,
}

/// A new delegation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDelegationBody {
    /// The delegator's `sub`.
    pub from: String,
    /// The delegate's `sub`.
    pub to: String,
    pub org: String,
    /// Organisation roles the delegator holds there.
    pub roles: Vec<String>,
    /// Unix seconds; absent: now.
    #[serde(default)]
    pub not_before: Option<i64>,
    /// Unix seconds; at most delegation_max_days after the start.
    pub not_after: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Why it is revoked.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// List delegations (of an organisation, or all for the main administrator).
#[utoipa::path(get, path = "/admin/v1/delegations", params(DelegationFilter, PageQuery),
    responses(
        (status = 200, body = DelegationPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "delegations")]
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(f): Query<DelegationFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let limit = page.limit()?;
    let after = page.after()?;
    http::printable("org", f.org.as_deref())?;
    http::printable("to", f.to.as_deref())?;
    http::printable("from", f.from.as_deref())?;
    let resource = match &f.org {
        Some(o) => Resource::Org(o),
        None => Resource::System,
    };
    app.admin()
        .authorize(&actor, "read_delegation", resource, serde_json::json!({}))
        .await?;
    let now = app.clock.now();
    let filter = Filter {
        org_id: f.org.as_deref(),
        delegate_id: f.to.as_deref(),
        delegator_id: f.from.as_deref(),
        in_force_at: f.in_force.unwrap_or(false).then_some(now),
    };
    let rows = app
        .db
        .delegations()
        .list(&filter, after.as_deref(), limit + 1)
        .await?;
    let items = rows
        .iter()
        .filter(|d| f.in_force != Some(false) || !d.in_force(now))
        .map(|d| DelegationView::of(d, now))
        .collect();
    let page = Page::of(items, limit, |d| d.id.clone());
    Ok(axum::Json(DelegationPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Transfer some of an employee's organisation roles to another account for a while.
#[utoipa::path(post, path = "/admin/v1/delegations", request_body = NewDelegationBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, body = DelegationView),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "delegations")]
pub async fn create(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Json<NewDelegationBody>,
) -> Result<Response, Problem> {
    let caller = actor.id();
    http::idempotent(&app, &caller, &headers, &body.raw, async {
        let b = &body.value;
        crate::identity::org::get(&app.db, &b.org)
            .await
            .map_err(crate::admin::AdminError::from)?
            .ok_or_else(|| Problem::not_found("organisation"))?;
        let from = http::account(&app, &b.from).await?;
        let to = http::account(&app, &b.to).await?;
        let new = NewDelegation {
            delegator_id: from.id,
            delegate_id: to.id,
            org_id: b.org.clone(),
            roles: b.roles.clone(),
            not_before: b.not_before,
            not_after: b.not_after,
            reason: b.reason.clone(),
            created_by: String::new(),
        };
        let d = app.admin().create_delegation(&actor, &new).await?;
        Ok((
            StatusCode::CREATED,
            axum::Json(DelegationView::of(&d, app.clock.now())),
        )
            .into_response())
    })
    .await
}

async fn existing(app: &App, id: &str) -> Result<Delegation, Problem> {
    if id.len() > 64 || http::has_control(id) {
        return Err(Problem::not_found("delegation"));
    }
    app.db
        .delegations()
        .get(id)
        .await?
        .ok_or_else(|| Problem::not_found("delegation"))
}

/// Read a delegation.
#[utoipa::path(get, path = "/admin/v1/delegations/{id}", params(("id" = String, Path)),
    responses(
        (status = 200, body = DelegationView),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "delegations")]
pub async fn get(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let d = existing(&app, &id).await?;
    app.admin()
        .authorize(
            &actor,
            "read_delegation",
            Resource::Delegation(&d),
            serde_json::json!({}),
        )
        .await?;
    Ok(axum::Json(DelegationView::of(&d, app.clock.now())).into_response())
}

/// End a delegation now: the delegate's next token no longer carries it.
#[utoipa::path(post, path = "/admin/v1/delegations/{id}/revoke", request_body = RevokeBody,
    params(("id" = String, Path)),
    responses(
        (status = 200, body = DelegationView),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "delegations")]
pub async fn revoke(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    body: Json<RevokeBody>,
) -> Result<Response, Problem> {
    let d = existing(&app, &id).await?;
    // The audit keeps the reason for people to read: the same rule as a new delegation's.
    if body
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > 500 || http::has_control(r))
    {
        return Err(Problem::bad_request(
            "the reason is at most 500 printable characters",
        ));
    }
    if d.revoked_at.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
            "the delegation was revoked already",
        ));
    }
    let after = app
        .admin()
        .revoke_delegation(&actor, &d.id, body.reason.as_deref())
        .await?;
    Ok(axum::Json(DelegationView::of(&after, app.clock.now())).into_response())
}
