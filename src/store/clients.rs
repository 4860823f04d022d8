//! The clients aggregate: registered relying parties, as validated rows (lists as JSON), and
//! the generation counter that tells every instance to reload its snapshot. What a row means
//! is `identity::client`'s.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;
use super::sql::Db;

/// A client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub public: bool,
    /// JSON lists.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    /// Space-separated.
    pub scope: String,
    pub token_alg: String,
    pub backchannel_logout_uri: Option<String>,
    pub jwks: Option<String>,
    pub min_acr: Option<String>,
    /// JSON: the name in each language.
    pub display_name: Option<String>,
    /// JSON list.
    pub introspection_audiences: String,
    /// JSON lists: system roles that may sign in (empty: any), restricted claims released.
    pub allowed_roles: String,
    pub allowed_claims: String,
    pub disabled: bool,
    /// `system` or an organisation id: what the client administers with client credentials.
    pub admin_scope: Option<String>,
    /// Moves on every change through the administration API (its ETag); 1 when new.
    pub version: i64,
}

fn from_row(row: &AnyRow) -> Result<ClientRow, sqlx::Error> {
    Ok(ClientRow {
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        public: row.try_get::<i64, _>("public")? != 0,
        redirect_uris: row.try_get("redirect_uris")?,
        post_logout_redirect_uris: row.try_get("post_logout_redirect_uris")?,
        grant_types: row.try_get("grant_types")?,
        scope: row.try_get("scope")?,
        token_alg: row.try_get("token_signing_alg")?,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
        jwks: row.try_get("jwks")?,
        min_acr: row.try_get("min_acr")?,
        display_name: row.try_get("display_name")?,
        introspection_audiences: row.try_get("introspection_audiences")?,
        allowed_roles: row.try_get("allowed_roles")?,
        allowed_claims: row.try_get("allowed_claims")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        admin_scope: row.try_get("admin_scope")?,
        version: row.try_get("version")?,
    })
}

/// The clients of a database: `db.clients()`.
pub struct Clients<'a> {
    db: &'a Db,
}

impl Db {
    pub fn clients(&self) -> Clients<'_> {
        Clients { db: self }
    }
}

