//! The audit log aggregate: events in one chain, numbered densely from 1, each append committed
//! only onto the head (`audit_chain`, one row) it was linked after, so replicas sharing a
//! database append to one chain and never fork it. An append either holds the head for its
//! whole length ([`AuditLog::append`]), or, under the chain's [`Lease`], is staged: its rows
//! inserted while the append before it commits, then committed in turn ([`AuditLog::stage`]).
//! What an event is (kinds, outcomes, reasons), how a link is computed and when a checkpoint is
//! due are `audit`'s: the append asks a [`Seal`] for them.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::{Backend, Db};

/// An event about to be stored. `details` is JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    pub org_id: Option<&'a str>,
    pub acr: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub login_key: Option<&'a str>,
    pub delegator: Option<&'a str>,
    pub ip_key: Option<String>,
}

impl AuditRow<'_> {
    /// The chained columns, in the order of the canonical encoding (`audit::chain`).
    pub fn texts(&self) -> [Option<&str>; 15] {
        [
            Some(self.kind),
            Some(self.outcome),
            self.reason,
            self.subject,
            self.client_id,
            self.method,
            self.ip,
            self.user_agent,
            self.details.as_deref(),
            self.org_id,
            self.acr,
            self.upstream,
            self.login_key,
            self.delegator,
            self.ip_key.as_deref(),
        ]
    }
}

/// A stored event read back: its place in the chain (0 for a row that has none: one inserted
/// behind vhod's back), its links, and every column. Serialised as an export's row.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StoredEvent {
    /// The row's own key; not chained, only for pointing at a row.
    #[serde(skip)]
    pub id: i64,
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
    pub org_id: Option<String>,
    pub acr: Option<String>,
    pub upstream: Option<String>,
    pub login_key: Option<String>,
    pub delegator: Option<String>,
    pub ip_key: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    pub enc: Option<i64>,
    pub hash_alg: Option<String>,
    /// The chain key's MAC of `hash`: not exported (only a holder of the key checks it).
    #[serde(skip)]
    pub mac: Option<String>,
}

impl StoredEvent {
    /// The chained columns, in the order of the canonical encoding (as [`AuditRow::texts`]).
    pub fn texts(&self) -> [Option<&str>; 15] {
        [
            Some(self.kind.as_str()),
            Some(self.outcome.as_str()),
            self.reason.as_deref(),
            self.subject.as_deref(),
            self.client_id.as_deref(),
            self.method.as_deref(),
            self.ip.as_deref(),
            self.user_agent.as_deref(),
            self.details.as_deref(),
            self.org_id.as_deref(),
            self.acr.as_deref(),
            self.upstream.as_deref(),
            self.login_key.as_deref(),
            self.delegator.as_deref(),
            self.ip_key.as_deref(),
        ]
    }
}

/// The columns as they are: an expression here (say `COALESCE(seq, 0) AS seq`) would shadow the
/// column in `ORDER BY seq`, and PostgreSQL would sort every match instead of walking an index
/// in the chain's order, so a page of the newest 50 or of an export read all the rest.
pub(crate) const EVENT_COLUMNS: &str = "id, seq, at_ms, kind, outcome, reason, subject, client_id, \
     method, ip, user_agent, details, org_id, acr, upstream, login_key, delegator, ip_key, \
     prev_hash, hash, enc, hash_alg, mac";

pub(crate) fn read_event(r: &AnyRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        id: r.try_get("id")?,
        seq: r.try_get::<Option<i64>, _>("seq")?.unwrap_or(0),
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
        org_id: r.try_get("org_id")?,
        acr: r.try_get("acr")?,
        upstream: r.try_get("upstream")?,
        login_key: r.try_get("login_key")?,
        delegator: r.try_get("delegator")?,
        ip_key: r.try_get("ip_key")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        enc: r.try_get("enc")?,
        hash_alg: r.try_get("hash_alg")?,
        mac: r.try_get("mac")?,
    })
}

