//! Pins fan-out on real hosts: one script request runs on every targeted host, each in its own
//! network and UTS namespace (so its output shows its own hostname and address); every host gets
//! its own result; hosts that exit with different codes land in result groups with the right
//! counts, statuses and exit codes, and the group filter of the host list returns those hosts.

#![allow(clippy::unwrap_used)] // tests may unwrap

use shoal_testkit::api::shell;
use shoal_testkit::sandbox::{Sandbox, SandboxOptions, require_root};
use shoal_types::api::TaskRow;
use shoal_types::{HostTaskStatus, RunStatus};
use std::time::Duration;

const ONLINE: Duration = Duration::from_secs(30);
const JOB: Duration = Duration::from_secs(30);

async fn sandbox(n: usize) -> (Sandbox, Vec<i64>) {
    require_root().unwrap();
    let sb = Sandbox::start(SandboxOptions::with_agents(n))
        .await
        .unwrap();
    sb.wait_hosts_online(n, ONLINE).await.unwrap();
    let ids = sb.host_ids().await.unwrap();
    (sb, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_eight_hosts() {
    let (sb, ids) = sandbox(8).await;
    let api = sb.api();
    let resp = api
        .execute(&shell(
            r#"echo "name=$(hostname) ip=$(hostname -I)""#,
            &ids,
            60,
        ))
        .await
        .unwrap();
    assert_eq!((resp.host_count, resp.abnormal_count), (8, 0));

    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Success, "{view:?}");
    assert_eq!(view.steps.len(), 1);
    assert_eq!(view.steps[0].step.status, RunStatus::Success);

    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    assert_eq!(rows.len(), 8, "{rows:?}");
    for (i, id) in ids.iter().enumerate() {
        let row: &TaskRow = rows.iter().find(|r| r.host_id == *id).unwrap();
        assert_eq!(row.status, HostTaskStatus::Success, "{row:?}");
        assert_eq!(row.exit_code, Some(0), "{row:?}");
        let log = api.log(resp.step_instance_id, *id).await.unwrap();
        assert!(log.finished, "{log:?}");
        let want = format!("name=host-{i} ip={}", sb.agent_ip(i));
        assert!(log.content.contains(&want), "host {i}: {:?}", log.content);
    }

    // By default groups share status, exit code and tag: one group of all 8 hosts.
    let groups = api.groups(resp.step_instance_id).await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (
            groups[0].key.status,
            groups[0].host_count,
            &groups[0].key.digest
        ),
        (HostTaskStatus::Success, 8, &None)
    );
    // Each host printed something different, so by output each is a group of its own.
    let groups = api
        .groups_by(resp.step_instance_id, "output")
        .await
        .unwrap();
    assert_eq!(groups.len(), 8, "{groups:?}");
    for g in &groups {
        assert_eq!(
            (g.key.status, g.key.exit_code, g.host_count),
            (HostTaskStatus::Success, Some(0), 1)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_exits_are_grouped_by_exit_code() {
    let (sb, ids) = sandbox(8).await;
    let api = sb.api();
    // host-i exits with i % 3: hosts 0,3,6 -> 0; 1,4,7 -> 1; 2,5 -> 2. No output, so the
    // groups differ only by status and exit code.
    let script = "n=$(hostname); exit $(( ${n#host-} % 3 ))";
    let resp = api.execute(&shell(script, &ids, 60)).await.unwrap();
    let view = api.wait_job(resp.job_instance_id, JOB).await.unwrap();
    assert_eq!(view.job.status, RunStatus::Fail, "{view:?}");
    assert_eq!(view.steps[0].step.status, RunStatus::Fail);

    let rows = api.step_hosts(resp.step_instance_id).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let row = rows.iter().find(|r| r.host_id == *id).unwrap();
        let code = (i % 3) as i32;
        assert_eq!(row.exit_code, Some(code), "{row:?}");
        let want = if code == 0 {
            HostTaskStatus::Success
        } else {
            HostTaskStatus::ScriptNonZeroExit
        };
        assert_eq!(row.status, want, "{row:?}");
    }

    let groups = api.groups(resp.step_instance_id).await.unwrap();
    let mut summary: Vec<_> = groups
        .iter()
        .map(|g| (g.key.status, g.key.exit_code, g.host_count))
        .collect();
    summary.sort_by_key(|g| g.1);
    assert_eq!(
        summary,
        vec![
            (HostTaskStatus::Success, Some(0), 3),
            (HostTaskStatus::ScriptNonZeroExit, Some(1), 3),
            (HostTaskStatus::ScriptNonZeroExit, Some(2), 2),
        ]
    );

    // The host list filtered to one group, named by its whole key.
    let g = groups.iter().find(|g| g.key.exit_code == Some(2)).unwrap();
    let mut query = format!(
        "/api/v1/steps/{}/hosts?group_status=104&group_exit_code=2",
        resp.step_instance_id
    );
    if let Some(d) = &g.key.digest {
        query.push_str(&format!("&group_digest={d}"));
    }
    let page: shoal_types::api::Paged<TaskRow> = api.get(&query).await.unwrap();
    let mut got: Vec<i64> = page.data.iter().map(|r| r.host_id).collect();
    got.sort_unstable();
    let mut want = vec![ids[2], ids[5]];
    want.sort_unstable();
    assert_eq!(got, want);
}
