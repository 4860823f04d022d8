//! The audit trail: every sign-in decision, token issuance, reuse detection and logout, with its
//! reason. Two ways in:
//! - `write` stores the event before the caller answers (sign-ins, logouts, security events);
//! - `enqueue` hands it to a batching writer (token issuance on hot paths). The channel is
//!   bounded, so a slow database pushes back on requests instead of dropping events; on shutdown
//!   the writer drains everything queued before the process exits.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::clock;
use crate::store::sql::Db;

#[derive(Debug, Clone, Default)]
pub struct Event {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub method: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Option<Value>,
    pub at_ms: i64,
}

impl Event {
    pub fn new(kind: &'static str, outcome: &'static str) -> Event {
        Event {
            kind,
            outcome,
            at_ms: clock::now_millis(),
            ..Event::default()
        }
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
    pub fn subject(mut self, s: Option<impl Into<String>>) -> Self {
        self.subject = s.map(Into::into);
        self
    }
    pub fn client(mut self, c: impl Into<String>) -> Self {
        self.client_id = Some(c.into());
        self
    }
    pub fn method(mut self, m: impl Into<String>) -> Self {
        self.method = Some(m.into());
        self
    }
    pub fn from(mut self, meta: &crate::web::RequestMeta) -> Self {
        self.ip = Some(meta.ip.clone());
        self.user_agent = meta.user_agent.clone();
        self
    }
    pub fn details(mut self, d: Value) -> Self {
        self.details = Some(d);
        self
    }
}

const BATCH: usize = 256;

#[derive(Clone)]
pub struct Audit {
    db: Db,
    tx: mpsc::Sender<Event>,
}

pub struct AuditWorker {
    handle: tokio::task::JoinHandle<()>,
    shutdown: Arc<Notify>,
}

async fn insert(db: &Db, events: &[Event]) -> Result<(), sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events (at_ms, kind, outcome, reason, subject, client_id, method, ip, user_agent, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.at_ms)
        .bind(e.kind)
        .bind(e.outcome)
        .bind(&e.reason)
        .bind(&e.subject)
        .bind(&e.client_id)
        .bind(&e.method)
        .bind(&e.ip)
        .bind(&e.user_agent)
        .bind(e.details.as_ref().map(|d| d.to_string()))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Writes a batch, retrying until the database takes it: an event is never dropped.
async fn insert_retrying(db: &Db, events: &[Event]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match insert(db, events).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, n = events.len(), "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl Audit {
    pub fn start(db: Db) -> (Audit, AuditWorker) {
        let (tx, mut rx) = mpsc::channel::<Event>(4096);
        let shutdown = Arc::new(Notify::new());
        let stop = shutdown.clone();
        let wdb = db.clone();
        let handle = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => {
                        if n == 0 { break; }
                        insert_retrying(&wdb, &batch).await;
                        batch.clear();
                    }
                    _ = stop.notified() => {
                        rx.close();
                        while rx.recv_many(&mut batch, BATCH).await > 0 {
                            insert_retrying(&wdb, &batch).await;
                            batch.clear();
                        }
                        break;
                    }
                }
            }
        });
        (Audit { db, tx }, AuditWorker { handle, shutdown })
    }

    /// Stores the event now; the caller answers only after it is durable.
    pub async fn write(&self, event: Event) -> Result<(), sqlx::Error> {
        log(&event);
        insert(&self.db, std::slice::from_ref(&event)).await
    }

    /// Queues the event for the batching writer, waiting for room if the queue is full.
    pub async fn enqueue(&self, event: Event) {
        log(&event);
        if let Err(mpsc::error::SendError(event)) = self.tx.send(event).await {
            // Only after shutdown began: write directly rather than lose it.
            insert_retrying(&self.db, std::slice::from_ref(&event)).await;
        }
    }
}

fn log(e: &Event) {
    tracing::info!(
        target: "audit",
        kind = e.kind,
        outcome = e.outcome,
        reason = e.reason.as_deref(),
        subject = e.subject.as_deref(),
        client_id = e.client_id.as_deref(),
        method = e.method.as_deref(),
        ip = e.ip.as_deref(),
    );
}

impl AuditWorker {
    /// Drains the queue into the database and stops.
    pub async fn finish(self) {
        self.shutdown.notify_one();
        let _ = self.handle.await;
    }
}
