// Pins the planner: calendar conversion, the date and source-IP macros, the three duplicate
// modes, "later source wins" for one destination, upload naming ("server"), source errors
// carried per source, and refusal of manifest names that escape the target directory.
use super::*;
use shoal_types::files::ChunkRef;

// 2024-02-29 13:04:05 UTC
const LEAP_DAY_MS: i64 = 1_709_211_845_000;

fn manifest(path: &str, rel: &str, byte: u8) -> FileManifest {
    FileManifest {
        path: path.into(),
        rel: rel.into(),
        size: 3,
        mode: 0o644,
        chunks: vec![ChunkRef {
            hash: [byte; 32],
            size: 3,
        }],
    }
}

fn host(host_id: HostId, ip: &str, files: Vec<FileManifest>) -> Scanned {
    Scanned {
        origin: Origin::Host {
            host_id,
            ip: ip.into(),
        },
        files,
        errors: vec![],
    }
}

fn dests(p: &Plan) -> Vec<(&str, HostId)> {
    p.files
        .iter()
        .map(|f| (f.dest.as_str(), f.source_host_id))
        .collect()
}

#[test]
fn calendar_and_strftime() {
    // Pins the UTC calendar (leap day, epoch, day of year) and the supported specifiers.
    let t = UtcTime::from_unix_ms(LEAP_DAY_MS);
    assert_eq!(
        (t.year, t.month, t.day, t.hour, t.minute, t.second),
        (2024, 2, 29, 13, 4, 5)
    );
    assert_eq!(t.yday, 60);
    let e = UtcTime::from_unix_ms(0);
    assert_eq!((e.year, e.month, e.day, e.yday), (1970, 1, 1, 1));
    let end = UtcTime::from_unix_ms(1_735_689_599_000); // 2024-12-31 23:59:59
    assert_eq!(
        (end.year, end.month, end.day, end.yday),
        (2024, 12, 31, 366)
    );
    assert_eq!(
        strftime("%Y%m%d-%H%M%S %y %j %% %q", &t),
        "20240229-130405 24 060 % %q"
    );
}

#[test]
fn macros_expand_per_source() {
    // Pins [date:FMT] and [source_ip] expansion; unknown brackets stay literal.
    let t = UtcTime::from_unix_ms(LEAP_DAY_MS);
    assert_eq!(
        expand_target_dir("/d/[date:%Y-%m]/[source_ip]/[x]/[date:oops", &t, "10.0.0.1"),
        "/d/2024-02/10.0.0.1/[x]/[date:oops"
    );
}

#[test]
fn duplicate_modes_name_destinations() {
    // Pins the three duplicate modes' layouts, with a date macro and an upload source.
    let scanned = vec![
        host(1, "10.0.0.1", vec![manifest("/src/a", "a", 1)]),
        host(2, "10.0.0.2", vec![manifest("/src/a", "a", 2)]),
        Scanned {
            origin: Origin::Upload,
            files: vec![manifest("", "up.txt", 3)],
            errors: vec![],
        },
    ];
    let over = plan(
        "/t/[date:%Y]/",
        DuplicateMode::Overwrite,
        LEAP_DAY_MS,
        &scanned,
    );
    assert_eq!(dests(&over), vec![("/t/2024/a", 2), ("/t/2024/up.txt", 0)]);
    let by_ip = plan("/t", DuplicateMode::BySourceIp, LEAP_DAY_MS, &scanned);
    assert_eq!(
        dests(&by_ip),
        vec![
            ("/t/10.0.0.1/a", 1),
            ("/t/10.0.0.2/a", 2),
            ("/t/server/up.txt", 0)
        ]
    );
    let by_date = plan("/", DuplicateMode::ByDateAndSourceIp, LEAP_DAY_MS, &scanned);
    assert_eq!(
        dests(&by_date),
        vec![
            ("/2024-02-29/10.0.0.1/a", 1),
            ("/2024-02-29/10.0.0.2/a", 2),
            ("/2024-02-29/server/up.txt", 0)
        ]
    );
    assert_eq!(by_date.files[2].source_path, "up.txt");
    assert_eq!(by_date.files[0].source_path, "/src/a");
}

