//! File distribution, agent side: the building blocks a file step is made of. Nothing here
//! knows the agent link or the protocol; the session wires them in.
//!
//! Codemap: [`paths`] (a source path spec → files), [`manifest`] (files → 4 MiB chunks with
//! BLAKE3 hashes), [`cache`] (the bounded on-disk chunk cache), [`assemble`] (cached chunks →
//! a file at its destination, atomically), [`limit`] (token-bucket rate limiter shared by all
//! transfers), [`ticket`] (server-signed permission to fetch chunks of a step), [`peer`] (mutual
//! TLS chunk server and client between agents).
//!
//! Blocking: `paths`, `manifest`, `cache` and `assemble` do plain file IO; async callers run
//! them in `spawn_blocking`. `limit` and `peer` are async.

pub mod assemble;
pub mod cache;
pub mod limit;
pub mod manifest;
pub mod paths;
pub mod peer;
pub use shoal_proto::ticket;

/// A BLAKE3 hash of one chunk.
pub type Hash = [u8; 32];

/// The BLAKE3 hash of `bytes`.
pub fn hash_of(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// Lowercase hex of a hash, as chunks are named on disk and on the wire.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Parses 64 hex digits.
pub fn from_hex(s: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(s, &mut hash).ok()?;
    Some(hash)
}

/// Serde for a [`Hash`] as 64 lowercase hex digits (`#[serde(with = "files::hash_hex")]`).
pub mod hash_hex {
    use super::Hash;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = <&str>::deserialize(d)?;
        super::from_hex(s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Serde for bytes as lowercase hex.
pub mod bytes_hex {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <&str>::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
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
