//! The accounts aggregate: people's accounts with their contacts. The meaning of the fields
//! (claims, masks, what a pending registration may do) is `identity::account`'s; this file only
//! stores and finds rows. Values arrive validated and normalised.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;

/// An account as stored. `id` is the public `sub`.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub email: Option<String>,
    pub email_verified: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    /// System roles held by the account itself (`applicant`, `auditor`; `employee` and
    /// `admin` also follow from memberships and administrator scopes).
    pub roles: Vec<String>,
    /// The organisation whose administrators manage the account (None: the system's).
    pub home_org: Option<String>,
    /// `active`, `pending` (a registration) or `blocked` (by an administrator).
    pub status: String,
    /// The person wants notifications about appeals by SMS.
    pub notify_sms: bool,
    /// Unix seconds: when the account was created (a pending one expires from then).
    pub created_at: i64,
    /// Moves on every administrative change (the administration API's ETag).
    pub version: i64,
}

/// A new account's fields: as a caller asks for it (`identity::account::validate` checks and
/// normalises them) and, inside a [`NewRow`], as stored.
#[derive(Debug, Default, Clone)]
pub struct NewAccount {
    pub username: String,
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub roles: Vec<String>,
    pub home_org: Option<String>,
    /// Contacts confirmed and the account active; otherwise pending.
    pub verified: bool,
}

/// The most rows one name search reads before it answers with where to resume.
pub const SEARCH_SCAN: u32 = 5000;

/// What an account search matches (every given filter).
#[derive(Debug, Default, Clone)]
pub struct Search<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub ids: Option<&'a [String]>,
    pub home_org: Option<&'a str>,
}

/// A validated new account under its id.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub id: String,
    pub account: NewAccount,
}

const COLUMNS: &str = "id, username, password_hash, phone, phone_verified, email, email_verified, \
    given_name, family_name, middle_name, roles, home_org, status, notify_sms, created_at, version";

fn from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let roles: String = row.try_get("roles")?;
    Ok(Account {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        phone: row.try_get("phone")?,
        phone_verified: row.try_get::<i64, _>("phone_verified")? != 0,
        email: row.try_get("email")?,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        middle_name: row.try_get("middle_name")?,
        roles: serde_json::from_str(&roles).unwrap_or_default(),
        home_org: row.try_get("home_org")?,
        status: row.try_get("status")?,
        notify_sms: row.try_get::<i64, _>("notify_sms")? != 0,
        created_at: row.try_get("created_at")?,
        version: row.try_get("version")?,
    })
}

/// Writes the row on `conn` (a pooled connection or the transaction of a unit of work).
/// A taken username, or a contact confirmed for another account, is [`StoreError::Conflict`].
pub(super) async fn insert_on(
    conn: &mut sqlx::AnyConnection,
    row: &NewRow,
    now: i64,
) -> Result<(), StoreError> {
    let (id, new) = (&row.id, &row.account);
    // A contact's confirmation is stored only with the contact: a flag without its value would
    // vouch for whatever value is set there later.
    let verified = |value: &Option<String>| i64::from(new.verified && value.is_some());
    sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, phone, phone_verified, email, \
         email_verified, given_name, family_name, middle_name, roles, home_org, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $13, $13)",
    )
    .bind(id)
    .bind(&new.username)
    .bind(&new.password_hash)
    .bind(&new.phone)
    .bind(verified(&new.phone))
    .bind(&new.email)
    .bind(verified(&new.email))
    .bind(&new.given_name)
    .bind(&new.family_name)
    .bind(&new.middle_name)
    .bind(serde_json::to_string(&new.roles)?)
    .bind(&new.home_org)
    .bind(now)
    .bind(if new.verified { "active" } else { "pending" })
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the account's password hash on `conn`; false when there is no such account.
pub(super) async fn set_password_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let changed =
        sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(changed.rows_affected() == 1)
}

/// Marks the contact confirmed on `conn`, if `value` is still the account's.
pub(super) async fn confirm_on(
    conn: &mut sqlx::AnyConnection,
    contact: Contact,
    id: &str,
    value: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = match contact {
        Contact::Phone => {
            "UPDATE accounts SET phone_verified = 1, updated_at = $2 WHERE id = $3 AND phone = $1"
        }
        Contact::Email => {
            "UPDATE accounts SET email_verified = 1, updated_at = $2 WHERE id = $3 AND email = $1"
        }
    };
    update_on(conn, sql, id, value, now).await
}

/// A pending account becomes active once both its phone and email are confirmed.
pub(super) async fn activate_if_confirmed_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE accounts SET status = 'active', updated_at = $1 WHERE id = $2 AND status = 'pending' \
         AND phone_verified = 1 AND email_verified = 1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn update_on(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    id: &str,
    value: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(sql)
        .bind(value)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Which contact of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    Phone,
    Email,
}

