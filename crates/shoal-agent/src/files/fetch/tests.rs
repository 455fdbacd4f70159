// Pins the Fetch executor against a fake tracker driven through its channels (real files,
// real cache, fake peers): chunks from two holders with one corrupt copy re-fetched elsewhere
// and reported `corrupt`; resume from cached chunks announced in the first Have, the rest from
// the server as ChunkParts; Kill mid-fetch leaves neither the file nor a temporary file; strict
// mode without the target directory fails with NoTargetDir; an unknown account fails with
// UserNotFound.
use super::*;
use crate::files::assemble::TMP_INFIX;
use crate::files::hash_of;
use crate::files::manifest::ChunkRef;
use crate::files::peer::PeerError;
use crate::files::testutil::bytes;
use shoal_proto::{FetchFile, PeerAddr, Stream};
use shoal_types::UnixMs;
use shoal_types::files::DirMode;
use std::collections::HashSet;
use std::sync::Mutex;

const KEY: TaskKey = TaskKey {
    step_id: 5,
    attempt: 0,
    host_id: 3,
};

/// What a fake peer does.
#[derive(Clone)]
enum Peer {
    /// Serves these chunks; flips a byte of those listed in `corrupt`.
    Serves {
        chunks: HashMap<Hash, Vec<u8>>,
        corrupt: HashSet<Hash>,
    },
    /// Never answers.
    Hangs,
}

#[derive(Clone)]
struct FakeHolders(Arc<HashMap<i64, Peer>>);

impl Holders for FakeHolders {
    async fn get(
        &self,
        holder: PeerAddr,
        _ticket: &Ticket,
        hash: &Hash,
        _limiter: &RateLimiter,
    ) -> Result<Vec<u8>, PeerError> {
        match self.0.get(&holder.host_id) {
            Some(Peer::Serves { chunks, corrupt }) => {
                let mut data = chunks.get(hash).cloned().ok_or(PeerError::NotFound)?;
                if corrupt.contains(hash) {
                    data[0] ^= 1;
                    // A real client verifies too; the executor must cope either way.
                    return Err(PeerError::Corrupt { hash: *hash });
                }
                Ok(data)
            }
            Some(Peer::Hangs) => std::future::pending().await,
            None => Err(PeerError::NotFound),
        }
    }
}

#[derive(Default)]
struct Recorder {
    output: Vec<u8>,
}

impl Sink for Recorder {
    async fn started(&mut self, _at: UnixMs, _pgid: i32) {}
    async fn output(&mut self, _stream: Stream, data: &[u8]) {
        self.output.extend_from_slice(data);
    }
}

/// What the fake tracker saw.
#[derive(Default, Debug)]
struct Seen {
    haves: Vec<Vec<Hash>>,
    failed: Vec<FailedFetch>,
    progress: Vec<FileProgressEntry>,
    get_chunks: Vec<Hash>,
    whohas: usize,
}

/// Answers every WhoHas with every chunk not yet had, from the first holder in `prefer` that
/// has not failed for it; host 0 is served from `server` as ChunkParts of 1000 bytes.
fn tracker(
    mut out: mpsc::Receiver<AgentMsg>,
    events: mpsc::Sender<Event>,
    chunks: Vec<Hash>,
    prefer: Vec<i64>,
    server: HashMap<Hash, Vec<u8>>,
) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut had = HashSet::new();
        let mut bad = HashSet::new();
        let ticket = Ticket {
            step_id: KEY.step_id,
            attempt: KEY.attempt,
            requester: KEY.host_id,
            expires_at: i64::MAX,
            sig: vec![],
        };
        while let Some(msg) = out.recv().await {
            match msg {
                AgentMsg::Have { chunks, .. } => {
                    had.extend(chunks.iter().copied());
                    log.lock().expect("lock").haves.push(chunks);
                }
                AgentMsg::WhoHas { failed, .. } => {
                    for f in &failed {
                        bad.insert((f.hash, f.host_id));
                    }
                    {
                        let mut seen = log.lock().expect("lock");
                        seen.whohas += 1;
                        seen.failed.extend(failed);
                    }
                    let assign = chunks
                        .iter()
                        .filter(|h| !had.contains(*h))
                        .filter_map(|h| {
                            let host = prefer.iter().find(|p| !bad.contains(&(*h, **p)))?;
                            Some(Assignment {
                                hash: *h,
                                holders: vec![PeerAddr {
                                    host_id: *host,
                                    addr: None,
                                }],
                            })
                        })
                        .collect();
                    let peers = Event::Peers {
                        ticket: ticket.clone(),
                        assign,
                        retry_ms: 20,
                    };
                    let _ = events.send(peers).await;
                }
                AgentMsg::GetChunk { hash, .. } => {
                    log.lock().expect("lock").get_chunks.push(hash);
                    let data = server.get(&hash).cloned().unwrap_or_default();
                    let parts: Vec<&[u8]> = data.chunks(1000).collect();
                    for (i, part) in parts.iter().enumerate() {
                        let part = Part {
                            offset: (i * 1000) as u32,
                            data: part.to_vec(),
                            last: i + 1 == parts.len(),
                            error: None,
                        };
                        let _ = events.send(Event::Part { hash, part }).await;
                    }
                }
                AgentMsg::FileProgress { files, .. } => {
                    log.lock().expect("lock").progress.extend(files)
                }
                _ => {}
            }
        }
    });
    seen
}

