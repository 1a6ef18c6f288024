//! Guildhall's telemetry: what the platform tells operators and councils about itself.
//!
//! - [`setup`] installs the log subscriber and, when `telemetry.otlp_endpoint` is set, an
//!   OpenTelemetry layer that exports spans over OTLP/HTTP. Without an endpoint no
//!   OpenTelemetry layer exists, so spans cost what they cost before.
//! - [`propagation`] reads W3C `traceparent` from callers and produces the one a plugin's
//!   outbound requests carry.
//! - [`Metrics`] holds the OpenTelemetry instruments of one server and renders them as
//!   Prometheus text for `/metrics`.
//! - [`Meter`] counts plugin calls per tenant, council, plugin, version and day in memory
//!   and flushes them to the database in batches.
//! - [`report`] turns stored usage and ratings into the usage report and the KPIs.

pub mod config;
pub mod metering;
pub mod metrics;
pub mod propagation;
pub mod report;
pub mod setup;

pub use config::{MeteringConfig, TelemetryConfig};
pub use metering::{CallSample, Meter};
pub use metrics::{Metrics, PluginLabels};
pub use opentelemetry::KeyValue;
