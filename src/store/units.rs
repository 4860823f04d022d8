//! Writes that change several aggregates at once, each in one transaction: they commit
//! together or not at all, so a failure half-way leaves everything as it was.

use super::StoreError;
use super::accounts::{self, Contact, NewRow};
use super::sql::Db;
use super::{certificates, grants, memberships, sso_sessions, upstream_identities};

/// What a password reset ended besides the old password.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PasswordReset {
    /// The SSO sessions that were still open (their clients are to be told).
    pub sessions_ended: Vec<String>,
    pub grants_revoked: u64,
}

/// Sets the account's password hash, ends all its SSO sessions and revokes all its grants (and
/// so their refresh tokens), as one transaction. None when the account does not exist.
pub async fn reset_password(
    db: &Db,
    account_id: &str,
    hash: &str,
) -> Result<Option<PasswordReset>, StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        if !accounts::set_password_on(&mut tx, account_id, hash, now).await? {
            return Ok(None);
        }
        let sessions_ended = sso_sessions::end_all_of_on(&mut tx, account_id, now).await?;
        let grants_revoked =
            grants::revoke_all_of_on(&mut tx, account_id, "password_reset", now).await?;
        Ok(Some(PasswordReset {
            sessions_ended,
            grants_revoked,
        }))
    }
    .await;
    finish(tx, done).await
}

/// Ends every SSO session of the account and revokes all its grants (and so their refresh
/// tokens), as one transaction, and, with `status`, sets the account's status with them (a
/// block). The sessions that were still open, for their clients to be told.
pub async fn end_everything_of(
    db: &Db,
    account_id: &str,
    status: Option<&str>,
    reason: &str,
) -> Result<Vec<String>, StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        if let Some(status) = status {
            sqlx::query(
                "UPDATE accounts SET status = $1, version = version + 1, updated_at = $2 \
                 WHERE id = $3 AND status <> 'pending'",
            )
            .bind(status)
            .bind(now)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        }
        let sessions_ended = sso_sessions::end_all_of_on(&mut tx, account_id, now).await?;
        grants::revoke_all_of_on(&mut tx, account_id, reason, now).await?;
        Ok(Some(sessions_ended))
    }
    .await;
    finish(tx, done).await.map(Option::unwrap_or_default)
}

/// What a logout ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Logout {
    /// The session was still open (not ended before).
    pub ended: bool,
    pub grants_revoked: u64,
}

/// Ends the session `sid` and revokes the grants made under it (except offline_access), as
/// one transaction.
pub async fn logout(db: &Db, sid: &str) -> Result<Logout, StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        let ended = sso_sessions::end_on(&mut tx, sid, now).await?;
        let grants_revoked = grants::revoke_for_session_on(&mut tx, sid, now).await?;
        Ok(Some(Logout {
            ended,
            grants_revoked,
        }))
    }
    .await;
    finish(tx, done).await.map(|l| {
        l.unwrap_or(Logout {
            ended: false,
            grants_revoked: 0,
        })
    })
}

/// What confirming a contact of a registration came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The value is no longer the account's (it was changed since the proof was sent).
    NotCurrent,
    /// Confirmed; `activated` when that completed the registration (phone and email both
    /// confirmed, the pending account is now active).
    Done { activated: bool },
}

/// Marks the contact proven and, when that completes the registration, activates the account,
/// as one transaction. A value confirmed for another account meanwhile is
/// [`StoreError::Conflict`], and nothing changes.
pub async fn confirm_contact(
    db: &Db,
    contact: Contact,
    account_id: &str,
    value: &str,
) -> Result<Confirmed, StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        if !accounts::confirm_on(&mut tx, contact, account_id, value, now).await? {
            return Ok(None);
        }
        let activated = accounts::activate_if_confirmed_on(&mut tx, account_id, now).await?;
        Ok(Some(Confirmed::Done { activated }))
    }
    .await;
    Ok(finish(tx, done).await?.unwrap_or(Confirmed::NotCurrent))
}

/// A certificate identity to write with a new account.
pub struct NewIdentity<'a> {
    pub key: &'a str,
    pub profile: &'a str,
    pub anchor_key: &'a str,
}

