//! What a caller may do: the account's platform flag and role bindings, narrowed by the token it
//! came with. Built once per request by `api::authn` from the store; every service checks it
//! with [`Caller::require`] (or [`Caller::require_hosts`] for execution) before it reads or
//! changes anything of a scope.

use crate::checks::Rejected;
use shoal_store::{RoleBinding, User};
use shoal_types::access::{Permission, Role, UserKind};
use shoal_types::api::ErrorCode;
use shoal_types::{LabelSelector, Labels, ScopeId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The role held in one scope and the hosts it may execute on.
#[derive(Clone, Debug)]
pub struct Grant {
    pub role: Role,
    /// `""` for every host of the scope.
    pub host_selector: String,
    /// The parsed selector; `None` for every host. A stored selector that no longer parses
    /// allows no host at all (fail closed).
    pub hosts: Option<Result<LabelSelector, ()>>,
}

impl Grant {
    pub fn new(role: Role, host_selector: &str) -> Grant {
        let hosts = (!host_selector.trim().is_empty())
            .then(|| LabelSelector::parse(host_selector).map_err(|_| ()));
        Grant {
            role,
            host_selector: host_selector.to_string(),
            hosts,
        }
    }

    /// Whether the grant's execution rights cover a host with these labels.
    pub fn allows_host(&self, labels: &Labels) -> bool {
        match &self.hosts {
            None => true,
            Some(Ok(selector)) => selector.matches(labels),
            Some(Err(())) => false,
        }
    }
}

/// Everything a request may do.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Platform admin: everything, everywhere.
    pub admin: bool,
    pub grants: BTreeMap<ScopeId, Grant>,
    /// The token only reads.
    pub read_only: bool,
    /// The token acts only in this scope.
    pub only_scope: Option<ScopeId>,
}

impl Access {
    /// From the account and its bindings. Where a user holds two bindings in one scope (one set
    /// by hand, one from single sign-on), the higher role wins; equal roles keep the wider
    /// host set (no selector beats a selector).
    pub fn of(user: &User, bindings: &[RoleBinding]) -> Access {
        let mut grants: BTreeMap<ScopeId, Grant> = BTreeMap::new();
        for b in bindings {
            let new = Grant::new(b.role, &b.host_selector);
            match grants.get(&b.scope_id) {
                Some(old)
                    if old.role > new.role || (old.role == new.role && old.hosts.is_none()) => {}
                _ => {
                    grants.insert(b.scope_id, new);
                }
            }
        }
        Access {
            admin: user.is_admin,
            grants,
            read_only: false,
            only_scope: None,
        }
    }

    /// Narrowed by a token's limits.
    pub fn narrowed(mut self, read_only: bool, only_scope: Option<ScopeId>) -> Access {
        self.read_only |= read_only;
        if only_scope.is_some() {
            self.only_scope = only_scope;
        }
        self
    }

    /// Whether the caller holds `permission` in `scope` (`None`: platform-wide permissions).
    pub fn allows(&self, scope: Option<ScopeId>, permission: Permission) -> bool {
        if self.read_only && !permission.is_read() {
            return false;
        }
        if let Some(only) = self.only_scope
            && (scope != Some(only) || permission == Permission::Platform)
        {
            return false;
        }
        if self.admin {
            return true;
        }
        match scope {
            Some(s) => self
                .grants
                .get(&s)
                .is_some_and(|g| g.role.grants(permission)),
            None => false,
        }
    }

    /// The host limit for execution in `scope`: `None` when every host is allowed.
    pub fn host_grant(&self, scope: ScopeId) -> Option<&Grant> {
        if self.admin {
            return None;
        }
        self.grants.get(&scope).filter(|g| g.hosts.is_some())
    }

    /// The scopes the caller may read: `None` for every scope.
    pub fn readable_scopes(&self) -> Option<Vec<ScopeId>> {
        if let Some(only) = self.only_scope {
            return Some(if self.admin || self.grants.contains_key(&only) {
                vec![only]
            } else {
                vec![]
            });
        }
        if self.admin {
            return None;
        }
        Some(self.grants.keys().copied().collect())
    }

    /// Whether the caller holds `permission` in at least one scope.
    pub fn allows_anywhere(&self, permission: Permission) -> bool {
        match (self.admin, self.only_scope) {
            (_, Some(only)) => self.allows(Some(only), permission),
            (true, None) => !self.read_only || permission.is_read(),
            (false, None) => self
                .grants
                .keys()
                .any(|s| self.allows(Some(*s), permission)),
        }
    }
}

/// How a request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Token,
    Session,
    /// The server itself (cron, flows, tests): no request at all.
    Internal,
}

/// The authenticated caller of a request or of an internal launch.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: i64,
    /// The account's name: the operator of what it launches.
    pub name: String,
    pub kind: UserKind,
    /// The API token of the request, if it came with one.
    pub token_id: Option<i64>,
    pub via: Via,
    pub access: Arc<Access>,
    /// The client's address, `""` when there is none.
    pub address: String,
    /// What the request's audit record says beyond the route (filled by services).
    pub note: crate::audit::Note,
}

