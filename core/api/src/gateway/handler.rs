//! The request handler: parse the service path once, admit the call by its tenant's share
//! of a saturated process, resolve the install, read the body, resolve the caller, take a
//! share, run the call, map its failure, and record the outcome once (span, metrics, meter).

use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::{CouncilId, PluginName, Site, TenantId};
use guildhall_runtime::{CallContext, CallError, CallReport, CallSession, Caller};
use guildhall_telemetry::CallSample;
use tracing::Instrument;

use super::session::{CitizenSession, Opening};
use super::{Gateway, Resolved};
use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestId;

/// The response header naming the plugin version that answered, e.g. `hello@0.2.0`.
pub const SERVED_BY: &str = "x-guildhall-plugin";

/// The tenant of the call, e.g. `north-downs`.
pub const TENANT_HEADER: &str = "x-guildhall-tenant";

/// The council of the call, e.g. `tandridge`.
pub const COUNCIL_HEADER: &str = "x-guildhall-council";

/// Where residents reach the platform, e.g. `https://services.north-downs.gov.uk`, for a
/// plugin's absolute links (a payment's return address); absent without a usable `Host`.
pub const ORIGIN_HEADER: &str = "x-guildhall-origin";

/// `ANY /s/{tenant}/{council}/{plugin}/{*path}`
pub(crate) async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let policy = state.gateway.script_policy(request.headers());
    let mut response = match serve_inner(&state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    let headers = response.headers_mut();
    // Plugins may set their own policy; one that sets none still gets one, so a page it
    // serves cannot load anything from elsewhere or be framed.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(super::DEFAULT_CSP),
        );
    }
    // And a second policy, which a plugin's own cannot loosen: browsers enforce both.
    headers.append(header::CONTENT_SECURITY_POLICY, policy);
    response
}

async fn serve_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let not_found = || ApiError::not_found("no such service");
    // The path is parsed here, once; the plugin gets the rest of it.
    let crate::service_path::ServicePath {
        tenant,
        council,
        plugin,
        rest,
    } = crate::service_path::ServicePath::parse(parts.uri.path()).ok_or_else(not_found)?;
    let rest = rest.to_string();

    let started = std::time::Instant::now();
    let gateway = &state.gateway;
    // Admission, before anything else. A call with a body leaves the count while its body
    // arrives (a client trickling an upload holds no share) and comes back once it is in,
    // waiting for its share again.
    let mut place = gateway
        .admit_call(&tenant)
        .await
        .map_err(|refusal| refused(state, &tenant, refusal))?;
    place.wait_turn().await;
    let resolved = gateway
        .resolve(&tenant, &plugin)
        .await?
        .ok_or_else(not_found)?;
    place.served();
    if !resolved.serves(&council) {
        return Err(not_found());
    }
    let bodiless = body.size_hint().exact() == Some(0);
    if !bodiless {
        place.release();
    }
    let version = resolved.prepared.version();
    let span = tracing::Span::current();
    span.record("guildhall.tenant", tenant.as_str());
    span.record("guildhall.council", council.as_str());
    span.record("guildhall.plugin", plugin.as_str());
    span.record("guildhall.plugin.version", version);
    let body = gateway.read_body(body).await?;
    if !bodiless {
        place
            .hold()
            .await
            .map_err(|refusal| refused(state, &tenant, refusal))?;
        place.wait_turn().await;
    }
    let principal = crate::access::principal(state, &parts.headers, &parts.extensions).await?;
    let caller = state
        .authz
        .caller(&principal, &resolved.scope, &council)
        .await?;
    let site = resolved.sites.get(&council).cloned().unwrap_or_default();
    // A plugin's session is opened, and a post without its token refused, before it runs.
    let opening = Opening {
        store: &state.store,
        scope: &resolved.scope,
        council: &council,
        plugin: &plugin,
        config: &gateway.inner.sessions,
        method: &parts.method,
        headers: &parts.headers,
        body: &body,
    };
    let session = if resolved.prepared.manifest().capabilities.session {
        Some(CitizenSession::open(&opening).await?)
    } else {
        None
    };
    let (result, ran, session) = match session {
        Some(Err(refusal)) => {
            let mut page = crate::citizen::refused(&site, refusal, &parts.headers);
            if let Some(removal) = refusal.headers(&opening) {
                page.headers_mut().append(header::SET_COOKIE, removal);
            }
            (Ok(page), None, None)
        }
        Some(Ok(session)) => {
            let session = Arc::new(session);
            let on_call = Some(Arc::clone(&session) as Arc<dyn CallSession>);
            let (result, ran) = call(
                state, &resolved, &council, &rest, parts, body, caller, site, on_call,
            )
            .await;
            (result, ran, Some(session))
        }
        None => {
            let (result, ran) = call(
                state, &resolved, &council, &rest, parts, body, caller, site, None,
            )
            .await;
            (result, ran, None)
        }
    };
    let status = match &result {
        Ok(response) => response.status(),
        Err(e) => e.status(),
    };
    record_outcome(
        state,
        Where {
            tenant: &tenant,
            council: &council,
            plugin: &plugin,
            version,
            labels: &resolved.labels,
        },
        status,
        started.elapsed(),
        ran,
    );
    let mut response = match result {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    if let Some(session) = session {
        session.finish(response.headers_mut()).await;
    }
    let served_by = HeaderValue::from_str(&format!("{plugin}@{version}")).ok();
    // Which version answered: for operators during upgrades, and for tests of them.
    if let Some(value) = served_by {
        response.headers_mut().insert(SERVED_BY, value);
    }
    Ok(response)
}

