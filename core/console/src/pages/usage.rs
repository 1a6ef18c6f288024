//! An alliance's usage per council (with each council's share, and as CSV), its services'
//! performance (KPIs, charted as SVG on the server) and citizens' feedback (ratings, and
//! for those who may read them, comments).
//!
//! The figures are the API's, from the same code: the period rules
//! ([`report::period`]), the same store reads, [`report::usage_report`] and
//! [`report::kpis`] with the configured price per CPU second; comments from the store read
//! of `GET /api/v1/tenants/{tenant}/feedback`. The console only adds figures up (per
//! council, per service, per day) and writes them for people.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use guildhall_store::{CommentCursor, CommentPage, TenantScope, UsageRow};
use guildhall_telemetry::report::{self, Basis, Kpi, Period, UsageReport};
use minijinja::context;
use serde::Serialize;
use time::Date;
use time::macros::format_description;

use crate::Console;
use crate::act::{self, Section};
use crate::charts::{self, Chart, Kind};
use crate::pages::{FormError, error_for};
use crate::render::{PageError, page};
use crate::session::SignedIn;

const USAGE: &str = "/api/v1/tenants/{tenant}/usage";
const KPIS: &str = "/api/v1/tenants/{tenant}/kpis";
const TENANT: &str = "/api/v1/tenants/{tenant}";
const INSTALLS: &str = "/api/v1/tenants/{tenant}/installs";
const FEEDBACK: &str = "/api/v1/tenants/{tenant}/feedback";

/// Comments on one page of the feedback page.
const COMMENTS_PAGE: u64 = 20;

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

// ---------------------------------------------------------------------------------------
// The period form.

