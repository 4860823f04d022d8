//! The sinks against stand-ins for a SIEM on 127.0.0.1: a syslog listener that parses what it
//! gets strictly, and a hand-rolled HTTP endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::hmac;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

fn record(seq: i64) -> SinkRecord {
    let alert = seq % 3 == 0;
    SinkRecord {
        seq,
        at_ms: 1_700_000_000_000 + seq,
        kind: if alert { "alert" } else { "login" }.into(),
        severity: if alert {
            Severity::Alert
        } else {
            Severity::Info
        },
        event: json!({"seq": seq, "subject": format!("user-{seq}"), "note": "é \"q\" ] \\"}),
    }
}

fn records(seqs: std::ops::RangeInclusive<i64>) -> Vec<SinkRecord> {
    seqs.map(record).collect()
}

fn settings(dir: &Path) -> SinkSettings {
    let mut s = SinkSettings::new(dir, "vhod-test");
    // Quick retries, so a SIEM coming back is seen within the test's patience.
    s.retry_cap = Duration::from_millis(200);
    s
}

fn syslog_to(addr: SocketAddr) -> SyslogSettings {
    SyslogSettings {
        addr: addr.to_string(),
        tls: false,
        ca_file: None,
        server_name: None,
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An address nothing listens on (connecting is refused) until the test binds it.
async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

// ---- the syslog stand-in ----

#[derive(Debug)]
struct Msg {
    pri: u8,
    timestamp: String,
    hostname: String,
    app: String,
    msgid: String,
    sd_id: String,
    params: HashMap<String, String>,
    event: Value,
}

/// RFC 5424 as the sink writes it, refusing anything loose (an unescaped `]` in a value, a
/// missing BOM, a version other than 1).
fn parse_msg(raw: &[u8]) -> Result<Msg, String> {
    let text = std::str::from_utf8(raw).map_err(|e| e.to_string())?;
    let mut parts = text.splitn(7, ' ');
    let mut next = |what: &str| parts.next().ok_or(format!("no {what}"));
    let pri_version = next("PRI")?;
    let (pri, version) = pri_version
        .strip_prefix('<')
        .and_then(|s| s.split_once('>'))
        .ok_or("bad PRI")?;
    if version != "1" {
        return Err(format!("version {version}"));
    }
    let pri: u8 = pri.parse().map_err(|_| "PRI not a number")?;
    let timestamp = next("TIMESTAMP")?.to_string();
    let hostname = next("HOSTNAME")?.to_string();
    let app = next("APP-NAME")?.to_string();
    let procid = next("PROCID")?;
    if procid.parse::<u32>().is_err() {
        return Err(format!("PROCID {procid}"));
    }
    let msgid = next("MSGID")?.to_string();
    if msgid.len() > 32 || !msgid.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!("MSGID {msgid:?}"));
    }
    let rest = next("SD")?;
    let rest = rest.strip_prefix('[').ok_or("no SD element")?;
    let (sd_id, mut s) = rest.split_once(' ').ok_or("no SD-PARAM")?;
    let mut params = HashMap::new();
    loop {
        if let Some(after) = s.strip_prefix(']') {
            s = after;
            break;
        }
        let (name, after) = s
            .trim_start_matches(' ')
            .split_once("=\"")
            .ok_or("bad SD-PARAM")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | ']'))) => value.push(e),
                    other => return Err(format!("bad escape {other:?}")),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                ']' => return Err("unescaped ] in an SD-PARAM value".into()),
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated SD-PARAM value")?;
        params.insert(name.to_string(), value);
        s = &after[end..];
    }
    let msg = s
        .strip_prefix(' ')
        .and_then(|m| m.strip_prefix('\u{FEFF}'))
        .ok_or("MSG without a BOM")?;
    let event = serde_json::from_str(msg).map_err(|e| format!("MSG not JSON: {e}"))?;
    Ok(Msg {
        pri,
        timestamp,
        hostname,
        app,
        msgid,
        sd_id: sd_id.to_string(),
        params,
        event,
    })
}

