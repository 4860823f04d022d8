//! Citizen accounts under attack: the password hasher's memory and its share for sign-ins,
//! login timing and lock-out alike for existing and unknown logins, recovery budgets, contacts
//! that pending registrations cannot squat, email case, and lock-out notices.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// `rp`'s authorization URL; `prompt=login` so every round shows the form.
fn authorize_url(server: &Server, state: &str) -> String {
    format!(
        "{}?response_type=code&client_id=rp&redirect_uri={}&scope=openid&state={state}",
        server.url("/authorize"),
        url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>()
    )
}

/// A fresh browser's login page.
async fn login_page(server: &Server, browser: &Browser, state: &str) -> LoginPage {
    match browser
        .authorize(server, &authorize_url(server, state))
        .await
    {
        Err(page) => page,
        Ok(loc) => panic!("expected the login page, got a redirect to {loc}"),
    }
}

/// One sign-in in a fresh browser: the status of the password answer.
async fn sign_in_once(server: &Server, user: &str, password: &str) -> u16 {
    let b = Browser::new();
    let page = login_page(server, &b, "m").await;
    b.submit_password(server, &page, user, password)
        .await
        .status()
        .as_u16()
}

const MIB: u64 = 1024;

/// The documented bound (README, "Password hashing and memory"): resident memory after any
/// number of sign-ins stays under 64 MiB plus 20 MiB per hasher slot (argon2's 19 MiB working
/// memory, allocated once per slot and reused).
fn memory_bound_kib(slots: u64) -> u64 {
    64 * MIB + slots * 20 * MIB
}

/// A thousand sign-ins, sixteen at a time: the server's resident memory stays within the bound.
/// Memory does not depend on the backend, so this runs on SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stays_bounded_after_a_thousand_logins() {
    let Some(d) = Deployment::new(Backend::Sqlite).await else {
        return;
    };
    let slots = 2u64;
    let server = Arc::new(
        d.start_with(&[
            ("VHOD_PASSWORD_MAX_CONCURRENT", "2"),
            ("VHOD_PASSWORD_MAX_QUEUE", "64"),
        ])
        .await,
    );
    let (rss0, _) = server.memory_kib().expect("/proc/<pid>/status");
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..16 {
        let server = server.clone();
        workers.push(tokio::spawn(async move {
            let mut ok = 0u32;
            for _ in 0..63 {
                if sign_in_once(&server, USER, PASSWORD).await == 303 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for w in workers {
        ok += w.await.expect("worker");
    }
    let (rss, hwm) = server.memory_kib().expect("/proc/<pid>/status");
    eprintln!(
        "memory: {ok} sign-ins in {:?}; VmRSS {} KiB at start, {rss} KiB after, VmHWM {hwm} KiB; bound {} KiB",
        started.elapsed(),
        rss0,
        memory_bound_kib(slots)
    );
    assert!(ok >= 1000, "only {ok} of 1008 sign-ins succeeded");
    assert!(
        rss <= memory_bound_kib(slots) && hwm <= memory_bound_kib(slots),
        "VmRSS {rss} KiB / VmHWM {hwm} KiB over the bound of {} KiB",
        memory_bound_kib(slots)
    );
}

// ---------------------------------------------------------------------------------------------
// Pages, forms and the outbox.

use vhod::notify::{Channel, OutboxEntry};

const OLGA_PHONE: &str = "+375 (33) 765-43-21";
const OLGA_PHONE_E164: &str = "+375337654321";
const OLGA_EMAIL: &str = "olga@example.by";
const OLGA_PASSWORD: &str = "вясна прыйдзе ў Мінск";

/// Waits (bounded) until `to` has received `n` messages by `channel`; returns them.
async fn wait_sent(d: &Deployment, channel: Channel, to: &str, n: usize) -> Vec<OutboxEntry> {
    for _ in 0..100 {
        let got = d.sent_to(channel, to);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.sent_to(channel, to)
}

/// The six-digit code in an SMS, if it carries one.
fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_string)
}

fn link_in(body: &str) -> Option<String> {
    body.split_whitespace()
        .find(|w| w.starts_with("http"))
        .map(str::to_string)
}

/// A page with what differs between two browsers and two logins taken out: the CSRF token,
/// the login transaction and the login that was typed.
fn comparable(html: &str, typed: &str) -> String {
    let mut out = html.to_string();
    for v in [hidden(html, "csrf"), hidden(html, "tx")] {
        if !v.is_empty() {
            out = out.replace(&v, "");
        }
    }
    out.replace(typed, "")
}

async fn get(b: &Browser, url: &str) -> (u16, String) {
    let res = b.get(url).await;
    (res.status().as_u16(), res.text().await.expect("body"))
}

async fn post(b: &Browser, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let res = b.http.post(url).form(form).send().await.expect("POST");
    let status = res.status().as_u16();
    let loc = location(&res);
    (status, loc, res.text().await.expect("body"))
}

struct Form<'a> {
    phone: &'a str,
    email: &'a str,
    username: &'a str,
    password: &'a str,
}

const OLGA: Form<'static> = Form {
    phone: OLGA_PHONE,
    email: OLGA_EMAIL,
    username: "olga.k",
    password: OLGA_PASSWORD,
};

/// Registers in `b` (Russian pages): (status, location, page).
async fn register(server: &Server, b: &Browser, f: &Form<'_>) -> (u16, String, String) {
    let (status, html) = get(b, &server.url("/register?ui_locales=ru")).await;
    assert_eq!(status, 200);
    post(
        b,
        &server.url("/register"),
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "ru"),
            ("family_name", "Кавалёва"),
            ("given_name", "Вольга"),
            ("middle_name", ""),
            ("phone", f.phone),
            ("email", f.email),
            ("username", f.username),
            ("password", f.password),
            ("consent", "on"),
        ],
    )
    .await
}

