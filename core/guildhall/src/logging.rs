//! Log output (stderr, text or JSON, filtered by `RUST_LOG` or `log.filter`) and, with
//! `telemetry.otlp_endpoint`, span export.

use guildhall_telemetry::setup::{LogStyle, TelemetryGuard};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber once; later calls (as in tests) keep the first. Keep
/// the guard until the process ends: dropping it sends the last spans.
pub(crate) fn init(config: &Config) -> anyhow::Result<TelemetryGuard> {
    let style = match config.log.format {
        LogFormat::Text => LogStyle::Text,
        LogFormat::Json => LogStyle::Json,
    };
    guildhall_telemetry::setup::init(&config.log.filter, style, &config.telemetry)
}
