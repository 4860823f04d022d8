//! /admin/v1/audit: the security officers' reading of the audit trail — search under a
//! cursor, streaming export (CSV, JSON Lines) with the checkpoint that covers it, and a
//! person's timeline. Decided by `read_audit` (policies/audit.cedar: role auditor, acr high);
//! every read is itself an audit event (who searched for whom).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::Caller;
use super::http::{self, PageQuery};
use super::problem::{Problem, ProblemBody};
use crate::admin::{Actor, Resource};
use crate::audit::timeline::{EventView, Timeline};
use crate::audit::{Event, Kind, Outcome};
use crate::authn::throttle::LoginKey;
use crate::server::App;
use crate::store::audit_log::cidr_range;
use crate::store::audit_search::AuditQuery;

/// The filters of a search or an export; every one given must hold.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// From this moment (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Until this moment (RFC 3339), exclusive.
    pub to: Option<String>,
    /// The account (`sub`): its own events and those done under its delegation.
    pub sub: Option<String>,
    /// A login as typed at sign-in (username, phone or email): the account it names and the
    /// attempts on it, also where it named no account.
    pub login: Option<String>,
    /// A phone number, in any common writing.
    pub phone: Option<String>,
    /// A personal identification number: the accounts holding it.
    pub personal_number: Option<String>,
    pub client_id: Option<String>,
    /// The organisation acted for.
    pub org: Option<String>,
    /// An address or a CIDR (`203.0.113.0/24`, `2001:db8::/32`).
    pub ip: Option<String>,
    /// Event kinds, comma-separated (login, logout, token_issued, admin, alert, …).
    pub kind: Option<String>,
    /// success or failure.
    pub outcome: Option<String>,
    pub reason: Option<String>,
    /// The sign-in method (password, certificate, upstream, …).
    pub method: Option<String>,
    /// low, substantial or high.
    pub acr: Option<String>,
    /// The upstream identity provider's name.
    pub upstream: Option<String>,
    /// desc (newest first, the default) or asc.
    pub order: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn moment(name: &str, v: Option<&str>) -> Result<Option<i64>, Problem> {
    let Some(v) = v else { return Ok(None) };
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            Problem::bad_request(format!(
                "{name}: an RFC 3339 moment, such as 2026-11-01T00:00:00Z"
            ))
        })?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms)
        .map(Some)
        .map_err(|_| Problem::bad_request(format!("{name}: out of range")))
}

/// Longest a text filter may be (nothing stored is longer where it matters).
const MAX_FILTER: usize = 256;

fn text(name: &str, v: &Option<String>) -> Result<Option<String>, Problem> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() || s.len() > MAX_FILTER || http::has_control(s) => Err(
            Problem::bad_request(format!("{name}: 1 to {MAX_FILTER} printable characters")),
        ),
        Some(s) => Ok(Some(s.clone())),
    }
}