/// Submits an SMS code on the registration's confirmation page: (status, page).
async fn confirm_code(server: &Server, b: &Browser, code: &str) -> (u16, String) {
    let (_, page) = get(b, &server.url("/register/confirm?ui_locales=ru")).await;
    let (status, _, html) = post(
        b,
        &server.url("/register/confirm"),
        &[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("ui_locales", "ru"),
            ("code", code),
        ],
    )
    .await;
    (status, html)
}

/// "Forgot password" for `login` by `channel` in `b`: (status, page).
async fn forgot(server: &Server, b: &Browser, login: &str, channel: &str) -> (u16, String) {
    let (status, html) = get(b, &server.url("/forgot?ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
    let (status, _, html) = post(
        b,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "en"),
            ("login", login),
            ("channel", channel),
        ],
    )
    .await;
    (status, html)
}

/// The SMS code step of recovery in `b`: (status, page).
async fn reset(server: &Server, b: &Browser, code: &str, password: &str) -> (u16, String) {
    let (_, html) = get(b, &server.url("/forgot?ui_locales=en")).await;
    let (status, _, html) = post(
        b,
        &server.url("/forgot/reset"),
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "en"),
            ("code", code),
            ("password", password),
        ],
    )
    .await;
    (status, html)
}

/// A password login in a fresh browser: (status, page, seconds it took).
async fn timed_login(server: &Server, user: &str, password: &str) -> (u16, String, Duration) {
    let b = Browser::new();
    let page = login_page(server, &b, "t").await;
    let started = Instant::now();
    let res = b.submit_password(server, &page, user, password).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default(), took)
}

// ---------------------------------------------------------------------------------------------
// Item 2: the hasher's share for sign-ins and per-IP limits on hashing endpoints.

