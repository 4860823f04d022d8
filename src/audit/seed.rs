//! `vhod audit seed`: realistic events for benchmarks and rehearsals, through the ordered
//! writer and its chain (so the figure it prints is the writer's ingestion rate).
//!
//! A year of a national service in miniature: a pool of accounts signing in by password,
//! certificate or an upstream, mostly from their usual networks, receiving and refreshing
//! tokens and logging out; failures with their reasons; a few address ranges that spray
//! passwords; administrators at work. Deterministic for a given seed number.

use serde_json::json;

use super::{Audit, Event, Kind, Outcome};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub events: u64,
    pub accounts: u64,
    /// The events' stamps run over this many days up to now.
    pub days: u64,
    pub seed: u64,
}

/// SplitMix64: a small, fast, deterministic generator; these are test data, not secrets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const CLIENTS: [&str; 6] = [
    "appeals-portal",
    "appeals-staff",
    "appeals-mobile",
    "registry",
    "reports",
    "console",
];
const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
    "okhttp/4.12.0",
];
const FAILURES: [&str; 4] = [
    "wrong_password",
    "unknown_account",
    "account_locked",
    "ip_locked",
];
const CERT_REFUSALS: [&str; 3] = [
    "certificate_revoked",
    "certificate_expired",
    "untrusted_chain",
];
const ORGS: [&str; 5] = [
    "minjust",
    "minjust.grodno",
    "mvd",
    "mvd.minsk",
    "gomel.ispolkom",
];

fn account(i: u64) -> String {
    format!("seed-account-{i:08}")
}

/// An account's usual address: one of a few networks per account.
fn usual_ip(r: &mut Rng, acc: u64) -> String {
    let net = (acc.wrapping_mul(2_654_435_761) >> 8) % 40_000 + r.below(2);
    format!(
        "{}.{}.{}.{}",
        10 + (net >> 16) % 200,
        (net >> 8) & 255,
        net & 255,
        1 + r.below(250)
    )
}

fn event(r: &mut Rng, plan: &SeedPlan, at_ms: i64) -> Event {
    let acc = r.below(plan.accounts);
    let sub = account(acc);
    let roll = r.below(1000);
    let mut e = if roll < 280 {
        let method = match r.below(10) {
            0..=5 => "password",
            6..=8 => "certificate",
            _ => "upstream",
        };
        let acr = match method {
            "password" => "low",
            "certificate" => "high",
            _ => "substantial",
        };
        let mut e = Event::new(Kind::Login, Outcome::Success)
            .subject(Some(&sub))
            .client(r.pick(&CLIENTS))
            .method(method)
            .acr(Some(acr))
            .details(json!({"acr": acr, "sid": format!("sid-{}", r.next() % 1_000_000_000)}));
        if method == "upstream" {
            e = e.upstream("npes");
        }
        if r.below(20) == 0 {
            e = e.org(Some(r.pick(&ORGS)));
        }
        e
    } else if roll < 380 {
        let method = if r.below(5) == 0 {
            "certificate"
        } else {
            "password"
        };
        let reason = if method == "certificate" {
            r.pick(&CERT_REFUSALS)
        } else {
            r.pick(&FAILURES)
        };
        let mut e = Event::new(Kind::Login, Outcome::Failure)
            .client(r.pick(&CLIENTS))
            .method(method)
            .login_key(crate::secrets::token_hash(&format!("login-{acc}")));
        e.reason = Some(reason);
        if reason != "unknown_account" {
            e = e.subject(Some(&sub));
        }
        e
    } else if roll < 800 {
        Event::new(Kind::TokenIssued, Outcome::Success)
            .subject(Some(&sub))
            .client(r.pick(&CLIENTS))
            .details(json!({"grant": format!("g-{}", r.next() % 1_000_000_000), "scope": "openid profile"}))
    } else if roll < 950 {
        Event::new(Kind::Logout, Outcome::Success)
            .subject(Some(&sub))
            .details(json!({"sid": format!("sid-{}", r.next() % 1_000_000_000), "cause": "logout"}))
    } else if roll < 990 {
        Event::new(Kind::CodeIssued, Outcome::Success)
            .subject(Some(&sub))
            .client(r.pick(&CLIENTS))
    } else if roll < 998 {
        Event::new(Kind::Admin, Outcome::Success)
            .subject(Some(&sub))
            .org(Some(r.pick(&ORGS)))
            .details(json!({"action": "assign_roles"}))
    } else {
        Event::new(Kind::RefreshReuse, Outcome::Failure)
            .subject(Some(&sub))
            .client(r.pick(&CLIENTS))
    };
    // One event in fifty comes from a spraying range instead of the account's own network.
    let ip = if r.below(50) == 0 {
        format!("198.51.100.{}", r.below(256))
    } else {
        usual_ip(r, acc)
    };
    e.ip = Some(ip);
    e.user_agent = Some(r.pick(&AGENTS).to_string());
    e.at_ms = at_ms;
    e
}

/// Hands `plan.events` events to the writer, stamped evenly over `plan.days` up to now.
pub async fn seed(audit: &Audit, plan: &SeedPlan) {
    let mut r = Rng(plan.seed);
    let now = crate::clock::now_millis();
    let span = (plan.days.max(1) as i64) * 86_400_000;
    let step = span / plan.events.max(1) as i64;
    for i in 0..plan.events {
        let at = now - span + step.max(1) * i as i64;
        audit.enqueue(event(&mut r, plan, at)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_events() {
        let plan = SeedPlan {
            events: 100,
            accounts: 10,
            days: 1,
            seed: 7,
        };
        let make = || {
            let mut r = Rng(plan.seed);
            (0..100)
                .map(|i| {
                    let e = event(&mut r, &plan, i);
                    (e.kind, e.subject, e.ip)
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (make(), make());
        assert_eq!(a, b);
        assert!(a.iter().any(|e| e.0 == Kind::Login) && a.iter().any(|e| e.0 == Kind::TokenIssued));
    }
}
