//! `vhod audit verify`: walks the chain and the checkpoints and says where they stop holding.
//!
//! Each row's link is recomputed from its columns, its place and the link it claims to follow,
//! and compared with the stored one; each row must follow the one before; places are dense from
//! the last retention cut (or 1) to the head; every checkpoint's signature must hold under a
//! trusted key and its link must be the row's at its place. What breaks is named and placed:
//! - altered: the row's columns no longer give its link;
//! - reordered: they give it, but at another place (rows swapped or moved);
//! - deleted: places missing (between rows, or after the last row up to the head or to a
//!   checkpoint); a retention cut is told apart by its signed checkpoint;
//! - inserted: a row without a place, a second row at one place, a row past the head;
//! - relinked: a row whose own link holds but which the next no longer follows (its link was
//!   recomputed after an edit);
//! - checkpoint: a signature that fails, a key not trusted, or a row that differs from what a
//!   checkpoint signed (the rows up to it were rewritten with recomputed links).
//!
//! The walk goes on after a problem (so one run shows them all, up to [`MAX_PROBLEMS`]) and
//! reads the table in bounded batches, in the chain's order.

use std::collections::BTreeMap;
use std::fmt;

use super::chain::{self, Digest, Fields, HashAlg};
use super::checkpoint::{self, CUT, Claims};
use crate::store::StoreError;
use crate::store::audit_log::StoredEvent;
use crate::store::sql::Db;
use crate::tokens::jwk::Verifier;

/// Problems listed in full; beyond, only counted.
pub const MAX_PROBLEMS: usize = 100;
const BATCH: i64 = 2_000;
/// How far from its place a moved row is looked for.
const REORDER_REACH: i64 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Altered {
        seq: i64,
        id: i64,
    },
    Reordered {
        seq: i64,
        id: i64,
        belongs: i64,
    },
    Deleted {
        from: i64,
        to: i64,
    },
    Inserted {
        seq: Option<i64>,
        id: i64,
    },
    Relinked {
        seq: i64,
        id: i64,
    },
    /// A row whose links hold but whose MAC does not: not written by vhod.
    Forged {
        seq: i64,
        id: i64,
    },
    Checkpoint {
        id: Option<i64>,
        seq: i64,
        why: String,
    },
}

