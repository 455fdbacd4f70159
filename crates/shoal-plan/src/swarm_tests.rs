// Pins the swarm tracker's rules: rarest first (in-flight copies count), per-target random
// tie-breaks, slot caps, targets preferred over sources, failed holders skipped, `Have` growing
// the swarm and freeing slots, expiry, peers off, and — in a simulation of the benchmark — that
// 16 targets finish near the optimal bound while the source uploads about one copy.
use super::*;

fn h(n: u8) -> Hash {
    let mut x = [0u8; 32];
    x[0] = n;
    x[31] = n;
    x
}

fn hosts(a: &Answer) -> Vec<(Hash, Vec<HostId>)> {
    a.assign
        .iter()
        .map(|x| (x.hash, x.holders.iter().map(|p| p.host_id).collect()))
        .collect()
}

fn one_source(chunks: u8, targets: &[HostId], p2p: bool) -> Swarm {
    let mut s = Swarm::new(p2p, 7);
    let all: Vec<Hash> = (0..chunks).map(h).collect();
    s.add_source(100, None, all.clone());
    for t in targets {
        s.add_target(*t, None, &all);
    }
    s
}

#[test]
fn source_slots_cap_assignments_and_rarity_counts_inflight() {
    // Pins the source's slot cap and that a chunk in flight is rarer-than-nothing: two targets
    // get two different chunks, a third gets nothing until a slot frees.
    let mut s = one_source(4, &[1, 2, 3], true);
    let a1 = s.who_has(1, 4, &[], 0).expect("target");
    assert_eq!(a1.assign.len(), SOURCE_SLOTS as usize);
    let a2 = s.who_has(2, 4, &[], 0).expect("target");
    assert!(a2.assign.is_empty(), "source slots are full");
    assert_eq!(s.active_uploads(100), SOURCE_SLOTS);
    // Target 1 gets its first chunk: slot freed, target 1 is now a holder of it.
    let got = a1.assign[0].hash;
    s.have(1, &[got]);
    assert_eq!(s.active_uploads(100), SOURCE_SLOTS - 1);
    let a3 = s.who_has(3, 4, &[], 1).expect("target");
    let first_of_3 = hosts(&a3);
    // Rarest first: a chunk never sent (source only, nothing in flight) from the free source
    // slot, then — the source now full — the chunk target 1 holds, from target 1. The chunk in
    // flight to 1 and the other never-sent chunk wait: their only holder is busy.
    assert_eq!(first_of_3.len(), 2, "{first_of_3:?}");
    assert_eq!(first_of_3[0].1[0], 100);
    assert!(first_of_3[0].0 != got && first_of_3[0].0 != a1.assign[1].hash);
    assert_eq!(first_of_3[1], (got, vec![1, 100]));
}

#[test]
fn ties_break_differently_per_target() {
    // Pins the per-target random order: with every chunk equally rare, targets do not all start
    // on the same chunk.
    let mut s = Swarm::new(true, 1);
    let all: Vec<Hash> = (0..64).map(h).collect();
    s.add_server(all.clone());
    let targets: Vec<HostId> = (1..=8).collect();
    for t in &targets {
        s.add_target(*t, None, &all);
    }
    let mut firsts = HashSet::new();
    for t in &targets {
        let a = s.who_has(*t, 1, &[], 0).expect("target");
        firsts.insert(a.assign[0].hash);
    }
    assert_eq!(firsts.len(), 8, "each target starts on its own chunk");
}

#[test]
fn failed_holder_is_skipped_and_fallbacks_listed() {
    // Pins the `failed` report: slot released, that holder not again for that chunk and
    // requester for SKIP_MS, corrupt ones surfaced; holders beyond the first are listed as fallbacks.
    let mut s = Swarm::new(true, 3);
    s.add_source(100, None, [h(1)]);
    s.add_source(101, None, [h(1)]);
    s.add_target(1, None, &[h(1)]);
    let a = s.who_has(1, 1, &[], 0).expect("target");
    let first = a.assign[0].holders[0].host_id;
    assert_eq!(
        a.assign[0].holders.len(),
        2,
        "the other source is a fallback"
    );
    let failed = [FailedFetch {
        hash: h(1),
        host_id: first,
        corrupt: true,
    }];
    let b = s.who_has(1, 1, &failed, 10).expect("target");
    assert_eq!(b.corrupt, vec![(h(1), first)]);
    assert_eq!(s.active_uploads(first), 0);
    let holders: Vec<HostId> = b.assign[0].holders.iter().map(|p| p.host_id).collect();
    assert_eq!(holders.len(), 1);
    assert_ne!(holders[0], first);
    // Both failed: nothing assignable.
    let failed2 = [FailedFetch {
        hash: h(1),
        host_id: holders[0],
        corrupt: false,
    }];
    let c = s.who_has(1, 1, &failed2, 20).expect("target");
    assert!(c.assign.is_empty());
    // The skip is temporary: a link cut or a busy peer heals.
    let d = s.who_has(1, 1, &[], 20 + SKIP_MS).expect("target");
    assert_eq!(d.assign.len(), 1, "offered again after SKIP_MS: {d:?}");
}

#[test]
fn peers_off_uses_sources_only_and_expiry_frees_slots() {
    // Pins peer_to_peer=false (a target holding a chunk is never a holder) and the assignment
    // expiry.
    let mut s = one_source(2, &[1, 2], false);
    let a = s.who_has(1, 1, &[], 0).expect("target");
    s.have(1, &[a.assign[0].hash]);
    let b = s.who_has(2, 2, &[], 0).expect("target");
    assert!(
        b.assign
            .iter()
            .all(|x| x.holders.iter().all(|p| p.host_id == 100))
    );
    assert_eq!(s.active_uploads(100), 2);
    // No Have arrives: after the TTL the next WhoHas of that target frees its slots.
    let c = s.who_has(2, 2, &[], ASSIGN_TTL_MS).expect("target");
    assert_eq!(c.assign.len(), 2, "re-assigned after expiry");
    assert!(s.who_has(99, 1, &[], 0).is_none(), "not a target");
}

