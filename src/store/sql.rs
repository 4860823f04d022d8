//! The SQL pool. One dialect serves both backends: queries use `$n` parameters, which SQLite
//! and PostgreSQL both accept, and only types both share (TEXT, 64-bit integers).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

use crate::clock::Clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub(in crate::store) pool: AnyPool,
    pub backend: Backend,
    /// The time the stored rows are dated by and compared with (expiry).
    pub clock: Clock,
}

/// Migrations are compiled into the binary so `vhod` stays one file to deploy.
/// (version, description, SQL), in order; tests build databases of earlier releases from them.
pub const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
    ),
    (
        2,
        "citizens",
        include_str!("../../migrations/sqlite/0002_citizens.sql"),
    ),
    (
        3,
        "certificates",
        include_str!("../../migrations/sqlite/0003_certificates.sql"),
    ),
    (
        4,
        "certificate_scopes",
        include_str!("../../migrations/sqlite/0004_certificate_scopes.sql"),
    ),
    (
        5,
        "contacts",
        include_str!("../../migrations/sqlite/0005_contacts.sql"),
    ),
    (
        6,
        "http_hardening",
        include_str!("../../migrations/sqlite/0006_http_hardening.sql"),
    ),
    (
        7,
        "pages",
        include_str!("../../migrations/sqlite/0007_pages.sql"),
    ),
    (
        8,
        "upstreams",
        include_str!("../../migrations/sqlite/0008_upstreams.sql"),
    ),
    (
        9,
        "organisations",
        include_str!("../../migrations/sqlite/0009_organisations.sql"),
    ),
    (
        10,
        "audit_chain",
        include_str!("../../migrations/sqlite/0010_audit_chain.sql"),
    ),
    (
        11,
        "audit_indexes",
        include_str!("../../migrations/sqlite/0011_audit_indexes.sql"),
    ),
];
pub const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("../../migrations/postgres/0001_core.sql"),
    ),
    (
        2,
        "citizens",
        include_str!("../../migrations/postgres/0002_citizens.sql"),
    ),
    (
        3,
        "certificates",
        include_str!("../../migrations/postgres/0003_certificates.sql"),
    ),
    (
        4,
        "certificate_scopes",
        include_str!("../../migrations/postgres/0004_certificate_scopes.sql"),
    ),
    (
        5,
        "contacts",
        include_str!("../../migrations/postgres/0005_contacts.sql"),
    ),
    (
        6,
        "http_hardening",
        include_str!("../../migrations/postgres/0006_http_hardening.sql"),
    ),
    (
        7,
        "pages",
        include_str!("../../migrations/postgres/0007_pages.sql"),
    ),
    (
        8,
        "upstreams",
        include_str!("../../migrations/postgres/0008_upstreams.sql"),
    ),
    (
        9,
        "organisations",
        include_str!("../../migrations/postgres/0009_organisations.sql"),
    ),
    (
        10,
        "audit_chain",
        include_str!("../../migrations/postgres/0010_audit_chain.sql"),
    ),
    (
        11,
        "audit_indexes",
        include_str!("../../migrations/postgres/0011_audit_indexes.sql"),
    ),
];

impl Db {
    /// The same database, dated by `clock` (tests set the time).
    pub fn with_clock(self, clock: Clock) -> Db {
        Db { clock, ..self }
    }

    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("VHOD_DATABASE_URL must start with sqlite: or postgres:");
        };
        if backend == Backend::Sqlite {
            prepare_sqlite_file(url)?;
        }
        let options = AnyConnectOptions::from_str(url).context("parsing VHOD_DATABASE_URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; busy_timeout makes a
                        // second process (the CLI next to `serve`) wait instead of failing.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                             PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        Ok(Db {
            pool,
            backend,
            clock: Clock::system(),
        })
    }

    fn migrator(&self) -> Migrator {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        Migrator {
            migrations: Cow::Owned(
                list.iter()
                    .map(|(v, d, sql)| {
                        Migration::new(
                            *v,
                            Cow::Borrowed(*d),
                            MigrationType::Simple,
                            Cow::Borrowed(*sql),
                            false,
                        )
                    })
                    .collect(),
            ),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        }
    }

    /// Applies pending migrations. Safe to run from several processes at once (PostgreSQL takes
    /// an advisory lock; SQLite serialises writers).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator()
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    pub async fn ping(&self) -> Result<(), super::StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// The SQLite file private to the service's user, created so when the URL allows creating it.
fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return Ok(());
    }
    let create = query.split('&').any(|p| p == "mode=rwc");
    super::files::private_database(std::path::Path::new(path), create)
}

/// A migrated SQLite database in a temporary directory, for the tests beside the code (the
/// directory goes when the first half of the pair is dropped).
#[cfg(test)]
pub async fn test_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let db = Db::connect(&url).await.expect("SQLite");
    db.migrate().await.expect("migrations");
    (dir, db)
}

/// A database for the store tests beside the code, dropped with this (a PostgreSQL one with
/// it, on a helper thread: Drop cannot await).
#[cfg(test)]
pub struct TestDb {
    pub db: Db,
    /// Where it is, for a second pool on it (another replica).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// (where to connect to drop it, its name)
    pg: Option<(String, String)>,
}

#[cfg(test)]
impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut conn = sqlx::AnyConnection::connect(&admin).await.ok()?;
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    conn.execute(drop.as_str()).await.ok().map(|_| ())
                })
            })
            .join();
        }
    }
}

/// Every backend the store tests run against: SQLite always, and PostgreSQL (a database of
/// its own) when `VHOD_TEST_DATABASE_URL` names a server, as in CI, which sets
/// `VHOD_TEST_REQUIRE_SERVERS` so that an unreachable server fails the tests instead of
/// skipping them. One suite, every backend, as Ory Hydra runs its manager tests.
#[cfg(test)]
pub async fn test_dbs() -> Vec<TestDb> {
    let (dir, db) = test_db().await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let mut all = vec![TestDb {
        db,
        url,
        _dir: Some(dir),
        pg: None,
    }];
    match std::env::var("VHOD_TEST_DATABASE_URL") {
        Ok(base) => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&base)
                .await
                .expect("VHOD_TEST_DATABASE_URL: PostgreSQL");
            let name = format!("vhod_unit_{}", crate::secrets::random_id().to_lowercase());
            let name: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("a test database");
            let (root, _) = base.rsplit_once('/').expect("a database name in the URL");
            let url = format!("{root}/{name}");
            let db = Db::connect(&url).await.expect("the test database");
            db.migrate().await.expect("migrations");
            all.push(TestDb {
                db,
                url,
                _dir: None,
                pg: Some((base, name)),
            });
        }
        Err(_) => assert!(
            std::env::var_os("VHOD_TEST_REQUIRE_SERVERS").is_none(),
            "VHOD_TEST_REQUIRE_SERVERS is set but VHOD_TEST_DATABASE_URL is not"
        ),
    }
    all
}

#[cfg(test)]
impl Db {
    /// Raw SQL, for tests that deliberately tamper with the schema or stored rows (a broken
    /// table, a trigger that fails writes, a row of an older shape).
    pub async fn tamper(&self, sql: &str) {
        self.pool.execute(sql).await.expect(sql);
    }

    /// One value read with raw SQL (a count, a column of one row), for tests that check what
    /// tampering left.
    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(&self.pool)
            .await
            .expect(sql)
            .try_get::<T, _>(0)
            .expect("a value of the asked type")
    }
}
