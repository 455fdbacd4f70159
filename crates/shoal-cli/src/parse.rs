//! Value parsers for command-line arguments. Each returns `Err(String)` so clap reports it as a
//! usage error (exit 2) naming the flag.

use shoal_client::{AgentStatus, HostId, HostTaskStatus, Language, Role, RunStatus, TokenKind};

/// `--env K=V`: an environment variable for the script.
pub fn env_pair(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{s}`"))?;
    let mut chars = k.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{k}` is not a valid environment variable name (letters, digits, _; not starting with a digit)"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `shoal hosts label ID k=v k2-`: set or remove one user label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelEdit {
    Set(String, String),
    Remove(String),
}

pub fn label_edit(s: &str) -> Result<LabelEdit, String> {
    if let Some((k, v)) = s.split_once('=') {
        check_label_key(k)?;
        return Ok(LabelEdit::Set(k.to_string(), v.to_string()));
    }
    if let Some(k) = s.strip_suffix('-') {
        check_label_key(k)?;
        return Ok(LabelEdit::Remove(k.to_string()));
    }
    Err(format!(
        "expected KEY=VALUE (set) or KEY- (remove), got `{s}`"
    ))
}

fn check_label_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(format!("`{k}` is not a valid label key"));
    }
    Ok(())
}

pub fn language(s: &str) -> Result<Language, String> {
    Language::parse(s).ok_or_else(|| {
        format!("unknown language `{s}` (shell, python, perl, powershell, bat, or a bk-job code)")
    })
}

