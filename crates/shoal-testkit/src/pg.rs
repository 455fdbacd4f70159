//! A throwaway PostgreSQL cluster for tests: [`PgCluster`].
//!
//! `PgCluster::start()` runs `initdb` and `pg_ctl` (as an unprivileged user when we are root:
//! PostgreSQL refuses to run as root) into `/tmp/shoal-pg-<pid>-*`, on a free port, with
//! durability off (fsync, synchronous commit, full-page writes). Every test takes a fresh
//! database from [`PgCluster::create_database`]. [`PgCluster::shared`] is one cluster per test
//! binary; a watchdog process stops it when the test process exits, and clusters left by
//! killed runs are removed by the next start. With `SHOAL_TEST_PG_URL` set, that server is used
//! instead and no cluster is started.

use anyhow::{Context, bail};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Environment variable naming an existing server to use instead of starting one.
pub const URL_ENV: &str = "SHOAL_TEST_PG_URL";

/// Prefix of the directories of clusters started here (in the system temp dir).
const DIR_PREFIX: &str = "shoal-pg-";

/// The user clusters run as when we are root, created if missing.
const PG_USER: &str = "shoalpg";

/// A running PostgreSQL server for tests: either a cluster started here (stopped and removed
/// on drop) or the server named by `SHOAL_TEST_PG_URL`.
#[derive(Debug)]
pub struct PgCluster {
    admin_url: String,
    local: Option<Local>,
}

#[derive(Debug)]
struct Local {
    dir: PathBuf,
    postmaster_pid: u32,
    watchdog: Option<Child>,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

impl PgCluster {
    /// Starts a new cluster (or wraps `SHOAL_TEST_PG_URL` if set) and waits until it accepts
    /// connections.
    pub fn start() -> anyhow::Result<PgCluster> {
        if let Some(url) = std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty()) {
            return Ok(PgCluster {
                admin_url: url.trim().to_string(),
                local: None,
            });
        }
        remove_stale_clusters();
        let bin = find_bin_dir()?;
        let user = if running_as_root() {
            Some(ensure_user()?)
        } else {
            None
        };
        let mut last_error = None;
        // A free port can be taken by someone else between probing and binding: retry.
        for _ in 0..5 {
            match start_local(&bin, user.as_ref()) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("postgres did not start")))
    }

    /// The cluster shared by every test of this test binary, started on first use.
    ///
    /// Panics if it cannot start (tests cannot go on without it).
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| match PgCluster::start() {
            Ok(cluster) => cluster,
            Err(e) => panic!("starting the test PostgreSQL cluster: {e:#}"),
        })
    }

    /// URL of the administrative database (`postgres`), as the superuser.
    pub fn url(&self) -> String {
        self.admin_url.clone()
    }

    /// Creates a fresh, empty database and returns its URL. `name` is a hint (say, the test's
    /// name): the database name also carries the process id and a counter, so the same hint
    /// can be used by many tests and test binaries at once.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let n = NEXT_DATABASE.fetch_add(1, Ordering::Relaxed);
        let hint: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut db = format!("t{}_{n}_{hint}", std::process::id());
        db.truncate(63);
        let psql = find_psql();
        let out = Command::new(&psql)
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.admin_url,
                "-c",
            ])
            .arg(format!("CREATE DATABASE \"{db}\""))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", psql.display()))?;
        if !out.status.success() {
            bail!(
                "CREATE DATABASE {db} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(with_database(&self.admin_url, &db))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let Some(local) = &mut self.local else { return };
        if let Some(mut watchdog) = local.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        stop_postmaster(local.postmaster_pid);
        let _ = std::fs::remove_dir_all(&local.dir);
    }
}

/// `url` with its database (path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{db}?{query}"),
        None => format!("{base}/{db}"),
    }
}

