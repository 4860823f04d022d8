//! People's accounts. `id` is the public `sub`: random, stable, never a login or personal number.

use serde_json::{Map, Value, json};

use crate::secrets;
use crate::store::StoreError;
use crate::store::accounts::{Contact, NewRow};
use crate::store::sql::Db;
use crate::store::units::{self, Confirmed};

/// The stored record and a new one's fields; what they mean (claims, masks, pending or
/// active, what a valid new account is) is written here.
pub use crate::store::accounts::{Account, NewAccount};

/// The system roles an account may be given itself (`vhod user add --role`).
pub const ROLES: [&str; 4] = ["applicant", "employee", "admin", "auditor"];

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username is taken, or the phone or email is confirmed for another account.
    #[error("an account with this username, or this confirmed phone or email, already exists")]
    Duplicate,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AccountError::Duplicate,
            e => AccountError::Store(e),
        }
    }
}

/// Usernames compare case-insensitively; we store them lower-cased.
pub fn normalize_username(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The identifier a login names, as lookup reads it: `phone:+375…` for a phone number in any
/// writing, else `user:` and the normalised username. Failures are counted under it.
pub fn login_identifier(login: &str) -> String {
    match normalize_phone(login) {
        Some(phone) => format!("phone:{phone}"),
        None => format!("user:{}", normalize_username(login)),
    }
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

    /// A registration left unconfirmed for longer than `ttl` seconds: it is treated as absent
    /// (and deleted by the upkeep sweep), so it holds no login name or contact.
    pub fn is_expired_pending(&self, ttl: u64, now: i64) -> bool {
        self.is_pending() && self.created_at < pending_cutoff(ttl, now)
    }

    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.family_name, &self.given_name, &self.middle_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Claims of the account itself released for the granted scopes (OpenID Connect Core
    /// §5.4); roles, organisations and the personal number are the standing's
    /// (`identity::standing`).
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
                _ => {}
            }
        }
        m
    }
}

pub async fn create(db: &Db, new: NewAccount) -> Result<Account, AccountError> {
    let row = validate(new)?;
    db.accounts().insert(&row).await?;
    db.accounts()
        .find_by_id(&row.id)
        .await?
        .ok_or(AccountError::Store(StoreError::NotFound))
}

/// Checks and normalises a new account into the row to store, under a fresh random id.
pub fn validate(new: NewAccount) -> Result<NewRow, AccountError> {
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
    let email = match &new.email {
        Some(e) => Some(
            crate::identity::contact::Email::parse(e)
                .map_err(|_| AccountError::Invalid(format!("{e:?} is not an email address")))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    for (what, name) in [
        ("given_name", &new.given_name),
        ("family_name", &new.family_name),
        ("middle_name", &new.middle_name),
    ] {
        if let Some(n) = name
            && (n.chars().count() > 300 || n.chars().any(char::is_control))
        {
            return Err(AccountError::Invalid(format!(
                "{what}: at most 300 printable characters"
            )));
        }
    }
    for r in &new.roles {
        if !ROLES.contains(&r.as_str()) {
            return Err(AccountError::Invalid(format!(
                "unknown role {r:?} (applicant, employee, admin or auditor)"
            )));
        }
    }
    Ok(NewRow {
        id: secrets::random_id(),
        account: NewAccount {
            username,
            phone,
            email,
            ..new
        },
    })
}

pub async fn find_by_id(db: &Db, id: &str) -> Result<Option<Account>, StoreError> {
    db.accounts().find_by_id(id).await
}

/// Finds an account by username, or by a phone number (in any common writing) confirmed for
/// it: an unconfirmed number names nobody, so a registration cannot take another's number.
pub async fn find_by_login(db: &Db, login: &str) -> Result<Option<Account>, StoreError> {
    match normalize_phone(login) {
        Some(phone) => db.accounts().find_by_confirmed_phone(&phone).await,
        None => {
            db.accounts()
                .find_by_username(&normalize_username(login))
                .await
        }
    }
}

pub async fn count(db: &Db) -> Result<i64, StoreError> {
    db.accounts().count().await
}

/// The account an email address (any case) is confirmed for.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<Account>, StoreError> {
    let Ok(email) = crate::identity::contact::Email::parse(email) else {
        return Ok(None);
    };
    db.accounts().find_by_confirmed_email(email.as_str()).await
}

/// Unix seconds before which a pending account has expired.
pub fn pending_cutoff(ttl: u64, now: i64) -> i64 {
    now.saturating_sub(i64::try_from(ttl).unwrap_or(i64::MAX))
}

/// Is the login name held by an account (a pending one only until it expires)?
pub async fn username_taken(
    db: &Db,
    username: &str,
    pending_ttl: u64,
    now: i64,
) -> Result<bool, StoreError> {
    db.accounts()
        .username_taken(
            &normalize_username(username),
            pending_cutoff(pending_ttl, now),
        )
        .await
}

/// Deletes registrations left unconfirmed for longer than `pending_ttl` (all of them, or the
/// one holding `username`); returns how many. Such an account never signed in, so nothing
/// refers to it.
pub async fn delete_expired_pending(
    db: &Db,
    pending_ttl: u64,
    now: i64,
    username: Option<&str>,
) -> Result<u64, StoreError> {
    let username = username.map(normalize_username);
    db.accounts()
        .delete_expired_pending(pending_cutoff(pending_ttl, now), username.as_deref())
        .await
}

/// The upkeep sweep: deletes registrations that expired unconfirmed, and folds the case of
/// email addresses migration 0005 could not (non-ASCII capitals). Returns what it did.
pub async fn upkeep(db: &Db, pending_ttl: u64) -> Result<(u64, u64), StoreError> {
    let expired = delete_expired_pending(db, pending_ttl, db.clock.now(), None).await?;
    let folded = fold_legacy_emails(db).await?;
    Ok((expired, folded))
}

/// Lower-cases the addresses migration 0005 left as [`Email::parse`] does, where SQL's
/// lower() may not have (non-ASCII capitals).
///
/// [`Email::parse`]: crate::identity::contact::Email::parse
pub async fn fold_legacy_emails(db: &Db) -> Result<u64, StoreError> {
    db.accounts()
        .fold_legacy_emails(|email| {
            crate::identity::contact::Email::parse(email)
                .map(|e| e.as_str().to_string())
                .unwrap_or_else(|_| email.to_lowercase())
        })
        .await
}

/// Addresses as stored (lower-cased); one that does not parse is left as it is and so
/// matches nothing stored.
pub fn stored_email(email: &str) -> String {
    crate::identity::contact::Email::parse(email)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| email.to_string())
}

