//! The agent protocol: every message that crosses the agent link, and how it is framed.
//!
//! Transport (owned by the agent and the server, not by this crate): one TLS connection per
//! agent, dialled by the agent, carrying frames of a 4-byte big-endian length followed by one
//! JSON-encoded message. Frames are at most [`MAX_FRAME_BYTES`].
//!
//! Conversation:
//! 1. The agent sends [`AgentMsg::Enroll`] (first contact, with an enrollment token) or
//!    [`AgentMsg::Hello`] (with the identity it received at enrollment).
//! 2. The server answers [`ServerMsg::Enrolled`] (the agent stores the identity and reconnects
//!    with `Hello`), [`ServerMsg::Welcome`] (with the session's generation), or
//!    [`ServerMsg::Rejected`], then closes.
//! 3. After `Welcome`: the server sends `Run`, `Kill` and `Ack`; the agent sends `Heartbeat`,
//!    `Started`, `Output` and `Finished`. Results are delivered at least once: the agent spools
//!    them on disk until acknowledged and re-sends them after a reconnect; the server applies them
//!    idempotently, keyed by [`TaskKey`] and byte offset.
//!
//! 4. File steps (only for agents whose `Hello` carries a `peer_port`): after `Welcome` the
//!    server sends [`ServerMsg::PeerIdentity`]. A source host gets `Scan` and answers
//!    `Manifest`. A target gets `Fetch` (a task like `Run`: it answers `Started`, `Output`
//!    with its download log, and `Finished`), asks the tracker `WhoHas`, is answered `Peers`
//!    (chunk assignments and a [`ticket::Ticket`]), fetches chunks from peers over mutual TLS
//!    (or from the server as `ChunkPart`s after `GetChunk`), announces `Have`, and reports
//!    `FileProgress`. Serving hosts report `Served`. `Release` ends a step's file state.
//!
//! This crate must not know about sockets, TLS, storage or the async runtime.

pub mod ticket;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use shoal_types::files::{
    ChunkRef, DirMode, FileError, FileErrorCode, FileManifest, Hash, hash_hex, hashes_hex,
};
use shoal_types::{HostFacts, HostId, Labels, ScriptSpec, StepId, UnixMs};
use std::net::SocketAddr;
use std::sync::Arc;

pub use shoal_types::TaskKey;

/// Bumped on every incompatible change. The server rejects agents of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side sends or accepts. A `Run` carries the whole script (up to
/// `shoal_types::limits::SCRIPT_MAX_BYTES`, more once JSON-escaped); the server refuses scripts
/// whose message would not fit.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Largest `data` in one [`AgentMsg::Output`]; leaves room for base64 and JSON in a frame.
pub const MAX_OUTPUT_CHUNK: usize = 256 * 1024;

