//! Settings: an optional TOML file (`--config PATH`) overridden by `VHOD_*` environment variables.
//! Every setting is documented in README.md; unknown keys in the file are an error, not a silent no-op.
//!
//! One file on purpose (about 800 lines of code, the rest its tests): every setting is read from
//! the file and the environment, defaulted and validated in one pass into one `Settings`, in
//! the order README's table documents them, so a reader checks a setting against its
//! documentation in one place; split by topic, the cross-checks (https issuer and cookies,
//! Redis and replicas, SMS and email providers) would reach across files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::web::i18n::Lang;

pub mod audit;
pub mod upstream;

/// A text in the people's languages: Russian, Belarusian, English. A language left out falls
/// back to Russian (then Belarusian, then English). In TOML either a string (every language)
/// or a table `{ ru = "…", be = "…", en = "…" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LocalizedForm")]
pub struct Localized {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ru: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub be: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LocalizedForm {
    All(String),
    #[serde(rename_all = "lowercase")]
    Each {
        #[serde(default)]
        ru: Option<String>,
        #[serde(default)]
        be: Option<String>,
        #[serde(default)]
        en: Option<String>,
    },
}

impl From<LocalizedForm> for Localized {
    fn from(f: LocalizedForm) -> Self {
        match f {
            LocalizedForm::All(s) => Localized {
                ru: Some(s),
                be: None,
                en: None,
            },
            LocalizedForm::Each { ru, be, en } => Localized { ru, be, en },
        }
    }
}

impl Localized {
    /// The text in `lang`, else the Russian one (which also stands for "every language");
    /// None leaves the caller's default for that language.
    pub fn get(&self, lang: Lang) -> Option<&str> {
        let own = match lang {
            Lang::Ru => &self.ru,
            Lang::Be => &self.be,
            Lang::En => &self.en,
        };
        own.as_deref()
            .filter(|s| !s.is_empty())
            .or(self.ru.as_deref().filter(|s| !s.is_empty()))
    }

    pub fn is_empty(&self) -> bool {
        [&self.ru, &self.be, &self.en]
            .into_iter()
            .all(|t| t.as_deref().is_none_or(str::is_empty))
    }

    /// `VHOD_<NAME>` for every language, `VHOD_<NAME>_RU`, `_BE`, `_EN` for one; the file's
    /// value where the environment says nothing.
    fn from_env(
        env: &impl Fn(&str) -> Option<String>,
        name: &str,
        file: Option<Localized>,
    ) -> Option<Localized> {
        let all = env(name);
        let one = |suffix: &str| env(&format!("{name}_{suffix}"));
        let (ru, be, en) = (one("RU"), one("BE"), one("EN"));
        if all.is_none() && ru.is_none() && be.is_none() && en.is_none() {
            return file.filter(|l| !l.is_empty());
        }
        let file = file.unwrap_or_default();
        let from_env = all.is_some();
        let l = Localized {
            ru: ru.or(all).or(file.ru),
            be: be.or(if from_env { None } else { file.be }),
            en: en.or(if from_env { None } else { file.en }),
        };
        (!l.is_empty()).then_some(l)
    }

