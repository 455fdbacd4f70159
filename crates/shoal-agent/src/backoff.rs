//! Reconnect back-off: exponential with full jitter, reset after a session that lasted.

use std::time::Duration;

/// First retry delay bound.
pub const BASE: Duration = Duration::from_millis(200);
/// Largest retry delay; also the delay used after a rejection that needs a person to act.
pub const MAX: Duration = Duration::from_secs(30);
/// A session that lasted longer than this resets the back-off.
pub const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Exponential back-off with full jitter: the n-th delay is uniform in `[0, min(MAX, BASE * 2^n)]`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BASE, MAX)
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The next delay (full jitter) and advances the exponent.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        jitter(Duration::ZERO, ceiling)
    }

    /// A slow retry after a rejection: uniform in `[MAX / 2, MAX]` so a fleet of rejected
    /// agents does not retry in lockstep.
    pub fn slow_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        jitter(self.max / 2, self.max)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniformly random duration in `[lo, hi]`.
pub fn jitter(lo: Duration, hi: Duration) -> Duration {
    use rand::Rng as _;
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_millis().min(u128::from(u64::MAX)) as u64;
    lo + Duration::from_millis(rand::rng().random_range(0..=span))
}

#[cfg(test)]
mod tests {
    // Pins the back-off bounds: every delay lies in [0, min(MAX, BASE * 2^n)], the ceiling
    // doubles from 200 ms and stops at 30 s, slow retries stay near the maximum, and reset
    // starts over.
    use super::*;

    #[test]
    fn delays_stay_within_bounds() {
        let mut b = Backoff::default();
        let mut expected = BASE;
        for _ in 0..40 {
            assert_eq!(b.ceiling(), expected.min(MAX));
            let d = b.next_delay();
            assert!(d <= expected.min(MAX), "{d:?} > {expected:?}");
            expected = expected.saturating_mul(2);
        }
        assert_eq!(b.ceiling(), MAX);
        for _ in 0..20 {
            let d = b.slow_delay();
            assert!(d >= MAX / 2 && d <= MAX);
        }
        b.reset();
        assert_eq!(b.ceiling(), BASE);
    }

    #[test]
    fn jitter_is_spread() {
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1000 {
            let d = jitter(Duration::ZERO, Duration::from_millis(1000));
            seen_low |= d < Duration::from_millis(250);
            seen_high |= d > Duration::from_millis(750);
        }
        assert!(seen_low && seen_high);
        assert_eq!(jitter(MAX, MAX), MAX);
    }
}
