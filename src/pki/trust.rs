//! The operator's trust configuration and the validation it drives: anchors from
//! `<keys_dir>/trust/*.pem`, CRLs from `<keys_dir>/trust/crl/` and from the distribution
//! points certificates name (cached until their nextUpdate), identity profiles from
//! `policies/certificates.toml`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use super::cert::{self, Cert};
use super::chain;
use super::crl::{Crl, MAX_CRL};
use super::profile::{CertIdentity, Profiles};
use super::{PkiError, Reason};

#[derive(Debug, Clone)]
pub struct PkiSettings {
    /// Refuse when no fresh CRL covers a certificate (fail closed). Only a deployment that
    /// accepts the risk of revoked certificates turns this off.
    pub require_crl: bool,
    /// Fetch CRLs from the distribution points named in certificates.
    pub fetch_crls: bool,
    pub fetch_timeout: Duration,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings {
            require_crl: true,
            fetch_crls: true,
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

/// A failed fetch is not retried for this long, so a dead distribution point does not make
/// every sign-in wait for its timeout.
const FETCH_BACKOFF_SECS: i64 = 60;

/// (CRL fingerprint, CA certificate fingerprint).
type VerdictKey = ([u8; 32], [u8; 32]);

#[derive(Default)]
struct Fetched {
    crls: HashMap<String, Arc<Crl>>,
    failed_at: HashMap<String, i64>,
}

pub struct Trust {
    anchors: Vec<Arc<Cert>>,
    crls: Vec<Arc<Crl>>,
    fetched: Mutex<Fetched>,
    /// (CRL fingerprint, CA fingerprint) → signature verdict: national CRLs are large and
    /// verifying one on every sign-in would cost more than the sign-in itself.
    crl_verdicts: Mutex<HashMap<VerdictKey, bool>>,
    pub profiles: Profiles,
    pub settings: PkiSettings,
}

/// A certificate that passed every check, and the person it names.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Leaf first, anchor last.
    pub path: Vec<Arc<Cert>>,
    pub identity: CertIdentity,
}

/// What `load` found, for the start-up log.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub anchors: usize,
    pub crls: usize,
    pub skipped: Vec<String>,
}

impl Trust {
    pub fn new(
        anchors: Vec<Cert>,
        crls: Vec<Crl>,
        profiles: Profiles,
        settings: PkiSettings,
    ) -> Trust {
        Trust {
            anchors: anchors.into_iter().map(Arc::new).collect(),
            crls: crls.into_iter().map(Arc::new).collect(),
            fetched: Mutex::new(Fetched::default()),
            crl_verdicts: Mutex::new(HashMap::new()),
            profiles,
            settings,
        }
    }

