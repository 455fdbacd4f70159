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
    /// `None`: unlimited.
    inner: Option<Arc<Mutex<Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    /// Negative when in debt.
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `None` or `Some(0)`: unlimited.
    pub fn new(bytes_per_sec: Option<u64>) -> RateLimiter {
        let inner = bytes_per_sec.filter(|r| *r > 0).map(|rate| {
            let rate = rate as f64;
            let capacity = rate * BURST.as_secs_f64();
            Arc::new(Mutex::new(Bucket {
                rate,
                capacity,
                tokens: capacity,
                last: Instant::now(),
            }))
        });
        RateLimiter { inner }
    }

    pub fn unlimited() -> RateLimiter {
        RateLimiter::default()
    }

    /// The configured rate, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        let bucket = self.inner.as_ref()?;
        Some(bucket.lock().unwrap_or_else(|e| e.into_inner()).rate as u64)
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
        let bucket = self.inner.as_ref()?;
        let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * b.rate).min(b.capacity);
        b.last = now;
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
}
