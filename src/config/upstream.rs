//! `[[upstream]]`: the identity providers vhod signs people in through (НПЭС, ЕС ИФЮЛ), as
//! their relying party. Read and validated with the rest of the settings, so a deployment
//! learns of a mistake (a plain-http endpoint, a secret that is not there, an acr that vhod
//! does not know) when it starts, not when a person first presses the button.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::{Localized, Secret};
use crate::authn::Acr;

/// An upstream as the settings file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_auth: Option<String>,
    #[serde(default)]
    pub private_key: Option<PathBuf>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    pub display_name: Localized,
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub claims: ClaimMap,
    pub acr: AcrSpec,
}

/// Which upstream claim gives each of vhod's facts; a fact left out is not mapped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMap {
    /// The claim that names the person at the upstream; `sub` unless an OAuth 2.0 upstream's
    /// userinfo calls it otherwise (an OpenID upstream's ID token always says `sub`).
    pub subject: Option<String>,
    pub personal_number: Option<String>,
    /// Whether this upstream vouches for the number (it identified the person face to face):
    /// only then may a first login link to the account that already has the number.
    #[serde(default)]
    pub personal_number_verified: bool,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub email: Option<String>,
    /// The claim saying the email is verified, read from the same document as the email.
    pub email_verified: Option<String>,
    pub phone: Option<String>,
    /// The claim saying the phone is verified, read from the same document as the phone.
    pub phone_verified: Option<String>,
    /// The legal entity the person represents: its УНП and its name.
    pub legal_entity_unp: Option<String>,
    pub legal_entity_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcrSpec {
    pub default: String,
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// OpenID Connect: discovery from the issuer, an ID token.
    Oidc,
    /// OAuth 2.0: explicit endpoints, the identity from userinfo.
    OAuth2,
}

/// How vhod authenticates to the upstream's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    SecretBasic(Secret),
    SecretPost(Secret),
    /// RFC 7523 with a key of ours (a PEM file in the keys directory, or a path).
    PrivateKeyJwt(PathBuf),
}

/// A validated upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub kind: UpstreamKind,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub display_name: Localized,
    pub extra_params: BTreeMap<String, String>,
    pub timeout_ms: u64,
    pub claims: ClaimMap,
    /// What a login through this upstream gives when nothing it asserts is mapped.
    pub acr_default: Acr,
    /// The upstream's acr (or amr) values and what each gives in vhod.
    pub acr_map: BTreeMap<String, Acr>,
}

impl Upstream {
    /// The issuer half of an identity's link key: the issuer, or for an OAuth 2.0 upstream
    /// that names none, its authorization endpoint.
    pub fn link_issuer(&self) -> &str {
        self.issuer
            .as_deref()
            .or(self.authorization_endpoint.as_deref())
            .unwrap_or(&self.name)
    }

    /// The strongest assurance a login through the upstream can give.
    pub fn max_acr(&self) -> Acr {
        self.acr_map
            .values()
            .copied()
            .chain([self.acr_default])
            .max()
            .unwrap_or(self.acr_default)
    }

    /// The button's text in `lang`: its own, else any the settings give (one is required).
    pub fn display_name(&self, lang: crate::web::i18n::Lang) -> &str {
        let d = &self.display_name;
        d.get(lang)
            .or(d.be.as_deref())
            .or(d.en.as_deref())
            .unwrap_or(&self.name)
    }
}

/// The parameters vhod itself sets on the upstream's authorization request: `extra_params`
/// may not replace them (a deployment could otherwise turn off PKCE or the state check).
const OWN_PARAMS: [&str; 11] = [
    "prompt",
    "max_age",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
];

const TIMEOUT_MS: (u64, u64, u64) = (100, 5000, 30_000);

