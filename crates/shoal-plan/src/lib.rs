//! The pure rules of file distribution: the planner that turns scanned sources into the one list
//! of files every target writes (`plan`), and the swarm that decides which holder sends which
//! chunk to which target (`swarm`).
//!
//! Must not know: IO, storage, sessions or any async runtime. The server scans, stores and
//! sends; it asks this crate what to plan and whom to assign. Its tests run without compiling
//! the server.

pub mod plan;
pub mod swarm;
