//! Delivery of audit records (alerts, and optionally every event) to a SIEM: RFC 5424 syslog
//! over TCP or TLS, and a signed HTTPS webhook.
//!
//! **Spool.** Each configured sink has its own queue on disk, `spool_dir/<sink>/`, so a SIEM
//! that is down or slow never holds up sign-ins and never loses what was handed over:
//! - segments `seg-<first index, 20 digits>.log`, appended only, holding frames of
//!   `u32 BE length | u32 BE CRC-32C of the payload | payload` where the payload is a
//!   [`SinkRecord`] as JSON; records are numbered consecutively across segments, and a
//!   segment takes no appends past about an eighth of the bound (512 B to 8 MiB);
//! - `cursor`: the index of the first record not known delivered, in decimal, replaced
//!   atomically (written to `cursor.tmp`, fsynced, renamed, directory fsynced).
//!
//! [`Sinks::send`] writes and fsyncs the frames before it returns (on the blocking pool, never
//! waiting on the network). On start each segment is read through: a frame cut short or
//! failing its checksum is a write torn by a crash, and the file is cut back to the last good
//! frame, and appends go to a new segment; segments wholly behind the cursor are deleted, as
//! they are during delivery.
//! Memory stays bounded: only a batch is read into memory, never the spool.
//!
//! **Order and at-least-once.** One task a sink reads the spool in order and has one batch
//! in flight (up to 32 records for syslog, one for the webhook); it moves the cursor only after
//! the SIEM took the batch, and retries the same batch, with backoff from 100 ms doubling up to
//! [`SinkSettings::retry_cap`], until it does. A crash between delivery and the cursor update
//! sends a batch again; nothing is skipped (except a record whose checksum holds but which no
//! longer reads as a [`SinkRecord`], from another version: it is logged and passed over, as it
//! could never be delivered). Records from one caller keep the caller's order
//! (the audit writer is that one caller, in `seq` order). Syslog over TCP has no
//! acknowledgement, so there "taken" means written to a connection the server had not closed.
//!
//! **Bound.** A sink's segment files never exceed `spool_max_bytes`: a record that does not
//! fit is refused for that sink and counted ([`Sinks::dropped`]); refusal then lasts until the
//! spool has drained to half the bound, so an overflow costs one gap in the stream rather than a
//! scatter of them, and is logged once at its start and once at its end. A spool directory
//! belongs to one running instance.

mod spool;
mod syslog;
#[cfg(test)]
mod tests;
mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use spool::{Spool, Spooled};
use syslog::SyslogClient;
use webhook::WebhookClient;

/// One record for the SIEM: an audit event or an alert, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkRecord {
    /// The event's place in the audit chain (unique, increasing per instance).
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// E.g. "login", "alert".
    pub kind: String,
    pub severity: Severity,
    /// The whole event as a JSON object.
    pub event: serde_json::Value,
}

/// RFC 5424 §6.2.1 severities (those vhod uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
}

