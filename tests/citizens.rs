//! Citizen registration confirmed by SMS and email, and the brute-force and SMS-pumping limits,
//! with their numbers. Messages are read from the dev outbox, as a developer would.

mod common;

use common::*;
use vhod::notify::{Channel, OutboxEntry};

const NEW_PHONE: &str = "+375 (33) 765-43-21";
const NEW_PHONE_E164: &str = "+375337654321";
const NEW_EMAIL: &str = "olga@example.by";
const NEW_PASSWORD: &str = "вясна прыйдзе ў Мінск";

fn last_to(d: &Deployment, channel: Channel, to: &str) -> Option<OutboxEntry> {
    d.outbox()
        .into_iter()
        .rev()
        .find(|e| e.channel == channel && e.to == to)
}

fn sms_code(e: &OutboxEntry) -> String {
    e.body
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect()
}

fn email_link(e: &OutboxEntry) -> String {
    e.body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .expect("a link in the email")
        .to_string()
}

async fn pending_accounts(d: &Deployment) -> i64 {
    d.store()
        .await
        .accounts()
        .count_by_status("pending")
        .await
        .unwrap()
}

/// Opens an authorization URL that must show the login page.
async fn login_page(server: &Server, browser: &Browser, state: &str) -> LoginPage {
    match browser
        .authorize(server, &authorize_url(server, state))
        .await
    {
        Err(page) => page,
        Ok(loc) => panic!("expected the login page, got a redirect to {loc}"),
    }
}

fn authorize_url(server: &Server, state: &str) -> String {
    format!(
        "{}?response_type=code&client_id=rp&redirect_uri={}&scope=openid%20profile%20email%20phone&state={state}",
        server.url("/authorize"),
        url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>()
    )
}

struct Form<'a> {
    family: &'a str,
    given: &'a str,
    phone: &'a str,
    email: &'a str,
    username: &'a str,
    password: &'a str,
}

const OLGA: Form<'static> = Form {
    family: "Кавалёва",
    given: "Вольга",
    phone: NEW_PHONE,
    email: NEW_EMAIL,
    username: "olga.k",
    password: NEW_PASSWORD,
};

async fn register(server: &Server, browser: &Browser, tx: &str, f: &Form<'_>) -> reqwest::Response {
    let page = browser
        .get(&server.url(&format!("/register?tx={tx}&ui_locales=be")))
        .await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Рэгістрацыя"), "Belarusian page");
    browser
        .http
        .post(server.url("/register"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "be"),
            ("family_name", f.family),
            ("given_name", f.given),
            ("middle_name", ""),
            ("phone", f.phone),
            ("email", f.email),
            ("username", f.username),
            ("password", f.password),
            ("consent", "on"),
        ])
        .send()
        .await
        .unwrap()
}

