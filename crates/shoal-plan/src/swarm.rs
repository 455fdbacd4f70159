//! The swarm tracker of one step attempt (pure state, no IO): who holds which chunk, how busy
//! every holder is, and what every target still needs. It answers `WhoHas`.
//!
//! Choice of chunks: the requester's missing chunks that are neither held nor in flight to it,
//! RAREST FIRST, where rarity = holders + copies in flight (so two targets are not both sent
//! the source's only copy of one chunk while another chunk has never left it); ties are
//! broken by a per-target random order so targets start on different chunks.
//!
//! Choice of holder: one with a free upload slot, never one that already failed this requester
//! for this chunk; targets before sources and the server (with peers on), then least loaded
//! (active / cap). Up to [`FALLBACKS`] more holders follow as fallbacks (slot not reserved).
//! A chunk whose holders are all busy is skipped for a less rare one; nothing assignable at
//! all answers an empty list (retry after [`RETRY_MS`]). A holder that failed a requester is
//! skipped for that chunk for [`SKIP_MS`] (a link cut or a busy peer heals). A chunk whose
//! every holder is gone (disconnected longer than the lost-agent grace, or a failed target) is
//! answered with no holders at all: the target fails the files that need it as unavailable.
//!
//! Slots (concurrent uploads per holder): [`SOURCE_SLOTS`] for a source, [`PEER_SLOTS`] for a
//! target, [`SERVER_SLOTS`] for the server; a target downloads at most [`TARGET_INFLIGHT`]
//! chunks at once. With rarest-first the source hands each chunk out about once and the copies
//! after that go target to target. Measured on the benchmark (16 targets, 256 MiB, every link
//! 100 Mbit/s): one upload slot per target left links idle between chunks (1.8x the bound);
//! two slots and two downloads per target reach ~1.3x with the source sending ~1.1 copies.
//! An assignment holds its slot until the target announces the chunk (`Have`), reports it
//! failed, ends, or [`ASSIGN_TTL_MS`] passes.

use shoal_proto::{Assignment, FailedFetch, PeerAddr};
use shoal_types::HostId;
use shoal_types::files::Hash;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

pub const PEER_SLOTS: u32 = 2;
pub const SOURCE_SLOTS: u32 = 2;
pub const SERVER_SLOTS: u32 = 8;
pub const FALLBACKS: usize = 3;
pub const RETRY_MS: u32 = 20;
/// Chunks one target downloads at once: two keep its link busy across request gaps, more
/// would split its download between uploaders and leave their links half used.
pub const TARGET_INFLIGHT: usize = 2;
pub const ASSIGN_TTL_MS: i64 = 60_000;
/// How long a holder that failed a requester is not offered to it again for that chunk.
pub const SKIP_MS: i64 = 3_000;
/// Gone for good (a failed target).
const GONE_FOREVER: i64 = i64::MIN / 2;
/// The holder id of the server (uploaded chunks).
pub const SERVER: HostId = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Source,
    Target,
}

#[derive(Debug)]
struct Holder {
    role: Role,
    addr: Option<SocketAddr>,
    active: u32,
    cap: u32,
    /// Disconnected since (Unix ms): never assigned until it is back.
    gone_since: Option<i64>,
}

#[derive(Debug, Default)]
struct Chunk {
    holders: Vec<HostId>,
    inflight: u32,
}

#[derive(Debug)]
struct Target {
    needed: Vec<Hash>,
    held: HashSet<Hash>,
    /// Chunk → (holder, assigned at).
    inflight: HashMap<Hash, (HostId, i64)>,
    /// (chunk, holder) pairs that failed this target, with when.
    skip: HashMap<(Hash, HostId), i64>,
    seed: u64,
    ended: bool,
}

/// What a `WhoHas` produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub assign: Vec<Assignment>,
    /// Holders that delivered a corrupt chunk (for the log).
    pub corrupt: Vec<(Hash, HostId)>,
}

