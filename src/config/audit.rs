//! The audit trail's settings (`[audit]` in the file, `VHOD_AUDIT_*` in the environment): the
//! chain's digest, its checkpoints and their external copy, retention; the detection rules'
//! thresholds; the SIEM sinks.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::audit::chain::HashAlg;
use crate::audit::checkpoint::{ChainSettings, External};
use crate::audit::detect::{DetectSettings, WorkingHours};
use crate::audit::sink::{SinkSettings, SyslogSettings, WebhookSettings};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct AuditFile {
    /// `sha256` (default) or `belt-hash`.
    hash: Option<String>,
    checkpoint_events: Option<u64>,
    checkpoint_minutes: Option<u64>,
    /// A directory (write-once mount) the checkpoints are also written to.
    checkpoint_dir: Option<PathBuf>,
    /// An append-only HTTP endpoint the checkpoints are also posted to.
    checkpoint_url: Option<String>,
    retention_days: Option<u64>,
    alert_failed_logins_ip: Option<u64>,
    alert_failed_logins_account: Option<u64>,
    alert_spraying_accounts: Option<u64>,
    alert_certificate_refusals: Option<u64>,
    alert_window_seconds: Option<u64>,
    alert_new_network: Option<bool>,
    /// `08-19`: hours of the day [from, to).
    working_hours: Option<String>,
    /// `1-5`: days of the week, Monday 1.
    working_days: Option<String>,
    /// `+03:00`.
    utc_offset: Option<String>,
    /// `host:port` of a syslog (RFC 5424 over TCP) receiver.
    syslog: Option<String>,
    syslog_tls: Option<bool>,
    syslog_ca: Option<PathBuf>,
    syslog_server_name: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    /// `alerts` (default) or `all`: what goes to the sinks.
    sink_events: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub chain: ChainSettings,
    pub detect: DetectSettings,
    pub sinks: SinkSettings,
    /// Every event to the sinks, not only alerts.
    pub sink_all: bool,
}

const DAY_MS: i64 = 86_400_000;

/// Where the spools go by default, and the syslog HOSTNAME: the data directory and the
/// issuer's host.
pub(super) struct Around<'a> {
    pub dev: bool,
    pub data_dir: &'a Path,
    pub host: &'a str,
}

