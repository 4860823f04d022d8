//! The audit log aggregate: events in one order, numbered by the database's own sequence
//! (`audit_events.id`), so replicas sharing a database keep one order. What an event is
//! (kinds, outcomes, reasons) and the one writer are `audit`'s.

use sqlx::Row;

use super::StoreError;
use super::sql::Db;

/// An event as stored. `details` is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow<'a> {
    pub at_ms: i64,
    pub kind: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub method: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: Option<String>,
}

/// A stored event read back, with its number in the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub method: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// JSON.
    pub details: Option<String>,
}

/// The audit log of a database: `db.audit_log()`.
pub struct AuditLog<'a> {
    db: &'a Db,
}

impl Db {
    pub fn audit_log(&self) -> AuditLog<'_> {
        AuditLog { db: self }
    }
}

impl AuditLog<'_> {
    /// Stores `events` in one transaction, in their order; their sequence numbers.
    pub async fn append(&self, events: &[AuditRow<'_>]) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let mut seqs = Vec::with_capacity(events.len());
        for e in events {
            let row = sqlx::query(
                "INSERT INTO audit_events (at_ms, kind, outcome, reason, subject, client_id, method, ip, user_agent, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(e.at_ms)
            .bind(e.kind)
            .bind(e.outcome)
            .bind(e.reason)
            .bind(e.subject)
            .bind(e.client_id)
            .bind(e.method)
            .bind(e.ip)
            .bind(e.user_agent)
            .bind(&e.details)
            .fetch_one(&mut *tx)
            .await?;
            seqs.push(row.try_get::<i64, _>(0)?);
        }
        tx.commit().await?;
        Ok(seqs)
    }

    /// Up to `limit` events after the sequence number `after`, in order.
    pub async fn after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, kind, outcome, reason, subject, client_id, method, ip, user_agent, details \
             FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        let read = |r: &sqlx::any::AnyRow| -> Result<StoredEvent, sqlx::Error> {
            Ok(StoredEvent {
                seq: r.try_get("id")?,
                at_ms: r.try_get("at_ms")?,
                kind: r.try_get("kind")?,
                outcome: r.try_get("outcome")?,
                reason: r.try_get("reason")?,
                subject: r.try_get("subject")?,
                client_id: r.try_get("client_id")?,
                method: r.try_get("method")?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
                details: r.try_get("details")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

    fn row<'a>(kind: &'a str, ip: Option<&'a str>, details: Option<&str>) -> AuditRow<'a> {
        AuditRow {
            at_ms: 7,
            kind,
            outcome: "failure",
            reason: Some("wrong_password"),
            subject: Some("a"),
            client_id: Some("rp"),
            method: Some("password"),
            ip,
            user_agent: Some("curl/8"),
            details: details.map(str::to_string),
        }
    }

    /// Every column written is read back, in the order of the sequence, from any point in it.
    #[tokio::test]
    async fn events_read_back_whole_and_in_order() {
        for t in test_dbs().await {
            let log = t.db.audit_log();
            let seqs = log
                .append(&[
                    row("login", Some("203.0.113.7"), Some(r#"{"n":1}"#)),
                    row("logout", None, None),
                ])
                .await
                .unwrap();
            assert!(seqs[0] < seqs[1], "{seqs:?}");
            let all = log.after(0, 10).await.unwrap();
            assert_eq!(
                all[0],
                StoredEvent {
                    seq: seqs[0],
                    at_ms: 7,
                    kind: "login".into(),
                    outcome: "failure".into(),
                    reason: Some("wrong_password".into()),
                    subject: Some("a".into()),
                    client_id: Some("rp".into()),
                    method: Some("password".into()),
                    ip: Some("203.0.113.7".into()),
                    user_agent: Some("curl/8".into()),
                    details: Some(r#"{"n":1}"#.into()),
                }
            );
            assert_eq!(
                (all[1].ip.as_deref(), all[1].details.as_deref()),
                (None, None)
            );
            let rest = log.after(seqs[0], 10).await.unwrap();
            assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), [seqs[1]]);
            assert_eq!(log.after(0, 1).await.unwrap().len(), 1, "the limit");
        }
    }
}
