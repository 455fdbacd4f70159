// Pins the agent's dependency invariant: nothing it links (directly or transitively, per
// Cargo.lock) is a storage, HTTP-server or HTTP-client crate, or any shoal server-side crate.

use std::collections::{BTreeMap, BTreeSet};

const FORBIDDEN: &[&str] = &[
    "sqlx",
    "axum",
    "hyper",
    "reqwest",
    "tower-http",
    "rusqlite",
    "tokio-postgres",
    "shoal-store",
    "shoal-store-sqlite",
    "shoal-store-postgres",
    "shoal-server",
    "shoal-engine",
    "shoal-client",
];

/// Package name -> names of its dependencies, from the workspace's Cargo.lock.
fn lock_graph() -> BTreeMap<String, BTreeSet<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let text = std::fs::read_to_string(path).expect("Cargo.lock");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = BTreeSet::new();
        let mut in_deps = false;
        for line in block.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                let dep = line.trim_matches(|c| c == '"' || c == ',');
                deps.insert(dep.split(' ').next().unwrap_or(dep).to_owned());
            }
        }
        if let Some(name) = name {
            graph.entry(name).or_default().extend(deps);
        }
    }
    graph
}

#[test]
fn agent_links_no_server_side_crates() {
    let graph = lock_graph();
    // Dev-dependencies appear in Cargo.lock too; they are test-only and allowed to be anything.
    let dev_only = ["rcgen", "tempfile"];
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = graph
        .get("shoal-agent")
        .expect("shoal-agent in Cargo.lock")
        .iter()
        .filter(|d| !dev_only.contains(&d.as_str()))
        .cloned()
        .collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        assert!(
            !FORBIDDEN.contains(&name.as_str()),
            "shoal-agent depends on {name}"
        );
        todo.extend(graph.get(&name).into_iter().flatten().cloned());
    }
    assert!(seen.contains("tokio-rustls"));
}
