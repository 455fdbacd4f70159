//! The sign-ins under way: each `begin` leaves its PKCE verifier and nonce here under its
//! `state`, and `finish` takes them out once. Bounded (the oldest is dropped when full) and
//! short-lived (an entry older than the TTL is refused and purged). Pure: time is an argument.

use openidconnect::{Nonce, PkceCodeVerifier};
use std::collections::{HashMap, VecDeque};

/// What `finish` needs of a sign-in that `begin` started.
pub struct Pending {
    pub verifier: PkceCodeVerifier,
    pub nonce: Nonce,
    pub created_ms: i64,
}

/// Why a state cannot be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Never issued, already used, or dropped because the map was full.
    Unknown,
    /// Issued longer than the TTL ago.
    Expired,
}

pub struct Pendings {
    cap: usize,
    ttl_ms: i64,
    map: HashMap<String, Pending>,
    /// States in the order they were issued (with their creation time); may hold states that
    /// were already taken, which are skipped when they reach the front.
    order: VecDeque<(String, i64)>,
}

impl Pendings {
    pub fn new(cap: usize, ttl_ms: i64) -> Pendings {
        Pendings {
            cap: cap.max(1),
            ttl_ms,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Keeps `pending` under `state`, dropping expired entries and, when full, the oldest.
    pub fn insert(&mut self, state: String, pending: Pending, now_ms: i64) {
        self.purge(now_ms);
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back((state.clone(), pending.created_ms));
        self.map.insert(state, pending);
        // Taken states leave stale entries in `order`; keep it within a constant of the map.
        if self.order.len() > 2 * self.cap {
            let map = &self.map;
            self.order.retain(|(s, _)| map.contains_key(s));
        }
    }

    /// Takes the entry of `state` out (a state is good once).
    pub fn take(&mut self, state: &str, now_ms: i64) -> Result<Pending, Refused> {
        let pending = self.map.remove(state).ok_or(Refused::Unknown)?;
        if now_ms - pending.created_ms > self.ttl_ms {
            return Err(Refused::Expired);
        }
        Ok(pending)
    }

    fn purge(&mut self, now_ms: i64) {
        while let Some((state, created)) = self.order.front() {
            let stale = !self.map.contains_key(state);
            if !stale && now_ms - *created <= self.ttl_ms {
                break;
            }
            if let Some((state, _)) = self.order.pop_front() {
                self.map.remove(&state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pins the bounds of the sign-in map: once per state, expiry, oldest dropped when full.
    use super::*;

    fn entry(created_ms: i64) -> Pending {
        Pending {
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            nonce: Nonce::new("n".into()),
            created_ms,
        }
    }

    #[test]
    fn a_state_is_taken_once_and_expires() {
        let mut p = Pendings::new(10, 1_000);
        p.insert("a".into(), entry(0), 0);
        p.insert("b".into(), entry(0), 0);
        assert!(p.take("a", 1_000).is_ok());
        assert_eq!(p.take("a", 1_000).err(), Some(Refused::Unknown));
        assert_eq!(p.take("b", 1_001).err(), Some(Refused::Expired));
        assert_eq!(
            p.take("b", 0).err(),
            Some(Refused::Unknown),
            "expired is gone"
        );
        assert_eq!(p.take("never", 0).err(), Some(Refused::Unknown));
    }

    #[test]
    fn full_drops_the_oldest_and_expired_are_purged() {
        let mut p = Pendings::new(3, 1_000);
        for (i, s) in ["a", "b", "c", "d"].into_iter().enumerate() {
            p.insert(s.into(), entry(i as i64), i as i64);
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.take("a", 10).err(), Some(Refused::Unknown));
        assert!(p.take("b", 10).is_ok());
        // Far later: inserting purges c and d, which expired.
        p.insert("e".into(), entry(5_000), 5_000);
        assert_eq!(p.len(), 1);
        assert!(p.take("e", 5_000).is_ok());
    }

    #[test]
    fn taken_states_do_not_grow_the_order_without_bound() {
        let mut p = Pendings::new(4, i64::MAX / 2);
        for i in 0..1_000 {
            let s = format!("s{i}");
            p.insert(s.clone(), entry(0), 0);
            assert!(p.take(&s, 0).is_ok());
        }
        assert!(p.order.len() <= 8, "order holds {}", p.order.len());
    }
}
