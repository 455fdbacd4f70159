//! Writing to the terminal: data to stdout (tables, JSON, exact log bytes), progress to stderr.
//! Writes return errors instead of panicking, so a closed pipe ends the command quietly.

use anyhow::Context as _;
use serde::Serialize;
use shoal_client::UnixMs;
use std::io::{IsTerminal as _, Write as _};

/// Writes bytes to stdout as they are.
pub fn stdout_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

pub fn stdout_str(s: &str) -> anyhow::Result<()> {
    stdout_bytes(s.as_bytes())
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value).context("cannot encode JSON output")?;
    s.push('\n');
    stdout_str(&s)
}

/// With `--json`, what a command that changes something but returns no record did, e.g.
/// `{"token_id": 4, "revoked": true}`; without, nothing (the human message goes to stderr).
pub fn print_done(json: bool, what: serde_json::Value) -> anyhow::Result<()> {
    if json { print_json(&what) } else { Ok(()) }
}

/// One compact JSON object on its own line (JSON lines, for streamed output).
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string(value).context("cannot encode JSON output")?;
    s.push('\n');
    stdout_str(&s)
}

/// A table with left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths.get(i).copied().unwrap_or(0) - cell.chars().count();
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

/// `2024-05-01 12:00:05` (UTC), or `-`.
pub fn time(ms: Option<UnixMs>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `1.2s`, `3m04s`, or `-` when the span is not known.
pub fn duration(start: Option<UnixMs>, end: Option<UnixMs>) -> String {
    let (Some(s), Some(e)) = (start, end) else {
        return "-".into();
    };
    let ms = (e - s).max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let secs = ms / 1000;
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

pub fn labels(l: &shoal_client::Labels) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Fetches pages of at most 1000 (the API's maximum) until `limit` items or the end; returns
/// the items and the total the server reported.
pub async fn collect_pages<T, F, Fut>(limit: u64, mut fetch: F) -> anyhow::Result<(Vec<T>, u64)>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: std::future::Future<Output = shoal_client::Result<shoal_client::Paged<T>>>,
{
    const PAGE: u64 = shoal_types::limits::PAGE_MAX as u64;
    let mut items: Vec<T> = Vec::new();
    loop {
        let start = items.len() as u64;
        let length = PAGE.min(limit.saturating_sub(start)) as u32;
        let page = fetch(start, length).await?;
        let total = page.total;
        let got = page.data.len();
        items.extend(page.data);
        if got == 0 || items.len() as u64 >= limit.min(total) {
            return Ok((items, total));
        }
    }
}

/// `1 host`, `2 hosts`, `0 files`: a count and its noun in agreement (nouns taking `s`).
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {}", plural(n, noun))
}

/// `noun`, or `nouns` unless `n` is 1.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`, `1.20 GiB` (binary multiples).
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else if f < KIB * KIB * KIB {
        format!("{:.1} MiB", f / KIB / KIB)
    } else {
        format!("{:.2} GiB", f / KIB / KIB / KIB)
    }
}

/// A progress display on stderr: on a terminal, a summary line and optional detail lines,
/// redrawn in place; otherwise only the summary, printed as a new line when it changes.
pub struct Progress {
    last: String,
    tty: bool,
    /// Lines of the block on screen (the cursor is at the end of the last one).
    shown: usize,
    width: usize,
}

impl Progress {
    pub fn new() -> Progress {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w >= 20)
            .unwrap_or(100);
        Progress {
            last: String::new(),
            tty: std::io::stderr().is_terminal(),
            shown: 0,
            width,
        }
    }

    /// Whether detail lines are shown at all (stderr is a terminal).
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    pub fn set(&mut self, line: &str) {
        self.set_block(line, &[]);
    }

    /// Shows `summary` and, on a terminal, `details` below it.
    pub fn set_block(&mut self, summary: &str, details: &[String]) {
        if !self.tty {
            if summary != self.last {
                self.last = summary.to_string();
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{summary}").and_then(|_| err.flush());
            }
            return;
        }
        let mut block = String::new();
        for line in std::iter::once(summary).chain(details.iter().map(String::as_str)) {
            if !block.is_empty() {
                block.push('\n');
            }
            // Lines must not wrap, or the redraw would miss the wrapped part.
            block.extend(line.chars().take(self.width - 1));
        }
        if block == self.last {
            return;
        }
        let mut out = String::from("\r");
        if self.shown > 1 {
            out.push_str(&format!("\x1b[{}A", self.shown - 1));
        }
        out.push_str("\x1b[J");
        out.push_str(&block);
        self.shown = block.lines().count().max(1);
        self.last = block;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{out}").and_then(|_| err.flush());
    }

    /// Ends the in-place block so that other messages start on a fresh line.
    pub fn finish(&mut self) {
        if self.shown > 0 {
            eprintln!();
            self.shown = 0;
            self.last.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pins the table layout and the time, duration and size formats.
    use super::*;

    #[test]
    fn counts_agree() {
        assert_eq!(count(1, "host"), "1 host");
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(2, "target host"), "2 target hosts");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "IP", "LABELS"],
            &[
                vec!["1".into(), "10.0.0.1".into(), "a=b".into()],
                vec!["22".into(), "::1".into(), String::new()],
            ],
        );
        assert_eq!(t, "ID  IP        LABELS\n1   10.0.0.1  a=b\n22  ::1\n");
    }

    #[test]
    fn times() {
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(time(Some(1_709_251_199_000)), "2024-02-29 23:59:59");
        assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00");
        assert_eq!(time(None), "-");
        assert_eq!(duration(Some(0), Some(1234)), "1.2s");
        assert_eq!(duration(Some(0), Some(184_000)), "3m04s");
        assert_eq!(duration(Some(5), None), "-");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
        assert_eq!(bytes(3 << 29), "1.50 GiB");
    }
}
