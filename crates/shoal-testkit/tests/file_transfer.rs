//! Pins file distribution end to end on real agents in network namespaces: many-to-many with
//! each duplicate-handling mode, many-to-one, directories, wildcards, regex and names with
//! spaces and regex metacharacters taken literally, strict versus force, uploads and inline
//! files through the API, and bad input that only the hosts can detect (missing source, target
//! path is a file). Contents are compared by SHA-256 on the hosts themselves. Runs on SQLite
//! and on PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::Api;
use shoal_testkit::files_api::{host_source, transfer};
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::api::{FileSourceRequest, FileTransferRequest};
use shoal_types::files::DuplicateMode;
use shoal_types::{HostId, HostTaskStatus};
use std::time::Duration;

const ONLINE: Duration = Duration::from_secs(30);
const DONE: Duration = Duration::from_secs(60);
const SPECIAL: &str = "name with spaces [x] (y) $z *.txt";

/// Runs a transfer to its end; returns the step id and the per-host statuses.
async fn run(api: &Api, req: &FileTransferRequest) -> (i64, Vec<(HostId, HostTaskStatus)>) {
    let resp = api.transfer(req).await.unwrap();
    api.wait_job(resp.job_instance_id, DONE).await.unwrap();
    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    (
        resp.step_instance_id,
        rows.iter().map(|r| (r.host_id, r.status)).collect(),
    )
}

fn all_success(statuses: &[(HostId, HostTaskStatus)]) -> bool {
    statuses.iter().all(|(_, s)| *s == HostTaskStatus::Success)
}

fn sha(sb: &Sandbox, i: usize, path: &str) -> String {
    let out = sb
        .host_sh(i, &format!("sha256sum '{path}' | cut -d' ' -f1"))
        .unwrap();
    out.trim().to_owned()
}

/// Every regular file under `dir` on host `i`, relative, sorted.
fn tree(sb: &Sandbox, i: usize, dir: &str) -> Vec<String> {
    let out = sb
        .host_sh(i, &format!("cd '{dir}' && find . -type f | sort"))
        .unwrap();
    out.lines()
        .map(|l| l.trim_start_matches("./").to_owned())
        .collect()
}

/// Source files on hosts 0 and 1: the same names, different contents.
fn make_sources(sb: &Sandbox) {
    for i in 0..2 {
        let script = format!(
            "set -e; mkdir -p /tmp/src/dir/sub /tmp/src/logs
             echo 'conf of host {i}' > /tmp/src/app.conf
             head -c 9000000 /dev/urandom > /tmp/src/big.bin
             echo a > /tmp/src/dir/a.txt; echo b > /tmp/src/dir/sub/b.txt
             for n in 1 2 3; do echo $n > /tmp/src/logs/app-$n.log; done
             echo other > /tmp/src/logs/other.txt
             echo special > '/tmp/src/{SPECIAL}'
             echo decoy > '/tmp/src/name with spaces x (y) $z a.txt'
             chmod 640 /tmp/src/app.conf"
        );
        sb.host_sh(i, &script).unwrap();
    }
}

