//! The upload store's files (blocking IO; callers run these on blocking threads): durable
//! writes through `tmp/`, chunk and manifest files, and the mark-and-sweep of chunks.

use super::STALE_TMP;
use shoal_types::files::{Hash, from_hex, to_hex};
use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub(super) fn prepare_dirs(dir: &Path) -> std::io::Result<()> {
    for sub in ["chunks", "manifests", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    Ok(())
}

/// A fresh temporary path under `dir/tmp`.
pub(super) fn tmp_path(dir: &Path, what: &str) -> PathBuf {
    dir.join("tmp")
        .join(format!("{what}.{:016x}.part", rand::random::<u64>()))
}

/// Writes `data` to `dest` through a temporary file, fsync and rename; the temporary file is
/// removed on failure.
pub(super) fn write_durably(
    dir: &Path,
    dest: &Path,
    what: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let tmp = tmp_path(dir, what);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes a chunk unless an intact copy is stored; `true` if it wrote one.
pub(super) fn write_chunk(dir: &Path, hash: &Hash, data: &[u8]) -> std::io::Result<bool> {
    let hex = to_hex(hash);
    let dest = dir.join("chunks").join(&hex);
    if let Ok(stored) = std::fs::read(&dest)
        && *blake3::hash(&stored).as_bytes() == *hash
    {
        return Ok(false);
    }
    write_durably(dir, &dest, &hex, data)?;
    Ok(true)
}

pub(super) fn write_manifest(dir: &Path, id: &str, chunks: &[Hash]) -> std::io::Result<()> {
    let mut text = String::with_capacity(chunks.len() * 65);
    for hash in chunks {
        text.push_str(&to_hex(hash));
        text.push('\n');
    }
    write_durably(
        dir,
        &dir.join("manifests").join(id),
        "manifest",
        text.as_bytes(),
    )?;
    // The renames of the chunks and the manifest must be durable before the store says the
    // upload exists.
    for sub in ["chunks", "manifests"] {
        std::fs::File::open(dir.join(sub))?.sync_all()?;
    }
    Ok(())
}

/// Ids of manifests last written before `before` (candidates for orphans).
pub(super) fn old_manifests(
    dir: &Path,
    before: std::time::SystemTime,
) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    let entries = match std::fs::read_dir(dir.join("manifests")) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let modified = entry.metadata()?.modified()?;
        if modified < before
            && let Some(id) = entry.file_name().to_str()
        {
            ids.push(id.to_string());
        }
    }
    ids.sort();
    Ok(ids)
}

pub(super) fn remove_manifests(dir: &Path, ids: &[String]) -> std::io::Result<()> {
    for id in ids {
        match std::fs::remove_file(dir.join("manifests").join(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn collect(dir: &Path, pending: &HashSet<Hash>) -> std::io::Result<(usize, u64)> {
    let mut live: HashSet<Hash> = pending.clone();
    let manifests = match std::fs::read_dir(dir.join("manifests")) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    for entry in manifests {
        let text = std::fs::read_to_string(entry?.path())?;
        live.extend(text.lines().filter_map(from_hex));
    }
    let (mut count, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir.join("chunks"))? {
        let entry = entry?;
        let name = entry.file_name();
        let keep = name
            .to_str()
            .and_then(from_hex)
            .is_some_and(|h| live.contains(&h));
        if keep {
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                count += 1;
                bytes += size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let stale = std::time::SystemTime::now()
        .checked_sub(STALE_TMP)
        .unwrap_or(std::time::UNIX_EPOCH);
    if let Ok(entries) = std::fs::read_dir(dir.join("tmp")) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < stale);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok((count, bytes))
}
