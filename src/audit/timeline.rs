//! What the officers read: events as views, and a person's timeline assembled from the trail
//! (sign-ins, the sessions they opened, the grants made under them, and how each ended).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::audit_log::StoredEvent;

/// An event as the officers read it: every stored column, with its place and links.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// The place in the chain: the cursor's order.
    pub seq: i64,
    /// RFC 3339, milliseconds.
    pub at: String,
    pub at_ms: i64,
    pub kind: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegator: Option<String>,
    /// The event's details (JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

impl EventView {
    pub fn of(e: &StoredEvent) -> EventView {
        EventView {
            seq: e.seq,
            at: rfc3339(e.at_ms),
            at_ms: e.at_ms,
            kind: e.kind.clone(),
            outcome: e.outcome.clone(),
            reason: e.reason.clone(),
            subject: e.subject.clone(),
            client_id: e.client_id.clone(),
            method: e.method.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            org_id: e.org_id.clone(),
            acr: e.acr.clone(),
            upstream: e.upstream.clone(),
            delegator: e.delegator.clone(),
            details: e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A session a sign-in opened, and how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Why it ended (logout, new_sign_in, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    pub grants: Vec<GrantView>,
}

/// A grant made under a session, and how it ended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    pub grant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub issued_at: String,
    pub tokens_issued: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// revoked, refresh_reuse, logout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

/// A sign-in attempt with what it produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInView {
    #[serde(flatten)]
    pub event: EventView,
    /// The session it opened (a successful sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub sub: String,
    pub sign_ins: Vec<SignInView>,
    /// Everything else the account did or had done to it, and what others did under its
    /// delegation (`delegator` is this account, `subject` the delegate).
    pub other: Vec<EventView>,
    /// The timeline stopped at its bound: narrow the time range for the rest.
    pub truncated: bool,
}

fn detail(details: &Option<Value>, key: &str) -> Option<String> {
    details.as_ref()?.get(key)?.as_str().map(str::to_string)
}

/// The timeline of `sub` from its events, in the chain's order.
pub fn build(sub: &str, rows: &[StoredEvent], truncated: bool) -> Timeline {
    struct Grant {
        sid: Option<String>,
        view: GrantView,
    }
    let parsed: Vec<Option<Value>> = rows
        .iter()
        .map(|e| {
            e.details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
        })
        .collect();
    let mut grants: BTreeMap<String, Grant> = BTreeMap::new();
    let mut ended: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for (e, d) in rows.iter().zip(&parsed) {
        let grant = detail(d, "grant");
        match (e.kind.as_str(), grant) {
            ("token_issued", Some(g)) => {
                let entry = grants.entry(g.clone()).or_insert_with(|| Grant {
                    sid: detail(d, "sid"),
                    view: GrantView {
                        grant: g,
                        client_id: e.client_id.clone(),
                        issued_at: rfc3339(e.at_ms),
                        tokens_issued: 0,
                        ended_at: None,
                        ended_by: None,
                    },
                });
                entry.view.tokens_issued += 1;
            }
            ("token_revoked" | "refresh_reuse", Some(g)) => {
                if let Some(entry) = grants.get_mut(&g)
                    && entry.view.ended_at.is_none()
                {
                    entry.view.ended_at = Some(rfc3339(e.at_ms));
                    entry.view.ended_by = Some(if e.kind == "refresh_reuse" {
                        "refresh_reuse".into()
                    } else {
                        "revoked".into()
                    });
                }
            }
            ("logout", _) => {
                if let Some(sid) = detail(d, "sid") {
                    ended.entry(sid).or_insert((e.at_ms, detail(d, "cause")));
                }
            }
            _ => {}
        }
    }
    let mut sign_ins = Vec::new();
    let mut other = Vec::new();
    for (e, d) in rows.iter().zip(&parsed) {
        if e.kind != "login" || e.subject.as_deref() != Some(sub) {
            other.push(EventView::of(e));
            continue;
        }
        let session = detail(d, "sid")
            .filter(|_| e.outcome == "success")
            .map(|sid| {
                let end = ended.get(&sid);
                let mut under: Vec<GrantView> = Vec::new();
                for g in grants.values() {
                    if g.sid.as_deref() == Some(sid.as_str()) {
                        let mut v = g.view.clone();
                        // A logout revokes the grants of its session.
                        if v.ended_at.is_none()
                            && let Some((at, _)) = end
                        {
                            v.ended_at = Some(rfc3339(*at));
                            v.ended_by = Some("logout".into());
                        }
                        under.push(v);
                    }
                }
                SessionView {
                    sid: sid.clone(),
                    ended_at: end.map(|(at, _)| rfc3339(*at)),
                    ended_by: end.and_then(|(_, cause)| cause.clone()),
                    grants: under,
                }
            });
        sign_ins.push(SignInView {
            event: EventView::of(e),
            session,
        });
    }
    Timeline {
        sub: sub.to_string(),
        sign_ins,
        other,
        truncated,
    }
}
