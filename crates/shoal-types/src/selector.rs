//! Label selectors: `key=value`, `key!=value`, `key in (a,b)`, `key` (exists) and `!key`, joined by
//! commas (all terms must hold), as in Kubernetes.

use crate::Labels;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectorTerm {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub terms: Vec<SelectorTerm>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid label selector {input:?}: {reason}")]
pub struct SelectorError {
    pub input: String,
    pub reason: &'static str,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<LabelSelector, SelectorError> {
        let err = |reason| SelectorError {
            input: input.to_string(),
            reason,
        };
        let mut terms = Vec::new();
        for raw in split_top_level(input) {
            let t = raw.trim();
            if t.is_empty() {
                return Err(err("empty term"));
            }
            let term = if let Some((k, rest)) = t.split_once(" in ") {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| err("`in` needs a parenthesised list"))?;
                let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
                if values.iter().any(|v| v.is_empty()) {
                    return Err(err("empty value in list"));
                }
                SelectorTerm::In(k.trim().to_string(), values)
            } else if let Some((k, v)) = t.split_once("!=") {
                SelectorTerm::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = t.split_once('=') {
                let v = v.strip_prefix('=').unwrap_or(v);
                SelectorTerm::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some(k) = t.strip_prefix('!') {
                SelectorTerm::NotExists(k.trim().to_string())
            } else {
                SelectorTerm::Exists(t.to_string())
            };
            let key = match &term {
                SelectorTerm::Eq(k, _)
                | SelectorTerm::NotEq(k, _)
                | SelectorTerm::In(k, _)
                | SelectorTerm::Exists(k)
                | SelectorTerm::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(err(
                    "label keys are 1-128 characters of letters, digits, - _ . /",
                ));
            }
            terms.push(term);
        }
        if terms.is_empty() {
            return Err(err("no terms"));
        }
        Ok(LabelSelector { terms })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.terms.iter().all(|t| match t {
            SelectorTerm::Eq(k, v) => labels.get(k) == Some(v),
            SelectorTerm::NotEq(k, v) => labels.get(k) != Some(v),
            SelectorTerm::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            SelectorTerm::Exists(k) => labels.contains_key(k),
            SelectorTerm::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(selector: &str, pairs: &[(&str, &str)], expected: bool) {
        let s = LabelSelector::parse(selector).unwrap();
        assert_eq!(
            s.matches(&labels(pairs)),
            expected,
            "{selector} on {pairs:?}"
        );
    }

    #[test]
    fn matching() {
        check("role=web", &[("role", "web")], true);
        check("role==web", &[("role", "web")], true);
        check("role=web", &[("role", "db")], false);
        check("role!=web", &[("role", "db")], true);
        check("role!=web", &[], true);
        check("env in (prod, staging)", &[("env", "staging")], true);
        check("env in (prod,staging)", &[("env", "dev")], false);
        check("gpu", &[("gpu", "")], true);
        check("!gpu", &[("gpu", "a100")], false);
        check(
            "role=web,env in (prod,dev)",
            &[("role", "web"), ("env", "dev")],
            true,
        );
        check(
            "role=web,env=prod",
            &[("role", "web"), ("env", "dev")],
            false,
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "role=web,", "env in prod", "bad key=1", "env in (a,,b)"] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
