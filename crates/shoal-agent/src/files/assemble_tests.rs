// Pins assembly: content, exact mode (set-id bits survive the chown), owner of the file and of
// force-created directories, strict vs force, the typed errors (no target dir, dest is a
// directory, parent is a file, missing chunk, permission denied, disk full) and that no error
// leaves a temporary file or touches an existing destination.
use super::*;
use crate::files::hash_of;
use crate::files::testutil::{NOBODY, as_unprivileged, bytes};
use std::os::unix::fs::MetadataExt as _;

struct Fixture {
    dir: tempfile::TempDir,
    cache: Cache,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(&dir.path().join("chunks"), 64 << 20).expect("cache");
        std::fs::create_dir(dir.path().join("target")).expect("mkdir");
        Fixture { dir, cache }
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("target")
    }

    /// A plan for `data` cut into `chunk` byte chunks, all cached.
    fn plan(&self, dest: PathBuf, data: &[u8], chunk: usize) -> TargetFile {
        let chunks = data
            .chunks(chunk)
            .map(|part| {
                let hash = hash_of(part);
                self.cache.put(&hash, part).expect("put");
                ChunkRef {
                    hash,
                    size: part.len() as u32,
                }
            })
            .collect();
        TargetFile {
            dest,
            size: data.len() as u64,
            mode: 0o644,
            chunks,
            owner: None,
        }
    }
}

fn strict() -> AssembleOptions {
    AssembleOptions {
        dir_mode: DirMode::Strict,
    }
}

fn force() -> AssembleOptions {
    AssembleOptions {
        dir_mode: DirMode::Force,
    }
}

/// Temporary files left anywhere under `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().contains(TMP_INFIX) {
                found.push(e.path());
            }
        }
    }
    found
}

#[test]
fn writes_content_and_exact_mode_over_an_existing_file() {
    let fx = Fixture::new();
    let dest = fx.target().join("app (1).bin");
    std::fs::write(&dest, b"old content").expect("old");
    let data = bytes(100_000, 7);
    let mut plan = fx.plan(dest.clone(), &data, 30_000);
    plan.mode = 0o4750;
    assemble(&plan, &fx.cache, &strict()).expect("assemble");
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    let meta = std::fs::metadata(&dest).expect("meta");
    assert_eq!(meta.mode() & 0o7777, 0o4750);
    assert!(leftovers(fx.dir.path()).is_empty());
    // Empty files have no chunks.
    let empty = fx.plan(fx.target().join("empty"), b"", 10);
    assemble(&empty, &fx.cache, &strict()).expect("assemble empty");
    assert_eq!(
        std::fs::metadata(fx.target().join("empty"))
            .expect("meta")
            .len(),
        0
    );
}

#[test]
fn owner_applies_to_file_and_created_directories() {
    let fx = Fixture::new();
    let dest = fx.target().join("a/b/file");
    let mut plan = fx.plan(dest.clone(), b"owned", 4);
    plan.mode = 0o2755;
    let expect = if nix::unistd::geteuid().is_root() {
        plan.owner = Some((NOBODY, NOBODY));
        (NOBODY, NOBODY)
    } else {
        let me = std::fs::metadata(fx.target()).expect("meta");
        (me.uid(), me.gid())
    };
    assemble(&plan, &fx.cache, &force()).expect("assemble");
    for path in [dest.clone(), fx.target().join("a"), fx.target().join("a/b")] {
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), expect, "{}", path.display());
    }
    assert_eq!(
        std::fs::metadata(&dest).expect("meta").mode() & 0o7777,
        0o2755
    );
    assert_eq!(
        std::fs::metadata(fx.target().join("a"))
            .expect("meta")
            .mode()
            & 0o777,
        DIR_MODE & !current_umask()
    );
}

fn current_umask() -> u32 {
    let probe = tempfile::tempdir().expect("tempdir");
    let path = probe.path().join("probe");
    std::fs::DirBuilder::new()
        .mode(0o777)
        .create(&path)
        .expect("mkdir");
    0o777 & !std::fs::metadata(&path).expect("meta").mode()
}

#[test]
fn strict_needs_the_directory_force_creates_it() {
    let fx = Fixture::new();
    let dest = fx.target().join("new/dir/file");
    let plan = fx.plan(dest.clone(), b"hello", 5);
    let err = assemble(&plan, &fx.cache, &strict()).expect_err("strict");
    assert!(
        matches!(&err, AssembleError::NoTargetDir { dir } if dir == &fx.target().join("new/dir")),
        "{err}"
    );
    assert!(!fx.target().join("new").exists());
    assemble(&plan, &fx.cache, &force()).expect("force");
    assert_eq!(std::fs::read(&dest).expect("read"), b"hello");
}

