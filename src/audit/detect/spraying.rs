//! Password spraying: many accounts failing from one address (few tries each, so no
//! account's own counter trips).

use serde_json::json;

use super::window::Distinct;
use super::{Alert, DetectSettings, Rule, address, attempted_account, is_failed_login};
use crate::audit::Event;

pub struct Spraying {
    accounts: Distinct<String, String>,
}

impl Spraying {
    pub fn new(s: &DetectSettings) -> Self {
        Spraying {
            accounts: Distinct::new(s.spraying_accounts, s.window_ms),
        }
    }

    pub fn observe(&mut self, seq: i64, e: &Event) -> Vec<Alert> {
        let (true, Some(ip), Some(account)) = (is_failed_login(e), &e.ip, attempted_account(e))
        else {
            return vec![];
        };
        match self.accounts.hit(&address(ip), &account, e.at_ms) {
            Some(accounts) => vec![Alert {
                rule: Rule::PasswordSpraying,
                subject: None,
                ip: Some(ip.clone()),
                details: json!({
                    "accounts": accounts.len(),
                    "window_seconds": self.accounts.window_ms / 1000,
                    "last_seq": seq,
                }),
            }],
            None => vec![],
        }
    }
}