/// The accounts of a database: `db.accounts()`.
pub struct Accounts<'a> {
    db: &'a Db,
}

impl Db {
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { db: self }
    }
}

impl Accounts<'_> {
    async fn one(&self, filter: &str, value: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE {filter}"))
            .bind(value)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| from_row(&r)).transpose()?)
    }

    pub async fn insert(&self, new: &NewRow) -> Result<(), StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        insert_on(&mut conn, new, self.db.clock.now()).await
    }

    pub async fn find_by_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.one("id = $1", id).await
    }

    /// By the normalised username.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.one("username = $1", username).await
    }

    /// The account a phone number (E.164) is confirmed for: an unconfirmed number names nobody.
    pub async fn find_by_confirmed_phone(
        &self,
        phone: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.one("phone = $1 AND phone_verified = 1", phone).await
    }

    /// The account an address (as stored, lower-cased) is confirmed for.
    pub async fn find_by_confirmed_email(
        &self,
        email: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.one("email = $1 AND email_verified = 1", email).await
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }

    /// How many accounts have this status (`active`, `pending`).
    pub async fn count_by_status(&self, status: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM accounts WHERE status = $1")
                .bind(status)
                .fetch_one(&self.db.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// How many accounts hold the address (as stored), confirmed or not: a pending
    /// registration may hold an address another account has confirmed.
    pub async fn count_with_email(&self, email: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM accounts WHERE email = $1")
                .bind(email)
                .fetch_one(&self.db.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// Is the (normalised) username held by an account: an active one, or a pending one
    /// created at or after `pending_cutoff`?
    pub async fn username_taken(
        &self,
        username: &str,
        pending_cutoff: i64,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM accounts WHERE username = $1 \
             AND NOT (status = 'pending' AND created_at < $2)",
        )
        .bind(username)
        .bind(pending_cutoff)
        .fetch_one(&self.db.pool)
        .await?
        .try_get(0)?;
        Ok(n > 0)
    }

    /// Deletes pending accounts created before `pending_cutoff` (all, or the one holding
    /// `username`); returns how many. One that somehow has sessions, grants or a certificate
    /// is kept: something refers to it.
    pub async fn delete_expired_pending(
        &self,
        pending_cutoff: i64,
        username: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut sql = String::from(
            "DELETE FROM accounts WHERE status = 'pending' AND created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM sso_sessions s WHERE s.account_id = accounts.id) \
             AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.account_id = accounts.id) \
             AND NOT EXISTS (SELECT 1 FROM certificate_identities c WHERE c.account_id = accounts.id)",
        );
        if username.is_some() {
            sql.push_str(" AND username = $2");
        }
        let mut q = sqlx::query(&sql).bind(pending_cutoff);
        if let Some(u) = username {
            q = q.bind(u);
        }
        Ok(q.execute(&self.db.pool).await?.rows_affected())
    }

    /// Folds, with `fold`, the addresses listed in `accounts_email_fold` (those migration 0005
    /// could not lower-case in SQL); if that makes two confirmed addresses equal, the older
    /// account keeps its confirmation, as the migration decided for ASCII case. Each account
    /// is one transaction. Returns how many were folded.
    pub async fn fold_legacy_emails(
        &self,
        fold: impl Fn(&str) -> String,
    ) -> Result<u64, StoreError> {
        let ids = sqlx::query("SELECT id FROM accounts_email_fold LIMIT 500")
            .fetch_all(&self.db.pool)
            .await?;
        let mut folded = 0;
        for row in ids {
            let id: String = row.try_get("id")?;
            let mut tx = self.db.pool.begin().await?;
            // Read in the transaction: folding an earlier row may have changed this one.
            let current =
                sqlx::query("SELECT email, email_verified, created_at FROM accounts WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let mut found = None;
            if let Some(r) = current {
                let email: Option<String> = r.try_get("email")?;
                let verified = r.try_get::<i64, _>("email_verified")? != 0;
                let created_at: i64 = r.try_get("created_at")?;
                found = email.map(|e| (e, verified, created_at));
            }
            if let Some((email, verified, created_at)) = found {
                let lower = fold(&email);
                let mut keep = verified;
                if verified && lower != email {
                    let other = sqlx::query(
                        "SELECT id, created_at FROM accounts WHERE email = $1 AND email_verified = 1 \
                         AND id <> $2",
                    )
                    .bind(&lower)
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(other) = other {
                        let other_id: String = other.try_get("id")?;
                        let other_created: i64 = other.try_get("created_at")?;
                        if (other_created, other_id.as_str()) < (created_at, id.as_str()) {
                            keep = false;
                        } else {
                            sqlx::query("UPDATE accounts SET email_verified = 0 WHERE id = $1")
                                .bind(&other_id)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                sqlx::query("UPDATE accounts SET email = $1, email_verified = $2 WHERE id = $3")
                    .bind(&lower)
                    .bind(i64::from(keep))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                folded += 1;
            }
            sqlx::query("DELETE FROM accounts_email_fold WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(folded)
    }

    /// The contact was proven; true if it is still the account's.
    pub async fn confirm(
        &self,
        contact: Contact,
        id: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.db.pool.acquire().await?;
        confirm_on(&mut conn, contact, id, value, self.db.clock.now()).await
    }

    /// A new contact, already proven.
    pub async fn change(
        &self,
        contact: Contact,
        id: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let sql = match contact {
            Contact::Phone => {
                "UPDATE accounts SET phone = $1, phone_verified = 1, updated_at = $2 WHERE id = $3"
            }
            Contact::Email => {
                "UPDATE accounts SET email = $1, email_verified = 1, updated_at = $2 WHERE id = $3"
            }
        };
        let mut conn = self.db.pool.acquire().await?;
        update_on(&mut conn, sql, id, value, self.db.clock.now()).await
    }

    /// Sets the status of an account that is not a pending registration (`active` or
    /// `blocked`), moving its version; false when there is no such account.
    pub async fn set_status(&self, id: &str, status: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET status = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND status <> 'pending'",
        )
        .bind(status)
        .bind(self.db.clock.now())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves the account's version when it is still `expected` (an administrator's change
    /// claims it first); false when it moved meanwhile or there is no such account.
    pub async fn touch(&self, id: &str, expected: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3",
        )
        .bind(self.db.clock.now())
        .bind(id)
        .bind(expected)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the organisation that manages the account, moving its version.
    pub async fn set_home_org(&self, id: &str, org: Option<&str>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET home_org = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(org)
        .bind(self.db.clock.now())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the account's own system roles (a JSON list), moving its version.
    pub async fn set_roles(&self, id: &str, roles: &[String]) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET roles = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(serde_json::to_string(roles)?)
        .bind(self.db.clock.now())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accounts in id order after `after` that match every given filter, at most `limit`:
    /// `name` is a case-insensitive substring of the family, given or middle name or the
    /// username; `phone` and `email` are exact (normalised by the caller) and confirmed; `ids`
    /// narrows to those accounts (a personal number resolved by the caller). The name is
    /// compared here, not in SQL (SQLite lowers only ASCII, and names are Cyrillic), over at
    /// most [`SEARCH_SCAN`] rows a call: when that bound stops the scan, the id to resume
    /// after is returned with what was found.
    pub async fn search(
        &self,
        filter: &Search<'_>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Account>, Option<String>), StoreError> {
        let ids = filter
            .ids
            .map(serde_json::to_string)
            .transpose()?
            .unwrap_or_default();
        let id_match = match self.db.backend {
            super::sql::Backend::Sqlite => "id IN (SELECT value FROM json_each($4))",
            super::sql::Backend::Postgres => "id IN (SELECT jsonb_array_elements_text($4::jsonb))",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM accounts WHERE id > $1 AND status <> 'pending' \
             AND ($2 = '' OR (phone = $2 AND phone_verified = 1)) \
             AND ($3 = '' OR (email = $3 AND email_verified = 1)) \
             AND ($4 = '' OR {id_match}) \
             AND ($5 = '' OR home_org = $5) \
             ORDER BY id LIMIT $6"
        );
        let needle = filter.name.map(|n| n.to_lowercase());
        let batch = if needle.is_some() { 500 } else { limit };
        let mut found = Vec::new();
        let mut cursor = after.unwrap_or("").to_string();
        let mut scanned = 0u32;
        loop {
            let rows = sqlx::query(&sql)
                .bind(&cursor)
                .bind(filter.phone.unwrap_or(""))
                .bind(filter.email.unwrap_or(""))
                .bind(&ids)
                .bind(filter.home_org.unwrap_or(""))
                .bind(i64::from(batch))
                .fetch_all(&self.db.pool)
                .await?;
            let exhausted = (rows.len() as u32) < batch;
            for row in &rows {
                let a = from_row(row)?;
                scanned += 1;
                cursor = a.id.clone();
                let hit = needle.as_deref().is_none_or(|n| {
                    [&a.family_name, &a.given_name, &a.middle_name]
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(&a.username))
                        .any(|v| v.to_lowercase().contains(n))
                });
                if hit {
                    found.push(a);
                    if found.len() as u32 >= limit {
                        return Ok((found, None));
                    }
                }
            }
            if exhausted || needle.is_none() {
                return Ok((found, None));
            }
            if scanned >= SEARCH_SCAN {
                return Ok((found, Some(cursor)));
            }
        }
    }

    pub async fn set_notify_sms(&self, id: &str, on: bool) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE accounts SET notify_sms = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(on))
                .bind(self.db.clock.now())
                .bind(id)
                .execute(&self.db.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
impl NewRow {
    /// An active account named after its id, with nothing else: what store tests sign in as.
    pub fn active(id: &str) -> NewRow {
        NewRow {
            id: id.into(),
            account: NewAccount {
                username: id.into(),
                verified: true,
                ..NewAccount::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

    fn pending(id: &str, phone: &str, email: &str) -> NewRow {
        let mut row = NewRow::active(id);
        row.account.phone = Some(phone.into());
        row.account.email = Some(email.into());
        row.account.verified = false;
        row
    }

    /// Usernames are unique; contacts only once confirmed; a pending account past its
    /// cutoff no longer holds its name and is swept, an active one never.
    #[tokio::test]
    async fn names_and_confirmed_contacts_are_unique_and_pending_ones_expire() {
        for t in test_dbs().await {
            let db = t.db.clone().with_clock(crate::clock::Clock::at(1_000));
            let accounts = db.accounts();
            accounts
                .insert(&pending("p", "+375291112233", "p@example.by"))
                .await
                .unwrap();
            accounts
                .insert(&pending("q", "+375291112233", "p@example.by"))
                .await
                .unwrap();
            let dup = accounts.insert(&NewRow::active("p")).await;
            assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
            assert!(
                accounts
                    .find_by_confirmed_phone("+375291112233")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                accounts
                    .confirm(Contact::Phone, "p", "+375291112233")
                    .await
                    .unwrap()
            );
            let taken = accounts.confirm(Contact::Phone, "q", "+375291112233").await;
            assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
            let found = accounts
                .find_by_confirmed_phone("+375291112233")
                .await
                .unwrap();
            assert_eq!(found.map(|a| a.id), Some("p".into()));
            assert!(
                accounts
                    .change(Contact::Email, "q", "q@example.by")
                    .await
                    .unwrap()
            );
            let q = accounts
                .find_by_confirmed_email("q@example.by")
                .await
                .unwrap()
                .unwrap();
            assert!(q.email_verified && !q.phone_verified && q.status == "pending");
            assert!(accounts.set_notify_sms("q", true).await.unwrap());
            assert!(
                accounts
                    .find_by_username("q")
                    .await
                    .unwrap()
                    .unwrap()
                    .notify_sms
            );
            assert!(accounts.username_taken("p", 1_000).await.unwrap());
            assert!(
                !accounts.username_taken("p", 1_001).await.unwrap(),
                "expired"
            );
            assert_eq!(
                accounts.delete_expired_pending(1_000, None).await.unwrap(),
                0
            );
            assert_eq!(
                accounts
                    .delete_expired_pending(1_001, Some("p"))
                    .await
                    .unwrap(),
                1
            );
            accounts.insert(&NewRow::active("a")).await.unwrap();
            assert_eq!(
                accounts.delete_expired_pending(1_001, None).await.unwrap(),
                1
            );
            assert_eq!(accounts.count().await.unwrap(), 1, "the active one stays");
            assert!(!accounts.set_notify_sms("gone", true).await.unwrap());
        }
    }

    /// Counts by status, and by address whether confirmed or not.
    #[tokio::test]
    async fn accounts_are_counted_by_status_and_by_address() {
        for t in test_dbs().await {
            let accounts = t.db.accounts();
            accounts
                .insert(&pending("p", "+375291112233", "p@example.by"))
                .await
                .unwrap();
            accounts
                .insert(&pending("q", "+375291112244", "p@example.by"))
                .await
                .unwrap();
            accounts.insert(&NewRow::active("a")).await.unwrap();
            assert_eq!(accounts.count_by_status("pending").await.unwrap(), 2);
            assert_eq!(accounts.count_by_status("active").await.unwrap(), 1);
            assert_eq!(accounts.count_by_status("locked").await.unwrap(), 0);
            assert_eq!(accounts.count_with_email("p@example.by").await.unwrap(), 2);
            assert!(
                accounts
                    .confirm(Contact::Email, "p", "p@example.by")
                    .await
                    .unwrap()
            );
            assert_eq!(accounts.count_with_email("p@example.by").await.unwrap(), 2);
            assert_eq!(accounts.count_with_email("P@example.by").await.unwrap(), 0);
        }
    }
}
