//! Storage: `sql` (durable: SQLite embedded, PostgreSQL in production) and `ephemeral`
//! (short-lived shared state: in-process or Redis). This is the only module with SQL: one file
//! per aggregate (`accounts`, `certificates`, `upstream_identities`, `clients`, `sso_sessions`,
//! `grants`, `audit_log`, `organisations`, `memberships` (with administrators' scopes),
//! `delegations`), each a narrow set of methods on [`sql::Db`] that both backends
//! serve; `units` holds the writes that span several aggregates, each one transaction;
//! `sessions` adapts the stores to tower-sessions. Callers see [`StoreError`], never a driver's error.

pub mod accounts;
pub mod audit_log;
pub mod audit_search;
pub mod certificates;
pub mod clients;
pub mod delegations;
pub mod ephemeral;
pub mod files;
pub mod grants;
pub mod memberships;
pub mod organisations;
pub mod sessions;
pub mod sql;
pub mod sso_sessions;
pub mod units;
pub mod upstream_identities;

/// What can go wrong in storage, as the layers above need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row that had to exist does not (it was deleted meanwhile).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write (the name, number or key is someone else's).
    #[error("conflicts with a stored row")]
    Conflict,
    /// The database or cache could not be reached or failed; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
            e => StoreError::Unavailable(e.to_string()),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
