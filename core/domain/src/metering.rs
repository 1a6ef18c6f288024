//! Metering's vocabulary: the counts of one call and their sums, the latency buckets, and
//! the UTC day counts belong to. Shared by the meter that counts, the store that keeps the
//! counts and the reports that read them.

use serde::Serialize;

/// The metered counts of one key, as stored in `usage_daily` and added up in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageCounts {
    /// Calls.
    pub calls: i64,
    /// Calls that failed on the platform's or the plugin's side (429 or 5xx).
    pub errors: i64,
    /// Wall time, microseconds.
    pub wall_us: i64,
    /// Time the plugin's code ran, microseconds.
    pub cpu_us: i64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response body bytes.
    pub bytes_out: i64,
    /// Bytes written to the plugin's key-value store.
    pub kv_bytes: i64,
}

/// The columns of [`UsageCounts`], in field order.
pub const COUNT_COLUMNS: [&str; 7] = [
    "calls",
    "errors",
    "wall_us",
    "cpu_us",
    "bytes_in",
    "bytes_out",
    "kv_bytes",
];

impl UsageCounts {
    /// The counts in the order of [`COUNT_COLUMNS`].
    pub fn values(&self) -> [i64; 7] {
        [
            self.calls,
            self.errors,
            self.wall_us,
            self.cpu_us,
            self.bytes_in,
            self.bytes_out,
            self.kv_bytes,
        ]
    }
}

impl std::ops::AddAssign for UsageCounts {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.wall_us += other.wall_us;
        self.cpu_us += other.cpu_us;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.kv_bytes += other.kv_bytes;
    }
}

/// Counts to add for one council, plugin, version and day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageDelta {
    /// The council called.
    pub council: String,
    /// The plugin.
    pub plugin: String,
    /// The version that answered.
    pub version: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The counts to add.
    pub counts: UsageCounts,
}

/// Calls to add to one latency bucket of one plugin version on one day, across tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsDelta {
    /// The plugin.
    pub plugin: String,
    /// The version.
    pub version: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The latency bucket's index.
    pub bucket: i32,
    /// Calls.
    pub calls: i64,
    /// Failed calls.
    pub errors: i64,
}

/// The UTC day of a moment, `YYYY-MM-DD`.
pub fn day_of(at: time::OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The upper bounds of the latency buckets, in milliseconds; the last bucket is
/// everything slower. Roughly 25% apart, so a p95 read from them is within a quarter.
pub const LATENCY_BOUNDS_MS: &[f64] = &[
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0,
    600.0, 800.0, 1000.0, 1250.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 7500.0, 10000.0,
    15000.0, 20000.0, 30000.0,
];

/// The bucket a latency falls in.
pub fn latency_bucket(ms: f64) -> i32 {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets() {
        assert_eq!(latency_bucket(0.1), 0);
        assert_eq!(latency_bucket(1.0), 3);
        assert_eq!(latency_bucket(1.1), 4);
        assert_eq!(latency_bucket(1e9), LATENCY_BOUNDS_MS.len() as i32);
    }

    #[test]
    fn days_are_utc_dates() {
        let at = time::macros::datetime!(2026-11-27 23:30 -02:00);
        assert_eq!(day_of(at), "2026-11-28");
    }
}
