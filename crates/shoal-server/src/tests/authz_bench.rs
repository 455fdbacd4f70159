//! The cost of authentication and authorization per API request: the median latency of a read
//! endpoint (`GET /api/v1/hosts/{id}`) through the full router, as a viewer with a token (the
//! token, its account and its roles are looked up and checked), against the same router acting
//! as a fixed caller with nothing looked up. A benchmark, not a test: it prints its figures and
//! asserts only that both paths answered. Run it with `make bench-authz`.

use super::*;
use shoal_store::{BindingSource, NewBinding};
use shoal_types::access::Role;
use std::time::Instant;

const ROUNDS: usize = 3000;

async fn time_one(router: &axum::Router, uri: &str, token: Option<&str>) -> f64 {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Body::empty()).expect("request");
    let started = Instant::now();
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let _ = resp.into_body().collect().await.expect("body");
    let took = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, StatusCode::OK, "{uri}");
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test]
#[ignore = "a benchmark: make bench-authz"]
async fn authorization_overhead_per_read_request() {
    let f = fixture().await;
    let host = add_web_host(&f).await;
    let user = shoal_store::conformance::add_user(&*f.app.store, "reader").await;
    f.app
        .store
        .put_binding(NewBinding {
            user_id: user.id,
            scope_id: 1,
            role: Role::Viewer,
            host_selector: String::new(),
            source: BindingSource::Manual,
            created_by: "bench".into(),
            now: 1,
        })
        .await
        .expect("binding");
    let (token, _) = auth::issue_token(&f.app, auth::TokenSpec::api("bench", user.id), "bench")
        .await
        .expect("token");
    let full = api::router(f.app.clone());
    let fixed = api::router_as(f.app.clone(), auth::Caller::test_admin("bench"));
    let uri = format!("/api/v1/hosts/{host}");
    for _ in 0..200 {
        time_one(&full, &uri, Some(&token)).await;
        time_one(&fixed, &uri, None).await;
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    // Interleaved, so that drift on a shared machine hits both alike.
    for _ in 0..ROUNDS {
        with.push(time_one(&full, &uri, Some(&token)).await);
        without.push(time_one(&fixed, &uri, None).await);
    }
    let (w, wo) = (median(with), median(without));
    println!(
        "authz: GET /api/v1/hosts/{{id}} on SQLite, {ROUNDS} interleaved requests each: \
         median {w:.3} ms with authentication and authorization, {wo:.3} ms without; \
         overhead {:.3} ms ({:.2}x)",
        w - wo,
        w / wo
    );
}