#[derive(Debug)]
pub struct Swarm {
    peer_to_peer: bool,
    seed: u64,
    holders: HashMap<HostId, Holder>,
    chunks: HashMap<Hash, Chunk>,
    targets: HashMap<HostId, Target>,
    last_expiry_ms: i64,
    /// A holder disconnected this long is given up (the server's lost-agent grace).
    lost_after_ms: i64,
}

impl Swarm {
    pub fn new(peer_to_peer: bool, seed: u64) -> Swarm {
        Swarm {
            peer_to_peer,
            seed,
            holders: HashMap::new(),
            chunks: HashMap::new(),
            targets: HashMap::new(),
            last_expiry_ms: i64::MIN / 2,
            lost_after_ms: 60_000,
        }
    }

    /// How long a disconnected holder is waited for before its chunks count as lost.
    pub fn set_lost_after(&mut self, ms: i64) {
        self.lost_after_ms = ms.max(0);
    }

    fn add_holder(&mut self, host: HostId, role: Role, addr: Option<SocketAddr>) {
        let cap = match role {
            Role::Server => SERVER_SLOTS,
            Role::Source => SOURCE_SLOTS,
            Role::Target => PEER_SLOTS,
        };
        self.holders.entry(host).or_insert(Holder {
            role,
            addr,
            active: 0,
            cap,
            gone_since: None,
        });
    }

    fn hold(&mut self, host: HostId, hash: Hash) {
        let chunk = self.chunks.entry(hash).or_default();
        if !chunk.holders.contains(&host) {
            chunk.holders.push(host);
        }
    }

    /// A source host serving `chunks` (its scanned files).
    pub fn add_source(
        &mut self,
        host: HostId,
        addr: Option<SocketAddr>,
        chunks: impl IntoIterator<Item = Hash>,
    ) {
        self.add_holder(host, Role::Source, addr);
        for h in chunks {
            self.hold(host, h);
        }
    }

    /// The server serving uploaded chunks.
    pub fn add_server(&mut self, chunks: impl IntoIterator<Item = Hash>) {
        self.add_holder(SERVER, Role::Server, None);
        for h in chunks {
            self.hold(SERVER, h);
        }
    }

