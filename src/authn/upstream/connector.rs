//! The relying-party side of one upstream, on maintained crates: `openidconnect` for an OpenID
//! upstream (discovery, the code flow with PKCE S256, state and nonce, the ID token checked
//! against the upstream's JWKS, refetched once on an unknown key), `oauth2` for a plain OAuth
//! 2.0 upstream (the identity then comes from userinfo). Every call is bounded: the upstream's
//! `timeout_ms` for the whole exchange, a cap on what it may send back, no redirects followed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{self, HeaderValue, header};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthUrl, AuthenticationContextClass, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse,
    IdTokenVerifier, IssuerUrl, JsonWebKeySetUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::Failure;
use crate::config::upstream::{ClientAuth, Upstream, UpstreamKind};
use crate::tokens::keys::SigningKey;

/// The most an upstream may send in one answer (metadata, keys, tokens, userinfo).
const MAX_ANSWER: usize = 256 * 1024;
/// Metadata and keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// When discovery fails, the metadata fetched before serves this long before it is asked again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(60);
/// An unknown key forces a fetch of the JWKS at most this often (a stream of bad tokens is not
/// a stream of fetches).
const JWKS_REFETCH_EVERY: Duration = Duration::from_secs(10);

/// What the metadata says beyond what `openidconnect` models.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extra {
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// RFC 9207: the upstream puts `iss` in its authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
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

/// Where the upstream is: the settings' explicit endpoints over what discovery said.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session: Option<String>,
    pub iss_parameter: bool,
}

struct Cached<T> {
    value: Arc<T>,
    at: Instant,
    /// How long it serves from `at`.
    ttl: Duration,
}

