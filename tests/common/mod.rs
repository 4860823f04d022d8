//! Test harness: real `vhod` processes on free ports, a real browser-like HTTP client with a
//! cookie jar, and the `openidconnect` crate as the relying party.
//!
//! Every scenario runs against two deployments: SQLite with the in-process store, and
//! PostgreSQL with Redis when VHOD_TEST_DATABASE_URL and VHOD_TEST_REDIS_URL are set (CI sets
//! them, with VHOD_TEST_REQUIRE_SERVERS=1 so that unreachable servers fail instead of skipping).
#![allow(dead_code)]

/// The mock upstream identity provider of the federated-login tests.
pub mod upstream;

/// Certificates and the certificate login (the vectors' PKI and one of our own).
pub mod certs;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IntrospectionUrl, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, RevocationUrl, Scope,
};
use sqlx::Connection;
use vhod::store::accounts::Account;
pub use vhod::store::audit_log::StoredEvent;
use vhod::store::sql::Db;

pub const USER: &str = "ivan";
pub const PASSWORD: &str = "correct horse battery staple";
pub const PHONE: &str = "+375291234567";
pub const RP_SECRET: &str = "rp-secret-0123456789abcdefghij";
pub const RP2_SECRET: &str = "rp2-secret-0123456789abcdefghij";
pub const SVC_SECRET: &str = "svc-secret-0123456789abcdefghij";
pub const RP_REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const RP2_REDIRECT: &str = "http://127.0.0.1:9/cb2";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:9/spa";
pub const RP_LOGOUT: &str = "http://127.0.0.1:9/bye";

const CLIENTS_TOML: &str = r#"
[[clients]]
client_id = "rp"
secret = "rp-secret-0123456789abcdefghij"
redirect_uris = ["http://127.0.0.1:9/cb"]
post_logout_redirect_uris = ["http://127.0.0.1:9/bye"]

[[clients]]
client_id = "rp2"
secret = "rp2-secret-0123456789abcdefghij"
redirect_uris = ["http://127.0.0.1:9/cb2"]
token_signing_alg = "RS256"

[[clients]]
client_id = "rp-eddsa"
secret = "rp3-secret-0123456789abcdefghij"
redirect_uris = ["http://127.0.0.1:9/cb3"]
token_signing_alg = "EdDSA"

[[clients]]
client_id = "spa"
public = true
redirect_uris = ["http://127.0.0.1:9/spa"]

[[clients]]
client_id = "svc"
secret = "svc-secret-0123456789abcdefghij"
grant_types = ["client_credentials"]
scope = "appeals.read appeals.write"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process ephemeral store (the embedded default).
    Sqlite,
    /// PostgreSQL + Redis (production).
    Shared,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vhod")
}

/// Signing keys generated once per test binary (RSA generation is the slow part).
fn shared_keys() -> &'static Path {
    static KEYS: OnceLock<tempfile::TempDir> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(bin())
            .args(["keys", "rotate"])
            .env("VHOD_KEYS_DIR", dir.path())
            .env("VHOD_DATABASE_URL", "sqlite::memory:")
            .output()
            .expect("running vhod keys rotate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

fn required() -> bool {
    std::env::var("VHOD_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Records in VHOD_TEST_RAN_FILE that a part of the suite really ran (`<what>: ran`); CI fails
/// when a part it requires left no line.
pub fn record_ran(what: &str) {
    if let Ok(path) = std::env::var("VHOD_TEST_RAN_FILE") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{what}: ran");
        }
    }
}

/// Records that the PostgreSQL + Redis half ran (CI checks the file).
fn mark_shared_ran() {
    record_ran("backend=postgres+redis");
}

/// Must the suites that need tools outside cargo (a browser, node) run here? CI says so.
pub fn tools_required() -> bool {
    ["VHOD_TEST_REQUIRE_BROWSER", "VHOD_TEST_REQUIRE_SERVERS"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

/// A suite whose tools are `missing`: fails where the suites are required, else says once (past
/// the test harness's capture, so that a developer sees it) that it is skipped.
pub fn skip_unless_required(suite: &str, missing: &str) {
    assert!(
        !tools_required(),
        "the {suite} is required here (VHOD_TEST_REQUIRE_BROWSER or VHOD_TEST_REQUIRE_SERVERS \
         is 1) but cannot run: {missing}"
    );
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{suite} SKIPPED (its tests pass without running): {missing}"
        );
    });
}

