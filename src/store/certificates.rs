//! The certificate identities aggregate: which account a certificate identity key belongs to,
//! with the profile and trust anchor that vouched for it. How keys are made is
//! `identity::certificate`'s.

use sqlx::Row;

use super::StoreError;
use super::sql::Db;

/// A new identity row.
#[derive(Debug, Clone)]
pub struct IdentityRow<'a> {
    pub key: &'a str,
    pub account_id: &'a str,
    pub profile: &'a str,
    pub anchor_key: &'a str,
}

/// Writes the row on `conn`; a key already linked is [`StoreError::Conflict`].
pub(super) async fn insert_on(
    conn: &mut sqlx::AnyConnection,
    row: &IdentityRow<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO certificate_identities (identity, account_id, created_at, profile, anchor_key) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(row.key)
    .bind(row.account_id)
    .bind(now)
    .bind(row.profile)
    .bind(row.anchor_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// The profile recorded for a personal number bound by an administrator (no certificate has
/// vouched for it yet).
pub const BOUND_BY_ADMINISTRATOR: &str = "bound_by_administrator";

/// Binds the account to a personal number on `conn`: the identity `pn:<number>` that the
/// person's certificate sign-in finds. A number bound already is [`StoreError::Conflict`].
pub(super) async fn bind_number_on(
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    number: &str,
    now: i64,
) -> Result<(), StoreError> {
    let key = format!("pn:{number}");
    let row = IdentityRow {
        key: &key,
        account_id,
        profile: BOUND_BY_ADMINISTRATOR,
        anchor_key: "",
    };
    insert_on(conn, &row, now).await
}

/// The certificate identities of a database: `db.certificates()`.
pub struct Certificates<'a> {
    db: &'a Db,
}

impl Db {
    pub fn certificates(&self) -> Certificates<'_> {
        Certificates { db: self }
    }
}

impl Certificates<'_> {
    /// The account the identity key belongs to.
    pub async fn owner(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT account_id FROM certificate_identities WHERE identity = $1")
            .bind(key)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| r.try_get("account_id")).transpose()?)
    }

    /// Are there keys stored unscoped (`pn:`/`dn:`, as before profiles scoped them)?
    pub async fn has_unscoped(&self) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM certificate_identities WHERE identity LIKE 'pn:%' OR identity LIKE 'dn:%' LIMIT 1",
        )
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.is_some())
    }

    pub async fn keys_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT identity FROM certificate_identities WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("identity"))
            .collect::<Result<_, _>>()?)
    }

    /// How many identity keys are linked, to any account.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM certificate_identities")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// How many accounts have at least one identity key.
    pub async fn count_accounts(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(DISTINCT account_id) FROM certificate_identities")
                .fetch_one(&self.db.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// Binds the identity to an existing account.
    pub async fn insert(&self, row: &IdentityRow<'_>) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        insert_on(&mut conn, row, self.db.clock.now()).await
    }

    /// Binds the account to a personal number (see [`bind_number_on`]).
    pub async fn bind_number(&self, account_id: &str, number: &str) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        bind_number_on(&mut conn, account_id, number, self.db.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewRow;
    use crate::store::sql::test_dbs;

    fn row<'a>(key: &'a str, account_id: &'a str) -> IdentityRow<'a> {
        IdentityRow {
            key,
            account_id,
            profile: "national",
            anchor_key: "ab",
        }
    }

    #[tokio::test]
    async fn an_identity_belongs_to_one_account() {
        for t in test_dbs().await {
            let db = &t.db;
            for id in ["a", "b"] {
                db.accounts().insert(&NewRow::active(id)).await.unwrap();
            }
            assert!(!db.certificates().has_unscoped().await.unwrap());
            db.certificates()
                .insert(&row("national/ab/pn:1", "a"))
                .await
                .unwrap();
            assert!(!db.certificates().has_unscoped().await.unwrap());
            db.certificates().insert(&row("pn:1", "a")).await.unwrap();
            assert!(db.certificates().has_unscoped().await.unwrap());
            let taken = db.certificates().insert(&row("pn:1", "b")).await;
            assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
            assert_eq!(
                db.certificates().owner("pn:1").await.unwrap(),
                Some("a".into())
            );
            assert_eq!(db.certificates().owner("pn:2").await.unwrap(), None);
            let mut keys = db.certificates().keys_of("a").await.unwrap();
            keys.sort();
            assert_eq!(keys, ["national/ab/pn:1", "pn:1"]);
            assert!(db.certificates().keys_of("b").await.unwrap().is_empty());
        }
    }

    /// Keys count one by one; accounts once, however many keys they have.
    #[tokio::test]
    async fn keys_and_the_accounts_they_name_are_counted() {
        for t in test_dbs().await {
            let certificates = t.db.certificates();
            for id in ["a", "b", "c"] {
                t.db.accounts().insert(&NewRow::active(id)).await.unwrap();
            }
            assert_eq!(certificates.count().await.unwrap(), 0);
            assert_eq!(certificates.count_accounts().await.unwrap(), 0);
            for (key, account) in [("pn:1", "a"), ("national/ab/pn:1", "a"), ("pn:2", "b")] {
                certificates.insert(&row(key, account)).await.unwrap();
            }
            assert_eq!(certificates.count().await.unwrap(), 3);
            assert_eq!(certificates.count_accounts().await.unwrap(), 2);
        }
    }
}