/// The secrets of one login on its way to the upstream and back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What the upstream said about the person, every document verified.
#[derive(Debug, Clone)]
pub struct Asserted {
    pub subject: String,
    pub id_token: Option<Map<String, Value>>,
    pub userinfo: Option<Map<String, Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("the answer is larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("{0}")]
    Build(#[from] http::Error),
}

/// One request, its answer read to at most [`MAX_ANSWER`] bytes.
async fn fetch(http: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, FetchError> {
    let (parts, body) = req.into_parts();
    let mut res = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let headers = res.headers().clone();
    let mut buf = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if buf.len() + chunk.len() > MAX_ANSWER {
            return Err(FetchError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    let mut out = http::Response::builder().status(status).body(buf)?;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Our own failure to reach or understand the upstream.
fn unavailable(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Unavailable(format!("{what}: {e}"))
}

/// One configured upstream and what vhod has learnt of it.
pub struct Connector {
    pub config: Upstream,
    http: reqwest::Client,
    assertion_key: Option<SigningKey>,
    endpoints: Mutex<Option<Cached<Endpoints>>>,
    jwks: Mutex<Option<Cached<CoreJsonWebKeySet>>>,
    /// When an unknown key last forced a fetch of the keys.
    forced_at: std::sync::Mutex<Option<Instant>>,
}

impl Connector {
    pub fn new(config: Upstream) -> anyhow::Result<Connector> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .user_agent(concat!("vhod/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let assertion_key = match &config.client_auth {
            ClientAuth::PrivateKeyJwt(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(
                    SigningKey::from_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                )
            }
            _ => None,
        };
        Ok(Connector {
            config,
            http,
            assertion_key,
            endpoints: Mutex::new(None),
            jwks: Mutex::new(None),
            forced_at: std::sync::Mutex::new(None),
        })
    }

    fn client(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> futures_util::future::BoxFuture<'static, Result<HttpResponse, FetchError>>
    + '_ {
        |req| Box::pin(fetch(self.http.clone(), req))
    }

    /// The endpoints: the settings' own where they name them, discovery for the rest (and for
    /// what only metadata says: `end_session_endpoint`, RFC 9207 support); cached an hour.
    pub async fn endpoints(&self) -> Result<Arc<Endpoints>, Failure> {
        let mut cached = self.endpoints.lock().await;
        if let Some(c) = cached.as_ref()
            && c.at.elapsed() < c.ttl
        {
            return Ok(c.value.clone());
        }
        let fresh = match self.discover().await {
            Ok(e) => Arc::new(e),
            // Yesterday's metadata beats none while the upstream's discovery is down; it is
            // asked again a minute later, not by every login in between.
            Err(e) => match cached.as_mut() {
                Some(c) => {
                    tracing::warn!(upstream = %self.config.name, error = ?e, "discovery failed: using the metadata fetched before");
                    c.at = Instant::now();
                    c.ttl = DISCOVERY_RETRY;
                    return Ok(c.value.clone());
                }
                None => return Err(e),
            },
        };
        *cached = Some(Cached {
            value: fresh.clone(),
            at: Instant::now(),
            ttl: METADATA_TTL,
        });
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Endpoints, Failure> {
        let c = &self.config;
        let explicit = c.authorization_endpoint.is_some()
            && c.token_endpoint.is_some()
            && (c.kind == UpstreamKind::OAuth2 || c.jwks_uri.is_some());
        let meta = match (&c.issuer, c.kind, explicit) {
            (Some(issuer), UpstreamKind::Oidc, _) | (Some(issuer), _, false) => {
                let issuer =
                    IssuerUrl::new(issuer.clone()).map_err(|e| unavailable("issuer", e))?;
                let client = self.client();
                Some(
                    Metadata::discover_async(issuer, &client)
                        .await
                        .map_err(|e| unavailable("discovery", e))?,
                )
            }
            _ => None,
        };
        let from_meta = |f: fn(&Metadata) -> Option<String>| meta.as_ref().and_then(f);
        let authorization = c
            .authorization_endpoint
            .clone()
            .or_else(|| from_meta(|m| Some(m.authorization_endpoint().to_string())))
            .ok_or_else(|| Failure::Unavailable("no authorization endpoint".into()))?;
        let token = c
            .token_endpoint
            .clone()
            .or_else(|| from_meta(|m| m.token_endpoint().map(|t| t.to_string())))
            .ok_or_else(|| Failure::Unavailable("no token endpoint".into()))?;
        if let Some(m) = &meta
            && c.jwks_uri.is_none()
        {
            // Discovery fetched the keys with the metadata: keep them.
            *self.jwks.lock().await = Some(Cached {
                value: Arc::new(m.jwks().clone()),
                at: Instant::now(),
                ttl: METADATA_TTL,
            });
        }
        let endpoints = Endpoints {
            authorization,
            token,
            userinfo: c
                .userinfo_endpoint
                .clone()
                .or_else(|| from_meta(|m| m.userinfo_endpoint().map(|u| u.to_string()))),
            jwks_uri: c
                .jwks_uri
                .clone()
                .or_else(|| from_meta(|m| Some(m.jwks_uri().to_string()))),
            // A link the signed-out page offers: an http(s) URL, nothing else.
            end_session: from_meta(|m| m.additional_metadata().end_session_endpoint.clone())
                .filter(|u| {
                    url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
                }),
            iss_parameter: meta.as_ref().is_some_and(|m| {
                m.additional_metadata()
                    .authorization_response_iss_parameter_supported
                    == Some(true)
            }),
        };
        // The settings checked the URLs they name; what the metadata names must not step down
        // from an https issuer to plain http (the code and our secret cross the token endpoint).
        if let Some(u) = steps_down(c.issuer.as_deref(), &endpoints) {
            return Err(Failure::Unavailable(format!(
                "the metadata names an endpoint that is not https: {u}"
            )));
        }
        Ok(endpoints)
    }

    /// The upstream's keys; fetched again when older than an hour, or when `refetch` (a token
    /// named a key we do not know) and the last fetch is not a moment ago.
    async fn keys(&self, e: &Endpoints, refetch: bool) -> Result<Arc<CoreJsonWebKeySet>, Failure> {
        let mut cached = self.jwks.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c.at.elapsed() < METADATA_TTL;
            // Only fetches an unknown key forced count against the rate: a rotation right
            // after discovery is still picked up at once.
            let mut forced = self.forced_at.lock().unwrap_or_else(|p| p.into_inner());
            let may_force = forced.is_none_or(|at| at.elapsed() >= JWKS_REFETCH_EVERY);
            if (fresh && !refetch) || (refetch && !may_force) {
                return Ok(c.value.clone());
            }
            if refetch {
                *forced = Some(Instant::now());
            }
        }
        let uri = e
            .jwks_uri
            .as_ref()
            .ok_or_else(|| Failure::Unavailable("no jwks_uri".into()))?;
        let url = JsonWebKeySetUrl::new(uri.clone()).map_err(|e| unavailable("jwks_uri", e))?;
        let client = self.client();
        let set = CoreJsonWebKeySet::fetch_async(&url, &client)
            .await
            .map_err(|e| unavailable("the upstream's keys", e))?;
        let set = Arc::new(set);
        *cached = Some(Cached {
            value: set.clone(),
            at: Instant::now(),
            ttl: METADATA_TTL,
        });
        Ok(set)
    }

    /// The URL that sends the browser to the upstream, and the secrets the callback needs.
    /// `acr_values` are the upstream's own values to ask for (empty: none).
    pub async fn begin(
        &self,
        redirect_uri: &str,
        acr_values: &[String],
        fresh_within: Option<i64>,
    ) -> Result<(String, FlowSecrets), Failure> {
        let e = self.endpoints().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| unavailable("redirect URI", e))?;
        let auth = AuthUrl::new(e.authorization.clone())
            .map_err(|e| unavailable("authorization endpoint", e))?;
        let scopes = self.config.scopes.iter().cloned().map(Scope::new);
        let (url, state, nonce) = match self.config.kind {
            UpstreamKind::Oidc => {
                let client = CoreClient::new(
                    ClientId::new(self.config.client_id.clone()),
                    IssuerUrl::new(self.config.link_issuer().to_string())
                        .map_err(|e| unavailable("issuer", e))?,
                    CoreJsonWebKeySet::new(Vec::new()),
                )
                .set_auth_uri(auth)
                .set_redirect_uri(redirect);
                let mut req = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        CsrfToken::new_random,
                        Nonce::new_random,
                    )
                    .set_pkce_challenge(challenge)
                    .add_scopes(scopes.filter(|s| s.as_str() != "openid"));
                for v in acr_values {
                    req = req.add_auth_context_value(AuthenticationContextClass::new(v.clone()));
                }
                for (k, v) in &self.config.extra_params {
                    req = req.add_extra_param(k.clone(), v.clone());
                }
                if let Some(within) = fresh_within {
                    req = req.set_max_age(Duration::from_secs(within.max(0) as u64));
                    if within == 0 {
                        req = req.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
                    }
                }
                let (url, state, nonce) = req.url();
                (url, state.secret().clone(), nonce.secret().clone())
            }
            UpstreamKind::OAuth2 => {
                let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(
                    self.config.client_id.clone(),
                ))
                .set_auth_uri(auth)
                .set_redirect_uri(redirect);
                let mut req = client
                    .authorize_url(CsrfToken::new_random)
                    .set_pkce_challenge(challenge)
                    .add_scopes(scopes);
                for (k, v) in &self.config.extra_params {
                    req = req.add_extra_param(k.clone(), v.clone());
                }
                // Not standard in OAuth 2.0, but what its servers that re-authenticate read.
                if fresh_within == Some(0) {
                    req = req.add_extra_param("prompt", "login");
                }
                let (url, state) = req.url();
                (url, state.secret().clone(), String::new())
            }
        };
        Ok((
            url.to_string(),
            FlowSecrets {
                state,
                nonce,
                pkce_verifier: verifier.secret().clone(),
            },
        ))
    }

    /// RFC 9207: an `iss` in the authorization response must be the upstream's; one that the
    /// upstream promised and left out is as bad.
    pub async fn check_iss_parameter(&self, iss: Option<&str>) -> Result<(), Failure> {
        let e = self.endpoints().await?;
        let expected = self.config.link_issuer();
        match iss {
            Some(iss) if iss != expected => Err(Failure::IssuerMismatch),
            None if e.iss_parameter => Err(Failure::IssuerMismatch),
            _ => Ok(()),
        }
    }

    /// A client assertion for `private_key_jwt` (RFC 7523 §2.2), for the token endpoint.
    fn assertion(&self, token_endpoint: &str, now: i64) -> Option<String> {
        let key = self.assertion_key.as_ref()?;
        let id = &self.config.client_id;
        let claims = serde_json::json!({
            "iss": id, "sub": id, "aud": token_endpoint,
            "jti": crate::secrets::random_id(), "iat": now, "exp": now + 60,
        });
        crate::tokens::jws::sign(key, "JWT", &claims)
    }

    /// Redeems the code and verifies what comes back: the ID token (OpenID), userinfo (OAuth
    /// 2.0 always; OpenID when `want_userinfo` and the upstream has one), at `now`.
    pub async fn redeem(
        &self,
        redirect_uri: &str,
        code: &str,
        secrets: &FlowSecrets,
        want_userinfo: impl Fn(&Map<String, Value>) -> bool,
        now: i64,
    ) -> Result<Asserted, Failure> {
        let e = self.endpoints().await?;
        let (access_token, id_token) = self.exchange(&e, redirect_uri, code, secrets, now).await?;
        match self.config.kind {
            UpstreamKind::Oidc => {
                let raw = id_token.ok_or(Failure::NoIdToken)?;
                let claims = self.verify_id_token(&e, &raw, &secrets.nonce, now).await?;
                // OpenID Connect Core §2: at most 255 ASCII characters.
                let subject = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty() && s.len() <= 255)
                    .map(str::to_string)
                    .ok_or_else(|| Failure::InvalidIdToken("no usable sub".into()))?;
                let userinfo = match &e.userinfo {
                    Some(u) if want_userinfo(&claims) => {
                        let info = self.userinfo(u, &access_token).await?;
                        // OpenID Connect Core §5.3.2: another sub is another person's answer.
                        if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                            return Err(Failure::UserinfoSubject);
                        }
                        Some(info)
                    }
                    _ => None,
                };
                Ok(Asserted {
                    subject,
                    id_token: Some(claims),
                    userinfo,
                })
            }
            UpstreamKind::OAuth2 => {
                let u = e
                    .userinfo
                    .as_ref()
                    .ok_or_else(|| Failure::Unavailable("no userinfo endpoint".into()))?;
                let info = self.userinfo(u, &access_token).await?;
                let claim = super::claims::subject_claim(&self.config);
                let subject = info
                    .get(claim)
                    .and_then(|v| match v {
                        Value::String(s) if !s.is_empty() && s.len() <= 255 => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .ok_or_else(|| Failure::MissingClaims(vec![claim.to_string()]))?;
                Ok(Asserted {
                    subject,
                    id_token: None,
                    userinfo: Some(info),
                })
            }
        }
    }

    /// The token request; the access token and the raw ID token, if any.
    async fn exchange(
        &self,
        e: &Endpoints,
        redirect_uri: &str,
        code: &str,
        secrets: &FlowSecrets,
        now: i64,
    ) -> Result<(String, Option<String>), Failure> {
        let token_url =
            TokenUrl::new(e.token.clone()).map_err(|e| unavailable("token endpoint", e))?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| unavailable("redirect URI", e))?;
        let id = ClientId::new(self.config.client_id.clone());
        let (auth_type, secret) = match &self.config.client_auth {
            ClientAuth::SecretBasic(s) => (AuthType::BasicAuth, Some(s.0.clone())),
            ClientAuth::SecretPost(s) => (AuthType::RequestBody, Some(s.0.clone())),
            ClientAuth::PrivateKeyJwt(_) => (AuthType::RequestBody, None),
        };
        let assertion = match &self.config.client_auth {
            ClientAuth::PrivateKeyJwt(_) => Some(
                self.assertion(&e.token, now)
                    .ok_or_else(|| Failure::Unavailable("signing the client assertion".into()))?,
            ),
            _ => None,
        };
        let verifier = PkceCodeVerifier::new(secrets.pkce_verifier.clone());
        let code = AuthorizationCode::new(code.to_string());
        let assertion = assertion.as_deref();
        match self.config.kind {
            UpstreamKind::Oidc => {
                let issuer = IssuerUrl::new(self.config.link_issuer().to_string())
                    .map_err(|e| unavailable("issuer", e))?;
                let mut c = CoreClient::new(id, issuer, CoreJsonWebKeySet::new(Vec::new()))
                    .set_token_uri(token_url)
                    .set_redirect_uri(redirect)
                    .set_auth_type(auth_type);
                if let Some(s) = secret {
                    c = c.set_client_secret(ClientSecret::new(s));
                }
                let req = c.exchange_code(code).set_pkce_verifier(verifier);
                let res = self.send(req, assertion).await?;
                Ok((
                    res.access_token().secret().clone(),
                    res.id_token().map(|t| t.to_string()),
                ))
            }
            UpstreamKind::OAuth2 => {
                let mut c = oauth2::basic::BasicClient::new(id)
                    .set_token_uri(token_url)
                    .set_redirect_uri(redirect)
                    .set_auth_type(auth_type);
                if let Some(s) = secret {
                    c = c.set_client_secret(ClientSecret::new(s));
                }
                let req = c.exchange_code(code).set_pkce_verifier(verifier);
                let res = self.send(req, assertion).await?;
                Ok((res.access_token().secret().clone(), None))
            }
        }
    }

    /// A code's token request, with our client assertion when we authenticate with a key.
    async fn send<TE, TR>(
        &self,
        mut req: oauth2::CodeTokenRequest<'_, TE, TR>,
        assertion: Option<&str>,
    ) -> Result<TR, Failure>
    where
        TE: oauth2::ErrorResponse + 'static,
        TR: oauth2::TokenResponse,
    {
        if let Some(a) = assertion {
            req = req
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", a.to_string());
        }
        let client = self.client();
        req.request_async(&client).await.map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => Failure::TokenRefused(format!("{r}")),
            RequestTokenError::Request(e) => unavailable("token endpoint", e),
            RequestTokenError::Parse(e, _) => unavailable("token endpoint answer", e),
            RequestTokenError::Other(e) => unavailable("token endpoint", e),
        })
    }