    /// Reads anchors and CRLs from `<keys_dir>/trust` and profiles from `policies_dir`.
    /// A file that does not parse stops the start: an operator who installed an anchor
    /// expects it to be used.
    pub fn load(
        keys_dir: &Path,
        policies_dir: &Path,
        settings: PkiSettings,
    ) -> anyhow::Result<(Trust, LoadReport)> {
        let mut report = LoadReport::default();
        let trust_dir = keys_dir.join("trust");
        let mut anchors = Vec::new();
        for path in sorted_files(&trust_dir)? {
            if path.extension().and_then(|e| e.to_str()) != Some("pem") {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let certs = cert::parse_bundle(&bytes)
                .map_err(|e| anyhow::anyhow!("trust anchor {}: {e}", path.display()))?;
            for c in certs {
                if c.is_self_issued() && !c.signed_by(&c) {
                    anyhow::bail!(
                        "trust anchor {}: \"{}\" is self-issued but its self-signature does not verify",
                        path.display(),
                        c.subject()
                    );
                }
                anchors.push(c);
            }
        }
        report.anchors = anchors.len();
        let mut crls = Vec::new();
        for path in sorted_files(&trust_dir.join("crl"))? {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let crl = Crl::from_pem_or_der(&bytes)
                .map_err(|e| anyhow::anyhow!("CRL {}: {e}", path.display()))?;
            crls.push(crl);
        }
        report.crls = crls.len();
        let policy_file = policies_dir.join("certificates.toml");
        let profiles = if policy_file.exists() {
            let text = std::fs::read_to_string(&policy_file)
                .with_context(|| format!("reading {}", policy_file.display()))?;
            Profiles::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", policy_file.display()))?
        } else {
            report.skipped.push(format!(
                "{} absent: embedded profiles",
                policy_file.display()
            ));
            Profiles::embedded()
        };
        Ok((Trust::new(anchors, crls, profiles, settings), report))
    }

    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    /// Validates `leaf` with the help of `pool` (certificates the client sent), in the order
    /// the reasons are documented: path, signatures, validity, constraints, profile
    /// requirements, revocation; then reads the identity.
    pub async fn validate(
        &self,
        leaf: Cert,
        pool: Vec<Cert>,
        now: i64,
        http: &reqwest::Client,
    ) -> Result<Validated, PkiError> {
        let pool: Vec<Arc<Cert>> = pool.into_iter().map(Arc::new).collect();
        let path = chain::build(Arc::new(leaf), &pool, &self.anchors)?;
        chain::check_validity(&path, now)?;
        chain::check_constraints(&path)?;
        let profile = self.profiles.for_path(&path)?;
        profile.check_requirements(&path[0])?;
        self.check_revocation(&path, now, http).await?;
        let identity = profile.identity(&path[0])?;
        Ok(Validated { path, identity })
    }

    async fn check_revocation(
        &self,
        path: &[Arc<Cert>],
        now: i64,
        http: &reqwest::Client,
    ) -> Result<(), PkiError> {
        // The anchor is trusted by configuration; each certificate below it is checked against
        // its issuer's CRL. An intermediate that names no distribution point is checked only
        // when a CRL of its issuer is installed; the person's certificate always is.
        for (i, pair) in path.windows(2).enumerate() {
            let (subject, issuer) = (&pair[0], &pair[1]);
            let must = i == 0 || !subject.crl_urls.is_empty();
            match self.crl_for(subject, issuer, now, http, must).await? {
                Some(crl) if crl.lists(subject) => {
                    return Err(PkiError::new(
                        Reason::Revoked,
                        format!(
                            "\"{}\" (serial {}) is revoked",
                            subject.subject(),
                            subject.serial_hex()
                        ),
                    ));
                }
                Some(_) => {}
                None if must && self.settings.require_crl => {
                    return Err(PkiError::new(
                        Reason::CrlUnavailable,
                        format!("no current CRL of \"{}\" is available", issuer.subject()),
                    ));
                }
                None => {
                    if must {
                        tracing::warn!(issuer = %issuer.subject(), "no current CRL; accepted because CRLs are not required");
                    }
                }
            }
        }
        Ok(())
    }

    fn verified(&self, crl: &Crl, ca: &Cert) -> bool {
        let key = (crl.fingerprint, ca.fingerprint);
        if let Ok(v) = self.crl_verdicts.lock()
            && let Some(ok) = v.get(&key)
        {
            return *ok;
        }
        let ok = crl.signed_by(ca);
        if let Ok(mut v) = self.crl_verdicts.lock() {
            if v.len() > 10_000 {
                v.clear();
            }
            v.insert(key, ok);
        }
        ok
    }

    /// The freshest current CRL of `issuer` that its key signed: installed, cached from a
    /// fetch, or fetched now. A CRL that names the issuer but fails its signature is an error
    /// of its own when nothing better is found.
    async fn crl_for(
        &self,
        subject: &Cert,
        issuer: &Cert,
        now: i64,
        http: &reqwest::Client,
        must: bool,
    ) -> Result<Option<Arc<Crl>>, PkiError> {
        let skew = chain::SKEW_SECS;
        let mut forged = false;
        let mut best: Option<Arc<Crl>> = None;
        let cached: Vec<Arc<Crl>> = match self.fetched.lock() {
            Ok(f) => subject
                .crl_urls
                .iter()
                .filter_map(|u| f.crls.get(u).cloned())
                .collect(),
            Err(_) => Vec::new(),
        };
        for crl in self.crls.iter().chain(cached.iter()) {
            if !crl.is_from(issuer) {
                continue;
            }
            if !self.verified(crl, issuer) {
                forged = true;
                continue;
            }
            if crl.is_fresh(now, skew)
                && best
                    .as_ref()
                    .is_none_or(|b| b.this_update < crl.this_update)
            {
                best = Some(crl.clone());
            }
        }
        if best.is_none() && self.settings.fetch_crls && (must || !subject.crl_urls.is_empty()) {
            for url in &subject.crl_urls {
                let Some(crl) = self.fetch(url, now, http).await else {
                    continue;
                };
                if !crl.is_from(issuer) || !self.verified(&crl, issuer) {
                    forged = true;
                    continue;
                }
                if crl.is_fresh(now, skew) {
                    best = Some(crl);
                    break;
                }
            }
        }
        match best {
            Some(b) => Ok(Some(b)),
            None if forged => Err(PkiError::new(
                Reason::BadSignature,
                format!("a CRL naming \"{}\" is not signed by it", issuer.subject()),
            )),
            None => Ok(None),
        }
    }

    async fn fetch(&self, url: &str, now: i64, http: &reqwest::Client) -> Option<Arc<Crl>> {
        if let Ok(f) = self.fetched.lock()
            && f.failed_at
                .get(url)
                .is_some_and(|t| now - t < FETCH_BACKOFF_SECS)
        {
            return None;
        }
        let result = self.download(url, http).await;
        let mut f = self.fetched.lock().ok()?;
        match result {
            Ok(crl) => {
                let crl = Arc::new(crl);
                f.failed_at.remove(url);
                f.crls.insert(url.to_string(), crl.clone());
                Some(crl)
            }
            Err(e) => {
                tracing::warn!(url, error = %e, "CRL fetch failed");
                f.failed_at.insert(url.to_string(), now);
                None
            }
        }
    }

    async fn download(&self, url: &str, http: &reqwest::Client) -> anyhow::Result<Crl> {
        let mut resp = http
            .get(url)
            .timeout(self.settings.fetch_timeout)
            .send()
            .await?
            .error_for_status()?;
        if resp.content_length().is_some_and(|n| n > MAX_CRL as u64) {
            anyhow::bail!("the CRL is larger than {MAX_CRL} octets");
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_CRL {
                anyhow::bail!("the CRL is larger than {MAX_CRL} octets");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Crl::from_pem_or_der(&body)?)
    }
}

fn sorted_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}
