//! Each tenant's concurrency share: `runtime.tenant_concurrency` calls at once, then a short
//! queue, then 429 with `Retry-After`. A tenant flooding the gateway fills only its own share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use guildhall_domain::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Gateway;
use crate::error::ApiError;

pub(super) struct TenantGate {
    pub(super) permits: Arc<Semaphore>,
    pub(super) waiting: AtomicUsize,
}

impl Gateway {
    fn gate(&self, tenant: &TenantId) -> Arc<TenantGate> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        Arc::clone(
            self.inner
                .gates
                .lock()
                .expect("gates poisoned")
                .entry(tenant.clone())
                .or_insert_with(|| {
                    Arc::new(TenantGate {
                        permits: Arc::new(Semaphore::new(concurrency)),
                        waiting: AtomicUsize::new(0),
                    })
                }),
        )
    }

    /// Calls waiting for a slot and calls running, per tenant, for metrics.
    pub fn load(&self) -> Vec<(TenantId, usize, usize)> {
        let concurrency = self.inner.runtime.config().tenant_concurrency.max(1);
        self.inner
            .gates
            .lock()
            .expect("gates poisoned")
            .iter()
            .map(|(tenant, gate)| {
                (
                    tenant.clone(),
                    gate.waiting.load(Ordering::Relaxed),
                    concurrency.saturating_sub(gate.permits.available_permits()),
                )
            })
            .collect()
    }

    /// Takes a slot in the tenant's share, waiting briefly in a short queue.
    pub(crate) async fn admit(&self, tenant: &TenantId) -> Result<OwnedSemaphorePermit, ApiError> {
        let gate = self.gate(tenant);
        if let Ok(permit) = Arc::clone(&gate.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let config = self.inner.runtime.config();
        let too_many = || {
            ApiError::from_status(
                StatusCode::TOO_MANY_REQUESTS,
                format!("tenant {tenant} is using its whole share of the platform; retry shortly"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        };
        if gate.waiting.fetch_add(1, Ordering::SeqCst) >= config.tenant_queue {
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(too_many());
        }
        let waited = tokio::time::timeout(
            Duration::from_millis(config.tenant_queue_timeout_ms),
            Arc::clone(&gate.permits).acquire_owned(),
        )
        .await;
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(too_many()),
        }
    }
}
