//! Pins the API to its own description: schemathesis (installed into `target/venv` by
//! `scripts/install-deps.sh`) reads `/api/v1/openapi.json` from a real server with two real
//! agents and sends a bounded number of generated requests to every operation, valid and
//! invalid. No answer may be a 5xx, and every answer's status code and body must be ones the
//! description documents; any finding fails the test with schemathesis' report. What the fuzzer
//! launches runs as `nobody` (hooks in `tests/fuzz/`), so nothing generated runs as root on the
//! machine the sandbox shares.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root, tail};
use shoal_types::api::{CreateTokenRequest, CreateTokenResponse};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const ONLINE: Duration = Duration::from_secs(30);
/// Generated requests per operation and phase: with 33 operations, about 4,400 requests in
/// 30 s on two cores (the budget is three minutes on a loaded machine).
const EXAMPLES_PER_OPERATION: u32 = 100;
/// The whole run, however slow the machine: past it the test fails rather than hang.
const RUN_LIMIT: Duration = Duration::from_secs(600);
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";

/// The schemathesis binary: `SHOAL_SCHEMATHESIS`, else the one `scripts/install-deps.sh`
/// installs.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SHOAL_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join("target/venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "the API fuzzer is not installed at {}: run scripts/install-deps.sh",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_description_says_under_fuzzing() {
    require_root().unwrap();
    let bin = schemathesis();
    let sb = Sandbox::start(SandboxOptions::with_agents(2))
        .await
        .unwrap();
    sb.wait_hosts_online(2, ONLINE).await.unwrap();
    let api = sb.api();

    // History, so that lists and reads of jobs, steps and logs have something to return.
    let ids = sb.host_ids().await.unwrap();
    let done = api.execute(&shell("echo fuzz", &ids, 60)).await.unwrap();
    api.wait_job(done.job_instance_id, ONLINE).await.unwrap();
    // A token of the fuzzer's own, which its hooks never revoke.
    let token: CreateTokenResponse = api
        .post(
            "/api/v1/tokens",
            &CreateTokenRequest {
                name: "fuzzer".into(),
                kind: None,
                scope_id: None,
                ttl_secs: None,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // A fixed seed, so a finding reproduces; `SHOAL_FUZZ_SEED` explores others.
    let seed = std::env::var("SHOAL_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let report = tempfile::tempdir().unwrap();
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let schema = format!("{}/api/v1/openapi.json", sb.api_url());
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("run")
        .arg(&schema)
        .args(["--checks", CHECKS])
        .args(["--max-examples", &EXAMPLES_PER_OPERATION.to_string()])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--seed", &seed])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .args(["--suppress-health-check", "all"])
        .args(["--report", "junit", "--report-dir"])
        .arg(report.path())
        .arg("--no-color")
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", token.token))
        .env("SCHEMATHESIS_HOOKS", "shoal_fuzz_hooks")
        .env("PYTHONPATH", &hooks)
        .env("SHOAL_FUZZ_TOKEN_ID", token.id.to_string())
        // Nothing left in the source tree: no bytecode next to the hooks, and schemathesis'
        // own state in the report directory.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran past {RUN_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}\nserver log (tail):\n{}",
        out.status,
        tail(&sb.server_log(), 6000),
    );
}
