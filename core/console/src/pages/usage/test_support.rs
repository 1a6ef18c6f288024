//! What the usage pages' tests share: queries, usage rows, and rendering a page.

use guildhall_store::UsageRow;

use super::period::{Asked, ask};
use crate::render::{Chrome, Views};

pub(super) fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn row(day: &str, council: &str, plugin: &str, calls: i64, errors: i64) -> UsageRow {
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

pub(super) fn render(template: &str, title: &str, data: minijinja::Value) -> String {
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
pub(super) fn assert_clean(html: &str) {
    assert!(!html.contains("style="), "an inline style");
    assert!(!html.contains("<style"), "a style element");
    assert!(!html.contains("<script>alert"), "unescaped text");
}

pub(super) fn november() -> Asked {
    ask(&q(&[("from", "2026-11-01"), ("to", "2026-11-30")]), true)
}
