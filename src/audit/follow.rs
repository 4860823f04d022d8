//! What follows an event once it is stored: the detection rules see it (their alerts are
//! audit events in turn), and the sinks receive it (alerts, or every event). It runs beside
//! the writer, fed after each commit without ever holding the writer up: a follower that falls
//! behind by [`BACKLOG`] batches misses the next ones (counted, logged), the trail does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::detect::{DetectSettings, Detector, new_network};
use super::sink::{Severity, SinkRecord, Sinks};
use super::{Audit, Event, Kind, Seq};
use crate::store::sql::Db;

/// Batches waiting for the follower at most.
pub const BACKLOG: usize = 256;

/// What follows the writer.
#[derive(Clone, Default)]
pub struct FollowSettings {
    pub detect: Option<DetectSettings>,
    pub sinks: Option<Sinks>,
    /// Every event to the sinks, not only alerts.
    pub sink_all: bool,
}

/// The writer's end of the follower.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Vec<(Seq, Event)>>,
    pub missed: Arc<AtomicU64>,
}

impl Feed {
    /// Hands over a stored batch; never waits.
    pub fn stored(&self, batch: Vec<(Seq, Event)>) {
        if let Err(mpsc::error::TrySendError::Full(b)) = self.tx.try_send(batch) {
            let before = self.missed.fetch_add(b.len() as u64, Ordering::Relaxed);
            if before == 0 {
                tracing::error!("the audit follower fell behind: detection and sinks miss events");
            }
        }
    }
}

pub fn channel() -> (Feed, mpsc::Receiver<Vec<(Seq, Event)>>) {
    let (tx, rx) = mpsc::channel(BACKLOG);
    (
        Feed {
            tx,
            missed: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

/// The event as the sinks receive it.
pub fn event_json(seq: Seq, e: &Event) -> Value {
    json!({
        "seq": seq,
        "at": crate::audit::timeline::rfc3339(e.at_ms),
        "kind": e.kind.as_str(),
        "outcome": e.outcome.as_str(),
        "reason": e.reason,
        "subject": e.subject,
        "client_id": e.client_id,
        "method": e.method,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "org_id": e.org_id,
        "acr": e.acr,
        "upstream": e.upstream,
        "delegator": e.delegator,
        "details": e.details,
    })
}

fn severity(e: &Event) -> Severity {
    if e.kind == Kind::Alert {
        return match e
            .details
            .as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(Value::as_str)
        {
            Some("alert") => Severity::Alert,
            Some("warning") => Severity::Warning,
            _ => Severity::Notice,
        };
    }
    match e.outcome {
        super::Outcome::Failure => Severity::Notice,
        super::Outcome::Success => Severity::Info,
    }
}

pub fn record(seq: Seq, e: &Event) -> SinkRecord {
    SinkRecord {
        seq,
        at_ms: e.at_ms,
        kind: e.kind.as_str().to_string(),
        severity: severity(e),
        event: event_json(seq, e),
    }
}

/// Runs until the writer stops feeding.
pub async fn run(
    db: Db,
    audit: Audit,
    settings: FollowSettings,
    mut rx: mpsc::Receiver<Vec<(Seq, Event)>>,
) {
    let mut detector = settings.detect.as_ref().map(Detector::new);
    let new_network = settings.detect.as_ref().is_some_and(|d| d.new_network);
    while let Some(batch) = rx.recv().await {
        let mut records = Vec::new();
        for (seq, e) in &batch {
            if settings.sink_all || e.kind == Kind::Alert {
                records.push(record(*seq, e));
            }
            let Some(d) = detector.as_mut() else { continue };
            let mut alerts = d.observe(*seq, e);
            if new_network {
                match new_network::check(&db, *seq, e).await {
                    Ok(Some(a)) => alerts.push(a),
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "the new-network rule could not ask the trail")
                    }
                }
            }
            for a in alerts {
                audit.enqueue(a.event()).await;
            }
        }
        if let Some(sinks) = &settings.sinks
            && !records.is_empty()
        {
            sinks.send(&records).await;
        }
    }
}
