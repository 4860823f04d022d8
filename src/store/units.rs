//! Writes that change several aggregates at once, each in one transaction: they commit
//! together or not at all, so a failure half-way leaves everything as it was.

use sqlx::Row;

use super::sql::Db;

/// What a password reset ended besides the old password.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PasswordReset {
    /// The SSO sessions that were still open (their clients are to be told).
    pub sessions_ended: Vec<String>,
    pub grants_revoked: u64,
}

/// Sets the account's password hash, ends all its SSO sessions and revokes all its grants (and
/// so their refresh tokens), as one transaction at `now`. None when the account does not exist.
pub async fn reset_password(
    db: &Db,
    account_id: &str,
    hash: &str,
    now: i64,
) -> Result<Option<PasswordReset>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let done = async {
        let changed =
            sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
        if changed.rows_affected() != 1 {
            return Ok(None);
        }
        let sessions_ended = sqlx::query(
            "UPDATE sso_sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL RETURNING sid",
        )
        .bind(now)
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
        let grants_revoked = sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_reason = $2 WHERE account_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind("password_reset")
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        Ok(Some(PasswordReset {
            sessions_ended,
            grants_revoked,
        }))
    }
    .await;
    finish(tx, done).await
}

/// Commits what succeeded in full; rolls back, there and then, anything else.
async fn finish<T>(
    tx: sqlx::Transaction<'_, sqlx::Any>,
    done: Result<Option<T>, sqlx::Error>,
) -> Result<Option<T>, sqlx::Error> {
    match done {
        Ok(Some(v)) => {
            tx.commit().await?;
            Ok(Some(v))
        }
        other => {
            // Explicitly, not on drop: the connection goes back to the pool clean.
            tx.rollback().await?;
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::{Backend, test_dbs};
    use sqlx::Executor;

    async fn exec(db: &Db, sql: &str) {
        (&db.pool).execute(sql).await.expect(sql);
    }

    async fn one(db: &Db, sql: &str) -> Option<String> {
        sqlx::query(sql)
            .fetch_one(&db.pool)
            .await
            .expect(sql)
            .try_get::<Option<String>, _>(0)
            .expect("a text column")
    }

    async fn count(db: &Db, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(&db.pool)
            .await
            .expect(sql)
            .try_get(0)
            .expect("a count")
    }

    /// An account with a password, an open session and a grant under it.
    async fn signed_in(db: &Db) {
        exec(
            db,
            "INSERT INTO accounts (id, username, password_hash, status, created_at, updated_at) \
             VALUES ('a', 'ivan', 'old', 'active', 1, 1)",
        )
        .await;
        exec(
            db,
            "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, expires_at) \
             VALUES ('s1', 'a', 1, 'low', '[]', 'password', 1, 9999999999)",
        )
        .await;
        exec(
            db,
            "INSERT INTO grants (id, account_id, client_id, sid, scope, auth_time, acr, amr, created_at, expires_at) \
             VALUES ('g1', 'a', 'rp', 's1', 'openid', 1, 'low', '[]', 1, 9999999999)",
        )
        .await;
    }

    #[tokio::test]
    async fn a_reset_ends_sessions_and_grants_with_the_password() {
        for t in test_dbs().await {
            reset_ends_everything(&t.db).await;
        }
    }

    async fn reset_ends_everything(db: &Db) {
        signed_in(db).await;
        let done = reset_password(db, "a", "new", 100).await.expect("stored");
        assert_eq!(
            done,
            Some(PasswordReset {
                sessions_ended: vec!["s1".into()],
                grants_revoked: 1,
            })
        );
        assert_eq!(
            one(db, "SELECT password_hash FROM accounts")
                .await
                .as_deref(),
            Some("new")
        );
        let ended = "SELECT COUNT(*) FROM sso_sessions WHERE ended_at = 100";
        assert_eq!(count(db, ended).await, 1);
        let revoked = "SELECT COUNT(*) FROM grants WHERE revoked_reason = 'password_reset'";
        assert_eq!(count(db, revoked).await, 1);
        assert_eq!(reset_password(db, "nobody", "x", 100).await.unwrap(), None);
    }

    /// A write that fails half-way (a trigger stands in for a database that breaks): the
    /// account keeps its old password, its sessions and its grants.
    async fn broken_at(table: &str) {
        for t in test_dbs().await {
            let db = &t.db;
            signed_in(db).await;
            break_updates_of(db, table).await;
            still_as_before(db, table).await;
        }
    }

    /// Every UPDATE of `table` fails from now on.
    async fn break_updates_of(db: &Db, table: &str) {
        match db.backend {
            Backend::Sqlite => {
                let trigger = format!(
                    "CREATE TRIGGER broken BEFORE UPDATE ON {table} \
                     BEGIN SELECT RAISE(ABORT, 'injected'); END"
                );
                exec(db, &trigger).await;
            }
            Backend::Postgres => {
                exec(
                    db,
                    "CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
                )
                .await;
                let trigger = format!(
                    "CREATE TRIGGER broken BEFORE UPDATE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION broken()"
                );
                exec(db, &trigger).await;
            }
        }
    }

    async fn still_as_before(db: &Db, table: &str) {
        assert!(
            reset_password(db, "a", "new", 100).await.is_err(),
            "{table}"
        );
        let hash = one(db, "SELECT password_hash FROM accounts").await;
        assert_eq!(hash.as_deref(), Some("old"), "{table}");
        let open = "SELECT COUNT(*) FROM sso_sessions WHERE ended_at IS NULL";
        assert_eq!(count(db, open).await, 1, "{table}");
        let live = "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL";
        assert_eq!(count(db, live).await, 1, "{table}");
    }

    #[tokio::test]
    async fn a_reset_that_fails_half_way_changes_nothing() {
        // The second write (the sessions), then the third (the grants).
        broken_at("sso_sessions").await;
        broken_at("grants").await;
    }
}
