//! Observability for operators and councils: `/metrics`, a tenant's usage report and
//! KPIs, citizens' feedback on a service, and their comments read back.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::{CouncilId, PluginName, TenantId};
use guildhall_store::{Comment, CommentCursor, MAX_COMMENTS_PAGE, NewFeedback};
use guildhall_telemetry::Metrics;
use guildhall_telemetry::report::{self, Basis, Kpis, Period, UsageReport};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{Path, Query, Scope};

/// Every metric in the Prometheus text format. Open like `/healthz`: it carries counts
/// by tenant and plugin name, never ids of people or requests; keep it off the public
/// ingress (the chart's NetworkPolicy and ServiceMonitor reach it inside the cluster).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        state.telemetry.metrics.render(),
    )
        .into_response()
}

/// The period and format of a usage report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// First UTC day, `YYYY-MM-DD`; 29 days before `to` when absent.
    from: Option<String>,
    /// Last UTC day, `YYYY-MM-DD`; today when absent.
    to: Option<String>,
    /// `json` (default) or `csv`; an `Accept: text/csv` header also selects CSV.
    format: Option<String>,
    /// What shares are shares of: `cpu` (plugin CPU time, the default) or `calls`.
    basis: Option<String>,
}

/// The tenant's metered usage, one row per UTC day, council and plugin, with each row's
/// share of the alliance's total for cost apportionment. Counts reach the database in
/// batches, every `metering.flush_interval_secs`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/usage", tag = "observability",
    params(("tenant" = String, Path, description = "Tenant id"), UsageQuery),
    responses(
        (status = 200, description = "The usage report (JSON, or CSV with the same columns)",
            content(
                (UsageReport = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "Bad period, format or basis", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    Scope(scope): Scope,
    headers: HeaderMap,
    Query(query): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let period = report::period(query.from.as_deref(), query.to.as_deref())
        .map_err(ApiError::bad_request)?;
    let basis: Basis = query
        .basis
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(ApiError::bad_request)?
        .unwrap_or_default();
    let wants_csv = match query.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format must be json or csv, not {other:?}"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let rows = state
        .store
        .usage(&scope)
        .rows(&period.from, &period.to)
        .await?;
    let tenant = scope.tenant();
    let report = report::usage_report(tenant.as_str(), period, basis, rows);
    if wants_csv {
        let disposition = format!(
            "attachment; filename=\"{}-usage-{}-{}.csv\"",
            tenant, report.period.from, report.period.to
        );
        let mut response = (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report::usage_csv(&report),
        )
            .into_response();
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    Ok(axum::Json(report).into_response())
}

/// The period of a KPI report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct KpiQuery {
    /// First UTC day, `YYYY-MM-DD`; 29 days before `to` when absent.
    from: Option<String>,
    /// Last UTC day, `YYYY-MM-DD`; today when absent.
    to: Option<String>,
}

/// KPIs per service and council over a period: availability (share of calls without a
/// platform or plugin error), satisfaction (mean citizen rating and how many), volume
/// (calls), and cost per transaction (CPU seconds × `metering.price_per_cpu_second`).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/kpis", tag = "observability",
    params(("tenant" = String, Path, description = "Tenant id"), KpiQuery),
    responses(
        (status = 200, description = "KPIs per service and council", body = Kpis),
        (status = 400, description = "Bad period", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn kpis(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Query(query): Query<KpiQuery>,
) -> Result<axum::Json<Kpis>, ApiError> {
    let period = report::period(query.from.as_deref(), query.to.as_deref())
        .map_err(ApiError::bad_request)?;
    let usage = state
        .store
        .usage(&scope)
        .rows(&period.from, &period.to)
        .await?;
    let ratings = state
        .store
        .feedback(&scope)
        .summary(&period.from, &period.to)
        .await?;
    Ok(axum::Json(report::kpis(
        scope.tenant().as_str(),
        period,
        state.telemetry.price_per_cpu_second,
        &usage,
        &ratings,
    )))
}

/// The period, service and page of citizens' comments.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommentsQuery {
    /// First UTC day, `YYYY-MM-DD`; 29 days before `to` when absent.
    from: Option<String>,
    /// Last UTC day, `YYYY-MM-DD`; today when absent.
    to: Option<String>,
    /// Only the comments on this plugin.
    plugin: Option<String>,
    /// At most this many comments, 1 to 100; 20 when absent.
    limit: Option<u64>,
    /// Only comments older than this one: the `next` of the page before.
    before: Option<String>,
}

/// Comments on one page when no limit is given.
const DEFAULT_COMMENTS_PAGE: u64 = 20;

/// A citizen's comment on a service, with the rating it came with. The text is exactly
/// what the citizen sent (trimmed): whoever shows it must escape it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CommentLine {
    /// The feedback's id (also the cursor for older comments).
    id: String,
    /// Council id.
    council: String,
    /// Plugin name.
    plugin: String,
    /// The version installed when the comment was given.
    version: String,
    /// UTC day, `YYYY-MM-DD`.
    day: String,
    /// When, RFC 3339 in UTC.
    at: String,
    /// 1 (very poor) to 5 (very good).
    rating: u8,
    /// The comment.
    comment: String,
}

impl From<Comment> for CommentLine {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id,
            council: c.council,
            plugin: c.plugin,
            version: c.version,
            day: c.day,
            at: c.at,
            rating: c.rating,
            comment: c.comment,
        }
    }
}

/// One page of comments, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CommentsPage {
    /// The days covered.
    period: Period,
    /// The comments, newest first; ratings without a comment are not listed.
    comments: Vec<CommentLine>,
    /// Pass as `before` (with the same period and plugin) for older comments; absent on
    /// the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Citizens' comments on the alliance's services over a period, newest first, a page at
/// a time. Comments are free text that may hold personal data, so they need their own
/// permission (`feedback:read`: tenant admins and officers, not auditors); the counts and
/// mean ratings are in the KPIs.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/feedback", tag = "observability",
    params(("tenant" = String, Path, description = "Tenant id"), CommentsQuery),
    responses(
        (status = 200, description = "A page of comments", body = CommentsPage),
        (status = 400, description = "Bad period, plugin name, limit or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn comments(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Query(query): Query<CommentsQuery>,
) -> Result<axum::Json<CommentsPage>, ApiError> {
    let period = report::period(query.from.as_deref(), query.to.as_deref())
        .map_err(ApiError::bad_request)?;
    let plugin = query
        .plugin
        .map(|p| {
            PluginName::parse(p.as_str()).map_err(|_| {
                ApiError::bad_request(format!(
                    "plugin must be a plugin name, not {:?}",
                    p.chars().take(60).collect::<String>()
                ))
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_COMMENTS_PAGE);
    if !(1..=MAX_COMMENTS_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_COMMENTS_PAGE}, not {limit}"
        )));
    }
    if let Some(before) = &query.before
        && !CommentCursor::is_id(before)
    {
        return Err(ApiError::bad_request(
            "before must be the id of a comment, as `next` gives it",
        ));
    }
    let page = state
        .store
        .feedback(&scope)
        .comments(
            &period.from,
            &period.to,
            plugin.as_ref(),
            limit,
            query.before.as_deref().map(CommentCursor::Before),
        )
        .await?;
    Ok(axum::Json(CommentsPage {
        period,
        comments: page.comments.into_iter().map(CommentLine::from).collect(),
        next: page.older,
    }))
}

/// The longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// A citizen's rating of a service.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackForm {
    /// 1 (very poor) to 5 (very good).
    rating: u8,
    /// Optional, at most 2000 characters.
    comment: Option<String>,
}

