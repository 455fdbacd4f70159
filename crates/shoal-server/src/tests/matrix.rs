//! The permission matrix: every endpoint, called by an account of each role (none, viewer,
//! operator, developer, owner of the scope, owner of another scope, platform admin). The calls
//! a role allows succeed; the others get 403 PERMISSION_DENIED and change nothing stored. Runs
//! on SQLite and on PostgreSQL.

use super::*;
use shoal_store::{BindingSource, NewBinding};
use shoal_types::access::{Permission, Role};

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Viewer,
    Operator,
    Developer,
    Owner,
    /// Owner of scope 2, nothing in scope 1.
    OtherOwner,
    Admin,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Viewer,
    Who::Operator,
    Who::Developer,
    Who::Owner,
    Who::OtherOwner,
    Who::Admin,
];

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Nobody => "nobody",
            Who::Viewer => "viewer",
            Who::Operator => "operator",
            Who::Developer => "developer",
            Who::Owner => "owner",
            Who::OtherOwner => "other-owner",
            Who::Admin => "admin",
        }
    }
    /// The role in scope 1.
    fn role(self) -> Option<Role> {
        match self {
            Who::Viewer => Some(Role::Viewer),
            Who::Operator => Some(Role::Operator),
            Who::Developer => Some(Role::Developer),
            Who::Owner => Some(Role::Owner),
            _ => None,
        }
    }
}

/// What an endpoint needs.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// Any account.
    Any,
    /// The permission in scope 1.
    In(Permission),
    /// The permission in some scope.
    Anywhere(Permission),
    /// Platform admin only.
    AdminOnly,
}

fn allowed(who: Who, need: Need) -> bool {
    if who == Who::Admin {
        return true;
    }
    match need {
        Need::Any => true,
        Need::In(p) => who.role().is_some_and(|r| r.grants(p)),
        Need::Anywhere(p) => {
            who.role().is_some_and(|r| r.grants(p))
                || (who == Who::OtherOwner && Role::Owner.grants(p))
        }
        Need::AdminOnly => false,
    }
}

/// One row: a call and what it needs. `{who}` in the path or body becomes the caller's name,
/// so that creations do not collide. `tolerate` lists statuses an allowed call may get besides
/// 2xx (a job that already ended cannot be terminated).
struct Row {
    method: &'static str,
    path: String,
    body: Option<String>,
    need: Need,
    tolerate: &'static [u16],
    /// A stream: only the status is read.
    stream: bool,
}

fn row(method: &'static str, path: impl Into<String>, body: Option<&str>, need: Need) -> Row {
    Row {
        method,
        path: path.into(),
        body: body.map(str::to_string),
        need,
        tolerate: &[],
        stream: false,
    }
}

struct World {
    f: Fixture,
    tokens: Vec<(Who, String)>,
    web: i64,
    spare: i64,
    group: i64,
    job: i64,
    step: i64,
    upload: String,
    victim: i64,
    victim_token: i64,
    /// A group per caller, for it to delete (`{del}` in a path).
    del_groups: Vec<(Who, i64)>,
}