#[test]
fn wrong_kinds_of_destination_are_typed() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.target().join("taken")).expect("mkdir");
    let plan = fx.plan(fx.target().join("taken"), b"x", 1);
    for opts in [strict(), force()] {
        let err = assemble(&plan, &fx.cache, &opts).expect_err("dest is dir");
        assert!(matches!(err, AssembleError::DestIsDir { .. }), "{err}");
    }
    std::fs::write(fx.target().join("plain"), b"file").expect("write");
    let plan = fx.plan(fx.target().join("plain/sub/x"), b"x", 1);
    for opts in [strict(), force()] {
        let err = assemble(&plan, &fx.cache, &opts).expect_err("parent is file");
        assert!(
            matches!(&err, AssembleError::ParentNotDir { path } if path == &fx.target().join("plain")),
            "{err}"
        );
    }
    let mut relative = plan.clone();
    relative.dest = PathBuf::from("rel/x");
    assert!(matches!(
        assemble(&relative, &fx.cache, &force()),
        Err(AssembleError::BadDest { .. })
    ));
    let mut inconsistent = fx.plan(fx.target().join("y"), b"abc", 1);
    inconsistent.size = 4;
    assert!(matches!(
        assemble(&inconsistent, &fx.cache, &force()),
        Err(AssembleError::BadPlan { .. })
    ));
    assert!(leftovers(fx.dir.path()).is_empty());
}

#[test]
fn a_missing_chunk_leaves_the_old_file_and_no_temp() {
    let fx = Fixture::new();
    let dest = fx.target().join("keep");
    std::fs::write(&dest, b"old").expect("old");
    let plan = fx.plan(dest.clone(), &bytes(5000, 1), 1000);
    fx.cache.remove(&plan.chunks[3].hash).expect("remove");
    let err = assemble(&plan, &fx.cache, &force()).expect_err("missing chunk");
    assert!(matches!(err, AssembleError::MissingChunk { hash } if hash == plan.chunks[3].hash));
    assert_eq!(std::fs::read(&dest).expect("read"), b"old");
    assert!(leftovers(fx.dir.path()).is_empty());
}

#[test]
fn permission_denied_is_typed() {
    let fx = Fixture::new();
    let plan = fx.plan(fx.target().join("x"), b"data", 4);
    std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(fx.target(), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let err = as_unprivileged(|| assemble(&plan, &fx.cache, &force())).expect_err("denied");
    assert!(
        matches!(err, AssembleError::PermissionDenied { .. }),
        "{err}"
    );
    std::fs::set_permissions(fx.target(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(!fx.target().join("x").exists());
    assert!(leftovers(fx.dir.path()).is_empty());
}

#[test]
fn disk_full_is_typed_and_cleaned_up() {
    let fx = Fixture::new();
    let small = fx.dir.path().join("small");
    std::fs::create_dir(&small).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "note: skipping the disk-full case, cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("note: skipping the disk-full case, cannot run mount: {e}");
            return;
        }
    }
    let dest = small.join("big");
    let plan = fx.plan(dest.clone(), &bytes(3 << 20, 9), 1 << 20);
    let result = assemble(&plan, &fx.cache, &force());
    let leftover = leftovers(&small);
    let exists = dest.exists();
    let _ = std::process::Command::new("umount").arg(&small).status();
    let err = result.expect_err("disk full");
    assert!(matches!(err, AssembleError::DiskFull { .. }), "{err}");
    assert!(leftover.is_empty(), "{leftover:?}");
    assert!(!exists);
}

#[test]
fn names_near_the_length_limit_still_assemble() {
    let fx = Fixture::new();
    let dest = fx.target().join("n".repeat(250));
    let plan = fx.plan(dest.clone(), b"long", 2);
    assemble(&plan, &fx.cache, &strict()).expect("assemble");
    assert_eq!(std::fs::read(&dest).expect("read"), b"long");
    assert!(leftovers(fx.dir.path()).is_empty());
}

#[test]
fn directory_entries_become_directories_with_their_mode() {
    // Pins empty-directory entries: created (parents in force mode) with the planned mode, kept
    // (mode set) if already a directory, refused over a file.
    let f = Fixture::new();
    let dest = f.target().join("new/empty");
    let mut plan = f.plan(dest.clone(), b"", 1);
    plan.mode = shoal_types::files::MODE_DIR | 0o750;
    assemble(&plan, &f.cache, &force()).expect("mkdir");
    let meta = std::fs::metadata(&dest).expect("meta");
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o750);
    plan.mode = shoal_types::files::MODE_DIR | 0o700;
    assemble(&plan, &f.cache, &strict()).expect("exists already");
    assert_eq!(
        std::fs::metadata(&dest).expect("meta").mode() & 0o7777,
        0o700
    );
    let file = f.target().join("file");
    std::fs::write(&file, b"x").expect("write");
    plan.dest = file.clone();
    assert!(matches!(
        assemble(&plan, &f.cache, &force()),
        Err(AssembleError::ParentNotDir { .. })
    ));
    assert_eq!(std::fs::read(&file).expect("kept"), b"x");
    plan.dest = f.target().join("missing/empty");
    assert!(matches!(
        assemble(&plan, &f.cache, &strict()),
        Err(AssembleError::NoTargetDir { .. })
    ));
}
