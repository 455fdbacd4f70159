//! Pins the API's answer to hostile input on a real server, on both backends alike: a NUL
//! character in any text field of a body or in any query filter is INVALID_ARGUMENT (PostgreSQL
//! cannot store it; before, it answered 500), an unknown or negative `scope_id` is
//! UNKNOWN_SCOPE (before, a foreign-key failure and a 500), a duplicate name is CONFLICT in our
//! words (not the database's), and nothing already stored changes.

#![allow(clippy::unwrap_used)] // tests may unwrap

use reqwest::Method;
use serde_json::{Value, json};
use shoal_testkit::api::{Api, RawResponse, assert_error};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
use shoal_types::api::ErrorCode;
use std::time::Duration;

async fn send(api: &Api, method: Method, path: &str, body: Option<&Value>) -> RawResponse {
    let body = body.map(|b| serde_json::to_vec(b).unwrap());
    api.raw(method, path, body).await.unwrap()
}

/// Every string in `v`, by its JSON pointer.
fn string_paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_paths(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                string_paths(item, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

/// Sends `valid` once per string field, with a NUL put into that field: each must be refused.
async fn nul_in_every_field(api: &Api, method: Method, path: &str, valid: &Value) {
    let mut paths = Vec::new();
    string_paths(valid, String::new(), &mut paths);
    assert!(!paths.is_empty(), "{path}: no text fields to try");
    for at in paths {
        let mut body = valid.clone();
        let field = body.pointer_mut(&at).unwrap();
        let text = field.as_str().unwrap().to_string();
        *field = Value::String(format!("{text}\u{0}x"));
        let resp = send(api, method.clone(), path, Some(&body)).await;
        assert_error(
            &resp,
            ErrorCode::InvalidArgument,
            &format!("{method} {path} with NUL in {at}"),
        );
    }
}

async fn hostile_input(database_url: Option<String>) {
    let mut sb = Sandbox::start(SandboxOptions {
        database_url,
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    sb.start_sim_fleet(2, &[]).unwrap();
    let hosts = sb
        .wait_hosts_online(2, Duration::from_secs(30))
        .await
        .unwrap();
    let host = hosts[0].id;
    let api = sb.api();

    let script = json!({"name": "n", "script": "echo hi", "language": "shell",
        "account": "root", "targets": {"host_ids": [host], "ips": [hosts[0].ip],
        "selector": "a=b"}, "timeout": 60});
    let group = json!({"name": "web", "selector": "role=web"});
    let token = json!({"name": "ci", "kind": "api"});
    let scope = json!({"name": "staging"});
    let transfer = json!({"name": "push", "file_source_list": [{"file_list": ["/etc/hostname"],
        "targets": {"host_ids": [host]}, "account": "root"}], "file_target_path": "/tmp/x/",
        "targets": {"host_ids": [host]}, "account": "root"});
    let preview = json!({"targets": {"ips": [hosts[0].ip], "selector": "a=b"}});
    let labels = json!({"labels": {"role": "web"}});

    // The controls: these requests are fine as they are.
    for (method, path, body) in [
        (Method::POST, "/api/v1/groups", &group),
        (Method::POST, "/api/v1/tokens", &token),
        (Method::POST, "/api/v1/scopes", &scope),
        (Method::POST, "/api/v1/targets/preview", &preview),
    ] {
        let resp = send(&api, method, path, Some(body)).await;
        assert_eq!(resp.status, 200, "control {path}: {}", resp.body);
    }
    let before_jobs = send(&api, Method::GET, "/api/v1/jobs", None).await.body;

    let labels_path = format!("/api/v1/hosts/{host}/labels");
    for (method, path, body) in [
        (Method::POST, "/api/v1/script-executions", &script),
        (Method::POST, "/api/v1/groups", &group),
        (Method::PUT, "/api/v1/groups/1", &group),
        (Method::POST, "/api/v1/tokens", &token),
        (Method::POST, "/api/v1/scopes", &scope),
        (Method::POST, "/api/v1/file-transfers", &transfer),
        (Method::POST, "/api/v1/targets/preview", &preview),
        (Method::PUT, labels_path.as_str(), &labels),
    ] {
        nul_in_every_field(&api, method, path, body).await;
    }
    // Label keys are text too.
    let resp = send(
        &api,
        Method::PUT,
        &labels_path,
        Some(&json!({"labels": {"ro\u{0}le": "web"}})),
    )
    .await;
    assert_error(&resp, ErrorCode::InvalidArgument, "NUL in a label key");

    for filter in [
        "/api/v1/jobs?name=a%00b",
        "/api/v1/jobs?operator=a%00b",
        "/api/v1/jobs?ip=10.0.0.1%00",
        "/api/v1/hosts?q=a%00b",
        "/api/v1/hosts?ip=a%00b",
        "/api/v1/hosts?os=a%00b",
        "/api/v1/hosts?selector=a%3Db%00",
        "/api/v1/hosts?status=online%00",
    ] {
        let resp = send(&api, Method::GET, filter, None).await;
        assert_error(&resp, ErrorCode::InvalidArgument, &format!("GET {filter}"));
    }

    // Unknown and negative scopes.
    for scope_id in [999_999, -1, 0] {
        for (path, mut body) in [
            ("/api/v1/tokens", token.clone()),
            (
                "/api/v1/groups",
                json!({"name": "other", "selector": "role=web"}),
            ),
            ("/api/v1/script-executions", script.clone()),
            ("/api/v1/file-transfers", transfer.clone()),
            ("/api/v1/targets/preview", preview.clone()),
        ] {
            body["scope_id"] = json!(scope_id);
            let resp = send(&api, Method::POST, path, Some(&body)).await;
            assert_error(
                &resp,
                ErrorCode::UnknownScope,
                &format!("POST {path} in scope {scope_id}"),
            );
        }
    }

    // Duplicates are conflicts, in our words.
    for (path, body, words) in [
        (
            "/api/v1/groups",
            &group,
            "a group named \"web\" already exists",
        ),
        (
            "/api/v1/scopes",
            &scope,
            "a scope named \"staging\" already exists",
        ),
    ] {
        let resp = send(&api, Method::POST, path, Some(body)).await;
        assert_error(&resp, ErrorCode::Conflict, &format!("duplicate {path}"));
        let message = resp.error().unwrap().error.message;
        assert!(message.contains(words), "{path}: {message}");
        assert!(!resp.body.contains("UNIQUE"), "{path}: {}", resp.body);
    }

    // Nothing that was refused was stored, and nothing stored changed.
    let after_jobs = send(&api, Method::GET, "/api/v1/jobs", None).await.body;
    assert_eq!(before_jobs, after_jobs);
    let groups = send(&api, Method::GET, "/api/v1/groups", None).await;
    let groups: Value = serde_json::from_str(&groups.body).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["name"], "web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_sqlite() {
    hostile_input(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_postgres() {
    let url = shoal_testkit::pg::PgCluster::shared()
        .create_database("shoal_hostile_input")
        .unwrap();
    hostile_input(Some(url)).await;
}
