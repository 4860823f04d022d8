//! A mock upstream identity provider for the federated-login tests: vhod is its relying party.
//!
//! By default it is a correct OpenID Connect provider (discovery, the code flow with PKCE S256,
//! ES256 ID tokens, userinfo, a JWK Set, RFC 9207 `iss` on the redirect). Every field of
//! [`Behaviour`] turns one thing wrong, so a test can produce the failures a correct provider
//! never produces and check that vhod refuses them. It is a test double: it records what it was
//! sent (authorization requests, token requests, fetch counts) so tests can also check what vhod
//! asked for.
//!
//! The server runs on 127.0.0.1 on a port of its own, as a task of the test's runtime, until the
//! [`MockUpstream`] is dropped. Its state sits behind a std mutex that no handler holds across an
//! await.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Map, Value, json};

/// The client id the mock knows by default (vhod's client id at the upstream).
pub const UPSTREAM_CLIENT_ID: &str = "vhod";
/// The client secret the mock expects by default.
pub const UPSTREAM_SECRET: &str = "upstream-secret";
/// The default subject of the ID token and of userinfo.
pub const UPSTREAM_SUB: &str = "up-sub-1";

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The `iss` authorization response parameter (RFC 9207) on the redirect back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssParam {
    /// The mock's issuer (what a provider advertising the parameter sends).
    Correct,
    /// No `iss` parameter (a mix-up attacker's redirect, or a provider that lies in discovery).
    Absent,
    /// This value instead of the issuer.
    Wrong(String),
}

/// How the mock answers. [`Default`] is a correct provider; each field says what it breaks.
///
/// In `id_token_claims` and `userinfo_claims` a JSON `null` removes the claim instead of
/// setting it, so a test can also take away `nonce`, `sub`, `exp`….
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// `sub` of the ID token and userinfo (fixed when the access token is issued).
    pub subject: String,
    /// The only client id accepted at /authorize and /token.
    pub client_id: String,
    /// The secret of client_secret_basic and client_secret_post.
    pub client_secret: String,

    /// Discovery answers this status (and no metadata) instead.
    pub discovery_status: Option<u16>,
    /// Discovery names this issuer instead of its own (a mix-up, or a misconfigured proxy).
    pub metadata_issuer: Option<String>,
    /// `authorization_response_iss_parameter_supported` in discovery (true).
    pub advertise_iss_param: bool,
    /// Milliseconds discovery waits before it answers (0).
    pub discovery_delay_ms: u64,

    /// /authorize redirects back with `error=<this>` (and error_description, state) instead of
    /// a code.
    pub authorize_error: Option<String>,
    /// `state` on the redirect back is this instead of the request's.
    pub state_override: Option<String>,
    /// The `iss` parameter on the redirect back (the correct issuer).
    pub iss_param: IssParam,

    /// /token answers this status with `{"error":"server_error"}` instead (the code is not
    /// consumed).
    pub token_status: Option<u16>,
    /// Milliseconds /token waits before it answers (0), for timeout tests.
    pub token_delay_ms: u64,
    /// /token answers without an `id_token` (one is sent only when `openid` was asked anyway).
    pub omit_id_token: bool,
    /// Claims merged into the ID token last: they may replace any other (null removes).
    pub id_token_claims: Map<String, Value>,
    /// The ID token's `iss` instead of the issuer.
    pub id_token_iss: Option<String>,
    /// The ID token's `aud` instead of the client id (a string or an array).
    pub id_token_aud: Option<Value>,
    /// The ID token's `exp` is `iat + exp_offset` (300); negative gives an expired token.
    pub exp_offset: i64,
    /// The ID token's `nonce` instead of the one the authorization request carried.
    pub nonce_override: Option<String>,
    /// The ID token header's `kid` instead of the published one (a key not in the JWK Set).
    pub kid_override: Option<String>,
    /// One bit of the ID token's signature is flipped.
    pub bad_signature: bool,
    /// The ID token is signed by a key that never is in the JWK Set, under the published kid.
    pub sign_with_unpublished_key: bool,

    /// Claims added to userinfo's `{sub}` (null removes, `sub` too).
    pub userinfo_claims: Map<String, Value>,
    /// Userinfo's `sub` instead of the token's subject (OpenID Connect Core §5.3.2 says the
    /// relying party must then refuse the answer).
    pub userinfo_sub: Option<String>,
    /// Milliseconds userinfo waits before it answers (0).
    pub userinfo_delay_ms: u64,
    /// Userinfo answers this status instead.
    pub userinfo_status: Option<u16>,

    /// The JWK Set answers this status instead.
    pub jwks_status: Option<u16>,
    /// Milliseconds the JWK Set waits before it answers (0).
    pub jwks_delay_ms: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            subject: UPSTREAM_SUB.into(),
            client_id: UPSTREAM_CLIENT_ID.into(),
            client_secret: UPSTREAM_SECRET.into(),
            discovery_status: None,
            metadata_issuer: None,
            advertise_iss_param: true,
            discovery_delay_ms: 0,
            authorize_error: None,
            state_override: None,
            iss_param: IssParam::Correct,
            token_status: None,
            token_delay_ms: 0,
            omit_id_token: false,
            id_token_claims: Map::new(),
            id_token_iss: None,
            id_token_aud: None,
            exp_offset: 300,
            nonce_override: None,
            kid_override: None,
            bad_signature: false,
            sign_with_unpublished_key: false,
            userinfo_claims: Map::new(),
            userinfo_sub: None,
            userinfo_delay_ms: 0,
            userinfo_status: None,
            jwks_status: None,
            jwks_delay_ms: 0,
        }
    }
}

