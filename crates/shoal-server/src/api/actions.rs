//! The audit names of the API's state-changing routes: a stable dotted action per route, and
//! the resource a route's path names. A route missing here is recorded as `METHOD /route`, so
//! nothing goes unrecorded; `every_state_changing_route_has_an_action` keeps the table whole.

use axum::http::Method;

/// (method, route under `/api/v1`, action, resource kind of the route's first `{id}`)
pub const ACTIONS: &[(&str, &str, &str, &str)] = &[
    ("POST", "/scopes", "scope.create", ""),
    ("POST", "/tokens", "token.create", ""),
    ("DELETE", "/tokens/{id}", "token.revoke", "token"),
    ("PUT", "/hosts/{id}/labels", "host.labels", "host"),
    ("POST", "/hosts/{id}/revoke", "host.revoke", "host"),
    ("POST", "/groups", "group.create", ""),
    ("PUT", "/groups/{id}", "group.update", "group"),
    ("DELETE", "/groups/{id}", "group.delete", "group"),
    ("POST", "/targets/preview", "targets.preview", ""),
    ("POST", "/script-executions", "job.execute_script", ""),
    ("POST", "/uploads", "upload.create", ""),
    ("POST", "/file-transfers", "job.transfer_files", ""),
    ("POST", "/jobs/{id}/terminate", "job.terminate", "job"),
    ("POST", "/steps/{id}/retry", "step.retry", "step"),
    ("POST", "/users", "user.create", ""),
    ("PATCH", "/users/{id}", "user.update", "user"),
    (
        "POST",
        "/users/{id}/sessions/revoke",
        "user.sessions_revoke",
        "user",
    ),
    ("PUT", "/role-bindings", "role.bind", ""),
    (
        "DELETE",
        "/role-bindings/{id}",
        "role.unbind",
        "role-binding",
    ),
    ("POST", "/auth/logout", "auth.logout", ""),
    ("POST", "/me/password", "user.password", ""),
];

/// The route without the mount point (`/api/v1` or `/api/web/v1`).
fn route_of(route: &str) -> &str {
    route
        .strip_prefix("/api/web/v1")
        .or_else(|| route.strip_prefix("/api/v1"))
        .unwrap_or(route)
}

fn entry(
    method: &Method,
    route: &str,
) -> Option<&'static (&'static str, &'static str, &'static str, &'static str)> {
    let route = route_of(route);
    ACTIONS
        .iter()
        .find(|(m, r, _, _)| *m == method.as_str() && *r == route)
}

/// The audit action of a request to `route` (the matched route, with its mount point).
pub fn action(method: &Method, route: &str) -> String {
    entry(method, route).map_or_else(
        || format!("{method} {}", route_of(route)),
        |(_, _, action, _)| (*action).to_string(),
    )
}

/// The resource a request names by its path (`job:42` for `/jobs/42/terminate`), `""` for none.
pub fn resource(route: &str, path: &str) -> String {
    let Some((_, pattern, _, kind)) = ACTIONS.iter().find(|(_, r, _, _)| *r == route_of(route))
    else {
        return String::new();
    };
    if kind.is_empty() {
        return String::new();
    }
    let path = route_of(path);
    let at = pattern.split('/').position(|seg| seg == "{id}");
    at.and_then(|i| path.split('/').nth(i))
        .map_or_else(String::new, |id| format!("{kind}:{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_routes_and_their_resources() {
        assert_eq!(
            action(&Method::POST, "/api/web/v1/jobs/{id}/terminate"),
            "job.terminate"
        );
        assert_eq!(
            resource("/api/v1/jobs/{id}/terminate", "/api/v1/jobs/42/terminate"),
            "job:42"
        );
        assert_eq!(action(&Method::POST, "/api/v1/nowhere"), "POST /nowhere");
        assert_eq!(resource("/api/v1/scopes", "/api/v1/scopes"), "");
    }
}
