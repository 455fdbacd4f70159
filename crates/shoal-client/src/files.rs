//! File distribution endpoints: uploads (raw bodies, optionally streamed with progress), file
//! transfers, and the per-file rows of a file step.

use crate::{
    Client, Error, FileQuery, FileTaskRow, FileTransferRequest, FileTransferResponse, Paged,
    Result, StepId, UploadResponse,
};
use futures::Stream;
use reqwest::Method;
use std::path::Path;

/// Bytes read from a file per body chunk of [`Client::upload_file`].
const READ_CHUNK: usize = 256 * 1024;

impl Client {
    /// `POST /api/v1/uploads?name=NAME` with `body` as the raw content. The server answers with
    /// the content's id (hex BLAKE3) to use as a transfer's `upload_id`. Uploading the same
    /// content again is cheap on the server's side and answers the same id.
    pub async fn upload(
        &self,
        name: &str,
        body: impl Into<bytes::Bytes>,
    ) -> Result<UploadResponse> {
        let body: bytes::Bytes = body.into();
        let len = body.len() as u64;
        self.upload_body(name, Some(len), reqwest::Body::from(body))
            .await
    }

    /// Like [`Client::upload`], streaming the content: `size` (when known) is sent as the
    /// `Content-Length` so that the server can refuse an oversized upload before reading it.
    pub async fn upload_stream<S>(
        &self,
        name: &str,
        size: Option<u64>,
        stream: S,
    ) -> Result<UploadResponse>
    where
        S: Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    {
        self.upload_body(name, size, reqwest::Body::wrap_stream(stream))
            .await
    }

    /// Uploads a local file under `name` (default: the file's name), calling `progress` with the
    /// number of bytes handed to the connection so far (at most every [`READ_CHUNK`] bytes).
    pub async fn upload_file(
        &self,
        path: &Path,
        name: Option<&str>,
        progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<UploadResponse> {
        let name = match name {
            Some(n) => n.to_string(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Invalid(format!("{} has no file name", path.display())))?,
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::Invalid(format!("cannot open {}: {e}", path.display())))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let stream = read_stream(file, progress);
        self.upload_stream(&name, Some(meta.len()), stream).await
    }

    async fn upload_body(
        &self,
        name: &str,
        size: Option<u64>,
        body: reqwest::Body,
    ) -> Result<UploadResponse> {
        if name.is_empty() {
            return Err(Error::Invalid("an upload needs a name".into()));
        }
        let url = self.url("/api/v1/uploads");
        let mut req = self
            .request(Method::POST, &url)
            .query(&[("name", name)])
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
        if let Some(len) = size {
            req = req.header(reqwest::header::CONTENT_LENGTH, len);
        }
        let resp = self.send(&url, req.body(body)).await?;
        Self::decode(&url, resp).await
    }

    /// `GET /api/v1/uploads/{id}`: whether the server still holds an upload, and what it is.
    pub async fn upload_info(&self, upload_id: &str) -> Result<UploadResponse> {
        self.get_json(&format!("/api/v1/uploads/{upload_id}"), &[])
            .await
    }

    /// `POST /api/v1/file-transfers`: starts a file job (one file step), answered like a script
    /// execution.
    pub async fn transfer_files(&self, req: &FileTransferRequest) -> Result<FileTransferResponse> {
        self.send_json(Method::POST, "/api/v1/file-transfers", req)
            .await
    }

    /// `GET /api/v1/steps/{id}/files`: per-file transfer rows of a file step attempt.
    pub async fn step_files(
        &self,
        step_id: StepId,
        query: &FileQuery,
    ) -> Result<Paged<FileTaskRow>> {
        let path = format!("/api/v1/steps/{step_id}/files");
        self.get_json(&path, &query.pairs()).await
    }
}

/// A file as a stream of body chunks, reporting the running total to `progress`.
fn read_stream(
    file: tokio::fs::File,
    progress: impl FnMut(u64) + Send + 'static,
) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    use tokio::io::AsyncReadExt as _;
    futures::stream::try_unfold(
        (file, 0u64, progress),
        |(mut file, mut sent, mut progress)| async move {
            let mut buf = vec![0u8; READ_CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            sent += n as u64;
            progress(sent);
            Ok(Some((bytes::Bytes::from(buf), (file, sent, progress))))
        },
    )
}

#[cfg(test)]
mod tests {
    //! Pins the upload wire form: raw body, `name` in the query, a `Content-Length` even when
    //! streamed from a file, progress up to the file's size, and the answer decoded.
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Accepts one request, reads its head and `Content-Length` bytes of body, answers `answer`;
    /// returns the base URL and (head, body).
    async fn one_request(answer: String) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", l.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut sock, _) = l.accept().await.expect("accept");
            let mut data = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            let head_end = loop {
                if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                let n = sock.read(&mut buf).await.expect("read");
                assert!(n > 0, "connection closed before the head ended");
                data.extend_from_slice(&buf[..n]);
            };
            let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length header");
            while data.len() < head_end + len {
                let n = sock.read(&mut buf).await.expect("read");
                assert!(n > 0, "connection closed before the body ended");
                data.extend_from_slice(&buf[..n]);
            }
            sock.write_all(answer.as_bytes()).await.expect("write");
            sock.shutdown().await.ok();
            (head, data[head_end..].to_vec())
        });
        (base, task)
    }

    fn answer(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn upload_file_streams_raw_bytes_with_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pkg v1.tar.gz");
        let content: Vec<u8> = (0..(READ_CHUNK * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &content).expect("write");
        let (base, server) = one_request(answer(
            r#"{"upload_id":"ab","name":"pkg v1.tar.gz","size":524305,"expires_at":5}"#,
        ))
        .await;
        let seen = Arc::new(AtomicU64::new(0));
        let seen2 = Arc::clone(&seen);
        let c = Client::new(base, Some("t".into()));
        let resp = c
            .upload_file(&path, None, move |n| seen2.store(n, Ordering::SeqCst))
            .await
            .expect("upload");
        assert_eq!(resp.upload_id, "ab");
        assert_eq!(resp.size, content.len() as u64);
        assert_eq!(seen.load(Ordering::SeqCst), content.len() as u64);
        let (head, body) = server.await.expect("server");
        assert!(
            head.starts_with("post /api/v1/uploads?name=pkg+v1.tar.gz "),
            "{head}"
        );
        assert!(head.contains("authorization: bearer t"), "{head}");
        assert!(
            head.contains("content-type: application/octet-stream"),
            "{head}"
        );
        assert_eq!(body, content);
    }

    #[tokio::test]
    async fn upload_refuses_what_it_cannot_send() {
        let c = Client::new("http://127.0.0.1:9", None);
        let err = c.upload("", b"x".to_vec()).await.expect_err("no name");
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let err = c
            .upload_file(dir.path(), Some("d"), |_| {})
            .await
            .expect_err("a directory");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
