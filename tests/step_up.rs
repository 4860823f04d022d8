//! Step-up to a certificate sign-in (acr high): requested with acr_values, required by a client
//! (min_acr) or by the account's role (employee). A password session is sent back to the login
//! page, where the certificate of the same person is linked to the account; a certificate of
//! someone else, or one already linked elsewhere, is refused with reason `policy`.
//!
//! Certificates and signatures come from the reference vectors (tests/vectors/bign); extra
//! people get a bign PKI of their own made with `vhod::pki::issue`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use common::certs::*;
use common::*;
use openidconnect::core::CoreIdTokenClaims;
use openidconnect::{AuthorizationCode, PkceCodeVerifier, TokenResponse};
use serde_json::{Value, json};

const CITIZEN_PN: &str = "3010185A001PB3";

// ---------------------------------------------------------------------------------------------
// Deployments trusting the vectors' root (and its CRL) and our own PKI (common::certs)
// ---------------------------------------------------------------------------------------------

/// Like `both_backends!`, with a deployment that trusts the vectors' PKI.
macro_rules! both_trusting {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(d) = super::trusting(super::Backend::Sqlite).await {
                    $body(d).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                if let Some(d) = super::trusting(super::Backend::Shared).await {
                    $body(d).await;
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Certificate holders
// ---------------------------------------------------------------------------------------------

/// The page with its transaction and CSRF token filled in even when it has no password form
/// (the step-up page carries them in its URL and `<meta>`), for posting a password anyway.
fn filled(page: LoginPage) -> LoginPage {
    LoginPage {
        csrf: csrf_of(&page),
        tx: if page.tx.is_empty() {
            tx_of(&page.url)
        } else {
            page.tx.clone()
        },
        ..page
    }
}

/// Does the page ask for a certificate? After a password that was not enough it offers only
/// the certificate; on a fresh sign-in for a client that needs one, the password form stays
/// (with a hint), so a person with a password account can prove it first and link the
/// certificate to it.
fn is_step_up(page: &LoginPage) -> bool {
    let notice = page.html.contains("id=\"step-up\"");
    let password_form = page.html.contains("action=\"/login/password\"");
    if notice && password_form {
        assert!(
            page.html.contains("будет привязан"),
            "a certificate-only client's page with a password form explains linking: {}",
            page.html
        );
    }
    if !notice {
        assert!(password_form, "an ordinary login page: {}", page.html);
    }
    notice
}

/// The page of a person who has just proved their password: the certificate only.
fn offers_only_the_certificate(page: &LoginPage) -> bool {
    is_step_up(page) && !page.html.contains("action=\"/login/password\"")
}

/// `Browser::authorize` answers: a redirect to the client, or the login page.
trait Answer {
    fn redirected(self, what: &str) -> String;
}

impl Answer for Result<String, LoginPage> {
    fn redirected(self, what: &str) -> String {
        match self {
            Ok(loc) => loc,
            Err(page) => panic!("{what}: got the login page {}", page.url),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The relying party
// ---------------------------------------------------------------------------------------------

fn code_at(server: &Server, back: &str, p: &Pending, redirect: &str) -> String {
    assert!(back.starts_with(redirect), "back to the client: {back}");
    code_from(server, back, p)
}

/// Redeems the code and verifies the ID token: (claims, raw payload).
async fn redeem(client: &Rp, code: &str, p: &Pending) -> (CoreIdTokenClaims, Value) {
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &p.nonce)
        .expect("ID token verifies")
        .clone();
    let payload = id_token.to_string();
    let part = payload.split('.').nth(1).expect("JWT payload");
    let raw: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url"),
    )
    .expect("JSON payload");
    (claims, raw)
}

fn acr(c: &CoreIdTokenClaims) -> Option<String> {
    c.auth_context_ref().map(|a| a.as_str().to_string())
}

fn amr(c: &CoreIdTokenClaims) -> Vec<String> {
    c.auth_method_refs()
        .map(|v| v.iter().map(|a| a.as_str().to_string()).collect())
        .unwrap_or_default()
}

fn sub(c: &CoreIdTokenClaims) -> String {
    c.subject().as_str().to_string()
}

/// A password sign-in for `client` in `browser` that must end at the client: (sub, acr).
async fn password_sign_in(
    server: &Server,
    browser: &Browser,
    client: &Rp,
    user: &str,
    password: &str,
) -> String {
    let p = authorization(client, &["profile"], &[]);
    let back = browser.sign_in(server, &p.url, user, password).await;
    let code = code_at(server, &back, &p, RP_REDIRECT);
    let (claims, _) = redeem(client, &code, &p).await;
    assert_eq!(acr(&claims).as_deref(), Some("low"));
    assert_eq!(amr(&claims), ["pwd"]);
    sub(&claims)
}

fn add_user(d: &Deployment, username: &str, given: &str, family: &str, roles: &[&str]) {
    let mut args = vec![
        "user",
        "add",
        "--username",
        username,
        "--password",
        PASSWORD,
        "--given-name",
        given,
        "--family-name",
        family,
    ];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = d.cli(&args);
    assert!(
        out.status.success(),
        "user add {username}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn account_id(d: &Deployment, username: &str) -> String {
    d.account(username).await.expect("the account").id
}

/// How many identity keys the account has.
async fn identities_of(d: &Deployment, account: &str) -> i64 {
    let keys = d.store().await.certificates().keys_of(account).await;
    keys.expect("the identities").len() as i64
}

/// 1 when the unscoped key of the personal number is the account's, else 0.
async fn owner_count(d: &Deployment, account: &str, pn: &str) -> i64 {
    let key = format!("pn:{pn}");
    let owner = d.store().await.certificates().owner(&key).await;
    i64::from(owner.expect("the identities").as_deref() == Some(account))
}

async fn all_identities(d: &Deployment) -> i64 {
    d.store().await.certificates().count().await.unwrap()
}

async fn accounts(d: &Deployment) -> i64 {
    d.store().await.accounts().count().await.unwrap()
}

/// The step-up's password POST: 303 back to the login page of the same transaction.
async fn password_then_step_up(
    server: &Server,
    browser: &Browser,
    page: &LoginPage,
    user: &str,
) -> LoginPage {
    let res = browser.submit_password(server, page, user, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303, "password login");
    let loc = location(&res);
    assert!(
        loc.starts_with("/login?"),
        "a password is not enough: back to the login page, not {loc}"
    );
    assert_eq!(tx_of(&loc), page.tx, "the same transaction continues");
    let again = browser.login_page(&server.url(&loc)).await;
    assert!(
        offers_only_the_certificate(&again),
        "the page offers only the certificate"
    );
    again
}

// ---------------------------------------------------------------------------------------------
// 1. acr_values=high after a password sign-in: the citizen's certificate is linked
// ---------------------------------------------------------------------------------------------

async fn step_up_links_the_certificate(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let ivan = password_sign_in(&server, &browser, &client, USER, PASSWORD).await;
    assert_eq!(ivan, account_id(&d, USER).await);
    let before = accounts(&d).await;

    // The password session is not enough for acr high: the login page again, certificate only.
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = match browser.authorize(&server, &p.url).await {
        Err(page) => page,
        Ok(loc) => panic!("a password session must not satisfy acr high: {loc}"),
    };
    assert!(offers_only_the_certificate(&page), "step-up page");
    assert_eq!(identities_of(&d, &ivan).await, 0);

    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    let code = code_at(&server, &back, &p, RP_REDIRECT);
    let (claims, raw) = redeem(&client, &code, &p).await;
    assert_eq!(acr(&claims).as_deref(), Some("high"), "{raw}");
    assert_eq!(amr(&claims), ["hwk"], "{raw}");
    assert_eq!(
        sub(&claims),
        ivan,
        "the same account, now with its certificate"
    );
    assert_eq!(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Иван")
    );

    assert_eq!(owner_count(&d, &ivan, CITIZEN_PN).await, 1);
    assert_eq!(all_identities(&d).await, 1);
    assert_eq!(accounts(&d).await, before, "no account was created");
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "certificate_linked" && e.subject.as_deref() == Some(ivan.as_str())
        })
        .await,
        1
    );

    // The browser's session is now a certificate one: acr high at once.
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let back = browser
        .authorize(&server, &p.url)
        .await
        .unwrap_or_else(|_| panic!("the certificate session satisfies acr high"));
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(acr(&claims).as_deref(), Some("high"));
    assert_eq!(sub(&claims), ivan);

    // Later, in a fresh browser, the certificate alone finds the same account.
    for raw_signature in [false, true] {
        let fresh = Browser::new();
        let p = authorization(&client, &["profile"], &[]);
        let page = match fresh.authorize(&server, &p.url).await {
            Err(page) => page,
            Ok(loc) => panic!("a fresh browser must sign in: {loc}"),
        };
        assert!(!is_step_up(&page), "no step-up for an ordinary request");
        let (status, body) = cert_attempt(
            &server,
            &fresh,
            &page,
            &Holder::vector("citizen"),
            raw_signature,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let back = body["redirect"].as_str().expect("redirect");
        let (claims, _) = redeem(&client, &code_at(&server, back, &p, RP_REDIRECT), &p).await;
        assert_eq!(sub(&claims), ivan, "raw={raw_signature}");
        assert_eq!(acr(&claims).as_deref(), Some("high"));
        assert_eq!(amr(&claims), ["hwk"]);
    }
    assert_eq!(accounts(&d).await, before, "still no new account");
    assert_eq!(all_identities(&d).await, 1);
}
both_trusting!(
    step_up_links_the_certificate,
    super::step_up_links_the_certificate
);

// ---------------------------------------------------------------------------------------------
// 2. Name mismatch: Пётр Сидоров cannot take Иванов Иван's certificate
// ---------------------------------------------------------------------------------------------

async fn name_mismatch_is_refused(d: Deployment) {
    add_user(&d, "petr", "Пётр", "Сидоров", &[]);
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let petr = account_id(&d, "petr").await;
    let before = accounts(&d).await;

    // acr_values=high in a fresh browser: the page shows the certificate first; a password
    // sign-in anyway (the form's POST still works) continues the same transaction.
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = match browser.authorize(&server, &p.url).await {
        Err(page) => page,
        Ok(loc) => panic!("must sign in: {loc}"),
    };
    assert!(is_step_up(&page));
    let page = filled(page);
    let page = password_then_step_up(&server, &browser, &page, "petr").await;

    let (status, body) =
        cert_attempt(&server, &browser, &page, &Holder::vector("citizen"), false).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "policy", "{body}");
    assert_eq!(all_identities(&d).await, 0, "nothing linked");
    assert_eq!(identities_of(&d, &petr).await, 0);
    assert_eq!(accounts(&d).await, before, "no account created either");
    assert_eq!(
        d.wait_events(1, |e| {
            e.kind == "login"
                && e.outcome == "failure"
                && e.reason.as_deref() == Some("policy")
                && e.method.as_deref() == Some("certificate")
        })
        .await,
        1
    );

    // Refused once, refused again (the challenge is fresh each time); still nothing linked.
    let (status, body) =
        cert_attempt(&server, &browser, &page, &Holder::vector("citizen"), true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("policy")),
        "{body}"
    );
    assert_eq!(all_identities(&d).await, 0);

    // Пётр's password session still does not satisfy acr high.
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("still a step-up");
    assert!(offers_only_the_certificate(&page));
}
both_trusting!(name_mismatch_is_refused, super::name_mismatch_is_refused);

// ---------------------------------------------------------------------------------------------
// 3. A certificate already linked to another account
// ---------------------------------------------------------------------------------------------

async fn certificate_of_another_account(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = account_id(&d, USER).await;
    let before = accounts(&d).await;

    // Account A: made by a certificate sign-in with no account behind it.
    let a_browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = a_browser
        .authorize(&server, &p.url)
        .await
        .expect_err("login page");
    let back = cert_sign_in(&server, &a_browser, &page, &Holder::vector("citizen")).await;
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    let a = sub(&claims);
    assert_ne!(a, ivan, "a new account, not found by name");
    assert_eq!(accounts(&d).await, before + 1);
    assert_eq!(owner_count(&d, &a, CITIZEN_PN).await, 1);
    assert_eq!(acr(&claims).as_deref(), Some("high"));

    // Account B (ivan, whose names match the certificate) steps up with it: refused.
    let b_browser = Browser::new();
    password_sign_in(&server, &b_browser, &client, USER, PASSWORD).await;
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = b_browser
        .authorize(&server, &p.url)
        .await
        .expect_err("step-up");
    assert!(offers_only_the_certificate(&page));
    let (status, body) = cert_attempt(
        &server,
        &b_browser,
        &page,
        &Holder::vector("citizen"),
        false,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "policy", "{body}");
    assert_eq!(owner_count(&d, &a, CITIZEN_PN).await, 1, "still A's");
    assert_eq!(identities_of(&d, &ivan).await, 0);
    assert_eq!(all_identities(&d).await, 1);
    assert_eq!(accounts(&d).await, before + 1);

    // A signs in again with the certificate: still A.
    let again = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = again.authorize(&server, &p.url).await.expect_err("login");
    let back = cert_sign_in(&server, &again, &page, &Holder::vector("citizen")).await;
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(sub(&claims), a);
}
both_trusting!(
    certificate_of_another_account,
    super::certificate_of_another_account
);

// ---------------------------------------------------------------------------------------------
// 4. A client that requires acr high
// ---------------------------------------------------------------------------------------------

async fn client_min_acr_high(d: Deployment) {
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "strict",
        "--public",
        "--redirect-uri",
        RP_REDIRECT,
        "--min-acr",
        "high",
    ]);
    assert!(
        out.status.success(),
        "client add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = d.start().await;
    let strict = rp(&server, "strict", None, RP_REDIRECT).await;
    let ordinary = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = account_id(&d, USER).await;

    // A fresh browser: the page offers the certificate; a password alone returns to it.
    let browser = Browser::new();
    let p = authorization(&strict, &["profile"], &[]);
    let page = browser.authorize(&server, &p.url).await.expect_err("login");
    assert!(
        is_step_up(&page) && !offers_only_the_certificate(&page),
        "the client requires a certificate; the password may still come first"
    );
    let page = filled(page);
    let page = password_then_step_up(&server, &browser, &page, USER).await;

    // Meanwhile the password session serves clients without the requirement.
    let p_low = authorization(&ordinary, &["profile"], &[]);
    let back = browser
        .authorize(&server, &p_low.url)
        .await
        .redirected("the password session is enough for rp");
    let (claims, _) = redeem(
        &ordinary,
        &code_at(&server, &back, &p_low, RP_REDIRECT),
        &p_low,
    )
    .await;
    assert_eq!(acr(&claims).as_deref(), Some("low"));

    // The certificate finishes the strict client's sign-in, linked to ivan.
    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    let (claims, _) = redeem(&strict, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(acr(&claims).as_deref(), Some("high"));
    assert_eq!(amr(&claims), ["hwk"]);
    assert_eq!(sub(&claims), ivan);
    assert_eq!(owner_count(&d, &ivan, CITIZEN_PN).await, 1);

    // A password session in another browser never reaches the strict client, even by SSO.
    let other = Browser::new();
    password_sign_in(&server, &other, &ordinary, USER, PASSWORD).await;
    let p = authorization(&strict, &["profile"], &[]);
    let page = other.authorize(&server, &p.url).await.expect_err("step-up");
    assert!(offers_only_the_certificate(&page));
    // ...and prompt=none says so to the client.
    let p = authorization(&strict, &["profile"], &[("prompt", "none")]);
    let back = other
        .authorize(&server, &p.url)
        .await
        .redirected("prompt=none never shows a page");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("interaction_required"),
        "{back}"
    );
    assert_eq!(param(&back, "code"), None);
}
both_trusting!(client_min_acr_high, super::client_min_acr_high);

