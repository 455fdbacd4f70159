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

/// A one-line progress display on stderr that is rewritten in place on a terminal and printed
/// as a new line (only when it changes) otherwise.
pub struct Progress {
    last: String,
    tty: bool,
    open: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            last: String::new(),
            tty: std::io::stderr().is_terminal(),
            open: false,
        }
    }

    pub fn set(&mut self, line: &str) {
        if line == self.last {
            return;
        }
        self.last = line.to_string();
        let mut err = std::io::stderr().lock();
        let written = if self.tty {
            self.open = true;
            write!(err, "\r\x1b[K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = written.and_then(|_| err.flush());
    }

    /// Ends the in-place line so that other messages start on a fresh line.
    pub fn finish(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pins the table layout and the time/duration formats.
    use super::*;

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
}
