//! Counting open connections per client address, so that one address cannot take every
//! connection slot of an endpoint before it has authenticated.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections per client address. Cheap to clone (the table is shared).
#[derive(Clone, Default)]
pub struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in a [`PerAddress`] table, given back when dropped.
pub struct Slot {
    table: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    /// A place for one more connection from `ip`, unless it has `max` already (0: no limit).
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut table = self.0.lock();
        let n = table.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections counted in all.
    pub fn total(&self) -> usize {
        self.0.lock().values().sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.table.0.lock();
        if let Some(n) = table.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_each_address_and_frees_on_drop() {
        let table = PerAddress::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = table.take(a, 2);
        let second = table.take(a, 2);
        assert!(first.is_some() && second.is_some());
        assert!(table.take(a, 2).is_none());
        assert!(table.take(b, 2).is_some());
        drop(first);
        assert!(table.take(a, 2).is_some());
        assert!(table.take(a, 0).is_some(), "0 means no limit");
    }
}
