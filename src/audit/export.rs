//! Exports of the audit trail, streamed page by page (never the whole result in memory), and
//! their offline verification.
//!
//! JSON Lines: a header line (`"type": "export"`), one line per event (`"type": "event"`,
//! every chained column exactly as stored, with `seq`, `prev_hash` and `hash`), and the signed
//! checkpoint that covers them (`"type": "checkpoint"`). CSV: the same event columns, the
//! checkpoint in the response's `Vhod-Audit-Checkpoint` header.
//!
//! An export of a time range alone is a whole stretch of the chain: from the first event of the
//! range to the checkpoint after its last (the events past the range are marked
//! `"in_range": false`), so the links can be recomputed from the first event to the signed
//! head — the export verifies on its own, with only vhod's public keys (`/jwks`). A filtered
//! export (a person, an address) holds rows far apart in the chain: each row's own link is
//! recomputable, their continuity is the database's to show (`vhod audit verify`).

use serde::{Deserialize, Serialize};

use super::Audit;
use super::chain;
use super::checkpoint::{self, Claims};
use crate::store::StoreError;
use crate::store::audit_log::{StoredCheckpoint, StoredEvent};
use crate::store::audit_search::AuditQuery;
use crate::store::sql::Db;
use crate::tokens::jwk::Verifier;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::JsonLines => "application/jsonl",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// What an export will stream.
pub struct Plan {
    query: AuditQuery,
    /// A range export's time range (events of its stretch outside it are marked so).
    range: Option<(Option<i64>, Option<i64>)>,
    /// The signed checkpoint the stretch starts after (none: it starts at the chain's start).
    pub anchor: Option<StoredCheckpoint>,
    pub checkpoint: Option<StoredCheckpoint>,
    verifiable: bool,
}

/// One line of a JSON Lines export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Export {
        version: i64,
        /// Whether the events are a whole stretch of the chain, from the anchor (or the chain's
        /// start) to the checkpoint.
        verifiable: bool,
    },
    /// The signed checkpoint the stretch's first event follows.
    Anchor {
        seq: i64,
        hash: String,
        jws: String,
    },
    Event(Box<Row>),
    Checkpoint {
        id: i64,
        seq: i64,
        hash: String,
        jws: String,
    },
}

/// An event as exported: every chained column as stored (`details` is the JSON text exactly
/// as stored: the link covers the text), and whether it lies in the range asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub event: StoredEvent,
    pub in_range: bool,
}

pub const CSV_COLUMNS: [&str; 22] = [
    "seq",
    "at_ms",
    "kind",
    "outcome",
    "reason",
    "subject",
    "client_id",
    "method",
    "ip",
    "user_agent",
    "details",
    "org_id",
    "acr",
    "upstream",
    "login_key",
    "delegator",
    "ip_key",
    "prev_hash",
    "hash",
    "enc",
    "hash_alg",
    "in_range",
];

impl Row {
    /// Whether the row's link is the digest of its columns at its place.
    pub fn holds(&self) -> bool {
        super::verify::holds_at(&self.event, self.event.seq)
    }

    fn csv_record(&self) -> [String; 22] {
        let e = &self.event;
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            e.seq.to_string(),
            e.at_ms.to_string(),
            e.kind.clone(),
            e.outcome.clone(),
            o(&e.reason),
            o(&e.subject),
            o(&e.client_id),
            o(&e.method),
            o(&e.ip),
            o(&e.user_agent),
            o(&e.details),
            o(&e.org_id),
            o(&e.acr),
            o(&e.upstream),
            o(&e.login_key),
            o(&e.delegator),
            o(&e.ip_key),
            o(&e.prev_hash),
            o(&e.hash),
            e.enc.map(|n| n.to_string()).unwrap_or_default(),
            o(&e.hash_alg),
            self.in_range.to_string(),
        ]
    }
}

/// What to stream for `q` and the checkpoint that covers it (made now when none does yet).
pub async fn plan(db: &Db, audit: &Audit, mut q: AuditQuery) -> Result<Plan, StoreError> {
    let log = db.audit_log();
    if q.is_range_only() {
        let range = Some((q.from_ms, q.to_ms));
        let Some((lo, hi)) = log.segment(q.from_ms, q.to_ms).await? else {
            q.seq_range = Some((1, 0));
            return Ok(Plan {
                query: q,
                range,
                anchor: None,
                checkpoint: None,
                verifiable: false,
            });
        };
        let mut cp = log.covering(hi).await?;
        if cp.is_none() {
            audit.checkpoint_now().await?;
            cp = log.covering(hi).await?;
        }
        // From the checkpoint before the range (its signature anchors the first event's link),
        // to the one after: a stretch no one can shorten at either end unseen.
        let anchor = log.checkpoint_before(lo).await?;
        let start = anchor.as_ref().map_or(1, |a| a.seq + 1);
        let end = cp.as_ref().map_or(hi, |c| c.seq);
        q.from_ms = None;
        q.to_ms = None;
        q.seq_range = Some((start, end));
        return Ok(Plan {
            query: q,
            range,
            anchor,
            verifiable: cp.is_some(),
            checkpoint: cp,
        });
    }
    audit.checkpoint_now().await?;
    let head = log.head().await?;
    // Nothing past the head the checkpoint covers.
    q.seq_range = Some((1, head.seq));
    let checkpoint = log.covering(head.seq).await?;
    Ok(Plan {
        query: q,
        range: None,
        anchor: None,
        checkpoint,
        verifiable: false,
    })
}

