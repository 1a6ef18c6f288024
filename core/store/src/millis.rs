//! Instants as Unix milliseconds, the form the newer tables keep them in: one integer that
//! compares the same way on SQLite and PostgreSQL.

use time::OffsetDateTime;

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The instant `ms` Unix milliseconds name (the epoch for one out of range).
pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
