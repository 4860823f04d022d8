//! The single sign-on sessions aggregate: one row per browser sign-in. What a session means
//! (its facts, when it counts as active) is `authn::session`'s; this file stores rows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;

/// How the person authenticated, as the `sso_sessions` and `grants` rows keep it: `amr` and
/// `legal_entity` are JSON (`authn::AuthFacts` reads and writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFacts {
    pub auth_time: i64,
    pub acr: String,
    pub amr: String,
    pub legal_entity: Option<String>,
}

impl StoredFacts {
    pub(super) fn from_row(row: &AnyRow) -> Result<StoredFacts, sqlx::Error> {
        Ok(StoredFacts {
            auth_time: row.try_get("auth_time")?,
            acr: row.try_get("acr")?,
            amr: row.try_get("amr")?,
            legal_entity: row.try_get("legal_entity")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub sid: String,
    pub account_id: String,
    pub facts: StoredFacts,
    pub method: String,
    pub expires_at: i64,
}

/// Ends every open session of the account at `now`; returns their sids.
pub(super) async fn end_all_of_on(
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "UPDATE sso_sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL RETURNING sid",
    )
    .bind(now)
    .bind(account_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Ends one session at `now`; true when it was still open.
pub(super) async fn end_on(
    conn: &mut sqlx::AnyConnection,
    sid: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE sso_sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(sid)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes a new session on `conn`, dated `now`.
pub(super) async fn insert_on(
    conn: &mut sqlx::AnyConnection,
    s: &SessionRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, expires_at, legal_entity) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.sid)
    .bind(&s.account_id)
    .bind(s.facts.auth_time)
    .bind(&s.facts.acr)
    .bind(&s.facts.amr)
    .bind(&s.method)
    .bind(now)
    .bind(s.expires_at)
    .bind(&s.facts.legal_entity)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews an open, unexpired session of the account on `conn` at `now`; true when it was.
pub(super) async fn renew_on(
    conn: &mut sqlx::AnyConnection,
    s: &SessionRow,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE sso_sessions SET auth_time = $1, acr = $2, amr = $3, method = $4, expires_at = $5, legal_entity = $6 \
         WHERE sid = $7 AND account_id = $8 AND ended_at IS NULL AND expires_at > $9",
    )
    .bind(s.facts.auth_time)
    .bind(&s.facts.acr)
    .bind(&s.facts.amr)
    .bind(&s.method)
    .bind(s.expires_at)
    .bind(&s.facts.legal_entity)
    .bind(&s.sid)
    .bind(&s.account_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sessions of a database: `db.sso_sessions()`.
pub struct SsoSessions<'a> {
    db: &'a Db,
}

impl Db {
    pub fn sso_sessions(&self) -> SsoSessions<'_> {
        SsoSessions { db: self }
    }
}

impl SsoSessions<'_> {
    /// A new session, created now.
    pub async fn insert(&self, s: &SessionRow) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        insert_on(&mut conn, s, self.db.clock.now()).await
    }

    /// Gives the session `s.sid` of account `s.account_id` the new sign-in's facts, method and
    /// expiry, if it is still open and unexpired now; true when it was.
    pub async fn renew(&self, s: &SessionRow) -> Result<bool, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        renew_on(&mut conn, s, self.db.clock.now()).await
    }

    /// A session that was never ended, expired or not.
    pub async fn find_not_ended(&self, sid: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT sid, account_id, auth_time, acr, amr, method, expires_at, legal_entity FROM sso_sessions \
             WHERE sid = $1 AND ended_at IS NULL",
        )
        .bind(sid)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRow {
            sid: row.try_get("sid")?,
            account_id: row.try_get("account_id")?,
            facts: StoredFacts::from_row(&row)?,
            method: row.try_get("method")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Ends a session now; true when it was still open.
    pub async fn end(&self, sid: &str) -> Result<bool, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        end_on(&mut conn, sid, self.db.clock.now()).await
    }

    /// How many sessions are stored, ended or not.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM sso_sessions")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// How many sessions were never ended, expired or not (as [`Self::find_not_ended`] finds).
    pub async fn count_not_ended(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM sso_sessions WHERE ended_at IS NULL")
                .fetch_one(&self.db.pool)
                .await?
                .try_get(0)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::accounts::NewRow;
    use crate::store::sql::test_dbs;

    fn session(sid: &str, expires_at: i64) -> SessionRow {
        SessionRow {
            sid: sid.into(),
            account_id: "a".into(),
            facts: StoredFacts {
                auth_time: 1,
                acr: "low".into(),
                amr: "[\"pwd\"]".into(),
                legal_entity: None,
            },
            method: "password".into(),
            expires_at,
        }
    }

    /// Every stored session counts; an ended one no longer counts as not ended, an expired
    /// one still does.
    #[tokio::test]
    async fn sessions_are_counted_ended_or_not() {
        for t in test_dbs().await {
            let db = t.db.clone().with_clock(Clock::at(1_000));
            db.accounts().insert(&NewRow::active("a")).await.unwrap();
            let sessions = db.sso_sessions();
            assert_eq!(
                (
                    sessions.count().await.unwrap(),
                    sessions.count_not_ended().await.unwrap()
                ),
                (0, 0)
            );
            sessions.insert(&session("s1", 2_000)).await.unwrap();
            sessions.insert(&session("s2", 500)).await.unwrap();
            sessions.insert(&session("s3", 2_000)).await.unwrap();
            assert!(sessions.end("s3").await.unwrap());
            assert_eq!(sessions.count().await.unwrap(), 3);
            assert_eq!(
                sessions.count_not_ended().await.unwrap(),
                2,
                "s1, and s2 though expired"
            );
        }
    }
}
