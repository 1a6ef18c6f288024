//! The performance page: per service, the KPIs the API reports per council, added up over
//! councils, with its calls charted over the period.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use guildhall_store::{TenantScope, UsageRow};
use guildhall_telemetry::report::{self, Kpi, Period};
use minijinja::context;
use serde::Serialize;

use super::period::{Asked, ask, buckets, period_query, period_text, query_of};
use super::{
    CouncilName, INSTALLS, KPIS, USAGE, availability, availability_text, bad_period, chart_count,
    council, council_names, count, open, pounds, satisfaction_text,
};
use crate::Console;
use crate::act;
use crate::charts::{Chart, Kind};
use crate::render::{PageError, page};
use crate::session::SignedIn;

#[derive(Debug, Serialize)]
struct Row {
    key: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct TimeRow {
    label: String,
    calls: String,
    errors: String,
    availability: String,
}

#[derive(Debug, Serialize)]
struct KpiRow {
    council: CouncilName,
    calls: String,
    errors: String,
    availability: String,
    satisfaction: String,
    ratings: String,
    cost: String,
}

#[derive(Debug, Serialize)]
struct ServiceView {
    plugin: String,
    /// Whether it has calls or ratings in the period.
    active: bool,
    summary: Vec<Row>,
    /// The chart of calls over the period, as SVG; absent without calls.
    chart: Option<String>,
    /// Why there is no chart although there are calls.
    no_chart: Option<&'static str>,
    per: &'static str,
    grain: &'static str,
    over_time: Vec<TimeRow>,
    councils: Vec<KpiRow>,
}

/// One service's figures: the API's KPIs per council, added up over councils, and its
/// calls over time.
struct ServiceFigures<'a> {
    plugin: &'a str,
    kpis: Vec<&'a Kpi>,
    usage: Vec<&'a UsageRow>,
}

impl ServiceFigures<'_> {
    fn view(&self, names: &BTreeMap<String, String>, period: &Period, price: f64) -> ServiceView {
        let (mut calls, mut errors, mut ratings, mut rated, mut cpu) =
            (0i64, 0i64, 0i64, 0f64, 0f64);
        for k in &self.kpis {
            calls = calls.saturating_add(k.calls);
            errors = errors.saturating_add(k.errors);
            ratings = ratings.saturating_add(k.ratings);
            rated += k.satisfaction.unwrap_or_default() * k.ratings as f64;
            cpu += k.cpu_seconds;
        }
        let satisfaction = (ratings > 0).then(|| rated / ratings as f64);
        let summary = vec![
            Row {
                key: "Calls".into(),
                value: count(calls),
            },
            Row {
                key: "Calls that failed".into(),
                value: count(errors),
            },
            Row {
                key: "Availability".into(),
                value: availability_text(availability(calls, errors)),
            },
            Row {
                key: "Satisfaction".into(),
                value: match satisfaction {
                    Some(_) => format!(
                        "{} from {} {}",
                        satisfaction_text(satisfaction),
                        count(ratings),
                        if ratings == 1 { "rating" } else { "ratings" }
                    ),
                    None => "No ratings".into(),
                },
            },
            Row {
                key: "Cost per call".into(),
                value: if calls > 0 {
                    pounds(cpu * price / calls as f64)
                } else {
                    "No calls".into()
                },
            },
        ];
        let councils = self
            .kpis
            .iter()
            .map(|k| KpiRow {
                council: council(names, &k.council),
                calls: count(k.calls),
                errors: count(k.errors),
                availability: availability_text(k.availability),
                satisfaction: satisfaction_text(k.satisfaction),
                ratings: count(k.ratings),
                cost: k
                    .cost_per_transaction_gbp
                    .map_or_else(|| "No calls".to_string(), pounds),
            })
            .collect();
        let mut view = ServiceView {
            plugin: self.plugin.to_string(),
            active: !self.kpis.is_empty(),
            summary,
            chart: None,
            no_chart: None,
            per: "",
            grain: "",
            over_time: Vec::new(),
            councils,
        };
        if calls == 0 {
            return view;
        }
        let days: BTreeSet<&str> = self.usage.iter().map(|r| r.day.as_str()).collect();
        let Some((grain, buckets)) = buckets(period, &days) else {
            view.no_chart = Some(
                "The period is too long to show calls over time. Choose a shorter period to see them.",
            );
            return view;
        };
        let mut per_bucket: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for r in &self.usage {
            let entry = per_bucket.entry(grain.key(&r.day)).or_default();
            entry.0 = entry.0.saturating_add(r.counts.calls);
            entry.1 = entry.1.saturating_add(r.counts.errors);
        }
        let points: Vec<(String, f64)> = buckets
            .iter()
            .map(|(key, label)| {
                let (calls, _) = per_bucket.get(key.as_str()).copied().unwrap_or_default();
                (label.clone(), calls as f64)
            })
            .collect();
        view.over_time = buckets
            .iter()
            .map(|(key, label)| {
                let (calls, errors) = per_bucket.get(key.as_str()).copied().unwrap_or_default();
                TimeRow {
                    label: label.clone(),
                    calls: count(calls),
                    errors: count(errors),
                    availability: availability_text(availability(calls, errors)),
                }
            })
            .collect();
        let title = format!("Calls to {} {}", self.plugin, grain.per());
        view.chart = Some(
            Chart {
                id: &format!("calls-{}", self.plugin),
                title: &title,
                x_label: grain.name(),
                y_label: "Calls",
                kind: Kind::Bars,
                points: &points,
                format: chart_count,
                y_max: None,
                whole: true,
            }
            .svg(),
        );
        view.per = grain.per();
        view.grain = grain.name();
        view
    }
}

