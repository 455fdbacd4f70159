// Pins the meaning of source path specs: literal names with shell and regex metacharacters
// (the literal wins over a glob reading), recursive directories keeping their own name,
// globs in any component, REGEX: in both forms, symlink handling (no escape, no loop), and
// the typed errors for relative, empty, missing, wrong-kind and unreadable paths.
use super::*;
use crate::files::testutil::as_unprivileged;
use std::fs;

const ODD_NAMES: &[&str] = &[
    "my file.txt",
    "$HOME.txt",
    "a(1).txt",
    "b[1].txt",
    "star*.txt",
    "c+d.txt",
    " leading space.txt",
    "q?.txt",
];

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ODD_NAMES {
        fs::write(dir.path().join(name), name.as_bytes()).expect("write");
    }
    // Decoys a glob reading of the odd names would match.
    for name in ["b1.txt", "star-x.txt", "qx.txt", ".hidden.txt"] {
        fs::write(dir.path().join(name), b"decoy").expect("write");
    }
    dir
}

fn spec(dir: &Path, tail: &str) -> String {
    format!("{}/{tail}", dir.display())
}

/// `(rel, size)` of the expansion, for compact assertions.
fn rels(spec: &str) -> Vec<String> {
    let files = expand(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut rels: Vec<String> = files.iter().map(|f| f.rel.display().to_string()).collect();
    rels.sort();
    rels
}

#[test]
fn odd_names_are_taken_literally() {
    let dir = tree();
    for name in ODD_NAMES {
        let files = expand(&spec(dir.path(), name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        assert_eq!(files[0].rel, Path::new(name));
        assert_eq!(files[0].path, dir.path().join(name));
        assert_eq!(files[0].size, name.len() as u64);
    }
}

#[test]
fn literal_metadata_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.sh");
    fs::write(&path, b"#!/bin/sh\n").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o4755)).expect("chmod");
    let files = expand(&path.display().to_string()).expect("expand");
    assert_eq!((files[0].size, files[0].mode), (10, 0o4755));
}

#[test]
fn globs_match_when_nothing_has_the_literal_name() {
    let dir = tree();
    // `*` matches every visible .txt, odd names included, never the hidden file.
    let all = rels(&spec(dir.path(), "*.txt"));
    assert_eq!(all.len(), ODD_NAMES.len() + 3, "{all:?}");
    assert!(!all.iter().any(|r| r.starts_with('.')));
    assert_eq!(rels(&spec(dir.path(), "b?.txt")), ["b1.txt"]);
    assert_eq!(rels(&spec(dir.path(), "star[*].txt")), ["star*.txt"]);
    assert_eq!(rels(&spec(dir.path(), "b[[]1].txt")), ["b[1].txt"]);
    assert_eq!(rels(&spec(dir.path(), "[ ]*")), [" leading space.txt"]);
    assert_eq!(rels(&spec(dir.path(), ".h*")), [".hidden.txt"]);
    // An invalid pattern component is literal: nothing has that name.
    assert!(matches!(
        expand(&spec(dir.path(), "x[.txt")),
        Err(PathError::NotFound { .. })
    ));
}

#[test]
fn globs_in_middle_components_keep_the_layout_under_the_base() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["x", "y", "z"] {
        fs::create_dir_all(dir.path().join(sub).join("conf")).expect("mkdir");
    }
    fs::write(dir.path().join("x/conf/app1.ini"), b"1").expect("write");
    fs::write(dir.path().join("y/conf/app2.ini"), b"2").expect("write");
    fs::write(dir.path().join("y/conf/app10.ini"), b"10").expect("write");
    fs::write(dir.path().join("z/conf/other.ini"), b"o").expect("write");
    fs::write(dir.path().join("file"), b"not a dir").expect("write");
    assert_eq!(
        rels(&spec(dir.path(), "*/conf/app?.ini")),
        ["x/conf/app1.ini", "y/conf/app2.ini"]
    );
    // A glob with a trailing slash matches directories, each sent recursively.
    assert_eq!(
        rels(&spec(dir.path(), "[xy]/")),
        ["x/conf/app1.ini", "y/conf/app10.ini", "y/conf/app2.ini"]
    );
}