pub fn agent_status(s: &str) -> Result<AgentStatus, String> {
    AgentStatus::parse(&s.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown host status `{s}` (online, offline, abnormal)"))
}

pub fn token_kind(s: &str) -> Result<TokenKind, String> {
    TokenKind::parse(&s.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown token kind `{s}` (api, enroll)"))
}

const RUN_STATUS_NAMES: &[(&str, RunStatus)] = &[
    ("waiting", RunStatus::Blank),
    ("blank", RunStatus::Blank),
    ("running", RunStatus::Running),
    ("success", RunStatus::Success),
    ("failed", RunStatus::Fail),
    ("fail", RunStatus::Fail),
    ("skipped", RunStatus::Skipped),
    ("ignore_error", RunStatus::IgnoreError),
    ("waiting_user", RunStatus::WaitingUser),
    ("terminated", RunStatus::Terminated),
    ("abnormal", RunStatus::AbnormalState),
    ("stopping", RunStatus::Stopping),
    ("stopped", RunStatus::StopSuccess),
    ("confirm_terminated", RunStatus::ConfirmTerminated),
    ("abandoned", RunStatus::Abandoned),
    ("rolling_waiting", RunStatus::RollingWaiting),
];

/// A job status by name (`running`, `failed`, ...) or bk-job code.
pub fn run_status(s: &str) -> Result<RunStatus, String> {
    let s = s.trim().to_ascii_lowercase().replace('-', "_");
    if let Ok(code) = s.parse::<i32>() {
        return RunStatus::from_code(code).ok_or_else(|| format!("unknown job status code {code}"));
    }
    lookup(RUN_STATUS_NAMES, &s, "job status")
}

const TASK_STATUS_NAMES: &[(&str, HostTaskStatus)] = &[
    ("unknown", HostTaskStatus::Unknown),
    ("agent_abnormal", HostTaskStatus::AgentAbnormal),
    ("invalid_host", HostTaskStatus::InvalidHost),
    ("last_success", HostTaskStatus::LastSuccess),
    ("waiting", HostTaskStatus::Waiting),
    ("running", HostTaskStatus::Running),
    ("success", HostTaskStatus::Success),
    ("failed", HostTaskStatus::Failed),
    ("submit_failed", HostTaskStatus::SubmitFailed),
    ("task_timeout", HostTaskStatus::TaskTimeout),
    ("agent_not_installed", HostTaskStatus::AgentNotInstalled),
    ("script_failed", HostTaskStatus::ScriptFailed),
    ("script_timeout", HostTaskStatus::ScriptTimeout),
    ("timeout", HostTaskStatus::ScriptTimeout),
    ("script_terminated", HostTaskStatus::ScriptTerminated),
    ("script_non_zero_exit", HostTaskStatus::ScriptNonZeroExit),
    ("nonzero", HostTaskStatus::ScriptNonZeroExit),
    ("file_failed", HostTaskStatus::FileFailed),
    ("source_not_found", HostTaskStatus::SourceNotFound),
    ("file_system_error", HostTaskStatus::FileSystemError),
    ("file_timeout", HostTaskStatus::FileTimeout),
    ("user_not_exist", HostTaskStatus::UserNotExist),
    ("task_error", HostTaskStatus::TaskError),
];

/// A host task status by name (`success`, `nonzero`, `agent_abnormal`, ...) or bk-job code.
pub fn task_status(s: &str) -> Result<HostTaskStatus, String> {
    let s = s.trim().to_ascii_lowercase().replace('-', "_");
    if let Ok(code) = s.parse::<i32>() {
        return HostTaskStatus::from_code(code)
            .ok_or_else(|| format!("unknown host task status code {code}"));
    }
    lookup(TASK_STATUS_NAMES, &s, "host task status")
}

fn lookup<T: Copy>(table: &[(&str, T)], s: &str, what: &str) -> Result<T, String> {
    if let Some((_, v)) = table.iter().find(|(n, _)| *n == s) {
        return Ok(*v);
    }
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    Err(format!("unknown {what} `{s}` ({})", names.join(", ")))
}

/// A byte size: `1048576`, `64KiB`, `5MiB`, `1G` (binary multiples either way).
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 1048576, 64KiB, 5MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{s}`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// `--host` of `shoal job log`: a host id, or an IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSpec {
    Id(HostId),
    Ip(String),
}

pub fn host_spec(s: &str) -> Result<HostSpec, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("expected a host id or IP address".into());
    }
    if let Ok(id) = s.parse::<HostId>() {
        return Ok(HostSpec::Id(id));
    }
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(HostSpec::Ip(s.to_string()));
    }
    Err(format!("`{s}` is neither a host id nor an IP address"))
}

/// The positional `-` of `shoal run` (script on standard input).
pub fn dash(s: &str) -> Result<String, String> {
    if s == "-" {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unexpected argument `{s}`: give the script with -c SCRIPT, -f FILE, or - for stdin"
        ))
    }
}

/// A scope role: viewer, operator, developer or owner.
pub fn role(s: &str) -> Result<Role, String> {
    Role::parse(&s.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("unknown role `{s}` (viewer, operator, developer, owner)"))
}

/// An audit outcome: ok, denied, failed or throttled.
pub fn outcome(s: &str) -> Result<String, String> {
    let o = s.trim().to_ascii_lowercase();
    if ["ok", "denied", "failed", "throttled"].contains(&o.as_str()) {
        Ok(o)
    } else {
        Err(format!(
            "unknown outcome `{s}` (ok, denied, failed, throttled)"
        ))
    }
}

#[cfg(test)]
mod tests {
    //! Pins the accepted spellings of every value parser, and that bad values are rejected.
    use super::*;

    #[test]
    fn env_pairs() {
        assert_eq!(env_pair("A=1"), Ok(("A".into(), "1".into())));
        assert_eq!(env_pair("_x=a=b"), Ok(("_x".into(), "a=b".into())));
        assert_eq!(env_pair("EMPTY="), Ok(("EMPTY".into(), String::new())));
        for bad in ["A", "=1", "1A=2", "A-B=1", "A B=1"] {
            assert!(env_pair(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_edits() {
        assert_eq!(
            label_edit("role=web"),
            Ok(LabelEdit::Set("role".into(), "web".into()))
        );
        assert_eq!(
            label_edit("role="),
            Ok(LabelEdit::Set("role".into(), String::new()))
        );
        assert_eq!(label_edit("role-"), Ok(LabelEdit::Remove("role".into())));
        for bad in ["role", "=x", "-", "a b=c"] {
            assert!(label_edit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(run_status("failed"), Ok(RunStatus::Fail));
        assert_eq!(run_status("4"), Ok(RunStatus::Fail));
        assert_eq!(run_status("Running"), Ok(RunStatus::Running));
        assert!(run_status("12").is_err());
        assert!(run_status("nope").is_err());
        assert_eq!(
            task_status("nonzero"),
            Ok(HostTaskStatus::ScriptNonZeroExit)
        );
        assert_eq!(
            task_status("agent-abnormal"),
            Ok(HostTaskStatus::AgentAbnormal)
        );
        assert_eq!(task_status("104"), Ok(HostTaskStatus::ScriptNonZeroExit));
        assert_eq!(
            task_status("source-not-found"),
            Ok(HostTaskStatus::SourceNotFound)
        );
        assert_eq!(task_status("202"), Ok(HostTaskStatus::FileFailed));
        assert!(task_status("4").is_err());
        assert_eq!(agent_status("ONLINE"), Ok(AgentStatus::Online));
        assert!(agent_status("up").is_err());
        assert_eq!(token_kind("enroll"), Ok(TokenKind::Enroll));
        assert!(token_kind("admin").is_err());
        assert_eq!(language("bash"), Ok(Language::Shell));
        assert!(language("cobol").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("5MiB"), Ok(5 << 20));
        assert_eq!(size("5 M"), Ok(5 << 20));
        assert_eq!(size("1g"), Ok(1 << 30));
        for bad in ["", "MiB", "1.5M", "3X", "99999999999999999999G"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_specs() {
        assert_eq!(host_spec("42"), Ok(HostSpec::Id(42)));
        assert_eq!(host_spec("10.0.0.5"), Ok(HostSpec::Ip("10.0.0.5".into())));
        assert_eq!(host_spec("fd00::1"), Ok(HostSpec::Ip("fd00::1".into())));
        assert!(host_spec("web-1").is_err());
        assert!(host_spec("").is_err());
        assert_eq!(dash("-"), Ok("-".into()));
        assert!(dash("script.sh").is_err());
    }

    #[test]
    fn roles_and_outcomes() {
        assert_eq!(role("Operator"), Ok(Role::Operator));
        assert!(role("admin").is_err());
        assert_eq!(outcome("DENIED"), Ok("denied".into()));
        assert!(outcome("maybe").is_err());
    }
}
