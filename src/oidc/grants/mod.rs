//! Token endpoint grants: one handler per grant type behind one trait. Adding a grant means one
//! new file and one line in `dispatch`.

pub mod authorization_code;
pub mod client_credentials;
pub mod records;
pub mod refresh_token;

use serde::Serialize;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::config::Settings;
use crate::identity::client::{Client, GrantType};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::store::ephemeral::Ephemeral;
use crate::store::sql::Db;
use crate::tokens::mint::Minter;
use crate::web::RequestMeta;
use crate::web::params::Params;

/// RFC 6749 §5.1 (+ OIDC Core §3.1.3.3 id_token).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// A token request, and what a grant may use to answer it.
pub struct GrantCtx<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub audit: &'a Audit,
    pub clock: &'a Clock,
    pub settings: &'a Settings,
    pub minter: Minter<'a>,
    pub client: &'a Client,
    pub policies: &'a crate::policy::Policies,
    pub params: &'a Params,
    pub meta: &'a RequestMeta,
}

// Crate-internal trait with static dispatch: the handler futures' Send-ness is checked where
// `dispatch` is used inside axum handlers, so the lint's concern does not apply.
#[allow(async_fn_in_trait)]
pub trait Grant {
    const TYPE: GrantType;
    async fn handle(ctx: &GrantCtx<'_>) -> Result<TokenResponse, OAuthError>;
}

async fn run<G: Grant>(ctx: &GrantCtx<'_>) -> Result<TokenResponse, OAuthError> {
    if ctx.client.disabled {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is disabled",
        ));
    }
    if !ctx.client.allows_grant(G::TYPE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {} grant", G::TYPE.as_str()),
        ));
    }
    G::handle(ctx).await
}

pub async fn dispatch(ctx: &GrantCtx<'_>, grant_type: &str) -> Result<TokenResponse, OAuthError> {
    match GrantType::parse(grant_type) {
        Some(GrantType::AuthorizationCode) => {
            run::<authorization_code::AuthorizationCode>(ctx).await
        }
        Some(GrantType::RefreshToken) => run::<refresh_token::RefreshToken>(ctx).await,
        Some(GrantType::ClientCredentials) => {
            run::<client_credentials::ClientCredentials>(ctx).await
        }
        None => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
    }
}

/// Parses a requested `scope` and checks it is within `allowed`.
pub fn narrow_scope(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(raw) = requested else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {s} was not granted"
            )));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(Some(out))
}

/// Mints the tokens of a person's grant: access token, ID token (when `openid` was granted).
pub(crate) async fn person_tokens(
    ctx: &GrantCtx<'_>,
    grant: &records::GrantRecord,
    scope: &[String],
    nonce: Option<&str>,
    refresh_token: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    use crate::identity::account;
    use crate::identity::standing::Standing;
    use crate::policy;
    use crate::tokens::mint;

    let acc = account::find_by_id(ctx.db, &grant.account_id)
        .await?
        .filter(|a| a.is_active())
        .ok_or_else(|| OAuthError::invalid_grant("the account is no longer active"))?;
    // Read afresh at every issue: a refresh shows an ended delegation or a removed role, and
    // is refused when the policies no longer let this account use the client.
    let standing = Standing::of(ctx.db, &acc, ctx.clock.now()).await?;
    if let Err(denied) =
        policy::may_sign_in(ctx.policies, &standing, ctx.client, &grant.facts, &[], "")
    {
        return Err(OAuthError::invalid_grant(format!(
            "the grant no longer holds: {denied}"
        )));
    }
    let scope_str = scope.join(" ");
    let scopes: Vec<&str> = scope.iter().map(String::as_str).collect();
    let legal_entity = scopes
        .contains(&"legal_entity")
        .then(|| grant.facts.legal_entity.clone())
        .flatten();
    let minted = mint::access_token(
        &ctx.minter,
        mint::AccessSpec {
            client: ctx.client,
            sub: &acc.id,
            scope: &scope_str,
            grant_id: Some(&grant.id),
            facts: Some(&grant.facts),
            sid: grant.sid.as_deref(),
            roles: scopes.contains(&"roles").then(|| standing.roles_claim()),
            org: scopes.contains(&"org").then(|| standing.org_claim()),
            legal_entity: legal_entity.clone(),
        },
    )
    .map_err(|e| {
        tracing::error!(error = %e, "minting failed");
        OAuthError::server_error()
    })?;
    let id_token = if scopes.contains(&"openid") {
        Some(
            mint::id_token(
                &ctx.minter,
                mint::IdSpec {
                    client: ctx.client,
                    sub: &acc.id,
                    facts: &grant.facts,
                    sid: grant.sid.as_deref(),
                    nonce,
                    user: standing.claims(&scopes, ctx.client),
                    legal_entity,
                    access_token: Some(&minted.token),
                },
            )
            .map_err(|e| {
                tracing::error!(error = %e, "minting failed");
                OAuthError::server_error()
            })?,
        )
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: minted.token,
        token_type: "Bearer",
        expires_in: minted.expires_in,
        refresh_token,
        id_token,
        scope: scope_str,
    })
}
