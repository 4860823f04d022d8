//! Hardening of the HTTP front and of sessions: slow clients and the connection cap, the 413 a
//! client reliably reads, browser session storage, sign-in over another person's session,
//! X-Forwarded-For behind trusted proxies, assurance and fresh login at /profile, client
//! assertions from the future and who may introspect a token.
//!
//! The transport tests drive the server with raw TCP sockets, as slow or hostile clients do; they
//! run on the embedded backend only, since the storage behind the server plays no part in them.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Slow-client limits short enough for tests.
const SLOW: &[(&str, &str)] = &[
    ("VHOD_HEADER_READ_TIMEOUT_SECONDS", "2"),
    ("VHOD_BODY_READ_TIMEOUT_SECONDS", "2"),
    ("VHOD_KEEP_ALIVE_TIMEOUT_SECONDS", "1"),
    ("VHOD_MAX_CONNECTIONS", "4"),
    ("VHOD_MAX_CONNECTIONS_PER_IP", "4"),
];

/// What the socket says now: Some(bytes) read (empty when the peer closed), None when nothing
/// arrives within `wait`.
async fn read_some(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 16 * 1024];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        Ok(Err(_)) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Reads until the peer closes or `wait` passes; what arrived, and whether it closed.
async fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = Instant::now() + wait;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        match read_some(s, deadline - Instant::now()).await {
            Some(b) if b.is_empty() => return (String::from_utf8_lossy(&all).into(), true),
            Some(b) => all.extend_from_slice(&b),
            None => break,
        }
    }
    (String::from_utf8_lossy(&all).into(), false)
}

async fn slow_server() -> (Deployment, Server) {
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let server = d.start_with(SLOW).await;
    (d, server)
}

/// A client that sends one header line a second never completes its request: it is
/// disconnected once the header read timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off() {
    let (_d, server) = slow_server().await;
    let mut s = TcpStream::connect(addr(&server)).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut closed = false;
    for i in 0..12 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        if let Some(b) = read_some(&mut s, Duration::from_millis(20)).await {
            assert!(
                b.is_empty() || String::from_utf8_lossy(&b).starts_with("HTTP/1.1 408"),
                "only a close or a 408: {:?}",
                String::from_utf8_lossy(&b)
            );
            closed = true;
            break;
        }
    }
    assert!(closed, "12 s of trickled headers kept the connection open");
}

/// A request whose body trickles in gets a 408 (or is closed) once the body read timeout passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_body_gets_408() {
    let (_d, server) = slow_server().await;
    let mut s = TcpStream::connect(addr(&server)).await.expect("connect");
    s.write_all(
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 200\r\n\r\ngrant_type=",
    )
    .await
    .expect("write");
    let mut answer = None;
    for _ in 0..48 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if s.write_all(b"a").await.is_err() {
            answer = Some(String::new());
            break;
        }
        if let Some(b) = read_some(&mut s, Duration::from_millis(10)).await {
            let mut text = String::from_utf8_lossy(&b).to_string();
            if !b.is_empty() {
                text += &read_until_closed(&mut s, Duration::from_secs(5)).await.0;
            }
            answer = Some(text);
            break;
        }
    }
    let answer = answer.expect("12 s of a trickled body kept the request open");
    // The server lingers after its answer, so the 408 is read rather than lost to a reset.
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// A keep-alive connection with nothing more to say is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let (_d, server) = slow_server().await;
    let mut s = TcpStream::connect(addr(&server)).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let first = read_some(&mut s, Duration::from_secs(5))
        .await
        .expect("an answer");
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );
    // The connection stays usable for a second request right away (keep-alive works)…
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let second = read_some(&mut s, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert!(String::from_utf8_lossy(&second).starts_with("HTTP/1.1 200"));
    // …and is closed once idle.
    let (rest, closed) = read_until_closed(&mut s, Duration::from_secs(8)).await;
    assert!(closed, "an idle keep-alive connection stayed open 8 s");
    assert!(rest.is_empty(), "nothing more was sent: {rest}");
}

