//! An upstream's back-channel logout (OpenID Connect Back-Channel Logout 1.0): the upstream
//! posts a logout token to `POST /login/upstream/{name}/backchannel_logout` when a person's
//! session there ends, and vhod ends the sessions that logins through it made (their grants
//! revoked, their clients told, as a logout here does).
//!
//! The token is checked as §2.6 asks: signed by a key of the upstream's (asymmetric), `iss` the
//! upstream's issuer, `aud` our client id, `iat` recent, `exp` not passed, the back-channel
//! logout event, a `sub` or `sid`, no `nonce`, and its `jti` accepted once.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Failure;
use super::connector::Connector;
use crate::audit::Audit;
use crate::authn::session::EndedSessions;
use crate::store::StoreError;
use crate::store::ephemeral::{Ephemeral, keys};
use crate::store::sql::Db;
use crate::store::upstream_identities::UpstreamKey;
use crate::web::RequestMeta;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A token older than this is refused (and its `jti` need be kept no longer).
const MAX_AGE: i64 = 600;
/// Clock skew allowed for `iat`.
const SKEW: i64 = 60;

/// Who the logout token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
}

/// The claims of a verified token, checked at `now` for `up`.
pub fn check_claims(
    c: &crate::config::upstream::Upstream,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<Named, Failure> {
    let invalid = |why: &str| Failure::InvalidIdToken(why.to_string());
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    if text("iss").as_deref() != Some(c.link_issuer()) {
        return Err(Failure::WrongIssuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == c.client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&c.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(Failure::WrongAudience);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("no iat"))?;
    if iat > now + SKEW || iat < now - MAX_AGE {
        return Err(Failure::Expired);
    }
    if claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp <= now)
    {
        return Err(Failure::Expired);
    }
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(EVENT))
        .is_some_and(Value::is_object);
    if !has_event {
        return Err(invalid("no back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token has no nonce"));
    }
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err(invalid("neither sub nor sid"));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid("no jti"))?;
    Ok(Named { sub, sid, jti })
}

/// What ending the sessions needs.
pub struct Backchannel<'a> {
    pub db: &'a Db,
    pub eph: &'a Ephemeral,
    pub audit: &'a Audit,
    pub clock: &'a crate::clock::Clock,
    pub ended: &'a dyn EndedSessions,
}

#[derive(Debug)]
pub enum LogoutError {
    Refused(Failure),
    Store(StoreError),
}

impl Backchannel<'_> {
    /// Checks the token and ends the sessions it names; how many ended.
    pub async fn logout(
        &self,
        c: &Connector,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<usize, LogoutError> {
        let claims = c.verify_signed(token).await.map_err(LogoutError::Refused)?;
        let named =
            check_claims(&c.config, &claims, self.clock.now()).map_err(LogoutError::Refused)?;
        let once = self
            .eph
            .put_if_absent(
                &keys::upstream_logout(&c.config.name, &named.jti),
                b"1",
                Duration::from_secs(MAX_AGE as u64 + SKEW as u64),
            )
            .await
            .map_err(LogoutError::Store)?;
        if !once {
            return Err(LogoutError::Refused(Failure::InvalidIdToken(
                "the token was used already".into(),
            )));
        }
        let ended = self.end_named(c, &named, meta).await;
        if ended.is_err() {
            // Not done: the upstream's retry of the same token must be able to finish it.
            let _ = self
                .eph
                .delete(&keys::upstream_logout(&c.config.name, &named.jti))
                .await;
        }
        ended
    }

    async fn end_named(
        &self,
        c: &Connector,
        named: &Named,
        meta: &RequestMeta,
    ) -> Result<usize, LogoutError> {
        let (up, issuer) = (c.config.name.as_str(), c.config.link_issuer());
        let ids = self.db.upstream_identities();
        let sids = match (&named.sub, &named.sid) {
            (Some(sub), sid) => {
                let key = UpstreamKey {
                    upstream: up,
                    issuer,
                    subject: sub,
                };
                ids.open_sessions(&key, sid.as_deref()).await
            }
            (None, Some(sid)) => ids.open_sessions_of_upstream_session(up, issuer, sid).await,
            (None, None) => Ok(Vec::new()),
        }
        .map_err(LogoutError::Store)?;
        super::end_sessions(
            self.db,
            self.audit,
            self.ended,
            &sids,
            meta,
            "upstream_logout",
            up,
        )
        .await
        .map_err(LogoutError::Store)?;
        Ok(sids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upstream() -> crate::config::upstream::Upstream {
        let spec = toml::from_str(
            r#"
            name = "npes"
            kind = "oidc"
            issuer = "https://npes.example.by"
            client_id = "vhod"
            client_secret = "s"
            display_name = "НПЭС"
            [acr]
            default = "substantial"
            "#,
        )
        .expect("spec");
        let env = |_: &str| None;
        crate::config::upstream::validate(vec![spec], false, std::path::Path::new("."), &env)
            .expect("valid")
            .remove(0)
    }

    const NOW: i64 = 1_800_000_000;

    fn token() -> Map<String, Value> {
        match json!({
            "iss": "https://npes.example.by", "aud": ["vhod", "other"], "iat": NOW - 5,
            "jti": "j-1", "sub": "up-1", "events": {EVENT: {}},
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_logout_token_is_checked_as_the_spec_asks() {
        let up = upstream();
        let named = check_claims(&up, &token(), NOW).expect("a good token");
        assert_eq!(named.sub.as_deref(), Some("up-1"));
        let refused = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut t = token();
            f(&mut t);
            check_claims(&up, &t, NOW).expect_err("refused")
        };
        assert_eq!(
            refused(&|t| {
                t.insert("iss".into(), json!("https://x"));
            }),
            Failure::WrongIssuer
        );
        assert_eq!(
            refused(&|t| {
                t.insert("aud".into(), json!("other"));
            }),
            Failure::WrongAudience
        );
        assert_eq!(
            refused(&|t| {
                t.insert("iat".into(), json!(NOW - 3600));
            }),
            Failure::Expired
        );
        assert_eq!(
            refused(&|t| {
                t.insert("iat".into(), json!(NOW + 3600));
            }),
            Failure::Expired
        );
        assert_eq!(
            refused(&|t| {
                t.insert("exp".into(), json!(NOW - 1));
            }),
            Failure::Expired
        );
        for f in [
            &(|t: &mut Map<String, Value>| {
                t.remove("events");
            }) as &dyn Fn(&mut Map<String, Value>),
            &|t| {
                t.insert("nonce".into(), json!("n"));
            },
            &|t| {
                t.remove("sub");
            },
            &|t| {
                t.remove("jti");
            },
            &|t| {
                t.insert("events".into(), json!({"other": {}}));
            },
        ] {
            assert!(matches!(refused(f), Failure::InvalidIdToken(_)));
        }
        let mut by_sid = token();
        by_sid.remove("sub");
        by_sid.insert("sid".into(), json!("s-9"));
        assert_eq!(
            check_claims(&up, &by_sid, NOW).unwrap().sid.as_deref(),
            Some("s-9")
        );
    }
}
