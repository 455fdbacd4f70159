//! Assembly: writes one target file from cached chunks, atomically. The bytes go to
//! `<dest>.shoal-tmp-<random>` in the destination directory, which is fsynced, given its owner
//! then its mode (chown clears set-id bits, so the mode comes last), and renamed over `dest`;
//! then the directory is fsynced. A reader sees the old file or the new one, never a mix.
//!
//! A directory entry (an empty directory of a directory source, `mode` with `MODE_DIR`) is
//! created instead, with its owner and mode.
//!
//! Invariants: nothing partial is ever at `dest`; the temporary file is removed on every error
//! path; failures a person can act on are typed ([`AssembleError`]) so the task can report
//! them as such (disk full, permission denied, missing target directory in strict mode).
//! Blocking; async callers use `spawn_blocking`.

use super::Hash;
use super::cache::Cache;
use super::manifest::ChunkRef;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Infix of temporary files next to their destination.
pub const TMP_INFIX: &str = ".shoal-tmp-";
/// Mode of directories created in [`DirMode::Force`].
pub const DIR_MODE: u32 = 0o755;

/// One file to write on a target host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    /// Absolute.
    pub dest: PathBuf,
    pub size: u64,
    /// Permission bits, set exactly (no umask).
    pub mode: u32,
    pub chunks: Vec<ChunkRef>,
    /// `(uid, gid)` for the file and the directories [`DirMode::Force`] creates; `None`
    /// keeps the agent's.
    pub owner: Option<(u32, u32)>,
}

/// What to do when the destination directory does not exist (bk-job's transfer modes).
pub use shoal_types::files::DirMode;

#[derive(Clone, Copy, Debug, Default)]
pub struct AssembleOptions {
    pub dir_mode: DirMode,
}

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("destination {} is not an absolute file path", path.display())]
    BadDest { path: PathBuf },
    #[error("target directory {} does not exist", dir.display())]
    NoTargetDir { dir: PathBuf },
    #[error("destination {} is a directory", path.display())]
    DestIsDir { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    ParentNotDir { path: PathBuf },
    #[error("no space left on device writing {}", path.display())]
    DiskFull { path: PathBuf },
    #[error("permission denied: {}", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("chunk {} is not in the cache", super::to_hex(hash))]
    MissingChunk { hash: Hash },
    #[error("plan for {} is inconsistent: chunks hold {chunks} bytes, size is {size}", path.display())]
    BadPlan {
        path: PathBuf,
        size: u64,
        chunks: u64,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl AssembleError {
    /// Types the io errors a person can act on.
    fn io(path: &Path, e: io::Error) -> AssembleError {
        let path = path.to_owned();
        match e.raw_os_error() {
            Some(nix::libc::ENOSPC | nix::libc::EDQUOT) => AssembleError::DiskFull { path },
            Some(nix::libc::EACCES | nix::libc::EPERM) => AssembleError::PermissionDenied { path },
            Some(nix::libc::ENOTDIR) => AssembleError::ParentNotDir { path },
            Some(nix::libc::EISDIR) => AssembleError::DestIsDir { path },
            _ => AssembleError::Io { path, source: e },
        }
    }
}

/// Writes `plan.dest` from the chunks in `cache` (blocking).
pub fn assemble(
    plan: &TargetFile,
    cache: &Cache,
    opts: &AssembleOptions,
) -> Result<(), AssembleError> {
    let dest = &plan.dest;
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(AssembleError::BadDest { path: dest.clone() });
    };
    if !dest.is_absolute() {
        return Err(AssembleError::BadDest { path: dest.clone() });
    }
    if shoal_types::files::is_dir_mode(plan.mode) {
        ensure_dir(parent, opts.dir_mode, plan.owner)?;
        return make_dir(plan);
    }
    let chunk_bytes: u64 = plan.chunks.iter().map(|c| u64::from(c.size)).sum();
    if chunk_bytes != plan.size {
        return Err(AssembleError::BadPlan {
            path: dest.clone(),
            size: plan.size,
            chunks: chunk_bytes,
        });
    }
    ensure_dir(parent, opts.dir_mode, plan.owner)?;
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => return Err(AssembleError::DestIsDir { path: dest.clone() }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(AssembleError::io(dest, e)),
    }
    let suffix = format!("{TMP_INFIX}{:016x}", rand::random::<u64>());
    // Names near NAME_MAX (255 bytes) get a temporary name of the suffix alone.
    let mut tmp_name = if name.len() + suffix.len() <= 255 {
        name.to_owned()
    } else {
        std::ffi::OsString::new()
    };
    tmp_name.push(suffix);
    let tmp = parent.join(tmp_name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| AssembleError::io(&tmp, e))?;
    let result = write_and_rename(plan, cache, file, &tmp, parent);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_and_rename(
    plan: &TargetFile,
    cache: &Cache,
    mut file: std::fs::File,
    tmp: &Path,
    parent: &Path,
) -> Result<(), AssembleError> {
    let on_tmp = |e| AssembleError::io(tmp, e);
    for chunk in &plan.chunks {
        let bytes = cache
            .get(&chunk.hash)
            .filter(|b| b.len() == chunk.size as usize)
            .ok_or(AssembleError::MissingChunk { hash: chunk.hash })?;
        file.write_all(&bytes).map_err(on_tmp)?;
    }
    if let Some((uid, gid)) = plan.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(on_tmp)?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(plan.mode & 0o7777))
        .map_err(on_tmp)?;
    file.sync_all().map_err(on_tmp)?;
    drop(file);
    std::fs::rename(tmp, &plan.dest).map_err(|e| AssembleError::io(&plan.dest, e))?;
    // The rename is durable once the directory is.
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| AssembleError::io(parent, e))
}

/// An (empty) directory entry: `dest` becomes a directory (kept if it is one) with the
/// planned owner and mode.
fn make_dir(plan: &TargetFile) -> Result<(), AssembleError> {
    let dest = &plan.dest;
    match std::fs::DirBuilder::new().mode(0o700).create(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(AssembleError::ParentNotDir { path: dest.clone() });
        }
        Err(e) => return Err(AssembleError::io(dest, e)),
    }
    if let Some((uid, gid)) = plan.owner {
        std::os::unix::fs::chown(dest, Some(uid), Some(gid))
            .map_err(|e| AssembleError::io(dest, e))?;
    }
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(plan.mode & 0o7777))
        .map_err(|e| AssembleError::io(dest, e))
}

/// Makes sure `dir` is a directory: typed errors in strict mode, created (with its missing
/// parents, owned by `owner`) in force mode.
fn ensure_dir(dir: &Path, mode: DirMode, owner: Option<(u32, u32)>) -> Result<(), AssembleError> {
    // The missing directories, deepest first.
    let mut missing = Vec::new();
    let mut cursor = dir;
    loop {
        match std::fs::metadata(cursor) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(AssembleError::ParentNotDir {
                    path: cursor.into(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(cursor),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => missing.push(cursor),
            Err(e) => return Err(AssembleError::io(cursor, e)),
        }
        match cursor.parent() {
            Some(parent) => cursor = parent,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if mode == DirMode::Strict {
        return Err(AssembleError::NoTargetDir { dir: dir.into() });
    }
    for dir in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                        .map_err(|e| AssembleError::io(dir, e))?;
                }
            }
            // Someone else created it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(AssembleError::io(dir, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