#[derive(Clone, Default)]
struct Received {
    msgs: Arc<Mutex<Vec<Result<Msg, String>>>>,
    connections: Arc<AtomicUsize>,
    /// Set once the first connection was closed by the server on purpose.
    closed_first: Arc<AtomicBool>,
}

impl Received {
    fn len(&self) -> usize {
        self.msgs.lock().map_or(0, |m| m.len())
    }

    /// The `seq` SD-PARAM of everything received, failing on anything malformed.
    fn seqs(&self) -> Vec<i64> {
        let msgs = self.msgs.lock().expect("lock");
        msgs.iter()
            .map(|m| match m {
                Ok(m) => m.params["seq"].parse().expect("seq"),
                Err(e) => panic!("malformed syslog frame: {e}"),
            })
            .collect()
    }

    fn check_against(&self, sent: &[SinkRecord]) {
        let msgs = self.msgs.lock().expect("lock");
        assert_eq!(msgs.len(), sent.len());
        for (m, r) in msgs.iter().zip(sent) {
            let m = m.as_ref().expect("well-formed frame");
            assert_eq!(
                m.pri,
                80 + r.severity.as_code(),
                "authpriv and the severity"
            );
            assert_eq!(m.msgid, r.kind);
            assert_eq!(m.app, "vhod");
            assert_eq!(m.hostname, "vhod-test");
            assert_eq!(m.sd_id, "vhod@32473");
            assert_eq!(m.params["seq"], r.seq.to_string());
            assert_eq!(m.params["kind"], r.kind);
            assert_eq!(m.event, r.event);
            assert_eq!(
                m.timestamp,
                format!("2023-11-14T22:13:20.{:03}Z", r.at_ms % 1000)
            );
        }
    }
}

/// Reads octet-counted frames (`MSG-LEN SP SYSLOG-MSG`) until the peer goes, or `limit`.
async fn read_frames(stream: impl AsyncRead + Unpin, got: &Received, limit: Option<usize>) {
    let mut r = BufReader::new(stream);
    let mut n = 0;
    while limit.is_none_or(|l| n < l) {
        let mut len = Vec::new();
        match r.read_until(b' ', &mut len).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let parsed = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.strip_suffix(' '))
            .filter(|s| !s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok());
        let Some(len) = parsed else {
            got.msgs
                .lock()
                .expect("lock")
                .push(Err(format!("bad MSG-LEN {len:?}")));
            return;
        };
        let mut msg = vec![0; len];
        if r.read_exact(&mut msg).await.is_err() {
            return;
        }
        got.msgs.lock().expect("lock").push(parse_msg(&msg));
        n += 1;
    }
}

/// A plain syslog listener; with `close_first_after`, the first connection is closed by the
/// server after that many frames.
fn syslog_server(listener: TcpListener, close_first_after: Option<usize>) -> Received {
    let got = Received::default();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let nth = g.connections.fetch_add(1, Ordering::SeqCst);
            let g = g.clone();
            tokio::spawn(async move {
                let limit = if nth == 0 { close_first_after } else { None };
                read_frames(stream, &g, limit).await;
                if limit.is_some() {
                    g.closed_first.store(true, Ordering::SeqCst);
                }
            });
        }
    });
    got
}

