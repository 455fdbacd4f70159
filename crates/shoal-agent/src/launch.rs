//! Everything before the fork: resolve the account, pick the interpreter, write the script
//! file, create the task's cgroup, and build the command (environment, working directory, one
//! pipe for stdout and stderr, process group, cgroup, identity).

use crate::contain::{self, Group};
use nix::unistd::{Gid, Uid, User};
use shoal_proto::End;
use shoal_types::{Language, ScriptSpec, TaskKey};
use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

/// PATH of a login environment.
pub const LOGIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the executor writes scripts and looks for interpreters.
#[derive(Clone, Debug)]
pub struct Config {
    pub scripts_dir: PathBuf,
    /// Directories searched for interpreters, in order.
    pub search_path: Vec<PathBuf>,
    /// Where task cgroups are created; `None`: tasks are contained by process group only.
    pub cgroups: Option<Arc<contain::Tree>>,
}

impl Config {
    /// Searches the agent's own `PATH`, then the login `PATH`.
    pub fn new(scripts_dir: PathBuf) -> Config {
        let mut search_path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for dir in LOGIN_PATH.split(':') {
            let dir = PathBuf::from(dir);
            if !search_path.contains(&dir) {
                search_path.push(dir);
            }
        }
        Config {
            scripts_dir,
            search_path,
            cgroups: None,
        }
    }

    pub fn containment(&self) -> contain::Mode {
        match self.cgroups {
            Some(_) => contain::Mode::Cgroup,
            None => contain::Mode::Pgroup,
        }
    }
}

/// The OS account a script runs as.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    pub shell: PathBuf,
    /// Set when the account differs from the agent's: the child switches to it.
    pub switch: Option<Vec<Gid>>,
}

/// A script ready to spawn.
#[derive(Debug)]
pub struct Prepared {
    pub command: tokio::process::Command,
    pub script: PathBuf,
    pub interpreter: PathBuf,
    /// The read end of the pipe that is both the script's stdout and its stderr. One pipe keeps
    /// the order in which the script wrote to either exactly.
    pub output: std::io::PipeReader,
    /// The task's cgroup, which the child joins before exec.
    pub group: Option<Group>,
}

/// Prepares `spec` for running (blocking: NSS lookups and a file write). `Err` is how the task
/// ends without starting.
pub fn prepare(cfg: &Config, key: &TaskKey, spec: &ScriptSpec) -> Result<Prepared, End> {
    let account = resolve_account(&spec.account)?;
    let (interpreter, flags, ext) = interpreter(spec.language, spec.login_env, &cfg.search_path)
        .map_err(|reason| End::StartFailed { reason })?;
    let workdir = workdir(spec, &account)?;
    let script = cfg.scripts_dir.join(format!("{key}.{ext}"));
    write_script(&cfg.scripts_dir, &script, &spec.content, &account)
        .map_err(|e| start_failed(format!("writing script {}: {e}", script.display())))?;

    let (output, writer) =
        std::io::pipe().map_err(|e| start_failed(format!("creating the output pipe: {e}")))?;
    let stderr = writer
        .try_clone()
        .map_err(|e| start_failed(format!("creating the output pipe: {e}")))?;

    let mut cmd = tokio::process::Command::new(&interpreter);
    cmd.args(flags).arg(&script).args(&spec.args);
    if spec.login_env {
        cmd.env_clear()
            .env("HOME", &account.home)
            .env("USER", &account.name)
            .env("LOGNAME", &account.name)
            .env("SHELL", &account.shell)
            .env("PATH", LOGIN_PATH);
    } else if account.switch.is_some() {
        // The agent's environment, but HOME and USER must not point at the agent's account.
        cmd.env("HOME", &account.home)
            .env("USER", &account.name)
            .env("LOGNAME", &account.name);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env("SHOAL_STEP_ID", key.step_id.to_string())
        .env("SHOAL_HOST_ID", key.host_id.to_string())
        .env("SHOAL_ATTEMPT", key.attempt.to_string())
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    // Created last, so no earlier failure leaves it behind; joined before the identity switch,
    // while the child may still write to cgroup.procs.
    let group = match &cfg.cgroups {
        Some(tree) => {
            let (group, procs) = tree.create(key).map_err(|e| {
                let _ = std::fs::remove_file(&script);
                start_failed(format!("creating the task's cgroup: {e}"))
            })?;
            join_cgroup(&mut cmd, procs);
            Some(group)
        }
        None => None,
    };
    if let Some(groups) = &account.switch {
        switch_identity(&mut cmd, account.uid, account.gid, groups.clone());
    }
    Ok(Prepared {
        command: cmd,
        script,
        interpreter,
        output,
        group,
    })
}

fn start_failed(reason: String) -> End {
    End::StartFailed { reason }
}

/// Empty name: the agent's own account. Unknown name: [`End::UserNotFound`].
pub fn resolve_account(name: &str) -> Result<Account, End> {
    let euid = nix::unistd::geteuid();
    let lookup = if name.is_empty() {
        User::from_uid(euid)
    } else {
        User::from_name(name)
    };
    let user = lookup.map_err(|e| start_failed(format!("looking up account {name:?}: {e}")))?;
    let Some(user) = user else {
        if name.is_empty() {
            // No passwd entry for the agent's uid (containers): run as-is.
            return Ok(Account {
                name: std::env::var("USER").unwrap_or_default(),
                uid: euid,
                gid: nix::unistd::getegid(),
                home: std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "/".into()),
                shell: "/bin/sh".into(),
                switch: None,
            });
        }
        return Err(End::UserNotFound {
            account: name.to_owned(),
        });
    };
    let switch = if user.uid == euid {
        None
    } else {
        let cname = CString::new(user.name.as_bytes())
            .map_err(|_| start_failed(format!("account name {name:?} contains NUL")))?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid)
            .map_err(|e| start_failed(format!("listing groups of {name:?}: {e}")))?;
        Some(groups)
    };
    Ok(Account {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
        home: user.dir,
        shell: user.shell,
        switch,
    })
}

