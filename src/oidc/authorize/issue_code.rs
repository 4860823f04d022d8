//! Authorization codes: 256 random bits, kept in the ephemeral store only under their hash,
//! single-use (atomic take at the token endpoint), short-lived.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::request::AuthorizationRequest;
use super::{Authorization, error_redirect_url};
use crate::audit::{Event, Kind, Outcome};
use crate::authn::AuthFacts;
use crate::authn::session::SsoSession;
use crate::identity::redirect_uri::RedirectUri;
use crate::secrets;
use crate::store::ephemeral::keys;
use crate::web::RequestMeta;

/// What a code stands for, read back by the authorization_code grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub account_id: String,
    pub sid: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub facts: AuthFacts,
}

/// Issues a code and returns the client's redirect URI carrying it (or carrying the error).
pub async fn code_redirect_url(
    az: &Authorization<'_>,
    req: &AuthorizationRequest,
    sso: &SsoSession,
    meta: &RequestMeta,
) -> String {
    let code = secrets::random_token();
    let grant = CodeGrant {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        account_id: sso.account_id.clone(),
        sid: sso.sid.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        facts: sso.facts.clone(),
    };
    let stored = az
        .eph
        .put_json(
            &keys::authorization_code(&code),
            &grant,
            Duration::from_secs(az.settings.code_ttl),
        )
        .await;
    if let Err(e) = stored {
        return error_redirect_url(&az.settings.issuer, req, &e.into());
    }
    az.audit
        .enqueue(
            Event::new(Kind::CodeIssued, Outcome::Success)
                .subject(Some(&sso.account_id))
                .client(&req.client_id)
                .method(&sso.method)
                .from(meta),
        )
        .await;
    let mut p: Vec<(&str, &str)> = vec![("code", &code)];
    if let Some(s) = &req.state {
        p.push(("state", s));
    }
    p.push(("iss", &az.settings.issuer));
    RedirectUri::with_params(&req.redirect_uri, &p)
}
