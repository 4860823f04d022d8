//! How operators run vhod: replicas behind one issuer, the CLI beside a running server, key
//! rotation, graceful shutdown, health and logs, development mode, and settings validation.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessToken, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn random() -> String {
    CsrfToken::new_random().secret().clone()
}

fn b64url_json(part: &str) -> Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The decoded header (0) or payload (1) of a JWT.
fn jwt_part(jwt: &str, i: usize) -> Value {
    b64url_json(jwt.split('.').nth(i).expect("a JWT"))
}

fn kid(jwt: &str) -> String {
    jwt_part(jwt, 0)["kid"].as_str().expect("kid").to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The ids of the stored clients (none of these tests stores a row that cannot be read).
async fn client_ids(d: &Deployment) -> Vec<String> {
    let rows = d.store().await.clients().all().await.expect("the clients");
    rows.into_iter()
        .map(|row| row.expect("a readable client").client_id)
        .collect()
}

async fn has_client(d: &Deployment, client_id: &str) -> bool {
    client_ids(d).await.iter().any(|id| id == client_id)
}

fn env_of<'a>(d: &'a Deployment, key: &str) -> &'a str {
    d.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} in the deployment env"))
}

/// An authorization request of the confidential client `rp` with PKCE.
struct AuthRequest {
    url: String,
    state: String,
    verifier: String,
}

fn auth_request(base: &str, client_id: &str, redirect: &str, scope: &str) -> AuthRequest {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = random();
    let url = url::Url::parse_with_params(
        &format!("{base}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", state.as_str()),
            ("nonce", random().as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorization URL")
    .to_string();
    AuthRequest {
        url,
        state,
        verifier: verifier.secret().clone(),
    }
}

/// The code in a redirect back to the client, after checking state and iss.
fn code_of(back: &str, req: &AuthRequest, issuer: &str) -> String {
    assert_eq!(
        param(back, "state").as_deref(),
        Some(req.state.as_str()),
        "state in {back}"
    );
    assert_eq!(
        param(back, "iss").as_deref(),
        Some(issuer),
        "RFC 9207 iss in {back}"
    );
    param(back, "code").unwrap_or_else(|| panic!("a code in {back}"))
}

struct Reply {
    status: u16,
    body: Value,
    request_id: String,
}

async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = res.text().await.expect("body");
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        request_id,
    }
}

/// POST /token with client_secret_basic.
async fn token(server: &Server, client_id: &str, secret: &str, form: &[(&str, &str)]) -> Reply {
    let res = http()
        .post(server.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("POST /token");
    reply(res).await
}

async fn redeem(server: &Server, code: &str, verifier: &str) -> Reply {
    token(
        server,
        "rp",
        RP_SECRET,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn client_credentials(
    server: &Server,
    client_id: &str,
    secret: &str,
    scope: Option<&str>,
) -> Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token(server, client_id, secret, &form).await
}

async fn userinfo(server: &Server, access_token: &str) -> Reply {
    let res = http()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("GET /userinfo");
    reply(res).await
}

fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("{name} in {v}"))
}

/// Runs a command that must exit on its own (within 30 s), returning its output.
fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning vhod");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vhod did not exit on its own");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut err);
    }
    Output {
        status,
        stdout: out,
        stderr: err,
    }
}

fn vhod_with(d: &Deployment, args: &[&str], overrides: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(overrides.iter().copied());
    cmd
}

