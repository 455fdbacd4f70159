//! A thin REST helper for tests and the bench: plain `reqwest` with the bearer token, typed with
//! the API's own bodies. It deliberately does not go through `shoal_client`, so tests can send
//! malformed requests and see raw statuses, and so a client bug cannot hide a server bug.

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_types::api::{
    ErrorBody, ErrorCode, ExecuteScriptRequest, ExecuteScriptResponse, Host, HostSummary,
    JobDetail, LogResponse, Paged, ResultGroup, Targets, TaskRow,
};
use shoal_types::{HostId, HostTaskStatus, JobId, StepId};
use std::time::{Duration, Instant};

pub type JobView = JobDetail;

/// A response as it came: status and body text.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
}

impl RawResponse {
    /// The error body, if the response is one.
    pub fn error(&self) -> Option<ErrorBody> {
        serde_json::from_str(&self.body).ok()
    }
}

#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    base: String,
    token: String,
}

impl Api {
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Api {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Api {
            http,
            base: base.into(),
            token: token.into(),
        }
    }

    /// The same server with another bearer token.
    pub fn with_token(&self, token: impl Into<String>) -> Api {
        Api {
            token: token.into(),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Sends a request with an optional raw body (sent as `application/json`) and returns the
    /// response as it is, whatever its status.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<RawResponse> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .with_context(|| format!("reading {method} {url}"))?;
        Ok(RawResponse { status, body })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<T> {
        let resp = self.raw(method.clone(), path, body).await?;
        if !(200..300).contains(&resp.status) {
            bail!("{method} {path} -> {}: {}", resp.status, resp.body);
        }
        serde_json::from_str(&resp.body)
            .with_context(|| format!("{method} {path}: unexpected body {}", resp.body))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let resp = self.raw(reqwest::Method::GET, "/metrics", None).await?;
        anyhow::ensure!(resp.status == 200, "GET /metrics -> {}", resp.status);
        Ok(resp.body)
    }

    pub async fn healthy(&self) -> bool {
        matches!(
            self.raw(reqwest::Method::GET, "/healthz", None).await,
            Ok(r) if r.status == 200
        )
    }

    pub async fn execute(
        &self,
        req: &ExecuteScriptRequest,
    ) -> anyhow::Result<ExecuteScriptResponse> {
        self.post("/api/v1/script-executions", req).await
    }

    pub async fn job(&self, id: JobId) -> anyhow::Result<JobView> {
        self.get(&format!("/api/v1/jobs/{id}")).await
    }

    pub async fn terminate(&self, id: JobId) -> anyhow::Result<()> {
        let resp = self
            .raw(
                reqwest::Method::POST,
                &format!("/api/v1/jobs/{id}/terminate"),
                Some(b"{}".to_vec()),
            )
            .await?;
        anyhow::ensure!(
            (200..300).contains(&resp.status),
            "terminate job {id} -> {}: {}",
            resp.status,
            resp.body
        );
        Ok(())
    }

    /// Polls the job every `every` until it is finished or `timeout` passes.
    pub async fn wait_job_every(
        &self,
        id: JobId,
        timeout: Duration,
        every: Duration,
    ) -> anyhow::Result<JobView> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.job(id).await {
                Ok(view) if view.finished => return Ok(view),
                Ok(view) if Instant::now() >= deadline => {
                    bail!("job {id} not finished after {timeout:?}: {view:?}")
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!("job {id} not finished after {timeout:?}")));
                }
                _ => tokio::time::sleep(every).await,
            }
        }
    }

    /// Polls the job every 100 ms until it is finished or `timeout` passes.
    pub async fn wait_job(&self, id: JobId, timeout: Duration) -> anyhow::Result<JobView> {
        self.wait_job_every(id, timeout, Duration::from_millis(100))
            .await
    }

    /// Every host row of a step's current attempt, all pages.
    pub async fn step_hosts(&self, step: StepId) -> anyhow::Result<Vec<TaskRow>> {
        let mut rows = Vec::new();
        loop {
            let page: Paged<TaskRow> = self
                .get(&format!(
                    "/api/v1/steps/{step}/hosts?start={}&length=1000",
                    rows.len()
                ))
                .await?;
            let n = page.data.len();
            rows.extend(page.data);
            if n == 0 || rows.len() as u64 >= page.total {
                return Ok(rows);
            }
        }
    }

    /// Polls the step's host rows until every host in `hosts` has a status for which `pred`
    /// holds; returns those rows.
    pub async fn wait_tasks(
        &self,
        step: StepId,
        hosts: &[HostId],
        timeout: Duration,
        pred: impl Fn(HostTaskStatus) -> bool,
    ) -> anyhow::Result<Vec<TaskRow>> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.step_hosts(step).await?;
            let matching: Vec<TaskRow> = rows
                .iter()
                .filter(|r| hosts.contains(&r.host_id) && pred(r.status))
                .cloned()
                .collect();
            if matching.len() == hosts.len() {
                return Ok(matching);
            }
            if Instant::now() >= deadline {
                bail!(
                    "step {step}: hosts {hosts:?} not in the awaited state after {timeout:?}: {rows:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Result groups of the current attempt by status, exit code and tag (the default).
    pub async fn groups(&self, step: StepId) -> anyhow::Result<Vec<ResultGroup>> {
        self.groups_by(step, "status").await
    }

    /// Result groups of the current attempt, `by` `status` or `output`.
    pub async fn groups_by(&self, step: StepId, by: &str) -> anyhow::Result<Vec<ResultGroup>> {
        #[derive(serde::Deserialize)]
        struct Groups {
            groups: Vec<ResultGroup>,
        }
        let g: Groups = self
            .get(&format!("/api/v1/steps/{step}/groups?by={by}"))
            .await?;
        Ok(g.groups)
    }

    /// The whole stored log of one host's task (current attempt), all pages.
    pub async fn log(&self, step: StepId, host: HostId) -> anyhow::Result<LogResponse> {
        let mut offset = 0u64;
        let mut all: Option<LogResponse> = None;
        loop {
            let page: LogResponse = self
                .get(&format!(
                    "/api/v1/steps/{step}/hosts/{host}/log?offset={offset}"
                ))
                .await?;
            let done = page.next_offset <= offset || page.next_offset >= page.total;
            offset = page.next_offset;
            match &mut all {
                None => all = Some(page),
                Some(acc) => {
                    acc.content.push_str(&page.content);
                    acc.next_offset = page.next_offset;
                    acc.total = page.total;
                    acc.finished = page.finished;
                    acc.truncated = page.truncated;
                }
            }
            if done {
                return all.context("empty log response");
            }
        }
    }

    /// Every host, all pages.
    pub async fn hosts(&self) -> anyhow::Result<Vec<Host>> {
        let mut hosts = Vec::new();
        loop {
            let page: Paged<Host> = self
                .get(&format!("/api/v1/hosts?start={}&length=1000", hosts.len()))
                .await?;
            let n = page.data.len();
            hosts.extend(page.data);
            if n == 0 || hosts.len() as u64 >= page.total {
                return Ok(hosts);
            }
        }
    }

    pub async fn summary(&self) -> anyhow::Result<HostSummary> {
        self.get("/api/v1/hosts/summary").await
    }
}

/// A shell script request on the given hosts, with a timeout in seconds.
pub fn shell(script: &str, hosts: &[HostId], timeout: i64) -> ExecuteScriptRequest {
    ExecuteScriptRequest {
        script: Some(script.to_owned()),
        language: serde_json::json!("shell"),
        timeout: Some(timeout),
        targets: Targets {
            host_ids: hosts.to_vec(),
            ..Targets::default()
        },
        ..ExecuteScriptRequest::default()
    }
}

/// Asserts that `resp` is the documented error `code`: its HTTP status, the error body with a
/// message, and never a 500.
#[track_caller]
pub fn assert_error(resp: &RawResponse, code: ErrorCode, what: &str) {
    assert_ne!(resp.status, 500, "{what}: a 500: {}", resp.body);
    let body = resp
        .error()
        .unwrap_or_else(|| panic!("{what}: not an error body ({}): {}", resp.status, resp.body));
    assert_eq!(body.error.code, code, "{what}: {}", resp.body);
    assert_eq!(resp.status, code.http_status(), "{what}: {}", resp.body);
    assert!(!body.error.message.is_empty(), "{what}: empty message");
}
