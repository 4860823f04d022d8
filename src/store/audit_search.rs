//! The officers' queries over the audit trail: any combination of filters, in the chain's
//! order under a cursor (a place), so pages are stable while events keep arriving; and the
//! chain segment of a time range, for exports that verify on their own.

use sqlx::Row;

use super::StoreError;
use super::audit_log::{EVENT_COLUMNS, StoredEvent, read_event};

/// What to find. Empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Milliseconds since the epoch: `from_ms <= at_ms < to_ms`.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// A person: events whose subject or delegator is one of these accounts, or whose typed
    /// login is one of these keys (attempts on logins that match no account).
    pub subjects: Vec<String>,
    pub login_keys: Vec<String>,
    pub client_id: Option<String>,
    pub org_id: Option<String>,
    /// An inclusive range of `ip_key`s (one address, or a CIDR).
    pub ip_range: Option<(String, String)>,
    pub kinds: Vec<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub method: Option<String>,
    pub acr: Option<String>,
    pub upstream: Option<String>,
    /// Places strictly after (ascending) or before (descending) this one.
    pub cursor: Option<i64>,
    /// Newest first.
    pub descending: bool,
    /// Within this range of places (an export's segment).
    pub seq_range: Option<(i64, i64)>,
}

enum Bind {
    Int(i64),
    Text(String),
}

impl AuditQuery {
    /// The WHERE clause and its parameters.
    fn clause(&self) -> (String, Vec<Bind>) {
        let mut conds = vec!["seq IS NOT NULL".to_string()];
        let mut binds: Vec<Bind> = Vec::new();
        let param = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(v) = self.from_ms {
            conds.push(format!("at_ms >= {}", param(&mut binds, Bind::Int(v))));
        }
        if let Some(v) = self.to_ms {
            conds.push(format!("at_ms < {}", param(&mut binds, Bind::Int(v))));
        }
        if !self.subjects.is_empty() || !self.login_keys.is_empty() {
            let mut any = Vec::new();
            for s in &self.subjects {
                let p = param(&mut binds, Bind::Text(s.clone()));
                any.push(format!("subject = {p}"));
                let p = param(&mut binds, Bind::Text(s.clone()));
                any.push(format!("delegator = {p}"));
            }
            for k in &self.login_keys {
                let p = param(&mut binds, Bind::Text(k.clone()));
                any.push(format!("login_key = {p}"));
            }
            conds.push(format!("({})", any.join(" OR ")));
        }
        for (col, v) in [
            ("client_id", &self.client_id),
            ("org_id", &self.org_id),
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("method", &self.method),
            ("acr", &self.acr),
            ("upstream", &self.upstream),
        ] {
            if let Some(v) = v {
                conds.push(format!(
                    "{col} = {}",
                    param(&mut binds, Bind::Text(v.clone()))
                ));
            }
        }
        // One address is an equality, not a range of one: the (ip_key, seq) index then yields
        // its events already in the chain's order and a page stops early, instead of every
        // event of a busy address being fetched and sorted.
        if let Some((lo, _)) = self.ip_range.as_ref().filter(|(lo, hi)| lo == hi) {
            let p = param(&mut binds, Bind::Text(lo.clone()));
            conds.push(format!("ip_key = {p}"));
        } else if let Some((lo, hi)) = &self.ip_range {
            let lo = param(&mut binds, Bind::Text(lo.clone()));
            let hi = param(&mut binds, Bind::Text(hi.clone()));
            conds.push(format!("ip_key >= {lo} AND ip_key <= {hi}"));
        }
        if !self.kinds.is_empty() {
            let ps: Vec<String> = self
                .kinds
                .iter()
                .map(|k| param(&mut binds, Bind::Text(k.clone())))
                .collect();
            conds.push(format!("kind IN ({})", ps.join(", ")));
        }
        if let Some(c) = self.cursor {
            let op = if self.descending { "<" } else { ">" };
            conds.push(format!("seq {op} {}", param(&mut binds, Bind::Int(c))));
        }
        if let Some((lo, hi)) = self.seq_range {
            let lo = param(&mut binds, Bind::Int(lo));
            let hi = param(&mut binds, Bind::Int(hi));
            conds.push(format!("seq >= {lo} AND seq <= {hi}"));
        }
        (conds.join(" AND "), binds)
    }

    /// Only a time range (or nothing): the events of a stretch of the chain, whole.
    pub fn is_range_only(&self) -> bool {
        self.subjects.is_empty()
            && self.login_keys.is_empty()
            && self.client_id.is_none()
            && self.org_id.is_none()
            && self.ip_range.is_none()
            && self.kinds.is_empty()
            && self.outcome.is_none()
            && self.reason.is_none()
            && self.method.is_none()
            && self.acr.is_none()
            && self.upstream.is_none()
    }
}

impl super::audit_log::AuditLog<'_> {
    /// Up to `limit` events matching `q`, in the chain's order (or its reverse).
    pub async fn search(&self, q: &AuditQuery, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let (clause, binds) = q.clause();
        let order = if q.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE {clause} ORDER BY seq {order} LIMIT ${}",
            binds.len() + 1
        );
        // Planned for these very values, never from a plan cached for the statement: a cached
        // (generic) plan guesses how many rows a filter matches, and for `ip_key BETWEEN` or
        // `subject = ... OR delegator = ...` it guessed thousands and walked the whole chain
        // backwards hunting for 51 of a /24's few hundred events (seconds, not milliseconds).
        let mut query = sqlx::query(&sql).persistent(false);
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    /// The first and last places of the events stamped in `[from_ms, to_ms)`: the stretch of
    /// the chain a range export covers (what lies between belongs to it whatever its stamp:
    /// events are stamped when they happen and reach the chain a moment later). `None`: none.
    pub async fn segment(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let r = sqlx::query(
            "SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_events \
             WHERE seq IS NOT NULL AND at_ms >= $1 AND at_ms < $2",
        )
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX))
        .fetch_one(self.pool())
        .await?;
        let lo: Option<i64> = r.try_get("lo")?;
        let hi: Option<i64> = r.try_get("hi")?;
        Ok(lo.zip(hi))
    }
}