/// A flood of registrations (every one valid, so every one hashed) cannot make a concurrent
/// real sign-in get 503: sign-ins have their own queue and a reserved slot.
async fn registration_flood(d: Deployment) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let server = Arc::new(
        d.start_with(&[
            ("VHOD_PASSWORD_MAX_CONCURRENT", "2"),
            ("VHOD_PASSWORD_MAX_QUEUE", "4"),
            ("VHOD_REGISTER_PER_IP_HOUR", "1000"),
            ("VHOD_SMS_PER_IP_HOUR", "1000"),
        ])
        .await,
    );
    // The sign-ins' forms first, so that only their password step meets the flood.
    let mut pages = Vec::new();
    for i in 0..8 {
        let b = Browser::new();
        let page = login_page(&server, &b, &format!("f{i}")).await;
        pages.push((b, page));
    }
    // 24 registering without pause (at most 20 each) until the sign-ins are done: more than
    // the queues hold.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for w in 0..24 {
        let (server, stop, answered) = (server.clone(), stop.clone(), answered.clone());
        flood.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let n = w * 100 + i;
                let phone = format!("+37529{:07}", 2_000_000 + n);
                let (email, username) = (format!("flood{n}@example.by"), format!("flood{n}"));
                let f = Form {
                    phone: &phone,
                    email: &email,
                    username: &username,
                    password: OLGA_PASSWORD,
                };
                statuses.push(register(&server, &Browser::new(), &f).await.0);
                answered.fetch_add(1, Ordering::Relaxed);
            }
            statuses
        }));
    }
    // Sign in once the flood is answering, that is, once it has reached the hasher.
    for _ in 0..200 {
        if answered.load(Ordering::Relaxed) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Four people signing in at once (as many as the sign-ins' queue holds), twice each.
    let mut sign_ins = Vec::new();
    let mut pages = pages.into_iter();
    for _ in 0..4 {
        let server = server.clone();
        let mine: Vec<_> = pages.by_ref().take(2).collect();
        sign_ins.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for (b, page) in mine {
                let res = b.submit_password(&server, &page, USER, PASSWORD).await;
                statuses.push(res.status().as_u16());
            }
            statuses
        }));
    }
    // A registration that a cheap check refuses (a login name taken) is told so during the
    // flood: it never waits for the hasher, so it never gets 503.
    let taken = Form {
        phone: "+375297000001",
        email: "taken@example.by",
        username: USER,
        password: OLGA_PASSWORD,
    };
    let taken = register(&server, &Browser::new(), &taken).await.0;
    let mut statuses = Vec::new();
    for s in sign_ins {
        statuses.extend(s.await.expect("sign-in"));
    }
    stop.store(true, Ordering::Relaxed);
    let mut flood_statuses = Vec::new();
    for f in flood {
        flood_statuses.extend(f.await.expect("registration"));
    }
    assert!(
        statuses.iter().all(|s| *s == 303),
        "sign-ins during the flood: {statuses:?} (registrations: {flood_statuses:?})"
    );
    assert!(
        flood_statuses.contains(&503),
        "the flood filled the hasher: {flood_statuses:?}"
    );
    assert_eq!(taken, 409, "a taken login name during the flood");
}
both_backends!(
    a_registration_flood_never_turns_a_sign_in_away,
    super::registration_flood
);

/// Registrations are limited per IP, before any hashing.
async fn registration_limit(d: Deployment) {
    let server = d.start_with(&[("VHOD_REGISTER_PER_IP_HOUR", "2")]).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let phone = format!("+37529{:07}", 3_000_000 + i);
        let (email, username) = (format!("lim{i}@example.by"), format!("lim{i}"));
        let f = Form {
            phone: &phone,
            email: &email,
            username: &username,
            password: OLGA_PASSWORD,
        };
        let (status, _, html) = register(&server, &Browser::new(), &f).await;
        statuses.push(status);
        if i == 2 {
            assert!(html.contains("Слишком много запросов"), "{html}");
        }
    }
    assert_eq!(statuses, [303, 303, 429]);
    assert_eq!(
        d.store()
            .await
            .accounts()
            .count_by_status("pending")
            .await
            .unwrap(),
        2
    );
}
both_backends!(registrations_are_limited_per_ip, super::registration_limit);

/// New passwords set by recovery are limited per IP (each is hashed); a reset refused by the
/// limit leaves its code usable.
async fn reset_limit(d: Deployment) {
    let out = d.cli(&[
        "user",
        "add",
        "--username",
        "petr",
        "--password",
        PASSWORD,
        "--phone",
        "+375297777777",
    ]);
    assert!(out.status.success());
    let server = d
        .start_with(&[
            ("VHOD_RESET_PER_IP_HOUR", "1"),
            ("VHOD_TRUST_FORWARDED_FOR", "true"),
        ])
        .await;
    const NEW: &str = "a brand new passphrase here";
    let mut statuses = Vec::new();
    let mut last = None;
    for (login, phone) in [(USER, PHONE), ("petr", "+375297777777")] {
        let b = Browser::new();
        assert_eq!(forgot(&server, &b, login, "sms").await.0, 200);
        let sms = wait_sent(&d, Channel::Sms, phone, 1).await;
        let code = code_in(&sms.last().expect("a code").body).expect("six digits");
        let (status, html) = reset(&server, &b, &code, NEW).await;
        statuses.push(status);
        if login == "petr" {
            assert!(html.contains("Too many requests"), "{html}");
        }
        last = Some((b, code));
    }
    assert_eq!(statuses, [200, 429]);

    // The refused reset did not use the code up: from an address with budget left, it works.
    let (b, code) = last.expect("petr's browser");
    let (_, html) = get(&b, &server.url("/forgot?ui_locales=en")).await;
    let res = b
        .http
        .post(server.url("/forgot/reset"))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "en"),
            ("code", code.as_str()),
            ("password", NEW),
        ])
        .send()
        .await
        .expect("POST /forgot/reset");
    let status = res.status().as_u16();
    assert_eq!(status, 200, "{}", res.text().await.unwrap_or_default());
    assert_eq!(timed_login(&server, "petr", NEW).await.0, 303);
}
both_backends!(password_resets_are_limited_per_ip, super::reset_limit);

