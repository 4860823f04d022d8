//! An hourly SMS budget used up (the operator prefix's or the global one): someone is
//! burning the SMS gateway, and people cannot get their codes.

use serde_json::json;

use super::window::Burst;
use super::{Alert, DetectSettings, Rule};
use crate::audit::Event;

const EXHAUSTED: [&str; 2] = ["sms_limit_global", "sms_limit_prefix"];

pub struct SmsBudget {
    /// The first refusal of a budget fires; then quiet for the window.
    first: Burst<&'static str>,
}

impl SmsBudget {
    pub fn new(s: &DetectSettings) -> Self {
        SmsBudget {
            first: Burst::new(1, s.window_ms),
        }
    }

    pub fn observe(&mut self, seq: i64, e: &Event) -> Option<Alert> {
        let budget = EXHAUSTED.into_iter().find(|r| e.reason == Some(*r))?;
        self.first.hit(&budget, e.at_ms).then(|| Alert {
            rule: Rule::SmsBudgetExhausted,
            subject: None,
            ip: e.ip.clone(),
            details: json!({"budget": budget, "event_seq": seq}),
        })
    }
}