#[test]
fn directories_are_recursive_and_keep_their_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir_all(logs.join("sub/deeper")).expect("mkdir");
    fs::write(logs.join("a.txt"), b"a").expect("write");
    fs::write(logs.join("sub/b (2).txt"), b"b").expect("write");
    fs::write(logs.join("sub/deeper/c"), b"c").expect("write");
    fs::create_dir(logs.join("empty")).expect("mkdir");
    fs::set_permissions(logs.join("empty"), fs::Permissions::from_mode(0o750)).expect("chmod");
    // Empty directories are entries too (with their mode and the directory type bits), so
    // the targets recreate them.
    assert_eq!(
        rels(&format!("{}/", logs.display())),
        [
            "logs/a.txt",
            "logs/empty",
            "logs/sub/b (2).txt",
            "logs/sub/deeper/c"
        ]
    );
    let found = expand(&format!("{}/", logs.display())).expect("expand");
    let empty = found
        .iter()
        .find(|f| f.rel == Path::new("logs/empty"))
        .expect("empty dir");
    assert_eq!((empty.mode, empty.size), (MODE_DIR | 0o750, 0));
    assert_eq!(
        rels(&format!("{}/", logs.join("empty").display())),
        ["empty"],
        "an empty directory sent whole is itself an entry"
    );
    // Regex walks take files only.
    assert_eq!(
        rels(&format!(
            "REGEX:{}/.*",
            regex::escape(&logs.display().to_string())
        )),
        ["a.txt", "sub/b (2).txt", "sub/deeper/c"]
    );
    assert!(matches!(
        expand(&logs.display().to_string()),
        Err(PathError::IsDir { .. })
    ));
    assert!(matches!(
        expand(&format!("{}/a.txt/", logs.display())),
        Err(PathError::NotDir { .. })
    ));
}

#[test]
fn symlinks_never_lead_out_of_the_tree_nor_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    let tree = dir.path().join("tree");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::create_dir_all(tree.join("sub")).expect("mkdir");
    fs::write(outside.join("secret"), b"s").expect("write");
    fs::write(tree.join("real"), b"r").expect("write");
    std::os::unix::fs::symlink(outside.join("secret"), tree.join("link-to-file")).expect("ln");
    std::os::unix::fs::symlink(&outside, tree.join("link-to-dir")).expect("ln");
    std::os::unix::fs::symlink(&tree, tree.join("sub/loop")).expect("ln");
    std::os::unix::fs::symlink(tree.join("self"), tree.join("self")).expect("ln");
    std::os::unix::fs::symlink(tree.join("nowhere"), tree.join("broken")).expect("ln");
    // `sub` holds only a skipped link: it is sent as an empty directory.
    assert_eq!(
        rels(&format!("{}/", tree.display())),
        ["tree/link-to-file", "tree/real", "tree/sub"]
    );
    assert_eq!(rels(&spec(&tree, "*")), ["link-to-file", "real"]);
    // The temp dir's own name has regex metacharacters (`.tmpXXXX`): escape it, or the walk
    // would start at /tmp.
    let tree_re = regex::escape(&tree.display().to_string());
    let files = expand(&format!("REGEX:{tree_re}/.*")).expect("regex");
    assert_eq!(files.len(), 2, "{files:?}");
    // A symlinked directory the spec names itself is followed.
    assert_eq!(rels(&spec(&tree, "link-to-dir/")), ["link-to-dir/secret"]);
}