/// A request the token endpoint received: its form and its Authorization header.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub form: BTreeMap<String, String>,
    pub authorization: Option<String>,
}

impl Recorded {
    /// client_secret_basic's (client id, secret), decoded as RFC 6749 §2.3.1 says (Base64, then
    /// form-urlencoding of each); None without a Basic Authorization header.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        basic_credentials(self.authorization.as_deref()?)
    }

    /// The claims of private_key_jwt's client assertion (its signature is not checked here:
    /// a test that cares verifies it with vhod's public key).
    pub fn assertion_claims(&self) -> Option<Value> {
        jwt_part(self.form.get("client_assertion")?, 1)
    }

    /// The header of private_key_jwt's client assertion.
    pub fn assertion_header(&self) -> Option<Value> {
        jwt_part(self.form.get("client_assertion")?, 0)
    }
}

/// A running mock upstream; the server stops when this is dropped.
pub struct MockUpstream {
    issuer: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// Binds 127.0.0.1 on a port the system picks and serves on a task of the current runtime.
    pub async fn start() -> MockUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the mock upstream");
        let port = listener.local_addr().expect("the mock's address").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let shared = Arc::new(Shared::new(issuer.clone()));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", axum::routing::post(token))
            .route("/userinfo", get(userinfo).post(userinfo))
            .route("/jwks", get(jwks))
            .route("/logout", get(|| async { "logged out" }))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockUpstream {
            issuer,
            shared,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// The issuer followed by `path` (`/token`…).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// Changes the behaviour from the next request on.
    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.shared.lock().behaviour);
    }

    /// Back to a correct provider (the records and keys stay).
    pub fn reset(&self) {
        self.shared.lock().behaviour = Behaviour::default();
    }

    /// The query of every request /authorize received, in order (a repeated parameter keeps
    /// its last value).
    pub fn authorization_requests(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.lock().authorization_requests.clone()
    }

    /// Every request /token received, in order.
    pub fn token_requests(&self) -> Vec<Recorded> {
        self.shared.lock().token_requests.clone()
    }

    /// The Authorization header of every userinfo request, in order.
    pub fn userinfo_requests(&self) -> Vec<Option<String>> {
        self.shared.lock().userinfo_requests.clone()
    }

    /// How many times the JWK Set was fetched (openidconnect's discovery fetches it too).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// The kid of the signing key published now.
    pub fn kid(&self) -> String {
        self.shared.lock().current.kid.clone()
    }

    /// A new ES256 key with a new kid signs from now on and is the only one in the JWK Set.
    pub fn rotate_key(&self) {
        let key = SigningKey::generate(&self.shared.rng);
        self.shared.lock().current = key;
    }

    /// An OpenID Back-Channel Logout 1.0 logout token (§2.4) for `sub` (and `sid`) addressed
    /// to `aud`, signed with the current key, valid for two minutes.
    pub fn logout_token(&self, sub: &str, sid: Option<&str>, aud: &str) -> String {
        let now = now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": aud,
            "iat": now,
            "exp": now + 120,
            "jti": random_token(&self.shared.rng),
            "sub": sub,
            "events": { BACKCHANNEL_EVENT: {} },
        });
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        self.sign("logout+jwt", &claims)
    }

    /// Any claims as an ES256 JWS under the current key and kid with this `typ`: for tokens
    /// of a shape the other methods do not make (a logout token with a nonce…).
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let state = self.shared.lock();
        let header = json!({"alg": "ES256", "kid": state.current.kid, "typ": typ});
        jws(
            &self.shared.rng,
            &state.current.pair,
            &header,
            claims,
            false,
        )
    }
}