/// The connection cap bounds open sockets: with every slot held by idle sockets a new
/// connection waits (the cap holds), and it is served once the timeouts shed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_and_timeouts_free_slots() {
    let (_d, server) = slow_server().await;
    // Give the readiness probe's connection time to be released.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr(&server)).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe = TcpStream::connect(addr(&server)).await.expect("connect");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    assert!(
        read_some(&mut probe, Duration::from_millis(500))
            .await
            .is_none(),
        "a fifth connection was served while four held every slot"
    );
    let (answer, _) = read_until_closed(&mut probe, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "once the idle sockets are shed, /healthz answers: {answer:?}"
    );
    for mut s in idle {
        let (rest, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(closed && rest.is_empty(), "idle sockets are closed: {rest}");
    }
}

/// One address holds at most its share of the slots: a further connection from it is closed
/// at once, without an answer, and one closed frees a place for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let server = d
        .start_with(&[
            ("VHOD_MAX_CONNECTIONS", "8"),
            ("VHOD_MAX_CONNECTIONS_PER_IP", "2"),
        ])
        .await;
    // Give the readiness probe's connection time to be released.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr(&server)).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr(&server)).await.expect("connect");
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(3)).await;
    assert!(
        closed && answer.is_empty(),
        "a third connection: {answer:?}"
    );
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = TcpStream::connect(addr(&server)).await.expect("connect");
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut next, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

/// A client that asks for answers and never reads them cannot hold its slot: once its socket
/// buffers are full and stay full for the write timeout, the connection is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped() {
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let server = d
        .start_with(&[
            ("VHOD_MAX_CONNECTIONS", "1"),
            ("VHOD_WRITE_TIMEOUT_SECONDS", "2"),
            ("VHOD_KEEP_ALIVE_TIMEOUT_SECONDS", "1"),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let addr: std::net::SocketAddr = addr(&server).parse().expect("address");
    let stalled = socket.connect(addr).await.expect("connect");
    let (_reader, mut writer) = stalled.into_split();
    // 400 answers of 16 KB: more than the socket buffers hold.
    let asks = b"GET /static/cert-login.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    tokio::spawn(async move {
        let _ = writer.write_all(&asks).await;
        // Held open, never read.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(writer);
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut probe = TcpStream::connect(addr).await.expect("connect");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut probe, Duration::from_secs(20)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the only slot was freed from the client that stopped reading: {answer:?}"
    );
}

/// RFC 9112 §9.6: an oversized request is answered 413 and the rest of its body read and
/// discarded before the close, so a client that writes everything before it reads gets the
/// answer, not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_always_gets_its_413() {
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let server = d.start().await;
    let target = addr(&server);
    let body = vec![b'a'; 1_000_000];
    for round in 0..10 {
        let target = target.clone();
        let body = body.clone();
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&target).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            s.set_write_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let head = format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).map_err(|e| format!("head: {e}"))?;
            s.write_all(&body).map_err(|e| format!("body: {e}"))?;
            let mut out = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&chunk[..n]),
                    Err(e) if out.is_empty() => return Err(format!("read: {e}")),
                    Err(_) => break,
                }
            }
            Ok::<String, String>(String::from_utf8_lossy(&out).into_owned())
        })
        .await
        .expect("client thread");
        match answer {
            Ok(a) => assert!(a.starts_with("HTTP/1.1 413"), "round {round}: {a:?}"),
            Err(e) => panic!("round {round}: no HTTP answer ({e})"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Browser sessions at rest, and the files of the embedded database
// ---------------------------------------------------------------------------------------------

/// Every text stored for browser sessions: the SQL rows (key and data), or the Redis values.
async fn stored_sessions(d: &Deployment) -> Vec<String> {
    let env = |k: &str| d.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match d.backend {
        Backend::Shared => {
            let url = env("VHOD_REDIS_URL").expect("redis url");
            let prefix = env("VHOD_REDIS_PREFIX").expect("redis prefix");
            let client = redis::Client::open(url.as_str()).expect("redis");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}sess:*"))
                .query_async(&mut c)
                .await
                .expect("KEYS");
            let mut out = Vec::new();
            for k in keys {
                let v: Vec<u8> = redis::cmd("GET")
                    .arg(&k)
                    .query_async(&mut c)
                    .await
                    .expect("GET");
                out.push(format!("{k} {}", String::from_utf8_lossy(&v)));
            }
            out
        }
        Backend::Sqlite => {
            use sqlx::{Connection, Row};
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&d.db_url()).await.expect("db");
            sqlx::query("SELECT id, data FROM web_sessions")
                .fetch_all(&mut conn)
                .await
                .expect("web_sessions")
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r.try_get::<String, _>(0).unwrap_or_default(),
                        r.try_get::<String, _>(1).unwrap_or_default()
                    )
                })
                .collect()
        }
    }
}

