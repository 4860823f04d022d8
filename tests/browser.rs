//! The pages as a person meets them: end-to-end walks in a real browser (headless Chromium from
//! Debian's packages, driven over WebDriver through chromedriver by `fantoccini`) against a real
//! `vhod` process, with axe-core run on every page at a desktop and a phone width.
//!
//! Needs /usr/bin/chromium, /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
//! other paths through VHOD_TEST_CHROMIUM / VHOD_TEST_CHROMEDRIVER) and axe-core
//! (`npm ci --prefix tests/browser`). `.ci/run` installs all three and sets
//! VHOD_TEST_REQUIRE_BROWSER=1, under which anything missing FAILS; elsewhere the suite says
//! what is missing and skips.
//!
//! Selectors name elements by what they are (form actions, field names, ids of the certificate
//! panel, link targets), never by visible text, so restyled pages and reworded strings keep the
//! walks valid. Every wait is bounded; every server (vhod, chromedriver, the relying client)
//! listens on 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::upstream::{MockUpstream, UPSTREAM_CLIENT_ID, UPSTREAM_SECRET};
use common::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use vhod::notify::{Channel, read_outbox};
use vhod::web::i18n::{self, Lang};

/// Longest wait for an element, a navigation or a message.
const WAIT: Duration = Duration::from_secs(20);
/// Longest a whole walk may take (a stuck browser fails the test instead of hanging CI).
const WALK: Duration = Duration::from_secs(240);
const DESKTOP_SIZE: (u32, u32) = (1280, 900);
const PHONE_SIZE: (u32, u32) = (375, 740);

const WEB_CLIENT: &str = "web";
const WEB_SECRET: &str = "web-secret-0123456789abcdefghij";

// ---------------------------------------------------------------------------------------------
// What the suite needs, and what it does without it.

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    axe: String,
}

/// The program named by `var`, else the first of `names` on PATH or in /usr/bin.
fn program(var: &str, names: &[&str]) -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{var}={} is not a file", p.display()))
        };
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/bin"));
    for name in names {
        if let Some(found) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    Err(format!(
        "{} not found (apt-get install chromium chromium-driver, or set {var})",
        names[0]
    ))
}

fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js")
}

fn find_tools() -> Result<Tools, Vec<String>> {
    let chromium = program("VHOD_TEST_CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = program("VHOD_TEST_CHROMEDRIVER", &["chromedriver"]);
    let axe = std::fs::read_to_string(axe_path()).map_err(|e| {
        format!(
            "{}: {e} (npm ci --prefix tests/browser)",
            axe_path().display()
        )
    });
    match (chromium, chromedriver, axe) {
        (Ok(chromium), Ok(chromedriver), Ok(axe)) => Ok(Tools {
            chromium,
            chromedriver,
            axe,
        }),
        (a, b, c) => Err([a.err(), b.err(), c.err()].into_iter().flatten().collect()),
    }
}

/// The tools, or None (after saying why) when they are missing and not required.
fn tools() -> Option<&'static Tools> {
    static TOOLS: OnceLock<Result<Tools, Vec<String>>> = OnceLock::new();
    match TOOLS.get_or_init(find_tools) {
        Ok(t) => Some(t),
        Err(missing) => {
            skip_unless_required("browser suite", &missing.join("; "));
            None
        }
    }
}

