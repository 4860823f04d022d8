//! The administration API against its own OpenAPI document. Schemathesis, a property-based
//! tester that reads OpenAPI, takes /admin/v1/openapi.json from a real `vhod serve` and sends
//! every operation requests the document allows and requests it forbids, with an automation
//! client's token. The test fails on a 5xx; on an answer the document does not describe (its
//! status, content type, headers or schema); on a request the document forbids that is
//! accepted; on a required header whose absence is not refused; and on any error that is not
//! an RFC 9457 problem (tests/admin_contract/problems.py: the built-in content type check skips
//! undocumented statuses and the probes of unsupported methods).
//!
//! Needs `python3 -m pip install schemathesis==4.32.5` (`.ci/run` installs that version). Under
//! VHOD_TEST_REQUIRE_BROWSER=1 or VHOD_TEST_REQUIRE_SERVERS=1 a missing schemathesis FAILS;
//! elsewhere the test says so and passes without running. VHOD_TEST_CONTRACT_SEED replays
//! another seed than the fixed one (schemathesis prints the seed of every run).
//!
//! The server listens on 127.0.0.1 only; the run is bounded by examples per operation and by a
//! hard deadline after which schemathesis is killed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const CLIENT_ID: &str = "automation";
const CLIENT_SECRET: &str = "automation-secret-0123456789abcdefghij";

/// Test cases per operation and phase: enough to reach every operation's answers with the
/// seeded data, small enough for two cores.
const MAX_EXAMPLES: &str = "30";

/// schemathesis is killed past this; a run takes about 20 s here.
const DEADLINE: Duration = Duration::from_secs(180);

/// Fixed, so that CI sends the same requests each time (override: VHOD_TEST_CONTRACT_SEED).
const SEED: &str = "20261202";

/// The built-in checks of schemathesis 4 that apply to one API and one token, and ours. Left
/// out: positive_data_acceptance (the document cannot say every rule the service applies:
/// the id grammar, names, the role catalogue, the current ETag, cursors the API gave, so
/// schema-valid requests are rightly refused with 400, 412 or 422) and
/// object_level_authorization (it needs a second caller).
const CHECKS: &[&str] = &[
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "admin_errors_are_problems",
];

fn hooks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/admin_contract/problems.py")
}

/// schemathesis run by the interpreter that pip installed it for (its script directory need
/// not be on PATH).
fn schemathesis() -> Command {
    let mut c = Command::new("python3");
    c.args(["-m", "schemathesis.cli"]);
    c
}

/// The version of schemathesis here, or what is missing. The flags and checks used are those
/// of version 4.
fn find_schemathesis() -> Result<String, String> {
    let out = schemathesis()
        .arg("--version")
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!(
            "schemathesis is not installed (python3 -m pip install schemathesis==4.32.5): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let version = text.rsplit(' ').next().unwrap_or_default().to_string();
    if !version.starts_with("4.") {
        return Err(format!(
            "schemathesis 4 is needed, this is {text:?} (python3 -m pip install schemathesis==4.32.5)"
        ));
    }
    Ok(version)
}

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

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("a time")
}

/// What the run can aim at besides what it makes up: the ids of the seeded data.
struct Seeded {
    orgs: Vec<String>,
    accounts: Vec<String>,
    delegations: Vec<String>,
}

