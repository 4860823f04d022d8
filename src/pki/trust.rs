//! The operator's trust configuration and the validation it drives: anchors from
//! `<keys_dir>/trust/*.pem`, CRLs from `<keys_dir>/trust/crl/` and from the distribution
//! points certificates name (cached until their nextUpdate), identity profiles from
//! `policies/certificates.toml`.
//!
//! Kept whole (about 580 lines besides its tests): the verifiers' semaphore, the cache of
//! fetched CRLs and the CRL verdicts are one `Trust`'s state, used by loading and by every
//! validation; split by step, that state would be reached into from several files.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;

use super::budget::Budget;
use super::cert::{self, Cert};
use super::chain;
use super::crl::{Crl, MAX_CRL};
use super::profile::{CertIdentity, Profiles};
use super::{MAX_PRESENTED_CERTS, PkiError, Reason};

#[derive(Debug, Clone)]
pub struct PkiSettings {
    /// Refuse when no fresh CRL covers a certificate (fail closed). Only a deployment that
    /// accepts the risk of revoked certificates turns this off.
    pub require_crl: bool,
    /// Fetch CRLs from the distribution points named in certificates.
    pub fetch_crls: bool,
    pub fetch_timeout: Duration,
    /// The largest CRL a download may bring, in octets: the download stops as soon as it passes
    /// this (larger lists are installed as files).
    pub crl_max_bytes: usize,
    /// Certificates a sign-in may send besides the person's own, PEM and CMS `certificates`
    /// together, each counted once.
    pub max_chain_certs: usize,
    /// Signature verifications the checks of one sign-in may cost (the path, then the proof).
    pub max_signature_checks: usize,
    /// How long the checks of one sign-in may take, the wait for a verifier thread included.
    pub verify_timeout: Duration,
    /// Sign-ins whose certificates are checked at once, each on a blocking thread, so the async
    /// workers keep serving everything else.
    pub verify_max_concurrent: usize,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings {
            require_crl: true,
            fetch_crls: true,
            fetch_timeout: Duration::from_secs(10),
            crl_max_bytes: 4 * 1024 * 1024,
            max_chain_certs: MAX_PRESENTED_CERTS,
            // An honest path of three certificates costs 2 verifications, the proof 1; cross-
            // certified or renewed CAs a few more.
            max_signature_checks: 32,
            verify_timeout: Duration::from_secs(2),
            verify_max_concurrent: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// A failed fetch is not retried for this long, so a dead distribution point does not make
/// every sign-in wait for its timeout.
const FETCH_BACKOFF_SECS: i64 = 60;

/// What the checks may take beyond their deadline: the budget stops them between signature
/// verifications, so at most the verification in progress.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// (CRL fingerprint, CA certificate fingerprint).
type VerdictKey = ([u8; 32], [u8; 32]);

/// One download of one URL, which every login that needs it meanwhile waits for.
type Flight = Arc<tokio::sync::OnceCell<Option<Arc<Crl>>>>;

#[derive(Default)]
struct Fetched {
    crls: HashMap<String, Arc<Crl>>,
    failed_at: HashMap<String, i64>,
    in_flight: HashMap<String, Flight>,
}

/// What the checks that need no network read; shared with the verifier threads.
pub struct Offline {
    anchors: Vec<Arc<Cert>>,
    crls: Vec<Arc<Crl>>,
    pub profiles: Profiles,
    pub settings: PkiSettings,
}

pub struct Trust {
    offline: Arc<Offline>,
    /// Verifier threads free; a sign-in waits for one at most until its deadline.
    verifiers: Arc<Semaphore>,
    fetched: Mutex<Fetched>,
    /// (CRL fingerprint, CA fingerprint) → signature verdict: national CRLs are large and
    /// verifying one on every sign-in would cost more than the sign-in itself.
    crl_verdicts: Mutex<HashMap<VerdictKey, bool>>,
}

/// A certificate that passed every check, and the person it names.
#[derive(Debug, Clone)]
pub struct Validated {
    /// Leaf first, anchor last.
    pub path: Vec<Arc<Cert>>,
    pub identity: CertIdentity,
}

/// A certificate that passed the checks that need no network; revocation is still to come.
#[derive(Debug)]
pub struct Checked {
    path: Vec<Arc<Cert>>,
    identity: CertIdentity,
}

impl Checked {
    /// The person's certificate.
    pub fn leaf(&self) -> &Cert {
        &self.path[0]
    }
}

/// What `load` found, for the start-up log.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub anchors: usize,
    pub crls: usize,
    pub skipped: Vec<String>,
}

impl Offline {
    /// The client's certificates as path candidates: each once, never the leaf, at most
    /// `max_chain_certs` of them.
    fn pool(&self, leaf: &Cert, sent: Vec<Cert>) -> Result<Vec<Arc<Cert>>, PkiError> {
        let mut seen = HashSet::from([leaf.fingerprint]);
        let pool: Vec<Arc<Cert>> = sent
            .into_iter()
            .filter(|c| seen.insert(c.fingerprint))
            .map(Arc::new)
            .collect();
        let max = self.settings.max_chain_certs;
        if pool.len() > max {
            return Err(PkiError::malformed(format!(
                "too many certificates: {} sent besides the person's, at most {max} are read",
                pool.len()
            )));
        }
        Ok(pool)
    }

