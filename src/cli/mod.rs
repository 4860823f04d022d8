//! The `vhod` commands. Every command reads the same settings as `serve` and applies pending
//! migrations itself, so it works before the first `serve` and beside a running one.

mod audit;

mod cert;

mod dev;

mod org;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{ClientSpec, Localized, Settings};
use crate::identity::account::{self, NewAccount};
use crate::identity::client;
use crate::server;

#[derive(Parser)]
#[command(
    name = "vhod",
    version,
    about = "Single sign-on (OpenID Connect provider) of the appeals system"
)]
struct Cli {
    /// Settings file (TOML); VHOD_* environment variables override it.
    #[arg(long, global = true, env = "VHOD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage relying parties.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Developer tools: a test PKI and challenge signing (no database needed).
    Dev {
        #[command(subcommand)]
        command: dev::DevCommand,
    },
    /// Check certificates and signatures against the configured trust (keys/trust, CRLs).
    Cert {
        #[command(subcommand)]
        command: cert::CertCommand,
    },
    /// Manage organisations (state bodies, organisations, structural units).
    Org {
        #[command(subcommand)]
        command: org::OrgCommand,
    },
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: org::AdminCommand,
    },
    /// The audit trail: verify its chain and checkpoints.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Manage delegations (temporary transfers of organisation roles).
    Delegation {
        #[command(subcommand)]
        command: org::DelegationCommand,
    },
    /// Check and explain the policies (policies/*.cedar).
    Policy {
        #[command(subcommand)]
        command: org::PolicyCommand,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client.
    Add(ClientAdd),
}

#[derive(Args)]
struct ClientAdd {
    #[arg(long)]
    client_id: String,
    /// Client secret (client_secret_basic / client_secret_post). Without --secret, --public or
    /// --jwks, a random secret is generated and printed once.
    #[arg(long, conflicts_with_all = ["public", "jwks"])]
    secret: Option<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long, conflicts_with = "jwks")]
    public: bool,
    /// JWK Set file with the client's public keys (private_key_jwt).
    #[arg(long)]
    jwks: Option<PathBuf>,
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// authorization_code, refresh_token, client_credentials (default: the first two).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Space-separated scopes the client may request.
    #[arg(long)]
    scope: Option<String>,
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// ES256 (default), RS256 or EdDSA.
    #[arg(long)]
    token_signing_alg: Option<String>,
    /// Require this assurance of every sign-in (low, substantial, high); a session below it is
    /// sent to step up, e.g. to the certificate login for high.
    #[arg(long)]
    min_acr: Option<String>,
    /// The service's name on the login page ("Вход в сервис: …"), in Russian and the fallback
    /// for the other languages.
    #[arg(long)]
    display_name: Option<String>,
    /// The name in Belarusian.
    #[arg(long, requires = "display_name")]
    display_name_be: Option<String>,
    /// The name in English.
    #[arg(long, requires = "display_name")]
    display_name_en: Option<String>,
    /// Make it a resource server for this audience (a client id): it may introspect the access
    /// tokens issued to that client. Repeatable.
    #[arg(long = "introspection-audience")]
    introspection_audiences: Vec<String>,
    /// Only accounts holding one of these system roles may sign in (applicant, employee,
    /// admin, auditor); repeatable. Without: any account the policies allow.
    #[arg(long = "allowed-role")]
    allowed_roles: Vec<String>,
    /// A restricted claim the client may receive (personal_number); repeatable.
    #[arg(long = "claim")]
    claims: Vec<String>,
    /// An automation client of the administration API (with --grant-type client_credentials
    /// and --scope vhod:admin): `system`, or the organisation whose subtree it administers.
    #[arg(long)]
    admin_scope: Option<String>,
    /// Overwrite a client with the same id.
    #[arg(long)]
    replace: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an active, verified account.
    Add(UserAdd),
}

#[derive(Args)]
struct UserAdd {
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
    #[arg(long)]
    phone: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// applicant (default), employee or auditor; may be repeated. An employee is made in an
    /// organisation with --org; an administrator with `vhod admin grant`.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// The organisation (its id) an employee works in: the account's home, whose
    /// administrators manage it.
    #[arg(long)]
    org: Option<String>,
    /// An organisation role of the catalogue (policies/roles.toml) in --org; repeatable.
    #[arg(long = "org-role", requires = "org")]
    org_roles: Vec<String>,
    /// The person's personal identification number: their first certificate sign-in finds
    /// this account instead of making an applicant one.
    #[arg(long, requires = "org")]
    personal_number: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    #[arg(long)]
    middle_name: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add new signing keys; old public keys stay in JWKS until their tokens have expired.
    Rotate,
}

fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve => {
            init_tracing(&settings);
            rt.block_on(server::serve(settings))
        }
        Command::Migrate => rt.block_on(async {
            server::open_db(&settings).await?;
            println!("migrations applied");
            Ok(())
        }),
        Command::Client {
            command: ClientCommand::Add(a),
        } => rt.block_on(client_add(&settings, a)),
        Command::User {
            command: UserCommand::Add(a),
        } => rt.block_on(user_add(&settings, a)),
        Command::Cert { command } => rt.block_on(cert::run(&settings, command)),
        Command::Audit { command } => rt.block_on(audit::run(&settings, command)),
        Command::Org { command } => rt.block_on(org::org(&settings, command)),
        Command::Admin { command } => rt.block_on(org::admin(&settings, command)),
        Command::Delegation { command } => rt.block_on(org::delegation(&settings, command)),
        Command::Policy { command } => rt.block_on(org::policy(&settings, command)),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let added = crate::tokens::keys::rotate(&settings.keys_dir, settings.key_retention())?;
            for k in added {
                println!("new signing key {k}");
            }
            Ok(())
        }
        Command::Dev { command } => dev::run(command),
    }
}

async fn client_add(settings: &Settings, a: ClientAdd) -> anyhow::Result<()> {
    let jwks = match &a.jwks {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let generated =
        (a.secret.is_none() && !a.public && jwks.is_none()).then(crate::secrets::random_token);
    let spec = ClientSpec {
        client_id: a.client_id.clone(),
        secret: a.secret.or(generated.clone()),
        public: a.public,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        grant_types: a.grant_types,
        scope: a.scope,
        backchannel_logout_uri: a.backchannel_logout_uri,
        token_signing_alg: a.token_signing_alg,
        min_acr: a.min_acr,
        jwks,
        display_name: a.display_name.map(|ru| Localized {
            ru: Some(ru),
            be: a.display_name_be,
            en: a.display_name_en,
        }),
        introspection_audiences: a.introspection_audiences,
        allowed_roles: a.allowed_roles,
        claims: a.claims,
        disabled: false,
        admin_scope: a.admin_scope,
    };
    if spec.secret.as_ref().is_some_and(|s| s.len() < 32) {
        eprintln!(
            "warning: a client secret shorter than 32 characters is easier to guess; omit --secret to get a random one"
        );
    }
    let db = server::open_db(settings).await?;
    client::save(&db, &spec, settings.dev, a.replace).await?;
    println!("client {} registered", a.client_id);
    if let Some(secret) = generated {
        println!("client_secret: {secret}");
        println!("(shown once; vhod keeps only its hash)");
    }
    Ok(())
}

async fn user_add(settings: &Settings, a: UserAdd) -> anyhow::Result<()> {
    if a.password.is_empty() || a.password.len() > crate::authn::password::MAX_PASSWORD_LEN {
        bail!("the password must be 1 to 1024 bytes");
    }
    let hash = crate::authn::password::hasher::hash_blocking(&a.password)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e:?}"))?;
    if a.roles.iter().any(|r| r == "admin") {
        bail!(
            "an administrator is made with `vhod admin grant --username U (--system | --org ORG)`"
        );
    }
    let roles = if a.roles.is_empty() {
        vec!["applicant".to_string()]
    } else {
        a.roles
    };
    let new = NewAccount {
        username: a.username,
        password_hash: Some(hash),
        phone: a.phone,
        email: a.email,
        given_name: a.given_name,
        family_name: a.family_name,
        middle_name: a.middle_name,
        roles,
        home_org: None,
        verified: true,
    };
    let acc = match a.org {
        Some(org) => {
            org::employee(
                settings,
                crate::admin::NewEmployee {
                    account: new,
                    org,
                    org_roles: a.org_roles,
                    personal_number: a.personal_number,
                },
            )
            .await?
        }
        None => {
            let db = server::open_db(settings).await?;
            account::create(&db, new).await?
        }
    };
    println!("user {} created (sub {})", acc.username, acc.id);
    Ok(())
}
