//! The period the usage pages ask about: the GOV.UK date form that reads it (with the
//! API's rules, [`report::period`]), how it is written for people and in links, and the
//! buckets (days, months or years) it is charted in.

use std::collections::BTreeSet;

use guildhall_telemetry::report::{self, Basis, Period};
use serde::Serialize;
use time::Date;
use time::macros::format_description;

use crate::pages::FormError;

/// One date of the period form, as the GOV.UK date input shows it.
#[derive(Debug, Default, Serialize)]
pub(super) struct DateField {
    pub(super) day: String,
    pub(super) month: String,
    pub(super) year: String,
    /// The message beside the field.
    pub(super) error: Option<String>,
    /// Which of `day`, `month` and `year` to mark as in error.
    pub(super) bad: Vec<&'static str>,
}

impl DateField {
    fn show(&mut self, date: &str) {
        if let Some((year, month, day)) = split_date(date) {
            self.year = year.to_string();
            self.month = month.trim_start_matches('0').to_string();
            self.day = day.trim_start_matches('0').to_string();
        }
    }

    fn fail(&mut self, text: &str, bad: &[&'static str]) {
        self.error = Some(text.to_string());
        self.bad = bad.to_vec();
    }
}

fn split_date(date: &str) -> Option<(&str, &str, &str)> {
    let mut parts = date.splitn(3, '-');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// What the period form was sent, and the period (and basis) it asks for.
#[derive(Debug)]
pub(super) struct Asked {
    pub(super) from: DateField,
    pub(super) to: DateField,
    pub(super) basis: Basis,
    pub(super) errors: Vec<FormError>,
    pub(super) period: Option<Period>,
}

pub(super) fn value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

const PARTS: [&str; 3] = ["day", "month", "year"];

/// Reads one date, `from` or `to`: from the form's day, month and year fields when any is
/// filled in, else from `name=YYYY-MM-DD`. `Ok(None)` when absent (the API's default).
fn read_date(
    query: &[(String, String)],
    name: &'static str,
    said: &str,
    field: &mut DateField,
) -> Result<Option<String>, FormError> {
    let given: Vec<Option<&str>> = PARTS
        .iter()
        .map(|p| value(query, &format!("{name}-{p}")))
        .collect();
    if given.iter().all(Option::is_none) {
        return match value(query, name) {
            Some(raw) => {
                field.show(raw);
                Ok(Some(raw.to_string()))
            }
            None => Ok(None),
        };
    }
    field.day = given[0].unwrap_or_default().to_string();
    field.month = given[1].unwrap_or_default().to_string();
    field.year = given[2].unwrap_or_default().to_string();
    let missing: Vec<&'static str> = PARTS
        .iter()
        .zip(&given)
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| *p)
        .collect();
    let fail = |field: &mut DateField, text: String, bad: &[&'static str]| {
        field.fail(&text, bad);
        Err(FormError::at(format!("{name}-{}", bad[0]), text))
    };
    if !missing.is_empty() {
        let text = format!("{said} must include a {}", missing.join(" and "));
        return fail(field, text, &missing);
    }
    let number = |text: &str, most: usize| {
        (text.len() <= most && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u16>().ok())
            .flatten()
    };
    let year = field.year.clone();
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return fail(field, "Year must include 4 numbers".to_string(), &["year"]);
    }
    let day = number(&field.day, 2).filter(|d| (1..=31).contains(d));
    let month = number(&field.month, 2).filter(|m| (1..=12).contains(m));
    let real = format!("{said} must be a real date");
    let (day, month) = match (day, month) {
        (Some(d), Some(m)) => (d, m),
        (None, Some(_)) => return fail(field, real, &["day"]),
        (Some(_), None) => return fail(field, real, &["month"]),
        (None, None) => return fail(field, real, &["day", "month"]),
    };
    let year: i32 = year.parse().unwrap_or_default();
    let exists = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .and_then(|m| Date::from_calendar_date(year, m, u8::try_from(day).ok()?).ok())
        .is_some();
    if year < 1 || !exists {
        return fail(field, real, &["day", "month", "year"]);
    }
    Ok(Some(format!("{year:04}-{month:02}-{day:02}")))
}