/// Messages from the agent to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMsg {
    Enroll {
        protocol: u32,
        token: String,
        facts: HostFacts,
        labels: Labels,
    },
    Hello {
        protocol: u32,
        agent_id: String,
        secret: String,
        facts: HostFacts,
        labels: Labels,
        /// Tasks the agent is running or still holds results for, so the server knows which
        /// dispatched tasks survived and which were lost.
        known_tasks: Vec<TaskKey>,
        /// The port this agent serves chunks to its peers on; absent from agents without file
        /// distribution (they are never sent file messages).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_port: Option<u16>,
    },
    Heartbeat {
        running: u32,
    },
    /// The process for `key` has started.
    Started {
        key: TaskKey,
        at: UnixMs,
    },
    /// Output bytes `[offset, offset + data.len())` of the task's combined stdout and stderr.
    Output {
        key: TaskKey,
        offset: u64,
        stream: Stream,
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    Finished {
        key: TaskKey,
        outcome: Outcome,
    },
    /// Answer to `Scan` (`key.host_id` is this source host): the files its paths expanded to,
    /// and per path what could not be read.
    Manifest {
        key: TaskKey,
        files: Vec<FileManifest>,
        errors: Vec<SourceError>,
    },
    /// A target asks the tracker for up to `want` chunk assignments of its `Fetch`. `failed`
    /// lists earlier assignments that did not deliver (the holder is skipped next time).
    WhoHas {
        key: TaskKey,
        want: u32,
        #[serde(default)]
        failed: Vec<FailedFetch>,
        /// Chunks this target announced earlier but no longer holds (found corrupt or
        /// evicted from its cache): it needs them again and cannot serve them.
        #[serde(default, with = "hashes_hex", skip_serializing_if = "Vec::is_empty")]
        lost: Vec<Hash>,
    },
    /// A target holds these chunks now (verified, in its cache): it can serve them.
    Have {
        key: TaskKey,
        #[serde(with = "hashes_hex")]
        chunks: Vec<Hash>,
    },
    /// Per-file progress of a `Fetch`, at most about once a second, and the final state of each
    /// file as it ends. Best effort: the task's `Finished` is authoritative.
    FileProgress {
        key: TaskKey,
        files: Vec<FileProgressEntry>,
    },
    /// Upload-side accounting of a serving host (`key.host_id` is the server of the bytes):
    /// bytes served since the last report, per source file path ("" for cached chunks).
    Served {
        key: TaskKey,
        files: Vec<(String, u64)>,
    },
    /// A target asks the server for a chunk of an uploaded file (holder host 0).
    GetChunk {
        key: TaskKey,
        #[serde(with = "hash_hex")]
        hash: Hash,
    },
}

/// One source path that yielded no file, or a file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    pub path: String,
    pub code: FileErrorCode,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFetch {
    #[serde(with = "hash_hex")]
    pub hash: Hash,
    pub host_id: HostId,
    /// The chunk arrived but did not match its hash.
    #[serde(default)]
    pub corrupt: bool,
}

/// State of one file of a `Fetch` (`index` into `FetchSpec::files`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgressEntry {
    pub index: u32,
    pub bytes: u64,
    /// Bytes per second over the last interval.
    pub speed: u64,
    /// The file is complete at its destination.
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FileError>,
    /// With `done`: bytes of this file's chunks received from each holder (host 0: the
    /// server) during this fetch, so the server counts what every source served before the
    /// step can end (chunks shared by several files count for the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<(HostId, u64)>,
}

/// One file a target writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchFile {
    /// Absolute destination path.
    pub dest: String,
    pub size: u64,
    pub mode: u32,
    pub chunks: Vec<ChunkRef>,
    /// The source host (for the log); 0 for uploads.
    pub source_host_id: HostId,
    /// The source file path, or the upload name (for the log).
    pub source_path: String,
}

/// What a target of a file step does: shared by every target with the same file list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchSpec {
    pub files: Vec<FetchFile>,
    /// Owner of the written files and created directories ("" = the agent's account).
    pub account: String,
    pub dir_mode: DirMode,
    /// Bytes per second, per host.
    pub download_limit: Option<u64>,
    pub upload_limit: Option<u64>,
    pub timeout_secs: u32,
    /// Source files that could not be read (missing, unreadable, source host gone): the
    /// target still writes every file in `files`, then ends failed with this error, because
    /// it did not receive everything it should have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<FileError>,
}

/// A holder of a chunk. `host_id` 0 is the server itself (ask with `GetChunk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    pub host_id: HostId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<SocketAddr>,
}

/// A chunk to fetch and where from, best holder first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    #[serde(with = "hash_hex")]
    pub hash: Hash,
    pub holders: Vec<PeerAddr>,
}