// ---------------------------------------------------------------------------------------------
// Item 6: delays and locks by the submitted login, alike for unknown and existing ones.

async fn delays_alike(d: Deployment) {
    let base = Duration::from_millis(600);
    let server = d.start_with(&[("VHOD_LOGIN_DELAY_MS", "600")]).await;
    // An existing login, an unknown one, and unknown and existing phone numbers typed in two
    // writings each (one number, one count).
    let runs: [(&str, [&str; 4]); 4] = [
        ("existing login", [USER; 4]),
        ("unknown login", ["nobody.here"; 4]),
        (
            "unknown phone",
            [
                "+375 29 765-43-21",
                "80297654321",
                "8 (029) 765 43 21",
                "+375297654321",
            ],
        ),
        (
            "existing phone",
            [
                "+375 29 123-45-67",
                "80291234567",
                "8 (029) 123 45 67",
                "375291234567",
            ],
        ),
    ];
    for (what, logins) in runs {
        for (n, login) in logins.iter().enumerate() {
            let (status, _, took) = timed_login(&server, login, "wrong password").await;
            assert_eq!(status, 401, "{what} #{}", n + 1);
            if n >= 2 {
                assert!(
                    took >= base,
                    "{what}: failure #{} answered in {took:?}",
                    n + 1
                );
            }
        }
    }
    assert_eq!(
        d.store().await.accounts().count().await.unwrap(),
        1,
        "no account is made for unknown logins"
    );
}
both_backends!(
    unknown_and_existing_logins_slow_down_alike,
    super::delays_alike
);

async fn locks_alike(d: Deployment) {
    let base = Duration::from_millis(100);
    let server = d
        .start_with(&[
            ("VHOD_LOGIN_DELAY_MS", "100"),
            ("VHOD_LOCKOUT_THRESHOLD", "3"),
        ])
        .await;
    for login in [USER, "nobody.here"] {
        for _ in 0..3 {
            assert_eq!(timed_login(&server, login, "wrong password").await.0, 401);
        }
    }
    // Locked: the right password of the existing login and any password of the unknown one get
    // the same answer, after the same (longest) delay.
    let (s1, p1, t1) = timed_login(&server, USER, PASSWORD).await;
    let (s2, p2, t2) = timed_login(&server, "nobody.here", PASSWORD).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(comparable(&p1, USER), comparable(&p2, "nobody.here"));
    assert!(t1 >= base * 16 && t2 >= base * 16, "{t1:?} {t2:?}");
    let store = d.store().await;
    assert_eq!(store.sso_sessions().count().await.unwrap(), 0);
    assert_eq!(store.accounts().count().await.unwrap(), 1);
}
both_backends!(
    locked_unknown_and_existing_logins_look_alike,
    super::locks_alike
);

// ---------------------------------------------------------------------------------------------
// Item 7: the recovery budget and the next step answer alike.

async fn recovery_alike(d: Deployment) {
    let server = d.start_with(&[("VHOD_SMS_PER_IP_HOUR", "1")]).await;
    // The budget's one SMS goes to the existing account.
    let first = Browser::new();
    let (status, _) = forgot(&server, &first, USER, "sms").await;
    assert_eq!(status, 200);
    assert_eq!(wait_sent(&d, Channel::Sms, PHONE, 1).await.len(), 1);
    // Now spent: existing and unknown logins get identical pages.
    let (s1, p1) = forgot(&server, &Browser::new(), USER, "sms").await;
    let (s2, p2) = forgot(&server, &Browser::new(), "nobody.here", "sms").await;
    assert_eq!((s1, s2), (429, 429));
    assert_eq!(comparable(&p1, USER), comparable(&p2, "nobody.here"));
    assert_eq!(d.sent_to(Channel::Sms, PHONE).len(), 1);
}
both_backends!(recovery_budget_answers_alike, super::recovery_alike);

