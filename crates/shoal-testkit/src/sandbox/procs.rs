//! Finding the built binaries and spawning the server, real agents and simulated fleets.
//!
//! Every child is started through `setpriv --pdeathsig KILL`, so it dies with the thread that
//! started it even if the test binary is killed before its `Drop` runs. The launch chains
//! (`ip netns exec`, `unshare`, `sh -c 'exec ...'`) all `exec`, so the child's pid is the pid of
//! the server or agent itself: SIGKILL and `/proc/<pid>/status` reach the real process.

use anyhow::{Context, bail};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Paths of the two shipped binaries.
#[derive(Clone, Debug)]
pub struct Bins {
    pub shoal: PathBuf,
    pub agent: PathBuf,
}

impl Bins {
    /// The same binaries, with `shoal-agent` copied into `dir` (kept executable).
    pub fn with_agent_copied_to(self, dir: &Path) -> anyhow::Result<Bins> {
        let agent = dir.join("shoal-agent");
        std::fs::copy(&self.agent, &agent)
            .with_context(|| format!("copying {} into {}", self.agent.display(), dir.display()))?;
        Ok(Bins {
            shoal: self.shoal,
            agent,
        })
    }

    /// Finds `shoal` and `shoal-agent`: in `$SHOAL_BIN_DIR`, next to the running executable
    /// (`target/<profile>/` for binaries, `target/<profile>/deps/` for tests), in
    /// `$CARGO_TARGET_DIR/debug`, or in `<workspace>/target/debug`.
    pub fn locate() -> anyhow::Result<Bins> {
        let mut dirs = Vec::new();
        if let Some(d) = std::env::var_os("SHOAL_BIN_DIR") {
            dirs.push(PathBuf::from(d));
        }
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            if dir.ends_with("deps") {
                if let Some(up) = dir.parent() {
                    dirs.push(up.to_path_buf());
                }
            } else {
                dirs.push(dir.to_path_buf());
            }
        }
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            dirs.push(PathBuf::from(t).join("debug"));
        }
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"));
        Bins::in_dirs(&dirs)
    }

    /// Finds both binaries in the first of `dirs` that has them.
    pub fn in_dirs(dirs: &[PathBuf]) -> anyhow::Result<Bins> {
        for dir in dirs {
            let bins = Bins {
                shoal: dir.join("shoal"),
                agent: dir.join("shoal-agent"),
            };
            if bins.shoal.is_file() && bins.agent.is_file() {
                return Ok(bins);
            }
        }
        bail!(
            "the `shoal` and `shoal-agent` binaries were not found in {}: run `cargo build --bins` first",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Opens `path` for appending, writing a marker line so restarts are visible in the log.
fn log_file(path: &Path, marker: &str) -> anyhow::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "===== shoal-testkit: {marker}")?;
    Ok(f)
}

fn spawn_logged(mut cmd: Command, log: &Path, what: &str) -> anyhow::Result<Child> {
    let out = log_file(log, &format!("starting {what}"))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // Flags decide; the environment of whoever runs the tests must not.
    for var in [
        "SHOAL_DATA_DIR",
        "SHOAL_DATABASE_URL",
        "SHOAL_ENROLL_TOKEN",
        "SHOAL_SERVER",
        "SHOAL_TOKEN",
        "SHOAL_TOKEN_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.spawn()
        .with_context(|| format!("starting {what} ({cmd:?})"))
}

/// `setpriv --pdeathsig KILL -- ARGV0`.
fn guarded(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg("--pdeathsig").arg("KILL").arg("--").arg(program);
    cmd
}

/// How to start the server; reused for restarts.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: std::net::SocketAddr,
    pub agent_listen: std::net::SocketAddr,
    pub agent_lost_grace_secs: u64,
    pub heartbeat_secs: Option<u32>,
    pub extra_args: Vec<String>,
    /// Extra environment variables (e.g. `SHOAL_LOG`).
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

pub fn spawn_server(bins: &Bins, spec: &ServerSpec) -> anyhow::Result<Child> {
    let mut cmd = guarded(&bins.shoal);
    cmd.arg("server")
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .arg("--listen")
        .arg(spec.listen.to_string())
        .arg("--agent-listen")
        .arg(spec.agent_listen.to_string())
        .arg("--agent-name")
        .arg(spec.agent_listen.ip().to_string())
        .arg("--agent-lost-grace")
        .arg(spec.agent_lost_grace_secs.to_string());
    if let Some(url) = &spec.database_url {
        cmd.arg("--database-url").arg(url);
    }
    if let Some(h) = spec.heartbeat_secs {
        cmd.arg("--heartbeat-secs").arg(h.to_string());
    }
    cmd.args(&spec.extra_args);
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    spawn_logged(cmd, &spec.log, "server")
}

/// The flags every agent (real or simulated) needs to reach the server.
pub fn agent_conn_args(data_dir: &Path, server: std::net::SocketAddr, state: &Path) -> Vec<String> {
    vec![
        "--server".into(),
        server.to_string(),
        "--ca".into(),
        data_dir.join("ca.pem").display().to_string(),
        "--enroll-token-file".into(),
        data_dir.join("enroll.token").display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
    ]
}

/// Starts a real agent in network namespace `netns`, in a private mount namespace with its own
/// `/tmp` and a UTS namespace whose hostname is `hostname`. `ip netns exec` mounts a fresh
/// `/sys`, which hides the host's cgroup2 mount; it is mounted again at `/sys/fs/cgroup` (the
/// same hierarchy, as on a pure cgroup v2 host) so the agent can contain tasks in cgroups.
pub fn spawn_netns_agent(
    bins: &Bins,
    netns: &str,
    hostname: &str,
    conn_args: &[String],
    extra_args: &[String],
    log: &Path,
) -> anyhow::Result<Child> {
    let mut cmd = guarded(Path::new("ip"));
    cmd.args(["netns", "exec", netns])
        .args(["unshare", "--mount", "--uts", "--propagation", "private", "--"])
        .args([
            "sh",
            "-c",
            "mount -t tmpfs -o mode=1777 tmpfs /tmp && hostname \"$SHOAL_AGENT_HOSTNAME\" && \
             { grep -q ' - cgroup2 ' /proc/self/mountinfo || mount -t cgroup2 cgroup2 /sys/fs/cgroup; } && \
             exec \"$0\" \"$@\"",
        ])
        .arg(&bins.agent)
        .args(conn_args)
        .args(extra_args)
        .env("SHOAL_AGENT_HOSTNAME", hostname);
    spawn_logged(cmd, log, &format!("agent {hostname} in {netns}"))
}

/// Starts `shoal-agent simulate --count N` in the root namespace.
pub fn spawn_sim_fleet(
    bins: &Bins,
    count: usize,
    conn_args: &[String],
    extra_args: &[String],
    log: &Path,
) -> anyhow::Result<Child> {
    let mut cmd = guarded(&bins.agent);
    cmd.arg("simulate")
        .arg("--count")
        .arg(count.to_string())
        .args(conn_args)
        .args(extra_args);
    spawn_logged(cmd, log, &format!("simulated fleet of {count}"))
}

/// SIGTERMs a child and reaps it, SIGKILLing it if it is still there after `grace`.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(child);
}

/// SIGKILLs and reaps a child; a child that already exited is only reaped.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `max` bytes of a log file, for failure reports.
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`, ...).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A free TCP port on `ip` (bound and released; good enough for tests on private addresses).
pub fn free_port(ip: std::net::IpAddr) -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("binding {ip}:0"))?;
    Ok(l.local_addr()?.port())
}
