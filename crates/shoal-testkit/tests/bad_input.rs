//! Pins the API's answer to bad input on a real server: each mistake gets its documented error
//! code (UNKNOWN_HOST, EMPTY_TARGET, UNKNOWN_LANGUAGE, SCRIPT_TOO_LARGE, UNAUTHENTICATED,
//! MALFORMED_JSON, TIMEOUT_OUT_OF_RANGE) with the matching HTTP status and a message, and never a
//! 500.

#![allow(clippy::unwrap_used)] // tests may unwrap

use reqwest::Method;
use shoal_testkit::api::{Api, RawResponse, assert_error, shell};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions};
use shoal_types::api::ErrorCode;
use std::time::Duration;

const EXEC: &str = "/api/v1/script-executions";

async fn post(api: &Api, body: Vec<u8>) -> RawResponse {
    api.raw(Method::POST, EXEC, Some(body)).await.unwrap()
}

async fn post_json(api: &Api, body: &impl serde::Serialize) -> RawResponse {
    post(api, serde_json::to_vec(body).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_documented_error_codes() {
    let mut sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    sb.start_sim_fleet(1, &[]).unwrap();
    let hosts = sb
        .wait_hosts_online(1, Duration::from_secs(30))
        .await
        .unwrap();
    let host = hosts[0].id;
    let api = sb.api();

    // The control: this request is fine.
    let ok = post_json(&api, &shell("true", &[host], 60)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let resp = post_json(&api, &shell("true", &[host + 1_000_000], 60)).await;
    assert_error(&resp, ErrorCode::UnknownHost, "unknown host id");

    let mut req = shell("true", &[], 60);
    req.targets.ips = vec!["192.0.2.250".into()];
    let resp = post_json(&api, &req).await;
    assert_error(&resp, ErrorCode::UnknownHost, "unknown host ip");

    let resp = post_json(&api, &shell("true", &[], 60)).await;
    assert_error(&resp, ErrorCode::EmptyTarget, "empty target set");

    let mut req = shell("true", &[host], 60);
    req.language = serde_json::json!("cobol");
    let resp = post_json(&api, &req).await;
    assert_error(&resp, ErrorCode::UnknownLanguage, "unknown language name");
    req.language = serde_json::json!(99);
    let resp = post_json(&api, &req).await;
    assert_error(&resp, ErrorCode::UnknownLanguage, "unknown language code");

    let big = "#".repeat(shoal_types::limits::SCRIPT_MAX_BYTES + 1);
    let resp = post_json(&api, &shell(&big, &[host], 60)).await;
    assert_error(&resp, ErrorCode::ScriptTooLarge, "script over 5 MiB");

    for timeout in [0, -1, 259_201] {
        let resp = post_json(&api, &shell("true", &[host], timeout)).await;
        assert_error(
            &resp,
            ErrorCode::TimeoutOutOfRange,
            &format!("timeout {timeout}"),
        );
    }

    for body in [&b"{\"script\": "[..], b"not json", b""] {
        let resp = post(&api, body.to_vec()).await;
        assert_error(
            &resp,
            ErrorCode::MalformedJson,
            &format!("body {:?}", String::from_utf8_lossy(body)),
        );
    }

    // Valid JSON of the wrong shape: a 400 with either code, never a 500 or a 422.
    let resp = post(&api, b"[1,2,3]".to_vec()).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let code = resp.error().unwrap().error.code;
    assert!(
        matches!(code, ErrorCode::MalformedJson | ErrorCode::InvalidArgument),
        "{code}"
    );

    let bad_token = api.with_token("shoal-not-a-real-token");
    let resp = post_json(&bad_token, &shell("true", &[host], 60)).await;
    assert_error(&resp, ErrorCode::Unauthenticated, "bad token");
    let resp = bad_token
        .raw(Method::GET, "/api/v1/jobs", None)
        .await
        .unwrap();
    assert_error(&resp, ErrorCode::Unauthenticated, "bad token on a GET");
    let no_token = api.with_token("");
    let resp = post_json(&no_token, &shell("true", &[host], 60)).await;
    assert_error(&resp, ErrorCode::Unauthenticated, "no token");
}
