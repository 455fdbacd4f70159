//! Pins what the API shows of a stored job: a deliberate view. A script step's spec shows the
//! names of its environment variables but never their values, and no step shows the lease
//! (owner server and expiry) the store keeps for it.

use super::*;
use shoal_store::{NewJob, NewStep};
use shoal_types::{HostTaskStatus, JobType, LaunchMode, RunStatus, ScriptSpec, StepType};

#[tokio::test]
async fn job_detail_hides_env_values_owner_and_lease() {
    let f = fixture().await;
    let host = add_web_host(&f).await;
    let spec = ScriptSpec {
        language: shoal_types::Language::Shell,
        content: "echo $DB_PASSWORD".into(),
        args: vec!["-v".into()],
        env: vec![("DB_PASSWORD".into(), "s3cret-value".into())],
        account: "root".into(),
        login_env: false,
        workdir: "/srv".into(),
        timeout_secs: 60,
    };
    let created = f
        .app
        .store
        .create_job(NewJob {
            scope_id: shoal_types::DEFAULT_SCOPE,
            name: "leased".into(),
            job_type: JobType::Script,
            launch_mode: LaunchMode::Api,
            operator: "t".into(),
            start: true,
            now: 1_000,
            steps: vec![NewStep {
                name: "step".into(),
                step_type: StepType::Script,
                spec: serde_json::to_value(&spec).expect("spec"),
                status: RunStatus::Running,
                owner: Some("server-owner-x".into()),
                lease_until: Some(9_999_999_999_999),
                tasks: vec![(host, HostTaskStatus::Waiting)],
            }],
        })
        .await
        .expect("create job");
    // The store keeps what the API must not show.
    let stored = f
        .app
        .store
        .get_step(created.step_ids[0])
        .await
        .expect("get step")
        .expect("step");
    assert_eq!(stored.owner.as_deref(), Some("server-owner-x"));

    let (s, detail) = call(
        &f,
        "GET",
        &format!("/api/v1/jobs/{}", created.job_id),
        None,
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{detail}");
    let text = detail.to_string();
    for hidden in [
        "s3cret-value",
        "server-owner-x",
        "9999999999999",
        "lease_until",
        "owner",
    ] {
        assert!(!text.contains(hidden), "{hidden:?} is shown: {text}");
    }
    let shown = &detail["steps"][0]["step"]["spec"];
    assert_eq!(
        shown["env_names"],
        serde_json::json!(["DB_PASSWORD"]),
        "{shown}"
    );
    assert!(shown.get("env").is_none(), "{shown}");
    assert_eq!(shown["content"], "echo $DB_PASSWORD");
    assert_eq!(shown["args"], serde_json::json!(["-v"]));
    assert_eq!(shown["language"], "shell");
    assert_eq!(shown["timeout_secs"], 60);
}