/// Validates every `[[upstream]]`; `dev` allows plain-http endpoints anywhere (otherwise only
/// on a loopback address), `keys_dir` is where a relative `private_key` is found.
pub fn validate(
    specs: Vec<UpstreamSpec>,
    dev: bool,
    keys_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<Upstream>> {
    let mut out: Vec<Upstream> = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.name.clone();
        let u = one(spec, dev, keys_dir, env).with_context(|| format!("[[upstream]] {name:?}"))?;
        if out.iter().any(|o| o.name == u.name) {
            bail!("[[upstream]] {name:?} is declared twice");
        }
        out.push(u);
    }
    Ok(out)
}

fn one(
    s: UpstreamSpec,
    dev: bool,
    keys_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Upstream> {
    let name_ok = (1..=32).contains(&s.name.len())
        && s.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        bail!("name must be 1 to 32 of a-z, 0-9 and '-' (it is part of URLs)");
    }
    let kind = match s.kind.as_str() {
        "oidc" => UpstreamKind::Oidc,
        "oauth2" => UpstreamKind::OAuth2,
        other => bail!("kind {other:?} is not oidc or oauth2"),
    };
    let url = |field: &str, v: &Option<String>| -> anyhow::Result<Option<String>> {
        v.as_deref().map(|v| endpoint(field, v, dev)).transpose()
    };
    let issuer = url("issuer", &s.issuer)?;
    let authorization_endpoint = url("authorization_endpoint", &s.authorization_endpoint)?;
    let token_endpoint = url("token_endpoint", &s.token_endpoint)?;
    let userinfo_endpoint = url("userinfo_endpoint", &s.userinfo_endpoint)?;
    let jwks_uri = url("jwks_uri", &s.jwks_uri)?;
    match kind {
        // The ID token is checked against the issuer, so an OpenID upstream always names it.
        UpstreamKind::Oidc if issuer.is_none() => bail!("an oidc upstream needs its issuer"),
        UpstreamKind::OAuth2
            if authorization_endpoint.is_none()
                || token_endpoint.is_none()
                || userinfo_endpoint.is_none() =>
        {
            bail!(
                "an oauth2 upstream needs authorization_endpoint, token_endpoint and userinfo_endpoint"
            )
        }
        _ => {}
    }
    if s.client_id.trim().is_empty() {
        bail!("client_id is empty");
    }
    let client_auth = client_auth(&s, keys_dir, env)?;
    let scopes = s.scopes.clone().unwrap_or_else(|| match kind {
        UpstreamKind::Oidc => vec!["openid".into()],
        UpstreamKind::OAuth2 => Vec::new(),
    });
    if kind == UpstreamKind::Oidc && !scopes.iter().any(|x| x == "openid") {
        bail!("the scopes of an oidc upstream must include openid");
    }
    if let Some(bad) = scopes
        .iter()
        .find(|x| x.is_empty() || x.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
    {
        bail!("scope {bad:?} is not a scope token (RFC 6749 §3.3)");
    }
    if s.display_name.ru.is_none() && s.display_name.be.is_none() && s.display_name.en.is_none() {
        bail!("display_name is empty: the login page has nothing to show on its button");
    }
    if let Some(own) = s
        .extra_params
        .keys()
        .find(|k| OWN_PARAMS.contains(&k.as_str()))
    {
        bail!("extra_params may not set {own:?}: vhod sets it itself");
    }
    let (min, default, max) = TIMEOUT_MS;
    let timeout_ms = s.timeout_ms.unwrap_or(default);
    if !(min..=max).contains(&timeout_ms) {
        bail!("timeout_ms must be between {min} and {max}");
    }
    let acr = |v: &str| {
        Acr::parse(v).with_context(|| format!("acr {v:?} is not low, substantial or high"))
    };
    let acr_default = acr(&s.acr.default)?;
    let acr_map = (s.acr.map.iter())
        .map(|(from, to)| Ok((from.clone(), acr(to)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Upstream {
        name: s.name,
        kind,
        issuer,
        authorization_endpoint,
        token_endpoint,
        userinfo_endpoint,
        jwks_uri,
        client_id: s.client_id,
        client_auth,
        scopes,
        display_name: s.display_name,
        extra_params: s.extra_params,
        timeout_ms,
        claims: s.claims,
        acr_default,
        acr_map,
    })
}

/// An upstream's URL: https, or plain http on a loopback address or in development (a
/// person's authorization code and our client secret cross it).
fn endpoint(field: &str, v: &str, dev: bool) -> anyhow::Result<String> {
    let u = url::Url::parse(v).with_context(|| format!("{field} {v:?} is not a URL"))?;
    if u.fragment().is_some() {
        bail!("{field} must not have a fragment");
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match u.scheme() {
        "https" => {}
        "http" if loopback || dev => {}
        _ => {
            bail!("{field} must be https (plain http only on a loopback address or in development)")
        }
    }
    // Kept exactly as written: the issuer is compared with the ID token's `iss` as a string
    // (OpenID Connect Core §3.1.3.7), and an endpoint's trailing slash may matter to its server.
    Ok(v.to_string())
}

fn client_auth(
    s: &UpstreamSpec,
    keys_dir: &Path,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<ClientAuth> {
    let secret = match (&s.client_secret, &s.client_secret_env) {
        (Some(_), Some(_)) => bail!("client_secret and client_secret_env are both set"),
        (Some(v), None) => Some(Secret(v.clone())),
        (None, Some(var)) => {
            Some(Secret(env(var).with_context(|| {
                format!("client_secret_env names {var}, which is not set")
            })?))
        }
        (None, None) => None,
    };
    let method = s.client_auth.as_deref().unwrap_or("client_secret_basic");
    Ok(match (method, secret) {
        ("client_secret_basic", Some(secret)) if s.private_key.is_none() => {
            ClientAuth::SecretBasic(secret)
        }
        ("client_secret_post", Some(secret)) if s.private_key.is_none() => {
            ClientAuth::SecretPost(secret)
        }
        ("client_secret_basic" | "client_secret_post", None) => {
            bail!("client_auth {method} needs client_secret or client_secret_env")
        }
        ("private_key_jwt", None) => {
            let path = s
                .private_key
                .as_ref()
                .context("client_auth private_key_jwt needs private_key")?;
            let path = keys_dir.join(path);
            if !path.is_file() {
                bail!("private_key {} is not a file", path.display());
            }
            ClientAuth::PrivateKeyJwt(path)
        }
        ("private_key_jwt", Some(_)) => bail!("private_key_jwt takes no client secret"),
        ("client_secret_basic" | "client_secret_post", Some(_)) => {
            bail!("client_auth {method} takes no private_key")
        }
        (other, _) => bail!(
            "client_auth {other:?} is not client_secret_basic, client_secret_post or private_key_jwt"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NPES: &str = r#"
        name = "npes"
        kind = "oidc"
        issuer = "https://npes.example.by/"
        client_id = "vhod"
        client_secret_env = "VHOD_UPSTREAM_NPES_SECRET"
        scopes = ["openid", "profile"]
        display_name = { ru = "Вход через НПЭС", be = "Уваход праз НПЭС", en = "Sign in with NPES" }
        [claims]
        personal_number = "personal_number"
        personal_number_verified = true
        family_name = "family_name"
        email = "email"
        email_verified = "email_verified"
        [acr]
        default = "substantial"
        map = { "urn:npes:loa:high" = "high" }
    "#;

    fn env(k: &str) -> Option<String> {
        (k == "VHOD_UPSTREAM_NPES_SECRET").then(|| "s3cret".into())
    }

    fn check(toml_text: &str, dev: bool) -> anyhow::Result<Upstream> {
        let spec: UpstreamSpec = toml::from_str(toml_text)?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("upstream.pem"), "a key")?;
        validate(vec![spec], dev, dir.path(), &env).map(|mut v| v.remove(0))
    }

    fn refused(toml_text: &str) -> String {
        match check(toml_text, false) {
            Ok(u) => panic!("accepted: {u:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn with(line: &str) -> String {
        // A later key of the top table: before the [claims] table starts.
        NPES.replacen(
            "        [claims]",
            &format!("        {line}\n        [claims]"),
            1,
        )
    }

    #[test]
    fn the_npes_example_reads_as_documented() {
        let u = check(NPES, false).expect("accepted");
        assert_eq!(u.kind, UpstreamKind::Oidc);
        assert_eq!(u.issuer.as_deref(), Some("https://npes.example.by/"));
        assert_eq!(
            u.client_auth,
            ClientAuth::SecretBasic(Secret("s3cret".into()))
        );
        assert_eq!(u.timeout_ms, 5000);
        assert_eq!(u.acr_default, Acr::Substantial);
        assert_eq!(u.acr_map["urn:npes:loa:high"], Acr::High);
        assert!(u.claims.personal_number_verified);
        assert_eq!(u.claims.phone, None);
    }

    #[test]
    fn what_could_weaken_a_login_is_refused_at_start() {
        for (line, why) in [
            (
                "extra_params = { code_challenge_method = \"plain\" }",
                "may not set",
            ),
            ("extra_params = { state = \"fixed\" }", "may not set"),
            ("timeout_ms = 120000", "timeout_ms"),
            ("client_secret = \"also\"", "both set"),
            ("client_auth = \"none\"", "is not client_secret_basic"),
        ] {
            let e = refused(&with(line));
            assert!(e.contains(why), "{line}: {e}");
        }
        let e = refused(&NPES.replace("https://npes", "http://npes"));
        assert!(e.contains("must be https"), "{e}");
        let e = refused(&NPES.replace("\"openid\", ", ""));
        assert!(e.contains("must include openid"), "{e}");
        let e = refused(&NPES.replace("\"high\" }", "\"highest\" }"));
        assert!(e.contains("not low, substantial or high"), "{e}");
        let e = refused(&NPES.replace("VHOD_UPSTREAM_NPES_SECRET", "VHOD_UNSET"));
        assert!(e.contains("VHOD_UNSET, which is not set"), "{e}");
        let e = refused(&NPES.replace("name = \"npes\"", "name = \"NPES/x\""));
        assert!(e.contains("a-z, 0-9"), "{e}");
        let e = refused(&with("unknown_key = 1"));
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn plain_http_only_on_loopback_or_in_development() {
        let local = NPES.replace("https://npes.example.by/", "http://127.0.0.1:9000");
        assert!(check(&local, false).is_ok());
        let remote = NPES.replace("https://npes.example.by/", "http://npes.example.by");
        assert!(check(&remote, false).is_err());
        assert!(check(&remote, true).is_ok());
    }

    #[test]
    fn an_oauth2_upstream_names_its_endpoints_and_a_private_key_is_a_file() {
        let oauth2 = r#"
            name = "esifl"
            kind = "oauth2"
            authorization_endpoint = "https://id.example.by/authorize"
            token_endpoint = "https://id.example.by/token"
            client_id = "vhod"
            client_auth = "private_key_jwt"
            private_key = "upstream.pem"
            display_name = "Вход через ЕС ИФЮЛ"
            [acr]
            default = "high"
        "#;
        let e = format!("{:#}", check(oauth2, false).expect_err("no userinfo"));
        assert!(e.contains("userinfo_endpoint"), "{e}");
        let whole = oauth2.replace(
            "client_id",
            "userinfo_endpoint = \"https://id.example.by/userinfo\"\n            client_id",
        );
        let u = check(&whole, false).expect("accepted");
        assert!(
            matches!(u.client_auth, ClientAuth::PrivateKeyJwt(ref p) if p.ends_with("upstream.pem"))
        );
        assert!(u.scopes.is_empty());
        let missing = whole.replace("upstream.pem", "absent.pem");
        let e = format!("{:#}", check(&missing, false).expect_err("no such key"));
        assert!(e.contains("is not a file"), "{e}");
    }

    #[test]
    fn names_are_unique() {
        let a: UpstreamSpec = toml::from_str(NPES).expect("spec");
        let e = validate(vec![a.clone(), a], false, Path::new("."), &env).expect_err("twice");
        assert!(format!("{e:#}").contains("declared twice"));
    }
}
