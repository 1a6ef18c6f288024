//! An alliance's audit log, page by page in the chain's order (the API's paging: `after`
//! and `limit`), and verifying its hash chain. Both ask the decision of
//! `GET /api/v1/tenants/{tenant}/audit`: verifying only reads.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use guildhall_operations::audit::{MAX_LIMIT, Paging};
use guildhall_store::{AuditRecord, TenantScope, Verification};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::act::{self, Section};
use crate::pages::{FormError, error_for, when};
use crate::render::{PageError, page};
use crate::session::{FormFields, SignedIn};

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = crate::render::templates!["audit.html"];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/t/{tenant}/audit", get(list))
        .route("/t/{tenant}/audit/verify", post(verify))
}

const READ: &str = "/api/v1/tenants/{tenant}/audit";

/// The paging of the page's address, as typed: numbers are checked here so a bad one is
/// shown beside the form rather than as a bare rejection.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    after: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
struct EntryRow {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    object: String,
    outcome: String,
    request_id: String,
    /// Whether the outcome is a success (a 2xx status).
    succeeded: bool,
    via_console: bool,
}

fn row(e: AuditRecord) -> EntryRow {
    let at = time::OffsetDateTime::parse(&e.at, &time::format_description::well_known::Rfc3339)
        .map(|t| when(&t))
        .unwrap_or(e.at);
    let via_console = serde_json::from_str::<serde_json::Value>(&e.detail)
        .ok()
        .is_some_and(|d| d["via"] == "console");
    let succeeded = e.outcome.starts_with('2');
    EntryRow {
        seq: e.seq,
        at,
        actor: e.actor,
        action: e.action,
        object: e.object,
        outcome: e.outcome,
        request_id: e.request_id,
        succeeded,
        via_console,
    }
}

/// The address of the page `paging` shows.
fn href(tenant: &str, paging: Paging) -> String {
    format!(
        "{}/t/{tenant}/audit?after={}&limit={}",
        crate::PREFIX,
        paging.after(),
        paging.limit()
    )
}