/// An ES256 key and its kid.
struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
}

impl SigningKey {
    fn generate(rng: &SystemRandom) -> SigningKey {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
            .expect("generating a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng)
            .expect("reading the generated key");
        SigningKey {
            pair,
            kid: format!("up-{}", random_token(rng)),
        }
    }

    /// The public key as a JWK: x and y of the uncompressed point 0x04 || x || y.
    fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

/// What an issued code remembers of its authorization request.
struct Grant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
    code_challenge_method: String,
    /// Remembered, not used yet: no provider behaviour here depends on it.
    acr_values: Option<String>,
}

struct Shared {
    issuer: String,
    rng: SystemRandom,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    state: Mutex<MockState>,
}

struct MockState {
    behaviour: Behaviour,
    current: SigningKey,
    /// Signs when `sign_with_unpublished_key`: never in the JWK Set.
    unpublished: SigningKey,
    /// Codes not yet presented at /token.
    codes: HashMap<String, Grant>,
    /// Access token → the subject it was issued for.
    access_tokens: HashMap<String, String>,
    authorization_requests: Vec<BTreeMap<String, String>>,
    token_requests: Vec<Recorded>,
    userinfo_requests: Vec<Option<String>>,
}

impl Shared {
    fn new(issuer: String) -> Shared {
        let rng = SystemRandom::new();
        let state = MockState {
            behaviour: Behaviour::default(),
            current: SigningKey::generate(&rng),
            unpublished: SigningKey::generate(&rng),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            authorization_requests: Vec::new(),
            token_requests: Vec::new(),
            userinfo_requests: Vec::new(),
        };
        Shared {
            issuer,
            rng,
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            state: Mutex::new(state),
        }
    }

