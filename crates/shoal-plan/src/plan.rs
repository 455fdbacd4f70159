//! Planning a file step (pure, no IO): from the scanned sources to the one list of files every
//! target writes.
//!
//! Naming: `dest = expand(target_dir) / duplicate-mode subdirectories / manifest.rel`, where
//! `expand` replaces `[date:FORMAT]` (strftime-style, UTC, see [`strftime`]) and `[source_ip]`
//! per source. The source IP of an uploaded (or inline) source is the word `server`.
//! Subdirectories: `by_source_ip` adds `<source ip>/`, `by_date_and_source_ip` adds
//! `<YYYY-MM-DD>/<source ip>/` (UTC date of the plan). Several files with one destination: the
//! later source wins (sources in request order, a host's files in manifest order) — in every
//! mode, since two entries with one name cannot both exist.
//!
//! Every target gets the same list, so one `FetchSpec` is shared by all of them.

use shoal_proto::{FetchFile, SourceError};
use shoal_types::HostId;
use shoal_types::files::{DuplicateMode, FileError, FileErrorCode, FileManifest};
use std::collections::HashMap;

/// The source IP used for uploaded and inline sources.
pub const SERVER_SOURCE_IP: &str = "server";

/// A calendar time in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Day of the year, from 1.
    pub yday: u16,
}

impl UtcTime {
    pub fn from_unix_ms(ms: i64) -> UtcTime {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const CUM: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = CUM[usize::from(month - 1)] + u16::from(day) + u16::from(leap && month > 2);
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            yday,
        }
    }
}

