//! The audit trail: every sign-in decision, token issuance, reuse detection and logout, with its
//! reason, as one ordered stream.
//!
//! Every event goes through one writer, which stores events in the order they reach it, in
//! batches, appending them to a hash chain (`chain`) whose head the database serialises, so
//! replicas sharing a database keep one order and one chain (while its queue is full, the
//! writer keeps two batches in the database at once, under the chain's lease: `burst`); signed
//! checkpoints of the head (`checkpoint`) fall due with the events or with time, and `verify`
//! walks it all. Two ways to hand the writer an event:
//! - [`Audit::write`] waits for the writer's acknowledgement: the caller answers only once its
//!   event is durable (sign-ins, logouts, security events), and learns when it could not be
//!   stored (the caller then fails, rather than act unrecorded);
//! - [`Audit::enqueue`] does not wait (token issuance on hot paths, failures): the writer keeps
//!   trying until the database takes it. The queue is bounded, so a slow database pushes back
//!   on requests instead of dropping events; on shutdown the writer drains it.

pub mod chain;
pub mod checkpoint;
pub mod detect;
pub mod export;
pub mod follow;
mod kind;
mod reason;
pub mod seed;
pub mod sink;
pub mod timeline;
pub mod verify;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

pub use checkpoint::{ChainSettings, Sealer};
pub use kind::{Kind, Outcome};
pub use reason::{Reason, ReasonCode};

use crate::clock;
use crate::store::StoreError;
use crate::store::audit_log::{self, Appended, AuditRow, ip_key};
use crate::store::sql::Db;

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub outcome: Outcome,
    pub reason: Option<&'static str>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub method: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Option<Value>,
    /// The organisation acted for.
    pub org_id: Option<String>,
    /// The assurance level reached (sign-ins).
    pub acr: Option<String>,
    /// The upstream identity provider (federated sign-ins).
    pub upstream: Option<String>,
    /// The keyed digest of the login typed (`LoginKey`), never the login itself.
    pub login_key: Option<String>,
    /// The account whose roles were delegated, for what is done under a delegation.
    pub delegator: Option<String>,
    pub at_ms: i64,
}

impl Event {
    pub fn new(kind: Kind, outcome: Outcome) -> Event {
        Event {
            kind,
            outcome,
            reason: None,
            subject: None,
            client_id: None,
            method: None,
            ip: None,
            user_agent: None,
            details: None,
            org_id: None,
            acr: None,
            upstream: None,
            login_key: None,
            delegator: None,
            at_ms: clock::now_millis(),
        }
    }
    /// Success or failure by `ok`.
    pub fn of(kind: Kind, ok: bool) -> Event {
        Event::new(kind, Outcome::of(ok))
    }
    pub fn reason(mut self, r: impl ReasonCode) -> Self {
        self.reason = Some(r.code());
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
    pub fn org(mut self, o: Option<impl Into<String>>) -> Self {
        self.org_id = o.map(Into::into);
        self
    }
    pub fn acr(mut self, a: Option<impl Into<String>>) -> Self {
        self.acr = a.map(Into::into);
        self
    }
    pub fn upstream(mut self, u: impl Into<String>) -> Self {
        self.upstream = Some(u.into());
        self
    }
    pub fn login_key(mut self, k: impl Into<String>) -> Self {
        self.login_key = Some(k.into());
        self
    }
    pub fn delegator(mut self, d: Option<impl Into<String>>) -> Self {
        self.delegator = d.map(Into::into);
        self
    }
    /// The same event as a success (built as a failure while its outcome was unknown).
    pub fn succeeded(mut self) -> Self {
        self.outcome = Outcome::Success;
        self
    }
    /// The same event as a failure.
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }
}

/// An event the caller waited for was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit trail is unavailable: {0}")]
    Unavailable(String),
}

/// Where an event stands in the trail: its place in the chain.
pub type Seq = i64;

const BATCH: usize = 1024;
/// The longest pause between attempts while the database refuses events.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// An event on its way to the writer; `ack` when its caller waits.
struct Queued {
    event: Event,
    ack: Option<oneshot::Sender<Result<Seq, AuditError>>>,
}

#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Queued>,
    /// For the events of background work that outlives the writer (a shutdown's last moments).
    db: Db,
    sealer: Arc<Sealer>,
}

