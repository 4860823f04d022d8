use super::{AuthorizationRequest, Ctx};
use crate::oidc::authorize::request::Prompt;
use crate::oidc::error::OAuthError;

/// OIDC Core §3.1.2.1 prompt. `consent` is satisfied implicitly: every client is a subsystem of
/// the appeals system registered by its operator, so there is no third-party consent to ask.
/// `select_account` is treated as `login`: the person can sign in as someone else there.
pub fn check_prompt(ctx: &Ctx<'_>, req: &mut AuthorizationRequest) -> Result<(), OAuthError> {
    let Some(raw) = ctx.params.get("prompt") else {
        return Ok(());
    };
    let values: Vec<&str> = raw.split(' ').filter(|s| !s.is_empty()).collect();
    if values.contains(&"none") && values.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    for v in &values {
        match *v {
            "none" => req.prompt = Prompt::None,
            "login" | "select_account" => req.prompt = Prompt::Login,
            "consent" => {}
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported prompt value {other}"
                )));
            }
        }
    }
    Ok(())
}
