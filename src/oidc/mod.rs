//! The protocol: OpenID Connect Core, Discovery and RP-Initiated Logout; OAuth 2.0 with the
//! RFC 9700 security practice. One file per endpoint; `authorize` and `grants` are folders of
//! small parts.

pub mod authorize;
pub mod backchannel_logout;
pub mod bearer;
pub mod client_auth;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod grants;
pub mod id_token_hint;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;
pub mod userinfo;