impl Severity {
    pub fn as_code(self) -> u8 {
        match self {
            Severity::Alert => 1,
            Severity::Critical => 2,
            Severity::Error => 3,
            Severity::Warning => 4,
            Severity::Notice => 5,
            Severity::Info => 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// `host:port`.
    pub addr: String,
    pub tls: bool,
    /// PEM roots for TLS; none: the system's native roots.
    pub ca_file: Option<PathBuf>,
    /// The name the TLS certificate must carry; by default the host of `addr`.
    pub server_name: Option<String>,
}

#[derive(Clone)]
pub struct WebhookSettings {
    pub url: url::Url,
    /// The HMAC key of `Vhod-Signature`.
    pub secret: String,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("host", &self.url.host_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub syslog: Option<SyslogSettings>,
    pub webhook: Option<WebhookSettings>,
    /// Each sink spools under `spool_dir/<sink name>/`.
    pub spool_dir: PathBuf,
    /// The bound of each sink's spool.
    pub spool_max_bytes: u64,
    /// Syslog's HOSTNAME.
    pub hostname: String,
    /// The longest wait between delivery attempts.
    pub retry_cap: Duration,
}

impl SinkSettings {
    /// No sink configured yet; the default bound and retry cap.
    pub fn new(spool_dir: impl Into<PathBuf>, hostname: impl Into<String>) -> SinkSettings {
        SinkSettings {
            syslog: None,
            webhook: None,
            spool_dir: spool_dir.into(),
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            hostname: hostname.into(),
            retry_cap: DEFAULT_RETRY_CAP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Syslog,
    Webhook,
}

impl SinkKind {
    /// Also the spool's directory name.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Syslog => "syslog",
            SinkKind::Webhook => "webhook",
        }
    }
}

/// One sink's counters, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    pub kind: SinkKind,
    /// Spooled, not yet delivered.
    pub pending: u64,
    /// Refused since start (spool full, or lost to a spool write error).
    pub dropped: u64,
    /// Bytes of the spool's segment files.
    pub spool_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("{what} {addr}: {source}")]
    Io {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{what} {addr}: timed out")]
    Timeout { what: &'static str, addr: String },
    #[error("webhook {host}: {source}")]
    Http {
        host: String,
        source: reqwest::Error,
    },
    #[error("webhook {host} answered {status}")]
    Status { host: String, status: u16 },
}

/// Where records go: cheap to clone; [`Sinks::send`] is all the audit writer needs.
#[derive(Clone)]
pub struct Sinks {
    sinks: Arc<[Sink]>,
}

struct Sink {
    kind: SinkKind,
    spool: Arc<Spool>,
    wake: Arc<Notify>,
}

/// The delivery tasks. Dropping it stops them as [`SinkWorker::finish`] does, without waiting.
#[must_use = "dropping the worker stops delivery"]
pub struct SinkWorker {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

enum Transport {
    Syslog(Box<SyslogClient>),
    Webhook(Box<WebhookClient>),
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const SYSLOG_BATCH: usize = 32;
/// A batch stops growing past this many payload bytes (one record always goes).
const BATCH_BYTES: usize = 1 << 20;

impl Sinks {
    /// Opens (creating) each sink's spool under `spool_dir/<sink name>/`, recovers what a
    /// previous run left undelivered, and starts one delivery task per configured sink, on the
    /// current tokio runtime. With no sink configured, [`Sinks::send`] does nothing. Reading
    /// the spools back blocks on the file system, as the rest of start-up does.
    pub fn start(settings: SinkSettings) -> anyhow::Result<(Sinks, SinkWorker)> {
        let mut transports = Vec::new();
        if let Some(s) = &settings.syslog {
            let client = SyslogClient::new(s, &settings.hostname).context("the syslog sink")?;
            transports.push((SinkKind::Syslog, Transport::Syslog(Box::new(client))));
        }
        if let Some(w) = &settings.webhook {
            let client = WebhookClient::new(w).context("the webhook sink")?;
            transports.push((SinkKind::Webhook, Transport::Webhook(Box::new(client))));
        }
        let (stop, _) = watch::channel(false);
        if transports.is_empty() {
            let sinks = Sinks {
                sinks: Arc::from(Vec::new()),
            };
            return Ok((
                sinks,
                SinkWorker {
                    stop,
                    tasks: Vec::new(),
                },
            ));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .context("the SIEM sinks start inside a tokio runtime")?;
        // Every spool opens before any task starts, so a failure leaves nothing running.
        let mut opened = Vec::new();
        for (kind, transport) in transports {
            let dir = settings.spool_dir.join(kind.name());
            let spool = Spool::open(kind.name(), &dir, settings.spool_max_bytes)
                .with_context(|| format!("opening the SIEM spool {}", dir.display()))?;
            opened.push((kind, Arc::new(spool), transport));
        }
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for (kind, spool, transport) in opened {
            let wake = Arc::new(Notify::new());
            let delivery = Delivery {
                kind,
                spool: spool.clone(),
                transport,
                wake: wake.clone(),
                stop: stop.subscribe(),
                retry_cap: settings.retry_cap.max(FIRST_RETRY),
            };
            tasks.push(runtime.spawn(delivery.run()));
            sinks.push(Sink { kind, spool, wake });
        }
        Ok((
            Sinks {
                sinks: Arc::from(sinks),
            },
            SinkWorker { stop, tasks },
        ))
    }

    /// Appends the records to every sink's spool, durably, and wakes delivery. Never waits on
    /// the network. A full spool refuses them for its sink (see [`Sinks::dropped`]).
    pub async fn send(&self, records: &[SinkRecord]) {
        if self.sinks.is_empty() || records.is_empty() {
            return;
        }
        let mut payloads = Vec::with_capacity(records.len());
        for r in records {
            match serde_json::to_vec(r) {
                Ok(p) => payloads.push(p),
                Err(e) => {
                    tracing::error!(seq = r.seq, error = %e, "audit record not serialisable for the SIEM")
                }
            }
        }
        let sinks = self.sinks.clone();
        // The appends finish even if this future is dropped: once begun, a record is spooled.
        let appended = tokio::task::spawn_blocking(move || {
            sinks
                .iter()
                .map(|s| s.spool.append(&payloads))
                .collect::<Vec<_>>()
        })
        .await;
        let results = match appended {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the SIEM spool writer failed");
                return;
            }
        };
        for (sink, r) in self.sinks.iter().zip(results) {
            if let Some(e) = &r.error {
                tracing::error!(
                    sink = sink.kind.name(),
                    error = %e,
                    lost = r.failed,
                    "writing audit records to the SIEM spool failed"
                );
            }
            if r.accepted > 0 {
                sink.wake.notify_one();
            }
        }
    }

    /// Records spooled and not yet delivered, all sinks.
    pub fn pending(&self) -> u64 {
        self.sinks.iter().map(|s| s.spool.pending()).sum()
    }

    /// Records the sink refused since start; 0 for a sink not configured.
    pub fn dropped(&self, kind: SinkKind) -> u64 {
        self.sinks
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.spool.dropped())
            .sum()
    }

    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks
            .iter()
            .map(|s| SinkStats {
                kind: s.kind,
                pending: s.spool.pending(),
                dropped: s.spool.dropped(),
                spool_bytes: s.spool.bytes(),
            })
            .collect()
    }
}

impl SinkWorker {
    /// Stops the delivery tasks; a batch in flight is abandoned and, like everything not yet
    /// delivered, stays spooled for the next start.
    pub async fn finish(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a SIEM delivery task failed");
            }
        }
    }
}

struct Delivery {
    kind: SinkKind,
    spool: Arc<Spool>,
    transport: Transport,
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
    retry_cap: Duration,
}

/// A record ready to go: decoded for syslog, the spooled JSON for the webhook body.
struct Outgoing {
    record: SinkRecord,
    payload: Vec<u8>,
}

impl Delivery {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    async fn run(mut self) {
        let batch_size = match self.transport {
            Transport::Syslog(_) => SYSLOG_BATCH,
            Transport::Webhook(_) => 1,
        };
        loop {
            let Some(batch) = self.next_batch(batch_size).await else {
                return;
            };
            let Some(last) = batch.last().map(|s| s.index) else {
                continue;
            };
            let count = batch.len() as u64;
            let outgoing = self.decode(batch);
            if !outgoing.is_empty() && !self.deliver_with_retries(&outgoing).await {
                return;
            }
            let spool = self.spool.clone();
            match tokio::task::spawn_blocking(move || spool.commit(last + 1, count)).await {
                Ok(Ok(())) => {}
                // The SIEM has the records; after a restart it gets them again.
                Ok(Err(e)) => {
                    tracing::error!(sink = self.name(), error = %e, "moving the SIEM spool cursor failed")
                }
                Err(e) => {
                    tracing::error!(sink = self.name(), error = %e, "moving the SIEM spool cursor failed")
                }
            }
        }
    }

