//! `Scan` on a source host: expand each path spec, build a manifest per file, and say per
//! path what could not be read (blocking; the runtime calls it in `spawn_blocking`).
//!
//! Reading "as the account": the agent reads the files itself, but when the scan names an
//! account it refuses every file that account could not read, judged by the account's uid and
//! groups against the mode bits of the file (read) and of every directory above it (search).
//! ACLs and capabilities are not consulted. An account that does not exist fails every path
//! with `UserNotFound`.

use super::manifest::{self, FileManifest, ManifestError};
use super::paths::{self, PathError};
use shoal_proto::SourceError;
use shoal_types::files::FileErrorCode;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// What a scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub files: Vec<FileManifest>,
    pub errors: Vec<SourceError>,
}

/// The identity files are checked against.
#[derive(Debug, Clone)]
pub struct Account {
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// Resolves `name` ("" = no check). `Err` when the account does not exist.
pub fn resolve_account(name: &str) -> Result<Option<Account>, String> {
    if name.is_empty() {
        return Ok(None);
    }
    let user = match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => user,
        Ok(None) => return Err(format!("account {name:?} does not exist on this host")),
        Err(e) => return Err(format!("looking up account {name:?}: {e}")),
    };
    let mut gids = vec![user.gid.as_raw()];
    if let Ok(cname) = CString::new(name)
        && let Ok(groups) = nix::unistd::getgrouplist(&cname, user.gid)
    {
        gids.extend(groups.into_iter().map(|g| g.as_raw()));
    }
    Ok(Some(Account {
        uid: user.uid.as_raw(),
        gids,
    }))
}

/// Expands and hashes every spec in `paths`, checking readability for `account`.
pub fn scan(paths: &[String], account: &str) -> Scanned {
    let mut out = Scanned::default();
    let account = match resolve_account(account) {
        Ok(a) => a,
        Err(message) => {
            for path in paths {
                out.errors.push(SourceError {
                    path: path.clone(),
                    code: FileErrorCode::UserNotFound,
                    message: message.clone(),
                });
            }
            return out;
        }
    };
    let mut dirs = HashMap::new();
    for spec in paths {
        let found = match paths::expand(spec) {
            Ok(found) => found,
            Err(e) => {
                out.errors.push(SourceError {
                    path: spec.clone(),
                    code: path_code(&e),
                    message: e.to_string(),
                });
                continue;
            }
        };
        for file in found {
            if let Some(account) = &account
                && !may_read(&file.path, account, &mut dirs)
            {
                out.errors.push(SourceError {
                    path: file.path.display().to_string(),
                    code: FileErrorCode::PermissionDenied,
                    message: format!(
                        "permission denied: {} is not readable by the account",
                        file.path.display()
                    ),
                });
                continue;
            }
            match manifest::build(&file) {
                Ok(m) => out.files.push(m),
                Err(e) => out.errors.push(SourceError {
                    path: file.path.display().to_string(),
                    code: manifest_code(&e),
                    message: e.to_string(),
                }),
            }
        }
    }
    out
}

fn path_code(e: &PathError) -> FileErrorCode {
    match e {
        PathError::NotFound { .. } => FileErrorCode::SourceMissing,
        PathError::PermissionDenied { .. } => FileErrorCode::PermissionDenied,
        PathError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            FileErrorCode::SourceMissing
        }
        _ => FileErrorCode::Other,
    }
}

fn manifest_code(e: &ManifestError) -> FileErrorCode {
    match e {
        ManifestError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => FileErrorCode::SourceMissing,
            std::io::ErrorKind::PermissionDenied => FileErrorCode::PermissionDenied,
            _ => FileErrorCode::Other,
        },
        _ => FileErrorCode::Other,
    }
}

/// Whether `account` may read `path`: read permission on the file, search permission on
/// every directory above it (memoised in `dirs`).
fn may_read(path: &Path, account: &Account, dirs: &mut HashMap<PathBuf, bool>) -> bool {
    if account.uid == 0 {
        return true;
    }
    let mut cursor = path.parent();
    while let Some(dir) = cursor {
        let ok = *dirs
            .entry(dir.to_owned())
            .or_insert_with(|| allowed(dir, account, 0o1));
        if !ok {
            return false;
        }
        cursor = dir.parent();
    }
    allowed(path, account, 0o4)
}

/// Whether the mode bits of `path` grant `bit` (4 read, 1 search) to `account`.
fn allowed(path: &Path, account: &Account, bit: u32) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let mode = meta.mode();
    let shift = if meta.uid() == account.uid {
        6
    } else if account.gids.contains(&meta.gid()) {
        3
    } else {
        0
    };
    mode >> shift & bit != 0
}

#[cfg(test)]
mod tests {
    // Pins Scan's answers: a literal name with spaces and regex metacharacters is found and
    // named as itself, a missing source is SourceMissing, an unknown account fails every path
    // with UserNotFound, and a file the account cannot read is PermissionDenied.
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn literal_special_names_and_missing_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = "my file (1) [a]+$.*?.txt";
        let path = dir.path().join(name);
        std::fs::write(&path, b"hello").expect("write");
        let missing = dir.path().join("nope.txt").display().to_string();
        let spec = path.display().to_string();
        let got = scan(&[spec.clone(), missing.clone()], "");
        assert_eq!(got.files.len(), 1, "{got:?}");
        assert_eq!(got.files[0].rel, name);
        assert_eq!(got.files[0].path, spec);
        assert_eq!(got.files[0].size, 5);
        assert_eq!(got.errors.len(), 1);
        assert_eq!(got.errors[0].path, missing);
        assert_eq!(got.errors[0].code, FileErrorCode::SourceMissing);
    }

    #[test]
    fn unknown_account_fails_every_path() {
        let got = scan(&["/a".into(), "/b".into()], "no-such-user-shoal");
        assert!(got.files.is_empty());
        assert_eq!(got.errors.len(), 2);
        assert!(
            got.errors
                .iter()
                .all(|e| e.code == FileErrorCode::UserNotFound)
        );
    }

    #[test]
    fn files_the_account_cannot_read_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dir");
        let private = dir.path().join("private");
        let public = dir.path().join("public");
        std::fs::write(&private, b"x").expect("write");
        std::fs::write(&public, b"y").expect("write");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let nobody = Account {
            uid: 65534,
            gids: vec![65534],
        };
        let mut dirs = HashMap::new();
        // The temp dir's parents (/tmp) are searchable by everyone.
        assert!(!may_read(&private, &nobody, &mut dirs));
        assert!(may_read(&public, &nobody, &mut dirs));
        let root = Account {
            uid: 0,
            gids: vec![0],
        };
        assert!(may_read(&private, &root, &mut dirs));
        if let Ok(Some(_)) = nix::unistd::User::from_name("nobody") {
            let got = scan(&[private.display().to_string()], "nobody");
            assert_eq!(got.errors.len(), 1, "{got:?}");
            assert_eq!(got.errors[0].code, FileErrorCode::PermissionDenied);
        }
    }
}
