// Pins the executor's promises: exit codes and signals are reported, stdout and stderr are
// captured as one stream in exactly the order the script wrote them, binary output survives
// byte for byte, a timeout or kill takes down the whole process group (background children
// included, SIGKILL for those ignoring SIGTERM) and, with cgroups, every process the script
// started, also those that escaped with setsid (see `containment_tests`), the output cap keeps
// the script running to its end, tags are extracted, and unknown accounts / missing
// interpreters end the task without starting it.

use super::*;
use crate::escape_tree::{self, gone};
use shoal_types::Language;
use std::path::PathBuf;

#[derive(Default)]
struct Collect {
    started: Option<(UnixMs, i32)>,
    chunks: Vec<(Stream, Vec<u8>)>,
}

impl Sink for Collect {
    async fn started(&mut self, at: UnixMs, pgid: i32) {
        self.started = Some((at, pgid));
    }
    async fn output(&mut self, stream: Stream, data: &[u8]) {
        self.chunks.push((stream, data.to_vec()));
    }
}

impl Collect {
    fn bytes(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    cfg: Config,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config::new(dir.path().join("scripts"));
    Fixture { _dir: dir, cfg }
}

fn spec(language: Language, content: &str) -> ScriptSpec {
    ScriptSpec {
        language,
        content: content.to_owned(),
        args: vec![],
        env: vec![],
        account: String::new(),
        login_env: false,
        workdir: String::new(),
        timeout_secs: 30,
    }
}

const KEY: TaskKey = TaskKey {
    step_id: 7,
    attempt: 2,
    host_id: 9,
};

async fn run_with(cfg: &Config, spec: ScriptSpec, cap: u64) -> (Outcome, Collect) {
    let (_tx, rx) = watch::channel(false);
    let mut sink = Collect::default();
    let out = execute(
        cfg,
        Request {
            key: KEY,
            spec,
            output_cap: cap,
        },
        &mut sink,
        rx,
    )
    .await;
    (out, sink)
}

async fn sh(script: &str) -> (Outcome, Collect) {
    run_with(&fixture().cfg, spec(Language::Shell, script), 1 << 20).await
}

#[tokio::test]
async fn exit_codes_and_signals() {
    let (out, sink) = sh("echo hi; exit 3").await;
    assert_eq!(out.end, End::Exited { code: 3 });
    assert!(out.started_at.is_some() && sink.started.is_some());
    assert_eq!(sink.text(), "hi\n");
    assert_eq!(out.output_len, 3);
    assert_eq!(out.digest, blake3::hash(b"hi\n").to_hex().to_string());
    let (out, _) = sh("kill -9 $$").await;
    assert_eq!(out.end, End::Signaled { signal: 9 });
}

#[tokio::test]
async fn stdout_and_stderr_keep_the_order_they_were_written_in() {
    // Enough lines that two pipes would be read in batches of one stream each.
    let (out, sink) =
        sh("i=1; while [ $i -le 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done").await;
    assert_eq!(out.end, End::Exited { code: 0 });
    let want: String = (1..=2000).map(|i| format!("out{i}\nerr{i}\n")).collect();
    assert_eq!(sink.text(), want);
    // One pipe: everything is reported as stdout.
    assert!(sink.chunks.iter().all(|(s, _)| *s == Stream::Stdout));
}

#[tokio::test]
async fn binary_output_is_exact() {
    let f = fixture();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let path = f._dir.path().join("blob");
    std::fs::write(&path, &data).expect("write blob");
    let (out, sink) = run_with(
        &f.cfg,
        spec(Language::Shell, &format!("cat '{}'", path.display())),
        1 << 20,
    )
    .await;
    assert_eq!(out.end, End::Exited { code: 0 });
    assert_eq!(sink.bytes(), data);
    assert_eq!(out.digest, blake3::hash(&data).to_hex().to_string());
    assert!(sink.chunks.iter().all(|(_, c)| c.len() <= MAX_OUTPUT_CHUNK));
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let mut s = spec(Language::Shell, "sleep 100 & echo $!; sleep 100");
    s.timeout_secs = 1;
    let t = std::time::Instant::now();
    let (out, sink) = run_with(&fixture().cfg, s, 1 << 20).await;
    assert_eq!(out.end, End::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let bg: i32 = sink.text().trim().parse().expect("background pid");
    assert!(gone(bg), "background child {bg} survived");
}

#[tokio::test]
async fn sigkill_follows_ignored_sigterm() {
    let mut s = spec(
        Language::Shell,
        "trap '' TERM; sleep 100 & echo $!; sleep 100",
    );
    s.timeout_secs = 1;
    let t = std::time::Instant::now();
    let (out, sink) = run_with(&fixture().cfg, s, 1 << 20).await;
    assert_eq!(out.end, End::TimedOut);
    assert!(t.elapsed() >= KILL_GRACE + Duration::from_secs(1));
    let bg: i32 = sink.text().trim().parse().expect("background pid");
    assert!(gone(bg), "background child {bg} survived");
}

#[tokio::test]
async fn kill_request_terminates() {
    let f = fixture();
    let (tx, rx) = watch::channel(false);
    let mut sink = Collect::default();
    let req = Request {
        key: KEY,
        spec: spec(Language::Shell, "echo up; sleep 100"),
        output_cap: 1000,
    };
    let (out, ()) = tokio::join!(execute(&f.cfg, req, &mut sink, rx), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(true);
    });
    assert_eq!(out.end, End::Killed);
    assert_eq!(sink.text(), "up\n");
}

#[tokio::test]
async fn output_cap_marks_and_keeps_draining() {
    let f = fixture();
    let script =
        "head -c 1000000 /dev/zero; echo; echo done >&2; echo '::shoal-tag::finished'; exit 4";
    let (out, sink) = run_with(&f.cfg, spec(Language::Shell, script), 1000).await;
    assert_eq!(out.end, End::Exited { code: 4 });
    assert!(out.truncated);
    let mut expected = vec![0u8; 1000];
    expected.extend(crate::output::truncation_marker(1000));
    assert_eq!(sink.bytes(), expected);
    assert_eq!(out.output_len, expected.len() as u64);
    assert_eq!(out.digest, blake3::hash(&expected).to_hex().to_string());
    assert_eq!(sink.chunks.last().map(|c| c.0), Some(Stream::Agent));
    assert_eq!(out.tag.as_deref(), Some("finished"));
}

#[tokio::test]
async fn tag_is_last_tag_line() {
    let (out, _) = sh("echo '::shoal-tag::first'; echo '::shoal-tag::  final  '; echo tail").await;
    assert_eq!(out.tag.as_deref(), Some("final"));
}

#[tokio::test]
async fn chatty_output_is_coalesced() {
    let (out, sink) = sh("i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done").await;
    assert_eq!(out.end, End::Exited { code: 0 });
    assert_eq!(sink.text().lines().count(), 3000);
    assert!(sink.chunks.len() < 100, "{} chunks", sink.chunks.len());
}

#[tokio::test]
async fn args_env_and_workdir() {
    let f = fixture();
    let mut s = spec(
        Language::Shell,
        "echo \"$1|$2|$SHOAL_STEP_ID|$SHOAL_ATTEMPT|$SHOAL_HOST_ID|$FOO|$(pwd)\"",
    );
    s.args = vec!["a b".into(), "c".into()];
    s.env = vec![("FOO".into(), "bar".into())];
    s.workdir = "/tmp".into();
    let (out, sink) = run_with(&f.cfg, s, 1000).await;
    assert_eq!(out.end, End::Exited { code: 0 });
    assert_eq!(sink.text(), "a b|c|7|2|9|bar|/tmp\n");
    // The script file is removed once the task ends.
    let left: Vec<PathBuf> = std::fs::read_dir(&f.cfg.scripts_dir)
        .expect("scripts dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn login_env_replaces_environment() {
    let f = fixture();
    let home = launch::resolve_account("").expect("self").home;
    // A login shell: the agent's environment is gone, HOME comes from the account (its
    // profile scripts may extend PATH, as a login would).
    let mut s = spec(
        Language::Shell,
        "echo \"${CARGO_MANIFEST_DIR:-unset}|$HOME|$0\"",
    );
    s.login_env = true;
    let (out, sink) = run_with(&f.cfg, s, 1000).await;
    assert_eq!(out.end, End::Exited { code: 0 });
    let text = sink.text();
    assert!(
        text.starts_with(&format!("unset|{}|", home.display())),
        "{text}"
    );
    // A non-shell interpreter sees exactly the login PATH.
    if launch::find_executable("perl", &f.cfg.search_path).is_some() {
        let mut s = spec(Language::Perl, "print \"$ENV{PATH}|$ENV{USER}\\n\";");
        s.login_env = true;
        let (_, sink) = run_with(&f.cfg, s, 1000).await;
        let user = launch::resolve_account("").expect("self").name;
        assert_eq!(sink.text(), format!("{}|{user}\n", launch::LOGIN_PATH));
    }
    // Without it the agent's environment is inherited.
    let (_, sink) = run_with(
        &f.cfg,
        spec(Language::Shell, "echo ${CARGO_MANIFEST_DIR:-unset}"),
        1000,
    )
    .await;
    assert_ne!(sink.text(), "unset\n");
}

#[tokio::test]
async fn runs_as_another_account() {
    if !nix::unistd::geteuid().is_root() {
        return; // switching accounts needs root
    }
    let mut s = spec(Language::Shell, "id -u; pwd");
    s.account = "nobody".into();
    let (out, sink) = run_with(&fixture().cfg, s, 1000).await;
    assert_eq!(out.end, End::Exited { code: 0 }, "{}", sink.text());
    let nobody = launch::resolve_account("nobody").expect("nobody");
    let expected_dir = if nobody.home.is_dir() {
        nobody.home.display().to_string()
    } else {
        "/".into()
    };
    assert_eq!(sink.text(), format!("{}\n{expected_dir}\n", nobody.uid));
}

#[tokio::test]
async fn unknown_account_does_not_start() {
    let mut s = spec(Language::Shell, "echo never");
    s.account = "no-such-user-shoal".into();
    let (out, sink) = run_with(&fixture().cfg, s, 1000).await;
    assert_eq!(
        out.end,
        End::UserNotFound {
            account: "no-such-user-shoal".into()
        }
    );
    assert_eq!(out.started_at, None);
    assert!(sink.started.is_none());
    assert!(sink.chunks.iter().all(|(s, _)| *s == Stream::Agent));
    assert!(sink.text().contains("no-such-user-shoal"));
}

#[tokio::test]
async fn missing_interpreter_and_unsupported_language() {
    let mut f = fixture();
    f.cfg.search_path = vec![];
    let (out, sink) = run_with(&f.cfg, spec(Language::Python, "print(1)"), 1000).await;
    let End::StartFailed { reason } = &out.end else {
        panic!("{:?}", out.end)
    };
    assert!(reason.contains("python3"), "{reason}");
    assert_eq!(sink.chunks.len(), 1);
    assert_eq!(sink.chunks[0].0, Stream::Agent);
    assert!(sink.text().contains(reason.as_str()));
    assert_eq!(out.output_len, sink.bytes().len() as u64);

    let (out, _) = run_with(&fixture().cfg, spec(Language::Bat, "echo 1"), 1000).await;
    assert!(matches!(out.end, End::StartFailed { .. }));
}

#[tokio::test]
async fn python_and_perl_run() {
    let f = fixture();
    if launch::find_executable("python3", &f.cfg.search_path).is_some() {
        let (out, sink) = run_with(
            &f.cfg,
            spec(Language::Python, "import sys\nprint(sys.argv[1:])"),
            1000,
        )
        .await;
        assert_eq!(out.end, End::Exited { code: 0 }, "{}", sink.text());
        assert_eq!(sink.text(), "[]\n");
    }
    if launch::find_executable("perl", &f.cfg.search_path).is_some() {
        let (out, sink) = run_with(
            &f.cfg,
            spec(Language::Perl, "print \"p\\n\"; exit 2;"),
            1000,
        )
        .await;
        assert_eq!(out.end, End::Exited { code: 2 });
        assert_eq!(sink.text(), "p\n");
    }
}

mod containment_tests {
    // Pins cgroup containment: after a timeout and after a kill, no process the script started
    // remains — children, grandchildren, a double fork, nohup, a TERM-ignoring process and
    // three setsid escapes — and the task's cgroup is gone; after a normal exit, what the
    // script left running (a daemon) lives on in the agent's `detached` cgroup.
    use super::*;
    use crate::contain::Tree;

    /// A tree in a fresh state directory, or `None` where cgroups cannot be used (not root).
    fn tree() -> Option<(tempfile::TempDir, Config)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = match Tree::open(dir.path()) {
            Ok(t) => t,
            Err(reason) if !nix::unistd::geteuid().is_root() => {
                eprintln!("skipping: {reason}");
                return None;
            }
            Err(reason) => panic!("root but no cgroups: {reason}"),
        };
        let mut cfg = Config::new(dir.path().join("scripts"));
        cfg.cgroups = Some(std::sync::Arc::new(tree));
        Some((dir, cfg))
    }

    /// The task cgroups left; the instance directory itself goes once it is empty.
    fn task_cgroups(cfg: &Config) -> Vec<String> {
        let base = cfg.cgroups.as_ref().expect("cgroups").base();
        let Ok(entries) = std::fs::read_dir(base) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("task-"))
            .collect()
    }

