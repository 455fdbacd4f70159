// Pins the upload store on disk: content is chunked and deduplicated, a refused upload leaves
// nothing, and the expiry sweep removes an expired, unreferenced upload (record, manifest and
// chunks) while keeping one a live step references, a fresh one, and chunks still shared.

use super::*;
use shoal_store::prelude::*;
use shoal_store_sqlite::SqliteStore;

struct Fixture {
    uploads: Uploads,
    store: SqliteStore,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open store");
    Fixture {
        uploads: Uploads::new(dir.path()),
        store,
        dir,
    }
}

impl Fixture {
    fn files(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("uploads").join(sub))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Uploads `content` as a stream of small pieces at time `now`.
    async fn put(&self, content: &[u8], now: UnixMs) -> Result<Upload, Error> {
        let pieces: Vec<Result<Bytes, std::convert::Infallible>> = content
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        self.uploads
            .put_stream(
                &self.store,
                futures::stream::iter(pieces),
                "f.bin",
                "tester",
                64 << 20,
                now,
            )
            .await
    }
}

/// Deterministic content that differs per `seed` (and has no repeating chunks).
fn content(seed: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[seed]);
    hasher.finalize_xof().fill(&mut out);
    out
}

#[tokio::test]
async fn content_is_chunked_and_stored_once() {
    let f = fixture().await;
    let data = content(1, CHUNK_SIZE as usize * 2 + 10);
    let first = f.put(&data, 1_000).await.expect("put");
    assert_eq!(first.id, blake3::hash(&data).to_hex().to_string());
    assert_eq!(first.size, data.len() as u64);
    assert_eq!(first.chunks.len(), 3);
    let again = f.put(&data, 2_000).await.expect("put again");
    assert_eq!(again.id, first.id);
    assert_eq!(again.last_used_at, 2_000);
    assert_eq!(f.files("chunks").len(), 3);
    assert!(f.files("tmp").is_empty());
    // Every chunk reads back verified, and in order they are the content.
    let mut back = Vec::new();
    for hex in &first.chunks {
        let hash = from_hex(hex).expect("hex");
        back.extend(f.uploads.read_chunk(&hash).await.expect("read"));
    }
    assert_eq!(back, data);
    let empty = f.put(b"", 1_000).await.expect("empty file");
    assert_eq!((empty.size, empty.chunks.len()), (0, 0));
}

#[tokio::test]
async fn an_upload_over_the_limit_leaves_nothing() {
    let f = fixture().await;
    let data = content(2, CHUNK_SIZE as usize * 2 + 1);
    let body = futures::stream::iter(
        data.chunks(1 << 20)
            .map(|c| Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let err = f
        .uploads
        .put_stream(&f.store, body, "big", "tester", CHUNK_SIZE as u64 * 2, 1)
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(f.files("chunks").is_empty(), "{:?}", f.files("chunks"));
    assert!(f.files("manifests").is_empty());
    assert!(f.files("tmp").is_empty());
    let id = blake3::hash(&data).to_hex().to_string();
    assert_eq!(f.store.get_upload(&id).await.expect("get"), None);
    // A body that breaks off mid-way is refused the same way.
    let broken = futures::stream::iter(vec![
        Ok(Bytes::from(content(3, CHUNK_SIZE as usize + 5))),
        Err("connection reset"),
    ]);
    let err = f
        .uploads
        .put_stream(&f.store, broken, "cut", "tester", 64 << 20, 1)
        .await
        .expect_err("broken body");
    assert!(matches!(err, Error::Body(_)), "{err}");
    assert!(f.files("chunks").is_empty());
}

#[tokio::test]
async fn sweep_removes_only_expired_unreferenced_uploads() {
    let f = fixture().await;
    let chunk = CHUNK_SIZE as usize;
    // `old` and `shared` have the same first chunk; `shared` stays (fresh), so that chunk must.
    let common = content(9, chunk);
    let old = [common.clone(), content(4, 100)].concat();
    let shared = [common.clone(), content(5, 100)].concat();
    let old = f.put(&old, 1_000).await.expect("old");
    let used = f.put(&content(6, 300), 1_000).await.expect("used");
    let fresh = f.put(&shared, 50_000).await.expect("fresh");
    let (_, step) = shoal_store::conformance::one_step_job(&f.store, &[]).await;
    f.store.ref_upload(&used.id, step).await.expect("ref");
    assert_eq!(f.files("chunks").len(), 4);

    let stats = f.uploads.sweep(&f.store, 10_000).await.expect("sweep");
    assert_eq!(stats.uploads, 1, "{stats:?}");
    assert_eq!(stats.chunks, 1, "only old's own last chunk goes: {stats:?}");
    assert_eq!(f.store.get_upload(&old.id).await.expect("get"), None);
    assert!(f.store.get_upload(&used.id).await.expect("get").is_some());
    assert!(f.store.get_upload(&fresh.id).await.expect("get").is_some());
    assert_eq!(f.files("manifests"), {
        let mut ids = vec![used.id.clone(), fresh.id.clone()];
        ids.sort();
        ids
    });
    let mut live: Vec<String> = used.chunks.iter().chain(&fresh.chunks).cloned().collect();
    live.sort();
    assert_eq!(f.files("chunks"), live);
    // A second pass has nothing left to do.
    let stats = f.uploads.sweep(&f.store, 10_000).await.expect("sweep");
    assert_eq!(stats, SweepStats::default());
}

#[tokio::test]
async fn acquire_marks_an_upload_used() {
    let f = fixture().await;
    let up = f.put(b"hello", 1_000).await.expect("put");
    let got = f
        .uploads
        .acquire(&f.store, &up.id.to_uppercase(), 20_000)
        .await
        .expect("acquire")
        .expect("exists");
    assert_eq!(got.last_used_at, 20_000);
    // Acquired after the cut-off, so it does not expire.
    let stats = f.uploads.sweep(&f.store, 10_000).await.expect("sweep");
    assert_eq!(stats.uploads, 0);
    assert!(f.store.get_upload(&up.id).await.expect("get").is_some());
    assert!(
        f.uploads
            .acquire(&f.store, "nothex", 1)
            .await
            .expect("acquire")
            .is_none()
    );
    assert!(
        f.uploads
            .acquire(&f.store, &"ab".repeat(32), 1)
            .await
            .expect("acquire")
            .is_none()
    );
}
