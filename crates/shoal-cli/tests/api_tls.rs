//! Pins TLS on the REST API: with `--api-tls` the server speaks HTTPS with a certificate from
//! its own CA; the CLI talks to it when told to trust that CA (`--ca`), refuses to without it,
//! and plain HTTP is not served on that port.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // this file uses only part of the shared harness
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

#[test]
fn api_over_tls_with_the_servers_own_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (api_port, agent_port) = (free_port(), free_port());
    let data = dir.path().join("server");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
    let mut child = Command::new(SHOAL)
        .arg("server")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
        .arg("--api-tls")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn shoal server");
    let server_log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let https = format!("https://localhost:{api_port}");
    let shoal = |args: &[&str], ca: bool| {
        let mut cmd = Command::new(SHOAL);
        cmd.args(["--server", &https, "--token-file"])
            .arg(data.join("admin.token"))
            .args(args)
            .env_remove("SHOAL_TOKEN")
            .env_remove("SHOAL_SERVER")
            .env_remove("SHOAL_CA");
        if ca {
            cmd.arg("--ca").arg(data.join("ca.pem"));
        }
        run_cmd(cmd, dir.path())
    };

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if data.join("admin.token").exists() && shoal(&["hosts", "--json"], true).code() == 0 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("shoal server exited ({status}):\n{}", server_log());
        }
        assert!(Instant::now() < deadline, "no HTTPS API:\n{}", server_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let hosts = shoal(&["hosts", "--json"], true).expect_code(0).json();
    assert_eq!(hosts, serde_json::json!([]));

    // Without trusting the server's CA the certificate is refused: a connection failure (3).
    let refused = shoal(&["hosts"], false);
    assert_eq!(refused.code(), 3, "{}", refused.stderr);
    // Plain HTTP gets no API on the TLS port.
    assert!(
        !healthy(api_port),
        "plain HTTP must not be served on the TLS port"
    );

    let _ = child.kill();
    let _ = child.wait();
}