/// Messages from the server to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Enrolled {
        host_id: HostId,
        agent_id: String,
        secret: String,
    },
    Welcome {
        host_id: HostId,
        generation: i64,
        heartbeat_secs: u32,
    },
    Rejected {
        code: RejectCode,
        message: String,
    },
    /// Run a script. Idempotent: a `Run` for a key the agent already knows is ignored.
    Run {
        key: TaskKey,
        /// Shared: one step's spec is queued for every host without a copy per host.
        spec: std::sync::Arc<ScriptSpec>,
        /// Per-host output cap in bytes; output past it is dropped and marked truncated.
        output_cap: u64,
    },
    /// Kill the process group of `key` (terminate). A no-op if the task is unknown or finished.
    Kill {
        key: TaskKey,
    },
    /// The server has durably stored output up to `output_offset` and, if `finished`, the
    /// result. The agent may forget what is acknowledged.
    Ack {
        key: TaskKey,
        output_offset: u64,
        finished: bool,
    },
    /// Answer to every agent `Heartbeat`: lets the agent notice a dead link (nothing heard for
    /// three heartbeat intervals) and reconnect.
    Heartbeat,
    /// Forget the task without a result: the server has already settled it (for example it
    /// was marked agent-abnormal while the agent was away).
    Forget {
        key: TaskKey,
    },
    /// This agent's peer certificate and key (signed by the server CA, SAN
    /// `host-<id>.peer.shoal`) and the public key tickets are signed with. Sent after
    /// `Welcome` to agents that announced a `peer_port`.
    PeerIdentity {
        cert_pem: String,
        key_pem: String,
        /// Ed25519 public key, hex.
        ticket_key: String,
    },
    /// Expand `paths` on this source host, read as `account`, and answer `Manifest`. The host
    /// then serves those files' chunks to holders of tickets for `key`'s step attempt until
    /// `Release`.
    Scan {
        key: TaskKey,
        paths: Vec<String>,
        account: String,
        /// Bytes per second this host may upload while serving the step (the step's upload
        /// limit); absent = unlimited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upload_limit: Option<u64>,
    },
    /// Fetch files (a task: answered with `Started`, `Output`, `Finished`). Idempotent like
    /// `Run`; `Kill` cancels it.
    Fetch {
        key: TaskKey,
        spec: Arc<FetchSpec>,
    },
    /// Answer to `WhoHas`: chunks to fetch now, their holders, and the ticket to show them.
    /// Empty `assign` with `retry_ms`: nothing can be served right now, ask again later.
    Peers {
        key: TaskKey,
        ticket: ticket::Ticket,
        assign: Vec<Assignment>,
        #[serde(default)]
        retry_ms: u32,
    },
    /// Part of a chunk the server serves (answer to `GetChunk`), at most [`MAX_CHUNK_PART`]
    /// bytes; parts come in order, the last has `last`. `error` instead of data: the server
    /// cannot serve it.
    ChunkPart {
        key: TaskKey,
        #[serde(with = "hash_hex")]
        hash: Hash,
        offset: u32,
        #[serde(with = "b64")]
        data: Vec<u8>,
        last: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The step attempt's file work is over: drop its scan state and cached chunks.
    Release {
        step_id: StepId,
        attempt: u32,
    },
}

/// Largest `data` in one [`ServerMsg::ChunkPart`].
pub const MAX_CHUNK_PART: usize = 512 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    BadToken,
    Revoked,
    UnknownAgent,
    ProtocolVersion,
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Text the agent itself inserts (the truncation marker, start failures).
    Agent,
}

