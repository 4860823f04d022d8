//! RFC 5424 messages over TCP (optionally TLS, RFC 5425) with octet-counting framing
//! (RFC 6587 §3.4.1).

use std::fs;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::{DeliveryError, SinkRecord, SyslogSettings};

/// authpriv: security and authorisation messages (RFC 5424 §6.2.1).
const FACILITY: u8 = 10;
/// Under the documentation enterprise number (RFC 5612), as the brief for the SIEM fixes it.
const SD_ID: &str = "vhod@32473";
const APP_NAME: &str = "vhod";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

pub(super) struct SyslogClient {
    addr: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    hostname: String,
    procid: String,
    conn: Option<Box<dyn Stream>>,
}

impl SyslogClient {
    /// Reads the TLS roots now, so a wrong CA file fails the start rather than every delivery.
    pub(super) fn new(settings: &SyslogSettings, hostname: &str) -> anyhow::Result<SyslogClient> {
        let tls = if settings.tls {
            let name = match &settings.server_name {
                Some(n) => n.clone(),
                None => host_of(&settings.addr)
                    .with_context(|| format!("syslog address {:?} has no host", settings.addr))?,
            };
            let server_name = ServerName::try_from(name.clone())
                .with_context(|| format!("syslog TLS server name {name:?}"))?;
            let roots = match &settings.ca_file {
                Some(path) => {
                    let pem = fs::read(path)
                        .with_context(|| format!("reading syslog CA file {}", path.display()))?;
                    let mut roots = RootCertStore::empty();
                    for cert in CertificateDer::pem_slice_iter(&pem) {
                        let cert = cert.with_context(|| {
                            format!("parsing syslog CA file {}", path.display())
                        })?;
                        roots
                            .add(cert)
                            .with_context(|| format!("syslog CA file {}", path.display()))?;
                    }
                    roots
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    for e in &found.errors {
                        tracing::warn!(error = %e, "reading the system's trusted certificates");
                    }
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(found.certs);
                    roots
                }
            };
            anyhow::ensure!(!roots.is_empty(), "no trusted certificates for syslog TLS");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .context("syslog TLS protocol versions")?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some((TlsConnector::from(Arc::new(config)), server_name))
        } else {
            None
        };
        Ok(SyslogClient {
            addr: settings.addr.clone(),
            tls,
            hostname: header_field(hostname, 255),
            procid: std::process::id().to_string(),
            conn: None,
        })
    }

    /// Writes the batch on the open connection (opening one if needed). TCP syslog has no
    /// acknowledgement, so "delivered" means flushed to the socket; a connection the server
    /// has closed is noticed before writing, so records are not written into it.
    pub(super) async fn deliver(&mut self, records: &[&SinkRecord]) -> Result<(), DeliveryError> {
        if self.conn.as_mut().is_some_and(|c| peer_closed(c.as_mut())) {
            self.conn = None;
        }
        let mut buf = Vec::new();
        for r in records {
            let msg = format_message(r, &self.hostname, &self.procid);
            buf.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            buf.extend_from_slice(&msg);
        }
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let written = tokio::time::timeout(IO_TIMEOUT, async {
            conn.write_all(&buf).await?;
            conn.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.conn = Some(conn);
                Ok(())
            }
            Ok(Err(source)) => Err(DeliveryError::Io {
                what: "writing to syslog",
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(DeliveryError::Timeout {
                what: "writing to syslog",
                addr: self.addr.clone(),
            }),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, DeliveryError> {
        let tcp = match tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(DeliveryError::Io {
                    what: "connecting to syslog",
                    addr: self.addr.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(DeliveryError::Timeout {
                    what: "connecting to syslog",
                    addr: self.addr.clone(),
                });
            }
        };
        // Frames are written whole; waiting to coalesce them would only delay the SIEM.
        tcp.set_nodelay(true).ok();
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        match tokio::time::timeout(IO_TIMEOUT, connector.connect(name.clone(), tcp)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(source)) => Err(DeliveryError::Io {
                what: "TLS handshake with syslog",
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(DeliveryError::Timeout {
                what: "TLS handshake with syslog",
                addr: self.addr.clone(),
            }),
        }
    }
}

/// Whether the server has closed (or broken) the connection. Syslog servers never send, so
/// anything readable is an end of stream, an error, or noise to discard.
fn peer_closed(conn: &mut dyn Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut scratch = [0u8; 512];
    // Bounded: a server that does talk cannot keep us here.
    for _ in 0..16 {
        let mut buf = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *conn).poll_read(&mut cx, &mut buf) {
            Poll::Pending => return false,
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return true,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return true,
        }
    }
    false
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM JSON`
pub(super) fn format_message(r: &SinkRecord, hostname: &str, procid: &str) -> Vec<u8> {
    let pri = FACILITY * 8 + r.severity.as_code();
    let head = format!(
        "<{pri}>1 {} {hostname} {APP_NAME} {procid} {} [{SD_ID} seq=\"{}\" kind=\"{}\"] ",
        timestamp(r.at_ms),
        header_field(&r.kind, 32),
        r.seq,
        sd_escape(&r.kind),
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(b"\xEF\xBB\xBF");
    // A JSON value always serialises; the fallback only keeps the frame well formed.
    out.extend_from_slice(&serde_json::to_vec(&r.event).unwrap_or_else(|_| b"null".to_vec()));
    out
}

/// RFC 3339 in UTC with milliseconds; the NILVALUE for a time outside years 0000–9999.
fn timestamp(at_ms: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
    else {
        return "-".into();
    };
    if !(0..=9999).contains(&t.year()) {
        return "-".into();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A header field: printable US-ASCII without spaces (others become `_`), at most `max`
/// characters, the NILVALUE when empty.
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// An SD-PARAM value (RFC 5424 §6.3.3).
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> Option<String> {
    let (host, _port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::sink::Severity;

    #[test]
    fn message_layout() {
        let r = SinkRecord {
            seq: 42,
            at_ms: 1_700_000_000_123,
            kind: "bad kind \"x\"]\\é".into(),
            severity: Severity::Warning,
            event: serde_json::json!({"a": "é"}),
        };
        let msg = format_message(&r, "host", "77");
        let expected_head = "<84>1 2023-11-14T22:13:20.123Z host vhod 77 bad_kind_\"x\"]\\_ \
            [vhod@32473 seq=\"42\" kind=\"bad kind \\\"x\\\"\\]\\\\é\"] \u{FEFF}";
        assert_eq!(
            String::from_utf8(msg).expect("utf-8"),
            format!("{expected_head}{{\"a\":\"é\"}}")
        );
    }

    #[test]
    fn fields() {
        assert_eq!(header_field("", 32), "-");
        assert_eq!(header_field(&"k".repeat(40), 32).len(), 32);
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(timestamp(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(timestamp(i64::MAX), "-");
        assert_eq!(
            host_of("siem.example:6514").as_deref(),
            Some("siem.example")
        );
        assert_eq!(host_of("[::1]:6514").as_deref(), Some("::1"));
        assert_eq!(host_of(":6514"), None);
    }
}
