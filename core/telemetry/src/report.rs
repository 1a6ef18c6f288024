//! The usage report (cost apportionment) and the KPIs, computed from stored figures.
//! Both the API and `guildhall usage report` use these, so they cannot disagree.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use guildhall_store::{RatingSummary, UsageRow};
use serde::{Deserialize, Serialize};
use time::macros::format_description;

/// What a council's share of the alliance's total is a share of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Plugin CPU time: what the platform spends running the council's calls.
    #[default]
    Cpu,
    /// Calls.
    Calls,
}

impl std::str::FromStr for Basis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Basis::Cpu),
            "calls" => Ok(Basis::Calls),
            other => Err(format!("basis must be cpu or calls, not {other:?}")),
        }
    }
}

/// An inclusive period of UTC days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
}

/// The period asked for: `to` defaults to today (UTC) and `from` to 29 days before
/// `to`, a 30-day window.
///
/// Days are exactly `YYYY-MM-DD` with a four-digit year from 0001: the `time` crate also
/// reads signed and longer years (`-0001-01-01`, `+10000-01-01`), which would sort wrongly
/// against the stored day strings and can overflow when the window is computed.
pub fn period(from: Option<&str>, to: Option<&str>) -> Result<Period, String> {
    let format = format_description!("[year]-[month]-[day]");
    let parse = |name: &str, value: &str| {
        let shape = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let date = time::Date::parse(value, &format)
            .ok()
            .filter(|d| d.year() >= 1);
        match date {
            Some(date) if shape => Ok(date),
            _ => Err(format!(
                "{name} must be a date written YYYY-MM-DD, from 0001-01-01 to 9999-12-31, not {:?}",
                value.chars().take(40).collect::<String>()
            )),
        }
    };
    let to = match to {
        Some(value) => parse("to", value)?,
        None => time::OffsetDateTime::now_utc().date(),
    };
    let from = match from {
        Some(value) => parse("from", value)?,
        None => to
            .checked_sub(time::Duration::days(29))
            .filter(|d| d.year() >= 1)
            .ok_or_else(|| {
                format!("to ({to}) leaves no room for the default 30-day window; give from")
            })?,
    };
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    let show = |d: time::Date| d.format(&format).unwrap_or_default();
    Ok(Period {
        from: show(from),
        to: show(to),
    })
}

/// One row of the usage report: one council, plugin and day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageLine {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Council id.
    pub council: String,
    /// Plugin name.
    pub plugin: String,
    /// Calls.
    pub calls: i64,
    /// Calls that failed on the platform's or the plugin's side (429 or 5xx).
    pub errors: i64,
    /// Wall time, milliseconds.
    pub wall_ms: f64,
    /// Time the plugin's code ran, milliseconds.
    pub cpu_ms: f64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response body bytes.
    pub bytes_out: i64,
    /// Bytes the council's calls wrote to the plugin's key-value store.
    pub kv_bytes: i64,
    /// This row's fraction of the alliance's total over the report (by `basis`); the
    /// rows' shares add up to 1.
    pub share: f64,
}

/// The usage report for one tenant and period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// Tenant id.
    pub tenant: String,
    /// The days covered.
    pub period: Period,
    /// What shares are shares of.
    pub basis: Basis,
    /// One row per day, council and plugin with calls, ordered that way.
    pub rows: Vec<UsageLine>,
}

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// Builds the report from stored rows.
pub fn usage_report(
    tenant: &str,
    period: Period,
    basis: Basis,
    rows: Vec<UsageRow>,
) -> UsageReport {
    let weight = |r: &UsageRow, basis: Basis| match basis {
        Basis::Cpu => r.counts.cpu_us as f64,
        Basis::Calls => r.counts.calls as f64,
    };
    let mut basis_used = basis;
    let mut total: f64 = rows.iter().map(|r| weight(r, basis)).sum();
    // With no CPU time recorded at all (only refused calls), calls are the fair basis.
    if total == 0.0 && basis == Basis::Cpu {
        basis_used = Basis::Calls;
        total = rows.iter().map(|r| weight(r, Basis::Calls)).sum();
    }
    let lines = rows
        .into_iter()
        .map(|r| UsageLine {
            share: if total > 0.0 {
                weight(&r, basis_used) / total
            } else {
                0.0
            },
            day: r.day,
            council: r.council,
            plugin: r.plugin,
            calls: r.counts.calls,
            errors: r.counts.errors,
            wall_ms: ms(r.counts.wall_us),
            cpu_ms: ms(r.counts.cpu_us),
            bytes_in: r.counts.bytes_in,
            bytes_out: r.counts.bytes_out,
            kv_bytes: r.counts.kv_bytes,
        })
        .collect();
    UsageReport {
        tenant: tenant.to_string(),
        period,
        basis: basis_used,
        rows: lines,
    }
}