impl Problem {
    /// Where in the chain it is (rows without a place last).
    pub fn place(&self) -> i64 {
        match self {
            Problem::Altered { seq, .. }
            | Problem::Reordered { seq, .. }
            | Problem::Relinked { seq, .. }
            | Problem::Forged { seq, .. }
            | Problem::Checkpoint { seq, .. } => *seq,
            Problem::Deleted { from, .. } => *from,
            Problem::Inserted { seq, .. } => seq.unwrap_or(i64::MAX),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Altered { .. } => "altered",
            Problem::Reordered { .. } => "reordered",
            Problem::Deleted { .. } => "deleted",
            Problem::Inserted { .. } => "inserted",
            Problem::Relinked { .. } => "relinked",
            Problem::Forged { .. } => "inserted",
            Problem::Checkpoint { .. } => "checkpoint",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Altered { seq, id } => write!(
                f,
                "altered: the row at seq {seq} (id {id}) no longer matches its hash"
            ),
            Problem::Reordered { seq, id, belongs } => write!(
                f,
                "reordered: the row at seq {seq} (id {id}) was chained at seq {belongs}"
            ),
            Problem::Deleted { from, to } if from == to => {
                write!(f, "deleted: the row at seq {from} is missing")
            }
            Problem::Deleted { from, to } => {
                write!(f, "deleted: the rows at seq {from} to {to} are missing")
            }
            Problem::Inserted { seq: None, id } => {
                write!(f, "inserted: the row id {id} has no place in the chain")
            }
            Problem::Inserted { seq: Some(seq), id } => write!(
                f,
                "inserted: the row id {id} claims seq {seq}, which the chain gives another row or does not reach"
            ),
            Problem::Relinked { seq, id } => write!(
                f,
                "altered: the row at seq {seq} (id {id}) was rewritten with a recomputed hash; the next row no longer follows it"
            ),
            Problem::Forged { seq, id } => write!(
                f,
                "inserted: the row at seq {seq} (id {id}) was not written by vhod (its MAC under the chain key does not hold)"
            ),
            Problem::Checkpoint { id, seq, why } => match id {
                Some(id) => write!(f, "checkpoint {id} (seq {seq}): {why}"),
                None => write!(f, "external checkpoint (seq {seq}): {why}"),
            },
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Report {
    /// The places walked (from, to), and how many rows.
    pub from: i64,
    pub to: i64,
    pub rows: u64,
    pub checkpoints: usize,
    pub checkpoints_valid: usize,
    /// Where the last retention cut left the chain's start.
    pub cut_before: Option<i64>,
    /// Rows stored before the chain existed and not chained yet (the writer chains them at
    /// start): not verified.
    pub legacy_pending: bool,
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`].
    pub more: u64,
}

impl Report {
    /// Every row and checkpoint holds, and every row is chained (rows from before the chain
    /// still waiting to be chained are not verified, so they do not hold yet).
    pub fn holds(&self) -> bool {
        self.problems.is_empty() && self.more == 0 && !self.legacy_pending
    }

    /// The problem earliest in the chain.
    pub fn first(&self) -> Option<&Problem> {
        self.problems.iter().min_by_key(|p| p.place())
    }

    fn add(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more += 1;
        }
    }
}

/// What the walk is given beyond the database.
pub struct Trust<'a> {
    /// The verifier of a trusted key by its kid.
    pub key: &'a dyn Fn(&str) -> Option<Verifier>,
    /// Checkpoints from the external copy (name, JWS), checked alongside the stored ones: one
    /// the database lost or changed is found.
    pub external: Vec<(String, String)>,
    /// The chain key: each row's MAC is checked (without it, rows appended after the last
    /// checkpoint by someone with the database cannot be told from vhod's).
    pub mac: Option<&'a ring::hmac::Key>,
}

/// A checkpoint whose signature holds, by place.
struct Signed {
    id: Option<i64>,
    claims: Claims,
}

fn recompute(e: &StoredEvent, seq: i64) -> Option<Digest> {
    let alg = HashAlg::parse(e.hash_alg.as_deref()?)?;
    if e.enc != Some(chain::ENCODING) {
        return None;
    }
    let prev = chain::from_hex(e.prev_hash.as_deref()?)?;
    let fields = Fields {
        at_ms: e.at_ms,
        texts: e.texts(),
    };
    Some(chain::link(alg, seq, &prev, &fields))
}

/// Whether the row's columns at `seq`, after the link it claims to follow, give its link.
pub(crate) fn holds_at(e: &StoredEvent, seq: i64) -> bool {
    let stored = e.hash.as_deref().and_then(chain::from_hex);
    stored.is_some() && recompute(e, seq) == stored
}

/// Walks the chain from `from` (or its start) to the head.
pub async fn verify(db: &Db, from: Option<i64>, trust: &Trust<'_>) -> Result<Report, StoreError> {
    let log = db.audit_log();
    let mut report = Report::default();
    let head = log.head().await?;
    report.legacy_pending = head.legacy_until.is_some();

    // The checkpoints first: the walk checks rows against the ones whose signature holds.
    let stored = log.checkpoints().await?;
    report.checkpoints = stored.len() + trust.external.len();
    let mut signed: BTreeMap<i64, Vec<Signed>> = BTreeMap::new();
    for cp in &stored {
        match checkpoint::open(&cp.jws, trust.key) {
            Ok(claims)
                if claims.seq == cp.seq && claims.hash == cp.hash && claims.kind == cp.kind =>
            {
                report.checkpoints_valid += 1;
                signed.entry(claims.seq).or_default().push(Signed {
                    id: Some(cp.id),
                    claims,
                });
            }
            Ok(_) => report.add(Problem::Checkpoint {
                id: Some(cp.id),
                seq: cp.seq,
                why: "its columns differ from what it signed".into(),
            }),
            Err(e) => report.add(Problem::Checkpoint {
                id: Some(cp.id),
                seq: cp.seq,
                why: e.to_string(),
            }),
        }
    }
    let in_db: std::collections::HashSet<&str> = stored.iter().map(|cp| cp.jws.as_str()).collect();
    for (name, jws) in &trust.external {
        match checkpoint::open(jws, trust.key) {
            Ok(claims) => {
                report.checkpoints_valid += 1;
                if !in_db.contains(jws.as_str()) {
                    report.add(Problem::Checkpoint {
                        id: None,
                        seq: claims.seq,
                        why: format!("{name} is missing from the database"),
                    });
                }
                signed
                    .entry(claims.seq)
                    .or_default()
                    .push(Signed { id: None, claims });
            }
            Err(e) => report.add(Problem::Checkpoint {
                id: None,
                seq: 0,
                why: format!("{name}: {e}"),
            }),
        }
    }
    let cut = signed
        .values()
        .flatten()
        .filter(|s| s.claims.kind == CUT)
        .filter_map(|s| Some((s.claims.cut_before?, s.claims.cut_prev_hash.clone()?)))
        .max_by_key(|(before, _)| *before);
    report.cut_before = cut.as_ref().map(|(b, _)| *b);

    // Where the walk starts, and the link its first row must follow (unknown from an arbitrary
    // place: that row's own claim is taken).
    let start = cut.as_ref().map_or(1, |(b, _)| *b);
    let (from, mut prev): (i64, Option<Digest>) = match from {
        Some(f) if f > start => (f, None),
        _ => match &cut {
            Some((b, h)) => (*b, chain::from_hex(h)),
            None => (1, Some(chain::GENESIS)),
        },
    };
    report.from = from;
    let mut expected = from;
    // The last row taken as genuine: (seq, id, whether its own link held).
    let mut last: Option<(i64, i64)> = None;
    let mut pending: Vec<StoredEvent> = Vec::new();
    // The head read at the start bounds the walk: what arrives meanwhile is not walked (and
    // not mistaken for an insertion).
    let end = head.seq;
    let (mut after_seq, mut after_id) = (from - 1, i64::MAX);
    let mut macs = Macs {
        key: trust.mac,
        new_seen: false,
    };
    'walk: loop {
        let batch = log.after_row(after_seq, after_id, BATCH).await?;
        let done = (batch.len() as i64) < BATCH;
        if let Some(e) = batch.last() {
            (after_seq, after_id) = (e.seq, e.id);
        }
        for e in batch {
            if e.seq > end {
                break 'walk;
            }
            if pending.first().is_some_and(|p| p.seq != e.seq) {
                let group = std::mem::take(&mut pending);
                walk_group(
                    group,
                    &mut expected,
                    &mut prev,
                    &mut last,
                    &signed,
                    &mut macs,
                    &mut report,
                );
            }
            pending.push(e);
        }
        if done {
            break;
        }
    }
    // The last place's rows: pages go on by (seq, id), so a place's rows are whole here.
    if !pending.is_empty() {
        let group = std::mem::take(&mut pending);
        walk_group(
            group,
            &mut expected,
            &mut prev,
            &mut last,
            &signed,
            &mut macs,
            &mut report,
        );
    }
    report.to = expected - 1;

    // The end: the head and the newest checkpoint (of those it had reached) must not reach
    // past the last row.
    let reach = signed
        .range(..=end)
        .next_back()
        .map_or(0, |(seq, _)| *seq)
        .max(end);
    if reach > report.to && reach >= from {
        report.add(Problem::Deleted {
            from: report.to + 1,
            to: reach,
        });
    } else if end == report.to && end >= from {
        let last_hash = prev.map(|d| chain::to_hex(&d));
        if last_hash.as_deref() != Some(head.hash.as_str())
            && let Some((seq, id)) = last
        {
            report.add(Problem::Relinked { seq, id });
        }
    }

    // Rows claiming a place before the chain's start, or past the head as it is now.
    let now = log.head().await?;
    for e in log.outside(start, now.seq, MAX_PROBLEMS as i64 + 1).await? {
        report.add(Problem::Inserted {
            seq: Some(e.seq),
            id: e.id,
        });
    }

    // Rows without a place.
    let mut after_id = 0;
    loop {
        let rows = log.unplaced(after_id, BATCH).await?;
        let Some(e) = rows.last() else { break };
        after_id = e.id;
        for e in &rows {
            report.add(Problem::Inserted {
                seq: None,
                id: e.id,
            });
        }
    }
    report.problems.sort_by_key(|p| p.place());
    Ok(report)
}

/// The rows' MACs: a new row's covers its link; a row from before the chain's covers
/// `legacy:` and its link, and such rows may only open the chain.
struct Macs<'a> {
    key: Option<&'a ring::hmac::Key>,
    new_seen: bool,
}

impl Macs<'_> {
    /// Whether the row is vhod's (always, without the key).
    fn holds(&mut self, e: &StoredEvent) -> bool {
        let (Some(key), Some(hash)) = (self.key, e.hash.as_deref()) else {
            return self.key.is_none();
        };
        let Some(mac) = e.mac.as_deref() else {
            return false;
        };
        if mac == checkpoint::row_mac(key, hash) {
            self.new_seen = true;
            return true;
        }
        !self.new_seen && mac == checkpoint::row_mac(key, &format!("{}{hash}", checkpoint::LEGACY))
    }
}

/// The rows claiming one place: the genuine one is checked and moves the walk on; the others
/// were inserted.
fn walk_group(
    group: Vec<StoredEvent>,
    expected: &mut i64,
    prev: &mut Option<Digest>,
    last: &mut Option<(i64, i64)>,
    signed: &BTreeMap<i64, Vec<Signed>>,
    macs: &mut Macs<'_>,
    report: &mut Report,
) {
    let seq = group[0].seq;
    if seq > *expected {
        report.add(Problem::Deleted {
            from: *expected,
            to: seq - 1,
        });
        // The link across the gap cannot be checked.
        *prev = None;
    }
    let follows = |e: &StoredEvent| {
        prev.is_none_or(|p| e.prev_hash.as_deref().and_then(chain::from_hex) == Some(p))
    };
    let genuine = group
        .iter()
        .position(|e| holds_at(e, seq) && follows(e))
        .or_else(|| group.iter().position(|e| holds_at(e, seq)))
        .unwrap_or(0);
    for (i, e) in group.iter().enumerate() {
        if i != genuine {
            report.add(Problem::Inserted {
                seq: Some(seq),
                id: e.id,
            });
        }
    }
    let e = &group[genuine];
    if !holds_at(e, seq) {
        let belongs = (seq - REORDER_REACH..=seq + REORDER_REACH)
            .filter(|q| *q >= 1 && *q != seq)
            .find(|q| holds_at(e, *q));
        report.add(match belongs {
            Some(belongs) => Problem::Reordered {
                seq,
                id: e.id,
                belongs,
            },
            None => Problem::Altered { seq, id: e.id },
        });
    } else if !follows(e) {
        // This row holds on its own but does not follow the row before: that one was rewritten
        // with a recomputed link (unless it is itself already reported). The chain's first row
        // not following its start was itself rewritten.
        match *last {
            Some((s, id)) => {
                let reported = report.problems.iter().any(|p| p.place() == s);
                if !reported {
                    report.add(Problem::Relinked { seq: s, id });
                }
            }
            None => report.add(Problem::Altered { seq, id: e.id }),
        }
    }
    if !macs.holds(e) && !report.problems.iter().any(|p| p.place() == seq) {
        report.add(Problem::Forged { seq, id: e.id });
    }
    let stored = e.hash.as_deref().and_then(chain::from_hex);
    if let (Some(cps), Some(h)) = (signed.get(&seq), stored) {
        for cp in cps {
            if chain::from_hex(&cp.claims.hash) != Some(h) {
                report.add(Problem::Checkpoint {
                    id: cp.id,
                    seq,
                    why: "the chain here differs from what the checkpoint signed: the rows up to it were rewritten".into(),
                });
            }
        }
    }
    report.rows += group.len() as u64;
    *prev = stored;
    *last = Some((seq, e.id));
    *expected = seq + 1;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::checkpoint::{ChainSettings, Sealer};
    use crate::audit::{Audit, Event, Kind, Outcome};
    use crate::store::sql::test_dbs;
    use crate::tokens::keys::KeyStore;

    struct Chain {
        keys: Arc<KeyStore>,
        mac: Option<ring::hmac::Key>,
        _dir: tempfile::TempDir,
    }

    fn chain() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyStore::open(dir.path(), 3600).unwrap());
        let mac = Some(crate::audit::checkpoint::chain_key(dir.path()).unwrap());
        Chain {
            keys,
            mac,
            _dir: dir,
        }
    }

    impl Chain {
        /// A sealer checkpointing every `every` events.
        fn sealer(&self, every: i64) -> Sealer {
            Sealer {
                settings: ChainSettings {
                    checkpoint_events: every,
                    ..ChainSettings::default()
                },
                issuer: "https://vhod.test".into(),
                keys: Some(self.keys.clone()),
                mac: self.mac.clone(),
            }
        }

        async fn verify(&self, db: &Db, from: Option<i64>) -> Report {
            let keys = self.keys.clone();
            let key = move |kid: &str| keys.current().verifier(kid).cloned();
            verify(
                db,
                from,
                &Trust {
                    key: &key,
                    external: vec![],
                    mac: self.mac.as_ref(),
                },
            )
            .await
            .unwrap()
        }
    }

    /// Writes `n` events through one writer that checkpoints every `every`, one append each
    /// (a checkpoint falls due at the end of an append).
    async fn written(db: &Db, c: &Chain, n: usize, every: i64) {
        let (audit, worker) = Audit::start_with(db.clone(), c.sealer(every));
        for i in 0..n {
            let e = Event::new(Kind::Login, Outcome::Failure)
                .subject(Some(format!("acc-{i}")))
                .details(serde_json::json!({ "n": i }));
            audit.write(e).await.expect("stored");
        }
        worker.finish().await;
    }

    fn kinds(r: &Report) -> Vec<Problem> {
        r.problems.clone()
    }

    #[tokio::test]
    async fn an_untouched_chain_holds_with_its_checkpoints() {
        let c = chain();
        for t in test_dbs().await {
            written(&t.db, &c, 25, 10).await;
            let r = c.verify(&t.db, None).await;
            assert!(r.holds(), "{:?}", r.problems);
            assert_eq!((r.from, r.to, r.rows), (1, 25, 25));
            // Every 10 events, and the rest at the writer's end.
            assert_eq!((r.checkpoints, r.checkpoints_valid), (3, 3));
            let from = c.verify(&t.db, Some(12)).await;
            assert!(from.holds(), "{:?}", from.problems);
            assert_eq!((from.from, from.rows), (12, 14));
        }
    }

    #[tokio::test]
    async fn every_kind_of_tampering_is_found_and_placed() {
        let c = chain();
        for t in test_dbs().await {
            let db = &t.db;
            written(db, &c, 30, 100).await;
            db.tamper("UPDATE audit_events SET subject = 'someone-else' WHERE seq = 5")
                .await;
            db.tamper("DELETE FROM audit_events WHERE seq = 9").await;
            // Swap two rows' places (the unique index wants a step aside).
            db.tamper("UPDATE audit_events SET seq = -1 WHERE seq = 14")
                .await;
            db.tamper("UPDATE audit_events SET seq = 14 WHERE seq = 15")
                .await;
            db.tamper("UPDATE audit_events SET seq = 15 WHERE seq = -1")
                .await;
            db.tamper(
                "INSERT INTO audit_events (at_ms, kind, outcome, subject) VALUES (1, 'login', 'success', 'forged')",
            )
            .await;
            db.tamper(
                "INSERT INTO audit_events (at_ms, kind, outcome, seq, prev_hash, hash, enc, hash_alg) \
                 SELECT at_ms, kind, 'success', 31, hash, hash, enc, hash_alg FROM audit_events WHERE seq = 30",
            )
            .await;
            // Below the chain's start: a place no walk from the start reaches.
            db.tamper(
                "INSERT INTO audit_events (at_ms, kind, outcome, seq, prev_hash, hash, enc, hash_alg) \
                 SELECT at_ms, kind, 'success', 0, prev_hash, hash, enc, hash_alg FROM audit_events WHERE seq = 1",
            )
            .await;
            let r = c.verify(db, None).await;
            let id = |seq: i64| r.problems.iter().find(|p| p.place() == seq).cloned();
            assert!(
                matches!(id(0), Some(Problem::Inserted { seq: Some(0), .. })),
                "{r:?}"
            );
            assert!(
                matches!(id(5), Some(Problem::Altered { seq: 5, .. })),
                "{r:?}"
            );
            assert_eq!(id(9), Some(Problem::Deleted { from: 9, to: 9 }));
            assert!(
                matches!(
                    id(14),
                    Some(Problem::Reordered {
                        seq: 14,
                        belongs: 15,
                        ..
                    })
                ),
                "{r:?}"
            );
            assert!(
                matches!(
                    id(15),
                    Some(Problem::Reordered {
                        seq: 15,
                        belongs: 14,
                        ..
                    })
                ),
                "{r:?}"
            );
            assert!(matches!(
                id(31),
                Some(Problem::Inserted { seq: Some(31), .. })
            ));
            assert!(
                r.problems
                    .iter()
                    .any(|p| matches!(p, Problem::Inserted { seq: None, .. })),
                "{r:?}"
            );
            assert_eq!(r.first(), id(0).as_ref(), "the first is the earliest");
            assert_eq!(kinds(&r).len(), 7, "{:?}", r.problems);
        }
    }

    /// An editor who knows the encoding recomputes the edited row's link: the next row no
    /// longer follows it. One who recomputes every link to the head is caught by the signed
    /// checkpoint past the edit.
    #[tokio::test]
    async fn recomputed_links_are_caught_by_the_next_row_and_by_checkpoints() {
        let c = chain();
        for t in test_dbs().await {
            let db = &t.db;
            written(db, &c, 20, 10).await;
            rewrite(db, 4, 4).await;
            let r = c.verify(db, None).await;
            assert!(
                // With the chain key, the rewritten row's MAC gives it away first.
                matches!(
                    r.problems[..],
                    [Problem::Forged { seq: 4, .. }] | [Problem::Relinked { seq: 4, .. }]
                ),
                "{:?}",
                r.problems
            );
            // Now every link from there on, and the head, as a careful editor would.
            rewrite(db, 5, 20).await;
            let r = c.verify(db, None).await;
            assert!(
                r.problems.iter().any(
                    |p| matches!(p, Problem::Checkpoint { seq, .. } if (5..=20).contains(seq))
                ),
                "{:?}",
                r.problems
            );
            assert!(!r.holds());
        }
    }

    /// Someone with the database alone appends a row, links, head and all: its MAC gives it
    /// away (and a row from before the chain may not follow vhod's own).
    #[tokio::test]
    async fn a_row_appended_with_the_right_links_but_no_key_is_found() {
        let c = chain();
        for t in test_dbs().await {
            let db = &t.db;
            written(db, &c, 3, 100).await;
            let last = db.audit_log().after(2, 1).await.unwrap().remove(0);
            let mut forged = last.clone();
            forged.subject = Some("someone-else".into());
            let prev = chain::from_hex(last.hash.as_deref().unwrap()).unwrap();
            let h = chain::link(
                HashAlg::Sha256,
                4,
                &prev,
                &Fields {
                    at_ms: forged.at_ms,
                    texts: forged.texts(),
                },
            );
            let h = chain::to_hex(&h);
            db.tamper(&format!(
                "INSERT INTO audit_events (at_ms, kind, outcome, subject, details, seq, prev_hash, hash, enc, hash_alg, mac) \
                 VALUES ({}, 'login', 'failure', 'someone-else', '{}', 4, '{}', '{h}', 1, 'sha256', '{}')",
                forged.at_ms,
                forged.details.clone().unwrap_or_default(),
                last.hash.clone().unwrap_or_default(),
                "00".repeat(32),
            ))
            .await;
            db.tamper(&format!("UPDATE audit_chain SET seq = 4, hash = '{h}'"))
                .await;
            let r = c.verify(db, None).await;
            assert_eq!(
                r.problems,
                [Problem::Forged {
                    seq: 4,
                    id: r.problems.first().map_or(0, |p| match p {
                        Problem::Forged { id, .. } => *id,
                        _ => 0,
                    })
                }],
                "{r:?}"
            );
            // Passed off as a row from before the chain, it may not follow vhod's rows.
            let key = c.mac.as_ref().unwrap();
            let legacy = checkpoint::row_mac(key, &format!("{}{h}", checkpoint::LEGACY));
            db.tamper(&format!(
                "UPDATE audit_events SET mac = '{legacy}' WHERE seq = 4"
            ))
            .await;
            let r = c.verify(db, None).await;
            assert!(
                matches!(r.problems[..], [Problem::Forged { seq: 4, .. }]),
                "{r:?}"
            );
        }
    }

    /// Rewrites the rows `from..=to` as an editor who knows the encoding would: a new subject
    /// at `from`, every link recomputed, the head moved along.
    async fn rewrite(db: &Db, from: i64, to: i64) {
        let rows = db.audit_log().after(from - 1, to - from + 1).await.unwrap();
        let mut prev = chain::from_hex(rows[0].prev_hash.as_deref().unwrap()).unwrap();
        for mut e in rows {
            if e.seq == from {
                e.subject = Some("someone-else".into());
            }
            let fields = Fields {
                at_ms: e.at_ms,
                texts: e.texts(),
            };
            let h = chain::link(HashAlg::Sha256, e.seq, &prev, &fields);
            db.tamper(&format!(
                "UPDATE audit_events SET subject = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
                e.subject.unwrap_or_default(),
                chain::to_hex(&prev),
                chain::to_hex(&h),
                e.seq
            ))
            .await;
            prev = h;
        }
        db.tamper(&format!(
            "UPDATE audit_chain SET hash = '{}' WHERE seq = {to}",
            chain::to_hex(&prev)
        ))
        .await;
    }

    #[tokio::test]
    async fn rows_cut_by_retention_are_told_from_rows_deleted() {
        let c = chain();
        for t in test_dbs().await {
            let db = &t.db;
            let (audit, worker) = Audit::start_with(db.clone(), c.sealer(100));
            for i in 0..12 {
                let mut e =
                    Event::new(Kind::Login, Outcome::Success).subject(Some(format!("acc-{i}")));
                if i < 5 {
                    e.at_ms = 1_000;
                }
                audit.enqueue(e).await;
            }
            worker.finish().await;
            let gone = db
                .audit_log()
                .cut(2_000, 1_000, &c.sealer(100), crate::clock::now_millis())
                .await
                .unwrap();
            assert_eq!(gone, 5);
            let r = c.verify(db, None).await;
            assert!(r.holds(), "{:?}", r.problems);
            assert_eq!((r.cut_before, r.from, r.rows), (Some(6), 6, 7));
            // Nothing more is old: the next cut takes nothing.
            let again = db
                .audit_log()
                .cut(2_000, 1_000, &c.sealer(100), 0)
                .await
                .unwrap();
            assert_eq!(again, 0);
            // Without a key there is no cut at all.
            let unsigned = Sealer::unsigned(ChainSettings::default());
            let everything = crate::clock::now_millis() + 60_000;
            let log = db.audit_log();
            assert_eq!(log.cut(everything, 1_000, &unsigned, 0).await.unwrap(), 0);
            // A deletion past the cut is still one.
            db.tamper("DELETE FROM audit_events WHERE seq = 6").await;
            let r = c.verify(db, None).await;
            assert_eq!(r.problems, [Problem::Deleted { from: 6, to: 6 }]);
        }
    }

    /// Two replicas (two pools, two writers) append at once: one chain, no fork, dense places.
    #[tokio::test]
    async fn two_writers_at_once_keep_one_chain() {
        let c = chain();
        for t in test_dbs().await {
            let other = Db::connect(&t.url).await.unwrap();
            let (a, b) = tokio::join!(written(&t.db, &c, 400, 50), written(&other, &c, 400, 50));
            let ((), ()) = (a, b);
            let r = c.verify(&t.db, None).await;
            assert!(r.holds(), "{:?}", r.problems);
            assert_eq!((r.rows, r.to), (800, 800));
        }
    }

    /// Two replicas, each with a full queue (batches staged two at a time under the chain's
    /// lease on PostgreSQL, handed between them), append at once: one chain, no fork.
    #[tokio::test]
    async fn two_writers_with_full_queues_keep_one_chain() {
        let c = chain();
        for t in test_dbs().await {
            let other = Db::connect(&t.url).await.unwrap();
            let fast = |db: Db| {
                let sealer = c.sealer(1_000);
                async move {
                    let (audit, worker) = Audit::start_with(db, sealer);
                    for i in 0..5_000 {
                        let e = Event::new(Kind::Login, Outcome::Failure)
                            .subject(Some(format!("acc-{i}")));
                        audit.enqueue(e).await;
                    }
                    worker.finish().await;
                }
            };
            tokio::join!(fast(t.db.clone()), fast(other));
            let r = c.verify(&t.db, None).await;
            assert!(r.holds(), "{:?}", r.problems);
            assert_eq!((r.rows, r.to), (10_000, 10_000));
        }
    }

    /// Rows stored before the chain existed are chained once, in their order, by the first
    /// writer; a row slipped in later without a place is an insertion.
    #[tokio::test]
    async fn rows_older_than_the_chain_are_chained_once() {
        let c = chain();
        for t in test_dbs().await {
            let db = &t.db;
            for i in 0..3 {
                db.tamper(&format!(
                    "INSERT INTO audit_events (at_ms, kind, outcome, subject, ip) VALUES ({i}, 'login', 'success', 'old-{i}', '203.0.113.{i}')"
                ))
                .await;
            }
            db.tamper("UPDATE audit_chain SET legacy_until = (SELECT MAX(id) FROM audit_events)")
                .await;
            assert!(c.verify(db, None).await.legacy_pending);
            written(db, &c, 2, 100).await;
            let r = c.verify(db, None).await;
            assert!(r.holds() && !r.legacy_pending, "{:?}", r.problems);
            let all = db.audit_log().after(0, 10).await.unwrap();
            let subjects: Vec<_> = all.iter().map(|e| e.subject.clone().unwrap()).collect();
            assert_eq!(subjects, ["old-0", "old-1", "old-2", "acc-0", "acc-1"]);
            assert_eq!(
                all[0].ip_key.as_deref(),
                crate::store::audit_log::ip_key("203.0.113.0").as_deref()
            );
            db.tamper(
                "INSERT INTO audit_events (at_ms, kind, outcome) VALUES (5, 'login', 'success')",
            )
            .await;
            let r = c.verify(db, None).await;
            assert!(matches!(
                r.problems[..],
                [Problem::Inserted { seq: None, .. }]
            ));
        }
    }

    /// A checkpoint signed by a key vhod does not trust, or edited, does not hold.
    #[tokio::test]
    async fn checkpoints_hold_only_under_a_trusted_key() {
        let c = chain();
        // Another key set, the same chain key: only the signatures differ.
        let mut stranger = chain();
        stranger.mac = c.mac.clone();
        for t in test_dbs().await {
            let db = &t.db;
            written(db, &c, 5, 5).await;
            assert!(c.verify(db, None).await.holds());
            assert!(matches!(
                stranger.verify(db, None).await.problems[..],
                [Problem::Checkpoint { .. }]
            ));
            db.tamper("UPDATE audit_checkpoints SET jws = jws || 'x'")
                .await;
            let r = c.verify(db, None).await;
            assert!(
                matches!(&r.problems[..], [Problem::Checkpoint { why, .. }] if why.contains("signature") || why.contains("JWS")),
                "{:?}",
                r.problems
            );
        }
    }
}
