//! File distribution data shared by the server, the agent and the protocol: chunk hashes and
//! manifests, the stored spec of a file step, and the per-file error codes agents report.
//!
//! A file travels as [`CHUNK_SIZE`] chunks named by their BLAKE3 hash (64 lowercase hex digits
//! on the wire). The hashing itself lives where the bytes are (agent, server); this module only
//! carries the names.

use crate::HostId;
use serde::{Deserialize, Serialize};

/// The size of every chunk but a file's last.
pub const CHUNK_SIZE: u32 = 4 * 1024 * 1024;

/// A BLAKE3 hash of one chunk.
pub type Hash = [u8; 32];

/// Lowercase hex of a hash, as chunks are named on disk and on the wire.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits (either case).
pub fn from_hex(s: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(s, &mut hash).ok()?;
    Some(hash)
}

/// Serde for a [`Hash`] as 64 lowercase hex digits (`#[serde(with = "hash_hex")]`).
pub mod hash_hex {
    use super::Hash;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Serde for a list of [`Hash`]es as hex strings.
pub mod hashes_hex {
    use super::Hash;
    use serde::{Deserialize as _, Deserializer, Serializer, ser::SerializeSeq as _};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for h in hashes {
            seq.serialize_element(&super::to_hex(h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let v = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        v.iter()
            .map(|s| {
                super::from_hex(s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    #[serde(with = "hash_hex")]
    pub hash: Hash,
    pub size: u32,
}

/// One source file as scanned: where it is, the name it gets under the target directory, and
/// its chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileManifest {
    /// Absolute path on the source host ("" for uploads).
    pub path: String,
    /// Relative name under the target directory: the file name for a file, the path below the
    /// directory (with the directory's own name first) for a directory source.
    pub rel: String,
    pub size: u64,
    /// Permission bits; with the file-type bits [`MODE_DIR`] (as in `st_mode`) for an empty
    /// directory of a directory source, which has no size and no chunks.
    pub mode: u32,
    /// In file order; empty for an empty file.
    pub chunks: Vec<ChunkRef>,
}

/// `st_mode`'s file-type bits of a directory: set in a manifest's (and a fetch's) `mode` for
/// an empty directory to recreate. Plain files carry permission bits only.
pub const MODE_DIR: u32 = 0o040_000;
const MODE_TYPE: u32 = 0o170_000;

/// `mode` names a directory (see [`MODE_DIR`]).
pub fn is_dir_mode(mode: u32) -> bool {
    mode & MODE_TYPE == MODE_DIR
}

impl FileManifest {
    /// Where chunk `index` starts in the file.
    pub fn offset_of(index: usize) -> u64 {
        index as u64 * u64::from(CHUNK_SIZE)
    }
}

/// Why one file could not be read or written. Each maps to a host status (see
/// [`FileErrorCode::host_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorCode {
    /// The source path matched nothing, or does not exist.
    SourceMissing,
    PermissionDenied,
    DiskFull,
    /// A chunk failed verification from every holder.
    ChecksumMismatch,
    /// Strict mode and the target directory does not exist.
    NoTargetDir,
    /// The destination path is a directory (or a parent is a file).
    DestIsDir,
    /// The target account does not exist on the host.
    UserNotFound,
    Timeout,
    /// No holder could deliver a chunk (sources gone, peers unreachable).
    Unavailable,
    /// Anything else (an IO error, with the message saying which).
    Other,
}

impl FileErrorCode {
    pub fn host_status(self) -> crate::HostTaskStatus {
        use crate::HostTaskStatus as H;
        match self {
            FileErrorCode::SourceMissing => H::SourceNotFound,
            FileErrorCode::UserNotFound => H::UserNotExist,
            FileErrorCode::Timeout => H::FileTimeout,
            _ => H::FileFailed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    pub code: FileErrorCode,
    pub message: String,
}

/// bk-job's transfer modes: what to do when the target directory does not exist.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirMode {
    /// The target fails with [`FileErrorCode::NoTargetDir`].
    Strict,
    /// Create it and its missing parents.
    #[default]
    Force,
}

/// What to do when several sources put a file under the same name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateMode {
    /// Later sources overwrite earlier ones (in source order).
    #[default]
    Overwrite,
    /// `target_dir/<source ip>/name`.
    BySourceIp,
    /// `target_dir/<YYYY-MM-DD>/<source ip>/name`.
    ByDateAndSourceIp,
}

/// One source of a file step, as stored (inline text is stored as an upload).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileSource {
    /// Paths on source hosts, read as `account` ("" = the agent's account).
    Host {
        host_ids: Vec<HostId>,
        paths: Vec<String>,
        #[serde(default)]
        account: String,
    },
    /// Content uploaded to the server (hex BLAKE3 id), written under `name` with permission
    /// bits `mode`.
    Upload {
        upload_id: String,
        name: String,
        #[serde(default = "default_upload_mode")]
        mode: u32,
    },
}

/// A file transfer row on the serving side: its `host_id` is the source host and the row
/// records what it uploaded (bk-job's file log mode 0).
pub const FILE_MODE_UPLOAD: u8 = 0;
/// A file transfer row on the receiving side: its `host_id` is the target host (mode 1).
pub const FILE_MODE_DOWNLOAD: u8 = 1;

/// Permission bits of an uploaded or inline file when the request gives none.
pub const DEFAULT_UPLOAD_MODE: u32 = 0o644;

fn default_upload_mode() -> u32 {
    DEFAULT_UPLOAD_MODE
}

/// Everything the server needs to run one file step. Stored with the step (as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    pub sources: Vec<FileSource>,
    /// Absolute; may contain `[date:FORMAT]` and `[source_ip]` macros, expanded per source.
    pub target_dir: String,
    /// Owner of written files ("" = the agent's account).
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub dir_mode: DirMode,
    #[serde(default)]
    pub duplicate: DuplicateMode,
    /// Per host, MB/s (1 MB = 1,048,576 bytes); `None` = unlimited.
    #[serde(default)]
    pub upload_limit_mbps: Option<u32>,
    #[serde(default)]
    pub download_limit_mbps: Option<u32>,
    pub timeout_secs: u32,
    /// Targets fetch from each other as well as from the sources (default). Off: every target
    /// fetches from the sources only.
    #[serde(default = "yes")]
    pub peer_to_peer: bool,
}

fn yes() -> bool {
    true
}

/// Bytes per second of a limit in MB/s.
pub fn mbps_to_bytes(mbps: Option<u32>) -> Option<u64> {
    mbps.map(|m| u64::from(m) * 1024 * 1024)
}

/// Bounds of file requests.
pub mod limits {
    /// Largest inline file (base64-decoded).
    pub const INLINE_MAX_BYTES: usize = 1024 * 1024;
    /// Default largest upload; the server's `--upload-max-bytes` overrides it.
    pub const UPLOAD_MAX_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;
    /// Sources and paths per step.
    pub const SOURCES_MAX: usize = 100;
    pub const PATHS_MAX: usize = 500;
}

#[cfg(test)]
mod tests {
    // Pins the hex form of hashes both ways and the stored form of a spec.
    use super::*;

    #[test]
    fn hash_hex_round_trips_and_refuses_junk() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[31] = 0x01;
        let s = to_hex(&h);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00"));
        assert_eq!(from_hex(&s), Some(h));
        assert_eq!(from_hex(&s.to_uppercase()), Some(h));
        assert_eq!(from_hex("xyz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn spec_defaults_peer_to_peer_on() {
        let spec: FileSpec = serde_json::from_str(
            r#"{"sources":[{"kind":"upload","upload_id":"ab","name":"a.txt"}],
                "target_dir":"/tmp","timeout_secs":10}"#,
        )
        .expect("parse");
        assert!(spec.peer_to_peer);
        assert_eq!(spec.dir_mode, DirMode::Force);
        assert_eq!(spec.duplicate, DuplicateMode::Overwrite);
        assert_eq!(mbps_to_bytes(Some(2)), Some(2 * 1024 * 1024));
    }
}