const PAGE: i64 = 2_000;

enum Stage {
    Header,
    /// The page being read while the one before it is written out.
    Rows(Page),
    Trailer,
    Done,
}

/// A page of the export on its way from the database. Read ahead: while one page is turned
/// into text here, the database reads the next (the two halves of the work run on two cores
/// instead of taking turns). At most one page is ahead, so memory stays bounded; a page read
/// ahead for a client that has gone is one page of work, then dropped.
struct Page(tokio::task::JoinHandle<Result<Vec<StoredEvent>, StoreError>>);

fn read_ahead(db: &Db, q: &AuditQuery) -> Page {
    let (db, q) = (db.clone(), q.clone());
    Page(tokio::spawn(async move {
        db.audit_log().search(&q, PAGE).await
    }))
}

/// The export as a stream of text chunks, a page of events each.
pub fn stream(
    db: Db,
    plan: Plan,
    format: Format,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(
        (db, plan, Stage::Header),
        move |(db, mut plan, stage)| async move {
            match stage {
                Stage::Done => None,
                Stage::Header => {
                    let text = match format {
                        Format::JsonLines => {
                            let mut t = line(&Line::Export {
                                version: 1,
                                verifiable: plan.verifiable,
                            });
                            if let Some(a) = &plan.anchor {
                                t.push_str(&line(&Line::Anchor {
                                    seq: a.seq,
                                    hash: a.hash.clone(),
                                    jws: a.jws.clone(),
                                }));
                            }
                            t
                        }
                        Format::Csv => csv_line(CSV_COLUMNS.iter().map(|c| c.to_string())),
                    };
                    let first = read_ahead(&db, &plan.query);
                    Some((Ok(text), (db, plan, Stage::Rows(first))))
                }
                Stage::Rows(Page(reading)) => {
                    let read = match reading.await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    let page = match read {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(error = %e, "an audit export stopped");
                            let err = std::io::Error::other("the audit export stopped");
                            return Some((Err(err), (db, plan, Stage::Done)));
                        }
                    };
                    if let Some(last) = page.last() {
                        plan.query.cursor = Some(last.seq);
                    }
                    let next = if (page.len() as i64) < PAGE {
                        Stage::Trailer
                    } else {
                        Stage::Rows(read_ahead(&db, &plan.query))
                    };
                    let mut text = String::with_capacity(page.len() * 400);
                    for e in page {
                        let in_range = plan.range.is_none_or(|(from, to)| {
                            from.is_none_or(|f| e.at_ms >= f) && to.is_none_or(|t| e.at_ms < t)
                        });
                        let row = Row { event: e, in_range };
                        match format {
                            Format::JsonLines => text.push_str(&line(&Line::Event(Box::new(row)))),
                            Format::Csv => text.push_str(&csv_line(row.csv_record())),
                        }
                    }
                    Some((Ok(text), (db, plan, next)))
                }
                Stage::Trailer => {
                    let text = match (&plan.checkpoint, format) {
                        (Some(cp), Format::JsonLines) => line(&Line::Checkpoint {
                            id: cp.id,
                            seq: cp.seq,
                            hash: cp.hash.clone(),
                            jws: cp.jws.clone(),
                        }),
                        _ => String::new(),
                    };
                    Some((Ok(text), (db, plan, Stage::Done)))
                }
            }
        },
    )
}

