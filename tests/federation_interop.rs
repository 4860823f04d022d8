//! Federated login with an upstream this project did not write: `oidc-provider` (panva), an
//! OpenID Certified provider for Node.js, run by tests/upstream/oidc-provider/server.js. The
//! deployment under test (both backends) is its relying party; a browser without JavaScript
//! walks from vhod's client through vhod's login page, oidc-provider's login and consent forms
//! and back, and the client sees only vhod's ID token.
//!
//! Needs `node` and `npm ci --prefix tests/upstream/oidc-provider`. `.ci/run` installs it and
//! sets VHOD_TEST_REQUIRE_BROWSER=1 / VHOD_TEST_REQUIRE_SERVERS=1, under which anything missing
//! FAILS; elsewhere the tests say what is missing and pass without running.
//!
//! oidc-provider answers on `localhost`, vhod on `127.0.0.1`: a cookie jar keeps cookies by
//! host and not by port. Both listen on 127.0.0.1 only; every wait is bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

/// vhod's client at oidc-provider. The secret has characters that client_secret_basic must
/// form-encode before base64 (RFC 6749 §2.3.1), which oidc-provider decodes strictly.
const CLIENT_ID: &str = "vhod-downstream";
const CLIENT_SECRET: &str = "vhod:secret/with+reserved=chars%&0123456789";

/// The person server.js knows (its ACCOUNT).
const UP_LOGIN: &str = "maria";
const UP_PASSWORD: &str = "panva upstream password 42";
const UP_SUB: &str = "panva-0001";
const UP_FAMILY: &str = "Петрова";
const UP_GIVEN: &str = "Мария";
const UP_EMAIL: &str = "maria.petrova@example.by";
const UP_NUMBER: &str = "4010190A001PB5";

/// Longest wait for oidc-provider to say it listens.
const START: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// node and oidc-provider: found, or the test says what is missing (and fails where required).

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/upstream/oidc-provider")
}

