//! Signed checkpoints of the chain, and the seal the append uses.
//!
//! A checkpoint is a compact JWS (typ `vhod-audit-checkpoint+jwt`) over [`Claims`]: the head's
//! place, its link, the digest, the time, and, for a retention cut, the first kept place and the
//! link it follows. It is signed with vhod's signing key (ES256, its `kid` in the header), so a
//! database administrator who rewrites rows and recomputes their links still cannot produce a
//! checkpoint over the rewritten chain. Checkpoints also go to an external append-only copy (a
//! directory, an HTTP endpoint), so rewriting the checkpoints table is caught too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chain::{self, ENCODING, HashAlg};
use crate::store::audit_log::{Head, NewCheckpoint, Seal, StoredCheckpoint};
use crate::store::sql::Db;
use crate::tokens::jwk::Verifier;
use crate::tokens::jws;
use crate::tokens::keys::{KeyStore, SigningAlg};

pub const TYP: &str = "vhod-audit-checkpoint+jwt";
pub const HEAD: &str = "head";
pub const CUT: &str = "cut";

/// What a checkpoint asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The version of these claims.
    pub v: i64,
    pub iss: String,
    /// The head's place and link (64 hex digits) when it was signed.
    pub seq: i64,
    pub hash: String,
    /// The chain's digest (`sha256`, `belt-hash`).
    pub alg: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// `head`, or `cut` for a retention cut.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_prev_hash: Option<String>,
}

/// Where checkpoints are copied, beyond the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// Files created once and never rewritten (`<seq>-<id>.jws`); give it a write-once mount.
    Dir(PathBuf),
    /// `POST` of the JWS (`application/jose`) to an append-only service.
    Http(url::Url),
}

/// How the chain is kept: digest, when checkpoints fall due, where they are copied, how long
/// events stay.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    pub alg: HashAlg,
    pub checkpoint_events: i64,
    pub checkpoint_ms: i64,
    pub external: Option<External>,
    /// Events older than this are cut off (behind a cut checkpoint); `None`: kept for ever.
    pub retention_ms: Option<i64>,
}

impl Default for ChainSettings {
    fn default() -> Self {
        ChainSettings {
            alg: HashAlg::Sha256,
            checkpoint_events: 10_000,
            checkpoint_ms: 10 * 60 * 1000,
            external: None,
            retention_ms: None,
        }
    }
}

/// The append's seal: links by the chain's digest, checkpoints signed by the key store's
/// current ES256 key (none without a key store: the CLI's few events are checkpointed by the
/// next server's writer).
#[derive(Clone)]
pub struct Sealer {
    pub settings: ChainSettings,
    pub issuer: String,
    pub keys: Option<Arc<KeyStore>>,
    /// The chain key (`chain_key`): every row's MAC. None in tests beside the code.
    pub mac: Option<ring::hmac::Key>,
}

impl Sealer {
    pub fn unsigned(settings: ChainSettings) -> Sealer {
        Sealer {
            settings,
            issuer: String::new(),
            keys: None,
            mac: None,
        }
    }

    fn sign(&self, claims: Claims) -> Option<NewCheckpoint> {
        let set = self.keys.as_ref()?.current();
        let key = set.signer(SigningAlg::Es256)?;
        let jws = jws::sign(key, TYP, &claims)?;
        Some(NewCheckpoint {
            seq: claims.seq,
            hash: claims.hash,
            at_ms: claims.at,
            kind: if claims.kind == CUT { CUT } else { HEAD },
            cut_before: claims.cut_before,
            cut_prev_hash: claims.cut_prev_hash,
            kid: key.kid.clone(),
            jws,
        })
    }

    fn claims(&self, head: &Head, now_ms: i64, kind: &str) -> Claims {
        Claims {
            v: 1,
            iss: self.issuer.clone(),
            seq: head.seq,
            hash: head.hash.clone(),
            alg: self.settings.alg.as_str().to_string(),
            at: now_ms,
            kind: kind.to_string(),
            cut_before: None,
            cut_prev_hash: None,
        }
    }
}

impl Seal for Sealer {
    fn alg(&self) -> &'static str {
        self.settings.alg.as_str()
    }

    fn encoding(&self) -> i64 {
        ENCODING
    }

    fn link(&self, seq: i64, prev: &str, at_ms: i64, texts: &[Option<&str>; 15]) -> String {
        // A head whose link is not 64 hex digits was tampered with; chaining on from zeros
        // leaves the break for the verifier to find at this row.
        let prev = chain::from_hex(prev).unwrap_or(chain::GENESIS);
        let fields = chain::Fields {
            at_ms,
            texts: *texts,
        };
        chain::to_hex(&chain::link(self.settings.alg, seq, &prev, &fields))
    }

    fn mac(&self, hash: &str) -> Option<String> {
        self.mac.as_ref().map(|k| row_mac(k, hash))
    }

    fn legacy_mac(&self, hash: &str) -> Option<String> {
        self.mac
            .as_ref()
            .map(|k| row_mac(k, &format!("{LEGACY}{hash}")))
    }

    fn checkpoint(&self, head: &Head, now_ms: i64) -> Option<NewCheckpoint> {
        let since = head.seq - head.checkpoint_seq;
        let due = since > 0
            && (since >= self.settings.checkpoint_events
                || now_ms - head.checkpoint_at_ms >= self.settings.checkpoint_ms);
        if !due {
            return None;
        }
        self.sign(self.claims(head, now_ms, HEAD))
    }

    fn cut(
        &self,
        head: &Head,
        cut_before: i64,
        cut_prev_hash: &str,
        now_ms: i64,
    ) -> Option<NewCheckpoint> {
        let mut claims = self.claims(head, now_ms, CUT);
        claims.cut_before = Some(cut_before);
        claims.cut_prev_hash = Some(cut_prev_hash.to_string());
        self.sign(claims)
    }
}

