//! One method per REST endpoint, in the order of the API list.

use crate::sse::job_event_stream;
use crate::{
    Client, CreateScopeRequest, CreateTokenRequest, CreateTokenResponse, Error,
    ExecuteScriptRequest, ExecuteScriptResponse, Group, GroupRequest, Host, HostId, HostQuery,
    HostSummary, Job, JobDetail, JobEvent, JobId, JobQuery, LogQuery, LogResponse, Paged,
    PreviewRequest, PreviewResponse, Result, ResultGroup, RetryMode, RetryRequest, RetryResponse,
    Scope, ScopeId, SetLabelsRequest, StepId, TaskQuery, TaskRow, Token, decode_list,
};
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::Method;
use shoal_types::Labels;
use std::pin::Pin;

/// A live stream of job events; see [`Client::open_job_events`].
pub type JobEventStream = Pin<Box<dyn Stream<Item = Result<JobEvent>> + Send>>;

fn scope_pairs(scope_id: Option<ScopeId>) -> Vec<(&'static str, String)> {
    scope_id
        .map(|s| ("scope_id", s.to_string()))
        .into_iter()
        .collect()
}

impl Client {
    // ---- service ------------------------------------------------------------------------

    /// `GET /healthz` (no auth): the body, `ok` when the server is up.
    pub async fn health(&self) -> Result<String> {
        self.get_text("/healthz").await
    }

