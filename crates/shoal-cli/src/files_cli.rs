//! The command line of `shoal push` and `shoal gather`, as clap types, and the parsers of their
//! host sets and sources. Parsing only: the commands live in [`crate::transfer`].
//!
//! One grammar names hosts everywhere (a source's hosts, `--to`, `--from`), mirroring the target
//! flags of `shoal run`:
//!
//! | HOSTS                         | hosts                         | like `shoal run` |
//! | ----------------------------- | ----------------------------- | ---------------- |
//! | `10.0.0.5`, `10.0.0.5,fd00::1`| by IP (IPv6 may be `[...]`)   | `--ip`           |
//! | `3`, `id=3,4`                 | by host id                    | `--hosts`        |
//! | `label=role=web,env in (prod)`| a label selector (all terms)  | `--label`        |
//! | `group=7`                     | saved dynamic groups          | `--group`        |
//!
//! A source is `HOSTS:PATH` (PATH absolute, or `REGEX:<pattern>`) or a local file path.

use clap::Args;
use shoal_client::{DuplicateMode, Targets};
use std::path::PathBuf;

/// Shown after `--help` of both commands.
const HOSTS_HELP: &str = "\
HOSTS (in SRC, --to and --from):
  10.0.0.5  or  10.0.0.5,10.0.0.6  or  [fd00::1]   hosts by IP
  3  or  id=3,4                                     hosts by id
  label=role=web,env in (prod)                      a label selector (every term must hold)
  group=7                                           saved dynamic groups
--to and --from are repeatable; the hosts add up.

Source paths on hosts are absolute: a file, a directory with a trailing / (sent recursively),
a wildcard (*, ?, [...]), or REGEX:<pattern>; anything else is taken literally (spaces and
regex characters included). The target directory may use [date:%Y%m%d] and [source_ip].
Speed limits are per host, in MB/s (1 MB = 1,048,576 bytes).";

const PUSH_EXAMPLES: &str = "\
Examples:
  shoal push 10.0.0.5:/data/pkg.tar.gz --to label=role=web --dir /opt/pkg
  shoal push ./app.conf ./app.env --to id=3,4 --dir /etc/app --account app --strict
  shoal push 'id=3:/var/www/static/' --to group=7 --dir /var/www --download-limit 20";

const GATHER_EXAMPLES: &str = "\
Examples:
  shoal gather --from label=role=web --path /var/log/app/app.log --to 10.0.0.9 --dir /srv/logs
  shoal gather --from id=3,4 --path '/var/log/nginx/*.log' --to id=1 --dir '/srv/logs/[date:%Y%m%d]'";

/// A source of `shoal push`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `HOSTS:PATH`: a path on source hosts.
    Hosts { hosts: Targets, path: String },
    /// A file on this machine, uploaded to the server first.
    Local(PathBuf),
}

