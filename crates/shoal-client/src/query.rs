//! Query-string parameters of the list endpoints. Every field is optional; unset fields are not
//! sent, so the server's defaults apply.

use shoal_types::api::GroupKey;
use shoal_types::files::{FILE_MODE_DOWNLOAD, FILE_MODE_UPLOAD};
use shoal_types::{AgentStatus, FileStatus, HostId, HostTaskStatus, RunStatus, ScopeId, UnixMs};

type Pairs = Vec<(&'static str, String)>;

fn push<T: ToString>(out: &mut Pairs, key: &'static str, value: &Option<T>) {
    if let Some(v) = value {
        out.push((key, v.to_string()));
    }
}

/// `GET /api/v1/hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostQuery {
    pub scope_id: Option<ScopeId>,
    pub status: Option<AgentStatus>,
    /// Substring of any of the host's IPs.
    pub ip: Option<String>,
    /// Substring of hostname or IP.
    pub q: Option<String>,
    pub os: Option<String>,
    /// A label selector, e.g. `role=web,env in (prod)`.
    pub selector: Option<String>,
    pub group_id: Option<i64>,
    pub start: Option<u64>,
    pub length: Option<u32>,
}

impl HostQuery {
    pub(crate) fn pairs(&self) -> Pairs {
        let mut out = Pairs::new();
        push(&mut out, "scope_id", &self.scope_id);
        push(&mut out, "status", &self.status.map(|s| s.name()));
        push(&mut out, "ip", &self.ip);
        push(&mut out, "q", &self.q);
        push(&mut out, "os", &self.os);
        push(&mut out, "selector", &self.selector);
        push(&mut out, "group_id", &self.group_id);
        push(&mut out, "start", &self.start);
        push(&mut out, "length", &self.length);
        out
    }
}

/// `GET /api/v1/jobs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub scope_id: Option<ScopeId>,
    /// Created at or after (ms since the epoch).
    pub from: Option<UnixMs>,
    /// Created before (ms since the epoch).
    pub to: Option<UnixMs>,
    /// Sent as the bk-job numeric code.
    pub status: Option<RunStatus>,
    pub operator: Option<String>,
    /// Substring of the job name.
    pub name: Option<String>,
    /// Jobs that targeted a host with this IP.
    pub ip: Option<String>,
    pub start: Option<u64>,
    pub length: Option<u32>,
}

impl JobQuery {
    pub(crate) fn pairs(&self) -> Pairs {
        let mut out = Pairs::new();
        push(&mut out, "scope_id", &self.scope_id);
        push(&mut out, "from", &self.from);
        push(&mut out, "to", &self.to);
        push(&mut out, "status", &self.status.map(|s| s.code()));
        push(&mut out, "operator", &self.operator);
        push(&mut out, "name", &self.name);
        push(&mut out, "ip", &self.ip);
        push(&mut out, "start", &self.start);
        push(&mut out, "length", &self.length);
        out
    }
}

/// `GET /api/v1/steps/{sid}/hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskQuery {
    /// Defaults to the step's current attempt.
    pub attempt: Option<u32>,
    /// Sent as the bk-job numeric code.
    pub status: Option<HostTaskStatus>,
    pub ip: Option<String>,
    /// Hosts whose log contains this text.
    pub keyword: Option<String>,
    /// Only the hosts of one result group.
    pub group: Option<GroupKey>,
    pub start: Option<u64>,
    pub length: Option<u32>,
}

impl TaskQuery {
    pub(crate) fn pairs(&self) -> Pairs {
        let mut out = Pairs::new();
        push(&mut out, "attempt", &self.attempt);
        push(&mut out, "status", &self.status.map(|s| s.code()));
        push(&mut out, "ip", &self.ip);
        push(&mut out, "keyword", &self.keyword);
        if let Some(g) = &self.group {
            out.push(("group_status", g.status.code().to_string()));
            push(&mut out, "group_exit_code", &g.exit_code);
            push(&mut out, "group_tag", &g.tag);
            push(&mut out, "group_digest", &g.digest);
        }
        push(&mut out, "start", &self.start);
        push(&mut out, "length", &self.length);
        out
    }
}

