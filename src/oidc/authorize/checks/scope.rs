use super::{AuthorizationRequest, Ctx, bounded};
use crate::oidc::error::OAuthError;

/// Every requested scope must be registered for the client; `openid` makes it an OIDC request.
pub fn check_scope(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    let raw = bounded(ctx.params, "scope", 2048)?
        .ok_or_else(|| OAuthError::invalid_scope("scope is required (at least openid)"))?;
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !ctx.client.scopes.contains(s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {s} is not allowed for this client"
            )));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::invalid_scope("the openid scope is required"));
    }
    req.scope = scopes;
    Ok(())
}