/// An automation client of the whole system and a little data: a state body with a unit, an
/// employee in each, and a delegation between them.
async fn seed(d: &Deployment) -> Seeded {
    ok(
        d,
        &[
            "client",
            "add",
            "--client-id",
            CLIENT_ID,
            "--secret",
            CLIENT_SECRET,
            "--grant-type",
            "client_credentials",
            "--scope",
            "vhod:admin",
            "--admin-scope",
            "system",
        ],
    );
    ok(
        d,
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
            "100000017",
        ],
    );
    ok(
        d,
        &[
            "org",
            "add",
            "--id",
            "minjust.hr",
            "--name",
            "Управление кадров",
            "--parent",
            "minjust",
            "--kind",
            "unit",
        ],
    );
    for (user, org, role) in [
        ("petrov", "minjust", "registrar"),
        ("sidorova", "minjust.hr", "reviewer"),
    ] {
        ok(
            d,
            &[
                "user",
                "add",
                "--username",
                user,
                "--password",
                PASSWORD,
                "--role",
                "employee",
                "--org",
                org,
                "--org-role",
                role,
            ],
        );
    }
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    ok(
        d,
        &[
            "delegation",
            "add",
            "--from",
            "petrov",
            "--to",
            "sidorova",
            "--org",
            "minjust",
            "--role",
            "registrar",
            "--until",
            &rfc3339(until),
            "--reason",
            "отпуск",
        ],
    );
    let delegations = ok(d, &["delegation", "list"])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect::<Vec<_>>();
    assert_eq!(delegations.len(), 1, "the seeded delegation");
    let mut accounts = Vec::new();
    for user in [USER, "petrov", "sidorova"] {
        accounts.push(d.account(user).await.expect("a seeded account").id);
    }
    Seeded {
        orgs: vec!["minjust".into(), "minjust.hr".into()],
        accounts,
        delegations,
    }
}

async fn admin_token(server: &Server) -> String {
    let res = http()
        .post(server.url("/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "vhod:admin"),
        ])
        .send()
        .await
        .expect("POST /token");
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON token response");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "vhod:admin", "{body}");
    let lifetime = body["expires_in"].as_u64().unwrap_or_default();
    assert!(
        lifetime > DEADLINE.as_secs() + 60,
        "the token must outlive the run: {body}"
    );
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document's operations as (METHOD, path template).
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// What makes schemathesis's status and content type checks bite: it skips the status check
/// for an operation with a `default` answer, and the content type check for an answer
/// declared without content. So every operation declares its errors as 4XX problems (and
/// nothing else as an error) and no `default`.
fn errors_are_declared_as_problems(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0", "OpenAPI 3.1");
    let problem = &doc["components"]["schemas"]["ProblemBody"];
    for field in ["type", "title", "status"] {
        assert!(
            problem["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "ProblemBody requires {field}: {problem}"
        );
    }
    let mut found = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with("/admin/v1/"), "{path}");
        for (method, op) in item.as_object().expect("a path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            found += 1;
            let at = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.contains_key("default"), "{at}: a default answer");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success answer"
            );
            assert!(responses.contains_key("4XX"), "{at}: no 4XX answer");
            for (status, answer) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let content = answer["content"].as_object();
                let types: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
                assert_eq!(
                    types,
                    ["application/problem+json"],
                    "{at}: the {status} answer's content types"
                );
                let schema = &answer["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ProblemBody",
                    "{at}: the {status} answer's schema"
                );
            }
        }
    }
    assert!(found >= 20, "only {found} operations in the document");
}

fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| {
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'\\'),
                "{v}"
            );
            format!("'{v}'")
        })
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// Settings of the run: where the seeded data lies (drawn half of the time, made up the other
/// half) and 428 as a refusal of a missing If-Match (RFC 6585 §3), which the check does not
/// count among its defaults.
fn config(seeded: &Seeded) -> String {
    let orgs = toml_list(&seeded.orgs);
    let accounts = toml_list(&seeded.accounts);
    let delegations = toml_list(&seeded.delegations);
    // Versions start at 1 and few requests change a resource: one of these is its ETag.
    let etags = toml_list(&(1..=8).map(|v| format!("\"{v}\"")).collect::<Vec<_>>());
    let new_orgs = toml_list(&(1..=6).map(|n| format!("contract-{n}")).collect::<Vec<_>>());
    let actions = toml_list(&[
        "read_organisation".into(),
        "create_organisation".into(),
        "block_account".into(),
        "create_delegation".into(),
    ]);
    let mut resources = vec!["system".to_string()];
    resources.extend(seeded.orgs.iter().map(|o| format!("org:{o}")));
    resources.extend(seeded.accounts.iter().map(|a| format!("account:{a}")));
    let resources = toml_list(&resources);
    let not_after = (time::OffsetDateTime::now_utc() + time::Duration::days(7)).unix_timestamp();
    format!(
        r#"
[checks.missing_required_header]
expected-statuses = [400, 401, 403, 406, 415, 422, 428]

[dictionaries.orgs]
values = {orgs}
[dictionaries.new_orgs]
values = {new_orgs}
[dictionaries.kinds]
values = ['state_body', 'organisation', 'unit']
[dictionaries.accounts]
values = {accounts}
[dictionaries.delegations]
values = {delegations}
[dictionaries.etags]
values = {etags}
[dictionaries.roles]
values = ['registrar', 'reviewer', 'executor']
[dictionaries.not_after]
values = [{not_after}]
[dictionaries.actions]
values = {actions}
[dictionaries.resources]
values = {resources}
[dictionaries.acr]
values = ['low', 'substantial', 'high']

[parameters]
"header.If-Match" = {{ dictionary = "etags", probability = 0.5 }}

[[operations]]
include-path = "/admin/v1/organisations"
parameters = {{ "query.parent" = {{ dictionary = "orgs", probability = 0.5 }}, "body.id" = {{ dictionary = "new_orgs", probability = 0.5 }}, "body.parent" = {{ dictionary = "orgs", probability = 0.5 }}, "body.kind" = {{ dictionary = "kinds", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/organisations/"
parameters = {{ "path.id" = {{ dictionary = "orgs", probability = 0.5 }}, "path.account_id" = {{ dictionary = "accounts", probability = 0.5 }}, "body.account_id" = {{ dictionary = "accounts", probability = 0.5 }}, "body.parent" = {{ dictionary = "orgs", probability = 0.5 }}, "body.kind" = {{ dictionary = "kinds", probability = 0.5 }}, "body.roles[*]" = {{ dictionary = "roles", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/accounts"
parameters = {{ "path.id" = {{ dictionary = "accounts", probability = 0.5 }}, "query.org" = {{ dictionary = "orgs", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/admin/v1/delegations"
parameters = {{ "path.id" = {{ dictionary = "delegations", probability = 0.5 }}, "query.org" = {{ dictionary = "orgs", probability = 0.5 }}, "query.from" = {{ dictionary = "accounts", probability = 0.5 }}, "query.to" = {{ dictionary = "accounts", probability = 0.5 }}, "body.from" = {{ dictionary = "accounts", probability = 0.5 }}, "body.to" = {{ dictionary = "accounts", probability = 0.5 }}, "body.org" = {{ dictionary = "orgs", probability = 0.5 }}, "body.roles[*]" = {{ dictionary = "roles", probability = 0.5 }}, "body.not_after" = {{ dictionary = "not_after", probability = 0.5 }} }}

[[operations]]
include-path = "/admin/v1/policy/explain"
parameters = {{ "body.account_id" = {{ dictionary = "accounts", probability = 0.5 }}, "body.action" = {{ dictionary = "actions", probability = 0.5 }}, "body.resource" = {{ dictionary = "resources", probability = 0.5 }}, "body.acr" = {{ dictionary = "acr", probability = 0.5 }} }}
"#
    )
}

/// Runs schemathesis to its end or the deadline; its exit status (None: killed) and output.
async fn run_schemathesis(
    dir: &Path,
    config: &Path,
    schema_url: &str,
    token: &str,
) -> (Option<std::process::ExitStatus>, String) {
    let seed = std::env::var("VHOD_TEST_CONTRACT_SEED").unwrap_or_else(|_| SEED.to_string());
    let log = dir.join("schemathesis.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut child = schemathesis()
        .arg("--config-file")
        .arg(config)
        .args(["run", schema_url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", &CHECKS.join(",")])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        // No examples database: every run starts from the seed alone, and writes nothing.
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env("SCHEMATHESIS_HOOKS", hooks())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starting schemathesis");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        match child.try_wait().expect("waiting for schemathesis") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// The server's answers under /admin/v1, from its request log, by operation of the document:
/// (METHOD, path template) → status → count. Requests that match no operation (the probes of
/// unsupported methods) are left out.
fn answers(
    log: &str,
    ops: &BTreeSet<(String, String)>,
) -> BTreeMap<(String, String), BTreeMap<u16, u32>> {
    let matches = |template: &str, path: &str| {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    };
    let mut seen: BTreeMap<(String, String), BTreeMap<u16, u32>> = BTreeMap::new();
    for line in log.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(method), Some(path), Some(status)) = (
            e["method"].as_str(),
            e["path"].as_str(),
            e["status"].as_u64(),
        ) else {
            continue;
        };
        // Were two templates to match, the one with fewer parameters is the route axum took.
        let op = ops
            .iter()
            .filter(|(m, t)| m == method && matches(t, path))
            .min_by_key(|(_, t)| t.matches('{').count());
        if let Some(op) = op {
            *seen
                .entry(op.clone())
                .or_default()
                .entry(status as u16)
                .or_default() += 1;
        }
    }
    seen
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The document's schema of an operation's JSON body, its `$ref` resolved.
fn body_schema<'a>(doc: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let name = schema["$ref"].as_str()?.rsplit('/').next()?;
    Some(&doc["components"]["schemas"][name])
}

fn is_type(schema: &Value, t: &str) -> bool {
    match &schema["type"] {
        Value::String(s) => s == t,
        Value::Array(a) => a.iter().any(|v| v == t),
        _ => false,
    }
}

/// One request of the walk below: the path as sent, its query, its body, what holds the NUL.
struct Probe {
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    what: String,
}

/// Every text an operation takes, in turn, with a NUL in it: each path parameter, each text
/// query parameter, a cursor that decodes to one, each text field of the body (and the items
/// of its lists of text); the other parts hold seeded values. PostgreSQL refuses a NUL in text,
/// so a value that reaches it unchecked answers 503 there; random generation seldom draws one,
/// hence this walk. Every answer must be a refusal (4xx) and a problem.
async fn control_characters_are_refused(d: Deployment) {
    let seeded = seed(&d).await;
    let server = d.start().await;
    let token = admin_token(&server).await;
    let doc: Value = http()
        .get(server.url("/admin/v1/openapi.json"))
        .send()
        .await
        .expect("the document")
        .json()
        .await
        .expect("the document is JSON");
    const NUL: &str = "a\u{0}b";
    let nul_cursor = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{NUL}"))
    };
    let (org, account, delegation) = (&seeded.orgs[0], &seeded.accounts[1], &seeded.delegations[0]);
    let fill = |path: &str, nul_in: Option<&str>| {
        let id = if path.starts_with("/admin/v1/accounts/") {
            account
        } else if path.starts_with("/admin/v1/delegations/") {
            delegation
        } else {
            org
        };
        let value = |name: &str, seeded: &str| {
            if nul_in == Some(name) {
                "a%00b".to_string()
            } else {
                seeded.to_string()
            }
        };
        path.replace("{id}", &value("id", id))
            .replace("{account_id}", &value("account_id", account))
    };
    let seeded_value = |field: &str| -> Value {
        match field {
            "account_id" | "from" | "to" => Value::from(account.as_str()),
            "org" | "parent" => Value::from(org.as_str()),
            "roles" => serde_json::json!(["registrar"]),
            "action" => Value::from("read_organisation"),
            "resource" => Value::from("system"),
            "not_after" => Value::from(
                (time::OffsetDateTime::now_utc() + time::Duration::days(7)).unix_timestamp(),
            ),
            _ => Value::from("contract-nul"),
        }
    };
    let mut sent = 0;
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut cases: Vec<Probe> = Vec::new();
            for p in &params {
                let name = p["name"].as_str().unwrap_or_default();
                match p["in"].as_str() {
                    Some("path") => cases.push(Probe {
                        path: fill(path, Some(name)),
                        query: Vec::new(),
                        body: None,
                        what: format!("path {name}"),
                    }),
                    Some("query") if name == "cursor" => cases.push(Probe {
                        path: fill(path, None),
                        query: vec![(name.to_string(), nul_cursor.clone())],
                        body: None,
                        what: "a cursor".into(),
                    }),
                    Some("query") if is_type(&p["schema"], "string") => cases.push(Probe {
                        path: fill(path, None),
                        query: vec![(name.to_string(), NUL.to_string())],
                        body: None,
                        what: format!("query {name}"),
                    }),
                    _ => {}
                }
            }
            if let Some(schema) = body_schema(&doc, op) {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (field, fs) in schema["properties"].as_object().expect("properties") {
                    let nul = if is_type(fs, "string") {
                        Value::from(NUL)
                    } else if is_type(fs, "array") && is_type(&fs["items"], "string") {
                        serde_json::json!([NUL])
                    } else {
                        continue;
                    };
                    let mut body = serde_json::Map::new();
                    for r in &required {
                        body.insert(r.to_string(), seeded_value(r));
                    }
                    body.insert(field.clone(), nul);
                    cases.push(Probe {
                        path: fill(path, None),
                        query: Vec::new(),
                        body: Some(Value::Object(body)),
                        what: format!("body {field}"),
                    });
                }
            }
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            for Probe {
                path: url_path,
                query,
                body,
                what,
            } in cases
            {
                let mut req = http()
                    .request(method.clone(), server.url(&url_path))
                    .bearer_auth(&token)
                    .query(&query)
                    // The seeded resources' current version: a NUL let through would be
                    // applied, not refused as stale.
                    .header("If-Match", "\"1\"");
                if let Some(b) = &body {
                    req = req.json(b);
                }
                let res = req.send().await.expect("a request");
                sent += 1;
                let status = res.status().as_u16();
                let problem = res
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/problem+json"));
                if !(400..500).contains(&status) || !problem {
                    let text = res.text().await.unwrap_or_default();
                    wrong.push(format!("{method} {path} ({what}): {status} {text}"));
                }
            }
        }
    }
    assert!(sent >= 50, "only {sent} requests");
    assert!(
        wrong.is_empty(),
        "a NUL was not refused with a problem:\n{}\n{}",
        wrong.join("\n"),
        tail(&server.logs(), 20)
    );
}
both_backends!(control_characters, super::control_characters_are_refused);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administration_api_keeps_its_openapi_document() {
    let version = match find_schemathesis() {
        Ok(v) => v,
        Err(missing) => {
            skip_unless_required("administration API contract test (schemathesis)", &missing);
            return;
        }
    };
    let d = Deployment::new(Backend::Sqlite)
        .await
        .expect("the SQLite deployment");
    let seeded = seed(&d).await;
    let server = d.start().await;
    let token = admin_token(&server).await;

    let schema_url = server.url("/admin/v1/openapi.json");
    let res = http().get(&schema_url).send().await.expect("the document");
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("the document is JSON");
    errors_are_declared_as_problems(&doc);
    let ops = operations(&doc);

    let config_path = d.dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&seeded)).expect("writing the settings");
    let started = Instant::now();
    let (status, output) = run_schemathesis(d.dir.path(), &config_path, &schema_url, &token).await;
    let took = started.elapsed();

    let logs = server.logs();
    let seen = answers(&logs, &ops);
    let mut table = String::new();
    for op in &ops {
        table.push_str(&format!(
            "  {} {}: {:?}\n",
            op.0,
            op.1,
            seen.get(op).cloned().unwrap_or_default()
        ));
    }
    let Some(status) = status else {
        panic!(
            "schemathesis {version} did not finish in {DEADLINE:?}:\n{}",
            tail(&output, 80)
        );
    };
    assert!(
        status.success(),
        "schemathesis {version} found what the API does not keep of its document ({status}):\n{output}\n\
         the server's last lines:\n{}",
        tail(&logs, 40)
    );
    assert!(
        !logs.contains("panicked"),
        "the server panicked:\n{}",
        tail(&logs, 40)
    );
    // A run that reached no operation proves nothing: each must have been called, and the
    // seeded data must have let the reads through.
    let missed: Vec<_> = ops.iter().filter(|op| !seen.contains_key(*op)).collect();
    assert!(
        missed.is_empty(),
        "operations never called: {missed:?}\n{output}"
    );
    for path in [
        "/admin/v1/organisations",
        "/admin/v1/organisations/{id}",
        "/admin/v1/accounts/{id}",
        "/admin/v1/delegations/{id}",
    ] {
        let ok = seen
            .get(&("GET".to_string(), path.to_string()))
            .is_some_and(|s| s.contains_key(&200));
        assert!(ok, "GET {path} never answered 200:\n{table}");
    }
    println!(
        "schemathesis {version}: {} operations in {took:.1?}\n{table}{}",
        ops.len(),
        tail(&output, 25)
    );
    record_ran("schemathesis");
}
