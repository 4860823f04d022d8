//! refresh_token (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

use super::records::{self, RefreshOutcome};
use super::{Grant, GrantCtx, TokenResponse, narrow_scope, person_tokens};
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::identity::client::GrantType;
use crate::oidc::error::OAuthError;

pub struct RefreshToken;

impl Grant for RefreshToken {
    const TYPE: GrantType = GrantType::RefreshToken;

    async fn handle(ctx: &GrantCtx<'_>) -> Result<TokenResponse, OAuthError> {
        let token = ctx.params.require("refresh_token")?;
        if token.len() > 128 {
            return Err(OAuthError::invalid_grant("the refresh token is invalid"));
        }
        match records::use_refresh(ctx.db, token, ctx.client.id.as_str()).await? {
            RefreshOutcome::Rotated { grant, new_token } => {
                let scope = narrow_scope(ctx.params.get("scope"), &grant.scope)?
                    .unwrap_or_else(|| grant.scope.clone());
                let response = person_tokens(ctx, &grant, &scope, None, Some(new_token)).await?;
                ctx.audit
                    .enqueue(
                        Event::new(Kind::TokenIssued, Outcome::Success)
                            .reason(Reason::RefreshToken)
                            .subject(Some(&grant.account_id))
                            .client(ctx.client.id.as_str())
                            .from(ctx.meta)
                            .details(
                                serde_json::json!({"grant": grant.id, "sid": grant.sid, "scope": response.scope}),
                            ),
                    )
                    .await;
                Ok(response)
            }
            RefreshOutcome::Reused {
                grant_id,
                account_id,
            } => {
                ctx.audit
                    .write(
                        Event::new(Kind::RefreshReuse, Outcome::Failure)
                            .reason(Reason::RefreshTokenReused)
                            .subject(Some(account_id))
                            .client(ctx.client.id.as_str())
                            .from(ctx.meta)
                            .details(serde_json::json!({"grant": grant_id})),
                    )
                    .await?;
                Err(OAuthError::invalid_grant(
                    "the refresh token was already used; the grant is revoked",
                ))
            }
            RefreshOutcome::Invalid => Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            )),
        }
    }
}
