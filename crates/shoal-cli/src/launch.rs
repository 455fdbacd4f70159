//! What every command that starts a job does next (`shoal run`, `shoal push`, `shoal gather`,
//! `shoal job retry --wait`): say the job started, then print its id (`--no-wait`) or follow it
//! to its end and hand the finished job to the command's own report.

use crate::Ctx;
use crate::exit::Exit;
use crate::follow::{self, Followed};
use crate::output;
use shoal_client::{ExecuteScriptResponse, FileTransferResponse, JobDetail, JobId};

/// The answer of an endpoint that starts a job.
pub trait Started: serde::Serialize {
    fn job_id(&self) -> JobId;
    fn job_name(&self) -> &str;
    /// Hosts targeted, and of those, hosts that ended at once as agent abnormal.
    fn counts(&self) -> (u64, u64);
}

/// Both job-starting answers carry the same fields.
macro_rules! impl_started {
    ($($t:ty),*) => {$(
        impl Started for $t {
            fn job_id(&self) -> JobId {
                self.job_instance_id
            }
            fn job_name(&self) -> &str {
                &self.job_instance_name
            }
            fn counts(&self) -> (u64, u64) {
                (self.host_count, self.abnormal_count)
            }
        }
    )*};
}

impl_started!(ExecuteScriptResponse, FileTransferResponse);

/// Announces a started job on stderr (`job ID started: NAME, N {host}s`); with `no_wait` prints
/// its id (or the whole answer with `--json`) and returns, else follows it and reports it.
pub async fn started(
    ctx: &Ctx,
    resp: &impl Started,
    host: &str,
    no_wait: bool,
    report: impl AsyncFn(&Ctx, &JobDetail) -> anyhow::Result<Exit>,
) -> anyhow::Result<Exit> {
    let (host_count, abnormal_count) = resp.counts();
    let abnormal = match abnormal_count {
        0 => String::new(),
        n => format!(" ({n} agent abnormal)"),
    };
    eprintln!(
        "job {} started: {}, {}{abnormal}",
        resp.job_id(),
        resp.job_name(),
        output::count(host_count, host)
    );
    if no_wait {
        if ctx.json {
            output::print_json(resp)?;
        } else {
            output::stdout_str(&format!("{}\n", resp.job_id()))?;
        }
        return Ok(Exit::Ok);
    }
    follow_and_report(ctx, resp.job_id(), report).await
}

/// Follows a job to its end and reports it with `report`; on Ctrl-C says how to find it again
/// (it keeps running) and exits as interrupted.
pub async fn follow_and_report(
    ctx: &Ctx,
    job_id: JobId,
    report: impl AsyncFn(&Ctx, &JobDetail) -> anyhow::Result<Exit>,
) -> anyhow::Result<Exit> {
    match follow::follow(&ctx.client, job_id).await? {
        Followed::Finished(detail) => report(ctx, &detail).await,
        Followed::Interrupted => {
            eprintln!(
                "shoal: stopped following job {job_id}; it keeps running\n\
                 shoal:   see it:       shoal job show {job_id}\n\
                 shoal:   terminate it: shoal job terminate {job_id}"
            );
            Ok(Exit::Interrupted)
        }
    }
}

/// The exit of a finished job: 0 only when it and every host of every step succeeded.
pub fn exit_for(detail: &JobDetail) -> Exit {
    if follow::job_succeeded(detail) {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// The line a report opens with: `job ID STATUS in DURATION` (stderr).
pub fn print_ended(detail: &JobDetail) {
    let job = &detail.job;
    eprintln!(
        "job {} {} in {}",
        job.id,
        job.status.text(),
        output::duration(job.started_at, job.ended_at)
    );
}
