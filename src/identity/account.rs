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
    given_name, family_name, middle_name, roles, org, status";

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
    })
}

/// Usernames compare case-insensitively; we store them lower-cased.
pub fn normalize_username(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A login that looks like a phone number, reduced to E.164 digits (`+375…`).
/// Registration (a later capability) validates numbers fully; this only canonicalises writing.
pub fn normalize_phone(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        return None;
    }
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 9 || digits.len() > 15 {
        return None;
    }
    // Belarusian national format: 80 29 123-45-67.
    if let Some(rest) = digits.strip_prefix("80")
        && digits.len() == 11
    {
        return Some(format!("+375{rest}"));
    }
    Some(format!("+{digits}"))
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "active"
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'active', $13, $13)",
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
    .execute(&db.pool)
    .await;
    match result {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(AccountError::Duplicate);
        }
        Err(e) => return Err(e.into()),
    }
    find_by_id(db, &id)
        .await?
        .ok_or(AccountError::Sql(sqlx::Error::RowNotFound))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_logins_in_common_writings_are_one_number() {
        for w in [
            "+375 29 123-45-67",
            "375291234567",
            "80291234567",
            "+375(29)1234567",
        ] {
            assert_eq!(normalize_phone(w).as_deref(), Some("+375291234567"), "{w}");
        }
        assert_eq!(normalize_phone("ivan"), None);
        assert_eq!(normalize_phone("12"), None);
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
        };
        let c = a.claims(["openid"]);
        assert!(c.is_empty());
        let c = a.claims(["profile", "phone", "email"]);
        assert_eq!(c["name"], "Иванов Иван");
        assert_eq!(c["phone_number_verified"], true);
        assert!(!c.contains_key("email"));
    }
}