/// The chain's head as stored, with when it was last checkpointed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    /// 64 hex digits.
    pub hash: String,
    pub checkpoint_seq: i64,
    pub checkpoint_at_ms: i64,
    /// Rows stored before the chain existed, up to this `id`, still to be chained.
    pub legacy_until: Option<i64>,
}

/// A checkpoint to store: `jws` is what counts, the rest repeats it for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at_ms: i64,
    pub kind: &'static str,
    pub cut_before: Option<i64>,
    pub cut_prev_hash: Option<String>,
    pub kid: String,
    pub jws: String,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub id: i64,
    pub seq: i64,
    pub hash: String,
    pub at_ms: i64,
    pub kind: String,
    pub cut_before: Option<i64>,
    pub kid: String,
    pub jws: String,
    pub exported_at: Option<i64>,
}

/// What the append needs of the chain: the link of each row and, once a row is on, whether a
/// checkpoint is due and its signed form. Called inside the append's transaction.
pub trait Seal: Send + Sync {
    /// The digest's name (`hash_alg`) and the encoding's version (`enc`) of new links.
    fn alg(&self) -> &'static str;
    fn encoding(&self) -> i64;
    /// The link (64 hex digits) of `texts` at `seq` after the link `prev`.
    fn link(&self, seq: i64, prev: &str, at_ms: i64, texts: &[Option<&str>; 15]) -> String;
    /// The chain key's MAC of a new row's link, and of a row stored before the chain (`None`:
    /// no key).
    fn mac(&self, hash: &str) -> Option<String>;
    fn legacy_mac(&self, hash: &str) -> Option<String>;
    /// A checkpoint of `head` when one is due at `now_ms` (`None`: not due, or no key).
    fn checkpoint(&self, head: &Head, now_ms: i64) -> Option<NewCheckpoint>;
    /// The checkpoint recording a retention cut: rows before `cut_before` go; the first kept
    /// row links to `cut_prev_hash`.
    fn cut(
        &self,
        head: &Head,
        cut_before: i64,
        cut_prev_hash: &str,
        now_ms: i64,
    ) -> Option<NewCheckpoint>;
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The place of each event, in the order given.
    pub seqs: Vec<i64>,
    /// The checkpoint stored with it, when one was due.
    pub checkpoint: Option<i64>,
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

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// The columns a new event fills, in the order each row of a batch lists them (the array built
/// by [`link`]: `at_ms`, the chained texts in [`AuditRow::texts`] order, then the
/// links); `true`: an integer.
const INSERT_COLUMNS: [(&str, bool); 22] = [
    ("at_ms", true),
    ("kind", false),
    ("outcome", false),
    ("reason", false),
    ("subject", false),
    ("client_id", false),
    ("method", false),
    ("ip", false),
    ("user_agent", false),
    ("details", false),
    ("org_id", false),
    ("acr", false),
    ("upstream", false),
    ("login_key", false),
    ("delegator", false),
    ("ip_key", false),
    ("seq", true),
    ("prev_hash", false),
    ("mac", false),
    ("hash", false),
    ("enc", true),
    ("hash_alg", false),
];

/// The one statement that stores a batch: the rows travel as one JSON array of arrays (in
/// [`INSERT_COLUMNS`] order) that the database takes apart. A VALUES list of 22 parameters a
/// row cost PostgreSQL more to bind and plan than the rows cost to store (about two thirds of
/// the append, measured against an INSERT … SELECT of the same rows), and a batch's last chunk
/// was a new statement each time; this text is always the same, made once per backend.
fn insert_sql(backend: Backend) -> &'static str {
    static POSTGRES: LazyLock<String> = LazyLock::new(|| {
        // jsonb: parsed once; `->>` on json would parse each row's text again for each column.
        insert_from("jsonb_array_elements(CAST($1 AS jsonb)) AS e(value)")
    });
    static SQLITE: LazyLock<String> = LazyLock::new(|| insert_from("json_each($1) AS e"));
    match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    }
}

