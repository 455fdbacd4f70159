//! Small file helpers: atomic writes, private (0600) files for secrets, and the private data
//! directory.

use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Writes `data` to `path` through a temporary file and a rename, so readers never see a
/// partial file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes a secret readable only by the owner.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, data, 0o600)
}

/// Makes the data directory private: it holds scripts, their output and environment values.
/// Creates it 0700; sets the process umask to 077 so that everything the server creates in it
/// (the SQLite files, uploads, certificates) is readable by its owner only; and fixes what an
/// earlier version left readable by others, with a warning.
pub fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let mut fixed = 0u64;
    fix_modes(dir, &mut fixed).with_context(|| format!("making {} private", dir.display()))?;
    if fixed > 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            fixed,
            "the data directory was readable by other users; made it 0700 and its files 0600"
        );
    }
    Ok(())
}

/// Directories 0700, files 0600, below and including `path` (links are left alone).
fn fix_modes(path: &Path, fixed: &mut u64) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let want = if meta.is_dir() {
        0o700
    } else if meta.is_file() {
        0o600
    } else {
        return Ok(());
    };
    if meta.permissions().mode() & 0o077 != 0 {
        let mode = (meta.permissions().mode() & 0o700) | (want & 0o700);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        *fixed += 1;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            fix_modes(&entry?.path(), fixed)?;
        }
    }
    Ok(())
}
