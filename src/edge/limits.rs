//! What keeps the edge's memory bounded and a noisy key in check.
//!
//! - [`Budget`]: every byte a request holds (as received, and after decompression) is taken from
//!   one process-wide budget as it arrives. When the budget is spent the request gets 503 with
//!   Retry-After at once; nothing waits in an unbounded queue.
//! - [`RateLimiter`]: optional per-key token buckets in records/s and bytes/s (429).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::failure::Backoff;
use crate::config::MAX_RETRY_AFTER_S;
use crate::metrics;

/// The in-flight byte budget.
#[derive(Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total: usize,
    retry_after_s: u64,
}

/// Bytes held by one request; returned to the budget when dropped.
pub struct Permit {
    held: Option<OwnedSemaphorePermit>,
    budget: Budget,
}

impl Budget {
    pub fn new(total: usize, retry_after_s: u64) -> Budget {
        Budget {
            sem: Arc::new(Semaphore::new(total)),
            total,
            retry_after_s,
        }
    }

    pub fn permit(&self) -> Permit {
        Permit {
            held: None,
            budget: self.clone(),
        }
    }

    pub fn in_use(&self) -> usize {
        self.total - self.sem.available_permits()
    }

    fn publish_gauge(&self) {
        ::metrics::gauge!(metrics::EDGE_INFLIGHT_BYTES).set(self.in_use() as f64);
    }
}

impl Permit {
    /// Takes `bytes` more from the budget, or fails with 503 if it is spent.
    pub fn grow(&mut self, bytes: usize) -> Result<(), Backoff> {
        if bytes == 0 {
            return Ok(());
        }
        let n = u32::try_from(bytes).map_err(|_| Backoff::Overloaded {
            retry_after_s: self.budget.retry_after_s,
        })?;
        let more = self
            .budget
            .sem
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| Backoff::Overloaded {
                retry_after_s: self.budget.retry_after_s,
            })?;
        match &mut self.held {
            Some(p) => p.merge(more),
            None => self.held = Some(more),
        }
        self.budget.publish_gauge();
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |p| p.num_permits())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.held.take().is_some() {
            self.budget.publish_gauge();
        }
    }
}

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
        for (i, name) in ["events", "bytes"].into_iter().enumerate() {
            if rates[i] <= 0.0 {
                continue;
            }
            pair[i].refill(rates[i], now);
            if pair[i].tokens <= 0.0 {
                let wait = (-pair[i].tokens / rates[i]).ceil() as u64;
                ::metrics::counter!(metrics::EDGE_RATE_LIMITED, "limit" => name).increment(1);
                return Err(Backoff::RateLimited {
                    limit: name,
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
    fn budget_refuses_past_its_total_and_refills_on_drop() {
        let budget = Budget::new(100, 1);
        let mut a = budget.permit();
        a.grow(60).unwrap();
        let mut b = budget.permit();
        assert!(b.grow(50).is_err());
        b.grow(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

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