/// The phone `phone` was proven by a code: confirmed if it is still the account's number, and
/// the registration completed with it when the email is confirmed too (one transaction).
pub async fn confirm_phone(db: &Db, id: &str, phone: &str) -> Result<Confirmed, AccountError> {
    Ok(units::confirm_contact(db, Contact::Phone, id, phone).await?)
}

/// The email `email` was proven by a link: confirmed if it is still the account's address,
/// and the registration completed with it when the phone is confirmed too.
pub async fn confirm_email(db: &Db, id: &str, email: &str) -> Result<Confirmed, AccountError> {
    let email = &stored_email(email);
    Ok(units::confirm_contact(db, Contact::Email, id, email).await?)
}

/// A new phone number, already proven by a code.
pub async fn change_phone(db: &Db, id: &str, phone: &str) -> Result<bool, AccountError> {
    Ok(db.accounts().change(Contact::Phone, id, phone).await?)
}

/// A new email address, already proven by a link.
pub async fn change_email(db: &Db, id: &str, email: &str) -> Result<bool, AccountError> {
    let email = &stored_email(email);
    Ok(db.accounts().change(Contact::Email, id, email).await?)
}

pub async fn set_notify_sms(db: &Db, id: &str, on: bool) -> Result<bool, StoreError> {
    db.accounts().set_notify_sms(id, on).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

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

    fn person(username: &str, phone: &str, email: &str, verified: bool) -> NewAccount {
        NewAccount {
            username: username.into(),
            phone: Some(phone.into()),
            email: Some(email.into()),
            roles: vec!["applicant".into()],
            verified,
            ..NewAccount::default()
        }
    }

    #[tokio::test]
    async fn only_confirmed_contacts_are_unique_and_found() {
        for t in test_dbs().await {
            only_confirmed_contacts_are_unique_and_found_on(t.db.clone()).await;
        }
    }

    async fn only_confirmed_contacts_are_unique_and_found_on(db: Db) {
        let p1 = create(&db, person("p1", "+375291112233", "Ann@Example.BY", false))
            .await
            .unwrap();
        assert_eq!(p1.email.as_deref(), Some("ann@example.by"));
        // A second unconfirmed registration with the same contacts is allowed...
        let p2 = create(&db, person("p2", "80291112233", "ANN@example.by", false))
            .await
            .unwrap();
        // ...and neither is found by them until confirmed.
        assert!(find_by_login(&db, "+375291112233").await.unwrap().is_none());
        assert!(
            find_by_email(&db, "ann@example.by")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            confirm_phone(&db, &p2.id, "+375291112233").await.unwrap(),
            Confirmed::Done { activated: false }
        );
        assert_eq!(
            confirm_email(&db, &p2.id, "ann@example.by").await.unwrap(),
            Confirmed::Done { activated: true }
        );
        assert_eq!(
            find_by_login(&db, "8 029 111 22 33")
                .await
                .unwrap()
                .unwrap()
                .id,
            p2.id
        );
        assert_eq!(
            find_by_email(&db, "Ann@EXAMPLE.by")
                .await
                .unwrap()
                .unwrap()
                .id,
            p2.id
        );
        // Once confirmed for one account, neither can be confirmed for another.
        assert!(matches!(
            confirm_phone(&db, &p1.id, "+375291112233").await,
            Err(AccountError::Duplicate)
        ));
        assert!(matches!(
            confirm_email(&db, &p1.id, "ann@example.by").await,
            Err(AccountError::Duplicate)
        ));
        assert!(matches!(
            create(&db, person("p3", "+375291112233", "x@example.by", true)).await,
            Err(AccountError::Duplicate)
        ));
        assert!(matches!(
            create(&db, person("P2", "+375291112299", "y@example.by", false)).await,
            Err(AccountError::Duplicate)
        ));
    }

    #[tokio::test]
    async fn expired_registrations_hold_nothing_and_are_swept() {
        for t in test_dbs().await {
            expired_registrations_hold_nothing_and_are_swept_on(t.db.clone()).await;
        }
    }

    async fn expired_registrations_hold_nothing_and_are_swept_on(db: Db) {
        let old = create(&db, person("old", "+375291112233", "o@example.by", false))
            .await
            .unwrap();
        let active = create(&db, person("act", "+375291112244", "a@example.by", true))
            .await
            .unwrap();
        let (ttl, now) = (3600, old.created_at + 10);
        assert!(!old.is_expired_pending(ttl, now));
        assert!(username_taken(&db, "OLD", ttl, now).await.unwrap());
        let later = old.created_at + 3601;
        assert!(old.is_expired_pending(ttl, later));
        assert!(!active.is_expired_pending(ttl, later));
        assert!(!username_taken(&db, "old", ttl, later).await.unwrap());
        assert!(username_taken(&db, "act", ttl, later).await.unwrap());
        assert_eq!(
            delete_expired_pending(&db, ttl, later, Some("someone"))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            delete_expired_pending(&db, ttl, now, None).await.unwrap(),
            0
        );
        assert_eq!(
            delete_expired_pending(&db, ttl, later, None).await.unwrap(),
            1
        );
        assert!(find_by_id(&db, &old.id).await.unwrap().is_none());
        assert!(find_by_id(&db, &active.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn legacy_addresses_are_folded_and_the_oldest_keeps_its_confirmation() {
        for t in test_dbs().await {
            legacy_addresses_are_folded_and_the_oldest_keeps_its_confirmation_on(t.db.clone())
                .await;
        }
    }

    async fn legacy_addresses_are_folded_and_the_oldest_keeps_its_confirmation_on(db: Db) {
        let now = crate::clock::now();
        for (id, email, verified, created) in [
            ("a", "Олег@example.by", 1, now - 20),
            ("b", "олег@example.by", 1, now - 10),
            ("c", "ИРА@example.by", 1, now - 5),
        ] {
            // Rows as migration 0005 left them: written past the validation on purpose.
            db.tamper(&format!(
                "INSERT INTO accounts (id, username, email, email_verified, created_at, updated_at) \
                 VALUES ('{id}', '{id}', '{email}', {verified}, {created}, {created})"
            ))
            .await;
            db.tamper(&format!(
                "INSERT INTO accounts_email_fold (id) VALUES ('{id}')"
            ))
            .await;
        }
        assert_eq!(fold_legacy_emails(&db).await.unwrap(), 3);
        let get = |id: &'static str| {
            let db = db.clone();
            async move { find_by_id(&db, id).await.unwrap().unwrap() }
        };
        let (a, b, c) = (get("a").await, get("b").await, get("c").await);
        assert_eq!(
            (a.email.as_deref(), a.email_verified),
            (Some("олег@example.by"), true)
        );
        assert_eq!(
            (b.email.as_deref(), b.email_verified),
            (Some("олег@example.by"), false)
        );
        assert_eq!(
            (c.email.as_deref(), c.email_verified),
            (Some("ира@example.by"), true)
        );
        assert_eq!(fold_legacy_emails(&db).await.unwrap(), 0, "done once");
    }

    #[test]
    fn login_identifiers_are_read_as_lookup_reads_them() {
        assert_eq!(login_identifier(" Ivan "), "user:ivan");
        assert_eq!(login_identifier("8 029 123-45-67"), "phone:+375291234567");
        assert_eq!(login_identifier("+375291234567"), "phone:+375291234567");
        assert_eq!(login_identifier("12345"), "user:12345");
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
            home_org: None,
            status: "active".into(),
            notify_sms: true,
            created_at: 0,
            version: 1,
        };
        let c = a.claims(["openid"]);
        assert!(c.is_empty());
        let c = a.claims(["profile", "phone", "email"]);
        assert_eq!(c["name"], "Иванов Иван");
        assert_eq!(c["phone_number_verified"], true);
        assert!(!c.contains_key("email"));
    }
}
