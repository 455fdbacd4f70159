//! Pins the API's error contract and token handling on a real SQLite store, through the router
//! without a socket: every bad request gets its documented code and HTTP status, never a 500.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

struct Fixture {
    app: App,
    token: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// A fixture on a fresh SQLite store whose options `tweak` adjusts, with an API token.
async fn fixture_with(tweak: impl FnOnce(&mut Options)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        shoal_store_sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open store"),
    );
    fixture_on(store, dir, tweak).await
}

/// A fixture on a fresh PostgreSQL database `name` of the shared test cluster.
async fn fixture_pg(name: &str) -> Fixture {
    let url = shoal_testkit::pg::PgCluster::shared()
        .create_database(name)
        .expect("database");
    let store: Arc<dyn Store> = Arc::new(
        shoal_store_postgres::PgStore::connect(&url)
            .await
            .expect("connect"),
    );
    fixture_on(store, tempfile::tempdir().expect("tempdir"), |_| {}).await
}

async fn fixture_on(
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut Options),
) -> Fixture {
    let mut opts = Options {
        data_dir: dir.path().to_path_buf(),
        ..Options::default()
    };
    tweak(&mut opts);
    let (app, rx) = build_app(
        opts,
        store,
        "test-server".into(),
        metrics_handle().expect("metrics"),
    );
    tokio::spawn(writer::Writer::new(app.clone(), rx).run(CancellationToken::new()));
    let (token, _) = auth::issue_token(
        &app,
        auth::TokenSpec::api("t", crate::ADMIN_USER_ID),
        "test",
    )
    .await
    .expect("token");
    Fixture {
        app,
        token,
        _dir: dir,
    }
}

/// Enrolls a host `web1` (10.0.0.1) whose agent is not connected; its id.
async fn add_web_host(f: &Fixture) -> i64 {
    shoal_store::conformance::add_host(
        &*f.app.store,
        shoal_types::DEFAULT_SCOPE,
        "web1",
        &["10.0.0.1"],
        Default::default(),
    )
    .await
    .id
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Body::from(body.unwrap_or("").to_string()))
        .expect("request");
    send(f, req).await
}

