//! `shoal push` and `shoal gather`: build a file transfer request (uploading local files
//! first), start it, follow it like `shoal run`, and print a per-target summary.

use crate::Ctx;
use crate::exit::{Exit, usage};
use crate::files_cli::{self, GatherArgs, PushArgs, Source, TransferOpts};
use crate::files_view::{self, TransferResults};
use crate::launch;
use crate::output::{self, Progress};
use anyhow::Context as _;
use shoal_client::{
    DuplicateMode, FileSourceRequest, FileTransferRequest, JobDetail, PreviewRequest, Targets,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn push(ctx: &Ctx, args: PushArgs) -> anyhow::Result<Exit> {
    let targets = files_cli::merge_hosts(&args.to).map_err(usage)?;
    let plan = plan_sources(&args.sources, args.opts.source_account.as_deref())?;
    let local: Vec<&PathBuf> = plan.iter().filter_map(Planned::local).collect();
    for path in &local {
        check_local(path)?;
    }
    if !local.is_empty() {
        // Bad targets are found before a large upload, not after.
        ctx.client
            .preview_targets(&PreviewRequest {
                scope_id: None,
                targets: targets.clone(),
            })
            .await
            .context("cannot check the targets")?;
    }
    let mut sources = Vec::new();
    for p in plan {
        sources.push(match p {
            Planned::Ready(s) => *s,
            Planned::Local(path) => upload(ctx, &path).await?,
        });
    }
    let req = request(sources, targets, &args.opts, DuplicateMode::Overwrite);
    start(ctx, &req, args.opts.no_wait).await
}

pub async fn gather(ctx: &Ctx, args: GatherArgs) -> anyhow::Result<Exit> {
    let from = files_cli::merge_hosts(&args.from).map_err(usage)?;
    let to = files_cli::merge_hosts(&args.to).map_err(usage)?;
    let source = FileSourceRequest {
        file_list: args.paths.clone(),
        targets: Some(from),
        account: args.opts.source_account.clone(),
        ..Default::default()
    };
    // Files of the same name from many hosts must not overwrite each other.
    let req = request(vec![source], to, &args.opts, DuplicateMode::BySourceIp);
    start(ctx, &req, args.opts.no_wait).await
}

/// A source as it will be sent, or a local file still to upload.
#[derive(Debug, PartialEq)]
enum Planned {
    Ready(Box<FileSourceRequest>),
    Local(PathBuf),
}

impl Planned {
    fn local(&self) -> Option<&PathBuf> {
        match self {
            Planned::Local(p) => Some(p),
            Planned::Ready(_) => None,
        }
    }
}

/// Sources in the order given; paths on the same hosts go into one source.
fn plan_sources(sources: &[Source], account: Option<&str>) -> anyhow::Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::new();
    for src in sources {
        match src {
            Source::Local(path) => out.push(Planned::Local(path.clone())),
            Source::Hosts { hosts, path } => {
                let same = out.iter_mut().find_map(|p| match p {
                    Planned::Ready(r) if r.targets.as_ref() == Some(hosts) => Some(r),
                    _ => None,
                });
                match same {
                    Some(r) if !r.file_list.contains(path) => r.file_list.push(path.clone()),
                    Some(_) => {}
                    None => out.push(Planned::Ready(Box::new(FileSourceRequest {
                        file_list: vec![path.clone()],
                        targets: Some(hosts.clone()),
                        account: account.map(String::from),
                        ..Default::default()
                    }))),
                }
            }
        }
    }
    if out.iter().all(|p| p.local().is_some()) && account.is_some() {
        return Err(usage(
            "--source-account applies to files on hosts (HOSTS:PATH), and every source is local",
        ));
    }
    Ok(out)
}

fn check_local(path: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(usage(format!(
            "{} is a directory: push local files one by one, or a directory on a host as HOSTS:/dir/",
            path.display()
        ))),
        Ok(_) => Err(usage(format!("{} is not a regular file", path.display()))),
        Err(e) => {
            let s = path.to_string_lossy();
            let hint = if s.contains(':') {
                " (a path on hosts is HOSTS:/ABSOLUTE/PATH)"
            } else {
                ""
            };
            Err(usage(format!("cannot read the local file {s}: {e}{hint}")))
        }
    }
}

