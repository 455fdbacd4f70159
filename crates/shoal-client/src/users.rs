//! Sign-in, accounts, role bindings, the audit trail and `whoami`: one method per endpoint.

use crate::{
    AuditPage, ChangePasswordRequest, Client, CreateTokenResponse, CreateUserRequest, Error,
    LoginRequest, PutRoleBindingRequest, Result, RoleBinding, ScopeId, UpdateUserRequest, User,
    WhoAmI,
};
use futures::{Stream, StreamExt};
use reqwest::Method;
use shoal_types::UnixMs;
use std::pin::Pin;

/// The lines of an audit export, each one JSON object (an `AuditRecord`) without its newline.
pub type AuditLines = Pin<Box<dyn Stream<Item = Result<String>> + Send>>;

/// Filters of `GET /api/v1/audit` and `GET /api/v1/audit/export`; unset fields are not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after (ms since the epoch).
    pub from: Option<UnixMs>,
    /// Before (ms since the epoch).
    pub to: Option<UnixMs>,
    /// Account name.
    pub actor: Option<String>,
    /// An exact action, or a prefix ending in `.` (`job.`).
    pub action: Option<String>,
    pub scope_id: Option<ScopeId>,
    /// An exact resource (`job:42`, `user:alice`).
    pub resource: Option<String>,
    /// `ok`, `denied`, `failed` or `throttled`.
    pub outcome: Option<String>,
    pub address: Option<String>,
    /// List only: the previous page's `next_before_id`.
    pub before_id: Option<i64>,
    /// List only: 1 to 1000 [server default: 100].
    pub limit: Option<u32>,
}

impl AuditQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        push("from", self.from.map(|v| v.to_string()));
        push("to", self.to.map(|v| v.to_string()));
        push("actor", self.actor.clone());
        push("action", self.action.clone());
        push("scope_id", self.scope_id.map(|v| v.to_string()));
        push("resource", self.resource.clone());
        push("outcome", self.outcome.clone());
        push("address", self.address.clone());
        push("before_id", self.before_id.map(|v| v.to_string()));
        push("limit", self.limit.map(|v| v.to_string()));
        out
    }
}

impl Client {
    // ---- signing in ---------------------------------------------------------------------

    /// `POST /api/v1/auth/token`: signs in with a name and password and returns a new personal
    /// API token (its secret shown only here). Sends no `Authorization` header.
    pub async fn login_token(&self, req: &LoginRequest) -> Result<CreateTokenResponse> {
        let url = self.url("/api/v1/auth/token");
        let http = self.http.request(Method::POST, &url).json(req);
        let resp = self.send(&url, http).await?;
        Self::decode(&url, resp).await
    }

    /// `GET /api/v1/auth/config` (no credentials): how the server lets people sign in.
    pub async fn auth_config(&self) -> Result<crate::AuthConfig> {
        self.get_json("/api/v1/auth/config", &[]).await
    }

    /// `GET /api/v1/whoami`: the account of the token and what it may do per scope.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get_json("/api/v1/whoami", &[]).await
    }

    // ---- accounts -----------------------------------------------------------------------

    pub async fn users(&self) -> Result<Vec<User>> {
        self.get_json("/api/v1/users", &[]).await
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        self.get_json(&format!("/api/v1/users/{id}"), &[]).await
    }

    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<User> {
        self.send_json(Method::POST, "/api/v1/users", req).await
    }

    pub async fn update_user(&self, id: i64, req: &UpdateUserRequest) -> Result<User> {
        self.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), req)
            .await
    }

    /// Ends every console session of the account (sign out everywhere).
    pub async fn revoke_user_sessions(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/users/{id}/sessions/revoke");
        self.send_empty(Method::POST, &path, None).await
    }

    /// Changes the caller's own password (`POST /api/v1/me/password`).
    pub async fn change_password(&self, req: &ChangePasswordRequest) -> Result<()> {
        let body = serde_json::to_value(req)
            .map_err(|e| Error::Invalid(format!("cannot encode the request: {e}")))?;
        self.send_empty(Method::POST, "/api/v1/me/password", Some(&body))
            .await
    }

    // ---- role bindings ------------------------------------------------------------------

    pub async fn role_bindings(
        &self,
        scope_id: Option<ScopeId>,
        user_id: Option<i64>,
    ) -> Result<Vec<RoleBinding>> {
        let mut query = Vec::new();
        query.extend(scope_id.map(|s| ("scope_id", s.to_string())));
        query.extend(user_id.map(|u| ("user_id", u.to_string())));
        self.get_json("/api/v1/role-bindings", &query).await
    }

    /// Gives the account the role in the scope, replacing the role it had there.
    pub async fn put_role_binding(&self, req: &PutRoleBindingRequest) -> Result<RoleBinding> {
        self.send_json(Method::PUT, "/api/v1/role-bindings", req)
            .await
    }

    pub async fn delete_role_binding(&self, id: i64) -> Result<()> {
        let path = format!("/api/v1/role-bindings/{id}");
        self.send_empty(Method::DELETE, &path, None).await
    }

    // ---- audit trail --------------------------------------------------------------------

    /// One page of audit records, newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        self.get_json("/api/v1/audit", &query.pairs()).await
    }

    /// Every record matching the filters (`before_id` and `limit` must be unset), newest
    /// first, as JSON lines streamed from the server.
    pub async fn audit_export(&self, query: &AuditQuery) -> Result<AuditLines> {
        let url = self.url("/api/v1/audit/export");
        let req = self.request(Method::GET, &url).query(&query.pairs());
        let resp = self.send(&url, req).await?;
        let lines = futures::stream::unfold(
            (resp.bytes_stream(), Vec::<u8>::new(), false),
            move |(mut chunks, mut buf, mut done)| {
                let url = url.clone();
                async move {
                    loop {
                        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                            let rest = buf.split_off(pos + 1);
                            let text = String::from_utf8_lossy(&buf[..pos]).into_owned();
                            buf = rest;
                            if text.trim().is_empty() {
                                continue;
                            }
                            return Some((Ok(text), (chunks, buf, done)));
                        }
                        if done {
                            if buf.iter().all(u8::is_ascii_whitespace) {
                                return None;
                            }
                            let text = String::from_utf8_lossy(&buf).into_owned();
                            return Some((Ok(text), (chunks, Vec::new(), true)));
                        }
                        match chunks.next().await {
                            Some(Ok(bytes)) => buf.extend_from_slice(&bytes),
                            Some(Err(e)) => {
                                let err = Error::from_reqwest(&url, e);
                                return Some((Err(err), (chunks, Vec::new(), true)));
                            }
                            None => done = true,
                        }
                    }
                }
            },
        );
        Ok(Box::pin(lines))
    }
}

#[cfg(test)]
mod tests {
    //! Pins the audit filters' query names (unset ones are not sent) and that login sends no
    //! bearer token even when the client has one.
    use super::*;

    #[test]
    fn audit_query_names() {
        assert!(AuditQuery::default().pairs().is_empty());
        let q = AuditQuery {
            from: Some(5),
            actor: Some("alice".into()),
            scope_id: Some(2),
            outcome: Some("denied".into()),
            limit: Some(10),
            ..Default::default()
        };
        assert_eq!(
            q.pairs(),
            vec![
                ("from", "5".to_string()),
                ("actor", "alice".to_string()),
                ("scope_id", "2".to_string()),
                ("outcome", "denied".to_string()),
                ("limit", "10".to_string())
            ]
        );
    }
}
