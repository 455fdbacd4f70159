// Pins the static checks of file transfer requests: which paths, macros, modes and limits
// pass, and the error code of each refusal.

use super::*;

#[test]
fn target_dirs() {
    for ok in [
        "/tmp",
        "/data/[date:%Y-%m-%d]/[source_ip]",
        "/data/[date:%Y%m%d_%H%M%S]",
        "/data/[unknown]/x",
        "/data/[date:%Y",
        "/a/./b",
    ] {
        assert!(check_target_dir(ok).is_ok(), "{ok}");
    }
    for bad in [
        "tmp",
        "",
        "/data/../etc",
        "/data/[date:]",
        "/data/[date:%Q]",
        "/data/[date:%Y/%m]",
        "/data/[date:%]",
        "/data/[date:%F]",
    ] {
        let e = check_target_dir(bad).expect_err(bad);
        assert_eq!(e.code, ErrorCode::InvalidPath, "{bad}");
    }
}

#[test]
fn source_paths_and_names() {
    for ok in [
        "/a b/c (1).txt",
        "/var/log/",
        "/var/*.log",
        "REGEX:/var/log/app-\\d+\\.log",
        "REGEX:^/x",
        "/tmp/REGEX:[a-z]*",
        "/data/..hidden",
        "/data/a..b/",
        "REGEX:/data/a\\.\\.b",
    ] {
        assert!(check_source_path(ok).is_ok(), "{ok}");
    }
    for bad in [
        "a.txt",
        "REGEX:.*",
        "",
        "/a\0b",
        "/data/../etc/shadow",
        "/data/..",
        "/data/x/../../etc/",
        "REGEX:/data/../etc/.*",
    ] {
        let e = check_source_path(bad).expect_err(bad);
        assert_eq!(e.code, ErrorCode::InvalidPath, "{bad}");
        assert!(e.message.contains("source path"), "{}", e.message);
    }
    assert!(check_file_name("app.tar.gz").is_ok());
    for bad in ["", ".", "..", "a/b", "a\0", &"x".repeat(256)] {
        assert_eq!(
            check_file_name(bad).expect_err(bad).code,
            ErrorCode::InvalidPath
        );
    }
}

#[test]
fn modes_limits_and_inline() {
    use serde_json::json;
    assert_eq!(dir_mode(None).ok(), Some(DirMode::Force));
    assert_eq!(dir_mode(Some(&json!("strict"))).ok(), Some(DirMode::Strict));
    assert_eq!(dir_mode(Some(&json!(1))).ok(), Some(DirMode::Strict));
    assert_eq!(dir_mode(Some(&json!(2))).ok(), Some(DirMode::Force));
    assert!(dir_mode(Some(&json!(3))).is_err());
    assert!(dir_mode(Some(&json!("safe"))).is_err());
    assert_eq!(speed_limit(Some(0), "x").ok(), Some(None));
    assert_eq!(speed_limit(Some(10_240), "x").ok(), Some(Some(10_240)));
    assert!(speed_limit(Some(10_241), "x").is_err());
    assert_eq!(decode_inline("aGk=\n").ok(), Some(b"hi".to_vec()));
    assert_eq!(
        decode_inline("not base64!").expect_err("junk").code,
        ErrorCode::InvalidArgument
    );
    let big =
        base64::engine::general_purpose::STANDARD
            .encode(vec![0u8; file_limits::INLINE_MAX_BYTES + 1]);
    assert_eq!(
        decode_inline(&big).expect_err("big").code,
        ErrorCode::PayloadTooLarge
    );
}

#[test]
fn file_modes() {
    // Pins `file_mode` of uploads and inline files: octal, at most 7777, default 0644.
    assert_eq!(file_mode(None).ok(), Some(0o644));
    assert_eq!(file_mode(Some("0755")).ok(), Some(0o755));
    assert_eq!(file_mode(Some("600")).ok(), Some(0o600));
    assert_eq!(file_mode(Some("4750")).ok(), Some(0o4750));
    for bad in ["", "rwx", "999", "17777", "0x1ff", "-1"] {
        let e = file_mode(Some(bad)).expect_err(bad);
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
        assert!(e.message.contains("file_mode"), "{}", e.message);
    }
}
