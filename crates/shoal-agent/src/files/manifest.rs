//! Manifests: a source file as a list of [`CHUNK_SIZE`] chunks with their BLAKE3 hashes, built
//! by streaming the file through a small buffer, and chunk reads that re-verify the hash so a
//! file that changed since it was scanned is never served as if it had not.
//!
//! The types travel in protocol messages (hashes as hex). A manifest covers the file's size at
//! the time it was opened for scanning: bytes appended while scanning are not included, and a
//! file that shrank while scanning is [`ManifestError::Changed`].

use super::paths::SourceFile;
use std::io::{self, Read as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// The read buffer while hashing.
const READ_BUF: usize = 256 * 1024;

pub use shoal_types::files::{CHUNK_SIZE, ChunkRef, FileManifest};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} changed since it was scanned", path.display())]
    Changed { path: PathBuf },
    #[error("{} has no chunk {index}", path.display())]
    NoSuchChunk { path: PathBuf, index: usize },
    #[error("{} is not valid UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads `file` once and hashes it chunk by chunk (blocking; memory is one small buffer).
pub fn build(file: &SourceFile) -> Result<FileManifest, ManifestError> {
    let path = &file.path;
    // Names travel as JSON strings: a name that is not UTF-8 cannot be sent faithfully.
    let utf8 = |p: &Path| {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| ManifestError::NotUtf8 { path: p.to_owned() })
    };
    let (path_str, rel) = (utf8(path)?, utf8(&file.rel)?);
    if shoal_types::files::is_dir_mode(file.mode) {
        // An empty directory: nothing to read.
        return Ok(FileManifest {
            path: path_str,
            rel,
            size: 0,
            mode: file.mode,
            chunks: Vec::new(),
        });
    }
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    let mut chunks = Vec::with_capacity(size.div_ceil(u64::from(CHUNK_SIZE)).min(4096) as usize);
    let mut buf = vec![0u8; READ_BUF];
    let mut remaining = size;
    while remaining > 0 {
        let chunk_len = remaining.min(u64::from(CHUNK_SIZE)) as usize;
        let mut hasher = blake3::Hasher::new();
        let mut filled = 0;
        while filled < chunk_len {
            let want = (chunk_len - filled).min(buf.len());
            match f.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(ManifestError::Changed {
                        path: path.to_owned(),
                    });
                }
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(path)(e)),
            }
        }
        chunks.push(ChunkRef {
            hash: *hasher.finalize().as_bytes(),
            size: chunk_len as u32,
        });
        remaining -= chunk_len as u64;
    }
    Ok(FileManifest {
        path: path_str,
        rel,
        size,
        mode: file.mode,
        chunks,
    })
}

/// Reads chunk `index` of the file at `path` described by `manifest` and checks its hash
/// (blocking). A different hash or a short read is [`ManifestError::Changed`].
pub fn read_chunk(
    path: &Path,
    manifest: &FileManifest,
    index: usize,
) -> Result<Vec<u8>, ManifestError> {
    let chunk = manifest
        .chunks
        .get(index)
        .ok_or_else(|| ManifestError::NoSuchChunk {
            path: path.to_owned(),
            index,
        })?;
    read_verified(path, FileManifest::offset_of(index), chunk)
}

/// Reads `chunk.size` bytes at `offset` of `path` and checks they hash to `chunk.hash`.
pub fn read_verified(path: &Path, offset: u64, chunk: &ChunkRef) -> Result<Vec<u8>, ManifestError> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut buf = vec![0u8; chunk.size as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match f.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    if filled < buf.len() || super::hash_of(&buf) != chunk.hash {
        return Err(ManifestError::Changed {
            path: path.to_owned(),
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    // Pins chunking (sizes, boundaries, empty files), hashes equal to BLAKE3 of each chunk,
    // the hex wire form, and that reading a chunk of a file changed since scanning fails.
    use super::*;
    use crate::files::testutil::bytes;

    fn source(dir: &Path, name: &str, data: &[u8]) -> SourceFile {
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write");
        SourceFile {
            path,
            rel: PathBuf::from(name),
            size: data.len() as u64,
            mode: 0o644,
        }
    }

    #[test]
    fn chunks_cover_the_file_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cs = CHUNK_SIZE as usize;
        for (len, expect_chunks) in [(0, 0), (1, 1), (cs, 1), (cs + 1, 2), (2 * cs + 17, 3)] {
            let data = bytes(len, len as u8);
            let file = source(dir.path(), &format!("f{len}"), &data);
            let m = build(&file).expect("build");
            assert_eq!(
                (m.size, m.chunks.len()),
                (len as u64, expect_chunks),
                "len {len}"
            );
            assert_eq!(Path::new(&m.rel), file.rel);
            assert_eq!(Path::new(&m.path), file.path);
            for (i, chunk) in m.chunks.iter().enumerate() {
                let start = i * cs;
                let part = &data[start..(start + cs).min(len)];
                assert_eq!(chunk.size as usize, part.len());
                assert_eq!(
                    chunk.hash,
                    crate::files::hash_of(part),
                    "len {len} chunk {i}"
                );
                assert_eq!(read_chunk(&file.path, &m, i).expect("read"), part);
            }
            assert!(matches!(
                read_chunk(&file.path, &m, expect_chunks),
                Err(ManifestError::NoSuchChunk { .. })
            ));
        }
    }

    #[test]
    fn serialises_hashes_as_hex() {
        let m = FileManifest {
            path: "/src/a b/c.txt".into(),
            rel: "a b/c.txt".into(),
            size: 3,
            mode: 0o600,
            chunks: vec![ChunkRef {
                hash: crate::files::hash_of(b"abc"),
                size: 3,
            }],
        };
        let json = serde_json::to_string(&m).expect("json");
        assert!(
            json.contains(&crate::files::to_hex(&m.chunks[0].hash)),
            "{json}"
        );
        let back: FileManifest = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, m);
        let bad = json.replace(&crate::files::to_hex(&m.chunks[0].hash), "zz");
        assert!(serde_json::from_str::<FileManifest>(&bad).is_err());
    }

    #[test]
    fn changed_files_are_detected_on_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = bytes(CHUNK_SIZE as usize + 100, 1);
        let file = source(dir.path(), "f", &data);
        let m = build(&file).expect("build");
        // Same size, one byte different in the second chunk.
        let mut changed = data.clone();
        changed[CHUNK_SIZE as usize + 5] ^= 0xff;
        std::fs::write(&file.path, &changed).expect("rewrite");
        assert_eq!(
            read_chunk(&file.path, &m, 0).expect("first chunk intact"),
            &data[..CHUNK_SIZE as usize]
        );
        assert!(matches!(
            read_chunk(&file.path, &m, 1),
            Err(ManifestError::Changed { .. })
        ));
        // Truncated.
        std::fs::write(&file.path, &data[..10]).expect("truncate");
        assert!(matches!(
            read_chunk(&file.path, &m, 0),
            Err(ManifestError::Changed { .. })
        ));
        // Gone.
        std::fs::remove_file(&file.path).expect("rm");
        assert!(matches!(
            read_chunk(&file.path, &m, 0),
            Err(ManifestError::Io { .. })
        ));
    }
}
