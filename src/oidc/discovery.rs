//! OpenID Connect Discovery 1.0 metadata, built with the openidconnect crate's types so that it
//! is what certified relying parties parse. It advertises exactly what is implemented.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, IssuerUrl, JsonWebKeySetUrl,
    LanguageTag, ProviderMetadata, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

use crate::authn::Acr;
use crate::config::Settings;
use crate::identity::client::OIDC_SCOPES;
use crate::server::App;

/// Metadata beyond Discovery 1.0: RFC 8414, RFC 7662, RFC 7009, RFC 9207, RP-Initiated and
/// Back-Channel Logout.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Extra {
    end_session_endpoint: String,
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    code_challenge_methods_supported: Vec<String>,
    authorization_response_iss_parameter_supported: bool,
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
}
impl AdditionalProviderMetadata for Extra {}

type Metadata = ProviderMetadata<
    Extra,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

const CLAIMS: [&str; 20] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "azp",
    "preferred_username",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
];

pub fn build(s: &Settings) -> anyhow::Result<String> {
    let algs = vec![
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::EdDsa,
    ];
    let auth_methods: Vec<String> = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    .map(String::from)
    .to_vec();
    let mut claims: Vec<CoreClaimName> = CLAIMS
        .iter()
        .map(|c| CoreClaimName::new(c.to_string()))
        .collect();
    for vhods_own in ["roles", "org", "personal_number", "legal_entity"] {
        claims.push(CoreClaimName::new(vhods_own.into()));
    }
    let meta = Metadata::new(
        IssuerUrl::new(s.issuer.clone())?,
        AuthUrl::new(s.endpoint("/authorize"))?,
        JsonWebKeySetUrl::new(s.endpoint("/jwks"))?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        algs.clone(),
        Extra {
            end_session_endpoint: s.endpoint("/end_session"),
            introspection_endpoint: s.endpoint("/introspect"),
            introspection_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint: s.endpoint("/revoke"),
            revocation_endpoint_auth_methods_supported: [auth_methods, vec!["none".into()]]
                .concat(),
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(s.endpoint("/token"))?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(s.endpoint("/userinfo"))?))
    .set_scopes_supported(Some(
        OIDC_SCOPES
            .iter()
            .map(|s| Scope::new(s.to_string()))
            .collect(),
    ))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::ClientCredentials,
    ]))
    .set_acr_values_supported(Some(
        Acr::ALL
            .iter()
            .map(|a| AuthenticationContextClass::new(a.as_str().to_string()))
            .collect(),
    ))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::PrivateKeyJwt,
        CoreClientAuthMethod::None,
    ]))
    .set_token_endpoint_auth_signing_alg_values_supported(Some(algs))
    .set_claims_supported(Some(claims))
    .set_claim_types_supported(Some(vec![CoreClaimType::Normal]))
    .set_ui_locales_supported(Some(
        ["ru", "be", "en"]
            .iter()
            .map(|l| LanguageTag::new(l.to_string()))
            .collect(),
    ))
    .set_claims_parameter_supported(Some(false))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false));
    Ok(serde_json::to_string(&meta)?)
}

pub async fn discovery(State(app): State<Arc<App>>) -> Response {
    let mut res = app.discovery_json.to_string().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}