pub(super) fn settings(
    file: AuditFile,
    env: &impl Fn(&str) -> Option<String>,
    around: Around<'_>,
) -> anyhow::Result<AuditSettings> {
    let dev = around.dev;
    let num = |name: &str, file_v: Option<u64>| -> anyhow::Result<Option<u64>> {
        let v = match env(name) {
            Some(s) => Some(
                s.parse()
                    .with_context(|| format!("{name} must be a number"))?,
            ),
            None => file_v,
        };
        if v == Some(0) {
            bail!("{name} must be positive");
        }
        Ok(v)
    };
    let alg = match env("VHOD_AUDIT_HASH").or(file.hash) {
        None => HashAlg::Sha256,
        Some(s) => HashAlg::parse(&s)
            .with_context(|| format!("VHOD_AUDIT_HASH must be sha256 or belt-hash, not {s:?}"))?,
    };
    let checkpoint_events =
        num("VHOD_AUDIT_CHECKPOINT_EVENTS", file.checkpoint_events)?.unwrap_or(10_000);
    let checkpoint_minutes =
        num("VHOD_AUDIT_CHECKPOINT_MINUTES", file.checkpoint_minutes)?.unwrap_or(10);
    let dir = env("VHOD_AUDIT_CHECKPOINT_DIR")
        .map(PathBuf::from)
        .or(file.checkpoint_dir);
    let url = env("VHOD_AUDIT_CHECKPOINT_URL").or(file.checkpoint_url);
    let external = match (dir, url) {
        (Some(_), Some(_)) => {
            bail!("VHOD_AUDIT_CHECKPOINT_DIR and VHOD_AUDIT_CHECKPOINT_URL: choose one")
        }
        (Some(d), None) => Some(External::Dir(d)),
        (None, Some(u)) => {
            let url = url::Url::parse(&u).context("VHOD_AUDIT_CHECKPOINT_URL is not a URL")?;
            if url.scheme() != "https" && !(dev && url.scheme() == "http") {
                bail!("VHOD_AUDIT_CHECKPOINT_URL must be https (http only for development)");
            }
            Some(External::Http(url))
        }
        (None, None) => None,
    };
    let retention_days = num("VHOD_AUDIT_RETENTION_DAYS", file.retention_days)?;
    let flag = |name: &str, file_v: Option<bool>, default: bool| -> anyhow::Result<bool> {
        match env(name) {
            Some(v) => super::parse_bool(name, &v),
            None => Ok(file_v.unwrap_or(default)),
        }
    };
    let d = DetectSettings::default();
    let count = |name: &str, file_v: Option<u64>, default: usize| -> anyhow::Result<usize> {
        Ok(num(name, file_v)?.map_or(default, |v| v.min(1_000_000) as usize))
    };
    let detect = DetectSettings {
        failed_logins_ip: count(
            "VHOD_AUDIT_ALERT_FAILED_LOGINS_IP",
            file.alert_failed_logins_ip,
            d.failed_logins_ip,
        )?,
        failed_logins_account: count(
            "VHOD_AUDIT_ALERT_FAILED_LOGINS_ACCOUNT",
            file.alert_failed_logins_account,
            d.failed_logins_account,
        )?,
        spraying_accounts: count(
            "VHOD_AUDIT_ALERT_SPRAYING_ACCOUNTS",
            file.alert_spraying_accounts,
            d.spraying_accounts,
        )?,
        certificate_refusals: count(
            "VHOD_AUDIT_ALERT_CERTIFICATE_REFUSALS",
            file.alert_certificate_refusals,
            d.certificate_refusals,
        )?,
        window_ms: num("VHOD_AUDIT_ALERT_WINDOW_SECONDS", file.alert_window_seconds)?
            .map_or(d.window_ms, |s| (s.min(86_400 * 7) as i64) * 1000),
        working_hours: working_hours(
            env("VHOD_AUDIT_WORKING_HOURS").or(file.working_hours),
            env("VHOD_AUDIT_WORKING_DAYS").or(file.working_days),
            env("VHOD_AUDIT_UTC_OFFSET").or(file.utc_offset),
        )?,
        new_network: flag("VHOD_AUDIT_ALERT_NEW_NETWORK", file.alert_new_network, true)?,
    };
    let mut sinks = SinkSettings::new(
        env("VHOD_AUDIT_SPOOL_DIR")
            .map(PathBuf::from)
            .or(file.spool_dir)
            .unwrap_or_else(|| around.data_dir.join("audit-spool")),
        around.host,
    );
    if let Some(max) = num("VHOD_AUDIT_SPOOL_MAX_BYTES", file.spool_max_bytes)? {
        sinks.spool_max_bytes = max;
    }
    if let Some(addr) = env("VHOD_AUDIT_SYSLOG").or(file.syslog) {
        if !addr.contains(':') {
            bail!("VHOD_AUDIT_SYSLOG must be host:port, not {addr:?}");
        }
        sinks.syslog = Some(SyslogSettings {
            addr,
            tls: flag("VHOD_AUDIT_SYSLOG_TLS", file.syslog_tls, false)?,
            ca_file: env("VHOD_AUDIT_SYSLOG_CA")
                .map(PathBuf::from)
                .or(file.syslog_ca),
            server_name: env("VHOD_AUDIT_SYSLOG_SERVER_NAME").or(file.syslog_server_name),
        });
    }
    if let Some(u) = env("VHOD_AUDIT_WEBHOOK_URL").or(file.webhook_url) {
        let url = url::Url::parse(&u).context("VHOD_AUDIT_WEBHOOK_URL is not a URL")?;
        if url.scheme() != "https" && !(dev && url.scheme() == "http") {
            bail!("VHOD_AUDIT_WEBHOOK_URL must be https (http only for development)");
        }
        let secret = env("VHOD_AUDIT_WEBHOOK_SECRET")
            .or(file.webhook_secret)
            .context("VHOD_AUDIT_WEBHOOK_SECRET is required with VHOD_AUDIT_WEBHOOK_URL")?;
        if secret.len() < 32 {
            bail!("VHOD_AUDIT_WEBHOOK_SECRET must be at least 32 characters");
        }
        sinks.webhook = Some(WebhookSettings { url, secret });
    }
    let sink_all = match env("VHOD_AUDIT_SINK_EVENTS")
        .or(file.sink_events)
        .as_deref()
    {
        None | Some("alerts") => false,
        Some("all") => true,
        Some(other) => bail!("VHOD_AUDIT_SINK_EVENTS must be alerts or all, not {other:?}"),
    };
    Ok(AuditSettings {
        detect,
        sinks,
        sink_all,
        chain: ChainSettings {
            alg,
            checkpoint_events: checkpoint_events.min(i64::MAX as u64) as i64,
            checkpoint_ms: (checkpoint_minutes.min(1 << 30) as i64) * 60_000,
            external,
            retention_ms: retention_days.map(|d| (d.min(1 << 20) as i64) * DAY_MS),
        },
    })
}

fn range(name: &str, v: &str, lo: u8, hi: u8) -> anyhow::Result<(u8, u8)> {
    let bad =
        || anyhow::anyhow!("{name} must be FROM-TO with {lo} <= FROM < TO <= {hi}, not {v:?}");
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let (a, b): (u8, u8) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a < lo || b > hi || a >= b {
        return Err(bad());
    }
    Ok((a, b))
}