pub struct AuditWorker {
    handle: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
    sinks: Option<sink::SinkWorker>,
    shutdown: Arc<Notify>,
}

/// Appends `events` to the chain in one transaction, in their order; their places. A
/// checkpoint stored with them wakes `export` (its copy goes out at once).
async fn insert(
    db: &Db,
    sealer: &Sealer,
    events: &[&Event],
    export: Option<&Notify>,
) -> Result<Vec<Seq>, StoreError> {
    let rows: Vec<AuditRow> = events.iter().map(|e| row(e)).collect();
    let appended = db
        .audit_log()
        .append(&rows, sealer, clock::now_millis())
        .await?;
    if let (Some(_), Some(export)) = (appended.checkpoint, export) {
        export.notify_one();
    }
    Ok(appended.seqs)
}

fn row(e: &Event) -> AuditRow<'_> {
    AuditRow {
        at_ms: e.at_ms,
        kind: e.kind.as_str(),
        outcome: e.outcome.as_str(),
        reason: e.reason,
        subject: e.subject.as_deref(),
        client_id: e.client_id.as_deref(),
        method: e.method.as_deref(),
        ip: e.ip.as_deref(),
        user_agent: e.user_agent.as_deref(),
        details: e.details.as_ref().map(|d| d.to_string()),
        org_id: e.org_id.as_deref(),
        acr: e.acr.as_deref(),
        upstream: e.upstream.as_deref(),
        login_key: e.login_key.as_deref(),
        delegator: e.delegator.as_deref(),
        ip_key: e.ip.as_deref().and_then(ip_key),
    }
}

/// Tries to store everything pending, in order. On success every waiting caller gets its
/// number. On failure the waiting callers are told (they will not act on an unrecorded event,
/// so their events leave the queue), and the rest stay, in order, for the next attempt.
async fn flush(
    db: &Db,
    sealer: &Sealer,
    feed: Option<&follow::Feed>,
    export: &Notify,
    pending: &mut Vec<Queued>,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let events: Vec<&Event> = pending.iter().map(|q| &q.event).collect();
    match insert(db, sealer, &events, Some(export)).await {
        Ok(seqs) => {
            acknowledge(std::mem::take(pending), seqs, feed);
            true
        }
        Err(e) => {
            refuse(pending, &e);
            false
        }
    }
}

/// A stored batch: each waiting caller gets its number, and the follower the events.
fn acknowledge(batch: Vec<Queued>, seqs: Vec<Seq>, feed: Option<&follow::Feed>) {
    let mut stored = Vec::with_capacity(if feed.is_some() { seqs.len() } else { 0 });
    for (q, seq) in batch.into_iter().zip(seqs) {
        if let Some(ack) = q.ack {
            let _ = ack.send(Ok(seq));
        }
        if feed.is_some() {
            stored.push((seq, q.event));
        }
    }
    if let Some(f) = feed {
        f.stored(stored);
    }
}

/// A batch the database refused: its waiting callers are told and leave it; the rest stay.
fn refuse(batch: &mut Vec<Queued>, e: &StoreError) {
    tracing::error!(error = %e, n = batch.len(), "audit write failed");
    let message = e.to_string();
    batch.retain_mut(|q| match q.ack.take() {
        Some(ack) => {
            let _ = ack.send(Err(AuditError::Unavailable(message.clone())));
            false
        }
        None => true,
    });
}

/// Batches in the database at once during a burst.
const DEPTH: usize = 2;
/// How long a burst keeps the chain's lease before letting a replica that waits for it in.
const LEASE_TURN: Duration = Duration::from_millis(500);

/// A batch staged during a burst, and the task that stores it.
struct InFlight {
    batch: Vec<Queued>,
    task: tokio::task::JoinHandle<Result<Appended, StoreError>>,
}