    /// The ID token checked by `openidconnect` (signature by the upstream's keys, issuer,
    /// audience, expiry, nonce), its claims as JSON. An unknown key fetches the keys once more.
    async fn verify_id_token(
        &self,
        e: &Endpoints,
        raw: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Map<String, Value>, Failure> {
        let token: openidconnect::core::CoreIdToken = raw
            .parse()
            .map_err(|e| Failure::InvalidIdToken(format!("{e}")))?;
        let nonce = Nonce::new(nonce.to_string());
        let issuer = IssuerUrl::new(self.config.link_issuer().to_string())
            .map_err(|e| unavailable("issuer", e))?;
        let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
        let verify = |keys: &CoreJsonWebKeySet| {
            let verifier = IdTokenVerifier::new_public_client(
                ClientId::new(self.config.client_id.clone()),
                issuer.clone(),
                keys.clone(),
            )
            .set_allowed_algs(ASYMMETRIC)
            .set_time_fn(move || at);
            token.claims(&verifier, &nonce).map(|_| ())
        };
        let keys = self.keys(e, false).await?;
        let checked = match verify(&keys) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let keys = self.keys(e, true).await?;
                verify(&keys)
            }
            other => other,
        };
        checked.map_err(|e| match e {
            ClaimsVerificationError::Expired(_) => Failure::Expired,
            ClaimsVerificationError::InvalidAudience(_) => Failure::WrongAudience,
            ClaimsVerificationError::InvalidIssuer(_) => Failure::WrongIssuer,
            ClaimsVerificationError::InvalidNonce(_) => Failure::NonceMismatch,
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => Failure::UnknownKey,
            ClaimsVerificationError::SignatureVerification(e) => {
                Failure::BadSignature(format!("{e}"))
            }
            other => Failure::InvalidIdToken(format!("{other}")),
        })?;
        // Verified above: its payload is the upstream's word.
        let payload = raw.split('.').nth(1).unwrap_or_default();
        crate::secrets::b64url_decode(payload)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| Failure::InvalidIdToken("the payload is not a JSON object".into()))
    }

    /// Userinfo with the access token: a JSON object (a signed userinfo is not asked for).
    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Map<String, Value>, Failure> {
        let mut req = http::Request::builder()
            .method(http::Method::GET)
            .uri(url)
            .header(header::ACCEPT, HeaderValue::from_static("application/json"));
        let bearer = HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| Failure::TokenRefused("the access token is not a header value".into()))?;
        req = req.header(header::AUTHORIZATION, bearer);
        let req = req
            .body(Vec::new())
            .map_err(|e| unavailable("userinfo", e))?;
        let res = fetch(self.http.clone(), req)
            .await
            .map_err(|e| unavailable("userinfo", e))?;
        if !res.status().is_success() {
            return Err(Failure::Userinfo(format!("status {}", res.status())));
        }
        serde_json::from_slice(res.body())
            .map_err(|e| Failure::Userinfo(format!("not a JSON object: {e}")))
    }

    /// A compact JWS the upstream signed (a back-channel logout token), checked by
    /// `openidconnect`'s keys with an asymmetric algorithm; its payload. An unknown key fetches
    /// the keys once more, as for an ID token.
    pub async fn verify_signed(&self, token: &str) -> Result<Map<String, Value>, Failure> {
        use openidconnect::JsonWebKey;
        let bad = |why: &str| Failure::InvalidIdToken(why.to_string());
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not a compact JWS"));
        };
        let header: Map<String, Value> = crate::secrets::b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the header is not JSON"))?;
        let alg: CoreJwsSigningAlgorithm = header
            .get("alg")
            .cloned()
            .and_then(|a| serde_json::from_value(a).ok())
            .filter(|a| ASYMMETRIC.contains(a))
            .ok_or_else(|| Failure::BadSignature("not an asymmetric algorithm".into()))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let signature = crate::secrets::b64url_decode(sig)
            .ok_or_else(|| bad("the signature is not base64url"))?;
        let message = format!("{h}.{p}");
        let e = self.endpoints().await?;
        let find = |keys: &CoreJsonWebKeySet| {
            keys.keys()
                .iter()
                .filter(|k| kid.is_none_or(|kid| k.key_id().is_some_and(|id| id.as_str() == kid)))
                .any(|k| {
                    k.verify_signature(&alg, message.as_bytes(), &signature)
                        .is_ok()
                })
        };
        let known = |keys: &CoreJsonWebKeySet| {
            kid.is_none_or(|kid| {
                keys.keys()
                    .iter()
                    .any(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
            })
        };
        let mut keys = self.keys(&e, false).await?;
        if !known(&keys) {
            keys = self.keys(&e, true).await?;
            if !known(&keys) {
                return Err(Failure::UnknownKey);
            }
        }
        if !find(&keys) {
            return Err(Failure::BadSignature(
                "no key of the upstream verifies it".into(),
            ));
        }
        crate::secrets::b64url_decode(p)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the payload is not a JSON object"))
    }

    /// Where the upstream ends its own session, when its metadata says.
    pub async fn end_session_endpoint(&self) -> Option<String> {
        self.endpoints().await.ok()?.end_session.clone()
    }
}

