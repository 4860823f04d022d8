//! The upstream identities aggregate: which account an identity at an upstream provider belongs
//! to, keyed by (upstream, issuer, subject); and which single sign-on sessions an upstream
//! login made. What a link means, and when one may be made, is `identity::upstream`'s.

use sqlx::Row;

use super::StoreError;
use super::sql::Db;

/// The link key: the upstream's name in the settings, its issuer, the person's `sub` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamKey<'a> {
    pub upstream: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
}

/// A stored link, as the profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub upstream: String,
    pub issuer: String,
    pub subject: String,
    pub created_at: i64,
    pub last_login_at: i64,
}

/// Writes a link on `conn`; a key already linked is [`StoreError::Conflict`].
pub(super) async fn insert_on(
    conn: &mut sqlx::AnyConnection,
    key: &UpstreamKey<'_>,
    account_id: &str,
    personal_number: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO upstream_identities \
         (upstream, issuer, subject, account_id, personal_number, created_at, last_login_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(key.upstream)
    .bind(key.issuer)
    .bind(key.subject)
    .bind(account_id)
    .bind(personal_number)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records on `conn` that the session `sid` was made (or renewed) by a login through the
/// identity, with the upstream's own session id when it gave one.
pub(super) async fn record_session_on(
    conn: &mut sqlx::AnyConnection,
    sid: &str,
    key: &UpstreamKey<'_>,
    upstream_sid: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO upstream_sessions (sid, upstream, issuer, subject, upstream_sid, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sid) DO UPDATE SET upstream = excluded.upstream, \
         issuer = excluded.issuer, subject = excluded.subject, upstream_sid = excluded.upstream_sid, \
         created_at = excluded.created_at",
    )
    .bind(sid)
    .bind(key.upstream)
    .bind(key.issuer)
    .bind(key.subject)
    .bind(upstream_sid)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets on `conn` which upstream login the session `sid` was made by.
pub(super) async fn forget_session_on(
    conn: &mut sqlx::AnyConnection,
    sid: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM upstream_sessions WHERE sid = $1")
        .bind(sid)
        .execute(conn)
        .await?;
    Ok(())
}

/// The upstream identities of a database: `db.upstream_identities()`.
pub struct UpstreamIdentities<'a> {
    db: &'a Db,
}

impl Db {
    pub fn upstream_identities(&self) -> UpstreamIdentities<'_> {
        UpstreamIdentities { db: self }
    }
}

