//! Grants (one per authorization) and their refresh tokens, as the token endpoint sees them:
//! typed facts over the rows of `store::grants` (which keeps the rotation and reuse rules).

use crate::authn::AuthFacts;
use crate::store::StoreError;
use crate::store::grants::{GrantRow, RefreshUse};
use crate::store::sql::Db;

#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub sid: Option<String>,
    pub scope: Vec<String>,
    pub facts: AuthFacts,
    pub expires_at: i64,
}

impl GrantRecord {
    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }
}

/// What presenting a refresh token came to.
pub type RefreshOutcome = RefreshUse<GrantRecord>;

impl GrantRecord {
    fn to_row(&self) -> GrantRow {
        GrantRow {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            client_id: self.client_id.clone(),
            sid: self.sid.clone(),
            scope: self.scope_string(),
            facts: self.facts.to_stored(),
            expires_at: self.expires_at,
        }
    }

    fn from_row(row: GrantRow) -> GrantRecord {
        GrantRecord {
            id: row.id,
            account_id: row.account_id,
            client_id: row.client_id,
            sid: row.sid,
            scope: row
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            facts: AuthFacts::from_stored(row.facts),
            expires_at: row.expires_at,
        }
    }
}

/// Creates the grant of a redeemed code, with its first refresh token when `with_refresh`.
pub async fn create(
    db: &Db,
    grant: &GrantRecord,
    with_refresh: bool,
) -> Result<Option<String>, StoreError> {
    db.grants().insert(&grant.to_row(), with_refresh).await
}

/// Uses a refresh token of `client_id` exactly once: of two concurrent uses one rotates and
/// the other is treated as reuse (and revokes the grant).
pub async fn use_refresh(
    db: &Db,
    token: &str,
    client_id: &str,
) -> Result<RefreshOutcome, StoreError> {
    Ok(db
        .grants()
        .use_refresh(token, client_id)
        .await?
        .map_grant(GrantRecord::from_row))
}

/// The grant of a refresh token, if the token is still usable (introspection, revocation).
pub async fn find_by_refresh(db: &Db, token: &str) -> Result<Option<GrantRecord>, StoreError> {
    Ok(db
        .grants()
        .find_by_refresh(token)
        .await?
        .map(GrantRecord::from_row))
}
