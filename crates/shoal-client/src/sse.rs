//! A small `text/event-stream` parser (the subset of the WHATWG rules the server uses) and the
//! conversion of its events into [`JobEvent`]s.
//!
//! Lines end with LF or CRLF. `event:` names the event, `data:` lines are joined with LF, a blank
//! line ends the event, lines starting with `:` are comments (keep-alives). `id:` and `retry:` are
//! accepted and ignored. An event without data is dropped, as the spec says.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use shoal_types::api::JobEvent;
use std::collections::VecDeque;

/// A single line longer than this is treated as a broken stream rather than buffered forever.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `message` when absent.
    pub event: String,
    pub data: String,
}

/// Incremental parser: feed it bytes as they arrive, take complete events out.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    ready: VecDeque<SseEvent>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Adds bytes; complete events become available from [`SseParser::next_event`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.line(&line);
            start = end + 1;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(format!(
                "event stream line longer than {MAX_LINE_BYTES} bytes"
            ));
        }
        Ok(())
    }

    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            let event = self.event.take();
            if let Some(data) = self.data.take() {
                self.ready.push_back(SseEvent {
                    event: event.unwrap_or_else(|| "message".to_string()),
                    data,
                });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }
}

/// Converts one server-sent event into a [`JobEvent`]. `Ok(None)` for event names this client
/// does not know (newer servers may add some).
pub fn decode_job_event(ev: &SseEvent) -> Result<Option<JobEvent>, String> {
    const KNOWN: [&str; 4] = ["job", "step", "log", "task"];
    if ev.event != "message" && !KNOWN.contains(&ev.event.as_str()) {
        return Ok(None);
    }
    let mut value: serde_json::Value = serde_json::from_str(&ev.data)
        .map_err(|e| format!("`{}` event data is not JSON: {e}", ev.event))?;
    // The data normally carries its own `event` tag; supply it from the SSE field if not.
    if let serde_json::Value::Object(map) = &mut value
        && !map.contains_key("event")
        && ev.event != "message"
    {
        map.insert("event".into(), serde_json::Value::String(ev.event.clone()));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("cannot decode `{}` event: {e}", ev.event))
}

/// Turns a response body into a stream of job events.
pub(crate) fn job_event_stream<S>(url: String, body: S) -> impl Stream<Item = Result<JobEvent>>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
{
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        parser: SseParser,
        url: String,
        done: bool,
    }
    let state = State {
        body: Box::pin(body),
        parser: SseParser::new(),
        url,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(ev) = st.parser.next_event() {
                match decode_job_event(&ev) {
                    Ok(Some(job_event)) => return Some((Ok(job_event), st)),
                    Ok(None) => continue,
                    Err(message) => {
                        let url = st.url.clone();
                        return Some((Err(Error::Decode { url, message }), st));
                    }
                }
            }
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    if let Err(message) = st.parser.push(&chunk) {
                        st.done = true;
                        let url = st.url.clone();
                        return Some((Err(Error::Decode { url, message }), st));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    let err = Error::from_reqwest(&st.url, e);
                    return Some((Err(err), st));
                }
                None => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    //! Pins the event-stream parser: events split across arbitrary chunk boundaries, CRLF,
    //! comments/keep-alives, multi-line data, and the mapping to `JobEvent`.
    use super::*;
    use shoal_types::{HostTaskStatus, RunStatus};

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c).expect("push");
            while let Some(ev) = p.next_event() {
                out.push(ev);
            }
        }
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn basic_events_and_comments() {
        let text = b": keep-alive\n\nevent: job\ndata: {\"a\":1}\n\n:ping\nevent: step\ndata:x\n\n";
        assert_eq!(
            parse_all(&[text]),
            vec![ev("job", "{\"a\":1}"), ev("step", "x")]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let text: &[u8] = b"event: log\r\ndata: one\r\ndata: two\r\nid: 5\r\n\r\ndata: plain\n\n";
        let want = vec![ev("log", "one\ntwo"), ev("message", "plain")];
        for i in 0..=text.len() {
            assert_eq!(parse_all(&[&text[..i], &text[i..]]), want, "split at {i}");
        }
        let bytewise: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_all(&bytewise), want);
    }

    #[test]
    fn event_without_data_is_dropped_and_incomplete_event_waits() {
        assert_eq!(parse_all(&[b"event: job\n\n"]), vec![]);
        assert_eq!(parse_all(&[b"event: job\ndata: 1\n"]), vec![]);
        // The event name does not leak into the next event.
        assert_eq!(
            parse_all(&[b"event: job\n\ndata: 2\n\n"]),
            vec![ev("message", "2")]
        );
    }

    #[test]
    fn utf8_split_across_chunks() {
        let text = "data: héllo\n\n".as_bytes();
        let cut = text.iter().position(|b| *b == 0xc3).expect("é") + 1;
        assert_eq!(
            parse_all(&[&text[..cut], &text[cut..]]),
            vec![ev("message", "héllo")]
        );
    }

    #[test]
    fn decodes_job_events() {
        let step = ev(
            "step",
            r#"{"event":"step","job_id":1,"step_id":2,"attempt":0,"status":2,"counts":[{"status":9,"count":3}]}"#,
        );
        let got = decode_job_event(&step).expect("decode").expect("known");
        match got {
            JobEvent::Step {
                job_id,
                status,
                counts,
                ..
            } => {
                assert_eq!(job_id, 1);
                assert_eq!(status, RunStatus::Running);
                assert_eq!(counts[0].status, HostTaskStatus::Success);
            }
            other => panic!("unexpected {other:?}"),
        }
        // Data without the tag takes the name from the `event:` field.
        let job = ev("job", r#"{"job_id":1,"status":3}"#);
        assert_eq!(
            decode_job_event(&job).expect("decode"),
            Some(JobEvent::Job {
                job_id: 1,
                status: RunStatus::Success
            })
        );
        assert_eq!(decode_job_event(&ev("lagged", "{}")).expect("ok"), None);
        assert!(decode_job_event(&ev("job", "not json")).is_err());
    }

    #[tokio::test]
    async fn stream_yields_events_then_ends() {
        let chunks: Vec<reqwest::Result<Bytes>> = vec![
            Ok(Bytes::from_static(
                b": hi\n\nevent: task\ndata: {\"job_id\":1,",
            )),
            Ok(Bytes::from_static(
                b"\"step_id\":2,\"attempt\":0,\"host_id\":3,\"status\":7}\n\nevent: job\n",
            )),
            Ok(Bytes::from_static(b"data: {\"job_id\":1,\"status\":4}\n\n")),
        ];
        let s = job_event_stream("u".into(), futures::stream::iter(chunks));
        let got: Vec<JobEvent> = s.map(|r| r.expect("event")).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name(), "task");
        assert_eq!(
            got[1],
            JobEvent::Job {
                job_id: 1,
                status: RunStatus::Fail
            }
        );
    }
}