async fn confirm_code(server: &Server, browser: &Browser, code: &str) -> reqwest::Response {
    let page = browser
        .get(&server.url("/register/confirm"))
        .await
        .text()
        .await
        .unwrap();
    browser
        .http
        .post(server.url("/register/confirm"))
        .form(&[("csrf", hidden(&page, "csrf").as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

async fn registration(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let page = login_page(&server, &browser, "s1").await;
    assert!(
        page.html.contains("/register?tx="),
        "the login page links to registration"
    );

    let res = register(&server, &browser, &page.tx, &OLGA).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(location(&res).starts_with("/register/confirm"));
    assert_eq!(pending_accounts(&d).await, 1);

    let sms = last_to(&d, Channel::Sms, NEW_PHONE_E164).expect("an SMS with a code");
    let code = sms_code(&sms);
    assert_eq!(code.len(), 6);
    let mail = last_to(&d, Channel::Email, NEW_EMAIL).expect("a confirmation email");
    let link = email_link(&mail);

    // Until both are confirmed, the password alone does not sign in to any client.
    let other = Browser::new();
    let login = login_page(&server, &other, "s2").await;
    let res = other
        .submit_password(&server, &login, "olga.k", NEW_PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 403);
    let html = res.text().await.unwrap().replace("&#x2f;", "/");
    assert!(
        html.contains("/register/confirm"),
        "the person is told how to finish: {html}"
    );

    // The SMS code, then the email link.
    let res = confirm_code(&server, &browser, &code).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(d.account("olga.k").await.is_some_and(|a| a.phone_verified));
    assert_eq!(pending_accounts(&d).await, 1);
    let res = browser.get(&link).await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap().replace("&#x2f;", "/");
    assert!(
        html.contains("/login?tx="),
        "the confirmation page continues the sign-in"
    );
    assert!(
        d.account("olga.k")
            .await
            .is_some_and(|a| a.status == "active")
    );
    // The link is single-use.
    assert_eq!(browser.get(&link).await.status().as_u16(), 400);

    // Now a login through the relying client, with the phone number in national writing.
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let b2 = Browser::new();
    let back = b2
        .sign_in(
            &server,
            &authorize_url(&server, "s3"),
            "8 033 765-43-21",
            NEW_PASSWORD,
        )
        .await;
    let code = param(&back, "code").expect("a code");
    let tokens = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status().as_u16(), 200);
    let tokens: serde_json::Value = tokens.json().await.unwrap();
    let info: serde_json::Value = http()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["phone_number"], NEW_PHONE_E164);
    assert_eq!(info["phone_number_verified"], true);
    assert_eq!(info["email"], NEW_EMAIL);
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["family_name"], "Кавалёва");
    drop(client);
}
both_backends!(register_confirm_and_sign_in, super::registration);

async fn registration_input(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let page = login_page(&server, &browser, "s").await;
    let bad: Vec<(Form<'_>, &str)> = vec![
        (Form { family: "", ..OLGA }, "прозвішча"),
        (
            Form {
                family: "<script>alert(1)</script>",
                ..OLGA
            },
            "прозвішча",
        ),
        (
            Form {
                phone: "+375 17 123-45-67",
                ..OLGA
            },
            "SMS",
        ),
        (
            Form {
                phone: "12",
                ..OLGA
            },
            "нумар",
        ),
        (
            Form {
                phone: "'; DROP TABLE accounts; --",
                ..OLGA
            },
            "нумар",
        ),
        (
            Form {
                email: "not-an-email",
                ..OLGA
            },
            "адрас",
        ),
        (
            Form {
                email: "Olga <olga@example.by>",
                ..OLGA
            },
            "адрас",
        ),
        (
            Form {
                username: "a",
                ..OLGA
            },
            "Лагін",
        ),
        (
            Form {
                username: "375291112233",
                ..OLGA
            },
            "Лагін",
        ),
        (
            Form {
                password: "short",
                ..OLGA
            },
            "8",
        ),
        (
            Form {
                password: "password123",
                ..OLGA
            },
            "распаўсюджаны",
        ),
        (
            Form {
                password: "olga.k is me 2024",
                ..OLGA
            },
            "лагін",
        ),
        // The harness user's login name is taken, and said by name. (A taken phone or email
        // gets a neutral answer: see accounts_hardening.rs.)
        (
            Form {
                username: USER,
                ..OLGA
            },
            "«ivan»",
        ),
    ];
    for (form, expected) in &bad {
        let res = register(&server, &browser, &page.tx, form).await;
        let status = res.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{status} for {:?}",
            form.phone
        );
        let html = res.text().await.unwrap();
        assert!(
            html.contains(expected),
            "expected {expected:?} in the page: {status} {html}"
        );
        assert!(!html.contains("<script>alert"), "input is escaped");
    }
    // Missing CSRF token.
    let res = browser
        .http
        .post(server.url("/register"))
        .form(&[("family_name", "Кавалёва"), ("given_name", "Вольга")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // Invalid UTF-8.
    let res = browser
        .http
        .post(server.url("/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family_name=%FF")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        d.store().await.accounts().count().await.unwrap(),
        1,
        "nothing stored"
    );
    assert!(d.outbox().is_empty(), "nothing sent");
}
both_backends!(registration_refuses_bad_input, super::registration_input);

/// OTP: 5 attempts, then a new code; resend at most once a minute.
async fn otp_limits(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let page = login_page(&server, &browser, "s").await;
    assert_eq!(
        register(&server, &browser, &page.tx, &OLGA)
            .await
            .status()
            .as_u16(),
        303
    );
    let code = sms_code(&last_to(&d, Channel::Sms, NEW_PHONE_E164).unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let res = confirm_code(&server, &browser, wrong).await;
        assert_eq!(res.status().as_u16(), 400);
    }
    let fifth = confirm_code(&server, &browser, wrong)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        fifth.contains("Занадта шмат") || fifth.contains("Слишком много"),
        "5th wrong attempt ends the code"
    );
    // The right code no longer works after 5 wrong ones.
    let res = confirm_code(&server, &browser, &code).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(!d.account("olga.k").await.is_some_and(|a| a.phone_verified));
    // A resend within 60 s of the first code is refused.
    let page = browser
        .get(&server.url("/register/confirm"))
        .await
        .text()
        .await
        .unwrap();
    let res = browser
        .http
        .post(server.url("/register/confirm"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("action", "resend_sms"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let sms_count = d
        .outbox()
        .iter()
        .filter(|e| e.channel == Channel::Sms)
        .count();
    assert_eq!(sms_count, 1, "no second SMS within a minute");
    assert!(
        d.wait_events_at_least(5, |e| e.kind == "confirm_phone" && e.outcome == "failure")
            .await
            >= 5
    );
}
both_backends!(otp_attempts_and_resend_limits, super::otp_limits);

/// 10 consecutive failures lock the account for 15 minutes; the owner is told at once; the
/// answer stays the generic one, even with the right password.
async fn lockout(d: Deployment) {
    let server = d.start_with(&[("VHOD_LOGIN_DELAY_MS", "1")]).await;
    let browser = Browser::new();
    let mut generic = None;
    for i in 0..10 {
        let page = login_page(&server, &browser, &format!("l{i}")).await;
        let res = browser
            .submit_password(&server, &page, USER, "wrong password")
            .await;
        assert_eq!(res.status().as_u16(), 401);
        let html = res.text().await.unwrap();
        let msg = html
            .split("class=\"error\"")
            .nth(1)
            .map(|s| s.split("</p>").next().unwrap_or("").to_string());
        generic.get_or_insert(msg.clone());
        assert_eq!(generic.as_ref(), Some(&msg), "the same message every time");
    }
    // The owner is told in the background, so that the answer does not wait for it.
    assert_eq!(d.wait_events(1, |e| e.kind == "account_locked").await, 1);
    let sms = last_to(&d, Channel::Sms, PHONE).expect("the owner is told by SMS");
    assert!(sms.body.contains("15"), "{}", sms.body);
    assert!(
        last_to(&d, Channel::Email, "ivan@example.by").is_some(),
        "and by email"
    );

    // The right password now gets the same generic answer.
    let page = login_page(&server, &browser, "lx").await;
    let res = browser
        .submit_password(&server, &page, USER, PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 401);
    let html = res.text().await.unwrap();
    let msg = html
        .split("class=\"error\"")
        .nth(1)
        .map(|s| s.split("</p>").next().unwrap_or("").to_string());
    assert_eq!(generic.as_ref(), Some(&msg));
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.reason.as_deref() == Some("account_locked"))
            .await,
        1
    );
    assert_eq!(d.store().await.sso_sessions().count().await.unwrap(), 0);

    // An unknown login gets the very same answer (no enumeration).
    let page = login_page(&server, &browser, "ly").await;
    let res = browser
        .submit_password(&server, &page, "nobody-here", PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 401);
    let html = res.text().await.unwrap();
    let msg = html
        .split("class=\"error\"")
        .nth(1)
        .map(|s| s.split("</p>").next().unwrap_or("").to_string());
    assert_eq!(generic.as_ref(), Some(&msg));
}
both_backends!(ten_failures_lock_the_account, super::lockout);

/// SMS pumping: with 2 SMS per IP and hour, the third registration gets no SMS.
async fn sms_pumping(d: Deployment) {
    let server = d.start_with(&[("VHOD_SMS_PER_IP_HOUR", "2")]).await;
    for (i, phone) in ["+375291000001", "+375291000002", "+375291000003"]
        .iter()
        .enumerate()
    {
        let browser = Browser::new();
        let page = login_page(&server, &browser, "p").await;
        let username = format!("pump{i}");
        let email = format!("pump{i}@example.by");
        let res = register(
            &server,
            &browser,
            &page.tx,
            &Form {
                phone,
                email: &email,
                username: &username,
                ..OLGA
            },
        )
        .await;
        assert_eq!(res.status().as_u16(), 303);
        let note = location(&res);
        if i < 2 {
            assert!(!note.contains("note="), "{note}");
        } else {
            assert!(
                note.contains("note=sms_limit"),
                "the third is refused: {note}"
            );
        }
    }
    let sms = d
        .outbox()
        .iter()
        .filter(|e| e.channel == Channel::Sms)
        .count();
    assert_eq!(sms, 2);
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "sms_code" && e.reason.as_deref() == Some("sms_limit_ip")
        })
        .await,
        1
    );
}
both_backends!(sms_budget_per_ip, super::sms_pumping);
