//! Hostile and malformed input: every endpoint answers a clear 4xx (never a 500, never a redirect
//! to an address that is not registered), and a refused request leaves the stored state as it was.

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use openidconnect::PkceCodeChallenge;
use reqwest::Response;
use reqwest::header::{
    ACCEPT_LANGUAGE, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE,
};
use serde_json::{Value, json};

// The English texts of the pages (src/web/messages/en.toml); every request here asks for English.
const MSG_UNKNOWN_CLIENT: &str = "The application that asked for sign-in is not registered.";
const MSG_BAD_REDIRECT: &str = "The return address is not registered for this application.";
const MSG_BAD_REQUEST: &str = "Invalid request.";
const MSG_TX_EXPIRED: &str = "This sign-in has expired or was not found.";
const MSG_CSRF: &str = "The form has expired. Reload the page and try again.";
const MSG_BAD_CREDENTIALS: &str = "Incorrect login or password.";
const STATE: &str = "st-7f3a9c";

fn english() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
    h
}

/// No cookies, no redirects, English pages.
fn en() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(english())
        .build()
        .expect("http client")
}

/// A browser (cookie jar) that reads English.
fn en_browser() -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(english())
            .build()
            .expect("browser"),
    }
}

fn authorize_url(server: &Server, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&server.url("/authorize")).expect("url");
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// One parameter of a request: replaced (Some) or removed (None).
type Change<'a> = (&'a str, Option<&'a str>);