fn insert_from(rows: &str) -> String {
    let names: Vec<&str> = INSERT_COLUMNS.iter().map(|(name, _)| *name).collect();
    let values: Vec<String> = INSERT_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, integer))| match integer {
            true => format!("CAST(value ->> {i} AS BIGINT)"),
            false => format!("value ->> {i}"),
        })
        .collect();
    format!(
        "INSERT INTO audit_events ({}) SELECT {} FROM {rows}",
        names.join(", "),
        values.join(", ")
    )
}

/// A text as the database can hold it: NUL, which neither PostgreSQL's `text` nor its `jsonb`
/// takes (and SQLite's functions cut a string at), becomes U+FFFD. Done before the link, so the
/// chain is over what is stored; without it one event carrying a NUL (from a request's header
/// or form field) would fail its batch on every attempt and hold back the writer.
fn storable(t: &str) -> Cow<'_, str> {
    match t.contains('\0') {
        true => Cow::Owned(t.replace('\0', "\u{FFFD}")),
        false => Cow::Borrowed(t),
    }
}

fn text(v: Option<&str>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |s| {
        serde_json::Value::String(s.to_owned())
    })
}

/// The advisory lock of the chain's lease (PostgreSQL scopes it to the database): "vhod" and
/// "audit" in ASCII.
const LEASE_KEY: i64 = 0x7668_6f64_6175_6474;

/// Takes the chain's head for the rest of the transaction: first the lease (PostgreSQL: waits
/// while another replica holds it for a run of staged appends, see [`Lease`]), then the head
/// row, by a statement that writes, so PostgreSQL holds the row lock and SQLite the write lock
/// until commit; a second appender (another replica) waits here.
async fn lock_head(tx: &mut Tx<'_>, backend: Backend) -> Result<Head, StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT CAST(pg_advisory_xact_lock($1) AS TEXT)")
            .bind(LEASE_KEY)
            .execute(&mut **tx)
            .await?;
    }
    lock_head_row(tx).await
}

/// The head row alone: for a transaction under a [`Lease`] (taking the lease again from another
/// connection would wait for ever on our own).
async fn lock_head_row(tx: &mut Tx<'_>) -> Result<Head, StoreError> {
    sqlx::query("UPDATE audit_chain SET seq = seq WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    let r = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_chain WHERE id = 1"
    ))
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::Corrupt("the audit chain's head is missing".into()))?;
    Ok(read_head(&r)?)
}

async fn store_head(tx: &mut Tx<'_>, head: &Head) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE audit_chain SET seq = $1, hash = $2, checkpoint_seq = $3, checkpoint_at_ms = $4, \
         legacy_until = $5 WHERE id = 1",
    )
    .bind(head.seq)
    .bind(&head.hash)
    .bind(head.checkpoint_seq)
    .bind(head.checkpoint_at_ms)
    .bind(head.legacy_until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn store_checkpoint(
    tx: &mut Tx<'_>,
    head: &mut Head,
    cp: &NewCheckpoint,
) -> Result<i64, StoreError> {
    let r = sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at_ms, kind, cut_before, cut_prev_hash, kid, jws) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(cp.seq)
    .bind(&cp.hash)
    .bind(cp.at_ms)
    .bind(cp.kind)
    .bind(cp.cut_before)
    .bind(&cp.cut_prev_hash)
    .bind(&cp.kid)
    .bind(&cp.jws)
    .fetch_one(&mut **tx)
    .await?;
    head.checkpoint_seq = cp.seq;
    head.checkpoint_at_ms = cp.at_ms;
    Ok(r.try_get(0)?)
}

const CHECKPOINT_COLUMNS: &str = "id, seq, hash, at_ms, kind, cut_before, kid, jws, exported_at";

const HEAD_COLUMNS: &str = "seq, hash, checkpoint_seq, checkpoint_at_ms, legacy_until";

fn read_head(r: &AnyRow) -> Result<Head, sqlx::Error> {
    Ok(Head {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        checkpoint_seq: r.try_get("checkpoint_seq")?,
        checkpoint_at_ms: r.try_get("checkpoint_at_ms")?,
        legacy_until: r.try_get("legacy_until")?,
    })
}