    /// A target that needs `needed` (duplicates are fine).
    pub fn add_target(&mut self, host: HostId, addr: Option<SocketAddr>, needed: &[Hash]) {
        let mut seen = HashSet::new();
        let needed: Vec<Hash> = needed.iter().copied().filter(|h| seen.insert(*h)).collect();
        for h in &needed {
            self.chunks.entry(*h).or_default();
        }
        if self.peer_to_peer {
            self.add_holder(host, Role::Target, addr);
        }
        self.targets.insert(
            host,
            Target {
                needed,
                held: HashSet::new(),
                inflight: HashMap::new(),
                skip: HashMap::new(),
                seed: mix(self.seed ^ (host as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                ended: false,
            },
        );
    }

    /// Uploads a holder is serving now.
    #[cfg(test)]
    pub fn active_uploads(&self, host: HostId) -> u32 {
        self.holders.get(&host).map_or(0, |h| h.active)
    }

    fn release(&mut self, hash: &Hash, holder: HostId) {
        if let Some(h) = self.holders.get_mut(&holder) {
            h.active = h.active.saturating_sub(1);
        }
        if let Some(c) = self.chunks.get_mut(hash) {
            c.inflight = c.inflight.saturating_sub(1);
        }
    }

    /// Drops `target`'s assignments older than [`ASSIGN_TTL_MS`] (their slots are freed).
    fn expire_target(&mut self, target: HostId, now_ms: i64) {
        let Some(t) = self.targets.get_mut(&target) else {
            return;
        };
        let old: Vec<(Hash, HostId)> = t
            .inflight
            .iter()
            .filter(|(_, (_, at))| now_ms - at >= ASSIGN_TTL_MS)
            .map(|(h, (holder, _))| (*h, *holder))
            .collect();
        for (hash, _) in &old {
            t.inflight.remove(hash);
        }
        for (hash, holder) in old {
            self.release(&hash, holder);
        }
    }

    /// Expires old assignments of every target (at most once a second).
    fn expire(&mut self, now_ms: i64) {
        if now_ms - self.last_expiry_ms < 1000 {
            return;
        }
        self.last_expiry_ms = now_ms;
        let targets: Vec<HostId> = self.targets.keys().copied().collect();
        for t in targets {
            self.expire_target(t, now_ms);
        }
    }

    /// Answers a target's `WhoHas`. `None` if `target` is not a target of this swarm.
    pub fn who_has(
        &mut self,
        target: HostId,
        want: u32,
        failed: &[FailedFetch],
        now_ms: i64,
    ) -> Option<Answer> {
        if !self.targets.contains_key(&target) {
            return None;
        }
        self.expire(now_ms);
        self.expire_target(target, now_ms);
        let mut answer = Answer::default();
        for f in failed {
            let delivered_by = self
                .targets
                .get(&target)
                .and_then(|t| t.inflight.get(&f.hash))
                .map(|(holder, _)| *holder);
            if delivered_by == Some(f.host_id) {
                if let Some(t) = self.targets.get_mut(&target) {
                    t.inflight.remove(&f.hash);
                }
                self.release(&f.hash, f.host_id);
            }
            if let Some(t) = self.targets.get_mut(&target) {
                t.skip.insert((f.hash, f.host_id), now_ms);
            }
            if f.corrupt {
                answer.corrupt.push((f.hash, f.host_id));
            }
        }
        let Some(t) = self.targets.get(&target) else {
            return Some(answer);
        };
        if t.ended {
            return Some(answer);
        }
        let seed = t.seed;
        let want = (want as usize).min(TARGET_INFLIGHT.saturating_sub(t.inflight.len()));
        let mut candidates: Vec<(u32, u64, Hash)> = t
            .needed
            .iter()
            .filter(|h| !t.held.contains(*h) && !t.inflight.contains_key(*h))
            .map(|h| {
                let rarity = self
                    .chunks
                    .get(h)
                    .map_or(0, |c| c.holders.len() as u32 + c.inflight);
                (rarity, mix(seed ^ prefix(h)), *h)
            })
            .collect();
        candidates.sort_unstable();
        for (_, _, hash) in candidates {
            if answer.assign.len() >= want {
                break;
            }
            if self.unreachable(&hash, now_ms) {
                answer.assign.push(Assignment {
                    hash,
                    holders: Vec::new(),
                });
                continue;
            }
            let Some(holders) = self.rank_holders(target, &hash, now_ms) else {
                continue;
            };
            let Some(&main) = holders.iter().find(|h| {
                self.holders
                    .get(*h)
                    .is_some_and(|holder| holder.active < holder.cap)
            }) else {
                continue;
            };
            let mut chosen = vec![main];
            chosen.extend(
                holders
                    .iter()
                    .copied()
                    .filter(|h| *h != main)
                    .take(FALLBACKS),
            );
            if let Some(h) = self.holders.get_mut(&main) {
                h.active += 1;
            }
            if let Some(c) = self.chunks.get_mut(&hash) {
                c.inflight += 1;
            }
            if let Some(t) = self.targets.get_mut(&target) {
                t.inflight.insert(hash, (main, now_ms));
            }
            answer.assign.push(Assignment {
                hash,
                holders: chosen
                    .into_iter()
                    .map(|host_id| PeerAddr {
                        host_id,
                        addr: self.holders.get(&host_id).and_then(|h| h.addr),
                    })
                    .collect(),
            });
        }
        Some(answer)
    }

    /// No holder of `hash` can come back: every one is a failed target or has been
    /// disconnected for longer than the lost-agent grace.
    fn unreachable(&self, hash: &Hash, now_ms: i64) -> bool {
        let Some(chunk) = self.chunks.get(hash) else {
            return true;
        };
        chunk.holders.iter().all(|h| {
            self.holders.get(h).is_none_or(|holder| {
                (holder.role == Role::Target && !self.peer_to_peer)
                    || holder
                        .gone_since
                        .is_some_and(|at| now_ms - at >= self.lost_after_ms)
            })
        })
    }

    /// Usable holders of `hash` for `target`, best first; `None` if there are none.
    fn rank_holders(&self, target: HostId, hash: &Hash, now_ms: i64) -> Option<Vec<HostId>> {
        let t = self.targets.get(&target)?;
        let chunk = self.chunks.get(hash)?;
        let mut ranked: Vec<(u8, u64, u64, HostId)> = chunk
            .holders
            .iter()
            .filter(|h| {
                t.skip
                    .get(&(*hash, **h))
                    .is_none_or(|at| now_ms - at >= SKIP_MS)
            })
            .filter_map(|h| {
                let holder = self.holders.get(h)?;
                if holder.gone_since.is_some()
                    || (holder.role == Role::Target && !self.peer_to_peer)
                {
                    return None;
                }
                let class = u8::from(holder.role != Role::Target);
                let load = u64::from(holder.active) * 1024 / u64::from(holder.cap.max(1));
                Some((class, load, mix(t.seed ^ (*h as u64)), *h))
            })
            .collect();
        if ranked.is_empty() {
            return None;
        }
        ranked.sort_unstable();
        Some(ranked.into_iter().map(|(_, _, _, h)| h).collect())
    }

    /// `target` holds `chunks` now: it becomes a holder (with peers on), and the assignments
    /// that delivered them free their slots.
    pub fn have(&mut self, target: HostId, chunks: &[Hash]) {
        if !self.targets.contains_key(&target) {
            return;
        }
        for hash in chunks {
            if !self.chunks.contains_key(hash) {
                continue;
            }
            let delivered = self.targets.get_mut(&target).and_then(|t| {
                t.held.insert(*hash);
                t.inflight.remove(hash)
            });
            if let Some((holder, _)) = delivered {
                self.release(hash, holder);
            }
            if self.peer_to_peer {
                self.hold(target, *hash);
            }
        }
    }

    /// `target` no longer holds `chunks` (dropped from its cache): it needs them again and is no
    /// longer a holder of them.
    pub fn lost_chunks(&mut self, target: HostId, chunks: &[Hash]) {
        let Some(t) = self.targets.get_mut(&target) else {
            return;
        };
        for hash in chunks {
            t.held.remove(hash);
            if let Some(c) = self.chunks.get_mut(hash) {
                c.holders.retain(|h| *h != target);
            }
        }
    }

    /// The target's task ended: its assignments are released; a failed target stops serving.
    pub fn target_ended(&mut self, target: HostId, success: bool) {
        let Some(t) = self.targets.get_mut(&target) else {
            return;
        };
        t.ended = true;
        let inflight: Vec<(Hash, HostId)> = t
            .inflight
            .drain()
            .map(|(h, (holder, _))| (h, holder))
            .collect();
        for (hash, holder) in inflight {
            self.release(&hash, holder);
        }
        if !success
            && let Some(h) = self.holders.get_mut(&target)
            && h.role == Role::Target
        {
            h.gone_since = Some(GONE_FOREVER);
        }
    }

    /// A host's session ended (`addr` None) or came back (with its peer address) at `now_ms`.
    pub fn host_link(&mut self, host: HostId, addr: Option<SocketAddr>, now_ms: i64) {
        if let Some(h) = self.holders.get_mut(&host) {
            if h.gone_since == Some(GONE_FOREVER) {
                return;
            }
            match addr {
                Some(a) => {
                    h.gone_since = None;
                    h.addr = Some(a);
                }
                None => {
                    h.gone_since.get_or_insert(now_ms);
                }
            }
        }
    }
}

fn prefix(hash: &Hash) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(b)
}

/// splitmix64's finaliser: a cheap, well-spread hash of a u64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
