//! Test and benchmark support for Shoal: a throwaway PostgreSQL cluster ([`pg`]), a sandbox
//! that runs a real server and real agents, each agent in its own network and mount namespace
//! ([`sandbox`]), and a raw REST helper ([`api`]). Used by tests and by `shoal-bench`; never
//! linked into the shipped binaries.

pub mod api;
pub mod files_api;
pub mod pg;
pub mod sandbox;
