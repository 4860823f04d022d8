//! `vhod audit`: the audit trail's checks from the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::audit::checkpoint;
use crate::audit::verify::{Report, Trust, verify};
use crate::config::Settings;
use crate::server;
use crate::tokens::jwk::{JwkSet, Verifier};
use crate::tokens::keys::KeyStore;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the chain and the checkpoints; exit 0 only when every row and signature holds.
    Verify(VerifyArgs),
    /// Check an export (JSON Lines) on its own: its rows, their links, its checkpoint's
    /// signature. Needs no database: only the public keys.
    VerifyExport(VerifyExportArgs),
    /// Generate realistic events through the ordered writer (benchmarks, rehearsals); prints
    /// the writer's rate. Not for a production database.
    Seed(SeedArgs),
}

#[derive(Args)]
pub struct SeedArgs {
    /// How many events.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Accounts they are spread over.
    #[arg(long, default_value_t = 200_000)]
    accounts: u64,
    /// Days up to now they are stamped over.
    #[arg(long, default_value_t = 365)]
    days: u64,
    /// The generator's seed (the same seed, the same events).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
pub struct VerifyExportArgs {
    /// The export (`/admin/v1/audit/export?format=jsonl`).
    file: PathBuf,
    /// vhod's public keys (its /jwks). Repeatable; without it, the local key set is used.
    #[arg(long)]
    jwks: Vec<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Start at this place in the chain (its row's link is taken as given).
    #[arg(long)]
    from: Option<i64>,
    /// Public keys (a JWKS file) also trusted for checkpoint signatures: keys retired and
    /// pruned since they signed. Repeatable.
    #[arg(long)]
    jwks: Vec<PathBuf>,
    /// The external checkpoint directory to compare with (default: the configured one).
    #[arg(long)]
    checkpoints: Option<PathBuf>,
}

pub async fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(a) => verify_command(settings, a).await,
        AuditCommand::VerifyExport(a) => verify_export(settings, a),
        AuditCommand::Seed(a) => seed(settings, a).await,
    }
}

/// The keys a checkpoint may be signed with: vhod's key set (active and retired) and the
/// given JWKS files.
fn trusted_keys(
    settings: &Settings,
    files: &[PathBuf],
    local: bool,
) -> anyhow::Result<Vec<Verifier>> {
    let mut out = Vec::new();
    let mut sets = Vec::new();
    if local {
        let store = KeyStore::open(&settings.keys_dir, settings.key_retention())?;
        sets.push(store.current().jwks.clone());
    }
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let set: JwkSet = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JWKS", f.display()))?;
        sets.push(set);
    }
    for set in sets {
        for jwk in set.keys {
            if let Ok(v) = jwk.verifier() {
                out.push(v);
            }
        }
    }
    Ok(out)
}

async fn verify_command(settings: &Settings, a: VerifyArgs) -> anyhow::Result<()> {
    let db = server::open_db(settings).await?;
    let keys = trusted_keys(settings, &a.jwks, true)?;
    let key = |kid: &str| keys.iter().find(|v| v.kid.as_deref() == Some(kid)).cloned();
    let dir = a.checkpoints.or(match &settings.audit.chain.external {
        Some(checkpoint::External::Dir(d)) => Some(d.clone()),
        _ => None,
    });
    let external = match &dir {
        Some(d) => checkpoint::read_dir(d)
            .with_context(|| format!("reading the checkpoints in {}", d.display()))?,
        None => vec![],
    };
    // Without the chain key (verifying away from the servers' keys), rows appended after the
    // last checkpoint cannot be told from vhod's own.
    let mac = match checkpoint::chain_key_if_present(&settings.keys_dir)? {
        Some(k) => Some(k),
        None => {
            println!(
                "note: no chain key in {}: the rows' MACs are not checked",
                settings.keys_dir.display()
            );
            None
        }
    };
    let report = verify(
        &db,
        a.from,
        &Trust {
            key: &key,
            external,
            mac: mac.as_ref(),
        },
    )
    .await?;
    print(&report);
    if !report.holds() {
        bail!("the audit trail does not hold");
    }
    Ok(())
}

fn print(r: &Report) {
    println!(
        "chain: seq {} to {} ({} rows){}",
        r.from,
        r.to,
        r.rows,
        match r.cut_before {
            Some(c) => format!(", events before seq {c} cut off by retention (signed)"),
            None => String::new(),
        }
    );
    println!(
        "checkpoints: {} of {} signatures hold",
        r.checkpoints_valid, r.checkpoints
    );
    if r.legacy_pending {
        println!(
            "note: events stored before the chain existed are not chained yet (the server's writer chains them at start)"
        );
    }
    if let Some(first) = r.first() {
        println!("first problem: {first}");
    }
    for p in &r.problems {
        println!("  {p}");
    }
    if r.more > 0 {
        println!("  … and {} more", r.more);
    }
    if r.holds() {
        println!("the audit trail holds");
    }
}

fn verify_export(settings: &Settings, a: VerifyExportArgs) -> anyhow::Result<()> {
    use std::io::BufRead;
    let keys = trusted_keys(settings, &a.jwks, a.jwks.is_empty())?;
    let key = |kid: &str| keys.iter().find(|v| v.kid.as_deref() == Some(kid)).cloned();
    let file =
        std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
    let r = crate::audit::export::verify_lines(std::io::BufReader::new(file).lines(), &key);
    println!("events: {}", r.events);
    match &r.checkpoint {
        Some(Ok(c)) => println!(
            "checkpoint: seq {} signed at {} holds",
            c.seq,
            crate::audit::timeline::rfc3339(c.at)
        ),
        Some(Err(e)) => println!("checkpoint: {e}"),
        None => {}
    }
    for p in &r.problems {
        println!("  {p}");
    }
    if !r.holds() {
        bail!("the export does not verify");
    }
    println!("the export holds");
    Ok(())
}

async fn seed(settings: &Settings, a: SeedArgs) -> anyhow::Result<()> {
    let db = server::open_db(settings).await?;
    let keys = std::sync::Arc::new(KeyStore::open(
        &settings.keys_dir,
        settings.key_retention(),
    )?);
    let (audit, worker) = crate::audit::Audit::start_with(
        db,
        crate::audit::Sealer {
            settings: settings.audit.chain.clone(),
            issuer: settings.issuer.clone(),
            keys: Some(keys),
            mac: Some(checkpoint::chain_key(&settings.keys_dir)?),
        },
    );
    let plan = crate::audit::seed::SeedPlan {
        events: a.events,
        accounts: a.accounts,
        days: a.days,
        seed: a.seed,
    };
    let start = std::time::Instant::now();
    crate::audit::seed::seed(&audit, &plan).await;
    worker.finish().await;
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{} events in {elapsed:.1} s: {:.0} events/s through the writer",
        a.events,
        a.events as f64 / elapsed
    );
    Ok(())
}