/// A valid authorization request of "rp", with parameters replaced (Some) or removed (None).
fn rp_params<'a>(changes: &[Change<'a>]) -> Vec<(&'a str, &'a str)> {
    let mut p: Vec<(&str, &str)> = vec![
        ("client_id", "rp"),
        ("redirect_uri", RP_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", STATE),
    ];
    for (k, v) in changes {
        p.retain(|(pk, _)| pk != k);
        if let Some(v) = v {
            p.push((k, v));
        }
    }
    p
}

async fn get(url: &str) -> Response {
    en().get(url).send().await.expect("GET")
}

fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// An HTML error page with `status` and `message`, and no redirect.
async fn expect_page(res: Response, status: u16, message: &str) -> String {
    let what = format!(
        "{} {}",
        res.url().path(),
        res.url().query().unwrap_or_default()
    );
    assert_eq!(res.status().as_u16(), status, "{what}");
    assert!(
        res.headers().get("location").is_none(),
        "an error page never redirects: {what}"
    );
    let ct = header(&res, "content-type");
    assert!(ct.starts_with("text/html"), "{what}: content-type {ct}");
    let body = res.text().await.expect("page");
    assert!(
        body.contains(message),
        "{what}: expected {message:?} in\n{body}"
    );
    body
}

/// The redirect back to the client with `error` (RFC 6749 §4.1.2.1) and RFC 9207 `iss`.
fn expect_redirect_error(
    res: &Response,
    server: &Server,
    redirect: &str,
    error: &str,
    state: &str,
) {
    assert_eq!(res.status().as_u16(), 303, "{error}: {}", res.url());
    let loc = location(res);
    assert!(
        loc.starts_with(&format!("{redirect}?")),
        "{error}: redirected to {loc}"
    );
    let u = url::Url::parse(&loc).expect("location");
    let errors: Vec<String> = u
        .query_pairs()
        .filter(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(errors, vec![error.to_string()], "{loc}");
    assert!(
        param(&loc, "error_description").is_some_and(|d| !d.is_empty()),
        "{loc}"
    );
    assert_eq!(param(&loc, "state").as_deref(), Some(state), "{loc}");
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(server.issuer.as_str()),
        "{loc}"
    );
    assert_eq!(param(&loc, "code"), None, "{loc}");
}

/// An RFC 6749 §5.2 JSON error.
async fn expect_json_error(res: Response, status: u16, error: &str) -> Value {
    let what = res.url().path().to_string();
    assert_eq!(res.status().as_u16(), status, "{what}: expected {error}");
    assert!(
        header(&res, "content-type").starts_with("application/json"),
        "{what}"
    );
    assert_eq!(header(&res, "cache-control"), "no-store", "{what}");
    let body: Value = res.json().await.expect("JSON error body");
    assert_eq!(body["error"], error, "{what}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
    body
}

/// Every request the server answered, by its access log: none may have been a 5xx.
fn assert_no_server_errors(server: &Server) {
    let logs = server.logs();
    let mut answered = 0;
    for line in logs.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v["target"] != "http" {
            continue;
        }
        answered += 1;
        let status = v["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("status in {line}"));
        assert!(
            (100..500).contains(&status),
            "a request was answered with {status}: {line}"
        );
    }
    assert!(answered > 0, "the access log is missing: {logs}");
}

/// What a refused request must leave as it was.
#[derive(Clone, Copy, Debug)]
enum Stored {
    Accounts,
    /// Sessions, ended or not.
    Sessions,
    /// Sessions never ended.
    OpenSessions,
    /// Grants, revoked or not.
    Grants,
    /// Grants never revoked.
    LiveGrants,
    RevokedGrants,
    RefreshTokens,
    RevokedAccessTokens,
}

/// How many of `what` the store holds.
async fn count(d: &Deployment, what: Stored) -> i64 {
    let store = d.store().await;
    let (sessions, grants) = (store.sso_sessions(), store.grants());
    match what {
        Stored::Accounts => store.accounts().count().await,
        Stored::Sessions => sessions.count().await,
        Stored::OpenSessions => sessions.count_not_ended().await,
        Stored::Grants => grants.count().await,
        Stored::LiveGrants => grants.count_not_revoked().await,
        Stored::RevokedGrants => match (grants.count().await, grants.count_not_revoked().await) {
            (Ok(all), Ok(live)) => Ok(all - live),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Stored::RefreshTokens => grants.count_refresh_tokens().await,
        Stored::RevokedAccessTokens => grants.count_revoked_access_tokens().await,
    }
    .unwrap_or_else(|e| panic!("counting {what:?}: {e}"))
}

/// Signs in (or reuses the browser's session) and returns the authorization code.
async fn code_for(
    server: &Server,
    browser: &Browser,
    client_id: &str,
    redirect: &str,
    challenge: Option<&str>,
) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", STATE),
    ];
    if let Some(c) = challenge {
        p.push(("code_challenge", c));
        p.push(("code_challenge_method", "S256"));
    }
    let back = browser
        .sign_in(server, &authorize_url(server, &p), USER, PASSWORD)
        .await;
    assert!(back.starts_with(redirect), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some(STATE));
    param(&back, "code").unwrap_or_else(|| panic!("a code in {back}"))
}

async fn post_token(
    server: &Server,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Response {
    let mut req = http().post(server.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("POST /token")
}

async fn post_raw(
    server: &Server,
    path: &str,
    basic: Option<(&str, &str)>,
    content_type: &str,
    body: Vec<u8>,
) -> Response {
    let mut req = en()
        .post(server.url(path))
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("POST")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// A full code flow for "rp": (access token, refresh token, ID token).
async fn rp_tokens(server: &Server, browser: &Browser) -> (String, String, String) {
    let code = code_for(server, browser, "rp", RP_REDIRECT, None).await;
    let res = post_token(
        server,
        Some(("rp", RP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let v: Value = res.json().await.expect("token response");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_string()
    };
    (s("access_token"), s("refresh_token"), s("id_token"))
}

// ---------------------------------------------------------------------------------------------
// /authorize before the client and redirect_uri are trusted: an error page, never a redirect.

async fn authorize_untrusted(d: Deployment) {
    let server = d.start().await;

    // Control: the valid request goes on to the login page.
    let ok = get(&authorize_url(&server, &rp_params(&[]))).await;
    assert_eq!(ok.status().as_u16(), 303);
    assert!(location(&ok).starts_with("/login?tx="), "{}", location(&ok));

    for client_id in [
        Some("nope"),
        Some("<script>alert(1)</script>"),
        Some("rp "),
        Some("RP"),
        None,
    ] {
        let res = get(&authorize_url(
            &server,
            &rp_params(&[("client_id", client_id)]),
        ))
        .await;
        let body = expect_page(res, 400, MSG_UNKNOWN_CLIENT).await;
        assert!(!body.contains("<script>alert(1)</script>"));
    }
    // Without a language preference the page is Russian.
    let res = http()
        .get(authorize_url(
            &server,
            &rp_params(&[("client_id", Some("nope"))]),
        ))
        .send()
        .await
        .expect("GET");
    expect_page(
        res,
        400,
        "Приложение, запросившее вход, не зарегистрировано.",
    )
    .await;

    let trailing_slash = format!("{RP_REDIRECT}/");
    let extra_query = format!("{RP_REDIRECT}?next=1");
    let fragment = format!("{RP_REDIRECT}#x");
    for uri in [
        Some(trailing_slash.as_str()),
        Some(extra_query.as_str()),
        Some(fragment.as_str()),
        Some("http://evil.example/cb"),
        Some("http://127.0.0.2:9/cb"),
        Some("https://127.0.0.1:9/cb"),
        Some("http://127.0.0.1:9/CB"),
        Some("http://evil@127.0.0.1:9/cb"),
        Some("javascript:alert(1)"),
        Some(RP2_REDIRECT), // registered, but for another client
        Some("/cb"),
        None,
    ] {
        let res = get(&authorize_url(
            &server,
            &rp_params(&[("redirect_uri", uri)]),
        ))
        .await;
        expect_page(res, 400, MSG_BAD_REDIRECT).await;
    }
    // A client without any redirect URI (client_credentials only).
    let res = get(&authorize_url(
        &server,
        &rp_params(&[("client_id", Some("svc"))]),
    ))
    .await;
    expect_page(res, 400, MSG_BAD_REDIRECT).await;

    // Parameters that cannot be parsed at all.
    let base = server.url("/authorize");
    let q = format!(
        "redirect_uri={}&response_type=code&scope=openid",
        "http%3A%2F%2F127.0.0.1%3A9%2Fcb"
    );
    let dup_client = format!("{base}?client_id=rp&client_id=rp&{q}");
    let body = expect_page(get(&dup_client).await, 400, MSG_BAD_REQUEST).await;
    assert!(
        body.contains("parameter client_id is included more than once"),
        "{body}"
    );
    let dup_client_other = format!("{base}?client_id=rp&client_id=rp2&{q}");
    expect_page(get(&dup_client_other).await, 400, MSG_BAD_REQUEST).await;
    let dup_redirect =
        format!("{base}?client_id=rp&{q}&redirect_uri=http%3A%2F%2Fevil.example%2Fcb");
    expect_page(get(&dup_redirect).await, 400, MSG_BAD_REQUEST).await;
    for bad_utf8 in [
        format!("{base}?client_id=rp&{q}&state=%FF"),
        format!("{base}?client_id=%C3%28&{q}"),
        format!("{base}?client_id=rp&{q}&%FF=1"),
    ] {
        let body = expect_page(get(&bad_utf8).await, 400, MSG_BAD_REQUEST).await;
        assert!(body.contains("not valid UTF-8"), "{body}");
    }
    let many: String = (0..70).map(|i| format!("&x{i}=1")).collect();
    let body = expect_page(
        get(&format!("{base}?client_id=rp&{q}{many}")).await,
        400,
        MSG_BAD_REQUEST,
    )
    .await;
    assert!(body.contains("too many parameters"), "{body}");
    let huge_nonce = "n".repeat(9 * 1024);
    let body = expect_page(
        get(&authorize_url(
            &server,
            &rp_params(&[("nonce", Some(&huge_nonce))]),
        ))
        .await,
        400,
        MSG_BAD_REQUEST,
    )
    .await;
    assert!(body.contains("parameter nonce is too long"), "{body}");

    // state is checked before anything is sent back to the client.
    let long_state = "s".repeat(2049);
    let res = get(&authorize_url(
        &server,
        &rp_params(&[("state", Some(&long_state))]),
    ))
    .await;
    let body = expect_page(res, 400, MSG_BAD_REQUEST).await;
    assert!(body.contains("state is too long"), "{body}");
    let res = get(&authorize_url(
        &server,
        &rp_params(&[("state", Some("a\u{1}b"))]),
    ))
    .await;
    let body = expect_page(res, 400, MSG_BAD_REQUEST).await;
    assert!(body.contains("state contains control characters"), "{body}");
    // ... and 2048 is still fine.
    let max_state = "s".repeat(2048);
    let res = get(&authorize_url(
        &server,
        &rp_params(&[("state", Some(&max_state))]),
    ))
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(location(&res).starts_with("/login?tx="));

    // POST must be a form.
    let res = post_raw(
        &server,
        "/authorize",
        None,
        "application/json",
        br#"{"client_id":"rp"}"#.to_vec(),
    )
    .await;
    expect_page(res, 400, MSG_BAD_REQUEST).await;
    let form = format!("client_id=rp&{q}");
    let res = en()
        .post(format!("{base}?client_id=rp"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("POST");
    expect_page(res, 400, MSG_BAD_REQUEST).await;

    assert_eq!(count(&d, Stored::Sessions).await, 0);
    assert_eq!(count(&d, Stored::Grants).await, 0);
    assert_no_server_errors(&server);
}
both_backends!(
    authorize_untrusted_input_shows_a_page,
    super::authorize_untrusted
);

// ---------------------------------------------------------------------------------------------
// /authorize after the client and redirect_uri are trusted: errors go back to the client.

async fn authorize_redirect_errors(d: Deployment) {
    let server = d.start().await;
    let long_nonce = "n".repeat(513);
    let challenge_42 = "a".repeat(42);
    let challenge_44 = "a".repeat(44);
    let challenge_bad_chars = format!("{}!", "a".repeat(42));
    let challenge_ok = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let cases: Vec<(Vec<Change>, &str)> = vec![
        (
            vec![("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", Some("code id_token"))],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", Some("id_token"))],
            "unsupported_response_type",
        ),
        (vec![("response_type", None)], "invalid_request"),
        (vec![("scope", Some("profile email"))], "invalid_scope"),
        (vec![("scope", None)], "invalid_scope"),
        (vec![("scope", Some("openid admin"))], "invalid_scope"),
        (
            vec![("scope", Some("openid appeals.write"))],
            "invalid_scope",
        ),
        (
            vec![
                ("code_challenge", Some(challenge_ok)),
                ("code_challenge_method", Some("plain")),
            ],
            "invalid_request",
        ),
        (
            vec![("code_challenge", Some(challenge_ok))],
            "invalid_request",
        ),
        (
            vec![("code_challenge_method", Some("S256"))],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", Some(challenge_ok)),
                ("code_challenge_method", Some("S512")),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", Some(challenge_42.as_str())),
                ("code_challenge_method", Some("S256")),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", Some(challenge_44.as_str())),
                ("code_challenge_method", Some("S256")),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("code_challenge", Some(challenge_bad_chars.as_str())),
                ("code_challenge_method", Some("S256")),
            ],
            "invalid_request",
        ),
        (vec![("prompt", Some("none"))], "login_required"),
        (vec![("prompt", Some("none login"))], "invalid_request"),
        (vec![("prompt", Some("login none"))], "invalid_request"),
        (vec![("prompt", Some("bogus"))], "invalid_request"),
        (vec![("max_age", Some("-1"))], "invalid_request"),
        (vec![("max_age", Some("ten"))], "invalid_request"),
        (
            vec![("max_age", Some("99999999999999999999"))],
            "invalid_request",
        ),
        (
            vec![("request", Some("eyJhbGciOiJub25lIn0.e30."))],
            "request_not_supported",
        ),
        (
            vec![("request_uri", Some("https://evil.example/req.jwt"))],
            "request_uri_not_supported",
        ),
        (vec![("id_token_hint", Some("garbage"))], "invalid_request"),
        (vec![("id_token_hint", Some("a.b.c"))], "invalid_request"),
        (
            vec![(
                "id_token_hint",
                Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
            )],
            "invalid_request",
        ),
        (vec![("response_mode", Some("fragment"))], "invalid_request"),
        (
            vec![("response_mode", Some("form_post"))],
            "invalid_request",
        ),
        (
            vec![("nonce", Some(long_nonce.as_str()))],
            "invalid_request",
        ),
        (vec![("login_hint", Some("ivan\u{7}"))], "invalid_request"),
    ];
    for (changes, error) in &cases {
        let res = get(&authorize_url(&server, &rp_params(changes))).await;
        expect_redirect_error(&res, &server, RP_REDIRECT, error, STATE);
    }

    // A state that tries to smuggle its own error and issuer comes back intact and inert.
    let sneaky = "x&error=access_denied&iss=https://evil.example";
    let res = get(&authorize_url(
        &server,
        &rp_params(&[("state", Some(sneaky)), ("response_type", Some("token"))]),
    ))
    .await;
    expect_redirect_error(
        &res,
        &server,
        RP_REDIRECT,
        "unsupported_response_type",
        sneaky,
    );

    // The public client must use PKCE, S256 only.
    let spa = |changes: &[(&'static str, Option<&'static str>)]| {
        let mut p = rp_params(&[
            ("client_id", Some("spa")),
            ("redirect_uri", Some(SPA_REDIRECT)),
        ]);
        for (k, v) in changes {
            p.retain(|(pk, _)| pk != k);
            if let Some(v) = v {
                p.push((k, v));
            }
        }
        authorize_url(&server, &p)
    };
    let res = get(&spa(&[])).await;
    expect_redirect_error(&res, &server, SPA_REDIRECT, "invalid_request", STATE);
    let res = get(&spa(&[
        ("code_challenge", Some(challenge_ok)),
        ("code_challenge_method", Some("plain")),
    ]))
    .await;
    expect_redirect_error(&res, &server, SPA_REDIRECT, "invalid_request", STATE);
    // Control: with S256 it goes on to the login page.
    let res = get(&spa(&[
        ("code_challenge", Some(challenge_ok)),
        ("code_challenge_method", Some("S256")),
    ]))
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        location(&res).starts_with("/login?tx="),
        "{}",
        location(&res)
    );

    assert_eq!(count(&d, Stored::Sessions).await, 0);
    assert_eq!(count(&d, Stored::Grants).await, 0);
    assert_no_server_errors(&server);
}
both_backends!(
    authorize_errors_redirect_to_the_client,
    super::authorize_redirect_errors
);

/// An id_token_hint of another client is refused.
async fn authorize_foreign_hint(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let (_, _, id_token) = rp_tokens(&server, &browser).await;
    let p = rp_params(&[
        ("client_id", Some("rp2")),
        ("redirect_uri", Some(RP2_REDIRECT)),
        ("id_token_hint", Some(&id_token)),
    ]);
    let res = browser.get(&authorize_url(&server, &p)).await;
    expect_redirect_error(&res, &server, RP2_REDIRECT, "invalid_request", STATE);
    // A hint whose payload was altered (another subject) is no hint.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims = b64json(parts[1]);
    claims["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    let p = rp_params(&[("id_token_hint", Some(&forged))]);
    let res = browser.get(&authorize_url(&server, &p)).await;
    expect_redirect_error(&res, &server, RP_REDIRECT, "invalid_request", STATE);
    // Control: the genuine hint is accepted and the SSO session answers at once.
    let p = rp_params(&[("id_token_hint", Some(&id_token))]);
    let res = browser.get(&authorize_url(&server, &p)).await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        param(&location(&res), "code").is_some(),
        "{}",
        location(&res)
    );
    assert_no_server_errors(&server);
}
both_backends!(
    authorize_refuses_foreign_id_token_hints,
    super::authorize_foreign_hint
);

// ---------------------------------------------------------------------------------------------
// /token: requests that are malformed or whose client does not authenticate.

/// Sends raw bytes (for bodies reqwest will not send) and returns the status and the answer.
fn raw_request(server: &Server, request: Vec<u8>) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    // The server may answer (and close) before it has read everything: that is fine.
    let _ = s.write_all(&request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&buf).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, answer)
}

async fn token_malformed(d: Deployment) {
    let server = d.start().await;
    let rp = Some(("rp", RP_SECRET));
    let svc = Some(("svc", SVC_SECRET));
    const FORM: &str = "application/x-www-form-urlencoded";

    // Not a form.
    let res = post_raw(
        &server,
        "/token",
        svc,
        "application/json",
        br#"{"grant_type":"client_credentials"}"#.to_vec(),
    )
    .await;
    let body = expect_json_error(res, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("x-www-form-urlencoded")
    );
    let res = post_raw(
        &server,
        "/token",
        svc,
        "text/plain",
        b"grant_type=client_credentials".to_vec(),
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;
    let res = http()
        .post(server.url("/token"))
        .basic_auth("svc", Some(SVC_SECRET))
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_request").await;

    // Too large: refused unread, with or without a declared length.
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.resize(65 * 1024, b'a');
    let res = post_raw(&server, "/token", svc, FORM, big.clone()).await;
    assert_eq!(res.status().as_u16(), 413);
    let host = server.base.trim_start_matches("http://").to_string();
    let mut chunked = format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in big.chunks(8 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    // Without a declared length the limit trips while reading: refused as unreadable (400, not 413).
    let (status, answer) = tokio::task::block_in_place(|| raw_request(&server, chunked));
    assert_eq!(status, 400, "a chunked body over the limit: {answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    assert!(answer.contains("too large"), "{answer}");

    // Not UTF-8, or not valid percent-encoding of UTF-8.
    for body in [
        &b"grant_type=client_credentials&scope=%FF"[..],
        b"grant_type=client_%C3%28credentials",
        b"grant_type=client_credentials&scope=\xff",
    ] {
        let res = post_raw(&server, "/token", svc, FORM, body.to_vec()).await;
        let e = expect_json_error(res, 400, "invalid_request").await;
        assert!(
            e["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("UTF-8"),
            "{e}"
        );
    }

    // Repeated parameters, or parameters in the query of a POST.
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    let e = expect_json_error(res, 400, "invalid_request").await;
    assert!(
        e["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("more than once"),
        "{e}"
    );
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "appeals.read"),
            ("scope", "appeals.write"),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;
    let res = http()
        .post(server.url("/token?grant_type=client_credentials"))
        .basic_auth("svc", Some(SVC_SECRET))
        .form(&[("scope", "appeals.read")])
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_request").await;

    // grant_type.
    let res = post_token(&server, svc, &[("scope", "appeals.read")]).await;
    expect_json_error(res, 400, "invalid_request").await;
    let res = post_token(&server, svc, &[("grant_type", "")]).await;
    expect_json_error(res, 400, "invalid_request").await;
    for g in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "CLIENT_CREDENTIALS",
    ] {
        let res = post_token(&server, svc, &[("grant_type", g)]).await;
        expect_json_error(res, 400, "unsupported_grant_type").await;
    }

    // Client authentication.
    let cc = [("grant_type", "client_credentials")];
    let invalid_client = |res: Response| async move {
        let challenge = header(&res, WWW_AUTHENTICATE.as_str());
        assert!(
            challenge.starts_with("Basic"),
            "WWW-Authenticate: {challenge:?}"
        );
        expect_json_error(res, 401, "invalid_client").await
    };
    invalid_client(post_token(&server, Some(("svc", "wrong-secret")), &cc).await).await;
    invalid_client(post_token(&server, Some(("svc", "")), &cc).await).await;
    invalid_client(post_token(&server, Some(("ghost", "x")), &cc).await).await;
    invalid_client(
        post_token(
            &server,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "wrong"),
            ],
        )
        .await,
    )
    .await;
    invalid_client(
        post_token(
            &server,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "ghost"),
                ("client_secret", "x"),
            ],
        )
        .await,
    )
    .await;
    invalid_client(
        post_token(
            &server,
            None,
            &[("grant_type", "client_credentials"), ("client_id", "ghost")],
        )
        .await,
    )
    .await;
    invalid_client(post_token(&server, None, &[("grant_type", "client_credentials")]).await).await;
    // A confidential client may not skip authentication.
    invalid_client(
        post_token(
            &server,
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "rp"),
                ("code", "x"),
                ("redirect_uri", RP_REDIRECT),
            ],
        )
        .await,
    )
    .await;
    // client_id in the body must name the authenticated client.
    invalid_client(
        post_token(
            &server,
            rp,
            &[("grant_type", "client_credentials"), ("client_id", "svc")],
        )
        .await,
    )
    .await;
    for bad in [
        "Basic !!!",
        "Basic",
        "Bearer abc",
        "Digest username=\"svc\"",
    ] {
        let res = http()
            .post(server.url("/token"))
            .header(AUTHORIZATION, bad)
            .form(&cc)
            .send()
            .await
            .expect("POST");
        invalid_client(res).await;
    }
    let not_utf8 = base64::engine::general_purpose::STANDARD.encode(b"svc\xff:x");
    let res = http()
        .post(server.url("/token"))
        .header(AUTHORIZATION, format!("Basic {not_utf8}"))
        .form(&cc)
        .send()
        .await
        .expect("POST");
    invalid_client(res).await;
    // Two methods at once.
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", SVC_SECRET),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", "a.b.c"),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;

    // Grants the client is not registered for.
    let res = post_token(
        &server,
        None,
        &[("grant_type", "client_credentials"), ("client_id", "spa")],
    )
    .await;
    expect_json_error(res, 400, "unauthorized_client").await;
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "authorization_code"),
            ("code", "abc"),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "unauthorized_client").await;
    let res = post_token(
        &server,
        svc,
        &[("grant_type", "refresh_token"), ("refresh_token", "abc")],
    )
    .await;
    expect_json_error(res, 400, "unauthorized_client").await;
    // Scopes it is not registered for.
    for scope in ["openid", "appeals.admin", "appeals.read appeals.delete"] {
        let res = post_token(
            &server,
            svc,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        expect_json_error(res, 400, "invalid_scope").await;
    }
    // Refresh tokens that do not exist.
    let long_rt = "r".repeat(5000);
    for rt in ["forged", long_rt.as_str()] {
        let res = post_token(
            &server,
            rp,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
        expect_json_error(res, 400, "invalid_grant").await;
    }

    assert_eq!(count(&d, Stored::Grants).await, 0);
    assert_eq!(count(&d, Stored::RefreshTokens).await, 0);
    assert_eq!(count(&d, Stored::RevokedAccessTokens).await, 0);

    // Control: the same client, asking properly, gets a token.
    let res = post_token(
        &server,
        svc,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "appeals.read"),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let v: Value = res.json().await.expect("JSON");
    assert_eq!(v["scope"], "appeals.read");
    assert!(v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_no_server_errors(&server);
}
both_backends!(token_refuses_malformed_requests, super::token_malformed);

// ---------------------------------------------------------------------------------------------
// /token, authorization_code: codes that are forged, misused or redeemed with the wrong proof.

async fn code_redemption(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let rp = Some(("rp", RP_SECRET));
    let redeem = |code: &str, redirect: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect.to_string()),
        ]
    };

    // Codes that were never issued.
    let (c43, c129, c6000) = (secret_like(43), "c".repeat(129), "c".repeat(6000));
    for code in [
        "forged",
        c43.as_str(),
        c129.as_str(),
        c6000.as_str(),
        "\u{0}",
        "../../etc/passwd",
    ] {
        let form = redeem(code, RP_REDIRECT);
        let res = http()
            .post(server.url("/token"))
            .basic_auth("rp", Some(RP_SECRET))
            .form(&form)
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
    }
    let res = post_token(
        &server,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;
    let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
    let res = post_token(
        &server,
        rp,
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    expect_json_error(res, 400, "invalid_request").await;
    // (A request refused before the code is looked at leaves the code alone: it still works.)
    let res = post_token(
        &server,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200, "the control redemption");
    assert_eq!(count(&d, Stored::Grants).await, 1);
    assert_eq!(count(&d, Stored::RefreshTokens).await, 1);

    // From here on, nothing may be issued.
    let mut reuse_expected = 0;
    let proper = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", RP_REDIRECT.to_string()),
        ]
    };

    // A code issued to rp, redeemed by rp2: refused, and consumed.
    let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
    let res = post_token(
        &server,
        Some(("rp2", RP2_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_grant").await;
    let res = post_token(
        &server,
        Some(("rp2", RP2_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP2_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_grant").await;
    reuse_expected += 1;
    let res = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&proper(&code))
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_grant").await;
    reuse_expected += 1;

    // A code issued to rp, redeemed by the public client spa.
    let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
    let res = post_token(
        &server,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_grant").await;
    let res = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&proper(&code))
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_grant").await;
    reuse_expected += 1;

    // Another redirect_uri than the one of the authorization request.
    let trailing = format!("{RP_REDIRECT}/");
    for wrong in [
        trailing.as_str(),
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:10/cb",
        RP2_REDIRECT,
    ] {
        let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
        let res = post_token(
            &server,
            rp,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", wrong),
            ],
        )
        .await;
        expect_json_error(res, 400, "invalid_grant").await;
        let res = http()
            .post(server.url("/token"))
            .basic_auth("rp", Some(RP_SECRET))
            .form(&proper(&code))
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
        reuse_expected += 1;
    }

    // PKCE: missing, wrong, malformed, or sent without a challenge.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (_, other_verifier) = PkceCodeChallenge::new_random_sha256();
    let short = "abc".to_string();
    let bang = format!("{}!", verifier.secret());
    let with_verifier = |code: &str, v: Option<&str>| {
        let mut f = proper(code);
        if let Some(v) = v {
            f.push(("code_verifier", v.to_string()));
        }
        f
    };
    for wrong in [
        None,
        Some(other_verifier.secret().as_str()),
        Some(short.as_str()),
        Some(bang.as_str()),
    ] {
        let code = code_for(
            &server,
            &browser,
            "rp",
            RP_REDIRECT,
            Some(challenge.as_str()),
        )
        .await;
        let res = http()
            .post(server.url("/token"))
            .basic_auth("rp", Some(RP_SECRET))
            .form(&with_verifier(&code, wrong))
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
        let right = with_verifier(&code, Some(verifier.secret()));
        let res = http()
            .post(server.url("/token"))
            .basic_auth("rp", Some(RP_SECRET))
            .form(&right)
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
        reuse_expected += 1;
    }
    // A verifier for a code issued without a challenge (downgrade).
    let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
    let res = http()
        .post(server.url("/token"))
        .basic_auth("rp", Some(RP_SECRET))
        .form(&with_verifier(&code, Some(verifier.secret())))
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_grant").await;
    // The public client.
    for wrong in [None, Some(other_verifier.secret().as_str())] {
        let code = code_for(
            &server,
            &browser,
            "spa",
            SPA_REDIRECT,
            Some(challenge.as_str()),
        )
        .await;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", "spa".to_string()),
            ("code", code.clone()),
            ("redirect_uri", SPA_REDIRECT.to_string()),
        ];
        if let Some(w) = wrong {
            form.push(("code_verifier", w.to_string()));
        }
        let res = http()
            .post(server.url("/token"))
            .form(&form)
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
        form.retain(|(k, _)| *k != "code_verifier");
        form.push(("code_verifier", verifier.secret().to_string()));
        let res = http()
            .post(server.url("/token"))
            .form(&form)
            .send()
            .await
            .expect("POST");
        expect_json_error(res, 400, "invalid_grant").await;
        reuse_expected += 1;
    }

    // Nothing was issued by any of it.
    assert_eq!(count(&d, Stored::Grants).await, 1);
    assert_eq!(count(&d, Stored::RefreshTokens).await, 1);
    assert_eq!(count(&d, Stored::RevokedGrants).await, 0);
    // Each second attempt with a consumed code was recorded as a replay (written synchronously).
    assert_eq!(
        d.count_events(|e| e.kind == "code_reuse" && e.outcome == "failure")
            .await,
        reuse_expected
    );
    assert_no_server_errors(&server);
}
both_backends!(token_refuses_misused_codes, super::code_redemption);

/// A stand-in with the shape of a real secret (43 base64url characters).
fn secret_like(n: usize) -> String {
    "Zx9_".chars().cycle().take(n).collect()
}

/// A code that has outlived its lifetime (1 second here) is refused.
async fn expired_code(d: Deployment) {
    let port = free_port();
    let server = d
        .start_as(
            port,
            &format!("http://127.0.0.1:{port}"),
            &[("VHOD_CODE_TTL", "1")],
        )
        .await;
    let browser = Browser::new();
    let code = code_for(&server, &browser, "rp", RP_REDIRECT, None).await;
    // Wait out the lifetime (the store expires the key; nothing here measures time).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let res = post_token(
        &server,
        Some(("rp", RP_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
        ],
    )
    .await;
    expect_json_error(res, 400, "invalid_grant").await;
    assert_eq!(count(&d, Stored::Grants).await, 0);
    assert_eq!(count(&d, Stored::RefreshTokens).await, 0);
    assert_no_server_errors(&server);
}
both_backends!(token_refuses_expired_codes, super::expired_code);

// ---------------------------------------------------------------------------------------------
// /userinfo, /introspect, /revoke.

async fn userinfo_with(server: &Server, auth: Option<&str>) -> Response {
    let mut req = http().get(server.url("/userinfo"));
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    req.send().await.expect("GET /userinfo")
}

async fn expect_bearer_error(res: Response, status: u16, error: &str) {
    let challenge = header(&res, WWW_AUTHENTICATE.as_str());
    assert!(
        challenge.starts_with("Bearer "),
        "WWW-Authenticate: {challenge:?}"
    );
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "WWW-Authenticate: {challenge:?}"
    );
    expect_json_error(res, status, error).await;
}

async fn resource_endpoints(d: Deployment) {
    let server = d.start().await;
    let browser = Browser::new();
    let (access, refresh, id_token) = rp_tokens(&server, &browser).await;
    let parts: Vec<&str> = access.split('.').collect();
    assert_eq!(parts.len(), 3);
    let head = b64json(parts[0]);
    let kid = head["kid"].as_str().expect("kid").to_string();

    // Forgeries of the genuine token.
    let mut claims = b64json(parts[1]);
    claims["scope"] = json!("openid profile email phone roles");
    claims["sub"] = json!("someone-else");
    let payload_changed = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    let none_header = b64(json!({"alg": "none", "typ": "at+jwt", "kid": kid})
        .to_string()
        .as_bytes());
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let alg_none_no_kid = format!("{}.{}.", b64(br#"{"alg":"none","typ":"at+jwt"}"#), parts[1]);
    let hs256 = format!(
        "{}.{}.{}",
        b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})
            .to_string()
            .as_bytes()),
        parts[1],
        parts[2]
    );
    let truncated = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 4]
    );
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(20 * 1024), parts[2]);
    let forgeries = [
        "garbage".to_string(),
        "a.b.c".to_string(),
        "..".to_string(),
        payload_changed.clone(),
        alg_none.clone(),
        alg_none_no_kid,
        hs256,
        truncated,
        huge.clone(),
        id_token.clone(), // an ID token is not an access token
        refresh.clone(),
    ];

    // UserInfo.
    expect_bearer_error(userinfo_with(&server, None).await, 401, "invalid_token").await;
    for t in &forgeries {
        expect_bearer_error(
            userinfo_with(&server, Some(&format!("Bearer {t}"))).await,
            401,
            "invalid_token",
        )
        .await;
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("rp:{RP_SECRET}"))
    );
    for bad in [
        basic.as_str(),
        "Bearer",
        "Bearer    ",
        "Token abc",
        "bearer",
    ] {
        expect_bearer_error(
            userinfo_with(&server, Some(bad)).await,
            400,
            "invalid_request",
        )
        .await;
    }
    let res = http()
        .post(server.url("/userinfo"))
        .bearer_auth(&access)
        .form(&[("access_token", access.as_str())])
        .send()
        .await
        .expect("POST /userinfo");
    expect_bearer_error(res, 400, "invalid_request").await;
    let res = http()
        .post(server.url("/userinfo"))
        .form(&[
            ("access_token", access.as_str()),
            ("access_token", access.as_str()),
        ])
        .send()
        .await
        .expect("POST /userinfo");
    expect_bearer_error(res, 400, "invalid_request").await;
    let res = userinfo_with(&server, Some(&format!("Bearer {access}"))).await;
    assert_eq!(res.status().as_u16(), 200, "control: the genuine token");
    let info: Value = res.json().await.expect("claims");
    assert_eq!(info["sub"], b64json(parts[1])["sub"]);

    // Introspection: confidential clients only, and unknown tokens are just inactive.
    let introspect = |auth: Option<(&'static str, &'static str)>,
                      form: Vec<(&'static str, String)>| {
        let mut req = http().post(server.url("/introspect")).form(&form);
        if let Some((id, s)) = auth {
            req = req.basic_auth(id, Some(s));
        }
        req.send()
    };
    let res = introspect(None, vec![("token", access.clone())])
        .await
        .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = introspect(
        None,
        vec![("token", access.clone()), ("client_id", "spa".into())],
    )
    .await
    .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = introspect(Some(("rp", "wrong")), vec![("token", access.clone())])
        .await
        .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = introspect(Some(("rp", RP_SECRET)), vec![])
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_request").await;
    let res = http()
        .post(server.url("/introspect"))
        .basic_auth("rp", Some(RP_SECRET))
        .header(CONTENT_TYPE, "application/json")
        .body(json!({"token": access}).to_string())
        .send()
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_request").await;
    // (A token beyond the parameter size limit is refused as a malformed request.)
    let res = introspect(Some(("rp", RP_SECRET)), vec![("token", huge.clone())])
        .await
        .expect("POST");
    expect_json_error(res, 400, "invalid_request").await;
    for t in forgeries
        .iter()
        .filter(|t| **t != refresh && **t != huge)
        .chain(["x".repeat(200)].iter())
    {
        let res = introspect(Some(("rp", RP_SECRET)), vec![("token", t.clone())])
            .await
            .expect("POST");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(
            res.json::<Value>().await.expect("JSON"),
            json!({"active": false}),
            "{t}"
        );
    }
    // Another client's refresh token is not active for this one.
    let res = introspect(Some(("rp2", RP2_SECRET)), vec![("token", refresh.clone())])
        .await
        .expect("POST");
    assert_eq!(
        res.json::<Value>().await.expect("JSON"),
        json!({"active": false})
    );

    // Revocation: authenticated clients only; unknown tokens get 200 and change nothing.
    let revoke = |auth: Option<(&'static str, &'static str)>, form: Vec<(&'static str, String)>| {
        let mut req = http().post(server.url("/revoke")).form(&form);
        if let Some((id, s)) = auth {
            req = req.basic_auth(id, Some(s));
        }
        req.send()
    };
    let res = revoke(None, vec![("token", access.clone())])
        .await
        .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = revoke(
        None,
        vec![("token", refresh.clone()), ("client_id", "rp".into())],
    )
    .await
    .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = revoke(Some(("rp", "wrong")), vec![("token", refresh.clone())])
        .await
        .expect("POST");
    expect_json_error(res, 401, "invalid_client").await;
    let res = revoke(Some(("rp", RP_SECRET)), vec![]).await.expect("POST");
    expect_json_error(res, 400, "invalid_request").await;
    for t in [
        "unknown-token".to_string(),
        "x".repeat(5000),
        payload_changed.clone(),
        alg_none.clone(),
    ] {
        let res = revoke(Some(("rp", RP_SECRET)), vec![("token", t)])
            .await
            .expect("POST");
        assert_eq!(res.status().as_u16(), 200);
    }
    // Another client cannot revoke rp's tokens (same 200, no effect).
    for t in [&access, &refresh] {
        let res = revoke(Some(("rp2", RP2_SECRET)), vec![("token", t.clone())])
            .await
            .expect("POST");
        assert_eq!(res.status().as_u16(), 200);
    }
    assert_eq!(count(&d, Stored::RevokedAccessTokens).await, 0);
    assert_eq!(count(&d, Stored::LiveGrants).await, 1);
    assert_eq!(count(&d, Stored::Grants).await, 1);
    let res = introspect(Some(("rp", RP_SECRET)), vec![("token", access.clone())])
        .await
        .expect("POST");
    assert_eq!(res.json::<Value>().await.expect("JSON")["active"], true);
    let res = introspect(Some(("rp", RP_SECRET)), vec![("token", refresh.clone())])
        .await
        .expect("POST");
    assert_eq!(res.json::<Value>().await.expect("JSON")["active"], true);
    let res = userinfo_with(&server, Some(&format!("Bearer {access}"))).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_no_server_errors(&server);
}
both_backends!(
    resource_endpoints_refuse_forged_tokens,
    super::resource_endpoints
);