/// The same requirement written in the configuration file ([[clients]] min_acr = "high").
async fn configured_min_acr_high(d: Deployment) {
    let config = d
        .env
        .iter()
        .find(|(k, _)| k == "VHOD_CONFIG")
        .map(|(_, v)| PathBuf::from(v))
        .expect("config");
    let mut toml = std::fs::read_to_string(&config).expect("config");
    toml.push_str(
        "\n[[clients]]\nclient_id = \"strict-conf\"\nsecret = \"strict-secret-0123456789abcdefghij\"\n\
         redirect_uris = [\"http://127.0.0.1:9/cb\"]\nmin_acr = \"high\"\n",
    );
    std::fs::write(&config, toml).expect("config");
    let server = d.start().await;
    let client = rp(
        &server,
        "strict-conf",
        Some("strict-secret-0123456789abcdefghij"),
        RP_REDIRECT,
    )
    .await;
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = browser.authorize(&server, &p.url).await.expect_err("login");
    assert!(is_step_up(&page));
    let page = filled(page);
    let page = password_then_step_up(&server, &browser, &page, USER).await;
    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(acr(&claims).as_deref(), Some("high"));
    assert_eq!(sub(&claims), account_id(&d, USER).await);
}
both_trusting!(configured_min_acr_high, super::configured_min_acr_high);

