use super::{AuthorizationRequest, Ctx, bounded};
use crate::oidc::error::OAuthError;
use crate::oidc::id_token_hint;

pub fn check_login_hint(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    req.login_hint = bounded(ctx.params, "login_hint", 256)?.map(String::from);
    Ok(())
}

pub fn check_ui_locales(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    req.ui_locales = bounded(ctx.params, "ui_locales", 128)?.map(String::from);
    Ok(())
}

/// An id_token_hint must be a token we issued to this client (expired is fine: it is a hint).
pub fn check_id_token_hint(
    ctx: &Ctx<'_>,
    req: &mut AuthorizationRequest,
) -> Result<(), OAuthError> {
    if let Some(hint) = ctx.params.get("id_token_hint") {
        let claims = id_token_hint::verify(ctx.keys, ctx.issuer, hint).map_err(|_| {
            OAuthError::invalid_request("id_token_hint is not a valid ID token of this provider")
        })?;
        if claims.aud != ctx.client.id.as_str() {
            return Err(OAuthError::invalid_request(
                "id_token_hint was issued to another client",
            ));
        }
        req.id_token_hint_sub = Some(claims.sub);
    }
    Ok(())
}
