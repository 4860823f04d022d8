//! Relying parties (clients). Validated once, when registered; requests then meet only the typed
//! `Client`, served from an in-memory snapshot that every instance reloads when the database's
//! generation counter moves.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;

use super::redirect_uri::RedirectUri;
use super::roles::SystemRole;
use crate::authn::Acr;
use crate::config::{ClientSpec, Localized};
use crate::secrets;
use crate::store::StoreError;
use crate::store::clients::ClientRow;
use crate::store::sql::Db;
use crate::tokens::SigningAlg;
use crate::tokens::jwk::{JwkSet, Verifier};

/// Scopes every client may ask for unless registered with a narrower list: OpenID Connect's
/// and vhod's own (`roles`, `org`, `legal_entity`, `personal_number`: the last released only to
/// clients registered with the claim).
pub const OIDC_SCOPES: [&str; 9] = [
    "openid",
    "profile",
    "email",
    "phone",
    "roles",
    "org",
    "legal_entity",
    "personal_number",
    "offline_access",
];

/// Claims released only to clients registered for them (`--claim`).
pub const RESTRICTED_CLAIMS: [&str; 1] = ["personal_number"];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Option<ClientId> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b));
        ok.then(|| ClientId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How a client proves itself at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A public client (browser or native app): no secret, PKCE mandatory.
    None,
    /// client_secret_basic or client_secret_post; only the SHA-256 of the secret is kept.
    Secret { hash: [u8; 32] },
    /// private_key_jwt against the registered public keys.
    PrivateKeyJwt { keys: Vec<Verifier> },
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub auth: ClientAuth,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: BTreeSet<GrantType>,
    pub scopes: BTreeSet<String>,
    pub token_alg: SigningAlg,
    pub backchannel_logout_uri: Option<String>,
    /// Every sign-in for this client needs at least this assurance (step-up otherwise).
    pub min_acr: Option<Acr>,
    /// The name people see on the login page, per language.
    pub display_name: Option<Localized>,
    /// A resource server: the audiences whose access tokens it may introspect.
    pub introspection_audiences: BTreeSet<String>,
    /// System roles of which an account must hold one to sign in (empty: any the policies
    /// allow).
    pub allowed_roles: BTreeSet<SystemRole>,
    /// Restricted claims it may receive ([`RESTRICTED_CLAIMS`]).
    pub allowed_claims: BTreeSet<String>,
    /// A disabled client gets no sign-ins and no tokens.
    pub disabled: bool,
    /// What it administers with client credentials (scope `vhod:admin`).
    pub admin_scope: Option<AdminScope>,
}

/// What an automation client administers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminScope {
    System,
    Org(String),
}

/// The scope a token needs for the administration API.
pub const ADMIN_SCOPE: &str = "vhod:admin";

impl Client {
    /// vhod's own profile pages, as the client the policies decide their use for (the
    /// reserved client of the profile's sign-in, without a relying party's restrictions).
    pub fn profile() -> Client {
        Client {
            id: ClientId(crate::config::PROFILE_CLIENT.to_string()),
            auth: ClientAuth::None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: BTreeSet::new(),
            scopes: BTreeSet::new(),
            token_alg: SigningAlg::Es256,
            backchannel_logout_uri: None,
            min_acr: None,
            display_name: None,
            introspection_audiences: BTreeSet::new(),
            allowed_roles: BTreeSet::new(),
            allowed_claims: BTreeSet::new(),
            disabled: false,
            admin_scope: None,
        }
    }

    /// May this client receive the restricted claim?
    pub fn may_receive(&self, claim: &str) -> bool {
        !RESTRICTED_CLAIMS.contains(&claim) || self.allowed_claims.contains(claim)
    }

    /// May this client introspect an access token issued to `aud`: its own, or one whose
    /// audience it is registered to serve as a resource server.
    pub fn may_introspect(&self, aud: &str) -> bool {
        self.id.as_str() == aud || self.introspection_audiences.contains(aud)
    }