fn line(l: &Line) -> String {
    let mut s = serde_json::to_string(l).unwrap_or_default();
    s.push('\n');
    s
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first: OWASP's CSV injection) is prefixed with `'`. Only in CSV: the JSON Lines export keeps
/// every value as stored, as its links need.
fn inert(cell: String) -> String {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}"),
        _ => cell,
    }
}

fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(fields.into_iter().map(inert));
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// What the offline check of an export found.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub events: u64,
    pub verifiable: bool,
    /// The checkpoint's signature held and its link is the chain's at its place.
    pub checkpoint: Option<Result<Claims, String>>,
    pub problems: Vec<String>,
}

impl ExportReport {
    pub fn holds(&self) -> bool {
        self.problems.is_empty() && matches!(self.checkpoint, Some(Ok(_)))
    }
}

/// Checks a JSON Lines export on its own: every row's link, their continuity from the
/// anchor (or the chain's start) to the checkpoint (a range export), the signatures of both.
/// Memory stays flat: only the last row's place and link are kept.
pub fn verify_lines(
    lines: impl Iterator<Item = std::io::Result<String>>,
    trusted: &dyn Fn(&str) -> Option<Verifier>,
) -> ExportReport {
    let mut r = ExportReport::default();
    // The place and link the next event must follow: the chain's start until an anchor says
    // otherwise.
    let mut last: Option<(i64, String)> = Some((0, chain::to_hex(&chain::GENESIS)));
    let mut events_seen = false;
    for (n, l) in lines.enumerate() {
        let n = n + 1;
        let l = match l {
            Ok(l) if l.trim().is_empty() => continue,
            Ok(l) => l,
            Err(e) => {
                r.problems.push(format!("line {n}: {e}"));
                break;
            }
        };
        match serde_json::from_str::<Line>(&l) {
            Ok(Line::Export { verifiable, .. }) => r.verifiable = verifiable,
            Ok(Line::Anchor { jws, .. }) => match checkpoint::open(&jws, trusted) {
                Ok(claims) if !events_seen => last = Some((claims.seq, claims.hash)),
                Ok(_) => r
                    .problems
                    .push(format!("line {n}: an anchor after the events")),
                Err(e) => r.problems.push(format!("line {n}: the anchor: {e}")),
            },
            Ok(Line::Event(row)) => {
                events_seen = true;
                r.events += 1;
                let row_seq = row.event.seq;
                if !row.holds() {
                    r.problems.push(format!(
                        "line {n}: the event at seq {row_seq} does not match its hash"
                    ));
                }
                if r.verifiable
                    && let Some((seq, hash)) = &last
                    && (row_seq != seq + 1 || row.event.prev_hash.as_deref() != Some(hash))
                {
                    r.problems.push(format!(
                        "line {n}: the event at seq {row_seq} does not follow seq {seq}"
                    ));
                }
                last = Some((row_seq, row.event.hash.clone().unwrap_or_default()));
            }
            Ok(Line::Checkpoint { jws, .. }) => {
                r.checkpoint = Some(match checkpoint::open(&jws, trusted) {
                    Err(e) => Err(e.to_string()),
                    Ok(claims) => match &last {
                        Some((seq, h)) if *seq == claims.seq && *h == claims.hash => Ok(claims),
                        _ if !r.verifiable => Ok(claims),
                        _ => Err(format!(
                            "the export does not end at the checkpoint's seq {} with its hash",
                            claims.seq
                        )),
                    },
                });
            }
            Err(_) => r
                .problems
                .push(format!("line {n}: not a line of an export")),
        }
    }
    if r.checkpoint.is_none() {
        r.problems.push("the export has no checkpoint".into());
    }
    if !r.verifiable {
        r.problems.push(
            "a filtered export: each event's hash holds or not, but their continuity can only be checked against the database (vhod audit verify)".into(),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::audit::{Event, Kind, Outcome};
    use crate::store::sql::test_dbs;

    /// An export longer than a page (pages are read ahead while the one before is written)
    /// holds every event once, in the chain's order, and ends after the last.
    #[tokio::test]
    async fn an_export_of_several_pages_holds_every_event_once_in_order() {
        for t in test_dbs().await {
            let (audit, worker) = Audit::start(t.db.clone());
            let n = 2 * PAGE as usize + 7;
            for i in 0..n {
                audit
                    .enqueue(
                        Event::new(Kind::Login, Outcome::Success).subject(Some(format!("p{i}"))),
                    )
                    .await;
            }
            audit
                .write(Event::new(Kind::Notice, Outcome::Success))
                .await
                .expect("stored");
            let plan = plan(&t.db, &audit, AuditQuery::default())
                .await
                .expect("a plan");
            let mut body = String::new();
            let mut chunks = Box::pin(stream(t.db.clone(), plan, Format::JsonLines));
            while let Some(chunk) = chunks.next().await {
                body.push_str(&chunk.expect("a chunk"));
            }
            let seqs: Vec<i64> = body
                .lines()
                .filter_map(|l| match serde_json::from_str::<Line>(l).expect("a line") {
                    Line::Event(row) => Some(row.event.seq),
                    _ => None,
                })
                .collect();
            assert_eq!(seqs, (1..=n as i64 + 1).collect::<Vec<_>>());
            worker.finish().await;
        }
    }
}
