//! Metering: plugin calls counted per tenant, council, plugin, version and UTC day.
//!
//! Each call adds to an in-memory table (one short lock, no I/O). A background task
//! writes the table to the database every `metering.flush_interval_secs`, and the server
//! writes it once more on graceful shutdown. Each replica writes only what it counted,
//! and each write is a batch with an id the database records in the same transaction,
//! so a batch retried after an unclear failure is not counted twice. A failed batch is
//! kept, with its id, and retried at the next flush.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guildhall_domain::metering::{CallsDelta, UsageCounts, UsageDelta, latency_bucket};
use guildhall_store::Store;
use hashbrown::{Equivalent, HashMap};

use crate::Metrics;

/// One finished plugin call, as the gateway saw it.
#[derive(Debug, Clone)]
pub struct CallSample<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The council called.
    pub council: &'a str,
    /// The plugin.
    pub plugin: &'a str,
    /// The version that answered.
    pub version: &'a str,
    /// Whether the platform or the plugin failed (a 429 or any 5xx).
    pub error: bool,
    /// Wall time.
    pub wall: Duration,
    /// Time the plugin's code ran.
    pub cpu: Duration,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Key-value bytes written.
    pub kv_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UsageKey {
    tenant: String,
    council: String,
    plugin: String,
    version: String,
    day: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallsKey {
    plugin: String,
    version: String,
    day: u32,
    bucket: i32,
}

/// A [`UsageKey`] borrowed from a call's sample: a call already counted is found without
/// allocating. It hashes as the owned key does (a `&str` as its `String`, in field order).
#[derive(Hash)]
struct UsageKeyRef<'a> {
    tenant: &'a str,
    council: &'a str,
    plugin: &'a str,
    version: &'a str,
    day: u32,
}

impl Equivalent<UsageKey> for UsageKeyRef<'_> {
    fn equivalent(&self, key: &UsageKey) -> bool {
        self.day == key.day
            && self.tenant == key.tenant
            && self.council == key.council
            && self.plugin == key.plugin
            && self.version == key.version
    }
}

impl From<&UsageKeyRef<'_>> for UsageKey {
    fn from(key: &UsageKeyRef<'_>) -> Self {
        Self {
            tenant: key.tenant.to_string(),
            council: key.council.to_string(),
            plugin: key.plugin.to_string(),
            version: key.version.to_string(),
            day: key.day,
        }
    }
}

/// A [`CallsKey`] borrowed from a call's sample, as [`UsageKeyRef`] is.
#[derive(Hash)]
struct CallsKeyRef<'a> {
    plugin: &'a str,
    version: &'a str,
    day: u32,
    bucket: i32,
}

impl Equivalent<CallsKey> for CallsKeyRef<'_> {
    fn equivalent(&self, key: &CallsKey) -> bool {
        self.day == key.day
            && self.bucket == key.bucket
            && self.plugin == key.plugin
            && self.version == key.version
    }
}

impl From<&CallsKeyRef<'_>> for CallsKey {
    fn from(key: &CallsKeyRef<'_>) -> Self {
        Self {
            plugin: key.plugin.to_string(),
            version: key.version.to_string(),
            day: key.day,
            bucket: key.bucket,
        }
    }
}

#[derive(Debug)]
enum Batch {
    Tenant {
        id: String,
        tenant: String,
        deltas: Vec<UsageDelta>,
    },
    Platform {
        id: String,
        deltas: Vec<CallsDelta>,
    },
}

#[derive(Debug, Default)]
struct State {
    usage: HashMap<UsageKey, UsageCounts>,
    calls: HashMap<CallsKey, (i64, i64)>,
    /// Batches whose write failed, kept with their ids for the next flush.
    retry: Vec<Batch>,
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Batches written.
    pub batches: usize,
    /// Batches that failed and wait for the next flush.
    pub failed: usize,
}

/// The in-memory meter; cheap to clone.
#[derive(Clone)]
pub struct Meter {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    store: Store,
    metrics: Metrics,
    state: Mutex<State>,
    /// One flush at a time, so batches are written in order.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("enabled", &self.inner.enabled)
            .finish_non_exhaustive()
    }
}

fn today() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / 86_400) as u32
}