// ---------------------------------------------------------------------------------------------
// 5. The employee role needs a certificate
// ---------------------------------------------------------------------------------------------

async fn employee_needs_a_certificate(d: Deployment) {
    add_user(&d, "ivan.emp", "Иван", "Иванов", &["employee"]);
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let emp = account_id(&d, "ivan.emp").await;

    // Nothing in the request asks for more: the page offers the password as usual.
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = browser.authorize(&server, &p.url).await.expect_err("login");
    assert!(!is_step_up(&page));
    password_then_step_up(&server, &browser, &page, "ivan.emp").await;

    // The password session yields no code by SSO either, nor silently.
    let p2 = authorization(&client, &["profile"], &[]);
    let again = browser
        .authorize(&server, &p2.url)
        .await
        .expect_err("an employee's password session gets no code");
    assert!(offers_only_the_certificate(&again));
    let p3 = authorization(&client, &["profile"], &[("prompt", "none")]);
    let back = browser
        .authorize(&server, &p3.url)
        .await
        .redirected("prompt=none answers the client");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("interaction_required"),
        "{back}"
    );
    // A new password sign-in in that page: still back to the login page.
    let page2 = filled(again);
    let res = browser
        .submit_password(&server, &page2, "ivan.emp", PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(location(&res).starts_with("/login?"), "{}", location(&res));
    assert_eq!(
        d.store().await.grants().count().await.unwrap(),
        0,
        "no grant was made for the password alone"
    );

    // The certificate finishes the transaction this browser started last (the second one).
    let back = cert_sign_in(&server, &browser, &page2, &Holder::vector("citizen")).await;
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p2, RP_REDIRECT), &p2).await;
    assert_eq!(sub(&claims), emp);
    assert_eq!(acr(&claims).as_deref(), Some("high"));
    assert_eq!(amr(&claims), ["hwk"]);
    assert_eq!(owner_count(&d, &emp, CITIZEN_PN).await, 1);
    // The applicant with the same name was not touched.
    assert_eq!(identities_of(&d, &account_id(&d, USER).await).await, 0);

    // From now on the employee's certificate session serves by SSO.
    let p = authorization(&client, &["profile"], &[]);
    let back = browser
        .authorize(&server, &p.url)
        .await
        .redirected("SSO with the certificate session");
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(sub(&claims), emp);
    assert_eq!(acr(&claims).as_deref(), Some("high"));
}
both_trusting!(
    employee_needs_a_certificate,
    super::employee_needs_a_certificate
);

