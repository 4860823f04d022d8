//! Detection rules over the audit stream: each rule watches the events this instance stores
//! and raises an alert, itself an audit event (`Kind::Alert`, the rule as its reason), which
//! goes to the configured sinks. Windows are per instance (each replica counts what it
//! stores): behind a load balancer that spreads one attacker over replicas, divide the
//! thresholds by their number. Time is the events' own (`at_ms`), so every rule is tested at
//! chosen moments.

mod certificate;
mod failed_logins;
pub mod new_network;
mod off_hours;
mod refresh_reuse;
mod sms_budget;
mod spraying;
pub mod window;

use serde_json::Value;

pub use off_hours::WorkingHours;

use super::{Event, ReasonCode};

/// The rules, as the alerts' reasons name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    FailedLoginsIp,
    FailedLoginsAccount,
    PasswordSpraying,
    RefreshTokenReuse,
    CertificateRefusals,
    SmsBudgetExhausted,
    AdminOffHours,
    NewNetwork,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::FailedLoginsIp,
        Rule::FailedLoginsAccount,
        Rule::PasswordSpraying,
        Rule::RefreshTokenReuse,
        Rule::CertificateRefusals,
        Rule::SmsBudgetExhausted,
        Rule::AdminOffHours,
        Rule::NewNetwork,
    ];

    /// RFC 5424 severity of its alerts.
    pub fn severity(self) -> &'static str {
        match self {
            Rule::PasswordSpraying | Rule::RefreshTokenReuse => "alert",
            Rule::FailedLoginsIp | Rule::FailedLoginsAccount | Rule::SmsBudgetExhausted => {
                "warning"
            }
            Rule::CertificateRefusals | Rule::AdminOffHours | Rule::NewNetwork => "notice",
        }
    }
}

impl ReasonCode for Rule {
    fn code(&self) -> &'static str {
        match self {
            Rule::FailedLoginsIp => "failed_logins_ip",
            Rule::FailedLoginsAccount => "failed_logins_account",
            Rule::PasswordSpraying => "password_spraying",
            Rule::RefreshTokenReuse => "refresh_token_reuse",
            Rule::CertificateRefusals => "certificate_refusals",
            Rule::SmsBudgetExhausted => "sms_budget_exhausted",
            Rule::AdminOffHours => "admin_off_hours",
            Rule::NewNetwork => "new_network",
        }
    }
}

/// A rule fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: Rule,
    /// The account concerned, when one is.
    pub subject: Option<String>,
    /// The address concerned, when one is.
    pub ip: Option<String>,
    pub details: Value,
}

impl Alert {
    /// As the audit event it becomes.
    pub fn event(&self) -> Event {
        let mut details = self.details.clone();
        if let Some(m) = details.as_object_mut() {
            m.insert("rule".into(), self.rule.code().into());
            m.insert("severity".into(), self.rule.severity().into());
        }
        let mut e = Event::new(super::Kind::Alert, super::Outcome::Success)
            .reason(self.rule)
            .subject(self.subject.clone())
            .details(details);
        e.ip = self.ip.clone();
        e
    }
}

/// The rules' thresholds (settings).
#[derive(Debug, Clone)]
pub struct DetectSettings {
    /// Failed sign-ins from one address within the window.
    pub failed_logins_ip: usize,
    /// Failed sign-ins on one account (or one typed login) within the window.
    pub failed_logins_account: usize,
    /// Distinct accounts failing from one address within the window.
    pub spraying_accounts: usize,
    /// Certificate sign-ins refused for one reason within the window.
    pub certificate_refusals: usize,
    pub window_ms: i64,
    pub working_hours: WorkingHours,
    /// Alert on an account's sign-in from a network it never signed in from.
    pub new_network: bool,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            failed_logins_ip: 20,
            failed_logins_account: 10,
            spraying_accounts: 10,
            certificate_refusals: 10,
            window_ms: 10 * 60 * 1000,
            working_hours: WorkingHours::default(),
            new_network: true,
        }
    }
}

/// The rules that count in memory (the new-network rule asks the trail: `new_network`).
pub struct Detector {
    failed: failed_logins::FailedLogins,
    spraying: spraying::Spraying,
    certificate: certificate::CertificateRefusals,
    sms: sms_budget::SmsBudget,
    working_hours: WorkingHours,
}

