//! The emulator's clock: real time plus an offset that tests move forward, so token expiry,
//! delta-token age and Activity Log delays can be exercised without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

#[derive(Debug)]
pub struct Clock {
    started_at: OffsetDateTime,
    started: Instant,
    advanced: Mutex<Duration>,
}

impl Clock {
    /// A clock that starts at the real current time.
    pub fn new() -> Self {
        Clock {
            started_at: OffsetDateTime::now_utc(),
            started: Instant::now(),
            advanced: Mutex::new(Duration::ZERO),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.started_at + self.started.elapsed() + self.advanced()
    }

    /// Moves the clock forward; it never goes back.
    pub fn advance(&self, by: Duration) {
        let mut advanced = self
            .advanced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *advanced = advanced.saturating_add(by);
    }

    fn advanced(&self) -> Duration {
        *self
            .advanced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_by_at_least_the_amount() {
        let clock = Clock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(8 * 24 * 3600));
        let after = clock.now();
        assert!(after - before >= time::Duration::days(8));
        assert!(after - before < time::Duration::days(8) + time::Duration::minutes(1));
    }
}