/// A full queue's way to the chain: under the chain's lease, [`DEPTH`] batches are in the
/// database at once, each linked after the one before it and inserted on its own connection
/// while that one commits, committed in their order (one waits for the one before; a batch
/// whose predecessor failed is given up). The database's work on the rows, most of an append,
/// then runs on two cores instead of one. Ends when the queue is empty, when a batch fails, or
/// after [`LEASE_TURN`]. The same outcome as [`flush`]: `false` when the database refused events
/// (their waiting callers are told), and whatever was not stored stays in `pending`, in order.
async fn burst(
    db: &Db,
    sealer: &Arc<Sealer>,
    feed: Option<&follow::Feed>,
    export: &Notify,
    pending: &mut Vec<Queued>,
    rx: &mut mpsc::Receiver<Queued>,
    closed: &mut bool,
) -> bool {
    let log = db.audit_log();
    let lease = match log.lease().await {
        Ok(Some(lease)) => lease,
        Ok(None) => return flush(db, sealer, feed, export, pending).await,
        Err(e) => {
            refuse(pending, &e);
            return false;
        }
    };
    let mut head = match log.head().await {
        Ok(head) => head,
        Err(e) => {
            refuse(pending, &e);
            return false;
        }
    };
    let started = std::time::Instant::now();
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(DEPTH);
    // The commit of the batch last staged: whether it holds (the next one waits for it).
    let mut before: Option<oneshot::Receiver<bool>> = None;
    // What failed or was given up, in order, to go back in front of the queue.
    let mut back: Vec<Queued> = Vec::new();
    let (mut failed, mut refused) = (false, false);
    loop {
        while !failed
            && in_flight.len() < DEPTH
            && !pending.is_empty()
            && started.elapsed() < LEASE_TURN
        {
            let batch: Vec<Queued> = pending.drain(..pending.len().min(BATCH)).collect();
            let rows: Vec<AuditRow> = batch.iter().map(|q| row(&q.event)).collect();
            let linked = audit_log::link(&head, &rows, &**sealer);
            drop(rows);
            let (seq, hash) = linked.head();
            (head.seq, head.hash) = (seq, hash.to_owned());
            let (done, next) = oneshot::channel();
            let wait = before.replace(next);
            let (db, sealer) = (db.clone(), sealer.clone());
            let task = tokio::spawn(async move {
                let staged = db.audit_log().stage(linked).await;
                let go = match wait {
                    Some(w) => w.await.unwrap_or(false),
                    None => true,
                };
                let r = match (staged, go) {
                    (Ok(s), true) => s.commit(&*sealer, clock::now_millis()).await,
                    (Ok(s), false) => {
                        let _ = s.abandon().await;
                        Err(StoreError::Conflict)
                    }
                    (Err(e), _) => Err(e),
                };
                let _ = done.send(r.is_ok());
                r
            });
            in_flight.push_back(InFlight { batch, task });
            take_queued(rx, pending, closed);
        }
        let Some(front) = in_flight.front_mut() else {
            break;
        };
        let room = BATCH.saturating_sub(pending.len());
        tokio::select! {
            r = &mut front.task => {
                let Some(InFlight { mut batch, .. }) = in_flight.pop_front() else { break };
                let r = r.unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
                match r {
                    Ok(appended) => {
                        if appended.checkpoint.is_some() {
                            export.notify_one();
                        }
                        acknowledge(batch, appended.seqs, feed);
                    }
                    // Given up behind a failure, or the head moved (the lease was lost): not
                    // refused, only not stored yet.
                    Err(StoreError::Conflict) => {
                        failed = true;
                        back.append(&mut batch);
                    }
                    Err(e) => {
                        failed = true;
                        refused = true;
                        refuse(&mut batch, &e);
                        back.append(&mut batch);
                    }
                }
            }
            n = rx.recv_many(pending, room), if room > 0 && !*closed => {
                if n == 0 {
                    *closed = true;
                }
            }
        }
    }
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "releasing the audit chain's lease failed; its connection is closed");
    }
    if !back.is_empty() {
        back.append(pending);
        *pending = back;
    }
    !refused
}

/// Takes what is already queued, up to a batch, without waiting.
fn take_queued(rx: &mut mpsc::Receiver<Queued>, pending: &mut Vec<Queued>, closed: &mut bool) {
    while pending.len() < BATCH {
        match rx.try_recv() {
            Ok(q) => pending.push(q),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                *closed = true;
                break;
            }
        }
    }
}

/// Why the writer woke.
enum Wake {
    Received(usize),
    Retry,
    Tick,
    Stop,
}

/// The chain's upkeep, on the writer's tick: a checkpoint when time has passed with events
/// since the last, the retention cut, and the copy of new checkpoints to the external place.
async fn upkeep(db: &Db, sealer: &Sealer, export: &Notify) {
    let now = clock::now_millis();
    let log = db.audit_log();
    if let Err(e) = log.checkpoint_if_due(sealer, now).await {
        tracing::warn!(error = %e, "audit checkpoint failed; retrying on the next tick");
    }
    if let Some(keep) = sealer.settings.retention_ms {
        match log.cut(now - keep, CUT_BATCH, sealer, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "audit events past retention cut off"),
            Err(e) => tracing::warn!(error = %e, "audit retention cut failed"),
        }
    }
    export.notify_one();
}