/// After "forgot password", a wrong code gets the same answer whether a code was sent or the
/// login names nobody.
async fn recovery_next_step_alike(d: Deployment) {
    let server = d.start().await;
    let known = Browser::new();
    assert_eq!(forgot(&server, &known, USER, "sms").await.0, 200);
    let code = code_in(&wait_sent(&d, Channel::Sms, PHONE, 1).await[0].body).expect("a code");
    let unknown = Browser::new();
    assert_eq!(forgot(&server, &unknown, "nobody.here", "sms").await.0, 200);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s1, p1) = reset(&server, &known, wrong, "a brand new passphrase here").await;
    let (s2, p2) = reset(&server, &unknown, wrong, "a brand new passphrase here").await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(comparable(&p1, USER), comparable(&p2, "nobody.here"));
    assert!(p1.contains("Attempts left: 4"), "{p1}");
    // A new password with the login in it is not judged before the code is proven: that would
    // tell that the login names an account.
    let personal = "ivan nobody.here passphrase";
    let (s1, p1) = reset(&server, &known, wrong, personal).await;
    let (s2, p2) = reset(&server, &unknown, wrong, personal).await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(comparable(&p1, USER), comparable(&p2, "nobody.here"));
    assert!(p1.contains("Attempts left: 3"), "{p1}");
    // Asking again within the minute keeps the code (and its attempts) for both.
    assert_eq!(forgot(&server, &known, USER, "sms").await.0, 200);
    assert_eq!(forgot(&server, &unknown, "nobody.here", "sms").await.0, 200);
    let (_, p1) = reset(&server, &known, wrong, "a brand new passphrase here").await;
    let (_, p2) = reset(&server, &unknown, wrong, "a brand new passphrase here").await;
    assert_eq!(comparable(&p1, USER), comparable(&p2, "nobody.here"));
    assert!(p1.contains("Attempts left: 2"), "{p1}");
    // With the code proven, the account's own data are refused, and the code still serves.
    let (status, html) = reset(&server, &known, &code, personal).await;
    assert_eq!(status, 400, "{html}");
    let (status, html) = reset(&server, &known, &code, "a brand new passphrase here").await;
    assert_eq!(status, 200, "{html}");
}
both_backends!(recovery_codes_answer_alike, super::recovery_next_step_alike);

// ---------------------------------------------------------------------------------------------
// Item 8 (and 20): contacts bind once confirmed; a taken one gets a neutral answer.

async fn no_squatting(d: Deployment) {
    let server = d.start().await;
    // Someone registers with Olga's phone and email and never confirms.
    let squatter = Browser::new();
    let squat = Form {
        username: "squatter",
        ..OLGA
    };
    assert_eq!(register(&server, &squatter, &squat).await.0, 303);
    // Olga herself can still register with them, and confirm them.
    let olga = Browser::new();
    let (status, loc, html) = register(&server, &olga, &OLGA).await;
    assert_eq!(status, 303, "{html}");
    assert!(loc.starts_with("/register/confirm"), "{loc}");
    let sms = wait_sent(&d, Channel::Sms, OLGA_PHONE_E164, 2).await;
    let code = code_in(&sms.last().expect("sms").body).expect("a code");
    assert_eq!(confirm_code(&server, &olga, &code).await.0, 200);
    let mail = wait_sent(&d, Channel::Email, OLGA_EMAIL, 2).await;
    let link = link_in(&mail.last().expect("email").body).expect("a link");
    assert_eq!(olga.get(&link).await.status().as_u16(), 200);
    let olga_account = d.account("olga.k").await.expect("Olga's account");
    assert_eq!(olga_account.status, "active");
    // Recovery by the phone number or the address finds Olga's account, not the squatter's.
    assert_eq!(
        forgot(&server, &Browser::new(), "8 033 765-43-21", "sms")
            .await
            .0,
        200
    );
    let sms = wait_sent(&d, Channel::Sms, OLGA_PHONE_E164, 3).await;
    assert_eq!(sms.len(), 3, "a recovery code was sent");
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "recovery_request"
                && e.outcome == "success"
                && e.subject.as_deref() == Some(olga_account.id.as_str())
        })
        .await,
        1
    );
    // The squatter's code no longer confirms the number: it is Olga's now.
    let squat_code = code_in(&sms[0].body).expect("the squatter's code");
    let (status, html) = confirm_code(&server, &squatter, &squat_code).await;
    assert_eq!(status, 409, "{html}");
    assert!(
        d.store()
            .await
            .accounts()
            .find_by_confirmed_phone("+375337654321")
            .await
            .unwrap()
            .is_some()
    );
}
both_backends!(
    pending_registrations_do_not_squat_contacts,
    super::no_squatting
);

