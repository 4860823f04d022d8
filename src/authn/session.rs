//! Single sign-on sessions: one row per browser sign-in, referenced by `sid` from the browser's
//! cookie session and from the tokens issued under it.

use super::{AuthFacts, Authenticated};
use crate::secrets;
use crate::store::StoreError;
use crate::store::sql::Db;
use crate::store::sso_sessions::SessionRow;
use crate::store::units;
use crate::store::upstream_identities::UpstreamKey;

/// Who must hear of sessions that ended away from the browsers holding them (a password
/// reset ends them all): the protocol's logout notices to the clients, plugged in by the
/// assembly so that sign-in does not know the protocol.
pub trait EndedSessions: Send + Sync {
    /// Starts telling; returns at once (the telling runs on its own, with retries).
    fn ended(&self, sid: String, account_id: String);
}

#[derive(Debug, Clone)]
pub struct SsoSession {
    pub sid: String,
    pub account_id: String,
    pub facts: AuthFacts,
    pub method: String,
    pub expires_at: i64,
}

impl SsoSession {
    fn of(sid: &str, who: &Authenticated, expires_at: i64) -> SsoSession {
        SsoSession {
            sid: sid.to_string(),
            account_id: who.account_id.clone(),
            facts: who.facts.clone(),
            method: who.method.to_string(),
            expires_at,
        }
    }

    fn to_row(&self) -> SessionRow {
        SessionRow {
            sid: self.sid.clone(),
            account_id: self.account_id.clone(),
            facts: self.facts.to_stored(),
            method: self.method.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// The upstream login a sign-in was, as the session records it.
fn upstream_of(who: &Authenticated) -> Option<units::UpstreamSession<'_>> {
    who.upstream.as_ref().map(|u| units::UpstreamSession {
        key: UpstreamKey {
            upstream: &u.upstream,
            issuer: &u.issuer,
            subject: &u.subject,
        },
        upstream_sid: u.sid.as_deref(),
    })
}

pub async fn create(db: &Db, who: &Authenticated, ttl: u64) -> Result<SsoSession, StoreError> {
    let s = SsoSession::of(&secrets::random_id(), who, db.clock.now() + ttl as i64);
    units::create_session(db, &s.to_row(), upstream_of(who).as_ref()).await?;
    Ok(s)
}

/// The same person signing in again in a browser whose session is theirs (a re-login, a
/// step-up): the session goes on under its `sid` with the new sign-in's facts and a new
/// lifetime, so the grants made under it stay tied to it and its logout still ends them all.
/// None when the session is no longer active or is another account's.
pub async fn renew(
    db: &Db,
    sid: &str,
    who: &Authenticated,
    ttl: u64,
) -> Result<Option<SsoSession>, StoreError> {
    let s = SsoSession::of(sid, who, db.clock.now() + ttl as i64);
    let renewed = units::renew_session(db, &s.to_row(), upstream_of(who).as_ref()).await?;
    Ok(renewed.then_some(s))
}

pub async fn find_active(db: &Db, sid: &str) -> Result<Option<SsoSession>, StoreError> {
    let now = db.clock.now();
    Ok(find_not_ended(db, sid)
        .await?
        .filter(|s| s.expires_at > now))
}

/// A session that was never ended, expired or not: what a sign-in over it or a logout must
/// still end, since the grants made under it outlive its expiry.
pub async fn find_not_ended(db: &Db, sid: &str) -> Result<Option<SsoSession>, StoreError> {
    Ok(db
        .sso_sessions()
        .find_not_ended(sid)
        .await?
        .map(|row| SsoSession {
            sid: row.sid,
            account_id: row.account_id,
            facts: AuthFacts::from_stored(row.facts),
            method: row.method,
            expires_at: row.expires_at,
        }))
}

/// Ends a session; true when it was still active.
pub async fn end(db: &Db, sid: &str) -> Result<bool, StoreError> {
    db.sso_sessions().end(sid).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Acr;
    use crate::clock::Clock;
    use crate::store::sql::test_dbs;

    fn who(account_id: &str, auth_time: i64) -> Authenticated {
        Authenticated {
            account_id: account_id.into(),
            facts: AuthFacts {
                auth_time,
                acr: Acr::Low,
                amr: vec!["pwd".into()],
                legal_entity: None,
            },
            method: "password",
            upstream: None,
        }
    }

    async fn with_account(db: &Db, id: &str) {
        db.accounts()
            .insert(&crate::store::accounts::NewRow::active(id))
            .await
            .expect("an account");
    }

    /// A session lives exactly its lifetime, by the database's clock; an expired one is not
    /// renewed, though it stays findable (not ended) for what must still end it.
    #[tokio::test]
    async fn a_session_expires_at_its_lifetime_and_is_not_renewed_after() {
        for t in test_dbs().await {
            expires_at_its_lifetime(t.db.clone()).await;
        }
    }

    async fn expires_at_its_lifetime(db: Db) {
        let clock = Clock::at(1_800_000_000);
        let db = db.with_clock(clock.clone());
        with_account(&db, "a").await;
        let s = create(&db, &who("a", clock.now()), 100)
            .await
            .expect("created");
        assert_eq!(s.expires_at, 1_800_000_100);
        clock.advance(99);
        assert!(find_active(&db, &s.sid).await.unwrap().is_some());
        let renewed = renew(&db, &s.sid, &who("a", clock.now()), 100)
            .await
            .unwrap();
        assert_eq!(renewed.map(|r| r.expires_at), Some(1_800_000_199));
        clock.advance(100);
        assert!(find_active(&db, &s.sid).await.unwrap().is_none(), "expired");
        assert!(
            renew(&db, &s.sid, &who("a", clock.now()), 100)
                .await
                .unwrap()
                .is_none(),
            "an expired session is not brought back"
        );
        assert!(find_not_ended(&db, &s.sid).await.unwrap().is_some());
        assert!(end(&db, &s.sid).await.unwrap(), "ended now");
        assert!(find_not_ended(&db, &s.sid).await.unwrap().is_none());
    }
}
