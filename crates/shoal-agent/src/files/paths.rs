//! Source path specs: what a file step's `paths` entries mean on a source host, expanded into
//! the files to send.
//!
//! Forms (every spec is absolute; nothing is trimmed, so leading spaces belong to the name):
//! - **Literal**: `/data/my file (1).txt`. If a file or directory with exactly the spec's name
//!   exists, the spec is literal, whatever characters it contains: `/data/b[1].txt` names the
//!   file `b[1].txt` when it exists, and only otherwise is it a glob. Spaces, `$`, `(`, `+`
//!   etc. are never interpreted. `rel` is the file name.
//! - **Directory**: a trailing `/` (`/data/logs/`) sends the directory recursively; `rel`
//!   keeps the layout under the directory's own name (`logs/a.txt`, `logs/sub/b.txt`), as
//!   bk-job does. Empty directories in it (or the directory itself, if empty) are entries too,
//!   with [`MODE_DIR`] in their mode, so the targets recreate them. A directory named without
//!   the trailing `/` is an error ([`PathError::IsDir`]).
//! - **Glob**: a spec that does not exist literally and has `*`, `?` or `[` in a component
//!   (`/var/log/*.log`, `/data/*/conf/app?.ini`). Shell semantics per component: `*` and `?`
//!   never match `/` nor a leading `.`; `[[]`, `[*]`, `[?]` match those characters literally.
//!   A glob matches files only, or with a trailing `/` (`/data/app-*/`) directories, each sent
//!   recursively. `rel` is relative to the directory before the first glob component
//!   (`x/conf/app1.ini` for the second example). A component that is not a valid pattern is
//!   taken literally.
//! - **Regex**: `REGEX:<pattern>` matches the full path of every file under the longest
//!   literal directory prefix of the pattern (`REGEX:/var/log/app-\d+\.log` walks `/var/log/`),
//!   anchored at both ends. bk-job's form `/tmp/REGEX:[a-z]*\.txt` is accepted too: the part
//!   before `REGEX:` is a literal directory and the pattern matches paths under it. `rel` is
//!   relative to the walked directory.
//!
//! Symlinks: a symlink named by the spec, or a literal component of it, is followed (the user
//! named it). While walking (directories, glob matches, regex), symlinks to files are files and
//! symlinks to directories are never followed, so a walk cannot leave its tree or loop; broken
//! links are skipped. Devices, FIFOs and sockets are skipped in walks and refused when named.
//!
//! Errors: a spec that matches nothing is [`PathError::NotFound`]. A directory that must be
//! listed, or a file that must be read, but cannot be → [`PathError::PermissionDenied`] for
//! the whole spec (loud rather than silently partial). Every file returned was opened for
//! reading once, so the permission check is the kernel's, as the account doing the expansion.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

pub use shoal_types::files::MODE_DIR;

/// Files one spec may expand to.
pub const MAX_FILES: usize = 100_000;
/// Directory entries one spec may visit while walking.
pub const MAX_VISITED: usize = 1_000_000;
/// The prefix of a regex spec.
pub const REGEX_PREFIX: &str = "REGEX:";