/// How a task ended on the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub end: End,
    pub started_at: Option<UnixMs>,
    pub ended_at: UnixMs,
    /// Total bytes of output stored (after the cap, including the truncation marker).
    pub output_len: u64,
    pub truncated: bool,
    /// BLAKE3 of the stored output, hex; results with equal digests are grouped together.
    pub digest: String,
    /// The value of the last `::shoal-tag::VALUE` line the script printed, if any.
    pub tag: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum End {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut,
    /// Killed on request (terminate).
    Killed,
    /// The account does not exist on the host.
    UserNotFound {
        account: String,
    },
    /// The script could not be started (interpreter missing, unsupported language, IO error).
    StartFailed {
        reason: String,
    },
    /// A file task failed; the first failure's code decides the host status.
    FileFailed {
        code: FileErrorCode,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, Error> {
    let bytes = serde_json::to_vec(msg)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(Error::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

pub fn decode<'a, M: Deserialize<'a>>(frame: &'a [u8]) -> Result<M, Error> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(Error::TooLarge(frame.len()));
    }
    Ok(serde_json::from_slice(frame)?)
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::Language;

    #[test]
    fn messages_round_trip() {
        let key = TaskKey {
            step_id: 7,
            attempt: 1,
            host_id: 3,
        };
        let msgs = vec![
            AgentMsg::Output {
                key,
                offset: 10,
                stream: Stream::Stderr,
                data: vec![0, 159, 146, 150, 255],
            },
            AgentMsg::Finished {
                key,
                outcome: Outcome {
                    end: End::Exited { code: 3 },
                    started_at: Some(1),
                    ended_at: 2,
                    output_len: 5,
                    truncated: false,
                    digest: "ab".into(),
                    tag: Some("x".into()),
                },
            },
        ];
        for m in msgs {
            let back: AgentMsg = decode(&encode(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
        let run = ServerMsg::Run {
            key,
            spec: std::sync::Arc::new(ScriptSpec {
                language: Language::Python,
                content: "print(1)".into(),
                args: vec!["a b".into()],
                env: vec![],
                account: "root".into(),
                login_env: false,
                workdir: String::new(),
                timeout_secs: 5,
            }),
            output_cap: 100,
        };
        let back: ServerMsg = decode(&encode(&run).unwrap()).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn file_messages_round_trip() {
        // Pins the file-step wire forms: hashes as hex, chunk data as base64, old agents'
        // hellos (no peer_port) still parse.
        let key = TaskKey {
            step_id: 1,
            attempt: 0,
            host_id: 2,
        };
        let hash = [7u8; 32];
        let agent = vec![
            AgentMsg::Have {
                key,
                chunks: vec![hash],
            },
            AgentMsg::WhoHas {
                key,
                want: 4,
                failed: vec![FailedFetch {
                    hash,
                    host_id: 3,
                    corrupt: true,
                }],
                lost: vec![],
            },
            AgentMsg::Manifest {
                key,
                files: vec![FileManifest {
                    path: "/a b/c".into(),
                    rel: "c".into(),
                    size: 3,
                    mode: 0o644,
                    chunks: vec![ChunkRef { hash, size: 3 }],
                }],
                errors: vec![SourceError {
                    path: "/x".into(),
                    code: FileErrorCode::SourceMissing,
                    message: "no such file".into(),
                }],
            },
        ];
        for m in agent {
            let bytes = encode(&m).unwrap();
            assert!(String::from_utf8_lossy(&bytes).contains(&"07".repeat(32)));
            assert_eq!(decode::<AgentMsg>(&bytes).unwrap(), m);
        }
        let part = ServerMsg::ChunkPart {
            key,
            hash,
            offset: 0,
            data: vec![1, 2, 3],
            last: true,
            error: None,
        };
        assert_eq!(decode::<ServerMsg>(&encode(&part).unwrap()).unwrap(), part);
        let old_hello = r#"{"type":"hello","protocol":1,"agent_id":"a","secret":"s",
            "facts":{"hostname":"h","os":"linux","os_version":"","arch":"x86_64","agent_version":"","ips":[]},"labels":{},
            "known_tasks":[]}"#;
        match decode::<AgentMsg>(old_hello.as_bytes()) {
            Ok(AgentMsg::Hello { peer_port, .. }) => assert_eq!(peer_port, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        assert!(decode::<AgentMsg>(b"{\"type\":\"nope\"}").is_err());
        assert!(matches!(
            decode::<AgentMsg>(&vec![b' '; MAX_FRAME_BYTES + 1]),
            Err(Error::TooLarge(_))
        ));
    }
}
