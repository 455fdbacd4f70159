//! What happens to a task's output bytes before they are stored: the per-task cap with its
//! truncation marker, the BLAKE3 digest of what is stored, and `::shoal-tag::` extraction.

use shoal_proto::Stream;
use shoal_types::limits::TAG_MAX_BYTES;

/// A line starting with this sets the task's tag to the rest of the line.
pub const TAG_PREFIX: &[u8] = b"::shoal-tag::";

pub use shoal_types::limits::truncation_marker;

/// Accounts for one task's output. Feed it every read with [`Capture::push`]; store what it
/// returns.
pub struct Capture {
    cap: u64,
    stored: u64,
    truncated: bool,
    hasher: blake3::Hasher,
    lines: [LineScan; 3],
    tag: Option<String>,
}

/// The result of one [`Capture::push`]: the prefix of the input to store, and the truncation
/// marker (an `Agent`-stream chunk stored right after it) when this read crossed the cap.
pub struct Stored<'a> {
    pub keep: &'a [u8],
    pub marker: Option<Vec<u8>>,
}

/// What [`Capture::finish`] reports for the task's `Outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub output_len: u64,
    pub truncated: bool,
    pub digest: String,
    pub tag: Option<String>,
}

impl Capture {
    pub fn new(cap: u64) -> Capture {
        Capture {
            cap,
            stored: 0,
            truncated: false,
            hasher: blake3::Hasher::new(),
            lines: Default::default(),
            tag: None,
        }
    }

    /// Takes one read. Tags are scanned in everything the script prints, stored or not.
    pub fn push<'a>(&mut self, stream: Stream, data: &'a [u8]) -> Stored<'a> {
        if let Some(tag) = self.lines[stream_index(stream)].push(data) {
            self.tag = Some(tag);
        }
        if self.truncated {
            return Stored {
                keep: &[],
                marker: None,
            };
        }
        let room = usize::try_from(self.cap.saturating_sub(self.stored)).unwrap_or(usize::MAX);
        let keep = &data[..data.len().min(room)];
        self.record(keep);
        if keep.len() == data.len() {
            return Stored { keep, marker: None };
        }
        self.truncated = true;
        let marker = truncation_marker(self.cap);
        self.record(&marker);
        Stored {
            keep,
            marker: Some(marker),
        }
    }

    /// Text the agent itself stores (start failures); subject to the cap like script output.
    pub fn push_agent_text(&mut self, text: &str) -> Vec<u8> {
        let stored = self.push(Stream::Agent, text.as_bytes());
        let mut out = stored.keep.to_vec();
        out.extend(stored.marker.unwrap_or_default());
        out
    }

    fn record(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.stored += bytes.len() as u64;
    }

    pub fn stored(&self) -> u64 {
        self.stored
    }

    pub fn finish(mut self) -> Summary {
        // An unterminated last line still counts; stdout's is taken after stderr's.
        for i in [1, 0] {
            if let Some(tag) = self.lines[i].end_line() {
                self.tag = Some(tag);
            }
        }
        Summary {
            output_len: self.stored,
            truncated: self.truncated,
            digest: self.hasher.finalize().to_hex().to_string(),
            tag: self.tag,
        }
    }
}

fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::Agent => 2,
    }
}

/// Follows the lines of one stream, keeping only the head of the current line: enough to
/// recognise the tag prefix and a maximal tag value.
#[derive(Default)]
struct LineScan {
    head: Vec<u8>,
}

const LINE_HEAD_MAX: usize = TAG_PREFIX.len() + TAG_MAX_BYTES + 64;

impl LineScan {
    /// Returns the value of the last tag line completed in `data`.
    fn push(&mut self, mut data: &[u8]) -> Option<String> {
        let mut tag = None;
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            self.append(&data[..nl]);
            if let Some(t) = self.end_line() {
                tag = Some(t);
            }
            data = &data[nl + 1..];
        }
        self.append(data);
        tag
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = LINE_HEAD_MAX.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_line(&mut self) -> Option<String> {
        let tag = self.head.strip_prefix(TAG_PREFIX).and_then(tag_value);
        self.head.clear();
        tag
    }
}

/// The trimmed value, cut to at most [`TAG_MAX_BYTES`] on a character boundary; empty is none.
fn tag_value(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut value = text.trim();
    if value.len() > TAG_MAX_BYTES {
        let mut end = TAG_MAX_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value = value[..end].trim_end();
    }
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    // Pins output accounting: the cap keeps exactly `cap` bytes then the marker, later bytes
    // are dropped, the digest covers exactly the stored bytes, and the tag is the last
    // `::shoal-tag::` line (trimmed, split reads, 256-byte limit, any stream).
    use super::*;

    fn run(cap: u64, reads: &[(Stream, &[u8])]) -> (Vec<u8>, Summary) {
        let mut c = Capture::new(cap);
        let mut stored = Vec::new();
        for (stream, data) in reads {
            let s = c.push(*stream, data);
            stored.extend_from_slice(s.keep);
            stored.extend(s.marker.unwrap_or_default());
        }
        (stored, c.finish())
    }

    #[test]
    fn cap_and_marker() {
        let (stored, sum) = run(
            5,
            &[
                (Stream::Stdout, b"abc"),
                (Stream::Stderr, b"defg"),
                (Stream::Stdout, b"h"),
            ],
        );
        let mut expected = b"abcde".to_vec();
        expected.extend(truncation_marker(5));
        assert_eq!(stored, expected);
        assert!(sum.truncated);
        assert_eq!(sum.output_len, expected.len() as u64);
        assert_eq!(sum.digest, blake3::hash(&expected).to_hex().to_string());

        let (stored, sum) = run(5, &[(Stream::Stdout, b"abcde")]);
        assert_eq!(stored, b"abcde");
        assert!(!sum.truncated);
    }

    #[test]
    fn tags() {
        let check = |reads: &[(Stream, &[u8])], want: Option<&str>| {
            assert_eq!(run(1 << 20, reads).1.tag.as_deref(), want, "{reads:?}");
        };
        check(&[(Stream::Stdout, b"hello\n")], None);
        check(
            &[(Stream::Stdout, b"::shoal-tag:: a \n::shoal-tag::b\nx\n")],
            Some("b"),
        );
        check(
            &[
                (Stream::Stdout, b"::shoal-"),
                (Stream::Stdout, b"tag::split\n"),
            ],
            Some("split"),
        );
        check(&[(Stream::Stdout, b"x ::shoal-tag::no\n")], None);
        check(
            &[(Stream::Stdout, b"::shoal-tag::last-unterminated")],
            Some("last-unterminated"),
        );
        check(&[(Stream::Stderr, b"::shoal-tag::err\n")], Some("err"));
        check(&[(Stream::Stdout, b"::shoal-tag::   \n")], None);
        let long = format!("::shoal-tag::{}\n", "é".repeat(300));
        let tag = run(1 << 20, &[(Stream::Stdout, long.as_bytes())])
            .1
            .tag
            .expect("tag");
        assert!(tag.len() <= TAG_MAX_BYTES && tag.len() >= TAG_MAX_BYTES - 1);
        // Tags past the cap still count.
        check(
            &[
                (Stream::Stdout, b"0123456789"),
                (Stream::Stdout, b"\n::shoal-tag::late\n"),
            ],
            Some("late"),
        );
        assert_eq!(
            run(4, &[(Stream::Stdout, b"0123456789\n::shoal-tag::late\n")])
                .1
                .tag
                .as_deref(),
            Some("late")
        );
    }
}
