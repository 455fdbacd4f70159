//! The token `shoal login` stores, per server, in `$XDG_CONFIG_HOME/shoal/credentials`
//! (default `~/.config/shoal/credentials`): a small JSON file, mode 0600, in a directory of
//! mode 0700. Later commands use it when no token is given (see `main::token`).
//!
//! The token is a secret: it is never printed, and the file is replaced atomically so a
//! reader never sees half of it.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What is stored for one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The server's REST address as given to `--server` (without a trailing `/`).
    pub server: String,
    pub token: String,
    /// The token's id, to revoke it on `shoal logout`.
    pub token_id: Option<i64>,
    /// The account's name when it was stored (for messages only).
    pub user: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    servers: Vec<Entry>,
}

/// A server address as compared and stored.
pub fn normalize(server: &str) -> String {
    server.trim().trim_end_matches('/').to_string()
}

/// `$XDG_CONFIG_HOME/shoal/credentials`, else `$HOME/.config/shoal/credentials`.
pub fn path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    crate::exit::usage(
                        "cannot find the config directory: set XDG_CONFIG_HOME or HOME",
                    )
                })?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("shoal").join("credentials"))
}

fn read(path: &Path) -> anyhow::Result<File> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
        Err(e) => {
            return Err(crate::exit::usage(format!(
                "cannot read the stored credentials {}: {e}",
                path.display()
            )));
        }
    };
    warn_if_open(path);
    serde_json::from_str(&text).map_err(|e| {
        crate::exit::usage(format!(
            "the stored credentials {} are not valid ({e}); delete the file and run `shoal login`",
            path.display()
        ))
    })
}

#[cfg(unix)]
fn warn_if_open(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "shoal: warning: {} can be read by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_open(_path: &Path) {}

/// The stored entry for `server`, if any.
pub fn load(server: &str) -> anyhow::Result<Option<Entry>> {
    let path = path()?;
    let server = normalize(server);
    Ok(read(&path)?
        .servers
        .into_iter()
        .find(|e| e.server == server))
}

/// Stores `entry`, replacing the one of the same server. Returns the file's path.
pub fn save(entry: Entry) -> anyhow::Result<PathBuf> {
    let path = path()?;
    let mut file = read(&path)?;
    file.servers.retain(|e| e.server != entry.server);
    file.servers.push(entry);
    write(&path, &file)?;
    Ok(path)
}

/// Forgets the entry of `server`; deletes the file when it was the last. Returns whether
/// there was one.
pub fn remove(server: &str) -> anyhow::Result<bool> {
    let path = path()?;
    let server = normalize(server);
    let mut file = read(&path)?;
    let before = file.servers.len();
    file.servers.retain(|e| e.server != server);
    if file.servers.len() == before {
        return Ok(false);
    }
    if file.servers.is_empty() {
        std::fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
    } else {
        write(&path, &file)?;
    }
    Ok(true)
}

/// Writes the file atomically (a private temporary file renamed over it).
fn write(path: &Path, file: &File) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("the credentials path has no directory")?;
    private_dir(dir)?;
    let text = serde_json::to_string_pretty(file).context("cannot encode the credentials")?;
    let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Creates the directory (mode 0700), or makes an existing one private.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        builder.mode(0o700);
        builder
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}
