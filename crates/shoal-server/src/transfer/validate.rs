//! Validation of `POST /api/v1/file-transfers`: a [`FileTransferRequest`] becomes a
//! [`ValidatedTransfer`] or a stable error code.
//!
//! Cheap checks come first (paths, modes, limits, base64), so bad input is refused before
//! anything is looked up or stored; then source hosts are resolved, uploads looked up (and
//! marked used, so they cannot expire before the step references them), and inline content
//! stored as an upload. The targets are resolved by the launcher.
//!
//! Decisions:
//! - Source paths and `file_target_path` are absolute and have no `..` component (as in
//!   bk-job: a path names what it says, never a way out of it) and no NUL. In
//!   `file_target_path`, `[date:FORMAT]` and `[source_ip]` are macros. FORMAT uses the strftime conversions `%Y %y %m %d %H %M %S %j %%`
//!   (what `transfer::plan::strftime` expands) and literal text without `/`. Any other `[...]`
//!   is literal text, as in bk-job.
//! - Speed limits are MB/s, 1 to 10240; absent or 0 means unlimited (bk-job's convention).
//! - `transfer_mode`: `"strict"` or 1, `"force"` or 2 (the default).
//! - Upload and inline sources take no `targets` and no `account`; path sources no `name` and
//!   no `file_mode` (octal permission bits of an upload or inline file, default `0644`).

use super::ValidatedTransfer;
use crate::app::App;
use crate::auth::Caller;
use crate::checks;
use crate::checks::Rejected;
use crate::clock::now_ms;
use crate::launch::Error;
use base64::Engine as _;
use shoal_types::DEFAULT_SCOPE;
use shoal_types::api::{ErrorCode, FileSourceRequest, FileTransferRequest, Targets};
use shoal_types::files::{
    DEFAULT_UPLOAD_MODE, DirMode, FileSource, FileSpec, limits as file_limits,
};

/// Largest speed limit, MB/s.
pub const SPEED_LIMIT_MAX: u32 = 10_240;
/// Longest path accepted (Linux `PATH_MAX`).
const PATH_MAX_BYTES: usize = 4096;
/// Longest file name (Linux `NAME_MAX`).
pub const NAME_MAX_BYTES: usize = 255;
const REGEX_PREFIX: &str = "REGEX:";

/// A source after the static checks, before lookups.
enum Checked {
    Host {
        targets: Targets,
        paths: Vec<String>,
        account: String,
    },
    Upload {
        id: String,
        name: Option<String>,
        mode: u32,
    },
    Inline {
        content: Vec<u8>,
        name: String,
        mode: u32,
    },
}

pub async fn validate(
    app: &App,
    caller: &Caller,
    req: FileTransferRequest,
) -> Result<ValidatedTransfer, Error> {
    let scope_id = req.scope_id.unwrap_or(DEFAULT_SCOPE);
    let name = checks::job_name(req.name.as_deref(), "file transfer")?;
    check_target_dir(&req.file_target_path)?;
    let account = checks::account(req.account.as_deref())?;
    let dir_mode = dir_mode(req.transfer_mode.as_ref())?;
    let upload_limit_mbps = speed_limit(req.upload_speed_limit, "upload_speed_limit")?;
    let download_limit_mbps = speed_limit(req.download_speed_limit, "download_speed_limit")?;
    let timeout_secs = checks::timeout_secs(req.timeout)?;
    let checked = check_sources(&req.file_source_list)?;
    crate::targets::check_scope(app, scope_id).await?;

    let now = now_ms();
    let mut sources = Vec::with_capacity(checked.len());
    for (i, source) in checked.into_iter().enumerate() {
        sources.push(match source {
            Checked::Host {
                targets,
                paths,
                account,
            } => {
                let host_ids = crate::targets::resolve(app, scope_id, &targets)
                    .await
                    .map_err(|e| at(i, e))?;
                // Reading files from a host is executing there: the caller's host limit holds.
                crate::launch::authorize_hosts(app, caller, scope_id, &host_ids).await?;
                FileSource::Host {
                    host_ids,
                    paths,
                    account,
                }
            }
            Checked::Upload { id, name, mode } => {
                let upload = app
                    .uploads
                    .acquire(&*app.store, &id, now)
                    .await
                    .map_err(Error::Upload)?
                    .ok_or_else(|| {
                        Rejected::new(
                            ErrorCode::UnknownUpload,
                            format!(
                                "file_source_list[{i}]: no upload {id:?}; upload the file first \
                                 (POST /api/v1/uploads)"
                            ),
                        )
                    })?;
                FileSource::Upload {
                    name: name.unwrap_or(upload.name),
                    upload_id: upload.id,
                    mode,
                }
            }
            Checked::Inline {
                content,
                name,
                mode,
            } => {
                let upload = app
                    .uploads
                    .put_bytes(&*app.store, content.into(), &name, &caller.name, now)
                    .await
                    .map_err(Error::Upload)?;
                FileSource::Upload {
                    upload_id: upload.id,
                    name,
                    mode,
                }
            }
        });
    }
    Ok(ValidatedTransfer {
        scope_id,
        name,
        spec: FileSpec {
            sources,
            target_dir: req.file_target_path,
            account,
            dir_mode,
            duplicate: req.duplicate_handling.unwrap_or_default(),
            upload_limit_mbps,
            download_limit_mbps,
            timeout_secs,
            peer_to_peer: req.peer_to_peer.unwrap_or(true),
        },
        targets: req.targets,
    })
}

