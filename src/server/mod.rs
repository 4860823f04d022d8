//! Assembly: state, routes, layers, background upkeep, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::audit::{Audit, AuditWorker};
use crate::authn::password::PasswordHasher;
use crate::config::Settings;
use crate::identity::client::{self, ClientRegistry};
use crate::oidc;
use crate::store::ephemeral::Ephemeral;
use crate::store::sessions::BrowserSessionStore;
use crate::store::sql::Db;
use crate::tokens::keys::KeyStore;
use crate::web::pages::{CSS, Pages};
use crate::{authn, dev, web};

mod views;

/// Everything a request may need; built once, shared by all requests.
pub struct App {
    pub settings: Settings,
    /// The time decisions are taken at (the database's own: one clock for both).
    pub clock: crate::clock::Clock,
    pub db: Db,
    pub eph: Ephemeral,
    pub clients: ClientRegistry,
    pub keys: Arc<KeyStore>,
    pub audit: Audit,
    pub hasher: PasswordHasher,
    pub pages: Arc<Pages>,
    pub discovery_json: Arc<str>,
    pub sessions: BrowserSessionStore,
    /// Outbound HTTP (back-channel logout, Twilio); no redirects, short timeouts.
    pub http: reqwest::Client,
    /// SMS and email: Twilio / SMTP, or the dev outbox.
    pub notifier: crate::notify::Notifier,
    /// Certificate sign-in: trust anchors, CRLs, identity profiles.
    pub trust: crate::pki::trust::Trust,
    /// Federated sign-in: the configured upstream providers.
    pub upstreams: authn::upstream::Connectors,
    /// The decisions (policies/*.cedar), validated at start.
    pub policies: crate::policy::Policies,
    /// The organisation roles (policies/roles.toml).
    pub catalogue: crate::identity::roles::Catalogue,
}

/// Bodies of protocol and form requests are small; anything larger is refused unread.
const MAX_BODY: usize = 64 * 1024;

/// Opens the database (applying migrations) with the settings the CLI and `serve` share.
pub async fn open_db(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database_url).await?;
    db.migrate().await?;
    Ok(db)
}

/// The policies and the organisation roles of `policies/`; an invalid file stops the start
/// with its file, line and message.
pub fn load_policies(
    settings: &Settings,
) -> anyhow::Result<(crate::policy::Policies, crate::identity::roles::Catalogue)> {
    let policies = crate::policy::Policies::load(&settings.policies_dir)
        .with_context(|| format!("policies in {}", settings.policies_dir.display()))?;
    let catalogue = crate::identity::roles::Catalogue::load(&settings.policies_dir)?;
    Ok((policies, catalogue))
}

