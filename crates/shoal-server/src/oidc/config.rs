//! What an operator configures for single sign-on: the provider and client, the claims to read,
//! and which provider groups grant what in Shoal. Parsing and validation only; no IO.

use shoal_types::LabelSelector;
use shoal_types::access::Role;

/// Single sign-on through one OpenID Connect provider (`--oidc-*` flags). Its `Debug` hides
/// the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcOptions {
    /// The provider's issuer URL; its discovery document is at
    /// `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back with `code` and `state`; registered at the
    /// provider for this client.
    pub redirect_url: String,
    /// Scopes to ask for besides `openid` (e.g. `profile`, `email`, `groups`).
    pub scopes: Vec<String>,
    /// The claim that lists the user's groups (in the ID token or from userinfo).
    pub groups_claim: String,
    /// The claim that names the user; falls back to `email`, then to the subject.
    pub username_claim: String,
    /// The sign-in button's text.
    pub label: String,
    /// What each provider group grants.
    pub group_roles: Vec<GroupRole>,
}

impl std::fmt::Debug for OidcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcOptions")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<hidden>"),
            )
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .field("username_claim", &self.username_claim)
            .field("label", &self.label)
            .field("group_roles", &self.group_roles)
            .finish()
    }
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            redirect_url: String::new(),
            scopes: vec!["profile".into(), "email".into()],
            groups_claim: "groups".into(),
            username_claim: "preferred_username".into(),
            label: "SSO".into(),
            group_roles: Vec::new(),
        }
    }
}

/// Members of `group` (at the provider) get `grant` in Shoal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRole {
    pub group: String,
    pub grant: Grant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The platform admin.
    Admin,
    /// `role` in the scope named `scope`, on the hosts `host_selector` selects (empty: all).
    Scope {
        scope: String,
        role: Role,
        host_selector: String,
    },
}

const SYNTAX: &str = "GROUP=admin, GROUP=ROLE@SCOPE or GROUP=ROLE@SCOPE:SELECTOR \
                      (e.g. ops=operator@default:env!=prod)";

impl GroupRole {
    /// Parses `GROUP=admin`, `GROUP=ROLE@SCOPE_NAME` or `GROUP=ROLE@SCOPE_NAME:SELECTOR`.
    pub fn parse(s: &str) -> Result<GroupRole, String> {
        let (group, grant) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} has no '='; expected {SYNTAX}"))?;
        let group = group.trim();
        if group.is_empty() {
            return Err(format!("{s:?} names no group; expected {SYNTAX}"));
        }
        let grant = grant.trim();
        if grant == "admin" {
            return Ok(GroupRole {
                group: group.into(),
                grant: Grant::Admin,
            });
        }
        let (role, rest) = grant.split_once('@').ok_or_else(|| {
            format!("{s:?}: {grant:?} is neither \"admin\" nor ROLE@SCOPE; expected {SYNTAX}")
        })?;
        let role = Role::parse(role.trim()).ok_or_else(|| {
            let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!(
                "{s:?}: unknown role {role:?}; roles are {} (or GROUP=admin)",
                roles.join(", ")
            )
        })?;
        let (scope, selector) = rest.split_once(':').unwrap_or((rest, ""));
        let scope = scope.trim();
        if scope.is_empty() {
            return Err(format!("{s:?} names no scope after '@'; expected {SYNTAX}"));
        }
        let selector = selector.trim();
        if !selector.is_empty() {
            LabelSelector::parse(selector)
                .map_err(|e| format!("{s:?}: bad host selector {selector:?}: {e}"))?;
        }
        Ok(GroupRole {
            group: group.into(),
            grant: Grant::Scope {
                scope: scope.into(),
                role,
                host_selector: selector.into(),
            },
        })
    }
}

impl OidcOptions {
    /// Checks what can be checked without the provider; messages name the flags.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_url("--oidc-issuer", &self.issuer)?;
        check_url("--oidc-redirect-url", &self.redirect_url)?;
        anyhow::ensure!(
            !self.client_id.trim().is_empty(),
            "--oidc-client-id must not be empty"
        );
        if let Some(secret) = &self.client_secret {
            anyhow::ensure!(
                !secret.is_empty(),
                "the file of --oidc-client-secret-file is empty"
            );
        }
        for s in &self.scopes {
            anyhow::ensure!(
                !s.is_empty() && !s.contains(char::is_whitespace),
                "--oidc-scope {s:?} must be one scope name without spaces"
            );
        }
        anyhow::ensure!(
            !self.groups_claim.trim().is_empty(),
            "--oidc-groups-claim must not be empty"
        );
        anyhow::ensure!(
            !self.username_claim.trim().is_empty(),
            "--oidc-username-claim must not be empty"
        );
        anyhow::ensure!(
            !self.label.trim().is_empty() && self.label.chars().count() <= 64,
            "--oidc-label must be 1 to 64 characters"
        );
        Ok(())
    }

    /// What the groups grant: the platform admin, and per scope name the highest role (with
    /// that role's host selector; the first mapping listed wins a tie), sorted by scope name.
    pub fn grants_for(&self, groups: &[String]) -> (bool, Vec<(String, Role, String)>) {
        let mut admin = false;
        let mut scoped: Vec<(String, Role, String)> = Vec::new();
        for gr in self
            .group_roles
            .iter()
            .filter(|gr| groups.contains(&gr.group))
        {
            match &gr.grant {
                Grant::Admin => admin = true,
                Grant::Scope {
                    scope,
                    role,
                    host_selector,
                } => match scoped.iter_mut().find(|(s, _, _)| s == scope) {
                    Some(held) if *role > held.1 => {
                        held.1 = *role;
                        held.2.clone_from(host_selector);
                    }
                    Some(_) => {}
                    None => scoped.push((scope.clone(), *role, host_selector.clone())),
                },
            }
        }
        scoped.sort_by(|a, b| a.0.cmp(&b.0));
        (admin, scoped)
    }
}

