//! Federated login with another `vhod serve` as the upstream OpenID provider: the downstream
//! (the deployment under test, on both backends) signs people in through it, and its relying
//! client sees only the downstream's tokens.
//!
//! The upstream answers on `localhost`, the downstream on `127.0.0.1`: a cookie jar keeps
//! cookies by host and not by port, and both name their cookie `vhod`.

mod common;

use common::*;

const UP_CLIENT_SECRET: &str = "vhod-downstream-secret-0123456789abcdef";

/// The upstream vhod, with the downstream registered as its client; its seeded person is
/// USER / PASSWORD, Иван Иванов with a confirmed email.
async fn upstream(downstream_port: u16) -> (Deployment, Server) {
    let up = Deployment::new(Backend::Sqlite).await.expect("SQLite");
    up.append_config(&format!(
        r#"
[[clients]]
client_id = "vhod-downstream"
secret = "{UP_CLIENT_SECRET}"
redirect_uris = ["http://127.0.0.1:{downstream_port}/login/upstream/vhod/callback"]
backchannel_logout_uri = "http://127.0.0.1:{downstream_port}/login/upstream/vhod/backchannel_logout"
"#
    ));
    let port = free_port();
    let mut server = up
        .start_as(port, &format!("http://localhost:{port}"), &[])
        .await;
    // The browser must come to it under the name its cookies are set for.
    server.base = server.issuer.clone();
    (up, server)
}

/// `[[upstream]]` for the upstream vhod, with its acr values mapped one to one up to `top`.
fn upstream_settings(issuer: &str, top: &str) -> String {
    let map = match top {
        "substantial" => r#"{ low = "low", substantial = "substantial" }"#,
        _ => r#"{ low = "low", substantial = "substantial", high = "high" }"#,
    };
    format!(
        r#"
[[upstream]]
name = "vhod"
kind = "oidc"
issuer = "{issuer}"
client_id = "vhod-downstream"
client_secret = "{UP_CLIENT_SECRET}"
scopes = ["openid", "profile", "email"]
display_name = {{ ru = "Вход через соседний vhod", be = "Уваход праз суседні vhod", en = "Sign in with the other vhod" }}
timeout_ms = 3000
[upstream.claims]
family_name = "family_name"
given_name = "given_name"
email = "email"
email_verified = "email_verified"
[upstream.acr]
default = "low"
map = {map}

[[upstream]]
name = "down"
kind = "oidc"
issuer = "http://127.0.0.1:{closed}"
client_id = "vhod-downstream"
client_secret = "unused"
display_name = "Вход через неработающий"
timeout_ms = 1000
[upstream.acr]
default = "substantial"
"#,
        closed = free_port(),
    )
}

/// The downstream under test and the upstream (server, and its deployment to keep while the
/// test runs), configured; `top` caps what the upstream's acr may map to.
async fn downstream(d: &Deployment, top: &str) -> (Server, Server, Deployment) {
    let port = free_port();
    let (up_d, up) = upstream(port).await;
    d.append_config(&upstream_settings(&up.issuer, top));
    let down = d
        .start_as(port, &format!("http://127.0.0.1:{port}"), &[])
        .await;
    (down, up, up_d)
}

