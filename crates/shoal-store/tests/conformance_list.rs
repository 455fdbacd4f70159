//! Pins that every conformance case runs: each `pub async fn name(store: &dyn Store)` under
//! `src/conformance/` is listed in the `conformance_tests!` macro (and the macro lists nothing
//! else), so a case added without registering it fails here instead of silently never running.
//! Reads the sources as text, so it runs without the `conformance` feature.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The signature that makes a function a case (helpers take more arguments).
const CASE_PREFIX: &str = "pub async fn ";
const CASE_SUFFIX: &str = "(store: &dyn Store) {";

/// Names of the cases defined in one source text.
fn defined_cases(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix(CASE_PREFIX)?
                .strip_suffix(CASE_SUFFIX)
                .map(str::to_string)
        })
        .collect()
}

/// Names listed in the `conformance_tests!` macro: the identifiers of its `@domain` lines.
fn listed_cases(macro_source: &str) -> BTreeSet<String> {
    let mut listed = BTreeSet::new();
    let mut in_domain = false;
    for line in macro_source.lines().map(str::trim) {
        if line.contains("conformance_tests!(@domain $make;") {
            in_domain = true;
            continue;
        }
        if in_domain && line.starts_with(')') {
            in_domain = false;
            continue;
        }
        if in_domain && let Some(name) = line.strip_suffix(',') {
            listed.insert(name.to_string());
        }
    }
    listed
}

/// What is wrong with the registration: defined but not listed, and listed but not defined.
fn mismatch(defined: &BTreeSet<String>, listed: &BTreeSet<String>) -> Option<String> {
    let unlisted: Vec<&String> = defined.difference(listed).collect();
    let unknown: Vec<&String> = listed.difference(defined).collect();
    if unlisted.is_empty() && unknown.is_empty() {
        return None;
    }
    Some(format!(
        "cases not listed in conformance_tests!: {unlisted:?}; listed but not defined: {unknown:?}"
    ))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read conformance dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_conformance_case_is_listed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let macro_source = std::fs::read_to_string(src.join("conformance.rs")).expect("read");
    let mut files = Vec::new();
    rust_files(&src.join("conformance"), &mut files);
    let mut defined = defined_cases(&macro_source);
    for file in &files {
        defined.extend(defined_cases(
            &std::fs::read_to_string(file).expect("read case file"),
        ));
    }
    let listed = listed_cases(&macro_source);
    assert!(
        listed.len() >= 30,
        "found only {} listed cases",
        listed.len()
    );
    assert_eq!(mismatch(&defined, &listed), None);
}

#[test]
fn check_fails_on_an_unlisted_or_unknown_case() {
    let macro_source = "
        $crate::conformance_tests!(@domain $make; hosts:
            hosts_listed,
            hosts_gone,
        );
    ";
    let cases = "
        pub async fn hosts_listed(store: &dyn Store) {
        pub async fn hosts_new(store: &dyn Store) {
        pub async fn add_host(store: &dyn Store, scope_id: ScopeId) -> Host {
    ";
    let listed = listed_cases(macro_source);
    let defined = defined_cases(cases);
    assert_eq!(
        defined,
        BTreeSet::from(["hosts_listed".to_string(), "hosts_new".to_string()])
    );
    let message = mismatch(&defined, &listed).expect("mismatch found");
    assert!(message.contains("[\"hosts_new\"]"), "{message}");
    assert!(message.contains("[\"hosts_gone\"]"), "{message}");
}