/// An absolute http(s) URL; plain http only for loopback (tests, a local provider).
fn check_url(flag: &str, s: &str) -> anyhow::Result<()> {
    let url = openidconnect::url::Url::parse(s)
        .map_err(|e| anyhow::anyhow!("{flag} {s:?} is not a URL: {e}"))?;
    let loopback = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => anyhow::bail!("{flag} {s:?} must use https (plain http only on loopback)"),
        other => anyhow::bail!("{flag} {s:?} must be an https URL, not {other}:"),
    }
}

#[cfg(test)]
mod tests {
    //! Pins the `--oidc-group-role` syntax, its errors, and "highest role wins per scope".
    use super::*;

    fn check(input: &str, want: Result<GroupRole, &str>) {
        match (GroupRole::parse(input), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
            (Err(e), Err(part)) => assert!(e.contains(part), "{input}: {e:?} lacks {part:?}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    fn scoped(group: &str, scope: &str, role: Role, sel: &str) -> GroupRole {
        GroupRole {
            group: group.into(),
            grant: Grant::Scope {
                scope: scope.into(),
                role,
                host_selector: sel.into(),
            },
        }
    }

    #[test]
    fn group_role_syntax() {
        let admin = GroupRole {
            group: "admins".into(),
            grant: Grant::Admin,
        };
        check("admins=admin", Ok(admin));
        check(
            "ops=operator@default",
            Ok(scoped("ops", "default", Role::Operator, "")),
        );
        check(
            "ops=operator@default:env!=prod",
            Ok(scoped("ops", "default", Role::Operator, "env!=prod")),
        );
        check(
            "dev=developer@web:tier in (a,b),!canary",
            Ok(scoped(
                "dev",
                "web",
                Role::Developer,
                "tier in (a,b),!canary",
            )),
        );
        check("ops", Err("has no '='"));
        check("=admin", Err("names no group"));
        check("ops=root", Err("neither \"admin\" nor ROLE@SCOPE"));
        check("ops=king@default", Err("unknown role \"king\""));
        check("ops=viewer@", Err("names no scope"));
        check("ops=viewer@default:env in prod", Err("bad host selector"));
    }

    #[test]
    fn highest_role_wins_per_scope() {
        let o = OidcOptions {
            group_roles: vec![
                scoped("ops", "default", Role::Operator, "env!=prod"),
                scoped("dev", "default", Role::Developer, ""),
                scoped("dev", "web", Role::Viewer, ""),
                scoped("seniors", "default", Role::Developer, "tier=1"),
                GroupRole {
                    group: "admins".into(),
                    grant: Grant::Admin,
                },
            ],
            ..OidcOptions::default()
        };
        let g = |v: &[&str]| o.grants_for(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            g(&["ops"]),
            (
                false,
                vec![("default".into(), Role::Operator, "env!=prod".into())]
            )
        );
        assert_eq!(
            g(&["ops", "dev", "seniors", "admins"]),
            (
                true,
                vec![
                    ("default".into(), Role::Developer, "".into()),
                    ("web".into(), Role::Viewer, "".into()),
                ]
            )
        );
        assert_eq!(g(&["nobody"]), (false, vec![]));
    }

    #[test]
    fn validation_names_the_flag() {
        let good = OidcOptions {
            issuer: "https://id.example".into(),
            client_id: "shoal".into(),
            redirect_url: "https://shoal.example/api/web/v1/oidc/callback".into(),
            ..OidcOptions::default()
        };
        assert!(good.validate().is_ok());
        let bad = |f: fn(&mut OidcOptions), part: &str| {
            let mut o = good.clone();
            f(&mut o);
            let e = o.validate().expect_err(part).to_string();
            assert!(e.contains(part), "{e:?} lacks {part:?}");
        };
        bad(|o| o.issuer = "id.example".into(), "--oidc-issuer");
        bad(|o| o.issuer = "http://id.example".into(), "must use https");
        bad(|o| o.redirect_url = "ftp://x".into(), "--oidc-redirect-url");
        bad(|o| o.client_id = " ".into(), "--oidc-client-id");
        bad(|o| o.scopes = vec!["a b".into()], "--oidc-scope");
        bad(|o| o.label = String::new(), "--oidc-label");
        bad(|o| o.client_secret = Some(String::new()), "is empty");
        let mut secret = good.clone();
        secret.client_secret = Some("s3cret-value".into());
        let shown = format!("{secret:?}");
        assert!(
            !shown.contains("s3cret-value") && shown.contains("<hidden>"),
            "{shown}"
        );
        let mut local = good.clone();
        local.issuer = "http://127.0.0.1:9000".into();
        assert!(local.validate().is_ok(), "plain http on loopback");
    }
}