/// The KPIs of `GET /api/v1/tenants/{tenant}/kpis`, from the same store reads and the same
/// computation, with the usage rows they were computed from.
pub(super) async fn kpi_report(
    console: &Console,
    scope: &TenantScope,
    period: &Period,
) -> Result<(report::Kpis, Vec<UsageRow>), PageError> {
    let usage = console
        .app
        .store
        .usage(scope)
        .rows(&period.from, &period.to)
        .await?;
    let ratings = console
        .app
        .store
        .feedback(scope)
        .summary(&period.from, &period.to)
        .await?;
    let kpis = report::kpis(
        scope.tenant().as_str(),
        period.clone(),
        console.app.telemetry.price_per_cpu_second,
        &usage,
        &ratings,
    );
    Ok((kpis, usage))
}

/// What the performance page shows once the period is known.
pub(super) struct KpiFigures {
    kpis: report::Kpis,
    usage: Vec<UsageRow>,
    /// The installed services, for those who may see them.
    installed: BTreeSet<String>,
    names: BTreeMap<String, String>,
    price: f64,
}

/// The performance page's data: the form as sent, and the figures when the period is good.
pub(super) fn kpis_data(
    tenant: &str,
    asked: Asked,
    may_usage: bool,
    figures: Option<KpiFigures>,
) -> minijinja::Value {
    let form = context! {
        tenant => tenant,
        from => asked.from,
        to => asked.to,
        errors => asked.errors,
        may_usage => may_usage,
    };
    let Some(KpiFigures {
        kpis,
        usage,
        installed,
        names,
        price,
    }) = figures
    else {
        return form;
    };
    let period = &kpis.period;
    let mut plugins = installed;
    plugins.extend(kpis.services.iter().map(|k| k.plugin.clone()));
    let services: Vec<ServiceView> = plugins
        .iter()
        .map(|plugin| {
            ServiceFigures {
                plugin,
                kpis: kpis
                    .services
                    .iter()
                    .filter(|k| k.plugin == *plugin)
                    .collect(),
                usage: usage.iter().filter(|r| r.plugin == *plugin).collect(),
            }
            .view(&names, period, price)
        })
        .collect();
    context! {
        period => period_text(period),
        period_query => period_query(period),
        services => services,
        price => pounds(price),
        ..form
    }
}

/// `GET /console/t/{tenant}/kpis?from&to`: per service, the KPIs the API reports per
/// council (calls, availability, satisfaction and ratings, cost per call), added up over
/// councils, with its calls charted over the period. Mirrors
/// `GET /api/v1/tenants/{tenant}/kpis`.
pub async fn kpis(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (scope, chrome) = open(&console, &who, KPIS, &tenant, "Performance", "kpis").await?;
    let asked = ask(&query_of(raw), false);
    let tenant = scope.tenant().to_string();
    let may_usage = act::may(&console, &who, Method::GET, USAGE, Some(scope.tenant()));
    let Some(period) = asked.period.clone() else {
        let data = kpis_data(&tenant, asked, may_usage, None);
        return Ok(bad_period(chrome, "kpis.html", data));
    };
    let (kpis, usage) = kpi_report(&console, &scope, &period).await?;
    // Installed services are listed even without calls, for those who may see installs.
    let installed = if act::may(&console, &who, Method::GET, INSTALLS, Some(scope.tenant())) {
        console
            .app
            .store
            .installs(&scope)
            .list()
            .await?
            .into_iter()
            .map(|i| i.plugin.to_string())
            .collect()
    } else {
        BTreeSet::new()
    };
    let figures = KpiFigures {
        kpis,
        usage,
        installed,
        names: council_names(&console, &who, &scope).await?,
        price: console.app.telemetry.price_per_cpu_second,
    };
    let data = kpis_data(&tenant, asked, may_usage, Some(figures));
    Ok(page(StatusCode::OK, "kpis.html", &chrome, data))
}

#[cfg(test)]
mod tests {
    use guildhall_store::RatingSummary;

    use super::*;
    use crate::pages::usage::test_support::*;

