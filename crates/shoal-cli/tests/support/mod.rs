//! Harness of the CLI end-to-end tests: runs `shoal` with a timeout and captured output, and
//! starts a real `shoal server` (free ports, temporary data dir) and `shoal-agent`s.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
pub const CMD_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.text(), self.stderr)
        })
    }
    pub fn expect_code(self, want: i32) -> Out {
        assert_eq!(
            self.code(),
            want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.text(),
            self.stderr
        );
        self
    }
}

/// Runs a command to completion (killing it after `CMD_TIMEOUT`), capturing both streams.
pub fn run_cmd(cmd: Command, scratch: &Path) -> Out {
    run_cmd_input(cmd, scratch, None)
}

/// Like [`run_cmd`], with `input` on stdin (else stdin is empty).
pub fn run_cmd_input(mut cmd: Command, scratch: &Path, input: Option<&[u8]>) -> Out {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (
        scratch.join(format!("out-{n}")),
        scratch.join(format!("err-{n}")),
    );
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(std::fs::File::create(&o).expect("stdout file"))
        .stderr(std::fs::File::create(&e).expect("stderr file"))
        .spawn()
        .expect("spawn");
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(bytes).expect("write stdin");
    }
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let stderr = std::fs::read_to_string(&e).unwrap_or_default();
            panic!("command timed out: {cmd:?}\n--- stderr\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Out {
        status,
        stdout: std::fs::read(&o).expect("read stdout"),
        stderr: std::fs::read_to_string(&e).expect("read stderr"),
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.") && resp.contains(" 200 ")
}

/// A shoal CLI invocation with no server (for the tests that need none).
pub fn shoal_alone(args: &[&str], scratch: &Path) -> Out {
    let mut cmd = Command::new(SHOAL);
    cmd.args(args)
        .env_remove("SHOAL_TOKEN")
        .env_remove("SHOAL_TOKEN_FILE")
        .env("XDG_CONFIG_HOME", scratch.join("no-config"))
        .env("SHOAL_SERVER", format!("http://127.0.0.1:{}", free_port()));
    run_cmd(cmd, scratch)
}

pub struct Server {
    child: Child,
    agents: Vec<Child>,
    pub dir: tempfile::TempDir,
    api_port: u16,
    agent_port: u16,
    token: String,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let (api_port, agent_port) = (free_port(), free_port());
        let data = dir.path().join("server");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        let child = Command::new(SHOAL)
            .arg("server")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{api_port}")])
            .args(["--agent-listen", &format!("127.0.0.1:{agent_port}")])
            .args(["--agent-lost-grace", "5", "--heartbeat-secs", "1"])
            .env("SHOAL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn shoal server");
        let mut server = Server {
            child,
            agents: Vec::new(),
            dir,
            api_port,
            agent_port,
            token: String::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !healthy(api_port) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("shoal server exited ({status}):\n{}", server.log());
            }
            assert!(Instant::now() < deadline, "no /healthz:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap_or_else(|e| panic!("admin.token: {e}\n{}", server.log()));
        server.token = token.trim().to_string();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// Runs `shoal ARGS` against this server with the admin token.
    pub fn shoal(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(SHOAL);
        cmd.args(args)
            .env("SHOAL_SERVER", self.url())
            .env("SHOAL_TOKEN", &self.token)
            .env_remove("SHOAL_TOKEN_FILE")
            .env("XDG_CONFIG_HOME", self.dir.path().join("no-config"));
        run_cmd(cmd, self.dir.path())
    }

    /// Runs `shoal ARGS` against this server with no token given (so the one `shoal login`
    /// stored under `config`, the XDG config home, if any), with `input` on stdin.
    #[allow(dead_code)] // used by access_cli only
    pub fn shoal_in(&self, config: &Path, args: &[&str], input: Option<&str>) -> Out {
        let mut cmd = Command::new(SHOAL);
        cmd.args(args)
            .env("SHOAL_SERVER", self.url())
            .env_remove("SHOAL_TOKEN")
            .env_remove("SHOAL_TOKEN_FILE")
            .env("XDG_CONFIG_HOME", config);
        run_cmd_input(cmd, self.dir.path(), input.map(str::as_bytes))
    }

    /// Starts `n` agents labelled `e2e=true,name=agent-N` and waits until all are online.
    pub fn start_agents(&mut self, n: usize) -> Vec<serde_json::Value> {
        let agent_bin = Path::new(SHOAL).with_file_name("shoal-agent");
        assert!(
            agent_bin.exists(),
            "{} is missing: build it with `cargo build --workspace --bins`",
            agent_bin.display()
        );
        let data = self.data_dir();
        for i in 1..=n {
            let log = std::fs::File::create(self.dir.path().join(format!("agent-{i}.log")))
                .expect("agent log");
            let child = Command::new(&agent_bin)
                .args(["--server", &format!("127.0.0.1:{}", self.agent_port)])
                .args(["--server-name", "localhost"])
                .arg("--ca")
                .arg(data.join("ca.pem"))
                .arg("--enroll-token-file")
                .arg(data.join("enroll.token"))
                .arg("--state-dir")
                .arg(self.dir.path().join(format!("agent-{i}")))
                .args(["--label", "e2e=true", "--label", &format!("name=agent-{i}")])
                .env("SHOAL_AGENT_HOSTNAME", format!("e2e-agent-{i}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn shoal-agent");
            self.agents.push(child);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self
                .shoal(&[
                    "hosts", "--label", "e2e=true", "--status", "online", "--json",
                ])
                .expect_code(0);
            let hosts = out.json().as_array().cloned().unwrap_or_default();
            if hosts.len() == n {
                return hosts;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} agents online\n--- server log\n{}",
                hosts.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.kill();
            let _ = a.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