#[test]
fn later_source_wins_and_errors_are_kept() {
    // Pins overwrite order (later source, later manifest entry wins, position of the winner),
    // source errors per source host, and refusal of escaping names.
    let mut first = host(
        1,
        "10.0.0.1",
        vec![manifest("/x/a", "a", 1), manifest("/x/b", "b", 1)],
    );
    first.errors.push(SourceError {
        path: "/missing".into(),
        code: FileErrorCode::SourceMissing,
        message: "no such file".into(),
    });
    let second = host(
        2,
        "10.0.0.2",
        vec![
            manifest("/y/a", "a", 2),
            manifest("/y/evil", "../etc/passwd", 2),
        ],
    );
    let p = plan(
        "/t/[source_ip]",
        DuplicateMode::Overwrite,
        0,
        &[first, second],
    );
    // [source_ip] in the directory keeps the two `a`s apart.
    assert_eq!(
        dests(&p),
        vec![
            ("/t/10.0.0.1/a", 1),
            ("/t/10.0.0.1/b", 1),
            ("/t/10.0.0.2/a", 2)
        ]
    );
    let p2 = plan(
        "/t",
        DuplicateMode::Overwrite,
        0,
        &[
            host(
                1,
                "i1",
                vec![manifest("/x/a", "a", 1), manifest("/x/b", "b", 1)],
            ),
            host(2, "i2", vec![manifest("/y/a", "a", 2)]),
        ],
    );
    assert_eq!(dests(&p2), vec![("/t/b", 1), ("/t/a", 2)]);
    assert_eq!(p.errors.len(), 2);
    assert_eq!(p.errors[0].source_host_id, Some(1));
    assert_eq!(p.errors[0].code, FileErrorCode::SourceMissing);
    assert_eq!(p.errors[1].path, "/y/evil");
    assert!(p.errors[1].message.contains("unsafe"));
}

#[test]
fn failed_sources_name_their_destination() {
    // Pins the destination shown on a failed row (never empty): the file's destination for a
    // plain path, the directory for a directory, wildcard or regex source.
    for (path, dest) in [
        ("/src/missing.txt", "/t/missing.txt"),
        ("/src/dir/", "/t/dir/"),
        ("/src/*.log", "/t/"),
        ("REGEX:/src/a\\d+", "/t/"),
        ("/src/REGEX:a.*", "/t/"),
        ("up.bin", "/t/up.bin"),
    ] {
        assert_eq!(error_dest("/t/", path), dest, "{path}");
    }
    let mut src = host(1, "10.0.0.1", vec![]);
    src.errors.push(SourceError {
        path: "/src/missing.txt".into(),
        code: FileErrorCode::SourceMissing,
        message: "no such file or directory: /src/missing.txt".into(),
    });
    let p = plan("/t", DuplicateMode::BySourceIp, LEAP_DAY_MS, &[src]);
    assert_eq!(p.errors[0].dest, "/t/10.0.0.1/missing.txt");
}

#[test]
fn a_partial_plan_is_incomplete() {
    // Pins the error of a target that gets some files but not all: none without source
    // errors; 203's code as soon as one source is missing, else the first error's; the
    // message names the sources (a bounded number of them).
    let err = |path: &str, code: FileErrorCode, message: &str| PlanError {
        source_host_id: Some(1),
        path: path.into(),
        dest: String::new(),
        code,
        message: message.into(),
    };
    assert_eq!(incomplete(&[]), None);
    let denied = err(
        "/a",
        FileErrorCode::PermissionDenied,
        "permission denied: /a",
    );
    let missing = err(
        "/src/missing.txt",
        FileErrorCode::SourceMissing,
        "no such file or directory: /src/missing.txt",
    );
    let gone = err("/c", FileErrorCode::Unavailable, "source agent abnormal");
    let one = incomplete(std::slice::from_ref(&denied)).expect("incomplete");
    assert_eq!(one.code, FileErrorCode::PermissionDenied);
    let all = incomplete(&[
        denied.clone(),
        missing.clone(),
        gone.clone(),
        denied.clone(),
        denied,
    ])
    .expect("incomplete");
    assert_eq!(all.code, FileErrorCode::SourceMissing);
    assert_eq!(
        all.code.host_status(),
        shoal_types::HostTaskStatus::SourceNotFound
    );
    assert!(all.message.contains("/src/missing.txt"), "{}", all.message);
    assert!(
        all.message.contains("/c: source agent abnormal"),
        "{}",
        all.message
    );
    assert!(all.message.ends_with("and 2 more"), "{}", all.message);
}