impl UpstreamIdentities<'_> {
    /// The account the upstream identity is linked to.
    pub async fn owner(&self, key: &UpstreamKey<'_>) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id FROM upstream_identities \
             WHERE upstream = $1 AND issuer = $2 AND subject = $3",
        )
        .bind(key.upstream)
        .bind(key.issuer)
        .bind(key.subject)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(|r| r.try_get("account_id")).transpose()?)
    }

    /// The accounts that hold this personal number as a verified fact: a certificate of the
    /// authority on numbers (`pn:<number>`) or an upstream that vouches for numbers.
    pub async fn accounts_with_personal_number(
        &self,
        number: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id FROM certificate_identities WHERE identity = $1 \
             UNION SELECT account_id FROM upstream_identities WHERE personal_number = $2",
        )
        .bind(format!("pn:{number}"))
        .bind(number)
        .fetch_all(&self.db.pool)
        .await?;
        let mut ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Links the identity to an existing account.
    pub async fn insert(
        &self,
        key: &UpstreamKey<'_>,
        account_id: &str,
        personal_number: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        insert_on(
            &mut conn,
            key,
            account_id,
            personal_number,
            self.db.clock.now(),
        )
        .await
    }

    /// Marks a login through the identity.
    pub async fn touch(&self, key: &UpstreamKey<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE upstream_identities SET last_login_at = $1 \
             WHERE upstream = $2 AND issuer = $3 AND subject = $4",
        )
        .bind(self.db.clock.now())
        .bind(key.upstream)
        .bind(key.issuer)
        .bind(key.subject)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// The identities linked to an account, oldest first.
    pub async fn of_account(&self, account_id: &str) -> Result<Vec<LinkRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT upstream, issuer, subject, created_at, last_login_at FROM upstream_identities \
             WHERE account_id = $1 ORDER BY created_at, upstream, subject",
        )
        .bind(account_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LinkRow {
                    upstream: r.try_get("upstream")?,
                    issuer: r.try_get("issuer")?,
                    subject: r.try_get("subject")?,
                    created_at: r.try_get("created_at")?,
                    last_login_at: r.try_get("last_login_at")?,
                })
            })
            .collect()
    }

    /// Unlinks the identity from the account; true when it was linked to it.
    pub async fn delete(
        &self,
        key: &UpstreamKey<'_>,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM upstream_identities \
             WHERE upstream = $1 AND issuer = $2 AND subject = $3 AND account_id = $4",
        )
        .bind(key.upstream)
        .bind(key.issuer)
        .bind(key.subject)
        .bind(account_id)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The personal numbers the account holds as verified facts (see
    /// [`Self::accounts_with_personal_number`]).
    pub async fn numbers_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT identity FROM certificate_identities WHERE account_id = $1 AND identity LIKE 'pn:%' \
             UNION SELECT 'pn:' || personal_number FROM upstream_identities \
             WHERE account_id = $2 AND personal_number IS NOT NULL",
        )
        .bind(account_id)
        .bind(account_id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut numbers: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(|k| k.strip_prefix("pn:").map(str::to_string))
            .collect();
        numbers.sort();
        numbers.dedup();
        Ok(numbers)
    }

    /// The open sessions made by logins in the upstream's session `upstream_sid`, whoever
    /// they were (a logout token may name the session alone).
    pub async fn open_sessions_of_upstream_session(
        &self,
        upstream: &str,
        issuer: &str,
        upstream_sid: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.sid FROM upstream_sessions u JOIN sso_sessions s ON s.sid = u.sid \
             WHERE u.upstream = $1 AND u.issuer = $2 AND u.upstream_sid = $3 AND s.ended_at IS NULL",
        )
        .bind(upstream)
        .bind(issuer)
        .bind(upstream_sid)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// The upstream a session was made (or last renewed) through, if any.
    pub async fn upstream_of_session(&self, sid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT upstream FROM upstream_sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// How many identities are linked, to any account.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM upstream_identities")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// The open sessions that logins through the identity made: all of them, or only those of
    /// one upstream session.
    pub async fn open_sessions(
        &self,
        key: &UpstreamKey<'_>,
        upstream_sid: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        const OPEN: &str = "SELECT u.sid FROM upstream_sessions u JOIN sso_sessions s ON s.sid = u.sid \
             WHERE u.upstream = $1 AND u.issuer = $2 AND u.subject = $3 AND s.ended_at IS NULL";
        let sql = match upstream_sid {
            Some(_) => format!("{OPEN} AND u.upstream_sid = $4"),
            None => OPEN.to_string(),
        };
        let mut q = sqlx::query(&sql)
            .bind(key.upstream)
            .bind(key.issuer)
            .bind(key.subject);
        if let Some(up) = upstream_sid {
            q = q.bind(up);
        }
        let rows = q.fetch_all(&self.db.pool).await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewRow;
    use crate::store::certificates::IdentityRow;
    use crate::store::sql::test_dbs;

    const KEY: UpstreamKey<'static> = UpstreamKey {
        upstream: "npes",
        issuer: "https://npes.example.by",
        subject: "s-1",
    };

    #[tokio::test]
    async fn an_upstream_identity_belongs_to_one_account() {
        for t in test_dbs().await {
            let ids = t.db.upstream_identities();
            for id in ["a", "b"] {
                t.db.accounts().insert(&NewRow::active(id)).await.unwrap();
            }
            assert_eq!(ids.owner(&KEY).await.unwrap(), None);
            ids.insert(&KEY, "a", None).await.unwrap();
            let taken = ids.insert(&KEY, "b", None).await;
            assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
            assert_eq!(ids.owner(&KEY).await.unwrap().as_deref(), Some("a"));
            // The same sub at another upstream, or under another issuer, is another identity.
            let other = UpstreamKey {
                upstream: "esifl",
                ..KEY
            };
            assert_eq!(ids.owner(&other).await.unwrap(), None);
            let reissued = UpstreamKey {
                issuer: "https://npes.example.by/",
                ..KEY
            };
            assert_eq!(ids.owner(&reissued).await.unwrap(), None);
            ids.insert(&other, "b", None).await.unwrap();
            let links = ids.of_account("a").await.unwrap();
            assert_eq!(links.len(), 1);
            assert_eq!(links[0].subject, "s-1");
            assert_eq!(ids.count().await.unwrap(), 2);
        }
    }

    /// A verified number is found where a certificate of the authority or an upstream that
    /// vouches for numbers put it; never in a scoped (non-authoritative) certificate key.
    #[tokio::test]
    async fn a_verified_personal_number_is_found_in_both_places() {
        for t in test_dbs().await {
            for id in ["a", "b", "c"] {
                t.db.accounts().insert(&NewRow::active(id)).await.unwrap();
            }
            let cert = |key, account| IdentityRow {
                key,
                account_id: account,
                profile: "national",
                anchor_key: "ab",
            };
            t.db.certificates()
                .insert(&cert("pn:3101", "a"))
                .await
                .unwrap();
            t.db.certificates()
                .insert(&cert("partner/ab/pn:3102", "c"))
                .await
                .unwrap();
            let ids = t.db.upstream_identities();
            ids.insert(&KEY, "b", Some("3101")).await.unwrap();
            let found = ids.accounts_with_personal_number("3101").await.unwrap();
            assert_eq!(found, ["a", "b"]);
            assert_eq!(ids.numbers_of("a").await.unwrap(), ["3101"]);
            assert_eq!(ids.numbers_of("b").await.unwrap(), ["3101"]);
            assert!(
                ids.numbers_of("c").await.unwrap().is_empty(),
                "a scoped key vouches for none"
            );
            assert!(!ids.delete(&KEY, "a").await.unwrap(), "not a's to unlink");
            assert!(ids.delete(&KEY, "b").await.unwrap());
            assert!(ids.numbers_of("b").await.unwrap().is_empty());
            assert!(
                ids.accounts_with_personal_number("3102")
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[tokio::test]
    async fn sessions_made_through_an_identity_are_found_while_open() {
        for t in test_dbs().await {
            t.db.accounts().insert(&NewRow::active("a")).await.unwrap();
            for sid in ["s1", "s2"] {
                t.db.tamper(&format!(
                    "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, expires_at) \
                     VALUES ('{sid}', 'a', 1, 'substantial', '[]', 'upstream', 1, 9999999999)"
                ))
                .await;
            }
            let ids = t.db.upstream_identities();
            let mut conn = t.db.pool.acquire().await.unwrap();
            record_session_on(&mut conn, "s1", &KEY, Some("up-1"), 1)
                .await
                .unwrap();
            record_session_on(&mut conn, "s2", &KEY, Some("up-2"), 1)
                .await
                .unwrap();
            // A renewal by another upstream login replaces what the session was made by.
            record_session_on(&mut conn, "s2", &KEY, None, 2)
                .await
                .unwrap();
            drop(conn);
            let mut all = ids.open_sessions(&KEY, None).await.unwrap();
            all.sort();
            assert_eq!(all, ["s1", "s2"]);
            assert_eq!(ids.open_sessions(&KEY, Some("up-1")).await.unwrap(), ["s1"]);
            assert_eq!(
                ids.upstream_of_session("s1").await.unwrap().as_deref(),
                Some("npes")
            );
            assert_eq!(ids.upstream_of_session("nope").await.unwrap(), None);
            let by_sid = ids.open_sessions_of_upstream_session("npes", KEY.issuer, "up-1");
            assert_eq!(by_sid.await.unwrap(), ["s1"]);
            t.db.tamper("UPDATE sso_sessions SET ended_at = 5 WHERE sid = 's1'")
                .await;
            assert!(
                ids.open_sessions(&KEY, Some("up-1"))
                    .await
                    .unwrap()
                    .is_empty()
            );
            let mut conn = t.db.pool.acquire().await.unwrap();
            forget_session_on(&mut conn, "s2").await.unwrap();
            drop(conn);
            assert_eq!(ids.upstream_of_session("s2").await.unwrap(), None);
        }
    }
}
