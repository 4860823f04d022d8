//! The audit trail at scale, against a real PostgreSQL: ingestion through the ordered writer
//! with the chain, the officers' filtered queries (by person, by address range), and the
//! streaming export of a month. A load generator, not a timed test: it prints figures.
//!
//! ```text
//! VHOD_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/vhod_bench \
//!   VHOD_BENCH_EVENTS=10000000 cargo bench --bench audit
//! ```
//! The database is seeded up to VHOD_BENCH_EVENTS (`vhod audit seed`'s generator) on the
//! first run; later runs only query.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use vhod::audit::export::{self, Format};
use vhod::audit::seed::{SeedPlan, seed};
use vhod::audit::{Audit, ChainSettings, Sealer};
use vhod::store::audit_log::cidr_range;
use vhod::store::audit_search::AuditQuery;
use vhod::store::sql::Db;
use vhod::tokens::keys::KeyStore;

const ACCOUNTS: u64 = 200_000;
const QUERIES: usize = 400;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut t: Vec<Duration>, rows: usize) {
    t.sort();
    println!(
        "{name}: {} queries, {rows} rows; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        t.len(),
        percentile(&t, 0.5).as_secs_f64() * 1e3,
        percentile(&t, 0.99).as_secs_f64() * 1e3,
        t.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// SplitMix64, for picking whom to look for.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() {
    let Ok(url) = std::env::var("VHOD_BENCH_DATABASE_URL") else {
        eprintln!("VHOD_BENCH_DATABASE_URL is not set: nothing to measure");
        return;
    };
    let events: u64 = std::env::var("VHOD_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let db = Db::connect(&url).await.expect("the database");
        db.migrate().await.expect("migrations");
        let keys_dir = tempfile::tempdir().expect("a keys directory");
        let keys = std::sync::Arc::new(KeyStore::open(keys_dir.path(), 3600).expect("keys"));
        let sealer = Sealer {
            settings: ChainSettings::default(),
            issuer: "https://vhod.bench".into(),
            keys: Some(keys),
            mac: Some(vhod::audit::checkpoint::chain_key(keys_dir.path()).expect("the chain key")),
        };
        let have = db.audit_log().head().await.expect("the head").seq as u64;
        let (audit, worker) = Audit::start_with(db.clone(), sealer);
        if have < events {
            let n = events - have;
            let start = Instant::now();
            seed(
                &audit,
                &SeedPlan {
                    events: n,
                    accounts: ACCOUNTS,
                    days: 365,
                    seed: have + 1,
                },
            )
            .await;
            // The writer has them all once a write behind them is acknowledged.
            audit
                .write(vhod::audit::Event::new(
                    vhod::audit::Kind::Notice,
                    vhod::audit::Outcome::Success,
                ))
                .await
                .expect("stored");
            let s = start.elapsed().as_secs_f64();
            println!(
                "ingestion: {n} events through the ordered writer with the chain in {s:.1} s: {:.0} events/s",
                n as f64 / s
            );
        }
        // What autovacuum does in a deployment (it is off on some test machines): statistics
        // of the table as it now is, which the planner of the officers' queries relies on.
        if url.starts_with("postgres") {
            let pool = sqlx::AnyPool::connect(&url).await.expect("the database");
            sqlx::query("ANALYZE audit_events")
                .execute(&pool)
                .await
                .expect("analyze");
        }
        let log = db.audit_log();
        println!("chain head: {}", log.head().await.expect("the head").seq);

        // A person's events, newest first, a page of 50.
        let mut times = Vec::new();
        let mut rows = 0;
        for i in 0..QUERIES {
            let q = AuditQuery {
                subjects: vec![format!("seed-account-{:08}", mix(i as u64) % ACCOUNTS)],
                descending: true,
                ..AuditQuery::default()
            };
            let t = Instant::now();
            rows += log.search(&q, 51).await.expect("a search").len();
            times.push(t.elapsed());
        }
        report("by person (sub)", times, rows);

        // A person's failed sign-ins in a month.
        let now = vhod::clock::now_millis();
        let mut times = Vec::new();
        let mut rows = 0;
        for i in 0..QUERIES {
            let q = AuditQuery {
                subjects: vec![format!("seed-account-{:08}", mix(i as u64 + 7) % ACCOUNTS)],
                kinds: vec!["login".into()],
                outcome: Some("failure".into()),
                from_ms: Some(now - 30 * 86_400_000),
                descending: true,
                ..AuditQuery::default()
            };
            let t = Instant::now();
            rows += log.search(&q, 51).await.expect("a search").len();
            times.push(t.elapsed());
        }
        report("by person, kind, outcome and month", times, rows);

        // An address's network (/24), newest first.
        let mut times = Vec::new();
        let mut rows = 0;
        for i in 0..QUERIES {
            let net = (mix(i as u64 + 99) % ACCOUNTS).wrapping_mul(2_654_435_761) >> 8;
            let net = net % 40_000;
            let cidr = format!("{}.{}.{}.0/24", 10 + (net >> 16) % 200, (net >> 8) & 255, net & 255);
            let q = AuditQuery {
                ip_range: cidr_range(&cidr),
                descending: true,
                ..AuditQuery::default()
            };
            let t = Instant::now();
            rows += log.search(&q, 51).await.expect("a search").len();
            times.push(t.elapsed());
        }
        report("by address range (/24)", times, rows);

        // One address of the spraying range, failures only.
        let mut times = Vec::new();
        let mut rows = 0;
        for i in 0..QUERIES / 4 {
            let q = AuditQuery {
                ip_range: cidr_range(&format!("198.51.100.{}", i % 256)),
                outcome: Some("failure".into()),
                descending: true,
                ..AuditQuery::default()
            };
            let t = Instant::now();
            rows += log.search(&q, 51).await.expect("a search").len();
            times.push(t.elapsed());
        }
        report("by one busy address, failures", times, rows);

        // The export of the last 30 days, as JSON Lines.
        let q = AuditQuery {
            from_ms: Some(now - 30 * 86_400_000),
            to_ms: Some(now),
            ..AuditQuery::default()
        };
        let t = Instant::now();
        let plan = export::plan(&db, &audit, q).await.expect("a plan");
        let mut stream = Box::pin(export::stream(db.clone(), plan, Format::JsonLines));
        let (mut lines, mut bytes) = (0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("a chunk");
            lines += chunk.bytes().filter(|b| *b == b'\n').count() as u64;
            bytes += chunk.len() as u64;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "export of a month (JSON Lines): {lines} lines, {:.0} MB in {s:.1} s: {:.0} events/s",
            bytes as f64 / 1e6,
            lines as f64 / s
        );
        worker.finish().await;
    });
}