    /// The checks in the order the reasons are documented, up to revocation: path and its
    /// signatures (charged to `budget`), validity, constraints, the profile's requirements and
    /// the identity it reads.
    pub fn check_path(
        &self,
        leaf: Cert,
        sent: Vec<Cert>,
        now: i64,
        budget: &mut Budget,
    ) -> Result<Checked, PkiError> {
        let pool = self.pool(&leaf, sent)?;
        let path = chain::build(Arc::new(leaf), &pool, &self.anchors, budget)?;
        chain::check_validity(&path, now)?;
        chain::check_constraints(&path)?;
        let profile = self.profiles.for_path(&path)?;
        profile.check_requirements(&path[0])?;
        let anchor = path.last().unwrap_or(&path[0]);
        let identity = profile.identity(&path[0], anchor)?;
        Ok(Checked { path, identity })
    }
}

impl Trust {
    pub fn new(
        anchors: Vec<Cert>,
        crls: Vec<Crl>,
        profiles: Profiles,
        settings: PkiSettings,
    ) -> Trust {
        let verifiers = Arc::new(Semaphore::new(settings.verify_max_concurrent.max(1)));
        Trust {
            offline: Arc::new(Offline {
                anchors: anchors.into_iter().map(Arc::new).collect(),
                crls: crls.into_iter().map(Arc::new).collect(),
                profiles,
                settings,
            }),
            verifiers,
            fetched: Mutex::new(Fetched::default()),
            crl_verdicts: Mutex::new(HashMap::new()),
        }
    }

    pub fn profiles(&self) -> &Profiles {
        &self.offline.profiles
    }

    pub fn settings(&self) -> &PkiSettings {
        &self.offline.settings
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
        if !profiles.iter().any(|p| p.authoritative_personal_number) {
            tracing::warn!(
                "no certificate profile is authoritative_personal_number: personal numbers find no account made another way, and identities stored as pn:<number> are not found (policies/certificates.toml)"
            );
        }
        // A catch-all authority with several anchors would let any of them vouch for any
        // citizen's number: the deployment must say which CA is the authority.
        if anchors.len() > 1
            && let Some(p) = profiles
                .iter()
                .find(|p| p.authoritative_personal_number && p.matches_any_ca())
        {
            anyhow::bail!(
                "{} trust anchors are installed, and profile {:?} is authoritative for personal \
                 numbers without naming its CA: any of them could sign in as any citizen. Name \
                 the authoritative CA with match_ca_sha256 in policies/certificates.toml (the SHA-256 \
                 of its DER: openssl x509 -in root.pem -outform der | sha256sum), or keep one anchor",
                anchors.len(),
                p.name
            );
        }
        Ok((Trust::new(anchors, crls, profiles, settings), report))
    }

