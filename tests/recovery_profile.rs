//! "Forgot password" by SMS code and by email link, and the profile page (contacts and
//! notification channels), against real servers; codes and links are read from the outbox.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessToken, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeVerifier,
    RefreshToken,
};
use vhod::notify::{Channel, OutboxEntry};

const NEW_PASSWORD: &str = "зялёны конь шпацыруе па мосце";
const OTHER_PASSWORD: &str = "another long passphrase of mine";

/// The last message sent to `to` by `channel`.
fn last_to(d: &Deployment, channel: Channel, to: &str) -> OutboxEntry {
    d.outbox()
        .into_iter()
        .rev()
        .find(|m| m.channel == channel && m.to == to)
        .unwrap_or_else(|| panic!("no {channel:?} message to {to}: {:?}", d.outbox()))
}

fn code_in(body: &str) -> String {
    let digits: Vec<char> = body.chars().collect();
    let mut run = String::new();
    for c in digits {
        if c.is_ascii_digit() {
            run.push(c);
        } else if run.len() == 6 {
            return run;
        } else {
            run.clear();
        }
    }
    assert_eq!(run.len(), 6, "no code in {body:?}");
    run
}

fn link_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no link in {body:?}"))
        .to_string()
}

/// The page without its CSRF token (which differs per browser).
fn without_csrf(html: &str) -> String {
    let token = hidden(html, "csrf");
    if token.is_empty() {
        html.to_string()
    } else {
        html.replace(&token, "")
    }
}

