//! Single sign-on end to end through the server's routes and a real provider (tests/oidc): the
//! start route sends the browser to the provider, the callback signs the account in (created
//! at first sign-in, roles from its groups) with a console session; a name taken by a local
//! account and a forged state go back to the sign-in page with the reason.

use super::oidc_provider::{STEP, browse, options, start_provider};
use super::*;
use shoal_store::AuditFilter;
use tokio::time::timeout;

/// `GET path` through the router with optional cookies; status, Location, Set-Cookie values.
async fn get(f: &Fixture, path: &str, cookie: Option<&str>) -> (StatusCode, String, Vec<String>) {
    let mut req = Request::builder().uri(path);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = api::router(f.app.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
        .to_string();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    (resp.status(), location, cookies)
}

/// Walks a sign-in as `login` from the start route to the callback's answer.
async fn sso(f: &Fixture, login: &str) -> (StatusCode, String, Vec<String>) {
    let (s, to_provider, _) = get(f, "/api/web/v1/auth/oidc/start", None).await;
    assert_eq!(s, StatusCode::FOUND);
    let (code, state) = timeout(STEP, browse(&to_provider, login))
        .await
        .expect("the walk through the provider within the step timeout");
    let q = |v: &str| {
        v.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    get(
        f,
        &format!(
            "/api/web/v1/auth/oidc/callback?code={}&state={}",
            q(&code),
            q(&state)
        ),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_creates_the_account_with_its_group_roles() {
    let p = start_provider(false).await;
    let issuer = p.issuer.clone();
    let f = fixture_with(move |o| o.oidc = Some(options(&issuer))).await;
    let (s, config) = call(&f, "GET", "/api/web/v1/auth/config", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(config["sso"]["label"], "SSO");

    let (s, to, cookies) = sso(&f, "alice").await;
    assert_eq!(s, StatusCode::FOUND);
    assert_eq!(to, "/", "signed in, back to the console");
    let jar = cookies.join("; ");
    assert!(
        jar.contains("shoal_session=") && jar.contains("shoal_csrf="),
        "{jar}"
    );
    let req = Request::builder()
        .uri("/api/web/v1/whoami")
        .header("cookie", &jar)
        .body(Body::empty())
        .expect("request");
    let (s, who) = send(&f, req).await;
    assert_eq!(s, StatusCode::OK, "{who}");
    assert_eq!(who["name"], "alice");
    assert_eq!(who["is_admin"], false);
    // alice is in "ops": operator in the default scope, outside production.
    assert_eq!(who["scopes"][0]["role"], "operator");
    assert_eq!(who["scopes"][0]["host_selector"], "env!=prod");
    let alice = f
        .app
        .store
        .find_user("alice")
        .await
        .expect("find")
        .expect("created");
    assert_eq!(alice.source, "oidc");
    assert!(alice.password_hash.is_none());
    assert_eq!(alice.email, "alice@example.test");

    // bob is in "admins": a platform admin. Signing in again keeps one account.
    for _ in 0..2 {
        let (s, to, _) = sso(&f, "bob").await;
        assert_eq!((s, to.as_str()), (StatusCode::FOUND, "/"));
    }
    let bobs = f.app.store.list_users().await.expect("users");
    assert_eq!(bobs.iter().filter(|u| u.name == "bob").count(), 1);
    assert!(bobs.iter().any(|u| u.name == "bob" && u.is_admin));
    let ok = f
        .app
        .store
        .list_audit(
            &AuditFilter {
                action: Some("auth.login".into()),
                outcome: Some("ok".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("audit");
    assert_eq!(ok.len(), 3);
    assert!(ok.iter().all(|e| e.detail == "sso"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_never_takes_over_a_local_account_and_refuses_forged_states() {
    let p = start_provider(false).await;
    let issuer = p.issuer.clone();
    let f = fixture_with(move |o| o.oidc = Some(options(&issuer))).await;
    let (s, _) = call(
        &f,
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"alice","password":"a local password"}"#),
        Some(&f.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, to, cookies) = sso(&f, "alice").await;
    assert_eq!(s, StatusCode::FOUND);
    assert!(
        to.starts_with("/login?sso_error=") && to.contains("exists"),
        "{to}"
    );
    assert!(cookies.is_empty(), "no session: {cookies:?}");
    let alice = f
        .app
        .store
        .find_user("alice")
        .await
        .expect("find")
        .expect("local");
    assert_eq!(alice.source, "local");
    let (s, to, _) = get(
        &f,
        "/api/web/v1/auth/oidc/callback?code=forged&state=forged",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FOUND);
    assert!(to.starts_with("/login?sso_error="), "{to}");
    assert!(
        !to.contains("forged"),
        "the error does not echo the code: {to}"
    );
    // Without single sign-on configured, the start route says so.
    let plain = fixture().await;
    let (s, json) = call(&plain, "GET", "/api/web/v1/auth/oidc/start", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{json}");
}
