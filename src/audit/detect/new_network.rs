//! A sign-in of an account from a network it never signed in from (an IPv4 /24, an IPv6 /48).
//! History is the trail's own (every instance's, across restarts), asked of the database; an
//! account's very first sign-in raises nothing.

use serde_json::json;

use super::{Alert, Rule};
use crate::audit::{Event, Kind, Outcome};
use crate::store::StoreError;
use crate::store::audit_log::cidr_range;
use crate::store::sql::Db;

/// The network of an address, as a CIDR.
pub fn network(ip: &str) -> Option<String> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return network(&v4.to_string());
            }
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

pub async fn check(db: &Db, seq: i64, e: &Event) -> Result<Option<Alert>, StoreError> {
    let (Kind::Login, Outcome::Success, Some(subject), Some(ip)) =
        (e.kind, e.outcome, &e.subject, &e.ip)
    else {
        return Ok(None);
    };
    let Some(net) = network(ip) else {
        return Ok(None);
    };
    let Some(range) = cidr_range(&net) else {
        return Ok(None);
    };
    let log = db.audit_log();
    let (before, within) = log.prior_sign_ins(subject, seq, &range).await?;
    if before == 0 || within > 0 {
        return Ok(None);
    }
    Ok(Some(Alert {
        rule: Rule::NewNetwork,
        subject: Some(subject.clone()),
        ip: Some(ip.clone()),
        details: json!({"network": net, "client_id": e.client_id, "event_seq": seq}),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(network("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            network("::ffff:203.0.113.77").as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network("2001:db8:1:2::5").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(network("nonsense"), None);
    }
}