/// Chains the rows stored before the chain existed, in batches, before anything new.
async fn adopt_legacy(db: &Db, sealer: &Sealer) {
    let mut delay = Duration::from_millis(50);
    loop {
        match db.audit_log().adopt_legacy(sealer, 1_000).await {
            Ok(0) => return,
            Ok(n) => tracing::info!(events = n, "older audit events chained"),
            Err(e) => {
                tracing::error!(error = %e, "chaining older audit events failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// Copies new checkpoints to the external place whenever told, until the writer stops.
async fn exporter(db: Db, external: checkpoint::External, wake: Arc<Notify>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        wake.notified().await;
        if let Err(e) = checkpoint::export(&db, &external, &http).await {
            tracing::warn!(error = %e, "copying audit checkpoints failed; retrying on the next tick");
        }
    }
}

/// Rows one retention cut removes at most (the next tick takes the rest).
const CUT_BATCH: i64 = 50_000;

/// The writer: events in arrival order, stored in batches of at most [`BATCH`]. While the
/// database refuses them it pauses between attempts (doubling up to [`MAX_RETRY_DELAY`]); a
/// full batch stops it taking more, so requests feel the pressure instead of memory growing.
async fn run(
    db: Db,
    sealer: Arc<Sealer>,
    feed: Option<follow::Feed>,
    mut rx: mpsc::Receiver<Queued>,
    stop: Arc<Notify>,
) {
    adopt_legacy(&db, &sealer).await;
    let export = Arc::new(Notify::new());
    let exporter = sealer
        .settings
        .external
        .clone()
        .map(|ext| tokio::spawn(exporter(db.clone(), ext, export.clone())));
    let mut tick = tokio::time::interval(tick_period(&sealer.settings));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Queued> = Vec::with_capacity(BATCH);
    let mut delay = Duration::ZERO;
    let (mut stopping, mut closed) = (false, false);
    loop {
        if closed && pending.is_empty() {
            break;
        }
        let room = BATCH.saturating_sub(pending.len());
        let woke = tokio::select! {
            n = rx.recv_many(&mut pending, room), if room > 0 && !closed => Wake::Received(n),
            _ = tokio::time::sleep(delay), if !pending.is_empty() => Wake::Retry,
            _ = tick.tick(), if !stopping => Wake::Tick,
            _ = stop.notified(), if !stopping => Wake::Stop,
        };
        match woke {
            Wake::Tick => {
                upkeep(&db, &sealer, &export).await;
                if pending.is_empty() {
                    continue;
                }
            }
            // Take what was sent before the stop, then finish.
            Wake::Stop => {
                stopping = true;
                rx.close();
                continue;
            }
            Wake::Received(0) => {
                closed = true;
                continue;
            }
            Wake::Received(_) | Wake::Retry => {}
        }
        // A full queue: the events come faster than one append at a time stores them.
        let stored = if pending.len() >= BATCH {
            let (feed, closed) = (feed.as_ref(), &mut closed);
            burst(&db, &sealer, feed, &export, &mut pending, &mut rx, closed).await
        } else {
            flush(&db, &sealer, feed.as_ref(), &export, &mut pending).await
        };
        delay = if stored {
            Duration::ZERO
        } else {
            (delay * 2).clamp(Duration::from_millis(50), MAX_RETRY_DELAY)
        };
    }
    // The last events' checkpoint, and its copy, before the process goes.
    if let Err(e) = db
        .audit_log()
        .checkpoint_if_due(&*sealer, clock::now_millis())
        .await
    {
        tracing::warn!(error = %e, "the final audit checkpoint failed");
    }
    if let (Some(task), Some(ext)) = (exporter, sealer.settings.external.as_ref()) {
        task.abort();
        let http = reqwest::Client::new();
        if let Err(e) = checkpoint::export(&db, ext, &http).await {
            tracing::warn!(error = %e, "copying audit checkpoints failed");
        }
    }
}

/// How often the writer looks after the chain: often enough for the checkpoint period, at most
/// once a second, at least once a minute.
fn tick_period(s: &ChainSettings) -> Duration {
    Duration::from_millis((s.checkpoint_ms / 4).clamp(1_000, 60_000) as u64)
}

impl Audit {
    /// A writer whose chain is never checkpointed (no key): the command line's, and tests'.
    pub fn start(db: Db) -> (Audit, AuditWorker) {
        Audit::start_with(db, Sealer::unsigned(ChainSettings::default()))
    }

    /// A writer whose checkpoints are signed with `sealer`'s keys.
    pub fn start_with(db: Db, sealer: Sealer) -> (Audit, AuditWorker) {
        Audit::start_following(db, sealer, None)
    }

    /// The server's writer: checkpoints signed with `sealer`'s keys, and, with `follow`,
    /// detection and sinks fed with what it stores.
    pub fn start_following(
        db: Db,
        sealer: Sealer,
        follow: Option<follow::FollowSettings>,
    ) -> (Audit, AuditWorker) {
        let (tx, rx) = mpsc::channel::<Queued>(4096);
        let shutdown = Arc::new(Notify::new());
        let sealer = Arc::new(sealer);
        let (feed, follow_rx) = match &follow {
            Some(_) => {
                let (f, r) = follow::channel();
                (Some(f), Some(r))
            }
            None => (None, None),
        };
        let handle = tokio::spawn(run(db.clone(), sealer.clone(), feed, rx, shutdown.clone()));
        let audit = Audit {
            tx,
            db: db.clone(),
            sealer,
        };
        let follower = match (follow, follow_rx) {
            (Some(settings), Some(rx)) => {
                Some(tokio::spawn(follow::run(db, audit.clone(), settings, rx)))
            }
            _ => None,
        };
        (
            audit,
            AuditWorker {
                handle,
                follower,
                sinks: None,
                shutdown,
            },
        )
    }

    /// Signs a checkpoint of the head now, if it moved since the last (an export wants one
    /// covering its events).
    pub async fn checkpoint_now(&self) -> Result<Option<i64>, StoreError> {
        let mut now = (*self.sealer).clone();
        now.settings.checkpoint_events = 1;
        self.db
            .audit_log()
            .checkpoint_if_due(&now, clock::now_millis())
            .await
    }

    /// Hands the event to the writer and waits until it is stored; its sequence number, or the
    /// error that kept it out (the caller must then not act as if it were recorded).
    pub async fn write(&self, event: Event) -> Result<Seq, AuditError> {
        log(&event);
        let (ack, done) = oneshot::channel();
        let queued = Queued {
            event,
            ack: Some(ack),
        };
        self.tx
            .send(queued)
            .await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError::Unavailable("the audit writer has stopped".into()))?
    }

    /// Hands the event to the writer without waiting for it to be stored (it will be, in its
    /// order); waits only for room in the queue.
    pub async fn enqueue(&self, event: Event) {
        log(&event);
        let queued = Queued { event, ack: None };
        if let Err(mpsc::error::SendError(q)) = self.tx.send(queued).await {
            // Only after the writer stopped, at the very end of a shutdown: stored directly,
            // after everything the writer stored.
            let mut delay = Duration::from_millis(50);
            while let Err(e) = insert(&self.db, &self.sealer, &[&q.event], None).await {
                tracing::error!(error = %e, "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

fn log(e: &Event) {
    tracing::info!(
        target: "audit",
        kind = e.kind.as_str(),
        outcome = e.outcome.as_str(),
        reason = e.reason,
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
        // The writer gone, the follower's feed is closed: it finishes what it was given (its
        // alerts then go straight to the database, after everything the writer stored).
        if let Some(f) = self.follower {
            let _ = f.await;
        }
        // What the sinks have not delivered stays in their spools for the next start.
        if let Some(s) = self.sinks {
            s.finish().await;
        }
    }

    /// Stops the sinks' delivery with the writer.
    pub fn with_sinks(mut self, w: sink::SinkWorker) -> Self {
        self.sinks = Some(w);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

    /// The stored (id, kind, subject) rows in their sequence.
    async fn stored(db: &Db) -> Vec<(i64, String, String)> {
        db.audit_log()
            .after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.kind, e.subject.unwrap_or_default()))
            .collect()
    }

    fn event(n: usize) -> Event {
        Event::new(Kind::Login, Outcome::Failure).subject(Some(format!("e{n}")))
    }

    #[tokio::test]
    async fn events_are_stored_in_the_order_they_were_handed_over() {
        for t in test_dbs().await {
            events_are_stored_in_the_order_they_were_handed_over_on(t.db.clone()).await;
        }
    }

    async fn events_are_stored_in_the_order_they_were_handed_over_on(db: Db) {
        let (audit, worker) = Audit::start(db.clone());
        for n in 0..5 {
            audit.enqueue(event(n)).await;
        }
        let seq = audit.write(event(5)).await.expect("stored");
        audit.enqueue(event(6)).await;
        worker.finish().await;
        let rows = stored(&db).await;
        let reasons: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(reasons, ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]);
        assert_eq!(rows[5].0, seq, "the acknowledged number is the stored one");
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(rows.iter().all(|r| r.1 == "login"));
    }

    /// While the database refuses events, a caller who waits is told (and its event is not
    /// stored later behind its back); queued events are kept, in order, and stored once the
    /// database takes them again.
    #[tokio::test]
    async fn refused_events_fail_their_waiting_caller_and_queued_ones_wait() {
        for t in test_dbs().await {
            refused_events_fail_their_waiting_caller_and_queued_ones_wait_on(t.db.clone()).await;
        }
    }

    async fn refused_events_fail_their_waiting_caller_and_queued_ones_wait_on(db: Db) {
        let (audit, worker) = Audit::start(db.clone());
        audit.write(event(0)).await.expect("stored");
        db.tamper("ALTER TABLE audit_events RENAME TO audit_events_away")
            .await;
        audit.enqueue(event(1)).await;
        let refused = audit.write(event(2)).await;
        assert!(
            matches!(refused, Err(AuditError::Unavailable(_))),
            "{refused:?}"
        );
        audit.enqueue(event(3)).await;
        db.tamper("ALTER TABLE audit_events_away RENAME TO audit_events")
            .await;
        audit.write(event(4)).await.expect("stored again");
        worker.finish().await;
        let reasons: Vec<String> = stored(&db).await.into_iter().map(|r| r.2).collect();
        assert_eq!(reasons, ["e0", "e1", "e3", "e4"]);
    }

    #[tokio::test]
    async fn a_shutdown_stores_everything_queued() {
        for t in test_dbs().await {
            a_shutdown_stores_everything_queued_on(t.db.clone()).await;
        }
    }

    async fn a_shutdown_stores_everything_queued_on(db: Db) {
        let (audit, worker) = Audit::start(db.clone());
        for n in 0..600 {
            audit.enqueue(event(n)).await;
        }
        worker.finish().await;
        assert_eq!(stored(&db).await.len(), 600);
        assert!(
            audit.write(event(600)).await.is_err(),
            "the writer has stopped"
        );
        audit.enqueue(event(601)).await;
        let last = stored(&db).await.pop().expect("rows");
        assert_eq!(
            last.2, "e601",
            "background work's late events are still stored"
        );
    }

    /// The batch travels to the database as JSON: whatever a field holds comes back as it was
    /// handed over (the links are over these very texts), and the integers stay integers.
    #[tokio::test]
    async fn every_text_comes_back_as_it_was_handed_over() {
        for t in test_dbs().await {
            every_text_comes_back_as_it_was_handed_over_on(t.db.clone()).await;
        }
    }

    async fn every_text_comes_back_as_it_was_handed_over_on(db: Db) {
        let odd =
            "quote \" backslash \\ slash / tab \t newline \n \u{1} Ольга 𝄞 {\"a\":[1]} null 1e3 ";
        let mut e = Event::new(Kind::Login, Outcome::Failure)
            .subject(Some(odd))
            .client(odd)
            .method("null")
            .details(serde_json::json!({"k": odd, "n": -9_007_199_254_740_993i64}))
            .org(Some("0"))
            .acr(Some(" "))
            .upstream(odd)
            .login_key(odd)
            .delegator(Some("[1,2]"));
        e.ip = Some("2001:db8::1".into());
        e.user_agent = Some(odd.into());
        e.at_ms = i64::MAX - 1;
        let expected = e.clone();
        let (audit, worker) = Audit::start(db.clone());
        let seq = audit.write(e).await.expect("stored");
        worker.finish().await;
        let got = db.audit_log().after(seq - 1, 1).await.unwrap().remove(0);
        let row = row(&expected);
        assert_eq!(got.texts(), row.texts());
        assert_eq!((got.seq, got.at_ms), (seq, i64::MAX - 1));
        assert_eq!(got.details.as_deref(), row.details.as_deref());
        assert_eq!(got.hash.as_deref().map(str::len), Some(64));
    }
    /// A database text cannot hold NUL (PostgreSQL refuses it, in `text` and in `jsonb`): an
    /// event carrying one (a header or form field of a request) would fail its batch on every
    /// attempt and hold back everything queued behind it. It is stored with U+FFFD in its
    /// place, and the link is over what is stored.
    #[tokio::test]
    async fn a_nul_in_an_event_is_stored_replaced_and_holds_nothing_back() {
        for t in test_dbs().await {
            a_nul_in_an_event_is_stored_replaced_and_holds_nothing_back_on(t.db.clone()).await;
        }
    }

    async fn a_nul_in_an_event_is_stored_replaced_and_holds_nothing_back_on(db: Db) {
        let (audit, worker) = Audit::start(db.clone());
        let mut e = event(0).client("app\0").login_key("\0");
        e.user_agent = Some("curl\0/8".into());
        e.details = Some(serde_json::json!({ "redirect_uri": "https://a\0b" }));
        audit.enqueue(e).await;
        let after = audit
            .write(event(1))
            .await
            .expect("the next event is stored");
        worker.finish().await;
        let got = db.audit_log().after(after - 2, 1).await.unwrap().remove(0);
        assert_eq!(got.client_id.as_deref(), Some("app\u{FFFD}"));
        assert_eq!(got.login_key.as_deref(), Some("\u{FFFD}"));
        assert_eq!(got.user_agent.as_deref(), Some("curl\u{FFFD}/8"));
        let details: Value = serde_json::from_str(got.details.as_deref().unwrap()).unwrap();
        assert_eq!(
            details["redirect_uri"], "https://a\0b",
            "JSON escapes it: kept"
        );
        assert!(
            verify::holds_at(&got, after - 1),
            "linked over the stored texts"
        );
    }

    /// Events faster than one append at a time stores them: on PostgreSQL the writer keeps two
    /// batches in the database at once under the chain's lease. Still one chain, in the order
    /// handed over, and each waiting caller learns its own place.
    #[tokio::test]
    async fn a_full_queue_is_stored_in_order_in_one_chain() {
        for t in test_dbs().await {
            a_full_queue_is_stored_in_order_in_one_chain_on(t.db.clone()).await;
        }
    }

    async fn a_full_queue_is_stored_in_order_in_one_chain_on(db: Db) {
        let (audit, worker) = Audit::start(db.clone());
        let mut waiting = Vec::new();
        for n in 0..6_000 {
            if n % 1_000 == 999 {
                let (audit, e) = (audit.clone(), event(n));
                waiting.push((n, tokio::spawn(async move { audit.write(e).await })));
            } else {
                audit.enqueue(event(n)).await;
            }
        }
        let mut places = Vec::new();
        for (n, w) in waiting {
            places.push((n, w.await.unwrap().expect("stored")));
        }
        worker.finish().await;
        let rows = db.audit_log().after(0, 10_000).await.unwrap();
        let subjects: Vec<String> = rows.iter().map(|r| r.subject.clone().unwrap()).collect();
        let mut all = subjects.clone();
        all.sort();
        let mut expected: Vec<String> = (0..6_000).map(|n| format!("e{n}")).collect();
        expected.sort();
        assert_eq!(all, expected, "every event once");
        // The waiting callers hand theirs over from tasks of their own, at their moment; the
        // queued ones keep the order they were handed over in.
        let queued: Vec<&String> = subjects.iter().filter(|s| !s.ends_with("999")).collect();
        let handed: Vec<String> = (0..6_000)
            .filter(|n| n % 1_000 != 999)
            .map(|n| format!("e{n}"))
            .collect();
        assert!(queued.iter().zip(&handed).all(|(a, b)| *a == b) && queued.len() == handed.len());
        for (n, seq) in places {
            assert_eq!(rows[seq as usize - 1].subject, Some(format!("e{n}")));
        }
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.seq, i as i64 + 1, "dense places");
            assert!(verify::holds_at(r, r.seq), "the link of {} holds", r.seq);
            if i > 0 {
                assert_eq!(r.prev_hash, rows[i - 1].hash, "linked to the one before");
            }
        }
    }
}
