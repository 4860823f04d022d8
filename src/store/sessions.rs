//! tower-sessions storage for browser sessions, kept where the rest of the deployment's state is:
//! Redis when configured (several instances share it), otherwise the SQL database (survives restarts).
//! The session id is stored only as a hash, and the record under it holds only the data and
//! the expiry (never tower-sessions' own `Record`, which carries the id), so a copy of the store
//! cannot be turned back into cookies.
//!
//! Hand-written because the published stores either use another Redis client than the project's
//! or cannot target sqlx's `Any` pool that serves both SQL backends.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

use super::ephemeral::{Ephemeral, Key, keys};
use super::sql::Db;

#[derive(Clone)]
pub enum BrowserSessionStore {
    Sql(Db),
    Ephemeral(Ephemeral),
}

impl std::fmt::Debug for BrowserSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BrowserSessionStore::Sql(_) => "BrowserSessionStore::Sql",
            BrowserSessionStore::Ephemeral(_) => "BrowserSessionStore::Ephemeral",
        })
    }
}

fn storage_key(id: &Id) -> Key {
    keys::browser_session(&id.to_string())
}

/// What is kept of a session: its data and when it expires (Unix seconds). Records of another
/// shape (those of earlier versions held the id) are refused, so they no longer open sessions.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    data: HashMap<String, serde_json::Value>,
    expires: i64,
}

fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(&Stored {
        data: record.data.clone(),
        expires: record.expiry_date.unix_timestamp(),
    })
    .map_err(|e| Error::Encode(e.to_string()))
}

fn decode(id: &Id, text: &str) -> Option<Record> {
    let stored: Stored = serde_json::from_str(text).ok()?;
    Some(Record {
        id: *id,
        data: stored.data,
        expiry_date: time::OffsetDateTime::from_unix_timestamp(stored.expires).ok()?,
    })
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

fn remaining(record: &Record) -> Option<Duration> {
    let secs = (record.expiry_date - time::OffsetDateTime::now_utc()).whole_seconds();
    (secs > 0).then(|| Duration::from_secs(secs as u64))
}

impl BrowserSessionStore {
    async fn write(&self, record: &Record, only_new: bool) -> Result<bool> {
        let data = encode(record)?;
        let Some(ttl) = remaining(record) else {
            return Ok(true);
        };
        let key = storage_key(&record.id);
        match self {
            BrowserSessionStore::Ephemeral(eph) => {
                if only_new {
                    eph.put_if_absent(&key, data.as_bytes(), ttl)
                        .await
                        .map_err(backend)
                } else {
                    eph.put(&key, data.as_bytes(), ttl).await.map_err(backend)?;
                    Ok(true)
                }
            }
            BrowserSessionStore::Sql(db) => {
                let expires = record.expiry_date.unix_timestamp();
                let sql = if only_new {
                    "INSERT INTO web_sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING"
                } else {
                    "INSERT INTO web_sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
                };
                let done = sqlx::query(sql)
                    .bind(key.as_str())
                    .bind(&data)
                    .bind(expires)
                    .execute(&db.pool)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }
        }
    }

    /// Deletes expired SQL sessions (Redis expires its own). Browser sessions keep the system's
    /// time: tower-sessions dates their expiry by it.
    pub async fn sweep(&self) -> Result<()> {
        if let BrowserSessionStore::Sql(db) = self {
            sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
                .bind(crate::clock::now())
                .execute(&db.pool)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SessionStore for BrowserSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // 128-bit random ids collide only by accident; if one does, draw another.
        for _ in 0..4 {
            if self.write(record, true).await? {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend("could not allocate a session id".into()))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.write(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = storage_key(id);
        let data: Option<String> = match self {
            BrowserSessionStore::Ephemeral(eph) => eph
                .get(&key)
                .await
                .map_err(backend)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            BrowserSessionStore::Sql(db) => {
                sqlx::query("SELECT data FROM web_sessions WHERE id = $1 AND expires_at > $2")
                    .bind(key.as_str())
                    .bind(crate::clock::now())
                    .fetch_optional(&db.pool)
                    .await
                    .map_err(backend)?
                    .map(|row| row.try_get::<String, _>(0))
                    .transpose()
                    .map_err(backend)?
            }
        };
        let Some(data) = data else { return Ok(None) };
        // A record we cannot decode is treated as no session, never as an error page, and goes.
        match decode(id, &data) {
            Some(record) if remaining(&record).is_some() => Ok(Some(record)),
            _ => {
                self.delete(id).await?;
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let key = storage_key(id);
        match self {
            BrowserSessionStore::Ephemeral(eph) => eph.delete(&key).await.map_err(backend),
            BrowserSessionStore::Sql(db) => sqlx::query("DELETE FROM web_sessions WHERE id = $1")
                .bind(key.as_str())
                .execute(&db.pool)
                .await
                .map(|_| ())
                .map_err(backend),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_record_holds_data_and_expiry_only() {
        let mut record = Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        record
            .data
            .insert("sid".into(), serde_json::json!("sso-session"));
        let text = encode(&record).unwrap();
        assert!(!text.contains(&record.id.to_string()));
        assert!(!text.contains(&record.id.0.to_string()));
        assert!(!text.contains("\"id\""));
        let back = decode(&record.id, &text).unwrap();
        assert_eq!(back.id, record.id);
        assert_eq!(back.data, record.data);
        assert_eq!(
            back.expiry_date.unix_timestamp(),
            record.expiry_date.unix_timestamp()
        );
        // The shape earlier versions stored, id included, opens nothing.
        let old = serde_json::to_string(&record).unwrap();
        assert!(decode(&record.id, &old).is_none());
    }
}