/// One file to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is on the source host.
    pub path: PathBuf,
    /// Its name under the target directory (relative, never empty, no `..`).
    pub rel: PathBuf,
    pub size: u64,
    /// Permission bits (`st_mode & 0o7777`); with [`MODE_DIR`] for an empty directory.
    pub mode: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path {spec:?} is not absolute")]
    Relative { spec: String },
    #[error("path {spec:?} contains a NUL byte")]
    Nul { spec: String },
    #[error("no such file or directory: {spec}")]
    NotFound { spec: String },
    #[error("permission denied: {}", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{} is a directory (add a trailing / to send it)", path.display())]
    IsDir { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotDir { path: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("invalid regex {spec:?}: {reason}")]
    BadRegex { spec: String, reason: String },
    #[error("{spec} matches more than {limit} files or directory entries")]
    TooMany { spec: String, limit: usize },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl PathError {
    fn from_io(path: &Path, e: io::Error) -> PathError {
        match e.kind() {
            io::ErrorKind::PermissionDenied => PathError::PermissionDenied {
                path: path.to_owned(),
            },
            _ => PathError::Io {
                path: path.to_owned(),
                source: e,
            },
        }
    }
}

/// Expands `spec` into the files it names, sorted by path (blocking).
pub fn expand(spec: &str) -> Result<Vec<SourceFile>, PathError> {
    if spec.is_empty() {
        return Err(PathError::Empty);
    }
    if spec.contains('\0') {
        return Err(PathError::Nul { spec: spec.into() });
    }
    let mut out = Out::new(spec);
    if let Some(pattern) = spec.strip_prefix(REGEX_PREFIX) {
        expand_regex(&mut out, pattern)?;
    } else if !spec.starts_with('/') {
        return Err(PathError::Relative { spec: spec.into() });
    } else if !expand_literal(&mut out, spec)? {
        if let Some((dir, pattern)) = spec.split_once(&format!("/{REGEX_PREFIX}")) {
            expand_regex_under(&mut out, &format!("{dir}/"), pattern)?;
        } else if has_glob_meta(spec) {
            expand_glob(&mut out, spec)?;
        }
    }
    if out.files.is_empty() {
        return Err(PathError::NotFound { spec: spec.into() });
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out.files)
}

/// What an expansion collected, with its bounds.
struct Out<'a> {
    spec: &'a str,
    files: Vec<SourceFile>,
    visited: usize,
}

impl Out<'_> {
    fn new(spec: &str) -> Out<'_> {
        Out {
            spec,
            files: Vec::new(),
            visited: 0,
        }
    }

    /// Adds a regular file (or symlink to one) after checking it can be opened.
    fn push(
        &mut self,
        path: PathBuf,
        rel: PathBuf,
        meta: &std::fs::Metadata,
    ) -> Result<(), PathError> {
        if self.files.len() >= MAX_FILES {
            return Err(self.too_many(MAX_FILES));
        }
        std::fs::File::open(&path).map_err(|e| PathError::from_io(&path, e))?;
        self.files.push(SourceFile {
            path,
            rel,
            size: meta.len(),
            mode: meta.permissions().mode() & 0o7777,
        });
        Ok(())
    }

    /// Adds an empty directory (recreated at the targets with its mode).
    fn push_dir(&mut self, path: PathBuf, rel: PathBuf) -> Result<(), PathError> {
        if self.files.len() >= MAX_FILES {
            return Err(self.too_many(MAX_FILES));
        }
        let meta = std::fs::metadata(&path).map_err(|e| PathError::from_io(&path, e))?;
        self.files.push(SourceFile {
            path,
            rel,
            size: 0,
            mode: MODE_DIR | (meta.permissions().mode() & 0o7777),
        });
        Ok(())
    }

    fn visit(&mut self) -> Result<(), PathError> {
        self.visited += 1;
        if self.visited > MAX_VISITED {
            return Err(self.too_many(MAX_VISITED));
        }
        Ok(())
    }

    fn too_many(&self, limit: usize) -> PathError {
        PathError::TooMany {
            spec: self.spec.into(),
            limit,
        }
    }
}

/// The spec as a literal path. `Ok(false)` when nothing has that exact name.
fn expand_literal(out: &mut Out<'_>, spec: &str) -> Result<bool, PathError> {
    let dir_form = spec.ends_with('/');
    let path = Path::new(spec.trim_end_matches('/'));
    let path = if path.as_os_str().is_empty() {
        Path::new("/")
    } else {
        path
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if is_absent(&e) => return Ok(false),
        Err(e) => return Err(PathError::from_io(path, e)),
    };
    if dir_form {
        if !meta.is_dir() {
            return Err(PathError::NotDir { path: path.into() });
        }
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        walk(out, path, &name, None)?;
    } else if meta.is_dir() {
        return Err(PathError::IsDir { path: path.into() });
    } else if !meta.is_file() {
        return Err(PathError::NotRegular { path: path.into() });
    } else {
        let name = path.file_name().map(PathBuf::from).unwrap_or_default();
        out.push(path.into(), name, &meta)?;
    }
    Ok(true)
}

