//! The grants aggregate: one grant per authorization, its refresh tokens, and access tokens
//! revoked one by one. Refresh tokens are random strings stored only as hashes; each use
//! rotates them; presenting a used one again revokes the grant (RFC 9700 §4.14.2).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;
use super::sso_sessions::StoredFacts;
use crate::secrets;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub sid: Option<String>,
    /// Space-separated, as granted.
    pub scope: String,
    pub facts: StoredFacts,
    pub expires_at: i64,
}

/// What presenting a refresh token came to; `G` is the grant as the caller reads it.
pub enum RefreshUse<G = GrantRow> {
    /// The token was valid and is now used; here is its grant and the successor token.
    Rotated {
        grant: G,
        new_token: String,
    },
    /// The token had been used before: the grant has been revoked.
    Reused {
        grant_id: String,
        account_id: String,
    },
    Invalid,
}

impl RefreshUse {
    pub fn map_grant<G>(self, f: impl FnOnce(GrantRow) -> G) -> RefreshUse<G> {
        match self {
            RefreshUse::Rotated { grant, new_token } => RefreshUse::Rotated {
                grant: f(grant),
                new_token,
            },
            RefreshUse::Reused {
                grant_id,
                account_id,
            } => RefreshUse::Reused {
                grant_id,
                account_id,
            },
            RefreshUse::Invalid => RefreshUse::Invalid,
        }
    }
}

const COLUMNS: &str = "g.id, g.account_id, g.client_id, g.sid, g.scope, g.auth_time, g.acr, g.amr, g.expires_at, g.legal_entity";

fn from_row(row: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        client_id: row.try_get("client_id")?,
        sid: row.try_get("sid")?,
        scope: row.try_get("scope")?,
        facts: StoredFacts::from_row(row)?,
        expires_at: row.try_get("expires_at")?,
    })
}

async fn insert_refresh(
    conn: &mut sqlx::AnyConnection,
    grant_id: &str,
    grant_expires_at: i64,
    now: i64,
) -> Result<String, StoreError> {
    let token = secrets::random_token();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(secrets::token_hash(&token))
    .bind(grant_id)
    .bind(now)
    .bind(grant_expires_at)
    .execute(conn)
    .await?;
    Ok(token)
}

/// Revokes every live grant of the account at `now` (their refresh tokens die with them).
pub(super) async fn revoke_all_of_on(
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE account_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(account_id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// On logout: the session's grants end with it, except those granted offline_access.
pub(super) async fn revoke_for_session_on(
    conn: &mut sqlx::AnyConnection,
    sid: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE grants SET revoked_at = $1, revoked_reason = 'logout' WHERE sid = $2 AND revoked_at IS NULL \
         AND (' ' || scope || ' ') NOT LIKE '% offline_access %'",
    )
    .bind(now)
    .bind(sid)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The grants of a database: `db.grants()`.
pub struct Grants<'a> {
    db: &'a Db,
}

impl Db {
    pub fn grants(&self) -> Grants<'_> {
        Grants { db: self }
    }
}