pub struct Deployment {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pg: Option<(String, String)>,
    /// Directories that must live as long as the deployment (its own keys directory).
    keep: Vec<tempfile::TempDir>,
    /// vhod's store on the deployment's database, opened on first use.
    store: tokio::sync::OnceCell<Db>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

impl Deployment {
    /// None when the backend is not configured here (and not required).
    pub async fn new(backend: Backend) -> Option<Deployment> {
        Self::with_keys(backend, shared_keys()).await
    }

    /// A deployment with its own keys directory: the shared signing keys plus these trust
    /// anchors (`trust/`) and CRLs (`trust/crl/`), given as (file name, contents).
    pub async fn with_trust(
        backend: Backend,
        anchors: &[(&str, Vec<u8>)],
        crls: &[(&str, Vec<u8>)],
    ) -> Option<Deployment> {
        let keys = tempfile::tempdir().expect("tempdir");
        copy_dir(shared_keys(), keys.path());
        let trust = keys.path().join("trust");
        std::fs::create_dir_all(trust.join("crl")).expect("mkdir trust/crl");
        for (name, bytes) in anchors {
            std::fs::write(trust.join(name), bytes).expect("write anchor");
        }
        for (name, bytes) in crls {
            std::fs::write(trust.join("crl").join(name), bytes).expect("write CRL");
        }
        let mut d = Self::with_keys(backend, keys.path()).await?;
        d.keep.push(keys);
        Some(d)
    }

    /// The keys directory this deployment's servers read.
    pub fn keys_dir(&self) -> PathBuf {
        self.env
            .iter()
            .find(|(k, _)| k == "VHOD_KEYS_DIR")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_default()
    }

    pub async fn with_keys(backend: Backend, keys: &Path) -> Option<Deployment> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("vhod.toml");
        std::fs::write(&config, CLIENTS_TOML).expect("writing config");
        let data = dir.path().join("data");
        let mut env: Vec<(String, String)> = vec![
            ("VHOD_CONFIG".into(), config.display().to_string()),
            ("VHOD_DATA_DIR".into(), data.display().to_string()),
            ("VHOD_KEYS_DIR".into(), keys.display().to_string()),
            ("VHOD_POLICIES_DIR".into(), dir.path().display().to_string()),
            ("VHOD_DEV".into(), "false".into()),
            ("VHOD_LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        let mut pg = None;
        match backend {
            Backend::Sqlite => {
                env.push((
                    "VHOD_DATABASE_URL".into(),
                    format!("sqlite://{}?mode=rwc", data.join("vhod.db").display()),
                ));
            }
            Backend::Shared => {
                let (Ok(db_url), Ok(redis_url)) = (
                    std::env::var("VHOD_TEST_DATABASE_URL"),
                    std::env::var("VHOD_TEST_REDIS_URL"),
                ) else {
                    assert!(
                        !required(),
                        "VHOD_TEST_REQUIRE_SERVERS=1 but the server URLs are not set"
                    );
                    eprintln!("PostgreSQL/Redis not configured: skipping the shared-backend run");
                    return None;
                };
                let name = format!("vhod_t_{}", random_suffix());
                let mut conn = sqlx::PgConnection::connect(&db_url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {db_url} is unreachable: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("creating a test database");
                let (base, _) = db_url
                    .rsplit_once('/')
                    .expect("database URL with a database name");
                env.push(("VHOD_DATABASE_URL".into(), format!("{base}/{name}")));
                let client = redis::Client::open(redis_url.as_str()).expect("redis url");
                let mut rc = client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap_or_else(|e| panic!("Redis at {redis_url} is unreachable: {e}"));
                let _: String = redis::cmd("PING")
                    .query_async(&mut rc)
                    .await
                    .expect("redis ping");
                env.push(("VHOD_REDIS_URL".into(), redis_url));
                env.push(("VHOD_REDIS_PREFIX".into(), format!("vhodtest:{name}:")));
                pg = Some((db_url, name));
                mark_shared_ran();
            }
        }
        let d = Deployment {
            backend,
            dir,
            env,
            pg,
            keep: Vec::new(),
            store: tokio::sync::OnceCell::new(),
        };
        let out = d.cli(&[
            "user",
            "add",
            "--username",
            USER,
            "--password",
            PASSWORD,
            "--phone",
            PHONE,
            "--email",
            "ivan@example.by",
            "--given-name",
            "Иван",
            "--family-name",
            "Иванов",
            "--role",
            "applicant",
        ]);
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(d)
    }

    /// Appends `text` to the deployment's settings file (`vhod.toml`): more clients,
    /// `[[upstream]]`s… Servers started afterwards read it.
    pub fn append_config(&self, text: &str) {
        use std::io::Write;
        let path = self.dir.path().join("vhod.toml");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("the settings file");
        f.write_all(text.as_bytes()).expect("appending settings");
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(&[], args)
    }

    /// A `vhod` command with extra environment (another database…).
    pub fn cli_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .output()
            .expect("running vhod")
    }

    pub fn db_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "VHOD_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub async fn start(&self) -> Server {
        self.start_with(&[]).await
    }