/// strftime-style formatting of the specifiers `%Y %y %m %d %H %M %S %j %%`; any other
/// `%x` is kept as written.
pub fn strftime(fmt: &str, t: &UtcTime) -> String {
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{:04}", t.year)),
            Some('y') => out.push_str(&format!("{:02}", t.year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{:02}", t.month)),
            Some('d') => out.push_str(&format!("{:02}", t.day)),
            Some('H') => out.push_str(&format!("{:02}", t.hour)),
            Some('M') => out.push_str(&format!("{:02}", t.minute)),
            Some('S') => out.push_str(&format!("{:02}", t.second)),
            Some('j') => out.push_str(&format!("{:03}", t.yday)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Expands `[date:FORMAT]` and `[source_ip]` in a target directory.
pub fn expand_target_dir(dir: &str, now: &UtcTime, source_ip: &str) -> String {
    let mut out = String::with_capacity(dir.len());
    let mut rest = dir;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(after) = tail.strip_prefix("[source_ip]") {
            out.push_str(source_ip);
            rest = after;
        } else if let Some(body) = tail.strip_prefix("[date:")
            && let Some(close) = body.find(']')
        {
            out.push_str(&strftime(&body[..close], now));
            rest = &body[close + 1..];
        } else {
            out.push('[');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Where one scanned source came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Host { host_id: HostId, ip: String },
    Upload,
}

impl Origin {
    fn ip(&self) -> &str {
        match self {
            Origin::Host { ip, .. } => ip,
            Origin::Upload => SERVER_SOURCE_IP,
        }
    }

    pub fn host_id(&self) -> Option<HostId> {
        match self {
            Origin::Host { host_id, .. } => Some(*host_id),
            Origin::Upload => None,
        }
    }
}

/// One source's scan result, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    pub origin: Origin,
    pub files: Vec<FileManifest>,
    pub errors: Vec<SourceError>,
}

/// A source path that yields nothing for every target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub source_host_id: Option<HostId>,
    pub path: String,
    /// Where the source would have gone: the file's destination for a plain path, the
    /// directory (with a trailing `/`) for a directory, wildcard or regex.
    pub dest: String,
    pub code: FileErrorCode,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// What every target writes (`source_host_id` 0 for uploads).
    pub files: Vec<FetchFile>,
    pub errors: Vec<PlanError>,
}

/// The plan of a file step at `now_ms`.
pub fn plan(target_dir: &str, duplicate: DuplicateMode, now_ms: i64, scanned: &[Scanned]) -> Plan {
    let now = UtcTime::from_unix_ms(now_ms);
    let mut files: Vec<Option<FetchFile>> = Vec::new();
    let mut by_dest: HashMap<String, usize> = HashMap::new();
    let mut errors = Vec::new();
    for source in scanned {
        let source_host_id = source.origin.host_id();
        let ip = source.origin.ip();
        let mut base = expand_target_dir(target_dir, &now, ip);
        match duplicate {
            DuplicateMode::Overwrite => {}
            DuplicateMode::BySourceIp => base = join(&base, ip),
            DuplicateMode::ByDateAndSourceIp => {
                base = join(&join(&base, &strftime("%Y-%m-%d", &now)), ip)
            }
        }
        for e in &source.errors {
            errors.push(PlanError {
                source_host_id,
                path: e.path.clone(),
                dest: error_dest(&base, &e.path),
                code: e.code,
                message: e.message.clone(),
            });
        }
        for m in &source.files {
            let source_path = match &source.origin {
                Origin::Host { .. } => m.path.clone(),
                Origin::Upload => m.rel.clone(),
            };
            if !safe_rel(&m.rel) {
                errors.push(PlanError {
                    source_host_id,
                    path: source_path,
                    dest: format!("{}/", base.trim_end_matches('/')),
                    code: FileErrorCode::Other,
                    message: format!("unsafe file name {:?} in the source's manifest", m.rel),
                });
                continue;
            }
            let dest = join(&base, &m.rel);
            let file = FetchFile {
                dest: dest.clone(),
                size: m.size,
                mode: m.mode,
                chunks: m.chunks.clone(),
                source_host_id: source_host_id.unwrap_or(0),
                source_path,
            };
            if let Some(&earlier) = by_dest.get(&dest) {
                files[earlier] = None;
            }
            by_dest.insert(dest, files.len());
            files.push(Some(file));
        }
    }
    Plan {
        files: files.into_iter().flatten().collect(),
        errors,
    }
}

/// Where a source that could not be read would have gone under `base` (see
/// [`PlanError::dest`]).
fn error_dest(base: &str, path: &str) -> String {
    let dir = format!("{}/", base.trim_end_matches('/'));
    if path.contains("REGEX:") {
        return dir;
    }
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if name.is_empty() || name.contains(['*', '?', '[']) {
        return dir;
    }
    let dest = join(base, name);
    if path.ends_with('/') {
        format!("{dest}/")
    } else {
        dest
    }
}

/// Listed by name in the error of a target that could not get every file.
const INCOMPLETE_LISTED: usize = 3;

/// The error a target ends with after writing every planned file when some sources could not
/// be read: it did not receive everything, so it is not a success. `SourceMissing` (203) if a
/// source is missing, else the first error's code; the message names the sources.
pub fn incomplete(errors: &[PlanError]) -> Option<FileError> {
    let first = errors.first()?;
    let code = if errors
        .iter()
        .any(|e| e.code == FileErrorCode::SourceMissing)
    {
        FileErrorCode::SourceMissing
    } else {
        first.code
    };
    let mut reasons: Vec<String> = errors
        .iter()
        .take(INCOMPLETE_LISTED)
        .map(|e| {
            if e.message.contains(&e.path) {
                e.message.clone()
            } else {
                format!("{}: {}", e.path, e.message)
            }
        })
        .collect();
    if errors.len() > INCOMPLETE_LISTED {
        reasons.push(format!("and {} more", errors.len() - INCOMPLETE_LISTED));
    }
    Some(FileError {
        code,
        message: reasons.join("; "),
    })
}

/// A relative name that stays below the directory it is joined to.
fn safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

fn join(base: &str, name: &str) -> String {
    let base = base.trim_end_matches('/');
    format!("{base}/{name}")
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