struct Setup {
    dir: tempfile::TempDir,
    cache: Arc<Cache>,
    data: Vec<u8>,
    chunks: Vec<(Hash, Vec<u8>)>,
}

impl Setup {
    /// A 2500-byte file in chunks of 1500 and 1000 bytes.
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Arc::new(Cache::open(&dir.path().join("chunks"), 1 << 20).expect("cache"));
        let data = bytes(2500, 7);
        let chunks = [&data[..1500], &data[1500..]]
            .iter()
            .map(|c| (hash_of(c), c.to_vec()))
            .collect();
        Setup {
            dir,
            cache,
            data,
            chunks,
        }
    }

    fn dest_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("target")
    }

    fn dest(&self) -> std::path::PathBuf {
        self.dest_dir().join("out.bin")
    }

    fn spec(&self, dir_mode: DirMode, account: &str) -> Arc<FetchSpec> {
        Arc::new(FetchSpec {
            files: vec![FetchFile {
                dest: self.dest().display().to_string(),
                size: self.data.len() as u64,
                mode: 0o640,
                chunks: self
                    .chunks
                    .iter()
                    .map(|(hash, c)| ChunkRef {
                        hash: *hash,
                        size: c.len() as u32,
                    })
                    .collect(),
                source_host_id: 1,
                source_path: "/src/out.bin".into(),
            }],
            account: account.into(),
            dir_mode,
            download_limit: None,
            upload_limit: None,
            timeout_secs: 20,
            incomplete: None,
        })
    }

    /// Runs the fetch with `peers` behind a fake tracker preferring `prefer`.
    async fn run(
        &self,
        spec: Arc<FetchSpec>,
        peers: HashMap<i64, Peer>,
        prefer: Vec<i64>,
        kill: watch::Receiver<bool>,
    ) -> (Outcome, Arc<Mutex<Seen>>, String) {
        let (out, out_rx) = mpsc::channel(256);
        let (events_tx, events) = mpsc::channel(256);
        let server = self.chunks.iter().cloned().collect();
        let hashes = self.chunks.iter().map(|c| c.0).collect();
        let seen = tracker(out_rx, events_tx, hashes, prefer, server);
        let ctx = Ctx {
            key: KEY,
            cache: self.cache.clone(),
            holders: FakeHolders(Arc::new(peers)),
            out,
            events,
            download: RateLimiter::unlimited(),
            output_cap: 1 << 20,
        };
        let mut sink = Recorder::default();
        let outcome =
            tokio::time::timeout(Duration::from_secs(30), run(ctx, spec, &mut sink, kill))
                .await
                .expect("fetch ends");
        // Let the tracker take the last messages.
        tokio::time::sleep(Duration::from_millis(50)).await;
        (
            outcome,
            seen,
            String::from_utf8_lossy(&sink.output).into_owned(),
        )
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dest_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn no_kill() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

#[tokio::test]
async fn corrupt_copy_is_refetched_elsewhere_and_reported() {
    // Pins: host 12 serves chunk A fine and chunk B corrupt; B is re-fetched from host 11,
    // the next WhoHas reports (B, 12, corrupt), and the file lands complete with its mode.
    let s = Setup::new();
    let (a, b) = (s.chunks[0].0, s.chunks[1].0);
    let all: HashMap<Hash, Vec<u8>> = s.chunks.iter().cloned().collect();
    let peers = HashMap::from([
        (
            12,
            Peer::Serves {
                chunks: all.clone(),
                corrupt: [b].into(),
            },
        ),
        (
            11,
            Peer::Serves {
                chunks: all,
                corrupt: HashSet::new(),
            },
        ),
    ]);
    let (outcome, seen, log) = s
        .run(s.spec(DirMode::Force, ""), peers, vec![12, 11], no_kill())
        .await;
    assert_eq!(outcome.end, End::Exited { code: 0 }, "{log}");
    assert_eq!(std::fs::read(s.dest()).expect("dest"), s.data);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(s.dest())
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let seen = seen.lock().expect("lock");
    assert_eq!(
        seen.failed,
        vec![FailedFetch {
            hash: b,
            host_id: 12,
            corrupt: true
        }]
    );
    let had: HashSet<Hash> = seen.haves.iter().flatten().copied().collect();
    assert_eq!(had, [a, b].into());
    let done = seen.progress.iter().find(|p| p.done && p.index == 0);
    let mut from = done.expect("final report").from.clone();
    from.sort();
    assert_eq!(from, vec![(11, 1000), (12, 1500)], "bytes per holder");
    assert!(log.contains("done "), "{log}");
    assert!(log.contains("from host 12"), "{log}");
}

#[tokio::test]
async fn resumes_from_cached_chunks() {
    // Pins resume: a chunk already cached is announced in the first Have and never fetched;
    // the missing one comes from the server (holder 0) as ChunkParts and is reassembled.
    let s = Setup::new();
    let (a, b) = (s.chunks[0].0, s.chunks[1].0);
    s.cache.put(&a, &s.chunks[0].1).expect("put");
    let (outcome, seen, log) = s
        .run(
            s.spec(DirMode::Force, ""),
            HashMap::new(),
            vec![0],
            no_kill(),
        )
        .await;
    assert_eq!(outcome.end, End::Exited { code: 0 }, "{log}");
    assert_eq!(std::fs::read(s.dest()).expect("dest"), s.data);
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.haves.first(), Some(&vec![a]));
    assert_eq!(seen.get_chunks, vec![b]);
    assert!(s.cache.has(&b));
    let done = seen.progress.iter().find(|p| p.done).expect("final report");
    assert_eq!(
        done.from,
        vec![(0, 1000)],
        "the cached chunk was not received"
    );
}