    pub fn anchor_count(&self) -> usize {
        self.offline.anchors.len()
    }

    /// Validates `leaf` with the help of `pool` (certificates the client sent), in the order
    /// the reasons are documented: path, signatures, validity, constraints, profile
    /// requirements and identity, revocation.
    pub async fn validate(
        &self,
        leaf: Cert,
        pool: Vec<Cert>,
        now: i64,
        http: &reqwest::Client,
    ) -> Result<Validated, PkiError> {
        let checked = self
            .offline(move |o, budget| o.check_path(leaf, pool, now, budget))
            .await?;
        self.finish(checked, now, http).await
    }

    /// Runs `job` (the checks that need no network) on a blocking thread, at most
    /// `verify_max_concurrent` at once, within `max_signature_checks` and `verify_timeout`.
    pub async fn offline<T, F>(&self, job: F) -> Result<T, PkiError>
    where
        T: Send + 'static,
        F: FnOnce(&Offline, &mut Budget) -> Result<T, PkiError> + Send + 'static,
    {
        let limit = self.offline.settings.verify_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let busy = || {
            PkiError::new(
                Reason::Busy,
                format!(
                    "the certificate could not be checked within {} ms; try again",
                    limit.as_millis()
                ),
            )
        };
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline, self.verifiers.clone().acquire_owned()).await
        else {
            return Err(busy());
        };
        let offline = self.offline.clone();
        let task = tokio::task::spawn_blocking(move || {
            // Held until the work ends, even when nobody waits for its answer any more.
            let _permit = permit;
            let mut budget = Budget::new(
                offline.settings.max_signature_checks,
                Some(deadline.into_std()),
            );
            job(&offline, &mut budget)
        });
        match tokio::time::timeout_at(deadline + DEADLINE_GRACE, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the certificate checks failed");
                Err(PkiError::malformed("the certificate could not be checked"))
            }
            Err(_) => Err(busy()),
        }
    }

    /// Revocation (which may fetch CRLs), after everything else has passed.
    pub async fn finish(
        &self,
        checked: Checked,
        now: i64,
        http: &reqwest::Client,
    ) -> Result<Validated, PkiError> {
        self.check_revocation(&checked.path, now, http).await?;
        Ok(Validated {
            path: checked.path,
            identity: checked.identity,
        })
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
                None if must && self.offline.settings.require_crl => {
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

    /// Whether `ca` signed `crl`, verified once per pair on a blocking thread (a national CRL
    /// is megabytes of signed octets).
    async fn verified(&self, crl: &Arc<Crl>, ca: &Arc<Cert>) -> bool {
        let key = (crl.fingerprint, ca.fingerprint);
        if let Ok(v) = self.crl_verdicts.lock()
            && let Some(ok) = v.get(&key)
        {
            return *ok;
        }
        let (c, a) = (crl.clone(), ca.clone());
        let ok = tokio::task::spawn_blocking(move || c.signed_by(&a))
            .await
            .unwrap_or(false);
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
        issuer: &Arc<Cert>,
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
        for crl in self.offline.crls.iter().chain(cached.iter()) {
            if !crl.is_from(issuer) {
                continue;
            }
            if !self.verified(crl, issuer).await {
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
        if best.is_none()
            && self.offline.settings.fetch_crls
            && (must || !subject.crl_urls.is_empty())
        {
            for url in &subject.crl_urls {
                let Some(crl) = self.fetch(url, now, http).await else {
                    continue;
                };
                if !crl.is_from(issuer) || !self.verified(&crl, issuer).await {
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

    /// The CRL at `url`: the cached one while fresh, else one download however many logins
    /// ask for it meanwhile (they wait for that download and share its result).
    async fn fetch(&self, url: &str, now: i64, http: &reqwest::Client) -> Option<Arc<Crl>> {
        let flight = {
            let mut f = self.fetched.lock().ok()?;
            if f.failed_at
                .get(url)
                .is_some_and(|t| now - t < FETCH_BACKOFF_SECS)
            {
                return None;
            }
            // Fetched by another login since this one looked.
            if let Some(crl) = f.crls.get(url)
                && crl.is_fresh(now, chain::SKEW_SECS)
            {
                return Some(crl.clone());
            }
            f.in_flight.entry(url.to_string()).or_default().clone()
        };
        let result = flight
            .get_or_init(|| self.download_and_keep(url, now, http))
            .await
            .clone();
        if let Ok(mut f) = self.fetched.lock()
            && f.in_flight
                .get(url)
                .is_some_and(|c| Arc::ptr_eq(c, &flight))
        {
            f.in_flight.remove(url);
        }
        result
    }

    async fn download_and_keep(
        &self,
        url: &str,
        now: i64,
        http: &reqwest::Client,
    ) -> Option<Arc<Crl>> {
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

    /// Downloads at most `crl_max_bytes`, refusing as soon as the body passes it (whatever the
    /// Content-Length said), and parses the list on a blocking thread.
    async fn download(&self, url: &str, http: &reqwest::Client) -> anyhow::Result<Crl> {
        let settings = &self.offline.settings;
        let max = settings.crl_max_bytes.min(MAX_CRL);
        let mut resp = http
            .get(url)
            .timeout(settings.fetch_timeout)
            .send()
            .await?
            .error_for_status()?;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            anyhow::bail!("the CRL is larger than {max} octets");
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > max {
                anyhow::bail!("the CRL is larger than {max} octets");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(tokio::task::spawn_blocking(move || Crl::from_pem_or_der(&body)).await??)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::issue::{self, CertSpec};
    use crate::pki::keys::{KeyAlgorithm, PrivateKey};

    fn trust(settings: PkiSettings) -> Trust {
        Trust::new(Vec::new(), Vec::new(), Profiles::embedded(), settings)
    }

    fn cert(cn: &str) -> Cert {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = vec![(crate::pki::oids::AT_COMMON_NAME, cn.to_string())];
        let der =
            issue::self_signed(&CertSpec::root(subject, &[1], 0, 4_000_000_000), &key).unwrap();
        Cert::from_der(&der).unwrap()
    }

    #[test]
    fn the_pool_counts_each_certificate_once_and_never_the_leaf() {
        let t = trust(PkiSettings {
            max_chain_certs: 1,
            ..PkiSettings::default()
        });
        let (leaf, ca, other) = (cert("leaf"), cert("ca"), cert("other"));
        // A CMS message repeats the signer and the chain the PEM already carries.
        let pool = t
            .offline
            .pool(&leaf, vec![ca.clone(), leaf.clone(), ca.clone()])
            .unwrap();
        assert_eq!(pool.len(), 1);
        let e = t.offline.pool(&leaf, vec![ca, other]).unwrap_err();
        assert_eq!(e.reason, Reason::Malformed);
    }

    #[tokio::test]
    async fn a_saturated_verifier_answers_busy() {
        let t = Arc::new(trust(PkiSettings {
            verify_max_concurrent: 1,
            verify_timeout: Duration::from_millis(200),
            ..PkiSettings::default()
        }));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let t = t.clone();
            tokio::spawn(async move {
                t.offline(move |_, _| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
            })
        };
        // The only verifier is taken until this test releases it.
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        let e = t.offline(|_, _| Ok(())).await.unwrap_err();
        assert_eq!(e.reason, Reason::Busy);
        release_tx.send(()).unwrap();
        let _ = holder.await;
    }
}
