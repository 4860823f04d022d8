//! The security officers' audit, end to end, on both backends: an officer (role auditor) signs
//! in with a certificate and finds every sign-in of a person by their personal number, reads
//! the person's timeline, exports a month and verifies the export offline with `vhod audit
//! verify-export` and vhod's published keys; a password-spraying run from one address reaches
//! a local syslog listener as an alert; `vhod audit verify` holds on the untouched trail and
//! names the row edited, deleted or inserted behind vhod's back. Two servers writing at once
//! keep one chain.

mod common;

use std::sync::{Arc, Mutex};

use common::certs::*;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const CONSOLE_SECRET: &str = "console-secret-0123456789abcdefghij";
const OFFICER_PN: &str = "3010185A001PB3";

fn ok(d: &Deployment, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "vhod {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(d: &Deployment, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(!out.status.success(), "vhod {} succeeded", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A syslog receiver (RFC 5424 over TCP, octet counting) on 127.0.0.1: the messages it got.
struct Syslog {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl Syslog {
    async fn start() -> Syslog {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("addr").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let got = messages.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let got = got.clone();
                tokio::spawn(async move {
                    let mut r = BufReader::new(conn);
                    loop {
                        let mut len = Vec::new();
                        if r.read_until(b' ', &mut len).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else {
                            return;
                        };
                        let mut msg = vec![0; n.min(1 << 20)];
                        if r.read_exact(&mut msg).await.is_err() {
                            return;
                        }
                        got.lock()
                            .expect("lock")
                            .push(String::from_utf8_lossy(&msg).into_owned());
                    }
                });
            }
        });
        Syslog { port, messages }
    }

    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(m) = self
                .messages
                .lock()
                .expect("lock")
                .iter()
                .find(|m| m.contains(needle))
            {
                return m.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "no syslog message with {needle}: {:?}",
            self.messages.lock().expect("lock")
        );
    }
}

async fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let res = http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers");
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

fn month_of_now() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let start = now
        .replace_day(1)
        .expect("day 1")
        .replace_time(time::Time::MIDNIGHT);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("a time")
    };
    (fmt(start), fmt(start + time::Duration::days(32)))
}

