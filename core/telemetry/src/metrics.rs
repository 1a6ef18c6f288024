//! One server's metrics: OpenTelemetry instruments read out as Prometheus text.
//!
//! Labels stay bounded: routes are templates (`/api/v1/tenants/{tenant}`), never raw
//! paths; tenants, plugins and versions are the catalogue's and the operator's own
//! names; no user ids, request ids or tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder as _, TextEncoder};

/// Histogram bounds for durations in seconds: 0.5 ms to 30 s.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A value observed at scrape time with its labels.
pub type Observation<T> = (T, Vec<KeyValue>);

/// The instruments of one server; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
    meter: Meter,
    http_duration: Histogram<f64>,
    plugin_duration: Histogram<f64>,
    plugin_cpu: Counter<f64>,
    rejections: Counter<u64>,
    feedback: Counter<u64>,
    flushes: Counter<u64>,
    /// Observable instruments live as long as their callbacks may run.
    observers: Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
}

/// A plugin call's tenant, plugin and version as metric labels, built once for an install
/// (not per call) and shared by reference count.
#[derive(Debug, Clone)]
pub struct PluginLabels([KeyValue; 3]);

impl PluginLabels {
    /// The labels of calls to `version` of `plugin` for `tenant`.
    pub fn new(tenant: &str, plugin: &str, version: &str) -> Self {
        let value = |text: &str| opentelemetry::Value::from(std::sync::Arc::<str>::from(text));
        Self([
            KeyValue::new("guildhall.tenant", value(tenant)),
            KeyValue::new("guildhall.plugin", value(plugin)),
            KeyValue::new("guildhall.plugin.version", value(version)),
        ])
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh set of instruments with its own registry (servers in one process, as in
    /// tests, do not share counts).
    pub fn new() -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("guildhall");
        let http_duration = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("HTTP requests by method, route template and status")
            .with_boundaries(SECONDS.to_vec())
            .build();
        let plugin_duration = meter
            .f64_histogram("guildhall.plugin.call.duration")
            .with_unit("s")
            .with_description("Plugin calls by tenant, plugin, version and outcome")
            .with_boundaries(SECONDS.to_vec())
            .build();
        let plugin_cpu = meter
            .f64_counter("guildhall.plugin.cpu.time")
            .with_unit("s")
            .with_description("Time plugins' code ran, by tenant, plugin and version")
            .build();
        let rejections = meter
            .u64_counter("guildhall.gateway.rejections")
            .with_description("Calls refused with 429 because the tenant used its whole share")
            .build();
        let feedback = meter
            .u64_counter("guildhall.feedback.submissions")
            .with_description("Citizen ratings by outcome (stored, invalid, rate_limited)")
            .build();
        let flushes = meter
            .u64_counter("guildhall.metering.flushes")
            .with_description("Writes of metered usage to the database, by outcome")
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                provider,
                meter,
                http_duration,
                plugin_duration,
                plugin_cpu,
                rejections,
                feedback,
                flushes,
                observers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Records one HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.inner.http_duration.record(
            elapsed.as_secs_f64(),
            &[
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("http.route", route.to_string()),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }

    /// Records one plugin call of the tenant, plugin and version `labels` name.
    pub fn plugin_call(
        &self,
        labels: &PluginLabels,
        outcome: &'static str,
        wall: Duration,
        cpu: Duration,
    ) {
        // The CPU counter has the first three labels, the duration histogram all four.
        // Cloning a label is a reference count: a call allocates nothing here.
        let [tenant, plugin, version] = &labels.0;
        let labels = [
            tenant.clone(),
            plugin.clone(),
            version.clone(),
            KeyValue::new("guildhall.outcome", outcome),
        ];
        self.inner.plugin_cpu.add(cpu.as_secs_f64(), &labels[..3]);
        self.inner
            .plugin_duration
            .record(wall.as_secs_f64(), &labels);
    }

    /// Records a 429 from a tenant's share.
    pub fn rejected(&self, tenant: &str) {
        self.inner
            .rejections
            .add(1, &[KeyValue::new("guildhall.tenant", tenant.to_string())]);
    }

    /// Records a feedback submission's outcome.
    pub fn feedback(&self, outcome: &'static str) {
        self.inner
            .feedback
            .add(1, &[KeyValue::new("guildhall.outcome", outcome)]);
    }

    /// Records a metering flush's outcome.
    pub fn flush(&self, ok: bool) {
        self.inner.flushes.add(
            1,
            &[KeyValue::new(
                "guildhall.outcome",
                if ok { "ok" } else { "error" },
            )],
        );
    }

    /// A gauge read at each scrape.
    pub fn observe_gauge(
        &self,
        name: &'static str,
        description: &'static str,
        read: impl Fn() -> Vec<Observation<u64>> + Send + Sync + 'static,
    ) {
        let gauge = self
            .inner
            .meter
            .u64_observable_gauge(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (value, labels) in read() {
                    observer.observe(value, &labels);
                }
            })
            .build();
        self.keep(Box::new(gauge));
    }

    /// A monotonic count read at each scrape.
    pub fn observe_counter(
        &self,
        name: &'static str,
        description: &'static str,
        read: impl Fn() -> Vec<Observation<u64>> + Send + Sync + 'static,
    ) {
        let counter = self
            .inner
            .meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |observer| {
                for (value, labels) in read() {
                    observer.observe(value, &labels);
                }
            })
            .build();
        self.keep(Box::new(counter));
    }

    /// A monotonic total of seconds read at each scrape.
    pub fn observe_seconds(
        &self,
        name: &'static str,
        description: &'static str,
        read: impl Fn() -> Vec<Observation<f64>> + Send + Sync + 'static,
    ) {
        let counter = self
            .inner
            .meter
            .f64_observable_counter(name)
            .with_unit("s")
            .with_description(description)
            .with_callback(move |observer| {
                for (value, labels) in read() {
                    observer.observe(value, &labels);
                }
            })
            .build();
        self.keep(Box::new(counter));
    }

    fn keep(&self, instrument: Box<dyn std::any::Any + Send + Sync>) {
        self.inner
            .observers
            .lock()
            .expect("observers poisoned")
            .push(instrument);
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The content type of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_bounded_labels() {
        let metrics = Metrics::new().unwrap();
        metrics.http_request(
            "GET",
            "/api/v1/tenants/{tenant}",
            200,
            Duration::from_millis(3),
        );
        metrics.plugin_call(
            &PluginLabels::new("north-downs", "hello", "0.1.0"),
            "ok",
            Duration::from_millis(2),
            Duration::from_micros(300),
        );
        metrics.observe_gauge("guildhall.test.gauge", "a test", || {
            vec![(7, vec![KeyValue::new("k", "v")])]
        });
        let text = metrics.render();
        assert!(
            text.contains("http_server_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains(r#"http_route="/api/v1/tenants/{tenant}""#),
            "{text}"
        );
        assert!(
            text.contains("guildhall_plugin_call_duration_seconds_count"),
            "{text}"
        );
        assert!(text.contains(r#"guildhall_tenant="north-downs""#), "{text}");
        assert!(text.contains(r#"guildhall_test_gauge{k="v"} 7"#), "{text}");
    }
}
