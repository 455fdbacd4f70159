//! File distribution, agent side. Building blocks that know nothing of the agent link:
//! [`paths`] (a source path spec → files), [`manifest`] (files → 4 MiB chunks with BLAKE3
//! hashes), [`cache`] (the bounded on-disk chunk cache), [`assemble`] (cached chunks → a file
//! at its destination, atomically), [`limit`] (token-bucket rate limiter shared by all
//! transfers), [`ticket`] (server-signed permission to fetch chunks of a step), [`peer`] (mutual
//! TLS chunk server and client between agents).
//!
//! Wiring, which speaks the protocol: [`scan`] (`Scan` → `Manifest`), [`serve`] (what this
//! host serves to which tickets, and `Served` accounting), [`fetch`] (the `Fetch` executor),
//! [`runtime`] (the handle the session uses: peer listener and server, cache, limiters,
//! routing to fetches, the outgoing file message queue).
//!
//! Shared names (hashes, manifests, chunk size) are `shoal_types::files`'s.
//!
//! Blocking: `paths`, `manifest`, `cache` and `assemble` do plain file IO; async callers run
//! them in `spawn_blocking`. `limit` and `peer` are async.

pub mod assemble;
pub mod cache;
pub mod fetch;
pub mod limit;
pub mod manifest;
pub mod paths;
pub mod peer;
pub mod runtime;
pub mod scan;
pub mod serve;
pub use shoal_proto::ticket;

pub use shoal_types::files::{Hash, from_hex, hash_hex, to_hex};

/// The BLAKE3 hash of `bytes`.
pub fn hash_of(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the file tests.

    /// The uid/gid tests use for "another account" (nobody).
    pub const NOBODY: u32 = 65534;

    /// Runs `f` on a fresh thread whose file-system identity is `nobody` when the tests run as
    /// root (root bypasses permission checks; `setfsuid` is per thread on Linux and drops the
    /// DAC-override capabilities), or directly otherwise.
    pub fn as_unprivileged<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        if !nix::unistd::geteuid().is_root() {
            return f();
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::unistd::setfsgid(nix::unistd::Gid::from_raw(NOBODY));
                nix::unistd::setfsuid(nix::unistd::Uid::from_raw(NOBODY));
                let out = f();
                nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
                nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
                out
            })
            .join()
            .expect("unprivileged thread panicked")
        })
    }

    /// Deterministic pseudo-random bytes.
    pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
            .collect()
    }
}
