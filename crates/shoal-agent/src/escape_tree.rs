//! Test support shared by the executor's unit tests and the sandbox's containment tests
//! (included there by path): a script whose processes try every way out of a process group,
//! and a /proc scan that finds them by a unique marker in their command line.

/// A process tree that tries every way out of the process group: a child, a grandchild, a
/// double fork, `nohup`, a TERM-ignoring process and three `setsid` escapes (`setsid cmd &`,
/// `setsid -f`, a daemonizing double fork). Each process is a `sleep <marker><n>`, n in 1..=9
/// (9 is the script's own last command); it prints `started` once all were launched.
pub fn script(marker: &str) -> String {
    format!(
        "M={marker}
sleep ${{M}}1 &
sh -c \"sleep ${{M}}2 & wait\" &
( ( sleep ${{M}}3 & ) & )
nohup sleep ${{M}}4 >/dev/null 2>&1 &
sh -c \"trap '' TERM; exec sleep ${{M}}5\" &
setsid sleep ${{M}}6 &
setsid -f sleep ${{M}}7
( setsid sh -c \"sleep ${{M}}8 &\" & )
echo started
sleep ${{M}}9
"
    )
}

/// How many processes [`script`] starts.
pub const PROCESSES: usize = 9;

/// A marker no other test uses (all tests and sandbox hosts share one pid space).
pub fn marker(base: u32, salt: u32) -> String {
    format!("{}{salt}", base + std::process::id())
}

/// True when `pid` no longer runs (gone, or a zombie nobody reaped yet).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Running processes `sleep <marker>…`.
pub fn alive_with(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("sleep {marker}");
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with(&prefix) && !gone(pid) {
            pids.push(pid);
        }
    }
    pids
}