/// Uploads one local file with a progress line; returns the source that names it.
async fn upload(ctx: &Ctx, path: &Path) -> anyhow::Result<FileSourceRequest> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    // The file keeps its local permission bits at the targets.
    let file_mode = meta.map(|m| format!("{:04o}", m.permissions().mode() & 0o7777));
    let shown = path.display().to_string();
    let progress = Arc::new(Mutex::new(Progress::new()));
    let last = Arc::new(Mutex::new(None::<Instant>));
    let (p, label) = (Arc::clone(&progress), shown.clone());
    let on_bytes = move |sent: u64| {
        let Ok(mut last) = last.lock() else { return };
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_millis(200)) || sent == size;
        if !due {
            return;
        }
        *last = Some(Instant::now());
        if let Ok(mut p) = p.lock() {
            p.set(&upload_line(&label, sent, size));
        }
    };
    let result = ctx.client.upload_file(path, None, on_bytes).await;
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    let resp = result.with_context(|| format!("cannot upload {shown}"))?;
    eprintln!(
        "uploaded {shown} ({}) as {}",
        output::bytes(resp.size),
        &resp.upload_id[..resp.upload_id.len().min(12)]
    );
    Ok(FileSourceRequest {
        upload_id: Some(resp.upload_id),
        name: Some(resp.name),
        file_mode,
        ..Default::default()
    })
}

fn upload_line(name: &str, sent: u64, size: u64) -> String {
    let pct = (sent.min(size) * 100).checked_div(size).unwrap_or(100);
    format!(
        "uploading {name}: {} / {} ({pct}%)",
        output::bytes(sent),
        output::bytes(size)
    )
}

fn request(
    sources: Vec<FileSourceRequest>,
    targets: Targets,
    opts: &TransferOpts,
    duplicate_default: DuplicateMode,
) -> FileTransferRequest {
    FileTransferRequest {
        scope_id: None,
        name: opts.name.clone(),
        file_source_list: sources,
        file_target_path: opts.dir.clone(),
        account: opts.account.clone(),
        targets,
        transfer_mode: Some(serde_json::Value::String(
            if opts.strict { "strict" } else { "force" }.into(),
        )),
        duplicate_handling: Some(opts.duplicate.unwrap_or(duplicate_default)),
        upload_speed_limit: opts.upload_limit,
        download_speed_limit: opts.download_limit,
        timeout: opts.timeout,
        peer_to_peer: opts.no_p2p.then_some(false),
    }
}

async fn start(ctx: &Ctx, req: &FileTransferRequest, no_wait: bool) -> anyhow::Result<Exit> {
    let resp = ctx
        .client
        .transfer_files(req)
        .await
        .context("cannot start the transfer")?;
    launch::started(ctx, &resp, "target host", no_wait, report).await
}

/// Prints a finished file job's per-target summary; exit 1 unless every target succeeded.
pub async fn report(ctx: &Ctx, detail: &JobDetail) -> anyhow::Result<Exit> {
    let (targets, sources, files) = files_view::load(&ctx.client, detail).await?;
    if ctx.json {
        output::print_json(&TransferResults {
            detail,
            targets,
            sources,
            files,
        })?;
    } else {
        launch::print_ended(detail);
        output::stdout_str(&files_view::summary_text(&targets, &sources, &files))?;
    }
    Ok(launch::exit_for(detail))
}

#[cfg(test)]
mod tests {
    //! Pins how push and gather flags become the transfer request: source grouping by hosts,
    //! local files kept for upload, defaults (force, overwrite for push, by source IP for
    //! gather), limits and P2P, and the usage errors found before anything is sent.
    use super::*;
    use crate::cli::Command;
    use crate::test_args::command as parse;