pub async fn build(settings: Settings) -> anyhow::Result<(Arc<App>, AuditWorker)> {
    crate::web::i18n::load().context("message catalogues")?;
    let (policies, catalogue) = load_policies(&settings)?;
    tracing::info!(
        policies = policies.len(),
        from = %policies.dir.as_ref().map_or("embedded".to_string(), |d| d.display().to_string()),
        "policies loaded"
    );
    // Sessions, hashes and the development outbox live there: the service's user only.
    crate::store::files::private_dir(&settings.data_dir)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .user_agent(concat!("vhod/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    // Before the database: a messaging misconfiguration stops the start with nothing touched.
    let notifier = crate::notify::Notifier::new(&settings, http.clone())
        .context("messaging settings (SMS, email)")?;
    let trust = load_trust(&settings)?;
    let upstreams = authn::upstream::Connectors::new(&settings.upstreams)?;
    let db = open_db(&settings).await?;
    if !trust
        .profiles()
        .iter()
        .any(|p| p.authoritative_personal_number)
        && crate::identity::certificate::has_unscoped(&db).await?
    {
        // Without an authority on numbers these people's identities are found by nobody: each
        // would get a new, empty account at the next sign-in.
        anyhow::bail!(
            "certificate identities made before profiles were scoped (pn:/dn:) exist, and no \
             profile in policies/certificates.toml is authoritative_personal_number: mark the \
             state PKI's profile authoritative (see the embedded copy)"
        );
    }
    for spec in &settings.clients {
        client::save(&db, spec, settings.dev, true)
            .await
            .with_context(|| format!("client {} from the settings file", spec.client_id))?;
    }
    if settings.dev {
        dev::seed(&settings, &db).await?;
    }
    let eph = match &settings.redis_url {
        Some(url) => Ephemeral::redis(url, &settings.redis_prefix)
            .await
            .context("connecting to Redis (VHOD_REDIS_URL)")?,
        None => Ephemeral::memory(),
    };
    let sessions = if eph.is_shared() {
        BrowserSessionStore::Ephemeral(eph.clone())
    } else {
        BrowserSessionStore::Sql(db.clone())
    };
    let keys = {
        let dir = settings.keys_dir.clone();
        let retention = settings.key_retention();
        Arc::new(tokio::task::spawn_blocking(move || KeyStore::open(&dir, retention)).await??)
    };
    let clients = ClientRegistry::load(&db).await?;
    let hasher = PasswordHasher::new(crate::authn::password::hasher::HasherLimits {
        slots: settings.password_max_concurrent,
        sign_in_queue: settings.password_max_queue,
        sign_in_reserve: settings.limits.password_signin_reserve as usize,
        other_queue: settings.limits.password_other_queue as usize,
    })
    .map_err(|e| anyhow::anyhow!("password hasher: {e:?}"))?;
    let (audit, worker) = start_audit(&settings, &db, &keys)?;
    let discovery_json = oidc::discovery::build(&settings)?.into();
    let pages = Arc::new(Pages::with_face(settings.face.clone()));
    let app = Arc::new(App {
        settings,
        clock: db.clock.clone(),
        db,
        eph,
        clients,
        keys,
        audit,
        hasher,
        pages,
        discovery_json,
        sessions,
        http,
        notifier,
        trust,
        upstreams,
        policies,
        catalogue,
    });
    Ok((app, worker))
}

/// The audit writer: its chain sealed with the signing keys, its events followed by the
/// detection rules and the sinks.
fn start_audit(
    settings: &Settings,
    db: &Db,
    keys: &Arc<KeyStore>,
) -> anyhow::Result<(Audit, AuditWorker)> {
    let a = &settings.audit;
    let configured = a.sinks.syslog.is_some() || a.sinks.webhook.is_some();
    let (sinks, sink_worker) = if configured {
        let (s, w) = crate::audit::sink::Sinks::start(a.sinks.clone())?;
        (Some(s), Some(w))
    } else {
        (None, None)
    };
    let (audit, worker) = Audit::start_following(
        db.clone(),
        crate::audit::Sealer {
            settings: a.chain.clone(),
            issuer: settings.issuer.clone(),
            keys: Some(keys.clone()),
            mac: Some(crate::audit::checkpoint::chain_key(&settings.keys_dir)?),
        },
        Some(crate::audit::follow::FollowSettings {
            detect: Some(a.detect.clone()),
            sinks,
            sink_all: a.sink_all,
        }),
    );
    Ok(match sink_worker {
        Some(w) => (audit, worker.with_sinks(w)),
        None => (audit, worker),
    })
}

/// Anchors, CRLs and profiles; a file that does not parse stops the start.
pub fn load_trust(settings: &Settings) -> anyhow::Result<crate::pki::trust::Trust> {
    let (trust, report) = crate::pki::trust::Trust::load(
        &settings.keys_dir,
        &settings.policies_dir,
        settings.pki.clone(),
    )
    .context("certificate trust (keys/trust, policies/certificates.toml)")?;
    tracing::info!(
        anchors = report.anchors,
        crls = report.crls,
        crl_required = settings.pki.require_crl,
        "certificate trust loaded"
    );
    for note in report.skipped {
        tracing::info!("{note}");
    }
    Ok(trust)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let db = app.db.ping().await;
    let eph = app.eph.ping().await;
    match (db, eph) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready").into_response(),
        (db, eph) => {
            tracing::warn!(db = ?db.err(), ephemeral = ?eph.err().map(|e| e.to_string()), "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

async fn css() -> Response {
    let mut res = CSS.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn js() -> Response {
    let mut res = crate::web::pages::CERT_LOGIN_JS.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

/// Unknown addresses: an HTML page for browsers (Accept: text/html), JSON for API clients.
async fn not_found(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let ui_locales = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "ui_locales")
            .map(|(_, v)| v.into_owned())
    });
    app.pages.not_found(&headers, ui_locales.as_deref())
}

pub fn router(app: Arc<App>) -> Router {
    let https = app.settings.https();
    let session_layer = SessionManagerLayer::new(app.sessions.clone())
        .with_name(if https { "__Host-vhod" } else { "vhod" })
        .with_secure(https)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            app.settings.session_ttl as i64,
        )));

    // Pages a browser visits: they carry the cookie session.
    let mut browser = Router::new()
        .route(
            "/authorize",
            get(oidc::authorize::authorize).post(oidc::authorize::authorize),
        )
        .route("/login", get(authn::routes::login_page))
        .route("/login/password", post(authn::routes::password_login))
        .route("/login/cancel", get(authn::routes::cancel))
        .route("/login/refused", get(authn::routes::refused))
        .route(
            "/login/upstream/{name}",
            get(authn::upstream::routes::start),
        )
        .route(
            "/login/upstream/{name}/callback",
            get(authn::upstream::routes::callback),
        )
        .route(
            "/login/certificate/challenge",
            post(authn::certificate::routes::challenge),
        )
        .route(
            "/login/certificate",
            post(authn::certificate::routes::login),
        )
        .route(
            "/register",
            get(authn::registration::routes::form).post(authn::registration::routes::submit),
        )
        .route(
            "/register/confirm",
            get(authn::registration::routes::confirm_page)
                .post(authn::registration::routes::confirm_submit),
        )
        .route(
            "/register/email",
            get(authn::registration::routes::confirm_email),
        )
        .route(
            "/forgot",
            get(authn::recovery::routes::form).post(authn::recovery::routes::submit),
        )
        .route("/forgot/reset", post(authn::recovery::routes::reset_submit))
        .route(
            "/forgot/email",
            get(authn::recovery::routes::email_form).post(authn::recovery::routes::email_submit),
        )
        .route("/profile", get(authn::profile::routes::page))
        .route(
            "/profile/notifications",
            post(authn::profile::routes::notifications),
        )
        .route("/profile/phone", post(authn::profile::routes::phone))
        .route(
            "/profile/upstream/link",
            post(authn::profile::routes::upstream_link),
        )
        .route(
            "/profile/upstream/unlink",
            post(authn::profile::routes::upstream_unlink),
        )
        .route(
            "/profile/phone/confirm",
            post(authn::profile::routes::phone_confirm),
        )
        .route("/profile/email", post(authn::profile::routes::email))
        .route(
            "/profile/email/confirm",
            get(authn::profile::routes::email_confirm),
        )
        .route(
            "/end_session",
            get(oidc::end_session::end_session).post(oidc::end_session::end_session),
        );
    if app.settings.dev {
        browser = browser.merge(dev::demo::routes());
    }
    let browser = browser.layer(session_layer);

    // Endpoints that browser-based (public) clients call from JavaScript: CORS for the origins
    // of registered redirect URIs only, never with cookies.
    let registry = app.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| registry.clients.allows_origin(o))
        }))
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let browser_api = Router::new()
        .route("/token", post(oidc::token::token))
        .route(
            "/userinfo",
            get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        )
        .route("/revoke", post(oidc::revoke::revoke))
        .layer(cors);

    // Machine endpoints: no cookies, no session store round trips.
    let api = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::discovery),
        )
        .route("/jwks", get(oidc::jwks::jwks))
        .merge(browser_api)
        .route("/introspect", post(oidc::introspect::introspect))
        .route(
            "/login/upstream/{name}/backchannel_logout",
            post(authn::upstream::routes::backchannel_logout),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/vhod.css", get(css))
        .route("/static/cert-login.js", get(js))
        // Browsers ask for it on every page; an empty answer keeps their consoles and our logs clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }));

    browser
        .merge(api)
        .merge(crate::admin::api::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.pages.clone(),
            web::page_error::render,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // Outside the body limit: under /admin/v1 even its 413 is a problem document.
        .layer(axum::middleware::from_fn(
            crate::admin::api::problem::ensure,
        ))
        // Outside the body limit and the handlers: whatever they made of a body that missed
        // its deadline, the answer is 408.
        .layer(axum::middleware::from_fn(web::conn::body_timeout))
        // Outside the body limit, so even a 413 carries the security headers.
        .layer(axum::middleware::from_fn(web::headers::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            web::log_request,
        ))
        .with_state(app)
}

/// Keeps the in-memory snapshots fresh and the stores tidy.
fn spawn_upkeep(app: Arc<App>) {
    let a = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = a.clients.refresh(&a.db).await {
                tracing::warn!(error = %e, "client snapshot refresh failed");
            }
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let a2 = a.clone();
            let retention = a.settings.key_retention();
            let r = tokio::task::spawn_blocking(move || a2.keys.refresh(retention)).await;
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "key set refresh failed");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = app.sessions.sweep().await {
                tracing::warn!(error = %e, "session sweep failed");
            }
            if let Err(e) = app.db.grants().sweep().await {
                tracing::warn!(error = %e, "token sweep failed");
            }
            let pending_ttl = app.settings.limits.pending_account_ttl;
            if let Err(e) = crate::identity::account::upkeep(&app.db, pending_ttl).await {
                tracing::warn!(error = %e, "account sweep failed");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let (app, audit_worker) = build(settings).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(issuer = %app.settings.issuer, listen = %listen, "vhod is serving");
    if app.settings.dev {
        dev::announce(&app.settings);
    }
    spawn_upkeep(app.clone());
    web::conn::serve(
        listener,
        router(app.clone()),
        app.settings.http.clone(),
        shutdown_signal(),
    )
    .await;
    audit_worker.finish().await;
    tracing::info!("stopped");
    Ok(())
}
