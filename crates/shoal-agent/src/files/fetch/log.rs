//! The fetch's download log (the task's output): readable lines, capped and digested like
//! script output.

use crate::exec::Sink;
use crate::output::Capture;
use shoal_proto::Stream;

pub struct Log<'a, S> {
    capture: Capture,
    sink: &'a mut S,
}

impl<'a, S: Sink> Log<'a, S> {
    pub fn new(cap: u64, sink: &'a mut S) -> Log<'a, S> {
        Log {
            capture: Capture::new(cap),
            sink,
        }
    }

    pub async fn started(&mut self, at: shoal_types::UnixMs) {
        self.sink.started(at, 0).await;
    }

    /// Appends `text` and a newline.
    pub async fn line(&mut self, text: impl Into<String>) {
        let mut text: String = text.into();
        text.push('\n');
        let stored = self.capture.push(Stream::Stdout, text.as_bytes());
        if !stored.keep.is_empty() {
            self.sink.output(Stream::Stdout, stored.keep).await;
        }
        if let Some(marker) = stored.marker {
            self.sink.output(Stream::Agent, &marker).await;
        }
    }

    pub fn finish(self) -> crate::output::Summary {
        self.capture.finish()
    }
}

/// `1.5 MiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    // Pins the size format of the download log.
    #[test]
    fn sizes() {
        assert_eq!(super::bytes(12), "12 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(5 << 20), "5.0 MiB");
    }
}