/// From the downstream's login page through the upstream's password form and back: the
/// downstream's redirect to its client (or the answer it gave instead).
async fn through_upstream(
    browser: &Browser,
    down: &Server,
    up: &Server,
    page: &LoginPage,
) -> reqwest::Response {
    let start = browser
        .get(&down.url(&href(&page.html, "upstream-vhod")))
        .await;
    assert_eq!(
        start.status().as_u16(),
        303,
        "the start sends the browser away"
    );
    let to_upstream = location(&start);
    assert!(to_upstream.starts_with(&up.issuer), "{to_upstream}");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&to_upstream, p).is_some(), "{p} in {to_upstream}");
    }
    assert_eq!(
        param(&to_upstream, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let callback = match browser.authorize(up, &to_upstream).await {
        Err(up_page) => {
            let res = browser.submit_password(up, &up_page, USER, PASSWORD).await;
            assert_eq!(res.status().as_u16(), 303);
            location(&res)
        }
        // Still signed in there (single sign-on at the upstream): it answers at once.
        Ok(callback) => callback,
    };
    assert!(
        callback.starts_with(&down.url("/login/upstream/vhod/callback?")),
        "{callback}"
    );
    browser.get(&callback).await
}

/// A person signs in to the downstream's client through the upstream: a new applicant account
/// with the upstream's names and confirmed email, acr as mapped, amr `fed`; the next login
/// through it finds the same account.
async fn signs_in_through_the_upstream(d: Deployment) {
    let (down, up, _up) = downstream(&d, "high").await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let mut subs = Vec::new();
    let browser = Browser::new();
    for round in 0..2 {
        if round == 1 {
            // Signed out here; still signed in at the upstream, which the page offers to end.
            let html = profile_page(&browser, &down).await;
            let csrf = csrf_in(&html);
            let res = post_profile(
                &browser,
                &down,
                "/end_session",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
            assert_eq!(res.status().as_u16(), 200);
            let html = res.text().await.expect("the signed-out page");
            let offered = href(&html, "upstream-logout");
            assert!(offered.starts_with(&up.url("/end_session")), "{offered}");
            assert_eq!(
                param(&offered, "client_id").as_deref(),
                Some("vhod-downstream")
            );
        }
        let p = authorization(&client, &[], &[]);
        let page = browser
            .authorize(&down, &p.url)
            .await
            .expect_err("a login page");
        assert!(
            page.html.contains("Вход через соседний vhod"),
            "the button: {}",
            page.html
        );
        let back = through_upstream(&browser, &down, &up, &page).await;
        assert_eq!(
            back.status().as_u16(),
            303,
            "{}",
            back.text().await.unwrap_or_default()
        );
        let claims = redeem_code(&down, &location(&back), &p).await;
        assert_eq!(
            claims.issuer().as_str(),
            down.issuer,
            "the client sees only the downstream"
        );
        assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("low"));
        let amr: Vec<String> = (claims.auth_method_refs().into_iter().flatten())
            .map(|a| a.as_str().to_string())
            .collect();
        assert_eq!(amr, ["fed"], "round {round}");
        subs.push(claims.subject().as_str().to_string());
    }
    assert_eq!(
        subs[0], subs[1],
        "the second login finds the account of the first"
    );
    let seeded = d.account(USER).await.expect("the downstream's own Ivan");
    assert_ne!(
        subs[0], seeded.id,
        "never linked by email or name to the password account"
    );
    let acc = d
        .store()
        .await
        .accounts()
        .find_by_id(&subs[0])
        .await
        .expect("store")
        .expect("the new account");
    assert!(
        acc.username.starts_with("~ivanov.ivan."),
        "{}",
        acc.username
    );
    assert_eq!(acc.given_name.as_deref(), Some("Иван"));
    assert_eq!(acc.roles, ["applicant"]);
    assert!(acc.password_hash.is_none());
    let logins = d
        .wait_events(2, |e| {
            e.kind == "login" && e.outcome == "success" && e.method.as_deref() == Some("upstream")
        })
        .await;
    assert_eq!(logins, 2);
    let created = d
        .count_events(|e| e.kind == "account_created" && e.subject.as_deref() == Some(&subs[0]))
        .await;
    assert_eq!(created, 1);
}
both_backends!(
    signs_in_through_the_upstream_vhod,
    super::signs_in_through_the_upstream
);

/// The callback is answered once and only in the browser that set off: a replayed callback,
/// and one opened in another browser (login CSRF), are refused and audited.
async fn a_callback_counts_once_and_in_its_browser(d: Deployment) {
    let (down, up, _up) = downstream(&d, "high").await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let start = browser
        .get(&down.url(&href(&page.html, "upstream-vhod")))
        .await;
    let up_page = browser
        .authorize(&up, &location(&start))
        .await
        .expect_err("the upstream's login page");
    let res = browser.submit_password(&up, &up_page, USER, PASSWORD).await;
    let callback = location(&res);

    // Another browser brings the callback first: it set off on nothing.
    let other = Browser::new();
    let res = other.get(&callback).await;
    assert_eq!(res.status().as_u16(), 400);
    let html = res.text().await.expect("page");
    assert!(html.contains("начат в другом окне"), "{html}");
    // The state is spent by it: the right browser cannot use it after a stranger did.
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 400, "spent");
    let mismatches = d
        .wait_events(2, |e| {
            e.kind == "login" && e.reason.as_deref() == Some("state_mismatch")
        })
        .await;
    assert_eq!(mismatches, 2);
    assert_eq!(
        d.store()
            .await
            .upstream_identities()
            .count()
            .await
            .expect("count"),
        0,
        "nothing half-made"
    );
}
both_backends!(
    a_callback_counts_once_and_in_its_browser_vhod,
    super::a_callback_counts_once_and_in_its_browser
);