/// Creates an account together with its certificate identity (both or neither). A taken
/// username or identity is [`StoreError::Conflict`].
pub async fn create_account_with_identity(
    db: &Db,
    account: &NewRow,
    identity: &NewIdentity<'_>,
) -> Result<(), StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        accounts::insert_on(&mut tx, account, now).await?;
        let row = certificates::IdentityRow {
            key: identity.key,
            account_id: &account.id,
            profile: identity.profile,
            anchor_key: identity.anchor_key,
        };
        certificates::insert_on(&mut tx, &row, now).await?;
        Ok(Some(()))
    }
    .await;
    finish(tx, done).await.map(|_| ())
}

/// Creates an employee account with its membership and, when given, its binding to a personal
/// number (an identity `pn:<number>` its owner's first certificate sign-in finds), all or
/// nothing. A taken username, contact or number is [`StoreError::Conflict`].
pub async fn create_employee(
    db: &Db,
    account: &NewRow,
    membership: &memberships::Membership,
    personal_number: Option<&str>,
) -> Result<(), StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        accounts::insert_on(&mut tx, account, now).await?;
        memberships::set_on(&mut tx, membership, now).await?;
        if let Some(n) = personal_number {
            certificates::bind_number_on(&mut tx, &account.id, n, now).await?;
        }
        Ok(Some(()))
    }
    .await;
    finish(tx, done).await.map(|_| ())
}

/// Creates an account together with its upstream identity (both or neither). A taken
/// username, phone or identity is [`StoreError::Conflict`].
pub async fn create_account_with_upstream_identity(
    db: &Db,
    account: &NewRow,
    key: &upstream_identities::UpstreamKey<'_>,
    personal_number: Option<&str>,
) -> Result<(), StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        accounts::insert_on(&mut tx, account, now).await?;
        upstream_identities::insert_on(&mut tx, key, &account.id, personal_number, now).await?;
        Ok(Some(()))
    }
    .await;
    finish(tx, done).await.map(|_| ())
}

/// The upstream login a session is made or renewed by.
pub struct UpstreamSession<'a> {
    pub key: upstream_identities::UpstreamKey<'a>,
    pub upstream_sid: Option<&'a str>,
}

/// Creates a session and, for a login through an upstream, the record of it (both or neither).
pub async fn create_session(
    db: &Db,
    row: &sso_sessions::SessionRow,
    upstream: Option<&UpstreamSession<'_>>,
) -> Result<(), StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        sso_sessions::insert_on(&mut tx, row, now).await?;
        if let Some(u) = upstream {
            upstream_identities::record_session_on(&mut tx, &row.sid, &u.key, u.upstream_sid, now)
                .await?;
        }
        Ok(Some(()))
    }
    .await;
    finish(tx, done).await.map(|_| ())
}

/// Renews a session (see `SsoSessions::renew`) and records the upstream login that renewed
/// it, together; false (and nothing written) when the session was not renewable.
pub async fn renew_session(
    db: &Db,
    row: &sso_sessions::SessionRow,
    upstream: Option<&UpstreamSession<'_>>,
) -> Result<bool, StoreError> {
    let now = db.clock.now();
    let mut tx = db.pool.begin().await?;
    let done = async {
        if !sso_sessions::renew_on(&mut tx, row, now).await? {
            return Ok(None);
        }
        match upstream {
            Some(u) => {
                upstream_identities::record_session_on(
                    &mut tx,
                    &row.sid,
                    &u.key,
                    u.upstream_sid,
                    now,
                )
                .await?
            }
            // Renewed by another method: it is no longer that upstream login's to end.
            None => upstream_identities::forget_session_on(&mut tx, &row.sid).await?,
        }
        Ok(Some(()))
    }
    .await;
    Ok(finish(tx, done).await?.is_some())
}

