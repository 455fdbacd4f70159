//! A token-bucket rate limiter in bytes per second, shared by every transfer of one direction
//! on an agent (cheap to clone: clones share the bucket).
//!
//! The bucket holds at most [`BURST`] worth of bytes. `acquire(n)` takes `n` tokens at once,
//! going into debt when there are not enough, and sleeps until the debt is paid back; the debt
//! is booked before sleeping, so concurrent callers queue behind each other and the total rate
//! holds however many transfers share the limiter. A cancelled `acquire` keeps its booking
//! (the bytes count as sent): the limiter errs on the slow side. Callers acquire per read or
//! write (tens of KiB), not per 4 MiB chunk, so transfers interleave smoothly.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How much the bucket holds, in time at the configured rate.
pub const BURST: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Default)]
pub struct RateLimiter {
    inner: Arc<Mutex<Bucket>>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Bytes per second; 0: unlimited.
    rate: f64,
    capacity: f64,
    /// Negative when in debt.
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    fn configure(&mut self, bytes_per_sec: Option<u64>) {
        let rate = bytes_per_sec.unwrap_or(0) as f64;
        self.rate = rate;
        self.capacity = rate * BURST.as_secs_f64();
        // A new rate starts with a full bucket; a debt already booked stays booked.
        self.tokens = self.tokens.min(0.0) + self.capacity;
        self.last = Some(Instant::now());
    }
}

impl RateLimiter {
    /// `None` or `Some(0)`: unlimited.
    pub fn new(bytes_per_sec: Option<u64>) -> RateLimiter {
        let limiter = RateLimiter::default();
        limiter.set_rate(bytes_per_sec);
        limiter
    }

    pub fn unlimited() -> RateLimiter {
        RateLimiter::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the rate for every clone (`None` or `Some(0)`: unlimited). Callers already
    /// sleeping keep their wait; later bookings use the new rate.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let mut b = self.lock();
        if b.rate as u64 != bytes_per_sec.unwrap_or(0) {
            b.configure(bytes_per_sec);
        }
    }

    /// The configured rate, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        let rate = self.lock().rate as u64;
        (rate > 0).then_some(rate)
    }

    /// Waits until `n` more bytes may pass.
    pub async fn acquire(&self, n: u64) {
        let Some(wait) = self.book(n) else {
            return;
        };
        tokio::time::sleep(wait).await;
    }

    /// Books `n` bytes; returns how long to wait before sending them.
    fn book(&self, n: u64) -> Option<Duration> {
        let mut b = self.lock();
        if b.rate <= 0.0 {
            return None;
        }
        let now = Instant::now();
        let elapsed = b.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        b.tokens = (b.tokens + elapsed * b.rate).min(b.capacity);
        b.last = Some(now);
        b.tokens -= n as f64;
        (b.tokens < 0.0)
            .then(|| Duration::try_from_secs_f64(-b.tokens / b.rate).unwrap_or(Duration::MAX))
    }
}

#[cfg(test)]
mod tests {
    // Pins the limiter's arithmetic: unlimited never waits, a burst passes at once, and four
    // concurrent consumers of 2 MB each at 4 MB/s share the rate (about 2 s in all, not 0.5 s
    // each), which is what makes one limiter per direction per agent correct.
    use super::*;

    #[tokio::test]
    async fn unlimited_and_burst_do_not_wait() {
        let start = Instant::now();
        let unlimited = RateLimiter::new(None);
        assert_eq!(unlimited.rate(), None);
        unlimited.acquire(u64::MAX).await;
        let limited = RateLimiter::new(Some(1_000_000));
        assert_eq!(limited.rate(), Some(1_000_000));
        limited.acquire(100_000).await;
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        // The next bytes are in debt: 100 KB at 1 MB/s.
        let wait = limited.book(100_000).expect("limited");
        assert!(
            wait > Duration::from_millis(80) && wait <= Duration::from_millis(101),
            "{wait:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_consumers_share_the_rate() {
        const PIECE: u64 = 64 * 1024;
        const EACH: u64 = 2_000_000;
        let limiter = RateLimiter::new(Some(4_000_000));
        let start = Instant::now();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let mut done = 0;
                    while done < EACH {
                        let n = PIECE.min(EACH - done);
                        limiter.acquire(n).await;
                        done += n;
                    }
                    start.elapsed()
                })
            })
            .collect();
        let mut finished = Vec::new();
        for c in consumers {
            finished.push(c.await.expect("consumer"));
        }
        let total = start.elapsed();
        // 8 MB at 4 MB/s minus the 0.4 MB burst: 1.9 s.
        assert!(
            total >= Duration::from_millis(1600) && total <= Duration::from_secs(3),
            "{total:?}"
        );
        // Fair enough: nobody finished in a quarter of the time.
        for f in finished {
            assert!(f >= Duration::from_millis(1000), "{f:?}");
        }
    }

    #[tokio::test]
    async fn rate_changes_reach_every_clone() {
        // Pins set_rate: an unlimited limiter becomes limited for its clones and back.
        let limiter = RateLimiter::unlimited();
        let clone = limiter.clone();
        assert_eq!(clone.book(1 << 30), None);
        limiter.set_rate(Some(1_000_000));
        assert_eq!(clone.rate(), Some(1_000_000));
        clone.acquire(100_000).await;
        assert!(clone.book(100_000).is_some());
        limiter.set_rate(None);
        assert_eq!(clone.rate(), None);
        assert_eq!(clone.book(1 << 30), None);
    }
}