/// The person cancels at the upstream: a clear page, audited `upstream_denied`; going back to
/// the service tells the client `access_denied` with its state.
async fn a_declined_login_goes_back_as_access_denied(d: Deployment) {
    let (down, up, _up) = downstream(&d, "high").await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[("ui_locales", "en")]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let start = browser
        .get(&down.url(&href(&page.html, "upstream-vhod")))
        .await;
    let up_page = browser
        .authorize(&up, &location(&start))
        .await
        .expect_err("the upstream's login page");
    // At the upstream the person gives up: it tells the downstream access_denied.
    let res = browser
        .get(&up.url(&format!("/login/cancel?tx={}", up_page.tx)))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let callback = location(&res);
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 403);
    let html = res.text().await.expect("page");
    assert!(
        html.contains("“Sign in with the other vhod”: signing in was cancelled."),
        "{html}"
    );
    let ways = links(&html);
    assert!(
        ways.iter()
            .any(|l| l.starts_with("/login/upstream/vhod?tx=")),
        "{ways:?}"
    );
    assert!(ways.iter().any(|l| l.starts_with("/login?tx=")), "{ways:?}");
    let cancel = ways
        .iter()
        .find(|l| l.starts_with("/login/cancel?tx="))
        .expect("back to the service");
    let res = browser.get(&down.url(cancel)).await;
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(back.starts_with(RP_REDIRECT), "{back}");
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some(p.state.as_str()));
    let denied = d
        .wait_events(1, |e| {
            e.kind == "login" && e.reason.as_deref() == Some("upstream_denied")
        })
        .await;
    assert_eq!(denied, 1);
}
both_backends!(
    a_declined_login_goes_back_as_access_denied_vhod,
    super::a_declined_login_goes_back_as_access_denied
);

/// An upstream that does not answer: a page at once (bounded by its timeout) with the other
/// ways, audited `upstream_unavailable`; and an upstream that cannot give what the client
/// needs is not offered, and refused if asked for directly.
async fn unreachable_or_too_weak_upstreams_fail_closed(d: Deployment) {
    let (down, _up, _up_d) = downstream(&d, "substantial").await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let started = std::time::Instant::now();
    let res = browser
        .get(&down.url(&href(&page.html, "upstream-down")))
        .await;
    assert_eq!(res.status().as_u16(), 502);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no hanging request"
    );
    let html = res.text().await.expect("page");
    assert!(html.contains("сейчас не отвечает"), "{html}");
    assert!(links(&html).iter().any(|l| l.starts_with("/login?tx=")));
    let down_events = d
        .wait_events(1, |e| e.reason.as_deref() == Some("upstream_unavailable"))
        .await;
    assert_eq!(down_events, 1);

    // acr high: neither upstream can give it.
    let p = authorization(&client, &[], &[("acr_values", "high")]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    assert!(
        !page.html.contains("upstream-vhod"),
        "not offered: {}",
        page.html
    );
    let res = browser
        .get(&down.url(&format!("/login/upstream/vhod?tx={}", page.tx)))
        .await;
    assert_eq!(res.status().as_u16(), 403);
    let too_low = d
        .wait_events(1, |e| {
            e.kind == "login" && e.reason.as_deref() == Some("acr_too_low")
        })
        .await;
    assert_eq!(too_low, 1);
    let res = browser.get(&down.url("/login/upstream/nobody?tx=x")).await;
    assert!(res.status().is_client_error());
}
both_backends!(
    unreachable_or_too_weak_upstreams_fail_closed_vhod,
    super::unreachable_or_too_weak_upstreams_fail_closed
);

