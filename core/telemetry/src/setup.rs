//! The process-wide subscriber: log lines to stderr and, with an OTLP endpoint, spans to
//! an OpenTelemetry collector.
//!
//! Log lines are formatted on the thread that logs and written to stderr by a thread of
//! their own (`tracing-appender`'s non-blocking writer), so a request never waits for the
//! write system call or for another thread holding stderr's lock. The queue holds up to
//! 128,000 lines; when it is full, logging waits rather than drops lines.

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::TelemetryConfig;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Keeps the log writer and the span exporter alive; dropping it writes the log lines and
/// sends the spans still buffered.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    /// Dropped after the provider (fields drop in order): its last lines are written too.
    _log: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "cannot send the last spans to the collector");
        }
    }
}

/// Installs the global subscriber (once; later calls keep the first). `RUST_LOG` wins
/// over `filter`. Call it before starting the async runtime: the span exporter runs on
/// its own thread with a blocking HTTP client.
pub fn init(
    filter: &str,
    style: LogStyle,
    telemetry: &TelemetryConfig,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let (writer, log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("guildhall-log")
        .finish(std::io::stderr());
    let fmt = match style {
        LogStyle::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer.clone())
            .with_ansi(ansi)
            .with_target(true)
            .boxed(),
        LogStyle::Json => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let (otel, provider) = match &telemetry.otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let provider = tracer_provider(endpoint, &telemetry.service_name)?;
            let tracer = provider.tracer("guildhall");
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
            )
        }
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    Ok(TelemetryGuard {
        provider,
        // A later call keeps the first subscriber, and its writer thread may end.
        _log: installed.then_some(log_guard),
    })
}

use tracing_subscriber::Layer as _;

fn tracer_provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
        .with_context(|| format!("cannot set up span export to {url}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build())
}