    /// Starts a server on a free port with extra environment (limits, delays…). A port found
    /// free can be taken by a parallel test before vhod binds it: then another port is tried.
    pub async fn start_with(&self, extra: &[(&str, &str)]) -> Server {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            match self
                .try_start(port, &format!("http://127.0.0.1:{port}"), extra)
                .await
            {
                Ok(server) => return server,
                Err(log) if log.contains("in use") => failures.push(log),
                Err(log) => panic!("vhod did not start: {log}"),
            }
        }
        panic!("vhod found no free port: {failures:?}");
    }

    /// Starts a server on `port` with the given issuer (replicas behind one name share it).
    pub async fn start_as(&self, port: u16, issuer: &str, extra: &[(&str, &str)]) -> Server {
        match self.try_start(port, issuer, extra).await {
            Ok(server) => server,
            Err(log) => panic!("vhod did not start: {log}"),
        }
    }

    /// Starts a server and waits until it answers; its log when it exited or never answered.
    async fn try_start(
        &self,
        port: u16,
        issuer: &str,
        extra: &[(&str, &str)],
    ) -> Result<Server, String> {
        let log = self.dir.path().join(format!("server-{port}.log"));
        let child = Command::new(bin())
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("VHOD_LISTEN", format!("127.0.0.1:{port}"))
            .env("VHOD_ISSUER", issuer)
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("starting vhod serve");
        let mut server = Server {
            base: format!("http://127.0.0.1:{port}"),
            issuer: issuer.to_string(),
            child: Some(child),
            log,
        };
        server.wait_ready().await?;
        Ok(server)
    }
}

// Stored state, read through vhod's own store: what the tests assert about the database.
impl Deployment {
    /// vhod's store on the deployment's database, opened once. It does not migrate: `user add`
    /// did when the deployment was made, and servers do as they start. SQLite in WAL mode lets
    /// this process read beside a running server.
    pub async fn store(&self) -> &Db {
        self.store
            .get_or_init(|| async {
                Db::connect(&self.db_url())
                    .await
                    .expect("the deployment's database")
            })
            .await
    }

    /// Every audit event stored so far, in their order.
    pub async fn events(&self) -> Vec<StoredEvent> {
        const PAGE: i64 = 500;
        let log = self.store().await.audit_log();
        let mut all: Vec<StoredEvent> = Vec::new();
        loop {
            let after = all.last().map_or(0, |e| e.seq);
            let page = log.after(after, PAGE).await.expect("the audit log");
            let last_page = (page.len() as i64) < PAGE;
            all.extend(page);
            if last_page {
                return all;
            }
        }
    }

    /// How many stored audit events `matches` holds of.
    pub async fn count_events(&self, matches: impl Fn(&StoredEvent) -> bool) -> i64 {
        self.events().await.iter().filter(|e| matches(e)).count() as i64
    }

    /// Polls the events `matches` holds of until there are `expected` (events written by the
    /// batching audit writer land shortly after the response); returns the last count.
    pub async fn wait_events(&self, expected: i64, matches: impl Fn(&StoredEvent) -> bool) -> i64 {
        wait_for(|| self.count_events(&matches), |n| n == expected).await
    }

    /// Polls the events `matches` holds of until there are at least `at_least`; the last count.
    pub async fn wait_events_at_least(
        &self,
        at_least: i64,
        matches: impl Fn(&StoredEvent) -> bool,
    ) -> i64 {
        wait_for(|| self.count_events(&matches), |n| n >= at_least).await
    }

    /// The account of a (normalised) username, as stored.
    pub async fn account(&self, username: &str) -> Option<Account> {
        self.store()
            .await
            .accounts()
            .find_by_username(username)
            .await
            .expect("the accounts")
    }
}