/// One date of the period form, as the GOV.UK date input shows it.
#[derive(Debug, Default, Serialize)]
struct DateField {
    day: String,
    month: String,
    year: String,
    /// The message beside the field.
    error: Option<String>,
    /// Which of `day`, `month` and `year` to mark as in error.
    bad: Vec<&'static str>,
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
struct Asked {
    from: DateField,
    to: DateField,
    basis: Basis,
    errors: Vec<FormError>,
    period: Option<Period>,
}

fn value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
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
fn ask(query: &[(String, String)], with_basis: bool) -> Asked {
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

fn query_of(raw: Option<String>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default()
}

/// `1 November 2026`.
fn long_date(day: &str) -> String {
    let ymd = format_description!("[year]-[month]-[day]");
    let long = format_description!("[day padding:none] [month repr:long] [year]");
    Date::parse(day, &ymd)
        .ok()
        .and_then(|d| d.format(&long).ok())
        .unwrap_or_else(|| day.to_string())
}

fn period_text(period: &Period) -> String {
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
fn period_query(period: &Period) -> String {
    format!("from={}&to={}", period.from, period.to)
}

// ---------------------------------------------------------------------------------------
// Numbers as people read them.

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

// ---------------------------------------------------------------------------------------
// Usage.

/// One council's usage over the period.
#[derive(Debug, Clone, Default, PartialEq)]
struct CouncilUsage {
    council: String,
    calls: i64,
    errors: i64,
    cpu_seconds: f64,
    /// Fraction of the alliance's total, by the report's basis.
    share: f64,
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
fn by_council(
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
async fn usage_report(
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
struct UsageFigures {
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
fn usage_data(
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
    let scope = act::read(&console, &who, USAGE, Some(&tenant))
        .await?
        .ok_or_else(PageError::not_found)?;
    let asked = ask(&query_of(raw), true);
    let tenant = scope.tenant().to_string();
    let may_kpis = act::may(&console, &who, Method::GET, KPIS, Some(scope.tenant()));
    let mut chrome = act::chrome(
        &console,
        &who,
        "Usage",
        Some(scope.tenant()),
        Section::Tenant("usage"),
    );
    let Some(period) = asked.period.clone() else {
        chrome.has_errors = true;
        let data = usage_data(&tenant, asked, may_kpis, None);
        return Ok(page(StatusCode::BAD_REQUEST, "usage.html", &chrome, data));
    };
    let figures = UsageFigures {
        names: council_names(&console, &who, &scope).await?,
        report: usage_report(&console, &scope, period, asked.basis).await?,
        price: console.app.telemetry.price_per_cpu_second,
    };
    let data = usage_data(&tenant, asked, may_kpis, Some(figures));
    Ok(page(StatusCode::OK, "usage.html", &chrome, data))
}

/// A text cell of a CSV file: a cell that a spreadsheet would read as a formula (starting
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, then the cell is
/// quoted as RFC 4180 says when it holds a comma, a quote or a line break.
fn csv_text(text: &str) -> String {
    let mut cell = String::with_capacity(text.len() + 3);
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        cell.push('\'');
    }
    cell.push_str(text);
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// The usage per council as CSV: a header line, then one line per council, each ended by
/// CRLF. Numbers are plain (no separators, no units); text is neutralised and quoted.
fn usage_csv_text(
    councils: &[CouncilUsage],
    names: &BTreeMap<String, String>,
    price: f64,
) -> String {
    let mut out = String::from("council,name,calls,errors,cpu_seconds,cost_gbp,share_percent\r\n");
    for c in councils {
        let share = if c.share.is_finite() {
            c.share * 100.0
        } else {
            0.0
        };
        out.push_str(&format!(
            "{},{},{},{},{:.6},{:.6},{:.4}\r\n",
            csv_text(&c.council),
            csv_text(
                names
                    .get(&c.council)
                    .map(String::as_str)
                    .unwrap_or_default()
            ),
            c.calls,
            c.errors,
            c.cpu_seconds,
            c.cpu_seconds * price,
            share,
        ));
    }
    out
}

/// `GET /console/t/{tenant}/usage.csv?from&to&basis`: the usage page's rows (one per
/// council) as CSV. Mirrors `GET /api/v1/tenants/{tenant}/usage`.
pub async fn usage_csv(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let scope = act::read(&console, &who, USAGE, Some(&tenant))
        .await?
        .ok_or_else(PageError::not_found)?;
    let asked = ask(&query_of(raw), true);
    let Some(period) = asked.period else {
        let messages: Vec<String> = asked.errors.into_iter().map(|e| e.text).collect();
        return Err(PageError::bad_request(messages.join(". ")));
    };
    let price = console.app.telemetry.price_per_cpu_second;
    let names = council_names(&console, &who, &scope).await?;
    let report = usage_report(&console, &scope, period.clone(), asked.basis).await?;
    let (councils, _) = by_council(&report, &names.keys().cloned().collect());
    let body = usage_csv_text(&councils, &names, price);
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    // The tenant id and the days are checked already, so the name needs no escaping.
    let disposition = format!(
        "attachment; filename=\"usage-{}-{}-{}.csv\"",
        scope.tenant(),
        period.from,
        period.to
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// KPIs.

/// How finely a period is charted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    Day,
    Month,
    Year,
}

impl Grain {
    fn per(self) -> &'static str {
        match self {
            Grain::Day => "per day",
            Grain::Month => "per month",
            Grain::Year => "per year",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Grain::Day => "Day",
            Grain::Month => "Month",
            Grain::Year => "Year",
        }
    }

    /// The part of a `YYYY-MM-DD` day that names its bucket.
    fn key(self, day: &str) -> &str {
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
fn buckets(
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

fn satisfaction_text(satisfaction: Option<f64>) -> String {
    satisfaction.map_or_else(
        || "No ratings".to_string(),
        |s| format!("{} out of 5", decimal(s, 1)),
    )
}

fn availability_text(availability: Option<f64>) -> String {
    availability.map_or_else(|| "No calls".to_string(), percent)
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
async fn kpi_report(
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
struct KpiFigures {
    kpis: report::Kpis,
    usage: Vec<UsageRow>,
    /// The installed services, for those who may see them.
    installed: BTreeSet<String>,
    names: BTreeMap<String, String>,
    price: f64,
}

/// The performance page's data: the form as sent, and the figures when the period is good.
fn kpis_data(
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
    let scope = act::read(&console, &who, KPIS, Some(&tenant))
        .await?
        .ok_or_else(PageError::not_found)?;
    let asked = ask(&query_of(raw), false);
    let tenant = scope.tenant().to_string();
    let may_usage = act::may(&console, &who, Method::GET, USAGE, Some(scope.tenant()));
    let mut chrome = act::chrome(
        &console,
        &who,
        "Performance",
        Some(scope.tenant()),
        Section::Tenant("kpis"),
    );
    let Some(period) = asked.period.clone() else {
        chrome.has_errors = true;
        let data = kpis_data(&tenant, asked, may_usage, None);
        return Ok(page(StatusCode::BAD_REQUEST, "kpis.html", &chrome, data));
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

// ---------------------------------------------------------------------------------------
// Feedback.

#[derive(Debug, Serialize)]
struct RatingRow {
    plugin: String,
    council: CouncilName,
    ratings: String,
    satisfaction: String,
}

#[derive(Debug, Serialize)]
struct ServiceRating {
    plugin: String,
    ratings: String,
    satisfaction: String,
}

/// One citizen's comment as the feedback page shows it.
#[derive(Debug, Serialize)]
struct CommentView {
    date: String,
    plugin: String,
    council: CouncilName,
    rating: String,
    /// The comment's lines, each escaped when shown.
    lines: Vec<String>,
}

/// The comments section: a page of comments and the links to the pages either side.
#[derive(Debug, Serialize)]
struct CommentsView {
    rows: Vec<CommentView>,
    older: Option<String>,
    newer: Option<String>,
    /// Whether this is a later page (so an empty one says so, not "no comments").
    paged: bool,
}

fn comments_view(
    tenant: &str,
    period: &Period,
    names: &BTreeMap<String, String>,
    page: CommentPage,
    paged: bool,
) -> CommentsView {
    let href = |side: &str, id: &str| {
        format!(
            "/console/t/{tenant}/feedback?{}&{side}={id}#comments",
            period_query(period)
        )
    };
    CommentsView {
        older: page.older.as_deref().map(|id| href("before", id)),
        newer: page.newer.as_deref().map(|id| href("after", id)),
        rows: page
            .comments
            .into_iter()
            .map(|c| CommentView {
                date: long_date(&c.day),
                council: council(names, &c.council),
                rating: format!("{} out of 5", c.rating),
                lines: c.comment.lines().map(str::to_string).collect(),
                plugin: c.plugin,
            })
            .collect(),
        paged,
    }
}

/// The feedback page's data: the form as sent, and the ratings (with a page of comments,
/// for those who may read them) when the period is good.
fn feedback_data(
    tenant: &str,
    asked: Asked,
    figures: Option<(report::Kpis, BTreeMap<String, String>)>,
    comments: Option<(CommentPage, bool)>,
) -> minijinja::Value {
    let form =
        context! { tenant => tenant, from => asked.from, to => asked.to, errors => asked.errors };
    let Some((kpis, names)) = figures else {
        return form;
    };
    let period = &kpis.period;
    let comments = comments.map(|(page, paged)| comments_view(tenant, period, &names, page, paged));
    let rated: Vec<&Kpi> = kpis.services.iter().filter(|k| k.ratings > 0).collect();
    let rows: Vec<RatingRow> = rated
        .iter()
        .map(|k| RatingRow {
            plugin: k.plugin.clone(),
            council: council(&names, &k.council),
            ratings: count(k.ratings),
            satisfaction: satisfaction_text(k.satisfaction),
        })
        .collect();
    // Per service over all councils: the mean of every rating, weighted by how many.
    let mut per_service: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for k in &rated {
        let entry = per_service.entry(k.plugin.as_str()).or_default();
        entry.0 = entry.0.saturating_add(k.ratings);
        entry.1 += k.satisfaction.unwrap_or_default() * k.ratings as f64;
    }
    let means: Vec<(String, i64, f64)> = per_service
        .iter()
        .map(|(plugin, (n, sum))| ((*plugin).to_string(), *n, sum / *n as f64))
        .collect();
    let points: Vec<(String, f64)> = means
        .iter()
        .map(|(p, _, mean)| (p.clone(), *mean))
        .collect();
    let chart = (!points.is_empty()).then(|| {
        Chart {
            id: "satisfaction",
            title: "Mean rating by service, out of 5",
            x_label: "Service",
            y_label: "Mean rating",
            kind: Kind::Bars,
            points: &points,
            format: chart_rating,
            y_max: Some(5.0),
            whole: false,
        }
        .svg()
    });
    let services: Vec<ServiceRating> = means
        .iter()
        .map(|(plugin, n, mean)| ServiceRating {
            plugin: plugin.clone(),
            ratings: count(*n),
            satisfaction: satisfaction_text(Some(*mean)),
        })
        .collect();
    let (total, sum) = per_service
        .values()
        .fold((0i64, 0f64), |(n, s), (m, t)| (n.saturating_add(*m), s + t));
    context! {
        period => period_text(period),
        period_query => period_query(period),
        chart => chart,
        services => services,
        rows => rows,
        total => count(total),
        overall => satisfaction_text((total > 0).then(|| sum / total as f64)),
        comments => comments,
        ..form
    }
}

/// `GET /console/t/{tenant}/feedback?from&to[&before|after]`: citizens' ratings of the
/// alliance's services (how many, and their mean) per service and per council, and their
/// comments, newest first, a page at a time.
///
/// Mirrors `GET /api/v1/tenants/{tenant}/kpis`: satisfaction and ratings are figures that
/// route reports, from the same store read and computation, so whoever may read the KPIs
/// may read this page and nobody else. The comments are what
/// `GET /api/v1/tenants/{tenant}/feedback` reads, shown only to those that route allows
/// (`feedback:read`: comments may hold personal data). `before` and `after` are comment
/// ids; one that is not is ignored (the newest comments are shown).
pub async fn feedback(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let scope = act::read(&console, &who, KPIS, Some(&tenant))
        .await?
        .ok_or_else(PageError::not_found)?;
    let query = query_of(raw);
    let asked = ask(&query, false);
    let tenant = scope.tenant().to_string();
    let mut chrome = act::chrome(
        &console,
        &who,
        "Citizens’ feedback",
        Some(scope.tenant()),
        Section::Tenant("kpis"),
    );
    let Some(period) = asked.period.clone() else {
        chrome.has_errors = true;
        let data = feedback_data(&tenant, asked, None, None);
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "feedback.html",
            &chrome,
            data,
        ));
    };
    let (kpis, _) = kpi_report(&console, &scope, &period).await?;
    let names = council_names(&console, &who, &scope).await?;
    let comments = if act::may(&console, &who, Method::GET, FEEDBACK, Some(scope.tenant())) {
        let id = |name| value(&query, name).filter(|id| CommentCursor::is_id(id));
        let cursor = id("before")
            .map(CommentCursor::Before)
            .or_else(|| id("after").map(CommentCursor::After));
        let page = console
            .app
            .store
            .feedback(&scope)
            .comments(&period.from, &period.to, None, COMMENTS_PAGE, cursor)
            .await?;
        Some((page, cursor.is_some()))
    } else {
        None
    };
    let data = feedback_data(&tenant, asked, Some((kpis, names)), comments);
    Ok(page(StatusCode::OK, "feedback.html", &chrome, data))
}

#[cfg(test)]
mod tests {
    use guildhall_store::RatingSummary;

    use super::*;
    use crate::render::{Chrome, Views};

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_text("leeds"), "leeds");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("+1"), "'+1");
        assert_eq!(csv_text("-1"), "'-1");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("Leeds, City of"), "\"Leeds, City of\"");
        assert_eq!(csv_text("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("a=b"), "a=b");
        assert_eq!(csv_text(""), "");
    }

    #[test]
    fn the_csv_has_a_header_and_one_line_per_council() {
        let names = BTreeMap::from([
            ("leeds".to_string(), "=cmd|' /C calc'!A0".to_string()),
            ("york".to_string(), "York, City of".to_string()),
        ]);
        let councils = vec![
            CouncilUsage {
                council: "leeds".into(),
                calls: 3,
                errors: 1,
                cpu_seconds: 1.5,
                share: 0.75,
            },
            CouncilUsage {
                council: "york".into(),
                calls: i64::MAX,
                errors: 0,
                cpu_seconds: 0.5,
                share: 0.25,
            },
        ];
        let csv = usage_csv_text(&councils, &names, 0.0001);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "council,name,calls,errors,cpu_seconds,cost_gbp,share_percent"
        );
        assert_eq!(
            lines[1],
            "leeds,'=cmd|' /C calc'!A0,3,1,1.500000,0.000150,75.0000"
        );
        assert_eq!(
            lines[2],
            "york,\"York, City of\",9223372036854775807,0,0.500000,0.000050,25.0000"
        );
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
    }

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

    fn row(day: &str, council: &str, plugin: &str, calls: i64, errors: i64) -> UsageRow {
        UsageRow {
            day: day.into(),
            council: council.into(),
            plugin: plugin.into(),
            counts: guildhall_domain::metering::UsageCounts {
                calls,
                errors,
                cpu_us: 1_500_000,
                ..Default::default()
            },
        }
    }

    fn render(template: &str, title: &str, data: minijinja::Value) -> String {
        let mut chrome = Chrome::public(title);
        chrome.tenant = Some("north-downs".into());
        // Auto-escaping writes `/` as `&#x2f;`; the browser reads both alike.
        Views::new()
            .unwrap()
            .render(template, &chrome, data)
            .unwrap()
            .replace("&#x2f;", "/")
    }

    /// What no page may hold: inline styles (the CSP refuses them) or unescaped text.
    fn assert_clean(html: &str) {
        assert!(!html.contains("style="), "an inline style");
        assert!(!html.contains("<style"), "a style element");
        assert!(!html.contains("<script>alert"), "unescaped text");
    }

    fn november() -> Asked {
        ask(&q(&[("from", "2026-11-01"), ("to", "2026-11-30")]), true)
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

    #[test]
    fn the_feedback_page_shows_ratings_per_service_and_council() {
        let asked = november();
        let period = asked.period.clone().unwrap();
        let ratings = vec![
            RatingSummary {
                council: "leeds".into(),
                plugin: "bins".into(),
                ratings: 3,
                total: 12,
            },
            RatingSummary {
                council: "york".into(),
                plugin: "bins".into(),
                ratings: 1,
                total: 2,
            },
            RatingSummary {
                council: "york".into(),
                plugin: "pay".into(),
                ratings: 2,
                total: 10,
            },
        ];
        let kpis = report::kpis(
            "north-downs",
            period,
            0.0001,
            &[row("2026-11-01", "hull", "bins", 4, 0)],
            &ratings,
        );
        let names = BTreeMap::from([("york".to_string(), "City of York".to_string())]);
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data("north-downs", asked, Some((kpis, names)), None),
        );
        assert_clean(&html);
        assert!(html.contains("<a href=\"/console/t/north-downs/kpis?from=2026-11-01&amp;to=2026-11-30\" class=\"govuk-back-link\">Back to performance</a>"));
        assert!(html.contains("aria-labelledby=\"satisfaction-title satisfaction-desc\""));
        assert!(html.contains("Mean rating by service, out of 5, 2 values from bins to pay: highest 5.0 (pay), lowest 3.5 (bins)."));
        assert!(html.contains(">6</dd>"), "six ratings in all");
        assert!(html.contains("4.0 out of 5</dd>"), "(12 + 2 + 10) / 6");
        assert!(html.contains(
            "Ratings by service and council from 1 November 2026 to 30 November 2026</caption>"
        ));
        assert!(html.contains("City of York <span"));
        assert!(
            !html.contains(">hull<"),
            "a council with calls but no ratings is not listed"
        );

        let kpis = report::kpis("north-downs", november().period.unwrap(), 0.0001, &[], &[]);
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis, BTreeMap::new())),
                None,
            ),
        );
        assert!(html.contains(
            "No citizen rated the alliance’s services from 1 November 2026 to 30 November 2026."
        ));
        assert!(!html.contains("<svg"));
        assert!(
            !html.contains("id=\"comments\""),
            "no comments section for those who may not read comments"
        );
    }

    fn comment(id: &str, council: &str, text: &str) -> guildhall_store::Comment {
        guildhall_store::Comment {
            id: id.into(),
            council: council.into(),
            plugin: "bins".into(),
            version: "0.1.0".into(),
            day: "2026-11-03".into(),
            at: "2026-11-03T09:10:11.5Z".into(),
            rating: 2,
            comment: text.into(),
        }
    }

    #[test]
    fn the_feedback_page_lists_comments_escaped_with_older_and_newer_links() {
        let period = november().period.unwrap();
        let kpis = || report::kpis("north-downs", period.clone(), 0.0001, &[], &[]);
        let names = BTreeMap::from([("york".to_string(), "City of York".to_string())]);
        let older = "0193a1b2-0000-7000-8000-000000000001";
        let newer = "0193a1b2-0000-7000-8000-000000000009";
        let page = CommentPage {
            comments: vec![
                comment(newer, "york", "<script>alert(1)</script>"),
                comment(older, "leeds", "First line\nSecond & last"),
            ],
            older: Some(older.into()),
            newer: Some(newer.into()),
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((page, true)),
            ),
        );
        assert_clean(&html);
        assert!(html.contains(
            "<h2 class=\"govuk-heading-m\" id=\"comments\">Comments from 1 November 2026 to 30 November 2026</h2>"
        ));
        assert!(
            html.contains(
                "Comments from 1 November 2026 to 30 November 2026, newest first</caption>"
            )
        );
        for header in ["Date", "Service", "Council", "Rating", "Comment"] {
            assert!(
                html.contains(&format!(
                    "<th scope=\"col\" class=\"govuk-table__header\">{header}</th>"
                )),
                "{header}"
            );
        }
        assert!(
            html.contains("<th scope=\"row\" class=\"govuk-table__header\">3 November 2026</th>")
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("First line<br>Second &amp; last"));
        assert!(html.contains("City of York <span"));
        assert!(html.contains(">2 out of 5<"));
        let query = "from=2026-11-01&amp;to=2026-11-30";
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}&amp;after={newer}#comments\" rel=\"prev\""
        )));
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}&amp;before={older}#comments\" rel=\"next\""
        )));
        assert!(html.contains("aria-label=\"Pages of comments\""));
        assert!(html.contains("Newer<span class=\"govuk-visually-hidden\"> comments</span>"));

        // The first page: no newer link; past the end: a way back; none at all: said so.
        let first = CommentPage {
            comments: vec![comment(newer, "york", "Quick")],
            older: None,
            newer: None,
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((first, false)),
            ),
        );
        assert!(html.contains(">Quick</td>"));
        assert!(!html.contains("govuk-pagination"));
        let empty = || CommentPage {
            comments: Vec::new(),
            older: None,
            newer: None,
        };
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names.clone())),
                Some((empty(), true)),
            ),
        );
        assert!(html.contains("There are no more comments here."));
        assert!(html.contains(&format!(
            "href=\"/console/t/north-downs/feedback?{query}#comments\">Show the newest comments</a>"
        )));
        let html = render(
            "feedback.html",
            "Citizens’ feedback",
            feedback_data(
                "north-downs",
                november(),
                Some((kpis(), names)),
                Some((empty(), false)),
            ),
        );
        assert!(
            html.contains("No citizen left a comment from 1 November 2026 to 30 November 2026.")
        );
        assert!(!html.contains("<table"));
    }
}