/// The session cookie values a response sets.
fn session_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.strip_prefix("vhod="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The session id a cookie carries, in every form a store could keep it: the cookie text and
/// tower-sessions' integer id.
fn id_forms(cookie: &str) -> Vec<String> {
    use base64::Engine;
    let mut forms = vec![cookie.to_string()];
    if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cookie)
        && let Ok(b) = <[u8; 16]>::try_from(bytes.as_slice())
    {
        forms.push(i128::from_le_bytes(b).to_string());
    }
    forms
}

/// A copy of the session store cannot be turned back into cookies: records are kept under a
/// hash of the id and hold neither the cookie value nor the id.
async fn sessions_at_rest(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let mut cookies = Vec::new();
    let res = browser.get(&p.url).await;
    cookies.extend(session_cookies(&res));
    let page = browser.login_page(&server.url(&location(&res))).await;
    let res = browser
        .submit_password(&server, &page, USER, PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    cookies.extend(session_cookies(&res));
    code_from(&server, &location(&res), &p);
    assert!(!cookies.is_empty(), "the browser got a session cookie");

    let stored = stored_sessions(&d).await;
    assert!(!stored.is_empty(), "the signed-in session is stored");
    for cookie in &cookies {
        for form in id_forms(cookie) {
            for record in &stored {
                assert!(
                    !record.contains(&form),
                    "the stored session {record} contains its id {form}"
                );
            }
        }
    }
    // The stored session still works: the browser is signed in.
    let p = authorization(&client, &[], &[]);
    let back = browser
        .authorize(&server, &p.url)
        .await
        .unwrap_or_else(|_| panic!("single sign-on from the stored session"));
    code_from(&server, &back, &p);
}
both_backends!(session_records_hold_no_ids, super::sessions_at_rest);

/// The data directory and the SQLite file are readable by the service's user only, whether
/// the start creates them or finds them looser.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let data = d.dir.path().join("data");
    let db = data.join("vhod.db");
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    // `user add` created both before any server ran.
    assert_eq!(mode(&data), 0o700, "a data directory the CLI created");
    assert_eq!(mode(&db), 0o600, "a database the CLI created");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _server = d.start().await;
    assert_eq!(mode(&data), 0o700, "the start tightens the data directory");
    assert_eq!(mode(&db), 0o600, "the start tightens the database file");
    for side in ["vhod.db-wal", "vhod.db-shm"] {
        let p = data.join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-For behind trusted proxies
// ---------------------------------------------------------------------------------------------

async fn password_from(
    server: &Server,
    browser: &Browser,
    page: &LoginPage,
    forwarded_for: &str,
    user: &str,
    password: &str,
) -> u16 {
    browser
        .http
        .post(server.url("/login/password"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("tx", page.tx.as_str()),
            ("csrf", page.csrf.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST /login/password")
        .status()
        .as_u16()
}

/// Behind an appending proxy the client writes the left of X-Forwarded-For: the address the
/// trusted proxy saw (the rightmost) is the one that counts, so a spoofed leftmost value does
/// not escape the per-IP lock.
async fn forwarded_for(d: Deployment) {
    let server = d
        .start_with(&[
            ("VHOD_TRUST_FORWARDED_FOR", "true"),
            ("VHOD_IP_FAILURE_LIMIT", "3"),
            ("VHOD_LOGIN_DELAY_MS", "1"),
        ])
        .await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("a login page");
    for i in 0..3 {
        let spoofed = format!("198.51.100.{i}, 203.0.113.7");
        let status = password_from(
            &server,
            &browser,
            &page,
            &spoofed,
            &format!("nobody{i}"),
            "wrong password",
        )
        .await;
        assert_eq!(status, 401, "a failed login shows the form again");
    }
    // The address the proxy saw is locked out, whatever its left says.
    let status = password_from(
        &server,
        &browser,
        &page,
        "192.0.2.99, 203.0.113.7",
        USER,
        PASSWORD,
    )
    .await;
    assert_eq!(status, 429, "the per-IP lock holds against a spoofed left");
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.ip.as_deref() == Some("203.0.113.7"))
            .await,
        4
    );
    assert_eq!(
        d.count_events(|e| e
            .ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("198.51.100.")))
            .await,
        0,
        "the spoofed values are nowhere"
    );
    // Another client behind the same proxy is not affected.
    let status = password_from(
        &server,
        &browser,
        &page,
        "203.0.113.7, 203.0.113.8",
        USER,
        PASSWORD,
    )
    .await;
    assert_eq!(status, 303, "another address signs in");
}
both_backends!(forwarded_for_counts_from_the_right, super::forwarded_for);

/// Two trusted proxies: the address the outer one saw, second from the right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_with_two_proxies() {
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let server = d
        .start_with(&[
            ("VHOD_TRUST_FORWARDED_FOR", "true"),
            ("VHOD_TRUSTED_PROXIES", "2"),
        ])
        .await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("a login page");
    let status = password_from(
        &server,
        &browser,
        &page,
        "10.9.9.9, 203.0.113.20, 10.0.0.2",
        USER,
        PASSWORD,
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "login" && e.ip.as_deref() == Some("203.0.113.20")
        })
        .await,
        1
    );
}

