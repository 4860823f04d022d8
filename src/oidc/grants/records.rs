//! Grants (one per authorization) and their refresh tokens. Refresh tokens are random strings
//! stored only as hashes; each use rotates them; presenting a used one again revokes the grant
//! (RFC 9700 §4.14.2), and with it the access tokens minted under it.

use sqlx::Row;

use crate::authn::{Acr, AuthFacts, LegalEntity};
use crate::secrets;
use crate::store::sql::Db;

#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub sid: Option<String>,
    pub scope: Vec<String>,
    pub facts: AuthFacts,
    pub expires_at: i64,
}

impl GrantRecord {
    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }
}

pub enum RefreshOutcome {
    /// The token was valid and is now used; here is its grant and the successor token.
    Rotated {
        grant: GrantRecord,
        new_token: String,
    },
    /// The token had been used before: the grant has been revoked.
    Reused {
        grant_id: String,
        account_id: String,
    },
    Invalid,
}

async fn insert_refresh(
    conn: &mut sqlx::AnyConnection,
    grant_id: &str,
    grant_expires_at: i64,
    now: i64,
) -> Result<String, sqlx::Error> {
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

/// Creates the grant of a redeemed code, with its first refresh token when `with_refresh`.
pub async fn create(
    db: &Db,
    grant: &GrantRecord,
    with_refresh: bool,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query(
        "INSERT INTO grants (id, account_id, client_id, sid, scope, auth_time, acr, amr, created_at, expires_at, legal_entity) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&grant.id)
    .bind(&grant.account_id)
    .bind(&grant.client_id)
    .bind(&grant.sid)
    .bind(grant.scope_string())
    .bind(grant.facts.auth_time)
    .bind(grant.facts.acr.as_str())
    .bind(serde_json::to_string(&grant.facts.amr).unwrap_or_else(|_| "[]".into()))
    .bind(db.clock.now())
    .bind(grant.expires_at)
    .bind(LegalEntity::to_column(&grant.facts.legal_entity))
    .execute(&mut *tx)
    .await?;
    let token = if with_refresh {
        Some(insert_refresh(&mut tx, &grant.id, grant.expires_at, db.clock.now()).await?)
    } else {
        None
    };
    tx.commit().await?;
    Ok(token)
}

fn grant_from_row(row: &sqlx::any::AnyRow) -> Result<GrantRecord, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    let amr: String = row.try_get("amr")?;
    let acr: String = row.try_get("acr")?;
    Ok(GrantRecord {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        client_id: row.try_get("client_id")?,
        sid: row.try_get("sid")?,
        scope: scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        facts: AuthFacts {
            auth_time: row.try_get("auth_time")?,
            acr: Acr::parse(&acr).unwrap_or(Acr::Low),
            amr: serde_json::from_str(&amr).unwrap_or_default(),
            legal_entity: LegalEntity::from_column(row.try_get("legal_entity")?),
        },
        expires_at: row.try_get("expires_at")?,
    })
}

const GRANT_COLUMNS: &str = "g.id, g.account_id, g.client_id, g.sid, g.scope, g.auth_time, g.acr, g.amr, g.expires_at, g.legal_entity";

/// Uses a refresh token of `client_id` exactly once, atomically: of two concurrent uses one
/// rotates and the other is treated as reuse.
pub async fn use_refresh(
    db: &Db,
    token: &str,
    client_id: &str,
) -> Result<RefreshOutcome, sqlx::Error> {
    let hash = secrets::token_hash(token);
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
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
            "SELECT {GRANT_COLUMNS} FROM grants g JOIN refresh_tokens r ON r.grant_id = g.id WHERE r.token_hash = $1"
        ))
        .bind(&hash)
        .fetch_one(&mut *tx)
        .await?;
        let grant = grant_from_row(&row)?;
        let new_token =
            insert_refresh(&mut tx, &grant.id, grant.expires_at, db.clock.now()).await?;
        tx.commit().await?;
        return Ok(RefreshOutcome::Rotated { grant, new_token });
    }
    tx.rollback().await?;
    let row = sqlx::query(
        "SELECT r.used_at, g.id, g.client_id, g.account_id FROM refresh_tokens r JOIN grants g ON r.grant_id = g.id \
         WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(row) = row {
        let used: Option<i64> = row.try_get(0)?;
        let grant_id: String = row.try_get(1)?;
        let owner: String = row.try_get(2)?;
        if used.is_some() && owner == client_id {
            revoke(db, &grant_id, "refresh_token_reuse").await?;
            return Ok(RefreshOutcome::Reused {
                grant_id,
                account_id: row.try_get(3)?,
            });
        }
    }
    Ok(RefreshOutcome::Invalid)
}

/// The grant of a refresh token, if the token is still usable (introspection, revocation).
pub async fn find_by_refresh(db: &Db, token: &str) -> Result<Option<GrantRecord>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM grants g JOIN refresh_tokens r ON r.grant_id = g.id \
         WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 AND g.revoked_at IS NULL"
    ))
    .bind(secrets::token_hash(token))
    .bind(db.clock.now())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| grant_from_row(&r)).transpose()
}

pub async fn revoke(db: &Db, grant_id: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(db.clock.now())
        .bind(reason)
        .bind(grant_id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// On logout: the session's grants end with it, except those the person granted offline_access.
pub async fn revoke_for_session(db: &Db, sid: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE grants SET revoked_at = $1, revoked_reason = 'logout' WHERE sid = $2 AND revoked_at IS NULL \
         AND (' ' || scope || ' ') NOT LIKE '% offline_access %'",
    )
    .bind(db.clock.now())
    .bind(sid)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn is_revoked(db: &Db, grant_id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>(0)?.is_some(),
        None => true,
    })
}

/// Access tokens revoked one by one (RFC 7009), remembered until they would have expired.
pub async fn revoke_access_token(db: &Db, jti: &str, expires_at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn is_access_token_revoked(db: &Db, jti: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&db.pool)
            .await?
            .is_some(),
    )
}

/// Housekeeping: rows whose every token has expired.
pub async fn sweep(db: &Db) -> Result<(), sqlx::Error> {
    let now = db.clock.now();
    sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(&db.pool)
        .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}
