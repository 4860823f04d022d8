//! The checks of an authorization request, one per file. The pipeline in `authorize/mod.rs`
//! runs them in the order of the spec; each either refines the request or refuses it.

mod acr_values;
mod hints;
mod max_age;
mod nonce;
mod pkce;
mod prompt;
mod request_object;
mod response_mode;
mod response_type;
mod scope;

pub use acr_values::check_acr_values;
pub use hints::{check_id_token_hint, check_login_hint, check_ui_locales};
pub use max_age::check_max_age;
pub use nonce::check_nonce;
pub use pkce::{check_pkce, is_valid_verifier, s256};
pub use prompt::check_prompt;
pub use request_object::check_request_object;
pub use response_mode::check_response_mode;
pub use response_type::check_response_type;
pub use scope::check_scope;

use super::request::AuthorizationRequest;
use crate::identity::client::Client;
use crate::oidc::error::OAuthError;
use crate::tokens::keys::KeyStore;
use crate::web::params::Params;

/// What every check sees.
pub struct Ctx<'a> {
    /// Our keys and issuer name, for the ID tokens presented as hints.
    pub keys: &'a KeyStore,
    pub issuer: &'a str,
    pub client: &'a Client,
    pub params: &'a Params,
}

pub type Check = fn(&Ctx<'_>, &mut AuthorizationRequest) -> Result<(), OAuthError>;

/// Refuses values with control characters or beyond `max` bytes.
pub(crate) fn bounded<'a>(
    params: &'a Params,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, OAuthError> {
    match params.get(name) {
        Some(v) if v.len() > max => Err(OAuthError::invalid_request(format!("{name} is too long"))),
        Some(v) if v.chars().any(|c| c.is_control()) => Err(OAuthError::invalid_request(format!(
            "{name} contains control characters"
        ))),
        other => Ok(other),
    }
}