fn working_hours(
    hours: Option<String>,
    days: Option<String>,
    offset: Option<String>,
) -> anyhow::Result<WorkingHours> {
    let mut w = WorkingHours::default();
    if let Some(h) = hours {
        (w.start_hour, w.end_hour) = range("VHOD_AUDIT_WORKING_HOURS", &h, 0, 24)?;
    }
    if let Some(d) = days {
        // One day alone ("1"), or a range ("1-5").
        let (a, b) = match d.trim().parse::<u8>() {
            Ok(n) if (1..=7).contains(&n) => (n, n),
            _ => range("VHOD_AUDIT_WORKING_DAYS", &d, 1, 7)?,
        };
        w.days = std::array::from_fn(|i| (a as usize..=b as usize).contains(&(i + 1)));
    }
    if let Some(o) = offset {
        let bad = || anyhow::anyhow!("VHOD_AUDIT_UTC_OFFSET must be +HH:MM or -HH:MM, not {o:?}");
        let (sign, rest) = match o.as_bytes().first() {
            Some(b'+') => (1, &o[1..]),
            Some(b'-') => (-1, &o[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 14 || m > 59 {
            return Err(bad());
        }
        w.utc_offset_minutes = sign * (h * 60 + m);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> anyhow::Result<AuditSettings> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(
            AuditFile::default(),
            &|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            Around {
                dev: false,
                data_dir: Path::new("/var/lib/vhod"),
                host: "vhod.test",
            },
        )
    }

    #[test]
    fn defaults_and_overrides() {
        let d = from(&[]).unwrap().chain;
        assert_eq!(
            (d.alg, d.checkpoint_events, d.checkpoint_ms, d.retention_ms),
            (HashAlg::Sha256, 10_000, 600_000, None)
        );
        let s = from(&[
            ("VHOD_AUDIT_HASH", "belt-hash"),
            ("VHOD_AUDIT_CHECKPOINT_EVENTS", "50"),
            ("VHOD_AUDIT_CHECKPOINT_MINUTES", "1"),
            ("VHOD_AUDIT_RETENTION_DAYS", "365"),
            ("VHOD_AUDIT_CHECKPOINT_DIR", "/var/lib/vhod-checkpoints"),
        ])
        .unwrap()
        .chain;
        assert_eq!(s.alg, HashAlg::BeltHash);
        assert_eq!((s.checkpoint_events, s.checkpoint_ms), (50, 60_000));
        assert_eq!(s.retention_ms, Some(365 * DAY_MS));
        assert_eq!(
            s.external,
            Some(External::Dir("/var/lib/vhod-checkpoints".into()))
        );
    }

    #[test]
    fn detection_and_sinks() {
        let s = from(&[
            ("VHOD_AUDIT_ALERT_SPRAYING_ACCOUNTS", "5"),
            ("VHOD_AUDIT_WORKING_HOURS", "9-18"),
            ("VHOD_AUDIT_WORKING_DAYS", "1-6"),
            ("VHOD_AUDIT_UTC_OFFSET", "+02:30"),
            ("VHOD_AUDIT_SYSLOG", "127.0.0.1:6514"),
            ("VHOD_AUDIT_SYSLOG_TLS", "true"),
            ("VHOD_AUDIT_SINK_EVENTS", "all"),
        ])
        .unwrap();
        assert_eq!(s.detect.spraying_accounts, 5);
        let w = &s.detect.working_hours;
        assert_eq!(
            (w.start_hour, w.end_hour, w.utc_offset_minutes),
            (9, 18, 150)
        );
        assert_eq!(w.days, [true, true, true, true, true, true, false]);
        let syslog = s.sinks.syslog.unwrap();
        assert!(syslog.tls && syslog.addr == "127.0.0.1:6514");
        assert!(s.sink_all);
        assert_eq!(s.sinks.spool_dir, Path::new("/var/lib/vhod/audit-spool"));
        let d = from(&[]).unwrap();
        assert!(d.sinks.syslog.is_none() && d.sinks.webhook.is_none() && !d.sink_all);
    }

    #[test]
    fn bad_values_stop_the_start() {
        for bad in [
            ("VHOD_AUDIT_HASH", "md5"),
            ("VHOD_AUDIT_CHECKPOINT_EVENTS", "0"),
            ("VHOD_AUDIT_RETENTION_DAYS", "forever"),
            (
                "VHOD_AUDIT_CHECKPOINT_URL",
                "http://siem.example/checkpoints",
            ),
            ("VHOD_AUDIT_WEBHOOK_URL", "https://siem.example/hook"),
            ("VHOD_AUDIT_WORKING_HOURS", "19-8"),
            ("VHOD_AUDIT_UTC_OFFSET", "3"),
            ("VHOD_AUDIT_SINK_EVENTS", "some"),
            ("VHOD_AUDIT_SYSLOG", "nohostport"),
        ] {
            assert!(from(&[bad]).is_err(), "{bad:?}");
        }
    }
}
