//! End to end: signing in, accounts, roles and the audit trail from the `shoal` binary against
//! a real `shoal server`. Pins the promises of `shoal login` (a 0600 credentials file in a 0700
//! directory under XDG_CONFIG_HOME, used by later commands when no token is given; a wrong
//! password exits 3 with the server's message and stores nothing), that a role granted with
//! `shoal role grant` shows in the new account's `shoal whoami`, that `shoal audit` lists and
//! exports the sign-ins and the grant, and that `shoal logout` revokes the stored token.

#[allow(dead_code)] // this file uses only part of the shared harness
mod support;

use std::path::Path;
use support::{Out, Server, shoal_alone};

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn admin_password(server: &Server) -> String {
    let text = std::fs::read_to_string(server.data_dir().join("admin.password"))
        .expect("the server writes DATA_DIR/admin.password on first start");
    text.trim_end_matches('\n').to_string()
}

/// The stored token of the only server in a credentials file.
fn stored_token(credentials: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(credentials).expect("credentials"))
            .expect("credentials are JSON");
    v["servers"][0]["token"]
        .as_str()
        .expect("a stored token")
        .to_string()
}

fn audit(server: &Server, config: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit", "list", "--json"];
    all.extend_from_slice(args);
    server
        .shoal_in(config, &all, None)
        .expect_code(0)
        .json()
        .as_array()
        .cloned()
        .expect("a JSON array of records")
}

fn no_secret(out: &Out, secret: &str) {
    assert!(
        !out.text().contains(secret) && !out.stderr.contains(secret),
        "a secret was printed:\n{}\n{}",
        out.text(),
        out.stderr
    );
}

