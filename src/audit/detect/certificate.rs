//! Certificate sign-ins refused for one reason, in numbers (a revoked card in circulation, a
//! CRL gone stale, a forged chain being tried).

use serde_json::json;

use super::window::Burst;
use super::{Alert, DetectSettings, Rule, is_failed_login};
use crate::audit::Event;

pub struct CertificateRefusals {
    per_reason: Burst<String>,
}

impl CertificateRefusals {
    pub fn new(s: &DetectSettings) -> Self {
        CertificateRefusals {
            per_reason: Burst::new(s.certificate_refusals, s.window_ms),
        }
    }

    pub fn observe(&mut self, seq: i64, e: &Event) -> Option<Alert> {
        if !is_failed_login(e) || e.method.as_deref() != Some("certificate") {
            return None;
        }
        let reason = e.reason.unwrap_or("unknown").to_string();
        self.per_reason.hit(&reason, e.at_ms).then(|| Alert {
            rule: Rule::CertificateRefusals,
            subject: None,
            ip: e.ip.clone(),
            details: json!({
                "refusal": reason, "refusals": self.per_reason.threshold,
                "window_seconds": self.per_reason.window_ms / 1000, "last_seq": seq,
            }),
        })
    }
}