    pub fn is_public(&self) -> bool {
        matches!(self.auth, ClientAuth::None)
    }

    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }

    pub fn redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|r| r.matches(requested))
    }

    pub fn post_logout_redirect_uri(&self, requested: &str) -> Option<&RedirectUri> {
        self.post_logout_redirect_uris
            .iter()
            .find(|r| r.matches(requested))
    }

    pub fn auth_method(&self) -> &'static str {
        match self.auth {
            ClientAuth::None => "none",
            ClientAuth::Secret { .. } => "client_secret_basic",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }

    /// The service's name in `lang` as people see it: its display name, else its client_id.
    pub fn name(&self, lang: crate::web::i18n::Lang) -> &str {
        self.display_name
            .as_ref()
            .and_then(|d| d.get(lang))
            .unwrap_or(self.id.as_str())
    }

    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.auth {
            ClientAuth::Secret { hash } => {
                secrets::ct_eq(&secrets::sha256(presented.as_bytes()), hash)
            }
            _ => false,
        }
    }
}

/// A registration request, from the CLI or the settings file.
pub type NewClient = ClientSpec;

/// Characters of a display name in one language.
const MAX_DISPLAY_NAME: usize = 100;

/// Checks a registration and returns the row to store.
fn validate(spec: &NewClient, allow_http: bool) -> Result<ClientRow, String> {
    let id = ClientId::parse(&spec.client_id)
        .ok_or("client_id must be 1-128 characters of A-Z a-z 0-9 - . _ ~ :")?;
    let modes = [spec.public, spec.secret.is_some(), spec.jwks.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if modes != 1 {
        return Err("give exactly one of --secret, --public or --jwks".into());
    }
    // Secrets are kept as unsalted SHA-256 (fast to check on every token request), so a short
    // one could be guessed from a leaked database: production requires 16+ characters; the
    // development mode takes what it is given, for quick experiments.
    let min_secret = if allow_http { 1 } else { 16 };
    if let Some(s) = &spec.secret
        && (s.len() < min_secret || s.len() > 512)
    {
        return Err(format!(
            "a client secret must be {min_secret} to 512 characters (32+ random bytes recommended)"
        ));
    }
    let jwks = match &spec.jwks {
        Some(j) => {
            let set: JwkSet = serde_json::from_str(j).map_err(|e| format!("jwks: {e}"))?;
            if set.keys.is_empty() {
                return Err("jwks has no keys".into());
            }
            set.verifiers().map_err(|e| format!("jwks: {e}"))?;
            Some(serde_json::to_string(&set).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let uris = |list: &[String]| -> Result<String, String> {
        let mut out = Vec::new();
        for u in list {
            RedirectUri::register(u, allow_http).map_err(|e| format!("{u}: {e}"))?;
            out.push(u.clone());
        }
        serde_json::to_string(&out).map_err(|e| e.to_string())
    };
    let mut grants: BTreeSet<GrantType> = BTreeSet::new();
    if spec.grant_types.is_empty() {
        grants.insert(GrantType::AuthorizationCode);
        grants.insert(GrantType::RefreshToken);
    }
    for g in &spec.grant_types {
        grants.insert(GrantType::parse(g).ok_or_else(|| {
            format!(
                "unknown grant type {g:?} (authorization_code, refresh_token, client_credentials)"
            )
        })?);
    }
    if spec.public && grants.contains(&GrantType::ClientCredentials) {
        return Err("a public client cannot use client_credentials".into());
    }
    if grants.contains(&GrantType::AuthorizationCode) && spec.redirect_uris.is_empty() {
        return Err("the authorization_code grant needs at least one --redirect-uri".into());
    }
    let scope = match &spec.scope {
        Some(s) => {
            let v: Vec<&str> = s.split_whitespace().collect();
            if v.iter().any(|s| {
                s.len() > 128
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            }) {
                return Err("scopes are space-separated printable ASCII tokens".into());
            }
            v.join(" ")
        }
        None => OIDC_SCOPES.join(" "),
    };
    let token_alg = match &spec.token_signing_alg {
        Some(a) => SigningAlg::parse(a)
            .ok_or("token signing alg must be ES256, RS256 or EdDSA")?
            .as_str()
            .to_string(),
        None => SigningAlg::Es256.as_str().to_string(),
    };
    let min_acr = match &spec.min_acr {
        Some(a) => Some(
            Acr::parse(a)
                .ok_or("min_acr must be low, substantial or high")?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    if let Some(b) = &spec.backchannel_logout_uri {
        RedirectUri::register(b, allow_http).map_err(|e| format!("{b}: {e}"))?;
    }
    let display_name = match spec.display_name.as_ref().filter(|d| !d.is_empty()) {
        Some(d) => {
            d.check("display_name", MAX_DISPLAY_NAME)?;
            Some(serde_json::to_string(d).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let mut audiences = BTreeSet::new();
    for a in &spec.introspection_audiences {
        let aud = ClientId::parse(a).ok_or_else(|| {
            format!(
                "introspection audience {a:?} must be a client_id (1-128 of A-Z a-z 0-9 - . _ ~ :)"
            )
        })?;
        audiences.insert(aud.0);
    }
    if spec.public && !audiences.is_empty() {
        return Err("a public client cannot introspect tokens".into());
    }
    let mut allowed_roles = BTreeSet::new();
    for r in &spec.allowed_roles {
        let role = SystemRole::parse(r).ok_or_else(|| {
            format!("allowed role {r:?}: one of applicant, employee, admin, auditor")
        })?;
        allowed_roles.insert(role.as_str());
    }
    let mut allowed_claims = BTreeSet::new();
    for c in &spec.claims {
        if !RESTRICTED_CLAIMS.contains(&c.as_str()) {
            return Err(format!(
                "claim {c:?}: only restricted claims are registered ({})",
                RESTRICTED_CLAIMS.join(", ")
            ));
        }
        allowed_claims.insert(c.as_str());
    }
    let admin_scope = match spec.admin_scope.as_deref() {
        None => None,
        Some("system") => Some("system".to_string()),
        Some(org) => Some(
            super::org::OrgId::parse(org)
                .map_err(|e| format!("admin_scope: {e}"))?
                .as_str()
                .to_string(),
        ),
    };
    if admin_scope.is_some() && !grants.contains(&GrantType::ClientCredentials) {
        return Err("an admin_scope is for a client with the client_credentials grant".into());
    }
    Ok(ClientRow {
        display_name,
        client_id: id.0,
        secret_hash: spec
            .secret
            .as_ref()
            .map(|s| secrets::b64url(&secrets::sha256(s.as_bytes()))),
        public: spec.public,
        redirect_uris: uris(&spec.redirect_uris)?,
        post_logout_redirect_uris: uris(&spec.post_logout_redirect_uris)?,
        grant_types: serde_json::to_string(&grants.iter().map(|g| g.as_str()).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?,
        scope,
        token_alg,
        backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
        jwks,
        min_acr,
        introspection_audiences: serde_json::to_string(&audiences).map_err(|e| e.to_string())?,
        allowed_roles: serde_json::to_string(&allowed_roles).map_err(|e| e.to_string())?,
        allowed_claims: serde_json::to_string(&allowed_claims).map_err(|e| e.to_string())?,
        disabled: spec.disabled,
        admin_scope,
        version: 1,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("a client with this client_id already exists")]
    Duplicate,
    #[error("no such client")]
    NotFound,
    #[error("the client changed meanwhile")]
    Stale,
    #[error(transparent)]
    Store(StoreError),
}

/// Registers a client; with `replace`, an existing one of the same id is overwritten
/// (clients declared in the settings file are re-applied on every start).
pub async fn save(
    db: &Db,
    spec: &NewClient,
    allow_http: bool,
    replace: bool,
) -> Result<(), ClientError> {
    let row = validate(spec, allow_http).map_err(ClientError::Invalid)?;
    match db.clients().save(&row, replace).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => Err(ClientError::Duplicate),
        Err(e) => Err(ClientError::Store(e)),
    }
}

/// The registration a stored row came from. Its secret is not kept (only its hash): an update
/// carries the hash over.
pub fn spec_of(row: &ClientRow) -> Result<NewClient, String> {
    let list = |j: &str| serde_json::from_str::<Vec<String>>(j).map_err(|e| e.to_string());
    Ok(NewClient {
        client_id: row.client_id.clone(),
        secret: None,
        public: row.public,
        redirect_uris: list(&row.redirect_uris)?,
        post_logout_redirect_uris: list(&row.post_logout_redirect_uris)?,
        grant_types: list(&row.grant_types)?,
        scope: Some(row.scope.clone()),
        backchannel_logout_uri: row.backchannel_logout_uri.clone(),
        token_signing_alg: Some(row.token_alg.clone()),
        min_acr: row.min_acr.clone(),
        jwks: row.jwks.clone(),
        display_name: row
            .display_name
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| e.to_string())?,
        introspection_audiences: list(&row.introspection_audiences)?,
        allowed_roles: list(&row.allowed_roles)?,
        claims: list(&row.allowed_claims)?,
        disabled: row.disabled,
        admin_scope: row.admin_scope.clone(),
    })
}

/// How an update treats the client's secret.
pub enum SecretChange<'a> {
    Keep,
    /// A new secret (a rotation): the old one stops working at once.
    New(&'a str),
}

/// Changes a registered client when its version is still `expected`: the registration with
/// `change` applied is validated whole, as a new one would be. The row stored.
pub async fn update(
    db: &Db,
    client_id: &str,
    expected: i64,
    allow_http: bool,
    secret: SecretChange<'_>,
    change: impl FnOnce(&mut NewClient),
) -> Result<ClientRow, ClientError> {
    let row = db
        .clients()
        .get(client_id)
        .await
        .map_err(ClientError::Store)?
        .ok_or(ClientError::NotFound)?;
    if row.version != expected {
        return Err(ClientError::Stale);
    }
    let mut spec = spec_of(&row).map_err(ClientError::Invalid)?;
    change(&mut spec);
    let has_secret = !spec.public && spec.jwks.is_none();
    if has_secret {
        // Validation wants the secret itself; the stored hash (or the new secret's) is kept.
        spec.secret = Some(match secret {
            SecretChange::New(s) => s.to_string(),
            SecretChange::Keep => secrets::random_token(),
        });
    } else if matches!(secret, SecretChange::New(_)) {
        return Err(ClientError::Invalid(
            "this client has no secret (a public client, or private_key_jwt)".into(),
        ));
    }
    let mut next = validate(&spec, allow_http).map_err(ClientError::Invalid)?;
    if has_secret && matches!(secret, SecretChange::Keep) {
        next.secret_hash = row.secret_hash.clone();
    }
    next.version = row.version + 1;
    if !db
        .clients()
        .update(&next, expected)
        .await
        .map_err(ClientError::Store)?
    {
        return Err(ClientError::Stale);
    }
    Ok(next)
}

/// A stored row as the typed client. Rows were validated on the way in; one that no longer
/// validates is an error here, and the snapshot skips it, loudly.
fn from_row(row: ClientRow) -> Result<Client, String> {
    let id = ClientId::parse(&row.client_id).ok_or("bad client_id")?;
    let auth = if row.public {
        ClientAuth::None
    } else if let Some(j) = &row.jwks {
        let set: JwkSet = serde_json::from_str(j).map_err(|e| e.to_string())?;
        ClientAuth::PrivateKeyJwt {
            keys: set.verifiers().map_err(|e| e.to_string())?,
        }
    } else {
        let h = row
            .secret_hash
            .as_deref()
            .and_then(secrets::b64url_decode)
            .filter(|h| h.len() == 32)
            .ok_or("bad secret hash")?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&h);
        ClientAuth::Secret { hash }
    };
    let uris = |json: &str| -> Result<Vec<RedirectUri>, String> {
        let list: Vec<String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        list.iter()
            .map(|u| RedirectUri::register(u, true).map_err(|e| e.to_string()))
            .collect()
    };
    let grants: Vec<String> = serde_json::from_str(&row.grant_types).map_err(|e| e.to_string())?;
    Ok(Client {
        id,
        auth,
        redirect_uris: uris(&row.redirect_uris)?,
        post_logout_redirect_uris: uris(&row.post_logout_redirect_uris)?,
        grant_types: grants.iter().filter_map(|g| GrantType::parse(g)).collect(),
        scopes: row
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        token_alg: SigningAlg::parse(&row.token_alg).unwrap_or(SigningAlg::Es256),
        backchannel_logout_uri: row.backchannel_logout_uri,
        min_acr: row.min_acr.as_deref().and_then(Acr::parse),
        // A name that no longer parses is dropped, not the client: it still works, by its id.
        display_name: row.display_name.and_then(|j| serde_json::from_str(&j).ok()),
        introspection_audiences: serde_json::from_str(&row.introspection_audiences)
            .map_err(|e| e.to_string())?,
        allowed_roles: serde_json::from_str::<Vec<String>>(&row.allowed_roles)
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|r| SystemRole::parse(r))
            .collect(),
        allowed_claims: serde_json::from_str(&row.allowed_claims).map_err(|e| e.to_string())?,
        disabled: row.disabled,
        admin_scope: row.admin_scope.map(|s| match s.as_str() {
            "system" => AdminScope::System,
            _ => AdminScope::Org(s),
        }),
    })
}

/// The in-memory snapshot of all clients.
pub struct ClientRegistry {
    snapshot: ArcSwap<HashMap<String, Arc<Client>>>,
    /// Web origins of all registered redirect URIs: the browsers' origins allowed by CORS.
    origins: ArcSwap<HashSet<String>>,
    generation: AtomicI64,
}

fn web_origin(uri: &RedirectUri) -> Option<String> {
    let url = url::Url::parse(uri.as_str()).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.origin().ascii_serialization())
}

impl ClientRegistry {
    pub async fn load(db: &Db) -> Result<ClientRegistry, StoreError> {
        let reg = ClientRegistry {
            snapshot: ArcSwap::from_pointee(HashMap::new()),
            origins: ArcSwap::from_pointee(HashSet::new()),
            generation: AtomicI64::new(i64::MIN),
        };
        reg.refresh(db).await?;
        Ok(reg)
    }

    /// Reloads when the generation moved; cheap enough to call every second.
    pub async fn refresh(&self, db: &Db) -> Result<bool, StoreError> {
        let generation = db.clients().generation().await?;
        if generation == self.generation.load(Ordering::Acquire) {
            return Ok(false);
        }
        let rows = db.clients().all().await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            match row.map_err(|e| e.to_string()).and_then(from_row) {
                Ok(c) => {
                    map.insert(c.id.as_str().to_string(), Arc::new(c));
                }
                Err(e) => {
                    tracing::error!(error = %e, "skipping a stored client that does not validate")
                }
            }
        }
        let origins = map
            .values()
            .flat_map(|c| c.redirect_uris.iter().filter_map(web_origin))
            .collect();
        self.snapshot.store(Arc::new(map));
        self.origins.store(Arc::new(origins));
        self.generation.store(generation, Ordering::Release);
        Ok(true)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.snapshot.load().get(id).cloned()
    }

    /// Is `origin` (as a browser sends it) the origin of some client's redirect URI?
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.load().contains(origin)
    }

    pub fn len(&self) -> usize {
        self.snapshot.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NewClient {
        NewClient {
            client_id: "rp".into(),
            secret: Some("0123456789abcdef0123".into()),
            public: false,
            redirect_uris: vec!["https://rp.example/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            scope: None,
            backchannel_logout_uri: None,
            token_signing_alg: None,
            min_acr: None,
            jwks: None,
            display_name: None,
            introspection_audiences: vec![],
            allowed_roles: vec![],
            claims: vec![],
            disabled: false,
            admin_scope: None,
        }
    }

    #[test]
    fn registration_is_validated() {
        assert!(validate(&spec(), false).is_ok());
        let mut s = spec();
        s.public = true;
        assert!(validate(&s, false).is_err(), "secret and public together");
        let mut s = spec();
        s.secret = Some("short".into());
        assert!(
            validate(&s, false).is_err(),
            "short secrets only in development"
        );
        assert!(validate(&s, true).is_ok());
        s.secret = Some(String::new());
        assert!(validate(&s, true).is_err());
        let mut s = spec();
        s.redirect_uris = vec!["https://rp.example/cb#x".into()];
        assert!(validate(&s, false).is_err());
        let mut s = spec();
        s.grant_types = vec!["implicit".into()];
        assert!(validate(&s, false).is_err(), "no implicit flow");
        let mut s = spec();
        s.secret = None;
        s.public = true;
        s.grant_types = vec!["client_credentials".into()];
        assert!(validate(&s, false).is_err());
        let mut s = spec();
        s.client_id = "bad id".into();
        assert!(validate(&s, false).is_err());
        let mut s = spec();
        s.token_signing_alg = Some("HS256".into());
        assert!(validate(&s, false).is_err());
        let mut s = spec();
        s.introspection_audiences = vec!["portal".into(), "portal".into()];
        assert_eq!(
            validate(&s, false).unwrap().introspection_audiences,
            r#"["portal"]"#
        );
        s.introspection_audiences = vec!["not a client id".into()];
        assert!(validate(&s, false).is_err());
        let mut s = spec();
        s.secret = None;
        s.public = true;
        s.introspection_audiences = vec!["portal".into()];
        assert!(
            validate(&s, false).is_err(),
            "public clients cannot introspect"
        );
        let mut s = spec();
        s.display_name = Some(Localized {
            ru: Some("я".repeat(101)),
            ..Localized::default()
        });
        assert!(validate(&s, false).is_err(), "display names are bounded");
        s.display_name = Some(Localized {
            be: Some("Партал\u{7}".into()),
            ..Localized::default()
        });
        assert!(validate(&s, false).is_err(), "no control characters");
    }

    #[test]
    fn display_names_fall_back_to_russian_then_the_client_id() {
        use crate::web::i18n::Lang;
        let mut s = spec();
        s.display_name = Some(Localized {
            ru: Some("Портал".into()),
            en: Some("Portal".into()),
            be: None,
        });
        let row = validate(&s, false).unwrap();
        let stored: Localized = serde_json::from_str(row.display_name.as_deref().unwrap()).unwrap();
        assert_eq!(stored.get(Lang::En), Some("Portal"));
        assert_eq!(stored.get(Lang::Be), Some("Портал"));
        let toml_form: ClientSpec = toml::from_str(
            "client_id = \"x\"\ndisplay_name = { ru = \"Портал\", be = \"Партал\" }",
        )
        .unwrap();
        assert_eq!(
            toml_form.display_name.unwrap().get(Lang::Be),
            Some("Партал")
        );
        let plain: ClientSpec =
            toml::from_str("client_id = \"x\"\ndisplay_name = \"Портал\"").unwrap();
        assert_eq!(plain.display_name.unwrap().get(Lang::En), Some("Портал"));
    }
}