/// Records that a walk ran in a real browser (CI checks the file, as for PostgreSQL/Redis).
fn mark_ran() {
    record_ran("browser");
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// One headless Chromium with its chromedriver, and the accessibility findings of its walk.
struct Chrome {
    client: Option<Client>,
    driver: Child,
    driver_url: String,
    session: Option<String>,
    dir: tempfile::TempDir,
    axe: &'static str,
    audits: Mutex<Audits>,
}

/// What axe-core reported over a walk.
#[derive(Default)]
struct Audits {
    checks: usize,
    findings: Vec<String>,
}

async fn wait_http_ok(url: &str, deadline: Duration) -> bool {
    let http = reqwest::Client::new();
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if let Ok(r) = http.get(url).timeout(Duration::from_secs(2)).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

impl Chrome {
    async fn start(tools: &'static Tools) -> Chrome {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log file");
        // chromedriver accepts local connections only (its default; --allowed-ips stays unset).
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", tools.chromedriver.display()));
        let driver_url = format!("http://127.0.0.1:{port}");
        let mut chrome = Chrome {
            client: None,
            driver,
            driver_url,
            session: None,
            dir,
            axe: &tools.axe,
            audits: Mutex::default(),
        };
        if !wait_http_ok(&format!("{}/status", chrome.driver_url), WAIT).await {
            panic!("chromedriver did not start: {}", chrome.driver_log());
        }
        let profile = chrome.dir.path().join("profile");
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 30_000, "script": 30_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": tools.chromium,
                // Without the background-networking flags Chromium tries to reach the (closed)
                // network; a fresh profile keeps runs independent.
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--lang=ru", format!("--window-size={},{}", DESKTOP_SIZE.0, DESKTOP_SIZE.1),
                    format!("--user-data-dir={}", profile.display()),
                ],
                // A citizen's browser: Russian first.
                "prefs": {"intl.accept_languages": "ru-RU,ru"},
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&chrome.driver_url),
        )
        .await;
        let Ok(connected) = client else {
            panic!("no browser session in 60 s: {}", chrome.driver_log())
        };
        let client = connected
            .unwrap_or_else(|e| panic!("no browser session: {e}: {}", chrome.driver_log()));
        chrome.session = client.session_id().await.ok().flatten();
        client
            .set_window_size(DESKTOP_SIZE.0, DESKTOP_SIZE.1)
            .await
            .expect("window size");
        chrome.client = Some(client);
        chrome
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("an open browser session")
    }

    /// Ends the session (which quits Chromium), stops chromedriver and fails on any
    /// accessibility finding of the walk.
    async fn finish(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), client.close()).await;
            self.session = None;
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let audits = self.audits.lock().expect("audits");
        assert!(audits.checks > 0, "axe ran on no page");
        mark_ran();
        assert!(
            audits.findings.is_empty(),
            "axe-core found {} violation(s) in {} page checks:\n{}",
            audits.findings.len(),
            audits.checks,
            audits.findings.join("\n")
        );
    }

    /// Where the browser is, with the page's text, for failure messages.
    async fn context(&self) -> String {
        let url = self
            .c()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let text = self
            .c()
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let text: String = text.chars().take(1500).collect();
        format!("at {url}\n--- page text ---\n{text}\n---")
    }

    async fn goto(&self, url: &str) {
        if let Err(e) = self.c().goto(url).await {
            panic!("opening {url}: {e}\n{}", self.context().await);
        }
    }

    async fn path(&self) -> String {
        self.c()
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    async fn url(&self) -> String {
        self.c()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Waits (bounded) for an element matching `css`; `what` names it in the failure.
    async fn find(&self, css: &str, what: &str) -> Element {
        match self
            .c()
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{what} ({css}) not found: {e}\n{}", self.context().await),
        }
    }

    async fn exists(&self, css: &str) -> bool {
        self.c()
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
    }

    async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css, "a form field").await;
        el.clear().await.expect("clear a field");
        if let Err(e) = el.send_keys(text).await {
            panic!("typing into {css}: {e}\n{}", self.context().await);
        }
    }

    async fn click(&self, css: &str, what: &str) {
        let el = self.find(css, what).await;
        if let Err(e) = el.click().await {
            panic!("clicking {what} ({css}): {e}\n{}", self.context().await);
        }
    }

    /// Clicks a checkbox or radio button, or its label when a styled control hides the input.
    async fn tick(&self, el: &Element, what: &str) {
        if el.click().await.is_ok() {
            return;
        }
        let id = el.attr("id").await.ok().flatten().unwrap_or_default();
        let label = match el.find(Locator::XPath("./ancestor::label")).await {
            Ok(l) => Ok(l),
            Err(_) => {
                self.c()
                    .find(Locator::Css(&format!("label[for=\"{id}\"]")))
                    .await
            }
        };
        match label {
            Ok(l) => l
                .click()
                .await
                .unwrap_or_else(|e| panic!("clicking the label of {what}: {e}")),
            Err(e) => panic!("{what} cannot be clicked and has no label: {e}"),
        }
    }

    /// Marks the current document so that a new one can be told from it.
    async fn mark(&self) {
        self.c()
            .execute(
                "document.documentElement.setAttribute('data-vhod-test-old', '1')",
                vec![],
            )
            .await
            .expect("marking the page");
    }

    /// Waits (bounded) until the browser shows a fully loaded document other than the marked one.
    async fn wait_new_page(&self, after: &str) {
        let until = Instant::now() + WAIT;
        while Instant::now() < until {
            let fresh = self
                .c()
                .execute(
                    "return document.readyState === 'complete' && \
                     !document.documentElement.hasAttribute('data-vhod-test-old')",
                    vec![],
                )
                .await;
            if matches!(fresh, Ok(Value::Bool(true))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no new page after {after}\n{}", self.context().await);
    }

    /// Clicks a link or button that leads to another page, and waits for that page.
    async fn navigate(&self, css: &str, what: &str) {
        self.mark().await;
        self.click(css, what).await;
        self.wait_new_page(what).await;
    }

    /// Submits `form` through its own submit button (so the browser's own validation applies).
    async fn submit(&self, form: &str, what: &str) {
        self.navigate(&format!("{form} [type=\"submit\"]"), what)
            .await;
    }

    /// Waits (bounded) until the browser's URL starts with `prefix`; returns it.
    async fn wait_url_prefix(&self, prefix: &str) -> String {
        let until = Instant::now() + WAIT;
        while Instant::now() < until {
            let url = self.url().await;
            if url.starts_with(prefix) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached {prefix}\n{}", self.context().await);
    }

    async fn lang(&self) -> String {
        self.c()
            .execute("return document.documentElement.lang || ''", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs axe-core on the current page at the desktop and the phone width and records every
    /// violation (rule, impact, page, width, targets).
    async fn audit(&self, page: &str) {
        let where_ = self.path().await;
        for (label, (w, h)) in [("desktop", DESKTOP_SIZE), ("phone", PHONE_SIZE)] {
            self.c().set_window_size(w, h).await.expect("window size");
            let width = self
                .c()
                .execute("return window.innerWidth", vec![])
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            assert!(
                width > 0 && width <= u64::from(w),
                "the {label} viewport is {width} px wide, asked for {w}"
            );
            let violations = self.axe_run().await;
            let mut audits = self.audits.lock().expect("audits");
            audits.checks += 1;
            for v in violations.as_array().into_iter().flatten() {
                let targets: Vec<String> = v["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
                audits.findings.push(format!(
                    "- {rule} ({impact}) on {page} [{where_}, {label} {w}px]: {help}; targets: {targets}",
                    rule = v["id"].as_str().unwrap_or("?"),
                    impact = v["impact"].as_str().unwrap_or("?"),
                    help = v["help"].as_str().unwrap_or(""),
                    targets = targets.join(" | "),
                ));
            }
        }
        self.c()
            .set_window_size(DESKTOP_SIZE.0, DESKTOP_SIZE.1)
            .await
            .expect("window size");
    }

    async fn axe_run(&self) -> Value {
        // WebDriver scripts are not subject to the page's CSP; axe is injected once per page.
        let present = self
            .c()
            .execute("return typeof window.axe === 'object'", vec![])
            .await;
        if !matches!(present, Ok(Value::Bool(true))) {
            let injected = self
                .c()
                .execute(
                    &format!("{}\n;return typeof window.axe === 'object';", self.axe),
                    vec![],
                )
                .await;
            assert!(
                matches!(injected, Ok(Value::Bool(true))),
                "axe-core did not load: {injected:?}"
            );
        }
        let result = self
            .c()
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                window.axe.run(document, {resultTypes: ['violations']}).then(
                  (r) => done({violations: r.violations.map((v) => ({
                    id: v.id, impact: v.impact, help: v.help,
                    targets: v.nodes.map((n) => n.target.join(' ')),
                  }))}),
                  (e) => done({error: String(e)}));"#,
                vec![],
            )
            .await
            .expect("running axe-core");
        assert!(result["error"].is_null(), "axe-core failed: {result}");
        result["violations"].clone()
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // A failed walk unwinds here: end the session so chromedriver quits Chromium (Drop
        // cannot await, so a helper thread makes the one request), then stop chromedriver.
        if let Some(session) = self.session.take() {
            let url = format!("{}/session/{session}", self.driver_url);
            on_helper_thread(async move {
                reqwest::Client::new()
                    .delete(&url)
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await
                    .ok()
                    .map(drop)
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The relying client: a registered client whose redirect URI is a listener on 127.0.0.1.

struct WebClient {
    redirect: String,
    task: tokio::task::JoinHandle<()>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Drop for WebClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every request with a small page, and remembers each request target.
async fn web_client(d: &Deployment) -> WebClient {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(WAIT, sock.read(&mut buf[n..])).await {
                        Ok(Ok(m)) if m > 0 => n += m,
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                if let Some(target) = head.split_whitespace().nth(1) {
                    seen.lock().expect("hits").push(target.to_string());
                }
                let body = "<!doctype html><html lang=\"en\"><head><title>client</title></head>\
                            <body><main><h1>client</h1></main></body></html>";
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        WEB_CLIENT,
        "--secret",
        WEB_SECRET,
        "--redirect-uri",
        &redirect,
    ]);
    assert!(
        out.status.success(),
        "client add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    WebClient {
        redirect,
        task,
        hits,
    }
}

/// An authorization request of the web client (PKCE, state, nonce).
async fn authorization_request(server: &Server, web: &WebClient) -> Pending {
    let client = rp(server, WEB_CLIENT, Some(WEB_SECRET), &web.redirect).await;
    authorization(&client, &["profile", "email", "phone"], &[])
}

/// Waits for the browser to arrive at the client, checks the response, redeems the code and
/// returns the person's userinfo claims.
async fn arrive(chrome: &Chrome, server: &Server, web: &WebClient, p: &Pending) -> Value {
    let back = chrome.wait_url_prefix(&web.redirect).await;
    let code = code_from(server, &back, p);
    assert!(
        web.hits
            .lock()
            .expect("hits")
            .iter()
            .any(|h| h.contains(&format!("code={code}"))),
        "the client's listener received the redirect"
    );
    let tokens = http()
        .post(server.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", web.redirect.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(tokens.status().as_u16(), 200, "token exchange");
    let tokens: Value = tokens.json().await.expect("token JSON");
    http()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access token"))
        .send()
        .await
        .expect("GET /userinfo")
        .json()
        .await
        .expect("userinfo JSON")
}

// ---------------------------------------------------------------------------------------------
// Messages from the dev outbox.

/// The newest message on `channel` to `to` after the first `skip` of them, waited for (bounded).
async fn message(d: &Deployment, channel: Channel, to: &str, skip: usize) -> String {
    let until = Instant::now() + WAIT;
    loop {
        let mine: Vec<String> = read_outbox(&d.data_dir())
            .expect("outbox")
            .into_iter()
            .filter(|e| e.channel == channel && e.to == to)
            .map(|e| e.body)
            .collect();
        if mine.len() > skip {
            return mine.last().cloned().expect("a message");
        }
        assert!(
            Instant::now() < until,
            "no new {channel:?} message to {to} in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(d: &Deployment, channel: Channel, to: &str) -> usize {
    read_outbox(&d.data_dir())
        .expect("outbox")
        .iter()
        .filter(|e| e.channel == channel && e.to == to)
        .count()
}

/// The six-digit code of an SMS (the first run of exactly six digits, whatever the wording).
fn sms_code(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .unwrap_or_else(|| panic!("no six-digit code in the SMS: {body}"))
        .to_string()
}

/// The link into this server that an email carries.
fn email_link(server: &Server, body: &str) -> String {
    let start = body
        .find(&format!("{}/", server.base))
        .unwrap_or_else(|| panic!("no link to {} in the email: {body}", server.base));
    body[start..]
        .split(|c: char| c.is_whitespace() || "<>\"'".contains(c))
        .next()
        .unwrap_or_default()
        .trim_end_matches(['.', ',', ')'])
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Running a walk.

/// Runs one walk in a fresh browser against a fresh SQLite deployment (or skips, see `tools`).
async fn walk<F, Fut>(body: F)
where
    F: FnOnce(Deployment, Chrome) -> Fut,
    Fut: std::future::Future<Output = Chrome>,
{
    let Some(tools) = tools() else { return };
    let d = Deployment::new(Backend::Sqlite)
        .await
        .expect("the SQLite deployment");
    let chrome = Chrome::start(tools).await;
    let chrome = tokio::time::timeout(WALK, body(d, chrome))
        .await
        .unwrap_or_else(|_| panic!("the walk took longer than {WALK:?}"));
    chrome.finish().await;
}

/// The form that posts to `path` (with or without a query: the language may ride along).
fn form(path: &str) -> String {
    format!("form:is([action=\"{path}\"], [action^=\"{path}?\"])")
}

/// A link to `path` with a query (the pages' links carry the transaction and language).
fn link_to(path: &str) -> String {
    format!("a:is([href^=\"{path}?\"], [href*=\"://\"][href*=\"{path}?\"])")
}

fn login_form() -> String {
    form("/login/password")
}

/// Fills and sends the password form of the login page the browser shows.
async fn password_login(chrome: &Chrome, user: &str, password: &str) {
    chrome
        .fill(&format!("{} input[name=\"username\"]", login_form()), user)
        .await;
    chrome
        .fill(
            &format!("{} input[name=\"password\"]", login_form()),
            password,
        )
        .await;
    chrome.submit(&login_form(), "the password login").await;
}

/// Opens an authorization request of the web client; the browser then shows the login page.
async fn open_login(chrome: &Chrome, server: &Server, web: &WebClient) -> Pending {
    let p = authorization_request(server, web).await;
    chrome.goto(&p.url).await;
    chrome.find(&login_form(), "the login form").await;
    p
}

// ---------------------------------------------------------------------------------------------
// The walks.

/// Sign-in through a registered client's authorization request, then the profile: SMS
/// notifications, a new email confirmed by its link, a new phone confirmed by its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_profile() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        chrome.audit("login").await;
        password_login(&chrome, USER, PASSWORD).await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert_eq!(info["preferred_username"], USER, "{info}");

        chrome.goto(&server.url("/profile")).await;
        let notify = &form("/profile/notifications");
        let checkbox = format!("{notify} input[name=\"notify_sms\"]");
        let was = chrome
            .find(&checkbox, "the SMS notifications checkbox")
            .await
            .is_selected()
            .await
            .expect("checkbox state");
        chrome.audit("profile").await;
        let el = chrome
            .find(&checkbox, "the SMS notifications checkbox")
            .await;
        chrome.tick(&el, "the SMS notifications checkbox").await;
        chrome.submit(notify, "saving notifications").await;
        let now = chrome
            .find(&checkbox, "the SMS notifications checkbox")
            .await
            .is_selected()
            .await
            .expect("checkbox state");
        assert_ne!(was, now, "the notification setting was saved");
        assert!(d.account(USER).await.is_some_and(|a| a.notify_sms == now));
        chrome.audit("profile after saving").await;

        // A new email: the link sent to it confirms it.
        let new_email = "ivan.new@example.by";
        let email_form = &form("/profile/email");
        chrome
            .fill(&format!("{email_form} input[name=\"email\"]"), new_email)
            .await;
        chrome.submit(email_form, "changing the email").await;
        chrome.audit("profile, email link sent").await;
        let link = email_link(&server, &message(&d, Channel::Email, new_email, 0).await);
        chrome.goto(&link).await;
        chrome.audit("email change confirmed").await;
        let confirmed = d.store().await.accounts();
        assert!(
            confirmed
                .find_by_confirmed_email(new_email)
                .await
                .unwrap()
                .is_some(),
            "the new email is confirmed\n{}",
            chrome.context().await
        );

        // A new phone: the code sent to it confirms it.
        let (new_phone, new_e164) = ("+375 44 555-66-77", "+375445556677");
        chrome.goto(&server.url("/profile")).await;
        let phone_form = &form("/profile/phone");
        chrome
            .fill(&format!("{phone_form} input[name=\"phone\"]"), new_phone)
            .await;
        chrome.submit(phone_form, "changing the phone").await;
        let confirm = &form("/profile/phone/confirm");
        chrome.find(confirm, "the phone code form").await;
        chrome.audit("profile, phone code sent").await;
        let code = sms_code(&message(&d, Channel::Sms, new_e164, 0).await);
        chrome
            .fill(&format!("{confirm} input[name=\"code\"]"), &code)
            .await;
        chrome.submit(confirm, "confirming the phone").await;
        chrome.audit("profile, phone confirmed").await;
        assert!(
            confirmed
                .find_by_confirmed_phone(new_e164)
                .await
                .unwrap()
                .is_some(),
            "the new phone is confirmed\n{}",
            chrome.context().await
        );

        // Signing out from vhod itself: the confirmation, the answer, the profile signed out.
        chrome.goto(&server.url("/end_session")).await;
        let logout = &form("/end_session");
        chrome.find(logout, "the logout confirmation").await;
        chrome.audit("logout confirmation").await;
        chrome.submit(logout, "signing out").await;
        chrome.audit("signed out").await;
        chrome.goto(&server.url("/profile")).await;
        assert!(
            !chrome.exists(&form("/profile/notifications")).await,
            "the profile is not shown after signing out\n{}",
            chrome.context().await
        );
        chrome.audit("profile, signed out").await;
        chrome
    })
    .await;
}

/// Registration from the login page: a refused first try, the SMS code and the email link from
/// the outbox, then the sign-in continues to the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        chrome
            .navigate(&link_to("/register"), "the registration link")
            .await;
        let form = &form("/register");
        chrome.find(form, "the registration form").await;
        chrome.audit("registration").await;

        let (phone, e164, email) = ("+375 33 765-43-21", "+375337654321", "olga@example.by");
        let fill_all = |username: &'static str| {
            let chrome = &chrome;
            async move {
                for (name, value) in [
                    ("family_name", "Кавалёва"),
                    ("given_name", "Вольга"),
                    ("middle_name", ""),
                    ("phone", phone),
                    ("email", email),
                    ("username", username),
                    ("password", "вясна прыйдзе ў Мінск"),
                ] {
                    chrome
                        .fill(&format!("{form} [name=\"{name}\"]"), value)
                        .await;
                }
                // Every checkbox of the form (the personal-data consent among them) is ticked.
                let boxes = chrome
                    .c()
                    .find_all(Locator::Css(&format!("{form} input[type=\"checkbox\"]")))
                    .await
                    .expect("checkboxes");
                for b in boxes {
                    if !b.is_selected().await.expect("checkbox state") {
                        chrome.tick(&b, "a checkbox of the registration form").await;
                    }
                }
            }
        };
        // A taken login is refused on the registration page itself.
        fill_all(USER).await;
        chrome.submit(form, "registering with a taken login").await;
        chrome.find(form, "the registration form again").await;
        assert!(
            chrome.path().await.starts_with("/register"),
            "{}",
            chrome.context().await
        );
        chrome.audit("registration with an error").await;
        fill_all("olga.k").await;
        chrome.submit(form, "registering").await;
        assert!(
            chrome.path().await.starts_with("/register/confirm"),
            "{}",
            chrome.context().await
        );
        let code_form = "form:has(input[name=\"code\"])";
        chrome.find(code_form, "the SMS code form").await;
        chrome.audit("registration confirmation").await;

        let code = sms_code(&message(&d, Channel::Sms, e164, 0).await);
        chrome
            .fill(&format!("{code_form} input[name=\"code\"]"), &code)
            .await;
        chrome.submit(code_form, "confirming the phone").await;
        chrome.audit("registration, phone confirmed").await;
        assert!(
            d.account("olga.k").await.is_some_and(|a| a.phone_verified),
            "{}",
            chrome.context().await
        );

        let link = email_link(&server, &message(&d, Channel::Email, email, 0).await);
        chrome.goto(&link).await;
        chrome.audit("registration, email confirmed").await;
        assert!(
            d.account("olga.k")
                .await
                .is_some_and(|a| a.status == "active"),
            "{}",
            chrome.context().await
        );
        chrome
            .navigate(&link_to("/login"), "continuing the sign-in")
            .await;
        chrome.find(&login_form(), "the login form").await;
        // The link is single-use: a second visit says so on a page of its own.
        let tx_login = chrome.url().await;
        chrome.goto(&link).await;
        assert!(
            ["ru", "be", "en"].contains(&chrome.lang().await.as_str()),
            "a page of vhod's\n{}",
            chrome.context().await
        );
        chrome.audit("registration, email link used again").await;
        chrome.goto(&tx_login).await;
        chrome.find(&login_form(), "the login form").await;
        password_login(&chrome, "olga.k", "вясна прыйдзе ў Мінск").await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert_eq!(info["email"], email, "{info}");
        assert_eq!(info["phone_number"], e164, "{info}");
        chrome
    })
    .await;
}

/// From the login page to the "forgot password" form, asking for `channel`.
async fn ask_recovery(chrome: &Chrome, channel: &str) {
    let forgot = form("/forgot");
    chrome
        .navigate(&link_to("/forgot"), "the forgot-password link")
        .await;
    chrome.find(&forgot, "the forgot-password form").await;
    chrome.audit("forgot password").await;
    chrome
        .fill(&format!("{forgot} input[name=\"login\"]"), USER)
        .await;
    let radio = chrome
        .find(
            &format!("{forgot} input[name=\"channel\"][value=\"{channel}\"]"),
            "the channel",
        )
        .await;
    chrome.tick(&radio, "the channel").await;
    assert!(
        radio.is_selected().await.expect("radio state"),
        "{channel} chosen"
    );
    chrome.submit(&forgot, "asking for recovery").await;
}

/// After a reset: the page continues the sign-in, which the new password completes.
async fn continue_after_reset(
    chrome: &Chrome,
    server: &Server,
    web: &WebClient,
    p: &Pending,
    password: &str,
) {
    chrome.audit("password changed").await;
    chrome
        .navigate(&link_to("/login"), "continuing the sign-in")
        .await;
    chrome.find(&login_form(), "the login form").await;
    password_login(chrome, USER, password).await;
    let info = arrive(chrome, server, web, p).await;
    assert_eq!(info["preferred_username"], USER, "{info}");
}

/// "Forgot password" by an SMS code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_by_sms() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        let before = count(&d, Channel::Sms, PHONE);
        ask_recovery(&chrome, "sms").await;
        let form = "form:has(input[name=\"code\"])";
        chrome.find(form, "the code and new password form").await;
        chrome.audit("reset by SMS code").await;
        let code = sms_code(&message(&d, Channel::Sms, PHONE, before).await);
        let new_password = "новы пароль для Івана";
        chrome
            .fill(&format!("{form} input[name=\"code\"]"), &code)
            .await;
        chrome
            .fill(&format!("{form} input[name=\"password\"]"), new_password)
            .await;
        chrome.submit(form, "setting the new password").await;
        continue_after_reset(&chrome, &server, &web, &p, new_password).await;
        chrome
    })
    .await;
}

const NEW_PASSWORD_FORM: &str = "form:has(input[name=\"password\"])";

/// From the login page, "forgot password" by email, to the page its link opens.
async fn open_recovery_link(d: &Deployment, chrome: &Chrome, server: &Server) {
    let email = "ivan@example.by";
    let before = count(d, Channel::Email, email);
    ask_recovery(chrome, "email").await;
    chrome.audit("recovery email sent").await;
    let link = email_link(server, &message(d, Channel::Email, email, before).await);
    chrome.goto(&link).await;
    chrome
        .find(NEW_PASSWORD_FORM, "the new password form")
        .await;
}

/// "Forgot password" by an email link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_by_email() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        open_recovery_link(&d, &chrome, &server).await;
        let form = NEW_PASSWORD_FORM;
        chrome.audit("reset by email link").await;
        let new_password = "новы пароль для Івана";
        chrome
            .fill(&format!("{form} input[name=\"password\"]"), new_password)
            .await;
        chrome.submit(form, "setting the new password").await;
        continue_after_reset(&chrome, &server, &web, &p, new_password).await;
        chrome
    })
    .await;
}