async fn world(f: Fixture) -> World {
    let store = f.app.store.clone();
    let scope2 = store.create_scope("other", 1).await.expect("scope 2").id;
    let mut labels = shoal_types::Labels::new();
    labels.insert("env".into(), "staging".into());
    let web = shoal_store::conformance::add_host(&*store, 1, "web1", &["10.0.0.1"], labels)
        .await
        .id;
    let spare =
        shoal_store::conformance::add_host(&*store, 1, "spare1", &["10.0.0.9"], Default::default())
            .await
            .id;
    let mut tokens = Vec::new();
    let mut del_groups = Vec::new();
    for who in EVERYONE {
        let g = store
            .create_group(shoal_store::NewGroup {
                scope_id: 1,
                name: format!("del-{}", who.name()),
                selector: "env=x".into(),
                now: 1,
            })
            .await
            .expect("group");
        del_groups.push((who, g.id));
        let user = if who == Who::Admin {
            store
                .get_user(crate::ADMIN_USER_ID)
                .await
                .expect("get")
                .expect("admin")
        } else {
            shoal_store::conformance::add_user(&*store, who.name()).await
        };
        let binding = match who {
            Who::OtherOwner => Some((scope2, Role::Owner)),
            w => w.role().map(|r| (1, r)),
        };
        if let Some((scope_id, role)) = binding {
            store
                .put_binding(NewBinding {
                    user_id: user.id,
                    scope_id,
                    role,
                    host_selector: String::new(),
                    source: BindingSource::Manual,
                    created_by: "test".into(),
                    now: 1,
                })
                .await
                .expect("binding");
        }
        let (secret, _) =
            auth::issue_token(&f.app, auth::TokenSpec::api(who.name(), user.id), "test")
                .await
                .expect("token");
        tokens.push((who, secret));
    }
    let victim = shoal_store::conformance::add_user(&*store, "victim")
        .await
        .id;
    let (_, victim_token) = auth::issue_token(&f.app, auth::TokenSpec::api("v", victim), "test")
        .await
        .expect("victim token");
    let (s, g) = call(
        &f,
        "POST",
        "/api/v1/groups",
        Some(r#"{"scope_id":1,"name":"web","selector":"env=staging"}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let body = format!(
        r#"{{"scope_id":1,"script":"echo hi","language":"shell","targets":{{"host_ids":[{web}]}}}}"#
    );
    let (s, job) = call(
        &f,
        "POST",
        "/api/v1/script-executions",
        Some(&body),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{job}");
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/uploads?name=a.txt")
        .header("authorization", format!("Bearer {}", f.token))
        .body(Body::from("hello"))
        .expect("request");
    let (s, up) = send(&f, req).await;
    assert_eq!(s, StatusCode::OK, "{up}");
    World {
        web,
        spare,
        group: g["id"].as_i64().expect("group id"),
        job: job["job_instance_id"].as_i64().expect("job id"),
        step: job["step_instance_id"].as_i64().expect("step id"),
        upload: up["upload_id"].as_str().expect("upload id").to_string(),
        victim,
        victim_token: victim_token.id,
        del_groups,
        tokens,
        f,
    }
}

fn rows(w: &World) -> Vec<Row> {
    use Need::*;
    use Permission::*;
    let (web, spare, group, job, step, victim) = (w.web, w.spare, w.group, w.job, w.step, w.victim);
    let script = format!(
        r#"{{"scope_id":1,"script":"echo {{who}}","language":"shell","targets":{{"host_ids":[{web}]}}}}"#
    );
    let transfer = format!(
        r#"{{"scope_id":1,"file_target_path":"/tmp/m","file_source_list":[{{"upload_id":"{}"}}],"targets":{{"host_ids":[{web}]}}}}"#,
        w.upload
    );
    vec![
        row("GET", "/api/v1/whoami", None, Any),
        row("GET", "/api/v1/scopes", None, Any),
        row(
            "POST",
            "/api/v1/scopes",
            Some(r#"{"name":"s-{who}"}"#),
            AdminOnly,
        ),
        row("GET", "/api/v1/tokens", None, Any),
        row("POST", "/api/v1/tokens", Some(r#"{"name":"mine"}"#), Any),
        row(
            "POST",
            "/api/v1/tokens",
            Some(r#"{"name":"e","kind":"enroll","scope_id":1}"#),
            In(Administer),
        ),
        row(
            "POST",
            "/api/v1/tokens",
            Some(&format!(r#"{{"name":"for-victim","user_id":{victim}}}"#)),
            AdminOnly,
        ),
        row(
            "DELETE",
            format!("/api/v1/tokens/{}", w.victim_token),
            None,
            AdminOnly,
        ),
        row("GET", "/api/v1/hosts?scope_id=1", None, In(View)),
        row("GET", "/api/v1/hosts/summary?scope_id=1", None, In(View)),
        row("GET", format!("/api/v1/hosts/{web}"), None, In(View)),
        row(
            "PUT",
            format!("/api/v1/hosts/{web}/labels"),
            Some(r#"{"labels":{"env":"staging"}}"#),
            In(Manage),
        ),
        row(
            "POST",
            format!("/api/v1/hosts/{spare}/revoke"),
            None,
            In(Administer),
        ),
        row("GET", "/api/v1/groups?scope_id=1", None, In(View)),
        row(
            "POST",
            "/api/v1/groups",
            Some(r#"{"scope_id":1,"name":"g-{who}","selector":"env=x"}"#),
            In(Manage),
        ),
        row("GET", format!("/api/v1/groups/{group}"), None, In(View)),
        row(
            "PUT",
            format!("/api/v1/groups/{group}"),
            Some(r#"{"scope_id":1,"name":"web","selector":"env=staging"}"#),
            In(Manage),
        ),
        row("DELETE", "/api/v1/groups/{del}", None, In(Manage)),
        row(
            "POST",
            "/api/v1/targets/preview",
            Some(&format!(
                r#"{{"scope_id":1,"targets":{{"host_ids":[{web}]}}}}"#
            )),
            In(View),
        ),
        row(
            "POST",
            "/api/v1/script-executions",
            Some(&script),
            In(Execute),
        ),
        row(
            "POST",
            "/api/v1/file-transfers",
            Some(&transfer),
            In(Execute),
        ),
        row(
            "GET",
            format!("/api/v1/uploads/{}", w.upload),
            None,
            Anywhere(Execute),
        ),
        row("GET", "/api/v1/jobs?scope_id=1", None, In(View)),
        row("GET", format!("/api/v1/jobs/{job}"), None, In(View)),
        Row {
            stream: true,
            ..row("GET", format!("/api/v1/jobs/{job}/events"), None, In(View))
        },
        Row {
            tolerate: &[409],
            ..row(
                "POST",
                format!("/api/v1/jobs/{job}/terminate"),
                None,
                In(Operate),
            )
        },
        Row {
            tolerate: &[409],
            ..row(
                "POST",
                format!("/api/v1/steps/{step}/retry"),
                Some(r#"{"mode":"failed"}"#),
                In(Operate),
            )
        },
        row("GET", format!("/api/v1/steps/{step}/hosts"), None, In(View)),
        row(
            "GET",
            format!("/api/v1/steps/{step}/groups"),
            None,
            In(View),
        ),
        row(
            "GET",
            format!("/api/v1/steps/{step}/hosts/{web}/log"),
            None,
            In(View),
        ),
        Row {
            tolerate: &[400],
            ..row("GET", format!("/api/v1/steps/{step}/files"), None, In(View))
        },
        Row {
            tolerate: &[400],
            ..row(
                "GET",
                format!("/api/v1/steps/{step}/files/summary"),
                None,
                In(View),
            )
        },
        row("GET", "/api/v1/users", None, Anywhere(Administer)),
        row(
            "POST",
            "/api/v1/users",
            Some(r#"{"name":"u-{who}"}"#),
            AdminOnly,
        ),
        row("GET", format!("/api/v1/users/{victim}"), None, AdminOnly),
        row(
            "PATCH",
            format!("/api/v1/users/{victim}"),
            Some(r#"{"display_name":"V"}"#),
            AdminOnly,
        ),
        row(
            "POST",
            format!("/api/v1/users/{victim}/sessions/revoke"),
            None,
            AdminOnly,
        ),
        row(
            "GET",
            "/api/v1/role-bindings?scope_id=1",
            None,
            In(Administer),
        ),
        row(
            "PUT",
            "/api/v1/role-bindings",
            Some(&format!(
                r#"{{"user_id":{victim},"scope_id":1,"role":"viewer"}}"#
            )),
            In(Administer),
        ),
        row("GET", "/api/v1/audit", None, Anywhere(Administer)),
        row("GET", "/api/v1/audit?scope_id=1", None, In(Administer)),
        Row {
            stream: true,
            ..row("GET", "/api/v1/audit/export", None, Anywhere(Administer))
        },
        row("GET", "/api/v1/openapi.json", None, Any),
        row("GET", "/metrics", None, Any),
    ]
}

/// What is stored, as far as any endpoint could change it.
async fn snapshot(app: &App) -> String {
    let s = &app.store;
    let page = shoal_store::Page::first(10_000);
    let tokens: Vec<_> = s
        .list_tokens()
        .await
        .expect("tokens")
        .into_iter()
        .map(|t| (t.id, t.name, t.user_id, t.revoked_at))
        .collect();
    let hosts = s
        .list_hosts(
            &shoal_store::HostFilter {
                include_revoked: true,
                ..Default::default()
            },
            page,
        )
        .await
        .expect("hosts");
    let jobs = s.list_jobs(&Default::default(), page).await.expect("jobs");
    format!(
        "{:?}\n{tokens:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        s.list_scopes().await.expect("scopes"),
        s.list_users().await.expect("users"),
        s.list_bindings(None, None).await.expect("bindings"),
        hosts
            .data
            .iter()
            .map(|h| (h.id, &h.labels, h.revoked_at))
            .collect::<Vec<_>>(),
        s.list_groups(None).await.expect("groups"),
        jobs.data
            .iter()
            .map(|j| (j.id, j.status))
            .collect::<Vec<_>>(),
    )
}

async fn matrix(f: Fixture) {
    let w = world(f).await;
    let rows = rows(&w);
    assert!(rows.len() >= 40, "every endpoint has a row");
    let mut failures = Vec::new();
    for r in &rows {
        for (who, token) in &w.tokens {
            let del = w
                .del_groups
                .iter()
                .find(|(d, _)| d == who)
                .map_or(0, |(_, g)| *g);
            let path = r
                .path
                .replace("{who}", who.name())
                .replace("{del}", &del.to_string());
            let body = r.body.as_ref().map(|b| b.replace("{who}", who.name()));
            let before = snapshot(&w.f.app).await;
            let mut req = Request::builder()
                .method(r.method)
                .uri(&path)
                .header("authorization", format!("Bearer {token}"));
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            let req = req
                .body(Body::from(body.clone().unwrap_or_default()))
                .expect("request");
            let (status, json) = if r.stream {
                let resp = api::router(w.f.app.clone())
                    .oneshot(req)
                    .await
                    .expect("response");
                (resp.status(), serde_json::Value::Null)
            } else {
                send(&w.f, req).await
            };
            let ok = allowed(*who, r.need);
            let s = status.as_u16();
            let call = format!("{} {path} as {}", r.method, who.name());
            if ok {
                if !(status.is_success() || r.tolerate.contains(&s)) {
                    failures.push(format!("{call}: allowed but got {s} {json}"));
                }
            } else {
                if s != 403 || json["error"]["code"] != "PERMISSION_DENIED" && !r.stream {
                    failures.push(format!("{call}: should be refused, got {s} {json}"));
                }
                let after = snapshot(&w.f.app).await;
                if before != after {
                    failures.push(format!("{call}: a refused call changed what is stored"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Refusals are in the audit trail as denied, with the account that tried.
    let denied =
        w.f.app
            .store
            .list_audit(
                &shoal_store::AuditFilter {
                    actor: Some("viewer".into()),
                    outcome: Some("denied".into()),
                    ..Default::default()
                },
                1000,
            )
            .await
            .expect("audit");
    assert!(
        denied
            .iter()
            .any(|e| e.action == "job.execute_script" && e.scope_id == Some(1)),
        "a refused launch is audited with its scope: {denied:?}"
    );
}

#[tokio::test]
async fn every_endpoint_allows_exactly_its_roles_on_sqlite() {
    matrix(fixture().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_allows_exactly_its_roles_on_postgres() {
    matrix(fixture_pg("shoal_matrix").await).await;
}
