//! Single sign-on sessions: one row per browser sign-in, referenced by `sid` from the browser's
//! cookie session and from the tokens issued under it.

use sqlx::Row;

use super::{Acr, AuthFacts, Authenticated, LegalEntity};
use crate::secrets;
use crate::store::sql::Db;

#[derive(Debug, Clone)]
pub struct SsoSession {
    pub sid: String,
    pub account_id: String,
    pub facts: AuthFacts,
    pub method: String,
    pub expires_at: i64,
}

pub async fn create(db: &Db, who: &Authenticated, ttl: u64) -> Result<SsoSession, sqlx::Error> {
    let sid = secrets::random_id();
    let now = db.clock.now();
    let expires_at = now + ttl as i64;
    sqlx::query(
        "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, expires_at, legal_entity) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&sid)
    .bind(&who.account_id)
    .bind(who.facts.auth_time)
    .bind(who.facts.acr.as_str())
    .bind(serde_json::to_string(&who.facts.amr).unwrap_or_else(|_| "[]".into()))
    .bind(who.method)
    .bind(now)
    .bind(expires_at)
    .bind(LegalEntity::to_column(&who.facts.legal_entity))
    .execute(&db.pool)
    .await?;
    Ok(SsoSession {
        sid,
        account_id: who.account_id.clone(),
        facts: who.facts.clone(),
        method: who.method.to_string(),
        expires_at,
    })
}

/// The same person signing in again in a browser whose session is theirs (a re-login, a
/// step-up): the session goes on under its `sid` with the new sign-in's facts and a new
/// lifetime, so the grants made under it stay tied to it and its logout still ends them all.
/// None when the session is no longer active or is another account's.
pub async fn renew(
    db: &Db,
    sid: &str,
    who: &Authenticated,
    ttl: u64,
) -> Result<Option<SsoSession>, sqlx::Error> {
    let now = db.clock.now();
    let expires_at = now + ttl as i64;
    let done = sqlx::query(
        "UPDATE sso_sessions SET auth_time = $1, acr = $2, amr = $3, method = $4, expires_at = $5, legal_entity = $6 \
         WHERE sid = $7 AND account_id = $8 AND ended_at IS NULL AND expires_at > $9",
    )
    .bind(who.facts.auth_time)
    .bind(who.facts.acr.as_str())
    .bind(serde_json::to_string(&who.facts.amr).unwrap_or_else(|_| "[]".into()))
    .bind(who.method)
    .bind(expires_at)
    .bind(LegalEntity::to_column(&who.facts.legal_entity))
    .bind(sid)
    .bind(&who.account_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok((done.rows_affected() == 1).then(|| SsoSession {
        sid: sid.to_string(),
        account_id: who.account_id.clone(),
        facts: who.facts.clone(),
        method: who.method.to_string(),
        expires_at,
    }))
}

pub async fn find_active(db: &Db, sid: &str) -> Result<Option<SsoSession>, sqlx::Error> {
    let now = db.clock.now();
    Ok(find_not_ended(db, sid)
        .await?
        .filter(|s| s.expires_at > now))
}

/// A session that was never ended, expired or not: what a sign-in over it or a logout must
/// still end, since the grants made under it outlive its expiry.
pub async fn find_not_ended(db: &Db, sid: &str) -> Result<Option<SsoSession>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT sid, account_id, auth_time, acr, amr, method, expires_at, legal_entity FROM sso_sessions \
         WHERE sid = $1 AND ended_at IS NULL",
    )
    .bind(sid)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let amr: String = row.try_get("amr")?;
    let acr: String = row.try_get("acr")?;
    Ok(Some(SsoSession {
        sid: row.try_get("sid")?,
        account_id: row.try_get("account_id")?,
        facts: AuthFacts {
            auth_time: row.try_get("auth_time")?,
            acr: Acr::parse(&acr).unwrap_or(Acr::Low),
            amr: serde_json::from_str(&amr).unwrap_or_default(),
            legal_entity: LegalEntity::from_column(row.try_get("legal_entity")?),
        },
        method: row.try_get("method")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Ends a session; true when it was still active.
pub async fn end(db: &Db, sid: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sso_sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
            .bind(db.clock.now())
            .bind(sid)
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::sql::test_dbs;

    fn who(account_id: &str, auth_time: i64) -> Authenticated {
        Authenticated {
            account_id: account_id.into(),
            facts: AuthFacts {
                auth_time,
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: "password",
        }
    }

    async fn with_account(db: &Db, id: &str) {
        sqlx::query(
            "INSERT INTO accounts (id, username, status, created_at, updated_at) \
             VALUES ($1, $1, 'active', 1, 1)",
        )
        .bind(id)
        .execute(&db.pool)
        .await
        .expect("an account");
    }

    /// A session lives exactly its lifetime, by the database's clock; an expired one is not
    /// renewed, though it stays findable (not ended) for what must still end it.
    #[tokio::test]
    async fn a_session_expires_at_its_lifetime_and_is_not_renewed_after() {
        for t in test_dbs().await {
            expires_at_its_lifetime(t.db.clone()).await;
        }
    }

    async fn expires_at_its_lifetime(db: Db) {
        let clock = Clock::at(1_800_000_000);
        let db = db.with_clock(clock.clone());
        with_account(&db, "a").await;
        let s = create(&db, &who("a", clock.now()), 100)
            .await
            .expect("created");
        assert_eq!(s.expires_at, 1_800_000_100);
        clock.advance(99);
        assert!(find_active(&db, &s.sid).await.unwrap().is_some());
        let renewed = renew(&db, &s.sid, &who("a", clock.now()), 100)
            .await
            .unwrap();
        assert_eq!(renewed.map(|r| r.expires_at), Some(1_800_000_199));
        clock.advance(100);
        assert!(find_active(&db, &s.sid).await.unwrap().is_none(), "expired");
        assert!(
            renew(&db, &s.sid, &who("a", clock.now()), 100)
                .await
                .unwrap()
                .is_none(),
            "an expired session is not brought back"
        );
        assert!(find_not_ended(&db, &s.sid).await.unwrap().is_some());
        assert!(end(&db, &s.sid).await.unwrap(), "ended now");
        assert!(find_not_ended(&db, &s.sid).await.unwrap().is_none());
    }
}
