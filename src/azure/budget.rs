//! The request budget of one API: a token bucket from the configured requests-per-minute, and a
//! shared "throttled until" instant that a 429 (or a 503 with `Retry-After`) sets, so every
//! concurrent request to that API pauses, not just the one that was told to wait.
//!
//! The bucket also backs off by itself: each throttling answer halves its rate (down to 1/16 of
//! the configured one) and each success wins back 1/32 of the configured rate (AIMD), so a budget
//! set too high for the tenant converges below Microsoft's limit instead of hitting it repeatedly.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct Budget {
    bucket: Option<Mutex<Bucket>>,
    throttled_until: Mutex<Option<Instant>>,
}

struct Bucket {
    configured_per_sec: f64,
    rate_per_sec: f64,
    burst: f64,
    /// May go negative: a negative balance is a queue of reservations, each caller sleeping
    /// until its own slot, so waiters are served in order without polling.
    tokens: f64,
    last_refill: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        self.last_refill = now;
    }
}

impl Budget {
    /// `requests_per_minute = None` means no bucket; the throttle gate still applies.
    pub(crate) fn new(requests_per_minute: Option<u32>) -> Self {
        let bucket = requests_per_minute.map(|rpm| {
            let per_sec = f64::from(rpm) / 60.0;
            // One second's worth of requests may go at once (at least one), so a small budget
            // does not serialise a page and its follow-up needlessly.
            let burst = per_sec.ceil().max(1.0);
            Mutex::new(Bucket {
                configured_per_sec: per_sec,
                rate_per_sec: per_sec,
                burst,
                tokens: burst,
                last_refill: Instant::now(),
            })
        });
        Budget {
            bucket,
            throttled_until: Mutex::new(None),
        }
    }

    /// Waits until this API may be called again: past any throttle window, then for a bucket
    /// slot. Returns how long it waited.
    pub(crate) async fn acquire(&self) -> Duration {
        let started = Instant::now();
        self.wait_out_throttle().await;
        if let Some(wait) = self.reserve(Instant::now()) {
            tokio::time::sleep(wait).await;
            // A 429 may have arrived while we slept for our slot.
            self.wait_out_throttle().await;
        }
        started.elapsed()
    }

    async fn wait_out_throttle(&self) {
        while let Some(until) = self.throttled_past(Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// The end of the throttle window, if it is still open at `now`.
    fn throttled_past(&self, now: Instant) -> Option<Instant> {
        (*lock(&self.throttled_until)).filter(|until| *until > now)
    }

    /// Takes a slot from the bucket at `now`; returns how long to wait for it, if at all.
    fn reserve(&self, now: Instant) -> Option<Duration> {
        let bucket = self.bucket.as_ref()?;
        let mut bucket = lock(bucket);
        bucket.refill(now);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            None
        } else {
            Some(Duration::from_secs_f64(
                -bucket.tokens / bucket.rate_per_sec,
            ))
        }
    }

    /// Microsoft said "wait `retry_after`": close the gate for everyone and slow the bucket.
    pub(crate) fn throttled(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        {
            let mut gate = lock(&self.throttled_until);
            if gate.is_none_or(|current| current < until) {
                *gate = Some(until);
            }
        }
        if let Some(bucket) = &self.bucket {
            let mut bucket = lock(bucket);
            let now = Instant::now();
            bucket.refill(now);
            let floor = bucket.configured_per_sec / 16.0;
            bucket.rate_per_sec = (bucket.rate_per_sec / 2.0).max(floor);
        }
    }

    /// A request went through without throttling: win back some rate.
    pub(crate) fn succeeded(&self) {
        if let Some(bucket) = &self.bucket {
            let mut bucket = lock(bucket);
            let now = Instant::now();
            bucket.refill(now);
            let step = bucket.configured_per_sec / 32.0;
            bucket.rate_per_sec = (bucket.rate_per_sec + step).min(bucket.configured_per_sec);
        }
    }

    /// The current bucket rate in requests per minute (None without a bucket), for `status`.
    pub(crate) fn effective_requests_per_minute(&self) -> Option<f64> {
        self.bucket.as_ref().map(|b| lock(b).rate_per_sec * 60.0)
    }
}

/// The guarded values are plain numbers, valid even if a holder panicked, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spaces_reservations_at_the_configured_rate() {
        let budget = Budget::new(Some(60)); // 1 per second, burst 1
        let now = Instant::now();
        let waits: Vec<u64> = (0..5)
            .map(|_| budget.reserve(now).map_or(0, |d| d.as_millis() as u64))
            .collect();
        // The first slot is the burst; each further one is a second later than the previous.
        assert_eq!(waits, vec![0, 1000, 2000, 3000, 4000]);
        // Three seconds on, three slots have been paid off: the next waits 5 - 3 = 2 s.
        let later = budget.reserve(now + Duration::from_secs(3));
        assert_eq!(later.map(|d| d.as_millis()), Some(2000));
    }

    #[test]
    fn no_budget_means_no_waiting() {
        let budget = Budget::new(None);
        assert!((0..1000).all(|_| budget.reserve(Instant::now()).is_none()));
    }

    #[test]
    fn throttle_gate_stays_closed_until_the_latest_deadline() {
        let budget = Budget::new(None);
        let start = Instant::now();
        budget.throttled(Duration::from_secs(10));
        budget.throttled(Duration::from_secs(2)); // a shorter answer must not reopen early
        let until = budget.throttled_past(start).unwrap();
        assert!(until >= start + Duration::from_secs(10));
        assert!(budget.throttled_past(until).is_none());
    }

    #[test]
    fn throttling_halves_the_rate_and_successes_restore_it() {
        let budget = Budget::new(Some(600));
        budget.throttled(Duration::ZERO);
        assert_eq!(budget.effective_requests_per_minute(), Some(300.0));
        for _ in 0..4 {
            budget.throttled(Duration::ZERO);
        }
        // Floor: 1/16 of the configured rate.
        assert_eq!(budget.effective_requests_per_minute(), Some(37.5));
        for _ in 0..100 {
            budget.succeeded();
        }
        assert_eq!(budget.effective_requests_per_minute(), Some(600.0));
    }
}
