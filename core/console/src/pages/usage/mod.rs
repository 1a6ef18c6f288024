//! An alliance's usage per council (with each council's share, and as CSV), its services'
//! performance (KPIs, charted as SVG on the server) and citizens' feedback (ratings, and
//! for those who may read them, comments).
//!
//! The figures are the API's, from the same code: the period rules
//! ([`report::period`]), the same store reads, [`report::usage_report`] and
//! [`report::kpis`] with the configured price per CPU second; comments from the store read
//! of `GET /api/v1/tenants/{tenant}/feedback`. The console only adds figures up (per
//! council, per service, per day) and writes them for people.
//!
//! This module holds the routes, the templates, and what the pages share: numbers as
//! people read them and the councils' names. The pages are in [`report`] (the usage page),
//! [`csv`] (its CSV), [`kpis`] (performance) and [`feedback`]; the period form they all
//! ask, and the buckets a period is charted in, are in [`period`].
//!
//! [`report::period`]: guildhall_telemetry::report::period
//! [`report::usage_report`]: guildhall_telemetry::report::usage_report
//! [`report::kpis`]: guildhall_telemetry::report::kpis

mod csv;
mod feedback;
mod kpis;
mod period;
mod report;

use std::collections::BTreeMap;

use axum::Router;
use axum::http::Method;
use axum::routing::get;
use guildhall_store::TenantScope;
use serde::Serialize;

use crate::Console;
use crate::act;
use crate::charts;
use crate::render::{Chrome, PageError, page};
use crate::session::SignedIn;

pub use csv::usage_csv;
pub use feedback::feedback;
pub use kpis::kpis;
pub use report::usage;

const USAGE: &str = "/api/v1/tenants/{tenant}/usage";
const KPIS: &str = "/api/v1/tenants/{tenant}/kpis";
const TENANT: &str = "/api/v1/tenants/{tenant}";
const INSTALLS: &str = "/api/v1/tenants/{tenant}/installs";

/// The opening of every period page: the decision of the API route it mirrors, then the
/// chrome with `title` in the alliance's `section`.
async fn open(
    console: &Console,
    who: &SignedIn,
    route: &'static str,
    tenant: &str,
    title: &str,
    section: &'static str,
) -> Result<(TenantScope, Chrome), PageError> {
    let scope = act::read_tenant(console, who, route, tenant).await?;
    let chrome = act::chrome(
        console,
        who,
        title,
        Some(scope.tenant()),
        act::Section::Tenant(section),
    );
    Ok((scope, chrome))
}

/// A period page whose dates could not be read: its form with the error summary, 400.
fn bad_period(
    mut chrome: Chrome,
    template: &str,
    data: minijinja::Value,
) -> axum::response::Response {
    chrome.has_errors = true;
    page(axum::http::StatusCode::BAD_REQUEST, template, &chrome, data)
}

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = crate::render::templates![
    "usage_macros.html",
    "usage.html",
    "kpis.html",
    "feedback.html",
];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/t/{tenant}/usage", get(usage))
        .route("/t/{tenant}/usage.csv", get(usage_csv))
        .route("/t/{tenant}/kpis", get(kpis))
        .route("/t/{tenant}/feedback", get(feedback))
}

/// A count with thousands separated: `1,234,567`.
fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let grouped = charts::thousands(&digits);
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// `value` with `places` decimals and thousands separated: `1,234.567`.
fn decimal(value: f64, places: usize) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let text = format!("{:.*}", places, value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::new();
    if value < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        out.push('-');
    }
    out.push_str(&charts::thousands(whole));
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// Pounds: `£1,234.57`, and amounts under a penny to two significant figures
/// (`£0.0000042`), since the cost of one call usually is.
fn pounds(value: f64) -> String {
    let value = if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    };
    if value == 0.0 || value >= 0.01 {
        return format!("£{}", decimal(value, 2));
    }
    let places = ((-value.log10()).ceil() as usize + 1).min(12);
    let text = format!("{value:.places$}");
    let text = text.trim_end_matches('0');
    if text.bytes().all(|b| matches!(b, b'0' | b'.')) {
        "less than £0.000000000001".to_string()
    } else {
        format!("£{text}")
    }
}

/// A fraction as a percentage to one decimal: `75.0%`.
fn percent(fraction: f64) -> String {
    let value = if fraction.is_finite() {
        fraction * 100.0
    } else {
        0.0
    };
    if value > 0.0 && value < 0.05 {
        "less than 0.1%".to_string()
    } else {
        format!("{}%", decimal(value, 1))
    }
}