/// The filter as a query, and what the read's own audit event says of it (the accounts
/// searched for by `sub`, never the login, phone or personal number typed).
async fn query(app: &App, f: &AuditFilter) -> Result<(AuditQuery, Value), Problem> {
    let mut q = AuditQuery {
        from_ms: moment("from", f.from.as_deref())?,
        to_ms: moment("to", f.to.as_deref())?,
        client_id: text("client_id", &f.client_id)?,
        org_id: text("org", &f.org)?,
        outcome: text("outcome", &f.outcome)?,
        reason: text("reason", &f.reason)?,
        method: text("method", &f.method)?,
        acr: text("acr", &f.acr)?,
        upstream: text("upstream", &f.upstream)?,
        descending: match f.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err(Problem::bad_request("order: asc or desc")),
        },
        ..AuditQuery::default()
    };
    if let Some(o) = &q.outcome
        && !matches!(o.as_str(), "success" | "failure")
    {
        return Err(Problem::bad_request("outcome: success or failure"));
    }
    if let Some(kinds) = text("kind", &f.kind)? {
        for k in kinds.split(',') {
            let k = k.trim();
            if !Kind::ALL.iter().any(|known| known.as_str() == k) {
                return Err(Problem::bad_request(format!(
                    "kind: {k:?} is not an event kind"
                )));
            }
            q.kinds.push(k.to_string());
        }
    }
    if let Some(ip) = text("ip", &f.ip)? {
        q.ip_range = Some(
            cidr_range(ip.trim())
                .ok_or_else(|| Problem::bad_request("ip: an address or a CIDR"))?,
        );
    }
    // A person, however named: every account it names, and for a login the attempts on it.
    let mut person = Vec::new();
    let mut person_given = false;
    if let Some(sub) = text("sub", &f.sub)? {
        person_given = true;
        person.push(sub);
    }
    if let Some(login) = text("login", &f.login)? {
        person_given = true;
        q.login_keys.push(LoginKey::of(&login).as_str().to_string());
        if let Some(a) = crate::identity::account::find_by_login(&app.db, &login).await? {
            person.push(a.id);
        }
    }
    if let Some(phone) = text("phone", &f.phone)? {
        person_given = true;
        let p = crate::identity::account::normalize_phone(&phone)
            .ok_or_else(|| Problem::bad_request("phone: not a phone number"))?;
        q.login_keys.push(LoginKey::of(&p).as_str().to_string());
        if let Some(a) = crate::identity::account::find_by_login(&app.db, &p).await? {
            person.push(a.id);
        }
    }
    if let Some(n) = text("personal_number", &f.personal_number)? {
        person_given = true;
        let n = crate::admin::personal_number(&n)?;
        person.extend(
            app.db
                .upstream_identities()
                .accounts_with_personal_number(&n)
                .await?,
        );
    }
    person.sort();
    person.dedup();
    let named: Vec<&str> = [
        ("sub", f.sub.is_some()),
        ("login", f.login.is_some()),
        ("phone", f.phone.is_some()),
        ("personal_number", f.personal_number.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, given)| given.then_some(n))
    .collect();
    let said = json!({
        "named_by": named,
        "accounts": person,
        "from": f.from, "to": f.to, "client_id": q.client_id, "org": q.org_id, "ip": f.ip,
        "kind": q.kinds, "outcome": q.outcome, "reason": q.reason, "method": q.method,
        "acr": q.acr, "upstream": q.upstream,
    });
    q.subjects = person;
    // Named a person who matches nothing: an empty answer, not everyone's events.
    if person_given && q.subjects.is_empty() && q.login_keys.is_empty() {
        q.subjects.push(String::new());
    }
    Ok((q, said))
}

/// Only an officer's question is looked into: authorised before any account is looked up.
async fn authorize(app: &App, actor: &Actor) -> Result<(), Problem> {
    app.admin()
        .authorize(actor, "read_audit", Resource::System, json!({}))
        .await?;
    Ok(())
}

/// The read, in the trail before its answer goes out.
async fn record(app: &App, actor: &Actor, what: &str, said: Value) -> Result<(), Problem> {
    let mut details = said;
    if let Some(m) = details.as_object_mut() {
        m.insert("read".into(), json!(what));
    }
    app.audit
        .write(
            Event::new(Kind::AuditRead, Outcome::Success)
                .subject(Some(actor.id()))
                .details(details),
        )
        .await
        .map_err(|_| Problem::unavailable())?;
    Ok(())
}

/// Find events (newest first unless `order=asc`), under a cursor.
#[utoipa::path(get, path = "/admin/v1/audit/events", params(AuditFilter, PageQuery),
    responses(
        (status = 200, body = EventPage),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "audit")]