/// Commits what succeeded in full; rolls back, there and then, anything else.
async fn finish<T>(
    tx: sqlx::Transaction<'_, sqlx::Any>,
    done: Result<Option<T>, StoreError>,
) -> Result<Option<T>, StoreError> {
    match done {
        Ok(Some(v)) => {
            tx.commit().await?;
            Ok(Some(v))
        }
        other => {
            // Explicitly, not on drop: the connection goes back to the pool clean.
            tx.rollback().await?;
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::sql::{Backend, test_dbs};

    async fn one(db: &Db, sql: &str) -> Option<String> {
        db.scalar(sql).await
    }

    /// An account with a password, an open session and two grants under it (one offline).
    async fn signed_in(db: &Db) {
        db.tamper(
            "INSERT INTO accounts (id, username, password_hash, status, created_at, updated_at) \
             VALUES ('a', 'ivan', 'old', 'active', 1, 1)",
        )
        .await;
        db.tamper(
            "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, expires_at) \
             VALUES ('s1', 'a', 1, 'low', '[]', 'password', 1, 9999999999)",
        )
        .await;
        db.tamper(
            "INSERT INTO grants (id, account_id, client_id, sid, scope, auth_time, acr, amr, created_at, expires_at) \
             VALUES ('g1', 'a', 'rp', 's1', 'openid', 1, 'low', '[]', 1, 9999999999), \
             ('g2', 'a', 'rp', 's1', 'openid offline_access', 1, 'low', '[]', 1, 9999999999)",
        )
        .await;
    }

    /// Every `event` (`UPDATE ON grants`, `UPDATE OF status ON accounts`, `INSERT ON …`) fails
    /// from now on: a trigger stands in for a database that breaks half-way.
    async fn break_writes(db: &Db, event: &str) {
        match db.backend {
            Backend::Sqlite => {
                db.tamper(&format!(
                    "CREATE TRIGGER broken BEFORE {event} BEGIN SELECT RAISE(ABORT, 'injected'); END"
                ))
                .await;
            }
            Backend::Postgres => {
                db.tamper(
                    "CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
                )
                .await;
                db.tamper(&format!(
                    "CREATE TRIGGER broken BEFORE {event} FOR EACH ROW EXECUTE FUNCTION broken()"
                ))
                .await;
            }
        }
    }

    #[tokio::test]
    async fn a_reset_ends_sessions_and_grants_with_the_password() {
        for t in test_dbs().await {
            reset_ends_everything(&t.db.clone().with_clock(Clock::at(100))).await;
        }
    }

    async fn reset_ends_everything(db: &Db) {
        signed_in(db).await;
        let done = reset_password(db, "a", "new").await.expect("stored");
        assert_eq!(
            done,
            Some(PasswordReset {
                sessions_ended: vec!["s1".into()],
                grants_revoked: 2,
            })
        );
        assert_eq!(
            one(db, "SELECT password_hash FROM accounts")
                .await
                .as_deref(),
            Some("new")
        );
        let ended = "SELECT COUNT(*) FROM sso_sessions WHERE ended_at = 100";
        assert_eq!(db.scalar::<i64>(ended).await, 1);
        let revoked = "SELECT COUNT(*) FROM grants WHERE revoked_reason = 'password_reset'";
        assert_eq!(db.scalar::<i64>(revoked).await, 2);
        assert_eq!(reset_password(db, "nobody", "x").await.unwrap(), None);
    }

    /// A reset whose second or third write fails: the account keeps its old password, its
    /// sessions and its grants.
    #[tokio::test]
    async fn a_reset_that_fails_half_way_changes_nothing() {
        for table in ["sso_sessions", "grants"] {
            for t in test_dbs().await {
                let db = &t.db;
                signed_in(db).await;
                break_writes(db, &format!("UPDATE ON {table}")).await;
                assert!(reset_password(db, "a", "new").await.is_err(), "{table}");
                let hash = one(db, "SELECT password_hash FROM accounts").await;
                assert_eq!(hash.as_deref(), Some("old"), "{table}");
                let open = "SELECT COUNT(*) FROM sso_sessions WHERE ended_at IS NULL";
                assert_eq!(db.scalar::<i64>(open).await, 1, "{table}");
                let live = "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL";
                assert_eq!(db.scalar::<i64>(live).await, 2, "{table}");
            }
        }
    }

    /// A logout ends the session and the grants made under it, except offline ones; if the
    /// grants cannot be revoked, the session stays open (to be ended again), not half-ended.
    #[tokio::test]
    async fn a_logout_ends_the_session_and_its_grants_or_nothing() {
        for t in test_dbs().await {
            let db = &t.db;
            signed_in(db).await;
            let done = logout(db, "s1").await.expect("stored");
            assert_eq!(
                done,
                Logout {
                    ended: true,
                    grants_revoked: 1
                }
            );
            let live = "SELECT id FROM grants WHERE revoked_at IS NULL";
            assert_eq!(one(db, live).await.as_deref(), Some("g2"), "offline stays");
            let again = logout(db, "s1").await.expect("stored");
            assert!(!again.ended, "ended once");
        }
        for t in test_dbs().await {
            let db = &t.db;
            signed_in(db).await;
            break_writes(db, "UPDATE ON grants").await;
            assert!(logout(db, "s1").await.is_err());
            let open = "SELECT COUNT(*) FROM sso_sessions WHERE ended_at IS NULL";
            assert_eq!(db.scalar::<i64>(open).await, 1);
        }
    }

    async fn registering(db: &Db) {
        db.tamper(
            "INSERT INTO accounts (id, username, phone, email, status, created_at, updated_at) \
             VALUES ('p', 'pavel', '+375291112233', 'p@example.by', 'pending', 1, 1), \
             ('q', 'qwerty', '+375291112233', 'q@example.by', 'pending', 1, 1)",
        )
        .await;
    }

    /// The contact that completes a registration activates the account in the same
    /// transaction; a contact changed since, or confirmed for another account, changes nothing.
    #[tokio::test]
    async fn confirming_the_last_contact_activates_the_registration() {
        for t in test_dbs().await {
            let db = &t.db;
            registering(db).await;
            let other = confirm_contact(db, Contact::Phone, "p", "+375290000000").await;
            assert_eq!(other.unwrap(), Confirmed::NotCurrent);
            let phone = confirm_contact(db, Contact::Phone, "p", "+375291112233").await;
            assert_eq!(phone.unwrap(), Confirmed::Done { activated: false });
            let taken = confirm_contact(db, Contact::Phone, "q", "+375291112233").await;
            assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
            let email = confirm_contact(db, Contact::Email, "p", "p@example.by").await;
            assert_eq!(email.unwrap(), Confirmed::Done { activated: true });
            let status = "SELECT status FROM accounts WHERE id = 'p'";
            assert_eq!(one(db, status).await.as_deref(), Some("active"));
        }
        for t in test_dbs().await {
            let db = &t.db;
            registering(db).await;
            confirm_contact(db, Contact::Phone, "p", "+375291112233")
                .await
                .expect("confirmed");
            break_writes(db, "UPDATE OF status ON accounts").await;
            let email = confirm_contact(db, Contact::Email, "p", "p@example.by").await;
            assert!(email.is_err(), "the activation failed");
            let confirmed = "SELECT COUNT(*) FROM accounts WHERE email_verified = 1";
            assert_eq!(db.scalar::<i64>(confirmed).await, 0, "rolled back with it");
        }
    }

    fn cert_account(id: &str, username: &str) -> NewRow {
        let mut row = NewRow::active(id);
        row.account.username = username.into();
        row
    }

    const IDENTITY: NewIdentity<'static> = NewIdentity {
        key: "pn:4120290A012PB3",
        profile: "national",
        anchor_key: "ab",
    };

    /// An account made for a certificate exists only with its identity: a taken identity or
    /// a failing identity write leaves no account behind.
    #[tokio::test]
    async fn an_account_and_its_identity_are_created_together() {
        for t in test_dbs().await {
            let db = &t.db;
            create_account_with_identity(db, &cert_account("c1", "~a.b.cdefgh"), &IDENTITY)
                .await
                .expect("created");
            assert_eq!(
                db.certificates().owner(IDENTITY.key).await.unwrap(),
                Some("c1".into())
            );
            let again =
                create_account_with_identity(db, &cert_account("c2", "~a.b.zzzzzz"), &IDENTITY)
                    .await;
            assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
            assert!(db.accounts().find_by_id("c2").await.unwrap().is_none());
        }
        for t in test_dbs().await {
            let db = &t.db;
            break_writes(db, "INSERT ON certificate_identities").await;
            let broken =
                create_account_with_identity(db, &cert_account("c1", "~a.b.cdefgh"), &IDENTITY)
                    .await;
            assert!(broken.is_err());
            assert_eq!(db.accounts().count().await.unwrap(), 0);
        }
    }
}