/// A call refused by admission: on the request's span and counted as a rejection of its
/// tenant when the tenant has been served here (a made-up name never becomes a label). It
/// is not metered: it reached no plugin version.
fn refused(state: &AppState, tenant: &TenantId, refusal: super::shares::Saturated) -> ApiError {
    let span = tracing::Span::current();
    span.record("guildhall.outcome", "rejected");
    if refusal.known {
        span.record("guildhall.tenant", tenant.as_str());
        state.telemetry.metrics.rejected(tenant.as_str());
    }
    super::shares::saturated(refusal)
}

/// Whether reading a body failed on the size cap rather than on the connection.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Admits the call to the tenant's share, passes the request (its body already read) to
/// the plugin and maps its failure; the report is absent when the plugin never ran (429).
#[allow(clippy::too_many_arguments)]
async fn call(
    state: &AppState,
    resolved: &Resolved,
    council: &CouncilId,
    rest: &str,
    parts: http::request::Parts,
    body: axum::body::Bytes,
    caller: Caller,
    site: Arc<Site>,
    session: Option<Arc<dyn CallSession>>,
) -> (
    Result<Response, ApiError>,
    Option<(CallReport, tracing::Span)>,
) {
    let tenant = resolved.scope.tenant();
    let gateway = &state.gateway;
    let plugin = resolved.prepared.plugin();
    let _permit = match gateway.admit(tenant).await {
        Ok(permit) => permit,
        Err(e) => return (Err(e), None),
    };
    // The call's memory cap comes out of the platform's memory budget while it runs.
    let _memory = match state.runtime.reserve_memory(&resolved.prepared).await {
        Ok(reservation) => reservation,
        Err(busy) => {
            tracing::warn!(tenant = %tenant, plugin = %plugin, error = %busy, "memory budget in use");
            let error = ApiError::from_status(
                StatusCode::TOO_MANY_REQUESTS,
                "the platform is running as many plugin calls as its memory allows; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (Err(error), None);
        }
    };
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query);
    for (name, value) in &parts.headers {
        if guildhall_runtime::edge::passed_to_plugin(name) {
            builder = builder.header(name, value);
        }
    }
    // Where the call runs, also for plugins that import nothing of the platform.
    builder = builder
        .header(TENANT_HEADER, tenant.as_str())
        .header(COUNCIL_HEADER, council.as_str());
    if let Some(origin) = gateway.public_origin(&parts.headers) {
        builder = builder.header(ORIGIN_HEADER, origin);
    }
    let plugin_request = match builder.body(body) {
        Ok(request) => request,
        Err(e) => {
            return (
                Err(ApiError::bad_request(format!(
                    "the request cannot be passed on: {e}"
                ))),
                None,
            );
        }
    };
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let version = resolved.prepared.version();
    let span = tracing::info_span!(
        "plugin call",
        otel.name = %format!("plugin call {plugin}"),
        guildhall.tenant = %tenant,
        guildhall.council = %council,
        guildhall.plugin = %plugin,
        guildhall.plugin.version = %version,
        guildhall.outcome = tracing::field::Empty,
    );
    let call = CallContext {
        tenant: resolved.scope.tenant().clone(),
        council: council.clone(),
        principal: caller,
        config: resolved.config(council),
        request_id,
        traceparent: guildhall_telemetry::propagation::outbound_traceparent(&span, &parts.headers),
        site,
        session,
    };
    let (result, report) = state
        .runtime
        .handle(&resolved.prepared, call, plugin_request)
        .instrument(span.clone())
        .await;
    let response = match result {
        Ok(mut response) => {
            // Plugins never set or clear cookies: the platform's are not theirs to touch.
            guildhall_runtime::edge::strip_plugin_response(response.headers_mut());
            Ok(response.map(Body::from))
        }
        Err(e) => Err(call_error(plugin, e)),
    };
    (response, Some((report, span)))
}