fn checkpoint_of(r: &AnyRow) -> Result<StoredCheckpoint, sqlx::Error> {
    Ok(StoredCheckpoint {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        at_ms: r.try_get("at_ms")?,
        kind: r.try_get("kind")?,
        cut_before: r.try_get("cut_before")?,
        kid: r.try_get("kid")?,
        jws: r.try_get("jws")?,
        exported_at: r.try_get("exported_at")?,
    })
}

/// A batch linked to the chain after a head: its rows as the database takes them, and the head
/// it leaves. Made outside any transaction, so the next batch can be linked while this one is
/// being stored.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The head it follows (place and link).
    after: (i64, String),
    head: (i64, String),
    seqs: Vec<i64>,
    /// The rows as one JSON array of arrays, in [`INSERT_COLUMNS`] order.
    batch: Option<String>,
}

impl Linked {
    /// The head the batch leaves (place and link): where the next one follows.
    pub fn head(&self) -> (i64, &str) {
        (self.head.0, &self.head.1)
    }
}

/// Links `events`, in their order, after `after`.
pub fn link(after: &Head, events: &[AuditRow<'_>], seal: &dyn Seal) -> Linked {
    let (mut seq, mut hash) = (after.seq, after.hash.clone());
    let mut seqs = Vec::with_capacity(events.len());
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let stored = e.texts().map(|t| t.map(storable));
        let texts = stored.each_ref().map(|t| t.as_deref());
        seq += 1;
        let next = seal.link(seq, &hash, e.at_ms, &texts);
        let prev = std::mem::replace(&mut hash, next.clone());
        seqs.push(seq);
        let mut row = Vec::with_capacity(INSERT_COLUMNS.len());
        row.push(e.at_ms.into());
        row.extend(texts.into_iter().map(text));
        row.extend([
            seq.into(),
            prev.into(),
            text(seal.mac(&next).as_deref()),
            next.into(),
            seal.encoding().into(),
            text(Some(seal.alg())),
        ]);
        rows.push(serde_json::Value::Array(row));
    }
    Linked {
        after: (after.seq, after.hash.clone()),
        head: (seq, hash),
        seqs,
        batch: (!rows.is_empty()).then(|| serde_json::Value::Array(rows).to_string()),
    }
}

