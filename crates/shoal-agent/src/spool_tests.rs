// Pins the spool's promises: output is sent in order from the file, split at stream changes
// and at MAX_OUTPUT_CHUNK; after a reconnect exactly the unacknowledged bytes and the result
// are sent again; an acknowledged result deletes the task; a restart restores finished tasks
// and drops the ones that were running.

use super::*;
use shoal_proto::End;
use std::io::Write as _;

const A: TaskKey = TaskKey {
    step_id: 1,
    attempt: 0,
    host_id: 5,
};
const B: TaskKey = TaskKey {
    step_id: 2,
    attempt: 3,
    host_id: 5,
};

fn append(spool: &mut Spool, key: TaskKey, run_id: u64, stream: Stream, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(spool.output_path(&key))
        .expect("open output");
    f.write_all(data).expect("write");
    spool.appended(&key, run_id, stream, data.len() as u64);
}

fn outcome(len: u64) -> Outcome {
    Outcome {
        end: End::Exited { code: 0 },
        started_at: Some(10),
        ended_at: 20,
        output_len: len,
        truncated: false,
        digest: "d".into(),
        tag: None,
    }
}

fn finish(spool: &mut Spool, key: TaskKey, run_id: u64, outcome: Outcome) {
    let (path, bytes) = spool.record_file(&key, run_id, &outcome).expect("record");
    crate::identity::write_atomic(&path, &bytes, 0o600).expect("write record");
    spool.finished(&key, run_id, outcome);
}

/// Drains the work queue, resolving output reads.
fn drain(spool: &mut Spool) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(w) = spool.next_work() {
        out.push(match w {
            Work::Started { key, at } => (format!("started {key} {at}"), vec![]),
            Work::Output {
                key,
                offset,
                len,
                stream,
                path,
            } => {
                let data = read_output(&path, offset, len).expect("read");
                assert_eq!(data.len(), len);
                (format!("output {key} {offset} {stream:?}"), data)
            }
            Work::Finished { key, outcome } => {
                (format!("finished {key} {}", outcome.output_len), vec![])
            }
        });
    }
    out
}

fn labels(work: &[(String, Vec<u8>)]) -> Vec<&str> {
    work.iter().map(|(l, _)| l.as_str()).collect()
}

#[test]
fn sends_in_order_split_by_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, dropped) = Spool::open(&dir.path().join("spool")).expect("open");
    assert!(dropped.is_empty());
    spool.insert(A, 1).expect("insert");
    spool.started(&A, 1, 10);
    append(&mut spool, A, 1, Stream::Stdout, b"out1\n");
    append(&mut spool, A, 1, Stream::Stdout, b"out2\n");
    append(&mut spool, A, 1, Stream::Stderr, b"err\n");
    let work = drain(&mut spool);
    assert_eq!(
        labels(&work),
        [
            "started 1-0-5 10",
            "output 1-0-5 0 Stdout",
            "output 1-0-5 10 Stderr"
        ]
    );
    assert_eq!(work[1].1, b"out1\nout2\n");
    assert_eq!(spool.running(), 1);
    // A stale executor run cannot touch the entry.
    spool.appended(&A, 99, Stream::Stdout, 100);
    assert_eq!(spool.get(&A).map(|e| e.stored), Some(14));

    append(&mut spool, A, 1, Stream::Agent, b"[marker]\n");
    finish(&mut spool, A, 1, outcome(23));
    let work = drain(&mut spool);
    assert_eq!(
        labels(&work),
        ["output 1-0-5 14 Agent", "finished 1-0-5 23"]
    );
    assert_eq!(spool.running(), 0);
    assert!(drain(&mut spool).is_empty());
}

