//! /admin/v1/organisations: the tree, its administrators and its employees.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use super::accounts::AccountView;
use super::http::{self, Json, Page, PageQuery, with_etag};
use super::problem::{Problem, ProblemBody};
use crate::admin::{NewEmployee, Resource};
use crate::identity::account::NewAccount;
use crate::identity::org::{self, Changes, NewOrganisation, Organisation};
use crate::server::App;

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    /// Stable id (what tokens carry).
    pub id: String,
    /// The organisation above it (absent at the top level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_be: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unp: Option<String>,
    /// state_body, organisation or unit.
    pub kind: String,
    pub active: bool,
    /// Also the ETag.
    pub version: i64,
}

impl From<&Organisation> for OrgView {
    fn from(o: &Organisation) -> OrgView {
        OrgView {
            id: o.id.clone(),
            parent: o.parent_id.clone(),
            name: o.name.clone(),
            name_be: o.name_be.clone(),
            unp: o.unp.clone(),
            kind: o.kind.clone(),
            active: o.active,
            version: o.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgPage {
    pub items: Vec<OrgView>,
    /// The cursor of the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgFilter {
    /// Only the children of this organisation (`-` for the top level).
    pub parent: Option<String>,
    /// Only active (true) or deactivated (false) ones.
    pub active: Option<bool>,
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgBody {
    /// 1 to 64 of a-z, 0-9, '.', '_', '-'.
    pub id: String,
    /// The organisation above it; absent: top level (the main administrator's).
    #[serde(default)]
    pub parent: Option<String>,
    pub name: String,
    #[serde(default)]
    pub name_be: Option<String>,
    /// Nine digits.
    #[serde(default)]
    pub unp: Option<String>,
    /// state_body, organisation (default) or unit.
    #[serde(default)]
    pub kind: Option<String>,
}

/// `Some(None)` for an explicit null, `None` for absent.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Fields to change; absent ones stay, `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgChanges {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub name_be: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub unp: Option<Option<String>>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// Where to move it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The new parent; null: the top level.
    pub parent: Option<String>,
}

/// An account to make an administrator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    /// The account's `sub`.
    pub account_id: String,
}

/// An employee account made in this organisation (its home).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEmployeeBody {
    pub username: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub middle_name: Option<String>,
    /// Confirmed by the administrator's word: the person signs in with a certificate.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The personal identification number: the person's first certificate sign-in finds this
    /// account.
    #[serde(default)]
    pub personal_number: Option<String>,
    /// Organisation roles of the catalogue.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// An employee of the organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub account_id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub status: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberPage {
    pub items: Vec<MemberView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The organisation roles to hold in this organisation (all of them: absent ones are taken).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolesView {
    pub roles: Vec<String>,
}

async fn existing(app: &App, id: &str) -> Result<Organisation, Problem> {
    org::get(&app.db, id)
        .await
        .map_err(crate::admin::AdminError::from)?
        .ok_or_else(|| Problem::not_found("organisation"))
}

/// List organisations (the children of one, or all for the main administrator).
#[utoipa::path(get, path = "/admin/v1/organisations", params(OrgFilter, PageQuery),
    responses(
        (status = 200, body = OrgPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn list(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(filter): Query<OrgFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let limit = page.limit()?;
    let after = page.after()?;
    let parent = match filter.parent.as_deref() {
        None => None,
        Some("-") => Some(None),
        Some(p) => Some(Some(existing(&app, p).await?.id)),
    };
    let resource = match &parent {
        Some(Some(p)) => Resource::Org(p),
        _ => Resource::System,
    };
    app.admin()
        .authorize(&actor, "read_organisation", resource, serde_json::json!({}))
        .await?;
    let rows = app
        .db
        .organisations()
        .list(
            parent.as_ref().map(|p| p.as_deref()),
            filter.active,
            after.as_deref(),
            limit + 1,
        )
        .await?;
    let page = Page::of(rows.iter().map(OrgView::from).collect(), limit, |o| {
        o.id.clone()
    });
    Ok(axum::Json(OrgPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Register an organisation.
#[utoipa::path(post, path = "/admin/v1/organisations", request_body = NewOrgBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, body = OrgView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn create(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Json<NewOrgBody>,
) -> Result<Response, Problem> {
    let caller = actor.id();
    http::idempotent(&app, &caller, &headers, &body.raw, async {
        let b = &body.value;
        let new = NewOrganisation {
            id: b.id.clone(),
            parent: b.parent.clone(),
            name: b.name.clone(),
            name_be: b.name_be.clone(),
            unp: b.unp.clone(),
            kind: b.kind.clone(),
        };
        let o = app.admin().create_org(&actor, &new).await?;
        Ok(with_etag(
            StatusCode::CREATED,
            &OrgView::from(&o),
            o.version,
        ))
    })
    .await
}

/// Read an organisation.
#[utoipa::path(get, path = "/admin/v1/organisations/{id}", params(("id" = String, Path)),
    responses(
        (status = 200, body = OrgView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn get(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    app.admin()
        .authorize(
            &actor,
            "read_organisation",
            Resource::Org(&o.id),
            serde_json::json!({}),
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &OrgView::from(&o), o.version))
}

/// Change names, УНП or kind.
#[utoipa::path(patch, path = "/admin/v1/organisations/{id}", request_body = OrgChanges,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = OrgView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn update(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<OrgChanges>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    let changes = Changes {
        name: body.name.clone(),
        name_be: body.name_be.clone(),
        unp: body.unp.clone(),
        kind: body.kind.clone(),
        active: None,
    };
    let after = app
        .admin()
        .update_org(&actor, &o.id, Some(expected), &changes)
        .await?;
    Ok(with_etag(
        StatusCode::OK,
        &OrgView::from(&after),
        after.version,
    ))
}

/// Move it, with its subtree, under another organisation (never into its own subtree).
#[utoipa::path(post, path = "/admin/v1/organisations/{id}/move", request_body = MoveBody,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = OrgView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn move_to(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<MoveBody>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    if let Some(p) = &body.parent {
        existing(&app, p).await?;
    }
    let after = app
        .admin()
        .move_org(&actor, &o.id, body.parent.as_deref(), Some(expected))
        .await?;
    Ok(with_etag(
        StatusCode::OK,
        &OrgView::from(&after),
        after.version,
    ))
}

/// Deactivate it: nobody holds anything there (nor below) from the next token on.
#[utoipa::path(post, path = "/admin/v1/organisations/{id}/deactivate",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = OrgView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn deactivate(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    let after = app
        .admin()
        .deactivate_org(&actor, &o.id, Some(expected))
        .await?;
    Ok(with_etag(
        StatusCode::OK,
        &OrgView::from(&after),
        after.version,
    ))
}

/// Make an account an external administrator of this organisation (and its subtree).
#[utoipa::path(post, path = "/admin/v1/organisations/{id}/administrators", request_body = AccountRef,
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "It is"),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn grant_admin(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    body: Json<AccountRef>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let target = http::account(&app, &body.account_id).await?;
    app.admin()
        .grant_admin(&actor, &target, Some(&o.id))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Take the administrator scope away.
#[utoipa::path(delete, path = "/admin/v1/organisations/{id}/administrators/{account_id}",
    params(("id" = String, Path), ("account_id" = String, Path)),
    responses(
        (status = 204, description = "It is not (any more)"),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn revoke_admin(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path((id, account_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let target = http::account(&app, &account_id).await?;
    if !app
        .admin()
        .revoke_admin(&actor, &target, Some(&o.id))
        .await?
    {
        return Err(Problem::not_found("administrator"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The organisation's employees with their organisation roles there.
#[utoipa::path(get, path = "/admin/v1/organisations/{id}/employees",
    params(("id" = String, Path), PageQuery),
    responses(
        (status = 200, body = MemberPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn employees(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let limit = page.limit()?;
    let after = page.after()?;
    app.admin()
        .authorize(
            &actor,
            "read_organisation",
            Resource::Org(&o.id),
            serde_json::json!({}),
        )
        .await?;
    let rows = app
        .db
        .memberships()
        .of_org(&o.id, after.as_deref(), limit + 1)
        .await?;
    let mut items = Vec::new();
    for m in rows {
        if let Some(a) = app.db.accounts().find_by_id(&m.account_id).await? {
            items.push(MemberView {
                account_id: a.id.clone(),
                username: a.username.clone(),
                name: a.full_name(),
                status: a.status.clone(),
                roles: m.roles,
            });
        }
    }
    let page = Page::of(items, limit, |m| m.account_id.clone());
    Ok(axum::Json(MemberPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Make an employee account in this organisation.
#[utoipa::path(post, path = "/admin/v1/organisations/{id}/employees", request_body = NewEmployeeBody,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, body = AccountView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn create_employee(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<NewEmployeeBody>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    // The account's own checks leave the names as given; PostgreSQL refuses a NUL in them.
    http::printable("given_name", body.given_name.as_deref())?;
    http::printable("family_name", body.family_name.as_deref())?;
    http::printable("middle_name", body.middle_name.as_deref())?;
    let caller = actor.id();
    http::idempotent(&app, &caller, &headers, &body.raw, async {
        let b = &body.value;
        let new = NewEmployee {
            account: NewAccount {
                username: b.username.clone(),
                password_hash: None,
                phone: b.phone.clone(),
                email: b.email.clone(),
                given_name: b.given_name.clone(),
                family_name: b.family_name.clone(),
                middle_name: b.middle_name.clone(),
                roles: vec!["applicant".into()],
                home_org: None,
                verified: true,
            },
            org: o.id.clone(),
            org_roles: b.roles.clone(),
            personal_number: b.personal_number.clone(),
        };
        let acc = app.admin().create_employee(&actor, new).await?;
        let view = AccountView::of(&app, &acc).await?;
        Ok(with_etag(StatusCode::CREATED, &view, acc.version))
    })
    .await
}

/// Set the employee's organisation roles here (the account's ETag in If-Match).
#[utoipa::path(put, path = "/admin/v1/organisations/{id}/employees/{account_id}/roles", request_body = RolesBody,
    params(("id" = String, Path), ("account_id" = String, Path), ("If-Match" = String, Header, description = "The account's ETag as read")),
    responses(
        (status = 200, body = RolesView),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn set_roles(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path((id, account_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Json<RolesBody>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let target = http::account(&app, &account_id).await?;
    let expected = http::if_match(&headers)?;
    let roles = app
        .admin()
        .set_roles(&actor, &target, &o.id, &body.roles, Some(expected))
        .await?;
    let after = http::account(&app, &account_id).await?;
    Ok(with_etag(
        StatusCode::OK,
        &RolesView { roles },
        after.version,
    ))
}

/// End the employee's membership (their roles here go with it).
#[utoipa::path(delete, path = "/admin/v1/organisations/{id}/employees/{account_id}",
    params(("id" = String, Path), ("account_id" = String, Path)),
    responses(
        (status = 204, description = "Ended"),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "organisations")]
pub async fn remove_employee(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path((id, account_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let o = existing(&app, &id).await?;
    let target = http::account(&app, &account_id).await?;
    app.admin().remove_member(&actor, &target, &o.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
