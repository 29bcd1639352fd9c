//! What keeps a noisy key in check: optional per-key token buckets in records/s and bytes/s
//! (429). The edge's memory is bounded by [`crate::budget`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::failure::Backoff;
use crate::config::MAX_RETRY_AFTER_S;
use crate::telemetry::edge::RateLimited;
use crate::telemetry::labels::RateLimit;

/// Per-key token buckets. A bucket holds one second of its rate. A request is let through while
/// the bucket is positive and may drive it negative (a batch larger than one second's worth
/// still passes when the key has been quiet); the debt sets the Retry-After of the next one.
pub struct RateLimiter {
    events_per_s: f64,
    bytes_per_s: f64,
    buckets: Mutex<HashMap<Arc<str>, [Bucket; 2]>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
    }
}

impl RateLimiter {
    /// A limit of 0 switches that bucket off.
    pub fn new(events_per_s: u64, bytes_per_s: u64) -> RateLimiter {
        RateLimiter {
            events_per_s: events_per_s as f64,
            bytes_per_s: bytes_per_s as f64,
            buckets: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.events_per_s > 0.0 || self.bytes_per_s > 0.0
    }

    /// Charges `events` and `bytes` to `key`, or says how long to wait.
    pub fn charge(&self, key: &Arc<str>, events: u64, bytes: u64) -> Result<(), Backoff> {
        if !self.enabled() {
            return Ok(());
        }
        let now = Instant::now();
        let rates = [self.events_per_s, self.bytes_per_s];
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let pair = buckets.entry(key.clone()).or_insert([
            Bucket {
                tokens: rates[0],
                at: now,
            },
            Bucket {
                tokens: rates[1],
                at: now,
            },
        ]);
        for (i, limit) in [RateLimit::Events, RateLimit::Bytes].into_iter().enumerate() {
            if rates[i] <= 0.0 {
                continue;
            }
            pair[i].refill(rates[i], now);
            if pair[i].tokens <= 0.0 {
                let wait = (-pair[i].tokens / rates[i]).ceil() as u64;
                RateLimited { limit }.emit();
                return Err(Backoff::RateLimited {
                    limit: limit.as_str(),
                    retry_after_s: wait.clamp(1, MAX_RETRY_AFTER_S),
                });
            }
        }
        for (i, amount) in [events, bytes].into_iter().enumerate() {
            if rates[i] > 0.0 {
                pair[i].tokens -= amount as f64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_lets_a_quiet_key_burst_then_backs_off() {
        let rl = RateLimiter::new(100, 0);
        let k: Arc<str> = "k".into();
        rl.charge(&k, 250, 10).unwrap(); // one large batch passes, leaving a debt of 150
        match rl.charge(&k, 1, 10) {
            Err(Backoff::RateLimited {
                limit: "events",
                retry_after_s,
            }) => assert_eq!(retry_after_s, 2),
            other => panic!("expected 429, got {other:?}"),
        }
        let other: Arc<str> = "other".into();
        rl.charge(&other, 1, 1).unwrap(); // keys are independent
        assert!(
            RateLimiter::new(0, 0).charge(&k, u64::MAX, u64::MAX).is_ok(),
            "0 means off"
        );
    }
}