// ---------------------------------------------------------------------------------------------
// 1. Two replicas behind one issuer share sessions, codes and grants.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_sessions_codes_and_grants() {
    let Some(d) = Deployment::new(Backend::Shared).await else {
        return;
    };
    let port_a = free_port();
    let issuer = format!("http://127.0.0.1:{port_a}");
    let a = d.start_as(port_a, &issuer, &[]).await;
    let port_b = free_port();
    assert_ne!(port_a, port_b);
    let b = d.start_as(port_b, &issuer, &[]).await;
    let browser = Browser::new();

    // Sign in at A; redeem the code at B.
    let req1 = auth_request(&a.base, "rp", RP_REDIRECT, "openid profile");
    let back = browser.sign_in(&a, &req1.url, USER, PASSWORD).await;
    let code1 = code_of(&back, &req1, &issuer);
    let t1 = redeem(&b, &code1, &req1.verifier).await;
    assert_eq!(t1.status, 200, "code from A redeemed at B: {}", t1.body);
    let at1 = str_field(&t1.body, "access_token").to_string();
    let id1 = str_field(&t1.body, "id_token").to_string();
    assert_eq!(jwt_part(&id1, 1)["iss"], issuer.as_str());
    assert_eq!(jwt_part(&at1, 1)["iss"], issuer.as_str());
    let info = userinfo(&a, &at1).await;
    assert_eq!(
        info.status, 200,
        "a token minted by B works at A: {}",
        info.body
    );
    assert_eq!(info.body["sub"], jwt_part(&id1, 1)["sub"]);

    // The session made at A is seen at B: a code at once, no login form.
    let req2 = auth_request(&b.base, "rp", RP_REDIRECT, "openid");
    let back = match browser.authorize(&b, &req2.url).await {
        Ok(loc) => loc,
        Err(page) => panic!("B asked to sign in again: {}", page.url),
    };
    let code2 = code_of(&back, &req2, &issuer);
    let t2 = redeem(&a, &code2, &req2.verifier).await;
    assert_eq!(t2.status, 200, "code from B redeemed at A: {}", t2.body);
    let id2 = str_field(&t2.body, "id_token");
    assert_eq!(jwt_part(id2, 1)["sub"], jwt_part(&id1, 1)["sub"]);
    assert_eq!(
        jwt_part(id2, 1)["sid"],
        jwt_part(&id1, 1)["sid"],
        "one SSO session across replicas"
    );

    // A code redeemed at B is spent at A too, and the replay revokes what it produced.
    let again = redeem(&a, &code1, &req1.verifier).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.body["error"], "invalid_grant");
    let revoked = userinfo(&b, &at1).await;
    assert_eq!(
        revoked.status, 401,
        "tokens of a replayed code are revoked: {}",
        revoked.body
    );
    let other = userinfo(&b, str_field(&t2.body, "access_token")).await;
    assert_eq!(
        other.status, 200,
        "other grants are untouched: {}",
        other.body
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The CLI beside a running server.
// ---------------------------------------------------------------------------------------------

async fn cli_beside_server(d: Deployment) {
    let server = d.start().await;
    let secret = "x-secret-0123456789abcdefghijklm";
    assert_eq!(secret.len(), 32);

    // Unknown before it is added.
    let probe = auth_request(&server.base, "x", "http://127.0.0.1:9/x", "openid");
    let res = http().get(&probe.url).send().await.expect("GET /authorize");
    assert_eq!(res.status().as_u16(), 400, "client x does not exist yet");

    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "x",
        "--secret",
        secret,
        "--redirect-uri",
        "http://127.0.0.1:9/x",
    ]);
    assert!(out.status.success(), "client add: {}", stderr(&out));
    assert!(
        stdout(&out).contains("client x registered"),
        "{}",
        stdout(&out)
    );
    assert!(
        !stdout(&out).contains(secret),
        "a given secret is not echoed"
    );

    // The running server picks it up without a restart.
    let deadline = Instant::now() + Duration::from_secs(5);
    let location = loop {
        let res = http().get(&probe.url).send().await.expect("GET /authorize");
        if res.status().as_u16() == 303 {
            break location(&res);
        }
        assert!(
            Instant::now() < deadline,
            "client x not usable at /authorize after 5 s: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(location.starts_with("/login?tx="), "{location}");

    // Adding it again is refused, clearly.
    let dup = d.cli(&[
        "client",
        "add",
        "--client-id",
        "x",
        "--secret",
        secret,
        "--redirect-uri",
        "http://127.0.0.1:9/x",
    ]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));

    // Without --secret or --public a secret is generated and printed once.
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "batch",
        "--grant-type",
        "client_credentials",
        "--scope",
        "api.read",
    ]);
    assert!(out.status.success(), "client add: {}", stderr(&out));
    let printed = stdout(&out);
    let generated = printed
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap_or_else(|| panic!("a generated secret in {printed}"))
        .trim()
        .to_string();
    assert!(generated.len() >= 32, "{generated}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let issued = loop {
        let r = client_credentials(&server, "batch", &generated, Some("api.read")).await;
        if r.status == 200 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "generated secret not accepted after 5 s: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(issued.body["scope"], "api.read");
    assert_eq!(
        jwt_part(str_field(&issued.body, "access_token"), 1)["client_id"],
        "batch"
    );
    let wrong = client_credentials(&server, "batch", "not-the-secret-0123456789abcdef", None).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.body["error"], "invalid_client");

    // Invalid registrations: non-zero exit, a reason, nothing stored.
    let before = client_ids(&d).await.len();
    let invalid: [(&[&str], &str); 3] = [
        (
            &[
                "client",
                "add",
                "--client-id",
                "bad1",
                "--secret",
                secret,
                "--redirect-uri",
                "http://127.0.0.1:9/x#frag",
            ],
            "fragment",
        ),
        (
            &[
                "client",
                "add",
                "--client-id",
                "bad2",
                "--secret",
                secret,
                "--redirect-uri",
                "http://127.0.0.1:9/x",
                "--grant-type",
                "implicit",
            ],
            "unknown grant type",
        ),
        (
            &[
                "client",
                "add",
                "--client-id",
                "bad3",
                "--public",
                "--grant-type",
                "client_credentials",
            ],
            "client_credentials",
        ),
    ];
    for (args, reason) in invalid {
        let out = d.cli(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(reason), "{args:?}: {}", stderr(&out));
    }
    let ids = client_ids(&d).await;
    assert_eq!(ids.len(), before);
    assert!(
        !ids.iter()
            .any(|id| ["bad1", "bad2", "bad3"].contains(&id.as_str())),
        "{ids:?}"
    );

    // Accounts: duplicates and unknown roles are refused, nothing stored.
    let accounts = d.store().await.accounts().count().await.unwrap();
    let dup = d.cli(&[
        "user",
        "add",
        "--username",
        USER,
        "--password",
        "another password 123",
    ]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    let role = d.cli(&[
        "user",
        "add",
        "--username",
        "petr",
        "--password",
        "another password 123",
        "--role",
        "superuser",
    ]);
    assert!(!role.status.success());
    assert!(stderr(&role).contains("unknown role"), "{}", stderr(&role));
    assert_eq!(d.store().await.accounts().count().await.unwrap(), accounts);

    // Migrations are idempotent, also beside a running server.
    for _ in 0..2 {
        let m = d.cli(&["migrate"]);
        assert!(m.status.success(), "migrate: {}", stderr(&m));
    }
    let ready = http()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}