pub async fn events(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(f): Query<AuditFilter>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Problem> {
    let limit = page.limit()?;
    authorize(&app, &actor).await?;
    let (mut q, said) = query(&app, &f).await?;
    if let Some(c) = page.after()? {
        q.cursor = Some(
            c.parse()
                .map_err(|_| Problem::bad_request("cursor: not one this API gave"))?,
        );
    }
    record(&app, &actor, "events", said).await?;
    let rows = app.db.audit_log().search(&q, i64::from(limit) + 1).await?;
    let items: Vec<EventView> = rows.iter().map(EventView::of).collect();
    let page = http::Page::of(items, limit, |e| e.seq.to_string());
    Ok(axum::Json(EventPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// jsonl (default) or csv.
    pub format: Option<String>,
}

/// Export every event matching the filter, streamed in the chain's order: JSON Lines (a
/// header line, the events, and the signed checkpoint that covers them) or CSV (the
/// checkpoint in the `Vhod-Audit-Checkpoint` header). An export of a time range alone carries
/// the whole stretch of the chain up to its checkpoint, so it verifies on its own
/// (`vhod audit verify-export`).
#[utoipa::path(get, path = "/admin/v1/audit/export", params(AuditFilter, ExportQuery),
    responses(
        (status = 200, description = "The events, streamed as JSON Lines (or text/csv with format=csv)", content_type = "application/jsonl"),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "audit")]
pub async fn export(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Query(f): Query<AuditFilter>,
    Query(x): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let format = match x.format.as_deref() {
        None | Some("jsonl") => crate::audit::export::Format::JsonLines,
        Some("csv") => crate::audit::export::Format::Csv,
        Some(_) => return Err(Problem::bad_request("format: jsonl or csv")),
    };
    authorize(&app, &actor).await?;
    let (mut q, said) = query(&app, &f).await?;
    q.descending = false;
    record(&app, &actor, "export", said).await?;
    let plan = crate::audit::export::plan(&app.db, &app.audit, q)
        .await
        .map_err(|_| Problem::unavailable())?;
    let checkpoint = plan.checkpoint.as_ref().map(|c| c.jws.clone());
    let stream = crate::audit::export::stream(app.db.clone(), plan, format);
    let body = Body::from_stream(futures_util::StreamExt::map(stream, |r| r.map(Bytes::from)));
    let mut response = (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if let Some(jws) = checkpoint
        && let Ok(v) = header::HeaderValue::from_str(&jws)
    {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("vhod-audit-checkpoint"), v);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeRange {
    /// From this moment (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Until this moment (RFC 3339), exclusive.
    pub to: Option<String>,
}

/// Events a timeline reads at most.
const TIMELINE_MAX: i64 = 5_000;

/// A person's timeline: every sign-in (method, client, address, user agent, outcome), the
/// session each opened and the grants made under it, with when and why each ended; and the
/// other events of the account, including those done under its delegation.
#[utoipa::path(get, path = "/admin/v1/audit/people/{sub}/timeline", params(("sub" = String, Path), TimeRange),
    responses(
        (status = 200, body = Timeline),
        (status = "4XX", body = ProblemBody, content_type = "application/problem+json"),
    ), tag = "audit")]
pub async fn timeline(
    State(app): State<Arc<App>>,
    Caller(actor): Caller,
    Path(sub): Path<String>,
    Query(r): Query<TimeRange>,
) -> Result<Response, Problem> {
    let sub = text("sub", &Some(sub))?.unwrap_or_default();
    let f = AuditFilter {
        from: r.from,
        to: r.to,
        sub: Some(sub.clone()),
        order: Some("asc".into()),
        ..AuditFilter::default()
    };
    authorize(&app, &actor).await?;
    let (q, said) = query(&app, &f).await?;
    record(&app, &actor, "timeline", said).await?;
    let rows = app.db.audit_log().search(&q, TIMELINE_MAX + 1).await?;
    let truncated = rows.len() as i64 > TIMELINE_MAX;
    let rows = &rows[..rows.len().min(TIMELINE_MAX as usize)];
    Ok(axum::Json(crate::audit::timeline::build(&sub, rows, truncated)).into_response())
}