// ---------------------------------------------------------------------------------------------
// A sign-in over another person's session
// ---------------------------------------------------------------------------------------------

/// A relying party's back-channel logout endpoint on 127.0.0.1: the logout tokens it received.
async fn backchannel_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().route(
        "/bcl",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                let token = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                sink.lock().expect("lock").push(token);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://127.0.0.1:{port}/bcl"), received)
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

const BCL_SECRET: &str = "bcl-secret-0123456789abcdefghij";
const BCL_REDIRECT: &str = "http://127.0.0.1:9/bcl-cb";

fn cli_ok(d: &Deployment, args: &[&str]) {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Registers the client `bcl`, told of logouts over the back channel at `bcl_uri`.
fn bcl_client(d: &Deployment, bcl_uri: &str) {
    cli_ok(
        d,
        &[
            "client",
            "add",
            "--client-id",
            "bcl",
            "--secret",
            BCL_SECRET,
            "--redirect-uri",
            BCL_REDIRECT,
            "--backchannel-logout-uri",
            bcl_uri,
        ],
    );
}

/// A second person with a password account.
fn add_maria(d: &Deployment) {
    cli_ok(
        d,
        &[
            "user",
            "add",
            "--username",
            "maria",
            "--password",
            MARIA_PASSWORD,
        ],
    );
}

const MARIA_PASSWORD: &str = "another good passphrase";

/// (refresh token, sid, sub) of a code flow for `client` signed in as `user`.
async fn tokens_as(
    server: &Server,
    browser: &Browser,
    client: &Rp,
    extra: &[(&str, &str)],
    user: &str,
    password: &str,
) -> (String, String, String) {
    use openidconnect::{AuthorizationCode, OAuth2TokenResponse, PkceCodeVerifier};
    let p = authorization(client, &[], extra);
    let back = browser.sign_in(server, &p.url, user, password).await;
    let code = code_from(server, &back, &p);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    let id = jwt_claims(
        &openidconnect::TokenResponse::id_token(&tokens)
            .expect("ID token")
            .to_string(),
    );
    (
        tokens
            .refresh_token()
            .expect("a refresh token")
            .secret()
            .clone(),
        id["sid"].as_str().expect("sid").to_string(),
        id["sub"].as_str().expect("sub").to_string(),
    )
}

async fn refresh_status(server: &Server, refresh: &str) -> u16 {
    http()
        .post(server.url("/token"))
        .basic_auth("bcl", Some(BCL_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .expect("POST /token")
        .status()
        .as_u16()
}

/// Another person signing in in the same browser ends the previous person's session as a
/// logout would: its grants are revoked, its clients told over the back channel, the end
/// audited.
async fn sign_in_over_another_session(d: Deployment) {
    let (bcl_uri, received) = backchannel_receiver().await;
    bcl_client(&d, &bcl_uri);
    add_maria(&d);
    let server = d.start().await;
    let client = rp(&server, "bcl", Some(BCL_SECRET), BCL_REDIRECT).await;
    let browser = Browser::new();
    let (ivan_refresh, ivan_sid, ivan_sub) =
        tokens_as(&server, &browser, &client, &[], USER, PASSWORD).await;
    assert_eq!(refresh_status(&server, &ivan_refresh).await, 200);
    let (ivan_refresh, _, _) = tokens_as(&server, &browser, &client, &[], USER, PASSWORD).await;

    // Maria signs in in the same browser.
    let (_, maria_sid, maria_sub) = tokens_as(
        &server,
        &browser,
        &client,
        &[("prompt", "login")],
        "maria",
        MARIA_PASSWORD,
    )
    .await;
    assert_ne!(maria_sub, ivan_sub);
    assert_eq!(
        refresh_status(&server, &ivan_refresh).await,
        400,
        "Ivan's grants ended with his session"
    );

    let mut token = None;
    for _ in 0..100 {
        if let Some(t) = received.lock().expect("lock").first().cloned() {
            token = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = token.expect("the back-channel logout arrived");
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], ivan_sub.as_str());
    assert_eq!(claims["sid"], ivan_sid.as_str());
    assert_eq!(claims["aud"], "bcl");
    assert!(
        received
            .lock()
            .expect("lock")
            .iter()
            .all(|t| jwt_claims(t)["sid"] != maria_sid.as_str()),
        "Maria's session goes on"
    );
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "logout" && e.subject.as_deref() == Some(ivan_sub.as_str())
        })
        .await,
        1
    );
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "backchannel_logout" && e.outcome == "success"
        })
        .await,
        1
    );
}
both_backends!(
    sign_in_over_another_session_logs_it_out,
    super::sign_in_over_another_session
);