impl Caller {
    /// A platform admin acting in-process (tests).
    #[cfg(test)]
    pub fn test_admin(name: &str) -> Caller {
        Caller {
            user_id: 1,
            name: name.to_string(),
            kind: UserKind::User,
            token_id: None,
            via: Via::Internal,
            access: Arc::new(Access {
                admin: true,
                ..Default::default()
            }),
            address: String::new(),
            note: Default::default(),
        }
    }

    /// Fails with PERMISSION_DENIED unless the caller holds `permission` in `scope` (`None` for
    /// platform-wide permissions). Notes the scope for the audit record.
    pub fn require(&self, scope: Option<ScopeId>, permission: Permission) -> Result<(), Rejected> {
        if let Some(s) = scope {
            self.note.scope(s);
        }
        if self.access.allows(scope, permission) {
            return Ok(());
        }
        Err(self.denied(scope, permission))
    }

    /// Fails with PERMISSION_DENIED unless the caller holds `permission` in some scope.
    pub fn require_anywhere(&self, permission: Permission) -> Result<(), Rejected> {
        if self.access.allows_anywhere(permission) {
            return Ok(());
        }
        Err(self.denied(None, permission))
    }

    /// Fails with PERMISSION_DENIED, naming up to 20 of them, if any of `hosts` (name, labels)
    /// lies outside the host selector of the caller's binding in `scope`.
    pub fn require_hosts<'a>(
        &self,
        scope: ScopeId,
        hosts: impl IntoIterator<Item = (&'a str, &'a Labels)>,
    ) -> Result<(), Rejected> {
        let Some(grant) = self.access.host_grant(scope) else {
            return Ok(());
        };
        let mut outside = Vec::new();
        let mut count = 0usize;
        for (name, labels) in hosts {
            if !grant.allows_host(labels) {
                count += 1;
                if outside.len() < 20 {
                    outside.push(name.to_string());
                }
            }
        }
        if count == 0 {
            return Ok(());
        }
        let more = if count > outside.len() {
            format!(" and {} more", count - outside.len())
        } else {
            String::new()
        };
        Err(Rejected::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} may execute in scope {scope} only on hosts matching {:?}; outside it: {}{more}",
                self.name,
                grant.host_selector,
                outside.join(", ")
            ),
        ))
    }

    fn denied(&self, scope: Option<ScopeId>, permission: Permission) -> Rejected {
        let why = if self.access.read_only && !permission.is_read() {
            " (the token is read-only)".to_string()
        } else if let Some(only) = self.access.only_scope.filter(|o| scope != Some(*o)) {
            format!(" (the token is limited to scope {only})")
        } else {
            String::new()
        };
        let needs = match permission {
            Permission::Platform => "platform admin".to_string(),
            p => Role::ALL.into_iter().find(|r| r.grants(p)).map_or_else(
                || "platform admin".to_string(),
                |r| format!("role {r} or higher"),
            ),
        };
        let place = scope.map_or_else(String::new, |s| format!(" in scope {s}"));
        Rejected::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} may not {permission}{place}{why}; it needs {needs}",
                self.name
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::BindingSource;

    fn user(admin: bool) -> User {
        User {
            id: 7,
            name: "alice".into(),
            display_name: String::new(),
            email: String::new(),
            kind: UserKind::User,
            password_hash: None,
            is_admin: admin,
            enabled: true,
            source: "local".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn binding(scope: ScopeId, role: Role, sel: &str, source: BindingSource) -> RoleBinding {
        RoleBinding {
            id: 1,
            user_id: 7,
            scope_id: scope,
            role,
            host_selector: sel.into(),
            source,
            created_by: "t".into(),
            created_at: 0,
        }
    }

    #[test]
    fn roles_apply_per_scope_and_tokens_narrow_them() {
        let a = Access::of(
            &user(false),
            &[binding(1, Role::Operator, "", BindingSource::Manual)],
        );
        assert!(a.allows(Some(1), Permission::Execute));
        assert!(!a.allows(Some(1), Permission::Manage));
        assert!(!a.allows(Some(2), Permission::View));
        assert!(!a.allows(None, Permission::Platform));
        assert_eq!(a.readable_scopes(), Some(vec![1]));
        let ro = a.clone().narrowed(true, None);
        assert!(ro.allows(Some(1), Permission::View));
        assert!(!ro.allows(Some(1), Permission::Execute));
        let admin = Access::of(&user(true), &[]).narrowed(false, Some(2));
        assert!(admin.allows(Some(2), Permission::Administer));
        assert!(!admin.allows(Some(1), Permission::View));
        assert!(!admin.allows(None, Permission::Platform));
        assert_eq!(admin.readable_scopes(), Some(vec![2]));
    }

    #[test]
    fn the_higher_role_and_the_wider_hosts_win() {
        let a = Access::of(
            &user(false),
            &[
                binding(1, Role::Operator, "env=staging", BindingSource::Manual),
                binding(1, Role::Viewer, "", BindingSource::Oidc),
            ],
        );
        let g = a.host_grant(1).expect("a host limit");
        assert_eq!(g.role, Role::Operator);
        let mut staging = Labels::new();
        staging.insert("env".into(), "staging".into());
        assert!(g.allows_host(&staging));
        assert!(!g.allows_host(&Labels::new()));
        let bad = Grant::new(Role::Operator, "env in (");
        assert!(
            !bad.allows_host(&staging),
            "an unparsable selector allows nothing"
        );
    }
}
