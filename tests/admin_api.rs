//! The administration API over HTTP, on both backends: bearer tokens of scope vhod:admin from
//! automation clients (the main administrator's and an organisation's), problems for every
//! error, pages under cursors, If-Match, Idempotency-Key, and hostile bodies that change
//! nothing: unknown fields, malformed JSON, a cycle in the tree, a delegation too long or in
//! the past, a stale ETag, another organisation's objects.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SYSTEM_SECRET: &str = "automation-secret-0123456789abcdefgh";
const X_SECRET: &str = "x-admin-secret-0123456789abcdefghijk";

struct Api<'a> {
    server: &'a Server,
    token: Option<String>,
}

/// An answer: status, the headers that matter here, the JSON body.
struct Answer {
    status: u16,
    content_type: String,
    etag: Option<String>,
    body: Value,
}

impl Answer {
    fn problem(&self, code: &str) -> &Value {
        assert_eq!(
            self.content_type, "application/problem+json",
            "a problem: {}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("urn:vhod:problem:{code}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], self.status);
        &self.body
    }
}

impl Api<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = http().request(method, self.server.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the API answers");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            etag,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body), &[]).await
    }
}

async fn client_token(server: &Server, id: &str, secret: &str) -> Result<String, Value> {
    let res = http()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "vhod:admin"),
        ])
        .send()
        .await
        .expect("token endpoint");
    let ok = res.status().is_success();
    let body: Value = res.json().await.expect("JSON");
    if ok {
        Ok(body["access_token"].as_str().expect("a token").to_string())
    } else {
        Err(body)
    }
}

fn cli_ok(d: &Deployment, args: &[&str]) {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "vhod {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn count(d: &Deployment, sql: &str) -> i64 {
    d.scalar(sql).await
}

