//! A database as this release leaves it (every migration up to today's, with a person, a
//! client's grant and its refresh token, an SSO session, an upstream identity) keeps working
//! under the code of every later change: vhod migrates what it must, the person signs in with
//! their password, and the refresh token refreshes. The rows are written here as today's schema
//! holds them, so a later migration that breaks them fails this test.

mod common;

use common::*;

/// The migrations today's release has applied.
const TODAY: usize = 9;
const REFRESH: &str = "an-old-refresh-token-0123456789abcdefghij";

/// Today's rows: a citizen with a password and confirmed contacts, an SSO session, a grant of
/// the client `rp` under it and its refresh token.
async fn todays_rows(url: &str) {
    let pool = sqlx::AnyPool::connect(url).await.expect("the database");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("time");
    let hash = vhod::authn::password::hasher::hash_blocking(PASSWORD).expect("a hash");
    let run = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>| {
        let pool = pool.clone();
        async move { q.execute(&pool).await.expect("today's row") }
    };
    run(sqlx::query(
        "INSERT INTO accounts (id, username, password_hash, phone, phone_verified, email, \
         email_verified, given_name, family_name, roles, status, created_at, updated_at) \
         VALUES ('p1', 'olga', $1, '+375297000002', 1, 'olga@example.by', 1, 'Ольга', \
         'Кузнецова', '[\"applicant\"]', 'active', $2, $2)",
    )
    .bind(hash)
    .bind(now))
    .await;
    run(sqlx::query(
        "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, \
         expires_at) VALUES ('s1', 'p1', $1, 'low', '[\"pwd\"]', 'password', $1, $2)",
    )
    .bind(now)
    .bind(now + 3600))
    .await;
    // She also signs in through an upstream (НПЭС), and the session was made that way.
    run(sqlx::query(
        "INSERT INTO upstream_identities (upstream, issuer, subject, account_id, \
         personal_number, created_at, last_login_at) \
         VALUES ('npes', 'https://npes.example.by', 'n-1', 'p1', NULL, $1, $1)",
    )
    .bind(now))
    .await;
    run(sqlx::query(
        "INSERT INTO upstream_sessions (sid, upstream, issuer, subject, upstream_sid, created_at) \
         VALUES ('s1', 'npes', 'https://npes.example.by', 'n-1', 'up-s1', $1)",
    )
    .bind(now))
    .await;
    run(sqlx::query(
        "INSERT INTO grants (id, account_id, client_id, sid, scope, auth_time, acr, amr, \
         created_at, expires_at) VALUES ('g1', 'p1', 'rp', 's1', \
         'openid profile offline_access', $1, 'low', '[\"pwd\"]', $1, $2)",
    )
    .bind(now)
    .bind(now + 86_400))
    .await;
    run(sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
         VALUES ($1, 'g1', $2, $3)",
    )
    .bind(vhod::secrets::token_hash(REFRESH))
    .bind(now)
    .bind(now + 86_400))
    .await;
    // Her earlier sign-ins in the audit trail, from before it was a chain.
    for (kind, outcome) in [("login", "failure"), ("login", "success")] {
        run(sqlx::query(
            "INSERT INTO audit_events (at_ms, kind, outcome, subject, client_id, method, ip) \
             VALUES ($1, $2, $3, 'p1', 'rp', 'password', '203.0.113.5')",
        )
        .bind(now * 1000)
        .bind(kind)
        .bind(outcome))
        .await;
    }
    pool.close().await;
}

async fn todays_database_keeps_working(d: Deployment) {
    let Some((url, own)) = database_at_migration(d.backend, &d, TODAY).await else {
        return;
    };
    todays_rows(&url).await;
    let on_it = [("VHOD_DATABASE_URL", url.as_str())];
    // The client, registered as operators do (the command migrates what it must first).
    let out = d.cli_with(
        &on_it,
        &[
            "client",
            "add",
            "--client-id",
            "rp",
            "--secret",
            RP_SECRET,
            "--redirect-uri",
            RP_REDIRECT,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = d.start_with(&on_it).await;

    // The refresh token of before refreshes.
    let res = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", REFRESH)])
        .send()
        .await
        .expect("POST /token");
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");

    // The person signs in with the password of before.
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let p = authorization(&client, &[], &[]);
    let back = Browser::new()
        .sign_in(&server, &p.url, "olga", PASSWORD)
        .await;
    assert!(!code_from(&server, &back, &p).is_empty());
    drop(server);
    // The audit trail of before is chained, first, and the whole chain holds.
    let out = d.cli_with(&on_it, &["audit", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("chain: seq 1 to "), "{said}");
    drop(own);
}
both_backends!(
    a_database_of_todays_release_migrates_and_keeps_working,
    super::todays_database_keeps_working
);
