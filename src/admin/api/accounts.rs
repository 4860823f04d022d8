//! /admin/v1/accounts: search, read, block, unblock, end sessions; the main administrator's
//! scope.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use super::http::{self, Page, PageQuery, with_etag};
use super::problem::{Problem, ProblemBody};
use crate::admin::Resource;
use crate::identity::account::Account;
use crate::identity::standing::Standing;
use crate::server::App;

/// An organisation role held.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub org: String,
    pub roles: Vec<String>,
}

/// An account as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The `sub`.
    pub id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// active or blocked.
    pub status: String,
    /// The organisation whose administrators manage it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_org: Option<String>,
    /// System roles now (applicant, employee, admin, auditor).
    pub roles: Vec<String>,
    pub memberships: Vec<MembershipView>,
    /// Organisations it administers.
    pub admin_of: Vec<String>,
    pub system_admin: bool,
    /// Bound to a personal identification number (by a certificate, an upstream or an
    /// administrator).
    pub personal_number_bound: bool,
    /// Also the ETag.
    pub version: i64,
}

impl AccountView {
    pub async fn of(app: &App, a: &Account) -> Result<AccountView, Problem> {
        let s = Standing::of(&app.db, a, app.clock.now()).await?;
        let memberships = app
            .db
            .memberships()
            .of_account(&a.id)
            .await?
            .into_iter()
            .map(|m| MembershipView {
                org: m.org_id,
                roles: m.roles,
            })
            .collect();
        let admin_of = app
            .db
            .memberships()
            .admin_scopes_of(&a.id)
            .await?
            .into_iter()
            .filter_map(|s| s.org_id)
            .collect();
        Ok(AccountView {
            id: a.id.clone(),
            username: a.username.clone(),
            given_name: a.given_name.clone(),
            family_name: a.family_name.clone(),
            middle_name: a.middle_name.clone(),
            phone: a.phone.clone(),
            email: a.email.clone(),
            status: a.status.clone(),
            home_org: a.home_org.clone(),
            roles: s.roles.iter().map(|r| r.as_str().to_string()).collect(),
            memberships,
            admin_of,
            system_admin: s.system_admin,
            personal_number_bound: !s.personal_numbers.is_empty(),
            version: a.version,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountFilter {
    /// A part of the name or username (at least 2 characters).
    pub name: Option<String>,
    /// A confirmed phone number, in any common writing.
    pub phone: Option<String>,
    /// A confirmed email address.
    pub email: Option<String>,
    /// A personal identification number the account holds.
    pub personal_number: Option<String>,
    /// Only accounts whose home is this organisation.
    pub org: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    /// How many sessions were still open.
    pub sessions_ended: usize,
}

/// Find accounts (among those of an organisation, or all for the main administrator).
#[utoipa::path(get, path = "/admin/v1/accounts", params(AccountFilter, PageQuery),
    responses(
        (status = 200, body = AccountPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn search(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(f): Query<AccountFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let limit = page.limit()?;
    let after = page.after()?;
    http::printable("name", f.name.as_deref())?;
    http::printable("email", f.email.as_deref())?;
    http::printable("org", f.org.as_deref())?;
    let resource = match &f.org {
        Some(o) => Resource::Org(o),
        None => Resource::System,
    };
    app.admin()
        .authorize(&actor, "search_accounts", resource, serde_json::json!({}))
        .await?;
    if f.name.as_ref().is_some_and(|n| {
        let len = n.trim().chars().count();
        !(2..=100).contains(&len)
    }) {
        return Err(Problem::bad_request("name: 2 to 100 characters"));
    }
    let phone = match &f.phone {
        Some(p) => Some(
            crate::identity::account::normalize_phone(p)
                .ok_or_else(|| Problem::bad_request("phone: not a phone number"))?,
        ),
        None => None,
    };
    let email = f.email.as_deref().map(|e| e.trim().to_lowercase());
    let ids = match &f.personal_number {
        Some(n) => Some(
            app.db
                .upstream_identities()
                .accounts_with_personal_number(&crate::admin::personal_number(n)?)
                .await?,
        ),
        None => None,
    };
    let search = crate::store::accounts::Search {
        name: f.name.as_deref().map(str::trim),
        phone: phone.as_deref(),
        email: email.as_deref(),
        ids: ids.as_deref(),
        home_org: f.org.as_deref(),
    };
    let (rows, resume) = app
        .db
        .accounts()
        .search(&search, after.as_deref(), limit + 1)
        .await?;
    let mut items = Vec::new();
    for a in &rows {
        items.push(AccountView::of(&app, a).await?);
    }
    let mut page = Page::of(items, limit, |a| a.id.clone());
    // The scan stopped at its bound: the next page goes on from where it stopped.
    if page.next_cursor.is_none()
        && let Some(r) = resume
    {
        page.next_cursor = Some(http::cursor(&r));
    }
    Ok(axum::Json(AccountPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Read an account.
#[utoipa::path(get, path = "/admin/v1/accounts/{id}", params(("id" = String, Path)),
    responses(
        (status = 200, body = AccountView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn get(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let a = http::account(&app, &id).await?;
    app.admin()
        .authorize(
            &actor,
            "read_account",
            Resource::Account(&a),
            serde_json::json!({}),
        )
        .await?;
    let view = AccountView::of(&app, &a).await?;
    Ok(with_etag(StatusCode::OK, &view, a.version))
}

async fn set_blocked(
    app: &Arc<App>,
    actor: &crate::admin::Actor,
    id: &str,
    headers: &HeaderMap,
    blocked: bool,
) -> Result<Response, Problem> {
    let a = http::account(app, id).await?;
    let expected = http::if_match(headers)?;
    let after = app
        .admin()
        .set_blocked(actor, &a, expected, blocked, app)
        .await?;
    let view = AccountView::of(app, &after).await?;
    Ok(with_etag(StatusCode::OK, &view, after.version))
}

/// Block the account: it signs in nowhere; its sessions end and its grants are revoked now.
#[utoipa::path(post, path = "/admin/v1/accounts/{id}/block",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = AccountView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn block(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    set_blocked(&app, &actor, &id, &headers, true).await
}

/// Unblock the account.
#[utoipa::path(post, path = "/admin/v1/accounts/{id}/unblock",
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = AccountView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn unblock(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    set_blocked(&app, &actor, &id, &headers, false).await
}

/// End all the account's sessions and revoke its grants (its clients are told).
#[utoipa::path(post, path = "/admin/v1/accounts/{id}/end-sessions", params(("id" = String, Path)),
    responses(
        (status = 200, body = Ended),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn end_sessions(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let a = http::account(&app, &id).await?;
    let n = app.admin().end_sessions(&actor, &a, &app).await?;
    Ok(axum::Json(Ended { sessions_ended: n }).into_response())
}

/// A personal identification number to bind the account to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalNumberBody {
    /// 14 Latin letters and digits.
    pub personal_number: String,
}

/// Bind the account to a personal number: the person's certificate sign-in finds it.
#[utoipa::path(put, path = "/admin/v1/accounts/{id}/personal-number", request_body = PersonalNumberBody,
    params(("id" = String, Path), ("If-Match" = String, Header, description = "The ETag as read")),
    responses(
        (status = 200, body = AccountView, headers(("ETag" = String))),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn bind_personal_number(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: http::Json<PersonalNumberBody>,
) -> Result<Response, Problem> {
    let a = http::account(&app, &id).await?;
    let expected = http::if_match(&headers)?;
    app.admin()
        .bind_personal_number(&actor, &a, &body.personal_number, expected)
        .await?;
    let after = http::account(&app, &id).await?;
    let view = AccountView::of(&app, &after).await?;
    Ok(with_etag(StatusCode::OK, &view, after.version))
}

/// Make the account a main administrator.
#[utoipa::path(put, path = "/admin/v1/accounts/{id}/system-administrator", params(("id" = String, Path)),
    responses(
        (status = 204, description = "It is"),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "accounts")]
pub async fn grant_system_admin(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let a = http::account(&app, &id).await?;
    app.admin().grant_admin(&actor, &a, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