async fn officers_audit_sign_ins(d: Deployment) {
    ok(
        &d,
        &["org", "add", "--id", "sec", "--name", "Служба безопасности"],
    );
    ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "officer",
            "--password",
            PASSWORD,
            "--role",
            "auditor",
            "--org",
            "sec",
            "--personal-number",
            OFFICER_PN,
        ],
    );
    ok(
        &d,
        &[
            "client",
            "add",
            "--client-id",
            "console",
            "--secret",
            CONSOLE_SECRET,
            "--redirect-uri",
            RP_REDIRECT,
            "--scope",
            "openid vhod:admin",
        ],
    );
    let syslog = Syslog::start().await;
    let checkpoints = d.data_dir().join("checkpoints");
    std::fs::create_dir_all(&checkpoints).expect("a checkpoint directory");
    let syslog_addr = format!("127.0.0.1:{}", syslog.port);
    let server = d
        .start_with(&[
            ("VHOD_AUDIT_SYSLOG", syslog_addr.as_str()),
            ("VHOD_AUDIT_ALERT_SPRAYING_ACCOUNTS", "5"),
            ("VHOD_AUDIT_CHECKPOINT_EVENTS", "5"),
            (
                "VHOD_AUDIT_CHECKPOINT_DIR",
                checkpoints.to_str().expect("a path"),
            ),
        ])
        .await;
    let rp_client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // A person signs in twice with their certificate (the first makes their account).
    let (person, person_pn) = Holder::own(NAMESAKE);
    for _ in 0..2 {
        let browser = Browser::new();
        let p = authorization(&rp_client, &["profile"], &[]);
        let page = browser.authorize(&server, &p.url).await.expect_err("login");
        let back = cert_sign_in(&server, &browser, &page, &person).await;
        redeem_code(&server, &back, &p).await;
    }

    // Password spraying from one address: six logins, one wrong password each.
    let sprayer = Browser::new();
    for i in 0..6 {
        let p = authorization(&rp_client, &["profile"], &[]);
        let page = sprayer.authorize(&server, &p.url).await.expect_err("login");
        let res = sprayer
            .submit_password(&server, &page, &format!("victim{i}"), "Winter2026!")
            .await;
        assert!(
            res.status().is_client_error()
                || res.status().is_redirection()
                || res.status().is_success()
        );
    }
    let alert = syslog.wait_for("password_spraying").await;
    // authpriv (10) × 8 + alert (1).
    assert!(alert.starts_with("<81>1 "), "{alert}");
    assert!(
        alert.contains("127.0.0.1"),
        "the address sprayed from: {alert}"
    );

    // The officer signs in with their ID card (acr high) to the console.
    let console = rp(&server, "console", Some(CONSOLE_SECRET), RP_REDIRECT).await;
    let officer = Browser::new();
    let p = authorization(&console, &["vhod:admin"], &[]);
    let page = officer.authorize(&server, &p.url).await.expect_err("login");
    let back = cert_sign_in(&server, &officer, &page, &Holder::vector("citizen")).await;
    let token = access_token(&server, &console, &back, &p).await;
    let claims = payload(&token);
    assert_eq!(claims["acr"], "high", "{claims}");

    // Every sign-in of the person, by personal number.
    let (status, found) = get(
        &server,
        &token,
        &format!("/admin/v1/audit/events?personal_number={person_pn}&kind=login"),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{found}");
    let sub = items[0]["subject"].as_str().expect("a subject").to_string();
    for e in items {
        assert_eq!(e["subject"], sub.as_str());
        assert_eq!(
            (e["method"].as_str(), e["outcome"].as_str()),
            (Some("certificate"), Some("success"))
        );
        assert_eq!(e["acr"], "high");
        assert_eq!(e["client_id"], "rp");
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
    }
    assert!(
        items[0]["seq"].as_i64() > items[1]["seq"].as_i64(),
        "newest first"
    );
    // Paged under a cursor, in the same order.
    let (_, first) = get(
        &server,
        &token,
        &format!("/admin/v1/audit/events?personal_number={person_pn}&kind=login&limit=1"),
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, second) = get(
        &server,
        &token,
        &format!(
            "/admin/v1/audit/events?personal_number={person_pn}&kind=login&limit=1&cursor={cursor}"
        ),
    )
    .await;
    assert_eq!(second["items"][0]["seq"], items[1]["seq"]);
    assert!(second.get("next_cursor").is_none(), "{second}");
    // By address range, by outcome and reason: the spraying's failures.
    let (_, sprayed) = get(
        &server,
        &token,
        "/admin/v1/audit/events?ip=127.0.0.0/8&kind=login&outcome=failure&limit=200",
    )
    .await;
    let (_, one) = get(
        &server,
        &token,
        "/admin/v1/audit/events?ip=127.0.0.1&kind=login&outcome=failure&limit=200",
    )
    .await;
    assert_eq!(one["items"], sprayed["items"], "one address is its own /32");
    assert!(
        sprayed["items"].as_array().expect("items").len() >= 5,
        "{sprayed}"
    );
    let (_, alerts) = get(
        &server,
        &token,
        "/admin/v1/audit/events?kind=alert&reason=password_spraying",
    )
    .await;
    assert_eq!(
        alerts["items"].as_array().map(Vec::len),
        Some(1),
        "{alerts}"
    );
    // Hostile filters are refused, not run.
    for bad in [
        "ip=999.1.1.1/8",
        "from=yesterday",
        "kind=nonsense",
        "outcome=maybe",
        "cursor=AAAA",
        "limit=100000",
    ] {
        let (status, body) = get(&server, &token, &format!("/admin/v1/audit/events?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // The person's timeline: each sign-in with the session it opened and the grant under it.
    let (status, timeline) = get(
        &server,
        &token,
        &format!("/admin/v1/audit/people/{sub}/timeline"),
    )
    .await;
    assert_eq!(status, 200, "{timeline}");
    let sign_ins = timeline["sign_ins"].as_array().expect("sign-ins");
    assert_eq!(sign_ins.len(), 2, "{timeline}");
    let session = &sign_ins[0]["session"];
    assert!(session["sid"].is_string(), "{timeline}");
    assert_eq!(session["grants"][0]["client_id"], "rp", "{timeline}");

    // Export the month as JSON Lines and verify it offline with the published keys.
    let (from, to) = month_of_now();
    let export = http()
        .get(server.url("/admin/v1/audit/export"))
        .query(&[
            ("from", from.as_str()),
            ("to", to.as_str()),
            ("format", "jsonl"),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .expect("the export");
    assert_eq!(export.status().as_u16(), 200);
    assert!(export.headers().get("vhod-audit-checkpoint").is_some());
    let text = export.text().await.expect("the export's body");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{text}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("\"type\":\"checkpoint\"")),
        "{text}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("month.jsonl");
    std::fs::write(&file, &text).expect("the export on disk");
    let jwks = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .expect("jwks")
        .text()
        .await
        .expect("jwks");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks).expect("jwks on disk");
    let file_s = file.to_str().expect("a path");
    let jwks_s = jwks_file.to_str().expect("a path");
    let verified = ok(&d, &["audit", "verify-export", file_s, "--jwks", jwks_s]);
    assert!(verified.contains("the export holds"), "{verified}");
    // One character changed in one event, and it no longer verifies.
    let edited = text.replacen("\"outcome\":\"failure\"", "\"outcome\":\"success\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, edited).expect("the edited export");
    let refused = fails(&d, &["audit", "verify-export", file_s, "--jwks", jwks_s]);
    assert!(refused.contains("does not match its hash"), "{refused}");
    // CSV of any filter, streamed.
    let csv = http()
        .get(server.url("/admin/v1/audit/export"))
        .query(&[("personal_number", person_pn.as_str()), ("format", "csv")])
        .bearer_auth(&token)
        .send()
        .await
        .expect("the CSV export");
    assert_eq!(csv.status().as_u16(), 200);
    let csv = csv.text().await.expect("CSV");
    assert!(csv.starts_with("seq,at_ms,kind,outcome"), "{csv}");
    assert!(csv.lines().count() > 2, "{csv}");

    // Reading the audit is audited: who searched, and for whom.
    let reads = d
        .count_events(|e| {
            e.kind == "audit_read"
                && e.details
                    .as_deref()
                    .is_some_and(|x| x.contains(&sub) && x.contains("personal_number"))
        })
        .await;
    assert!(reads >= 2, "the officer's searches are in the trail");
    assert!(
        !d.events()
            .await
            .iter()
            .any(|e| e.details.as_deref().is_some_and(|x| x.contains(&person_pn))),
        "the personal number searched for is not written down"
    );

    // Somebody who is not an officer reads nothing, even with a high-assurance sign-in.
    let citizen = Browser::new();
    let p = authorization(&console, &["vhod:admin"], &[]);
    let page = citizen.authorize(&server, &p.url).await.expect_err("login");
    let back = cert_sign_in(&server, &citizen, &page, &person).await;
    let other = access_token(&server, &console, &back, &p).await;
    let (status, body) = get(&server, &other, "/admin/v1/audit/events").await;
    assert_eq!(status, 403, "{body}");
    // (An officer's password sign-in never gets that far: officers sign in at acr high, the
    // sign-in policies step them up; and policies/audit.cedar refuses a read below it.)

    // The chain, its checkpoints and their external copies hold.
    let mut server = server;
    server.terminate();
    assert!(
        std::fs::read_dir(&checkpoints).expect("the copies").count() > 1,
        "checkpoints are copied out"
    );
    let held = ok(&d, &["audit", "verify"]);
    assert!(held.contains("the audit trail holds"), "{held}");

    // Behind vhod's back: an edit, a deletion, an insertion — each found and placed.
    let last: i64 = d.scalar("SELECT MAX(seq) FROM audit_events").await;
    d.tamper("UPDATE audit_events SET ip = '10.0.0.1' WHERE seq = 3")
        .await;
    let out = fails(&d, &["audit", "verify"]);
    assert!(
        out.contains("first problem: altered: the row at seq 3"),
        "{out}"
    );
    d.tamper("DELETE FROM audit_events WHERE seq = 7").await;
    let out = fails(&d, &["audit", "verify"]);
    assert!(
        out.contains("deleted: the row at seq 7 is missing"),
        "{out}"
    );
    d.tamper("INSERT INTO audit_events (at_ms, kind, outcome, subject) VALUES (1, 'login', 'success', 'ghost')")
        .await;
    let out = fails(&d, &["audit", "verify"]);
    assert!(out.contains("has no place in the chain"), "{out}");
    // Deleting the newest rows and moving the head back is caught by the copied checkpoints.
    d.tamper(&format!(
        "DELETE FROM audit_events WHERE seq > {}",
        last - 3
    ))
    .await;
    let out = fails(&d, &["audit", "verify"]);
    assert!(out.contains("deleted"), "{out}");
}

mod officers_audit_sign_ins {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(d) = super::trusting(super::Backend::Sqlite).await {
            super::officers_audit_sign_ins(d).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        if let Some(d) = super::trusting(super::Backend::Shared).await {
            super::officers_audit_sign_ins(d).await;
        }
    }
}

/// Two servers on one database take sign-in attempts at once: one chain, no fork.
async fn two_instances_append_to_one_chain(d: Deployment) {
    let a = d.start().await;
    let b = d.start().await;
    let attempt = |server: &Server, n: usize| {
        let server_url = server.url("");
        async move {
            let client = http();
            for i in 0..n {
                // Token endpoint failures are audited without a browser (client_auth).
                let _ = client
                    .post(format!("{server_url}/token"))
                    .basic_auth("rp", Some(format!("wrong-{i}")))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
            }
        }
    };
    tokio::join!(attempt(&a, 60), attempt(&b, 60));
    let mut a = a;
    let mut b = b;
    a.terminate();
    b.terminate();
    let failures = d.count_events(|e| e.kind == "client_auth").await;
    assert!(failures >= 120, "{failures}");
    let out = ok(&d, &["audit", "verify"]);
    assert!(out.contains("the audit trail holds"), "{out}");
}

mod two_instances_append_to_one_chain {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(d) = super::Deployment::new(super::Backend::Sqlite).await {
            super::two_instances_append_to_one_chain(d).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        if let Some(d) = super::Deployment::new(super::Backend::Shared).await {
            super::two_instances_append_to_one_chain(d).await;
        }
    }
}
