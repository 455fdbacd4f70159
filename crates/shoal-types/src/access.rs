//! Roles and permissions: what each role may do in a scope. Pure data and rules; the server
//! decides who holds which role (`shoal-server`'s `access` module) and checks every request there.

use serde::{Deserialize, Serialize};

/// A role a user holds in one scope. The platform admin is not a scope role: it is a flag on
/// the user and grants everything everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the scope: hosts, groups, jobs, logs.
    Viewer,
    /// Viewer, and runs what exists: launches, terminates and retries jobs.
    Operator,
    /// Operator, and manages what runs: groups and host labels (later scripts, templates,
    /// plans, cron and flows).
    Developer,
    /// Developer, and administers the scope: role bindings, enrollment tokens, revoking agents,
    /// the scope's audit trail.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Developer, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role grants `permission` in its scope. Platform permissions are never
    /// granted by a scope role.
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            View => true,
            Execute | Operate => self >= Role::Operator,
            Manage => self >= Role::Developer,
            Administer => self >= Role::Owner,
            Platform => false,
        }
    }

    /// The permissions the role grants, weakest first.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.grants(*p))
            .collect()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs. Every endpoint names one (the README's API table lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read a scope's hosts, groups, jobs, steps, logs and files.
    View,
    /// Start jobs in a scope (quick execution, file distribution, uploads), on hosts the role
    /// binding's host selector allows.
    Execute,
    /// Terminate or retry a job of a scope.
    Operate,
    /// Manage what runs in a scope: groups, host labels.
    Manage,
    /// Administer a scope: role bindings, enrollment tokens, revoking agents, its audit trail.
    Administer,
    /// Administer the platform: users, service accounts, scopes, every audit record.
    Platform,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::View,
        Permission::Execute,
        Permission::Operate,
        Permission::Manage,
        Permission::Administer,
        Permission::Platform,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Execute => "execute",
            Permission::Operate => "operate",
            Permission::Manage => "manage",
            Permission::Administer => "administer",
            Permission::Platform => "platform",
        }
    }

    /// Whether a read-only token keeps this permission.
    pub fn is_read(self) -> bool {
        self == Permission::View
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account is a person or an integration (bk-job's app code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// A person: signs in with a password or single sign-on.
    User,
    /// An integration: never signs in, acts only through its tokens.
    Service,
}

impl UserKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "user",
            UserKind::Service => "service",
        }
    }
    pub fn parse(s: &str) -> Option<UserKind> {
        match s {
            "user" => Some(UserKind::User),
            "service" => Some(UserKind::Service),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_by_rank() {
        let table = [
            (Role::Viewer, "view"),
            (Role::Operator, "view execute operate"),
            (Role::Developer, "view execute operate manage"),
            (Role::Owner, "view execute operate manage administer"),
        ];
        for (role, want) in table {
            let got: Vec<&str> = role.permissions().iter().map(|p| p.as_str()).collect();
            assert_eq!(got.join(" "), want, "{role}");
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