/// An employee's contacts change only after a fresh certificate sign-in: a password entered
/// again is no proof for an account whose sign-in needs a certificate.
async fn employee_contact_change(d: Deployment) {
    add_user(&d, "ivan.emp", "Иван", "Иванов", &["employee"]);
    let server = d.start_with(&[("VHOD_PROFILE_REAUTH_SECONDS", "1")]).await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = browser.authorize(&server, &p.url).await.expect_err("login");
    let page = password_then_step_up(&server, &browser, &page, "ivan.emp").await;
    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    code_at(&server, &back, &p, RP_REDIRECT);
    // Sign-in times are whole seconds: past 1 s for certain.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let res = browser.get(&server.url("/profile?ui_locales=en")).await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.expect("profile");
    assert!(
        !html.contains(r#"name="password""#),
        "no password is asked for: {html}"
    );
    let csrf = csrf_in(&html);
    let change = || {
        let (b, url, csrf) = (&browser, server.url("/profile/email"), csrf.clone());
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("ui_locales", "en"),
                ("email", "ivan.emp@example.by"),
                ("password", PASSWORD),
            ];
            let res = b.http.post(url).form(&form).send().await.expect("POST");
            (res.status().as_u16(), res.text().await.expect("body"))
        }
    };
    let (status, html) = change().await;
    assert_eq!(status, 403, "the password does not do: {html}");
    let link = authorize_link(&html);
    let at = server.url(&link);
    assert_eq!(param(&at, "prompt").as_deref(), Some("login"), "{link}");
    assert_eq!(param(&at, "acr_values").as_deref(), Some("high"), "{link}");
    let audited = async |kind: &str| d.count_events(|e| e.kind == kind).await;
    assert_eq!(audited("email_link").await, 0, "nothing sent");
    assert_eq!(audited("profile_reauth").await, 0, "no password checked");

    // The certificate again, through that link: then the change goes through.
    let login = browser
        .authorize(&server, &at)
        .await
        .expect_err("prompt=login shows the login page");
    let back = cert_sign_in(&server, &browser, &login, &Holder::vector("citizen")).await;
    assert!(back.starts_with(&server.url("/profile")), "{back}");
    let (status, html) = change().await;
    assert_eq!(
        status, 200,
        "a fresh certificate sign-in changes it: {html}"
    );
}
both_trusting!(
    employee_contact_changes_need_a_fresh_certificate,
    super::employee_contact_change
);