// ---------------------------------------------------------------------------------------------
// The login form.

async fn post_login(browser: &Browser, server: &Server, form: &[(&str, &str)]) -> Response {
    browser
        .http
        .post(server.url("/login/password"))
        .form(form)
        .send()
        .await
        .expect("POST /login/password")
}

/// The text of the page's alert paragraph.
fn alert(html: &str) -> String {
    html.split("role=\"alert\">")
        .nth(1)
        .and_then(|r| r.split("</p>").next())
        .unwrap_or_default()
        .to_string()
}

async fn login_form(d: Deployment) {
    let server = d.start().await;
    let browser = en_browser();
    let url = authorize_url(&server, &rp_params(&[("ui_locales", Some("en"))]));
    let page = browser
        .authorize(&server, &url)
        .await
        .expect_err("the login page");
    assert!(page.html.contains("Sign in"), "{}", page.html);
    let (tx, csrf) = (page.tx.clone(), page.csrf.clone());
    assert_eq!(tx.len(), 22);
    assert!(!csrf.is_empty());
    let logins = |e: &StoredEvent| e.kind == "login";

    // The login page itself without a usable transaction.
    for q in [
        "",
        "?tx=",
        "?tx=AAAAAAAAAAAAAAAAAAAAAA",
        "?tx=%FF",
        "?tx=../../../etc/passwd",
        "?tx=a&tx=b",
    ] {
        let res = browser.get(&server.url(&format!("/login{q}"))).await;
        expect_page(res, 400, MSG_TX_EXPIRED).await;
    }

    // CSRF: missing, wrong, or another browser's.
    let other = en_browser();
    let other_page = other
        .authorize(&server, &url)
        .await
        .expect_err("the login page");
    for bad in [
        None,
        Some(""),
        Some("x"),
        Some(other_page.csrf.as_str()),
        Some(&csrf[..csrf.len() - 1]),
    ] {
        let mut form = vec![
            ("tx", tx.as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ];
        if let Some(c) = bad {
            form.push(("csrf", c));
        }
        let res = post_login(&browser, &server, &form).await;
        let body = expect_page(res, 403, MSG_CSRF).await;
        assert!(
            body.contains(&format!("name=\"tx\" value=\"{tx}\"")),
            "the form is shown again"
        );
    }
    assert_eq!(count(&d, Stored::Sessions).await, 0);
    assert_eq!(d.count_events(logins).await, 0);

    // Transactions this browser did not start.
    for bad_tx in [
        None,
        Some("AAAAAAAAAAAAAAAAAAAAAA"),
        Some(other_page.tx.as_str()),
        Some("'; DROP TABLE accounts; --"),
    ] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ];
        if let Some(t) = bad_tx {
            form.push(("tx", t));
        }
        let res = post_login(&browser, &server, &form).await;
        expect_page(res, 400, MSG_TX_EXPIRED).await;
    }
    assert_eq!(count(&d, Stored::Sessions).await, 0);
    assert_eq!(count(&d, Stored::Accounts).await, 1);
    assert_eq!(d.count_events(logins).await, 0);

    // Wrong password and unknown person: one status and one message, two audit reasons.
    let wrong = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", USER),
            ("password", "wrong password"),
        ],
    )
    .await;
    let wrong = expect_page(wrong, 401, MSG_BAD_CREDENTIALS).await;
    let unknown = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", "nobody-here"),
            ("password", PASSWORD),
        ],
    )
    .await;
    let unknown = expect_page(unknown, 401, MSG_BAD_CREDENTIALS).await;
    assert_eq!(alert(&wrong), MSG_BAD_CREDENTIALS);
    assert_eq!(
        alert(&wrong),
        alert(&unknown),
        "the page must not tell which one it was"
    );
    let failures = async |reason: &str| {
        d.count_events(|e| {
            e.kind == "login" && e.outcome == "failure" && e.reason.as_deref() == Some(reason)
        })
        .await
    };
    assert_eq!(failures("wrong_password").await, 1);
    assert_eq!(failures("unknown_account").await, 1);

    // Oversized input: over the parameter limit (10 KB) and over the login limit (300 bytes).
    let ten_kb = "u".repeat(10 * 1024);
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", &ten_kb),
            ("password", PASSWORD),
        ],
    )
    .await;
    let body = expect_page(res, 400, MSG_BAD_REQUEST).await;
    assert!(!body.contains(&ten_kb[..300]));
    let long = "u".repeat(300);
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", &long),
            ("password", PASSWORD),
        ],
    )
    .await;
    expect_page(res, 400, MSG_BAD_CREDENTIALS).await;
    assert_eq!(failures("input_too_long").await, 1);
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", USER),
            ("password", ""),
        ],
    )
    .await;
    expect_page(res, 400, MSG_BAD_CREDENTIALS).await;
    assert_eq!(failures("empty_credentials").await, 1);

    // Markup in the username is shown as text.
    let script = "\"><script>alert(1)</script>";
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", script),
            ("password", "x"),
        ],
    )
    .await;
    let body = expect_page(res, 401, MSG_BAD_CREDENTIALS).await;
    assert!(!body.contains("<script"), "{body}");
    assert!(
        body.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;"),
        "{body}"
    );
    assert_eq!(failures("unknown_account").await, 2);

    // Bodies that are not forms, or not UTF-8.
    let raw = |ct: &'static str, body: Vec<u8>| {
        browser
            .http
            .post(server.url("/login/password"))
            .header(CONTENT_TYPE, ct)
            .body(body)
            .send()
    };
    let json_body =
        json!({"tx": tx, "csrf": csrf, "username": USER, "password": PASSWORD}).to_string();
    expect_page(
        raw("application/json", json_body.into_bytes())
            .await
            .expect("POST"),
        400,
        MSG_BAD_REQUEST,
    )
    .await;
    let not_utf8 = format!("tx={tx}&csrf={csrf}&username=%FF&password=x");
    expect_page(
        raw("application/x-www-form-urlencoded", not_utf8.into_bytes())
            .await
            .expect("POST"),
        400,
        MSG_BAD_REQUEST,
    )
    .await;
    let dup = format!("tx={tx}&csrf={csrf}&username=a&username=b&password=x");
    expect_page(
        raw("application/x-www-form-urlencoded", dup.into_bytes())
            .await
            .expect("POST"),
        400,
        MSG_BAD_REQUEST,
    )
    .await;

    // None of it signed anyone in.
    assert_eq!(count(&d, Stored::Sessions).await, 0);
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.outcome == "success")
            .await,
        0
    );
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.outcome == "failure")
            .await,
        5
    );

    // Control: the same transaction still completes with the right password.
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", USER),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    let back = location(&res);
    assert!(
        back.starts_with(RP_REDIRECT) && param(&back, "code").is_some(),
        "{back}"
    );
    assert_eq!(count(&d, Stored::Sessions).await, 1);
    assert_eq!(
        d.count_events(|e| e.kind == "login" && e.outcome == "success")
            .await,
        1
    );
    // ... once: the transaction is consumed.
    let res = post_login(
        &browser,
        &server,
        &[
            ("tx", &tx),
            ("csrf", &csrf),
            ("username", USER),
            ("password", PASSWORD),
        ],
    )
    .await;
    expect_page(res, 400, MSG_TX_EXPIRED).await;
    assert_no_server_errors(&server);
}
both_backends!(login_form_refuses_hostile_input, super::login_form);