/// Not there: missing, or a path component is not a directory.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A component as a glob pattern; `None` when it is literal.
fn component_pattern(component: &str) -> Option<glob::Pattern> {
    if !has_glob_meta(component) {
        return None;
    }
    glob::Pattern::new(component).ok()
}

const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

fn expand_glob(out: &mut Out<'_>, spec: &str) -> Result<(), PathError> {
    let dir_form = spec.ends_with('/');
    let components: Vec<&str> = spec.split('/').filter(|c| !c.is_empty()).collect();
    let Some(first) = components
        .iter()
        .position(|c| component_pattern(c).is_some())
    else {
        return Ok(());
    };
    let base: PathBuf = std::iter::once("/")
        .chain(components[..first].iter().copied())
        .collect();
    // (path, rel) of what the components so far matched.
    let mut current = vec![(base, PathBuf::new())];
    let last = components.len() - 1;
    for (i, component) in components.iter().enumerate().skip(first) {
        let pattern = component_pattern(component);
        let mut next = Vec::new();
        for (dir, rel) in current {
            match &pattern {
                None => next.push((dir.join(component), rel.join(component))),
                Some(pattern) => {
                    for name in list_matching(out, &dir, pattern)? {
                        next.push((dir.join(&name), rel.join(&name)));
                    }
                }
            }
        }
        // Intermediate matches must be real directories (symlinked ones are not followed).
        if i < last {
            next.retain(|(path, _)| {
                pattern.is_none() || std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
            });
        }
        current = next;
    }
    for (path, rel) in current {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if is_absent(&e) || e.raw_os_error() == Some(nix::libc::ELOOP) => continue,
            Err(e) => return Err(PathError::from_io(&path, e)),
        };
        if dir_form {
            let real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if real_dir || (meta.is_dir() && component_pattern(components[last]).is_none()) {
                walk(out, &path, &rel, None)?;
            }
        } else if meta.is_file() {
            out.push(path, rel, &meta)?;
        }
    }
    Ok(())
}

/// Names in `dir` matching `pattern`, sorted. A missing directory has none.
fn list_matching(
    out: &mut Out<'_>,
    dir: &Path,
    pattern: &glob::Pattern,
) -> Result<Vec<std::ffi::OsString>, PathError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(PathError::from_io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        out.visit()?;
        let entry = entry.map_err(|e| PathError::from_io(dir, e))?;
        let name = entry.file_name();
        if pattern.matches_with(&name.to_string_lossy(), GLOB_OPTIONS) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Adds every file under `dir` (recursively, symlinked directories not followed) whose full
/// path `keep` accepts, named `rel_base/<path under dir>`. Without `keep` (a directory sent
/// whole) every file is taken, and so is every empty directory, `dir` itself included.
fn walk(
    out: &mut Out<'_>,
    dir: &Path,
    rel_base: &Path,
    mut keep: Option<&mut dyn FnMut(&Path) -> bool>,
) -> Result<(), PathError> {
    let root = dir.to_owned();
    let mut stack = vec![(dir.to_owned(), rel_base.to_owned())];
    while let Some((dir, rel)) = stack.pop() {
        let (files_before, stacked_before) = (out.files.len(), stack.len());
        // Entries may vanish while we walk a live tree (log rotation, temporary files): what
        // disappears is skipped; only a missing starting directory is an error.
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if dir != root && is_absent(&e) => continue,
            Err(e) => return Err(PathError::from_io(&dir, e)),
        };
        for entry in entries {
            out.visit()?;
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(PathError::from_io(&dir, e)),
            };
            let path = entry.path();
            let rel = rel.join(entry.file_name());
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(PathError::from_io(&path, e)),
            };
            if file_type.is_dir() {
                stack.push((path, rel));
                continue;
            }
            let kept = keep.as_mut().is_none_or(|keep| keep(&path));
            if !(file_type.is_file() || file_type.is_symlink()) || !kept {
                continue;
            }
            // Follows a symlink: files behind links are files; links to directories,
            // broken links and loops are skipped.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => out.push(path, rel, &meta)?,
                Ok(_) => {}
                Err(e) if file_type.is_symlink() => {
                    tracing::debug!(path = %path.display(), error = %e, "skipping unresolvable symlink");
                }
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(PathError::from_io(&path, e)),
            }
        }
        let empty = out.files.len() == files_before && stack.len() == stacked_before;
        if keep.is_none() && empty && !rel.as_os_str().is_empty() {
            out.push_dir(dir, rel)?;
        }
    }
    Ok(())
}

