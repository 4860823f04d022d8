//! Messaging against real servers: a local HTTP server speaking Twilio's API, a real SMTP server
//! (Python's aiosmtpd, delivering into a maildir), and the dev outbox file.
//!
//! The SMTP scenario needs `python3 -m pip install aiosmtpd`; without it the scenario is skipped
//! with a note, unless VHOD_TEST_REQUIRE_SERVERS=1 (CI), where it fails.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use base64::Engine;
use vhod::config::{EmailSettings, Secret, Settings, SmsSettings, SmtpTls};
use vhod::notify::{Channel, Message, Notifier, NotifyError};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-do-not-leak";
const SMS_BODY: &str = "Код для ўваходу: 482916. Нікому яго не паведамляйце.";

fn required() -> bool {
    std::env::var("VHOD_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// The server's HTTP client, as `server::build` makes it.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Twilio

/// One request as the stub Twilio saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    form: Vec<(String, String)>,
}

/// A local HTTP server answering every request with `status` and `body`, recording what it got.
async fn twilio_stub(status: StatusCode, body: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body_in: Bytes| {
            let record = record.clone();
            async move {
                let h = |name: header::HeaderName| {
                    headers.get(name).map(|v| v.to_str().unwrap().to_string())
                };
                record.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    authorization: h(header::AUTHORIZATION),
                    content_type: h(header::CONTENT_TYPE),
                    form: form_urlencoded::parse(&body_in).into_owned().collect(),
                });
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

fn twilio_notifier(
    api_base: &str,
    from: Option<&str>,
    service: Option<&str>,
    data_dir: &Path,
) -> Notifier {
    Notifier::from_parts(
        &SmsSettings::Twilio {
            account_sid: SID.into(),
            auth_token: Secret(TOKEN.into()),
            from: from.map(Into::into),
            messaging_service_sid: service.map(Into::into),
            api_base: api_base.into(),
        },
        &EmailSettings::Outbox,
        data_dir,
        http(),
    )
    .unwrap()
}

const CREATED: &str = r#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+375291234567","from":"+375290000000","body":"…","error_code":null,"error_message":null}"#;

fn assert_secret_free(e: &NotifyError) {
    let text = e.to_string();
    assert!(!text.contains(TOKEN), "the auth token leaked: {text}");
    assert!(!text.contains("482916"), "the code leaked: {text}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    assert!(!text.contains(&basic), "the credentials leaked: {text}");
}

#[tokio::test]
async fn twilio_gets_the_documented_request() {
    let dir = tempfile::tempdir().unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );

    // A sender number.
    let (base, seen) = twilio_stub(StatusCode::CREATED, CREATED).await;
    let n = twilio_notifier(&base, Some("+375290000000"), None, dir.path());
    n.send(&Message::sms("+375291234567", SMS_BODY))
        .await
        .expect("201 is success");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
    let r = &seen[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
    assert_eq!(r.authorization.as_deref(), Some(basic.as_str()));
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut form = r.form.clone();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("Body".to_string(), SMS_BODY.to_string()),
            ("From".to_string(), "+375290000000".to_string()),
            ("To".to_string(), "+375291234567".to_string()),
        ]
    );

    // A messaging service, preferred over the number when both are configured.
    let (base, seen) = twilio_stub(StatusCode::CREATED, CREATED).await;
    let n = twilio_notifier(
        &format!("{base}/"),
        Some("+375290000000"),
        Some("MG0123456789abcdef0123456789abcdef"),
        dir.path(),
    );
    n.send(&Message::sms("+375291234567", SMS_BODY))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(seen[0].authorization.as_deref(), Some(basic.as_str()));
    let mut form = seen[0].form.clone();
    form.sort();
    assert_eq!(
        form,
        vec![
            ("Body".to_string(), SMS_BODY.to_string()),
            (
                "MessagingServiceSid".to_string(),
                "MG0123456789abcdef0123456789abcdef".to_string()
            ),
            ("To".to_string(), "+375291234567".to_string()),
        ]
    );

    // Any 2xx is success.
    let (base, _) = twilio_stub(StatusCode::OK, CREATED).await;
    twilio_notifier(&base, Some("+375290000000"), None, dir.path())
        .send(&Message::sms("+375291234567", SMS_BODY))
        .await
        .unwrap();

    // Twilio never wrote to the outbox.
    assert!(vhod::notify::read_outbox(dir.path()).unwrap().is_empty());
}

#[tokio::test]
async fn twilio_refusals_and_outages_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let msg = Message::sms("+37529", SMS_BODY);

    let (base, seen) = twilio_stub(
        StatusCode::BAD_REQUEST,
        r#"{"code":21211,"message":"Invalid 'To' Phone Number","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
    )
    .await;
    let err = twilio_notifier(&base, Some("+375290000000"), None, dir.path())
        .send(&msg)
        .await
        .unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 1);
    match &err {
        NotifyError::Rejected(text) => {
            assert!(text.contains("Invalid 'To' Phone Number"), "{text}");
            assert!(text.contains("21211"), "{text}");
        }
        other => panic!("a 400 is a refusal, not {other:?}"),
    }
    assert_secret_free(&err);

    let (base, _) = twilio_stub(
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"code":20503,"message":"Service Unavailable"}"#,
    )
    .await;
    let err = twilio_notifier(&base, Some("+375290000000"), None, dir.path())
        .send(&msg)
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_secret_free(&err);

    // Nobody listens: connection refused.
    let base = format!("http://127.0.0.1:{}", free_port());
    let err = twilio_notifier(&base, Some("+375290000000"), None, dir.path())
        .send(&msg)
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
    assert_secret_free(&err);
}