    /// The next records in spool order, waiting for some; `None` once stopped.
    async fn next_batch(&mut self, max: usize) -> Option<Vec<Spooled>> {
        let mut delay = FIRST_RETRY;
        loop {
            if self.stopping() {
                return None;
            }
            let spool = self.spool.clone();
            let read = tokio::task::spawn_blocking(move || spool.read(max, BATCH_BYTES))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
            match read {
                Ok(batch) if !batch.is_empty() => return Some(batch),
                Ok(_) => {
                    // A send between the read and here leaves a permit, so nothing is missed.
                    let stop = &mut self.stop;
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = stopped(stop) => return None,
                    }
                }
                Err(e) => {
                    tracing::error!(sink = self.name(), error = %e, "reading the SIEM spool failed; retrying");
                    if !self.pause(delay).await {
                        return None;
                    }
                    delay = (delay * 2).min(self.retry_cap);
                }
            }
        }
    }

    fn decode(&self, batch: Vec<Spooled>) -> Vec<Outgoing> {
        let mut out = Vec::with_capacity(batch.len());
        for s in batch {
            match serde_json::from_slice::<SinkRecord>(&s.payload) {
                Ok(record) => out.push(Outgoing {
                    record,
                    payload: s.payload,
                }),
                // Its checksum held, so it was spooled like this (by another version): it can
                // never be delivered, and waiting on it would stop every record behind it.
                Err(e) => tracing::error!(
                    sink = self.name(),
                    index = s.index,
                    error = %e,
                    "spooled audit record not readable as a record; skipped"
                ),
            }
        }
        out
    }

    /// Tries until the SIEM takes the batch; false when stopped first.
    async fn deliver_with_retries(&mut self, batch: &[Outgoing]) -> bool {
        let mut delay = FIRST_RETRY;
        let mut failures = 0u64;
        loop {
            let stop = &mut self.stop;
            let result = tokio::select! {
                r = deliver(&mut self.transport, batch) => r,
                _ = stopped(stop) => return false,
            };
            match result {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(sink = self.name(), failures, "SIEM delivery resumed");
                    }
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(sink = self.name(), error = %e, "SIEM delivery failed; retrying with backoff");
                    } else {
                        tracing::debug!(sink = self.name(), error = %e, failures, "SIEM delivery failed again");
                    }
                    if !self.pause(delay).await {
                        return false;
                    }
                    delay = (delay * 2).min(self.retry_cap);
                }
            }
        }
    }

    /// Sleeps; false when stopped first.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stopped(&mut self.stop) => false,
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }
}

async fn deliver(transport: &mut Transport, batch: &[Outgoing]) -> Result<(), DeliveryError> {
    match transport {
        Transport::Syslog(client) => {
            let records: Vec<&SinkRecord> = batch.iter().map(|o| &o.record).collect();
            client.deliver(&records).await
        }
        Transport::Webhook(client) => {
            for o in batch {
                client.deliver(o.record.seq, &o.payload).await?;
            }
            Ok(())
        }
    }
}

/// Resolves once stop is asked for, or the worker is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: the same as being told to stop.
    let _ = stop.wait_for(|s| *s).await;
}