/// Follows the page's link to language `lang` and checks that the page is then in it and still
/// shows `form` (the same page, with its state).
async fn switch_language(chrome: &Chrome, lang: &str, form: &str, after: &str) {
    chrome
        .navigate(
            &format!("a[href*=\"ui_locales={lang}\"]"),
            &format!("the «{lang}» link {after}"),
        )
        .await;
    chrome
        .find(form, &format!("the form after the «{lang}» link {after}"))
        .await;
    assert_eq!(
        chrome.lang().await,
        lang,
        "the page after the «{lang}» link {after}\n{}",
        chrome.context().await
    );
}

/// The language links of the page an email link opens keep its token (item 18 of issue 9: they
/// dropped it and the page said the link was invalid), and the link still works after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_on_an_email_link_page() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        open_recovery_link(&d, &chrome, &server).await;
        let what = "on the page of the email link";
        switch_language(&chrome, "be", NEW_PASSWORD_FORM, what).await;
        chrome.audit("reset by email link, Belarusian").await;
        switch_language(&chrome, "en", NEW_PASSWORD_FORM, what).await;
        let new_password = "новы пароль для Івана";
        chrome
            .fill(
                &format!("{NEW_PASSWORD_FORM} input[name=\"password\"]"),
                new_password,
            )
            .await;
        chrome
            .submit(NEW_PASSWORD_FORM, "setting the new password")
            .await;
        continue_after_reset(&chrome, &server, &web, &p, new_password).await;
        chrome
    })
    .await;
}

