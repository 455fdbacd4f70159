//! Points in time on the command line: `--since 90m` (a span before now) and `--from`/`--to`
//! (a UTC date and time, or Unix milliseconds). Pure: `now` is an argument.

use shoal_client::UnixMs;

/// `30s`, `15m`, `2h`, `7d` or `2w` as milliseconds.
pub fn span_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!("bad time span `{s}`: use a number and a unit, e.g. 30m, 2h, 7d (s, m, h, d, w)")
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!("the time span `{s}` is empty"));
    }
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// `2026-12-03`, `2026-12-03 15:04`, `2026-12-03T15:04:05Z` (UTC), or Unix milliseconds.
pub fn instant(s: &str) -> Result<UnixMs, String> {
    let t = s.trim();
    let bad = || {
        format!("bad time `{s}`: use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] (UTC) or Unix milliseconds")
    };
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse().map_err(|_| bad());
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d.as_slice() else {
        return Err(bad());
    };
    let num = |x: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = x.parse().map_err(|_| bad())?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad())
        }
    };
    let (y, m, day) = (num(y, 1970, 9999)?, num(m, 1, 12)?, num(day, 1, 31)?);
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(tm) = time {
        let parts: Vec<&str> = tm.split(':').collect();
        let (h, mi, sec) = match parts.as_slice() {
            [h, mi] => (num(h, 0, 23)?, num(mi, 0, 59)?, 0),
            [h, mi, sec] => (num(h, 0, 23)?, num(mi, 0, 59)?, num(sec, 0, 60)?),
            _ => return Err(bad()),
        };
        secs += h * 3600 + mi * 60 + sec;
    }
    Ok(secs * 1000)
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian, UTC).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start of a time filter: `--since` before `now`, or `--from`.
pub fn from(since: Option<i64>, from: Option<UnixMs>, now: UnixMs) -> Option<UnixMs> {
    since.map(|s| now - s).or(from)
}

#[cfg(test)]
mod tests {
    //! Pins the accepted spellings of spans and instants, and that they agree with the output
    //! format (`output::time`).
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(span_ms("90m"), Ok(90 * 60_000));
        assert_eq!(span_ms("1h"), Ok(3_600_000));
        assert_eq!(span_ms("2w"), Ok(14 * 86_400_000));
        for bad in ["", "h", "1", "1y", "-1h", "0m", "1.5h"] {
            assert!(span_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants() {
        assert_eq!(instant("1709251199000"), Ok(1_709_251_199_000));
        let t = instant("2024-02-29 23:59:59").expect("time");
        assert_eq!(crate::output::time(Some(t)), "2024-02-29 23:59:59");
        assert_eq!(instant("2024-02-29T23:59:59Z"), Ok(t));
        assert_eq!(instant("1970-01-01"), Ok(0));
        assert_eq!(instant("2000-03-01 00:01"), Ok(951_868_860_000));
        for bad in ["yesterday", "2024-13-01", "2024-02-29 25:00", "2024-02"] {
            assert!(instant(bad).is_err(), "{bad}");
        }
        assert_eq!(from(Some(10), Some(3), 100), Some(90));
        assert_eq!(from(None, Some(3), 100), Some(3));
    }
}
