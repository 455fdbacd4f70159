//! Counting open connections per client address, so that one address cannot take every
//! connection slot of an endpoint before it has authenticated.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections per client address and in all, with their bounds (0: no bound). Cheap to
/// clone (the table is shared).
#[derive(Clone)]
pub struct PerAddress(Arc<Mutex<Table>>);

struct Table {
    open: HashMap<IpAddr, usize>,
    total: usize,
    max_per_address: usize,
    max_total: usize,
}

/// One connection's place in a [`PerAddress`] table, given back when dropped.
pub struct Slot {
    table: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    pub fn new(max_per_address: usize, max_total: usize) -> PerAddress {
        PerAddress(Arc::new(Mutex::new(Table {
            open: HashMap::new(),
            total: 0,
            max_per_address,
            max_total,
        })))
    }

    /// A place for one more connection from `ip`, unless a bound is reached.
    pub fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut guard = self.0.lock();
        let table = &mut *guard;
        if table.max_total > 0 && table.total >= table.max_total {
            return None;
        }
        let n = table.open.entry(ip).or_insert(0);
        if table.max_per_address > 0 && *n >= table.max_per_address {
            return None;
        }
        *n += 1;
        table.total += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.table.0.lock();
        if let Some(n) = table.open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                table.open.remove(&self.ip);
            }
            table.total -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_each_address_and_the_total_and_frees_on_drop() {
        let table = PerAddress::new(2, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let first = table.take(a);
        let second = table.take(a);
        assert!(first.is_some() && second.is_some());
        assert!(table.take(a).is_none(), "per address");
        let third = table.take(b);
        assert!(third.is_some());
        assert!(table.take(c).is_none(), "in all");
        drop(first);
        assert!(table.take(a).is_some());
        let unbounded = PerAddress::new(0, 0);
        let held: Vec<_> = (0..10).map(|_| unbounded.take(a)).collect();
        assert!(held.iter().all(Option::is_some), "0 means no bound");
    }
}
