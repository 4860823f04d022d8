//! The delegations aggregate: temporary transfers of organisation roles from one employee to
//! another. What makes one valid (its length, its roles, who may make it) is
//! `identity::delegation`'s; a revoked one keeps its row, with who revoked it and when.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub id: String,
    pub delegator_id: String,
    pub delegate_id: String,
    pub org_id: String,
    pub roles: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

impl Delegation {
    /// In force at `now`: begun, not ended, not revoked.
    pub fn in_force(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.not_before <= now && now < self.not_after
    }
}

const COLUMNS: &str = "id, delegator_id, delegate_id, org_id, roles, not_before, not_after, reason, \
    created_by, created_at, revoked_at, revoked_by";

fn from_row(row: &AnyRow) -> Result<Delegation, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(Delegation {
        id: row.try_get("id")?,
        delegator_id: row.try_get("delegator_id")?,
        delegate_id: row.try_get("delegate_id")?,
        org_id: row.try_get("org_id")?,
        roles: serde_json::from_str(&roles)?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

/// Which delegations a listing shows.
#[derive(Debug, Default, Clone)]
pub struct Filter<'a> {
    pub org_id: Option<&'a str>,
    pub delegate_id: Option<&'a str>,
    pub delegator_id: Option<&'a str>,
    /// Only those in force at this time.
    pub in_force_at: Option<i64>,
}

pub struct Delegations<'a> {
    db: &'a Db,
}

impl Db {
    pub fn delegations(&self) -> Delegations<'_> {
        Delegations { db: self }
    }
}

impl Delegations<'_> {
    pub async fn insert(&self, d: &Delegation) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO delegations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)"
        ))
        .bind(&d.id)
        .bind(&d.delegator_id)
        .bind(&d.delegate_id)
        .bind(&d.org_id)
        .bind(serde_json::to_string(&d.roles)?)
        .bind(d.not_before)
        .bind(d.not_after)
        .bind(&d.reason)
        .bind(&d.created_by)
        .bind(d.created_at)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Delegation>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM delegations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Revokes a delegation not revoked before; false when it was (or does not exist).
    pub async fn revoke(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "UPDATE delegations SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(self.db.clock.now())
        .bind(by)
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// A page in id order after `after`.
    pub async fn list(
        &self,
        filter: &Filter<'_>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delegation>, StoreError> {
        // Each optional filter is bound always and switched off by an empty value, so the
        // statement's text does not depend on the input.
        let sql = format!(
            "SELECT {COLUMNS} FROM delegations WHERE id > $1 \
             AND ($2 = '' OR org_id = $2) AND ($3 = '' OR delegate_id = $3) \
             AND ($4 = '' OR delegator_id = $4) \
             AND ($5 < 0 OR (revoked_at IS NULL AND not_before <= $5 AND not_after > $5)) \
             ORDER BY id LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(filter.org_id.unwrap_or(""))
            .bind(filter.delegate_id.unwrap_or(""))
            .bind(filter.delegator_id.unwrap_or(""))
            .bind(filter.in_force_at.unwrap_or(-1))
            .bind(i64::from(limit))
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The delegations to `delegate_id` in force at `now`.
    pub async fn in_force_for(
        &self,
        delegate_id: &str,
        now: i64,
    ) -> Result<Vec<Delegation>, StoreError> {
        let filter = Filter {
            delegate_id: Some(delegate_id),
            in_force_at: Some(now),
            ..Filter::default()
        };
        self.list(&filter, None, 1000).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewRow;
    use crate::store::organisations::Organisation;
    use crate::store::sql::test_dbs;

    #[tokio::test]
    async fn delegations_are_in_force_between_their_times_until_revoked() {
        for t in test_dbs().await {
            let db = &t.db;
            for id in ["from", "to"] {
                db.accounts().insert(&NewRow::active(id)).await.unwrap();
            }
            db.organisations()
                .insert(&Organisation {
                    id: "org".into(),
                    parent_id: None,
                    name: "Org".into(),
                    name_be: None,
                    unp: None,
                    kind: "organisation".into(),
                    active: true,
                    version: 1,
                    created_at: 0,
                    updated_at: 0,
                })
                .await
                .unwrap();
            let d = Delegation {
                id: "d1".into(),
                delegator_id: "from".into(),
                delegate_id: "to".into(),
                org_id: "org".into(),
                roles: vec!["reviewer".into()],
                not_before: 100,
                not_after: 200,
                reason: Some("отпуск".into()),
                created_by: "from".into(),
                created_at: 50,
                revoked_at: None,
                revoked_by: None,
            };
            let dels = db.delegations();
            dels.insert(&d).await.unwrap();
            assert!(dels.in_force_for("to", 99).await.unwrap().is_empty());
            assert_eq!(dels.in_force_for("to", 100).await.unwrap(), vec![d.clone()]);
            assert!(dels.in_force_for("to", 200).await.unwrap().is_empty());
            assert!(dels.in_force_for("from", 150).await.unwrap().is_empty());
            let by_org = Filter {
                org_id: Some("org"),
                ..Filter::default()
            };
            assert_eq!(dels.list(&by_org, None, 10).await.unwrap().len(), 1);
            let other = Filter {
                org_id: Some("other"),
                ..Filter::default()
            };
            assert!(dels.list(&other, None, 10).await.unwrap().is_empty());
            assert!(dels.revoke("d1", "admin").await.unwrap());
            assert!(!dels.revoke("d1", "admin").await.unwrap(), "once");
            assert!(dels.in_force_for("to", 150).await.unwrap().is_empty());
            let stored = dels.get("d1").await.unwrap().unwrap();
            assert_eq!(stored.revoked_by.as_deref(), Some("admin"));
            assert!(!stored.in_force(150));
        }
    }
}