/// `GET /api/v1/steps/{sid}/hosts/{hid}/log`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub attempt: Option<u32>,
    /// Byte offset to read from.
    pub offset: Option<u64>,
    /// Most bytes to return; the server caps it.
    pub limit: Option<u64>,
}

impl LogQuery {
    pub(crate) fn pairs(&self) -> Pairs {
        let mut out = Pairs::new();
        push(&mut out, "attempt", &self.attempt);
        push(&mut out, "offset", &self.offset);
        push(&mut out, "limit", &self.limit);
        out
    }
}

/// Which side of a file transfer a row records (`mode` of `GET /api/v1/steps/{sid}/files`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMode {
    /// Rows of source hosts: what each served.
    Upload,
    /// Rows of target hosts: what each received.
    Download,
}

impl FileMode {
    pub fn name(self) -> &'static str {
        match self {
            FileMode::Upload => "upload",
            FileMode::Download => "download",
        }
    }

    /// The stored code (`FileTaskKey::mode`).
    pub fn code(self) -> u8 {
        match self {
            FileMode::Upload => FILE_MODE_UPLOAD,
            FileMode::Download => FILE_MODE_DOWNLOAD,
        }
    }
}

/// `GET /api/v1/steps/{sid}/files`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileQuery {
    /// Defaults to the step's current attempt.
    pub attempt: Option<u32>,
    pub mode: Option<FileMode>,
    /// The source host of upload rows, the target host of download rows.
    pub host_id: Option<HostId>,
    /// Sent as the bk-job file status code.
    pub status: Option<FileStatus>,
    pub start: Option<u64>,
    pub length: Option<u32>,
}

impl FileQuery {
    pub(crate) fn pairs(&self) -> Pairs {
        let mut out = Pairs::new();
        push(&mut out, "attempt", &self.attempt);
        push(&mut out, "mode", &self.mode.map(|m| m.name()));
        push(&mut out, "host_id", &self.host_id);
        push(&mut out, "status", &self.status.map(|s| s.code()));
        push(&mut out, "start", &self.start);
        push(&mut out, "length", &self.length);
        out
    }
}

#[cfg(test)]
mod tests {
    //! Pins the query-string names and encodings the server reads: unset fields are absent,
    //! statuses go as codes (hosts: as names), and a group filter expands to its four fields.
    use super::*;

    #[test]
    fn unset_fields_are_not_sent() {
        assert!(HostQuery::default().pairs().is_empty());
        assert!(JobQuery::default().pairs().is_empty());
        assert!(TaskQuery::default().pairs().is_empty());
        assert!(LogQuery::default().pairs().is_empty());
        assert!(FileQuery::default().pairs().is_empty());
    }

    #[test]
    fn file_query_encodes_mode_by_name_and_status_by_code() {
        let q = FileQuery {
            attempt: Some(1),
            mode: Some(FileMode::Download),
            host_id: Some(7),
            status: Some(FileStatus::Failed),
            length: Some(50),
            ..Default::default()
        };
        assert_eq!(
            q.pairs(),
            vec![
                ("attempt", "1".to_string()),
                ("mode", "download".to_string()),
                ("host_id", "7".to_string()),
                ("status", "5".to_string()),
                ("length", "50".to_string())
            ]
        );
        assert_eq!(FileMode::Upload.code(), FILE_MODE_UPLOAD);
    }

    #[test]
    fn statuses_and_groups_encode() {
        let h = HostQuery {
            status: Some(AgentStatus::Online),
            selector: Some("a=b".into()),
            length: Some(10),
            ..Default::default()
        };
        assert_eq!(
            h.pairs(),
            vec![
                ("status", "online".to_string()),
                ("selector", "a=b".to_string()),
                ("length", "10".to_string())
            ]
        );
        let j = JobQuery {
            status: Some(RunStatus::Fail),
            ..Default::default()
        };
        assert_eq!(j.pairs(), vec![("status", "4".to_string())]);
        let t = TaskQuery {
            group: Some(GroupKey {
                status: HostTaskStatus::ScriptNonZeroExit,
                exit_code: Some(3),
                tag: None,
                digest: Some("ab".into()),
            }),
            ..Default::default()
        };
        assert_eq!(
            t.pairs(),
            vec![
                ("group_status", "104".to_string()),
                ("group_exit_code", "3".to_string()),
                ("group_digest", "ab".to_string())
            ]
        );
    }
}