/// Polls `count` until `done` holds of it, for at most 20 s (generous: a busy CI machine may
/// take seconds; a count already right returns at once); the last count.
pub async fn wait_for<F: Future<Output = i64>>(
    mut count: impl FnMut() -> F,
    done: impl Fn(i64) -> bool,
) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = count().await;
    while !done(n) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        n = count().await;
    }
    n
}

impl Deployment {
    /// The deployment's data directory (the dev outbox, the SQLite database).
    pub fn data_dir(&self) -> PathBuf {
        self.env
            .iter()
            .find(|(k, _)| k == "VHOD_DATA_DIR")
            .map(|(_, v)| PathBuf::from(v))
            .expect("VHOD_DATA_DIR")
    }

    /// Every message in the dev outbox so far (none before the first).
    pub fn outbox(&self) -> Vec<vhod::notify::OutboxEntry> {
        vhod::notify::read_outbox(&self.data_dir()).expect("the outbox")
    }

    /// The messages on `channel` to `to`, oldest first.
    pub fn sent_to(
        &self,
        channel: vhod::notify::Channel,
        to: &str,
    ) -> Vec<vhod::notify::OutboxEntry> {
        self.outbox()
            .into_iter()
            .filter(|m| m.channel == channel && m.to == to)
            .collect()
    }

    /// Direct SQL that changes stored rows, for a test that tampers with them on purpose (an
    /// expiry in the past); the number of rows changed.
    pub async fn tamper(&self, sql: &str) -> u64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db_url())
            .await
            .expect("db connect");
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("tampering statement")
            .rows_affected()
    }
}

impl Deployment {
    /// One number read with raw SQL (a count), straight from the deployment's database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db_url())
            .await
            .expect("db connect");
        sqlx::query(sql)
            .fetch_one(&mut conn)
            .await
            .expect("a query")
            .try_get::<i64, _>(0)
            .expect("a number")
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some((url, name)) = self.pg.take() {
            drop_database(url, name);
        }
    }
}

/// A database of its own (not the deployment's) as a release that had applied the first
/// `count` migrations left it, with sqlx's bookkeeping, so that vhod applies the rest itself
/// when it starts: its URL, and the PostgreSQL database to drop afterwards. None when the
/// backend is not configured.
pub async fn database_at_migration(
    backend: Backend,
    d: &Deployment,
    count: usize,
) -> Option<(String, Option<OwnDatabase>)> {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    sqlx::any::install_default_drivers();
    use vhod::store::sql::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    let (url, own, files): (String, Option<OwnDatabase>, _) = match backend {
        Backend::Sqlite => (
            format!(
                "sqlite://{}?mode=rwc",
                d.dir.path().join("earlier.db").display()
            ),
            None,
            &SQLITE_MIGRATIONS[..count],
        ),
        Backend::Shared => {
            let base = std::env::var("VHOD_TEST_DATABASE_URL").ok()?;
            let name = format!("vhod_earlier_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create database");
            let (root, _) = base.rsplit_once('/').expect("a database name");
            let own = OwnDatabase {
                admin_url: base.clone(),
                name: name.clone(),
            };
            (
                format!("{root}/{name}"),
                Some(own),
                &POSTGRES_MIGRATIONS[..count],
            )
        }
    };
    let migrations: Vec<Migration> = files
        .iter()
        .map(|(v, description, sql)| {
            Migration::new(
                *v,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    let migrator = Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    };
    let pool = sqlx::AnyPool::connect(&url)
        .await
        .expect("the earlier database");
    migrator.run(&pool).await.expect("the earlier migrations");
    pool.close().await;
    Some((url, own))
}

/// A PostgreSQL database a test made for itself, dropped when this goes out of scope (a
/// failing test too).
pub struct OwnDatabase {
    /// Where to connect to drop it (another database of the same server).
    pub admin_url: String,
    pub name: String,
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        drop_database(self.admin_url.clone(), self.name.clone());
    }
}

/// Drops database `name` through `url`, on a helper thread: Drop cannot await.
fn drop_database(url: String, name: String) {
    on_helper_thread(async move {
        let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .ok()
            .map(drop)
    });
}

/// Runs `work` to its end on a thread of its own with its own runtime: for a Drop, which
/// cannot await, whatever runtime (if any) it is dropped in.
pub fn on_helper_thread<F>(work: F) -> Option<()>
where
    F: std::future::Future<Output = Option<()>> + Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?
            .block_on(work)
    })
    .join()
    .ok()
    .flatten()
}