async fn neutral_taken(d: Deployment) {
    let server = d.start().await;
    // The harness user's confirmed phone and email (in another case), a new login name: the
    // answer is a fresh registration's, and the owner is told instead of sent a code or link.
    let b = Browser::new();
    let taken = Form {
        phone: "8 029 123-45-67",
        email: "IVAN@Example.BY",
        username: "mallory",
        password: OLGA_PASSWORD,
    };
    let (status, loc, _) = register(&server, &b, &taken).await;
    let fresh = Form {
        username: "fresh.one",
        ..OLGA
    };
    let (fresh_status, fresh_loc, _) = register(&server, &Browser::new(), &fresh).await;
    assert_eq!((status, loc.as_str()), (fresh_status, fresh_loc.as_str()));
    let (_, page) = get(&b, &server.url("/register/confirm?ui_locales=ru")).await;
    assert!(page.contains("+375 29 ***-**-67"), "{page}");
    let sms = wait_sent(&d, Channel::Sms, PHONE, 1).await;
    assert_eq!(sms.len(), 1);
    assert_eq!(code_in(&sms[0].body), None, "no code: {}", sms[0].body);
    assert!(sms[0].body.contains("регистрации"), "{}", sms[0].body);
    let mail = wait_sent(&d, Channel::Email, "ivan@example.by", 1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(link_in(&mail[0].body), None, "no link: {}", mail[0].body);
    assert!(d.sent_to(Channel::Email, "IVAN@example.by").is_empty());
    // A second try the same day tells the owner nothing more.
    let again = Form {
        username: "mallory2",
        ..taken
    };
    assert_eq!(register(&server, &Browser::new(), &again).await.0, 303);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.sent_to(Channel::Sms, PHONE).len(), 1);
    assert_eq!(d.sent_to(Channel::Email, "ivan@example.by").len(), 1);
    // A taken login name is said, by name: registration cannot help telling it.
    let (status, _, html) = register(
        &server,
        &Browser::new(),
        &Form {
            username: USER,
            phone: "+375291000009",
            email: "someone@example.by",
            ..OLGA
        },
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains("«ivan»"), "{html}");
}
both_backends!(
    a_confirmed_contact_gets_a_neutral_answer_and_its_owner_is_told,
    super::neutral_taken
);

async fn expired_absent(d: Deployment) {
    // Long enough for a registration and a login on a busy machine; times are whole seconds.
    let server = d.start_with(&[("VHOD_PENDING_ACCOUNT_TTL", "5")]).await;
    assert_eq!(register(&server, &Browser::new(), &OLGA).await.0, 303);
    // Not yet expired: the right password says how to finish.
    assert_eq!(timed_login(&server, "olga.k", OLGA_PASSWORD).await.0, 403);
    tokio::time::sleep(Duration::from_millis(6100)).await;
    // Expired: as if it did not exist, and its login name is free again.
    let (status, html, _) = timed_login(&server, "olga.k", OLGA_PASSWORD).await;
    assert_eq!(status, 401, "{html}");
    let (status, _, html) = register(&server, &Browser::new(), &OLGA).await;
    assert_eq!(status, 303, "{html}");
    assert!(d.account("olga.k").await.is_some());
}
both_backends!(expired_registrations_are_absent, super::expired_absent);

async fn attempts_left(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    assert_eq!(register(&server, &b, &OLGA).await.0, 303);
    let code = code_in(&wait_sent(&d, Channel::Sms, OLGA_PHONE_E164, 1).await[0].body).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, html) = confirm_code(&server, &b, wrong).await;
    assert_eq!(status, 400);
    assert!(html.contains("Осталось попыток: 4"), "{html}");
    let (_, html) = confirm_code(&server, &b, wrong).await;
    assert!(html.contains("Осталось попыток: 3"), "{html}");
}
both_backends!(
    code_pages_say_how_many_attempts_remain,
    super::attempts_left
);

// ---------------------------------------------------------------------------------------------
// Item 9: a locked pending account answers as any locked one.

async fn locked_pending(d: Deployment) {
    let server = d
        .start_with(&[
            ("VHOD_LOGIN_DELAY_MS", "1"),
            ("VHOD_LOCKOUT_THRESHOLD", "3"),
        ])
        .await;
    assert_eq!(register(&server, &Browser::new(), &OLGA).await.0, 303);
    let mut wrong_page = String::new();
    for _ in 0..3 {
        let (status, html, _) = timed_login(&server, "olga.k", "wrong password").await;
        assert_eq!(status, 401);
        wrong_page = html;
    }
    let (status, html, _) = timed_login(&server, "olga.k", OLGA_PASSWORD).await;
    assert_eq!(status, 401, "{html}");
    assert!(!html.contains("register&#x2f;confirm") && !html.contains("register/confirm"));
    assert_eq!(
        comparable(&html, "olga.k"),
        comparable(&wrong_page, "olga.k")
    );
}
both_backends!(
    a_locked_pending_account_answers_like_any_locked_one,
    super::locked_pending
);