/// The language chosen on the login page survives a wrong password, and the language links of
/// the page that tells of it work (item 18 of issue 9: they gave HTTP 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_after_failed_login() {
    walk(|d, chrome| async move {
        let web = web_client(&d).await;
        let server = d.start().await;
        let p = open_login(&chrome, &server, &web).await;
        assert_eq!(chrome.lang().await, "ru", "a Russian browser gets Russian");
        switch_language(&chrome, "be", &login_form(), "on the login page").await;
        password_login(&chrome, USER, "not the password").await;
        chrome
            .find(&login_form(), "the login form after a wrong password")
            .await;
        assert_eq!(
            chrome.lang().await,
            "be",
            "the language chosen survives a wrong password\n{}",
            chrome.context().await
        );
        chrome.audit("login after a wrong password").await;
        switch_language(&chrome, "en", &login_form(), "after a wrong password").await;
        chrome.audit("login after a wrong password, English").await;
        password_login(&chrome, USER, PASSWORD).await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert_eq!(info["preferred_username"], USER, "{info}");
        chrome
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Federated login: the misbehaving mock upstream of tests/common/upstream.rs as `[[upstream]]`.

/// The upstream's name in the settings (and in its button's id, its URLs).
const UPSTREAM: &str = "mock";

/// The upstream's `display_name` in `lang`.
fn upstream_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Ru => "Вход через тестовый сервис",
        Lang::Be => "Уваход праз тэставы сэрвіс",
        Lang::En => "Sign in with the test service",
    }
}

