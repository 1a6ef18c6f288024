//! The usage page: each council's calls, errors, CPU time, cost and share of the
//! alliance's total over a period.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use guildhall_store::TenantScope;
use guildhall_telemetry::report::{self, Basis, Period, UsageReport};
use minijinja::context;
use serde::Serialize;

use super::period::{Asked, ask, period_query, period_text, query_of};
use super::{
    CouncilName, KPIS, USAGE, bad_period, council, council_names, count, decimal, open, percent,
    pounds,
};
use crate::Console;
use crate::act;
use crate::pages::error_for;
use crate::render::{PageError, page};
use crate::session::SignedIn;

/// One council's usage over the period.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CouncilUsage {
    pub(super) council: String,
    pub(super) calls: i64,
    pub(super) errors: i64,
    pub(super) cpu_seconds: f64,
    /// Fraction of the alliance's total, by the report's basis.
    pub(super) share: f64,
}

impl CouncilUsage {
    fn add(&mut self, calls: i64, errors: i64, cpu_ms: f64, share: f64) {
        self.calls = self.calls.saturating_add(calls);
        self.errors = self.errors.saturating_add(errors);
        self.cpu_seconds += cpu_ms / 1000.0;
        self.share += share;
    }
}

/// The report's rows added up per council (every council named in `councils`, with or
/// without usage, then any other council with usage), and the alliance's total.
pub(super) fn by_council(
    report: &UsageReport,
    councils: &BTreeSet<String>,
) -> (Vec<CouncilUsage>, CouncilUsage) {
    let mut by: BTreeMap<&str, CouncilUsage> = councils
        .iter()
        .map(|c| {
            (
                c.as_str(),
                CouncilUsage {
                    council: c.clone(),
                    ..CouncilUsage::default()
                },
            )
        })
        .collect();
    let mut total = CouncilUsage {
        council: "Total".to_string(),
        ..CouncilUsage::default()
    };
    for line in &report.rows {
        by.entry(line.council.as_str())
            .or_insert_with(|| CouncilUsage {
                council: line.council.clone(),
                ..CouncilUsage::default()
            })
            .add(line.calls, line.errors, line.cpu_ms, line.share);
        total.add(line.calls, line.errors, line.cpu_ms, line.share);
    }
    (by.into_values().collect(), total)
}

#[derive(Debug, Serialize)]
struct UsageView {
    council: CouncilName,
    calls: String,
    errors: String,
    cpu: String,
    cost: String,
    share: String,
}

fn usage_view(u: &CouncilUsage, names: &BTreeMap<String, String>, price: f64) -> UsageView {
    UsageView {
        council: council(names, &u.council),
        calls: count(u.calls),
        errors: count(u.errors),
        cpu: decimal(u.cpu_seconds, 3),
        cost: pounds(u.cpu_seconds * price),
        share: percent(u.share),
    }
}

/// The usage report of `GET /api/v1/tenants/{tenant}/usage`, from the same store read and
/// the same computation.
pub(super) async fn usage_report(
    console: &Console,
    scope: &TenantScope,
    period: Period,
    basis: Basis,
) -> Result<UsageReport, PageError> {
    let rows = console
        .app
        .store
        .usage(scope)
        .rows(&period.from, &period.to)
        .await?;
    Ok(report::usage_report(
        scope.tenant().as_str(),
        period,
        basis,
        rows,
    ))
}

/// What the usage page shows once the period is known.
pub(super) struct UsageFigures {
    report: UsageReport,
    names: BTreeMap<String, String>,
    price: f64,
}

fn basis_value(basis: Basis) -> &'static str {
    match basis {
        Basis::Cpu => "cpu",
        Basis::Calls => "calls",
    }
}