pub struct Server {
    pub base: String,
    pub issuer: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Server {
    /// Until /healthz answers; the log if the process exited first (whoever answers on the
    /// port then is not this server) or never answered.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let exited = match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(status)) => status,
                Some(Err(e)) => return Err(format!("{e}: {}", self.logs())),
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(format!("exited ({status}): {}", self.logs()));
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("no answer in 60 s: {}", self.logs()))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGTERM, then wait for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("waiting for vhod")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A browser in which the seeded person (USER) has signed in to the client `rp` with the
/// password (the code redeemed by nobody: the browser's session is what counts).
pub async fn signed_in_browser(server: &Server) -> Browser {
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let back = browser.sign_in(server, &p.url, USER, PASSWORD).await;
    code_from(server, &back, &p);
    browser
}

/// The sign-in link of a page that asks for one (`href`s are HTML-escaped).
pub fn authorize_link(html: &str) -> String {
    html.split(r#"href=""#)
        .filter_map(|r| r.split('"').next())
        .map(|h| h.replace("&#x2f;", "/").replace("&amp;", "&"))
        .find(|h| h.starts_with("/authorize?"))
        .unwrap_or_else(|| panic!("a sign-in link: {html}"))
}

/// The CSRF token of a page's forms (its hidden `csrf` field).
pub fn csrf_in(html: &str) -> String {
    let token = hidden(html, "csrf");
    assert!(!token.is_empty(), "no CSRF field in {html}");
    token
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn random_suffix() -> String {
    use std::time::SystemTime;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos, std::process::id())
}

/// An HTTP client that never follows redirects (so tests see each hop), as openidconnect requires.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A browser: cookie jar, no automatic redirects.
pub struct Browser {
    pub http: reqwest::Client,
}

pub struct LoginPage {
    pub url: String,
    pub tx: String,
    pub csrf: String,
    pub html: String,
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of a page's hidden field `name` (empty when there is none).
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("browser"),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.expect("GET")
    }

    /// Opens an authorization URL. Ok(location) when vhod redirects back to the client at once
    /// (SSO, or an error), Err(login page) when the person must sign in.
    pub async fn authorize(&self, server: &Server, url: &str) -> Result<String, LoginPage> {
        let res = self.get(url).await;
        assert_eq!(
            res.status().as_u16(),
            303,
            "authorize answered {}",
            res.status()
        );
        let loc = location(&res);
        if loc.starts_with("/login") {
            Err(self.login_page(&server.url(&loc)).await)
        } else {
            Ok(loc)
        }
    }

    pub async fn login_page(&self, url: &str) -> LoginPage {
        let res = self.get(url).await;
        assert_eq!(res.status().as_u16(), 200);
        let html = res.text().await.expect("login page");
        LoginPage {
            url: url.to_string(),
            tx: hidden(&html, "tx"),
            csrf: hidden(&html, "csrf"),
            html,
        }
    }

    pub async fn submit_password(
        &self,
        server: &Server,
        page: &LoginPage,
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        self.http
            .post(server.url("/login/password"))
            .form(&[
                ("tx", page.tx.as_str()),
                ("csrf", page.csrf.as_str()),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .expect("POST /login/password")
    }

    /// `POST /login/certificate/challenge` with the page's CSRF token: (status, JSON).
    pub async fn cert_challenge(&self, server: &Server, csrf: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(server.url("/login/certificate/challenge"))
            .header("X-CSRF-Token", csrf)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("POST /login/certificate/challenge");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST /login/certificate` with a JSON body: (status, JSON).
    pub async fn cert_login(
        &self,
        server: &Server,
        csrf: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(server.url("/login/certificate"))
            .header("X-CSRF-Token", csrf)
            .json(body)
            .send()
            .await
            .expect("POST /login/certificate");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Authorization URL → login form → redirect back to the client; returns that location.
    pub async fn sign_in(&self, server: &Server, url: &str, user: &str, password: &str) -> String {
        match self.authorize(server, url).await {
            Ok(loc) => loc,
            Err(page) => {
                let res = self.submit_password(server, &page, user, password).await;
                assert_eq!(
                    res.status().as_u16(),
                    303,
                    "login failed: {}",
                    res.text().await.unwrap_or_default()
                );
                location(&res)
            }
        }
    }
}

pub type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A relying party configured by discovery, as any certified library would be.
pub async fn rp(server: &Server, client_id: &str, secret: Option<&str>, redirect: &str) -> Rp {
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer.clone()).expect("issuer"),
        &http(),
    )
    .await
    .expect("discovery");
    CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client_id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).expect("redirect"))
    .set_introspection_url(IntrospectionUrl::new(server.url("/introspect")).expect("url"))
    .set_revocation_url(RevocationUrl::new(server.url("/revoke")).expect("url"))
}

/// An authorization request prepared by the relying party: its URL and what the RP keeps.
pub struct Pending {
    pub url: String,
    pub state: String,
    pub nonce: Nonce,
    pub verifier: String,
}

/// A code-flow authorization URL with PKCE (S256), state and nonce, the given scopes (besides
/// openid) and extra parameters.
pub fn authorization(client: &Rp, scopes: &[&str], extra: &[(&str, &str)]) -> Pending {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in scopes {
        req = req.add_scope(Scope::new(s.to_string()));
    }
    for (k, v) in extra {
        req = req.add_extra_param(k.to_string(), v.to_string());
    }
    let (url, state, nonce) = req.url();
    Pending {
        url: url.to_string(),
        state: state.secret().clone(),
        nonce,
        verifier: verifier.secret().clone(),
    }
}

/// Checks the redirect back to the client (state, RFC 9207 iss, no error) and returns the code.
pub fn code_from(server: &Server, back: &str, p: &Pending) -> String {
    assert_eq!(
        param(back, "state").as_deref(),
        Some(p.state.as_str()),
        "state in {back}"
    );
    assert_eq!(
        param(back, "iss").as_deref(),
        Some(server.issuer.as_str()),
        "RFC 9207 iss in {back}"
    );
    assert_eq!(param(back, "error"), None, "unexpected error in {back}");
    param(back, "code").expect("a code")
}

/// The address of the page's link `id` (`<a id="…" href="…">`).
pub fn href(html: &str, id: &str) -> String {
    let marker = format!(r#"id="{id}" href=""#);
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(|h| h.replace("&amp;", "&").replace("&#x2f;", "/"))
        .unwrap_or_else(|| panic!("no link {id} in {html}"))
}

/// The addresses a page links to.
pub fn links(html: &str) -> Vec<String> {
    html.split(r#"href=""#)
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(|h| h.replace("&amp;", "&").replace("&#x2f;", "/"))
        .collect()
}

/// The client `rp`'s redirect back (`back`) for the request `p`: its code redeemed, the ID
/// token verified.
pub async fn redeem_code(
    server: &Server,
    back: &str,
    p: &Pending,
) -> openidconnect::core::CoreIdTokenClaims {
    use openidconnect::TokenResponse;
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let tokens = code_tokens(server, &client, back, p).await;
    tokens
        .id_token()
        .expect("an ID token")
        .claims(&client.id_token_verifier(), &p.nonce)
        .expect("the ID token verifies")
        .clone()
}

/// Declares a test for both backends: `name::sqlite` and `name::postgres_redis`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(d) =
                    $crate::common::Deployment::new($crate::common::Backend::Sqlite).await
                {
                    $body(d).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                if let Some(d) =
                    $crate::common::Deployment::new($crate::common::Backend::Shared).await
                {
                    $body(d).await;
                }
            }
        }
    };
}

// accounts hardening: the server process, for its memory figures.
impl Server {
    /// The operating-system process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `VmRSS` and `VmHWM` of the server (resident now and at its peak), in KiB, from
    /// /proc/<pid>/status (Linux).
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// The claims of a JWT, unverified (what a test reads of a token vhod issued).
pub fn payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url"),
    )
    .expect("JSON payload")
}

/// Redeems the code `client` got back at `back` (with the request's PKCE verifier): the
/// token response.
pub async fn code_tokens(
    server: &Server,
    client: &Rp,
    back: &str,
    p: &Pending,
) -> openidconnect::core::CoreTokenResponse {
    use openidconnect::{AuthorizationCode, PkceCodeVerifier};
    let code = code_from(server, back, p);
    client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange")
}

/// Redeems the code the client got back at `back` and returns the access token.
pub async fn access_token(server: &Server, client: &Rp, back: &str, p: &Pending) -> String {
    use openidconnect::OAuth2TokenResponse;
    let tokens = code_tokens(server, client, back, p).await;
    tokens.access_token().secret().clone()
}
