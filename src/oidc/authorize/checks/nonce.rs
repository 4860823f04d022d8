use super::{AuthorizationRequest, Ctx, bounded};
use crate::oidc::error::OAuthError;

/// The nonce is echoed in the ID token; bounded so it cannot bloat tokens.
pub fn check_nonce(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    req.nonce = bounded(ctx.params, "nonce", 512)?.map(String::from);
    Ok(())
}