// ---- syslog ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_records_arrive_in_order_on_one_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut s = settings(dir.path());
    s.syslog = Some(syslog_to(listener.local_addr().expect("addr")));
    let got = syslog_server(listener, None);
    let (sinks, worker) = Sinks::start(s).expect("start");

    let mut sent = records(1..=5);
    // A kind needing both the MSGID's sanitising and the SD-PARAM's escaping.
    let mut odd = record(6);
    odd.kind = "a \"b\" ]\\é".into();
    odd.severity = Severity::Warning;
    sent.push(odd);
    sinks.send(&sent[..2]).await;
    sinks.send(&sent[2..]).await;
    wait_until("6 syslog messages", || got.len() >= 6).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;

    let (plain, odd) = sent.split_at(5);
    {
        let msgs = got.msgs.lock().expect("lock");
        let m = msgs[5].as_ref().expect("well-formed");
        assert_eq!(m.msgid, "a_\"b\"_]\\_");
        assert_eq!(m.params["kind"], odd[0].kind);
        assert_eq!(m.pri, 84);
    }
    got.msgs.lock().expect("lock").truncate(5);
    got.check_against(plain);
    assert_eq!(got.connections.load(Ordering::SeqCst), 1);
    assert_eq!(sinks.dropped(SinkKind::Syslog), 0);
    worker.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_reconnects_after_the_server_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut s = settings(dir.path());
    s.syslog = Some(syslog_to(listener.local_addr().expect("addr")));
    let got = syslog_server(listener, Some(3));
    let (sinks, worker) = Sinks::start(s).expect("start");

    sinks.send(&records(1..=3)).await;
    wait_until("the server to close", || {
        got.closed_first.load(Ordering::SeqCst)
    })
    .await;
    for seq in 4..=8 {
        sinks.send(&[record(seq)]).await;
    }
    wait_until("8 syslog messages", || got.len() >= 8).await;
    assert_eq!(got.seqs(), (1..=8).collect::<Vec<_>>());
    assert_eq!(got.connections.load(Ordering::SeqCst), 2);
    worker.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_down_then_up_delivers_everything_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = refused_addr().await;
    let mut s = settings(dir.path());
    s.syslog = Some(syslog_to(addr));
    let (sinks, worker) = Sinks::start(s).expect("start");

    for seq in 1..=10 {
        sinks.send(&[record(seq)]).await;
    }
    assert_eq!(sinks.pending(), 10);
    // Long enough for several refused attempts and a backoff at its cap.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sinks.pending(), 10);

    let got = syslog_server(TcpListener::bind(addr).await.expect("rebind"), None);
    wait_until("10 syslog messages", || got.len() >= 10).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;
    got.check_against(&records(1..=10));
    worker.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_spool_survives_a_restart_and_a_torn_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = refused_addr().await;
    let mut s = settings(dir.path());
    s.syslog = Some(syslog_to(addr));

    let (sinks, worker) = Sinks::start(s.clone()).expect("start");
    sinks.send(&records(1..=6)).await;
    assert_eq!(sinks.pending(), 6);
    worker.finish().await;
    drop(sinks);

    // A crash in the middle of the next append: half a frame at the end of the last segment.
    let spool = dir.path().join("syslog");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&spool)
        .expect("spool dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a segment");
    let mut torn = std::fs::read(last).expect("read");
    torn.extend_from_slice(&[0, 0, 1, 0, 0xde, 0xad, b'{', b'"']);
    std::fs::write(last, torn).expect("write");

    let (sinks, worker) = Sinks::start(s).expect("restart");
    assert_eq!(sinks.pending(), 6);
    sinks.send(&records(7..=10)).await;
    assert_eq!(sinks.pending(), 10);
    let got = syslog_server(TcpListener::bind(addr).await.expect("rebind"), None);
    wait_until("10 syslog messages", || got.len() >= 10).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;
    got.check_against(&records(1..=10));
    worker.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_refuses_counts_and_delivers_what_it_took() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = refused_addr().await;
    let mut s = settings(dir.path());
    s.syslog = Some(syslog_to(addr));
    s.spool_max_bytes = 2048;
    let (sinks, worker) = Sinks::start(s).expect("start");

    for seq in 1..=40 {
        sinks.send(&[record(seq)]).await;
        let stats = &sinks.stats()[0];
        assert!(stats.spool_bytes <= 2048, "{} bytes", stats.spool_bytes);
        let on_disk = segment_bytes(&dir.path().join("syslog"));
        assert!(on_disk <= 2048, "{on_disk} bytes on disk");
    }
    let accepted = sinks.pending();
    let dropped = sinks.dropped(SinkKind::Syslog);
    assert!(
        accepted > 0 && dropped > 0,
        "{accepted} taken, {dropped} refused"
    );
    assert_eq!(accepted + dropped, 40);
    assert_eq!(sinks.dropped(SinkKind::Webhook), 0);

    let got = syslog_server(TcpListener::bind(addr).await.expect("rebind"), None);
    let accepted = accepted as usize;
    wait_until("the accepted records", || got.len() >= accepted).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;
    assert_eq!(got.seqs(), (1..=accepted as i64).collect::<Vec<_>>());
    // Drained: the overflow is over and records are taken again.
    sinks.send(&[record(100)]).await;
    wait_until("the record after the overflow", || got.len() > accepted).await;
    assert_eq!(got.seqs().last(), Some(&100));
    assert_eq!(sinks.dropped(SinkKind::Syslog), dropped);
    worker.finish().await;
}

