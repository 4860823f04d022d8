use super::{AuthorizationRequest, Ctx};
use crate::oidc::error::OAuthError;

/// Responses go in the query of the redirect; no fragment or form_post.
pub fn check_response_mode(ctx: &Ctx<'_>, _: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    match ctx.params.get("response_mode") {
        None | Some("query") => Ok(()),
        Some(_) => Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )),
    }
}
