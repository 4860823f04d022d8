//! People's accounts. `id` is the public `sub`: random, stable, never a login or personal number.

use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::sql::Db;
use crate::{clock, secrets};

pub const ROLES: [&str; 3] = ["applicant", "employee", "admin"];

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
    pub roles: Vec<String>,
    pub org: Option<String>,
    pub status: String,
    /// The person wants notifications about appeals by SMS.
    pub notify_sms: bool,
}

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
    pub org: Option<String>,
    pub verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this username or phone already exists")]
    Duplicate,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, username, password_hash, phone, phone_verified, email, email_verified, \
    given_name, family_name, middle_name, roles, org, status, notify_sms";

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
        org: row.try_get("org")?,
        status: row.try_get("status")?,
        notify_sms: row.try_get::<i64, _>("notify_sms")? != 0,
    })
}

/// Usernames compare case-insensitively; we store them lower-cased.
pub fn normalize_username(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A login that looks like a phone number, reduced to E.164 digits (`+375…`).
/// Registration (a later capability) validates numbers fully; this only canonicalises writing.
pub fn normalize_phone(s: &str) -> Option<String> {
    use crate::identity::contact::{PhoneNumber, looks_like_phone};
    // A username is never read as a phone number.
    if !looks_like_phone(s) {
        return None;
    }
    PhoneNumber::parse(s).ok().map(|p| p.as_str().to_string())
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The phone number as shown on pages ("+375 29 ***-**-67").
    pub fn masked_phone(&self) -> Option<String> {
        let phone = self.phone.as_deref()?;
        super::contact::PhoneNumber::parse(phone)
            .ok()
            .map(|p| p.masked())
    }

    /// The email address as shown on pages ("i***@example.by").
    pub fn masked_email(&self) -> Option<String> {
        let email = self.email.as_deref()?;
        super::contact::Email::parse(email).ok().map(|e| e.masked())
    }

    /// Registered but phone or email not yet confirmed: may not sign in to any client.
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.family_name, &self.given_name, &self.middle_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Claims released for the granted scopes (OpenID Connect Core §5.4, plus `roles`).
    pub fn claims<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        };
        for scope in scopes {
            match scope {
                "profile" => {
                    put("preferred_username", json!(self.username));
                    put("name", json!(self.full_name()));
                    put("given_name", json!(self.given_name));
                    put("family_name", json!(self.family_name));
                    put("middle_name", json!(self.middle_name));
                }
                "email" if self.email.is_some() => {
                    put("email", json!(self.email));
                    put("email_verified", json!(self.email_verified));
                }
                "phone" if self.phone.is_some() => {
                    put("phone_number", json!(self.phone));
                    put("phone_number_verified", json!(self.phone_verified));
                    put("notify_sms", json!(self.notify_sms));
                }
                "roles" => {
                    put("roles", json!(self.roles));
                    put("org", json!(self.org));
                }
                _ => {}
            }
        }
        m
    }
}

pub async fn create(db: &Db, new: NewAccount) -> Result<Account, AccountError> {
    let mut conn = db.pool.acquire().await?;
    let id = insert(&mut conn, new).await?;
    drop(conn);
    find_by_id(db, &id)
        .await?
        .ok_or(AccountError::Sql(sqlx::Error::RowNotFound))
}

/// Validates and inserts an account on `conn` (a pooled connection or a transaction, so a
/// caller can write the account together with rows that belong to it); returns its id.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    new: NewAccount,
) -> Result<String, AccountError> {
    let username = normalize_username(&new.username);
    if username.is_empty() || username.len() > 64 || username.chars().any(|c| c.is_control()) {
        return Err(AccountError::Invalid(
            "username must be 1 to 64 printable characters".into(),
        ));
    }
    if normalize_phone(&username).is_some() {
        return Err(AccountError::Invalid(
            "a username must not look like a phone number".into(),
        ));
    }
    let phone = match &new.phone {
        Some(p) => Some(
            normalize_phone(p)
                .ok_or_else(|| AccountError::Invalid(format!("{p:?} is not a phone number")))?,
        ),
        None => None,
    };
    for r in &new.roles {
        if !ROLES.contains(&r.as_str()) {
            return Err(AccountError::Invalid(format!(
                "unknown role {r:?} (applicant, employee or admin)"
            )));
        }
    }
    let id = secrets::random_id();
    let now = clock::now();
    let verified = i64::from(new.verified);
    let result = sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, phone, phone_verified, email, \
         email_verified, given_name, family_name, middle_name, roles, org, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $13, $13)",
    )
    .bind(&id)
    .bind(&username)
    .bind(&new.password_hash)
    .bind(&phone)
    .bind(verified)
    .bind(&new.email)
    .bind(verified)
    .bind(&new.given_name)
    .bind(&new.family_name)
    .bind(&new.middle_name)
    .bind(serde_json::to_string(&new.roles).unwrap_or_else(|_| "[]".into()))
    .bind(&new.org)
    .bind(now)
    .bind(if new.verified { "active" } else { "pending" })
    .execute(&mut *conn)
    .await;
    match result {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(AccountError::Duplicate);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(id)
}