/// Another person's sign-in ends the previous person's session even when it has expired: the
/// grants made under it outlive its expiry, but not the next person's sign-in in that browser.
async fn sign_in_over_an_expired_session(d: Deployment) {
    let (bcl_uri, received) = backchannel_receiver().await;
    bcl_client(&d, &bcl_uri);
    add_maria(&d);
    let server = d.start().await;
    let client = rp(&server, "bcl", Some(BCL_SECRET), BCL_REDIRECT).await;
    let browser = Browser::new();
    let (first, ivan_sid, ivan_sub) =
        tokens_as(&server, &browser, &client, &[], USER, PASSWORD).await;
    let (second, again_sid, _) = tokens_as(&server, &browser, &client, &[], USER, PASSWORD).await;
    assert_eq!(again_sid, ivan_sid, "one session, two grants");

    // Ivan's session expires; the browser still holds it, and his grants live on.
    let expired = d
        .tamper(&format!(
            "UPDATE sso_sessions SET expires_at = 1 WHERE sid = '{ivan_sid}'"
        ))
        .await;
    assert_eq!(expired, 1);
    assert_eq!(
        refresh_status(&server, &first).await,
        200,
        "a grant outlives its session's expiry"
    );

    let (_, _, maria_sub) =
        tokens_as(&server, &browser, &client, &[], "maria", MARIA_PASSWORD).await;
    assert_ne!(maria_sub, ivan_sub);
    assert_eq!(
        refresh_status(&server, &second).await,
        400,
        "Ivan's grants ended with Maria's sign-in"
    );
    let mut told = false;
    for _ in 0..100 {
        told = received
            .lock()
            .expect("lock")
            .iter()
            .any(|t| jwt_claims(t)["sid"] == ivan_sid.as_str());
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(told, "Ivan's client was told over the back channel");
}
both_backends!(
    sign_in_over_an_expired_session_logs_it_out,
    super::sign_in_over_an_expired_session
);

/// The same person signing in again (prompt=login) renews their own session: the sid stays,
/// the grants made under it live on, and no client is logged out.
async fn sign_in_again_as_the_same_person(d: Deployment) {
    let (bcl_uri, received) = backchannel_receiver().await;
    bcl_client(&d, &bcl_uri);
    let server = d.start().await;
    let client = rp(&server, "bcl", Some(BCL_SECRET), BCL_REDIRECT).await;
    let browser = Browser::new();
    let (first_refresh, first_sid, sub) =
        tokens_as(&server, &browser, &client, &[], USER, PASSWORD).await;
    let (_, again_sid, again_sub) = tokens_as(
        &server,
        &browser,
        &client,
        &[("prompt", "login")],
        USER,
        PASSWORD,
    )
    .await;
    assert_eq!(again_sub, sub);
    assert_eq!(again_sid, first_sid, "the session goes on under its sid");
    assert_eq!(
        refresh_status(&server, &first_refresh).await,
        200,
        "the first grant lives on"
    );
    // Give a back-channel logout, were one sent, the time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        received.lock().expect("lock").is_empty(),
        "no client is logged out"
    );
    assert_eq!(
        d.count_events(|e| e.kind == "logout" && e.subject.as_deref() == Some(sub.as_str()))
            .await,
        0
    );
}
both_backends!(
    sign_in_again_keeps_the_session,
    super::sign_in_again_as_the_same_person
);

