//! Accounts end to end through the router: console sessions and their CSRF token, sign-in
//! throttling, disabling an account, a role limited to some hosts, and secrets kept out of
//! logs, the audit trail and responses.

use super::*;
use axum::http::HeaderMap;
use shoal_store::{AuditFilter, BindingSource, NewBinding};
use shoal_types::access::Role;
use std::sync::Mutex as StdMutex;

const PASSWORD: &str = "correct horse battery";

/// A request with extra headers; the status, the JSON body and the response headers.
async fn call_h(
    f: &Fixture,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, serde_json::Value, HeaderMap) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Body::from(body.unwrap_or("").to_string()))
        .expect("request");
    let resp = api::router(f.app.clone())
        .oneshot(req)
        .await
        .expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, headers)
}

/// Creates a person with [`PASSWORD`] (as the admin); its id.
async fn person(f: &Fixture, name: &str) -> i64 {
    let body = format!(r#"{{"name":"{name}","password":"{PASSWORD}"}}"#);
    let (s, u) = call(f, "POST", "/api/v1/users", Some(&body), Some(&f.token)).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    u["id"].as_i64().expect("id")
}

async fn bind(f: &Fixture, user_id: i64, role: Role, hosts: &str) {
    f.app
        .store
        .put_binding(NewBinding {
            user_id,
            scope_id: 1,
            role,
            host_selector: hosts.into(),
            source: BindingSource::Manual,
            created_by: "test".into(),
            now: 1,
        })
        .await
        .expect("binding");
}

/// Signs in through the console route; the cookie header to send back and the CSRF token.
async fn sign_in(f: &Fixture, name: &str, password: &str) -> (StatusCode, String, String) {
    let body = format!(r#"{{"name":"{name}","password":"{password}"}}"#);
    let (s, json, headers) = call_h(f, "POST", "/api/web/v1/auth/login", Some(&body), &[]).await;
    let cookies: Vec<String> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    if s == StatusCode::OK {
        let session = cookies
            .iter()
            .find(|c| c.starts_with("shoal_session="))
            .expect("a session cookie");
        assert!(session.contains("HttpOnly"), "{session}");
        assert!(session.contains("SameSite=Lax"), "{session}");
    }
    let jar = cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ");
    let csrf = json["csrf_token"].as_str().unwrap_or("").to_string();
    (s, jar, csrf)
}

async fn audit(f: &Fixture, filter: AuditFilter) -> Vec<shoal_store::AuditEvent> {
    f.app.store.list_audit(&filter, 1000).await.expect("audit")
}

#[tokio::test]
async fn console_sessions_need_their_csrf_token_and_end_on_sign_out() {
    let f = fixture().await;
    let alice = person(&f, "alice").await;
    bind(&f, alice, Role::Operator, "").await;
    let (s, _, _) = sign_in(&f, "alice", "wrong password!").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, jar, csrf) = sign_in(&f, "alice", PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(csrf.len(), 64);
    let cookie = [("cookie", jar.as_str())];
    let (s, who, _) = call_h(&f, "GET", "/api/web/v1/whoami", None, &cookie).await;
    assert_eq!(s, StatusCode::OK, "{who}");
    assert_eq!(who["name"], "alice");
    assert_eq!(who["via"], "session");
    assert_eq!(who["scopes"][0]["role"], "operator");
    // A state-changing request with the cookie but without the CSRF token is refused.
    let body = Some(r#"{"name":"mine"}"#);
    let (s, err, _) = call_h(&f, "POST", "/api/web/v1/tokens", body, &cookie).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("x-csrf-token")
    );
    let wrong = [("cookie", jar.as_str()), ("x-csrf-token", "0000")];
    let (s, _, _) = call_h(&f, "POST", "/api/web/v1/tokens", body, &wrong).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        f.app
            .store
            .list_tokens()
            .await
            .expect("tokens")
            .iter()
            .all(|t| t.user_id != Some(alice))
    );
    let good = [("cookie", jar.as_str()), ("x-csrf-token", csrf.as_str())];
    let (s, t, _) = call_h(&f, "POST", "/api/web/v1/tokens", body, &good).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    // Signing out ends the session; the cookie no longer works.
    let (s, _, headers) = call_h(&f, "POST", "/api/web/v1/auth/logout", None, &good).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().is_ok_and(|c| c.starts_with("shoal_session=;")))
    );
    let (s, _, _) = call_h(&f, "GET", "/api/web/v1/whoami", None, &cookie).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Each sign-in attempt is in the audit trail.
    let logins = audit(
        &f,
        AuditFilter {
            action: Some("auth.login".into()),
            ..Default::default()
        },
    )
    .await;
    let outcomes: Vec<&str> = logins.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["ok", "failed"], "{logins:?}");
    assert!(logins.iter().all(|e| e.resource == "user:alice"));
    let logout = audit(
        &f,
        AuditFilter {
            action: Some("auth.logout".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0].actor, "alice");
    assert_eq!(logout[0].origin, "web");
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled_and_audited() {
    let f = fixture().await;
    person(&f, "bob").await;
    for _ in 0..5 {
        let (s, _, _) = sign_in(&f, "bob", "not the password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while throttled, and the CLI's route is throttled too.
    let body = format!(r#"{{"name":"bob","password":"{PASSWORD}"}}"#);
    let (s, err, _) = call_h(&f, "POST", "/api/web/v1/auth/login", Some(&body), &[]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert_eq!(err["error"]["code"], "TOO_MANY_ATTEMPTS");
    let (s, _, _) = call_h(&f, "POST", "/api/v1/auth/token", Some(&body), &[]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let filter = |outcome: &str| AuditFilter {
        action: Some("auth.login".into()),
        resource: Some("user:bob".into()),
        outcome: Some(outcome.into()),
        ..Default::default()
    };
    assert_eq!(audit(&f, filter("failed")).await.len(), 5);
    assert_eq!(audit(&f, filter("throttled")).await.len(), 2);
    // Another account is not throttled by bob's failures.
    person(&f, "carol").await;
    let (s, _, _) = sign_in(&f, "carol", PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_accounts_sessions_and_tokens_stop_at_once() {
    let f = fixture().await;
    let dave = person(&f, "dave").await;
    bind(&f, dave, Role::Viewer, "").await;
    let (_, jar, _) = sign_in(&f, "dave", PASSWORD).await;
    let body = format!(r#"{{"name":"dave","password":"{PASSWORD}"}}"#);
    let (s, tok, _) = call_h(&f, "POST", "/api/v1/auth/token", Some(&body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{tok}");
    let token = tok["token"].as_str().expect("token").to_string();
    let (s, _) = call(&f, "GET", "/api/v1/hosts", None, Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, u) = call(
        &f,
        "PATCH",
        &format!("/api/v1/users/{dave}"),
        Some(r#"{"enabled":false}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["enabled"], false);
    let (s, _) = call(&f, "GET", "/api/v1/hosts", None, Some(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call_h(
        &f,
        "GET",
        "/api/web/v1/whoami",
        None,
        &[("cookie", jar.as_str())],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = sign_in(&f, "dave", PASSWORD).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a disabled account cannot sign in"
    );
    // Enabled again, its token works; its old session stays ended.
    call(
        &f,
        "PATCH",
        &format!("/api/v1/users/{dave}"),
        Some(r#"{"enabled":true}"#),
        Some(&f.token),
    )
    .await;
    let (s, _) = call(&f, "GET", "/api/v1/hosts", None, Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call_h(
        &f,
        "GET",
        "/api/web/v1/whoami",
        None,
        &[("cookie", jar.as_str())],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_bound_to_staging_cannot_launch_on_production() {
    let f = fixture().await;
    let label = |env: &str| {
        let mut l = shoal_types::Labels::new();
        l.insert("env".into(), env.into());
        l
    };
    let store = f.app.store.clone();
    let web =
        shoal_store::conformance::add_host(&*store, 1, "web1", &["10.0.0.1"], label("staging"))
            .await
            .id;
    let db = shoal_store::conformance::add_host(&*store, 1, "db1", &["10.0.0.2"], label("prod"))
        .await
        .id;
    let erin = person(&f, "erin").await;
    bind(&f, erin, Role::Operator, "env=staging").await;
    let (token, _) = auth::issue_token(&f.app, auth::TokenSpec::api("erin", erin), "test")
        .await
        .expect("token");
    let launch = |targets: String| {
        format!(r#"{{"script":"echo hi","language":"shell","targets":{targets}}}"#)
    };
    let jobs = |f: &Fixture| {
        let store = f.app.store.clone();
        async move {
            store
                .list_jobs(&Default::default(), shoal_store::Page::first(100))
                .await
                .expect("jobs")
                .total
        }
    };
    for targets in [
        format!(r#"{{"host_ids":[{web},{db}]}}"#),
        r#"{"selector":"env in (staging,prod)"}"#.to_string(),
        r#"{"ips":["10.0.0.2"]}"#.to_string(),
    ] {
        let (s, err) = call(
            &f,
            "POST",
            "/api/v1/script-executions",
            Some(&launch(targets.clone())),
            Some(&token),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{targets}: {err}");
        let msg = err["error"]["message"].as_str().expect("message");
        assert!(
            msg.contains("db1 (10.0.0.2)") && !msg.contains("web1"),
            "{msg}"
        );
        assert!(msg.contains("env=staging"), "{msg}");
        assert_eq!(jobs(&f).await, 0, "nothing is created");
    }
    // A file transfer reading from a production host is refused the same way.
    let transfer = format!(
        r#"{{"file_target_path":"/tmp/x","file_source_list":[{{"file_list":["/etc/hosts"],"targets":{{"host_ids":[{db}]}}}}],"targets":{{"host_ids":[{web}]}}}}"#
    );
    let (s, err) = call(
        &f,
        "POST",
        "/api/v1/file-transfers",
        Some(&transfer),
        Some(&token),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(jobs(&f).await, 0);
    let (s, ok) = call(
        &f,
        "POST",
        "/api/v1/script-executions",
        Some(&launch(format!(r#"{{"host_ids":[{web}]}}"#))),
        Some(&token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    assert_eq!(jobs(&f).await, 1);
    let refused = audit(
        &f,
        AuditFilter {
            actor: Some("erin".into()),
            outcome: Some("denied".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(
        refused[0].detail.contains("PERMISSION_DENIED"),
        "{:?}",
        refused[0]
    );
}

/// Collects everything logged on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<StdMutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_the_audit_trail_or_responses() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture().await;
    let frank = person(&f, "frank").await;
    bind(&f, frank, Role::Owner, "").await;
    let (s, jar, csrf) = sign_in(&f, "frank", PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    let session = jar
        .split("; ")
        .find_map(|c| c.strip_prefix("shoal_session="))
        .expect("session id")
        .to_string();
    sign_in(&f, "frank", "a wrong one!!").await;
    let body = format!(r#"{{"name":"frank","password":"{PASSWORD}"}}"#);
    let (_, tok, _) = call_h(&f, "POST", "/api/v1/auth/token", Some(&body), &[]).await;
    let cli_token = tok["token"].as_str().expect("token").to_string();
    let (_, made) = call(
        &f,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"name":"ci"}"#),
        Some(&cli_token),
    )
    .await;
    let api_token = made["token"].as_str().expect("token").to_string();
    let new_password = "another long password";
    call(
        &f,
        "PATCH",
        &format!("/api/v1/users/{frank}"),
        Some(&format!(r#"{{"password":"{new_password}"}}"#)),
        Some(&f.token),
    )
    .await;
    let secrets = [
        PASSWORD,
        new_password,
        session.as_str(),
        csrf.as_str(),
        cli_token.as_str(),
        api_token.as_str(),
        f.token.as_str(),
    ];
    let mut seen = String::new();
    for uri in [
        "/api/v1/tokens",
        "/api/v1/users",
        "/api/v1/audit",
        "/api/v1/whoami",
        "/api/v1/role-bindings",
    ] {
        let (s, json) = call(&f, "GET", uri, None, Some(&f.token)).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        seen.push_str(&json.to_string());
    }
    let req = Request::builder()
        .uri("/api/v1/audit/export")
        .header("authorization", format!("Bearer {}", f.token))
        .body(Body::empty())
        .expect("request");
    let resp = api::router(f.app.clone())
        .oneshot(req)
        .await
        .expect("export");
    let export = resp.into_body().collect().await.expect("body").to_bytes();
    let export = String::from_utf8_lossy(&export).to_string();
    assert!(export.lines().count() >= 5, "{export}");
    assert!(export.contains("auth.login"));
    seen.push_str(&export);
    let logged = String::from_utf8_lossy(&logs.0.lock().expect("logs")).to_string();
    assert!(!logged.is_empty(), "the logs were captured");
    for secret in secrets {
        assert!(
            !seen.contains(secret),
            "a response or the audit trail shows a secret"
        );
        assert!(!logged.contains(secret), "the log shows a secret");
    }
    // Nor are the stored hashes shown.
    for user in f.app.store.list_users().await.expect("users") {
        if let Some(hash) = user.password_hash {
            assert!(!seen.contains(&hash) && !logged.contains(&hash));
        }
    }
}

#[tokio::test]
async fn the_audit_export_streams_every_batch_compressed_or_not_at_any_range() {
    let f = fixture().await;
    // More than one export batch.
    for i in 0..2500 {
        f.app
            .store
            .append_audit(shoal_store::NewAuditEvent {
                at: i,
                action: "test.fill".into(),
                outcome: "ok".into(),
                ..Default::default()
            })
            .await
            .expect("append");
    }
    for q in [
        "from=-9223372036854775808&actor=&action=&address=",
        "to=-9223372036854775808",
        "from=9223372036854775807&before_id=-9223372036854775808",
    ] {
        let req = Request::builder()
            .uri(format!("/api/v1/audit/export?{q}"))
            .header("authorization", format!("Bearer {}", f.token))
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .expect("request");
        let resp = api::router(f.app.clone())
            .oneshot(req)
            .await
            .expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await;
        assert!(body.is_ok(), "{q}: the export stream ends cleanly");
        let list = format!("/api/v1/audit?{q}").replace("before_id=-9223372036854775808", "");
        let (s, json) = call(&f, "GET", &list, None, Some(&f.token)).await;
        assert!(
            status.is_success() || status.is_client_error(),
            "{q}: {status}"
        );
        assert!(s.is_success() || s.is_client_error(), "{list}: {s} {json}");
    }
}
