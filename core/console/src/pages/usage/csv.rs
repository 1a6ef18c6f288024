//! The usage page's rows as a CSV file, one line per council.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::USAGE;
use super::council_names;
use super::period::{ask, query_of};
use super::report::{CouncilUsage, by_council, usage_report};
use crate::Console;
use crate::act;
use crate::render::PageError;
use crate::session::SignedIn;

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
    let scope = act::read_tenant(&console, &who, USAGE, &tenant).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