    /// No process of the tree and no task cgroup remain after `what`.
    fn assert_all_gone(cfg: &Config, marker: &str, what: &str) {
        let survivors = escape_tree::alive_with(marker);
        assert!(survivors.is_empty(), "survivors of {what}: {survivors:?}");
        assert!(task_cgroups(cfg).is_empty(), "{:?}", task_cgroups(cfg));
    }

    #[tokio::test]
    async fn timeout_kills_every_escape() {
        let Some((_dir, cfg)) = tree() else { return };
        let m = escape_tree::marker(10_000_000, 1);
        let mut s = spec(Language::Shell, &escape_tree::script(&m));
        s.timeout_secs = 3;
        let (out, sink) = run_with(&cfg, s, 1 << 20).await;
        assert_eq!(out.end, End::TimedOut, "{}", sink.text());
        assert_all_gone(&cfg, &m, "the timeout");
    }

    #[tokio::test]
    async fn kill_kills_every_escape() {
        let Some((_dir, cfg)) = tree() else { return };
        let m = escape_tree::marker(10_000_000, 2);
        let (tx, rx) = watch::channel(false);
        let mut sink = Collect::default();
        let req = Request {
            key: KEY,
            spec: spec(Language::Shell, &escape_tree::script(&m)),
            output_cap: 1 << 20,
        };
        let (out, ()) = tokio::join!(execute(&cfg, req, &mut sink, rx), async {
            // Terminate once the whole tree runs.
            while escape_tree::alive_with(&m).len() < escape_tree::PROCESSES {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = tx.send(true);
        });
        assert_eq!(out.end, End::Killed);
        assert_all_gone(&cfg, &m, "the kill");
    }

    #[tokio::test]
    async fn daemons_outlive_a_normal_exit_detached() {
        let Some((_dir, cfg)) = tree() else { return };
        let m = escape_tree::marker(10_000_000, 3);
        let script = format!("setsid sleep {m}1 </dev/null >/dev/null 2>&1 & echo started");
        let (out, sink) = run_with(&cfg, spec(Language::Shell, &script), 1000).await;
        assert_eq!(out.end, End::Exited { code: 0 });
        assert_eq!(sink.text(), "started\n");
        // The daemon may still be between fork and exec.
        let mut daemons = escape_tree::alive_with(&m);
        for _ in 0..3000 {
            if !daemons.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            daemons = escape_tree::alive_with(&m);
        }
        let cgroups: Vec<String> = daemons
            .iter()
            .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default())
            .collect();
        for pid in &daemons {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        // Gone before the tree is dropped, which removes the then empty cgroups.
        while !daemons.iter().all(|pid| gone(*pid)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(daemons.len(), 1, "the daemon must live on");
        assert!(cgroups[0].contains("/detached"), "{cgroups:?}");
        assert!(task_cgroups(&cfg).is_empty(), "{:?}", task_cgroups(&cfg));
    }
}