#[test]
fn resends_unacked_after_reconnect_and_deletes_when_acked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path()).expect("open");
    spool.insert(A, 1).expect("insert");
    spool.started(&A, 1, 10);
    append(&mut spool, A, 1, Stream::Stdout, b"0123456789");
    drain(&mut spool);
    assert_eq!(spool.ack(&A, 4, false), None);
    // The link breaks; a new session re-sends from the acknowledged offset.
    spool.begin_session();
    let work = drain(&mut spool);
    assert_eq!(labels(&work), ["started 1-0-5 10", "output 1-0-5 4 Stdout"]);
    assert_eq!(work[1].1, b"456789");
    finish(&mut spool, A, 1, outcome(10));
    assert_eq!(labels(&drain(&mut spool)), ["finished 1-0-5 10"]);
    // Output fully acked but not the result: the result is sent again, no output.
    assert_eq!(spool.ack(&A, 10, false), None);
    spool.begin_session();
    assert_eq!(labels(&drain(&mut spool)), ["finished 1-0-5 10"]);
    // An ack past what is stored is clamped.
    assert_eq!(spool.ack(&A, 1000, false), None);
    assert_eq!(spool.get(&A).map(|e| e.acked_output), Some(10));
    let task_dir = spool.ack(&A, 10, true).expect("done");
    assert_eq!(task_dir, spool.task_dir(&A));
    assert!(!spool.contains(&A));
    assert!(spool.known().is_empty());
}

#[test]
fn rebuilds_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut spool, _) = Spool::open(dir.path()).expect("open");
        spool.insert(A, 1).expect("insert");
        spool.started(&A, 1, 10);
        append(&mut spool, A, 1, Stream::Stdout, b"hello ");
        append(&mut spool, A, 1, Stream::Stderr, b"world");
        finish(&mut spool, A, 1, outcome(11));
        spool.ack(&A, 3, false);
        // B was still running when the agent died.
        spool.insert(B, 2).expect("insert");
        spool.started(&B, 2, 10);
        append(&mut spool, B, 2, Stream::Stdout, b"partial");
    }
    let (mut spool, dropped) = Spool::open(dir.path()).expect("reopen");
    assert_eq!(dropped, [B]);
    assert!(!dir.path().join(B.to_string()).exists());
    assert_eq!(spool.known(), [A]);
    assert_eq!(spool.running(), 0);
    spool.begin_session();
    // Acks are not persisted: the whole output is re-sent, with its streams.
    let work = drain(&mut spool);
    assert_eq!(
        labels(&work),
        [
            "output 1-0-5 0 Stdout",
            "output 1-0-5 6 Stderr",
            "finished 1-0-5 11"
        ]
    );
    assert_eq!(work[1].1, b"world");
}

#[test]
fn splits_large_output_and_round_robins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path()).expect("open");
    spool.insert(A, 1).expect("insert");
    spool.insert(B, 2).expect("insert");
    let big = vec![7u8; MAX_OUTPUT_CHUNK * 2 + 5];
    append(&mut spool, A, 1, Stream::Stdout, &big);
    append(&mut spool, B, 2, Stream::Stdout, b"b");
    let work = drain(&mut spool);
    assert_eq!(
        labels(&work),
        [
            "output 1-0-5 0 Stdout",
            "output 2-3-5 0 Stdout",
            "output 1-0-5 262144 Stdout",
            "output 1-0-5 524288 Stdout"
        ]
    );
    assert!(work.iter().all(|(_, d)| d.len() <= MAX_OUTPUT_CHUNK));
    let total: usize = work.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(total, big.len() + 1);
}

#[test]
fn forget_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = Spool::open(dir.path()).expect("open");
    spool.insert(A, 1).expect("insert");
    assert_eq!(spool.forget(&A), Some(spool.task_dir(&A)));
    assert_eq!(spool.forget(&A), None);
    assert_eq!(parse_key(&A.to_string()), Some(A));
    assert_eq!(parse_key("1-2"), None);
    assert_eq!(parse_key("1-2-3-4"), None);
    assert_eq!(parse_key("x-2-3"), None);
}