/// The interpreter path, the flags before the script path, and the script's extension.
pub fn interpreter(
    language: Language,
    login: bool,
    search: &[PathBuf],
) -> Result<(PathBuf, &'static [&'static str], &'static str), String> {
    let login_flag: &'static [&'static str] = if login { &["-l"] } else { &[] };
    let found = |name: &str| find_executable(name, search);
    match language {
        Language::Shell => found("bash")
            .or_else(|| found("sh"))
            .map(|p| (p, login_flag, "sh"))
            .ok_or_else(|| "no shell found (bash or sh)".to_owned()),
        Language::Python => found("python3")
            .map(|p| (p, &[][..], "py"))
            .ok_or_else(|| "interpreter python3 not found".to_owned()),
        Language::Perl => found("perl")
            .map(|p| (p, &[][..], "pl"))
            .ok_or_else(|| "interpreter perl not found".to_owned()),
        Language::Powershell => found("pwsh")
            .map(|p| {
                (
                    p,
                    &["-NoLogo", "-NoProfile", "-NonInteractive", "-File"][..],
                    "ps1",
                )
            })
            .ok_or_else(|| "interpreter pwsh not found".to_owned()),
        Language::Bat => Err("bat scripts are not supported on this platform".to_owned()),
    }
}

pub fn find_executable(name: &str, search: &[PathBuf]) -> Option<PathBuf> {
    search.iter().map(|dir| dir.join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn workdir(spec: &ScriptSpec, account: &Account) -> Result<PathBuf, End> {
    if !spec.workdir.is_empty() {
        let dir = PathBuf::from(&spec.workdir);
        if !dir.is_dir() {
            return Err(start_failed(format!(
                "working directory {} does not exist",
                dir.display()
            )));
        }
        return Ok(dir);
    }
    Ok(if account.home.is_dir() {
        account.home.clone()
    } else {
        PathBuf::from("/")
    })
}

/// Writes the script readable only by the account that runs it (mode 0700, owned by it). The
/// scripts directory is 0711 so other accounts can reach their file without listing others.
fn write_script(dir: &Path, path: &Path, content: &str, account: &Account) -> std::io::Result<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)?;
    file.write_all(content.as_bytes())?;
    if account.switch.is_some() {
        nix::unistd::fchown(&file, Some(account.uid), Some(account.gid))
            .map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Makes the child move itself into the task's cgroup before exec, so that everything the
/// script starts is born inside it.
#[allow(unsafe_code)]
fn join_cgroup(cmd: &mut tokio::process::Command, procs: std::fs::File) {
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe functions may be called. It makes one write(2) call ("0": the calling
    // process) on a descriptor the parent opened before the fork (close-on-exec, so the script
    // never sees it); nothing allocates or takes a lock.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::write(&procs, b"0")?;
            Ok(())
        });
    }
}

/// Makes the child switch to `uid`/`gid` with the account's supplementary groups before exec.
/// std's `Command::uid`/`gid` would drop all supplementary groups, so the switch is done here,
/// in that order: groups, gid, uid (the last one gives up the right to do the others).
#[allow(unsafe_code)]
fn switch_identity(cmd: &mut tokio::process::Command, uid: Uid, gid: Gid, groups: Vec<Gid>) {
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe functions may be called. It calls setgroups(2), setgid(2) and
    // setuid(2) through nix's thin wrappers, which neither allocate nor take locks; the group
    // list was computed (getgrouplist, NSS) in the parent before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    // Pins interpreter choice per language (bash before sh, login flag, pwsh flags, bat refused,
    // missing interpreters reported) and account resolution (self, unknown, another user).
    use super::*;

    #[test]
    fn picks_interpreters() {
        let cfg = Config::new("/nonexistent".into());
        let (sh, flags, ext) = interpreter(Language::Shell, true, &cfg.search_path).expect("sh");
        assert!(sh.ends_with("bash") || sh.ends_with("sh"));
        assert_eq!((flags, ext), (&["-l"][..], "sh"));
        assert!(
            interpreter(Language::Shell, false, &cfg.search_path)
                .expect("sh")
                .1
                .is_empty()
        );
        assert!(interpreter(Language::Bat, false, &cfg.search_path).is_err());
        let err = interpreter(Language::Python, false, &[]).expect_err("empty search path");
        assert!(err.contains("python3"), "{err}");
    }

    #[test]
    fn resolves_accounts() {
        let me = resolve_account("").expect("self");
        assert!(me.switch.is_none());
        assert_eq!(me.uid, nix::unistd::geteuid());
        assert_eq!(
            resolve_account("no-such-user-shoal").expect_err("unknown"),
            End::UserNotFound {
                account: "no-such-user-shoal".into()
            }
        );
        if nix::unistd::geteuid().is_root() {
            let nobody = resolve_account("nobody").expect("nobody exists");
            assert!(nobody.switch.is_some());
        }
    }
}