/// A message of vhod's catalogue in `lang` naming the upstream, as a page shows it.
fn upstream_message(lang: Lang, key: &str) -> String {
    let text = i18n::text(lang, key);
    assert!(!text.is_empty(), "no message {key}");
    text.replace("{name}", upstream_label(lang))
}

/// The mock as an OpenID `[[upstream]]` of the deployment, with its names mapped.
fn add_upstream(d: &Deployment, mock: &MockUpstream) {
    d.append_config(&format!(
        r#"
[[upstream]]
name = "{UPSTREAM}"
kind = "oidc"
issuer = "{issuer}"
client_id = "{UPSTREAM_CLIENT_ID}"
client_secret = "{UPSTREAM_SECRET}"
scopes = ["openid", "profile"]
display_name = {{ ru = "{ru}", be = "{be}", en = "{en}" }}
[upstream.claims]
family_name = "family_name"
given_name = "given_name"
[upstream.acr]
default = "substantial"
"#,
        issuer = mock.issuer(),
        ru = upstream_label(Lang::Ru),
        be = upstream_label(Lang::Be),
        en = upstream_label(Lang::En),
    ));
}

/// The mock back to a correct provider whose ID token names the person.
fn upstream_correct(mock: &MockUpstream) {
    mock.reset();
    mock.set(|b| {
        b.id_token_claims = match json!({"family_name": "Петрова", "given_name": "Мария"})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    });
}