// ---------------------------------------------------------------------------------------------
// Client assertions from the future; who may introspect a token
// ---------------------------------------------------------------------------------------------

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn b64e(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct AssertionKey(ring::signature::EcdsaKeyPair);

impl AssertionKey {
    fn generate() -> AssertionKey {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key generation");
        AssertionKey(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("key"),
        )
    }

    fn jwks(&self) -> serde_json::Value {
        use ring::signature::KeyPair;
        let point = self.0.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": b64e(&point[1..33]), "y": b64e(&point[33..65]),
        }]})
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
        let input = format!(
            "{}.{}",
            b64e(header.to_string().as_bytes()),
            b64e(claims.to_string().as_bytes())
        );
        let sig = self
            .0
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .expect("signing");
        format!("{input}.{}", b64e(sig.as_ref()))
    }
}

async fn assertion_status(server: &Server, assertion: &str) -> (u16, serde_json::Value) {
    let res = http()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("POST /token");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// A client assertion issued (`iat`) or valid from (`nbf`) beyond a small clock skew in the
/// future is refused: it would otherwise be a token minted now for use later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_assertions_from_the_future_are_refused() {
    static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let d = Deployment::new(Backend::Sqlite).await.expect("sqlite");
    let key = AssertionKey::generate();
    let jwks = d.dir.path().join("pk.jwks.json");
    std::fs::write(&jwks, key.jwks().to_string()).expect("jwks");
    cli_ok(
        &d,
        &[
            "client",
            "add",
            "--client-id",
            "pk",
            "--jwks",
            &jwks.display().to_string(),
            "--grant-type",
            "client_credentials",
            "--scope",
            "appeals.read",
        ],
    );
    let server = d.start().await;
    let aud = server.url("/token");
    let claims = |extra: serde_json::Value| {
        let mut c = serde_json::json!({
            "iss": "pk", "sub": "pk", "aud": aud, "exp": unix_now() + 300,
            "jti": format!("{}-{}", random_suffix(), JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        });
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    };
    for (what, extra) in [
        (
            "iat an hour ahead",
            serde_json::json!({"iat": unix_now() + 3600}),
        ),
        (
            "nbf an hour ahead",
            serde_json::json!({"nbf": unix_now() + 3600}),
        ),
        (
            "iat 5 minutes ahead",
            serde_json::json!({"iat": unix_now() + 290}),
        ),
    ] {
        let (status, body) = assertion_status(&server, &key.sign(&claims(extra))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {body}"
        );
    }
    for (what, extra) in [
        ("iat now", serde_json::json!({"iat": unix_now()})),
        (
            "a few seconds of clock skew",
            serde_json::json!({"iat": unix_now() + 20, "nbf": unix_now() + 20}),
        ),
        (
            "nbf in the past",
            serde_json::json!({"nbf": unix_now() - 60}),
        ),
    ] {
        let (status, body) = assertion_status(&server, &key.sign(&claims(extra))).await;
        assert_eq!(status, 200, "{what}: {body}");
    }
}

async fn introspect(server: &Server, client: (&str, &str), token: &str) -> serde_json::Value {
    let res = http()
        .post(server.url("/introspect"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .expect("POST /introspect");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("JSON")
}

/// Introspection tells a token's secrets only to its own client and to the resource servers
/// registered for its audience; any other client learns `active: false` and nothing more.
async fn introspection_scope(d: Deployment) {
    const API_SECRET: &str = "api-secret-0123456789abcdefghij";
    cli_ok(
        &d,
        &[
            "client",
            "add",
            "--client-id",
            "api",
            "--secret",
            API_SECRET,
            "--grant-type",
            "client_credentials",
            "--introspection-audience",
            "rp",
        ],
    );
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let back = browser.sign_in(&server, &p.url, USER, PASSWORD).await;
    let code = code_from(&server, &back, &p);
    let res = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", p.verifier.as_str()),
        ])
        .send()
        .await
        .expect("POST /token");
    assert_eq!(res.status().as_u16(), 200);
    let tokens: serde_json::Value = res.json().await.expect("JSON");
    let access = tokens["access_token"].as_str().expect("access token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");

    let own = introspect(&server, ("rp", RP_SECRET), access).await;
    assert_eq!(own["active"], true, "{own}");
    assert_eq!(own["client_id"], "rp");
    let resource_server = introspect(&server, ("api", API_SECRET), access).await;
    assert_eq!(resource_server["active"], true, "{resource_server}");
    assert_eq!(resource_server["sub"], own["sub"]);
    for (who, secret) in [("rp2", RP2_SECRET), ("svc", SVC_SECRET)] {
        let other = introspect(&server, (who, secret), access).await;
        assert_eq!(
            other,
            serde_json::json!({"active": false}),
            "{who} learns nothing of rp's token"
        );
    }
    // Refresh tokens stay with their client, resource servers included.
    assert_eq!(
        introspect(&server, ("rp", RP_SECRET), refresh).await["active"],
        true
    );
    for (who, secret) in [("api", API_SECRET), ("rp2", RP2_SECRET)] {
        assert_eq!(
            introspect(&server, (who, secret), refresh).await,
            serde_json::json!({"active": false}),
            "{who} and rp's refresh token"
        );
    }
    // A resource server for rp is none for svc's tokens.
    let res = http()
        .post(server.url("/token"))
        .basic_auth("svc", Some(SVC_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST /token");
    let svc_token: serde_json::Value = res.json().await.expect("JSON");
    let svc_access = svc_token["access_token"].as_str().expect("access token");
    assert_eq!(
        introspect(&server, ("api", API_SECRET), svc_access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        introspect(&server, ("svc", SVC_SECRET), svc_access).await["active"],
        true
    );
}
both_backends!(
    introspection_only_for_the_client_and_its_resource_servers,
    super::introspection_scope
);

// ---------------------------------------------------------------------------------------------
// The profile: the account's assurance, and a fresh login before contact changes
// ---------------------------------------------------------------------------------------------

fn outbox_to(d: &Deployment, to: &str) -> usize {
    d.outbox().iter().filter(|m| m.to == to).count()
}

async fn post_form(b: &Browser, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = b.http.post(url).form(form).send().await.expect("POST");
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn get_page(b: &Browser, url: &str) -> (u16, String) {
    let res = b.get(url).await;
    (res.status().as_u16(), res.text().await.expect("body"))
}

const MSG_NEEDS_CERTIFICATE: &str =
    "The profile of this account is available only after signing in with an EDS key or ID card.";
const MSG_REAUTH: &str = "To change your phone or email, confirm it is you: enter your password.";
const MSG_REAUTH_FAILED: &str = "Incorrect password.";

/// An employee must sign in with a certificate: a password session (which the login keeps
/// while it asks for the certificate) does not open their profile, let alone change contacts.
async fn profile_assurance(d: Deployment) {
    cli_ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "petr",
            "--password",
            "employee passphrase 1",
            "--email",
            "petr@gov.example.by",
            "--role",
            "employee",
        ],
    );
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("a login page");
    let res = browser
        .submit_password(&server, &page, "petr", "employee passphrase 1")
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        location(&res).starts_with("/login?tx="),
        "the employee is asked for a certificate: {}",
        location(&res)
    );

    let (status, html) = get_page(&browser, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains(MSG_NEEDS_CERTIFICATE), "{html}");
    assert!(!html.contains("petr@"), "no contacts shown: {html}");
    let (status, html) = post_form(
        &browser,
        &server.url("/profile/email"),
        &[
            ("csrf", page.csrf.as_str()),
            ("ui_locales", "en"),
            ("email", "attacker@example.org"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains(MSG_NEEDS_CERTIFICATE), "{html}");
    assert_eq!(outbox_to(&d, "attacker@example.org"), 0);

    // A citizen's password session opens their profile as before.
    let citizen = Browser::new();
    let p = authorization(&client, &[], &[]);
    let back = citizen.sign_in(&server, &p.url, USER, PASSWORD).await;
    code_from(&server, &back, &p);
    let (status, html) = get_page(&citizen, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
}
both_backends!(
    profile_follows_the_account_assurance,
    super::profile_assurance
);

/// A contact change needs a recent sign-in: with an older one, the password again.
async fn profile_reauthentication(d: Deployment) {
    let server = d.start_with(&[("VHOD_PROFILE_REAUTH_SECONDS", "3")]).await;
    let browser = signed_in_browser(&server).await;
    let (status, html) = get_page(&browser, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains(r#"name="password""#),
        "a fresh sign-in needs no password: {html}"
    );
    let csrf = csrf_in(&html);

    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, html) = get_page(&browser, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"name="password""#),
        "an older sign-in: the forms ask for the password: {html}"
    );
    let email = |password: Option<&'static str>| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("ui_locales", "en".to_string()),
            ("email", "ivan.new@example.by".to_string()),
        ];
        if let Some(p) = password {
            form.push(("password", p.to_string()));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let b = &browser;
        let url = server.url("/profile/email");
        async move {
            let res = b.http.post(url).form(&form).send().await.expect("POST");
            (res.status().as_u16(), res.text().await.expect("body"))
        }
    };
    let change_phone = || {
        let (b, url, csrf) = (&browser, server.url("/profile/phone"), csrf.clone());
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("ui_locales", "en"),
                ("phone", "+375 33 111-22-33"),
            ];
            post_form(b, &url, &form).await
        }
    };
    let (status, html) = send(email(None)).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains(MSG_REAUTH), "{html}");
    let (status, html) = send(email(Some("not my password"))).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains(MSG_REAUTH_FAILED), "{html}");
    let (status, html) = change_phone().await;
    assert_eq!(status, 403, "phone changes too: {html}");
    assert_eq!(outbox_to(&d, "ivan.new@example.by"), 0, "nothing sent yet");
    assert_eq!(outbox_to(&d, "+375331112233"), 0, "nothing sent yet");
    assert_eq!(
        d.wait_events(1, |e| e.kind == "profile_reauth" && e.outcome == "failure")
            .await,
        1
    );

    let (status, html) = send(email(Some(PASSWORD))).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(outbox_to(&d, "ivan.new@example.by"), 1, "the link went out");
    // The password just entered counts as a fresh sign-in for the next change.
    let (status, html) = change_phone().await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(outbox_to(&d, "+375331112233"), 1, "the code went out");
}
both_backends!(
    profile_contact_changes_need_a_fresh_login,
    super::profile_reauthentication
);