async fn insert(tx: &mut Tx<'_>, backend: Backend, linked: &Linked) -> Result<(), StoreError> {
    if let Some(batch) = &linked.batch {
        sqlx::query(insert_sql(backend))
            .bind(batch)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Ends an append whose rows are in: the checkpoint that falls due, the new head, the commit.
async fn finish(
    mut tx: Tx<'static>,
    mut head: Head,
    linked: Linked,
    seal: &dyn Seal,
    now_ms: i64,
) -> Result<Appended, StoreError> {
    (head.seq, head.hash) = linked.head;
    let checkpoint = match seal.checkpoint(&head, now_ms) {
        Some(cp) => Some(store_checkpoint(&mut tx, &mut head, &cp).await?),
        None => None,
    };
    store_head(&mut tx, &head).await?;
    tx.commit().await?;
    Ok(Appended {
        seqs: linked.seqs,
        checkpoint,
    })
}

/// The chain's lease (PostgreSQL): an advisory lock held by one connection of one replica while
/// it has appends staged, each in a transaction of its own. Every other append, checkpoint and
/// cut takes the lease first ([`lock_head`]), so nothing inserts past the head while staged rows
/// wait for their turn at it (that would be a deadlock: the staged row waits for the head, the
/// head's holder for the staged row's place). The lease is about waiting, not about the chain:
/// should it be lost (its connection gone), a staged append still commits only onto the head it
/// was linked after, and a place is still taken once.
pub struct Lease {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl Lease {
    /// Gives the lease up (the next replica waiting for it goes on).
    pub async fn release(mut self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let unlocked = sqlx::query("SELECT CAST(pg_advisory_unlock($1) AS TEXT)")
            .bind(LEASE_KEY)
            .execute(&mut *conn)
            .await;
        if let Err(e) = unlocked {
            // Perhaps still held: back to `self`, whose drop closes it.
            self.conn = Some(conn);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for Lease {
    /// A lease not released (its holder failed half-way) must not go back to the pool still
    /// held: the connection is closed instead, and the server lets the lock go with it.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

/// Rows inserted under a [`Lease`], waiting to be committed onto the head they were linked after.
pub struct Staged {
    tx: Tx<'static>,
    linked: Linked,
}

impl Staged {
    /// Commits the rows if the head is still the one they follow, with the checkpoint that
    /// falls due; [`StoreError::Conflict`] (nothing stored) when another append moved it.
    pub async fn commit(mut self, seal: &dyn Seal, now_ms: i64) -> Result<Appended, StoreError> {
        let head = lock_head_row(&mut self.tx).await?;
        if (head.seq, head.hash.as_str()) != (self.linked.after.0, self.linked.after.1.as_str()) {
            self.tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        finish(self.tx, head, self.linked, seal, now_ms).await
    }

    /// Gives the rows up (the append before them failed).
    pub async fn abandon(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

impl AuditLog<'_> {
    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.db.pool
    }

    /// Appends `events` to the chain in one transaction, in their order, with the checkpoint
    /// that falls due; their places.
    pub async fn append(
        &self,
        events: &[AuditRow<'_>],
        seal: &dyn Seal,
        now_ms: i64,
    ) -> Result<Appended, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let head = lock_head(&mut tx, self.db.backend).await?;
        let linked = link(&head, events, seal);
        insert(&mut tx, self.db.backend, &linked).await?;
        finish(tx, head, linked, seal, now_ms).await
    }

    /// The chain's lease for a run of staged appends (`None`: this backend has none, SQLite,
    /// whose appends are one at a time). Waits while another replica holds it.
    pub async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        if self.db.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut conn = self.db.pool.acquire().await?;
        sqlx::query("SELECT CAST(pg_advisory_lock($1) AS TEXT)")
            .bind(LEASE_KEY)
            .execute(&mut *conn)
            .await?;
        Ok(Some(Lease { conn: Some(conn) }))
    }

    /// The first half of an append under a [`Lease`]: `linked`'s rows inserted in a transaction
    /// of their own, which [`Staged::commit`] ends once the appends before it are committed.
    /// Several may be in the database at once, each on its own connection: the rows of one are
    /// stored while the one before commits, so the chain's ingestion is not one backend's.
    pub async fn stage(&self, linked: Linked) -> Result<Staged, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        insert(&mut tx, self.db.backend, &linked).await?;
        Ok(Staged { tx, linked })
    }

    /// Stores a checkpoint of the head when one is due (time passed with events since the last);
    /// its id.
    pub async fn checkpoint_if_due(
        &self,
        seal: &dyn Seal,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let mut head = lock_head(&mut tx, self.db.backend).await?;
        let Some(cp) = seal.checkpoint(&head, now_ms) else {
            return Ok(None);
        };
        let id = store_checkpoint(&mut tx, &mut head, &cp).await?;
        store_head(&mut tx, &head).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Chains up to `limit` rows stored before the chain existed, in `id` order; how many.
    /// Once none are left, any row without a place was inserted behind vhod's back.
    pub async fn adopt_legacy(&self, seal: &dyn Seal, limit: i64) -> Result<u64, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let mut head = lock_head(&mut tx, self.db.backend).await?;
        let Some(until) = head.legacy_until else {
            return Ok(0);
        };
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq IS NULL AND id <= $1 ORDER BY id LIMIT $2"
        ))
        .bind(until)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut n = 0;
        for r in &rows {
            let mut e = read_event(r)?;
            e.ip_key = e.ip.as_deref().and_then(ip_key);
            let seq = head.seq + 1;
            let hash = seal.link(seq, &head.hash, e.at_ms, &e.texts());
            sqlx::query(
                "UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3, enc = $4, hash_alg = $5, \
                 ip_key = $6, mac = $7 WHERE id = $8",
            )
            .bind(seq)
            .bind(&head.hash)
            .bind(&hash)
            .bind(seal.encoding())
            .bind(seal.alg())
            .bind(&e.ip_key)
            .bind(seal.legacy_mac(&hash))
            .bind(e.id)
            .execute(&mut *tx)
            .await?;
            head.seq = seq;
            head.hash = hash;
            n += 1;
        }
        if (rows.len() as i64) < limit {
            head.legacy_until = None;
        }
        store_head(&mut tx, &head).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Cuts off the events stamped before `before_ms` (at most `limit` of them, oldest first),
    /// behind a signed checkpoint recording the cut; how many went. Nothing goes without the
    /// checkpoint (no key: no cut).
    pub async fn cut(
        &self,
        before_ms: i64,
        limit: i64,
        seal: &dyn Seal,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        // Nothing old enough: no lock taken (this runs on every tick of every replica).
        let oldest = sqlx::query(
            "SELECT at_ms FROM audit_events WHERE seq IS NOT NULL ORDER BY seq LIMIT 1",
        )
        .fetch_optional(&self.db.pool)
        .await?;
        match oldest {
            Some(r) if r.try_get::<i64, _>("at_ms")? < before_ms => {}
            _ => return Ok(0),
        }
        let mut tx = self.db.pool.begin().await?;
        let mut head = lock_head(&mut tx, self.db.backend).await?;
        // The oldest rows, up to the first one young enough to keep (events are stamped when
        // they happen and reach the chain a moment later, so the order is nearly by time).
        let rows = sqlx::query(
            "SELECT seq, at_ms, hash FROM audit_events WHERE seq IS NOT NULL ORDER BY seq LIMIT $1",
        )
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        let mut cut: Option<(i64, String)> = None;
        for r in &rows {
            let at: i64 = r.try_get("at_ms")?;
            if at >= before_ms {
                break;
            }
            cut = Some((r.try_get("seq")?, r.try_get("hash")?));
        }
        let Some((last, last_hash)) = cut else {
            return Ok(0);
        };
        let Some(cp) = seal.cut(&head, last + 1, &last_hash, now_ms) else {
            return Ok(0);
        };
        store_checkpoint(&mut tx, &mut head, &cp).await?;
        let gone = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        store_head(&mut tx, &head).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// The head as stored.
    pub async fn head(&self) -> Result<Head, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_chain WHERE id = 1"
        ))
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| StoreError::Corrupt("the audit chain's head is missing".into()))?;
        Ok(read_head(&r)?)
    }

    /// Up to `limit` chained events after the place `after`, in the chain's order (two rows
    /// claiming one place both come, by `id`).
    pub async fn after(&self, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq, id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    /// Up to `limit` chained events after the row (`seq`, `id`) in the chain's order (rows
    /// claiming one place, by `id`): a walk that pages through duplicates too.
    pub async fn after_row(
        &self,
        seq: i64,
        id: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // `seq >= $1` on its own is where the index walk starts; without it a page deep in the
        // chain would be found by filtering every row from the first.
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq >= $1 AND (seq > $1 OR id > $2) \
             ORDER BY seq, id LIMIT $3"
        ))
        .bind(seq)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    /// Up to `limit` rows claiming a place before `start` (the chain's first), or after `end`.
    pub async fn outside(
        &self,
        start: i64,
        end: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq < $1 OR seq > $2 ORDER BY seq, id LIMIT $3"
        ))
        .bind(start)
        .bind(end)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    /// The newest checkpoint strictly before the place `seq`.
    pub async fn checkpoint_before(
        &self,
        seq: i64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq < $1 ORDER BY seq DESC, id DESC LIMIT 1"
        ))
        .bind(seq)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(r.as_ref().map(checkpoint_of).transpose()?)
    }

    /// Up to `limit` rows without a place, by `id` after `after_id`, other than those stored
    /// before the chain and not yet chained.
    pub async fn unplaced(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let legacy = self.head().await?.legacy_until.unwrap_or(0);
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq IS NULL AND id > $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(after_id)
        .bind(legacy)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    /// Whether `subject` signed in successfully before the place `before`, at all and from
    /// an address in `range` (of `ip_key`s): (0 or 1, 0 or 1).
    pub async fn prior_sign_ins(
        &self,
        subject: &str,
        before: i64,
        range: &(String, String),
    ) -> Result<(i64, i64), StoreError> {
        let any = sqlx::query(
            "SELECT 1 FROM audit_events WHERE subject = $1 AND seq < $2 AND kind = 'login' \
             AND outcome = 'success' LIMIT 1",
        )
        .bind(subject)
        .bind(before)
        .fetch_optional(&self.db.pool)
        .await?;
        let within = sqlx::query(
            "SELECT 1 FROM audit_events WHERE subject = $1 AND seq < $2 AND kind = 'login' \
             AND outcome = 'success' AND ip_key >= $3 AND ip_key <= $4 LIMIT 1",
        )
        .bind(subject)
        .bind(before)
        .bind(&range.0)
        .bind(&range.1)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok((i64::from(any.is_some()), i64::from(within.is_some())))
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY id"
        ))
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(checkpoint_of).collect::<Result<_, _>>()?)
    }

    /// The newest checkpoint covering the place `seq` (at or after it).
    pub async fn covering(&self, seq: i64) -> Result<Option<StoredCheckpoint>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= $1 ORDER BY seq, id LIMIT 1"
        ))
        .bind(seq)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(r.as_ref().map(checkpoint_of).transpose()?)
    }

    /// Checkpoints not yet written to the external copy, oldest first.
    pub async fn unexported(&self, limit: i64) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE exported_at IS NULL ORDER BY id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(checkpoint_of).collect::<Result<_, _>>()?)
    }

    pub async fn mark_exported(&self, id: i64, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_checkpoints SET exported_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

/// The address as 32 hex digits of its IPv6 form (IPv4 as IPv4-mapped), so that every CIDR is
/// one range of this text, whatever the family; `None` for what is not an address.
pub fn ip_key(ip: &str) -> Option<String> {
    let v6 = match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Some(hex::encode(v6.octets()))
}

/// The range of [`ip_key`]s a CIDR (`203.0.113.0/24`, `2001:db8::/32`, or one address) covers,
/// inclusive; `None` when it is not one.
pub fn cidr_range(cidr: &str) -> Option<(String, String)> {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (cidr, None),
    };
    let (v6, bits) = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let b = bits.unwrap_or(32);
            if b > 32 {
                return None;
            }
            (v4.to_ipv6_mapped(), 96 + b)
        }
        IpAddr::V6(v6) => {
            let b = bits.unwrap_or(128);
            if b > 128 {
                return None;
            }
            (v6, b)
        }
    };
    let n = u128::from_be_bytes(v6.octets());
    // The host part's bits (none for a whole /128 or /32).
    let host = u128::MAX.checked_shr(u32::from(bits)).unwrap_or(0);
    let low = n & !host;
    let high = low | host;
    Some((
        hex::encode(low.to_be_bytes()),
        hex::encode(high.to_be_bytes()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_cidrs_meet_in_one_order() {
        let k = ip_key("203.0.113.7").unwrap();
        let (lo, hi) = cidr_range("203.0.113.0/24").unwrap();
        assert!(lo <= k && k <= hi, "{lo} {k} {hi}");
        assert!(ip_key("203.0.114.1").unwrap() > hi);
        assert_eq!(cidr_range("203.0.113.7"), Some((k.clone(), k.clone())));
        assert_eq!(
            ip_key("::ffff:203.0.113.7"),
            Some(k),
            "mapped is the same address"
        );
        let (lo, hi) = cidr_range("2001:db8::/32").unwrap();
        let k6 = ip_key("2001:db8:1::5").unwrap();
        assert!(lo <= k6 && k6 <= hi);
        assert_eq!(cidr_range("::/0").unwrap().0, "0".repeat(32));
        assert_eq!(cidr_range("10.0.0.0/33"), None);
        assert_eq!(cidr_range("nonsense/8"), None);
        assert_eq!(ip_key("unknown"), None);
    }

    /// A staged append commits only onto the head it was linked after: out of turn, or after a
    /// head that moved on, it stores nothing and answers `Conflict`; in turn, each stores its
    /// rows, and the chain is one.
    #[tokio::test]
    async fn a_staged_append_commits_only_onto_the_head_it_follows() {
        for t in crate::store::sql::test_dbs().await {
            a_staged_append_commits_only_onto_the_head_it_follows_on(&t.db).await;
        }
    }

    async fn a_staged_append_commits_only_onto_the_head_it_follows_on(db: &Db) {
        let seal = crate::audit::Sealer::unsigned(crate::audit::ChainSettings::default());
        let log = db.audit_log();
        let start = log.head().await.unwrap();
        let e = |s| AuditRow {
            at_ms: 1,
            kind: "login",
            outcome: "success",
            subject: Some(s),
            ..AuditRow::default()
        };
        let first = link(&start, &[e("a"), e("b")], &seal);
        let (seq, hash) = first.head();
        let after_first = Head {
            seq,
            hash: hash.to_owned(),
            ..start.clone()
        };
        let second = link(&after_first, &[e("c")], &seal);
        if db.backend == Backend::Postgres {
            // Both in the database at once; the second tries its turn first.
            let (one, two) = (
                log.stage(first.clone()).await.unwrap(),
                log.stage(second.clone()).await.unwrap(),
            );
            assert!(matches!(
                two.commit(&seal, 1).await,
                Err(StoreError::Conflict)
            ));
            assert_eq!(one.commit(&seal, 1).await.unwrap().seqs, [1, 2]);
        } else {
            let one = log.stage(first.clone()).await.unwrap();
            assert_eq!(one.commit(&seal, 1).await.unwrap().seqs, [1, 2]);
        }
        // Linked after a head that has moved on: refused, whether at the insert or the head.
        let stale = link(&start, &[e("x")], &seal);
        let refused = match log.stage(stale).await {
            Ok(staged) => staged.commit(&seal, 1).await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
        let two = log.stage(second).await.unwrap();
        assert_eq!(two.commit(&seal, 1).await.unwrap().seqs, [3]);
        let rows = log.after(0, 10).await.unwrap();
        let subjects: Vec<_> = rows.iter().map(|r| r.subject.as_deref()).collect();
        assert_eq!(subjects, [Some("a"), Some("b"), Some("c")]);
        assert!(
            rows.iter()
                .all(|r| crate::audit::verify::holds_at(r, r.seq)),
            "every link holds"
        );
        assert!(rows.windows(2).all(|w| w[1].prev_hash == w[0].hash));
        assert_eq!(log.head().await.unwrap().seq, 3);
    }

    /// While one replica holds the chain's lease (its batches staged), another's append waits
    /// for it, instead of taking places the staged rows hold; once released, it goes on.
    #[tokio::test]
    async fn an_append_waits_while_the_lease_is_held() {
        for t in crate::store::sql::test_dbs().await {
            let Some(lease) = t.db.audit_log().lease().await.unwrap() else {
                assert_eq!(t.db.backend, Backend::Sqlite, "only SQLite has no lease");
                continue;
            };
            let other = Db::connect(&t.url).await.unwrap();
            let append = tokio::spawn(async move {
                let seal = crate::audit::Sealer::unsigned(crate::audit::ChainSettings::default());
                let e = AuditRow {
                    kind: "login",
                    outcome: "success",
                    ..AuditRow::default()
                };
                other.audit_log().append(&[e], &seal, 1).await
            });
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert!(!append.is_finished(), "the append waits for the lease");
            lease.release().await.unwrap();
            assert_eq!(append.await.unwrap().unwrap().seqs, [1]);
        }
    }
}
