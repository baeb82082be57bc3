//! A token bucket: `rate` tokens per second, holding at most `burst`.

use std::time::Instant;

/// One user's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again (so it can be forgotten).
    pub fn is_full(&self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * rate >= burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3.0, t0);
        assert!(b.take(1.0, 3.0, t0));
        assert!(b.take(1.0, 3.0, t0));
        assert!(b.take(1.0, 3.0, t0));
        assert!(!b.take(1.0, 3.0, t0));
        assert!(!b.take(1.0, 3.0, t0 + Duration::from_millis(500)));
        assert!(b.take(1.0, 3.0, t0 + Duration::from_millis(1100)));
        assert!(b.is_full(1.0, 3.0, t0 + Duration::from_secs(10)));
    }
}