/// The report as CSV with a header line.
pub fn usage_csv(report: &UsageReport) -> String {
    let mut out = String::from(
        "day,council,plugin,calls,errors,wall_ms,cpu_ms,bytes_in,bytes_out,kv_bytes,share\n",
    );
    for r in &report.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{},{},{},{:.6}",
            r.day,
            r.council,
            r.plugin,
            r.calls,
            r.errors,
            r.wall_ms,
            r.cpu_ms,
            r.bytes_in,
            r.bytes_out,
            r.kv_bytes,
            r.share
        );
    }
    out
}

/// One service's KPIs for one council over the period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Kpi {
    /// Plugin name.
    pub plugin: String,
    /// Council id.
    pub council: String,
    /// Calls (volume).
    pub calls: i64,
    /// Calls that failed on the platform's or the plugin's side (429 or 5xx).
    pub errors: i64,
    /// Share of calls without a platform or plugin error; absent without calls.
    pub availability: Option<f64>,
    /// Mean citizen rating (1 to 5); absent without ratings.
    pub satisfaction: Option<f64>,
    /// How many ratings.
    pub ratings: i64,
    /// Plugin CPU time, seconds.
    pub cpu_seconds: f64,
    /// CPU seconds × price per CPU second ÷ calls, in pounds; absent without calls.
    pub cost_per_transaction_gbp: Option<f64>,
}

/// KPIs per service and council for one tenant and period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Kpis {
    /// Tenant id.
    pub tenant: String,
    /// The days covered.
    pub period: Period,
    /// The configured price of one CPU second, in pounds.
    pub price_per_cpu_second_gbp: f64,
    /// One entry per plugin and council with calls or ratings, ordered that way.
    pub services: Vec<Kpi>,
}