// ---------------------------------------------------------------------------------------------
// 6. prompt=none with acr_values=high and a password session
// ---------------------------------------------------------------------------------------------

async fn prompt_none_needs_interaction(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let browser = Browser::new();
    password_sign_in(&server, &browser, &client, USER, PASSWORD).await;

    let p = authorization(
        &client,
        &["profile"],
        &[("prompt", "none"), ("acr_values", "high")],
    );
    let back = browser
        .authorize(&server, &p.url)
        .await
        .redirected("prompt=none never shows a page");
    assert!(back.starts_with(RP_REDIRECT), "{back}");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("interaction_required"),
        "{back}"
    );
    assert_eq!(param(&back, "state").as_deref(), Some(p.state.as_str()));
    assert_eq!(param(&back, "iss").as_deref(), Some(server.issuer.as_str()));
    assert_eq!(param(&back, "code"), None);

    // Voluntary acr_values that the session meets ("low high": the lowest counts) and unknown
    // values are no obstacle; prompt=none without acr_values gets a code.
    for extra in [
        vec![("prompt", "none")],
        vec![("prompt", "none"), ("acr_values", "low high")],
        vec![("prompt", "none"), ("acr_values", "urn:example:unknown")],
    ] {
        let p = authorization(&client, &["profile"], &extra);
        let back = browser
            .authorize(&server, &p.url)
            .await
            .redirected("silent");
        let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
        assert_eq!(acr(&claims).as_deref(), Some("low"), "{extra:?}");
    }

    // Without a session: login_required, not interaction_required.
    let fresh = Browser::new();
    let p = authorization(
        &client,
        &["profile"],
        &[("prompt", "none"), ("acr_values", "high")],
    );
    let back = fresh.authorize(&server, &p.url).await.redirected("silent");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );
}
both_backends!(
    prompt_none_needs_interaction,
    super::prompt_none_needs_interaction
);

