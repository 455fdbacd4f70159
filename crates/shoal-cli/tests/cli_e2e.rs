//! End to end: the `shoal` binary against a real `shoal server` (started on free ports with a
//! temporary data dir) and, where a test needs hosts, real `shoal-agent` processes. Pins the
//! CLI's promises: data on stdout and the rest on stderr, exit codes (0 ok, 1 a host failed,
//! 2 bad input, 3 unreachable or refused credentials), exact log bytes, JSON output, and that
//! the commands talk to the REST API as the brief describes it.
//!
//! The agent binary is expected next to `shoal` (`cargo build --workspace --bins`, which
//! `make test` does first).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{SHOAL, START_TIMEOUT, Server, run_cmd, shoal_alone};

#[test]
fn unreachable_server_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = shoal_alone(&["hosts"], dir.path()).expect_code(3);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("cannot reach the server at"),
        "{}",
        out.stderr
    );
    shoal_alone(&["run", "-c", "true", "--hosts", "1"], dir.path()).expect_code(3);
}

#[test]
fn openapi_prints_the_description_without_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = shoal_alone(&["openapi"], dir.path()).expect_code(0);
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json"),
    )
    .expect("web/openapi.json");
    assert!(
        out.stdout == committed.as_bytes(),
        "`shoal openapi` differs from web/openapi.json; stderr: {}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["run", "-c", "true"][..],
        &["run", "--hosts", "1"],
        &["run", "-c", "true", "--hosts", "x"],
        &["run", "-c", "true", "--hosts", "1", "--env", "=v"],
        &["job", "log", "1"],
        &["nonsense"],
        &["hosts", "--token-file", "/nonexistent/token"],
    ] {
        let out = shoal_alone(args, dir.path()).expect_code(2);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn credentials_are_checked() {
    let server = Server::start();
    let mut cmd = Command::new(SHOAL);
    cmd.args(["hosts"])
        .env("SHOAL_SERVER", server.url())
        .env("XDG_CONFIG_HOME", server.dir.path().join("no-config"))
        .env_remove("SHOAL_TOKEN")
        .env_remove("SHOAL_TOKEN_FILE");
    let out = run_cmd(cmd, server.dir.path()).expect_code(3);
    assert!(out.stderr.contains("token"), "{}", out.stderr);
    server.shoal(&["hosts", "--token", "wrong"]).expect_code(3);
    // The token file the server wrote works as is.
    let file = server.data_dir().join("admin.token");
    let file = file.to_str().expect("utf-8 path");
    server
        .shoal(&["hosts", "--token", "", "--token-file", file])
        .expect_code(0);
}

#[test]
fn tokens_and_groups() {
    let server = Server::start();
    let out = server.shoal(&["token", "create", "ci-bot"]).expect_code(0);
    let secret = out.text().trim().to_string();
    assert!(!secret.is_empty() && !secret.contains('\n'), "{secret:?}");
    assert!(!out.stderr.contains(&secret), "the secret leaked to stderr");
    server.shoal(&["hosts", "--token", &secret]).expect_code(0);

    let list = server
        .shoal(&["token", "list", "--json"])
        .expect_code(0)
        .json();
    let id = list
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "ci-bot"))
        .and_then(|t| t["id"].as_i64())
        .expect("the new token is listed");
    assert!(!server.shoal(&["token", "list"]).text().contains(&secret));
    let revoked = server
        .shoal(&["token", "revoke", &id.to_string(), "--json"])
        .expect_code(0)
        .json();
    assert_eq!(revoked["revoked"], true, "{revoked}");
    server.shoal(&["hosts", "--token", &secret]).expect_code(3);

    let g = server
        .shoal(&["group", "create", "web", "role=web", "--json"])
        .expect_code(0)
        .json();
    let gid = g[0]["id"].as_i64().expect("group id").to_string();
    server
        .shoal(&["group", "update", &gid, "web2", "role in (web,api)"])
        .expect_code(0);
    let listed = server.shoal(&["group", "list"]).expect_code(0).text();
    assert!(
        listed.contains("web2") && listed.contains("role in (web,api)"),
        "{listed}"
    );
    server
        .shoal(&["group", "create", "bad", "role in ("])
        .expect_code(2);
    let deleted = server
        .shoal(&["group", "delete", &gid, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert!(!server.shoal(&["group", "list"]).text().contains("web2"));
}

#[test]
fn run_prints_groups_and_exit_codes() {
    let mut server = Server::start();
    server.start_agents(2);

    let out = server
        .shoal(&["run", "--label", "e2e=true", "-c", "echo hello from shoal"])
        .expect_code(0);
    let text = out.text();
    assert!(text.contains("== success (exit 0) · 2 hosts:"), "{text}");
    assert!(text.contains("hello from shoal"), "{text}");
    assert!(out.stderr.contains("job "), "{}", out.stderr);

    // A multi-MiB script reaches the agents in one frame and runs.
    let big = server.dir.path().join("big.sh");
    let padding = format!("# {}\n", "x".repeat(1000)).repeat(3 * 1024);
    std::fs::write(&big, format!("{padding}echo big script ran\n")).expect("big script");
    let out = server
        .shoal(&[
            "run",
            "--label",
            "e2e=true",
            "-f",
            big.to_str().expect("path"),
        ])
        .expect_code(0);
    assert!(out.text().contains("big script ran"), "{}", out.text());

    // One host fails (the first to create the lock dir): exit 1, and two groups.
    let lock = server.dir.path().join("first-one-fails");
    let script = format!("mkdir {} 2>/dev/null && exit 3; echo fine", lock.display());
    let out = server
        .shoal(&["run", "--label", "e2e=true", "-c", &script])
        .expect_code(1);
    let text = out.text();
    assert!(text.contains("(exit 3) · 1 host:"), "{text}");
    assert!(text.contains("== success (exit 0) · 1 host:"), "{text}");

    let out = server
        .shoal(&["run", "--label", "e2e=true", "-c", "exit 7"])
        .expect_code(1);
    assert!(out.text().contains("(exit 7) · 2 hosts"), "{}", out.text());

    // JSON: the finished job and its groups.
    let v = server
        .shoal(&[
            "run",
            "--json",
            "--label",
            "name=agent-2",
            "-c",
            "echo json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(v["detail"]["finished"], true);
    assert_eq!(v["groups"][0]["groups"][0]["host_count"], 1);

    // The server's validation errors are bad input.
    server
        .shoal(&["run", "--hosts", "987654321", "-c", "true"])
        .expect_code(2);
    server
        .shoal(&["run", "--label", "no-such-label=1", "-c", "true"])
        .expect_code(2);
}

#[test]
fn job_commands() {
    let mut server = Server::start();
    let hosts = server.start_agents(1);
    let host_id = hosts[0]["id"].as_i64().expect("host id").to_string();
    let host_ip = hosts[0]["ip"].as_str().unwrap_or_default().to_string();

    // --no-wait prints the job id alone on stdout.
    let out = server
        .shoal(&[
            "run",
            "--no-wait",
            "--hosts",
            &host_id,
            "--name",
            "bytes",
            "-c",
            "printf 'a\\377b\\n'; echo second",
        ])
        .expect_code(0);
    let job = out.text().trim().to_string();
    assert!(job.parse::<i64>().is_ok(), "{job:?}");

    // --follow returns once the task ended; the bytes are exact.
    let log = server
        .shoal(&["job", "log", &job, "--host", &host_id, "--follow"])
        .expect_code(0);
    assert_eq!(log.stdout, b"a\xffb\nsecond\n");
    if !host_ip.is_empty() {
        let by_ip = server
            .shoal(&["job", "log", &job, "--host", &host_ip])
            .expect_code(0);
        assert_eq!(by_ip.stdout, log.stdout);
    }
    // --json: one object per page, with the exact bytes in base64.
    let page = server
        .shoal(&["job", "log", &job, "--host", &host_id, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(page["finished"], true, "{page}");
    assert_eq!(page["content_base64"], "Yf9iCnNlY29uZAo=", "{page}");

    let show = server.shoal(&["job", "show", &job]).expect_code(0).text();
    assert!(
        show.contains("bytes") && show.contains("== success"),
        "{show}"
    );
    let rows = server
        .shoal(&["job", "hosts", &job, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        rows[0]["host_id"].as_i64().map(|h| h.to_string()),
        Some(host_id.clone())
    );
    let listed = server
        .shoal(&["job", "list", "--name", "bytes", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        listed[0]["id"].as_i64().map(|j| j.to_string()),
        Some(job.clone())
    );

    // Terminate a long job.
    let long = server
        .shoal(&["run", "--no-wait", "--hosts", &host_id, "-c", "sleep 120"])
        .expect_code(0)
        .text()
        .trim()
        .to_string();
    let terminated = server
        .shoal(&["job", "terminate", &long, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(terminated["terminate_requested"], true, "{terminated}");
    assert_eq!(
        terminated["job_instance_id"]
            .as_i64()
            .map(|j| j.to_string()),
        Some(long.clone())
    );
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let v = server
            .shoal(&["job", "show", &long, "--json"])
            .expect_code(0)
            .json();
        if v["detail"]["finished"] == true {
            assert_ne!(
                v["detail"]["job"]["status"], 3,
                "a terminated job is not a success"
            );
            break;
        }
        assert!(Instant::now() < deadline, "job {long} did not stop: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Retry: fails the first time, succeeds the second.
    let marker = server.dir.path().join("retry-marker");
    let script = format!(
        "if [ -e {m} ]; then echo second try; else touch {m}; exit 1; fi",
        m = marker.display()
    );
    let out = server
        .shoal(&["run", "--hosts", &host_id, "-c", &script, "--json"])
        .expect_code(1);
    let job = out.json()["detail"]["job"]["id"]
        .as_i64()
        .expect("id")
        .to_string();
    let out = server
        .shoal(&["job", "retry", &job, "--wait"])
        .expect_code(0);
    assert!(out.text().contains("second try"), "{}", out.text());
}

#[test]
fn host_labels() {
    let mut server = Server::start();
    let hosts = server.start_agents(1);
    let id = hosts[0]["id"].as_i64().expect("host id").to_string();
    server
        .shoal(&["hosts", "label", &id, "role=web", "tier=1"])
        .expect_code(0);
    server
        .shoal(&["hosts", "label", &id, "tier-"])
        .expect_code(0);
    let host = server
        .shoal(&["hosts", "show", &id, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(host["user_labels"], serde_json::json!({"role": "web"}));
    assert_eq!(host["labels"]["e2e"], "true");
    let table = server
        .shoal(&["hosts", "--label", "role=web"])
        .expect_code(0)
        .text();
    assert!(
        table.starts_with("ID  ") && table.contains("role=web"),
        "{table}"
    );
    let none = server
        .shoal(&["hosts", "--label", "role=db", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(none, serde_json::json!([]));
    let revoked = server
        .shoal(&["hosts", "revoke", &id, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(revoked["host_id"].to_string(), id, "{revoked}");

    // Revoking drops the live session, and the agent's identity is refused from then on: the
    // host goes offline, stays offline, and is no longer a valid target.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let host = server
            .shoal(&["hosts", "show", &id, "--json"])
            .expect_code(0)
            .json();
        if host["status"] == "offline" {
            assert!(host["revoked_at"].is_i64(), "{host}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "revoked host still {}",
            host["status"]
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let host = server
        .shoal(&["hosts", "show", &id, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        host["status"], "offline",
        "a revoked agent must not come back"
    );
    server
        .shoal(&["run", "--hosts", &id, "-c", "true"])
        .expect_code(2);
}
