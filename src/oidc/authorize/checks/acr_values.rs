use super::{AuthorizationRequest, Ctx, bounded};
use crate::authn::Acr;
use crate::oidc::error::OAuthError;

/// acr_values are voluntary (OIDC Core §3.1.2.1): unknown values are ignored, known ones kept.
pub fn check_acr_values(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    if let Some(raw) = bounded(ctx.params, "acr_values", 256)? {
        req.acr_values = raw.split(' ').filter_map(Acr::parse).collect();
    }
    Ok(())
}