/// Sends `req` through the router; the status and the body as JSON (null when it is not).
async fn send(f: &Fixture, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = api::router(f.app.clone())
        .oneshot(req)
        .await
        .expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

async fn check_error(
    f: &Fixture,
    method: &str,
    uri: &str,
    body: Option<&str>,
    status: u16,
    code: &str,
) {
    let (s, json) = call(f, method, uri, body, Some(&f.token)).await;
    assert_eq!(s.as_u16(), status, "{method} {uri} {body:?}: {json}");
    assert_eq!(
        json["error"]["code"], code,
        "{method} {uri} {body:?}: {json}"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn bad_input_gets_stable_codes() {
    let f = fixture().await;
    let exec = "/api/v1/script-executions";
    check_error(
        &f,
        "POST",
        exec,
        Some("{\"script\": "),
        400,
        "MALFORMED_JSON",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"cobol","targets":{"host_ids":[1]}}"#),
        400,
        "UNKNOWN_LANGUAGE",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":9,"targets":{"host_ids":[1]}}"#),
        400,
        "UNKNOWN_LANGUAGE",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","timeout":0,"targets":{"host_ids":[1]}}"#),
        400,
        "TIMEOUT_OUT_OF_RANGE",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","timeout":259201,"targets":{"host_ids":[1]}}"#),
        400,
        "TIMEOUT_OUT_OF_RANGE",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"host_ids":[42]}}"#),
        400,
        "UNKNOWN_HOST",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"ips":["10.9.9.9"]}}"#),
        400,
        "UNKNOWN_HOST",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{}}"#),
        400,
        "EMPTY_TARGET",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"selector":"role=web"}}"#),
        400,
        "EMPTY_TARGET",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"selector":"bad key"}}"#),
        400,
        "INVALID_SELECTOR",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"group_ids":[7]}}"#),
        400,
        "UNKNOWN_GROUP",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","params":"'open","targets":{"host_ids":[1]}}"#),
        400,
        "INVALID_PARAMS",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"id","language":"shell","targets":{"hosts":[1]}}"#),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    check_error(
        &f,
        "POST",
        exec,
        Some(r#"{"script":"  ","language":"shell","targets":{"host_ids":[1]}}"#),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    let big = format!(
        r#"{{"script":"{}","language":"shell","targets":{{"host_ids":[1]}}}}"#,
        "x".repeat(6 * 1024 * 1024)
    );
    check_error(&f, "POST", exec, Some(&big), 413, "SCRIPT_TOO_LARGE").await;
    let huge = format!(r#"{{"script":"{}"}}"#, "x".repeat(17 * 1024 * 1024));
    check_error(&f, "POST", exec, Some(&huge), 413, "PAYLOAD_TOO_LARGE").await;
    // Fits the 5 MiB script limit, but not one agent frame once JSON-escaped (6 bytes a byte).
    let escaped = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        vec![1u8; 3 << 20],
    );
    let body = format!(
        r#"{{"script_base64":"{escaped}","language":"shell","targets":{{"host_ids":[1]}}}}"#
    );
    check_error(&f, "POST", exec, Some(&body), 413, "SCRIPT_TOO_LARGE").await;
    check_error(&f, "GET", "/api/v1/jobs/999", None, 404, "NOT_FOUND").await;
    check_error(&f, "GET", "/api/v1/jobs/abc", None, 400, "INVALID_ARGUMENT").await;
    check_error(
        &f,
        "GET",
        "/api/v1/hosts?length=5000",
        None,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    check_error(
        &f,
        "GET",
        "/api/v1/hosts?status=sleepy",
        None,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
    check_error(&f, "GET", "/api/v1/nope", None, 404, "NOT_FOUND").await;
    check_error(
        &f,
        "POST",
        "/api/v1/jobs/999/terminate",
        None,
        404,
        "NOT_FOUND",
    )
    .await;
    check_error(
        &f,
        "POST",
        "/api/v1/steps/999/retry",
        Some(r#"{"mode":"failed"}"#),
        404,
        "NOT_FOUND",
    )
    .await;
    check_error(
        &f,
        "POST",
        "/api/v1/steps/1/retry",
        Some(r#"{"mode":"some"}"#),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
}

#[tokio::test]
async fn every_endpoint_but_health_needs_a_valid_token() {
    let f = fixture().await;
    let (s, body) = call(&f, "GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for (uri, token) in [
        ("/api/v1/hosts", None),
        ("/api/v1/hosts", Some("shoal_wrong")),
        ("/metrics", None),
        ("/api/v1/jobs/1/events", None),
    ] {
        let (s, json) = call(&f, "GET", uri, None, token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(json["error"]["code"], "UNAUTHENTICATED");
    }
    let (s, _) = call(&f, "GET", "/metrics", None, Some(&f.token)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_created_used_and_revoked() {
    let f = fixture().await;
    let (s, created) = call(
        &f,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"ci"}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let secret = created["token"].as_str().expect("secret").to_string();
    let (s, who) = call(&f, "GET", "/api/v1/whoami", None, Some(&secret)).await;
    assert_eq!(s, StatusCode::OK);
    // A token acts as its account (the admin who created it).
    assert_eq!(who["name"], "admin");
    assert_eq!(who["token_id"], created["id"]);
    let (_, list) = call(&f, "GET", "/api/v1/tokens", None, Some(&f.token)).await;
    assert!(
        !list.to_string().contains(&secret),
        "listing must not reveal secrets"
    );
    assert!(
        !list.to_string().contains(&auth::hash_secret(&secret)),
        "listing must not reveal hashes"
    );
    let id = created["id"].as_i64().expect("id");
    let (s, _) = call(
        &f,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&f, "GET", "/api/v1/whoami", None, Some(&secret)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Enrollment tokens do not authenticate API calls.
    let (_, enroll) = call(
        &f,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"e","kind":"enroll"}"#),
        Some(&f.token),
    )
    .await;
    let (s, _) = call(&f, "GET", "/api/v1/hosts", None, enroll["token"].as_str()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    check_error(
        &f,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"x","kind":"root"}"#),
        400,
        "INVALID_ARGUMENT",
    )
    .await;
}

#[tokio::test]
async fn groups_validate_selectors() {
    let f = fixture().await;
    let (s, g) = call(
        &f,
        "POST",
        "/api/v1/groups",
        Some(r#"{"name":"web","selector":"role=web"}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let id = g["id"].as_i64().expect("id");
    check_error(
        &f,
        "PUT",
        &format!("/api/v1/groups/{id}"),
        Some(r#"{"name":"web","selector":"role in web"}"#),
        400,
        "INVALID_SELECTOR",
    )
    .await;
    let (s, g2) = call(
        &f,
        "PUT",
        &format!("/api/v1/groups/{id}"),
        Some(r#"{"name":"web2","selector":"role=api"}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g2["selector"], "role=api");
    // A group that matches nothing is an empty target, not an error of the group.
    let body = format!(r#"{{"script":"id","language":"shell","targets":{{"group_ids":[{id}]}}}}"#);
    check_error(
        &f,
        "POST",
        "/api/v1/script-executions",
        Some(&body),
        400,
        "EMPTY_TARGET",
    )
    .await;
}

mod access;
mod authz_bench;
mod files;
mod matrix;
mod oidc_provider;
mod openapi;
mod sso;
mod two_steps;
mod views;

// Pins the limits checked before routing: an over-long URI is 414 and oversized headers are
// 431, both in the JSON error format.
#[tokio::test]
async fn oversized_uris_and_headers_get_json_errors() {
    let f = fixture().await;
    let long = format!("/api/v1/jobs?name={}", "a".repeat(9 * 1024));
    check_error(&f, "GET", &long, None, 414, "URI_TOO_LONG").await;

    let mut req = Request::builder()
        .uri("/api/v1/jobs")
        .header("authorization", format!("Bearer {}", f.token));
    for i in 0..5 {
        req = req.header(format!("x-big-{i}"), "v".repeat(8 * 1024));
    }
    let (status, json) = send(&f, req.body(Body::empty()).expect("request")).await;
    assert_eq!(status.as_u16(), 431, "{json}");
    assert_eq!(json["error"]["code"], "HEADERS_TOO_LARGE");

    let mut req = Request::builder().uri("/api/v1/jobs");
    for i in 0..120 {
        req = req.header(format!("x-h-{i}"), "v");
    }
    let (status, json) = send(&f, req.body(Body::empty()).expect("request")).await;
    assert_eq!(status.as_u16(), 431, "{json}");
}

// Pins where a token may travel in the query string: only on the event stream (browsers'
// EventSource cannot set headers); on every other route it is refused, so it is never needed
// in a URL that proxies and logs keep.
#[tokio::test]
async fn a_query_token_works_only_on_the_event_stream() {
    let f = fixture().await;
    let q = format!("access_token={}", f.token);
    for uri in [
        format!("/api/v1/jobs?{q}"),
        format!("/api/v1/tokens?{q}"),
        format!("/api/v1/whoami?{q}"),
    ] {
        let (status, json) = call(&f, "GET", &uri, None, None).await;
        assert_eq!(status.as_u16(), 401, "{uri}: {json}");
        assert_eq!(json["error"]["code"], "UNAUTHENTICATED");
    }
    let (status, json) = call(
        &f,
        "POST",
        &format!("/api/v1/tokens?{q}"),
        Some(r#"{"name":"x"}"#),
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 401, "{json}");
    // The event stream takes it: the job is unknown (404), so authentication passed.
    let (status, json) = call(
        &f,
        "GET",
        &format!("/api/v1/jobs/77/events?{q}"),
        None,
        None,
    )
    .await;
    assert_eq!(status.as_u16(), 404, "{json}");
    assert!(crate::api::is_event_stream("/api/v1/jobs/1/events"));
    assert!(!crate::api::is_event_stream("/api/v1/jobs/1/x/events"));
    assert!(!crate::api::is_event_stream("/api/v1/jobs//events"));
}

// Pins the output cap on the server's side: an agent that ignores the cap and sends 8 MiB for
// a 5 MiB cap gets 5 MiB and the truncation marker stored, and the host marked truncated.
#[tokio::test]
async fn the_server_caps_output_an_agent_did_not() {
    use shoal_proto::{End, Outcome, Stream};
    let f = fixture().await;
    let cap = f.app.opts.output_cap;
    let (_, step) = shoal_store::conformance::one_step_job(&*f.app.store, &[1]).await;
    let key = shoal_store::conformance::key(step, 0, 1);
    let part = vec![b'x'; 1 << 20];
    for i in 0..8u64 {
        let report = writer::Report::Output {
            key,
            offset: i << 20,
            stream: Stream::Stdout,
            data: part.clone(),
        };
        assert!(f.app.writer.send(report).await);
    }
    let outcome = Outcome {
        end: End::Exited { code: 0 },
        started_at: Some(1),
        ended_at: 2,
        output_len: 8 << 20,
        truncated: false,
        digest: String::new(),
        tag: None,
    };
    assert!(
        f.app
            .writer
            .send(writer::Report::Finished { key, outcome })
            .await
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        let rows = f
            .app
            .store
            .list_tasks(
                &shoal_store::conformance::task_filter(step, 0),
                shoal_store::Page::first(10),
            )
            .await
            .expect("list_tasks");
        if let Some(r) = rows.data.into_iter().find(|r| r.status.is_terminal()) {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the result never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(row.truncated, "{row:?}");
    let marker = shoal_types::limits::truncation_marker(cap);
    assert_eq!(row.log_len, cap + marker.len() as u64);
    let log = f
        .app
        .store
        .read_log(key, cap - 4, 1 << 20)
        .await
        .expect("read_log");
    assert_eq!(&log.data[..4], b"xxxx");
    assert_eq!(&log.data[4..], &marker[..]);
}

/// A job started while its host's agent is not connected: a readable default name, the host
/// ends agent abnormal and says why, and the step's result groups have the documented shape
/// (by status by default, by output on request, a clear error for another grouping).
#[tokio::test]
async fn unconnected_host_says_why_and_groups_have_their_shape() {
    let f = fixture().await;
    let host = add_web_host(&f).await;
    let body =
        format!(r#"{{"script":"echo hi","language":"shell","targets":{{"host_ids":[{host}]}}}}"#);
    let (s, created) = call(
        &f,
        "POST",
        "/api/v1/script-executions",
        Some(&body),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    assert_eq!(created["abnormal_count"], 1);
    let name = created["job_instance_name"].as_str().expect("name");
    let stamp = name.strip_prefix("quick script ").expect("default name");
    // 2026-12-03 09:17:30 UTC
    assert_eq!(stamp.len(), 23, "{name}");
    assert!(stamp.ends_with(" UTC"), "{name}");
    let step = created["step_instance_id"].as_i64().expect("step");

    let (_, rows) = call(
        &f,
        "GET",
        &format!("/api/v1/steps/{step}/hosts"),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(rows["data"][0]["status"], 1, "{rows}");
    assert_eq!(
        rows["data"][0]["error"],
        shoal_store::AGENT_NOT_CONNECTED,
        "{rows}"
    );

    let groups = |by: &'static str| {
        let uri = format!("/api/v1/steps/{step}/groups{by}");
        let f = &f;
        async move { call(f, "GET", &uri, None, Some(&f.token)).await }
    };
    let want = serde_json::json!({"attempt": 0, "by": "status", "groups": [
        {"status": 1, "exit_code": null, "tag": null, "digest": null, "host_count": 1,
         "sample_host_id": host}]});
    assert_eq!(groups("").await, (StatusCode::OK, want.clone()));
    assert_eq!(groups("?by=status").await, (StatusCode::OK, want.clone()));
    let mut by_output = want;
    by_output["by"] = "output".into();
    assert_eq!(groups("?by=output").await, (StatusCode::OK, by_output));
    check_error(
        &f,
        "GET",
        &format!("/api/v1/steps/{step}/groups?by=colour"),
        None,
        400,
        "INVALID_ARGUMENT",
    )
    .await;
}

#[tokio::test]
async fn jobs_stalled_between_steps_are_carried_on() {
    // Pins `steps::resume_stalled`: a job left with no live step (the server stopped between
    // ending one step and starting the next) is moved on as the engine decides, once.
    use shoal_store::conformance::{new_job, script_step, waiting};
    use shoal_types::{HostTaskStatus, RunStatus};
    let f = fixture().await;
    let host = add_web_host(&f).await;
    let ended = |status| {
        let mut s = script_step("one", vec![(host, HostTaskStatus::Success)]);
        s.status = status;
        s
    };
    let blank = || {
        let mut s = script_step("two", waiting(&[host]));
        s.status = RunStatus::Blank;
        s
    };
    let store = &f.app.store;
    let succeeded = store
        .create_job(new_job("next", vec![ended(RunStatus::Success), blank()]))
        .await
        .expect("job");
    let failed = store
        .create_job(new_job("failed", vec![ended(RunStatus::Fail), blank()]))
        .await
        .expect("job");

    assert_eq!(steps::resume_stalled(&f.app).await.expect("resume"), 2);
    // The failed job ends; its second step never starts.
    let job = store
        .get_job(failed.job_id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(job.status, RunStatus::Fail);
    let second = store
        .get_step(failed.step_ids[1])
        .await
        .expect("get")
        .expect("step");
    assert_eq!(second.status, RunStatus::Blank);
    // The other starts its second step; its host has no agent, so it fails at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let job = loop {
        let job = store
            .get_job(succeeded.job_id)
            .await
            .expect("get")
            .expect("job");
        if job.status.is_terminal() || std::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(job.status, RunStatus::Fail);
    let second = store
        .get_step(succeeded.step_ids[1])
        .await
        .expect("get")
        .expect("step");
    assert_eq!(second.status, RunStatus::Fail);
    let counts = store.task_counts(second.id, 0).await.expect("counts");
    assert_eq!(counts, vec![(HostTaskStatus::AgentAbnormal, 1)]);
    // Nothing is left to carry on.
    assert_eq!(steps::resume_stalled(&f.app).await.expect("resume"), 0);
}

#[tokio::test]
async fn the_route_is_the_origin_of_a_launch() {
    // Pins where a launch comes from: `/api/web/v1` is the console, `/api/v1` the API, and a
    // header cannot claim otherwise.
    let f = fixture().await;
    let host = add_web_host(&f).await;
    let body =
        format!(r#"{{"script":"echo hi","language":"shell","targets":{{"host_ids":[{host}]}}}}"#);
    let launch = |uri: &'static str, header: bool| {
        let body = body.clone();
        let f = &f;
        async move {
            let mut req = Request::builder()
                .method("POST")
                .uri(uri)
                .header("authorization", format!("Bearer {}", f.token))
                .header("content-type", "application/json");
            if header {
                req = req.header("x-shoal-client", "console");
            }
            let (s, created) = send(f, req.body(Body::from(body)).expect("request")).await;
            assert_eq!(s, StatusCode::OK, "{created}");
            let id = created["job_instance_id"].as_i64().expect("job id");
            let (_, detail) = call(
                f,
                "GET",
                &format!("/api/v1/jobs/{id}"),
                None,
                Some(&f.token),
            )
            .await;
            detail["job"]["launch_mode"]
                .as_str()
                .expect("launch_mode")
                .to_string()
        }
    };
    assert_eq!(launch("/api/web/v1/script-executions", false).await, "web");
    assert_eq!(launch("/api/v1/script-executions", false).await, "api");
    assert_eq!(launch("/api/v1/script-executions", true).await, "api");
}