// ---------------------------------------------------------------------------------------------
// 7. An account with a personal number takes no other; names compare without case and ё
// ---------------------------------------------------------------------------------------------

async fn another_personal_number_is_refused(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = account_id(&d, USER).await;

    // ivan links the vectors' citizen certificate.
    let browser = Browser::new();
    password_sign_in(&server, &browser, &client, USER, PASSWORD).await;
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("step-up");
    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    code_at(&server, &back, &p, RP_REDIRECT);
    assert_eq!(owner_count(&d, &ivan, CITIZEN_PN).await, 1);

    // A namesake (same surname and given name, another personal number) cannot be added to
    // ivan's account in a later step-up.
    let (namesake, namesake_pn) = Holder::own(NAMESAKE);
    assert_ne!(namesake_pn, CITIZEN_PN);
    let other = Browser::new();
    password_sign_in(&server, &other, &client, USER, PASSWORD).await;
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = other.authorize(&server, &p.url).await.expect_err("step-up");
    assert!(offers_only_the_certificate(&page));
    let (status, body) = cert_attempt(&server, &other, &page, &namesake, false).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "policy", "{body}");
    assert_eq!(
        identities_of(&d, &ivan).await,
        1,
        "only the first personal number"
    );
    assert_eq!(all_identities(&d).await, 1);

    // Without a step-up the namesake is simply another person: a new account.
    let fresh = Browser::new();
    let p = authorization(&client, &["profile"], &[]);
    let page = fresh.authorize(&server, &p.url).await.expect_err("login");
    let back = cert_sign_in(&server, &fresh, &page, &namesake).await;
    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_ne!(sub(&claims), ivan);
    assert_eq!(owner_count(&d, &sub(&claims), &namesake_pn).await, 1);
}
both_trusting!(
    another_personal_number_is_refused,
    super::another_personal_number_is_refused
);

