//! Pins the file distribution API's contract through the router: uploads round-trip and are
//! content-addressed, an upload over the limit is refused with 413 and leaves nothing, and
//! every kind of bad file transfer request gets its stable error code and HTTP status.

use super::*;

/// A fixture whose upload limit is `max` bytes, with one enrolled host (id returned).
async fn fixture_with_uploads(max: u64) -> (Fixture, i64) {
    let f = fixture_with(|opts| opts.upload_max_bytes = max).await;
    let host = shoal_store::conformance::add_host(
        &*f.app.store,
        shoal_types::DEFAULT_SCOPE,
        "web1",
        &["10.0.0.1"],
        Default::default(),
    )
    .await;
    (f, host.id)
}

/// POSTs raw bytes (any content type) to `uri`.
async fn post_raw(f: &Fixture, uri: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", format!("Bearer {}", f.token))
        .header("content-type", "application/octet-stream")
        .body(Body::from(body))
        .expect("request");
    send(f, req).await
}

fn chunk_files(f: &Fixture) -> usize {
    std::fs::read_dir(f.app.opts.data_dir.join("uploads/chunks"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn uploads_round_trip_and_are_content_addressed() {
    let (f, _) = fixture_with_uploads(32 << 20).await;
    // Past the API's 16 MiB JSON body limit: uploads are streamed under their own limit.
    let data: Vec<u8> = (0..17u32 << 20).map(|i| (i % 251) as u8).collect();
    let (s, up) = post_raw(&f, "/api/v1/uploads?name=app.tar.gz", data.clone()).await;
    assert_eq!(s, StatusCode::OK, "{up}");
    let id = blake3::hash(&data).to_hex().to_string();
    assert_eq!(up["upload_id"], id.as_str());
    assert_eq!(up["name"], "app.tar.gz");
    assert_eq!(up["size"], data.len() as u64);
    let ttl_ms = f.app.opts.upload_ttl.as_millis() as i64;
    assert!(up["expires_at"].as_i64().is_some_and(|t| t > ttl_ms));
    let (s, rec) = call(
        &f,
        "GET",
        &format!("/api/v1/uploads/{id}"),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["size"], data.len() as u64);
    assert_eq!(rec["chunks"].as_array().map(Vec::len), Some(5));
    // The same content again (under another name) is the same upload, stored once.
    let files = chunk_files(&f);
    let (s, again) = post_raw(&f, "/api/v1/uploads?name=copy.tgz", data).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["upload_id"], id.as_str());
    assert_eq!(again["name"], "app.tar.gz", "the stored name stays");
    assert_eq!(chunk_files(&f), files);
    check_error(&f, "GET", "/api/v1/uploads/abc", None, 404, "NOT_FOUND").await;
    let other = "ab".repeat(32);
    check_error(
        &f,
        "GET",
        &format!("/api/v1/uploads/{other}"),
        None,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn uploads_over_the_limit_or_badly_named_are_refused() {
    let (f, _) = fixture_with_uploads(5 << 20).await;
    let data = vec![7u8; 6 << 20];
    let (s, err) = post_raw(&f, "/api/v1/uploads?name=big.bin", data.clone()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(chunk_files(&f), 0, "nothing stored");
    let id = blake3::hash(&data).to_hex().to_string();
    check_error(
        &f,
        "GET",
        &format!("/api/v1/uploads/{id}"),
        None,
        404,
        "NOT_FOUND",
    )
    .await;
    // Refused while streaming too, when no length is declared up front.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/uploads?name=big.bin")
        .header("authorization", format!("Bearer {}", f.token))
        .body(Body::from_stream(futures::stream::iter(
            data.chunks(1 << 20)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )))
        .expect("request");
    let (s, _) = send(&f, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(chunk_files(&f), 0, "nothing stored");
    // A declared length over the limit is refused before the body is read.
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/uploads?name=big.bin")
        .header("authorization", format!("Bearer {}", f.token))
        .header("content-length", (6u64 << 20).to_string())
        .body(Body::from("hi"))
        .expect("request");
    let (s, _) = send(&f, req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    for bad in ["a%2Fb", "..", ".", ""] {
        let (s, err) = post_raw(&f, &format!("/api/v1/uploads?name={bad}"), b"hi".to_vec()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert_eq!(err["error"]["code"], "INVALID_PATH", "{bad}: {err}");
    }
    // NUL is refused at the edge, like in every other query.
    let (s, err) = post_raw(&f, "/api/v1/uploads?name=x%00y", b"hi".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT", "{err}");
    let (s, err) = post_raw(&f, "/api/v1/uploads", b"hi".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "missing name: {err}");
    assert_eq!(err["error"]["code"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn bad_file_transfers_get_stable_codes() {
    let (f, host) = fixture_with_uploads(1 << 20).await;
    let ft = "/api/v1/file-transfers";
    let src = format!(r#"{{"file_list":["/data/a.txt"],"targets":{{"host_ids":[{host}]}}}}"#);
    let req = |extra: &str, sources: &str, dir: &str| {
        format!(
            r#"{{"file_source_list":[{sources}],"file_target_path":"{dir}","targets":{{"host_ids":[{host}]}}{extra}}}"#
        )
    };
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"file_source_list\": [".into(), 400, "MALFORMED_JSON"),
        (req("", &src, "tmp/x"), 400, "INVALID_PATH"),
        (req("", &src, "/tmp/../etc"), 400, "INVALID_PATH"),
        (req("", &src, "/tmp/[date:%Q]"), 400, "INVALID_PATH"),
        (
            req("", &src.replace("/data/a.txt", "data/a.txt"), "/tmp"),
            400,
            "INVALID_PATH",
        ),
        (
            req("", &src.replace("/data/a.txt", "REGEX:.*\\\\.log"), "/tmp"),
            400,
            "INVALID_PATH",
        ),
        (
            req(
                "",
                &src.replace("/data/a.txt", "/data/../etc/shadow"),
                "/tmp",
            ),
            400,
            "INVALID_PATH",
        ),
        (
            req("", &src.replace(&format!("[{host}]"), "[4242]"), "/tmp"),
            400,
            "UNKNOWN_HOST",
        ),
        (
            format!(
                r#"{{"file_source_list":[{src}],"file_target_path":"/tmp","targets":{{"host_ids":[4242]}}}}"#
            ),
            400,
            "UNKNOWN_HOST",
        ),
        (
            req("", &src, "/tmp").replace(
                &format!(r#""targets":{{"host_ids":[{host}]}}}}"#),
                r#""targets":{}}"#,
            ),
            400,
            "EMPTY_TARGET",
        ),
        (
            req(
                "",
                &format!(r#"{{"upload_id":"{}"}}"#, "ab".repeat(32)),
                "/tmp",
            ),
            400,
            "UNKNOWN_UPLOAD",
        ),
        (
            req(
                "",
                r#"{"inline_content_base64":"%%%","name":"a.conf"}"#,
                "/tmp",
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(
                "",
                r#"{"inline_content_base64":"aGk=","name":"../a.conf"}"#,
                "/tmp",
            ),
            400,
            "INVALID_PATH",
        ),
        (
            req("", r#"{"inline_content_base64":"aGk="}"#, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(
                "",
                &format!(
                    r#"{{"upload_id":"{}","inline_content_base64":"aGk=","name":"a"}}"#,
                    "ab".repeat(32)
                ),
                "/tmp",
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (req("", "{}", "/tmp"), 400, "INVALID_ARGUMENT"),
        (
            req(
                "",
                r#"{"inline_content_base64":"aGk=","name":"a.sh","file_mode":"0999"}"#,
                "/tmp",
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req("", &src.replace("]}", r#"]},"file_mode":"0755""#), "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req("", r#"{"file_list":["/data/a.txt"]}"#, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (req("", "", "/tmp"), 400, "INVALID_ARGUMENT"),
        (
            req(r#","transfer_mode":"safe""#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","transfer_mode":3"#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","duplicate_handling":"rename""#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","upload_speed_limit":10241"#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","download_speed_limit":-1"#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","timeout":0"#, &src, "/tmp"),
            400,
            "TIMEOUT_OUT_OF_RANGE",
        ),
        (
            req(r#","timeout":259201"#, &src, "/tmp"),
            400,
            "TIMEOUT_OUT_OF_RANGE",
        ),
        (
            req(r#","account":"a b""#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            req(r#","colour":"red""#, &src, "/tmp"),
            400,
            "INVALID_ARGUMENT",
        ),
    ];
    for (body, status, code) in &cases {
        check_error(&f, "POST", ft, Some(body), *status, code).await;
    }
    // The message says which source is wrong.
    let two = format!(r#"{src},{{"file_list":["rel"],"targets":{{"host_ids":[{host}]}}}}"#);
    let (_, err) = call(&f, "POST", ft, Some(&req("", &two, "/tmp")), Some(&f.token)).await;
    let message = err["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("file_source_list[1]") && message.contains("\"rel\""),
        "{err}"
    );
    // Inline content over 1 MiB is too large; nothing is stored for a refused request.
    let big = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        vec![1u8; (1 << 20) + 1],
    );
    let body = req(
        "",
        &format!(r#"{{"inline_content_base64":"{big}","name":"a"}}"#),
        "/tmp",
    );
    check_error(&f, "POST", ft, Some(&body), 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(chunk_files(&f), 0);
}

#[tokio::test]
async fn valid_transfers_reach_the_orchestrator_and_file_rows_list() {
    let (f, host) = fixture_with_uploads(1 << 20).await;
    // A valid request with an inline source passes validation; the inline content is stored as
    // an upload whatever the orchestrator answers.
    let body = format!(
        r#"{{"file_source_list":[{{"inline_content_base64":"aGVsbG8=","name":"hello.txt"}}],
            "file_target_path":"/tmp/[date:%Y%m%d]/[source_ip]","transfer_mode":1,
            "upload_speed_limit":0,"targets":{{"host_ids":[{host}]}}}}"#
    );
    let (s, resp) = call(
        &f,
        "POST",
        "/api/v1/file-transfers",
        Some(&body),
        Some(&f.token),
    )
    .await;
    assert!(
        s == StatusCode::OK || resp["error"]["code"] == "UNAVAILABLE",
        "{s} {resp}"
    );
    let id = blake3::hash(b"hello").to_hex().to_string();
    let (s, rec) = call(
        &f,
        "GET",
        &format!("/api/v1/uploads/{id}"),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rec}");
    assert_eq!(rec["name"], "hello.txt");
    // Per-file rows: unknown step, bad parameters.
    check_error(&f, "GET", "/api/v1/steps/999/files", None, 404, "NOT_FOUND").await;
    check_error(
        &f,
        "GET",
        "/api/v1/steps/999/files/summary",
        None,
        404,
        "NOT_FOUND",
    )
    .await;
    let (_, step) = shoal_store::conformance::one_step_job(&*f.app.store, &[host]).await;
    let files = format!("/api/v1/steps/{step}/files");
    let (s, page) = call(&f, "GET", &files, None, Some(&f.token)).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 0);
    let (s, page) = call(
        &f,
        "GET",
        &format!("{files}?mode=download&status=4,failed&host_id={host}&attempt=0"),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (s, sum) = call(&f, "GET", &format!("{files}/summary"), None, Some(&f.token)).await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    assert_eq!(sum["total"], 0);
    for q in [
        "mode=sideways",
        "status=9",
        "attempt=5",
        "length=0",
        "colour=red",
    ] {
        check_error(
            &f,
            "GET",
            &format!("{files}?{q}"),
            None,
            400,
            "INVALID_ARGUMENT",
        )
        .await;
    }
}
