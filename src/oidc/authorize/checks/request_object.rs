use super::{AuthorizationRequest, Ctx};
use crate::oidc::error::{ErrorCode, OAuthError};

/// Request objects (OIDC Core §6) are not supported and not advertised.
pub fn check_request_object(ctx: &Ctx<'_>, _: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    if ctx.params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if ctx.params.get("request_uri").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    Ok(())
}
