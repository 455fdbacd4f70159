//! Pins the OpenAPI description: it covers every route the router serves (and nothing else),
//! names the bearer scheme and every error code, is served at `/api/v1/openapi.json` behind
//! the token, and the snapshot the console's types are generated from (`web/openapi.json`)
//! is exactly what the code generates. `UPDATE_OPENAPI=1` rewrites the snapshot.

use super::*;
use std::collections::BTreeSet;

fn described() -> serde_json::Value {
    serde_json::from_str(&api::openapi()).expect("the description is JSON")
}

/// `(METHOD, path)` of every route in `api/mod.rs`, read from its `.route(...)` calls; paths
/// under the API are prefixed with `/api/v1` as the router nests them.
fn routed() -> BTreeSet<(String, String)> {
    let src = include_str!("../api/mod.rs");
    let mut out = BTreeSet::new();
    for call in src.split(".route(").skip(1) {
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        // The handlers of one route run up to the next route (or the end of the router).
        let body = call.split(".route(").next().unwrap_or("");
        let body = body.split(".fallback(").next().unwrap_or(body);
        let body = body.split(".layer(").next().unwrap_or(body);
        let full = if path.starts_with("/healthz") || path.starts_with("/metrics") {
            path.to_string()
        } else {
            format!("/api/v1{path}")
        };
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = body.contains(&format!("{method}("))
                && body
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i == 0 || !body.as_bytes()[i - 1].is_ascii_alphanumeric());
            if called {
                out.insert((method.to_uppercase(), full.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let doc = described();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routed = routed();
    assert!(
        routed.len() > 30,
        "the route parser found too few: {routed:?}"
    );
    assert_eq!(documented, routed);
}

#[test]
fn errors_codes_and_auth_are_described() {
    let doc = described();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http", "{schemes}");
    assert_eq!(schemes["scheme"], "bearer", "{schemes}");
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode lists its codes")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for code in [
        "UNAUTHENTICATED",
        "UNKNOWN_SCOPE",
        "URI_TOO_LONG",
        "INTERNAL",
        "UNAVAILABLE",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let Some(responses) = op.get("responses") else {
                continue;
            };
            for range in ["4XX", "5XX"] {
                assert_eq!(
                    responses[range]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {range}"
                );
            }
        }
    }
    // Health is the one endpoint without a token.
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
}

#[tokio::test]
async fn the_description_is_served_behind_the_token() {
    let f = fixture().await;
    let (s, json) = call(&f, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{json}");
    let (s, json) = call(&f, "GET", "/api/v1/openapi.json", None, Some(&f.token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json, described());
}

#[test]
fn the_committed_snapshot_is_what_the_code_generates() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/openapi.json");
    let generated = api::openapi();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write web/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "web/openapi.json differs from the API the code describes: run \
         `UPDATE_OPENAPI=1 cargo nextest run -p shoal-server -E 'test(committed_snapshot)'` \
         and commit it (the console's types are generated from it)"
    );
}
