//! client_credentials (RFC 6749 §4.4): service-to-service. No person, so no ID token and no
//! refresh token; and no SQL on the request path (the client is in memory, the audit is batched).

use super::{Grant, GrantCtx, TokenResponse, narrow_scope};
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::identity::client::{GrantType, OIDC_SCOPES};
use crate::oidc::error::OAuthError;
use crate::tokens::mint;

pub struct ClientCredentials;

impl Grant for ClientCredentials {
    const TYPE: GrantType = GrantType::ClientCredentials;

    async fn handle(ctx: &GrantCtx<'_>) -> Result<TokenResponse, OAuthError> {
        // Person-related scopes mean nothing without a person.
        let api_scopes: Vec<String> = ctx
            .client
            .scopes
            .iter()
            .filter(|s| !OIDC_SCOPES.contains(&s.as_str()))
            .cloned()
            .collect();
        let scope = narrow_scope(ctx.params.get("scope"), &api_scopes)?
            .unwrap_or(api_scopes)
            .join(" ");
        let minted = mint::access_token(
            &ctx.minter,
            mint::AccessSpec {
                client: ctx.client,
                sub: ctx.client.id.as_str(),
                scope: &scope,
                grant_id: None,
                facts: None,
                sid: None,
                roles: None,
                org: None,
                legal_entity: None,
            },
        )
        .map_err(|e| {
            tracing::error!(error = %e, "minting failed");
            OAuthError::server_error()
        })?;
        ctx.audit
            .enqueue(
                Event::new(Kind::TokenIssued, Outcome::Success)
                    .reason(Reason::ClientCredentials)
                    .subject(Some(ctx.client.id.as_str()))
                    .client(ctx.client.id.as_str())
                    .from(ctx.meta)
                    .details(serde_json::json!({"jti": minted.jti, "scope": scope})),
            )
            .await;
        Ok(TokenResponse {
            access_token: minted.token,
            token_type: "Bearer",
            expires_in: minted.expires_in,
            refresh_token: None,
            id_token: None,
            scope,
        })
    }
}