// ---------------------------------------------------------------------------------------------
// Item 10: email addresses without regard to case.

async fn email_case(d: Deployment) {
    let server = d.start().await;
    let (status, html) = forgot(&server, &Browser::new(), "IVAN@EXAMPLE.BY", "email").await;
    assert_eq!(status, 200, "{html}");
    let mail = wait_sent(&d, Channel::Email, "ivan@example.by", 1).await;
    assert!(
        mail.first().and_then(|m| link_in(&m.body)).is_some(),
        "a recovery link to the address as stored"
    );
    // A user added with capitals is stored lower-cased.
    let out = d.cli(&[
        "user",
        "add",
        "--username",
        "alice",
        "--password",
        PASSWORD,
        "--email",
        "Alice@Example.BY",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        d.store()
            .await
            .accounts()
            .count_with_email("alice@example.by")
            .await
            .unwrap(),
        1
    );
}
both_backends!(emails_compare_without_case, super::email_case);

// ---------------------------------------------------------------------------------------------
// Item 15: lock-out notices once per episode and day, within the SMS budget; a lock ends with
// a fresh count.

async fn lock_notices(d: Deployment) {
    let out = d.cli(&[
        "user",
        "add",
        "--username",
        "petr",
        "--password",
        PASSWORD,
        "--phone",
        "+375297777777",
    ]);
    assert!(out.status.success());
    let server = d
        .start_with(&[
            ("VHOD_LOGIN_DELAY_MS", "1"),
            ("VHOD_LOCKOUT_THRESHOLD", "3"),
            ("VHOD_LOCKOUT_SECONDS", "2"),
            ("VHOD_SMS_PER_IP_HOUR", "1"),
            ("VHOD_SMS_GLOBAL_HOUR", "2"),
        ])
        .await;
    // The guesser spends their address's SMS budget first (one recovery code)...
    assert_eq!(forgot(&server, &Browser::new(), USER, "sms").await.0, 200);
    assert_eq!(wait_sent(&d, Channel::Sms, PHONE, 1).await.len(), 1);
    // ...which does not keep the owner from being told of the lock.
    for _ in 0..3 {
        assert_eq!(timed_login(&server, USER, "wrong password").await.0, 401);
    }
    assert_eq!(wait_sent(&d, Channel::Sms, PHONE, 2).await.len(), 2);
    assert_eq!(
        wait_sent(&d, Channel::Email, "ivan@example.by", 1)
            .await
            .len(),
        1
    );
    // The notice took the hour's second and last SMS: the next lock's owner gets none.
    for _ in 0..3 {
        assert_eq!(timed_login(&server, "petr", "wrong password").await.0, 401);
    }
    assert_eq!(d.wait_events(2, |e| e.kind == "account_locked").await, 2);
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "notice" && e.reason.as_deref() == Some("sms_limit_global")
        })
        .await,
        1,
        "the lock-out SMS was charged to the budget"
    );
    assert!(d.sent_to(Channel::Sms, "+375297777777").is_empty());
    // The lock ends; the count starts again: one more failure does not lock.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(timed_login(&server, USER, "wrong password").await.0, 401);
    assert_eq!(timed_login(&server, USER, PASSWORD).await.0, 303);
    // A second lock episode the same day: recorded, but the owner is not told again.
    for _ in 0..3 {
        assert_eq!(timed_login(&server, USER, "wrong password").await.0, 401);
    }
    assert_eq!(d.wait_events(3, |e| e.kind == "account_locked").await, 3);
    assert_eq!(d.sent_to(Channel::Sms, PHONE).len(), 2);
    assert_eq!(d.sent_to(Channel::Email, "ivan@example.by").len(), 1);
}
both_backends!(lock_notices_once_per_episode_and_day, super::lock_notices);

// ---------------------------------------------------------------------------------------------
// Migration 0005 on existing rows (items 8 and 10).

