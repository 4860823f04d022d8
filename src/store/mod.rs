//! Storage: `sql` (durable: SQLite embedded, PostgreSQL in production) and `ephemeral`
//! (short-lived shared state: in-process or Redis). `sessions` adapts them to tower-sessions;
//! `units` holds the writes that span several aggregates, each one transaction.

pub mod ephemeral;
pub mod files;
pub mod sessions;
pub mod sql;
pub mod units;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
}