#[test]
fn gone_holders_and_ended_targets() {
    // Pins link loss (a gone holder is not assigned until it is back) and target end (slots
    // released, a failed target stops serving, an ended target gets nothing).
    let mut s = one_source(1, &[1, 2], true);
    s.set_lost_after(20_000);
    s.host_link(100, None, 0);
    assert!(s.who_has(1, 1, &[], 0).expect("t").assign.is_empty());
    // Within the grace nothing is given up; after it, the chunk is answered with no holders.
    assert!(s.who_has(1, 1, &[], 19_999).expect("t").assign.is_empty());
    let lost = s.who_has(1, 1, &[], 20_000).expect("t");
    assert_eq!(lost.assign.len(), 1, "{lost:?}");
    assert!(lost.assign[0].holders.is_empty(), "unavailable: {lost:?}");
    s.host_link(100, Some("10.0.0.9:7000".parse().expect("addr")), 20_001);
    let a = s.who_has(1, 1, &[], 0).expect("t");
    assert_eq!(
        a.assign[0].holders[0].addr,
        Some("10.0.0.9:7000".parse().expect("addr"))
    );
    // A target that lost a chunk from its cache needs it again and stops being its holder.
    s.have(1, &[a.assign[0].hash]);
    s.lost_chunks(1, &[a.assign[0].hash]);
    let again = s.who_has(1, 2, &[], 20_002).expect("t");
    assert!(
        again.assign.iter().any(|x| x.hash == a.assign[0].hash),
        "{again:?}"
    );
    s.target_ended(1, false);
    assert_eq!(s.active_uploads(100), 0);
    assert!(s.who_has(1, 1, &[], 0).expect("t").assign.is_empty());
}

/// A fluid simulation of the benchmark: every host uploads at most `b` bytes/s shared by its
/// uploads and downloads at most `b` shared by its downloads; a target keeps `want` fetches
/// going, asking the tracker every `RETRY_MS` when it has room.
fn simulate(targets: u32, chunks: u8, p2p: bool) -> (f64, f64) {
    let b = 1.0; // chunk sizes per second
    let want = 4u32;
    let all: Vec<Hash> = (0..chunks).map(h).collect();
    let mut s = Swarm::new(p2p, 42);
    s.add_source(1000, None, all.clone());
    for t in 1..=targets {
        s.add_target(t as HostId, None, &all);
    }
    // (target, holder, hash, remaining)
    let mut flows: Vec<(HostId, HostId, Hash, f64)> = Vec::new();
    let mut done: HashMap<HostId, usize> = HashMap::new();
    let mut source_up = 0.0;
    let dt = 0.02;
    let mut now = 0.0f64;
    let mut next_ask = 0.0f64;
    while done.values().filter(|n| **n == all.len()).count() < targets as usize {
        assert!(now < 1000.0, "simulation did not finish");
        if now >= next_ask {
            next_ask += f64::from(RETRY_MS) / 1000.0;
            for t in 1..=targets as HostId {
                let busy = flows.iter().filter(|f| f.0 == t).count() as u32;
                if busy < want {
                    let a = s
                        .who_has(t, want - busy, &[], (now * 1000.0) as i64)
                        .expect("target");
                    for x in a.assign {
                        flows.push((t, x.holders[0].host_id, x.hash, 1.0));
                    }
                }
            }
        }
        let mut ups: HashMap<HostId, f64> = HashMap::new();
        let mut downs: HashMap<HostId, f64> = HashMap::new();
        for f in &flows {
            *ups.entry(f.1).or_default() += 1.0;
            *downs.entry(f.0).or_default() += 1.0;
        }
        let mut finished = Vec::new();
        for (i, f) in flows.iter_mut().enumerate() {
            let rate = (b / ups[&f.1]).min(b / downs[&f.0]);
            f.3 -= rate * dt;
            if f.1 == 1000 {
                source_up += rate * dt;
            }
            if f.3 <= 0.0 {
                finished.push(i);
            }
        }
        for i in finished.into_iter().rev() {
            let (t, _, hash, _) = flows.swap_remove(i);
            s.have(t, &[hash]);
            *done.entry(t).or_default() += 1;
        }
        now += dt;
    }
    (now, source_up / f64::from(chunks))
}

#[test]
fn benchmark_shape_swarm_near_the_bound() {
    // Pins the benchmark targets on the tracker's own decisions: 16 targets, 64 chunks,
    // equal links. Bound = (S/B)(1 + floor(log2 16)/64); the swarm must finish within 1.5x of
    // it and the source upload at most 3 x S. Without peers the source sends 16 copies.
    let m = 64.0;
    let bound = m * (1.0 + 4.0 / m);
    let (t, source_copies) = simulate(16, 64, true);
    assert!(t <= 1.5 * bound, "swarm took {t:.1}, bound {bound:.1}");
    assert!(
        source_copies <= 3.0,
        "source sent {source_copies:.2} copies"
    );
    let (t_off, copies_off) = simulate(16, 8, false);
    assert!(copies_off > 15.9, "peers off: {copies_off}");
    assert!(t_off > 8.0 * 15.0, "peers off took {t_off}");
    eprintln!("swarm {t:.1} (bound {bound:.1}), source copies {source_copies:.2}");
}
