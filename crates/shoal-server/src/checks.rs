//! Request checks shared by script executions and file transfers (`launch`,
//! `transfer::validate`): one rule and one message, whichever path applies it, and
//! [`Rejected`], the error of a request that breaks a rule.

use crate::clock::now_ms;
use shoal_types::api::ErrorCode;
use shoal_types::limits;

/// A request that breaks a rule: the stable code and a message for the caller. Services
/// return it (or wrap it in their error); the API layer turns it into a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejected {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejected {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Rejected {
        Rejected {
            code,
            message: message.into(),
        }
    }

    /// INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Rejected {
        Rejected::new(ErrorCode::InvalidArgument, message)
    }

    /// The same rejection, its message prefixed with where in the request it applies.
    pub fn at(self, place: &str) -> Rejected {
        Rejected::new(self.code, format!("{place}: {}", self.message))
    }
}

/// The step timeout in seconds: absent is the default, outside the limits TIMEOUT_OUT_OF_RANGE.
pub fn timeout_secs(timeout: Option<i64>) -> Result<u32, Rejected> {
    let timeout = timeout.unwrap_or(i64::from(limits::TIMEOUT_DEFAULT_SECS));
    let range = i64::from(limits::TIMEOUT_MIN_SECS)..=i64::from(limits::TIMEOUT_MAX_SECS);
    if !range.contains(&timeout) {
        return Err(Rejected::new(
            ErrorCode::TimeoutOutOfRange,
            format!(
                "timeout {timeout} is out of range: {} to {} seconds",
                range.start(),
                range.end()
            ),
        ));
    }
    u32::try_from(timeout).map_err(|_| Rejected::invalid("timeout is out of range"))
}

/// An OS account name (absent: the agent's default): at most 64 bytes, no white space, `/`
/// or `:`.
pub fn account(account: Option<&str>) -> Result<String, Rejected> {
    let account = account.unwrap_or("").to_string();
    if account.len() > 64
        || account
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ':')
    {
        return Err(Rejected::invalid(format!(
            "invalid account name {account:?}"
        )));
    }
    Ok(account)
}

/// The job name, trimmed; blank or absent: `{default} {now_ms}`.
pub fn job_name(name: Option<&str>, default: &str) -> Result<String, Rejected> {
    match name {
        Some(n) if n.chars().count() > limits::NAME_MAX_CHARS => Err(Rejected::invalid(format!(
            "name is longer than {} characters",
            limits::NAME_MAX_CHARS
        ))),
        Some(n) if !n.trim().is_empty() => Ok(n.trim().to_string()),
        _ => Ok(default_name(default, now_ms())),
    }
}

/// The name of an unnamed job: `quick script 2026-12-03 15:30:12 UTC`.
fn default_name(default: &str, now: i64) -> String {
    let time = shoal_plan::plan::UtcTime::from_unix_ms(now);
    let stamp = shoal_plan::plan::strftime("%Y-%m-%d %H:%M:%S UTC", &time);
    format!("{default} {stamp}")
}

#[cfg(test)]
mod tests {
    //! Pins the shared checks: the timeout default and range (TIMEOUT_OUT_OF_RANGE), account
    //! names, and job names (trimmed, or the given default followed by a timestamp).
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(timeout_secs(None).ok(), Some(7200));
        assert_eq!(timeout_secs(Some(259_200)).ok(), Some(259_200));
        for bad in [0, -1, 259_201] {
            let e = timeout_secs(Some(bad)).expect_err("out of range");
            assert_eq!(e.code, ErrorCode::TimeoutOutOfRange, "{bad}");
        }
    }

    #[test]
    fn accounts_and_names() {
        assert_eq!(account(None).ok().as_deref(), Some(""));
        assert_eq!(account(Some("app")).ok().as_deref(), Some("app"));
        for bad in ["a b", "a/b", "a:b", &"x".repeat(65)] {
            let e = account(Some(bad)).expect_err(bad);
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
            assert!(
                e.message.starts_with("invalid account name"),
                "{}",
                e.message
            );
        }
        assert_eq!(job_name(Some(" n "), "x").ok().as_deref(), Some("n"));
        let default = job_name(Some("  "), "file transfer").expect("default");
        assert!(default.starts_with("file transfer "), "{default}");
        assert!(default.ends_with(" UTC"), "{default}");
        assert_eq!(
            default_name("quick script", 1_796_289_450_271),
            "quick script 2026-12-03 09:17:30 UTC"
        );
        let long = "x".repeat(limits::NAME_MAX_CHARS + 1);
        assert!(job_name(Some(&long), "x").is_err());
    }
}
