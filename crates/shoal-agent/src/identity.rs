//! The agent's identity (received at enrollment) and the atomic file write used for every
//! file the agent must not leave half-written.

use serde::{Deserialize, Serialize};
use shoal_types::HostId;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// What the server hands out in `Enrolled`; stored as `STATE_DIR/identity.json`, mode 0600.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub host_id: HostId,
    pub agent_id: String,
    pub secret: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("host_id", &self.host_id)
            .field("agent_id", &self.agent_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// `Ok(None)` when the file does not exist (the agent must enroll).
    pub fn load(path: &Path) -> std::io::Result<Option<Identity>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let identity = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        Ok(Some(identity))
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(path, &bytes, 0o600)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory (created with
/// `mode`, fsynced, then renamed over `path`), so a crash leaves the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    // Pins that the identity round-trips through an atomically written 0600 file, that a
    // missing file means "enroll", and that Debug never prints the secret.
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn identity_round_trip_and_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.json");
        assert_eq!(Identity::load(&path).expect("load"), None);
        let id = Identity {
            host_id: 4,
            agent_id: "a-1".into(),
            secret: "s3cr3t".into(),
        };
        id.save(&path).expect("save");
        assert_eq!(Identity::load(&path).expect("load"), Some(id.clone()));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{id:?}").contains("s3cr3t"));
        let leftovers = std::fs::read_dir(dir.path()).expect("ls").count();
        assert_eq!(leftovers, 1);
    }
}
