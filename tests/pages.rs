//! The pages as a citizen meets them, driven over HTTP with a browser-like client: the language
//! kept on every page and form (every language link a GET of the same page with its state), a
//! way on from every page, messages that say what they are for, fields marked where a form
//! failed, and the service's face (its clients' names, operator, support, personal-data
//! consent).

mod common;

use common::*;
use vhod::notify::{Channel, OutboxEntry};

const OLGA_PHONE: &str = "+375337654321";
const OLGA_EMAIL: &str = "olga@example.by";
const OLGA_PASSWORD: &str = "вясна прыйдзе ў Мінск";
const NEW_PASSWORD: &str = "зялёны конь шпацыруе па мосце";

fn last_to(d: &Deployment, channel: Channel, to: &str) -> OutboxEntry {
    d.outbox()
        .into_iter()
        .rev()
        .find(|m| m.channel == channel && m.to == to)
        .unwrap_or_else(|| panic!("no {channel:?} message to {to}: {:?}", d.outbox()))
}

fn code_in(body: &str) -> String {
    let mut run = String::new();
    for c in body.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else if run.len() == 6 {
            return run;
        } else {
            run.clear();
        }
    }
    panic!("no code in {body:?}")
}

fn link_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no link in {body:?}"))
        .to_string()
}

/// HTML with the escapes minijinja writes turned back into characters.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(unescape)
        .unwrap_or_default()
}