/// Options shared by `push` and `gather`.
#[derive(Debug, Args, Default)]
pub struct TransferOpts {
    /// Absolute target directory (created unless --strict).
    #[arg(long, value_name = "DIR", value_parser = target_dir)]
    pub dir: String,
    /// Owner of the written files on the targets [default: the agent's account].
    #[arg(long, value_name = "USER")]
    pub account: Option<String>,
    /// Read the source files as this account [default: the agent's account].
    #[arg(long, value_name = "USER")]
    pub source_account: Option<String>,
    /// Fail on targets where the directory does not exist, instead of creating it.
    #[arg(long)]
    pub strict: bool,
    /// When several sources give the same name: overwrite, by-source-ip (DIR/<ip>/name) or
    /// by-date-and-source-ip (DIR/<YYYY-MM-DD>/<ip>/name).
    #[arg(long, value_parser = duplicate_mode, value_name = "MODE")]
    pub duplicate: Option<DuplicateMode>,
    /// Per-host upload speed limit, MB/s [default: unlimited].
    #[arg(long, value_name = "MB/S", value_parser = clap::value_parser!(u32).range(1..))]
    pub upload_limit: Option<u32>,
    /// Per-host download speed limit, MB/s [default: unlimited].
    #[arg(long, value_name = "MB/S", value_parser = clap::value_parser!(u32).range(1..))]
    pub download_limit: Option<u32>,
    /// Timeout in seconds (1 to 259200) [default: server's, 7200].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(1..=259_200))]
    pub timeout: Option<i64>,
    /// Targets fetch from the sources only, not from each other.
    #[arg(long)]
    pub no_p2p: bool,
    /// Job name.
    #[arg(long)]
    pub name: Option<String>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

/// `shoal push SRC... --to HOSTS --dir DIR`.
#[derive(Debug, Args)]
#[command(after_help = format!("{HOSTS_HELP}\n\n{PUSH_EXAMPLES}"))]
pub struct PushArgs {
    /// What to send: HOSTS:PATH (a path on source hosts, e.g. 10.0.0.5:/data/pkg.tar.gz or
    /// id=3:/etc/app/) or a local file (uploaded first; write ./PATH if it contains ":/").
    #[arg(required = true, value_name = "SRC", value_parser = source)]
    pub sources: Vec<Source>,
    /// Target hosts (repeatable).
    #[arg(long = "to", required = true, value_name = "HOSTS", value_parser = host_set)]
    pub to: Vec<Targets>,
    #[command(flatten)]
    pub opts: TransferOpts,
}

/// `shoal gather --from HOSTS --path PATH... --to HOSTS --dir DIR`.
#[derive(Debug, Args)]
#[command(after_help = format!("{HOSTS_HELP}\n\n{GATHER_EXAMPLES}"))]
pub struct GatherArgs {
    /// Hosts to collect from (repeatable).
    #[arg(long = "from", required = true, value_name = "HOSTS", value_parser = host_set)]
    pub from: Vec<Targets>,
    /// Absolute path on those hosts (repeatable): file, dir/, wildcard or REGEX:<pattern>.
    #[arg(long = "path", required = true, value_name = "PATH", value_parser = source_path)]
    pub paths: Vec<String>,
    /// The host (or hosts) that receive the files (repeatable).
    #[arg(long = "to", required = true, value_name = "HOSTS", value_parser = host_set)]
    pub to: Vec<Targets>,
    /// Files of different hosts land in DIR/<source ip>/ by default (--duplicate by-source-ip).
    #[command(flatten)]
    pub opts: TransferOpts,
}

/// One HOSTS value (see the module docs).
pub fn host_set(s: &str) -> Result<Targets, String> {
    let s = s.trim();
    let mut t = Targets::default();
    if let Some(sel) = s.strip_prefix("label=") {
        if sel.trim().is_empty() {
            return Err("label= needs a selector, e.g. label=role=web".into());
        }
        t.selector = Some(sel.trim().to_string());
        return Ok(t);
    }
    if let Some(ids) = s.strip_prefix("group=") {
        t.group_ids = id_list(ids, "group id")?;
        return Ok(t);
    }
    if let Some(ids) = s.strip_prefix("id=") {
        t.host_ids = id_list(ids, "host id")?;
        return Ok(t);
    }
    let list = s.strip_prefix("ip=").unwrap_or(s);
    if list.is_empty() {
        return Err("expected hosts: IPs, id=N, label=SELECTOR or group=N".into());
    }
    for item in list.split(',').map(str::trim) {
        if let Ok(id) = item.parse::<i64>() {
            t.host_ids.push(id);
            continue;
        }
        let bare = item
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(item);
        if bare.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "`{item}` is not a host: give an IP, a host id, id=N,.., label=SELECTOR or group=N"
            ));
        }
        t.ips.push(bare.to_string());
    }
    Ok(t)
}

fn id_list(s: &str, what: &str) -> Result<Vec<i64>, String> {
    let ids: Result<Vec<i64>, String> = s
        .split(',')
        .map(str::trim)
        .map(|i| i.parse().map_err(|_| format!("`{i}` is not a {what}")))
        .collect();
    let ids = ids?;
    if ids.is_empty() {
        return Err(format!("expected a {what}"));
    }
    Ok(ids)
}

