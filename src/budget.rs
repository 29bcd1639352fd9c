//! A process-wide byte budget: every byte a unit of work holds (a request as it arrives, a body
//! as it inflates) is taken from it before it is allocated, and given back when the holder is
//! dropped. When it is spent, [`Permit::grow`] fails at once: nothing waits in an unbounded
//! queue. The owner decides what that means (the edge answers 503 with Retry-After), and names
//! the gauge that shows the bytes in use, so each process reports only its own budget.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is spent: the caller backs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the in-flight byte budget is spent")]
pub struct Exhausted;

/// The byte budget.
#[derive(Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total: usize,
    gauge: Option<&'static str>,
}

/// Bytes held by one holder; returned to the budget when dropped.
pub struct Permit {
    held: Option<OwnedSemaphorePermit>,
    budget: Budget,
}

impl Budget {
    /// A budget of `total` bytes, whose bytes in use are set on the gauge `gauge`, if any.
    pub fn new(total: usize, gauge: Option<&'static str>) -> Budget {
        Budget {
            sem: Arc::new(Semaphore::new(total)),
            total,
            gauge,
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
        if let Some(name) = self.gauge {
            ::metrics::gauge!(name).set(self.in_use() as f64);
        }
    }
}

impl Permit {
    /// Takes `bytes` more from the budget, or fails if it is spent.
    pub fn grow(&mut self, bytes: usize) -> Result<(), Exhausted> {
        if bytes == 0 {
            return Ok(());
        }
        let n = u32::try_from(bytes).map_err(|_| Exhausted)?;
        let more = self
            .budget
            .sem
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| Exhausted)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_its_total_and_refills_on_drop() {
        let budget = Budget::new(100, None);
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
}
