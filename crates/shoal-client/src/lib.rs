//! Typed client of the Shoal REST API (`/api/v1`), used by the `shoal` CLI, the tests and third
//! parties. One method per endpoint, typed with the bodies of `shoal_types::api` (re-exported
//! here so callers need no other crate; never a storage record), errors as
//! [`Error`] with the server's [`ErrorCode`] when it sent one, and live job events from the
//! server-sent event stream.
//!
//! It owns no state beyond the base URL and the token, and knows nothing about the CLI's output.

mod endpoints;
mod error;
mod files;
mod query;
mod sse;
mod users;

pub use endpoints::JobEventStream;
pub use error::{Error, Result};
pub use query::{FileMode, FileQuery, HostQuery, JobQuery, LogQuery, TaskQuery};
pub use sse::{SseEvent, SseParser, decode_job_event};
pub use users::{AuditLines, AuditQuery};

pub use shoal_types::access::{Permission, Role, UserKind};
pub use shoal_types::api::{
    AuditPage, AuditRecord, AuthConfig, ChangePasswordRequest, CreateUserRequest, LoginRequest,
    PutRoleBindingRequest, RoleBinding, ScopeAccess, SsoConfig, UpdateUserRequest, User,
};
pub use shoal_types::api::{
    CreateScopeRequest, CreateTokenRequest, CreateTokenResponse, ErrorCode, ExecuteScriptRequest,
    ExecuteScriptResponse, FileCount, FileSourceRequest, FileStepSpec, FileTaskKey, FileTaskRow,
    FileTransferRequest, FileTransferResponse, FilesSummary, Group, GroupBy, GroupKey,
    GroupRequest, Host, HostSummary, Job, JobDetail, JobEvent, LogResponse, Paged, PreviewRequest,
    PreviewResponse, ResultGroup, ResultGroups, RetryMode, RetryRequest, RetryResponse, Scope,
    ScriptStepSpec, SetLabelsRequest, StatusCount, Step, StepDetail, StepSpec, Targets, TaskRow,
    TerminateResponse, Token, TokenKind, Upload, UploadResponse, WhoAmI,
};
pub use shoal_types::files::{DirMode, DuplicateMode, FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD};
pub use shoal_types::{
    AgentStatus, FileStatus, HostId, HostTaskStatus, JobId, JobType, Labels, Language, RunStatus,
    ScopeId, StepId, StepType, UnixMs,
};

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Exact bytes of a log page.
pub trait LogResponseExt {
    /// Decodes `content_base64`: the stored bytes, unlike `content` which is lossy UTF-8.
    fn bytes(&self) -> Result<Vec<u8>>;
}

impl LogResponseExt for LogResponse {
    fn bytes(&self) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(self.content_base64.as_bytes())
            .map_err(|e| Error::Decode {
                url: format!(
                    "log of step {} host {}",
                    self.step_instance_id, self.host_id
                ),
                message: format!("content_base64 is not base64: {e}"),
            })
    }
}

/// A handle on one server. Cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// `base_url` is the server's REST address, e.g. `http://127.0.0.1:8680` (a trailing `/`
    /// is ignored). `token` is sent as `Authorization: Bearer`.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let base = base_url.into().trim_end_matches('/').to_string();
        Client { http, base, token }
    }

    /// Like [`Client::new`], trusting `ca_pem` (PEM, one or more certificates) in addition to
    /// the system's roots: for a server that serves HTTPS with its own CA (`--api-tls`).
    pub fn with_ca(
        base_url: impl Into<String>,
        token: Option<String>,
        ca_pem: &[u8],
    ) -> Result<Client> {
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| Error::Invalid(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Invalid("no certificate in the CA file".into()));
        }
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up TLS: {e}")))?;
        let base = base_url.into().trim_end_matches('/').to_string();
        Ok(Client { http, base, token })
    }

    /// The same server and connection pool with another token (e.g. one just signed in for).
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request and returns the successful response, or the error the server sent.
    async fn send(&self, url: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|e| Error::from_reqwest(url, e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(Error::from_response_body(url, status.as_u16(), &body))
    }

    async fn body_of(url: &str, resp: reqwest::Response) -> Result<bytes::Bytes> {
        resp.bytes().await.map_err(|e| Error::from_reqwest(url, e))
    }

    async fn decode<T: DeserializeOwned>(url: &str, resp: reqwest::Response) -> Result<T> {
        let body = Self::body_of(url, resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let url = self.url(path);
        let req = self.request(reqwest::Method::GET, &url).query(query);
        let resp = self.send(&url, req).await?;
        Self::decode(&url, resp).await
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let url = self.url(path);
        let req = self.request(method, &url).json(body);
        let resp = self.send(&url, req).await?;
        Self::decode(&url, resp).await
    }

    /// For endpoints whose answer carries nothing the caller needs.
    async fn send_empty(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<()> {
        let url = self.url(path);
        let mut req = self.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(&url, req).await?;
        Self::body_of(&url, resp).await.map(|_| ())
    }

    async fn get_text(&self, path: &str) -> Result<String> {
        let url = self.url(path);
        let req = self.request(reqwest::Method::GET, &url);
        let resp = self.send(&url, req).await?;
        let body = Self::body_of(&url, resp).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// Decodes a list answer that is either a bare JSON array or an object holding the array under
/// `key` (or `data`).
fn decode_list<T: DeserializeOwned>(url: &str, key: &str, value: serde_json::Value) -> Result<T> {
    let value = match value {
        serde_json::Value::Object(mut map) => {
            match map.remove(key).or_else(|| map.remove("data")) {
                Some(v) => v,
                None => serde_json::Value::Object(map),
            }
        }
        other => other,
    };
    serde_json::from_value(value).map_err(|e| Error::Decode {
        url: url.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    //! Pins the small pure helpers: base-URL normalisation, list decoding in both shapes, and
    //! exact log bytes.
    use super::*;

    #[test]
    fn base_url_trailing_slash_is_ignored() {
        let c = Client::new("http://h:1/", None);
        assert_eq!(c.url("/healthz"), "http://h:1/healthz");
    }

    #[test]
    fn lists_decode_bare_or_wrapped() {
        let bare: Vec<i64> = decode_list("u", "groups", serde_json::json!([1, 2])).expect("bare");
        assert_eq!(bare, vec![1, 2]);
        let wrapped: Vec<i64> =
            decode_list("u", "groups", serde_json::json!({"groups": [3]})).expect("wrapped");
        assert_eq!(wrapped, vec![3]);
        let data: Vec<i64> =
            decode_list("u", "groups", serde_json::json!({"data": [4]})).expect("data");
        assert_eq!(data, vec![4]);
        assert!(decode_list::<Vec<i64>>("u", "groups", serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn log_bytes_are_exact() {
        let raw = b"a\xffb\n".to_vec();
        let resp = LogResponse {
            step_instance_id: 1,
            host_id: 2,
            attempt: 0,
            offset: 0,
            next_offset: 4,
            total: 4,
            finished: true,
            truncated: false,
            content: String::from_utf8_lossy(&raw).into_owned(),
            content_base64: base64::engine::general_purpose::STANDARD.encode(&raw),
        };
        assert_eq!(resp.bytes().expect("bytes"), raw);
    }
}