/// Prefixes an error about a source with which one it is.
fn at(index: usize, e: crate::targets::Error) -> Error {
    match e {
        crate::targets::Error::Rejected(r) => r.at(&format!("file_source_list[{index}]")).into(),
        other => other.into(),
    }
}

fn check_sources(list: &[FileSourceRequest]) -> Result<Vec<Checked>, Rejected> {
    if list.is_empty() {
        return Err(Rejected::invalid("file_source_list is empty"));
    }
    if list.len() > file_limits::SOURCES_MAX {
        return Err(Rejected::invalid(format!(
            "file_source_list has {} sources; at most {} are allowed",
            list.len(),
            file_limits::SOURCES_MAX
        )));
    }
    let paths: usize = list.iter().map(|s| s.file_list.len()).sum();
    if paths > file_limits::PATHS_MAX {
        return Err(Rejected::invalid(format!(
            "the sources name {paths} paths; at most {} are allowed",
            file_limits::PATHS_MAX
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| check_source(s).map_err(|e| e.at(&format!("file_source_list[{i}]"))))
        .collect()
}

fn check_source(s: &FileSourceRequest) -> Result<Checked, Rejected> {
    let kinds = [
        !s.file_list.is_empty(),
        s.upload_id.is_some(),
        s.inline_content_base64.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(Rejected::invalid(
            "give exactly one of file_list (with targets), upload_id, or inline_content_base64 \
             (with name)",
        ));
    }
    if !s.file_list.is_empty() {
        let targets = s.targets.clone().ok_or_else(|| {
            Rejected::invalid("file_list needs targets: the hosts the files are on")
        })?;
        if s.name.is_some() {
            return Err(Rejected::invalid(
                "name applies to upload_id and inline_content_base64 sources only",
            ));
        }
        if s.file_mode.is_some() {
            return Err(Rejected::invalid(
                "file_mode applies to upload_id and inline_content_base64 sources only (files \
                 from hosts keep their own mode)",
            ));
        }
        for path in &s.file_list {
            check_source_path(path)?;
        }
        return Ok(Checked::Host {
            targets,
            paths: s.file_list.clone(),
            account: checks::account(s.account.as_deref())?,
        });
    }
    if s.targets.is_some() || s.account.is_some() {
        return Err(Rejected::invalid(
            "targets and account apply to file_list sources only",
        ));
    }
    if let Some(name) = &s.name {
        check_file_name(name)?;
    }
    let mode = file_mode(s.file_mode.as_deref())?;
    if let Some(id) = &s.upload_id {
        return Ok(Checked::Upload {
            id: id.trim().to_string(),
            name: s.name.clone(),
            mode,
        });
    }
    let encoded = s.inline_content_base64.as_deref().unwrap_or("");
    let name = s.name.clone().ok_or_else(|| {
        Rejected::invalid("inline_content_base64 needs name: the file name at the targets")
    })?;
    Ok(Checked::Inline {
        content: decode_inline(encoded)?,
        name,
        mode,
    })
}

/// `file_mode`: permission bits in octal (`"644"`, `"0755"`, at most `"7777"`).
fn file_mode(mode: Option<&str>) -> Result<u32, Rejected> {
    let Some(text) = mode else {
        return Ok(DEFAULT_UPLOAD_MODE);
    };
    let digits = text.trim();
    let parsed = (!digits.is_empty() && digits.len() <= 5)
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|m| *m <= 0o7777);
    parsed.ok_or_else(|| {
        Rejected::invalid(format!(
            "file_mode {text:?} is not a permission mode; give octal digits such as \"0644\" or \"755\""
        ))
    })
}

fn decode_inline(encoded: &str) -> Result<Vec<u8>, Rejected> {
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let too_large = || {
        Rejected::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "inline content is larger than {} bytes; upload it with POST /api/v1/uploads",
                file_limits::INLINE_MAX_BYTES
            ),
        )
    };
    // Refuse before decoding: base64 takes 4 characters per 3 bytes.
    if compact.len() / 4 * 3 > file_limits::INLINE_MAX_BYTES + 3 {
        return Err(too_large());
    }
    let content = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            Rejected::invalid(format!("inline_content_base64 is not valid base64: {e}"))
        })?;
    if content.len() > file_limits::INLINE_MAX_BYTES {
        return Err(too_large());
    }
    Ok(content)
}

