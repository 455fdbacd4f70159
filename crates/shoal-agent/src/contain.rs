//! Task containment: every script runs in a cgroup v2 of its own, so terminate, timeout and
//! agent shutdown kill everything it started, also processes that left its process group
//! (`setsid`, `nohup`, daemonizing double forks). Where no writable cgroup2 hierarchy exists (not
//! root, read-only, some containers) the executor falls back to the script's process group
//! ([`Mode::Pgroup`]), and the host's facts say so.
//!
//! Layout, below the agent's own cgroup (the `0::` line of `/proc/self/cgroup`, under the
//! cgroup2 mount found in `/proc/self/mountinfo`):
//!
//! ```text
//! <agent's cgroup>/shoal-agent-<instance>/task-<key>.<n>   one per task run, a leaf
//!                                        /detached          what scripts left running after a
//!                                                           normal exit (daemons); never killed
//! ```
//!
//! `<instance>` is a hash of the agent's state directory: unique per agent on a machine (the
//! test sandbox runs many agents in one cgroup) and stable across restarts. An agent only ever
//! touches its own instance directory; at start it kills and removes the task cgroups a previous
//! run of the same agent left behind (after a `kill -9`), also when that run lived in another
//! cgroup (the path is recorded in `STATE_DIR/cgroup`). The instance directory holds no
//! processes itself and the agent never enables controllers, so cgroup v2's "no internal
//! processes" rule is never in the way.
//!
//! Everything here does blocking file IO on cgroupfs (fast, but callers on the async runtime use
//! `spawn_blocking` for anything that waits).

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use shoal_types::TaskKey;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const INSTANCE_PREFIX: &str = "shoal-agent-";
const TASK_PREFIX: &str = "task-";
const DETACHED: &str = "detached";
/// The file in the state directory that records the instance directory in use.
const RECORD: &str = "cgroup";
/// How long a kill waits for a cgroup to empty before giving up on removing it.
const EMPTY_WAIT: Duration = Duration::from_secs(10);

/// How tasks are contained on this host; reported in the host's facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup v2 per task.
    Cgroup,
    /// The script's process group only: descendants that start a new session escape.
    Pgroup,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Cgroup => "cgroup",
            Mode::Pgroup => "pgroup",
        }
    }
}

/// The agent's instance directory in the cgroup2 hierarchy.
#[derive(Debug)]
pub struct Tree {
    base: PathBuf,
    next: AtomicU64,
}

impl Tree {
    /// Finds the cgroup2 hierarchy, kills and removes what a previous run of this agent left
    /// behind, and checks that task cgroups can be created. `Err` says why tasks cannot be
    /// contained in cgroups here. The instance directory exists only while it holds something
    /// (a running task, detached daemons), so an agent killed while idle leaves nothing.
    pub fn open(state_dir: &Path) -> Result<Tree, String> {
        let own = own_cgroup_dir()?;
        let state_dir = std::fs::canonicalize(state_dir)
            .map_err(|e| format!("resolving {}: {e}", state_dir.display()))?;
        let instance = blake3::hash(state_dir.as_os_str().as_encoded_bytes()).to_hex();
        let base = own.join(format!("{INSTANCE_PREFIX}{}", &instance[..16]));
        let record = state_dir.join(RECORD);
        if let Ok(previous) = std::fs::read_to_string(&record) {
            let previous = PathBuf::from(previous.trim());
            if previous != base && is_instance_dir(&previous) {
                sweep(&previous, "left by an earlier run");
                remove_if_empty(&previous);
            }
        }
        if base.is_dir() {
            sweep(&base, "left by an earlier run");
        }
        std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
        // A probe proves that task cgroups can be created and joined (write access to
        // cgroup.procs), so the mode reported is the mode used.
        let probe = base.join("probe");
        let _ = std::fs::remove_dir(&probe); // left by a crash right here
        let joinable = std::fs::create_dir(&probe)
            .and_then(|()| open_procs(&probe).map(drop))
            .map_err(|e| format!("creating task cgroups in {}: {e}", base.display()));
        let _ = std::fs::remove_dir(&probe);
        remove_if_empty(&base);
        joinable?;
        crate::identity::write_atomic(&record, base.as_os_str().as_encoded_bytes(), 0o600)
            .map_err(|e| format!("writing {}: {e}", record.display()))?;
        Ok(Tree {
            base,
            next: AtomicU64::new(1),
        })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Creates the cgroup of one task run, with its `cgroup.procs` open for writing: the child
    /// writes `0` to it before exec to move itself in, so everything it starts is born inside.
    pub fn create(&self, key: &TaskKey) -> io::Result<(Group, std::fs::File)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.base.join(format!("{TASK_PREFIX}{key}.{n}"));
        // The instance directory may vanish between the two calls (another task's end
        // removes it when it looks empty): then again.
        let mut attempts = 0;
        loop {
            std::fs::create_dir_all(&self.base)?;
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                created => break created?,
            }
        }
        let group = Group {
            dir,
            base: self.base.clone(),
        };
        let procs = open_procs(&group.dir).inspect_err(|_| group.remove())?;
        Ok((group, procs))
    }

    /// Agent shutdown, first step: SIGKILLs every task cgroup's processes at once (no waiting),
    /// before anything can see a task end and detach what it left running.
    pub fn kill_tasks_now(&self) {
        for dir in task_dirs(&self.base) {
            kill_group(&dir);
        }
    }

    /// Agent shutdown: kills and removes every task cgroup, then the instance directory unless
    /// detached daemons live on in it.
    pub fn kill_all(&self) {
        sweep(&self.base, "the agent is stopping");
        remove_if_empty(&self.base);
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        remove_if_empty(&self.base);
    }
}

