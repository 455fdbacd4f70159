//! Exit codes and how errors map onto them. Scripts branch on these, so they are part of the
//! CLI's contract:
//!
//! | code | meaning |
//! | ---- | ------- |
//! | 0    | ok |
//! | 1    | the job ran but some host did not succeed, or the command failed |
//! | 2    | usage error or bad input (also the server's validation errors) |
//! | 3    | cannot reach the server, or it refused the credentials |
//! | 130  | interrupted by Ctrl-C while following a job (the job keeps running) |

use shoal_client::ErrorCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Failed,
    Usage,
    Unreachable,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
            Exit::Interrupted => 130,
        }
    }
}

/// Bad input found by the CLI itself (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand: `return Err(usage(format!(...)))`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The exit code for a failed command.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<shoal_client::Error>() {
            return exit_for_client(e);
        }
    }
    Exit::Failed
}

fn exit_for_client(e: &shoal_client::Error) -> Exit {
    if e.is_unreachable() || e.is_auth() {
        return Exit::Unreachable;
    }
    use ErrorCode::*;
    match e {
        shoal_client::Error::Invalid(_) => Exit::Usage,
        shoal_client::Error::Api { code, .. } => match code {
            InvalidArgument | MalformedJson | UnknownHost | UnknownGroup | EmptyTarget
            | UnknownLanguage | ScriptTooLarge | TimeoutOutOfRange | InvalidSelector
            | InvalidParams | InvalidPath | UnknownUpload | PayloadTooLarge | UriTooLong
            | HeadersTooLarge | UnknownScope => Exit::Usage,
            Unauthenticated | PermissionDenied | TooManyAttempts | Unavailable => Exit::Unreachable,
            NotFound | InvalidState | Conflict | Internal => Exit::Failed,
        },
        _ => Exit::Failed,
    }
}

/// Context of a request refused with the token `shoal login` stored (expired or revoked).
#[derive(Debug)]
pub struct StoredRefused(pub std::path::PathBuf);

impl std::fmt::Display for StoredRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server refused the token stored in {}",
            self.0.display()
        )
    }
}

/// A hint printed after the error message, for the errors people hit first.
pub fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    if err.downcast_ref::<StoredRefused>().is_some() {
        return Some("it may have expired or been revoked: sign in again with `shoal login`");
    }
    if err.downcast_ref::<crate::account::SignInFailed>().is_some() {
        return Some(crate::account::SSO_HINT);
    }
    let e = err
        .chain()
        .find_map(|c| c.downcast_ref::<shoal_client::Error>())?;
    if e.is_unreachable() {
        return Some("is the server running? Point the CLI at it with --server or SHOAL_SERVER");
    }
    if e.status() == Some(401) || e.code() == Some(ErrorCode::Unauthenticated) {
        return Some(
            "sign in with `shoal login`, or pass an API token with --token, SHOAL_TOKEN, \
             --token-file or SHOAL_TOKEN_FILE (the server writes an admin token to \
             DATA_DIR/admin.token and the admin's password to DATA_DIR/admin.password on \
             first start)",
        );
    }
    None
}

/// Whether the error is a closed stdout (e.g. `shoal job log ... | head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    //! Pins the exit-code contract: which errors are usage (2), unreachable/auth (3) or a plain
    //! failure (1).
    use super::*;

    fn api(code: ErrorCode) -> anyhow::Error {
        anyhow::Error::new(shoal_client::Error::Api {
            status: code.http_status(),
            code,
            message: "m".into(),
        })
    }

    #[test]
    fn exit_codes() {
        let cases = [
            (usage("bad flag"), Exit::Usage),
            (api(ErrorCode::EmptyTarget), Exit::Usage),
            (api(ErrorCode::InvalidSelector), Exit::Usage),
            (api(ErrorCode::Unauthenticated), Exit::Unreachable),
            (api(ErrorCode::PermissionDenied), Exit::Unreachable),
            (api(ErrorCode::NotFound), Exit::Failed),
            (api(ErrorCode::Internal), Exit::Failed),
            (
                anyhow::Error::new(shoal_client::Error::Unreachable {
                    url: "u".into(),
                    message: "refused".into(),
                }),
                Exit::Unreachable,
            ),
            (
                anyhow::Error::new(shoal_client::Error::Http {
                    url: "u".into(),
                    status: 401,
                    body: String::new(),
                }),
                Exit::Unreachable,
            ),
            (anyhow::anyhow!("something else"), Exit::Failed),
        ];
        for (err, want) in cases {
            assert_eq!(exit_for(&err), want, "{err:#}");
        }
        // Context added on top does not hide the cause.
        let wrapped = api(ErrorCode::UnknownHost).context("cannot start the job");
        assert_eq!(exit_for(&wrapped), Exit::Usage);
        assert_eq!(Exit::Unreachable.code(), 3);
    }

    #[test]
    fn hints() {
        assert!(hint_for(&api(ErrorCode::Unauthenticated)).is_some());
        assert!(hint_for(&api(ErrorCode::NotFound)).is_none());
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe));
    }
}