/// The stored rating's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FeedbackReceipt {
    id: String,
}

/// Rates a service. Anyone may (no credentials); each client address may send 10 ratings
/// a minute. The service must be installed for the council. The body is JSON, or the
/// urlencoded form of the feedback page, which answers with pages (303 to the thank-you
/// page, or the form again with its errors).
#[utoipa::path(post, path = "/s/{tenant}/{council}/{plugin}/_feedback", tag = "observability",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("council" = String, Path, description = "Council id"),
        ("plugin" = String, Path, description = "Plugin name"),
    ),
    request_body(content(
        (FeedbackForm = "application/json"),
        (FeedbackForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "Stored", body = FeedbackReceipt),
        (status = 303, description = "Stored (a form): see the thank-you page"),
        (status = 404, description = "No such service for this council", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Rating outside 1 to 5, comment too long, or unknown fields (a form: the page with its errors)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many ratings from this address", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Path((tenant, council, plugin)): Path<(String, String, String)>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // Every submission counts against its address, refused ones included.
    let slot = take_feedback_slot(&state, request.headers(), request.extensions());
    let (installed, council, plugin) = feedback_target(&state, tenant, council, plugin).await?;
    let metrics = &state.telemetry.metrics;
    let form_post = crate::citizen::is_urlencoded(request.headers());
    // A form needs no preflight, so another site could make its visitors' browsers post
    // ratings; only this site's pages may.
    if form_post && crate::citizen::is_cross_site(request.headers()) {
        metrics.feedback("invalid");
        return Err(ApiError::from_status(
            StatusCode::FORBIDDEN,
            "feedback forms are accepted only from this site's pages",
        ));
    }
    if let Err(refusal) = slot {
        if form_post {
            let errors = vec![(
                "rating",
                "You have sent a lot of feedback in the last minute. Wait a minute and try again",
            )];
            let mut page =
                feedback_page(&installed.site, StatusCode::TOO_MANY_REQUESTS, &[], &errors);
            if let Some(wait) = refusal.header(header::RETRY_AFTER) {
                page.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            return Ok(page);
        }
        return Err(refusal);
    }
    let invalid = |detail: String| {
        metrics.feedback("invalid");
        ApiError::from_status(StatusCode::UNPROCESSABLE_ENTITY, detail)
    };
    let (rating, comment) = if form_post {
        let body = axum::body::to_bytes(request.into_body(), 32 * 1024)
            .await
            .map_err(|e| ApiError::bad_request(format!("the form could not be read: {e}")))?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let (rating_text, comment) = (field("rating"), field("comment"));
        let mut errors = Vec::new();
        let rating = rating_text
            .parse::<u8>()
            .ok()
            .filter(|r| (1..=5).contains(r));
        if rating.is_none() {
            errors.push(("rating", "Select how you felt about the service"));
        }
        if guildhall_domain::text::paragraph("comment", &comment, MAX_COMMENT_CHARS).is_err()
            && !comment.is_empty()
        {
            errors.push((
                "comment",
                "Your comment must be 2000 characters or fewer, without control characters",
            ));
        }
        let Some(rating) = rating.filter(|_| errors.is_empty()) else {
            metrics.feedback("invalid");
            let values = [
                ("rating", rating_text.as_str()),
                ("comment", comment.as_str()),
            ];
            return Ok(feedback_page(
                &installed.site,
                StatusCode::UNPROCESSABLE_ENTITY,
                &values,
                &errors,
            ));
        };
        (rating, Some(comment))
    } else {
        let axum::Json(form) =
            <axum::Json<FeedbackForm> as axum::extract::FromRequest<AppState>>::from_request(
                request, &state,
            )
            .await
            .map_err(|e| invalid(e.body_text()))?;
        if !(1..=5).contains(&form.rating) {
            return Err(invalid(format!(
                "rating must be 1 to 5, not {}",
                form.rating
            )));
        }
        (form.rating, form.comment)
    };
    let comment = comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if let Some(c) = &comment
        && let Err(e) = guildhall_domain::text::paragraph("comment", c, MAX_COMMENT_CHARS)
    {
        metrics.feedback("invalid");
        return Err(ApiError::validation(
            format!("the comment {}", e.reason),
            vec![FieldError {
                field: e.field,
                reason: e.reason,
            }],
        ));
    }
    let id = state
        .store
        .feedback(&installed.scope)
        .add(&NewFeedback {
            council,
            plugin,
            version: installed.version,
            rating,
            comment,
        })
        .await?;
    metrics.feedback("stored");
    if form_post {
        let location = format!("{}?sent=1", installed.site.feedback_path);
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response());
    }
    Ok((StatusCode::CREATED, axum::Json(FeedbackReceipt { id })).into_response())
}

/// The feedback page of a service: GOV.UK's satisfaction question and an optional
/// comment, posted back to the same address; `?sent=1` thanks the citizen.
#[utoipa::path(get, path = "/s/{tenant}/{council}/{plugin}/_feedback", tag = "observability",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("council" = String, Path, description = "Council id"),
        ("plugin" = String, Path, description = "Plugin name"),
        ("sent" = Option<String>, Query, description = "Present after a rating was stored"),
    ),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 404, description = "No such service for this council", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn feedback_form(
    State(state): State<AppState>,
    Path((tenant, council, plugin)): Path<(String, String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let (installed, _, _) = feedback_target(&state, tenant, council, plugin).await?;
    let sent = uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(n, _)| n == "sent"));
    if sent {
        return Ok(crate::citizen::page(
            StatusCode::OK,
            "feedback.html",
            minijinja::context! {
                site => minijinja::Value::from_serialize(&*installed.site),
                title => "Thank you for your feedback",
                sent => true,
            },
        ));
    }
    Ok(feedback_page(&installed.site, StatusCode::OK, &[], &[]))
}