async fn post(b: &Browser, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = b.http.post(url).form(form).send().await.expect("POST");
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn get(b: &Browser, url: &str) -> (u16, String) {
    let res = b.get(url).await;
    (res.status().as_u16(), res.text().await.expect("body"))
}

struct Tokens {
    access: AccessToken,
    refresh: Option<RefreshToken>,
}

/// The code flow for "rp" in `browser`, signing in with `password` when asked.
async fn code_flow(
    server: &Server,
    browser: &Browser,
    client: &Rp,
    scopes: &[&str],
    password: &str,
) -> Tokens {
    let p = authorization(client, scopes, &[]);
    let back = browser.sign_in(server, &p.url, USER, password).await;
    let code = code_from(server, &back, &p);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    Tokens {
        access: tokens.access_token().clone(),
        refresh: tokens.refresh_token().cloned(),
    }
}

fn authorize_url(client: &Rp) -> String {
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .url();
    url.to_string()
}

/// Tries a password on a fresh login page: the status of the answer (303 = signed in).
async fn try_password(server: &Server, client: &Rp, password: &str) -> u16 {
    let b = Browser::new();
    let page = b
        .authorize(server, &authorize_url(client))
        .await
        .expect_err("a fresh browser sees the login page");
    b.submit_password(server, &page, USER, password)
        .await
        .status()
        .as_u16()
}

/// Uses a refresh token; the successor when it worked.
async fn refresh(client: &Rp, rt: &RefreshToken) -> Option<RefreshToken> {
    client
        .exchange_refresh_token(rt)
        .expect("token endpoint")
        .request_async(&http())
        .await
        .ok()
        .and_then(|t| t.refresh_token().cloned())
}

async fn userinfo(server: &Server, access: &AccessToken) -> serde_json::Value {
    let res = http()
        .get(server.url("/userinfo"))
        .bearer_auth(access.secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("userinfo JSON")
}

/// Opens /forgot and asks for a code or link; returns the answer.
async fn ask(server: &Server, b: &Browser, login: &str, channel: &str) -> (u16, String) {
    let (status, html) = get(b, &server.url("/forgot?ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf");
    post(
        b,
        &server.url("/forgot"),
        &[
            ("csrf", csrf.as_str()),
            ("ui_locales", "en"),
            ("login", login),
            ("channel", channel),
        ],
    )
    .await
}

async fn reset_by_sms(server: &Server, b: &Browser, code: &str, password: &str) -> (u16, String) {
    let (_, html) = get(b, &server.url("/forgot?ui_locales=en")).await;
    let csrf = hidden(&html, "csrf");
    post(
        b,
        &server.url("/forgot/reset"),
        &[
            ("csrf", csrf.as_str()),
            ("ui_locales", "en"),
            ("code", code),
            ("password", password),
        ],
    )
    .await
}

async fn recovery_by_sms(d: Deployment) {
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let server = d
        .start_as(port, &issuer, &[("VHOD_LOGIN_DELAY_MS", "1")])
        .await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // Signed in before the reset, with a refresh token.
    let a = Browser::new();
    let before = code_flow(&server, &a, &client, &[], PASSWORD).await;
    let rt = before.refresh.expect("a refresh token");
    // Refreshing works before the reset.
    let rt = refresh(&client, &rt)
        .await
        .expect("a refresh before the reset");

    // The form is linked from the login page.
    let page = Browser::new()
        .authorize(&server, &authorize_url(&client))
        .await
        .expect_err("login page");
    assert!(page.html.contains("/forgot?tx="), "{}", page.html);

    // Asking by phone number in another writing.
    let b = Browser::new();
    let (status, html) = ask(&server, &b, "8 (029) 123-45-67", "sms").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"code\""), "the code form: {html}");
    let code = code_in(&last_to(&d, Channel::Sms, PHONE).body);

    // A weak password is refused, and nothing changes: the code stays usable.
    let (status, html) = reset_by_sms(&server, &b, &code, "12345678").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("too common"), "{html}");
    let (status, html) = reset_by_sms(&server, &b, &code, "ivan-my-secret-words").await;
    assert_eq!(status, 400, "personal data refused: {html}");
    assert_eq!(try_password(&server, &client, PASSWORD).await, 303);

    // A locked account: the reset lifts the lock.
    let c = Browser::new();
    let page = c
        .authorize(&server, &authorize_url(&client))
        .await
        .expect_err("login page");
    for _ in 0..10 {
        let r = c
            .submit_password(&server, &page, USER, "wrong password")
            .await;
        assert_eq!(r.status().as_u16(), 401);
    }
    assert_eq!(
        try_password(&server, &client, PASSWORD).await,
        401,
        "locked"
    );

    // A wrong code changes nothing.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html) = reset_by_sms(&server, &b, wrong, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(html.contains("Wrong code"), "{html}");

    let (status, html) = reset_by_sms(&server, &b, &code, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("password was changed"), "{html}");

    // The other channel is told.
    let told = last_to(&d, Channel::Email, "ivan@example.by");
    assert!(told.body.contains("password"), "{told:?}");

    // Everything signed in with the old password has ended.
    assert!(
        refresh(&client, &rt).await.is_none(),
        "refresh token revoked"
    );
    let res = http()
        .get(server.url("/userinfo"))
        .bearer_auth(before.access.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "access token revoked");
    assert!(
        a.authorize(&server, &authorize_url(&client)).await.is_err(),
        "the SSO session ended: the login page again"
    );

    // The old password no longer works, the new one does (and the lock is gone).
    assert_eq!(try_password(&server, &client, PASSWORD).await, 401);
    let fresh = Browser::new();
    code_flow(&server, &fresh, &client, &[], NEW_PASSWORD).await;

    // The code works once: asking again within a minute sends nothing new, the old code fails.
    let sms_before = d.outbox().len();
    let (status, _) = ask(&server, &b, USER, "sms").await;
    assert_eq!(status, 200);
    assert_eq!(d.outbox().len(), sms_before, "no new code within a minute");
    let (status, html) = reset_by_sms(&server, &b, &code, OTHER_PASSWORD).await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(try_password(&server, &client, OTHER_PASSWORD).await, 401);
    assert_eq!(try_password(&server, &client, NEW_PASSWORD).await, 303);

    assert_eq!(
        d.count_events(|e| e.kind == "password_reset" && e.outcome == "success")
            .await,
        1
    );
    assert!(
        d.count_events(|e| e.kind == "password_reset" && e.outcome == "failure")
            .await
            >= 4
    );
}
both_backends!(recovery_by_sms_code, super::recovery_by_sms);