    /// Every text at most `max` characters, without control characters.
    pub fn check(&self, what: &str, max: usize) -> Result<(), String> {
        for t in [&self.ru, &self.be, &self.en].into_iter().flatten() {
            if t.chars().count() > max || t.chars().any(char::is_control) {
                return Err(format!(
                    "{what}: at most {max} characters, no control characters"
                ));
            }
        }
        Ok(())
    }
}

/// How the pages present the service: its name, operator, support contacts, privacy notice and
/// the consent to the processing of personal data asked at registration. Unset texts use the
/// built-in wording of each language.
#[derive(Debug, Clone, Default)]
pub struct Face {
    pub service_name: Option<Localized>,
    pub operator: Option<Localized>,
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
    pub privacy_url: Option<String>,
    pub consent_text: Option<Localized>,
    /// The sender named in SMS texts (short: a code SMS must fit one segment).
    pub sms_name: Option<Localized>,
}

/// The built-in client of the profile page's own sign-in (`/profile` is its redirect URI).
pub const PROFILE_CLIENT: &str = "vhod-profile";

/// A client declared in the settings file; upserted into the database on start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub client_id: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub token_signing_alg: Option<String>,
    /// The assurance every sign-in for this client needs: low, substantial or high.
    #[serde(default)]
    pub min_acr: Option<String>,
    /// Inline JWK Set (JSON) for private_key_jwt client authentication.
    #[serde(default)]
    pub jwks: Option<String>,
    /// The service's name shown to people ("Вход в сервис: …"); the client_id when absent.
    #[serde(default)]
    pub display_name: Option<Localized>,
    /// A resource server: the audiences (client ids) whose access tokens it may introspect.
    #[serde(default)]
    pub introspection_audiences: Vec<String>,
    /// System roles of which an account must hold one to sign in (applicant, employee, admin,
    /// auditor); empty: any the policies allow.
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    /// Restricted claims the client may receive (personal_number).
    #[serde(default)]
    pub claims: Vec<String>,
    /// No sign-ins and no tokens.
    #[serde(default)]
    pub disabled: bool,
    /// An automation client of the administration API: `system`, or the id of the organisation
    /// whose subtree it administers (with client credentials and the scope `vhod:admin`).
    #[serde(default)]
    pub admin_scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileSettings {
    listen: Option<String>,
    issuer: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    keys_dir: Option<PathBuf>,
    policies_dir: Option<PathBuf>,
    log_format: Option<String>,
    dev: Option<bool>,
    trust_forwarded_for: Option<bool>,
    trusted_proxies: Option<u64>,
    header_read_timeout_seconds: Option<u64>,
    body_read_timeout_seconds: Option<u64>,
    keep_alive_timeout_seconds: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_ip: Option<u64>,
    write_timeout_seconds: Option<u64>,
    linger_seconds: Option<u64>,
    linger_max_bytes: Option<u64>,
    profile_reauth_seconds: Option<u64>,
    delegation_max_days: Option<u64>,
    access_token_ttl: Option<u64>,
    id_token_ttl: Option<u64>,
    refresh_token_ttl: Option<u64>,
    session_ttl: Option<u64>,
    code_ttl: Option<u64>,
    login_ttl: Option<u64>,
    password_max_concurrent: Option<usize>,
    password_max_queue: Option<usize>,
    password_min_length: Option<u64>,
    sms_provider: Option<String>,
    twilio_account_sid: Option<String>,
    twilio_auth_token: Option<String>,
    twilio_from: Option<String>,
    twilio_messaging_service_sid: Option<String>,
    twilio_api_base: Option<String>,
    email_provider: Option<String>,
    smtp_host: Option<String>,
    smtp_port: Option<u64>,
    smtp_username: Option<String>,
    smtp_password: Option<String>,
    smtp_from: Option<String>,
    smtp_tls: Option<String>,
    lockout_threshold: Option<u64>,
    lockout_seconds: Option<u64>,
    ip_failure_limit: Option<u64>,
    otp_daily_cap: Option<u64>,
    sms_per_ip_hour: Option<u64>,
    sms_per_prefix_hour: Option<u64>,
    sms_global_hour: Option<u64>,
    login_delay_ms: Option<u64>,
    register_per_ip_hour: Option<u64>,
    reset_per_ip_hour: Option<u64>,
    password_signin_reserve: Option<u64>,
    password_other_queue: Option<u64>,
    pending_account_ttl: Option<u64>,
    crl_required: Option<bool>,
    crl_fetch: Option<bool>,
    crl_fetch_timeout_ms: Option<u64>,
    crl_max_bytes: Option<u64>,
    cert_max_chain_certs: Option<u64>,
    cert_max_signature_checks: Option<u64>,
    cert_verify_timeout_ms: Option<u64>,
    cert_verify_max_concurrent: Option<u64>,
    service_name: Option<Localized>,
    operator: Option<Localized>,
    support_email: Option<String>,
    support_phone: Option<String>,
    privacy_url: Option<String>,
    consent_text: Option<Localized>,
    sms_name: Option<Localized>,
    clients: Vec<ClientSpec>,
    upstream: Vec<upstream::UpstreamSpec>,
    audit: audit::AuditFile,
}

/// A secret setting: its Debug output is redacted, so printing settings never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where SMS go: the dev outbox file, or Twilio's Programmable Messaging API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsSettings {
    Outbox,
    Twilio {
        account_sid: String,
        auth_token: Secret,
        /// A sender number, or none when a messaging service picks the sender.
        from: Option<String>,
        messaging_service_sid: Option<String>,
        /// https://api.twilio.com, or a test server.
        api_base: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or in tests.
    None,
}

/// Where email goes: the dev outbox file, or an SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailSettings {
    Outbox,
    Smtp {
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        tls: SmtpTls,
    },
}

/// The HTTP front: how long slow clients may take, how many connections are open at once, and
/// how a connection is closed after an answer its client may not have finished sending to.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// From the connection's start (or the end of the previous answer) to the request's last
    /// header line.
    pub header_read_timeout: Duration,
    /// From the request's head to the last byte of its body.
    pub body_read_timeout: Duration,
    /// A connection with no request in progress and nothing received for this long is closed.
    pub keep_alive_timeout: Duration,
    /// Connections open at once; beyond it new ones wait in the listen queue.
    pub max_connections: usize,
    /// Connections one peer address may hold at once; more from it are closed at once, so one
    /// client cannot take every slot.
    pub max_connections_per_ip: usize,
    /// An answer whose bytes the client does not take for this long (it stopped reading) ends
    /// the connection.
    pub write_timeout: Duration,
    /// After answering before the request body was read (413, 408…): how long, and how many
    /// bytes, to read and discard before closing, so the client reads the answer instead of a
    /// reset (RFC 9112 §9.6).
    pub linger_time: Duration,
    pub linger_max_bytes: usize,
}

