//! End to end: `shoal push` and `shoal gather` as a user types them. Pins that bad input is
//! refused before anything is sent (exit 2, nothing on stdout, a message naming the mistake),
//! that `--help` documents the host grammar and the MB/s unit, and, against a real server and
//! two real agents, that a pushed local file and a file from a host arrive at every target
//! with a per-target summary and exit 0.
//!
//! The agent binary is expected next to `shoal` (`cargo build --workspace --bins`).

mod support;

use support::{Server, shoal_alone};

#[test]
fn bad_transfer_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&[&str], &str)] = &[
        (
            &["push", "web-1:/data/x", "--to", "1", "--dir", "/d"],
            "`web-1` is not a host",
        ),
        (
            &["push", "./a", "--to", "1", "--dir", "opt/app"],
            "is not absolute",
        ),
        (
            &["push", "./a", "--to", "host-a", "--dir", "/d"],
            "is not a host",
        ),
        (&["push", "./a", "--dir", "/d"], "--to"),
        (
            &[
                "push",
                "./a",
                "--to",
                "1",
                "--dir",
                "/d",
                "--duplicate",
                "x",
            ],
            "overwrite, by-source-ip",
        ),
        (
            &[
                "push",
                "./a",
                "--to",
                "1",
                "--dir",
                "/d",
                "--download-limit",
                "0",
            ],
            "download-limit",
        ),
        (
            &[
                "push",
                "./a",
                "--to",
                "label=a=1",
                "--to",
                "label=b=2",
                "--dir",
                "/d",
            ],
            "at most one label=",
        ),
        (
            &[
                "gather",
                "--from",
                "1",
                "--path",
                "logs/app.log",
                "--to",
                "2",
                "--dir",
                "/d",
            ],
            "not an absolute path",
        ),
        (
            &["gather", "--from", "1", "--to", "2", "--dir", "/d"],
            "--path",
        ),
    ];
    for (args, needle) in cases {
        let out = shoal_alone(args, dir.path()).expect_code(2);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    // A local file that is not there, or a directory: found before the server is asked.
    let missing = dir.path().join("nope.tar.gz");
    let out = shoal_alone(
        &[
            "push",
            missing.to_str().expect("utf-8"),
            "--to",
            "1",
            "--dir",
            "/d",
        ],
        dir.path(),
    )
    .expect_code(2);
    assert!(
        out.stderr.contains("cannot read the local file"),
        "{}",
        out.stderr
    );
    let out = shoal_alone(
        &[
            "push",
            dir.path().to_str().expect("utf-8"),
            "--to",
            "1",
            "--dir",
            "/d",
        ],
        dir.path(),
    )
    .expect_code(2);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
    // With valid input and no server: exit 3, as every command.
    let file = dir.path().join("f.txt");
    std::fs::write(&file, "x").expect("write");
    shoal_alone(
        &[
            "push",
            file.to_str().expect("utf-8"),
            "--to",
            "1",
            "--dir",
            "/d",
        ],
        dir.path(),
    )
    .expect_code(3);
}

#[test]
fn help_documents_hosts_and_units() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in ["push", "gather"] {
        let out = shoal_alone(&[cmd, "--help"], dir.path()).expect_code(0);
        let text = out.text();
        for needle in [
            "label=role=web",
            "id=3,4",
            "group=7",
            "MB/s",
            "REGEX:",
            "Examples:",
        ] {
            assert!(
                text.contains(needle),
                "{cmd} --help lacks {needle}:\n{text}"
            );
        }
    }
}

#[test]
fn push_a_local_file_and_a_host_file_to_two_agents() {
    let mut server = Server::start();
    let hosts = server.start_agents(2);
    let first = hosts[0]["id"].as_i64().expect("host id").to_string();
    let scratch = server.dir.path().to_path_buf();

    let local = scratch.join("local payload.bin");
    let content: Vec<u8> = (0..5 * 1024 * 1024 + 3)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    std::fs::write(&local, &content).expect("local file");
    let on_host = scratch.join("on-host.conf");
    std::fs::write(&on_host, "key = value\n").expect("host file");
    let dest = scratch.join("dest");

    let src = format!("id={first}:{}", on_host.display());
    let out = server
        .shoal(&[
            "push",
            local.to_str().expect("utf-8"),
            &src,
            "--to",
            "label=e2e=true",
            "--dir",
            dest.to_str().expect("utf-8"),
        ])
        .expect_code(0);
    let text = out.text();
    assert!(text.starts_with("HOST  IP"), "{text}");
    assert_eq!(text.matches("success").count(), 2, "{text}");
    assert!(out.stderr.contains("uploaded "), "{}", out.stderr);
    // Both agents run on this machine: they write the same directory.
    assert_eq!(
        std::fs::read(dest.join("local payload.bin")).expect("pushed"),
        content
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("on-host.conf")).expect("pushed"),
        "key = value\n"
    );

    // A source that does not exist: exit 1, and the summary says why.
    let missing = format!("id={first}:/nonexistent/shoal-e2e");
    let out = server
        .shoal(&[
            "push",
            &missing,
            "--to",
            "label=e2e=true",
            "--dir",
            dest.to_str().expect("utf-8"),
        ])
        .expect_code(1);
    assert!(!out.text().contains(" success "), "{}", out.text());
}
