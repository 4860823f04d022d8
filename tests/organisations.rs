//! Organisations, roles and delegation, end to end: the operator's CLI builds a tree of
//! organisations (and refuses a cycle), makes an employee bound to a personal number with
//! organisation roles and a delegation to them; the employee's first certificate sign-in finds
//! that account; a relying client registered for employees receives the `roles`, `org` and
//! `personal_number` claims; a revoked delegation is gone at the next refresh; an applicant is
//! refused by the staff console with a page and `access_denied`.

mod common;

use common::certs::*;
use common::*;
use openidconnect::{AuthorizationCode, OAuth2TokenResponse, PkceCodeVerifier, TokenResponse};
use serde_json::Value;

const CITIZEN_PN: &str = "3010185A001PB3";
const STAFF_SECRET: &str = "staff-secret-0123456789abcdefghij";

fn ok(d: &Deployment, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "vhod {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(d: &Deployment, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(!out.status.success(), "vhod {} succeeded", args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("a time")
}

async fn employees_carry_their_organisations(d: Deployment) {
    // The tree, and what keeps it one.
    ok(
        &d,
        &[
            "org",
            "add",
            "--id",
            "minjust",
            "--name",
            "Министерство юстиции",
            "--kind",
            "state_body",
            "--unp",
            "100000001",
        ],
    );
    ok(
        &d,
        &[
            "org",
            "add",
            "--id",
            "minjust.grodno",
            "--parent",
            "minjust",
            "--name",
            "Управление юстиции Гродненского облисполкома",
            "--name-be",
            "Упраўленне юстыцыі Гродзенскага аблвыканкама",
            "--kind",
            "unit",
        ],
    );
    ok(
        &d,
        &[
            "org",
            "add",
            "--id",
            "other",
            "--name",
            "Другая организация",
        ],
    );
    let e = refused(
        &d,
        &[
            "org",
            "move",
            "--id",
            "minjust",
            "--parent",
            "minjust.grodno",
        ],
    );
    assert!(e.contains("under itself"), "{e}");
    let e = refused(&d, &["org", "add", "--id", "Bad Id", "--name", "X"]);
    assert!(e.contains("organisation id"), "{e}");
    let e = refused(
        &d,
        &[
            "org", "add", "--id", "x", "--name", "X", "--parent", "nowhere",
        ],
    );
    assert!(e.contains("parent"), "{e}");
    ok(
        &d,
        &[
            "org",
            "update",
            "--id",
            "other",
            "--name",
            "Переименованная",
        ],
    );
    let e = refused(&d, &["org", "update", "--id", "other", "--unp", "12"]);
    assert!(e.contains("УНП"), "{e}");
    let e = refused(
        &d,
        &[
            "user",
            "add",
            "--username",
            "boss",
            "--password",
            PASSWORD,
            "--role",
            "admin",
        ],
    );
    assert!(e.contains("vhod admin grant"), "{e}");
    let list = ok(&d, &["org", "list"]);
    assert!(list.contains("Переименованная"), "{list}");
    assert!(list.contains("minjust\tstate_body"), "{list}");
    assert!(list.contains("\n  minjust.grodno\tunit"), "{list}");

    // People: a head of the unit, and an employee bound to the vectors' citizen's number.
    ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "head",
            "--password",
            PASSWORD,
            "--role",
            "employee",
            "--org",
            "minjust.grodno",
            "--org-role",
            "head",
            "--org-role",
            "reviewer",
            "--given-name",
            "Пётр",
            "--family-name",
            "Петров",
        ],
    );
    ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "emp",
            "--password",
            PASSWORD,
            "--role",
            "employee",
            "--org",
            "minjust.grodno",
            "--org-role",
            "registrar",
            "--personal-number",
            CITIZEN_PN,
            "--given-name",
            "Иван",
            "--family-name",
            "Иванов",
        ],
    );
    let e = refused(
        &d,
        &[
            "user",
            "add",
            "--username",
            "emp2",
            "--password",
            PASSWORD,
            "--org",
            "minjust.grodno",
            "--org-role",
            "boss",
        ],
    );
    assert!(e.contains("unknown organisation role"), "{e}");
    ok(
        &d,
        &[
            "admin",
            "grant",
            "--username",
            "head",
            "--org",
            "minjust.grodno",
        ],
    );
    let head = d.account("head").await.expect("head").id;
    let emp = d.account("emp").await.expect("emp").id;

    // A delegation: bounded, only what the delegator holds.
    let now = time::OffsetDateTime::now_utc();
    let until = rfc3339(now + time::Duration::days(7));
    let e = refused(
        &d,
        &[
            "delegation",
            "add",
            "--from",
            "head",
            "--to",
            "emp",
            "--org",
            "minjust.grodno",
            "--role",
            "reviewer",
            "--until",
            &rfc3339(now + time::Duration::days(120)),
        ],
    );
    assert!(e.contains("at most 90 days"), "{e}");
    let e = refused(
        &d,
        &[
            "delegation",
            "add",
            "--from",
            "head",
            "--to",
            "emp",
            "--org",
            "minjust.grodno",
            "--role",
            "controller",
            "--until",
            &until,
        ],
    );
    assert!(e.contains("does not hold"), "{e}");
    let made = ok(
        &d,
        &[
            "delegation",
            "add",
            "--from",
            "head",
            "--to",
            "emp",
            "--org",
            "minjust.grodno",
            "--role",
            "reviewer",
            "--until",
            &until,
            "--reason",
            "отпуск",
        ],
    );
    let delegation_id = made
        .trim()
        .strip_prefix("delegation ")
        .and_then(|r| r.strip_suffix(" created"))
        .expect("the delegation's id")
        .to_string();
    let listed = ok(&d, &["delegation", "list", "--org", "minjust.grodno"]);
    assert!(listed.contains(&delegation_id), "{listed}");

    // The staff console: employees only, with the personal number released to it.
    ok(
        &d,
        &[
            "client",
            "add",
            "--client-id",
            "staff",
            "--secret",
            STAFF_SECRET,
            "--redirect-uri",
            RP_REDIRECT,
            "--allowed-role",
            "employee",
            "--claim",
            "personal_number",
        ],
    );
    // An administration console: a person's token of scope vhod:admin.
    ok(
        &d,
        &[
            "client",
            "add",
            "--client-id",
            "console",
            "--secret",
            STAFF_SECRET,
            "--redirect-uri",
            RP_REDIRECT,
            "--scope",
            "openid profile roles org vhod:admin",
        ],
    );
    let server = d.start().await;
    let staff = rp(&server, "staff", Some(STAFF_SECRET), RP_REDIRECT).await;
    let scopes = [
        "profile",
        "roles",
        "org",
        "personal_number",
        "offline_access",
    ];

    // The employee's first certificate sign-in finds the account made for them.
    let browser = Browser::new();
    let p = authorization(&staff, &scopes, &[]);
    let page = browser.authorize(&server, &p.url).await.expect_err("login");
    let back = cert_sign_in(&server, &browser, &page, &Holder::vector("citizen")).await;
    let code = code_from(&server, &back, &p);
    let tokens = staff
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(p.verifier.clone()))
        .request_async(&http())
        .await
        .expect("code exchange");
    let id = payload(&tokens.id_token().expect("an ID token").to_string());
    assert_eq!(id["sub"], emp.as_str(), "{id}");
    assert_eq!(id["acr"], "high");
    assert_eq!(
        id["roles"],
        serde_json::json!(["applicant", "employee"]),
        "{id}"
    );
    assert_eq!(id["personal_number"], CITIZEN_PN, "{id}");
    let org = &id["org"];
    assert_eq!(org.as_array().map(Vec::len), Some(1), "{id}");
    let unit = &org[0];
    assert_eq!(unit["id"], "minjust.grodno");
    assert_eq!(
        unit["path"],
        serde_json::json!(["minjust", "minjust.grodno"])
    );
    assert_eq!(unit["roles"], serde_json::json!(["registrar"]));
    assert_eq!(unit["admin"], false);
    assert_eq!(
        unit["delegated"][0]["roles"],
        serde_json::json!(["reviewer"]),
        "{id}"
    );
    assert_eq!(unit["delegated"][0]["from"], head.as_str());
    assert_eq!(
        unit["delegated"][0]["delegation_id"],
        delegation_id.as_str()
    );
    assert!(unit["delegated"][0]["until"].as_i64().is_some(), "{id}");
    let at = payload(tokens.access_token().secret());
    assert_eq!(
        at["org"], *org,
        "the access token carries the same organisations"
    );
    assert_eq!(at["roles"], id["roles"]);
    assert!(at.get("personal_number").is_none(), "not in access tokens");
    let accounts = d.store().await.accounts().count().await.unwrap();

    // Revoked: gone at the next refresh, in the same shape.
    ok(&d, &["delegation", "revoke", "--id", &delegation_id]);
    let refreshed = staff
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .expect("token endpoint")
        .request_async(&http())
        .await
        .expect("refresh");
    let id = payload(&refreshed.id_token().expect("an ID token").to_string());
    assert_eq!(id["org"][0]["delegated"], serde_json::json!([]), "{id}");
    assert_eq!(id["org"][0]["roles"], serde_json::json!(["registrar"]));
    assert_eq!(d.store().await.accounts().count().await.unwrap(), accounts);

    // An applicant is not let into the staff console: a page, and access_denied for it.
    let applicant = Browser::new();
    let p = authorization(&staff, &["profile"], &[]);
    let page = applicant
        .authorize(&server, &p.url)
        .await
        .expect_err("login");
    let res = applicant
        .submit_password(&server, &page, USER, PASSWORD)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let refusal = applicant.get(&server.url(&location(&res))).await;
    assert_eq!(refusal.status().as_u16(), 403);
    let html = refusal.text().await.unwrap();
    let cancel = links(&html)
        .into_iter()
        .find(|l| l.contains("/login/cancel"))
        .unwrap_or_else(|| panic!("a way back to the service: {html}"));
    let back = applicant
        .get(&server.url(&cancel.replace("&amp;", "&")))
        .await;
    let to = location(&back);
    assert!(to.starts_with(RP_REDIRECT), "{to}");
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("access_denied"),
        "{to}"
    );
    let denied = d
        .count_events(|e| e.kind == "login" && e.reason.as_deref() == Some("role_not_allowed"))
        .await;
    assert_eq!(denied, 1, "the refusal is audited with its reason");

    // A person administers with a token of scope vhod:admin from a certificate sign-in.
    ok(
        &d,
        &[
            "admin",
            "grant",
            "--username",
            "emp",
            "--org",
            "minjust.grodno",
        ],
    );
    let console = rp(&server, "console", Some(STAFF_SECRET), RP_REDIRECT).await;
    let p = authorization(&console, &["vhod:admin", "roles", "org"], &[]);
    let Ok(back) = browser.authorize(&server, &p.url).await else {
        panic!("SSO with the certificate session");
    };
    let admin_token = access_token(&server, &console, &back, &p).await;
    // The administrator's scope is in the same array, marked.
    let at = payload(&admin_token);
    assert_eq!(
        at["roles"],
        serde_json::json!(["applicant", "employee", "admin"]),
        "{at}"
    );
    assert_eq!(at["org"][0]["id"], "minjust.grodno");
    assert_eq!(at["org"][0]["admin"], true, "{at}");
    assert_eq!(at["org"][0]["roles"], serde_json::json!(["registrar"]));
    let create = |token: String, parent: &'static str, id: &'static str| {
        let server = &server;
        async move {
            let res = http()
                .post(server.url("/admin/v1/organisations"))
                .bearer_auth(token)
                .json(&serde_json::json!({"id": id, "parent": parent, "name": "Отдел"}))
                .send()
                .await
                .expect("the API answers");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = create(admin_token.clone(), "minjust.grodno", "minjust.grodno.one").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = create(admin_token, "other", "other.one").await;
    assert_eq!(status, 403, "{body}");
    // An applicant's password session: the same scope, and no rights at acr low.
    let p = authorization(&console, &["vhod:admin"], &[]);
    let back = applicant.sign_in(&server, &p.url, USER, PASSWORD).await;
    let low_token = access_token(&server, &console, &back, &p).await;
    let (status, body) = create(low_token, "minjust.grodno", "minjust.grodno.two").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["policy"], "administrators-act-with-high-assurance",
        "{body}"
    );

    ok(
        &d,
        &[
            "admin",
            "revoke",
            "--username",
            "emp",
            "--org",
            "minjust.grodno",
        ],
    );
    let e = refused(
        &d,
        &[
            "admin",
            "revoke",
            "--username",
            "emp",
            "--org",
            "minjust.grodno",
        ],
    );
    assert!(e.contains("is not an administrator"), "{e}");
    ok(&d, &["org", "deactivate", "--id", "other"]);
    assert!(ok(&d, &["org", "list"]).contains("(inactive)"));

    // The policies, offline and explained.
    let checked = ok(&d, &["policy", "check"]);
    assert!(checked.contains("valid"), "{checked}");
    let why = ok(
        &d,
        &[
            "policy",
            "explain",
            "--username",
            "head",
            "--action",
            "create_organisation",
            "--resource",
            "org:other",
        ],
    );
    let why: Value = serde_json::from_str(&why).expect("JSON");
    assert_eq!(why["allowed"], false, "{why}");
    let why = ok(
        &d,
        &[
            "policy",
            "explain",
            "--username",
            "head",
            "--action",
            "create_organisation",
            "--resource",
            "org:minjust.grodno",
        ],
    );
    let why: Value = serde_json::from_str(&why).expect("JSON");
    assert_eq!(why["allowed"], true, "{why}");
    assert_eq!(
        why["policies"],
        serde_json::json!(["external-administrator-in-subtree"])
    );
}

