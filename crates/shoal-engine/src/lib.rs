//! The rules of job and step state: commands in, transitions and actions out. No IO, no async
//! runtime, no storage types: the server reads a job's state, hands the engine a [`Command`],
//! stores the [`Transition`]s it returns (each a compare-and-set) and performs the
//! [`Action`]s. Every decision about a job's or a step's status is made here, and so is the
//! status a host gets for how its task ended ([`host_result`]).
//!
//! Status numbering and transitions follow bk-job (`RunStatusEnum`, `JobListener`): a job starts
//! from Blank, steps run one after another, a terminate request moves the running step to
//! Stopping and then StopSuccess once no host is running, and a step's end decides whether the
//! next step starts or the job ends.

mod job;
mod outcome;

pub use job::{
    Action, Command, Decision, JobState, Lease, Rejection, StepState, Transition, decide,
    initial_status, job_after_step, retry_plan, settle_step,
};
pub use outcome::{HostResult, host_result};