/// A database as a release before migration 0005 left it: migrations 1–3 applied, with sqlx's
/// bookkeeping, so that vhod applies the rest itself when it starts.
async fn legacy_database(
    backend: Backend,
    d: &Deployment,
) -> Option<(String, Option<OwnDatabase>)> {
    let (url, pg_name) = database_at_migration(backend, d, 3).await?;
    let pool = sqlx::AnyPool::connect(&url).await.expect("legacy database");
    // Rows as the old code stored them: emails in any case (unique only case-sensitively),
    // a pending registration holding a phone number, a session referring to an account.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for (id, phone, pv, email, ev, status, age) in [
        ("a", None, 0, Some("Petr@Example.by"), 1, "active", 50),
        ("b", None, 0, Some("petr@example.by"), 1, "active", 40),
        ("c", None, 0, Some("PETR@example.by"), 0, "pending", 30),
        ("d", Some("+375291110000"), 0, None, 0, "pending", 20),
        ("e", None, 0, Some("Ёлка@example.by"), 1, "active", 10),
    ] {
        let created = now - age;
        sqlx::query(
            "INSERT INTO accounts (id, username, phone, phone_verified, email, email_verified, \
             status, created_at, updated_at) VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id)
        .bind(phone)
        .bind(pv)
        .bind(email)
        .bind(ev)
        .bind(status)
        .bind(created)
        .execute(&pool)
        .await
        .expect("legacy row");
    }
    sqlx::query(
        "INSERT INTO sso_sessions (sid, account_id, auth_time, acr, amr, method, created_at, \
         expires_at) VALUES ('s1', 'a', 1, 'low', '[]', 'password', 1, 9999999999)",
    )
    .execute(&pool)
    .await
    .expect("legacy session");
    pool.close().await;
    Some((url, pg_name))
}

async fn migration_on_existing_rows(backend: Backend) {
    let Some(d) = Deployment::new(backend).await else {
        return;
    };
    let Some((url, pg_name)) = legacy_database(backend, &d).await else {
        return;
    };
    let server = d.start_with(&[("VHOD_DATABASE_URL", url.as_str())]).await;
    // The server has migrated the database; the store reads it as it does.
    let store = vhod::store::sql::Db::connect(&url)
        .await
        .expect("the migrated database");
    let accounts = store.accounts();
    let email_confirmed = async |id: &str| {
        accounts
            .find_by_id(id)
            .await
            .unwrap()
            .is_some_and(|a| a.email_verified)
    };
    // Lower-cased; of the confirmed duplicates, the oldest account keeps its confirmation.
    assert_eq!(
        accounts.count_with_email("petr@example.by").await.unwrap(),
        3
    );
    assert!(email_confirmed("a").await);
    assert!(!email_confirmed("b").await && !email_confirmed("c").await);
    // Non-ASCII capitals are folded by vhod itself, at its first upkeep.
    let mut folded = false;
    for _ in 0..100 {
        folded = accounts
            .find_by_confirmed_email("ёлка@example.by")
            .await
            .unwrap()
            .is_some();
        if folded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(folded, "{}", server.logs());
    // The session still refers to its account; the unconfirmed number no longer binds.
    assert_eq!(store.sso_sessions().count().await.unwrap(), 1);
    let session = store
        .sso_sessions()
        .find_not_ended("s1")
        .await
        .unwrap()
        .expect("the session");
    assert!(
        accounts
            .find_by_id(&session.account_id)
            .await
            .unwrap()
            .is_some()
    );
    let pool = sqlx::AnyPool::connect(&url).await.expect("db");
    sqlx::query(
        "INSERT INTO accounts (id, username, phone, phone_verified, status, created_at, updated_at) \
         VALUES ('f', 'f', '+375291110000', 0, 'pending', $1, $1)",
    )
    .bind(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0))
    .execute(&pool)
    .await
    .expect("a second unconfirmed holder of the number");
    if backend == Backend::Sqlite {
        let broken = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&pool)
            .await
            .expect("foreign_key_check");
        assert!(broken.is_empty(), "foreign keys intact");
    }
    // Confirmed numbers stay unique.
    sqlx::query("UPDATE accounts SET phone_verified = 1 WHERE id = 'd'")
        .execute(&pool)
        .await
        .expect("confirming one");
    assert!(
        sqlx::query("UPDATE accounts SET phone_verified = 1 WHERE id = 'f'")
            .execute(&pool)
            .await
            .is_err(),
        "a second confirmed holder is refused"
    );
    pool.close().await;
    drop(server);
    drop(pg_name);
}

mod migration_0005_on_existing_rows {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::migration_on_existing_rows(super::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        super::migration_on_existing_rows(super::Backend::Shared).await;
    }
}
