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
//! This crate must not know about sockets, TLS, storage or the async runtime.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use shoal_types::{HostFacts, HostId, Labels, ScriptSpec, UnixMs};

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
}

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
    fn rejects_garbage_and_oversize() {
        assert!(decode::<AgentMsg>(b"{\"type\":\"nope\"}").is_err());
        assert!(matches!(
            decode::<AgentMsg>(&vec![b' '; MAX_FRAME_BYTES + 1]),
            Err(Error::TooLarge(_))
        ));
    }
}