#[test]
fn regex_specs_match_full_paths_anchored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("log.d");
    fs::create_dir_all(logs.join("old")).expect("mkdir");
    for name in [
        "app-1.log",
        "app-22.log",
        "app-x.log",
        "app-3.log.gz",
        "old/app-4.log",
    ] {
        fs::write(logs.join(name), b"l").expect("write");
    }
    fs::write(logs.join("$HOME.txt"), b"h").expect("write");
    fs::write(logs.join("a(1).txt"), b"a").expect("write");
    let root = regex::escape(&logs.display().to_string());
    assert_eq!(
        rels(&format!(r"REGEX:{root}/app-\d+\.log")),
        ["app-1.log", "app-22.log"]
    );
    assert_eq!(
        rels(&format!(r"REGEX:^{root}/(old/)?app-\d+\.log$")),
        ["app-1.log", "app-22.log", "old/app-4.log"]
    );
    assert_eq!(
        rels(&format!(r"REGEX:{root}/app-1\.log|{root}/old/app-4\.log")),
        ["app-1.log", "old/app-4.log"]
    );
    assert_eq!(rels(&format!(r"REGEX:{root}/\$HOME\.txt")), ["$HOME.txt"]);
    assert_eq!(rels(&format!(r"REGEX:{root}/a\(1\)\.txt")), ["a(1).txt"]);
    // bk-job's form: a literal directory, then the pattern.
    assert_eq!(
        rels(&format!(r"{}/REGEX:app-[0-9]\.log", logs.display())),
        ["app-1.log"]
    );
    assert!(matches!(
        expand(&format!(r"REGEX:{root}/app-(\d+\.log")),
        Err(PathError::BadRegex { .. })
    ));
    assert!(matches!(
        expand(r"REGEX:app-\d+\.log"),
        Err(PathError::Relative { .. })
    ));
    assert!(matches!(
        expand(&format!(r"REGEX:{root}/nothing-\d+")),
        Err(PathError::NotFound { .. })
    ));
}

#[test]
fn regex_walks_start_at_the_shared_literal_prefix() {
    for (pattern, base) in [
        (r"/var/log/app-\d+\.log", "/var/log/"),
        (r"/var/log\.d/x", "/var/log.d/"),
        (r"/var/log.d/x", "/var/"),
        (r"^/srv/a/.*", "/srv/a/"),
        (r"/srv/logs?/x", "/srv/"),
        (r"/srv/a/?x", "/srv/"),
        (r"/srv/\d/x", "/srv/"),
        (r"/srv/a/x|/srv/b/y", "/srv/"),
        (r"/srv/(a|/b)/y", "/srv/"),
        (r"/srv/q/[|]/y|/srv/q/z", "/srv/q/"),
        (r"/a/x|b", "/"),
        (r"/", "/"),
    ] {
        assert_eq!(walk_base(pattern), base, "{pattern}");
    }
}

#[test]
fn bad_specs_are_typed_errors() {
    assert!(matches!(expand(""), Err(PathError::Empty)));
    assert!(matches!(
        expand("var/log/x"),
        Err(PathError::Relative { .. })
    ));
    assert!(matches!(
        expand(" /var/log/x"),
        Err(PathError::Relative { .. })
    ));
    assert!(matches!(expand("/a\0b"), Err(PathError::Nul { .. })));
    assert!(matches!(
        expand("/nonexistent-shoal/file"),
        Err(PathError::NotFound { .. })
    ));
    assert!(matches!(
        expand("/nonexistent-shoal/*.log"),
        Err(PathError::NotFound { .. })
    ));
    assert!(matches!(
        expand("/dev/null"),
        Err(PathError::NotRegular { .. })
    ));
}

#[test]
fn unreadable_files_and_directories_are_permission_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = dir.path().join("secret.txt");
    fs::write(&secret, b"s").expect("write");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
    let closed = dir.path().join("closed");
    fs::create_dir(&closed).expect("mkdir");
    fs::write(closed.join("f"), b"f").expect("write");
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).expect("chmod");
    let (file, directory, glob) = as_unprivileged(|| {
        (
            expand(&secret.display().to_string()),
            expand(&format!("{}/", closed.display())),
            expand(&spec(dir.path(), "*.txt")),
        )
    });
    assert!(matches!(file, Err(PathError::PermissionDenied { path }) if path == secret));
    assert!(matches!(directory, Err(PathError::PermissionDenied { path }) if path == closed));
    assert!(matches!(glob, Err(PathError::PermissionDenied { .. })));
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o755)).expect("chmod");
}
