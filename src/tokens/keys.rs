//! The signing key set. Private keys live in `<keys_dir>/signing/` as PKCS#8 PEM files, with
//! `keyset.json` saying which key is active per algorithm and when older ones were retired.
//! Retired keys stay published in JWKS until every token they signed has expired, then are pruned.
//! A running server notices a rotation (by the file's mtime) and swaps its snapshot atomically.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde::{Deserialize, Serialize};

use super::jwk::{JwkSet, PublicJwk, Verifier};
use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum SigningAlg {
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

enum Pair {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pair: Pair,
}

impl SigningKey {
    fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> anyhow::Result<(Pair, PublicJwk)> {
        let rng = SystemRandom::new();
        Ok(match alg {
            SigningAlg::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                    &rng,
                )
                .map_err(|e| anyhow::anyhow!("bad ES256 key: {e}"))?;
                let jwk = PublicJwk::ec_p256("", kp.public_key().as_ref());
                (Pair::Es256(kp), jwk)
            }
            SigningAlg::Rs256 => {
                let kp = RsaKeyPair::from_pkcs8(der)
                    .map_err(|e| anyhow::anyhow!("bad RS256 key: {e}"))?;
                let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(kp.public());
                let jwk = PublicJwk::rsa("", &public.n, &public.e);
                (Pair::Rs256(kp), jwk)
            }
            SigningAlg::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| anyhow::anyhow!("bad EdDSA key: {e}"))?;
                let jwk = PublicJwk::ed25519("", kp.public_key().as_ref());
                (Pair::EdDsa(kp), jwk)
            }
        })
    }

    /// A PKCS#8 PEM private key of any of our algorithms, under the thumbprint of its public
    /// key (a key of ours that a party we call knows by its JWK: an upstream's
    /// `private_key_jwt`).
    pub fn from_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let (label, der) =
            pem_rfc7468::decode_vec(pem.as_bytes()).map_err(|e| anyhow::anyhow!("not PEM: {e}"))?;
        if label != "PRIVATE KEY" {
            bail!("not a PKCS#8 private key (BEGIN PRIVATE KEY)");
        }
        for alg in SigningAlg::ALL {
            if let Ok((pair, jwk)) = SigningKey::from_pkcs8(alg, &der) {
                return Ok(SigningKey {
                    kid: jwk.thumbprint(),
                    alg,
                    pair,
                });
            }
        }
        bail!("not an ES256 (P-256), RS256 or EdDSA (Ed25519) key")
    }

    /// None only if the OS random number generator fails (ECDSA and RSA blinding need it).
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        match &self.pair {
            Pair::Es256(kp) => kp
                .sign(&SystemRandom::new(), message)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            Pair::Rs256(kp) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .ok()
                .map(|()| sig)
            }
            Pair::EdDsa(kp) => Some(kp.sign(message).as_ref().to_vec()),
        }
    }
}

fn generate_pkcs8(alg: SigningAlg) -> anyhow::Result<Vec<u8>> {
    let rng = SystemRandom::new();
    Ok(match alg {
        SigningAlg::Es256 => {
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow::anyhow!("generating an ES256 key"))?
                .as_ref()
                .to_vec()
        }
        SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an EdDSA key"))?
            .as_ref()
            .to_vec(),
        SigningAlg::Rs256 => {
            // ring signs with RSA but cannot generate RSA keys; the RustCrypto rsa crate does.
            use rsa::pkcs8::EncodePrivateKey;
            let mut rng = rsa_rng::OsRng;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).context("generating an RS256 key")?;
            key.to_pkcs8_der()
                .context("encoding the RS256 key")?
                .as_bytes()
                .to_vec()
        }
    })
}

/// The rsa crate wants a `rand_core` RNG; this one draws from the OS through ring.
mod rsa_rng {
    use rsa::rand_core::{CryptoRng, Error, RngCore};

    pub struct OsRng;

