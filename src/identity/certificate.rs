//! Which account a certificate identity belongs to. A person is known by their personal
//! identification number; a representative whose certificate names none, by the issuer and
//! subject names of the certificate (a renewed certificate from the same CA keeps them).
//! Never by name or email: linking an existing account needs its password (see
//! `authn::certificate`).

use sqlx::Row;

use super::account::{self, Account, AccountError, NewAccount};
use crate::clock;
use crate::pki::cert::Cert;
use crate::pki::profile::CertIdentity;
use crate::secrets;
use crate::store::sql::Db;

/// The key an identity is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey(String);

impl IdentityKey {
    pub fn of(identity: &CertIdentity, leaf: &Cert) -> IdentityKey {
        match &identity.personal_number {
            Some(pn) => IdentityKey(format!("pn:{pn}")),
            None => {
                let mut names = leaf.issuer_der.clone();
                names.extend_from_slice(&leaf.subject_der);
                IdentityKey(format!("dn:{}", hex::encode(secrets::sha256(&names))))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_personal_number(&self) -> bool {
        self.0.starts_with("pn:")
    }
}

pub async fn owner(db: &Db, key: &IdentityKey) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT account_id FROM certificate_identities WHERE identity = $1")
        .bind(key.as_str())
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| r.try_get("account_id")).transpose()
}

pub async fn identities_of(db: &Db, account_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT identity FROM certificate_identities WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| r.try_get("identity")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the certificate identity already belongs to an account")]
    Taken,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Writes the identity row on `conn` (the pool or the transaction that creates the account).
async fn insert_identity(
    conn: &mut sqlx::AnyConnection,
    key: &IdentityKey,
    account_id: &str,
) -> Result<(), LinkError> {
    let r = sqlx::query(
        "INSERT INTO certificate_identities (identity, account_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(key.as_str())
    .bind(account_id)
    .bind(clock::now())
    .execute(conn)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if unique_violation(&e) => Err(LinkError::Taken),
        Err(e) => Err(e.into()),
    }
}

/// Binds the identity to an existing account.
pub async fn link(db: &Db, key: &IdentityKey, account_id: &str) -> Result<(), LinkError> {
    let mut conn = db.pool.acquire().await?;
    insert_identity(&mut conn, key, account_id).await
}

/// A new account for a person first seen through their certificate, written together with
/// its identity row (both or neither).
pub async fn create_account(
    db: &Db,
    key: &IdentityKey,
    identity: &CertIdentity,
) -> Result<Account, LinkError> {
    let mut tx = db.pool.begin().await?;
    let new = NewAccount {
        // Not a login anyone types: certificate accounts have no password until the person
        // sets one; "~" cannot start a username chosen at registration.
        username: format!("~{}", secrets::random_id()),
        given_name: identity.given_name.clone(),
        family_name: identity.surname.clone(),
        middle_name: identity.patronymic.clone(),
        roles: vec!["applicant".into()],
        verified: true,
        ..NewAccount::default()
    };
    let id = match account::insert(&mut tx, new).await {
        Ok(id) => id,
        Err(AccountError::Sql(e)) => return Err(e.into()),
        Err(e) => return Err(LinkError::Sql(sqlx::Error::Protocol(e.to_string()))),
    };
    insert_identity(&mut tx, key, &id).await?;
    tx.commit().await?;
    account::find_by_id(db, &id)
        .await?
        .ok_or(LinkError::Sql(sqlx::Error::RowNotFound))
}
