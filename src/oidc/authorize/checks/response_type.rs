use super::{AuthorizationRequest, Ctx};
use crate::identity::client::GrantType;
use crate::oidc::error::{ErrorCode, OAuthError};

/// Only the authorization code flow (RFC 9700 §2.1.2: no implicit, no hybrid).
pub fn check_response_type(ctx: &Ctx<'_>, _: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    match ctx.params.get("response_type") {
        None => Err(OAuthError::invalid_request("response_type is required")),
        Some("code") if ctx.client.allows_grant(GrantType::AuthorizationCode) => Ok(()),
        Some("code") => Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        )),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedResponseType,
            "only response_type=code is supported",
        )),
    }
}
