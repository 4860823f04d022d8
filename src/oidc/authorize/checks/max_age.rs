use super::{AuthorizationRequest, Ctx};
use crate::oidc::error::OAuthError;

/// max_age: seconds since the last active authentication; 0 behaves like prompt=login.
pub fn check_max_age(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    if let Some(v) = ctx.params.get("max_age") {
        let n: i64 = v
            .parse()
            .ok()
            .filter(|n| *n >= 0 && *n <= 10 * 365 * 86400)
            .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?;
        req.max_age = Some(n);
    }
    Ok(())
}