fn chart_count(value: f64) -> String {
    charts::grouped(value)
}

fn chart_rating(value: f64) -> String {
    format!("{value:.1}")
}

fn satisfaction_text(satisfaction: Option<f64>) -> String {
    satisfaction.map_or_else(
        || "No ratings".to_string(),
        |s| format!("{} out of 5", decimal(s, 1)),
    )
}

fn availability_text(availability: Option<f64>) -> String {
    availability.map_or_else(|| "No calls".to_string(), percent)
}

/// Share of calls without a platform or plugin error, as [`report::kpis`] defines it.
fn availability(calls: i64, errors: i64) -> Option<f64> {
    (calls > 0).then(|| (calls as f64 - errors as f64) / calls as f64)
}

/// The councils' names, when the signed-in person may read the alliance (as
/// `GET /api/v1/tenants/{tenant}` would show them).
async fn council_names(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
) -> Result<BTreeMap<String, String>, PageError> {
    if !act::may(console, who, Method::GET, TENANT, Some(scope.tenant())) {
        return Ok(BTreeMap::new());
    }
    Ok(console
        .app
        .store
        .tenants()
        .get(scope)
        .await?
        .map(|t| {
            t.councils
                .into_iter()
                .map(|c| (c.id.to_string(), c.name))
                .collect()
        })
        .unwrap_or_default())
}

#[derive(Debug, Serialize)]
struct CouncilName {
    id: String,
    name: Option<String>,
}

fn council(names: &BTreeMap<String, String>, id: &str) -> CouncilName {
    CouncilName {
        id: id.to_string(),
        name: names.get(id).cloned(),
    }
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::usage::feedback::feedback_data;
    use crate::pages::usage::kpis::kpis_data;
    use crate::pages::usage::period::ask;
    use crate::pages::usage::report::usage_data;
    use crate::pages::usage::test_support::*;

    #[test]
    fn numbers_are_written_for_people() {
        assert_eq!(count(0), "0");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(count(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(decimal(1234567.891, 2), "1,234,567.89");
        assert_eq!(decimal(-0.0001, 2), "0.00");
        assert_eq!(decimal(f64::NAN, 1), "0.0");
        assert_eq!(pounds(1234.5), "£1,234.50");
        assert_eq!(pounds(0.0), "£0.00");
        assert_eq!(pounds(0.0000042), "£0.0000042");
        assert_eq!(pounds(0.004), "£0.004");
        assert_eq!(pounds(1e-20), "less than £0.000000000001");
        let huge = pounds(1e300);
        assert!(
            huge.starts_with("£1,000,000,000,000,000,") && huge.ends_with(".00"),
            "{huge}"
        );
        assert_eq!(percent(0.75), "75.0%");
        assert_eq!(percent(0.0001), "less than 0.1%");
        assert_eq!(percent(0.0), "0.0%");
    }
    #[test]
    fn a_bad_period_shows_the_error_summary_and_marks_the_field() {
        let asked = ask(
            &q(&[("from-day", "1"), ("from-year", "2026"), ("basis", "bytes")]),
            true,
        );
        let html = render(
            "usage.html",
            "Usage",
            usage_data("north-downs", asked, true, None),
        );
        assert_clean(&html);
        assert!(html.contains("<h2 class=\"govuk-error-summary__title\">There is a problem</h2>"));
        assert!(html.contains("<a href=\"#from-month\">Start date must include a month</a>"));
        assert!(
            html.contains(
                "<a href=\"#basis\">Select whether shares are of CPU time or of calls</a>"
            )
        );
        assert!(html.contains("id=\"from-error\" class=\"govuk-error-message\""));
        assert!(html.contains("govuk-input--width-2 govuk-input--error\" id=\"from-month\""));
        assert!(html.contains("govuk-input--width-2\" id=\"from-day\" name=\"from-day\" type=\"text\" inputmode=\"numeric\" value=\"1\""));
        assert!(!html.contains("Download as CSV"));
        for template in ["kpis.html", "feedback.html"] {
            let asked = ask(&q(&[("to", "2026-02-30")]), false);
            let data = if template == "kpis.html" {
                kpis_data("north-downs", asked, true, None)
            } else {
                feedback_data("north-downs", asked, None, None)
            };
            let html = render(template, "Performance", data);
            assert!(
                html.contains("<a href=\"#to-day\">End date must be a real date"),
                "{template}"
            );
            assert!(!html.contains("<table"), "{template}");
        }
    }
}