fn day_string(day: u32) -> String {
    let date = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(i64::from(day));
    guildhall_domain::metering::day_of(date)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn bytes(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Meter {
    /// A meter writing to `store`; with `enabled` false it counts nothing.
    pub fn new(store: Store, metrics: Metrics, enabled: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled,
                store,
                metrics,
                state: Mutex::new(State::default()),
                flushing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Counts one call.
    pub fn record(&self, sample: &CallSample<'_>) {
        if !self.inner.enabled {
            return;
        }
        let day = today();
        let wall_ms = sample.wall.as_secs_f64() * 1000.0;
        let error = i64::from(sample.error);
        let usage_key = UsageKeyRef {
            tenant: sample.tenant,
            council: sample.council,
            plugin: sample.plugin,
            version: sample.version,
            day,
        };
        let calls_key = CallsKeyRef {
            plugin: sample.plugin,
            version: sample.version,
            day,
            bucket: latency_bucket(wall_ms),
        };
        let counts = UsageCounts {
            calls: 1,
            errors: error,
            wall_us: micros(sample.wall),
            cpu_us: micros(sample.cpu),
            bytes_in: bytes(sample.bytes_in),
            bytes_out: bytes(sample.bytes_out),
            kv_bytes: bytes(sample.kv_bytes),
        };
        let mut state = self.inner.state.lock().expect("meter poisoned");
        *state.usage.entry_ref(&usage_key).or_default() += counts;
        let calls = state.calls.entry_ref(&calls_key).or_default();
        calls.0 += 1;
        calls.1 += error;
    }

    /// Distinct keys waiting to be written, plus failed batches.
    pub fn pending(&self) -> usize {
        let state = self.inner.state.lock().expect("meter poisoned");
        state.usage.len() + state.calls.len() + state.retry.len()
    }

    /// Writes everything counted so far. Failed batches stay for the next flush.
    pub async fn flush(&self) -> Flushed {
        let _one_at_a_time = self.inner.flushing.lock().await;
        let batches = self.take();
        let mut flushed = Flushed::default();
        let mut failed = Vec::new();
        for batch in batches {
            match self.write(&batch).await {
                Ok(()) => flushed.batches += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write metered usage; will retry");
                    failed.push(batch);
                }
            }
        }
        flushed.failed = failed.len();
        self.inner.metrics.flush(failed.is_empty());
        if !failed.is_empty() {
            self.inner
                .state
                .lock()
                .expect("meter poisoned")
                .retry
                .extend(failed);
        }
        flushed
    }

    /// Takes the counts out of memory as batches (earlier failures first).
    fn take(&self) -> Vec<Batch> {
        let state = std::mem::take(&mut *self.inner.state.lock().expect("meter poisoned"));
        let mut batches = state.retry;
        let id = uuid::Uuid::now_v7().to_string();
        let mut by_tenant: std::collections::HashMap<String, Vec<UsageDelta>> =
            std::collections::HashMap::new();
        for (key, counts) in state.usage {
            by_tenant.entry(key.tenant).or_default().push(UsageDelta {
                council: key.council,
                plugin: key.plugin,
                version: key.version,
                day: day_string(key.day),
                counts,
            });
        }
        for (tenant, deltas) in by_tenant {
            batches.push(Batch::Tenant {
                id: id.clone(),
                tenant,
                deltas,
            });
        }
        if !state.calls.is_empty() {
            batches.push(Batch::Platform {
                id,
                deltas: state
                    .calls
                    .into_iter()
                    .map(|(key, (calls, errors))| CallsDelta {
                        plugin: key.plugin,
                        version: key.version,
                        day: day_string(key.day),
                        bucket: key.bucket,
                        calls,
                        errors,
                    })
                    .collect(),
            });
        }
        batches
    }

    async fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        let store = &self.inner.store;
        match batch {
            Batch::Tenant { id, tenant, deltas } => {
                let tenant_id = guildhall_domain::TenantId::parse(tenant.as_str())?;
                // A tenant deleted since the calls has nowhere to keep them.
                if let Some(scope) = store.scope(&tenant_id).await? {
                    store.usage(&scope).add(id, deltas).await?;
                }
            }
            Batch::Platform { id, deltas } => {
                store.platform_usage().add(id, deltas).await?;
            }
        }
        Ok(())
    }

    /// Flushes every `interval`; when `stop` is cancelled, flushes once more and ends.
    /// Await the task after cancelling to know the last counts are written.
    pub fn spawn_flusher(
        &self,
        interval: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<Flushed> {
        let meter = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        meter.flush().await;
                    }
                    () = stop.cancelled() => return meter.flush().await,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_become_utc_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_784), "2026-11-27");
    }

    #[test]
    fn borrowed_keys_find_the_counts_of_owned_ones() {
        let key = |tenant, council, day| UsageKeyRef {
            tenant,
            council,
            plugin: "hello",
            version: "0.1.0",
            day,
        };
        let mut usage: HashMap<UsageKey, i64> = HashMap::new();
        for borrowed in [
            key("north-downs", "tandridge", 7),
            key("north-downs", "tandridge", 7),
            key("north-downs", "mole-valley", 7),
            key("north-downs", "tandridge", 8),
            // The same letters split differently are another key.
            key("north-downst", "andridge", 7),
        ] {
            *usage.entry_ref(&borrowed).or_default() += 1;
        }
        assert_eq!(usage.len(), 4);
        assert_eq!(usage.get(&key("north-downs", "tandridge", 7)), Some(&2));
        assert_eq!(usage.get(&key("north-downs", "tandridge", 8)), Some(&1));

        let calls_key = |bucket| CallsKeyRef {
            plugin: "hello",
            version: "0.1.0",
            day: 7,
            bucket,
        };
        let mut calls: HashMap<CallsKey, i64> = HashMap::new();
        for bucket in [1, 1, 2] {
            *calls.entry_ref(&calls_key(bucket)).or_default() += 1;
        }
        assert_eq!(calls.len(), 2);
        assert_eq!(calls.get(&calls_key(1)), Some(&2));
    }
}