async fn many_to_many_and_modes(database_url: Option<String>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions {
        database_url,
        ..SandboxOptions::with_agents(4)
    })
    .await
    .unwrap();
    sb.wait_hosts_online(4, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    let api = sb.api();
    make_sources(&sb);
    let (ip0, ip1) = (sb.agent_ip(0).to_string(), sb.agent_ip(1).to_string());
    let targets = &ids[2..4];

    // Overwrite: two sources with the same name, the later one wins; mode bits kept.
    let req = transfer(
        vec![
            host_source(&ids[0..1], &["/tmp/src/app.conf", "/tmp/src/big.bin"]),
            host_source(&ids[1..2], &["/tmp/src/app.conf"]),
        ],
        targets,
        "/tmp/dst/ovr",
        60,
    );
    let (step, st) = run(&api, &req).await;
    assert!(all_success(&st), "{st:?}");
    for t in 2..4 {
        assert_eq!(tree(&sb, t, "/tmp/dst/ovr"), ["app.conf", "big.bin"]);
        assert_eq!(
            sb.host_sh(t, "cat /tmp/dst/ovr/app.conf").unwrap(),
            "conf of host 1\n"
        );
        assert_eq!(
            sb.host_sh(t, "stat -c %a /tmp/dst/ovr/app.conf")
                .unwrap()
                .trim(),
            "640"
        );
        assert_eq!(
            sha(&sb, t, "/tmp/dst/ovr/big.bin"),
            sha(&sb, 0, "/tmp/src/big.bin")
        );
    }
    let rows = api.step_files(step, Some("download")).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status.code() == 4 && r.bytes_done == r.size),
        "{rows:?}"
    );
    // The overwritten app.conf of host 0 is planned out: a row per target per written file.
    assert_eq!(rows.len(), 2 * 2, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.key.source_path.ends_with("big.bin") && r.speed > 0),
        "the final report carries the average speed: {rows:?}"
    );

    // By source IP, and by date and source IP: nothing is overwritten.
    for (mode, dir) in [
        (DuplicateMode::BySourceIp, "/tmp/dst/byip"),
        (DuplicateMode::ByDateAndSourceIp, "/tmp/dst/bydate"),
    ] {
        let mut req = transfer(
            vec![host_source(&ids[0..2], &["/tmp/src/app.conf"])],
            targets,
            dir,
            60,
        );
        req.duplicate_handling = Some(mode);
        let (_, st) = run(&api, &req).await;
        assert!(all_success(&st), "{mode:?}: {st:?}");
        for t in 2..4 {
            let files = tree(&sb, t, dir);
            assert_eq!(files.len(), 2, "{mode:?}: {files:?}");
            for (ip, host) in [(&ip0, 0), (&ip1, 1)] {
                let f = files
                    .iter()
                    .find(|f| f.ends_with(&format!("{ip}/app.conf")))
                    .unwrap_or_else(|| panic!("{mode:?}: no file from {ip} in {files:?}"));
                if mode == DuplicateMode::ByDateAndSourceIp {
                    let date = f.split('/').next().unwrap();
                    assert!(
                        date.len() >= 8 && date.chars().all(|c| c.is_ascii_digit() || c == '-'),
                        "{f}"
                    );
                }
                assert_eq!(
                    sb.host_sh(t, &format!("cat '{dir}/{f}'")).unwrap(),
                    format!("conf of host {host}\n")
                );
            }
        }
    }

    // Directories (recursive, layout kept), wildcards, regex, and a literal special name.
    let req = transfer(
        vec![host_source(
            &ids[0..1],
            &[
                "/tmp/src/dir/",
                "/tmp/src/logs/app-*.log",
                "REGEX:/tmp/src/logs/oth.r\\.txt",
                &format!("/tmp/src/{SPECIAL}"),
            ],
        )],
        targets,
        "/tmp/dst/kinds/[source_ip]",
        60,
    );
    let (_, st) = run(&api, &req).await;
    assert!(all_success(&st), "{st:?}");
    for t in 2..4 {
        let files = tree(&sb, t, &format!("/tmp/dst/kinds/{ip0}"));
        assert_eq!(
            files,
            [
                "app-1.log",
                "app-2.log",
                "app-3.log",
                "dir/a.txt",
                "dir/sub/b.txt",
                SPECIAL,
                "other.txt",
            ],
            "host {t}"
        );
    }

    // Many-to-one: gather from three hosts into one, grouped by source IP.
    let mut req = transfer(
        vec![host_source(&ids[0..3], &["/tmp/src/app.conf"])],
        &ids[3..4],
        "/tmp/gathered",
        60,
    );
    sb.host_sh(
        2,
        "mkdir -p /tmp/src && echo 'conf of host 2' > /tmp/src/app.conf",
    )
    .unwrap();
    req.duplicate_handling = Some(DuplicateMode::BySourceIp);
    let (_, st) = run(&api, &req).await;
    assert!(all_success(&st), "{st:?}");
    assert_eq!(tree(&sb, 3, "/tmp/gathered").len(), 3);
    for h in 0..3 {
        let ip = sb.agent_ip(h);
        assert_eq!(
            sb.host_sh(3, &format!("cat /tmp/gathered/{ip}/app.conf"))
                .unwrap(),
            format!("conf of host {h}\n")
        );
    }

    // Strict: the target directory must exist; force creates it.
    sb.host_sh(2, "mkdir -p /tmp/exists").unwrap();
    let mut req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/app.conf"])],
        targets,
        "/tmp/exists",
        60,
    );
    req.transfer_mode = Some(serde_json::json!("strict"));
    let (step, st) = run(&api, &req).await;
    let status_of = |h: HostId| st.iter().find(|(id, _)| *id == h).unwrap().1;
    assert_eq!(status_of(ids[2]), HostTaskStatus::Success, "{st:?}");
    assert_eq!(status_of(ids[3]), HostTaskStatus::FileFailed, "{st:?}");
    let rows = api.step_hosts(step).await.unwrap();
    let failed = rows.iter().find(|r| r.host_id == ids[3]).unwrap();
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("does not exist"),
        "{failed:?}"
    );
    assert!(tree(&sb, 3, "/tmp").iter().all(|f| !f.contains("exists")));
    // Retry of the failed target (bk-job's 失败IP重做) once its directory exists: a new
    // attempt re-scans the source and only host 3 runs again.
    sb.host_sh(3, "mkdir -p /tmp/exists").unwrap();
    let retry: serde_json::Value = api
        .post(
            &format!("/api/v1/steps/{step}/retry"),
            &serde_json::json!({"mode": "failed"}),
        )
        .await
        .unwrap();
    assert_eq!(retry["rerun_count"], 1, "{retry}");
    let rows = api
        .wait_tasks(step, &ids[3..4], DONE, |s| s.is_terminal())
        .await
        .unwrap();
    assert_eq!(rows[0].status, HostTaskStatus::Success, "{rows:?}");
    assert_eq!(
        sb.host_sh(3, "cat /tmp/exists/app.conf").unwrap(),
        "conf of host 0\n"
    );

    // Uploads through the API and inline text.
    let content: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let up = api.upload("package.bin", content.clone()).await.unwrap();
    assert_eq!(up.size, content.len() as u64);
    let again = api.upload("other-name.bin", content.clone()).await.unwrap();
    assert_eq!(again.upload_id, up.upload_id, "content-addressed");
    let req = transfer(
        vec![
            FileSourceRequest {
                upload_id: Some(up.upload_id.clone()),
                ..FileSourceRequest::default()
            },
            FileSourceRequest {
                name: Some("motd".into()),
                inline_content_base64: Some("aGVsbG8gd29ybGQK".into()),
                ..FileSourceRequest::default()
            },
        ],
        targets,
        "/tmp/dst/up",
        60,
    );
    let (_, st) = run(&api, &req).await;
    assert!(all_success(&st), "{st:?}");
    let expected = sha256_hex(&content);
    for t in 2..4 {
        assert_eq!(sha(&sb, t, "/tmp/dst/up/package.bin"), expected);
        assert_eq!(
            sb.host_sh(t, "cat /tmp/dst/up/motd").unwrap(),
            "hello world\n"
        );
    }

    // A missing source ends the targets as 203; a target path that is a file as 202.
    let req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/no-such-file"])],
        targets,
        "/tmp/dst/missing",
        60,
    );
    let (step, st) = run(&api, &req).await;
    assert!(
        st.iter().all(|(_, s)| *s == HostTaskStatus::SourceNotFound),
        "{st:?}"
    );
    let rows = api.step_files(step, Some("download")).await.unwrap();
    assert!(
        rows.iter().all(|r| r.status.code() == 5
            && r.error
                .as_deref()
                .unwrap_or_default()
                .contains("no-such-file")),
        "a failed row per target naming the missing path: {rows:?}"
    );
    sb.host_sh(2, "echo plain > /tmp/is-a-file").unwrap();
    let req = transfer(
        vec![host_source(&ids[0..1], &["/tmp/src/app.conf"])],
        &ids[2..3],
        "/tmp/is-a-file",
        60,
    );
    let (step, st) = run(&api, &req).await;
    assert_eq!(st[0].1, HostTaskStatus::FileFailed, "{st:?}");
    let log = api.log(step, ids[2]).await.unwrap();
    assert!(!log.content.is_empty(), "the download log says why");
    assert_eq!(sb.host_sh(2, "cat /tmp/is-a-file").unwrap(), "plain\n");
}

/// SHA-256 by the same `sha256sum` the hosts use.
fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_to_many_modes_and_path_kinds_on_sqlite() {
    many_to_many_and_modes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_to_many_modes_and_path_kinds_on_postgres() {
    let url = shoal_testkit::pg::PgCluster::shared()
        .create_database("shoal_files_test")
        .unwrap();
    many_to_many_and_modes(Some(url)).await;
}