/// An endpoint that is plain http under an https issuer.
fn steps_down<'a>(issuer: Option<&str>, e: &'a Endpoints) -> Option<&'a str> {
    if !issuer.is_some_and(|i| i.starts_with("https:")) {
        return None;
    }
    [
        Some(&e.authorization),
        Some(&e.token),
        e.userinfo.as_ref(),
        e.jwks_uri.as_ref(),
        e.end_session.as_ref(),
    ]
    .into_iter()
    .flatten()
    .find(|u| !u.starts_with("https:"))
    .map(String::as_str)
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The ID token algorithms accepted: public-key ones only (a token MACed with our client
/// secret would prove only that someone knows the secret).
const ASYMMETRIC: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_issuer_s_metadata_may_not_step_down_to_http() {
        let e = |token: &str| Endpoints {
            authorization: "https://id.example.by/authorize".into(),
            token: token.into(),
            userinfo: Some("https://id.example.by/userinfo".into()),
            jwks_uri: None,
            end_session: None,
            iss_parameter: false,
        };
        let secure = e("https://id.example.by/token");
        assert_eq!(steps_down(Some("https://id.example.by"), &secure), None);
        let plain = e("http://id.example.by/token");
        assert_eq!(
            steps_down(Some("https://id.example.by"), &plain),
            Some("http://id.example.by/token")
        );
        // A plain-http issuer was allowed by the settings (loopback, development).
        assert_eq!(steps_down(Some("http://127.0.0.1:9"), &plain), None);
    }
}
