//! The memory budget: the sum of the memory caps of the guests running at once never
//! exceeds `runtime.memory_budget_mib`, so however every guest behaves, together they
//! cannot take more memory than the operator sized the pod for.
//!
//! A call reserves its whole cap (in MiB) before it runs and gives it back when it ends
//! (the reservation is dropped). A call that does not find enough free waits in a fair
//! first-come queue for at most the wait given, then is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::MemoryBusy;

/// Memory promised to running guests, in MiB.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_mib: u32,
    wait: Duration,
}

/// A running call's share of the memory budget; dropping it gives the share back.
#[derive(Debug)]
#[must_use = "the reservation is given back when dropped"]
pub struct MemoryReservation {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    pub(crate) fn new(total_mib: u32, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(total_mib as usize)),
            total_mib,
            wait,
        }
    }

    /// Reserves `mib`, waiting up to the budget's wait for running calls to end.
    pub(crate) async fn reserve(&self, mib: u32) -> Result<MemoryReservation, MemoryBusy> {
        let started = Instant::now();
        let busy = || MemoryBusy {
            needed_mib: mib,
            budget_mib: self.total_mib,
            waited: started.elapsed(),
        };
        // Configuration validation keeps every cap within the budget; a cap above it
        // could never be served, so it is refused at once rather than waited for.
        if mib > self.total_mib {
            return Err(busy());
        }
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_many_owned(mib) {
            return Ok(MemoryReservation { _permit: permit });
        }
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_many_owned(mib))
            .await
        {
            Ok(Ok(permit)) => Ok(MemoryReservation { _permit: permit }),
            _ => Err(busy()),
        }
    }

    /// MiB reserved by running calls now.
    pub(crate) fn in_use_mib(&self) -> u32 {
        self.total_mib
            .saturating_sub(self.permits.available_permits() as u32)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::MemoryBudget;

    #[tokio::test]
    async fn reservations_never_add_up_past_the_budget() {
        let budget = MemoryBudget::new(256, Duration::from_millis(50));
        let first = budget.reserve(128).await.unwrap();
        let second = budget.reserve(128).await.unwrap();
        assert_eq!(budget.in_use_mib(), 256);
        let busy = budget.reserve(1).await.unwrap_err();
        assert_eq!((busy.needed_mib, busy.budget_mib), (1, 256));
        assert!(busy.waited >= Duration::from_millis(50), "{busy:?}");
        drop(first);
        let third = budget.reserve(64).await.unwrap();
        assert_eq!(budget.in_use_mib(), 192);
        drop((second, third));
        assert_eq!(budget.in_use_mib(), 0);
        assert!(budget.reserve(257).await.is_err());
    }

    #[tokio::test]
    async fn a_waiting_call_runs_when_another_ends() {
        let budget = std::sync::Arc::new(MemoryBudget::new(64, Duration::from_secs(5)));
        let held = budget.reserve(64).await.unwrap();
        let waiter = {
            let budget = std::sync::Arc::clone(&budget);
            tokio::spawn(async move { budget.reserve(32).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        waiter.await.unwrap().unwrap();
    }
}