async fn names_compare_without_case_and_yo(d: Deployment) {
    add_user(&d, "petr", "Пётр", "Сидоров", &[]);
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let petr = account_id(&d, "petr").await;
    let (holder, pn) = Holder::own(SIDOROV);

    let browser = Browser::new();
    password_sign_in(&server, &browser, &client, "petr", PASSWORD).await;
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("step-up");
    // The raw-signature form of the login links as well.
    let (status, body) = cert_attempt(&server, &browser, &page, &holder, true).await;
    assert_eq!(status, 200, "СИДОРОВ Петр is Пётр Сидоров: {body}");
    let back = body["redirect"].as_str().expect("redirect");
    let (claims, _) = redeem(&client, &code_at(&server, back, &p, RP_REDIRECT), &p).await;
    assert_eq!(sub(&claims), petr);
    assert_eq!(acr(&claims).as_deref(), Some("high"));
    assert_eq!(owner_count(&d, &petr, &pn).await, 1);
}
both_trusting!(
    names_compare_without_case_and_yo,
    super::names_compare_without_case_and_yo
);

// ---------------------------------------------------------------------------------------------
// 8. Refusals during a step-up link nothing; a challenge is good for one attempt
// ---------------------------------------------------------------------------------------------

async fn step_up_refusals_link_nothing(d: Deployment) {
    let server = d.start().await;
    let client = rp(&server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let ivan = account_id(&d, USER).await;
    let browser = Browser::new();
    password_sign_in(&server, &browser, &client, USER, PASSWORD).await;
    let p = authorization(&client, &["profile"], &[("acr_values", "high")]);
    let page = browser
        .authorize(&server, &p.url)
        .await
        .expect_err("step-up");
    let csrf = csrf_of(&page);

    // A revoked certificate: refused for that, before any question of names.
    let (status, body) =
        cert_attempt(&server, &browser, &page, &Holder::vector("revoked"), false).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("revoked")),
        "{body}"
    );

    // That attempt spent the challenge: the next one without a new challenge is refused.
    let citizen = Holder::vector("citizen");
    let old_cms = String::from_utf8(vector("login/challenge.citizen.cms.b64")).expect("b64");
    let stale = json!({"certificate": citizen.pem_bundle, "signature": old_cms.trim()});
    let (status, body) = browser.cert_login(&server, &csrf, &stale).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_challenge")),
        "{body}"
    );

    // The vectors' CMS was made over another challenge: bad signature.
    let (status, _) = browser.cert_challenge(&server, &csrf).await;
    assert_eq!(status, 200);
    let (status, body) = browser.cert_login(&server, &csrf, &stale).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("bad_signature")),
        "{body}"
    );

    // A good signature sent twice: the second is refused (challenge spent, sign-in over).
    let (status, ch) = browser.cert_challenge(&server, &csrf).await;
    assert_eq!(status, 200);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(
            ch["challenge"]
                .as_str()
                .expect("challenge")
                .trim_end_matches('='),
        )
        .expect("base64url");
    let good =
        json!({"certificate": citizen.pem_bundle, "signature": citizen.sign_cms(&challenge)});
    let (status, body) = browser.cert_login(&server, &csrf, &good).await;
    assert_eq!(status, 200, "{body}");
    let back = body["redirect"].as_str().expect("redirect").to_string();
    let (status, body) = browser.cert_login(&server, &csrf, &good).await;
    assert_eq!(status, 400, "{body}");

    let (claims, _) = redeem(&client, &code_at(&server, &back, &p, RP_REDIRECT), &p).await;
    assert_eq!(sub(&claims), ivan);
    assert_eq!(all_identities(&d).await, 1);
    assert_eq!(owner_count(&d, &ivan, CITIZEN_PN).await, 1);
    assert_eq!(
        d.wait_events(2, |e| {
            e.kind == "login"
                && e.outcome == "failure"
                && e.method.as_deref() == Some("certificate")
                && matches!(e.reason.as_deref(), Some("revoked" | "bad_signature"))
        })
        .await,
        2
    );
}
both_trusting!(
    step_up_refusals_link_nothing,
    super::step_up_refusals_link_nothing
);
