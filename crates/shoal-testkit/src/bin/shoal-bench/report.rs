//! Figures, targets and the Markdown report.

use std::time::Duration;

/// Median, min and max of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Option<Stats> {
        let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: s[0],
            max: s[n - 1],
            n,
        })
    }

    pub fn of_durations(samples: &[Duration]) -> Option<Stats> {
        Stats::of(
            &samples
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
        )
    }
}

/// How a figure is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
    /// A plain multiple (ratio to a bound or a baseline).
    Ratio,
}

impl Unit {
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Seconds if v < 1.0 => format!("{:.1} ms", v * 1000.0),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Bytes if v >= 1024.0 * 1024.0 * 1024.0 => {
                format!("{:.2} GiB", v / 1024.0 / 1024.0 / 1024.0)
            }
            Unit::Bytes => format!("{:.1} MiB", v / 1024.0 / 1024.0),
            Unit::Ratio => format!("{v:.2}×"),
        }
    }
}

/// A figure's target: the median (or the single value) must be at most `max`.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub max: f64,
}

/// One row of the report.
#[derive(Clone, Debug)]
pub struct Row {
    pub what: String,
    pub setup: String,
    pub unit: Unit,
    pub result: Result<Stats, String>,
    pub target: Option<Target>,
}

impl Row {
    pub fn new(what: &str, setup: &str, unit: Unit, result: Result<Stats, String>) -> Row {
        Row {
            what: what.to_owned(),
            setup: setup.to_owned(),
            unit,
            result,
            target: None,
        }
    }

    pub fn target(mut self, max: f64) -> Row {
        self.target = Some(Target { max });
        self
    }

    /// `Some(true)` met, `Some(false)` missed, `None` no target or no figure.
    pub fn met(&self) -> Option<bool> {
        let t = self.target?;
        let s = self.result.as_ref().ok()?;
        Some(s.median <= t.max)
    }
}

/// The Markdown report: a table, then the list of missed targets.
pub fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = format!("{header}\n\n");
    out.push_str("| figure | setup | median | min | max | n | target | met |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let target = r
            .target
            .map(|t| format!("≤ {}", r.unit.show(t.max)))
            .unwrap_or_else(|| "–".into());
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        match &r.result {
            Ok(s) => out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.what,
                r.setup,
                r.unit.show(s.median),
                r.unit.show(s.min),
                r.unit.show(s.max),
                s.n,
                target,
                met
            )),
            Err(e) => out.push_str(&format!(
                "| {} | {} | error: {} | | | | {} | – |\n",
                r.what,
                r.setup,
                e.replace('|', "/").replace('\n', " "),
                target
            )),
        }
    }
    let missed: Vec<String> = rows
        .iter()
        .filter(|r| r.met() == Some(false))
        .map(|r| format!("{} ({})", r.what, r.setup))
        .collect();
    let unmeasured: Vec<String> = rows
        .iter()
        .filter(|r| r.target.is_some() && r.result.is_err())
        .map(|r| format!("{} ({})", r.what, r.setup))
        .collect();
    out.push('\n');
    if missed.is_empty() {
        out.push_str("Targets missed: none.\n");
    } else {
        out.push_str(&format!("Targets missed: {}.\n", missed.join("; ")));
    }
    if !unmeasured.is_empty() {
        out.push_str(&format!(
            "Targets not measured (errors): {}.\n",
            unmeasured.join("; ")
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn report_names_missed_targets() {
        let rows = vec![
            Row::new(
                "a",
                "x",
                Unit::Seconds,
                Stats::of(&[0.5]).ok_or_else(String::new),
            )
            .target(1.0),
            Row::new(
                "b",
                "y",
                Unit::Seconds,
                Stats::of(&[2.0]).ok_or_else(String::new),
            )
            .target(1.0),
            Row::new("c", "z", Unit::Bytes, Err("boom".into())).target(1.0),
        ];
        let md = markdown(&rows, "# t");
        assert!(md.contains("Targets missed: b (y)."), "{md}");
        assert!(md.contains("not measured (errors): c (z)"), "{md}");
        assert!(md.contains("| 500.0 ms |"), "{md}");
    }
}