/// The profile's form for `upstream` on the page `html`: its CSRF token.
async fn profile_page(browser: &Browser, down: &Server) -> String {
    let res = browser.get(&down.url("/profile")).await;
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.expect("profile")
}

async fn post_profile(
    browser: &Browser,
    down: &Server,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .http
        .post(down.url(path))
        .form(form)
        .send()
        .await
        .expect("POST")
}

/// At the upstream after the link's start: its login form filled in; the callback URL.
async fn upstream_answer(browser: &Browser, up: &Server, start: reqwest::Response) -> String {
    assert_eq!(start.status().as_u16(), 303, "off to the upstream");
    let up_page = match browser.authorize(up, &location(&start)).await {
        Err(p) => p,
        // Signed in there already: it answers at once.
        Ok(callback) => return callback,
    };
    let res = browser.submit_password(up, &up_page, USER, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    location(&res)
}

/// The owner links the upstream identity from the profile, after a fresh password sign-in:
/// from then on a login through the upstream is their account. The link's proof counts once,
/// dies with an unlink, and an account made by an upstream cannot use that login to link more,
/// nor unlink its last way in.
async fn the_owner_links_from_the_profile(d: Deployment) {
    let (down, up, _up) = downstream(&d, "high").await;
    let ivan = d.account(USER).await.expect("the downstream's Ivan").id;
    let browser = signed_in_browser(&down).await;
    let html = profile_page(&browser, &down).await;
    assert!(
        html.contains("upstream-vhod"),
        "the upstream on the profile: {html}"
    );
    let csrf = csrf_in(&html);
    let link = [("csrf", csrf.as_str()), ("upstream", "vhod")];
    let start = post_profile(&browser, &down, "/profile/upstream/link", &link).await;
    let callback = upstream_answer(&browser, &up, start).await;
    // Another browser cannot finish it.
    let res = Browser::new().get(&callback).await;
    assert_eq!(res.status().as_u16(), 400);
    // (That spent the state; the owner sets off again.)
    let start = post_profile(&browser, &down, "/profile/upstream/link", &link).await;
    let callback = upstream_answer(&browser, &up, start).await;
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 200);
    let text = res.text().await.expect("page");
    assert!(text.contains("привязан к вашей учётной записи"), "{text}");
    // Used: the same answer again is refused.
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 400, "a proof counts once");
    let linked = d
        .wait_events(1, |e| {
            e.kind == "upstream_linked"
                && e.outcome == "success"
                && e.subject.as_deref() == Some(&ivan)
        })
        .await;
    assert_eq!(linked, 1);
    // Ivan hears of it by his confirmed email (and phone).
    let told = wait_for(
        || async {
            d.sent_to(vhod::notify::Channel::Email, "ivan@example.by")
                .iter()
                .filter(|m| m.body.contains("привязан вход"))
                .count() as i64
        },
        |n| n >= 1,
    )
    .await;
    assert_eq!(told, 1, "the owner is told of the new link");

    // A login through the upstream is now Ivan's.
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let other = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = other
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let back = through_upstream(&other, &down, &up, &page).await;
    let claims = redeem_code(&down, &location(&back), &p).await;
    assert_eq!(claims.subject().as_str(), ivan);

    // A link set off, then an unlink before the answer: the answer no longer counts.
    let html = profile_page(&browser, &down).await;
    let start = post_profile(&browser, &down, "/profile/upstream/link", &link).await;
    let pending = upstream_answer(&browser, &up, start).await;
    let subject = hidden(&html, "subject");
    assert!(!subject.is_empty(), "the link listed: {html}");
    let unlink = [
        ("csrf", csrf.as_str()),
        ("upstream", "vhod"),
        ("subject", subject.as_str()),
    ];
    let res = post_profile(&browser, &down, "/profile/upstream/unlink", &unlink).await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(
        other.get(&down.url("/profile")).await.status().as_u16(),
        401,
        "the session the unlinked identity made has ended"
    );
    assert_eq!(
        browser.get(&down.url("/profile")).await.status().as_u16(),
        200,
        "the owner's own session goes on"
    );
    let res = browser.get(&pending).await;
    assert_eq!(res.status().as_u16(), 400, "voided by the unlink");
    let voided = d
        .wait_events(1, |e| e.reason.as_deref() == Some("link_proof_invalid"))
        .await;
    assert_eq!(voided, 1);
    assert_eq!(
        d.store()
            .await
            .upstream_identities()
            .of_account(&ivan)
            .await
            .expect("links")
            .len(),
        0
    );

    // An account the upstream made: its upstream sign-in does not prove the account for a
    // link, and its only way in cannot be unlinked.
    let made = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = made
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    // Ivan at the upstream is not linked any more: a new account.
    let back = through_upstream(&made, &down, &up, &page).await;
    let sub = redeem_code(&down, &location(&back), &p)
        .await
        .subject()
        .as_str()
        .to_string();
    assert_ne!(sub, ivan);
    let html = profile_page(&made, &down).await;
    let csrf = csrf_in(&html);
    let res = post_profile(
        &made,
        &down,
        "/profile/upstream/link",
        &[("csrf", csrf.as_str()), ("upstream", "down")],
    )
    .await;
    assert_eq!(
        res.status().as_u16(),
        403,
        "a fresh sign-in of the account is asked"
    );
    let subject = hidden(&html, "subject");
    let res = post_profile(
        &made,
        &down,
        "/profile/upstream/unlink",
        &[
            ("csrf", csrf.as_str()),
            ("upstream", "vhod"),
            ("subject", subject.as_str()),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 409, "the last way in stays");
}
both_backends!(
    the_owner_links_from_the_profile_vhod,
    super::the_owner_links_from_the_profile
);