/// The usage page's data: the form as sent, and the figures when the period is good.
pub(super) fn usage_data(
    tenant: &str,
    asked: Asked,
    may_kpis: bool,
    figures: Option<UsageFigures>,
) -> minijinja::Value {
    let basis_items: Vec<_> = [
        (Basis::Cpu, "CPU time", "What the platform spends running each council’s calls."),
        (Basis::Calls, "Calls", "How many calls each council’s residents made."),
    ]
    .into_iter()
    .map(|(b, text, hint)| {
        context! { value => basis_value(b), text => text, hint => hint, checked => b == asked.basis }
    })
    .collect();
    let form = context! {
        tenant => tenant,
        from => asked.from,
        to => asked.to,
        basis_items => basis_items,
        basis_error => error_for(&asked.errors, "basis"),
        errors => asked.errors,
        may_kpis => may_kpis,
    };
    let Some(UsageFigures {
        report,
        names,
        price,
    }) = figures
    else {
        return form;
    };
    let period = &report.period;
    let (councils, total) = by_council(&report, &names.keys().cloned().collect());
    let rows: Vec<UsageView> = councils
        .iter()
        .map(|c| usage_view(c, &names, price))
        .collect();
    let basis_text = match (asked.basis, report.basis) {
        (Basis::Cpu, Basis::Calls) => {
            "No CPU time was recorded in this period, so each council’s share is its share of calls."
        }
        (_, Basis::Cpu) => {
            "Each council’s share is its share of the CPU time the alliance’s services used."
        }
        (_, Basis::Calls) => "Each council’s share is its share of the alliance’s calls.",
    };
    context! {
        period => period_text(period),
        period_query => period_query(period),
        rows => rows,
        total => usage_view(&total, &BTreeMap::new(), price),
        any_usage => !report.rows.is_empty(),
        basis_text => basis_text,
        price => pounds(price),
        csv_href => format!(
            "{}/t/{tenant}/usage.csv?{}&basis={}",
            crate::PREFIX,
            period_query(period),
            basis_value(asked.basis)
        ),
        ..form
    }
}

/// `GET /console/t/{tenant}/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&basis=cpu|calls`: each
/// council's calls, errors, CPU time, cost and share of the alliance's total. Mirrors
/// `GET /api/v1/tenants/{tenant}/usage`.
pub async fn usage(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (scope, chrome) = open(&console, &who, USAGE, &tenant, "Usage", "usage").await?;
    let asked = ask(&query_of(raw), true);
    let tenant = scope.tenant().to_string();
    let may_kpis = act::may(&console, &who, Method::GET, KPIS, Some(scope.tenant()));
    let Some(period) = asked.period.clone() else {
        let data = usage_data(&tenant, asked, may_kpis, None);
        return Ok(bad_period(chrome, "usage.html", data));
    };
    let figures = UsageFigures {
        names: council_names(&console, &who, &scope).await?,
        report: usage_report(&console, &scope, period, asked.basis).await?,
        price: console.app.telemetry.price_per_cpu_second,
    };
    let data = usage_data(&tenant, asked, may_kpis, Some(figures));
    Ok(page(StatusCode::OK, "usage.html", &chrome, data))
}

#[cfg(test)]
mod tests {
    use guildhall_store::UsageRow;

    use super::*;
    use crate::pages::usage::test_support::*;