async fn recovery_by_email(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let before = code_flow(&server, &Browser::new(), &client, &[], PASSWORD).await;
    let rt = before.refresh.expect("a refresh token");
    // Refreshing works before the reset.
    let rt = refresh(&client, &rt)
        .await
        .expect("a refresh before the reset");

    let b = Browser::new();
    let (status, html) = ask(&server, &b, "ivan@example.by", "email").await;
    assert_eq!(status, 200, "{html}");
    let mail = last_to(&d, Channel::Email, "ivan@example.by");
    let link = link_in(&mail.body);
    assert!(
        link.starts_with(&server.url("/forgot/email?token=")),
        "{link}"
    );

    // A garbage token is refused.
    let (status, _) = get(&b, &server.url("/forgot/email?token=not-a-real-token")).await;
    assert_eq!(status, 400);

    // The link shows the form without using the token up.
    let (status, html) = get(&b, &link).await;
    assert_eq!(status, 200, "{html}");
    let (status, html) = get(&b, &link).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf");
    let token = hidden(&html, "token");
    assert!(!token.is_empty());

    // No CSRF token: refused, nothing used.
    let (status, _) = post(
        &b,
        &server.url("/forgot/email"),
        &[("token", token.as_str()), ("password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 403);

    // A weak password: refused, the link still works.
    let (status, _) = post(
        &b,
        &server.url("/forgot/email"),
        &[
            ("csrf", csrf.as_str()),
            ("token", token.as_str()),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(status, 400);

    let (status, html) = post(
        &b,
        &server.url("/forgot/email"),
        &[
            ("csrf", csrf.as_str()),
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");

    // The phone is told.
    let sms = last_to(&d, Channel::Sms, PHONE);
    assert!(!sms.body.is_empty());

    // Used once only.
    let (status, _) = post(
        &b,
        &server.url("/forgot/email"),
        &[
            ("csrf", csrf.as_str()),
            ("token", token.as_str()),
            ("password", OTHER_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(&b, &link).await;
    assert_eq!(status, 400);

    assert!(
        refresh(&client, &rt).await.is_none(),
        "refresh token revoked"
    );
    assert_eq!(try_password(&server, &client, PASSWORD).await, 401);
    assert_eq!(try_password(&server, &client, OTHER_PASSWORD).await, 401);
    assert_eq!(try_password(&server, &client, NEW_PASSWORD).await, 303);
}
both_backends!(recovery_by_email_link, super::recovery_by_email);

/// An unknown account gets the same answer as a known one, and nothing is sent.
async fn no_enumeration(d: Deployment) {
    let server = d.start().await;
    for (known, unknown, channel) in [
        (USER, "nobody-here", "sms"),
        ("+375 29 123-45-67", "+375 29 765-43-21", "sms"),
        ("ivan@example.by", "nobody@example.by", "email"),
        (USER, "nobody-here", "email"),
    ] {
        let sent = d.outbox().len();
        let (s1, h1) = ask(&server, &Browser::new(), unknown, channel).await;
        assert_eq!(d.outbox().len(), sent, "nothing sent for {unknown}");
        let (s2, h2) = ask(&server, &Browser::new(), known, channel).await;
        assert_eq!(
            (s1, without_csrf(&h1)),
            (s2, without_csrf(&h2)),
            "{known} / {unknown}"
        );
    }
    // Without the CSRF token the form is refused.
    let (status, _) = post(
        &Browser::new(),
        &server.url("/forgot"),
        &[("login", USER), ("channel", "sms")],
    )
    .await;
    assert_eq!(status, 403);
    // A code for a session that asked about an unknown account never works.
    let b = Browser::new();
    ask(&server, &b, "nobody-here", "sms").await;
    let (status, _) = reset_by_sms(&server, &b, "123456", NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert_eq!(
        d.count_events(
            |e| e.kind == "recovery_request" && e.reason.as_deref() == Some("unknown_account")
        )
        .await,
        5
    );
}
both_backends!(same_answer_for_unknown_accounts, super::no_enumeration);

async fn profile_page(server: &Server, b: &Browser) -> String {
    let (status, html) = get(b, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
    html
}

async fn profile(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;

    // Without a sign-in: refused.
    let stranger = Browser::new();
    let (status, _) = get(&stranger, &server.url("/profile")).await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &stranger,
        &server.url("/profile/notifications"),
        &[("notify_sms", "on")],
    )
    .await;
    assert_eq!(status, 401);

    let b = Browser::new();
    let t = code_flow(
        &server,
        &b,
        &client,
        &["phone", "email", "profile"],
        PASSWORD,
    )
    .await;
    let html = profile_page(&server, &b).await;
    assert!(html.contains("+375 29 ***-**-67"), "{html}");
    assert!(html.contains("i***n@example.by"), "{html}");
    assert!(html.contains("Иванов Иван"), "{html}");
    assert_eq!(userinfo(&server, &t.access).await["notify_sms"], true);
    let csrf = hidden(&html, "csrf");

    // SMS notifications off, then on: the claim follows.
    let (status, html) = post(
        &b,
        &server.url("/profile/notifications"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(userinfo(&server, &t.access).await["notify_sms"], false);
    // Without the CSRF token: refused, nothing changed.
    let (status, _) = post(
        &b,
        &server.url("/profile/notifications"),
        &[("notify_sms", "on")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(userinfo(&server, &t.access).await["notify_sms"], false);
    let (status, _) = post(
        &b,
        &server.url("/profile/notifications"),
        &[("csrf", csrf.as_str()), ("notify_sms", "on")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&server, &t.access).await["notify_sms"], true);

    // Change of phone: invalid numbers refused; a code to the new number.
    let (status, _) = post(
        &b,
        &server.url("/profile/phone"),
        &[("csrf", csrf.as_str()), ("phone", "not a phone")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        &b,
        &server.url("/profile/phone"),
        &[("phone", "+375 33 765-43-21")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, html) = post(
        &b,
        &server.url("/profile/phone"),
        &[("csrf", csrf.as_str()), ("phone", "+375 33 765-43-21")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("/profile/phone/confirm"), "{html}");
    let code = code_in(&last_to(&d, Channel::Sms, "+375337654321").body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html) = post(
        &b,
        &server.url("/profile/phone/confirm"),
        &[("csrf", csrf.as_str()), ("code", wrong)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        html.contains("Осталось попыток: 4"),
        "the attempts left: {html}"
    );
    let (status, html) = post(
        &b,
        &server.url("/profile/phone/confirm"),
        &[("csrf", csrf.as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("+375 33 ***-**-21"), "{html}");
    let told = last_to(&d, Channel::Sms, PHONE);
    assert!(
        told.body.contains("+375 33"),
        "the old number is told: {told:?}"
    );
    let info = userinfo(&server, &t.access).await;
    assert_eq!(info["phone_number"], "+375337654321");
    assert_eq!(info["phone_number_verified"], true);

    // Change of email: a link to the new address; the old one is told.
    let (status, _) = post(
        &b,
        &server.url("/profile/email"),
        &[("csrf", csrf.as_str()), ("email", "not an email")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, html) = post(
        &b,
        &server.url("/profile/email"),
        &[("csrf", csrf.as_str()), ("email", "ivan.new@example.by")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        userinfo(&server, &t.access).await["email"],
        "ivan@example.by",
        "unchanged until the link is opened"
    );
    let link = link_in(&last_to(&d, Channel::Email, "ivan.new@example.by").body);
    assert!(
        link.starts_with(&server.url("/profile/email/confirm?token=")),
        "{link}"
    );
    let (status, html) = get(&Browser::new(), &link).await;
    assert_eq!(status, 200, "{html}");
    let (status, _) = get(&Browser::new(), &link).await;
    assert_eq!(status, 400, "the link works once");
    let told = last_to(&d, Channel::Email, "ivan@example.by");
    assert!(told.body.contains("iv***w@example.by"), "{told:?}");
    let info = userinfo(&server, &t.access).await;
    assert_eq!(info["email"], "ivan.new@example.by");
    assert_eq!(info["email_verified"], true);

    for kind in ["change_phone", "change_email", "profile_notifications"] {
        assert!(
            d.count_events(|e| e.kind == kind && e.outcome == "success")
                .await
                >= 1,
            "{kind} audited"
        );
    }
}
both_backends!(profile_contacts_and_notifications, super::profile);

/// A number or address confirmed for another account answers on the profile page as any other
/// does (the page is no oracle of who is registered): its owner is told instead, no code or link
/// reaches anyone, and no code makes it this account's.
async fn profile_contacts_of_another(d: Deployment) {
    const PETR_PHONE: &str = "+375441112233";
    const PETR_EMAIL: &str = "petr@example.by";
    let out = d.cli(&[
        "user",
        "add",
        "--username",
        "petr",
        "--password",
        OTHER_PASSWORD,
        "--phone",
        "+375 44 111-22-33",
        "--email",
        PETR_EMAIL,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let b = Browser::new();
    code_flow(&server, &b, &client, &["phone"], PASSWORD).await;
    let csrf = hidden(&profile_page(&server, &b).await, "csrf");

    let (status, html) = post(
        &b,
        &server.url("/profile/phone"),
        &[("csrf", csrf.as_str()), ("phone", "+375 44 111-22-33")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("/profile/phone/confirm"), "{html}");
    assert!(html.contains("+375 44 ***-**-33"), "{html}");
    let to_petr: Vec<OutboxEntry> = d
        .outbox()
        .into_iter()
        .filter(|m| m.channel == Channel::Sms && m.to == PETR_PHONE)
        .collect();
    assert_eq!(to_petr.len(), 1, "{to_petr:?}");
    assert!(
        !to_petr[0].body.chars().any(|c| c.is_ascii_digit()),
        "a notice, not a code: {:?}",
        to_petr[0]
    );
    assert!(
        to_petr[0].body.contains("другой учётной записи"),
        "{:?}",
        to_petr[0]
    );
    for code in ["000000", "111111"] {
        let (status, html) = post(
            &b,
            &server.url("/profile/phone/confirm"),
            &[("csrf", csrf.as_str()), ("code", code)],
        )
        .await;
        assert_eq!(status, 400, "no code confirms it: {html}");
    }

    let (status, html) = post(
        &b,
        &server.url("/profile/email"),
        &[("csrf", csrf.as_str()), ("email", "Petr@Example.by")],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("p***r@example.by"), "{html}");
    let to_petr: Vec<OutboxEntry> = d
        .outbox()
        .into_iter()
        .filter(|m| m.channel == Channel::Email && m.to == PETR_EMAIL)
        .collect();
    assert_eq!(to_petr.len(), 1, "{to_petr:?}");
    assert!(
        !to_petr[0].body.contains("token="),
        "a notice, not a link: {:?}",
        to_petr[0]
    );

    assert!(
        !d.account("ivan").await.is_some_and(|ivan| {
            ivan.phone.as_deref() == Some("+375441112233")
                || ivan.email.as_deref() == Some("petr@example.by")
        }),
        "nothing of Petr's became Ivan's"
    );
    assert_eq!(
        d.wait_events(2, |e| {
            e.kind == "notice"
                && e.details
                    .as_deref()
                    .is_some_and(|d| d.contains("contact_attempt"))
        })
        .await,
        2
    );
}
both_backends!(
    profile_contacts_of_another_account_answer_alike,
    super::profile_contacts_of_another
);

// ---------------------------------------------------------------------------------------------
// A page never waits on the SMS provider: its round trip happens only when there is someone to
// write to, so waiting for it would tell by the answer's timing that a login exists.

/// A Twilio stand-in that takes each message and answers only when released.
async fn held_twilio() -> (
    String,
    Arc<tokio::sync::Notify>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use axum::routing::post;
    let release = Arc::new(tokio::sync::Notify::new());
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, s) = (release.clone(), seen.clone());
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        post(move || {
            let (r, s) = (r.clone(), s.clone());
            async move {
                s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r.notified().await;
                (
                    axum::http::StatusCode::CREATED,
                    r#"{"sid":"SM0123","status":"queued"}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, release, seen)
}

async fn recovery_does_not_wait_for_the_provider(d: Deployment) {
    let (base, release, seen) = held_twilio().await;
    let server = d
        .start_with(&[
            ("VHOD_SMS_PROVIDER", "twilio"),
            ("VHOD_TWILIO_API_BASE", &base),
            (
                "VHOD_TWILIO_ACCOUNT_SID",
                "AC0123456789abcdef0123456789abcdef",
            ),
            ("VHOD_TWILIO_AUTH_TOKEN", "twilio-auth-token-0123456789"),
            ("VHOD_TWILIO_FROM", "+375290000000"),
        ])
        .await;
    let b = Browser::new();
    let (status, html) = get(&b, &server.url("/forgot?ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
    // Well under the server's own 5 s provider timeout: an answer that waited for the
    // provider never comes in time.
    let res = b
        .http
        .post(server.url("/forgot"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "en"),
            ("login", USER),
            ("channel", "sms"),
        ])
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("the page answers while the provider still holds the message");
    assert_eq!(res.status().as_u16(), 200);
    for _ in 0..100 {
        if seen.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the code went to the provider"
    );
    assert_eq!(
        d.count_events(|e| e.kind == "sms_code").await,
        0,
        "its outcome is audited once the provider has answered"
    );
    release.notify_one();
    assert_eq!(
        d.wait_events(1, |e| e.kind == "sms_code" && e.outcome == "success")
            .await,
        1
    );
}
both_backends!(
    recovery_answers_before_the_sms_provider,
    super::recovery_does_not_wait_for_the_provider
);
