//! Developer conveniences, active only in development mode (an http issuer, or VHOD_DEV=true):
//! a demo client and user created on first start, and a built-in demo relying party at /demo.

pub mod demo;
pub mod test_pki;

use std::path::PathBuf;

use crate::config::{ClientSpec, Localized, Settings};
use crate::identity::account::{self, NewAccount};
use crate::identity::client::{self, ClientError};
use crate::store::sql::Db;

pub const DEMO_CLIENT: &str = "demo";
pub const DEMO_USER: &str = "demo";

fn credentials_file(s: &Settings) -> PathBuf {
    s.data_dir.join("demo-credentials.txt")
}

pub async fn seed(settings: &Settings, db: &Db) -> anyhow::Result<()> {
    let spec = ClientSpec {
        client_id: DEMO_CLIENT.into(),
        secret: None,
        public: true,
        redirect_uris: vec![settings.endpoint("/demo/callback")],
        post_logout_redirect_uris: vec![settings.endpoint("/demo")],
        grant_types: vec![],
        scope: None,
        backchannel_logout_uri: None,
        token_signing_alg: None,
        min_acr: None,
        jwks: None,
        display_name: Some(Localized {
            ru: Some("Демо-клиент".into()),
            be: Some("Дэма-кліент".into()),
            en: Some("Demo client".into()),
        }),
        introspection_audiences: vec![],
        allowed_roles: vec![],
        claims: vec![],
        disabled: false,
        admin_scope: None,
    };
    // Replaced on every start: the demo client is ours, and older databases get its name.
    match client::save(db, &spec, true, true).await {
        Ok(()) | Err(ClientError::Duplicate) => {}
        Err(e) => return Err(e.into()),
    }
    if account::find_by_login(db, DEMO_USER).await?.is_none() {
        let password = crate::secrets::random_id();
        let hash = crate::authn::password::hasher::hash_blocking(&password)
            .map_err(|e| anyhow::anyhow!("hashing: {e:?}"))?;
        let created = account::create(
            db,
            NewAccount {
                username: DEMO_USER.into(),
                password_hash: Some(hash),
                given_name: Some("Иван".into()),
                family_name: Some("Демонстрационный".into()),
                email: Some("demo@example.invalid".into()),
                roles: vec!["applicant".into()],
                verified: true,
                ..NewAccount::default()
            },
        )
        .await;
        match created {
            Ok(_) => {
                std::fs::create_dir_all(&settings.data_dir)?;
                std::fs::write(
                    credentials_file(settings),
                    format!("{DEMO_USER} {password}\n"),
                )?;
            }
            Err(account::AccountError::Duplicate) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Tells the developer where to go. Printed to stdout, not logged: it is for the person at the terminal.
pub fn announce(settings: &Settings) {
    let creds = std::fs::read_to_string(credentials_file(settings)).unwrap_or_default();
    let mut parts = creds.split_whitespace();
    println!("\nvhod is running in development mode.");
    println!("  Open {}/demo and sign in", settings.issuer);
    if let (Some(u), Some(p)) = (parts.next(), parts.next()) {
        println!("  as {u} / {p}");
    }
    println!(
        "  Discovery: {}/.well-known/openid-configuration",
        settings.issuer
    );
    println!(
        "  SMS and email go to {} (try {}/register)\n",
        crate::notify::outbox_path(&settings.data_dir).display(),
        settings.issuer
    );
}