/// What verifying found, as the page shows it.
fn verified(v: &Verification, tenant: &str, limit: u64) -> minijinja::Value {
    match &v.broken {
        None => context! {
            intact => true,
            entries => v.entries,
        },
        Some(broken) => {
            // The page that starts at the broken entry.
            let at = Paging::new((broken.seq - 1).max(0), Some(limit))
                .ok()
                .map(|p| href(tenant, p));
            context! {
                intact => false,
                entries => v.entries,
                seq => broken.seq,
                reason => broken.reason.clone(),
                href => at,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn render(
    console: &Console,
    who: &SignedIn,
    scope: &TenantScope,
    paging: Paging,
    errors: Vec<FormError>,
    verification: Option<&Verification>,
    typed_after: String,
    status: StatusCode,
) -> Result<Response, PageError> {
    let tenant = scope.tenant().to_string();
    let shown = guildhall_operations::audit::page(&console.app.store, scope, paging).await?;
    let first = shown.entries.first().map(|e| e.seq);
    let last = shown.entries.last().map(|e| e.seq);
    let entries: Vec<EntryRow> = shown.entries.into_iter().map(row).collect();
    let older = paging.previous().map(|p| href(&tenant, p));
    let newer = shown
        .next_after
        .and_then(|after| Paging::new(after, Some(paging.limit())).ok())
        .map(|p| href(&tenant, p));
    let mut chrome = act::chrome(
        console,
        who,
        "Audit log",
        Some(scope.tenant()),
        Section::Tenant("audit"),
    );
    chrome.has_errors = !errors.is_empty();
    Ok(page(
        status,
        "audit.html",
        &chrome,
        context! {
            tenant => tenant.clone(),
            entries => entries,
            first => first,
            last => last,
            after => paging.after(),
            limit => paging.limit(),
            typed_after => typed_after,
            older => older,
            newer => newer,
            verification => verification.map(|v| verified(v, &tenant, paging.limit())),
            broken_seq => verification.and_then(|v| v.broken.as_ref()).map(|b| b.seq),
            errors => errors.clone(),
            after_error => error_for(&errors, "after"),
        },
    ))
}

/// Reads `after` and `limit` as the API does (entries after 0 and 100 of them when absent).
/// A bad `after` is the form's error; a bad `limit` (never in a link the console makes) is
/// refused like the API refuses it.
fn paging_of(
    after: Option<&str>,
    limit: Option<&str>,
) -> Result<(Paging, Vec<FormError>), PageError> {
    let limit = match limit.map(str::trim).filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => Some(l.parse::<u64>().map_err(|_| {
            PageError::bad_request(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })?),
    };
    let bad_limit =
        |e: guildhall_operations::audit::BadPaging| PageError::bad_request(e.to_string());
    let after_text = after.map(str::trim).unwrap_or_default();
    let after = if after_text.is_empty() {
        Some(0)
    } else {
        after_text.parse::<i64>().ok().filter(|a| *a >= 0)
    };
    match after {
        Some(after) => Ok((Paging::new(after, limit).map_err(bad_limit)?, Vec::new())),
        None => Ok((
            Paging::new(0, limit).map_err(bad_limit)?,
            vec![FormError::at(
                "after",
                "Enter an entry number, like 0 or 250",
            )],
        )),
    }
}

/// `GET /console/t/{tenant}/audit?after=&limit=`.
pub async fn list(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, READ, &tenant).await?;
    let (paging, errors) = paging_of(query.after.as_deref(), query.limit.as_deref())?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let typed = if errors.is_empty() {
        paging.after().to_string()
    } else {
        query.after.unwrap_or_default()
    };
    render(&console, &who, &scope, paging, errors, None, typed, status).await
}

/// `POST /console/t/{tenant}/audit/verify`: recomputes the chain from its first entry and
/// shows where it breaks, if it does, above the page the form was on.
pub async fn verify(
    State(console): State<Console>,
    who: SignedIn,
    Path(tenant): Path<String>,
    fields: FormFields,
) -> Result<Response, PageError> {
    let scope = act::read_tenant(&console, &who, READ, &tenant).await?;
    let (paging, _) = paging_of(fields.get("after"), fields.get("limit"))?;
    let verification = console.app.store.audit(&scope).verify().await?;
    render(
        &console,
        &who,
        &scope,
        paging,
        Vec::new(),
        Some(&verification),
        paging.after().to_string(),
        StatusCode::OK,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_reads_the_apis_defaults_and_refuses_what_it_refuses() {
        let (paging, errors) = paging_of(None, None).unwrap();
        assert_eq!((paging.after(), paging.limit()), (0, 100));
        assert!(errors.is_empty());
        let (paging, _) = paging_of(Some(" 250 "), Some("50")).unwrap();
        assert_eq!((paging.after(), paging.limit()), (250, 50));
        for bad in ["0", "1001", "ten", "-1"] {
            let e = paging_of(None, Some(bad)).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "limit {bad}");
        }
    }

    #[test]
    fn a_bad_entry_number_is_the_forms_error_and_shows_the_start() {
        for bad in ["-3", "abc", "1.5"] {
            let (paging, errors) = paging_of(Some(bad), None).unwrap();
            assert_eq!(paging.after(), 0);
            assert_eq!(errors.len(), 1, "after {bad}");
            assert_eq!(errors[0].field.as_deref(), Some("after"));
        }
    }

    #[test]
    fn the_page_shows_where_the_chain_breaks_and_links_both_ways() {
        let views = crate::render::Views::new().unwrap();
        let chrome = crate::render::Chrome::public("Audit log");
        let record = |seq: i64| AuditRecord {
            seq,
            at: "2026-12-06T20:15:00Z".into(),
            actor: "token:abc".into(),
            action: "installs.put".into(),
            object: "installs/bins".into(),
            outcome: if seq == 12 { "403" } else { "201" }.into(),
            request_id: "req-1".into(),
            detail: r#"{"via":"console"}"#.into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let verification = Verification {
            chain: "north-downs".into(),
            entries: 12,
            broken: Some(guildhall_store::Broken {
                seq: 12,
                reason: "its content does not match its hash".into(),
            }),
        };
        let paging = Paging::new(10, Some(10)).unwrap();
        let html = views
            .render(
                "audit.html",
                &chrome,
                context! {
                    tenant => "north-downs",
                    entries => vec![row(record(11)), row(record(12))],
                    first => 11,
                    last => 12,
                    after => 10,
                    limit => 10,
                    older => paging.previous().map(|p| href("north-downs", p)),
                    newer => Some(href("north-downs", Paging::new(20, Some(10)).unwrap())),
                    verification => verified(&verification, "north-downs", 10),
                    broken_seq => 12,
                },
            )
            .unwrap()
            .replace("&#x2f;", "/");
        assert!(
            html.contains("The audit log is broken at entry 12"),
            "{html}"
        );
        assert!(html.contains(r#"href="/console/t/north-downs/audit?after=11&amp;limit=10""#));
        assert!(
            html.contains(r#"href="/console/t/north-downs/audit?after=0&amp;limit=10" rel="prev""#)
        );
        assert!(
            html.contains(
                r#"href="/console/t/north-downs/audit?after=20&amp;limit=10" rel="next""#
            )
        );
        assert!(html.contains("6 December 2026, 20:15 UTC"));
        assert!(html.contains("in the console"));
        assert_eq!(
            html.matches("govuk-tag--red").count(),
            2,
            "the broken entry and the 403"
        );
    }
}