/// The login page the browser shows offers the upstream, labelled in the page's language;
/// returns the login transaction.
async fn upstream_button(chrome: &Chrome, lang: Lang) -> String {
    assert_eq!(
        chrome.lang().await,
        lang.code(),
        "{}",
        chrome.context().await
    );
    let tx = param(&chrome.url().await, "tx").expect("the login page's transaction");
    let button = chrome
        .find(&format!("#upstream-{UPSTREAM}"), "the upstream's button")
        .await;
    let href = button.attr("href").await.ok().flatten().unwrap_or_default();
    assert!(
        href.starts_with(&format!("/login/upstream/{UPSTREAM}?tx={tx}")),
        "the button sets off from this login: {href}"
    );
    assert_eq!(
        button.text().await.expect("the button's text").trim(),
        upstream_label(lang),
        "the upstream's display_name in «{}»",
        lang.code()
    );
    tx
}

/// The page of a refused upstream login (`key` its message) in `lang`: the failure named, the
/// first way on a retry of the same login, a way back to the service; axe at both widths.
async fn upstream_refusal(chrome: &Chrome, lang: Lang, key: &str, tx: &str, what: &str) {
    assert_eq!(
        chrome.path().await,
        format!("/login/upstream/{UPSTREAM}/callback"),
        "{what}\n{}",
        chrome.context().await
    );
    assert_eq!(
        chrome.lang().await,
        lang.code(),
        "{what}: the page's language\n{}",
        chrome.context().await
    );
    let alert = chrome.find("main [role=\"alert\"]", "the refusal").await;
    assert_eq!(
        alert.text().await.expect("the refusal's text").trim(),
        upstream_message(lang, key),
        "{what}"
    );
    let ways = chrome
        .c()
        .find_all(Locator::Css("main a[href]"))
        .await
        .expect("the page's links");
    let first = match ways.first() {
        Some(a) => a.attr("href").await.ok().flatten().unwrap_or_default(),
        None => panic!("{what}: no way on\n{}", chrome.context().await),
    };
    assert!(
        first.starts_with(&format!("/login/upstream/{UPSTREAM}?tx={tx}")),
        "{what}: the first way on retries this login: {first}"
    );
    for way in ["/login", "/login/cancel"] {
        assert!(
            chrome
                .exists(&format!("main a[href^=\"{way}?tx={tx}\"]"))
                .await,
            "{what}: a link to {way}\n{}",
            chrome.context().await
        );
    }
    chrome.audit(what).await;
}

/// Follows «back to the service» of a refusal page: the client gets `access_denied`.
async fn back_to_the_service(chrome: &Chrome, web: &WebClient, p: &Pending) {
    chrome.mark().await;
    chrome
        .click(&link_to("/login/cancel"), "«back to the service»")
        .await;
    let back = chrome.wait_url_prefix(&web.redirect).await;
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(p.state.as_str()),
        "{back}"
    );
    assert_eq!(param(&back, "code"), None, "{back}");
    assert!(
        web.hits
            .lock()
            .expect("hits")
            .iter()
            .any(|h| h.contains("error=access_denied") && h.contains(&p.state)),
        "the client's listener received the refusal"
    );
}