// ---- syslog over TLS ----

/// A self-signed ECDSA P-256 server certificate for localhost and 127.0.0.1, built with what
/// the crate already has (ring signs, x509-cert encodes): (certificate DER, PKCS #8 key).
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    use der::asn1::{BitString, Ia5String, ObjectIdentifier, OctetString};
    use der::{Any, Encode};
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use x509_cert::certificate::{Certificate, TbsCertificate, Version};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::time::Validity;

    const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key");
    let alg = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let san = SubjectAltName(vec![
        GeneralName::DnsName(Ia5String::new("localhost").expect("ia5")),
        GeneralName::IpAddress(OctetString::new(vec![127, 0, 0, 1]).expect("ip")),
    ]);
    let name = Name::from_str("CN=vhod test SIEM").expect("name");
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1]).expect("serial"),
        signature: alg.clone(),
        issuer: name.clone(),
        validity: Validity::from_now(Duration::from_secs(3600)).expect("validity"),
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: EC_PUBLIC_KEY,
                parameters: Some(Any::from(PRIME256V1)),
            },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref()).expect("spk"),
        },
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![Extension {
            extn_id: SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(san.to_der().expect("san")).expect("san"),
        }]),
    };
    let signature = key.sign(&rng, &tbs.to_der().expect("tbs")).expect("sign");
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(signature.as_ref()).expect("signature"),
    };
    (cert.to_der().expect("cert"), pkcs8.as_ref().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_with_a_pinned_ca_file() {
    use der::{Decode, EncodePem};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed();
    let pem = x509_cert::Certificate::from_der(&cert)
        .expect("parse")
        .to_pem(der::pem::LineEnding::LF)
        .expect("pem");
    let ca_file = dir.path().join("siem-ca.pem");
    std::fs::write(&ca_file, pem).expect("write ca");

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got = Received::default();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            g.connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, g) = (acceptor.clone(), g.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => read_frames(tls, &g, None).await,
                    Err(e) => g
                        .msgs
                        .lock()
                        .expect("lock")
                        .push(Err(format!("TLS handshake: {e}"))),
                }
            });
        }
    });

    let mut s = settings(dir.path().join("spool").as_path());
    s.syslog = Some(SyslogSettings {
        // The name to check defaults to the host of the address: here an IP SAN.
        addr: addr.to_string(),
        tls: true,
        ca_file: Some(ca_file),
        server_name: None,
    });
    let (sinks, worker) = Sinks::start(s).expect("start");
    sinks.send(&records(1..=4)).await;
    wait_until("4 syslog messages over TLS", || got.len() >= 4).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;
    got.check_against(&records(1..=4));
    worker.finish().await;
}

// ---- webhook ----