/// The union of several HOSTS values. A request holds one selector, so at most one `label=`.
pub fn merge_hosts(sets: &[Targets]) -> Result<Targets, String> {
    let mut out = Targets::default();
    for t in sets {
        for id in &t.host_ids {
            if !out.host_ids.contains(id) {
                out.host_ids.push(*id);
            }
        }
        for ip in &t.ips {
            if !out.ips.contains(ip) {
                out.ips.push(ip.clone());
            }
        }
        for g in &t.group_ids {
            if !out.group_ids.contains(g) {
                out.group_ids.push(*g);
            }
        }
        if let Some(sel) = &t.selector {
            if out.selector.as_ref().is_some_and(|s| s != sel) {
                return Err(
                    "give at most one label= per host set: a selector's terms all must hold \
                     (label=role=web,env=prod); save a dynamic group for more"
                        .into(),
                );
            }
            out.selector = Some(sel.clone());
        }
    }
    Ok(out)
}

/// An absolute path on a host, or `REGEX:<pattern>`.
pub fn source_path(s: &str) -> Result<String, String> {
    if is_host_path(s) {
        return Ok(s.to_string());
    }
    Err(format!(
        "`{s}` is not an absolute path (or REGEX:<pattern>); paths on hosts must start with /"
    ))
}

fn is_host_path(s: &str) -> bool {
    s.starts_with('/') || s.strip_prefix("REGEX:").is_some_and(|p| !p.is_empty())
}

/// A SRC of `shoal push`: `HOSTS:PATH`, or a local file. The split is at the first `:` whose
/// left side is a valid HOSTS and whose right side is an absolute path or `REGEX:`, so IPv6
/// addresses and selectors need no quoting.
pub fn source(s: &str) -> Result<Source, String> {
    if s.is_empty() {
        return Err("empty source".into());
    }
    let local_prefix = ["/", "./", "../", "~/"].iter().any(|p| s.starts_with(p));
    if !local_prefix {
        for (i, _) in s.match_indices(':') {
            let (host, path) = (&s[..i], &s[i + 1..]);
            if host.is_empty() || !is_host_path(path) {
                continue;
            }
            if let Ok(hosts) = host_set(host) {
                return Ok(Source::Hosts {
                    hosts,
                    path: path.to_string(),
                });
            }
        }
        if let Some(i) = s.find(":/").or_else(|| s.find(":REGEX:")) {
            let host = &s[..i];
            return Err(format!(
                "`{host}` is not a host (an IP, id=N, label=SELECTOR or group=N); \
                 for a local file whose name has \":/\" write ./{s}"
            ));
        }
    }
    Ok(Source::Local(PathBuf::from(s)))
}

/// `--dir`: absolute (`/...`, or `C:\...` for Windows targets); macros are the server's.
pub fn target_dir(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let windows =
        b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
    if s.starts_with('/') || windows {
        return Ok(s.to_string());
    }
    Err(format!(
        "the target directory `{s}` is not absolute (e.g. /opt/app)"
    ))
}

pub fn duplicate_mode(s: &str) -> Result<DuplicateMode, String> {
    match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "overwrite" => Ok(DuplicateMode::Overwrite),
        "by-source-ip" | "by-ip" => Ok(DuplicateMode::BySourceIp),
        "by-date-and-source-ip" | "by-date-and-ip" => Ok(DuplicateMode::ByDateAndSourceIp),
        _ => Err(format!(
            "unknown duplicate handling `{s}` (overwrite, by-source-ip, by-date-and-source-ip)"
        )),
    }
}

#[cfg(test)]
mod tests {
    //! Pins the HOSTS grammar, how a SRC splits into hosts and path (IPv6, selectors, regex,
    //! local files), the union of repeated host sets, and that bad values are refused.
    use super::*;

