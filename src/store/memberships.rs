//! Who works where, and who administers what: employees' memberships of organisations with
//! their organisation roles, and administrators' scopes (the whole system, or one organisation
//! and its subtree). What they allow is `identity::standing`'s and the policies'.

use sqlx::Row;

use super::StoreError;
use super::sql::Db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub account_id: String,
    pub org_id: String,
    /// Organisation roles of the catalogue, sorted, without duplicates.
    pub roles: Vec<String>,
}

/// An administrator's scope: `None` is the main administrator (the whole system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminScope {
    pub account_id: String,
    pub org_id: Option<String>,
}

pub struct Memberships<'a> {
    db: &'a Db,
}

impl Db {
    pub fn memberships(&self) -> Memberships<'_> {
        Memberships { db: self }
    }
}

/// Sets the account's roles in the organisation (a membership with no roles is still a
/// membership: the person works there), on `conn`.
pub(super) async fn set_on(
    conn: &mut sqlx::AnyConnection,
    m: &Membership,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO memberships (account_id, org_id, roles, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (account_id, org_id) \
         DO UPDATE SET roles = excluded.roles, updated_at = excluded.updated_at",
    )
    .bind(&m.account_id)
    .bind(&m.org_id)
    .bind(serde_json::to_string(&m.roles)?)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn membership(row: &sqlx::any::AnyRow) -> Result<Membership, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(Membership {
        account_id: row.try_get("account_id")?,
        org_id: row.try_get("org_id")?,
        roles: serde_json::from_str(&roles)?,
    })
}

impl Memberships<'_> {
    pub async fn set(&self, m: &Membership) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        set_on(&mut conn, m, self.db.clock.now()).await
    }

    /// Ends the membership; false when there was none.
    pub async fn remove(&self, account_id: &str, org_id: &str) -> Result<bool, StoreError> {
        let res = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND org_id = $2")
            .bind(account_id)
            .bind(org_id)
            .execute(&self.db.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn of_account(&self, account_id: &str) -> Result<Vec<Membership>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, org_id, roles FROM memberships WHERE account_id = $1 ORDER BY org_id",
        )
        .bind(account_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(membership).collect()
    }

    /// The account's own roles in the organisation; None when it is no member there.
    pub async fn roles_in(
        &self,
        account_id: &str,
        org_id: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, org_id, roles FROM memberships WHERE account_id = $1 AND org_id = $2",
        )
        .bind(account_id)
        .bind(org_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(membership).transpose()?.map(|m| m.roles))
    }

    /// A page of the organisation's members in account id order after `after`.
    pub async fn of_org(
        &self,
        org_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Membership>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, org_id, roles FROM memberships WHERE org_id = $1 AND account_id > $2 \
             ORDER BY account_id LIMIT $3",
        )
        .bind(org_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(membership).collect()
    }

    /// Makes the account an administrator of `org_id` (`None`: the main administrator); false
    /// when it already was.
    pub async fn grant_admin(
        &self,
        account_id: &str,
        org_id: Option<&str>,
        granted_by: Option<&str>,
    ) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "INSERT INTO administrators (account_id, org_id, granted_by, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(account_id)
        .bind(org_id)
        .bind(granted_by)
        .bind(self.db.clock.now())
        .execute(&self.db.pool)
        .await;
        match res.map_err(StoreError::from) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes the scope away; false when the account did not have it.
    pub async fn revoke_admin(
        &self,
        account_id: &str,
        org_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let res = match org_id {
            Some(org) => {
                sqlx::query("DELETE FROM administrators WHERE account_id = $1 AND org_id = $2")
                    .bind(account_id)
                    .bind(org)
            }
            None => {
                sqlx::query("DELETE FROM administrators WHERE account_id = $1 AND org_id IS NULL")
                    .bind(account_id)
            }
        }
        .execute(&self.db.pool)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn admin_scopes_of(&self, account_id: &str) -> Result<Vec<AdminScope>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, org_id FROM administrators WHERE account_id = $1 ORDER BY org_id",
        )
        .bind(account_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminScope {
                    account_id: r.try_get("account_id")?,
                    org_id: r.try_get("org_id")?,
                })
            })
            .collect()
    }

    /// The administrators of exactly `org_id` (`None`: the main administrators).
    pub async fn admins_of(&self, org_id: Option<&str>) -> Result<Vec<String>, StoreError> {
        let rows = match org_id {
            Some(org) => sqlx::query(
                "SELECT account_id FROM administrators WHERE org_id = $1 ORDER BY account_id",
            )
            .bind(org),
            None => sqlx::query(
                "SELECT account_id FROM administrators WHERE org_id IS NULL ORDER BY account_id",
            ),
        }
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("account_id"))
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewRow;
    use crate::store::organisations::Organisation;
    use crate::store::sql::test_dbs;

    #[tokio::test]
    async fn memberships_and_admin_scopes_are_kept() {
        for t in test_dbs().await {
            let db = &t.db;
            db.accounts().insert(&NewRow::active("u1")).await.unwrap();
            let org = Organisation {
                id: "mintruda".into(),
                parent_id: None,
                name: "Минтруда".into(),
                name_be: None,
                unp: None,
                kind: "state_body".into(),
                active: true,
                version: 1,
                created_at: 0,
                updated_at: 0,
            };
            db.organisations().insert(&org).await.unwrap();
            let m = db.memberships();
            let one = Membership {
                account_id: "u1".into(),
                org_id: "mintruda".into(),
                roles: vec!["registrar".into()],
            };
            m.set(&one).await.unwrap();
            let two = Membership {
                roles: vec!["executor".into(), "registrar".into()],
                ..one.clone()
            };
            m.set(&two).await.unwrap();
            assert_eq!(m.of_account("u1").await.unwrap(), vec![two.clone()]);
            assert_eq!(m.of_org("mintruda", None, 10).await.unwrap(), vec![two]);
            assert!(m.remove("u1", "mintruda").await.unwrap());
            assert!(!m.remove("u1", "mintruda").await.unwrap());

            assert!(m.grant_admin("u1", None, None).await.unwrap());
            assert!(!m.grant_admin("u1", None, None).await.unwrap(), "once");
            assert!(
                m.grant_admin("u1", Some("mintruda"), Some("u1"))
                    .await
                    .unwrap()
            );
            assert!(!m.grant_admin("u1", Some("mintruda"), None).await.unwrap());
            assert_eq!(m.admin_scopes_of("u1").await.unwrap().len(), 2);
            assert_eq!(m.admins_of(None).await.unwrap(), vec!["u1".to_string()]);
            assert_eq!(
                m.admins_of(Some("mintruda")).await.unwrap(),
                vec!["u1".to_string()]
            );
            assert!(m.revoke_admin("u1", None).await.unwrap());
            assert!(!m.revoke_admin("u1", None).await.unwrap());
            assert_eq!(
                m.admin_scopes_of("u1").await.unwrap(),
                vec![AdminScope {
                    account_id: "u1".into(),
                    org_id: Some("mintruda".into())
                }]
            );
        }
    }
}