/// The password entered again on the profile page is a login attempt like any other: failures
/// count towards the account's lock, whose owner is told, and a locked account's password is
/// not checked at all (the lock holds for sign-ins too).
async fn profile_reentry_counts_as_a_login(d: Deployment) {
    let server = d
        .start_with(&[
            ("VHOD_PROFILE_REAUTH_SECONDS", "1"),
            ("VHOD_LOCKOUT_THRESHOLD", "3"),
            ("VHOD_LOGIN_DELAY_MS", "10"),
        ])
        .await;
    let browser = signed_in_browser(&server).await;
    // Sign-in times are whole seconds: past 1 s for certain.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, html) = get_page(&browser, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"name="password""#), "{html}");
    let csrf = csrf_in(&html);
    let email = |password: &'static str| {
        let (b, url, csrf) = (&browser, server.url("/profile/email"), csrf.clone());
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("ui_locales", "en"),
                ("email", "ivan.new@example.by"),
                ("password", password),
            ];
            post_form(b, &url, &form).await
        }
    };
    for n in 1..=3 {
        let (status, html) = email("not my password").await;
        assert_eq!(status, 403, "#{n}: {html}");
        assert!(html.contains(MSG_REAUTH_FAILED), "#{n}: {html}");
    }
    let (status, html) = email(PASSWORD).await;
    assert_eq!(
        status, 429,
        "locked: the right password is not checked: {html}"
    );
    assert!(html.contains("Too many failed sign-in attempts"), "{html}");
    assert_eq!(outbox_to(&d, "ivan.new@example.by"), 0, "nothing sent");
    let mut told = 0;
    for _ in 0..100 {
        told = outbox_to(&d, PHONE);
        if told > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(told, 1, "the owner is told of the lock");

    let other = Browser::new();
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let p = authorization(&client, &[], &[]);
    let page = other.authorize(&server, &p.url).await.expect_err("login");
    let res = other.submit_password(&server, &page, USER, PASSWORD).await;
    assert_eq!(
        res.status().as_u16(),
        401,
        "the account is locked for sign-ins"
    );
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "profile_reauth" && e.reason.as_deref() == Some("account_locked")
        })
        .await,
        1
    );
}
both_backends!(
    profile_password_reentry_counts_as_a_login,
    super::profile_reentry_counts_as_a_login
);