fn expand_regex(out: &mut Out<'_>, pattern: &str) -> Result<(), PathError> {
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    if !body.starts_with('/') {
        return Err(PathError::Relative {
            spec: out.spec.into(),
        });
    }
    walk_regex(out, Path::new(&walk_base(pattern)), pattern)
}

/// The directory a regex walk starts from: the longest literal prefix every top-level
/// alternative shares, cut back to a `/`. Erring short only costs walking more.
fn walk_base(pattern: &str) -> String {
    let mut common: Option<String> = None;
    for branch in top_level_branches(pattern) {
        let prefix = literal_prefix(branch.strip_prefix('^').unwrap_or(branch));
        common = Some(match common {
            None => prefix,
            Some(c) => c
                .chars()
                .zip(prefix.chars())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common.unwrap_or_default();
    match common.rfind('/') {
        Some(i) => common[..=i].to_owned(),
        None => "/".to_owned(),
    }
}

/// `pattern` split at its top-level `|` (outside groups and classes).
fn top_level_branches(pattern: &str) -> Vec<&str> {
    let (mut depth, mut in_class, mut escaped, mut start) = (0usize, false, false, 0);
    let mut branches = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth = depth.saturating_sub(1),
            '|' if !in_class && depth == 0 => {
                branches.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    branches.push(&pattern[start..]);
    branches
}

/// The literal text a regex branch starts with, unescaped (`/var/log\.d/` → `/var/log.d/`).
fn literal_prefix(branch: &str) -> String {
    let mut prefix = String::new();
    let mut chars = branch.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.peek() {
                Some(&next) if next.is_ascii_punctuation() => {
                    chars.next();
                    next
                }
                _ => break,
            },
            // The previous character is optional or repeated.
            '?' | '*' | '+' | '{' => {
                prefix.pop();
                break;
            }
            '.' | '(' | ')' | '|' | '[' | ']' | '^' | '$' => break,
            c => c,
        };
        prefix.push(literal);
    }
    prefix
}

/// bk-job's `/dir/REGEX:<pattern>`: `dir` is literal, the pattern matches what follows it.
fn expand_regex_under(out: &mut Out<'_>, dir: &str, pattern: &str) -> Result<(), PathError> {
    let full = format!("{}(?:{pattern})", regex::escape(dir));
    walk_regex(out, Path::new(dir), &full)
}

fn walk_regex(out: &mut Out<'_>, base: &Path, pattern: &str) -> Result<(), PathError> {
    let regex =
        regex::bytes::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| PathError::BadRegex {
            spec: out.spec.into(),
            reason: e.to_string(),
        })?;
    match std::fs::metadata(base) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(PathError::NotDir { path: base.into() }),
        Err(e) if is_absent(&e) => return Ok(()),
        Err(e) => return Err(PathError::from_io(base, e)),
    }
    let mut matches = |path: &Path| regex.is_match(OsStr::as_bytes(path.as_os_str()));
    walk(out, base, Path::new(""), Some(&mut matches))
}

#[cfg(test)]
#[path = "paths_tests.rs"]
mod tests;