/// Where a call ran.
pub(crate) struct Where<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) council: &'a CouncilId,
    pub(crate) plugin: &'a PluginName,
    pub(crate) version: &'a str,
    /// The metric labels of the install's calls.
    pub(crate) labels: &'a guildhall_telemetry::PluginLabels,
}

/// Records a call's outcome, once, everywhere it is counted: the request's span and the
/// plugin call's, the log line, the plugin-call and rejection metrics, and the meter.
/// `ran` is absent when the plugin never ran (no share or memory: 429).
pub(crate) fn record_outcome(
    state: &AppState,
    at: Where<'_>,
    status: StatusCode,
    elapsed: std::time::Duration,
    ran: Option<(CallReport, tracing::Span)>,
) {
    let telemetry = &state.telemetry;
    let outcome = match &ran {
        Some((report, _)) => report.outcome,
        None if status == StatusCode::TOO_MANY_REQUESTS => "rejected",
        None => "refused",
    };
    tracing::Span::current().record("guildhall.outcome", outcome);
    if status == StatusCode::TOO_MANY_REQUESTS {
        telemetry.metrics.rejected(at.tenant.as_str());
    }
    if let Some((report, span)) = &ran {
        span.record("guildhall.outcome", report.outcome);
        telemetry
            .metrics
            .plugin_call(at.labels, report.outcome, report.wall, report.cpu);
        tracing::info!(
            parent: span,
            tenant = %at.tenant,
            plugin = %at.plugin,
            version = %at.version,
            outcome = report.outcome,
            wall_ms = report.wall.as_secs_f64() * 1000.0,
            cpu_ms = report.cpu.as_secs_f64() * 1000.0,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            denied = ?report.denied,
            "plugin call"
        );
    }
    let report = ran.as_ref().map(|(report, _)| report);
    telemetry.meter.record(&CallSample {
        tenant: at.tenant.as_str(),
        council: at.council.as_str(),
        plugin: at.plugin.as_str(),
        version: at.version,
        error: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        wall: report.map_or(elapsed, |r| r.wall),
        cpu: report.map_or(std::time::Duration::ZERO, |r| r.cpu),
        bytes_in: report.map_or(0, |r| r.bytes_in),
        bytes_out: report.map_or(0, |r| r.bytes_out),
        kv_bytes: report.map_or(0, |r| r.kv_bytes),
    });
}

/// Maps a plugin failure to the gateway's answer (DESIGN "Gateway outcomes").
fn call_error(plugin: &PluginName, e: CallError) -> ApiError {
    let reason = e.to_string();
    let kind = e.kind();
    let error = match e {
        CallError::Deadline(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "plugin-timeout",
            "Plugin timed out",
            format!("{plugin} did not answer in time"),
        ),
        CallError::BodyTooLarge(limit) => ApiError::from_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ),
        CallError::Internal(cause) => return ApiError::internal(cause),
        CallError::MemoryCap(_)
        | CallError::Trap(_)
        | CallError::BadResponse(_)
        | CallError::HostLimit(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "plugin-failed",
            "Plugin failed",
            format!("{plugin} failed to answer"),
        ),
    };
    error
        .with_extension("reason", reason)
        .with_extension("outcome", kind)
}

impl Gateway {
    /// Reads a call's whole body within the size cap and the deadline, before the call
    /// takes anything of its tenant's share.
    ///
    /// A body declared over the cap is still read up to the cap (within the deadline)
    /// before the 413, so the client, still sending, gets the answer rather than a reset.
    async fn read_body(&self, body: Body) -> Result<axum::body::Bytes, ApiError> {
        let limit = self.inner.runtime.config().max_request_body_bytes;
        let too_large = || {
            ApiError::from_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            )
        };
        let timeout = self.inner.body_timeout;
        match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
            Ok(Err(e)) => Err(ApiError::bad_request(format!(
                "the request body could not be read: {e}"
            ))),
            Err(_) => Err(ApiError::from_status(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} seconds",
                    timeout.as_secs()
                ),
            )
            .with_header(header::CONNECTION, HeaderValue::from_static("close"))),
        }
    }
}
