//! Claim sets of the tokens vhod issues.

use serde::{Deserialize, Serialize};

/// OpenID Connect Core §2 ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The organisation a representative signed in for: {"unp", "name"} (scope `legal_entity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<crate::authn::LegalEntity>,
    /// Claims released by the granted scopes (profile, email, phone, roles, org,
    /// personal_number).
    #[serde(flatten)]
    pub user: serde_json::Map<String, serde_json::Value>,
}

/// RFC 9068 JWT access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Roles of the person (RFC 9068 §2.2.3.1 `roles`), so relying subsystems decide offline
    /// (scope `roles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<serde_json::Value>,
    /// The person's organisations, organisation roles and delegations (scope `org`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<crate::authn::LegalEntity>,
}

impl AccessTokenClaims {
    /// The grant this token came from, when it came from a person's authorization: the part of
    /// the jti before the dot. Revoking the grant revokes its access tokens at introspection.
    pub fn grant_id(&self) -> Option<&str> {
        self.jti.split_once('.').map(|(g, _)| g)
    }

    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// OpenID Connect Back-Channel Logout 1.0 §2.4 logout token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: serde_json::Value,
}

pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
