//! authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3).

use std::time::Duration;

use super::records::{self, GrantRecord};
use super::{Grant, GrantCtx, TokenResponse, person_tokens};
use crate::audit::{Event, Kind, Outcome, Reason};
use crate::identity::client::GrantType;
use crate::oidc::authorize::checks::{is_valid_verifier, s256};
use crate::oidc::authorize::issue_code::CodeGrant;
use crate::oidc::error::OAuthError;
use crate::secrets;
use crate::store::ephemeral::keys;

pub struct AuthorizationCode;

/// How long a redeemed code is remembered, so that a replay can be recognised and punished.
const USED_CODE_MEMORY: Duration = Duration::from_secs(3600);

fn check_pkce(grant: &CodeGrant, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            if !is_valid_verifier(v) || !secrets::ct_eq(s256(v).as_bytes(), challenge.as_bytes()) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Ok(())
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}

impl Grant for AuthorizationCode {
    const TYPE: GrantType = GrantType::AuthorizationCode;

    async fn handle(ctx: &GrantCtx<'_>) -> Result<TokenResponse, OAuthError> {
        let code = ctx.params.require("code")?;
        let redirect_uri = ctx.params.require("redirect_uri")?;
        if code.len() > 128 {
            return Err(OAuthError::invalid_grant("the code is invalid or expired"));
        }
        let Some(grant) = ctx
            .eph
            .take_json::<CodeGrant>(&keys::authorization_code(code))
            .await?
        else {
            return Err(replayed(ctx, code).await);
        };
        let grant_id = secrets::random_id();
        ctx.eph
            .put(
                &keys::redeemed_code(code),
                grant_id.as_bytes(),
                USED_CODE_MEMORY,
            )
            .await?;

        // The code is consumed whatever happens next: a failed redemption cannot be retried.
        if grant.client_id != ctx.client.id.as_str() {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if grant.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        check_pkce(&grant, ctx.params.get("code_verifier"))?;

        let record = GrantRecord {
            id: grant_id,
            account_id: grant.account_id.clone(),
            client_id: grant.client_id.clone(),
            sid: Some(grant.sid.clone()),
            scope: grant.scope.clone(),
            facts: grant.facts.clone(),
            expires_at: ctx.clock.now() + ctx.settings.refresh_token_ttl as i64,
        };
        let with_refresh = ctx.client.allows_grant(GrantType::RefreshToken);
        let refresh = records::create(ctx.db, &record, with_refresh).await?;
        let response =
            person_tokens(ctx, &record, &grant.scope, grant.nonce.as_deref(), refresh).await?;
        ctx.audit
            .enqueue(
                Event::new(Kind::TokenIssued, Outcome::Success)
                    .reason(Reason::AuthorizationCode)
                    .subject(Some(&record.account_id))
                    .client(ctx.client.id.as_str())
                    .from(ctx.meta)
                    .details(serde_json::json!({"grant": record.id, "sid": record.sid, "scope": response.scope})),
            )
            .await;
        Ok(response)
    }
}

/// A code that is not (or no longer) in the store. If it was redeemed before, revoke what it
/// produced (RFC 6749 §4.1.2: "SHOULD revoke all tokens previously issued based on that code").
async fn replayed(ctx: &GrantCtx<'_>, code: &str) -> OAuthError {
    let generic = OAuthError::invalid_grant("the code is invalid or expired");
    let marker = match ctx.eph.get(&keys::redeemed_code(code)).await {
        Ok(Some(m)) => m,
        Ok(None) => return generic,
        Err(e) => return e.into(),
    };
    let grant_id = String::from_utf8_lossy(&marker).into_owned();
    match ctx.db.grants().revoke(&grant_id, "code_reuse").await {
        Ok(_) => {}
        Err(e) => return e.into(),
    }
    let event = Event::new(Kind::CodeReuse, Outcome::Failure)
        .reason(Reason::AuthorizationCodeReused)
        .client(ctx.client.id.as_str())
        .from(ctx.meta)
        .details(serde_json::json!({"grant": grant_id}));
    if let Err(e) = ctx.audit.write(event).await {
        return e.into();
    }
    OAuthError::invalid_grant("the code was already used; tokens issued from it are revoked")
}