#[tokio::test]
async fn kill_leaves_nothing_at_the_destination() {
    // Pins Kill mid-fetch: End::Killed, no file at dest, no temporary file beside it.
    let s = Setup::new();
    std::fs::create_dir(s.dest_dir()).expect("mkdir");
    // Chunk A is cached, so only B is in flight (from a peer that never answers).
    s.cache.put(&s.chunks[0].0, &s.chunks[0].1).expect("put");
    let (kill, kill_rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = kill.send(true);
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let peers = HashMap::from([(9, Peer::Hangs)]);
    let (outcome, seen, _) = s
        .run(s.spec(DirMode::Force, ""), peers, vec![9], kill_rx)
        .await;
    assert_eq!(outcome.end, End::Killed);
    assert!(seen.lock().expect("lock").whohas >= 1);
    assert!(!s.dest().exists());
    let left = s.leftovers();
    assert!(
        left.iter().all(|n| !n.contains(TMP_INFIX)),
        "temporary files left: {left:?}"
    );
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn strict_mode_without_target_dir_fails() {
    // Pins strict mode: the target directory is missing, so the file fails with NoTargetDir
    // (reported in FileProgress with no bytes done, and as the task's end) before anything is
    // fetched for it, and nothing is created.
    let s = Setup::new();
    s.cache.put(&s.chunks[0].0, &s.chunks[0].1).expect("put");
    let peers = HashMap::from([(
        11,
        Peer::Serves {
            chunks: s.chunks.iter().cloned().collect(),
            corrupt: HashSet::new(),
        },
    )]);
    let (outcome, seen, log) = s
        .run(s.spec(DirMode::Strict, ""), peers, vec![11], no_kill())
        .await;
    assert!(
        matches!(
            outcome.end,
            End::FileFailed {
                code: FileErrorCode::NoTargetDir,
                ..
            }
        ),
        "{:?} {log}",
        outcome.end
    );
    assert!(!s.dest_dir().exists());
    let seen = seen.lock().expect("lock");
    let failed: Vec<&FileProgressEntry> =
        seen.progress.iter().filter(|p| p.error.is_some()).collect();
    assert_eq!(failed.len(), 1, "{:?}", seen.progress);
    assert_eq!(
        failed[0].error.as_ref().map(|e| e.code),
        Some(FileErrorCode::NoTargetDir)
    );
    assert_eq!(failed[0].bytes, 0, "nothing was written");
    assert_eq!(seen.whohas, 0, "nothing to ask for");
}

#[tokio::test]
async fn a_partial_plan_writes_every_file_then_fails() {
    // Pins partial deliveries: with `incomplete` set (a source could not be read), every
    // planned file is still written, and the fetch ends with that error, not success.
    let s = Setup::new();
    let mut spec = (*s.spec(DirMode::Force, "")).clone();
    spec.incomplete = Some(FileError {
        code: FileErrorCode::SourceMissing,
        message: "no such file or directory: /src/missing.txt".into(),
    });
    let (outcome, _, log) = s
        .run(Arc::new(spec), HashMap::new(), vec![0], no_kill())
        .await;
    assert_eq!(std::fs::read(s.dest()).expect("dest"), s.data);
    match outcome.end {
        End::FileFailed { code, message } => {
            assert_eq!(code, FileErrorCode::SourceMissing);
            assert!(message.contains("/src/missing.txt"), "{message}");
        }
        other => panic!("{other:?} {log}"),
    }
    assert!(log.contains("/src/missing.txt"), "{log}");
}

#[tokio::test]
async fn unknown_account_fails_every_file() {
    // Pins the owner lookup: an account missing on the host ends the fetch as UserNotFound.
    let s = Setup::new();
    let (outcome, seen, _) = s
        .run(
            s.spec(DirMode::Force, "no-such-user-shoal"),
            HashMap::new(),
            vec![],
            no_kill(),
        )
        .await;
    assert!(matches!(
        outcome.end,
        End::FileFailed {
            code: FileErrorCode::UserNotFound,
            ..
        }
    ));
    assert!(!s.dest().exists());
    assert_eq!(seen.lock().expect("lock").progress.len(), 1);
}

#[tokio::test]
async fn a_new_session_re_announces_and_asks_again() {
    // Pins reconnects: after Event::Session the fetch sends a Have of everything it holds and
    // a new WhoHas at once, without waiting for the unanswered ask to time out.
    let s = Setup::new();
    let a = s.chunks[0].0;
    s.cache.put(&a, &s.chunks[0].1).expect("put");
    let (out, mut out_rx) = mpsc::channel(64);
    let (events_tx, events) = mpsc::channel(64);
    let ctx = Ctx {
        key: KEY,
        cache: s.cache.clone(),
        holders: FakeHolders(Arc::new(HashMap::new())),
        out,
        events,
        download: RateLimiter::unlimited(),
        output_cap: 1 << 20,
    };
    let (kill, kill_rx) = watch::channel(false);
    let spec = s.spec(DirMode::Force, "");
    let fetch = tokio::spawn(async move {
        let mut sink = Recorder::default();
        run(ctx, spec, &mut sink, kill_rx).await
    });
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), out_rx.recv())
            .await
            .expect("message in time")
            .expect("open")
    };
    for _ in 0..2 {
        assert!(matches!(next().await, AgentMsg::Have { chunks, .. } if chunks == vec![a]));
        assert!(matches!(next().await, AgentMsg::WhoHas { want: 4, .. }));
        events_tx.send(Event::Session).await.expect("send");
    }
    kill.send(true).expect("kill");
    let outcome = fetch.await.expect("join");
    assert_eq!(outcome.end, End::Killed);
}