/// Computes the KPIs from usage rows and ratings of one period.
pub fn kpis(
    tenant: &str,
    period: Period,
    price_per_cpu_second: f64,
    usage: &[UsageRow],
    ratings: &[RatingSummary],
) -> Kpis {
    #[derive(Default)]
    struct Acc {
        calls: i64,
        errors: i64,
        cpu_us: i64,
        ratings: i64,
        total: i64,
    }
    let mut by: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for r in usage {
        let a = by.entry((r.plugin.clone(), r.council.clone())).or_default();
        a.calls += r.counts.calls;
        a.errors += r.counts.errors;
        a.cpu_us += r.counts.cpu_us;
    }
    for r in ratings {
        let a = by.entry((r.plugin.clone(), r.council.clone())).or_default();
        a.ratings += r.ratings;
        a.total += r.total;
    }
    let services = by
        .into_iter()
        .map(|((plugin, council), a)| {
            let cpu_seconds = a.cpu_us as f64 / 1e6;
            Kpi {
                plugin,
                council,
                calls: a.calls,
                errors: a.errors,
                availability: (a.calls > 0).then(|| (a.calls - a.errors) as f64 / a.calls as f64),
                satisfaction: (a.ratings > 0).then(|| a.total as f64 / a.ratings as f64),
                ratings: a.ratings,
                cpu_seconds,
                cost_per_transaction_gbp: (a.calls > 0)
                    .then(|| cpu_seconds * price_per_cpu_second / a.calls as f64),
            }
        })
        .collect();
    Kpis {
        tenant: tenant.to_string(),
        period,
        price_per_cpu_second_gbp: price_per_cpu_second,
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guildhall_domain::metering::UsageCounts;

    fn row(day: &str, council: &str, calls: i64, cpu_us: i64) -> UsageRow {
        UsageRow {
            day: day.into(),
            council: council.into(),
            plugin: "hello".into(),
            counts: UsageCounts {
                calls,
                errors: 1,
                wall_us: 1500,
                cpu_us,
                bytes_in: 10,
                bytes_out: 20,
                kv_bytes: 0,
            },
        }
    }

    fn p() -> Period {
        period(Some("2026-11-01"), Some("2026-11-30")).unwrap()
    }

    #[test]
    fn shares_add_up_to_one_by_either_basis() {
        let rows = vec![
            row("2026-11-27", "a", 3, 300),
            row("2026-11-27", "b", 1, 100),
        ];
        let r = usage_report("t", p(), Basis::Cpu, rows.clone());
        assert_eq!(r.rows[0].share, 0.75);
        assert!((r.rows.iter().map(|l| l.share).sum::<f64>() - 1.0).abs() < 1e-12);
        let r = usage_report("t", p(), Basis::Calls, rows);
        assert_eq!(r.rows[1].share, 0.25);
        let csv = usage_csv(&r);
        assert!(csv.starts_with("day,council,plugin,calls,errors,wall_ms,cpu_ms"));
        assert!(
            csv.contains("2026-11-27,b,hello,1,1,1.500,0.100,10,20,0,0.250000"),
            "{csv}"
        );
    }

    #[test]
    fn without_cpu_time_shares_fall_back_to_calls() {
        let r = usage_report(
            "t",
            p(),
            Basis::Cpu,
            vec![row("d", "a", 1, 0), row("d", "b", 3, 0)],
        );
        assert_eq!(r.basis, Basis::Calls);
        assert_eq!(r.rows[1].share, 0.75);
    }

    #[test]
    fn periods_default_to_thirty_days_and_reject_nonsense() {
        let d = period(None, Some("2026-11-30")).unwrap();
        assert_eq!(d.from, "2026-11-01");
        assert!(
            period(Some("2026-11-31"), None)
                .unwrap_err()
                .contains("from")
        );
        assert!(
            period(Some("2026-12-01"), Some("2026-11-01"))
                .unwrap_err()
                .contains("after")
        );
    }

    #[test]
    fn out_of_range_and_oddly_written_days_are_refused_by_name() {
        for (from, to, named) in [
            (Some("-0001-01-01"), Some("2026-01-01"), "from"),
            (Some("+10000-01-01"), None, "from"),
            (Some("2026-01-01"), Some("99999-01-01"), "to"),
            (Some("0000-01-01"), Some("2026-01-01"), "from"),
            (None, Some("0001-01-05"), "to"),
            (Some("2026-1-01"), None, "from"),
            (Some("２０２６-01-01"), None, "from"),
            (None, Some("2026-01-01T00:00:00Z"), "to"),
            (None, Some(""), "to"),
        ] {
            let err = period(from, to).unwrap_err();
            assert!(err.starts_with(named), "{from:?} {to:?}: {err}");
        }
        let wide = period(Some("0001-01-01"), Some("9999-12-31")).unwrap();
        assert_eq!(
            (wide.from.as_str(), wide.to.as_str()),
            ("0001-01-01", "9999-12-31")
        );
    }

    #[test]
    fn kpis_per_service_and_council() {
        let usage = vec![row("d", "a", 4, 2_000_000)];
        let ratings = vec![
            RatingSummary {
                council: "a".into(),
                plugin: "hello".into(),
                ratings: 2,
                total: 9,
            },
            RatingSummary {
                council: "b".into(),
                plugin: "hello".into(),
                ratings: 1,
                total: 3,
            },
        ];
        let k = kpis("t", p(), 0.5, &usage, &ratings);
        assert_eq!(k.services.len(), 2);
        let a = &k.services[0];
        assert_eq!(a.availability, Some(0.75));
        assert_eq!(a.satisfaction, Some(4.5));
        assert_eq!(a.cost_per_transaction_gbp, Some(0.25));
        let b = &k.services[1];
        assert_eq!(
            (b.calls, b.availability, b.satisfaction),
            (0, None, Some(3.0))
        );
    }
}