/// Reads the period form (and, for the usage report, the basis of the shares) with the
/// API's rules: [`report::period`] decides, and its refusals are said the GOV.UK way.
pub(super) fn ask(query: &[(String, String)], with_basis: bool) -> Asked {
    let mut asked = Asked {
        from: DateField::default(),
        to: DateField::default(),
        basis: Basis::default(),
        errors: Vec::new(),
        period: None,
    };
    let from = read_date(query, "from", "Start date", &mut asked.from);
    let to = read_date(query, "to", "End date", &mut asked.to);
    if with_basis {
        match value(query, "basis").map(str::parse::<Basis>).transpose() {
            Ok(basis) => asked.basis = basis.unwrap_or_default(),
            Err(_) => asked.errors.push(FormError::at(
                "basis",
                "Select whether shares are of CPU time or of calls",
            )),
        }
    }
    let (from, to) = match (from, to) {
        (Ok(from), Ok(to)) => (from, to),
        (from, to) => {
            let mut errors: Vec<FormError> = [from.err(), to.err()].into_iter().flatten().collect();
            errors.append(&mut asked.errors);
            asked.errors = errors;
            return asked;
        }
    };
    if !asked.errors.is_empty() {
        return asked;
    }
    match report::period(from.as_deref(), to.as_deref()) {
        Ok(period) => {
            asked.from.show(&period.from);
            asked.to.show(&period.to);
            asked.period = Some(period);
        }
        Err(refusal) => {
            let (is_from, text) = if refusal.starts_with("from (") {
                (
                    true,
                    "Start date must be the same as or before the end date",
                )
            } else if refusal.starts_with("to (") {
                (
                    true,
                    "Enter a start date: the end date is too early for the usual 30 days",
                )
            } else if refusal.starts_with("from") {
                (
                    true,
                    "Start date must be a real date from 1 January 0001 to 31 December 9999",
                )
            } else {
                (
                    false,
                    "End date must be a real date from 1 January 0001 to 31 December 9999",
                )
            };
            let (field, id) = if is_from {
                (&mut asked.from, "from-day")
            } else {
                (&mut asked.to, "to-day")
            };
            field.fail(text, &PARTS);
            asked.errors.push(FormError::at(id, text));
        }
    }
    asked
}

pub(super) fn query_of(raw: Option<String>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default()
}

/// `1 November 2026`.
pub(super) fn long_date(day: &str) -> String {
    let ymd = format_description!("[year]-[month]-[day]");
    let long = format_description!("[day padding:none] [month repr:long] [year]");
    Date::parse(day, &ymd)
        .ok()
        .and_then(|d| d.format(&long).ok())
        .unwrap_or_else(|| day.to_string())
}

pub(super) fn period_text(period: &Period) -> String {
    if period.from == period.to {
        format!("on {}", long_date(&period.from))
    } else {
        format!(
            "from {} to {}",
            long_date(&period.from),
            long_date(&period.to)
        )
    }
}

/// The query string that asks for `period` again.
pub(super) fn period_query(period: &Period) -> String {
    format!("from={}&to={}", period.from, period.to)
}

/// How finely a period is charted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Grain {
    Day,
    Month,
    Year,
}

impl Grain {
    pub(super) fn per(self) -> &'static str {
        match self {
            Grain::Day => "per day",
            Grain::Month => "per month",
            Grain::Year => "per year",
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Grain::Day => "Day",
            Grain::Month => "Month",
            Grain::Year => "Year",
        }
    }

    /// The part of a `YYYY-MM-DD` day that names its bucket.
    pub(super) fn key(self, day: &str) -> &str {
        let len = match self {
            Grain::Day => 10,
            Grain::Month => 7,
            Grain::Year => 4,
        };
        day.get(..len).unwrap_or(day)
    }
}

/// The most buckets a chart shows.
const MAX_BUCKETS: usize = 120;