/// Abuse limits (issue figures are the defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    pub password_min_length: usize,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u64,
    pub lockout_seconds: u64,
    /// Failed logins from one IP address per lockout window.
    pub ip_failure_limit: u64,
    /// Codes sent to one phone number per day.
    pub otp_daily_cap: u64,
    pub sms_per_ip_hour: u64,
    /// Per phone prefix (country and operator code, e.g. +37529).
    pub sms_per_prefix_hour: u64,
    pub sms_global_hour: u64,
    /// Base of the growing delay before answering the 3rd, 4th, … consecutive failure.
    pub login_delay_ms: u64,
    /// Registrations that reach the uniqueness checks and the hasher, per client IP and hour.
    pub register_per_ip_hour: u64,
    /// New passwords set by recovery (each one hashed), per client IP and hour.
    pub reset_per_ip_hour: u64,
    /// Hasher slots only sign-ins may use: registration and recovery get the rest (at least one).
    pub password_signin_reserve: u64,
    /// Places in the hasher queue for registration and recovery, apart from the sign-ins' queue.
    pub password_other_queue: u64,
    /// Seconds an unconfirmed registration is kept; then it is treated as absent and deleted.
    pub pending_account_ttl: u64,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Without a trailing slash; `iss` of every token is exactly this string.
    pub issuer: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or test runs) can share one Redis.
    pub redis_prefix: String,
    pub keys_dir: PathBuf,
    pub policies_dir: PathBuf,
    pub log_json: bool,
    /// Developer conveniences: demo client and user, the /demo relying party, http redirect URIs.
    pub dev: bool,
    pub trust_forwarded_for: bool,
    /// Proxies in front of vhod that each append the address they saw to X-Forwarded-For: the
    /// client address is the one the outermost of them saw (counted from the right).
    pub trusted_proxies: usize,
    pub http: HttpSettings,
    /// A contact change at /profile needs a sign-in (or the password entered again) at most
    /// this many seconds old.
    pub profile_reauth_seconds: u64,
    /// The longest a delegation may last (its `not_after` is mandatory and bounded by this).
    pub delegation_max_days: u64,
    pub access_token_ttl: u64,
    pub id_token_ttl: u64,
    pub refresh_token_ttl: u64,
    pub session_ttl: u64,
    pub code_ttl: u64,
    pub login_ttl: u64,
    pub password_max_concurrent: usize,
    pub password_max_queue: usize,
    pub sms: SmsSettings,
    pub email: EmailSettings,
    pub limits: Limits,
    /// Certificate sign-in: CRL policy.
    pub pki: crate::pki::trust::PkiSettings,
    /// The service's name, operator, support, privacy notice and consent wording on the pages.
    pub face: Face,
    pub clients: Vec<ClientSpec>,
    /// The identity providers people may sign in through (`[[upstream]]`).
    pub upstreams: Vec<upstream::Upstream>,
    /// The audit trail: chain, checkpoints, retention (`[audit]`).
    pub audit: audit::AuditSettings,
}