#[test]
fn login_roles_audit_and_logout() {
    let server = Server::start();
    let admin_cfg = server.dir.path().join("admin-config");
    let alice_cfg = server.dir.path().join("alice-config");
    let password = admin_password(&server);

    // Sign in as the built-in admin: the token is stored, private, and never printed.
    let out = server
        .shoal_in(
            &admin_cfg,
            &["login", "--user", "admin", "--password-stdin"],
            Some(&format!("{password}\n")),
        )
        .expect_code(0);
    assert!(out.text().contains("platform admin"), "{}", out.text());
    no_secret(&out, &password);
    let credentials = admin_cfg.join("shoal").join("credentials");
    assert_eq!(mode(&credentials), 0o600);
    assert_eq!(mode(&admin_cfg.join("shoal")), 0o700);
    let admin_token = stored_token(&credentials);
    no_secret(&out, &admin_token);
    let text = std::fs::read_to_string(&credentials).expect("credentials");
    assert!(text.contains(&server.url()), "{text}");

    // Later commands use it without --token.
    let who = server
        .shoal_in(&admin_cfg, &["whoami", "--json"], None)
        .expect_code(0)
        .json();
    assert_eq!(who["name"], "admin");
    assert_eq!(who["is_admin"], true);
    assert_eq!(who["via"], "token");
    let tokens = server
        .shoal_in(&admin_cfg, &["token", "list", "--json"], None)
        .expect_code(0)
        .json();
    let host = tokens
        .as_array()
        .and_then(|a| a.iter().find(|t| t["id"] == who["token_id"]))
        .expect("the login token is listed");
    assert!(
        host["name"].as_str().is_some_and(|n| n.starts_with("cli@")),
        "{host}"
    );

    // A new account, a role with a host selector, and that account's view of itself.
    server
        .shoal_in(
            &admin_cfg,
            &[
                "user",
                "create",
                "alice",
                "--password-stdin",
                "--display-name",
                "Alice",
            ],
            Some("alice-password-1\n"),
        )
        .expect_code(0);
    let granted = server
        .shoal_in(
            &admin_cfg,
            &[
                "role",
                "grant",
                "alice",
                "operator",
                "--scope",
                "default",
                "--hosts",
                "env!=prod",
                "--json",
            ],
            None,
        )
        .expect_code(0)
        .json();
    assert_eq!(granted[0]["role"], "operator", "{granted}");
    assert_eq!(granted[0]["host_selector"], "env!=prod");
    let listed = server
        .shoal_in(&admin_cfg, &["role", "list", "--user", "alice"], None)
        .expect_code(0)
        .text();
    assert!(
        listed.contains("alice") && listed.contains("operator"),
        "{listed}"
    );

    // A wrong password: exit 3, the server's message, nothing stored.
    let out = server
        .shoal_in(
            &alice_cfg,
            &["login", "--user", "alice", "--password-stdin"],
            Some("not-her-password\n"),
        )
        .expect_code(3);
    assert!(
        out.stderr.contains("wrong user name or password"),
        "{}",
        out.stderr
    );
    assert!(!alice_cfg.join("shoal").join("credentials").exists());

    server
        .shoal_in(
            &alice_cfg,
            &["login", "--user", "alice", "--password-stdin"],
            Some("alice-password-1\n"),
        )
        .expect_code(0);
    let who = server
        .shoal_in(&alice_cfg, &["whoami", "--json"], None)
        .expect_code(0)
        .json();
    assert_eq!(who["name"], "alice");
    assert_eq!(who["is_admin"], false);
    let scope = who["scopes"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["scope_name"] == "default"))
        .unwrap_or_else(|| panic!("alice sees the default scope: {who}"));
    assert_eq!(scope["role"], "operator");
    assert_eq!(scope["host_selector"], "env!=prod");
    let table = server
        .shoal_in(&alice_cfg, &["whoami"], None)
        .expect_code(0)
        .text();
    assert!(
        table.contains("operator") && table.contains("env!=prod"),
        "{table}"
    );
    // An operator is no admin: listing accounts is refused (exit 3).
    server
        .shoal_in(&alice_cfg, &["user", "list"], None)
        .expect_code(3);

    // The audit trail has the sign-ins (good and bad) and the grant.
    let logins = audit(&server, &admin_cfg, &["--action", "auth.login", "--all"]);
    let has = |actor: &str, outcome: &str, resource: &str| {
        logins
            .iter()
            .any(|r| r["actor"] == actor && r["outcome"] == outcome && r["resource"] == resource)
    };
    assert!(has("admin", "ok", "user:admin"), "{logins:?}");
    assert!(has("alice", "ok", "user:alice"), "{logins:?}");
    assert!(has("", "failed", "user:alice"), "{logins:?}");
    let grants = audit(
        &server,
        &admin_cfg,
        &["--action", "role.bind", "--since", "1h"],
    );
    assert!(
        grants.iter().any(|r| r["actor"] == "admin"
            && r["resource"] == "user:alice"
            && r["outcome"] == "ok"),
        "{grants:?}"
    );
    let failed = audit(
        &server,
        &admin_cfg,
        &["--outcome", "failed", "--limit", "1"],
    );
    assert_eq!(failed.len(), 1, "{failed:?}");
    let table = server
        .shoal_in(&admin_cfg, &["audit", "list", "--actor", "admin"], None)
        .expect_code(0)
        .text();
    assert!(table.contains("role.bind"), "{table}");

    // Export: one JSON object per line, the same records as the list.
    let out = server
        .shoal_in(
            &admin_cfg,
            &["audit", "export", "--action", "auth.login"],
            None,
        )
        .expect_code(0);
    let lines: Vec<serde_json::Value> = out
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(lines.len(), logins.len(), "{}", out.text());
    assert!(lines.iter().all(|r| r["action"] == "auth.login"));

    // A narrowed token for another account.
    let ro = server
        .shoal_in(
            &admin_cfg,
            &[
                "token",
                "create",
                "alice-ro",
                "--for",
                "alice",
                "--read-only",
                "--only-scope",
                "default",
                "--json",
            ],
            None,
        )
        .expect_code(0)
        .json();
    let ro_secret = ro["token"].as_str().expect("secret").to_string();
    let who = server
        .shoal_in(
            &admin_cfg,
            &["whoami", "--json", "--token", &ro_secret],
            None,
        )
        .expect_code(0)
        .json();
    assert_eq!(who["name"], "alice");
    assert_eq!(who["read_only"], true);
    assert_eq!(who["only_scope_id"], 1);

    // The SSO way: a pasted token is checked with whoami and stored.
    let pasted = server
        .shoal_in(
            &admin_cfg,
            &["token", "create", "pasted", "--for", "alice"],
            None,
        )
        .expect_code(0)
        .text();
    let paste_cfg = server.dir.path().join("paste-config");
    let out = server
        .shoal_in(&paste_cfg, &["login", "--token-stdin"], Some(&pasted))
        .expect_code(0);
    assert!(out.text().contains("alice"), "{}", out.text());
    assert_eq!(mode(&paste_cfg.join("shoal").join("credentials")), 0o600);
    server
        .shoal_in(&paste_cfg, &["logout"], None)
        .expect_code(0);
    server
        .shoal_in(&paste_cfg, &["whoami", "--token", pasted.trim()], None)
        .expect_code(3);
    let out = server
        .shoal_in(
            &paste_cfg,
            &["login", "--token-stdin"],
            Some("not-a-token\n"),
        )
        .expect_code(3);
    assert!(
        !paste_cfg.join("shoal").join("credentials").exists(),
        "{}",
        out.stderr
    );

    // Logout revokes the stored token and forgets it.
    server
        .shoal_in(&admin_cfg, &["logout"], None)
        .expect_code(0);
    assert!(!credentials.exists());
    let out = server
        .shoal_in(&admin_cfg, &["whoami", "--token", &admin_token], None)
        .expect_code(3);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    let out = server
        .shoal_in(&admin_cfg, &["whoami"], None)
        .expect_code(3);
    assert!(out.stderr.contains("shoal login"), "{}", out.stderr);
    // Alice's stored token is untouched by the admin's logout.
    server
        .shoal_in(&alice_cfg, &["whoami"], None)
        .expect_code(0);
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["role", "grant", "alice", "admin", "--scope", "1"][..],
        &["role", "grant", "alice", "viewer"],
        &["audit", "list", "--since", "5x"],
        &["audit", "list", "--from", "yesterday"],
        &["audit", "list", "--outcome", "maybe"],
        &["audit", "list", "--since", "1h", "--from", "2026-01-01"],
        &["user", "create", "bot", "--service", "--password-stdin"],
        &["login", "--token-stdin", "--user", "x"],
        // Stdin is not a terminal: the account must be named.
        &["login"],
        &["login", "--user", "admin"],
    ] {
        let out = shoal_alone(args, dir.path()).expect_code(2);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}