async fn administration_over_http(d: Deployment) {
    cli_ok(
        &d,
        &[
            "org",
            "add",
            "--id",
            "root",
            "--name",
            "Корень",
            "--kind",
            "state_body",
        ],
    );
    cli_ok(
        &d,
        &[
            "org", "add", "--id", "x", "--parent", "root", "--name", "Икс",
        ],
    );
    cli_ok(
        &d,
        &[
            "org",
            "add",
            "--id",
            "s",
            "--parent",
            "root",
            "--name",
            "Сосед",
        ],
    );
    for (id, secret, scope) in [
        ("automation", SYSTEM_SECRET, "system"),
        ("x-admin", X_SECRET, "x"),
    ] {
        cli_ok(
            &d,
            &[
                "client",
                "add",
                "--client-id",
                id,
                "--secret",
                secret,
                "--grant-type",
                "client_credentials",
                "--scope",
                "vhod:admin",
                "--admin-scope",
                scope,
            ],
        );
    }
    cli_ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "emp.x",
            "--password",
            PASSWORD,
            "--org",
            "x",
            "--org-role",
            "registrar",
            "--org-role",
            "reviewer",
            "--family-name",
            "Петров",
        ],
    );
    cli_ok(
        &d,
        &[
            "user",
            "add",
            "--username",
            "emp.s",
            "--password",
            PASSWORD,
            "--org",
            "s",
            "--org-role",
            "registrar",
        ],
    );
    let server = d.start().await;

    // Nobody without a token of scope vhod:admin.
    let anonymous = Api {
        server: &server,
        token: None,
    };
    anonymous
        .get("/admin/v1/organisations")
        .await
        .problem("unauthorized");
    let svc = client_token(&server, "svc", SVC_SECRET).await;
    assert!(svc.is_err(), "svc may not ask for vhod:admin: {svc:?}");
    let doc = anonymous.get("/admin/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    anonymous
        .get("/admin/v1/nowhere")
        .await
        .problem("not_found");

    let sys = Api {
        server: &server,
        token: Some(
            client_token(&server, "automation", SYSTEM_SECRET)
                .await
                .expect("a token"),
        ),
    };
    let xa = Api {
        server: &server,
        token: Some(
            client_token(&server, "x-admin", X_SECRET)
                .await
                .expect("a token"),
        ),
    };

    // Create, read, page.
    let made = sys
        .post(
            "/admin/v1/organisations",
            json!({"id": "x.unit", "parent": "x", "name": "Отдел", "kind": "unit"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.etag.as_deref(), Some("\"1\""));
    let first = sys.get("/admin/v1/organisations?limit=2").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = sys
        .get(&format!("/admin/v1/organisations?limit=2&cursor={cursor}"))
        .await;
    let ids: Vec<&str> = first.body["items"]
        .as_array()
        .into_iter()
        .chain(second.body["items"].as_array())
        .flatten()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["root", "s", "x", "x.unit"],
        "every one once, in order"
    );
    sys.get("/admin/v1/organisations?cursor=bm90LW91cnM")
        .await
        .problem("invalid_request");
    sys.get("/admin/v1/organisations?limit=0")
        .await
        .problem("invalid_request");

    // Updates need the ETag as read; a stale one changes nothing.
    let path = "/admin/v1/organisations/x.unit";
    let rename = json!({"name": "Отдел приёма"});
    sys.call(Method::PATCH, path, Some(rename.clone()), &[])
        .await
        .problem("precondition_required");
    sys.call(
        Method::PATCH,
        path,
        Some(rename.clone()),
        &[("If-Match", "\"7\"")],
    )
    .await
    .problem("precondition_failed");
    assert_eq!(sys.get(path).await.body["name"], "Отдел");
    let renamed = sys
        .call(
            Method::PATCH,
            path,
            Some(rename.clone()),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "Отдел приёма");
    assert_eq!(renamed.etag.as_deref(), Some("\"2\""));
    sys.call(Method::PATCH, path, Some(rename), &[("If-Match", "\"1\"")])
        .await
        .problem("precondition_failed");

    // Hostile bodies: a clear 4xx, nothing stored.
    let orgs = count(&d, "SELECT COUNT(*) FROM organisations").await;
    for (body, code) in [
        (
            json!({"id": "y", "name": "Y", "colour": "red"}),
            "invalid_request",
        ),
        (json!({"id": "Bad Id", "name": "Y"}), "invalid_request"),
        (
            json!({"id": "y", "name": "Y", "parent": "nowhere"}),
            "invalid_request",
        ),
        (
            json!({"id": "y", "name": "Y", "unp": "12"}),
            "invalid_request",
        ),
        (json!({"id": "x", "name": "again"}), "conflict"),
        (json!(["not", "an", "object"]), "invalid_request"),
    ] {
        sys.post("/admin/v1/organisations", body)
            .await
            .problem(code);
    }
    let raw = http()
        .post(server.url("/admin/v1/organisations"))
        .bearer_auth(sys.token.as_deref().unwrap_or_default())
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(raw.status().as_u16(), 400);
    let form = http()
        .post(server.url("/admin/v1/organisations"))
        .bearer_auth(sys.token.as_deref().unwrap_or_default())
        .form(&[("id", "y")])
        .send()
        .await
        .expect("answer");
    assert_eq!(form.status().as_u16(), 415);
    let huge = http()
        .post(server.url("/admin/v1/organisations"))
        .bearer_auth(sys.token.as_deref().unwrap_or_default())
        .header("content-type", "application/json")
        .body(format!("{{\"id\": \"{}\"}}", "y".repeat(200_000)))
        .send()
        .await
        .expect("answer");
    assert_eq!(huge.status().as_u16(), 413);
    assert_eq!(
        huge.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    // A cycle: root under its own grandchild.
    let root = sys.get("/admin/v1/organisations/root").await;
    let etag = root.etag.clone().expect("an ETag");
    sys.call(
        Method::POST,
        "/admin/v1/organisations/root/move",
        Some(json!({"parent": "x.unit"})),
        &[("If-Match", &etag)],
    )
    .await
    .problem("invalid_request");
    assert_eq!(count(&d, "SELECT COUNT(*) FROM organisations").await, orgs);
    assert_eq!(
        sys.get("/admin/v1/organisations/root").await.body["parent"],
        Value::Null
    );

    // Idempotency-Key: a retry gets the first answer; another body under the key is refused.
    let key = [("Idempotency-Key", "create-s-unit-1")];
    let once = json!({"id": "s.unit", "parent": "s", "name": "Отдел С"});
    let a = sys
        .call(
            Method::POST,
            "/admin/v1/organisations",
            Some(once.clone()),
            &key,
        )
        .await;
    let b = sys
        .call(Method::POST, "/admin/v1/organisations", Some(once), &key)
        .await;
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.body, b.body);
    assert_eq!(a.body, b.body);
    sys.call(
        Method::POST,
        "/admin/v1/organisations",
        Some(json!({"id": "s.other", "parent": "s", "name": "Другой"})),
        &key,
    )
    .await
    .problem("idempotency_key_reused");
    assert_eq!(
        count(&d, "SELECT COUNT(*) FROM organisations").await,
        orgs + 1
    );

    // An organisation's administrator: inside its subtree only.
    let under_x = xa
        .post(
            "/admin/v1/organisations",
            json!({"id": "x.unit2", "parent": "x", "name": "Второй отдел"}),
        )
        .await;
    assert_eq!(under_x.status, 201, "{}", under_x.body);
    for (path, body) in [
        (
            "/admin/v1/organisations",
            json!({"id": "s.x", "parent": "s", "name": "Чужой"}),
        ),
        (
            "/admin/v1/organisations",
            json!({"id": "top", "name": "Верх"}),
        ),
    ] {
        let p = xa.post(path, body).await;
        let problem = p.problem("forbidden");
        assert!(problem["policy"].is_string(), "{problem}");
    }
    xa.get("/admin/v1/organisations/s")
        .await
        .problem("forbidden");
    xa.get("/admin/v1/organisations").await.problem("forbidden");
    let children = xa.get("/admin/v1/organisations?parent=x").await;
    assert_eq!(children.status, 200, "{}", children.body);
    let emp_s = d.account("emp.s").await.expect("emp.s").id;
    let emp_x = d.account("emp.x").await.expect("emp.x").id;
    xa.get(&format!("/admin/v1/accounts/{emp_s}"))
        .await
        .problem("forbidden");
    xa.post(
        "/admin/v1/organisations/x/administrators",
        json!({"account_id": emp_x}),
    )
    .await
    .problem("forbidden");
    assert_eq!(
        count(
            &d,
            "SELECT COUNT(*) FROM organisations WHERE id IN ('s.x', 'top')"
        )
        .await,
        0
    );

    // Employees and their roles.
    let made = xa
        .post(
            "/admin/v1/organisations/x/employees",
            json!({"username": "new.emp", "family_name": "Новиков", "roles": ["executor"],
                   "personal_number": "3150575B004PB1"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["roles"], json!(["applicant", "employee"]));
    assert_eq!(made.body["home_org"], "x");
    xa.post(
        "/admin/v1/organisations/s/employees",
        json!({"username": "new.emp2", "roles": ["executor"]}),
    )
    .await
    .problem("forbidden");
    xa.post(
        "/admin/v1/organisations/x/employees",
        json!({"username": "new.emp3", "roles": ["boss"]}),
    )
    .await
    .problem("invalid_request");
    let acc = xa.get(&format!("/admin/v1/accounts/{emp_x}")).await;
    assert_eq!(acc.status, 200, "{}", acc.body);
    let etag = acc.etag.clone().expect("ETag");
    let roles_path = format!("/admin/v1/organisations/x/employees/{emp_x}/roles");
    let set = xa
        .call(
            Method::PUT,
            &roles_path,
            Some(json!({"roles": ["registrar"]})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["roles"], json!(["registrar"]));
    xa.call(
        Method::PUT,
        &roles_path,
        Some(json!({"roles": ["head"]})),
        &[("If-Match", &etag)],
    )
    .await
    .problem("precondition_failed");
    let found = sys
        .get("/admin/v1/accounts?personal_number=3150575B004PB1")
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["items"][0]["username"], "new.emp");
    let by_name = sys.get("/admin/v1/accounts?name=петров").await;
    assert_eq!(
        by_name.body["items"][0]["id"],
        emp_x.as_str(),
        "{}",
        by_name.body
    );

    // Delegations: bounded, not in the past, only what the delegator holds.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let delegations = count(&d, "SELECT COUNT(*) FROM delegations").await;
    let new_emp = made.body["id"].as_str().expect("id").to_string();
    for body in [
        json!({"from": emp_x, "to": new_emp, "org": "x", "roles": ["registrar"], "not_after": now + 100 * 86_400}),
        json!({"from": emp_x, "to": new_emp, "org": "x", "roles": ["registrar"], "not_before": now - 86_400, "not_after": now + 86_400}),
        json!({"from": emp_x, "to": new_emp, "org": "x", "roles": ["head"], "not_after": now + 86_400}),
        json!({"from": emp_x, "to": emp_x, "org": "x", "roles": ["registrar"], "not_after": now + 86_400}),
    ] {
        xa.post("/admin/v1/delegations", body)
            .await
            .problem("invalid_request");
    }
    xa.post(
        "/admin/v1/delegations",
        json!({"from": emp_s, "to": new_emp, "org": "s", "roles": ["registrar"], "not_after": now + 86_400}),
    )
    .await
    .problem("forbidden");
    assert_eq!(
        count(&d, "SELECT COUNT(*) FROM delegations").await,
        delegations
    );
    let del = xa
        .post(
            "/admin/v1/delegations",
            json!({"from": emp_x, "to": new_emp, "org": "x", "roles": ["registrar"],
                   "not_after": now + 7 * 86_400, "reason": "отпуск"}),
        )
        .await;
    assert_eq!(del.status, 201, "{}", del.body);
    assert_eq!(del.body["in_force"], true);
    let del_id = del.body["id"].as_str().expect("id").to_string();
    let listed = xa.get("/admin/v1/delegations?org=x&in_force=true").await;
    assert_eq!(
        listed.body["items"][0]["id"],
        del_id.as_str(),
        "{}",
        listed.body
    );
    let revoked = xa
        .post(&format!("/admin/v1/delegations/{del_id}/revoke"), json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["in_force"], false);
    xa.post(&format!("/admin/v1/delegations/{del_id}/revoke"), json!({}))
        .await
        .problem("conflict");

    // Block and unblock, with the account's ETag.
    let acc = xa.get(&format!("/admin/v1/accounts/{emp_x}")).await;
    let etag = acc.etag.clone().expect("ETag");
    let blocked = xa
        .call(
            Method::POST,
            &format!("/admin/v1/accounts/{emp_x}/block"),
            None,
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    assert_eq!(blocked.body["status"], "blocked");
    xa.call(
        Method::POST,
        &format!("/admin/v1/accounts/{emp_x}/unblock"),
        None,
        &[("If-Match", &etag)],
    )
    .await
    .problem("precondition_failed");
    xa.call(
        Method::POST,
        &format!("/admin/v1/accounts/{emp_s}/block"),
        None,
        &[("If-Match", "\"1\"")],
    )
    .await
    .problem("forbidden");
    assert_eq!(d.account("emp.s").await.expect("emp.s").status, "active");

    // A personal number binds once: another account's is a conflict, a stale ETag nothing.
    let acc = sys.get(&format!("/admin/v1/accounts/{emp_s}")).await;
    let etag = acc.etag.clone().expect("ETag");
    let pn_path = format!("/admin/v1/accounts/{emp_s}/personal-number");
    sys.call(
        Method::PUT,
        &pn_path,
        Some(json!({"personal_number": "3150575B004PB1"})),
        &[("If-Match", &etag)],
    )
    .await
    .problem("conflict");
    sys.call(
        Method::PUT,
        &pn_path,
        Some(json!({"personal_number": "not a number"})),
        &[("If-Match", &etag)],
    )
    .await
    .problem("invalid_request");
    let bound = sys
        .call(
            Method::PUT,
            &pn_path,
            Some(json!({"personal_number": "3010185a001pb3"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    assert_eq!(bound.body["personal_number_bound"], true);
    let found = sys
        .get("/admin/v1/accounts?personal_number=3010185A001PB3")
        .await;
    assert_eq!(
        found.body["items"][0]["id"],
        emp_s.as_str(),
        "{}",
        found.body
    );

    // Clients: the main administrator's; a rotated secret replaces the old one at once.
    xa.get("/admin/v1/clients").await.problem("forbidden");
    let c = sys
        .post(
            "/admin/v1/clients",
            json!({"client_id": "svc2", "grant_types": ["client_credentials"], "scope": "appeals.read"}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let secret = c.body["client_secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    let tok = |s: String| {
        let server = &server;
        async move {
            http()
                .post(server.url("/token"))
                .basic_auth("svc2", Some(s))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token endpoint")
                .status()
                .as_u16()
        }
    };
    assert_eq!(tok(secret.clone()).await, 200);
    let etag = c.etag.clone().expect("ETag");
    let rotated = sys
        .call(
            Method::POST,
            "/admin/v1/clients/svc2/rotate-secret",
            None,
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["client_secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    assert_eq!(tok(secret).await, 401, "the old secret is gone");
    assert_eq!(tok(new_secret.clone()).await, 200);
    let etag = rotated.etag.clone().expect("ETag");
    let disabled = sys
        .call(
            Method::POST,
            "/admin/v1/clients/svc2/disable",
            None,
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(
        tok(new_secret).await,
        400,
        "a disabled client gets no tokens"
    );

    // Every change is audited with its actor.
    let audited = d
        .count_events(|e| {
            e.kind == "admin"
                && e.reason.as_deref() == Some("org_created")
                && e.details
                    .as_deref()
                    .is_some_and(|d| d.contains("client:x-admin"))
        })
        .await;
    assert_eq!(audited, 1);
    let denied = d
        .count_events(|e| e.kind == "admin" && e.reason.as_deref() == Some("policy_denied"))
        .await;
    assert!(denied >= 5, "every deny is audited: {denied}");
}
both_backends!(administration_over_http, super::administration_over_http);