impl Settings {
    pub fn load(config: Option<&Path>) -> anyhow::Result<Self> {
        let file: FileSettings = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading settings file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing settings file {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        Self::from_parts(file, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn from_parts(
        file: FileSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let file_face = Face {
            service_name: file.service_name.clone(),
            operator: file.operator.clone(),
            support_email: file.support_email.clone(),
            support_phone: file.support_phone.clone(),
            privacy_url: file.privacy_url.clone(),
            consent_text: file.consent_text.clone(),
            sms_name: file.sms_name.clone(),
        };
        let listen_s = env("VHOD_LISTEN")
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s
            .parse()
            .with_context(|| format!("VHOD_LISTEN {listen_s:?} is not an address:port"))?;
        let issuer = env("VHOD_ISSUER")
            .or(file.issuer)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let issuer = issuer.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&issuer).context("VHOD_ISSUER is not a URL")?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            bail!(
                "VHOD_ISSUER must not have a query or fragment (OpenID Connect Discovery 1.0 §2)"
            );
        }
        if !matches!(parsed.scheme(), "https" | "http") {
            bail!("VHOD_ISSUER must be an https URL (http only for development)");
        }
        let data_dir = env("VHOD_DATA_DIR")
            .map(PathBuf::from)
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = env("VHOD_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("vhod.db").display()));
        let redis_url = env("VHOD_REDIS_URL").or(file.redis_url);
        let redis_prefix = env("VHOD_REDIS_PREFIX")
            .or(file.redis_prefix)
            .unwrap_or_else(|| "vhod:".into());
        let keys_dir = env("VHOD_KEYS_DIR")
            .map(PathBuf::from)
            .or(file.keys_dir)
            .unwrap_or_else(|| PathBuf::from("./keys"));
        let policies_dir = env("VHOD_POLICIES_DIR")
            .map(PathBuf::from)
            .or(file.policies_dir)
            .unwrap_or_else(|| PathBuf::from("./policies"));
        let log_json = match env("VHOD_LOG_FORMAT").or(file.log_format).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("VHOD_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let https = parsed.scheme() == "https";
        let dev = match env("VHOD_DEV") {
            Some(v) => parse_bool("VHOD_DEV", &v)?,
            None => file.dev.unwrap_or(!https),
        };
        let trust_forwarded_for = match env("VHOD_TRUST_FORWARDED_FOR") {
            Some(v) => parse_bool("VHOD_TRUST_FORWARDED_FOR", &v)?,
            None => file.trust_forwarded_for.unwrap_or(false),
        };
        let num = |name: &str, file_v: Option<u64>, default: u64| -> anyhow::Result<u64> {
            let v = match env(name) {
                Some(s) => s
                    .parse()
                    .with_context(|| format!("{name} must be a number"))?,
                None => file_v.unwrap_or(default),
            };
            if v == 0 {
                bail!("{name} must be positive");
            }
            Ok(v)
        };
        let trusted_proxies = num("VHOD_TRUSTED_PROXIES", file.trusted_proxies, 1)? as usize;
        let secs = |name: &str, file_v: Option<u64>, default: u64| {
            num(name, file_v, default).map(Duration::from_secs)
        };
        let max_connections = num("VHOD_MAX_CONNECTIONS", file.max_connections, 512)? as usize;
        let http = HttpSettings {
            header_read_timeout: secs(
                "VHOD_HEADER_READ_TIMEOUT_SECONDS",
                file.header_read_timeout_seconds,
                10,
            )?,
            body_read_timeout: secs(
                "VHOD_BODY_READ_TIMEOUT_SECONDS",
                file.body_read_timeout_seconds,
                20,
            )?,
            keep_alive_timeout: secs(
                "VHOD_KEEP_ALIVE_TIMEOUT_SECONDS",
                file.keep_alive_timeout_seconds,
                5,
            )?,
            max_connections,
            // Behind trusted proxies every connection comes from a proxy: no cap of its own.
            max_connections_per_ip: num(
                "VHOD_MAX_CONNECTIONS_PER_IP",
                file.max_connections_per_ip,
                if trust_forwarded_for {
                    max_connections as u64
                } else {
                    (max_connections as u64 / 8).max(1)
                },
            )? as usize,
            write_timeout: secs("VHOD_WRITE_TIMEOUT_SECONDS", file.write_timeout_seconds, 20)?,
            linger_time: secs("VHOD_LINGER_SECONDS", file.linger_seconds, 2)?,
            linger_max_bytes: num(
                "VHOD_LINGER_MAX_BYTES",
                file.linger_max_bytes,
                4 * 1024 * 1024,
            )? as usize,
        };
        let profile_reauth_seconds = num(
            "VHOD_PROFILE_REAUTH_SECONDS",
            file.profile_reauth_seconds,
            300,
        )?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let text = |name: &str, file_v: Option<String>| env(name).or(file_v);
        let sms = match text("VHOD_SMS_PROVIDER", file.sms_provider).as_deref() {
            None | Some("outbox") => SmsSettings::Outbox,
            Some("twilio") => {
                let need = |name: &str, v: Option<String>| {
                    v.with_context(|| format!("{name} is required when VHOD_SMS_PROVIDER=twilio"))
                };
                let from = text("VHOD_TWILIO_FROM", file.twilio_from);
                let messaging_service_sid = text(
                    "VHOD_TWILIO_MESSAGING_SERVICE_SID",
                    file.twilio_messaging_service_sid,
                );
                if from.is_none() && messaging_service_sid.is_none() {
                    bail!("Twilio needs VHOD_TWILIO_FROM or VHOD_TWILIO_MESSAGING_SERVICE_SID");
                }
                SmsSettings::Twilio {
                    account_sid: need(
                        "VHOD_TWILIO_ACCOUNT_SID",
                        text("VHOD_TWILIO_ACCOUNT_SID", file.twilio_account_sid),
                    )?,
                    auth_token: Secret(need(
                        "VHOD_TWILIO_AUTH_TOKEN",
                        text("VHOD_TWILIO_AUTH_TOKEN", file.twilio_auth_token),
                    )?),
                    from,
                    messaging_service_sid,
                    api_base: text("VHOD_TWILIO_API_BASE", file.twilio_api_base)
                        .unwrap_or_else(|| "https://api.twilio.com".into())
                        .trim_end_matches('/')
                        .to_string(),
                }
            }
            Some(other) => bail!("VHOD_SMS_PROVIDER must be outbox or twilio, not {other:?}"),
        };
        let email = match text("VHOD_EMAIL_PROVIDER", file.email_provider).as_deref() {
            None | Some("outbox") => EmailSettings::Outbox,
            Some("smtp") => {
                let tls = match text("VHOD_SMTP_TLS", file.smtp_tls).as_deref() {
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("tls") => SmtpTls::Tls,
                    Some("none") => SmtpTls::None,
                    Some(other) => {
                        bail!("VHOD_SMTP_TLS must be starttls, tls or none, not {other:?}")
                    }
                };
                let port = match env("VHOD_SMTP_PORT") {
                    Some(p) => p.parse().context("VHOD_SMTP_PORT must be a port number")?,
                    None => file.smtp_port.map(|p| p as u16).unwrap_or(match tls {
                        SmtpTls::Tls => 465,
                        _ => 587,
                    }),
                };
                EmailSettings::Smtp {
                    host: text("VHOD_SMTP_HOST", file.smtp_host)
                        .context("VHOD_SMTP_HOST is required when VHOD_EMAIL_PROVIDER=smtp")?,
                    port,
                    username: text("VHOD_SMTP_USERNAME", file.smtp_username),
                    password: text("VHOD_SMTP_PASSWORD", file.smtp_password).map(Secret),
                    from: text("VHOD_SMTP_FROM", file.smtp_from)
                        .context("VHOD_SMTP_FROM is required when VHOD_EMAIL_PROVIDER=smtp")?,
                    tls,
                }
            }
            Some(other) => bail!("VHOD_EMAIL_PROVIDER must be outbox or smtp, not {other:?}"),
        };
        let limits = Limits {
            password_min_length: num("VHOD_PASSWORD_MIN_LENGTH", file.password_min_length, 8)?
                as usize,
            lockout_threshold: num("VHOD_LOCKOUT_THRESHOLD", file.lockout_threshold, 10)?,
            lockout_seconds: num("VHOD_LOCKOUT_SECONDS", file.lockout_seconds, 900)?,
            ip_failure_limit: num("VHOD_IP_FAILURE_LIMIT", file.ip_failure_limit, 100)?,
            otp_daily_cap: num("VHOD_OTP_DAILY_CAP", file.otp_daily_cap, 10)?,
            sms_per_ip_hour: num("VHOD_SMS_PER_IP_HOUR", file.sms_per_ip_hour, 10)?,
            sms_per_prefix_hour: num("VHOD_SMS_PER_PREFIX_HOUR", file.sms_per_prefix_hour, 300)?,
            sms_global_hour: num("VHOD_SMS_GLOBAL_HOUR", file.sms_global_hour, 3000)?,
            login_delay_ms: num("VHOD_LOGIN_DELAY_MS", file.login_delay_ms, 250)?,
            register_per_ip_hour: num("VHOD_REGISTER_PER_IP_HOUR", file.register_per_ip_hour, 20)?,
            reset_per_ip_hour: num("VHOD_RESET_PER_IP_HOUR", file.reset_per_ip_hour, 20)?,
            password_signin_reserve: num(
                "VHOD_PASSWORD_SIGNIN_RESERVE",
                file.password_signin_reserve,
                1,
            )?,
            password_other_queue: num("VHOD_PASSWORD_OTHER_QUEUE", file.password_other_queue, 16)?,
            pending_account_ttl: num("VHOD_PENDING_ACCOUNT_TTL", file.pending_account_ttl, 86_400)?,
        };
        let flag = |name: &str, file_v: Option<bool>, default: bool| -> anyhow::Result<bool> {
            match env(name) {
                Some(v) => parse_bool(name, &v),
                None => Ok(file_v.unwrap_or(default)),
            }
        };
        let pki_default = crate::pki::trust::PkiSettings::default();
        let pki = crate::pki::trust::PkiSettings {
            require_crl: flag(
                "VHOD_CRL_REQUIRED",
                file.crl_required,
                pki_default.require_crl,
            )?,
            fetch_crls: flag("VHOD_CRL_FETCH", file.crl_fetch, pki_default.fetch_crls)?,
            fetch_timeout: std::time::Duration::from_millis(num(
                "VHOD_CRL_FETCH_TIMEOUT_MS",
                file.crl_fetch_timeout_ms,
                pki_default.fetch_timeout.as_millis() as u64,
            )?),
            crl_max_bytes: num(
                "VHOD_CRL_MAX_BYTES",
                file.crl_max_bytes,
                pki_default.crl_max_bytes as u64,
            )? as usize,
            max_chain_certs: num(
                "VHOD_CERT_MAX_CHAIN_CERTS",
                file.cert_max_chain_certs,
                pki_default.max_chain_certs as u64,
            )? as usize,
            max_signature_checks: num(
                "VHOD_CERT_MAX_SIGNATURE_CHECKS",
                file.cert_max_signature_checks,
                pki_default.max_signature_checks as u64,
            )? as usize,
            verify_timeout: std::time::Duration::from_millis(num(
                "VHOD_CERT_VERIFY_TIMEOUT_MS",
                file.cert_verify_timeout_ms,
                pki_default.verify_timeout.as_millis() as u64,
            )?),
            verify_max_concurrent: num(
                "VHOD_CERT_VERIFY_MAX_CONCURRENT",
                file.cert_verify_max_concurrent,
                cores as u64,
            )? as usize,
        };
        let face = face(&env, &file_face)?;
        let upstreams = upstream::validate(file.upstream, dev, &keys_dir, &env)?;
        let audit = audit::settings(
            file.audit,
            &env,
            audit::Around {
                dev,
                data_dir: &data_dir,
                host: parsed.host_str().unwrap_or("vhod"),
            },
        )?;
        let mut clients = file.clients;
        if clients.iter().any(|c| c.client_id == PROFILE_CLIENT) {
            bail!("the client_id {PROFILE_CLIENT} is reserved for the profile page's sign-in");
        }
        // An http issuer outside development cannot have http redirect URIs: no such sign-in.
        let profile = profile_client(&issuer);
        if crate::identity::redirect_uri::RedirectUri::register(&profile.redirect_uris[0], dev)
            .is_ok()
        {
            clients.push(profile);
        }
        Ok(Settings {
            face,
            listen,
            issuer,
            data_dir,
            database_url,
            redis_url,
            redis_prefix,
            keys_dir,
            policies_dir,
            log_json,
            dev,
            trust_forwarded_for,
            trusted_proxies,
            http,
            profile_reauth_seconds,
            delegation_max_days: num("VHOD_DELEGATION_MAX_DAYS", file.delegation_max_days, 90)?,
            access_token_ttl: num("VHOD_ACCESS_TOKEN_TTL", file.access_token_ttl, 600)?,
            id_token_ttl: num("VHOD_ID_TOKEN_TTL", file.id_token_ttl, 600)?,
            refresh_token_ttl: num("VHOD_REFRESH_TOKEN_TTL", file.refresh_token_ttl, 30 * 86400)?,
            session_ttl: num("VHOD_SESSION_TTL", file.session_ttl, 12 * 3600)?,
            code_ttl: num("VHOD_CODE_TTL", file.code_ttl, 60)?,
            login_ttl: num("VHOD_LOGIN_TTL", file.login_ttl, 1800)?,
            password_max_concurrent: num(
                "VHOD_PASSWORD_MAX_CONCURRENT",
                file.password_max_concurrent.map(|v| v as u64),
                cores as u64,
            )? as usize,
            password_max_queue: num(
                "VHOD_PASSWORD_MAX_QUEUE",
                file.password_max_queue.map(|v| v as u64),
                64,
            )? as usize,
            sms,
            email,
            limits,
            pki,
            clients,
            upstreams,
            audit,
        })
    }

    pub fn https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// How long a retired signing key stays published: every token it signed must have expired.
    pub fn key_retention(&self) -> u64 {
        self.access_token_ttl.max(self.id_token_ttl) + 300
    }
}

/// The pages' face from the environment over the file, each value checked.
fn face(env: &impl Fn(&str) -> Option<String>, file: &Face) -> anyhow::Result<Face> {
    let text =
        |name: &str, f: &Option<Localized>, max: usize| -> anyhow::Result<Option<Localized>> {
            let l = Localized::from_env(env, name, f.clone());
            if let Some(l) = &l {
                l.check(name, max).map_err(anyhow::Error::msg)?;
            }
            Ok(l)
        };
    let plain = |name: &str, f: &Option<String>| env(name).or(f.clone()).filter(|v| !v.is_empty());
    let support_email = plain("VHOD_SUPPORT_EMAIL", &file.support_email);
    if let Some(e) = &support_email
        && crate::identity::contact::Email::parse(e).is_err()
    {
        bail!("VHOD_SUPPORT_EMAIL {e:?} is not an email address");
    }
    let support_phone = plain("VHOD_SUPPORT_PHONE", &file.support_phone);
    if let Some(p) = &support_phone
        && (p.len() > 32 || !p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)))
    {
        bail!("VHOD_SUPPORT_PHONE {p:?} is not a phone number (digits, spaces, + - ( ))");
    }
    let privacy_url = plain("VHOD_PRIVACY_URL", &file.privacy_url);
    if let Some(u) = &privacy_url
        && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
    {
        bail!("VHOD_PRIVACY_URL {u:?} is not an http(s) URL");
    }
    let sms_name = text("VHOD_SMS_NAME", &file.sms_name, 40)?;
    if let Some(n) = &sms_name {
        crate::web::sms::check_sender_name(n).map_err(anyhow::Error::msg)?;
    }
    Ok(Face {
        service_name: text("VHOD_SERVICE_NAME", &file.service_name, 100)?,
        operator: text("VHOD_OPERATOR", &file.operator, 200)?,
        support_email,
        support_phone,
        privacy_url,
        consent_text: text("VHOD_CONSENT_TEXT", &file.consent_text, 4000)?,
        sms_name,
    })
}

/// The profile page's own sign-in: a public client whose only redirect URI is `/profile`.
fn profile_client(issuer: &str) -> ClientSpec {
    ClientSpec {
        client_id: PROFILE_CLIENT.into(),
        secret: None,
        public: true,
        redirect_uris: vec![format!("{issuer}/profile")],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scope: Some("openid".into()),
        backchannel_logout_uri: None,
        token_signing_alg: None,
        min_acr: None,
        jwks: None,
        introspection_audiences: vec![],
        allowed_roles: vec![],
        claims: vec![],
        disabled: false,
        admin_scope: None,
        display_name: Some(Localized {
            ru: Some("Профиль".into()),
            be: Some("Профіль".into()),
            en: Some("Profile".into()),
        }),
    }
}

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name} must be true or false, not {v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(file: &str, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_parts(toml::from_str(file)?, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer, "http://127.0.0.1:8080");
        assert!(s.database_url.starts_with("sqlite://./data/vhod.db"));
        assert!(s.redis_url.is_none());
        assert!(s.dev);
    }

    #[test]
    fn hardening_defaults_and_overrides() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.http.body_read_timeout, Duration::from_secs(20));
        assert_eq!(s.http.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(s.http.max_connections, 512);
        assert_eq!(s.http.max_connections_per_ip, 64);
        assert_eq!(s.http.write_timeout, Duration::from_secs(20));
        assert_eq!(s.http.linger_time, Duration::from_secs(2));
        assert_eq!(s.http.linger_max_bytes, 4 * 1024 * 1024);
        assert_eq!(s.trusted_proxies, 1);
        assert_eq!(s.profile_reauth_seconds, 300);
        let s = load(
            "max_connections = 64\ntrusted_proxies = 2",
            &[("VHOD_HEADER_READ_TIMEOUT_SECONDS", "3")],
        )
        .unwrap();
        assert_eq!(s.http.max_connections, 64);
        assert_eq!(s.http.max_connections_per_ip, 8);
        assert_eq!(s.trusted_proxies, 2);
        let behind_proxies = load("trust_forwarded_for = true", &[]).unwrap();
        assert_eq!(behind_proxies.http.max_connections_per_ip, 512);
        assert_eq!(s.http.header_read_timeout, Duration::from_secs(3));
        assert!(load("", &[("VHOD_MAX_CONNECTIONS", "0")]).is_err());
        assert!(load("", &[("VHOD_TRUSTED_PROXIES", "0")]).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let s = load(
            "issuer = \"https://file.example\"\nlisten = \"127.0.0.1:9000\"",
            &[("VHOD_ISSUER", "https://env.example/")],
        )
        .unwrap();
        assert_eq!(s.issuer, "https://env.example");
        assert_eq!(s.listen.port(), 9000);
        assert!(!s.dev, "https issuers are production by default");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let t = load(
            "",
            &[
                ("VHOD_SMS_PROVIDER", "twilio"),
                ("VHOD_TWILIO_ACCOUNT_SID", "AC1"),
                ("VHOD_TWILIO_AUTH_TOKEN", "hunter2-token"),
                ("VHOD_TWILIO_FROM", "+375290000000"),
            ],
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn providers_are_configured_completely_or_refused() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.sms, SmsSettings::Outbox);
        assert_eq!(s.email, EmailSettings::Outbox);
        assert_eq!(s.limits.lockout_threshold, 10);
        assert_eq!(s.limits.pending_account_ttl, 86_400);
        assert_eq!(s.limits.password_signin_reserve, 1);
        assert!(load("", &[("VHOD_SMS_PROVIDER", "twilio")]).is_err());
        assert!(load("", &[("VHOD_SMS_PROVIDER", "pigeon")]).is_err());
        let t = load(
            "",
            &[
                ("VHOD_SMS_PROVIDER", "twilio"),
                ("VHOD_TWILIO_ACCOUNT_SID", "AC1"),
                ("VHOD_TWILIO_AUTH_TOKEN", "t"),
                ("VHOD_TWILIO_MESSAGING_SERVICE_SID", "MG1"),
            ],
        )
        .unwrap();
        assert!(
            matches!(t.sms, SmsSettings::Twilio { ref api_base, .. } if api_base == "https://api.twilio.com")
        );
        assert!(load("", &[("VHOD_EMAIL_PROVIDER", "smtp")]).is_err());
        let m = load(
            "",
            &[
                ("VHOD_EMAIL_PROVIDER", "smtp"),
                ("VHOD_SMTP_HOST", "mx"),
                ("VHOD_SMTP_FROM", "a@b.by"),
                ("VHOD_SMTP_TLS", "tls"),
            ],
        )
        .unwrap();
        assert!(matches!(
            m.email,
            EmailSettings::Smtp {
                port: 465,
                tls: SmtpTls::Tls,
                ..
            }
        ));
    }

    #[test]
    fn the_face_comes_per_language_from_the_environment_or_the_file() {
        let s = load(
            "operator = { ru = \"ОАО «Оператор»\", en = \"Operator JSC\" }\nsupport_email = \"help@example.by\"",
            &[("VHOD_SERVICE_NAME_EN", "Appeals sign-in")],
        )
        .unwrap();
        let name = s.face.service_name.unwrap();
        assert_eq!(name.get(Lang::En), Some("Appeals sign-in"));
        assert_eq!(name.get(Lang::Ru), None, "the built-in Russian name stays");
        let op = s.face.operator.unwrap();
        assert_eq!(op.get(Lang::Be), Some("ОАО «Оператор»"));
        assert_eq!(op.get(Lang::En), Some("Operator JSC"));
        assert_eq!(s.face.support_email.as_deref(), Some("help@example.by"));
        let s = load(
            "",
            &[
                ("VHOD_CONSENT_TEXT", "Согласен."),
                ("VHOD_CONSENT_TEXT_BE", "Згодны."),
            ],
        )
        .unwrap();
        let c = s.face.consent_text.unwrap();
        assert_eq!(
            (c.get(Lang::Ru), c.get(Lang::Be), c.get(Lang::En)),
            (Some("Согласен."), Some("Згодны."), Some("Согласен."))
        );
        assert!(load("", &[("VHOD_SUPPORT_EMAIL", "not an email")]).is_err());
        assert!(load("", &[("VHOD_SUPPORT_PHONE", "call us")]).is_err());
        assert!(load("", &[("VHOD_PRIVACY_URL", "javascript:alert(1)")]).is_err());
        assert!(
            load(
                "",
                &[("VHOD_SMS_NAME", "Республиканская система обращений граждан")]
            )
            .is_err()
        );
        assert!(load("", &[("VHOD_SERVICE_NAME", "a\u{7}b")]).is_err());
    }

    #[test]
    fn the_profile_client_is_built_in_and_its_id_reserved() {
        let s = load("", &[]).unwrap();
        let p = s
            .clients
            .iter()
            .find(|c| c.client_id == PROFILE_CLIENT)
            .unwrap();
        assert!(p.public);
        assert_eq!(
            p.redirect_uris,
            vec!["http://127.0.0.1:8080/profile".to_string()]
        );
        assert!(
            load(
                "[[clients]]\nclient_id = \"vhod-profile\"\npublic = true",
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn upstreams_come_from_the_file_and_stop_a_bad_start() {
        let spec = |issuer: &str| {
            format!(
                "[[upstream]]\nname = \"npes\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\n\
                 client_id = \"vhod\"\nclient_secret = \"s\"\ndisplay_name = \"НПЭС\"\n\
                 [upstream.acr]\ndefault = \"substantial\"\n"
            )
        };
        let file: FileSettings =
            toml::from_str(&spec("https://npes.example.by")).expect("the file");
        let s = Settings::from_parts(file, |k| (k == "VHOD_DEV").then(|| "false".into()))
            .expect("settings");
        assert_eq!(s.upstreams.len(), 1);
        assert_eq!(s.upstreams[0].name, "npes");
        let file: FileSettings = toml::from_str(&spec("http://npes.example.by")).expect("the file");
        let e = Settings::from_parts(file, |k| (k == "VHOD_DEV").then(|| "false".into()))
            .expect_err("plain http outside development");
        assert!(format!("{e:#}").contains("[[upstream]] \"npes\""), "{e:#}");
    }

    /// The example settings file (k8s/vhod.example.toml) with its upstream examples
    /// uncommented is a valid start: what README and the example show, a deployment can use.
    #[test]
    fn the_example_settings_file_is_valid_with_its_upstreams() {
        let text = include_str!("../../k8s/vhod.example.toml");
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if !l.starts_with("##") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let keys = tempfile::tempdir().expect("a keys directory");
        std::fs::write(keys.path().join("esifl.pem"), "a key").expect("the key file");
        let keys_dir = keys.path().display().to_string();
        let env = move |k: &str| match k {
            "VHOD_DEV" => Some("false".to_string()),
            "VHOD_KEYS_DIR" => Some(keys_dir.clone()),
            "VHOD_UPSTREAM_NPES_SECRET" => Some("s3cret".into()),
            _ => None,
        };
        let as_is: FileSettings = toml::from_str(text).expect("the example as shipped");
        let s = Settings::from_parts(as_is, env.clone()).expect("valid as shipped");
        assert!(
            s.upstreams.is_empty(),
            "shipped with the upstreams commented"
        );
        let file: FileSettings = toml::from_str(&uncommented).expect("the example uncommented");
        let s = Settings::from_parts(file, env).expect("valid with its upstreams");
        let names: Vec<&str> = s.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["npes", "esifl"]);
        assert!(
            s.upstreams
                .iter()
                .all(|u| u.claims.personal_number_verified)
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(load("issuerr = \"x\"", &[]).is_err());
        assert!(load("", &[("VHOD_LISTEN", "nonsense")]).is_err());
        assert!(load("", &[("VHOD_ISSUER", "https://x.example/?a=b")]).is_err());
        assert!(load("", &[("VHOD_LOG_FORMAT", "xml")]).is_err());
        assert!(load("", &[("VHOD_ACCESS_TOKEN_TTL", "0")]).is_err());
    }
}