struct Hit {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Answers 503 to the first `fail_first` requests and 200 after, keeping connections open as
/// reqwest expects.
fn webhook_server(listener: TcpListener, fail_first: usize) -> Arc<Mutex<Vec<Hit>>> {
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut r = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if !line.starts_with("POST /hook?tenant=1 HTTP/1.1") {
                        return;
                    }
                    let mut headers = HashMap::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let status = {
                        let mut hits = h.lock().expect("lock");
                        let status = if hits.len() < fail_first { 503 } else { 200 };
                        hits.push(Hit {
                            status,
                            headers,
                            body,
                        });
                        status
                    };
                    let reason = if status == 200 {
                        "OK"
                    } else {
                        "Service Unavailable"
                    };
                    let answer = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n");
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_503s_in_order_with_valid_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = webhook_server(listener, 3);
    let secret = "whsec-test-secret";
    let mut s = settings(dir.path());
    s.webhook = Some(WebhookSettings {
        url: url::Url::parse(&format!("http://{addr}/hook?tenant=1")).expect("url"),
        secret: secret.into(),
    });
    assert!(
        !format!("{s:?}").contains(secret),
        "the secret shows in Debug"
    );
    let (sinks, worker) = Sinks::start(s).expect("start");

    let sent = records(1..=5);
    sinks.send(&sent[..1]).await;
    sinks.send(&sent[1..]).await;
    let delivered = || {
        hits.lock()
            .map_or(0, |h| h.iter().filter(|h| h.status == 200).count())
    };
    wait_until("5 delivered webhooks", || delivered() >= 5).await;
    wait_until("the spool to empty", || sinks.pending() == 0).await;

    // Checked in a block of its own: the guard must be gone before the await below.
    {
        let hits = hits.lock().expect("lock");
        let seqs: Vec<(u16, &str)> = hits
            .iter()
            .map(|h| (h.status, h.headers["vhod-seq"].as_str()))
            .collect();
        // The refused record is offered again and again, and nothing behind it jumps the queue.
        assert_eq!(
            seqs,
            vec![
                (503, "1"),
                (503, "1"),
                (503, "1"),
                (200, "1"),
                (200, "2"),
                (200, "3"),
                (200, "4"),
                (200, "5")
            ]
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let taken: Vec<&Hit> = hits.iter().filter(|h| h.status == 200).collect();
        for (hit, sent) in taken.iter().zip(&sent) {
            assert_eq!(hit.headers["content-type"], "application/json");
            let got: SinkRecord = serde_json::from_slice(&hit.body).expect("a record");
            assert_eq!(&got, sent);
            let sig = &hit.headers["vhod-signature"];
            let (t, v1) = sig
                .strip_prefix("t=")
                .and_then(|s| s.split_once(",v1="))
                .expect("t=…,v1=…");
            let t: u64 = t.parse().expect("unix seconds");
            let mut signed = format!("{t}.").into_bytes();
            signed.extend_from_slice(&hit.body);
            let tag = hex::decode(v1).expect("hex");
            hmac::verify(&key, &signed, &tag).expect("the signature verifies");
            let wrong = hmac::Key::new(hmac::HMAC_SHA256, b"another secret");
            assert!(hmac::verify(&wrong, &signed, &tag).is_err());
        }
    }
    worker.finish().await;
}

#[tokio::test]
async fn no_sink_configured_sends_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let (sinks, worker) = Sinks::start(SinkSettings::new(&spool, "h")).expect("start");
    sinks.send(&records(1..=3)).await;
    assert_eq!(sinks.pending(), 0);
    assert!(sinks.stats().is_empty());
    assert!(!spool.exists());
    worker.finish().await;
}

#[test]
fn severities() {
    assert_eq!(
        serde_json::to_value(Severity::Warning).expect("json"),
        json!("warning")
    );
    let codes: Vec<u8> = [
        Severity::Alert,
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Notice,
        Severity::Info,
    ]
    .iter()
    .map(|s| s.as_code())
    .collect();
    assert_eq!(codes, vec![1, 2, 3, 4, 5, 6]);
}
