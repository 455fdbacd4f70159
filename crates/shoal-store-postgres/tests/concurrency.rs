//! Pins what several servers sharing one PostgreSQL database rely on: concurrent claims hand
//! each step to exactly one server (`FOR UPDATE SKIP LOCKED`), and concurrent, overlapping
//! task batches neither deadlock nor store a byte twice.

use shoal_store::TaskBatch;
use shoal_store::conformance::{chunk, key, new_job, read_all, script_step, waiting};
use shoal_store::prelude::*;
use shoal_store_postgres::PgStore;
use shoal_testkit::pg::PgCluster;
use std::collections::BTreeSet;

async fn two_servers(name: &str) -> (PgStore, PgStore) {
    let url = PgCluster::shared()
        .create_database(name)
        .expect("create test database");
    let a = PgStore::connect(&url).await.expect("connect");
    let b = PgStore::connect(&url).await.expect("connect");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_are_disjoint() {
    let (a, b) = two_servers("claims").await;
    let steps = (0..60)
        .map(|i| script_step(&format!("s{i}"), waiting(&[1])))
        .collect();
    let created = a.create_job(new_job("j", steps)).await.expect("create_job");

    let mut handles = Vec::new();
    for (owner, store) in [
        ("a", a.clone()),
        ("b", b.clone()),
        ("c", a.clone()),
        ("d", b.clone()),
    ] {
        handles.push(tokio::spawn(async move {
            let steps = store
                .claim_steps(owner, 1_000, 100_000)
                .await
                .expect("claim");
            steps.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }));
    }
    let mut seen = BTreeSet::new();
    for handle in handles {
        for id in handle.await.expect("claim task") {
            assert!(seen.insert(id), "step {id} claimed twice");
        }
    }
    // Rows skipped while locked are left for the next round; nothing is lost.
    let rest = a.claim_steps("e", 1_000, 100_000).await.expect("claim");
    seen.extend(rest.iter().map(|s| s.id));
    assert_eq!(seen, created.step_ids.iter().copied().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_batches_store_bytes_once() {
    let (a, b) = two_servers("batches").await;
    let hosts: Vec<i64> = (1..=200).collect();
    let created = a
        .create_job(new_job("j", vec![script_step("s", waiting(&hosts))]))
        .await
        .expect("create_job");
    let step = created.step_ids[0];
    let data: Vec<u8> = (0..600u32).map(|i| (i % 253) as u8).collect();

    // Four writers send the same logs for every host, cut differently and in other host orders.
    let mut handles = Vec::new();
    for (w, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        let (hosts, data) = (hosts.clone(), data.clone());
        handles.push(tokio::spawn(async move {
            let size = [7, 50, 13, 100][w];
            let order: Vec<i64> = if w % 2 == 0 {
                hosts
            } else {
                hosts.into_iter().rev().collect()
            };
            for round in 0..(600 / size + 1) {
                let mut batch = TaskBatch::default();
                for h in &order {
                    let at = round * size;
                    if at < data.len() {
                        let end = (at + size).min(data.len());
                        batch
                            .chunks
                            .push(chunk(key(step, 0, *h), at as u64, &data[at..end]));
                    }
                }
                store
                    .apply_task_batch(&batch)
                    .await
                    .expect("apply_task_batch");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("writer task");
    }
    for h in [1, 77, 200] {
        assert_eq!(read_all(&a, key(step, 0, h)).await, data, "host {h}");
    }
}