fn start_local(bin: &Path, user: Option<&(String, u32, u32)>) -> anyhow::Result<PgCluster> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(std::env::temp_dir())
        .context("creating the cluster directory")?
        .keep();
    let result = init_and_start(bin, user, &dir);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn init_and_start(
    bin: &Path,
    user: Option<&(String, u32, u32)>,
    dir: &Path,
) -> anyhow::Result<PgCluster> {
    if let Some((_, uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(*uid), Some(*gid)).context("chown cluster dir")?;
    }
    let data = dir.join("data");
    let run = |program: &str| {
        let mut cmd = match user {
            Some((name, _, _)) => {
                let mut c = Command::new("runuser");
                c.args(["-u", name, "--"]).arg(bin.join(program));
                c
            }
            None => Command::new(bin.join(program)),
        };
        cmd.current_dir(dir).stdin(Stdio::null());
        cmd
    };

    let out = run("initdb")
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .context("running initdb")?;
    if !out.status.success() {
        bail!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    let port = free_port()?;
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    // pg_ctl's own output goes to a file: a pipe could be held open by the server.
    let ctl_log = std::fs::File::create(dir.join("pg_ctl.log")).context("creating pg_ctl.log")?;
    let status = run("pg_ctl")
        .args(["-w", "-t", "60", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(dir.join("postgres.log"))
        .args(["-o", &options, "start"])
        .stdout(ctl_log.try_clone().context("pg_ctl.log")?)
        .stderr(ctl_log)
        .status()
        .context("running pg_ctl")?;
    if !status.success() {
        let ctl = std::fs::read_to_string(dir.join("pg_ctl.log")).unwrap_or_default();
        let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
        bail!("pg_ctl start failed: {}\n{}", ctl.trim(), log.trim());
    }
    let postmaster_pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        .context("reading postmaster.pid")?;
    let mut cluster = PgCluster {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        local: Some(Local {
            dir: dir.to_path_buf(),
            postmaster_pid,
            watchdog: None,
        }),
    };
    wait_for_port(port)?;
    if let Some(local) = &mut cluster.local {
        local.watchdog = spawn_watchdog(postmaster_pid, dir).ok();
    }
    Ok(cluster)
}

/// A process that stops the cluster and removes its directory once this process is gone, so
/// that a cluster nobody drops (the shared one) does not outlive its test binary.
fn spawn_watchdog(postmaster_pid: u32, dir: &Path) -> anyhow::Result<Child> {
    const SCRIPT: &str = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        kill -QUIT "$2" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || break; sleep 0.5; done
        rm -rf "$3"
    "#;
    Command::new("sh")
        .args(["-c", SCRIPT, "shoal-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(postmaster_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning the cluster watchdog")
}

/// Immediate shutdown of a postmaster (its backends follow), waiting a little for it to go.
fn stop_postmaster(pid: u32) {
    let _ = Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes clusters started by test processes that no longer run (killed before cleanup).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        let postmaster = std::fs::read_to_string(dir.join("data").join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if let Some(pid) = postmaster {
            stop_postmaster(pid);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("probing a free port")?;
    Ok(listener.local_addr().context("probing a free port")?.port())
}

fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("postgres did not accept connections on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `(name, uid, gid)` of the user clusters run as: `postgres` if it exists, else `shoalpg`
/// (created here).
fn ensure_user() -> anyhow::Result<(String, u32, u32)> {
    for name in ["postgres", PG_USER] {
        if let Some(ids) = user_ids(name) {
            return Ok((name.to_string(), ids.0, ids.1));
        }
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            PG_USER,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running useradd")?;
    match user_ids(PG_USER) {
        Some((uid, gid)) => Ok((PG_USER.to_string(), uid, gid)),
        None => bail!("cannot create user {PG_USER} to run postgres as (useradd: {status})"),
    }
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id")
            .args([flag, name])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// The directory holding `initdb` and `pg_ctl`: from `PATH`, else Debian's versioned dirs
/// (newest first).
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    candidates.extend(debian_bin_dirs());
    for dir in candidates {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            // Follow symlinks so that sibling tools (postgres, psql) are found next to them.
            let real = std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir);
            return Ok(real);
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql: \
         run `apt-get install postgresql` (the Makefile's setup installs it), or set {URL_ENV} \
         to an existing server"
    )
}

fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((version, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

fn find_psql() -> PathBuf {
    if let Some(psql) = find_bin_dir()
        .ok()
        .map(|dir| dir.join("psql"))
        .filter(|p| p.is_file())
    {
        return psql;
    }
    PathBuf::from("psql")
}

#[cfg(test)]
mod tests {
    // Pins the cluster's life cycle (fresh databases usable, everything gone after drop) and
    // URL rewriting for per-test databases.
    use super::*;

    #[test]
    fn database_replaces_path_and_keeps_query() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "t1"),
            "postgres://u@h:5/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "t1"), "postgres://h:5/t1");
    }

    #[test]
    fn cluster_serves_fresh_databases_and_is_removed_on_drop() {
        let cluster = PgCluster::start().expect("start cluster");
        let a = cluster
            .create_database("Life Cycle")
            .expect("create database");
        let b = cluster
            .create_database("Life Cycle")
            .expect("create database");
        assert_ne!(a, b);
        let out = Command::new(find_psql())
            .args(["-X", "-At", "-d", &a, "-c", "SELECT current_database()"])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(a.ends_with(&format!("/{name}")), "{a} vs {name}");
        assert!(name.ends_with("_life_cycle"), "{name}");

        let Some(local) = &cluster.local else { return }; // SHOAL_TEST_PG_URL in use
        let (dir, pid) = (local.dir.clone(), local.postmaster_pid);
        assert!(dir.exists());
        drop(cluster);
        assert!(!dir.exists(), "cluster dir removed");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "postmaster stopped"
        );
    }
}