impl Grants<'_> {
    /// Creates the grant of a redeemed code, with its first refresh token when `with_refresh`
    /// (both or neither).
    pub async fn insert(
        &self,
        grant: &GrantRow,
        with_refresh: bool,
    ) -> Result<Option<String>, StoreError> {
        let now = self.db.clock.now();
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            "INSERT INTO grants (id, account_id, client_id, sid, scope, auth_time, acr, amr, created_at, expires_at, legal_entity) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&grant.id)
        .bind(&grant.account_id)
        .bind(&grant.client_id)
        .bind(&grant.sid)
        .bind(&grant.scope)
        .bind(grant.facts.auth_time)
        .bind(&grant.facts.acr)
        .bind(&grant.facts.amr)
        .bind(now)
        .bind(grant.expires_at)
        .bind(&grant.facts.legal_entity)
        .execute(&mut *tx)
        .await?;
        let token = if with_refresh {
            Some(insert_refresh(&mut tx, &grant.id, grant.expires_at, now).await?)
        } else {
            None
        };
        tx.commit().await?;
        Ok(token)
    }

    /// Uses a refresh token of `client_id` exactly once, atomically: of two concurrent uses
    /// one rotates and the other is treated as reuse.
    pub async fn use_refresh(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<RefreshUse, StoreError> {
        let hash = secrets::token_hash(token);
        let now = self.db.clock.now();
        let mut tx = self.db.pool.begin().await?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             AND grant_id IN (SELECT id FROM grants WHERE client_id = $3 AND revoked_at IS NULL AND expires_at > $1)",
        )
        .bind(now)
        .bind(&hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 1 {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM grants g JOIN refresh_tokens r ON r.grant_id = g.id WHERE r.token_hash = $1"
            ))
            .bind(&hash)
            .fetch_one(&mut *tx)
            .await?;
            let grant = from_row(&row)?;
            let new_token = insert_refresh(&mut tx, &grant.id, grant.expires_at, now).await?;
            tx.commit().await?;
            return Ok(RefreshUse::Rotated { grant, new_token });
        }
        tx.rollback().await?;
        let row = sqlx::query(
            "SELECT r.used_at, g.id, g.client_id, g.account_id FROM refresh_tokens r JOIN grants g ON r.grant_id = g.id \
             WHERE r.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db.pool)
        .await?;
        if let Some(row) = row {
            let used: Option<i64> = row.try_get(0)?;
            let grant_id: String = row.try_get(1)?;
            let owner: String = row.try_get(2)?;
            if used.is_some() && owner == client_id {
                self.revoke(&grant_id, "refresh_token_reuse").await?;
                return Ok(RefreshUse::Reused {
                    grant_id,
                    account_id: row.try_get(3)?,
                });
            }
        }
        Ok(RefreshUse::Invalid)
    }

    /// The grant of a refresh token, if the token is still usable.
    pub async fn find_by_refresh(&self, token: &str) -> Result<Option<GrantRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM grants g JOIN refresh_tokens r ON r.grant_id = g.id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 AND g.revoked_at IS NULL"
        ))
        .bind(secrets::token_hash(token))
        .bind(self.db.clock.now())
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(|r| from_row(&r)).transpose()?)
    }

    /// Revokes one grant; true when it was live.
    pub async fn revoke(&self, grant_id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(self.db.clock.now())
        .bind(reason)
        .bind(grant_id)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revoked, or never stored (an unknown grant grants nothing).
    pub async fn is_revoked(&self, grant_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>(0)?.is_some(),
            None => true,
        })
    }

    /// Clients that received tokens under the session `sid`.
    pub async fn clients_of_session(&self, sid: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT client_id FROM grants WHERE sid = $1")
            .bind(sid)
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?)
    }

    /// Access tokens revoked one by one (RFC 7009), remembered until they would have expired.
    pub async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&self.db.pool)
                .await?
                .is_some(),
        )
    }

    /// How many grants are stored, revoked or not.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM grants")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// How many grants were never revoked, expired or not.
    pub async fn count_not_revoked(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL")
                .fetch_one(&self.db.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// How many refresh tokens are stored, used or not (until [`Self::sweep`] drops the
    /// expired ones).
    pub async fn count_refresh_tokens(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM refresh_tokens")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// How many access tokens revoked one by one are remembered.
    pub async fn count_revoked_access_tokens(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM revoked_access_tokens")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// Housekeeping: rows whose every token has expired.
    pub async fn sweep(&self) -> Result<(), StoreError> {
        let now = self.db.clock.now();
        sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::accounts::NewRow;
    use crate::store::sql::test_dbs;

    fn grant(id: &str, sid: &str, expires_at: i64) -> GrantRow {
        GrantRow {
            id: id.into(),
            account_id: "a".into(),
            client_id: "rp".into(),
            sid: Some(sid.into()),
            scope: "openid offline_access".into(),
            facts: StoredFacts {
                auth_time: 1,
                acr: "low".into(),
                amr: "[\"pwd\"]".into(),
                legal_entity: None,
            },
            expires_at,
        }
    }

    /// A refresh token works once, for its own client, until it or its grant expires; its
    /// successor works next; the used one presented again revokes the grant.
    #[tokio::test]
    async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
        for t in test_dbs().await {
            let clock = Clock::at(1_000);
            let db = t.db.clone().with_clock(clock.clone());
            db.accounts().insert(&NewRow::active("a")).await.unwrap();
            let g = grant("g1", "s1", 2_000);
            let first = db
                .grants()
                .insert(&g, true)
                .await
                .unwrap()
                .expect("a token");
            assert!(
                db.grants()
                    .insert(&grant("g0", "s1", 2_000), false)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                db.grants().find_by_refresh(&first).await.unwrap(),
                Some(g.clone())
            );
            let other = db.grants().use_refresh(&first, "another-rp").await.unwrap();
            assert!(matches!(other, RefreshUse::Invalid), "another client's");
            let RefreshUse::Rotated {
                grant: got,
                new_token,
            } = db.grants().use_refresh(&first, "rp").await.unwrap()
            else {
                panic!("rotated")
            };
            assert_eq!(got, g);
            assert!(
                db.grants().find_by_refresh(&first).await.unwrap().is_none(),
                "used"
            );
            let again = db.grants().use_refresh(&first, "rp").await.unwrap();
            assert!(matches!(again, RefreshUse::Reused { ref grant_id, .. } if grant_id == "g1"));
            assert!(db.grants().is_revoked("g1").await.unwrap());
            let after = db.grants().use_refresh(&new_token, "rp").await.unwrap();
            assert!(matches!(after, RefreshUse::Invalid), "the grant is revoked");
            assert!(db.grants().is_revoked("unknown").await.unwrap());
            // Expiry, by the store's clock.
            let g2 = grant("g2", "s2", 1_500);
            let token = db.grants().insert(&g2, true).await.unwrap().unwrap();
            clock.advance(500);
            assert!(db.grants().find_by_refresh(&token).await.unwrap().is_none());
            assert!(matches!(
                db.grants().use_refresh(&token, "rp").await.unwrap(),
                RefreshUse::Invalid
            ));
            let mut clients = db.grants().clients_of_session("s1").await.unwrap();
            clients.sort();
            assert_eq!(clients, ["rp"]);
        }
    }

    /// Grants count revoked or not, and refresh tokens used or not, until swept.
    #[tokio::test]
    async fn grants_and_their_tokens_are_counted() {
        for t in test_dbs().await {
            let clock = Clock::at(1_000);
            let db = t.db.clone().with_clock(clock.clone());
            db.accounts().insert(&NewRow::active("a")).await.unwrap();
            let grants = db.grants();
            let counts = async || {
                (
                    grants.count().await.unwrap(),
                    grants.count_not_revoked().await.unwrap(),
                    grants.count_refresh_tokens().await.unwrap(),
                    grants.count_revoked_access_tokens().await.unwrap(),
                )
            };
            assert_eq!(counts().await, (0, 0, 0, 0));
            let token = grants
                .insert(&grant("g1", "s1", 2_000), true)
                .await
                .unwrap()
                .expect("a token");
            grants
                .insert(&grant("g2", "s1", 1_500), false)
                .await
                .unwrap();
            assert_eq!(counts().await, (2, 2, 1, 0));
            assert!(matches!(
                grants.use_refresh(&token, "rp").await.unwrap(),
                RefreshUse::Rotated { .. }
            ));
            assert_eq!(
                counts().await,
                (2, 2, 2, 0),
                "the used one stays until swept"
            );
            assert!(grants.revoke("g2", "test").await.unwrap());
            grants.revoke_access_token("j1", 1_100).await.unwrap();
            assert_eq!(counts().await, (2, 1, 2, 1));
            clock.advance(1_001);
            grants.sweep().await.unwrap();
            assert_eq!(counts().await, (2, 1, 0, 0), "grants are not swept");
        }
    }

    #[tokio::test]
    async fn revoked_access_tokens_are_remembered_until_they_expire() {
        for t in test_dbs().await {
            let clock = Clock::at(1_000);
            let db = t.db.clone().with_clock(clock.clone());
            db.grants().revoke_access_token("j1", 1_100).await.unwrap();
            db.grants()
                .revoke_access_token("j1", 1_100)
                .await
                .expect("idempotent");
            assert!(db.grants().is_access_token_revoked("j1").await.unwrap());
            assert!(!db.grants().is_access_token_revoked("j2").await.unwrap());
            clock.advance(101);
            db.grants().sweep().await.unwrap();
            assert!(
                !db.grants().is_access_token_revoked("j1").await.unwrap(),
                "swept"
            );
        }
    }
}