/// The person logs out at the upstream: its back-channel logout token ends the session its
/// login made here (the profile is closed, the logout audited with its cause); a replayed or
/// forged token is refused and audited.
async fn an_upstream_logout_ends_the_sessions_it_made(d: Deployment) {
    let (down, up, _up) = downstream(&d, "high").await;
    let client = rp(&down, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &[], &[]);
    let page = browser
        .authorize(&down, &p.url)
        .await
        .expect_err("a login page");
    let back = through_upstream(&browser, &down, &up, &page).await;
    redeem_code(&down, &location(&back), &p).await;
    assert_eq!(
        browser.get(&down.url("/profile")).await.status().as_u16(),
        200
    );

    // At the upstream: its logout page, confirmed.
    let res = browser.get(&up.url("/end_session")).await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.expect("the upstream's logout page");
    let csrf = hidden(&html, "csrf");
    let res = browser
        .http
        .post(up.url("/end_session"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .expect("POST");
    assert!(res.status().is_success() || res.status().is_redirection());
    let ended = d
        .wait_events(1, |e| {
            e.kind == "logout"
                && e.outcome == "success"
                && e.details
                    .as_ref()
                    .is_some_and(|x| x.contains("\"cause\":\"upstream_logout\""))
        })
        .await;
    assert_eq!(ended, 1, "the downstream's session ended");
    assert_eq!(
        browser.get(&down.url("/profile")).await.status().as_u16(),
        401,
        "signed out here too"
    );

    // Anyone else posting a token: refused.
    let res = http()
        .post(down.url("/login/upstream/vhod/backchannel_logout"))
        .form(&[("logout_token", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 400);
    let refused = d
        .wait_events(1, |e| e.kind == "logout" && e.outcome == "failure")
        .await;
    assert_eq!(refused, 1);
}
both_backends!(
    an_upstream_logout_ends_the_sessions_it_made_vhod,
    super::an_upstream_logout_ends_the_sessions_it_made
);