/// The buckets a period is charted in, `(key, label)`: days up to 62 days, months up to 62
/// months, else years (only those between the first and last day with data when the
/// period is longer than [`MAX_BUCKETS`] years). `None` when there are still too many.
pub(super) fn buckets(
    period: &Period,
    days_with_data: &BTreeSet<&str>,
) -> Option<(Grain, Vec<(String, String)>)> {
    let ymd = format_description!("[year]-[month]-[day]");
    let from = Date::parse(&period.from, &ymd).ok()?;
    let to = Date::parse(&period.to, &ymd).ok()?;
    let days = (to - from).whole_days() + 1;
    if days <= 62 {
        let mut out = Vec::new();
        let mut day = Some(from);
        while let Some(d) = day.filter(|d| *d <= to) {
            let key = d.format(&ymd).ok()?;
            out.push((key.clone(), long_date(&key)));
            day = d.next_day();
        }
        return Some((Grain::Day, out));
    }
    let months = (to.year() - from.year()) * 12 + i32::from(u8::from(to.month()))
        - i32::from(u8::from(from.month()))
        + 1;
    if months <= 62 {
        let mut out = Vec::new();
        let (mut year, mut month) = (from.year(), from.month());
        for _ in 0..months {
            out.push((
                format!("{year:04}-{:02}", u8::from(month)),
                format!("{month} {year}"),
            ));
            if month == time::Month::December {
                year += 1;
            }
            month = month.next();
        }
        return Some((Grain::Month, out));
    }
    let (mut first, mut last) = (from.year(), to.year());
    if usize::try_from(last - first + 1).ok()? > MAX_BUCKETS {
        let years: Vec<i32> = days_with_data
            .iter()
            .filter_map(|d| d.get(..4)?.parse().ok())
            .collect();
        first = *years.iter().min()?;
        last = *years.iter().max()?;
        if usize::try_from(last - first + 1).ok()? > MAX_BUCKETS {
            return None;
        }
    }
    Some((
        Grain::Year,
        (first..=last)
            .map(|y| (format!("{y:04}"), format!("{y}")))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::usage::test_support::*;

    #[test]
    fn the_period_form_reads_day_month_and_year() {
        let asked = ask(
            &q(&[
                ("from-day", "1"),
                ("from-month", "11"),
                ("from-year", "2026"),
                ("to-day", "30"),
                ("to-month", "11"),
                ("to-year", "2026"),
                ("basis", "calls"),
            ]),
            true,
        );
        let period = asked.period.unwrap();
        assert_eq!(
            (period.from.as_str(), period.to.as_str()),
            ("2026-11-01", "2026-11-30")
        );
        assert_eq!(asked.basis, Basis::Calls);
        assert!(asked.errors.is_empty());

        let asked = ask(&q(&[("from", "2026-11-01"), ("to", "2026-11-30")]), true);
        assert_eq!(asked.period.unwrap().from, "2026-11-01");
        assert_eq!(
            (asked.from.day.as_str(), asked.from.month.as_str()),
            ("1", "11")
        );

        let asked = ask(&q(&[("to", "2026-11-30")]), false);
        assert_eq!(
            asked.period.unwrap().from,
            "2026-11-01",
            "30 days by default"
        );
        assert_eq!(asked.from.year, "2026", "the default is shown in the form");
        assert!(ask(&[], false).period.is_some());
    }

    #[test]
    fn bad_dates_are_named_the_govuk_way() {
        let errors = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            ask(&q(pairs), true)
                .errors
                .into_iter()
                .map(|e| (e.field.unwrap_or_default(), e.text))
                .collect()
        };
        assert_eq!(
            errors(&[("from-day", "1"), ("from-year", "2026")]),
            [(
                "from-month".into(),
                "Start date must include a month".into()
            )]
        );
        assert_eq!(
            errors(&[("to-year", "2026")]),
            [(
                "to-day".into(),
                "End date must include a day and month".into()
            )]
        );
        assert_eq!(
            errors(&[
                ("from-day", "31"),
                ("from-month", "2"),
                ("from-year", "2026")
            ]),
            [("from-day".into(), "Start date must be a real date".into())]
        );
        assert_eq!(
            errors(&[
                ("from-day", "x"),
                ("from-month", "2"),
                ("from-year", "2026")
            ]),
            [("from-day".into(), "Start date must be a real date".into())]
        );
        assert_eq!(
            errors(&[
                ("from-day", "1"),
                ("from-month", "13"),
                ("from-year", "2026")
            ]),
            [("from-month".into(), "Start date must be a real date".into())]
        );
        assert_eq!(
            errors(&[("from-day", "1"), ("from-month", "1"), ("from-year", "26")]),
            [("from-year".into(), "Year must include 4 numbers".into())]
        );
        assert_eq!(
            errors(&[
                ("from-day", "1"),
                ("from-month", "1"),
                ("from-year", "0000")
            ]),
            [("from-day".into(), "Start date must be a real date".into())]
        );
        assert_eq!(
            errors(&[("from", "2026-12-01"), ("to", "2026-11-01")]),
            [(
                "from-day".into(),
                "Start date must be the same as or before the end date".into()
            )]
        );
        assert_eq!(errors(&[("to", "0001-01-05")])[0].0, "from-day");
        assert_eq!(errors(&[("from", "+10000-01-01")])[0].0, "from-day");
        assert_eq!(errors(&[("to", "yesterday")])[0].0, "to-day");
        assert_eq!(errors(&[("basis", "bytes")])[0].0, "basis");
        let asked = ask(&q(&[("from-day", "1"), ("from-year", "2026")]), true);
        assert_eq!(asked.from.bad, ["month"]);
        assert_eq!(asked.from.day, "1", "what was typed is kept");
    }

    #[test]
    fn periods_are_charted_by_day_month_or_year() {
        let none = BTreeSet::new();
        let p = |from: &str, to: &str| report::period(Some(from), Some(to)).unwrap();
        let (grain, b) = buckets(&p("2026-11-01", "2026-11-30"), &none).unwrap();
        assert_eq!((grain, b.len()), (Grain::Day, 30));
        assert_eq!(
            b[0],
            ("2026-11-01".to_string(), "1 November 2026".to_string())
        );
        let (grain, b) = buckets(&p("2026-11-01", "2026-11-01"), &none).unwrap();
        assert_eq!((grain, b.len()), (Grain::Day, 1));
        let (grain, b) = buckets(&p("2025-11-15", "2026-02-01"), &none).unwrap();
        assert_eq!(grain, Grain::Month);
        assert_eq!(
            b.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(b[1].1, "December 2025");
        let (grain, b) = buckets(&p("2000-01-01", "2026-12-31"), &none).unwrap();
        assert_eq!((grain, b.len()), (Grain::Year, 27));
        let wide = p("0001-01-01", "9999-12-31");
        assert!(buckets(&wide, &none).is_none());
        let data = BTreeSet::from(["2025-03-01", "2026-11-02"]);
        let (grain, b) = buckets(&wide, &data).unwrap();
        assert_eq!((grain, b.len()), (Grain::Year, 2));
        let far = BTreeSet::from(["0001-03-01", "9999-11-02"]);
        assert!(buckets(&wide, &far).is_none());
        assert_eq!(Grain::Month.key("2026-11-02"), "2026-11");
    }
}