pub async fn find_by_id(db: &Db, id: &str) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// Finds an account by username or by phone number in any common writing.
pub async fn find_by_login(db: &Db, login: &str) -> Result<Option<Account>, sqlx::Error> {
    let row = match normalize_phone(login) {
        Some(phone) => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE phone = $1"))
                .bind(phone)
                .fetch_optional(&db.pool)
                .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM accounts WHERE username = $1"
            ))
            .bind(normalize_username(login))
            .fetch_optional(&db.pool)
            .await?
        }
    };
    row.map(|r| from_row(&r)).transpose()
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM accounts")
        .fetch_one(&db.pool)
        .await?
        .try_get(0)
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Account>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE email = $1"))
        .bind(email)
        .fetch_optional(&db.pool)
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

async fn update(db: &Db, sql: &str, id: &str, value: &str) -> Result<bool, AccountError> {
    let done = sqlx::query(sql)
        .bind(value)
        .bind(clock::now())
        .bind(id)
        .execute(&db.pool)
        .await;
    match done {
        Ok(d) => Ok(d.rows_affected() == 1),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AccountError::Duplicate),
        Err(e) => Err(e.into()),
    }
}

/// The phone `phone` was proven by a code; true if it is still the account's number.
pub async fn confirm_phone(db: &Db, id: &str, phone: &str) -> Result<bool, AccountError> {
    update(
        db,
        "UPDATE accounts SET phone_verified = 1, updated_at = $2 WHERE id = $3 AND phone = $1",
        id,
        phone,
    )
    .await
}

/// The email `email` was proven by a link; true if it is still the account's address.
pub async fn confirm_email(db: &Db, id: &str, email: &str) -> Result<bool, AccountError> {
    update(
        db,
        "UPDATE accounts SET email_verified = 1, updated_at = $2 WHERE id = $3 AND email = $1",
        id,
        email,
    )
    .await
}

/// A pending account becomes active once both its phone and email are confirmed.
pub async fn activate_if_confirmed(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE accounts SET status = 'active', updated_at = $1 WHERE id = $2 AND status = 'pending' \
         AND phone_verified = 1 AND email_verified = 1",
    )
    .bind(clock::now())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_password_hash(db: &Db, id: &str, hash: &str) -> Result<bool, AccountError> {
    update(
        db,
        "UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3",
        id,
        hash,
    )
    .await
}

/// A new phone number, already proven by a code.
pub async fn change_phone(db: &Db, id: &str, phone: &str) -> Result<bool, AccountError> {
    update(
        db,
        "UPDATE accounts SET phone = $1, phone_verified = 1, updated_at = $2 WHERE id = $3",
        id,
        phone,
    )
    .await
}

/// A new email address, already proven by a link.
pub async fn change_email(db: &Db, id: &str, email: &str) -> Result<bool, AccountError> {
    update(
        db,
        "UPDATE accounts SET email = $1, email_verified = 1, updated_at = $2 WHERE id = $3",
        id,
        email,
    )
    .await
}

pub async fn set_notify_sms(db: &Db, id: &str, on: bool) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE accounts SET notify_sms = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(on))
        .bind(clock::now())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_logins_in_common_writings_are_one_number() {
        for w in [
            "+375 29 123-45-67",
            "+375(29)1234567",
            "375291234567",
            "80291234567",
            "8 (029) 123-45-67",
        ] {
            assert_eq!(normalize_phone(w).as_deref(), Some("+375291234567"), "{w}");
        }
        assert_eq!(
            normalize_phone("+48 512 345 678").as_deref(),
            Some("+48512345678")
        );
        for w in [
            "ivan",
            "12",
            "12345678",
            "ivan80291234567",
            "+375 17 123-45-67",
            "+375 29 123-45-6",
            "٠٢٩١٢٣٤٥٦٧",
        ] {
            assert_eq!(normalize_phone(w), None, "{w}");
        }
    }

    #[test]
    fn claims_follow_scopes() {
        let a = Account {
            id: "s".into(),
            username: "ivan".into(),
            password_hash: None,
            phone: Some("+375291234567".into()),
            phone_verified: true,
            email: None,
            email_verified: false,
            given_name: Some("Иван".into()),
            family_name: Some("Иванов".into()),
            middle_name: None,
            roles: vec!["applicant".into()],
            org: None,
            status: "active".into(),
            notify_sms: true,
        };
        let c = a.claims(["openid"]);
        assert!(c.is_empty());
        let c = a.claims(["profile", "phone", "email"]);
        assert_eq!(c["name"], "Иванов Иван");
        assert_eq!(c["phone_number_verified"], true);
        assert!(!c.contains_key("email"));
    }
}