/// The service a feedback path names, installed for its council.
async fn feedback_target(
    state: &AppState,
    tenant: String,
    council: String,
    plugin: String,
) -> Result<(crate::gateway::Installed, CouncilId, PluginName), ApiError> {
    let not_found = || ApiError::not_found("no such service");
    let tenant = TenantId::parse(tenant).map_err(|_| not_found())?;
    let council = CouncilId::parse(council).map_err(|_| not_found())?;
    let plugin = PluginName::parse(plugin).map_err(|_| not_found())?;
    let installed = state
        .gateway
        .installed_version(&tenant, &council, &plugin)
        .await?
        .ok_or_else(not_found)?;
    Ok((installed, council, plugin))
}

/// Counts a submission against its client address (accepted or not).
fn take_feedback_slot(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Result<(), ApiError> {
    let Some(client) = state.trusted_proxies.client_of(headers, extensions) else {
        return Ok(());
    };
    let key = guildhall_authz::FailureKey::from(client);
    state.telemetry.feedback_limiter.take(key).map_err(|wait| {
        state.telemetry.metrics.feedback("rate_limited");
        ApiError::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            "too many ratings from this address; try again later",
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        )
    })
}

/// The feedback form, with the submitted values and their errors when there are any.
fn feedback_page(
    site: &guildhall_domain::Site,
    status: StatusCode,
    values: &[(&str, &str)],
    errors: &[(&str, &str)],
) -> Response {
    let ratings: Vec<_> = [
        ("5", "Very satisfied"),
        ("4", "Satisfied"),
        ("3", "Neither satisfied or dissatisfied"),
        ("2", "Dissatisfied"),
        ("1", "Very dissatisfied"),
    ]
    .into_iter()
    .map(|(value, text)| minijinja::context! { value, text })
    .collect();
    let summary: Vec<_> = errors
        .iter()
        .map(|(field, text)| minijinja::context! { href => format!("#{field}"), text })
        .collect();
    let form = minijinja::context! {
        values => values.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
        error => errors.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
    };
    crate::citizen::page(
        status,
        "feedback.html",
        minijinja::context! {
            site => minijinja::Value::from_serialize(site),
            title => "Give feedback on this service",
            errors => summary,
            ratings,
            form,
            sent => false,
        },
    )
}