/// The `<html lang>` of a page.
fn page_lang(html: &str) -> String {
    html.split("<html lang=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// The attribute `name` of every `<tag …>` in `html`.
fn attrs(html: &str, tag: &str, name: &str) -> Vec<String> {
    let open = format!("<{tag} ");
    let marker = format!(" {name}=\"");
    html.split(&open)
        .skip(1)
        .filter_map(|rest| {
            let head = format!(" {}", rest.split('>').next()?);
            let v = head.split(&marker).nth(1)?.split('"').next()?;
            Some(unescape(v))
        })
        .collect()
}

/// The language links of a page (the anchors of its language menu), resolved against `page_url`.
fn lang_links(page_url: &str, html: &str) -> Vec<String> {
    let Some(nav) = html
        .split("<nav class=\"langs\"")
        .nth(1)
        .and_then(|r| r.split("</nav>").next())
    else {
        return Vec::new();
    };
    let base = url::Url::parse(page_url).expect("page url");
    attrs(nav, "a", "href")
        .iter()
        .map(|h| base.join(h).expect("a link").to_string())
        .collect()
}

/// Every `<form …>…</form>` of a page.
fn forms(html: &str) -> Vec<String> {
    html.split("<form ")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap_or_default().to_string())
        .collect()
}

/// Every language link of the page is a GET that answers 200 with the page in that language,
/// and names the language once.
async fn language_links_work(b: &Browser, page_url: &str, html: &str) -> Vec<(String, String)> {
    let links = lang_links(page_url, html);
    assert_eq!(links.len(), 2, "two other languages on {page_url}: {html}");
    let mut out = Vec::new();
    for link in links {
        let wanted = param(&link, "ui_locales").unwrap_or_default();
        assert_eq!(
            link.matches("ui_locales=").count(),
            1,
            "one ui_locales in {link}"
        );
        let res = b.get(&link).await;
        let status = res.status().as_u16();
        let body = res.text().await.expect("body");
        assert_eq!(status, 200, "language link {link} of {page_url}: {body}");
        assert_eq!(page_lang(&body), wanted, "{link}");
        out.push((link, body));
    }
    out
}

/// Every form of the page carries the page's language.
fn forms_carry_language(html: &str) {
    let lang = page_lang(html);
    for f in forms(html) {
        assert!(
            f.contains(&format!("name=\"ui_locales\" value=\"{lang}\"")),
            "a form without ui_locales={lang}: {f}"
        );
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

async fn login_page(server: &Server, b: &Browser, extra: &[(&str, &str)]) -> LoginPage {
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let p = authorization(&client, &[], extra);
    b.authorize(server, &p.url)
        .await
        .expect_err("a fresh browser sees the login page")
}

async fn signed_in(server: &Server, b: &Browser) {
    let client = rp(server, "rp", Some(RP_SECRET), RP_REDIRECT).await;
    let p = authorization(&client, &[], &[]);
    let back = b.sign_in(server, &p.url, USER, PASSWORD).await;
    code_from(server, &back, &p);
}

/// Registers Olga from a login page in `lang`; returns the confirmation page's HTML.
async fn register(server: &Server, b: &Browser, tx: &str, lang: &str) -> String {
    let (status, html) = get(
        b,
        &server.url(&format!("/register?tx={tx}&ui_locales={lang}")),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let res = b
        .http
        .post(server.url("/register"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", lang),
            ("family_name", "Кавалёва"),
            ("given_name", "Вольга"),
            ("middle_name", ""),
            ("phone", OLGA_PHONE),
            ("email", OLGA_EMAIL),
            ("username", "olga.k"),
            ("password", OLGA_PASSWORD),
            ("consent", "on"),
        ])
        .send()
        .await
        .expect("POST /register");
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    let next = server.url(&location(&res));
    let (status, html) = get(b, &next).await;
    assert_eq!(status, 200, "{html}");
    html
}

// ---- 18. The language is kept, and every language link is a GET of the same page ----

async fn language_after_a_failed_login(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let page = login_page(&server, &b, &[("ui_locales", "ru")]).await;
    forms_carry_language(&page.html);
    language_links_work(&b, &page.url, &page.html).await;

    // The person switched to Belarusian and then mistyped the password: the answer stays in
    // Belarusian, and its language links open the login page again (not the POST-only URL).
    let (_, be) = get(&b, &format!("{}&ui_locales=be", page.url)).await;
    assert_eq!(page_lang(&be), "be");
    forms_carry_language(&be);
    let (status, html) = post(
        &b,
        &server.url("/login/password"),
        &[
            ("tx", page.tx.as_str()),
            ("csrf", hidden(&be, "csrf").as_str()),
            ("ui_locales", "be"),
            ("username", USER),
            ("password", "not the password"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{html}");
    assert_eq!(page_lang(&html), "be", "the chosen language is kept");
    forms_carry_language(&html);
    let after = language_links_work(&b, &server.url("/login/password"), &html).await;
    for (link, body) in &after {
        assert!(link.contains(&page.tx), "the link keeps the login: {link}");
        assert!(body.contains("name=\"password\""), "the login form: {body}");
    }
    // And the login goes on from the switched page.
    let (link, body) = &after[0];
    let res = b
        .http
        .post(server.url("/login/password"))
        .form(&[
            ("tx", page.tx.as_str()),
            ("csrf", hidden(body, "csrf").as_str()),
            ("ui_locales", param(link, "ui_locales").unwrap().as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert!(location(&res).starts_with(RP_REDIRECT));
}
both_backends!(
    language_links_are_gets_that_keep_the_login,
    super::language_after_a_failed_login
);

async fn language_on_registration_pages(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let page = login_page(&server, &b, &[]).await;
    let url = server.url(&format!("/register?tx={}&ui_locales=be", page.tx));
    let (_, form) = get(&b, &url).await;
    forms_carry_language(&form);
    language_links_work(&b, &url, &form).await;

    // A refused registration (POST) still offers working language links.
    let (status, html) = post(
        &b,
        &server.url("/register"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("ui_locales", "be"),
            ("family_name", "Кавалёва"),
            ("given_name", "Вольга"),
            ("phone", "12"),
            ("email", OLGA_EMAIL),
            ("username", "olga.k"),
            ("password", OLGA_PASSWORD),
            ("consent", "on"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(page_lang(&html), "be");
    forms_carry_language(&html);
    language_links_work(&b, &server.url("/register"), &html).await;

    // The confirmation page: one ui_locales per link, each giving that language.
    let confirm = register(&server, &b, &page.tx, "be").await;
    assert_eq!(page_lang(&confirm), "be");
    forms_carry_language(&confirm);
    language_links_work(&b, &server.url("/register/confirm?ui_locales=be"), &confirm).await;

    // The email link opened in another browser: its language links keep working after the
    // token was used.
    let link = link_in(&last_to(&d, Channel::Email, OLGA_EMAIL).body);
    let other = Browser::new();
    let (status, html) = get(&other, &format!("{link}&ui_locales=en")).await;
    assert_eq!(status, 200, "{html}");
    for (l, body) in language_links_work(&other, &link, &html).await {
        assert!(l.contains("token="), "the link keeps its token: {l}");
        assert!(!body.contains("error"), "no 'link invalid': {body}");
    }
}
both_backends!(
    registration_pages_keep_their_language,
    super::language_on_registration_pages
);

async fn language_on_recovery_pages(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let (_, form) = get(&b, &server.url("/forgot?ui_locales=en")).await;
    forms_carry_language(&form);
    language_links_work(&b, &server.url("/forgot?ui_locales=en"), &form).await;

    // By SMS: the code form (an answer to a POST) switches language and stays the code form.
    let (status, html) = post(
        &b,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("ui_locales", "en"),
            ("login", USER),
            ("channel", "sms"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    forms_carry_language(&html);
    for (_, body) in language_links_work(&b, &server.url("/forgot"), &html).await {
        assert!(
            body.contains("name=\"code\""),
            "still the code form: {body}"
        );
    }

    // By email: the link's page keeps its token in the language links.
    let (_, form) = get(&b, &server.url("/forgot?ui_locales=en")).await;
    let (status, _) = post(
        &b,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("ui_locales", "en"),
            ("login", "ivan@example.by"),
            ("channel", "email"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let link = link_in(&last_to(&d, Channel::Email, "ivan@example.by").body);
    let (status, html) = get(&b, &link).await;
    assert_eq!(status, 200, "{html}");
    forms_carry_language(&html);
    for (l, body) in language_links_work(&b, &link, &html).await {
        assert!(l.contains("token="), "{l}");
        assert!(
            body.contains("name=\"token\""),
            "still the reset form: {body}"
        );
    }
}
both_backends!(
    recovery_pages_keep_their_language,
    super::language_on_recovery_pages
);

// ---- 19. A way on from every page ----

async fn ways_on(d: Deployment) {
    let server = d.start().await;

    // Unknown URLs: an HTML page for browsers, JSON for API clients.
    let res = http()
        .get(server.url("/no/such/page"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("Accept-Language", "be")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert_eq!(page_lang(&html), "be");
    assert!(html.contains("Старонка не знойдзена"), "{html}");
    let res = http()
        .get(server.url("/no/such/page"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let res = http()
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "no Accept: JSON"
    );

    // The anonymous profile page offers a sign-in that ends on the profile.
    let b = Browser::new();
    let (status, html) = get(&b, &server.url("/profile?ui_locales=en")).await;
    assert_eq!(status, 401);
    let signin = attrs(&html, "a", "href")
        .into_iter()
        .find(|h| h.starts_with("/authorize?"))
        .unwrap_or_else(|| panic!("a sign-in link: {html}"));
    let back = b
        .sign_in(&server, &server.url(&signin), USER, PASSWORD)
        .await;
    assert!(back.starts_with(&server.url("/profile")), "{back}");
    let res = b.get(&back).await;
    let status = res.status().as_u16();
    let back = if status == 303 {
        server.url(&location(&res))
    } else {
        back
    };
    let (status, html) = get(&b, &back).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Иванов Иван"), "the profile: {html}");
    assert_eq!(page_lang(&html), "en", "the language came along");

    // Pages link to the profile.
    let other = Browser::new();
    let page = login_page(&server, &other, &[]).await;
    assert!(
        attrs(&page.html, "a", "href")
            .iter()
            .any(|h| h.starts_with("/profile")),
        "{}",
        page.html
    );

    // Back after a finished login: not "session expired" but a way on.
    let c = Browser::new();
    let page = login_page(&server, &c, &[]).await;
    let res = c.submit_password(&server, &page, USER, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    let (status, html) = get(&c, &page.url).await;
    assert_eq!(status, 200, "{html}");
    let links = attrs(&html, "a", "href");
    assert!(links.iter().any(|h| h.starts_with("/profile")), "{html}");
    assert!(
        links.iter().any(|h| h.starts_with("http://127.0.0.1:9/")),
        "back to the service: {html}"
    );

    // Password reset by email (started without a login) ends with a way on.
    let r = Browser::new();
    let (_, form) = get(&r, &server.url("/forgot")).await;
    post(
        &r,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("login", USER),
            ("channel", "email"),
        ],
    )
    .await;
    let link = link_in(&last_to(&d, Channel::Email, "ivan@example.by").body);
    let (_, html) = get(&r, &link).await;
    let (status, html) = post(
        &r,
        &server.url("/forgot/email"),
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("token", hidden(&html, "token").as_str()),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        attrs(&html, "a", "href")
            .iter()
            .any(|h| h.starts_with("/profile") && html.contains("class=\"button\"")),
        "a way on after the reset: {html}"
    );
    language_links_work(&r, &server.url("/forgot/email"), &html).await;
}
both_backends!(every_page_has_a_way_on, super::ways_on);

// ---- 20. Messages ----

/// Does `text` fit one SMS: 160 GSM 03.38 septets, or 70 UCS-2 characters?
fn one_sms_segment(text: &str) -> bool {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\x0c";
    let mut septets = 0;
    for c in text.chars() {
        if BASIC.contains(c) {
            septets += 1;
        } else if EXTENDED.contains(c) {
            septets += 2;
        } else {
            return text.encode_utf16().count() <= 70;
        }
    }
    septets <= 160
}

async fn sms_texts(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let page = login_page(&server, &b, &[]).await;
    register(&server, &b, &page.tx, "ru").await;
    let registration = last_to(&d, Channel::Sms, OLGA_PHONE).body;

    let (_, form) = get(&b, &server.url("/forgot?ui_locales=be")).await;
    post(
        &b,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("ui_locales", "be"),
            ("login", USER),
            ("channel", "sms"),
        ],
    )
    .await;
    let recovery = last_to(&d, Channel::Sms, PHONE).body;

    let p = Browser::new();
    signed_in(&server, &p).await;
    let (_, profile) = get(&p, &server.url("/profile?ui_locales=en")).await;
    let (status, html) = post(
        &p,
        &server.url("/profile/phone"),
        &[
            ("csrf", hidden(&profile, "csrf").as_str()),
            ("ui_locales", "en"),
            ("phone", "+375 44 555-66-77"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let change = last_to(&d, Channel::Sms, "+375445556677").body;

    for (text, purpose, service) in [
        (&registration, "регистрац", "Система обращений"),
        (&recovery, "пароля", "Сістэма зваротаў"),
        (&change, "phone number", "Appeals system"),
    ] {
        assert!(text.contains(purpose), "what the code is for: {text}");
        assert!(text.contains(service), "who sends it: {text}");
        assert_eq!(code_in(text).len(), 6);
        assert!(one_sms_segment(text), "one SMS segment: {text}");
    }
    assert!(one_sms_segment(&"a".repeat(160)) && !one_sms_segment(&"a".repeat(161)));
    assert!(one_sms_segment(&"я".repeat(70)) && !one_sms_segment(&"я".repeat(71)));
}
both_backends!(
    sms_say_what_the_code_is_for_in_one_segment,
    super::sms_texts
);

async fn confirmation_messages(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let page = login_page(&server, &b, &[]).await;
    let confirm = register(&server, &b, &page.tx, "ru").await;

    // Resending the email at once: an email wording, and "too many requests", not 503.
    let (status, html) = post(
        &b,
        &server.url("/register/confirm"),
        &[
            ("csrf", hidden(&confirm, "csrf").as_str()),
            ("ui_locales", "ru"),
            ("action", "resend_email"),
        ],
    )
    .await;
    assert_eq!(status, 429, "{html}");
    assert!(html.contains("письмо"), "an email wording: {html}");
    assert!(!html.contains("Новый код"), "not the SMS wording: {html}");

    // A confirmation shows once.
    let code = code_in(&last_to(&d, Channel::Sms, OLGA_PHONE).body);
    let (status, html) = post(
        &b,
        &server.url("/register/confirm"),
        &[
            ("csrf", hidden(&confirm, "csrf").as_str()),
            ("ui_locales", "ru"),
            ("code", code.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("Телефон подтверждён").count(), 1, "{html}");
    let link = link_in(&last_to(&d, Channel::Email, OLGA_EMAIL).body);
    let (status, html) = get(&b, &link).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        html.matches("почты подтверждён").count() + html.matches("почта подтверждена").count(),
        1,
        "{html}"
    );
}
both_backends!(
    confirmations_show_once_with_the_right_words,
    super::confirmation_messages
);

async fn one_word_for_the_login(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    for (lang, word, other) in [
        ("ru", "Логин", "Имя пользователя"),
        ("be", "Лагін", "Імя карыстальніка"),
        ("en", "Login", "Username"),
    ] {
        let page = login_page(&server, &b, &[("ui_locales", lang)]).await;
        let res = b.submit_password(&server, &page, USER, "wrong").await;
        let failed = res.text().await.unwrap();
        let (_, register) = get(&b, &server.url(&format!("/register?ui_locales={lang}"))).await;
        let (_, forgot) = get(&b, &server.url(&format!("/forgot?ui_locales={lang}"))).await;
        for html in [&page.html, &failed, &register, &forgot] {
            assert!(html.contains(word), "{word} on {html}");
            assert!(!html.contains(other), "not {other} on {html}");
        }
        // The login's pattern is told before the person types.
        // The hint's own element: up to its closing tag.
        let hint = register
            .split("id=\"username-hint\"")
            .nth(1)
            .and_then(|rest| rest.split("</").next())
            .unwrap_or_else(|| panic!("a login hint: {register}"));
        assert!(hint.contains("3") && hint.contains("64"), "{hint}");
        assert!(register.contains("aria-describedby=\"username-hint\""));
    }

    // Belarusian names the electronic digital signature in Belarusian.
    let cert = Deployment::new(d.backend).await.expect("deployment");
    let server = cert.start_with(&[("VHOD_DEV", "true")]).await;
    let page = login_page(&server, &Browser::new(), &[("ui_locales", "be")]).await;
    assert!(page.html.contains("ЭЛП"), "{}", page.html);
    assert!(!page.html.contains("ЭЦП"), "{}", page.html);
}
both_backends!(
    the_same_word_for_the_login_everywhere,
    super::one_word_for_the_login
);

async fn profile_words(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    signed_in(&server, &b).await;
    let (_, html) = get(&b, &server.url("/profile?ui_locales=ru")).await;
    assert!(
        html.contains("подтверждена"),
        "почта … подтверждена: {html}"
    );
    // The old and the new address are told apart.
    let (status, html) = post(
        &b,
        &server.url("/profile/email"),
        &[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("ui_locales", "ru"),
            ("email", "ivan.new@example.by"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let old = vhod::identity::contact::Email::parse("ivan@example.by")
        .unwrap()
        .masked();
    let new = vhod::identity::contact::Email::parse("ivan.new@example.by")
        .unwrap()
        .masked();
    assert_ne!(old, new, "masked addresses differ");
    assert!(html.contains(&old) && html.contains(&new), "{html}");
    assert!(!new.contains("ivan.new"), "still masked: {new}");
}
both_backends!(
    profile_words_agree_and_addresses_differ,
    super::profile_words
);

// ---- 21. Forms ----

/// The field `name` is marked as the one at fault: aria-invalid, described by its own message,
/// focused.
fn field_marked(html: &str, name: &str) {
    let input = html
        .split(&format!("name=\"{name}\""))
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_else(|| panic!("no field {name}: {html}"));
    assert!(input.contains("aria-invalid=\"true\""), "{name}: {input}");
    assert!(input.contains("autofocus"), "{name} focused: {input}");
    let described = input
        .split("aria-describedby=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("{name} described: {input}"));
    let id = described
        .split_whitespace()
        .find(|id| id.ends_with("-error"))
        .unwrap_or_else(|| panic!("{name} error message: {described}"));
    let msg = html
        .split(&format!("id=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no element #{id}: {html}"));
    let text = msg.split('<').next().unwrap_or_default();
    assert!(text.trim_start_matches('>').trim().len() > 3, "{id}: {msg}");
    assert_eq!(
        html.matches("aria-invalid=\"true\"").count(),
        1,
        "only {name} is marked"
    );
}

async fn field_errors(d: Deployment) {
    let server = d.start().await;
    let b = Browser::new();
    let page = login_page(&server, &b, &[]).await;
    let res = b.submit_password(&server, &page, USER, "wrong").await;
    field_marked(&res.text().await.unwrap(), "password");

    let (_, form) = get(&b, &server.url("/register?ui_locales=en")).await;
    let csrf = hidden(&form, "csrf");
    let good: Vec<(&str, &str)> = vec![
        ("csrf", csrf.as_str()),
        ("ui_locales", "en"),
        ("family_name", "Кавалёва"),
        ("given_name", "Вольга"),
        ("phone", OLGA_PHONE),
        ("email", OLGA_EMAIL),
        ("username", "olga.k"),
        ("password", OLGA_PASSWORD),
        ("consent", "on"),
    ];
    for (field, bad) in [
        ("given_name", "<b>"),
        ("phone", "12"),
        ("email", "not an email"),
        ("username", "Ольга"),
        ("password", "short"),
    ] {
        let form: Vec<(&str, &str)> = good
            .iter()
            .map(|(k, v)| (*k, if *k == field { bad } else { *v }))
            .collect();
        let (status, html) = post(&b, &server.url("/register"), &form).await;
        assert_eq!(status, 400, "{field}: {html}");
        field_marked(&html, field);
    }
    // No consent to the processing of personal data: refused, the checkbox marked.
    let form: Vec<(&str, &str)> = good
        .iter()
        .filter(|(k, _)| *k != "consent")
        .copied()
        .collect();
    let (status, html) = post(&b, &server.url("/register"), &form).await;
    assert_eq!(status, 400, "{html}");
    field_marked(&html, "consent");

    let (_, form) = get(&b, &server.url("/forgot?ui_locales=en")).await;
    let (status, html) = post(
        &b,
        &server.url("/forgot"),
        &[
            ("csrf", hidden(&form, "csrf").as_str()),
            ("ui_locales", "en"),
            ("login", ""),
        ],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    field_marked(&html, "login");

    // The stylesheet: choices beside their labels, the page font in controls.
    let css = http()
        .get(server.url("/static/vhod.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.contains("input[type=checkbox],input[type=radio]{"),
        "{css}"
    );
    assert!(css.contains("font:inherit"), "{css}");
    assert!(css.contains("fieldset{") && css.contains("dl{"), "{css}");
    assert!(css.contains(".field-error{"), "{css}");
    assert!(
        page.html
            .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    );
}
both_backends!(the_field_at_fault_is_marked, super::field_errors);

// ---- 22. The service's face ----

async fn face(d: Deployment) {
    let out = d.cli(&[
        "client",
        "add",
        "--client-id",
        "appeals",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:9/appeals",
        "--display-name",
        "Портал обращений",
        "--display-name-be",
        "Партал зваротаў",
        "--display-name-en",
        "Appeals portal",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = d
        .start_with(&[
            ("VHOD_SERVICE_NAME", "Вход в систему обращений"),
            ("VHOD_SERVICE_NAME_EN", "Sign-in to the appeals system"),
            ("VHOD_OPERATOR", "ОАО «Оператор»"),
            ("VHOD_OPERATOR_EN", "Operator JSC"),
            ("VHOD_SUPPORT_EMAIL", "help@example.by"),
            ("VHOD_SUPPORT_PHONE", "+375 17 000-00-00"),
            ("VHOD_PRIVACY_URL", "https://example.by/privacy"),
        ])
        .await;
    let client = rp(&server, "appeals", None, "http://127.0.0.1:9/appeals").await;
    for (lang, name, service, operator) in [
        (
            "ru",
            "Портал обращений",
            "Вход в систему обращений",
            "ОАО «Оператор»",
        ),
        (
            "be",
            "Партал зваротаў",
            "Вход в систему обращений",
            "ОАО «Оператор»",
        ),
        (
            "en",
            "Appeals portal",
            "Sign-in to the appeals system",
            "Operator JSC",
        ),
    ] {
        let b = Browser::new();
        let p = authorization(&client, &[], &[("ui_locales", lang)]);
        let page = b.authorize(&server, &p.url).await.expect_err("login page");
        let html = unescape(&page.html);
        assert!(html.contains(name), "display name: {html}");
        assert!(
            !html.contains("<b>appeals</b>"),
            "not the client_id: {html}"
        );
        assert!(html.contains(service), "service name: {html}");
        let footer = html
            .split("<footer")
            .nth(1)
            .unwrap_or_else(|| panic!("a footer: {html}"));
        assert!(footer.contains(operator), "operator: {footer}");
        assert!(footer.contains("mailto:help@example.by"), "{footer}");
        assert!(footer.contains("tel:+375170000000"), "{footer}");
        assert!(footer.contains("https://example.by/privacy"), "{footer}");
    }

    // A client without a display name is shown by its id; the default service name is used.
    let plain = Browser::new();
    let page = login_page(&server, &plain, &[]).await;
    assert!(unescape(&page.html).contains("rp"));

    // Registration shows the consent text and asks for the checkbox.
    let (_, html) = get(&plain, &server.url("/register?ui_locales=ru")).await;
    assert!(html.contains("персональных данных"), "{html}");
    let consent = html
        .split("name=\"consent\"")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_else(|| panic!("a consent checkbox: {html}"));
    assert!(consent.contains("required"), "{consent}");
    assert!(
        html.contains("type=\"checkbox\" name=\"consent\""),
        "{html}"
    );

    // The consent wording is a setting.
    let d2 = Deployment::new(d.backend).await.expect("deployment");
    let server = d2
        .start_with(&[("VHOD_CONSENT_TEXT", "Я согласен с правилами портала.")])
        .await;
    let (_, html) = get(&Browser::new(), &server.url("/register?ui_locales=be")).await;
    assert!(html.contains("Я согласен с правилами портала."), "{html}");
}
both_backends!(the_service_shows_its_face, super::face);