both_backends!(cli_beside_a_running_server, super::cli_beside_server);

// ---------------------------------------------------------------------------------------------
// 3. Key rotation while serving.
// ---------------------------------------------------------------------------------------------

struct Signed {
    access: AccessToken,
    id_token: String,
}

/// The code flow through the openidconnect relying party (verifies the ID token against JWKS).
async fn code_flow(server: &Server, browser: &Browser, client: &Rp) -> Signed {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = browser.sign_in(server, url.as_str(), USER, PASSWORD).await;
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    let code = param(&back, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies against the published keys");
    Signed {
        access: tokens.access_token().clone(),
        id_token: id_token.to_string(),
    }
}

async fn jwks_kids(server: &Server) -> Vec<String> {
    let v: Value = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .expect("GET /jwks")
        .json()
        .await
        .expect("JWKS");
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_while_serving() {
    let keys = tempfile::tempdir().expect("tempdir");
    let d = Deployment::with_keys(Backend::Sqlite, keys.path())
        .await
        .expect("SQLite deployment");
    let server = d.start().await;
    let browser = Browser::new();
    let before = code_flow(
        &server,
        &browser,
        &rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await,
    )
    .await;
    let old_kids = jwks_kids(&server).await;
    assert_eq!(
        old_kids.len(),
        3,
        "one key per algorithm on first start: {old_kids:?}"
    );
    let old_id_kid = kid(&before.id_token);
    let old_at_kid = kid(before.access.secret());
    assert!(old_kids.contains(&old_id_kid));

    let out = d.cli(&["keys", "rotate"]);
    assert!(out.status.success(), "keys rotate: {}", stderr(&out));
    let new_kids: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("new signing key "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(String::from)
        .collect();
    assert_eq!(new_kids.len(), 3, "{}", stdout(&out));

    // The running server notices: new keys published, retired ones kept.
    let deadline = Instant::now() + Duration::from_secs(10);
    let kids = loop {
        let kids = jwks_kids(&server).await;
        if kids.len() == 6 {
            break kids;
        }
        assert!(Instant::now() < deadline, "JWKS after rotation: {kids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for k in old_kids.iter().chain(&new_kids) {
        assert!(kids.contains(k), "{k} missing from {kids:?}");
    }

    // New tokens are signed with the new keys (the relying party rediscovers JWKS).
    let after = code_flow(
        &server,
        &browser,
        &rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await,
    )
    .await;
    let new_id_kid = kid(&after.id_token);
    assert_ne!(new_id_kid, old_id_kid);
    assert!(
        new_kids.contains(&new_id_kid),
        "{new_id_kid} not among {new_kids:?}"
    );
    assert_ne!(kid(after.access.secret()), old_at_kid);
    assert!(new_kids.contains(&kid(after.access.secret())));

    // Tokens signed before the rotation stay valid until they expire.
    let old = userinfo(&server, before.access.secret()).await;
    assert_eq!(
        old.status, 200,
        "pre-rotation token at /userinfo: {}",
        old.body
    );
    let new = userinfo(&server, after.access.secret()).await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert_eq!(old.body["sub"], new.body["sub"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Graceful shutdown drains the batched audit trail.
// ---------------------------------------------------------------------------------------------

async fn graceful_shutdown(d: Deployment) {
    let mut server = d.start().await;
    let browser = Browser::new();
    let req = auth_request(&server.base, "rp", RP_REDIRECT, "openid");
    let back = browser.sign_in(&server, &req.url, USER, PASSWORD).await;
    let code = code_of(&back, &req, &server.issuer);
    let t = redeem(&server, &code, &req.verifier).await;
    assert_eq!(t.status, 200, "{}", t.body);

    // Sequential requests, then a concurrent burst answered just before the SIGTERM, so that
    // events may still be queued for the batching writer when shutdown begins.
    const SEQUENTIAL: i64 = 10;
    const BURST: i64 = 40;
    const N: i64 = SEQUENTIAL + BURST;
    for _ in 0..SEQUENTIAL {
        let r = client_credentials(&server, "svc", SVC_SECRET, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let token_url = server.url("/token");
    let burst: Vec<_> = (0..BURST)
        .map(|_| {
            let url = token_url.clone();
            tokio::spawn(async move {
                http()
                    .post(url)
                    .basic_auth("svc", Some(SVC_SECRET))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .expect("POST /token")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for task in burst {
        assert_eq!(task.await.expect("request task"), 200);
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "vhod exited with {status}: {}",
        server.logs()
    );

    assert_eq!(
        d.count_events(
            |e| e.kind == "token_issued" && e.reason.as_deref() == Some("client_credentials")
        )
        .await,
        N
    );
    assert_eq!(
        d.count_events(|e| e.kind == "token_issued").await,
        N + 1,
        "the code redemption too"
    );
    let logs = server.logs();
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(
        logs.contains("\"stopped\""),
        "the audit writer finished: {logs}"
    );
}
both_backends!(
    graceful_shutdown_keeps_every_audit_event,
    super::graceful_shutdown
);

// ---------------------------------------------------------------------------------------------
// 5. Health endpoints and logs.
// ---------------------------------------------------------------------------------------------

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("hidden field {name}"))
        .to_string()
}

async fn health_and_logs(d: Deployment) {
    let mut server = d.start().await;
    // Every request this test makes: (request id, path).
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut record = |r: &Reply, path: &str| {
        assert!(!r.request_id.is_empty(), "X-Request-Id on {path}");
        seen.push((r.request_id.clone(), path.to_string()));
    };

    for path in ["/healthz", "/readyz"] {
        let r = reply(http().get(server.url(path)).send().await.expect("GET")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        record(&r, path);
    }

    // A sign-in, step by step, so that every request id is known.
    let browser = Browser::new();
    let req = auth_request(&server.base, "rp", RP_REDIRECT, "openid profile");
    let res = browser.get(&req.url).await;
    assert_eq!(res.status().as_u16(), 303);
    let login = location(&res);
    assert!(login.starts_with("/login?tx="), "{login}");
    record(&reply(res).await, "/authorize");
    let res = browser.get(&server.url(&login)).await;
    assert_eq!(res.status().as_u16(), 200);
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let html = res.text().await.expect("login page");
    record(
        &Reply {
            status: 200,
            body: Value::Null,
            request_id,
        },
        "/login",
    );
    let (tx, csrf) = (hidden(&html, "tx"), hidden(&html, "csrf"));
    let res = browser
        .http
        .post(server.url("/login/password"))
        .form(&[
            ("tx", tx.as_str()),
            ("csrf", csrf.as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login/password");
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    record(&reply(res).await, "/login/password");
    let code = code_of(&back, &req, &server.issuer);

    let t = redeem(&server, &code, &req.verifier).await;
    assert_eq!(t.status, 200, "{}", t.body);
    record(&t, "/token");
    let access = str_field(&t.body, "access_token").to_string();
    let id_token = str_field(&t.body, "id_token").to_string();
    let refresh = str_field(&t.body, "refresh_token").to_string();
    let info = userinfo(&server, &access).await;
    assert_eq!(info.status, 200, "{}", info.body);
    record(&info, "/userinfo");
    let cc = client_credentials(&server, "svc", SVC_SECRET, None).await;
    assert_eq!(cc.status, 200, "{}", cc.body);
    record(&cc, "/token");
    let svc_token = str_field(&cc.body, "access_token").to_string();
    let refreshed = token(
        &server,
        "rp",
        RP_SECRET,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    record(&refreshed, "/token");
    let refresh2 = str_field(&refreshed.body, "refresh_token").to_string();
    let access2 = str_field(&refreshed.body, "access_token").to_string();
    // A failed client authentication carrying a secret must not log it either.
    let wrong_secret = "wrong-secret-0123456789abcdefghij";
    let bad = client_credentials(&server, "svc", wrong_secret, None).await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    record(&bad, "/token");

    // Everything is written by now; stop the server so the log file is complete.
    assert!(server.terminate().success());
    let logs = server.logs();

    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .collect();
    let request_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("request_id").is_some())
        .collect();
    for (id, path) in &seen {
        let matching: Vec<&&Value> = request_lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one log line for request {id} ({path}):\n{logs}"
        );
        assert_eq!(matching[0]["path"], path.as_str(), "{}", matching[0]);
        assert!(matching[0]["status"].is_u64(), "{}", matching[0]);
    }
    // No request logged twice, and nothing else requested apart from the readiness polling.
    let mut ids: Vec<&str> = request_lines
        .iter()
        .map(|l| l["request_id"].as_str().expect("request_id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), request_lines.len(), "request ids are unique");
    let others = request_lines
        .iter()
        .filter(|l| !seen.iter().any(|(id, _)| l["request_id"] == id.as_str()))
        .filter(|l| l["path"] != "/healthz")
        .count();
    assert_eq!(others, 0, "{logs}");

    let secrets: [(&str, &str); 12] = [
        ("password", PASSWORD),
        ("client secret", RP_SECRET),
        ("service secret", SVC_SECRET),
        ("wrong secret", wrong_secret),
        ("authorization code", &code),
        ("code verifier", &req.verifier),
        ("access token", &access),
        ("ID token", &id_token),
        ("refresh token", &refresh),
        ("rotated refresh token", &refresh2),
        ("refreshed access token", &access2),
        ("client_credentials token", &svc_token),
    ];
    for (what, value) in secrets {
        assert!(!value.is_empty());
        assert!(!logs.contains(value), "the {what} is in the logs");
        // Nor a JWT's signature alone.
        if let Some(sig) = value.split('.').nth(2) {
            assert!(
                !logs.contains(sig),
                "the signature of the {what} is in the logs"
            );
        }
    }
}
both_backends!(health_and_request_logs, super::health_and_logs);

// ---------------------------------------------------------------------------------------------
// 6. Development mode.
// ---------------------------------------------------------------------------------------------

async fn dev_mode(d: Deployment) {
    let creds_file = std::path::Path::new(env_of(&d, "VHOD_DATA_DIR")).join("demo-credentials.txt");
    assert!(!has_client(&d, "demo").await);
    let server = start_dev(&d).await;

    assert!(has_client(&d, "demo").await);
    assert!(d.account("demo").await.is_some());
    let creds = std::fs::read_to_string(&creds_file).expect("demo-credentials.txt");
    let mut parts = creds.split_whitespace();
    assert_eq!(parts.next(), Some("demo"), "{creds}");
    let password = parts.next().expect("a demo password").to_string();
    assert!(
        !server.logs().contains(&password),
        "the demo password is not logged"
    );

    let browser = Browser::new();
    let res = browser.get(&server.url("/demo/start")).await;
    assert_eq!(res.status().as_u16(), 303);
    let authorize = location(&res);
    assert!(
        authorize.starts_with(&server.url("/authorize?")),
        "{authorize}"
    );
    let page = match browser.authorize(&server, &authorize).await {
        Err(page) => page,
        Ok(loc) => panic!("expected the login page, got {loc}"),
    };
    let res = browser
        .submit_password(&server, &page, "demo", &password)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let callback = location(&res);
    assert!(
        callback.starts_with(&server.url("/demo/callback?")),
        "{callback}"
    );
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.expect("callback page");
    assert!(html.contains("preferred_username"), "{html}");
    assert!(html.contains("demo@example.invalid"), "{html}");
}

async fn start_dev(d: &Deployment) -> Server {
    let port = free_port();
    d.start_as(
        port,
        &format!("http://127.0.0.1:{port}"),
        &[("VHOD_DEV", "true")],
    )
    .await
}
both_backends!(development_mode_demo, super::dev_mode);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_is_off_outside_development_mode() {
    let d = Deployment::new(Backend::Sqlite)
        .await
        .expect("SQLite deployment");
    let server = d.start().await;
    let res = http()
        .get(server.url("/demo/start"))
        .send()
        .await
        .expect("GET /demo/start");
    assert_eq!(res.status().as_u16(), 404);
    assert!(!has_client(&d, "demo").await);
}

// ---------------------------------------------------------------------------------------------
// 7. Settings are validated before anything starts.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused() {
    let d = Deployment::new(Backend::Sqlite)
        .await
        .expect("SQLite deployment");

    let out = run_bounded(vhod_with(&d, &["serve"], &[("VHOD_LISTEN", "nonsense")]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("VHOD_LISTEN") && err.contains("nonsense"),
        "{err}"
    );

    // An unknown key, at the top level or in a client, is an error rather than a silent no-op.
    let cases = [
        (
            "top.toml",
            "listen = \"127.0.0.1:0\"\nacess_token_ttl = 60\n",
            "acess_token_ttl",
        ),
        (
            "client.toml",
            "[[clients]]\nclient_id = \"c\"\nsecret = \"c-secret-0123456789abcdef\"\nredirect_uri = [\"http://127.0.0.1:9/c\"]\n",
            "redirect_uri",
        ),
    ];
    for (name, text, key) in cases {
        let path = d.dir.path().join(name);
        std::fs::write(&path, text).expect("writing a settings file");
        let path = path.display().to_string();
        let port = free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let out = run_bounded(vhod_with(
            &d,
            &["serve"],
            &[("VHOD_CONFIG", &path), ("VHOD_LISTEN", &listen)],
        ));
        assert!(!out.status.success(), "{name} was accepted");
        let err = stderr(&out);
        assert!(
            err.contains("unknown field") && err.contains(key),
            "{name}: {err}"
        );
        let out = run_bounded(vhod_with(&d, &["--config", &path, "migrate"], &[]));
        assert!(!out.status.success(), "{name} accepted by migrate");
    }
}
