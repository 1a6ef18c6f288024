//! Cross-cutting request handling: request ids, the request span and log line, the request
//! path and id on every problem, and turning every non-problem error response on platform
//! routes into problem+json.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tracing::Instrument;

use crate::error::{ApiError, InternalCause, PROBLEM_JSON, Unstamped};

/// The header that carries the request id: a caller's is kept as its own id, the server's
/// comes back on every response.
pub const REQUEST_ID: &str = "x-request-id";

/// The server's id of the current request, in request extensions. Always generated here,
/// so the ids the audit log and the logs key on are the server's, never a caller's choice.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id a caller sent in `x-request-id`, when short and printable: kept apart from the
/// server's id, logged and audited as `client_request_id`.
#[derive(Debug, Clone)]
pub struct ClientRequestId(pub String);

/// Accepts a caller's request id only when it is short and printable, so it is safe in logs.
fn caller_request_id(req: &Request) -> Option<String> {
    let value = req.headers().get(REQUEST_ID)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| value.to_string())
}

/// The route template that matched, carried back out on the response so the outermost
/// layer can label the request's span and metrics with it.
#[derive(Debug, Clone)]
pub(crate) struct RouteTemplate(pub(crate) String);

/// Route layer: puts the matched route template on the response.
pub(crate) async fn expose_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Gives every request an id and a span (a child of the caller's W3C `traceparent` when
/// spans are exported), logs its outcome once, records its metrics, and echoes the id.
pub async fn request_context(
    axum::extract::State(metrics): axum::extract::State<guildhall_telemetry::Metrics>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let client_id = caller_request_id(&req);
    if let Some(client_id) = &client_id {
        req.extensions_mut()
            .insert(ClientRequestId(client_id.clone()));
    }
    let method = req.method().clone();
    let instance = req.uri().path().to_string();
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        request_id = %id,
        client_request_id = client_id.as_deref(),
        http.request.method = %method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        guildhall.tenant = tracing::field::Empty,
        guildhall.council = tracing::field::Empty,
        guildhall.plugin = tracing::field::Empty,
        guildhall.plugin.version = tracing::field::Empty,
        guildhall.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    guildhall_telemetry::propagation::adopt_caller_context(&span, req.headers());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    if response.extensions_mut().remove::<Unstamped>().is_some() {
        response = stamp(response, &instance, &id).await;
    }
    let elapsed = started.elapsed();
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    let status = response.status();
    let route = response
        .extensions_mut()
        .remove::<RouteTemplate>()
        .map_or_else(|| "(unmatched)".to_string(), |r| r.0);
    guildhall_telemetry::propagation::rename(&span, format!("{method} {route}"));
    span.record("http.route", route.as_str());
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    metrics.http_request(method.as_str(), &route, status.as_u16(), elapsed);
    let _entered = span.enter();
    if let Some(InternalCause(cause)) = response.extensions_mut().remove::<InternalCause>() {
        tracing::error!(status = status.as_u16(), elapsed_ms, cause = %cause, "request failed");
    } else if status.is_server_error() {
        tracing::error!(status = status.as_u16(), elapsed_ms, "request failed");
    } else {
        tracing::info!(status = status.as_u16(), elapsed_ms, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The largest error body read back when adding the instance and request id. Problems clip
/// their texts, so every problem Guildhall renders fits; a larger body is replaced by a problem
/// built from its status.
pub(crate) const MAX_ERROR_BODY: usize = 1024 * 1024;

/// An error response's body, up to [`MAX_ERROR_BODY`]; empty when larger or unreadable.
async fn read_error_body(body: Body) -> axum::body::Bytes {
    match http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Default::default(),
    }
}

/// Adds the request path and id to a problem Guildhall rendered, wherever it came from (a
/// handler, the gateway, a caught panic, the conversion below). Plugins' own responses carry
/// no [`Unstamped`] mark and pass untouched.
async fn stamp(response: Response, instance: &str, request_id: &str) -> Response {
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let bytes = read_error_body(body).await;
    let mut problem = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .ok()
        .filter(|p| p.get("status").and_then(|s| s.as_u64()) == Some(u64::from(status.as_u16())))
        .unwrap_or_else(|| {
            ApiError::from_status(status, default_detail(status, None, instance, &[]))
                .problem_object()
        });
    problem
        .entry("instance")
        .or_insert_with(|| instance.to_string().into());
    problem
        .entry("request_id")
        .or_insert_with(|| request_id.to_string().into());
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Makes every 4xx/5xx answer on platform routes problem+json.
///
/// Handlers already answer with problems; this catches what axum and tower produce on their
/// own (405 with an empty body, plain-text rejections such as a body over the limit).
pub async fn problem_details(req: Request, next: Next) -> Response {
    let instance = req.uri().path().to_string();
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Unstamped>().is_some()
    {
        return response;
    }
    // The status, headers (`Allow`, `Retry-After`) and extensions stay; the body becomes
    // a problem, which the outermost layer stamps like any other.
    let (mut parts, body) = response.into_parts();
    let bytes = read_error_body(body).await;
    let detail = default_detail(status, Some(&method), &instance, &bytes);
    let problem = ApiError::from_status(status, detail).problem_object();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(Unstamped);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

fn default_detail(
    status: StatusCode,
    method: Option<&axum::http::Method>,
    path: &str,
    body: &[u8],
) -> String {
    if let (StatusCode::METHOD_NOT_ALLOWED, Some(method)) = (status, method) {
        // The router adds the `Allow` header after this middleware has run.
        return format!("{method} is not allowed on {path}; the Allow header lists what is");
    }
    if status.is_server_error() {
        return "The server could not complete the request; the request id identifies it in the logs."
            .to_string();
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() || text.len() > 1024 {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string()
    } else {
        text
    }
}