/// Session cookies that vhod never issued are ignored, not trusted and not fatal.
async fn tampered_cookie(d: Deployment) {
    let server = d.start().await;
    let base = url::Url::parse(&server.base).expect("url");
    // Establish a real transaction in one browser, to be attacked from forged cookies.
    let victim = en_browser();
    let url = authorize_url(&server, &rp_params(&[]));
    let victim_page = victim
        .authorize(&server, &url)
        .await
        .expect_err("the login page");

    let values = [
        "garbage!!".to_string(),
        "AAAAAAAAAAAAAAAAAAAAAA".to_string(), // the shape of a session id, but unknown
        "%FF%FE".to_string(),
        "x".repeat(3000),
    ];
    for (i, value) in values.iter().enumerate() {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        jar.add_cookie_str(&format!("vhod={value}; Path=/"), &base);
        let browser = Browser {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(english())
                .build()
                .expect("browser"),
        };
        // Someone else's transaction cannot be continued with a forged cookie.
        let res = browser
            .get(&server.url(&format!("/login?tx={}", victim_page.tx)))
            .await;
        expect_page(res, 400, MSG_TX_EXPIRED).await;
        let res = post_login(
            &browser,
            &server,
            &[
                ("tx", &victim_page.tx),
                ("csrf", &victim_page.csrf),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
        expect_page(res, 400, MSG_TX_EXPIRED).await;
        let res = browser.get(&server.url("/end_session")).await;
        assert_eq!(res.status().as_u16(), 200, "cookie {i}: logout page");
        assert_eq!(count(&d, Stored::Sessions).await, i as i64);

        // The browser still works: a fresh session replaces the forged cookie.
        let back = browser.sign_in(&server, &url, USER, PASSWORD).await;
        assert!(param(&back, "code").is_some(), "cookie {i}: {back}");
        assert_eq!(count(&d, Stored::Sessions).await, i as i64 + 1);
    }
    // The victim's transaction was untouched by all of it.
    let res = victim
        .submit_password(&server, &victim_page, USER, PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(param(&location(&res), "code").is_some());
    assert_no_server_errors(&server);
}
both_backends!(forged_session_cookies_are_ignored, super::tampered_cookie);

// ---------------------------------------------------------------------------------------------
// /end_session.

async fn end_session(d: Deployment) {
    let server = d.start().await;
    let end = |params: &[(&str, &str)]| {
        let mut u = url::Url::parse(&server.url("/end_session")).expect("url");
        u.query_pairs_mut().extend_pairs(params);
        u.to_string()
    };
    let trailing = format!("{RP_LOGOUT}/");
    let query = format!("{RP_LOGOUT}?next=https://evil.example");
    for uri in [
        "http://evil.example/bye",
        trailing.as_str(),
        query.as_str(),
        RP_REDIRECT,
        "javascript:alert(1)",
    ] {
        let res = get(&end(&[
            ("client_id", "rp"),
            ("post_logout_redirect_uri", uri),
            ("state", "s"),
        ]))
        .await;
        expect_page(res, 400, MSG_BAD_REDIRECT).await;
    }
    // Registered for rp, not for rp2.
    let res = get(&end(&[
        ("client_id", "rp2"),
        ("post_logout_redirect_uri", RP_LOGOUT),
    ]))
    .await;
    expect_page(res, 400, MSG_BAD_REDIRECT).await;
    // Without a client there is nothing to check the address against.
    let res = get(&end(&[("post_logout_redirect_uri", RP_LOGOUT)])).await;
    expect_page(res, 400, MSG_UNKNOWN_CLIENT).await;
    let res = get(&end(&[
        ("client_id", "ghost"),
        ("post_logout_redirect_uri", RP_LOGOUT),
    ]))
    .await;
    expect_page(res, 400, MSG_UNKNOWN_CLIENT).await;
    for hint in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJycCJ9."] {
        let res = get(&end(&[
            ("id_token_hint", hint),
            ("client_id", "rp"),
            ("post_logout_redirect_uri", RP_LOGOUT),
        ]))
        .await;
        expect_page(res, 400, MSG_BAD_REQUEST).await;
    }
    let long_state = "s".repeat(2049);
    let res = get(&end(&[
        ("client_id", "rp"),
        ("post_logout_redirect_uri", RP_LOGOUT),
        ("state", &long_state),
    ]))
    .await;
    expect_page(res, 400, MSG_BAD_REQUEST).await;
    // Parameters that cannot be parsed are refused, not ignored.
    let base = server.url("/end_session");
    let evil = "http%3A%2F%2Fevil.example%2Fbye";
    for raw in [
        format!(
            "{base}?client_id=rp&post_logout_redirect_uri={evil}&post_logout_redirect_uri={evil}"
        ),
        format!("{base}?client_id=rp&post_logout_redirect_uri=%FF"),
    ] {
        expect_page(get(&raw).await, 400, MSG_BAD_REQUEST).await;
    }
    // Control: a registered address with its client.
    let res = get(&end(&[
        ("client_id", "rp"),
        ("post_logout_redirect_uri", RP_LOGOUT),
        ("state", "bye-1"),
    ]))
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), format!("{RP_LOGOUT}?state=bye-1"));

    // With a signed-in browser: refused requests do not sign it out.
    let browser = en_browser();
    let (_, _, id_token) = rp_tokens(&server, &browser).await;
    assert_eq!(count(&d, Stored::OpenSessions).await, 1);
    let refused: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("id_token_hint", "garbage")], MSG_BAD_REQUEST),
        (
            vec![("id_token_hint", &id_token), ("client_id", "rp2")],
            MSG_BAD_REQUEST,
        ),
        (
            vec![
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", "http://evil.example/bye"),
            ],
            MSG_BAD_REDIRECT,
        ),
        (
            vec![
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", RP_LOGOUT),
                ("state", &long_state),
            ],
            MSG_BAD_REQUEST,
        ),
    ];
    for (params, message) in &refused {
        let res = browser.get(&end(params)).await;
        expect_page(res, 400, message).await;
    }
    let res = browser
        .get(&format!(
            "{base}?id_token_hint={id_token}&id_token_hint={id_token}"
        ))
        .await;
    expect_page(res, 400, MSG_BAD_REQUEST).await;
    assert_eq!(count(&d, Stored::OpenSessions).await, 1);
    assert_eq!(count(&d, Stored::LiveGrants).await, 1);
    assert_eq!(d.count_events(|e| e.kind == "logout").await, 0);
    // Control: the genuine hint signs out at once.
    let res = browser
        .get(&end(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", RP_LOGOUT),
        ]))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let back = url::Url::parse(&location(&res)).expect("location");
    assert_eq!(
        back.query().unwrap_or_default(),
        "",
        "nothing to add without a state"
    );
    assert_eq!(
        format!("{}://{}{}", back.scheme(), back.authority(), back.path()),
        RP_LOGOUT
    );
    assert_eq!(count(&d, Stored::OpenSessions).await, 0);
    assert_no_server_errors(&server);
}
both_backends!(
    end_session_refuses_unregistered_addresses,
    super::end_session
);

