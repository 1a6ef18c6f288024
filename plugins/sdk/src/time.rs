//! Dates and timestamps from the WASI wall clock, without a date library.
//!
//! All times are UTC. [`Date`] is a calendar date (`YYYY-MM-DD`); timestamps are whole seconds
//! since the Unix epoch, written and read as RFC 3339 (`2026-05-01T09:30:00Z`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Seconds since 1970-01-01T00:00:00Z now, from the wall clock.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Now as RFC 3339 in UTC, e.g. `2026-05-01T09:30:00Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(now_unix())
}

/// Formats seconds since the epoch as RFC 3339 in UTC, e.g. `2026-05-01T09:30:00Z`.
pub fn format_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        Date::from_days_since_epoch(days),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an RFC 3339 / W3C date-time into seconds since the epoch: `YYYY-MM-DDTHH:MM:SS`
/// with optional fractional seconds (dropped) and a zone of `Z` or `±HH:MM`; `t`, `z` and a
/// space for `T` are accepted. A bare date `YYYY-MM-DD` means its midnight UTC.
pub fn parse_rfc3339(input: &str) -> Option<i64> {
    let s = input.trim();
    if s.len() == 10 {
        return Some(Date::parse(s)?.days_since_epoch() * 86_400);
    }
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let date = Date::parse(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let b = rest.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let hour = two_digits(&rest[0..2])?;
    let minute = two_digits(&rest[3..5])?;
    let second = two_digits(&rest[6..8])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut zone = &rest[8..];
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = &fraction[digits..];
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zb = zone.as_bytes();
            if zb.len() != 6 || zb[3] != b':' {
                return None;
            }
            let (h, m) = (two_digits(&zone[1..3])?, two_digits(&zone[4..6])?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds = hour * 3600 + minute * 60 + second.min(59);
    Some(date.days_since_epoch() * 86_400 + seconds - offset)
}

fn two_digits(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 2 && b.iter().all(u8::is_ascii_digit) {
        Some(i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'))
    } else {
        None
    }
}

/// A calendar date in the proleptic Gregorian calendar, written `YYYY-MM-DD`.
///
/// Dates order chronologically and (de)serialise as their `YYYY-MM-DD` text.
///
/// ```
/// use guildhall_plugin::time::Date;
///
/// let d = Date::parse("2024-02-29").unwrap();
/// assert_eq!(d.add_days(1).to_string(), "2024-03-01");
/// assert!(Date::parse("2023-02-29").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// The date, if it exists (years 1 to 9999).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Date { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i32> {
            let part = &b[r];
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(part.iter().fold(0, |n, d| n * 10 + i32::from(d - b'0')))
        };
        let month = u8::try_from(digits(5..7)?).ok()?;
        let day = u8::try_from(digits(8..10)?).ok()?;
        Date::new(digits(0..4)?, month, day)
    }

    /// Today in UTC, from the wall clock.
    pub fn today() -> Date {
        Date::from_days_since_epoch(now_unix().div_euclid(86_400))
    }

    /// Today in the United Kingdom (GMT, or BST from 01:00 UTC on the last Sunday of March
    /// to 01:00 UTC on the last Sunday of October), from the wall clock: the date residents
    /// mean by "today".
    pub fn today_in_uk() -> Date {
        Date::uk_date_at(now_unix())
    }

    /// The UK's calendar date at `unix` seconds since the epoch.
    pub fn uk_date_at(unix: i64) -> Date {
        let utc = Date::from_days_since_epoch(unix.div_euclid(86_400));
        let switch = |month: u8| {
            // The last Sunday of the month, at 01:00 UTC (1970-01-01 was a Thursday).
            let last = Date::new(utc.year, month, 31).map_or(0, |d| d.days_since_epoch());
            let sunday = last - (last + 4).rem_euclid(7);
            sunday * 86_400 + 3_600
        };
        let summer = (switch(3)..switch(10)).contains(&unix);
        let local = if summer { unix + 3_600 } else { unix };
        Date::from_days_since_epoch(local.div_euclid(86_400))
    }

    /// The date `days` days after 1970-01-01 (negative for before).
    pub fn from_days_since_epoch(days: i64) -> Date {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Days since 1970-01-01 (negative for before).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` later (earlier when negative).
    pub fn add_days(&self, days: i64) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() + days)
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The day of the week's name in English, e.g. `Friday`.
    pub fn weekday_name(&self) -> &'static str {
        // 1970-01-01 was a Thursday.
        const NAMES: [&str; 7] = [
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
        ];
        NAMES[self.days_since_epoch().rem_euclid(7) as usize]
    }

    /// The month's name in English, e.g. `May`.
    pub fn month_name(&self) -> &'static str {
        MONTHS[usize::from(self.month) - 1]
    }

    /// The date as GOV.UK writes it: `1 May 2026` (no leading zero, no ordinal).
    pub fn to_govuk(&self) -> String {
        format!("{} {} {}", self.day, self.month_name(), self.year)
    }

    /// The date with its weekday, as GOV.UK writes it: `Friday 1 May 2026`.
    pub fn to_govuk_with_weekday(&self) -> String {
        format!("{} {}", self.weekday_name(), self.to_govuk())
    }
}

/// The months' names in English, January first.
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl From<Date> for String {
    fn from(date: Date) -> String {
        date.to_string()
    }
}

impl TryFrom<String> for Date {
    type Error = String;

    fn try_from(s: String) -> Result<Date, String> {
        Date::parse(&s).ok_or_else(|| format!("{s:?} is not a date in the form YYYY-MM-DD"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_round_trips() {
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        for days in [-719_162, -1, 0, 1, 59, 60, 365, 10_957, 19_782, 2_932_896] {
            let d = Date::from_days_since_epoch(days);
            assert_eq!(d.days_since_epoch(), days, "{d}");
            assert_eq!(Date::parse(&d.to_string()), Some(d));
        }
        assert_eq!(
            Date::parse("2000-03-01").unwrap().days_since_epoch(),
            11_017
        );
    }

    #[test]
    fn validates_dates() {
        assert!(Date::parse("2024-02-29").is_some());
        assert!(Date::parse("2100-02-29").is_none());
        assert!(Date::parse("2000-02-29").is_some());
        assert!(Date::parse("2026-13-01").is_none());
        assert!(Date::parse("2026-04-31").is_none());
        assert!(Date::parse("2026-4-1").is_none());
        assert!(Date::parse("2026-04-01T00").is_none());
        assert!(Date::parse("+026-04-01").is_none());
        assert!(Date::parse("0000-01-01").is_none());
    }

    #[test]
    fn dates_order_and_serialise() {
        let a = Date::parse("2026-01-31").unwrap();
        let b = Date::parse("2026-02-01").unwrap();
        assert!(a < b);
        assert_eq!(a.add_days(1), b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"2026-01-31\"");
        assert_eq!(serde_json::from_str::<Date>("\"2026-02-01\"").unwrap(), b);
        assert!(serde_json::from_str::<Date>("\"2026-02-30\"").is_err());
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_777_627_800), "2026-05-01T09:30:00Z");
        assert_eq!(parse_rfc3339("2026-05-01T09:30:00Z"), Some(1_777_627_800));
        assert_eq!(
            parse_rfc3339("2026-05-01T10:30:00+01:00"),
            Some(1_777_627_800)
        );
        assert_eq!(
            parse_rfc3339("2026-05-01T01:30:00.123-08:00"),
            Some(1_777_627_800)
        );
        assert_eq!(parse_rfc3339("2026-05-01 09:30:00z"), Some(1_777_627_800));
        assert_eq!(parse_rfc3339("2026-05-01"), Some(1_777_593_600));
        assert_eq!(parse_rfc3339(" 1970-01-01T00:00:00Z "), Some(0));
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for bad in [
            "",
            "2026-05-01T09:30Z",
            "2026-05-01T09:30:00",
            "2026-05-01T24:00:00Z",
            "2026-05-01T09:30:00+0100",
            "2026-05-01T09:30:00.Z",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "2026-05-01T09:30:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn govuk_dates() {
        let d = Date::parse("2026-05-01").unwrap();
        assert_eq!(d.to_govuk(), "1 May 2026");
        assert_eq!(d.to_govuk_with_weekday(), "Friday 1 May 2026");
        assert_eq!(
            Date::parse("1970-01-01").unwrap().weekday_name(),
            "Thursday"
        );
        assert_eq!(
            Date::parse("1969-12-28").unwrap().to_govuk_with_weekday(),
            "Sunday 28 December 1969"
        );
        assert_eq!(
            Date::parse("2024-02-29").unwrap().to_govuk_with_weekday(),
            "Thursday 29 February 2024"
        );
    }

    #[test]
    fn now_is_after_2025() {
        assert!(now_unix() > 1_735_689_600);
        assert!(Date::today() > Date::parse("2025-01-01").unwrap());
    }
}

#[cfg(test)]
mod uk_tests {
    use super::*;

    fn at(rfc3339: &str) -> i64 {
        parse_rfc3339(rfc3339).expect("a timestamp")
    }

    #[test]
    fn uk_dates_follow_british_summer_time() {
        // BST 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            Date::uk_date_at(at("2026-07-01T23:30:00Z")),
            Date::new(2026, 7, 2).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-07-01T22:59:59Z")),
            Date::new(2026, 7, 1).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-01-15T23:30:00Z")),
            Date::new(2026, 1, 15).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-03-29T00:59:59Z")),
            Date::new(2026, 3, 29).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-03-28T23:30:00Z")),
            Date::new(2026, 3, 28).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-10-24T23:30:00Z")),
            Date::new(2026, 10, 25).unwrap()
        );
        assert_eq!(
            Date::uk_date_at(at("2026-10-25T23:30:00Z")),
            Date::new(2026, 10, 25).unwrap()
        );
    }
}
