//! The administration API, /admin/v1: REST JSON over the administration service, behind
//! vhod's own access tokens of scope `vhod:admin` (a person's, whose sign-in the policies want
//! at acr high; or an automation client's, with the administrator scope it was registered
//! with). Handlers are short: the caller, the body, the service, the answer; errors are RFC
//! 9457 problems (`problem`), lists are pages under opaque cursors, updates need `If-Match`,
//! creates take an `Idempotency-Key` (`http`). The OpenAPI 3.1 document is generated from the
//! handlers (utoipa) and served at /admin/v1/openapi.json.

pub mod http;
pub mod problem;

mod accounts;
mod audit;
mod clients;
mod delegations;
mod organisations;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use utoipa::OpenApi;

pub use self::problem::Problem;
use crate::admin::{Actor, Admin};
use crate::authn::Acr;
use crate::identity::client::ADMIN_SCOPE;
use crate::identity::standing::Standing;
use crate::server::App;

/// Who calls, from the bearer token.
pub struct Caller(pub Actor);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let token = crate::oidc::bearer::extract(&parts.headers, None)
            .map_err(|e| Problem::unauthorized(e.description.into_owned()))?;
        let claims = crate::oidc::bearer::validate(app, &token)
            .await
            .map_err(|e| Problem::unauthorized(e.description.into_owned()))?;
        if !claims.scopes().any(|s| s == ADMIN_SCOPE) {
            return Err(Problem::forbidden(
                "the token was not granted the scope vhod:admin",
            ));
        }
        let client = app
            .clients
            .get(&claims.client_id)
            .filter(|c| !c.disabled)
            .ok_or_else(|| Problem::unauthorized("the token's client is not registered"))?;
        if claims.grant_id().is_none() {
            // client_credentials: the client itself, with its registered administrator scope.
            if client.admin_scope.is_none() {
                return Err(Problem::forbidden(
                    "this client is not registered to administer (admin_scope)",
                ));
            }
            return Ok(Caller(Actor::Client { client }));
        }
        let acc = crate::identity::account::find_by_id(&app.db, &claims.sub)
            .await?
            .filter(|a| a.is_active())
            .ok_or_else(|| Problem::unauthorized("the account is no longer active"))?;
        let standing = Standing::of(&app.db, &acc, app.clock.now()).await?;
        let acr = claims
            .acr
            .as_deref()
            .and_then(Acr::parse)
            .unwrap_or(Acr::Low);
        Ok(Caller(Actor::Person {
            standing: Box::new(standing),
            acr,
        }))
    }
}

impl App {
    pub fn admin(&self) -> Admin<'_> {
        Admin {
            db: &self.db,
            audit: &self.audit,
            policies: &self.policies,
            catalogue: &self.catalogue,
            clock: &self.clock,
            delegation_max_days: self.settings.delegation_max_days,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vhod administration API",
        version = "1",
        description = "Organisations, administrators, employees and their organisation roles, delegations and accounts of vhod, the single sign-on of the appeals system. Bearer tokens of scope vhod:admin; every call is decided by the policies (policies/*.cedar); every error is application/problem+json."
    ),
    paths(
        organisations::list,
        organisations::create,
        organisations::get,
        organisations::update,
        organisations::move_to,
        organisations::deactivate,
        organisations::grant_admin,
        organisations::revoke_admin,
        organisations::employees,
        organisations::create_employee,
        organisations::set_roles,
        organisations::remove_employee,
        accounts::search,
        accounts::get,
        accounts::block,
        accounts::unblock,
        accounts::end_sessions,
        accounts::grant_system_admin,
        accounts::bind_personal_number,
        delegations::list,
        delegations::create,
        delegations::get,
        delegations::revoke,
        clients::list,
        clients::create,
        clients::get,
        clients::update,
        clients::rotate_secret,
        clients::disable,
        clients::enable,
        audit::events,
        audit::export,
        audit::timeline,
        explain,
    ),
    components(schemas(problem::ProblemBody)),
    modifiers(&BearerAuth, &Unavailable),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every operation answers 503 when storage fails (`Problem::unavailable`); the handlers'
/// annotations declare only what the caller can change, so the document is told here.
struct Unavailable;

impl utoipa::Modify for Unavailable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let answer = ResponseBuilder::new()
            .description("Storage is unavailable; try again")
            .content(
                problem::CONTENT_TYPE,
                Content::new(Some(Ref::from_schema_name("ProblemBody"))),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("503".to_string())
                    .or_insert_with(|| answer.clone().into());
            }
        }
    }
}

async fn openapi() -> Response {
    let doc = ApiDoc::openapi();
    match doc.to_json() {
        Ok(json) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document did not serialise");
            Problem::unavailable().into_response()
        }
    }
}

/// A question for the policies: may this account do the action on the resource?
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The acting account's `sub`.
    pub account_id: String,
    /// An administration action of the schema (create_organisation, block_account, …).
    pub action: String,
    /// `system`, `org:<id>` or `account:<sub>`.
    pub resource: String,
    /// The assurance of the sign-in asked about (default high).
    #[serde(default)]
    pub acr: Option<String>,
}