/// The profile's section of the upstream: its link form, or its unlink form, shown.
async fn profile_upstream(chrome: &Chrome, linked: bool) {
    let section = format!("#upstreams #upstream-{UPSTREAM}");
    chrome.find(&section, "the upstream on the profile").await;
    let link = format!("{section} {}", form("/profile/upstream/link"));
    let unlink = format!("{section} {}", form("/profile/upstream/unlink"));
    let (shown, hidden) = if linked {
        (&unlink, &link)
    } else {
        (&link, &unlink)
    };
    chrome.find(shown, "the upstream's form").await;
    assert!(
        !chrome.exists(hidden).await,
        "{hidden} on the profile (linked: {linked})\n{}",
        chrome.context().await
    );
}

/// The headings of `section` keep the page's outline in size: each `h3` smaller than its
/// section's `h2` (an upstream's name on the profile was larger than the section's title).
async fn headings_descend(chrome: &Chrome, section: &str) {
    let sizes = chrome
        .c()
        .execute(
            "const px = (s) => [...document.querySelectorAll(s)]
               .map((e) => parseFloat(getComputedStyle(e).fontSize));
             return [px(arguments[0] + ' h2'), px(arguments[0] + ' h3')];",
            vec![json!(section)],
        )
        .await
        .expect("the headings' sizes");
    let px = |i: usize| -> Vec<f64> {
        sizes[i]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect()
    };
    let (h2, h3) = (px(0), px(1));
    assert!(!h2.is_empty() && !h3.is_empty(), "{section}: {sizes}");
    let smallest_h2 = h2.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        h3.iter().all(|&h| h < smallest_h2),
        "{section}: h3 {h3:?} px not smaller than h2 {h2:?} px"
    );
}

/// Federated login through the mock upstream: its button on the login page (ru, be), a sign-in
/// through it to the client, the signed-out page offering the upstream's logout; refused logins
/// (the upstream's `access_denied`, an ID token whose signature fails) on a page in the
/// language chosen, whose first link retries and whose «back to the service» gives the client
/// `access_denied`; then a password sign-in links the upstream from the profile and unlinks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_login() {
    walk(|d, chrome| async move {
        let mock = MockUpstream::start().await;
        upstream_correct(&mock);
        add_upstream(&d, &mock);
        let web = web_client(&d).await;
        let server = d.start().await;

        // Through the upstream to the client, in Russian.
        let p = open_login(&chrome, &server, &web).await;
        upstream_button(&chrome, Lang::Ru).await;
        chrome.audit("login with an upstream").await;
        chrome.mark().await;
        chrome
            .click(&format!("#upstream-{UPSTREAM}"), "the upstream's button")
            .await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert_eq!(info["family_name"], "Петрова", "{info}");
        assert_eq!(
            mock.authorization_requests().len(),
            1,
            "one trip to the mock"
        );

        // Signing out here offers signing out at the upstream too.
        chrome.goto(&server.url("/end_session")).await;
        let logout = &form("/end_session");
        chrome.find(logout, "the logout confirmation").await;
        chrome.submit(logout, "signing out").await;
        let away = chrome
            .find("#upstream-logout", "the upstream's logout")
            .await;
        let href = away.attr("href").await.ok().flatten().unwrap_or_default();
        assert!(href.starts_with(&mock.url("/logout")), "{href}");
        chrome
            .audit("signed out, the upstream's logout offered")
            .await;

        // The upstream refuses: the page in Russian, then back to the service.
        mock.set(|b| b.authorize_error = Some("access_denied".into()));
        let p = open_login(&chrome, &server, &web).await;
        let tx = upstream_button(&chrome, Lang::Ru).await;
        chrome
            .navigate(&format!("#upstream-{UPSTREAM}"), "the upstream's button")
            .await;
        let what = "upstream login refused by the upstream";
        upstream_refusal(&chrome, Lang::Ru, "upstream_err_denied", &tx, what).await;
        back_to_the_service(&chrome, &web, &p).await;

        // An ID token that does not verify, the login page switched to Belarusian: the page in
        // Belarusian; its retry goes to the upstream again.
        upstream_correct(&mock);
        mock.set(|b| b.bad_signature = true);
        let p = open_login(&chrome, &server, &web).await;
        switch_language(&chrome, "be", &login_form(), "on the login page").await;
        let tx = upstream_button(&chrome, Lang::Be).await;
        chrome.audit("login with an upstream, Belarusian").await;
        chrome
            .navigate(&format!("#upstream-{UPSTREAM}"), "the upstream's button")
            .await;
        let what = "upstream login with a bad ID token signature";
        upstream_refusal(&chrome, Lang::Be, "upstream_err_failed", &tx, what).await;
        let trips = mock.authorization_requests().len();
        chrome
            .navigate(
                &link_to(&format!("/login/upstream/{UPSTREAM}")),
                "«try again»",
            )
            .await;
        assert_eq!(
            mock.authorization_requests().len(),
            trips + 1,
            "the retry went to the upstream"
        );
        let what = "upstream login retried, refused again";
        upstream_refusal(&chrome, Lang::Be, "upstream_err_failed", &tx, what).await;
        back_to_the_service(&chrome, &web, &p).await;
        let refusals = d
            .wait_events(3, |e| {
                e.kind == "login"
                    && e.outcome == "failure"
                    && e.method.as_deref() == Some("upstream")
            })
            .await;
        assert_eq!(refusals, 3, "each refusal audited");

        // A password sign-in; the profile links the upstream (another identity at the mock
        // than the account its sign-in made) and unlinks it, in Belarusian.
        upstream_correct(&mock);
        mock.set(|b| b.subject = "up-sub-ivan".into());
        let p = open_login(&chrome, &server, &web).await;
        password_login(&chrome, USER, PASSWORD).await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert_eq!(info["preferred_username"], USER, "{info}");
        chrome.goto(&server.url("/profile")).await;
        profile_upstream(&chrome, false).await;
        headings_descend(&chrome, "#upstreams").await;
        chrome.audit("profile with an upstream").await;
        switch_language(&chrome, "be", "#upstreams", "on the profile").await;
        chrome.audit("profile with an upstream, Belarusian").await;
        let section = format!("#upstreams #upstream-{UPSTREAM}");
        chrome
            .submit(
                &format!("{section} {}", form("/profile/upstream/link")),
                "linking the upstream",
            )
            .await;
        assert_eq!(chrome.lang().await, "be", "{}", chrome.context().await);
        let done = chrome
            .find("main [role=\"status\"]", "the link's notice")
            .await;
        assert_eq!(
            done.text().await.expect("the notice's text").trim(),
            upstream_message(Lang::Be, "upstream_linked_now")
        );
        chrome.audit("upstream linked").await;
        let ivan = d.account(USER).await.expect("Ivan").id;
        let links = d
            .store()
            .await
            .upstream_identities()
            .of_account(&ivan)
            .await;
        assert_eq!(links.expect("links").len(), 1, "linked to Ivan");
        chrome
            .navigate("main a[href^=\"/profile\"]", "back to the profile")
            .await;
        profile_upstream(&chrome, true).await;
        chrome.audit("profile with a linked upstream").await;
        chrome
            .submit(
                &format!("{section} {}", form("/profile/upstream/unlink")),
                "unlinking the upstream",
            )
            .await;
        let done = chrome
            .find("main [role=\"status\"]", "the unlink's notice")
            .await;
        assert_eq!(
            done.text().await.expect("the notice's text").trim(),
            upstream_message(Lang::Be, "upstream_unlinked")
        );
        profile_upstream(&chrome, false).await;
        chrome.audit("profile, upstream unlinked").await;
        let links = d
            .store()
            .await
            .upstream_identities()
            .of_account(&ivan)
            .await;
        assert!(links.expect("links").is_empty(), "unlinked");
        chrome
    })
    .await;
}