    fn push_args(a: &[&str]) -> PushArgs {
        match parse(a) {
            Command::Push(p) => p,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn push_groups_sources_by_hosts() {
        let a = push_args(&[
            "push",
            "10.0.0.5:/data/a",
            "./local.txt",
            "10.0.0.5:/data/b/",
            "id=3:REGEX:/x/.*",
            "10.0.0.5:/data/a",
            "--to",
            "label=role=web",
            "--to",
            "id=8",
            "--dir",
            "/opt/[date:%Y%m%d]",
            "--source-account",
            "reader",
        ]);
        let plan = plan_sources(&a.sources, a.opts.source_account.as_deref()).expect("plan");
        assert_eq!(plan.len(), 3);
        let Planned::Ready(first) = &plan[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(first.file_list, vec!["/data/a", "/data/b/"]);
        assert_eq!(first.account.as_deref(), Some("reader"));
        assert_eq!(
            first.targets.as_ref().map(|t| t.ips.clone()),
            Some(vec!["10.0.0.5".into()])
        );
        assert_eq!(plan[1], Planned::Local(PathBuf::from("./local.txt")));
        let Planned::Ready(third) = &plan[2] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            third.targets.as_ref().map(|t| t.host_ids.clone()),
            Some(vec![3])
        );

        let targets = files_cli::merge_hosts(&a.to).expect("targets");
        let req = request(Vec::new(), targets, &a.opts, DuplicateMode::Overwrite);
        assert_eq!(req.targets.selector.as_deref(), Some("role=web"));
        assert_eq!(req.targets.host_ids, vec![8]);
        assert_eq!(req.file_target_path, "/opt/[date:%Y%m%d]");
        let json = serde_json::to_value(&req).expect("json");
        assert_eq!(json["transfer_mode"], "force");
        assert_eq!(json["duplicate_handling"], "overwrite");
        // Unset options are not sent at all.
        for absent in [
            "timeout",
            "account",
            "peer_to_peer",
            "upload_speed_limit",
            "name",
        ] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
    }

    #[test]
    fn push_options() {
        let a = push_args(&[
            "push",
            "./x",
            "--to",
            "1",
            "--dir",
            "/d",
            "--strict",
            "--duplicate",
            "by-date-and-source-ip",
            "--upload-limit",
            "5",
            "--download-limit",
            "10",
            "--timeout",
            "60",
            "--no-p2p",
            "--account",
            "app",
            "--name",
            "n",
            "--no-wait",
        ]);
        assert_eq!(a.sources, vec![Source::Local(PathBuf::from("./x"))]);
        let req = request(
            Vec::new(),
            Targets::default(),
            &a.opts,
            DuplicateMode::Overwrite,
        );
        let json = serde_json::to_value(&req).expect("json");
        assert_eq!(json["transfer_mode"], "strict");
        assert_eq!(json["duplicate_handling"], "by_date_and_source_ip");
        assert_eq!(json["upload_speed_limit"], 5);
        assert_eq!(json["download_speed_limit"], 10);
        assert_eq!(json["timeout"], 60);
        assert_eq!(json["peer_to_peer"], false);
        assert_eq!(json["account"], "app");
        assert_eq!(json["name"], "n");
        assert!(a.opts.no_wait);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            &["push", "web-1:/a", "--to", "1", "--dir", "/d"][..],
            &["push", "./a", "--dir", "/d"],
            &["push", "./a", "--to", "1"],
            &["push", "./a", "--to", "1", "--dir", "rel"],
            &["push", "./a", "--to", "nohost", "--dir", "/d"],
            &[
                "push",
                "./a",
                "--to",
                "1",
                "--dir",
                "/d",
                "--duplicate",
                "rename",
            ],
            &[
                "push",
                "./a",
                "--to",
                "1",
                "--dir",
                "/d",
                "--upload-limit",
                "0",
            ],
            &["push", "./a", "--to", "1", "--dir", "/d", "--timeout", "0"],
            &[
                "gather", "--from", "1", "--path", "var/log", "--to", "2", "--dir", "/d",
            ],
            &["gather", "--from", "1", "--to", "2", "--dir", "/d"],
            &["gather", "--path", "/a", "--to", "2", "--dir", "/d"],
        ] {
            let err = crate::test_args::parse(args).expect_err("must fail");
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = crate::test_args::parse(&["push", "web-1:/a", "--to", "1", "--dir", "/d"])
            .expect_err("not a host");
        assert!(err.to_string().contains("`web-1` is not a host"), "{err}");
    }

    #[test]
    fn gather_defaults_to_by_source_ip() {
        let Command::Gather(g) = parse(&[
            "gather",
            "--from",
            "label=role=web",
            "--from",
            "10.0.0.7",
            "--path",
            "/var/log/app.log",
            "--path",
            "/var/log/*.gz",
            "--to",
            "10.0.0.9",
            "--dir",
            "/srv/logs",
        ]) else {
            panic!("not gather")
        };
        assert_eq!(g.paths, vec!["/var/log/app.log", "/var/log/*.gz"]);
        let from = files_cli::merge_hosts(&g.from).expect("from");
        assert_eq!(
            (from.selector.as_deref(), from.ips.len()),
            (Some("role=web"), 1)
        );
        let req = request(
            Vec::new(),
            Targets::default(),
            &g.opts,
            DuplicateMode::BySourceIp,
        );
        assert_eq!(req.duplicate_handling, Some(DuplicateMode::BySourceIp));
    }

    #[test]
    fn local_file_mistakes_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_local(dir.path()).expect_err("a directory");
        assert_eq!(crate::exit::exit_for(&err), Exit::Usage);
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = check_local(Path::new("10.0.0.5:data/x")).expect_err("missing");
        assert!(err.to_string().contains("HOSTS:/ABSOLUTE/PATH"), "{err}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert!(check_local(&file).is_ok());
        // --source-account with only local files is a mistake.
        let only_local = [Source::Local(file)];
        let err = plan_sources(&only_local, Some("u")).expect_err("no host sources");
        assert_eq!(crate::exit::exit_for(&err), Exit::Usage);
        assert_eq!(upload_line("f", 5, 10), "uploading f: 5 B / 10 B (50%)");
        assert_eq!(upload_line("e", 0, 0), "uploading e: 0 B / 0 B (100%)");
    }
}