impl Clients<'_> {
    /// Stores a client and moves the generation, in one transaction. With `replace`, a client
    /// of the same id is overwritten; without, it is [`StoreError::Conflict`].
    pub async fn save(&self, row: &ClientRow, replace: bool) -> Result<(), StoreError> {
        let conflict = if replace {
            "ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash, public = excluded.public, \
             redirect_uris = excluded.redirect_uris, post_logout_redirect_uris = excluded.post_logout_redirect_uris, \
             grant_types = excluded.grant_types, scope = excluded.scope, token_signing_alg = excluded.token_signing_alg, \
             backchannel_logout_uri = excluded.backchannel_logout_uri, jwks = excluded.jwks, min_acr = excluded.min_acr, display_name = excluded.display_name, \
             introspection_audiences = excluded.introspection_audiences, allowed_roles = excluded.allowed_roles, \
             allowed_claims = excluded.allowed_claims, disabled = excluded.disabled, admin_scope = excluded.admin_scope, version = clients.version + 1, \
             updated_at = excluded.updated_at"
        } else {
            ""
        };
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO clients (client_id, secret_hash, public, redirect_uris, post_logout_redirect_uris, \
             grant_types, scope, token_signing_alg, backchannel_logout_uri, jwks, created_at, updated_at, min_acr, \
             display_name, introspection_audiences, allowed_roles, allowed_claims, disabled, admin_scope) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17, $18) {conflict}"
        ))
        .bind(&row.client_id)
        .bind(&row.secret_hash)
        .bind(i64::from(row.public))
        .bind(&row.redirect_uris)
        .bind(&row.post_logout_redirect_uris)
        .bind(&row.grant_types)
        .bind(&row.scope)
        .bind(&row.token_alg)
        .bind(&row.backchannel_logout_uri)
        .bind(&row.jwks)
        .bind(self.db.clock.now())
        .bind(&row.min_acr)
        .bind(&row.display_name)
        .bind(&row.introspection_audiences)
        .bind(&row.allowed_roles)
        .bind(&row.allowed_claims)
        .bind(i64::from(row.disabled))
        .bind(&row.admin_scope)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE generation SET value = value + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every stored client; a row that cannot be read is returned as its error, so the caller
    /// skips it (loudly) and serves the rest.
    pub async fn all(&self) -> Result<Vec<Result<ClientRow, StoreError>>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients")
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows.iter().map(|r| Ok(from_row(r)?)).collect())
    }

    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// A page of clients in id order after `after`.
    pub async fn page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.db.pool)
                .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Overwrites the client's row when its version is still `expected`, moving the version and
    /// the generation in one transaction; false when it moved meanwhile.
    pub async fn update(&self, row: &ClientRow, expected: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1, public = $2, redirect_uris = $3, post_logout_redirect_uris = $4, \
             grant_types = $5, scope = $6, token_signing_alg = $7, backchannel_logout_uri = $8, jwks = $9, \
             min_acr = $10, display_name = $11, introspection_audiences = $12, allowed_roles = $13, \
             allowed_claims = $14, disabled = $15, admin_scope = $16, version = version + 1, updated_at = $17 \
             WHERE client_id = $18 AND version = $19",
        )
        .bind(&row.secret_hash)
        .bind(i64::from(row.public))
        .bind(&row.redirect_uris)
        .bind(&row.post_logout_redirect_uris)
        .bind(&row.grant_types)
        .bind(&row.scope)
        .bind(&row.token_alg)
        .bind(&row.backchannel_logout_uri)
        .bind(&row.jwks)
        .bind(&row.min_acr)
        .bind(&row.display_name)
        .bind(&row.introspection_audiences)
        .bind(&row.allowed_roles)
        .bind(&row.allowed_claims)
        .bind(i64::from(row.disabled))
        .bind(&row.admin_scope)
        .bind(self.db.clock.now())
        .bind(&row.client_id)
        .bind(expected)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("UPDATE generation SET value = value + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The generation counter: it moves on every change to the clients.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT value FROM generation WHERE id = 1")
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::test_dbs;

    fn client(id: &str, scope: &str) -> ClientRow {
        ClientRow {
            client_id: id.into(),
            secret_hash: None,
            public: true,
            redirect_uris: "[\"https://rp.example/cb\"]".into(),
            post_logout_redirect_uris: "[]".into(),
            grant_types: "[\"authorization_code\"]".into(),
            scope: scope.into(),
            token_alg: "ES256".into(),
            backchannel_logout_uri: None,
            jwks: None,
            min_acr: Some("high".into()),
            display_name: Some("{\"ru\":\"Сервис\"}".into()),
            introspection_audiences: "[]".into(),
            allowed_roles: "[]".into(),
            allowed_claims: "[]".into(),
            disabled: false,
            admin_scope: None,
            version: 1,
        }
    }

    /// A client is stored once unless replaced; every change moves the generation, in the
    /// same transaction, so no instance misses one.
    #[tokio::test]
    async fn clients_are_saved_replaced_and_counted_by_generation() {
        for t in test_dbs().await {
            let db = &t.db;
            let g0 = db.clients().generation().await.unwrap();
            db.clients()
                .save(&client("rp", "openid"), false)
                .await
                .unwrap();
            let dup = db
                .clients()
                .save(&client("rp", "openid email"), false)
                .await;
            assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
            let g1 = db.clients().generation().await.unwrap();
            assert_eq!(g1, g0 + 1, "a refused write moves nothing");
            db.clients()
                .save(&client("rp", "openid email"), true)
                .await
                .unwrap();
            assert_eq!(db.clients().generation().await.unwrap(), g1 + 1);
            let all: Vec<ClientRow> = db
                .clients()
                .all()
                .await
                .unwrap()
                .into_iter()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                all,
                [ClientRow {
                    version: 2,
                    ..client("rp", "openid email")
                }],
                "a replace moves the version"
            );
        }
    }
}