// ---------------------------------------------------------------------------------------------
// Paths and methods that do not exist.

async fn unknown_paths(d: Deployment) {
    let server = d.start().await;
    for path in [
        "/nope",
        "/authorize/extra",
        "/.well-known/nope",
        "/.well-known/openid-configuration/x",
        "/static/..%2f..%2fvhod.toml",
        "/static/vhod.css/..%2f..%2fetc%2fpasswd",
        "/%FF",
        "/admin",
        "/token/",
    ] {
        let res = get(&server.url(path)).await;
        assert_eq!(res.status().as_u16(), 404, "{path}");
        assert_eq!(
            res.json::<Value>().await.expect("JSON"),
            json!({"error": "not_found"}),
            "{path}"
        );
    }
    let res = http()
        .post(server.url("/nope"))
        .form(&[("a", "b")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 404);
    for (method, path) in [
        (reqwest::Method::GET, "/token"),
        (reqwest::Method::GET, "/introspect"),
        (reqwest::Method::GET, "/revoke"),
        (reqwest::Method::GET, "/login/password"),
        (reqwest::Method::PUT, "/userinfo"),
        (reqwest::Method::DELETE, "/authorize"),
        (reqwest::Method::POST, "/jwks"),
    ] {
        let res = http()
            .request(method.clone(), server.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 405, "{method} {path}");
    }
    assert_no_server_errors(&server);
}
both_backends!(unknown_paths_are_404, super::unknown_paths);