mod employees_carry_their_organisations {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(d) = super::trusting(super::Backend::Sqlite).await {
            super::employees_carry_their_organisations(d).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        if let Some(d) = super::trusting(super::Backend::Shared).await {
            super::employees_carry_their_organisations(d).await;
        }
    }
}

/// An invalid policy stops the start with its file, line and message; `vhod policy check`
/// says the same offline, and passes the shipped folder.
async fn invalid_policies_stop_the_start(d: Deployment) {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let checked = ok(&d, &["policy", "check", shipped.to_str().expect("a path")]);
    assert!(checked.contains("valid"), "{checked}");
    let dir = d.dir.path();
    for f in ["schema.cedarschema", "admin.cedar", "sign_in.cedar"] {
        std::fs::copy(shipped.join(f), dir.join(f)).expect("a policy file");
    }
    std::fs::write(
        dir.join("local.cedar"),
        "// a deployment's own rule\n@id(\"local\")\npermit (principal, action, resource)\nwhen { principal.no_such_attribute };\n",
    )
    .expect("a policy file");
    let e = refused(&d, &["policy", "check"]);
    assert!(e.contains("local.cedar:4:"), "file and line: {e}");
    assert!(e.contains("no_such_attribute"), "{e}");
    // `serve` refuses to start on it (and exits, rather than serving without the rule).
    let mut serve = std::process::Command::new(bin())
        .arg("serve")
        .envs(d.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("VHOD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("vhod serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = serve.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("vhod serve started with an invalid policy");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut s) = serve.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    assert!(!status.success());
    assert!(stderr.contains("local.cedar:4:"), "{stderr}");
    // Fixed, it is taken.
    std::fs::write(
        dir.join("local.cedar"),
        "@id(\"local\")\nforbid (principal, action == Vhod::Action::\"sign_in\", resource)\nwhen { principal.roles.contains(\"auditor\") && context.method == \"password\" };\n",
    )
    .expect("a policy file");
    let checked = ok(&d, &["policy", "check"]);
    assert!(checked.contains("valid"), "{checked}");
}

mod invalid_policies_stop_the_start {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(d) = super::Deployment::new(super::Backend::Sqlite).await {
            super::invalid_policies_stop_the_start(d).await;
        }
    }
}