/// A test PKI made by `vhod dev test-pki`, its root and CRL installed as a deployment's trust.
fn test_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let out = Command::new(bin())
        .args(["dev", "test-pki"])
        .arg(&pki)
        .output()
        .expect("vhod dev test-pki");
    assert!(
        out.status.success(),
        "test-pki: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pki
}

/// Certificate sign-in with the developer signer of the login page: the challenge it shows is
/// signed by `vhod dev sign-challenge`, and the certificate and signature are pasted back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_login() {
    let Some(tools) = tools() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = test_pki(tmp.path());
    let read = |p: &str| std::fs::read(pki.join(p)).expect("test PKI file");
    let d = Deployment::with_trust(
        Backend::Sqlite,
        &[("root-ca.pem", read("trust/root-ca.pem"))],
        &[("issuing-ca.crl.pem", read("trust/crl/issuing-ca.crl.pem"))],
    )
    .await
    .expect("the SQLite deployment");
    let chrome = Chrome::start(tools).await;
    let pki = &pki;
    let chrome = tokio::time::timeout(WALK, async move {
        let web = web_client(&d).await;
        // Development mode shows the developer signer.
        let server = d.start_with(&[("VHOD_DEV", "true")]).await;
        let p = open_login(&chrome, &server, &web).await;
        chrome.click("#cert-start", "the certificate button").await;
        chrome.find("#cert-dev[open]", "the developer signer").await;
        let challenge = wait_value(&chrome, "#cert-dev-challenge").await;
        chrome.audit("login, developer signer").await;

        let out = Command::new(bin())
            .args(["dev", "sign-challenge", "--key"])
            .arg(pki.join("citizen.key.pem"))
            .arg("--cert")
            .arg(pki.join("citizen.pem"))
            .arg("--")
            .arg(&challenge)
            .envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("vhod dev sign-challenge");
        assert!(
            out.status.success(),
            "sign-challenge: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signature = String::from_utf8(out.stdout).expect("UTF-8");
        let pem = format!(
            "{}\n{}",
            String::from_utf8(read("citizen.pem")).expect("PEM"),
            String::from_utf8(read("chain.pem")).expect("PEM")
        );
        chrome.fill("#cert-dev-certificate", pem.trim()).await;
        chrome.fill("#cert-dev-signature", signature.trim()).await;
        chrome
            .click("#cert-dev-submit", "the signer's submit")
            .await;
        let info = arrive(&chrome, &server, &web, &p).await;
        assert!(info["sub"].is_string(), "{info}");
        let certificate_login = |e: &StoredEvent| {
            e.kind == "login"
                && e.outcome == "success"
                && e.method.as_deref() == Some("certificate")
        };
        assert_eq!(
            d.wait_events(1, certificate_login).await,
            1,
            "one certificate sign-in"
        );
        chrome
    })
    .await
    .unwrap_or_else(|_| panic!("the walk took longer than {WALK:?}"));
    chrome.finish().await;
}

/// The value of a form field once the page's script has filled it (bounded wait).
async fn wait_value(chrome: &Chrome, css: &str) -> String {
    let el = chrome.find(css, "a field the page fills").await;
    let until = Instant::now() + WAIT;
    while Instant::now() < until {
        if let Ok(Some(v)) = el.prop("value").await
            && !v.is_empty()
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} stayed empty\n{}", chrome.context().await);
}

/// The audit itself: a page with known violations is reported, with rule ids and targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_reports_violations() {
    let Some(tools) = tools() else { return };
    let chrome = Chrome::start(tools).await;
    chrome
        .goto("data:text/html;charset=utf-8,<!doctype html><title>t</title><main><img src=\"x.png\" id=\"planted\"></main>")
        .await;
    chrome.audit("a planted page").await;
    let findings = std::mem::take(&mut chrome.audits.lock().expect("audits").findings);
    for width in ["desktop", "phone"] {
        assert!(
            findings.iter().any(|f| f.starts_with("- image-alt ")
                && f.contains(width)
                && f.contains("#planted")),
            "image-alt at the {width} width: {findings:#?}"
        );
    }
    assert!(
        findings.iter().any(|f| f.starts_with("- html-has-lang ")),
        "{findings:#?}"
    );
    chrome.finish().await;
}
