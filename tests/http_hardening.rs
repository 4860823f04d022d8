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