    impl RngCore for OsRng {
        fn next_u32(&mut self) -> u32 {
            u32::from_le_bytes(crate::secrets::random_bytes::<4>())
        }
        fn next_u64(&mut self) -> u64 {
            u64::from_le_bytes(crate::secrets::random_bytes::<8>())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            use ring::rand::SecureRandom;
            ring::rand::SystemRandom::new()
                .fill(dest)
                .expect("the operating system's random number generator failed");
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl CryptoRng for OsRng {}
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyMeta {
    kid: String,
    alg: SigningAlg,
    created_at: i64,
    #[serde(default)]
    retired_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct KeySetFile {
    keys: Vec<KeyMeta>,
}

/// An immutable snapshot: swapped whole when the key set changes.
pub struct KeySet {
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    verifiers: HashMap<String, Verifier>,
    pub jwks: JwkSet,
    /// JWKS, serialised once per snapshot.
    pub jwks_json: Arc<str>,
    /// When the next retired key stops being published (a reload is due then).
    next_prune_at: Option<i64>,
}

impl KeySet {
    pub fn signer(&self, alg: SigningAlg) -> Option<&Arc<SigningKey>> {
        self.active.get(&alg)
    }

    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.get(kid)
    }
}

pub struct KeyStore {
    dir: PathBuf,
    current: ArcSwap<KeySet>,
    seen_mtime: Mutex<Option<SystemTime>>,
}

fn signing_dir(keys_dir: &Path) -> PathBuf {
    keys_dir.join("signing")
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("keyset.json")
}

fn write_atomic(path: &Path, data: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", crate::secrets::random_id()));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A lock file so two processes starting at once (two replicas, the CLI beside `serve`)
/// do not both generate keys.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(dir: &Path) -> anyhow::Result<DirLock> {
        let path = dir.join(".lock");
        for _ in 0..300 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(DirLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than a minute belongs to a process that died.
                    if let Ok(m) = fs::metadata(&path).and_then(|m| m.modified())
                        && m.elapsed().unwrap_or_default() > Duration::from_secs(60)
                    {
                        let _ = fs::remove_file(&path);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e).with_context(|| format!("locking {}", dir.display())),
            }
        }
        bail!(
            "timed out waiting for the key directory lock {}",
            path.display()
        )
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn read_meta(dir: &Path) -> anyhow::Result<Option<KeySetFile>> {
    match fs::read(meta_path(dir)) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("parsing keyset.json")?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading keyset.json"),
    }
}

fn add_key(dir: &Path, meta: &mut KeySetFile, alg: SigningAlg, now: i64) -> anyhow::Result<()> {
    let der = generate_pkcs8(alg)?;
    let (_, jwk) = SigningKey::from_pkcs8(alg, &der)?;
    let kid = jwk.thumbprint();
    let pem = pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
        .map_err(|e| anyhow::anyhow!("encoding PEM: {e}"))?;
    write_atomic(&dir.join(format!("{kid}.pem")), pem.as_bytes(), true)?;
    meta.keys.push(KeyMeta {
        kid,
        alg,
        created_at: now,
        retired_at: None,
    });
    Ok(())
}

/// Makes sure every algorithm has an active key; returns whether anything was written.
fn ensure_keys(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = DirLock::acquire(dir)?;
    let mut meta = read_meta(dir)?.unwrap_or_default();
    let now = clock::now();
    let mut changed = false;
    for alg in SigningAlg::ALL {
        if !meta
            .keys
            .iter()
            .any(|k| k.alg == alg && k.retired_at.is_none())
        {
            add_key(dir, &mut meta, alg, now)?;
            changed = true;
        }
    }
    if changed {
        write_atomic(&meta_path(dir), &serde_json::to_vec_pretty(&meta)?, false)?;
    }
    Ok(())
}

/// `vhod keys rotate`: a new active key per algorithm; the old ones are retired (still published)
/// and keys retired longer than `retention` seconds ago are removed.
pub fn rotate(keys_dir: &Path, retention: u64) -> anyhow::Result<Vec<String>> {
    let dir = signing_dir(keys_dir);
    fs::create_dir_all(&dir)?;
    let _lock = DirLock::acquire(&dir)?;
    let mut meta = read_meta(&dir)?.unwrap_or_default();
    let now = clock::now();
    meta.keys.retain(|k| match k.retired_at {
        Some(t) if t + retention as i64 <= now => {
            let _ = fs::remove_file(dir.join(format!("{}.pem", k.kid)));
            false
        }
        _ => true,
    });
    for k in meta.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
        k.retired_at = Some(now);
    }
    let before: Vec<String> = meta.keys.iter().map(|k| k.kid.clone()).collect();
    for alg in SigningAlg::ALL {
        add_key(&dir, &mut meta, alg, now)?;
    }
    write_atomic(&meta_path(&dir), &serde_json::to_vec_pretty(&meta)?, false)?;
    Ok(meta
        .keys
        .iter()
        .filter(|k| !before.contains(&k.kid))
        .map(|k| format!("{} {}", k.alg.as_str(), k.kid))
        .collect())
}

fn load(dir: &Path, retention: u64) -> anyhow::Result<KeySet> {
    let meta = read_meta(dir)?.context("keyset.json is missing")?;
    let now = clock::now();
    let mut active = HashMap::new();
    let mut verifiers = HashMap::new();
    let mut jwks = JwkSet::default();
    let mut next_prune_at: Option<i64> = None;
    for k in &meta.keys {
        if let Some(t) = k.retired_at {
            let until = t + retention as i64;
            if until <= now {
                continue;
            }
            next_prune_at = Some(next_prune_at.map_or(until, |n| n.min(until)));
        }
        let path = dir.join(format!("{}.pem", k.kid));
        let pem =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let (label, der) = pem_rfc7468::decode_vec(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if label != "PRIVATE KEY" {
            bail!("{} is not a PKCS#8 private key", path.display());
        }
        let (pair, mut jwk) = SigningKey::from_pkcs8(k.alg, &der)?;
        jwk.kid = Some(k.kid.clone());
        verifiers.insert(
            k.kid.clone(),
            jwk.verifier().map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        jwks.keys.push(jwk);
        if k.retired_at.is_none() {
            active.insert(
                k.alg,
                Arc::new(SigningKey {
                    kid: k.kid.clone(),
                    alg: k.alg,
                    pair,
                }),
            );
        }
    }
    for alg in SigningAlg::ALL {
        if !active.contains_key(&alg) {
            bail!("no active {} key in {}", alg.as_str(), dir.display());
        }
    }
    let jwks_json: Arc<str> = serde_json::to_string(&jwks)?.into();
    Ok(KeySet {
        active,
        verifiers,
        jwks,
        jwks_json,
        next_prune_at,
    })
}

fn mtime(dir: &Path) -> Option<SystemTime> {
    fs::metadata(meta_path(dir)).and_then(|m| m.modified()).ok()
}

impl KeyStore {
    /// Loads the key set, generating keys on first start.
    pub fn open(keys_dir: &Path, retention: u64) -> anyhow::Result<KeyStore> {
        let dir = signing_dir(keys_dir);
        ensure_keys(&dir)?;
        let seen = mtime(&dir);
        let set = load(&dir, retention)?;
        Ok(KeyStore {
            dir,
            current: ArcSwap::from_pointee(set),
            seen_mtime: Mutex::new(seen),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Picks up a rotation done by `vhod keys rotate` (or another replica) and prunes expired keys.
    pub fn refresh(&self, retention: u64) -> anyhow::Result<()> {
        let now_mtime = mtime(&self.dir);
        {
            let seen = self
                .seen_mtime
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            let prune_due = self
                .current
                .load()
                .next_prune_at
                .is_some_and(|t| t <= clock::now());
            if *seen == now_mtime && now_mtime.is_some() && !prune_due {
                return Ok(());
            }
        }
        let set = load(&self.dir, retention)?;
        self.current.store(Arc::new(set));
        *self
            .seen_mtime
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))? = now_mtime;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_generated_once_and_rotation_keeps_old_public_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 3600).unwrap();
        let first = store.current();
        assert_eq!(first.jwks.keys.len(), 3);
        let es = first.signer(SigningAlg::Es256).unwrap().kid.clone();

        // Opening again reuses the same keys.
        let again = KeyStore::open(dir.path(), 3600).unwrap();
        assert_eq!(again.current().signer(SigningAlg::Es256).unwrap().kid, es);

        let added = rotate(dir.path(), 3600).unwrap();
        assert_eq!(added.len(), 3);
        std::thread::sleep(Duration::from_millis(20));
        store.refresh(3600).unwrap();
        let after = store.current();
        assert_ne!(after.signer(SigningAlg::Es256).unwrap().kid, es);
        assert_eq!(after.jwks.keys.len(), 6, "retired keys stay published");
        assert!(after.verifier(&es).is_some());

        // With zero retention the retired keys are pruned from JWKS and disk.
        rotate(dir.path(), 0).unwrap();
        store.refresh(0).unwrap();
        assert_eq!(store.current().jwks.keys.len(), 3);
    }

    #[test]
    fn every_algorithm_signs_what_its_jwk_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 60).unwrap();
        let set = store.current();
        for alg in SigningAlg::ALL {
            let key = set.signer(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            let v = set.verifier(&key.kid).unwrap();
            assert!(v.verify(b"message", &sig), "{alg:?}");
            assert!(!v.verify(b"messagf", &sig), "{alg:?}");
        }
    }
}
