//! The sandbox's agents create their task cgroups below the test's own cgroup (they inherit
//! it). An agent stopped with SIGTERM removes its own; this removes what an agent killed with
//! SIGKILL during a test left there (its scripts included), since it will not start again to
//! do so itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup2 directory of process `pid` ("self" for this one), as seen from this mount
/// namespace; `None` without cgroup2.
pub fn cgroup_dir(pid: &str) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(str::to_owned))?
    })?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(&mount).join(path.trim().trim_start_matches('/')))
}

/// Kills and removes the cgroups of the agent whose state directory is `state_dir` (named in
/// its `cgroup` file).
pub fn remove_agent_cgroups(state_dir: &Path) {
    let Ok(record) = std::fs::read_to_string(state_dir.join("cgroup")) else {
        return;
    };
    let (Some(name), Some(own)) = (Path::new(record.trim()).file_name(), cgroup_dir("self")) else {
        return;
    };
    if !name.to_string_lossy().starts_with("shoal-agent-") {
        return;
    }
    let base = own.join(name);
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let _ = std::fs::write(dir.join("cgroup.kill"), b"1");
        let deadline = Instant::now() + Duration::from_secs(10);
        while populated(&dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_dir(&dir);
    }
    let _ = std::fs::remove_dir(&base);
}

fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l == "populated 1"))
}
