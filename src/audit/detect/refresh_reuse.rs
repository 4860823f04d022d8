//! A rotated refresh token presented again: a stolen token, or a client's bug; either way
//! the grant was revoked and the officers hear of it at once.

use serde_json::json;

use super::{Alert, Rule};
use crate::audit::{Event, Kind};

pub fn observe(seq: i64, e: &Event) -> Option<Alert> {
    (e.kind == Kind::RefreshReuse).then(|| Alert {
        rule: Rule::RefreshTokenReuse,
        subject: e.subject.clone(),
        ip: e.ip.clone(),
        details: json!({"client_id": e.client_id, "event_seq": seq}),
    })
}