impl Detector {
    pub fn new(s: &DetectSettings) -> Detector {
        Detector {
            failed: failed_logins::FailedLogins::new(s),
            spraying: spraying::Spraying::new(s),
            certificate: certificate::CertificateRefusals::new(s),
            sms: sms_budget::SmsBudget::new(s),
            working_hours: s.working_hours.clone(),
        }
    }

    /// The alerts `e` (stored at `seq`) raises. Alerts raise none.
    pub fn observe(&mut self, seq: i64, e: &Event) -> Vec<Alert> {
        if e.kind == super::Kind::Alert {
            return vec![];
        }
        let mut out = Vec::new();
        out.extend(self.failed.observe(seq, e));
        out.extend(self.spraying.observe(seq, e));
        out.extend(refresh_reuse::observe(seq, e));
        out.extend(self.certificate.observe(seq, e));
        out.extend(self.sms.observe(seq, e));
        out.extend(off_hours::observe(&self.working_hours, seq, e));
        out
    }
}

/// A failed sign-in attempt's account: the account when known, else the login typed (its
/// keyed digest), so attempts on unknown logins count too.
fn attempted_account(e: &Event) -> Option<String> {
    e.subject
        .clone()
        .or_else(|| e.login_key.as_ref().map(|k| format!("login:{k}")))
}

/// What counts as one address: an IPv4 address, or an IPv6 /64 (one subscriber's prefix: an
/// attacker there has 2^64 addresses to rotate through).
fn address(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        _ => ip.to_string(),
    }
}

fn is_failed_login(e: &Event) -> bool {
    e.kind == super::Kind::Login && e.outcome == super::Outcome::Failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Kind, Outcome, Reason};

    fn failed(ip: &str, account: &str, at: i64) -> Event {
        let mut e = Event::new(Kind::Login, Outcome::Failure)
            .reason(Reason::WrongPassword)
            .method("password")
            .login_key(account);
        e.ip = Some(ip.into());
        e.at_ms = at;
        e
    }

    #[test]
    fn password_spraying_from_one_address_raises_one_alert() {
        let mut d = Detector::new(&DetectSettings {
            spraying_accounts: 5,
            failed_logins_ip: 100,
            ..DetectSettings::default()
        });
        let mut alerts = Vec::new();
        for i in 0..12 {
            alerts.extend(d.observe(i, &failed("198.51.100.9", &format!("acc{i}"), 1_000 + i)));
        }
        let spray: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.rule == Rule::PasswordSpraying)
            .collect();
        assert_eq!(spray.len(), 1, "{alerts:?}");
        assert_eq!(spray[0].ip.as_deref(), Some("198.51.100.9"));
        assert_eq!(spray[0].details["accounts"], 5);
        let ev = spray[0].event();
        assert_eq!(
            (ev.kind, ev.reason),
            (Kind::Alert, Some("password_spraying"))
        );
        // The alert itself raises nothing.
        assert!(d.observe(99, &ev).is_empty());
    }

    #[test]
    fn an_ipv6_attacker_rotating_within_a_64_is_one_address() {
        let mut d = Detector::new(&DetectSettings {
            spraying_accounts: 3,
            ..DetectSettings::default()
        });
        let mut alerts = Vec::new();
        for i in 0..4 {
            let ip = format!("2001:db8:1:2::{:x}", i + 1);
            alerts.extend(d.observe(i, &failed(&ip, &format!("acc{i}"), 1_000 + i)));
        }
        assert!(
            alerts.iter().any(|a| a.rule == Rule::PasswordSpraying),
            "{alerts:?}"
        );
        assert_eq!(address("::ffff:203.0.113.9"), "203.0.113.9");
    }

    #[test]
    fn one_account_failing_from_many_addresses_is_a_burst_on_the_account_not_spraying() {
        let mut d = Detector::new(&DetectSettings {
            failed_logins_account: 4,
            ..DetectSettings::default()
        });
        let mut alerts = Vec::new();
        for i in 0..6 {
            alerts.extend(d.observe(i, &failed(&format!("203.0.113.{i}"), "victim", 1_000 * i)));
        }
        let rules: Vec<Rule> = alerts.iter().map(|a| a.rule).collect();
        assert_eq!(rules, [Rule::FailedLoginsAccount]);
    }
}