// ---------------------------------------------------------------------------------------------
// SMTP

/// aiosmtpd as a child process, killed when dropped (also when the test panics).
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts aiosmtpd delivering into `<dir>/maildir` and waits (≤ 10 s) until it accepts connections.
fn start_aiosmtpd(dir: &Path) -> SmtpServer {
    let port = free_port();
    let maildir = dir.join("maildir");
    let log = dir.join("aiosmtpd.log");
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("starting python3 -m aiosmtpd");
    let mut server = SmtpServer {
        child,
        port,
        maildir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "aiosmtpd exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return server;
        }
        if Instant::now() > deadline {
            server.child.kill().ok();
            panic!(
                "aiosmtpd did not accept connections on port {port} within 10 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl SmtpServer {
    fn delivered(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.maildir.join("new")) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A delivered message as Python's email package (an independent MIME parser) reads it.
fn parse_with_python(path: &Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import email, email.policy, json, sys
with open(sys.argv[1], "rb") as f:
    raw = f.read()
m = email.message_from_bytes(raw, policy=email.policy.default)
head = raw.split(b"\n\n", 1)[0]
print(json.dumps({
    "from": str(m["From"]),
    "to": str(m["To"]),
    "subject": str(m["Subject"]),
    "body": m.get_content(),
    "mime_version": str(m["MIME-Version"]),
    "content_type": m.get_content_type(),
    "charset": m.get_content_charset(),
    "message_id": str(m["Message-ID"]),
    "mail_from": str(m["X-MailFrom"]),
    "rcpt_to": str(m["X-RcptTo"]),
    "headers_ascii": all(b < 128 for b in head),
}))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn smtp_notifier(
    port: u16,
    tls: SmtpTls,
    credentials: Option<(&str, &str)>,
    dir: &Path,
) -> Notifier {
    Notifier::from_parts(
        &SmsSettings::Outbox,
        &EmailSettings::Smtp {
            host: "127.0.0.1".into(),
            port,
            username: credentials.map(|c| c.0.to_string()),
            password: credentials.map(|c| Secret(c.1.to_string())),
            from: "Уваход <noreply@vhod.example.by>".into(),
            tls,
        },
        dir,
        http(),
    )
    .unwrap()
}

#[tokio::test]
async fn smtp_delivers_utf8_mail_and_never_downgrades() {
    if !aiosmtpd_available() {
        assert!(
            !required(),
            "VHOD_TEST_REQUIRE_SERVERS=1 but python3 cannot import aiosmtpd \
             (python3 -m pip install aiosmtpd)"
        );
        eprintln!(
            "note: python3 cannot import aiosmtpd: skipping the SMTP scenario \
             (python3 -m pip install aiosmtpd)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start_aiosmtpd(dir.path());

    let subject = "Код для ўваходу ў сістэму зваротаў";
    let body =
        "Добры дзень!\nВаш код: 482916.\nКод дзейнічае 10 хвілін — нікому яго не паведамляйце.";
    let n = smtp_notifier(server.port, SmtpTls::None, None, dir.path());
    assert_eq!(n.provider(Channel::Email), "smtp");
    n.send(&Message::email("citizen@example.by", subject, body))
        .await
        .expect("sent to aiosmtpd");

    let delivered = server.delivered();
    assert_eq!(delivered.len(), 1, "one message in the maildir");
    let m = parse_with_python(&delivered[0]);
    assert_eq!(m["to"], "citizen@example.by");
    assert_eq!(m["from"], "Уваход <noreply@vhod.example.by>");
    assert_eq!(m["subject"], subject);
    assert_eq!(m["mime_version"], "1.0");
    assert_eq!(m["content_type"], "text/plain");
    assert_eq!(m["charset"], "utf-8");
    let got = m["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(got.trim_end(), body);
    assert_eq!(m["mail_from"], "noreply@vhod.example.by");
    assert_eq!(m["rcpt_to"], "citizen@example.by");
    assert!(
        m["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@vhod.example.by>"),
        "{m}"
    );
    assert_eq!(m["headers_ascii"], true, "headers are MIME-encoded: {m}");

    // StartTls against a server that offers no STARTTLS: refused before anything is sent.
    let n = smtp_notifier(server.port, SmtpTls::StartTls, None, dir.path());
    let err = n
        .send(&Message::email("citizen@example.by", subject, body))
        .await
        .expect_err("STARTTLS is required");
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(!err.to_string().contains("482916"), "{err}");

    // Credentials the server cannot take: the error names neither the password nor the code.
    let n = smtp_notifier(
        server.port,
        SmtpTls::None,
        Some(("vhod", "smtp-password-do-not-leak")),
        dir.path(),
    );
    let err = n
        .send(&Message::email("citizen@example.by", subject, body))
        .await
        .expect_err("aiosmtpd offers no AUTH");
    let text = err.to_string();
    assert!(!text.contains("smtp-password-do-not-leak"), "{text}");
    assert!(!text.contains("482916"), "{text}");

    // A recipient that is no address is refused without a connection.
    let n = smtp_notifier(server.port, SmtpTls::None, None, dir.path());
    let err = n
        .send(&Message::email("not an address", subject, body))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Rejected(_)), "{err:?}");

    assert_eq!(
        server.delivered().len(),
        1,
        "nothing else reached the server"
    );
}

// ---------------------------------------------------------------------------------------------
// Outbox

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_keeps_concurrent_messages_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let n =
        Notifier::from_parts(&SmsSettings::Outbox, &EmailSettings::Outbox, &data, http()).unwrap();
    assert_eq!(n.outbox(), Some(data.join("outbox.jsonl")));

    let sms = Message::sms("+375291234567", "Код: 111111");
    let email = Message::email(
        "a@example.by",
        "Тэма ліста",
        "Радок 1\nРадок 2 «цытата» \"x\"",
    );
    let (a, b) = tokio::join!(n.send(&sms), n.send(&email));
    a.unwrap();
    b.unwrap();

    let text = std::fs::read_to_string(data.join("outbox.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let mut seen = Vec::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("a complete JSON line");
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["body", "channel", "subject", "time", "to"]);
        let time = obj["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        seen.push((
            obj["channel"].as_str().unwrap().to_string(),
            obj["to"].as_str().unwrap().to_string(),
            obj["subject"].as_str().unwrap().to_string(),
            obj["body"].as_str().unwrap().to_string(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "email".to_string(),
                email.to.clone(),
                email.subject.clone(),
                email.body.clone()
            ),
            (
                "sms".to_string(),
                sms.to.clone(),
                String::new(),
                sms.body.clone()
            ),
        ]
    );

    // Many writers at once, from several notifiers on one file: still one whole line each.
    let other =
        Notifier::from_parts(&SmsSettings::Outbox, &EmailSettings::Outbox, &data, http()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let n = if i % 2 == 0 { n.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let body = format!("Код {i:06} {}", "ж".repeat(2000));
            n.send(&Message::sms(format!("+3752900{i:05}"), body)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let entries = vhod::notify::read_outbox(&data).expect("every line parses");
    assert_eq!(entries.len(), 66);
    for e in &entries[2..] {
        assert_eq!(e.channel, Channel::Sms);
        assert!(e.body.ends_with(&"ж".repeat(2000)));
    }
}

#[test]
fn the_outbox_outside_development_is_warned_about() {
    use std::io::Write;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::load(None).unwrap();
    settings.data_dir = dir.path().to_path_buf();
    settings.sms = SmsSettings::Outbox;
    settings.email = EmailSettings::Outbox;

    let logs = |settings: &Settings| {
        let buf = Captured::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            Notifier::new(settings, http()).unwrap();
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    };

    settings.dev = true;
    assert!(!logs(&settings).contains("WARN"));
    settings.dev = false;
    let text = logs(&settings);
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("SMS go to the dev outbox"), "{text}");
    assert!(text.contains("email goes to the dev outbox"), "{text}");
}
