//! Cases for uploads: idempotent content-addressed puts, step references, and the expiry
//! rules (an upload a live step uses never expires; one only finished steps use does).

use super::{new_job, script_step, waiting};
use crate::prelude::*;
use crate::{Error, NewUpload, StepTransition};
use shoal_types::{RunStatus, StepId};

pub fn new_upload(id: &str, now: i64) -> NewUpload {
    NewUpload {
        id: id.to_string(),
        name: format!("{id}.tar.gz"),
        size: 5 << 20,
        chunks: vec![format!("{id}-c0"), format!("{id}-c1")],
        created_by: "alice".to_string(),
        now,
    }
}

/// Creates a job with one step per status given; returns the step ids.
async fn steps_with(store: &dyn Store, statuses: &[RunStatus]) -> Vec<StepId> {
    let steps = statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let mut step = script_step(&format!("s{i}"), waiting(&[1]));
            step.status = *status;
            step
        })
        .collect();
    store
        .create_job(new_job("uploads", steps))
        .await
        .expect("create_job")
        .step_ids
}

/// The same content put twice is one row: the first name and creation time stay,
/// `last_used_at` only rises.
pub async fn uploads_put_is_idempotent(store: &dyn Store) {
    let first = store
        .put_upload(new_upload("aa11", 1_000))
        .await
        .expect("put_upload");
    assert_eq!(
        (first.id.as_str(), first.name.as_str(), first.size),
        ("aa11", "aa11.tar.gz", 5 << 20)
    );
    assert_eq!(
        first.chunks,
        vec!["aa11-c0".to_string(), "aa11-c1".to_string()]
    );
    assert_eq!(
        (
            first.created_by.as_str(),
            first.created_at,
            first.last_used_at
        ),
        ("alice", 1_000, 1_000)
    );
    let got = store.get_upload("aa11").await.expect("get_upload");
    assert_eq!(got.as_ref(), Some(&first));

    let mut again = new_upload("aa11", 5_000);
    again.name = "renamed.tar.gz".to_string();
    again.created_by = "bob".to_string();
    let second = store.put_upload(again.clone()).await.expect("put_upload");
    assert_eq!(second.last_used_at, 5_000, "refreshed");
    assert_eq!(
        (
            second.name.as_str(),
            second.created_by.as_str(),
            second.created_at
        ),
        ("aa11.tar.gz", "alice", 1_000)
    );
    assert_eq!(store.put_upload(again).await.expect("put"), second);
    let older = store
        .put_upload(new_upload("aa11", 3_000))
        .await
        .expect("put_upload");
    assert_eq!(older.last_used_at, 5_000, "never lowered");
    assert_eq!(
        store.get_upload("aa11").await.expect("get_upload"),
        Some(second)
    );
    assert_eq!(store.get_upload("bb22").await.expect("get_upload"), None);
}

/// Expiry: unused long enough and used by no live step. A running step's upload never
/// expires; once its step finishes, it does. References are idempotent and checked.
pub async fn uploads_expire_unless_a_live_step_uses_them(store: &dyn Store) {
    let ids = steps_with(
        store,
        &[RunStatus::Running, RunStatus::Success, RunStatus::Blank],
    )
    .await;
    let (running, finished, blank) = (ids[0], ids[1], ids[2]);
    for (id, now) in [
        ("u1", 1_000),
        ("u2", 1_000),
        ("u3", 1_000),
        ("u4", 9_000),
        ("u5", 1_000),
        ("u6", 1_000),
    ] {
        store.put_upload(new_upload(id, now)).await.expect("put");
    }
    for (upload, step) in [
        ("u1", running),
        ("u2", finished),
        ("u5", finished),
        ("u5", running),
        ("u6", blank),
    ] {
        store.ref_upload(upload, step).await.expect("ref_upload");
    }
    store
        .ref_upload("u1", running)
        .await
        .expect("ref_upload twice");
    let missing = store.ref_upload("nope", running).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    let missing = store.ref_upload("u1", 9_999_999).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

    // u4 was used too recently; u1, u5 (running) and u6 (blank) are held by live steps.
    let expired = store.expired_uploads(5_000).await.expect("expired");
    assert_eq!(expired, vec!["u2".to_string(), "u3".to_string()]);
    assert_eq!(
        store.expired_uploads(1_000).await.expect("expired"),
        Vec::<String>::new(),
        "used at exactly the bound is not expired"
    );
    assert_eq!(
        store.expired_uploads(10_000).await.expect("expired"),
        vec!["u2".to_string(), "u3".to_string(), "u4".to_string()]
    );

    // Deleting skips uploads a live step uses, and ids that do not exist.
    let asked: Vec<String> = ["u1", "u2", "u3", "zz"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let deleted = store.delete_uploads(&asked).await.expect("delete");
    assert_eq!(deleted, vec!["u2".to_string(), "u3".to_string()]);
    assert_eq!(store.get_upload("u2").await.expect("get"), None);
    assert!(store.get_upload("u1").await.expect("get").is_some());
    assert_eq!(
        store.delete_uploads(&[]).await.expect("delete"),
        Vec::<String>::new()
    );

    // The running step finishes: its uploads expire (u5 only finished steps use now).
    let end = StepTransition {
        step_id: running,
        from: vec![RunStatus::Running],
        to: RunStatus::Success,
        started_at: None,
        ended_at: Some(Some(30_000)),
        owner: None,
    };
    assert!(store.transition_step(&end).await.expect("transition"));
    assert_eq!(
        store.expired_uploads(5_000).await.expect("expired"),
        vec!["u1".to_string(), "u5".to_string()]
    );
    // Uploading the same content again refreshes it out of expiry.
    store
        .put_upload(new_upload("u1", 6_000))
        .await
        .expect("put");
    assert_eq!(
        store.expired_uploads(5_000).await.expect("expired"),
        vec!["u5".to_string()]
    );

    // A deleted upload's references go with it; the same content can be uploaded again.
    let deleted = store
        .delete_uploads(&["u5".to_string()])
        .await
        .expect("delete");
    assert_eq!(deleted, vec!["u5".to_string()]);
    store
        .put_upload(new_upload("u5", 1_000))
        .await
        .expect("put");
    store.ref_upload("u5", blank).await.expect("ref_upload");
    assert_eq!(
        store.expired_uploads(5_000).await.expect("expired"),
        Vec::<String>::new(),
        "u5 is held by the blank step only"
    );
}