/// What a legacy row's MAC covers before its link: such rows may only open the chain.
pub const LEGACY: &str = "legacy:";

/// HMAC-SHA256 of `text` under the chain key, as 64 hex digits.
pub fn row_mac(key: &ring::hmac::Key, text: &str) -> String {
    hex::encode(ring::hmac::sign(key, text.as_bytes()).as_ref())
}

/// The chain key: 32 random bytes in `<keys dir>/audit/chain.key` (hex), made on first use
/// and shared by the replicas as the signing keys are. It stays outside the database: whoever
/// holds only the database cannot make a row that passes as vhod's.
pub fn chain_key(keys_dir: &std::path::Path) -> anyhow::Result<ring::hmac::Key> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = keys_dir.join("audit");
    let path = dir.join("chain.key");
    let read = |path: &std::path::Path| -> anyhow::Result<ring::hmac::Key> {
        let text = std::fs::read_to_string(path)?;
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| anyhow::anyhow!("{} is not 64 hex digits", path.display()))?;
        Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))
    };
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(&dir)?;
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness for the chain key"))?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut f) => {
            f.write_all(hex::encode(bytes).as_bytes())?;
            f.sync_all()?;
        }
        // Another replica made it first: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    read(&path)
}

/// The chain key when there is one (the verifier does not make one).
pub fn chain_key_if_present(keys_dir: &std::path::Path) -> anyhow::Result<Option<ring::hmac::Key>> {
    if keys_dir.join("audit").join("chain.key").exists() {
        chain_key(keys_dir).map(Some)
    } else {
        Ok(None)
    }
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is not a JWS of ours")]
    Malformed,
    #[error("signed by a key that is not trusted (kid {0})")]
    UnknownKey(String),
    #[error("the signature does not hold")]
    BadSignature,
}

/// The claims of a checkpoint whose signature holds under one of `trusted` (by kid).
pub fn open(
    jws_text: &str,
    trusted: &dyn Fn(&str) -> Option<Verifier>,
) -> Result<Claims, CheckpointError> {
    let header = jws::peek_header(jws_text).map_err(|_| CheckpointError::Malformed)?;
    if header.typ.as_deref() != Some(TYP) {
        return Err(CheckpointError::Malformed);
    }
    let kid = header.kid.clone().ok_or(CheckpointError::Malformed)?;
    let verifier = trusted(&kid).ok_or_else(|| CheckpointError::UnknownKey(kid.clone()))?;
    match jws::verify::<Claims>(jws_text, |_| Some(&verifier)) {
        Ok((_, claims)) => Ok(claims),
        Err(jws::JwsError::BadSignature) => Err(CheckpointError::BadSignature),
        Err(_) => Err(CheckpointError::Malformed),
    }
}

/// The file name of a checkpoint in the external directory: in the chain's order.
pub fn file_name(cp: &StoredCheckpoint) -> String {
    format!("{:020}-{:010}.jws", cp.seq, cp.id)
}

const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Copies the checkpoints not yet copied to `external`, oldest first, stopping at the first
/// that cannot be (tried again later); how many went.
pub async fn export(db: &Db, external: &External, http: &reqwest::Client) -> anyhow::Result<u64> {
    let log = db.audit_log();
    let mut n = 0;
    loop {
        let pending = log.unexported(100).await?;
        if pending.is_empty() {
            return Ok(n);
        }
        for cp in pending {
            match external {
                External::Dir(dir) => write_once(&dir.join(file_name(&cp)), &cp.jws).await?,
                External::Http(url) => {
                    let r = http
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/jose")
                        .timeout(EXPORT_TIMEOUT)
                        .body(cp.jws.clone())
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        anyhow::bail!("the checkpoint endpoint answered {}", r.status());
                    }
                }
            }
            log.mark_exported(cp.id, crate::clock::now()).await?;
            n += 1;
        }
    }
}

/// Creates `path` with `text`, whole or not at all: written to a temporary file first, then
/// linked to its name, which fails rather than replace a file (so neither a crash nor a stop
/// half-way leaves a partial copy that would block every later one). An existing file with the
/// same text is the same copy (an export retried after the link but before it was marked).
async fn write_once(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension(format!("tmp-{}", crate::secrets::random_id()));
    let mut f = tokio::fs::File::create(&tmp).await?;
    f.write_all(text.as_bytes()).await?;
    f.sync_all().await?;
    drop(f);
    let linked = tokio::fs::hard_link(&tmp, path).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let there = tokio::fs::read_to_string(path).await?;
            if there == text {
                Ok(())
            } else {
                anyhow::bail!("{} exists with other content", path.display())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads the checkpoints of an external directory (for `vhod audit verify`), in file order.
pub fn read_dir(dir: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jws") {
            // A checkpoint is a few hundred bytes; anything far larger is not one of ours.
            if entry.metadata()?.len() > jws::MAX_JWS_LEN as u64 {
                anyhow::bail!("{name} is too large to be a checkpoint");
            }
            out.push((
                name,
                std::fs::read_to_string(entry.path())?.trim().to_string(),
            ));
        }
    }
    out.sort();
    Ok(out)
}