    #[test]
    fn a_service_view_adds_councils_up_and_charts_calls() {
        let period = report::period(Some("2026-11-01"), Some("2026-11-03")).unwrap();
        let row = |day: &str, council: &str, calls: i64| UsageRow {
            day: day.into(),
            council: council.into(),
            plugin: "bins".into(),
            counts: guildhall_domain::metering::UsageCounts {
                calls,
                errors: 1,
                cpu_us: 2_000_000,
                ..Default::default()
            },
        };
        let usage = vec![
            row("2026-11-01", "leeds", 4),
            row("2026-11-01", "york", 6),
            row("2026-11-03", "york", 10),
        ];
        let ratings = vec![RatingSummary {
            council: "leeds".into(),
            plugin: "bins".into(),
            ratings: 2,
            total: 9,
        }];
        let kpis = report::kpis("t", period.clone(), 0.5, &usage, &ratings);
        let figures = ServiceFigures {
            plugin: "bins",
            kpis: kpis.services.iter().collect(),
            usage: usage.iter().collect(),
        };
        let view = figures.view(&BTreeMap::new(), &period, 0.5);
        let summary: Vec<(&str, &str)> = view
            .summary
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("Calls", "20"),
                ("Calls that failed", "3"),
                ("Availability", "85.0%"),
                ("Satisfaction", "4.5 out of 5 from 2 ratings"),
                ("Cost per call", "£0.15"),
            ]
        );
        assert_eq!(view.councils.len(), 2);
        assert_eq!(view.councils[0].availability, "75.0%");
        assert_eq!(view.over_time.len(), 3);
        assert_eq!(view.over_time[1].calls, "0");
        assert_eq!(view.over_time[1].availability, "No calls");
        assert_eq!(view.over_time[2].calls, "10");
        let chart = view.chart.unwrap();
        assert!(chart.contains("Calls to bins per day, 3 values from 1 November 2026 to 3 November 2026: highest 10 (1 November 2026)"), "{chart}");

        let empty = ServiceFigures {
            plugin: "new",
            kpis: Vec::new(),
            usage: Vec::new(),
        }
        .view(&BTreeMap::new(), &period, 0.5);
        assert!(!empty.active);
        assert!(empty.chart.is_none());
    }
    #[test]
    fn the_performance_page_charts_each_service_and_lists_idle_ones() {
        let asked = november();
        let period = asked.period.clone().unwrap();
        let usage = vec![
            row("2026-11-02", "leeds", "bins", 7, 1),
            row("2026-11-05", "york", "bins", 3, 0),
        ];
        let ratings = vec![RatingSummary {
            council: "york".into(),
            plugin: "<b>pay</b>".into(),
            ratings: 1,
            total: 2,
        }];
        let kpis = report::kpis("north-downs", period, 0.0001, &usage, &ratings);
        let figures = KpiFigures {
            kpis,
            usage,
            installed: BTreeSet::from(["bins".to_string(), "idle".to_string()]),
            names: BTreeMap::new(),
            price: 0.0001,
        };
        let html = render(
            "kpis.html",
            "Performance",
            kpis_data("north-downs", asked, false, Some(figures)),
        );
        assert_clean(&html);
        assert!(!html.contains("<b>pay</b>"));
        assert!(html.contains("&lt;b&gt;pay&lt;/b&gt;"));
        assert!(html.contains(
            "href=\"/console/t/north-downs/feedback?from=2026-11-01&amp;to=2026-11-30\""
        ));
        assert!(!html.contains("/usage?"));
        assert_eq!(
            html.matches("role=\"img\"").count(),
            1,
            "one chart: only bins has calls"
        );
        assert!(html.contains("aria-labelledby=\"calls-bins-title calls-bins-desc\""));
        assert!(html.contains("<title id=\"calls-bins-title\">Calls to bins per day</title>"));
        assert!(
            html.contains(
                "Calls to bins per day from 1 November 2026 to 30 November 2026</caption>"
            )
        );
        assert!(
            html.contains("bins by council from 1 November 2026 to 30 November 2026</caption>")
        );
        assert!(
            html.contains(">idle</h2>"),
            "an installed service without calls is listed"
        );
        assert!(html.contains("No calls or ratings from 1 November 2026 to 30 November 2026."));
        assert!(
            html.contains("2.0 out of 5 from 1 rating<"),
            "one rating, singular"
        );

        let none = KpiFigures {
            kpis: report::kpis("north-downs", november().period.unwrap(), 0.0001, &[], &[]),
            usage: Vec::new(),
            installed: BTreeSet::new(),
            names: BTreeMap::new(),
            price: 0.0001,
        };
        let html = render(
            "kpis.html",
            "Performance",
            kpis_data("north-downs", november(), true, Some(none)),
        );
        assert!(
            html.contains(
                "This alliance has no services with calls or ratings from 1 November 2026"
            )
        );
        assert!(html.contains("/usage?from=2026-11-01"));
    }
}