fn invalid_path(m: impl Into<String>) -> Rejected {
    Rejected::new(ErrorCode::InvalidPath, m)
}

/// A plain file name: what an upload or inline file is called at the targets.
pub fn check_file_name(name: &str) -> Result<(), Rejected> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is not a file name")
    } else if name.contains('/') {
        Some("must be a plain file name, without /")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.len() > NAME_MAX_BYTES {
        Some("is longer than 255 bytes")
    } else {
        None
    };
    match problem {
        Some(p) => Err(invalid_path(format!("the file name {name:?} {p}"))),
        None => Ok(()),
    }
}

/// A source path: absolute, or `REGEX:` with a pattern that starts with `/`.
fn check_source_path(path: &str) -> Result<(), Rejected> {
    if path.contains('\0') {
        return Err(invalid_path(format!(
            "source path {path:?} contains a NUL byte"
        )));
    }
    if path.len() > PATH_MAX_BYTES {
        return Err(invalid_path(format!(
            "source path {:?}... is longer than {PATH_MAX_BYTES} bytes",
            path.chars().take(64).collect::<String>()
        )));
    }
    let absolute = match path.strip_prefix(REGEX_PREFIX) {
        Some(pattern) => pattern
            .strip_prefix('^')
            .unwrap_or(pattern)
            .starts_with('/'),
        None => path.starts_with('/'),
    };
    if !absolute {
        return Err(invalid_path(format!(
            "source path {path:?} must be absolute (or REGEX:/... with an absolute prefix)"
        )));
    }
    if has_parent_component(path) {
        return Err(invalid_path(format!(
            "source path {path:?} must not contain .. components"
        )));
    }
    Ok(())
}

/// A `..` path component (in a `REGEX:` pattern too: two arbitrary characters are `[^/]{2}`).
fn has_parent_component(path: &str) -> bool {
    path.split('/').any(|c| c == "..")
}

/// The target directory: absolute, no `..`, macros well formed.
fn check_target_dir(dir: &str) -> Result<(), Rejected> {
    if !dir.starts_with('/') {
        return Err(invalid_path("file_target_path must be an absolute path"));
    }
    if dir.contains('\0') {
        return Err(invalid_path("file_target_path contains a NUL byte"));
    }
    if dir.len() > PATH_MAX_BYTES {
        return Err(invalid_path(format!(
            "file_target_path is longer than {PATH_MAX_BYTES} bytes"
        )));
    }
    if has_parent_component(dir) {
        return Err(invalid_path(
            "file_target_path must not contain .. components",
        ));
    }
    let mut rest = dir;
    while let Some(open) = rest.find("[date:") {
        let after = &rest[open + "[date:".len()..];
        let Some(close) = after.find(']') else {
            break;
        };
        check_date_format(&after[..close])?;
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The strftime conversions `[date:FORMAT]` may use; other characters are literal but `/`.
const DATE_CONVERSIONS: &str = "YymdHMSj%";

fn check_date_format(format: &str) -> Result<(), Rejected> {
    let bad = |why: &str| {
        invalid_path(format!(
            "[date:{format}] in file_target_path {why}; use strftime conversions %Y %y %m %d %H \
             %M %S %j %% (e.g. [date:%Y-%m-%d])"
        ))
    };
    if format.is_empty() {
        return Err(bad("has an empty format"));
    }
    if format.contains('/') {
        return Err(bad("must not contain /"));
    }
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' && !chars.next().is_some_and(|n| DATE_CONVERSIONS.contains(n)) {
            return Err(bad("has an unsupported conversion"));
        }
    }
    Ok(())
}

fn dir_mode(mode: Option<&serde_json::Value>) -> Result<DirMode, Rejected> {
    use serde_json::Value;
    match mode {
        None | Some(Value::Null) => Ok(DirMode::Force),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("strict") => Ok(DirMode::Strict),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("force") => Ok(DirMode::Force),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(DirMode::Strict),
        Some(Value::Number(n)) if n.as_i64() == Some(2) => Ok(DirMode::Force),
        Some(other) => Err(Rejected::invalid(format!(
            "unknown transfer_mode {other}; use \"strict\" (1) or \"force\" (2)"
        ))),
    }
}

fn speed_limit(limit: Option<u32>, field: &str) -> Result<Option<u32>, Rejected> {
    match limit {
        None | Some(0) => Ok(None),
        Some(mbps) if mbps <= SPEED_LIMIT_MAX => Ok(Some(mbps)),
        Some(mbps) => Err(Rejected::invalid(format!(
            "{field} {mbps} is out of range: 1 to {SPEED_LIMIT_MAX} MB/s (0 or absent: unlimited)"
        ))),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