    /// `GET /metrics`: Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        self.get_text("/metrics").await
    }

    // ---- scopes -------------------------------------------------------------------------

    pub async fn scopes(&self) -> Result<Vec<Scope>> {
        let path = "/api/v1/scopes";
        let value = self.get_json(path, &[]).await?;
        decode_list(&self.url(path), "scopes", value)
    }

    pub async fn create_scope(&self, name: &str) -> Result<Scope> {
        let body = CreateScopeRequest {
            name: name.to_string(),
        };
        self.send_json(Method::POST, "/api/v1/scopes", &body).await
    }

    // ---- hosts --------------------------------------------------------------------------

    pub async fn hosts(&self, query: &HostQuery) -> Result<Paged<Host>> {
        self.get_json("/api/v1/hosts", &query.pairs()).await
    }

    pub async fn host_summary(&self, scope_id: Option<ScopeId>) -> Result<HostSummary> {
        self.get_json("/api/v1/hosts/summary", &scope_pairs(scope_id))
            .await
    }

    pub async fn host(&self, id: HostId) -> Result<Host> {
        self.get_json(&format!("/api/v1/hosts/{id}"), &[]).await
    }

    /// Replaces the host's user labels (the ones set through the API).
    pub async fn set_host_labels(&self, id: HostId, labels: Labels) -> Result<()> {
        let body = serde_json::to_value(SetLabelsRequest { labels })
            .map_err(|e| Error::Invalid(format!("cannot encode labels: {e}")))?;
        let path = format!("/api/v1/hosts/{id}/labels");
        self.send_empty(Method::PUT, &path, Some(&body)).await
    }

    /// Revokes the host's agent credentials; the host disappears from lists.
    pub async fn revoke_host(&self, id: HostId) -> Result<()> {
        let path = format!("/api/v1/hosts/{id}/revoke");
        self.send_empty(Method::POST, &path, None).await
    }

    // ---- groups -------------------------------------------------------------------------

    pub async fn groups(&self, scope_id: Option<ScopeId>) -> Result<Vec<Group>> {
        let path = "/api/v1/groups";
        let value = self.get_json(path, &scope_pairs(scope_id)).await?;
        decode_list(&self.url(path), "groups", value)
    }

    pub async fn create_group(&self, req: &GroupRequest) -> Result<Group> {
        self.send_json(Method::POST, "/api/v1/groups", req).await
    }

    pub async fn group(&self, id: i64) -> Result<Group> {
        self.get_json(&format!("/api/v1/groups/{id}"), &[]).await
    }

    pub async fn update_group(&self, id: i64, req: &GroupRequest) -> Result<Group> {
        self.send_json(Method::PUT, &format!("/api/v1/groups/{id}"), req)
            .await
    }

    pub async fn delete_group(&self, id: i64) -> Result<()> {
        self.send_empty(Method::DELETE, &format!("/api/v1/groups/{id}"), None)
            .await
    }

    // ---- targets and executions ---------------------------------------------------------

    pub async fn preview_targets(&self, req: &PreviewRequest) -> Result<PreviewResponse> {
        self.send_json(Method::POST, "/api/v1/targets/preview", req)
            .await
    }

    pub async fn execute_script(
        &self,
        req: &ExecuteScriptRequest,
    ) -> Result<ExecuteScriptResponse> {
        self.send_json(Method::POST, "/api/v1/script-executions", req)
            .await
    }

    // ---- jobs ---------------------------------------------------------------------------

    pub async fn jobs(&self, query: &JobQuery) -> Result<Paged<Job>> {
        self.get_json("/api/v1/jobs", &query.pairs()).await
    }

    pub async fn job(&self, id: JobId) -> Result<JobDetail> {
        self.get_json(&format!("/api/v1/jobs/{id}"), &[]).await
    }

    pub async fn terminate_job(&self, id: JobId) -> Result<()> {
        let path = format!("/api/v1/jobs/{id}/terminate");
        self.send_empty(Method::POST, &path, None).await
    }

    /// Opens `GET /api/v1/jobs/{id}/events` and returns once the server has answered, so that
    /// every change after this call is seen. With `host_id`, `log` and `task` events of that
    /// host are included. The stream ends when the server closes it.
    pub async fn open_job_events(
        &self,
        job_id: JobId,
        host_id: Option<HostId>,
    ) -> Result<JobEventStream> {
        let url = self.url(&format!("/api/v1/jobs/{job_id}/events"));
        let query: Vec<(&str, String)> = host_id
            .map(|h| ("host_id", h.to_string()))
            .into_iter()
            .collect();
        let req = self
            .request(Method::GET, &url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .query(&query);
        let resp = self.send(&url, req).await?;
        Ok(Box::pin(job_event_stream(url, resp.bytes_stream())))
    }

    /// Like [`Client::open_job_events`], but connects when first polled; a failure to connect
    /// is the stream's first item.
    pub fn job_events(
        &self,
        job_id: JobId,
        host_id: Option<HostId>,
    ) -> impl Stream<Item = Result<JobEvent>> + Send + 'static {
        let client = self.clone();
        futures::stream::once(async move { client.open_job_events(job_id, host_id).await })
            .try_flatten()
            .boxed()
    }

    // ---- steps --------------------------------------------------------------------------

    pub async fn step_hosts(&self, step_id: StepId, query: &TaskQuery) -> Result<Paged<TaskRow>> {
        let path = format!("/api/v1/steps/{step_id}/hosts");
        self.get_json(&path, &query.pairs()).await
    }

    /// Result groups of a step attempt (default: the current attempt), by status, exit code,
    /// tag and identical output (`by=output`), largest first as the server orders them.
    pub async fn step_groups(
        &self,
        step_id: StepId,
        attempt: Option<u32>,
    ) -> Result<Vec<ResultGroup>> {
        let path = format!("/api/v1/steps/{step_id}/groups");
        let mut query: Vec<(&str, String)> = vec![("by", "output".to_string())];
        query.extend(attempt.map(|a| ("attempt", a.to_string())));
        let value = self.get_json(&path, &query).await?;
        decode_list(&self.url(&path), "groups", value)
    }

    /// One page of a host's log; decode exact bytes with [`crate::LogResponseExt::bytes`].
    pub async fn task_log(
        &self,
        step_id: StepId,
        host_id: HostId,
        query: &LogQuery,
    ) -> Result<LogResponse> {
        let path = format!("/api/v1/steps/{step_id}/hosts/{host_id}/log");
        self.get_json(&path, &query.pairs()).await
    }

    pub async fn retry_step(&self, step_id: StepId, mode: RetryMode) -> Result<RetryResponse> {
        let path = format!("/api/v1/steps/{step_id}/retry");
        self.send_json(Method::POST, &path, &RetryRequest { mode })
            .await
    }

    // ---- tokens -------------------------------------------------------------------------

    pub async fn tokens(&self) -> Result<Vec<Token>> {
        let path = "/api/v1/tokens";
        let value = self.get_json(path, &[]).await?;
        decode_list(&self.url(path), "tokens", value)
    }

    /// Creates a token; the answer holds the secret, which the server never shows again.
    pub async fn create_token(&self, req: &CreateTokenRequest) -> Result<CreateTokenResponse> {
        self.send_json(Method::POST, "/api/v1/tokens", req).await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<()> {
        self.send_empty(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    //! Pins the transport-error path: an address nobody listens on gives `Unreachable` with the
    //! URL in the message, on plain requests and on the event stream.
    use super::*;

    fn dead_server() -> String {
        // Bind then drop to get a port that is (almost certainly) closed.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn unreachable_server_is_reported_as_such() {
        let base = dead_server();
        let c = Client::new(base.clone(), Some("t".into()));
        let err = c.host(1).await.expect_err("must fail");
        assert!(err.is_unreachable(), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the server at {base}: ")),
            "{text}"
        );
        let first = c.job_events(1, None).next().await.expect("one item");
        assert!(first.expect_err("must fail").is_unreachable());
    }

    /// Serves one canned HTTP answer on a fresh port; returns the base URL and the request
    /// head it received.
    async fn one_shot(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", l.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut sock, _) = l.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            sock.write_all(answer).await.expect("write");
            sock.shutdown().await.ok();
            String::from_utf8_lossy(&head).into_owned()
        });
        (base, task)
    }

    #[tokio::test]
    async fn sends_bearer_token_and_parses_error_body() {
        let (base, req) = one_shot(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 58\r\nconnection: close\r\n\r\n{\"error\":{\"code\":\"UNAUTHENTICATED\",\"message\":\"bad token\"}}",
        )
        .await;
        let c = Client::new(base, Some("s3cret".into()));
        let err = c.jobs(&JobQuery::default()).await.expect_err("401");
        assert_eq!(err.code(), Some(crate::ErrorCode::Unauthenticated));
        assert!(err.is_auth());
        let head = req.await.expect("server").to_ascii_lowercase();
        assert!(head.starts_with("get /api/v1/jobs "), "{head}");
        assert!(head.contains("authorization: bearer s3cret"), "{head}");
    }

    #[tokio::test]
    async fn event_stream_over_http() {
        let (base, req) = one_shot(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n: keep-alive\n\nevent: job\ndata: {\"event\":\"job\",\"job_id\":5,\"status\":3}\n\n",
        )
        .await;
        let c = Client::new(base, None);
        let events: Vec<JobEvent> = c
            .open_job_events(5, Some(9))
            .await
            .expect("open")
            .map(|r| r.expect("event"))
            .collect()
            .await;
        assert_eq!(
            events,
            vec![JobEvent::Job {
                job_id: 5,
                status: crate::RunStatus::Success
            }]
        );
        let head = req.await.expect("server").to_ascii_lowercase();
        assert!(
            head.starts_with("get /api/v1/jobs/5/events?host_id=9 "),
            "{head}"
        );
        assert!(!head.contains("authorization"), "{head}");
    }
}
