//! Bursts of failed sign-ins: from one address, and on one account (or typed login).

use serde_json::json;

use super::window::Burst;
use super::{Alert, DetectSettings, Rule, address, attempted_account, is_failed_login};
use crate::audit::Event;

pub struct FailedLogins {
    per_ip: Burst<String>,
    per_account: Burst<String>,
}

impl FailedLogins {
    pub fn new(s: &DetectSettings) -> Self {
        FailedLogins {
            per_ip: Burst::new(s.failed_logins_ip, s.window_ms),
            per_account: Burst::new(s.failed_logins_account, s.window_ms),
        }
    }

    pub fn observe(&mut self, seq: i64, e: &Event) -> Vec<Alert> {
        if !is_failed_login(e) {
            return vec![];
        }
        let mut out = Vec::new();
        let window_s = self.per_ip.window_ms / 1000;
        if let Some(ip) = &e.ip
            && self.per_ip.hit(&address(ip), e.at_ms)
        {
            out.push(Alert {
                rule: Rule::FailedLoginsIp,
                subject: None,
                ip: Some(ip.clone()),
                details: json!({"failures": self.per_ip.threshold, "window_seconds": window_s, "last_seq": seq}),
            });
        }
        if let Some(account) = attempted_account(e)
            && self.per_account.hit(&account, e.at_ms)
        {
            out.push(Alert {
                rule: Rule::FailedLoginsAccount,
                subject: e.subject.clone(),
                ip: e.ip.clone(),
                details: json!({
                    "failures": self.per_account.threshold, "window_seconds": window_s,
                    "login_key": e.login_key, "last_seq": seq,
                }),
            });
        }
        out
    }
}