    fn ips(list: &[&str]) -> Targets {
        Targets {
            ips: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ids(list: &[i64]) -> Targets {
        Targets {
            host_ids: list.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn host_sets() {
        assert_eq!(host_set("10.0.0.5"), Ok(ips(&["10.0.0.5"])));
        assert_eq!(
            host_set("ip=10.0.0.5,[fd00::1]"),
            Ok(ips(&["10.0.0.5", "fd00::1"]))
        );
        assert_eq!(host_set("3"), Ok(ids(&[3])));
        assert_eq!(host_set("id=3,4"), Ok(ids(&[3, 4])));
        let mixed = host_set("3,10.0.0.1").expect("mixed");
        assert_eq!(
            (mixed.host_ids, mixed.ips),
            (vec![3], vec!["10.0.0.1".into()])
        );
        assert_eq!(
            host_set("label=role=web,env in (prod)").map(|t| t.selector),
            Ok(Some("role=web,env in (prod)".into()))
        );
        assert_eq!(host_set("group=7,8").map(|t| t.group_ids), Ok(vec![7, 8]));
        for bad in [
            "",
            "web-1",
            "id=",
            "id=x",
            "group=",
            "label=",
            "10.0.0.300",
            "ip=",
        ] {
            assert!(host_set(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merging_host_sets() {
        let merged = merge_hosts(&[
            ids(&[1, 2]),
            ids(&[2, 3]),
            ips(&["10.0.0.1"]),
            host_set("label=a=b").expect("label"),
            host_set("group=4").expect("group"),
        ])
        .expect("merge");
        assert_eq!(merged.host_ids, vec![1, 2, 3]);
        assert_eq!(merged.ips, vec!["10.0.0.1"]);
        assert_eq!(merged.selector.as_deref(), Some("a=b"));
        assert_eq!(merged.group_ids, vec![4]);
        let two = [
            host_set("label=a=b").expect("a"),
            host_set("label=c=d").expect("c"),
        ];
        assert!(merge_hosts(&two).is_err());
    }

    #[track_caller]
    fn remote(s: &str) -> (Targets, String) {
        match source(s) {
            Ok(Source::Hosts { hosts, path }) => (hosts, path),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn sources_split_at_the_right_colon() {
        assert_eq!(
            remote("10.0.0.5:/data/pkg.tar.gz"),
            (ips(&["10.0.0.5"]), "/data/pkg.tar.gz".into())
        );
        assert_eq!(
            remote("fd00::1:/data/x"),
            (ips(&["fd00::1"]), "/data/x".into())
        );
        assert_eq!(
            remote("[fd00::1]:/data/x"),
            (ips(&["fd00::1"]), "/data/x".into())
        );
        assert_eq!(remote("id=3:/etc/app/"), (ids(&[3]), "/etc/app/".into()));
        assert_eq!(
            remote("3:REGEX:/var/log/.*\\.log"),
            (ids(&[3]), "REGEX:/var/log/.*\\.log".into())
        );
        let (hosts, path) = remote("label=ver=1:2:/opt/a b/[x].txt");
        assert_eq!(hosts.selector.as_deref(), Some("ver=1:2"));
        assert_eq!(path, "/opt/a b/[x].txt");
        assert_eq!(remote("group=7:/x").0.group_ids, vec![7]);
    }

    #[test]
    fn local_sources_and_mistakes() {
        for local in [
            "pkg.tar.gz",
            "./10.0.0.5:/x",
            "/tmp/a:/b",
            "dir/file",
            "a:b",
        ] {
            assert_eq!(
                source(local),
                Ok(Source::Local(PathBuf::from(local))),
                "{local}"
            );
        }
        let err = source("web-1:/data/x").expect_err("not a host");
        assert!(err.contains("`web-1` is not a host"), "{err}");
        assert!(source("").is_err());
    }

    #[test]
    fn paths_dirs_and_modes() {
        assert!(source_path("/var/log/*.log").is_ok());
        assert!(source_path("REGEX:^/var/.*").is_ok());
        for bad in ["var/log", "", "REGEX:", "~/x"] {
            assert!(source_path(bad).is_err(), "{bad:?}");
        }
        assert!(target_dir("/opt/[date:%Y%m%d]").is_ok());
        assert!(target_dir("C:\\data").is_ok());
        assert!(target_dir("opt/app").is_err());
        assert!(target_dir("").is_err());
        assert_eq!(
            duplicate_mode("by_source_ip"),
            Ok(DuplicateMode::BySourceIp)
        );
        assert_eq!(
            duplicate_mode("by-date-and-source-ip"),
            Ok(DuplicateMode::ByDateAndSourceIp)
        );
        assert_eq!(duplicate_mode("Overwrite"), Ok(DuplicateMode::Overwrite));
        assert!(duplicate_mode("rename").is_err());
    }
}