/// One task run's cgroup.
#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
    /// The instance directory it lives in.
    base: PathBuf,
}

impl Group {
    /// Sends `signal` to every process in the cgroup.
    pub fn signal(&self, signal: Signal) {
        for pid in pids(&self.dir) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    pub fn populated(&self) -> bool {
        populated(&self.dir)
    }

    /// SIGKILLs every process in the cgroup at once.
    pub fn kill(&self) {
        kill_group(&self.dir);
    }

    /// The task ended on its own: processes it left running (daemons it started) move to the
    /// instance's `detached` cgroup, where no kill reaches them, and the task's cgroup goes.
    pub fn detach_and_remove(&self) {
        let detached = self.base.join(DETACHED);
        for _ in 0..100 {
            let pids = pids(&self.dir);
            if pids.is_empty() {
                break;
            }
            if let Err(e) = std::fs::create_dir(&detached)
                && e.kind() != io::ErrorKind::AlreadyExists
            {
                tracing::warn!(cgroup = %detached.display(), error = %e, "creating the detached cgroup");
                return;
            }
            for pid in pids {
                let moved =
                    open_procs(&detached).and_then(|mut f| f.write_all(pid.to_string().as_bytes()));
                if let Err(e) = moved
                    && e.raw_os_error() != Some(nix::errno::Errno::ESRCH as i32)
                {
                    tracing::warn!(pid, error = %e, "moving a leftover process to the detached cgroup");
                }
            }
        }
        self.remove();
    }

    /// The task was terminated or timed out: kills everything in the cgroup, waits until it is
    /// empty and removes it.
    pub fn kill_and_remove(&self) {
        if kill_and_wait(&self.dir) {
            self.remove();
        }
    }

    /// Removes the task's cgroup, and the instance directory if that leaves it empty.
    fn remove(&self) {
        remove(&self.dir);
        remove_if_empty(&self.base);
    }
}

/// How one running task is contained: its process group, and its cgroup when there is one.
#[derive(Debug)]
pub struct Task {
    pub pgid: i32,
    pub group: Option<Group>,
}

impl Task {
    /// Sends `signal` to the process group and to every process of the cgroup.
    pub fn signal(&self, signal: Signal) {
        if self.pgid > 1 {
            let _ = killpg(Pid::from_raw(self.pgid), signal);
        }
        if let Some(g) = &self.group {
            g.signal(signal);
        }
    }

    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
        if let Some(g) = &self.group {
            g.kill();
        }
    }

    /// True while any process of the task runs (of its cgroup, or else of its process group).
    pub fn alive(&self) -> bool {
        match &self.group {
            Some(g) => g.populated(),
            None => self.pgid > 1 && killpg(Pid::from_raw(self.pgid), None).is_ok(),
        }
    }
}

fn open_procs(dir: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
}

fn pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// `populated` of `cgroup.events`; a cgroup that cannot be read counts as empty.
fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events")).is_ok_and(|text| {
        text.lines()
            .any(|l| l.split_once(' ') == Some(("populated", "1")))
    })
}

/// `cgroup.kill` (Linux 5.14); older kernels: freeze, SIGKILL every member, thaw.
fn kill_group(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), b"1").is_ok() {
        return;
    }
    let frozen = std::fs::write(dir.join("cgroup.freeze"), b"1").is_ok();
    for pid in pids(dir) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if frozen {
        let _ = std::fs::write(dir.join("cgroup.freeze"), b"0");
    }
}

/// Kills everything in a cgroup and waits until it is empty (false: it did not empty).
fn kill_and_wait(dir: &Path) -> bool {
    let deadline = Instant::now() + EMPTY_WAIT;
    kill_group(dir);
    while populated(dir) {
        if Instant::now() >= deadline {
            tracing::warn!(cgroup = %dir.display(), "task cgroup still has processes after SIGKILL");
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
        // Without cgroup.kill, processes forked during the first round need another.
        kill_group(dir);
    }
    true
}

/// Removes an instance directory holding no task and no detached daemon (an empty `detached`
/// goes with it); anything still in use stays, silently.
fn remove_if_empty(base: &Path) {
    let _ = std::fs::remove_dir(base.join(DETACHED));
    let _ = std::fs::remove_dir(base);
}

fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(cgroup = %dir.display(), error = %e, "removing task cgroup");
    }
}