fn find_node() -> Result<(), String> {
    let mut missing = Vec::new();
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => missing.push(format!("node --version failed: {}", out.status)),
        Err(e) => missing.push(format!("node: {e} (apt-get install nodejs npm)")),
    }
    let installed = dir().join("node_modules/oidc-provider/package.json");
    if !installed.is_file() {
        missing.push(format!(
            "{} is missing (npm ci --prefix tests/upstream/oidc-provider)",
            installed.display()
        ));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// Whether the interop tests can run here; panics when they must and cannot.
fn node_available() -> bool {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    match FOUND.get_or_init(find_node) {
        Ok(()) => true,
        Err(missing) => {
            skip_unless_required("oidc-provider interop", missing);
            false
        }
    }
}

/// Records that a walk through oidc-provider ran (CI checks the file).
fn mark_ran() {
    record_ran("oidc-provider");
}

// ---------------------------------------------------------------------------------------------
// The oidc-provider process.

/// A running server.js: killed (and reaped) when dropped, a failing test too. It also exits by
/// itself when its standard input, held here, closes.
struct OidcProvider {
    issuer: String,
    log: PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

impl OidcProvider {
    /// Starts server.js for a vhod whose callback is `redirect_uri`; its stderr goes to a log
    /// in `log_dir`. A port found free can be taken before node binds it: then another is tried.
    fn start(redirect_uri: &str, log_dir: &std::path::Path) -> OidcProvider {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start(free_port(), redirect_uri, log_dir) {
                Ok(op) => return op,
                Err(log) if log.contains("EADDRINUSE") => failures.push(log),
                Err(log) => panic!("oidc-provider did not start: {log}"),
            }
        }
        panic!("oidc-provider found no free port: {failures:?}");
    }

    fn try_start(port: u16, redirect_uri: &str, log_dir: &std::path::Path) -> Result<Self, String> {
        let log = log_dir.join(format!("oidc-provider-{port}.log"));
        let mut child = Command::new("node")
            .arg(dir().join("server.js"))
            .current_dir(dir())
            .env("OIDC_PROVIDER_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URIS", redirect_uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .map_err(|e| format!("node: {e}"))?;
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        // The first line says it listens; the rest is read (and dropped) so the pipe never fills.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let logs = |log: &PathBuf| std::fs::read_to_string(log).unwrap_or_default();
        let mut op = OidcProvider {
            issuer: format!("http://localhost:{port}"),
            log,
            child,
            _stdin: stdin,
        };
        match rx.recv_timeout(START) {
            Ok(Some(line)) if line == format!("listening {}", op.issuer) => Ok(op),
            Ok(line) => {
                let _ = op.child.wait();
                Err(format!("said {line:?}: {}", logs(&op.log)))
            }
            Err(_) => Err(format!("not listening in {START:?}: {}", logs(&op.log))),
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The deployment under test, with oidc-provider as its upstream "panva".

fn upstream_settings(issuer: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "panva"
kind = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
client_auth = "client_secret_basic"
scopes = ["openid", "profile", "email", "personal_number"]
display_name = {{ ru = "Вход через oidc-provider", be = "Уваход праз oidc-provider", en = "Sign in with oidc-provider" }}
timeout_ms = 5000
[upstream.claims]
family_name = "family_name"
given_name = "given_name"
email = "email"
email_verified = "email_verified"
personal_number = "personal_number"
personal_number_verified = true
[upstream.acr]
default = "substantial"
"#
    )
}

/// vhod (on `d`) and oidc-provider, each knowing the other.
async fn start(d: &Deployment) -> (Server, OidcProvider) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let redirect = format!("{issuer}/login/upstream/panva/callback");
    let op = OidcProvider::start(&redirect, d.dir.path());
    d.append_config(&upstream_settings(&op.issuer));
    let down = d.start_as(port, &issuer, &[]).await;
    (down, op)
}

// ---------------------------------------------------------------------------------------------
// Pages and forms.

/// The action of the page's form `id`, as an absolute URL against `base`.
fn form_action(html: &str, id: &str, base: &str) -> Option<String> {
    let tag = html
        .split("<form")
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or_default())
        .find(|t| t.contains(&format!(r#"id="{id}""#)))?;
    let action = tag.split(r#"action=""#).nth(1)?.split('"').next()?;
    Some(absolute(base, action))
}

fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .map(String::from)
        .unwrap_or_else(|e| panic!("{location} against {base}: {e}"))
}

/// What the walk met at oidc-provider, in order.
#[derive(Debug, PartialEq, Eq)]
enum Met {
    Login,
    WrongPassword,
    Consent,
}

/// From vhod's redirect to oidc-provider until oidc-provider sends the browser back to vhod:
/// redirects are followed by hand inside oidc-provider, its forms submitted as a person would
/// (`password` is typed at the login form; a wrong one first when `typo`). Returns the
/// location it sends the browser to, and what it met.
async fn at_the_upstream(
    browser: &Browser,
    op: &OidcProvider,
    to_upstream: &str,
    password: &str,
    typo: bool,
) -> (String, Vec<Met>) {
    let mut met = Vec::new();
    let mut typo = typo;
    let mut next = browser.get(to_upstream).await;
    for _ in 0..12 {
        let status = next.status().as_u16();
        if (300..400).contains(&status) {
            let loc = absolute(next.url().as_str(), &location(&next));
            if !loc.starts_with(&op.issuer) {
                return (loc, met);
            }
            next = browser.get(&loc).await;
            continue;
        }
        let url = next.url().to_string();
        let html = next.text().await.expect("a page");
        assert!(
            status == 200 || (status == 401 && met.last() == Some(&Met::WrongPassword)),
            "oidc-provider answered {status} at {url}: {html}\n{}",
            op.logs()
        );
        if let Some(action) = form_action(&html, "login", &url) {
            let given = if typo { "not the password" } else { password };
            met.push(if typo { Met::WrongPassword } else { Met::Login });
            typo = false;
            next = browser
                .http
                .post(&action)
                .form(&[("login", UP_LOGIN), ("password", given)])
                .send()
                .await
                .expect("POST login");
        } else if let Some(action) = form_action(&html, "consent", &url) {
            assert!(html.contains(CLIENT_ID), "the consent names vhod: {html}");
            for scope in ["profile", "email", "personal_number"] {
                assert!(
                    html.contains(&format!("<li>{scope}</li>")),
                    "{scope} asked for: {html}"
                );
            }
            met.push(Met::Consent);
            next = browser
                .http
                .post(&action)
                .form(&[("prompt", "consent")])
                .send()
                .await
                .expect("POST consent");
        } else {
            panic!("neither a login nor a consent form at {url}: {html}");
        }
    }
    panic!("oidc-provider did not send the browser back: {met:?}");
}

/// From vhod's login page to the upstream: the button, and the authorization request vhod
/// makes of oidc-provider.
async fn to_upstream(
    browser: &Browser,
    down: &Server,
    op: &OidcProvider,
    page: &LoginPage,
) -> String {
    let start = browser
        .get(&down.url(&href(&page.html, "upstream-panva")))
        .await;
    assert_eq!(
        start.status().as_u16(),
        303,
        "the button sends the browser away"
    );
    let to = location(&start);
    assert!(to.starts_with(&format!("{}/auth?", op.issuer)), "{to}");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&to, p).is_some(), "{p} in {to}");
    }
    assert_eq!(param(&to, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param(&to, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&to, "client_id").as_deref(), Some(CLIENT_ID));
    to
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// A person signs in to vhod's client through oidc-provider: its login form (a wrong password
/// first) and its consent, back to vhod's callback (RFC 9207 `iss`, the code redeemed with
/// client_secret_basic and PKCE, the ID token checked, names from userinfo), and vhod's own ID
/// token for the client: acr as configured, amr `fed`, a new applicant account with
/// oidc-provider's names, confirmed email and vouched-for personal number. The next login, in
/// another browser, finds the same account.
async fn signs_in_through_oidc_provider(d: Deployment) {
    if !node_available() {
        return;
    }
    let (down, op) = start(&d).await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let mut subs = Vec::new();
    for round in 0..2 {
        let browser = Browser::new();
        let p = authorization(&client, &[], &[]);
        let page = browser
            .authorize(&down, &p.url)
            .await
            .expect_err("a login page");
        assert!(
            page.html.contains("Вход через oidc-provider"),
            "the button: {}",
            page.html
        );
        let to = to_upstream(&browser, &down, &op, &page).await;
        let (callback, met) = at_the_upstream(&browser, &op, &to, UP_PASSWORD, round == 0).await;
        let expected = match round {
            0 => vec![Met::WrongPassword, Met::Login, Met::Consent],
            _ => vec![Met::Login, Met::Consent],
        };
        assert_eq!(met, expected, "round {round}");
        assert!(
            callback.starts_with(&down.url("/login/upstream/panva/callback?")),
            "{callback}"
        );
        assert_eq!(
            param(&callback, "iss").as_deref(),
            Some(op.issuer.as_str()),
            "oidc-provider says who answers (RFC 9207)"
        );
        let back = browser.get(&callback).await;
        let status = back.status().as_u16();
        let back_to = location(&back);
        assert_eq!(
            status,
            303,
            "vhod's callback: {}\nvhod: {}\noidc-provider: {}",
            back.text().await.unwrap_or_default(),
            down.logs(),
            op.logs()
        );
        let claims = redeem_code(&down, &back_to, &p).await;
        assert_eq!(
            claims.issuer().as_str(),
            down.issuer,
            "the client sees only vhod"
        );
        assert_eq!(
            claims.auth_context_ref().map(|a| a.as_str()),
            Some("substantial"),
            "the configured default (oidc-provider asserts no acr unless asked)"
        );
        let amr: Vec<String> = (claims.auth_method_refs().into_iter().flatten())
            .map(|a| a.as_str().to_string())
            .collect();
        assert_eq!(amr, ["fed"], "round {round}");
        assert_ne!(claims.subject().as_str(), UP_SUB, "vhod's own subject");
        subs.push(claims.subject().as_str().to_string());
    }
    assert_eq!(
        subs[0], subs[1],
        "the second login finds the account of the first"
    );
    let seeded = d.account(USER).await.expect("vhod's own Ivan");
    assert_ne!(subs[0], seeded.id);
    let store = d.store().await;
    let acc = store
        .accounts()
        .find_by_id(&subs[0])
        .await
        .expect("store")
        .expect("the new account");
    assert_eq!(acc.family_name.as_deref(), Some(UP_FAMILY));
    assert_eq!(acc.given_name.as_deref(), Some(UP_GIVEN));
    assert_eq!(acc.email.as_deref(), Some(UP_EMAIL));
    assert!(acc.email_verified, "oidc-provider vouched for it");
    assert_eq!(acc.roles, ["applicant"]);
    assert!(acc.password_hash.is_none());
    let links = store
        .upstream_identities()
        .of_account(&subs[0])
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(
        (
            links[0].upstream.as_str(),
            links[0].issuer.as_str(),
            links[0].subject.as_str()
        ),
        ("panva", op.issuer.as_str(), UP_SUB)
    );
    let holders = store
        .upstream_identities()
        .accounts_with_personal_number(UP_NUMBER)
        .await
        .expect("numbers");
    assert_eq!(holders, [subs[0].clone()], "the vouched-for number is kept");
    let logins = d
        .wait_events(2, |e| {
            e.kind == "login" && e.outcome == "success" && e.method.as_deref() == Some("upstream")
        })
        .await;
    assert_eq!(logins, 2);
    mark_ran();
}
both_backends!(
    signs_in_through_oidc_provider,
    super::signs_in_through_oidc_provider
);

/// The person cancels at oidc-provider's login form: it answers vhod `access_denied` (with
/// `iss`), vhod shows its page and, going back to the service, tells the client `access_denied`.
async fn cancelling_at_oidc_provider_is_access_denied(d: Deployment) {
    if !node_available() {
        return;
    }
    let (down, op) = start(&d).await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[("ui_locales", "en")]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let to = to_upstream(&browser, &down, &op, &page).await;
    let res = browser.get(&to).await;
    assert_eq!(res.status().as_u16(), 303, "{}", op.logs());
    let interaction = absolute(&to, &location(&res));
    let res = browser.get(&interaction).await;
    let html = res.text().await.expect("the login form");
    let abort = absolute(&interaction, &href(&html, "abort"));
    let mut res = browser.get(&abort).await;
    // oidc-provider resumes the authorization, which then answers the client.
    for _ in 0..3 {
        let loc = absolute(&abort, &location(&res));
        if !loc.starts_with(&op.issuer) {
            break;
        }
        res = browser.get(&loc).await;
    }
    let callback = location(&res);
    assert!(
        callback.starts_with(&down.url("/login/upstream/panva/callback?")),
        "{callback}"
    );
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&callback, "iss").as_deref(), Some(op.issuer.as_str()));
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 403);
    let html = res.text().await.expect("page");
    assert!(
        html.contains("“Sign in with oidc-provider”: signing in was cancelled."),
        "{html}"
    );
    let res = browser
        .get(&down.url(&format!("/login/cancel?tx={}", page.tx)))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(back.starts_with(RP_REDIRECT), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some(p.state.as_str()));
    let denied = d
        .wait_events(1, |e| {
            e.kind == "login" && e.reason.as_deref() == Some("upstream_denied")
        })
        .await;
    assert_eq!(denied, 1);
    mark_ran();
}
both_backends!(
    cancelling_at_oidc_provider_is_access_denied,
    super::cancelling_at_oidc_provider_is_access_denied
);