/// The decision and the policies behind it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExplainAnswer {
    pub allowed: bool,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

/// Why may (or may not) an account do an action on a resource.
#[utoipa::path(
    post,
    path = "/admin/v1/policy/explain",
    request_body = ExplainRequest,
    responses(
        (status = 200, description = "The decision", body = ExplainAnswer),
        (status = "4XX", description = "A problem", body = problem::ProblemBody, content_type = "application/problem+json"),
    ),
    tag = "policy"
)]
async fn explain(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    body: http::Json<ExplainRequest>,
) -> Result<Response, Problem> {
    let q = body.value;
    http::printable("resource", Some(&q.resource))?;
    let admin = app.admin();
    admin
        .authorize(
            &actor,
            "explain_policy",
            crate::admin::Resource::System,
            serde_json::json!({}),
        )
        .await?;
    let action: &'static str = crate::admin::ACTIONS
        .iter()
        .find(|a| **a == q.action)
        .ok_or_else(|| Problem::bad_request(format!("unknown action {:?}", q.action)))?;
    let acc = http::account(&app, &q.account_id).await?;
    let standing = Standing::of(&app.db, &acc, app.clock.now()).await?;
    let acr = match q.acr.as_deref() {
        None => Acr::High,
        Some(a) => {
            Acr::parse(a).ok_or_else(|| Problem::bad_request("acr: low, substantial or high"))?
        }
    };
    let asked = Actor::Person {
        standing: Box::new(standing),
        acr,
    };
    let target;
    let resource = match q.resource.split_once(':') {
        None if q.resource == "system" => crate::admin::Resource::System,
        Some(("org", id)) => crate::admin::Resource::Org(id),
        Some(("account", id)) => {
            target = http::account(&app, id).await?;
            crate::admin::Resource::Account(&target)
        }
        _ => {
            return Err(Problem::bad_request(
                "resource: system, org:<id> or account:<sub>",
            ));
        }
    };
    let v = admin.explain(&asked, action, resource).await?;
    Ok(axum::Json(ExplainAnswer {
        allowed: v.allowed,
        policies: v.policies,
        reasons: v.reasons,
        errors: v.errors,
    })
    .into_response())
}

/// The routes under /admin/v1.
pub fn routes() -> Router<Arc<App>> {
    use axum::routing::delete;
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route(
            "/admin/v1/organisations",
            get(organisations::list).post(organisations::create),
        )
        .route(
            "/admin/v1/organisations/{id}",
            get(organisations::get).patch(organisations::update),
        )
        .route(
            "/admin/v1/organisations/{id}/move",
            post(organisations::move_to),
        )
        .route(
            "/admin/v1/organisations/{id}/deactivate",
            post(organisations::deactivate),
        )
        .route(
            "/admin/v1/organisations/{id}/administrators",
            post(organisations::grant_admin),
        )
        .route(
            "/admin/v1/organisations/{id}/administrators/{account_id}",
            delete(organisations::revoke_admin),
        )
        .route(
            "/admin/v1/organisations/{id}/employees",
            get(organisations::employees).post(organisations::create_employee),
        )
        .route(
            "/admin/v1/organisations/{id}/employees/{account_id}",
            delete(organisations::remove_employee),
        )
        .route(
            "/admin/v1/organisations/{id}/employees/{account_id}/roles",
            put(organisations::set_roles),
        )
        .route("/admin/v1/accounts", get(accounts::search))
        .route("/admin/v1/accounts/{id}", get(accounts::get))
        .route("/admin/v1/accounts/{id}/block", post(accounts::block))
        .route("/admin/v1/accounts/{id}/unblock", post(accounts::unblock))
        .route(
            "/admin/v1/accounts/{id}/end-sessions",
            post(accounts::end_sessions),
        )
        .route(
            "/admin/v1/accounts/{id}/system-administrator",
            put(accounts::grant_system_admin),
        )
        .route(
            "/admin/v1/accounts/{id}/personal-number",
            put(accounts::bind_personal_number),
        )
        .route(
            "/admin/v1/delegations",
            get(delegations::list).post(delegations::create),
        )
        .route("/admin/v1/delegations/{id}", get(delegations::get))
        .route(
            "/admin/v1/delegations/{id}/revoke",
            post(delegations::revoke),
        )
        .route(
            "/admin/v1/clients",
            get(clients::list).post(clients::create),
        )
        .route(
            "/admin/v1/clients/{id}",
            get(clients::get).patch(clients::update),
        )
        .route(
            "/admin/v1/clients/{id}/rotate-secret",
            post(clients::rotate_secret),
        )
        .route("/admin/v1/clients/{id}/disable", post(clients::disable))
        .route("/admin/v1/clients/{id}/enable", post(clients::enable))
        .route("/admin/v1/policy/explain", post(explain))
        .route("/admin/v1/audit/events", get(audit::events))
        .route("/admin/v1/audit/export", get(audit::export))
        .route(
            "/admin/v1/audit/people/{sub}/timeline",
            get(audit::timeline),
        )
}