/// The task cgroups under an instance directory.
fn task_dirs(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TASK_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Kills and removes every task cgroup under an instance directory; `why` is logged.
fn sweep(base: &Path, why: &str) {
    for dir in task_dirs(base) {
        tracing::warn!(cgroup = %dir.display(), "killing a task cgroup: {why}");
        if kill_and_wait(&dir) {
            remove(&dir);
        }
    }
}

fn is_instance_dir(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(INSTANCE_PREFIX))
        && path.join("cgroup.procs").is_file()
}

/// The agent's own cgroup as a directory of the cgroup2 mount.
fn own_cgroup_dir() -> Result<PathBuf, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let (root, mount) =
        cgroup2_mount(&mountinfo).ok_or_else(|| "no cgroup2 file system is mounted".to_owned())?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| "the agent is in no cgroup2 cgroup".to_owned())?;
    cgroup_dir(&root, &mount, own)
        .ok_or_else(|| format!("the agent's cgroup {own} is not visible under {mount}"))
}

/// `(root, mount point)` of the first cgroup2 mount in a mountinfo text.
fn cgroup2_mount(mountinfo: &str) -> Option<(String, String)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        Some((unescape(fields.get(3)?), unescape(fields.get(4)?)))
    })
}

/// The directory of cgroup `own` (as in /proc/self/cgroup) under a mount of hierarchy path
/// `root` at `mount`. `None` when the cgroup lies outside what the mount shows.
fn cgroup_dir(root: &str, mount: &str, own: &str) -> Option<PathBuf> {
    let own = own.trim();
    if own.contains("/..") || own.ends_with(" (deleted)") {
        return None;
    }
    let rel = if root == "/" {
        own
    } else {
        let rest = own.strip_prefix(root)?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest
    };
    Some(Path::new(mount).join(rel.trim_start_matches('/')))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    // Pins how the agent finds its cgroup: the cgroup2 line of mountinfo (hybrid and pure v2
    // layouts, escaped mount points), the `0::` path mapped below the mount (also for a mount of
    // a sub-hierarchy, as in a cgroup namespace), and paths outside the mount refused. With real
    // cgroups (root): a restarted agent kills the task cgroups its previous run left, and never
    // those of another agent on the same machine.
    use super::*;

    /// A `sleep` moved into a new task cgroup of `tree`, as if an agent had started it.
    fn contained_sleep(tree: &Tree, step_id: i64) -> std::process::Child {
        let key = TaskKey {
            step_id,
            attempt: 0,
            host_id: 1,
        };
        let (_group, mut procs) = tree.create(&key).expect("task cgroup");
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("sleep");
        procs
            .write_all(child.id().to_string().as_bytes())
            .expect("join");
        child
    }

    fn exited(child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_restart_kills_only_its_own_leftovers() {
        let (a_dir, b_dir) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let (a, b) = match (Tree::open(a_dir.path()), Tree::open(b_dir.path())) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(reason), _) | (_, Err(reason)) => {
                assert!(!nix::unistd::geteuid().is_root(), "root but {reason}");
                return; // no cgroups without root: nothing to pin
            }
        };
        assert_ne!(a.base(), b.base());
        let mut a_sleep = contained_sleep(&a, 1);
        let mut b_sleep = contained_sleep(&b, 2);
        // Agent A is killed (no shutdown) and starts again; B is untouched.
        std::mem::forget(a);
        let a = Tree::open(a_dir.path()).expect("restart");
        assert!(exited(&mut a_sleep), "A's leftover was not killed");
        assert!(task_dirs(a.base()).is_empty(), "{:?}", task_dirs(a.base()));
        assert!(
            matches!(b_sleep.try_wait(), Ok(None)),
            "B's task was killed"
        );
        b.kill_all();
        assert!(exited(&mut b_sleep));
        assert!(task_dirs(b.base()).is_empty());
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(("/".into(), "/sys/fs/cgroup/unified".into()))
        );
        let pure = "29 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mount(pure),
            Some(("/".into(), "/sys/fs/cgroup".into()))
        );
        let escaped = "1 2 0:1 /a /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(
            cgroup2_mount(escaped),
            Some(("/a".into(), "/mnt/my cg".into()))
        );
        assert_eq!(cgroup2_mount("1 2 0:1 / /x rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn maps_the_own_cgroup_below_the_mount() {
        let check = |root: &str, own: &str, want: Option<&str>| {
            assert_eq!(
                cgroup_dir(root, "/sys/fs/cgroup", own),
                want.map(PathBuf::from),
                "{root} {own}"
            );
        };
        check("/", "/", Some("/sys/fs/cgroup"));
        check(
            "/",
            "/system.slice/shoal-agent.service",
            Some("/sys/fs/cgroup/system.slice/shoal-agent.service"),
        );
        check("/docker/abc", "/docker/abc/x", Some("/sys/fs/cgroup/x"));
        check("/docker/abc", "/docker/abcd", None);
        check("/", "/../outside", None);
    }
}