    #[test]
    fn usage_adds_up_per_council_with_every_member_listed() {
        let period = report::period(Some("2026-11-01"), Some("2026-11-30")).unwrap();
        let row = |day: &str, council: &str, calls: i64, cpu_us: i64| UsageRow {
            day: day.into(),
            council: council.into(),
            plugin: "bins".into(),
            counts: guildhall_domain::metering::UsageCounts {
                calls,
                errors: 1,
                cpu_us,
                ..Default::default()
            },
        };
        let report = report::usage_report(
            "t",
            period,
            Basis::Cpu,
            vec![
                row("2026-11-01", "leeds", 2, 1_000_000),
                row("2026-11-02", "leeds", i64::MAX, 1_000_000),
                row("2026-11-02", "gone", 1, 2_000_000),
            ],
        );
        let members = BTreeSet::from(["leeds".to_string(), "york".to_string()]);
        let (councils, total) = by_council(&report, &members);
        let ids: Vec<&str> = councils.iter().map(|c| c.council.as_str()).collect();
        assert_eq!(ids, ["gone", "leeds", "york"]);
        assert_eq!(councils[1].calls, i64::MAX, "huge counts saturate");
        assert_eq!(councils[1].cpu_seconds, 2.0);
        assert_eq!(councils[1].share, 0.5);
        assert_eq!(
            councils[2],
            CouncilUsage {
                council: "york".into(),
                ..Default::default()
            }
        );
        assert_eq!(total.share, 1.0);
        assert_eq!(total.cpu_seconds, 4.0);
        assert_eq!(total.errors, 3);
        let view = usage_view(&councils[1], &BTreeMap::new(), 0.5);
        assert_eq!(view.calls, "9,223,372,036,854,775,807");
        assert_eq!(
            (view.cpu.as_str(), view.cost.as_str(), view.share.as_str()),
            ("2.000", "£1.00", "50.0%")
        );
    }
    #[test]
    fn the_usage_page_shows_councils_totals_and_the_csv_link() {
        let asked = november();
        let period = asked.period.clone().unwrap();
        let rows = vec![
            row("2026-11-02", "leeds", "bins", 1_000_000_000_000, 5),
            row("2026-11-03", "york", "bins", 3, 0),
        ];
        let names = BTreeMap::from([
            ("leeds".to_string(), "<script>alert(1)</script>".to_string()),
            ("york".to_string(), "City of York".to_string()),
            ("hull".to_string(), "Hull".to_string()),
        ]);
        let figures = UsageFigures {
            report: report::usage_report("north-downs", period, Basis::Cpu, rows),
            names,
            price: 0.0001,
        };
        let html = render(
            "usage.html",
            "Usage",
            usage_data("north-downs", asked, true, Some(figures)),
        );
        assert_clean(&html);
        assert!(html.contains("<h1 class=\"govuk-heading-l\">Usage</h1>"));
        assert!(
            html.contains("Usage by council from 1 November 2026 to 30 November 2026</caption>")
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            html.contains(">1,000,000,000,000<"),
            "huge counts are grouped"
        );
        assert!(
            html.contains(">Hull <span"),
            "councils without usage are listed"
        );
        assert!(html.contains("<th scope=\"row\" class=\"govuk-table__header\">Total</th>"));
        assert!(html.contains(">1,000,000,000,003<"));
        assert!(html.contains(">100.0%<"));
        assert!(html.contains(
            "<a class=\"govuk-link\" href=\"/console/t/north-downs/usage.csv?from=2026-11-01&amp;to=2026-11-30&amp;basis=cpu\">Download as CSV</a>"
        ));
        assert!(
            html.contains("href=\"/console/t/north-downs/kpis?from=2026-11-01&amp;to=2026-11-30\"")
        );
        assert!(html.contains(
            "id=\"from-day\" name=\"from-day\" type=\"text\" inputmode=\"numeric\" value=\"1\""
        ));
        assert!(html.contains(
            "id=\"to-year\" name=\"to-year\" type=\"text\" inputmode=\"numeric\" value=\"2026\""
        ));

        let empty = UsageFigures {
            report: report::usage_report(
                "north-downs",
                november().period.unwrap(),
                Basis::Cpu,
                Vec::new(),
            ),
            names: BTreeMap::new(),
            price: 0.0001,
        };
        let html = render(
            "usage.html",
            "Usage",
            usage_data("north-downs", november(), false, Some(empty)),
        );
        assert!(html.contains("No calls were recorded from 1 November 2026 to 30 November 2026."));
        assert!(
            !html.contains("<table"),
            "no table without councils or usage"
        );
        assert!(html.contains("Download as CSV"));
        assert!(
            !html.contains("/kpis?"),
            "no link to a page the person may not read"
        );
    }
}
