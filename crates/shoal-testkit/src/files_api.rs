//! REST helpers for file distribution: uploads, transfers, and the per-file rows of a step.

use crate::api::{Api, RawResponse};
use anyhow::{Context, bail};
use shoal_types::api::{
    ExecuteScriptResponse, FileSourceRequest, FileTransferRequest, Targets, UploadResponse,
};
use shoal_types::api::{FileTaskRow, Paged};
use shoal_types::{HostId, StepId};

impl Api {
    /// `POST /api/v1/uploads?name=NAME` with `data` as the raw body.
    pub async fn upload_raw(&self, name: &str, data: Vec<u8>) -> anyhow::Result<RawResponse> {
        let url = format!("{}/api/v1/uploads", self.base());
        let resp = self
            .http()
            .post(&url)
            .query(&[("name", name)])
            .bearer_auth(self.token())
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.context("reading the upload answer")?;
        Ok(RawResponse { status, body })
    }

    pub async fn upload(&self, name: &str, data: Vec<u8>) -> anyhow::Result<UploadResponse> {
        let resp = self.upload_raw(name, data).await?;
        if resp.status != 200 && resp.status != 201 {
            bail!("upload {name} -> {}: {}", resp.status, resp.body);
        }
        serde_json::from_str(&resp.body).with_context(|| format!("upload answer {}", resp.body))
    }

    pub async fn transfer(
        &self,
        req: &FileTransferRequest,
    ) -> anyhow::Result<ExecuteScriptResponse> {
        self.post("/api/v1/file-transfers", req).await
    }

    /// Every file row of the step's current attempt (`mode`: "upload" or "download").
    pub async fn step_files(
        &self,
        step: StepId,
        mode: Option<&str>,
    ) -> anyhow::Result<Vec<FileTaskRow>> {
        let mut rows = Vec::new();
        loop {
            let mut path = format!(
                "/api/v1/steps/{step}/files?start={}&length=1000",
                rows.len()
            );
            if let Some(m) = mode {
                path.push_str(&format!("&mode={m}"));
            }
            let page: Paged<FileTaskRow> = self.get(&path).await?;
            let n = page.data.len();
            rows.extend(page.data);
            if n == 0 || rows.len() as u64 >= page.total {
                return Ok(rows);
            }
        }
    }
}

/// A source of files on hosts.
pub fn host_source(hosts: &[HostId], paths: &[&str]) -> FileSourceRequest {
    FileSourceRequest {
        file_list: paths.iter().map(|p| p.to_string()).collect(),
        targets: Some(Targets {
            host_ids: hosts.to_vec(),
            ..Targets::default()
        }),
        ..FileSourceRequest::default()
    }
}

/// A transfer of `sources` to `dir` on `targets`, with a timeout in seconds.
pub fn transfer(
    sources: Vec<FileSourceRequest>,
    targets: &[HostId],
    dir: &str,
    timeout: i64,
) -> FileTransferRequest {
    FileTransferRequest {
        file_source_list: sources,
        file_target_path: dir.to_owned(),
        targets: Targets {
            host_ids: targets.to_vec(),
            ..Targets::default()
        },
        timeout: Some(timeout),
        ..FileTransferRequest::default()
    }
}