    /// The state; a test that panicked while holding it has failed already, so its poison is
    /// ignored rather than failing every later request too.
    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn behaviour(&self) -> Behaviour {
        self.lock().behaviour.clone()
    }
}

type Mock = State<Arc<Shared>>;

async fn discovery(State(s): Mock) -> Response {
    let b = s.behaviour();
    pause(b.discovery_delay_ms).await;
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(code) = b.discovery_status {
        return (status(code), "discovery told to fail").into_response();
    }
    let iss = &s.issuer;
    axum::Json(json!({
        "issuer": b.metadata_issuer.as_deref().unwrap_or(iss),
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "end_session_endpoint": format!("{iss}/logout"),
        "scopes_supported": ["openid", "profile", "email", "phone"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "authorization_response_iss_parameter_supported": b.advertise_iss_param,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "name", "given_name", "family_name", "middle_name",
            "email", "email_verified", "phone_number", "phone_number_verified",
        ],
    }))
    .into_response()
}

async fn authorize(State(s): Mock, RawQuery(query): RawQuery) -> Response {
    let q: BTreeMap<String, String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let b = {
        let mut state = s.lock();
        state.authorization_requests.push(q.clone());
        state.behaviour.clone()
    };
    // A broken client is told so here, with no redirect, as a provider does when it cannot
    // trust the redirect_uri or the request.
    let refuse = |why: &str| (StatusCode::BAD_REQUEST, why.to_string()).into_response();
    let param = |name: &str| q.get(name).map(String::as_str);
    if param("response_type") != Some("code") {
        return refuse("response_type must be code");
    }
    if param("client_id") != Some(b.client_id.as_str()) {
        return refuse("unknown client_id");
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return refuse("redirect_uri is missing");
    };
    let Ok(mut back) = url::Url::parse(redirect_uri) else {
        return refuse("redirect_uri is not a URL");
    };
    if param("code_challenge_method") != Some("S256") {
        return refuse("code_challenge_method must be S256");
    }
    let challenge = param("code_challenge").unwrap_or_default();
    if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
        return refuse("code_challenge must be a base64url SHA-256 (43 characters)");
    }
    {
        let mut pairs = back.query_pairs_mut();
        if let Some(error) = &b.authorize_error {
            pairs.append_pair("error", error);
            pairs.append_pair("error_description", "the mock upstream was told to refuse");
        } else {
            let code = random_token(&s.rng);
            let grant = Grant {
                client_id: b.client_id.clone(),
                redirect_uri: redirect_uri.to_string(),
                scope: param("scope").unwrap_or_default().to_string(),
                nonce: param("nonce").map(str::to_string),
                code_challenge: challenge.to_string(),
                code_challenge_method: "S256".into(),
                acr_values: param("acr_values").map(str::to_string),
            };
            s.lock().codes.insert(code.clone(), grant);
            pairs.append_pair("code", &code);
        }
        if let Some(state) = b.state_override.as_deref().or(param("state")) {
            pairs.append_pair("state", state);
        }
        match &b.iss_param {
            IssParam::Correct => {
                pairs.append_pair("iss", &s.issuer);
            }
            IssParam::Absent => {}
            IssParam::Wrong(other) => {
                pairs.append_pair("iss", other);
            }
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(State(s): Mock, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let b = {
        let mut state = s.lock();
        state.token_requests.push(Recorded {
            form: form.clone(),
            authorization: authorization.clone(),
        });
        state.behaviour.clone()
    };
    pause(b.token_delay_ms).await;
    if let Some(code) = b.token_status {
        return oauth_error(status(code), "server_error");
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let client_id = match authenticate(&s.issuer, &b, authorization.as_deref(), &form) {
        Ok(id) => id,
        Err((code, error)) => return oauth_error(code, error),
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    // A code is good for one presentation by its client, right or wrong (RFC 6749 §4.1.2).
    let Some(grant) = s.lock().codes.remove(field("code")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = field("code_verifier");
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(is_unreserved)
        && grant.code_challenge_method == "S256"
        && s256(verifier) == grant.code_challenge;
    if grant.client_id != client_id || grant.redirect_uri != field("redirect_uri") || !verifier_ok {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let access_token = random_token(&s.rng);
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
    });
    let openid = grant.scope.split(' ').any(|x| x == "openid");
    let mut state = s.lock();
    state
        .access_tokens
        .insert(access_token.clone(), b.subject.clone());
    if openid && !b.omit_id_token {
        answer["id_token"] = json!(id_token(&s, &state, &b, &grant, &access_token));
    }
    drop(state);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response()
}

/// Client authentication at /token: exactly one method (RFC 6749 §2.3), and the client id it
/// proves; `Err` is the status and OAuth error to answer.
fn authenticate(
    issuer: &str,
    b: &Behaviour,
    authorization: Option<&str>,
    form: &BTreeMap<String, String>,
) -> Result<String, (StatusCode, &'static str)> {
    let invalid = || (StatusCode::UNAUTHORIZED, "invalid_client");
    let basic = authorization.filter(|a| a.len() > 6 && a[..6].eq_ignore_ascii_case("basic "));
    let post = form.get("client_secret");
    let jwt = form.contains_key("client_assertion") || form.contains_key("client_assertion_type");
    if usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(jwt) > 1 {
        return Err((StatusCode::BAD_REQUEST, "invalid_request"));
    }
    let form_id = form.get("client_id");
    let id = if let Some(header) = basic {
        let (id, secret) = basic_credentials(header).ok_or_else(invalid)?;
        if secret != b.client_secret || form_id.is_some_and(|f| *f != id) {
            return Err(invalid());
        }
        id
    } else if let Some(secret) = post {
        let id = form_id.ok_or_else(invalid)?;
        if *secret != b.client_secret {
            return Err(invalid());
        }
        id.clone()
    } else if jwt {
        // RFC 7523 §3 without the signature (a test checks it with vhod's key if it cares).
        let claims = form
            .get("client_assertion")
            .and_then(|a| jwt_part(a, 1))
            .ok_or_else(invalid)?;
        let id = claims["iss"].as_str().unwrap_or_default().to_string();
        let token_endpoint = format!("{issuer}/token");
        let audience_ok = match &claims["aud"] {
            Value::String(a) => *a == token_endpoint || a == issuer,
            Value::Array(all) => all
                .iter()
                .any(|a| a.as_str() == Some(&token_endpoint) || a.as_str() == Some(issuer)),
            _ => false,
        };
        let fresh = claims["exp"].as_i64().is_some_and(|exp| exp > now());
        if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER)
            || claims["sub"].as_str() != Some(id.as_str())
            || form_id.is_some_and(|f| *f != id)
            || !audience_ok
            || !fresh
        {
            return Err(invalid());
        }
        id
    } else {
        return Err(invalid());
    };
    if id != b.client_id {
        return Err(invalid());
    }
    Ok(id)
}

/// The ID token of a redeemed code, with every misbehaviour `b` asks for.
fn id_token(
    s: &Shared,
    state: &MockState,
    b: &Behaviour,
    grant: &Grant,
    access_token: &str,
) -> String {
    let now = now();
    let mut claims = Map::new();
    claims.insert(
        "iss".into(),
        json!(b.id_token_iss.as_deref().unwrap_or(&s.issuer)),
    );
    claims.insert("sub".into(), json!(b.subject));
    claims.insert(
        "aud".into(),
        b.id_token_aud.clone().unwrap_or(json!(grant.client_id)),
    );
    claims.insert("exp".into(), json!(now + b.exp_offset));
    claims.insert("iat".into(), json!(now));
    claims.insert("auth_time".into(), json!(now));
    if let Some(nonce) = b.nonce_override.as_ref().or(grant.nonce.as_ref()) {
        claims.insert("nonce".into(), json!(nonce));
    }
    // OpenID Connect Core §3.1.3.6: the left half of SHA-256 of the access token.
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    claims.insert(
        "at_hash".into(),
        json!(URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])),
    );
    merge(&mut claims, &b.id_token_claims);
    let kid = b.kid_override.as_deref().unwrap_or(&state.current.kid);
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    let key = if b.sign_with_unpublished_key {
        &state.unpublished.pair
    } else {
        &state.current.pair
    };
    jws(
        &s.rng,
        key,
        &header,
        &Value::Object(claims),
        b.bad_signature,
    )
}

async fn userinfo(State(s): Mock, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let b = {
        let mut state = s.lock();
        state.userinfo_requests.push(authorization.clone());
        state.behaviour.clone()
    };
    pause(b.userinfo_delay_ms).await;
    if let Some(code) = b.userinfo_status {
        return (status(code), "userinfo told to fail").into_response();
    }
    let token = authorization
        .as_deref()
        .filter(|a| a.len() > 7 && a[..7].eq_ignore_ascii_case("bearer "))
        .map(|a| a[7..].trim());
    let Some(sub) = token.and_then(|t| s.lock().access_tokens.get(t).cloned()) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response();
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(b.userinfo_sub.unwrap_or(sub)));
    merge(&mut claims, &b.userinfo_claims);
    axum::Json(Value::Object(claims)).into_response()
}

async fn jwks(State(s): Mock) -> Response {
    let b = s.behaviour();
    pause(b.jwks_delay_ms).await;
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(code) = b.jwks_status {
        return (status(code), "jwks told to fail").into_response();
    }
    let key = s.lock().current.jwk();
    axum::Json(json!({ "keys": [key] })).into_response()
}

/// `header.claims.signature`, ES256 over the first two; `corrupt` flips a bit of the signature.
fn jws(
    rng: &SystemRandom,
    key: &EcdsaKeyPair,
    header: &Value,
    claims: &Value,
    corrupt: bool,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = key
        .sign(rng, input.as_bytes())
        .expect("ES256 signing")
        .as_ref()
        .to_vec();
    if corrupt {
        signature[40] ^= 0x01;
    }
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Part `n` of a compact JWS (0 header, 1 claims) as JSON.
fn jwt_part(jwt: &str, n: usize) -> Option<Value> {
    let part = jwt.split('.').nth(n)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// (client id, secret) of `Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |v: &str| {
        percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Claims of `extra` over `claims`; a null removes.
fn merge(claims: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (name, value) in extra {
        if value.is_null() {
            claims.remove(name);
        } else {
            claims.insert(name.clone(), value.clone());
        }
    }
}

/// RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 7636 §4.1: the characters of a code verifier.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn oauth_error(code: StatusCode, error: &str) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error})),
    )
        .into_response()
}

/// A status a test asked for; one that is no status at all gives 500.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn pause(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// 128 random bits, base64url.
fn random_token(rng: &SystemRandom) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).expect("system randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
