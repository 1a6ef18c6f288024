//! `[telemetry]` and `[metering]` settings.

use serde::{Deserialize, Serialize};

/// `[telemetry]`: where traces go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP address of an OpenTelemetry collector, e.g.
    /// `http://otel-collector:4318`; spans are posted to `<endpoint>/v1/traces` as
    /// protobuf. Unset (the default): no spans leave the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` on exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "guildhall".to_string(),
        }
    }
}

impl TelemetryConfig {
    /// Checks the endpoint; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|e| format!("telemetry.otlp_endpoint {endpoint:?} is not a URL: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(format!(
                    "telemetry.otlp_endpoint {endpoint:?} must be an http:// URL with a host \
                     (an OTLP/HTTP collector, usually on port 4318; run a collector next to \
                     Guildhall to forward over TLS)"
                ));
            }
        }
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name must not be empty".into());
        }
        Ok(())
    }
}

/// `[metering]`: per-council usage for cost sharing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeteringConfig {
    /// Count plugin calls per council. Turning it off leaves usage reports, KPIs and
    /// adoption figures without new calls; it exists to measure metering's own cost.
    pub enabled: bool,
    /// How often each replica writes its counts to the database, in seconds. Counts are
    /// also written on graceful shutdown; a replica killed outright loses at most this
    /// much.
    pub flush_interval_secs: u64,
    /// The price of one second of plugin CPU time, in pounds, for the cost per
    /// transaction KPI.
    pub price_per_cpu_second: f64,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_interval_secs: 10,
            price_per_cpu_second: 0.0001,
        }
    }
}

impl MeteringConfig {
    /// Checks the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.flush_interval_secs) {
            return Err("metering.flush_interval_secs must be between 1 and 3600".into());
        }
        if !self.price_per_cpu_second.is_finite() || self.price_per_cpu_second < 0.0 {
            return Err(
                "metering.price_per_cpu_second must be a number of pounds, 0 or more".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_plain_http() {
        let mut c = TelemetryConfig::default();
        assert!(c.validate().is_ok());
        c.otlp_endpoint = Some("http://collector:4318".into());
        assert!(c.validate().is_ok());
        c.otlp_endpoint = Some("https://collector:4318".into());
        assert!(c.validate().unwrap_err().contains("http://"));
        c.otlp_endpoint = Some("not a url".into());
        assert!(
            c.validate()
                .unwrap_err()
                .contains("telemetry.otlp_endpoint")
        );
    }

    #[test]
    fn metering_bounds() {
        let mut m = MeteringConfig::default();
        assert!(m.validate().is_ok());
        m.flush_interval_secs = 0;
        assert!(m.validate().unwrap_err().contains("flush_interval_secs"));
        m.flush_interval_secs = 5;
        m.price_per_cpu_second = -1.0;
        assert!(m.validate().unwrap_err().contains("price_per_cpu_second"));
    }
}
