//! A tenant's lifecycle: its archive, and deleting the tenant or one of its councils once
//! the request repeats the id it deletes (`?confirm=<id>`).

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::CouncilId;
use guildhall_store::Deleted;
use serde::Deserialize;

use crate::AppState;
use crate::access::AuditDetail;
use crate::error::{ApiError, Problem};
use crate::extract::{Path, Query, Scope};

/// The confirmation a deletion needs.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirmation {
    /// The id of the tenant (or council) being deleted, repeated. Without it the request
    /// is refused (428) and nothing is deleted; with another id it is refused (409).
    #[serde(default)]
    confirm: Option<String>,
}

/// A tenant archive as the document describes it: bytes (tar + gzip).
#[derive(Debug, utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(crate) struct Archive(#[allow(dead_code)] Vec<u8>);

/// Reads from an archive file a chunk at a time.
fn chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt as _;
        let mut file = file?;
        let mut buffer = vec![0; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

fn attachment(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Exports everything the tenant owns as one archive (tar + gzip): a `manifest.json` with
/// every member's size and SHA-256, the tenant, councils, members, installs and their
/// settings, key-value data, events, schedule runs, subject requests, usage, feedback and
/// the audit chain as JSON lines, and each installed plugin version's component. Tokens,
/// residents' sessions and install secrets' values are not in it (the manifest lists the
/// secrets' names). Import it with `guildhall tenants import FILE`. `HEAD` answers with
/// the headers only and builds nothing.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/export", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The archive, as an attachment; `x-guildhall-archive-sha256` is the SHA-256 of the whole file", content_type = "application/gzip", body = Archive),
        (status = 400, description = "Invalid tenant id", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's roles in the tenant do not allow exporting it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Another export is being built on this server; retry after `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn export_tenant(
    State(state): State<AppState>,
    Scope(scope): Scope,
    method: Method,
) -> Result<Response, ApiError> {
    let gzip = HeaderValue::from_static("application/gzip");
    if method == Method::HEAD {
        let name = format!("guildhall-{}.tar.gz", scope.tenant());
        let mut response = (
            [
                (header::CONTENT_TYPE, gzip),
                (header::CONTENT_DISPOSITION, attachment(&name)),
            ],
            StatusCode::OK,
        )
            .into_response();
        // Recorded as what it was: a look, not an export.
        let mut detail = serde_json::Map::new();
        detail.insert("method".into(), "HEAD".into());
        response.extensions_mut().insert(AuditDetail(detail));
        return Ok(response);
    }
    // An export stages the whole alliance on disk and holds a database snapshot while it is
    // built: one at a time on this replica, so a few requests cannot fill its disk.
    let Ok(exporting) = std::sync::Arc::clone(&state.exports).try_acquire_owned() else {
        return Err(ApiError::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            "another export is being built on this server; retry after the time in Retry-After",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("30")));
    };
    let (file, exported) =
        guildhall_operations::tenant_archive::export_to_temp(&state.store, &scope).await?;
    // The permit goes with the body: held until the archive has been sent (or the caller
    // has gone), while its staged file is on disk.
    let stream = futures::StreamExt::map(chunks(tokio::fs::File::from_std(file)), move |chunk| {
        let _held = &exporting;
        chunk
    });
    let body = axum::body::Body::from_stream(stream);
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, gzip);
    headers.insert(
        header::CONTENT_DISPOSITION,
        attachment(&exported.file_name()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(exported.size));
    if let Ok(sha256) = HeaderValue::from_str(&exported.sha256) {
        headers.insert("x-guildhall-archive-sha256", sha256);
    }
    let mut detail = serde_json::Map::new();
    detail.insert("archive_sha256".into(), exported.sha256.clone().into());
    detail.insert("archive_bytes".into(), exported.size.into());
    response.extensions_mut().insert(AuditDetail(detail));
    Ok(response)
}

/// Deletes the tenant and everything stored for it: its councils, members, tokens,
/// installs, settings and secrets, key-value data, events, schedule runs, subject requests,
/// usage, feedback, residents' sessions, its audit chain, its role bindings and its place in
/// the adoption figures. The request must repeat the tenant's id as `?confirm=`; the
/// deletion is recorded in the platform's audit chain with who asked and what was removed.
/// The gateway stops serving the tenant at once. Export it first to keep a copy.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id"), Confirmation),
    responses(
        (status = 200, description = "Deleted; the rows removed, by table", body = Deleted),
        (status = 400, description = "Invalid tenant id or query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only an operator deletes a tenant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The confirmation names another id; nothing was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No confirmation; nothing was deleted. The problem says how to confirm", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_tenant(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Query(query): Query<Confirmation>,
) -> Result<Response, ApiError> {
    let deleted = guildhall_operations::tenant_archive::delete_tenant(
        &state.store,
        &scope,
        query.confirm.as_deref(),
    )
    .await?;
    Ok(with_detail(deleted))
}

/// Deletes one council of the tenant and what is stored for it: the key-value entries under
/// `council/<council>/`, its events, settings, secrets, schedule runs, residents'
/// sessions, usage and feedback, the members and tokens limited to it, and the council from
/// every install (an install that served only this council is removed). The request must
/// repeat the council's id as `?confirm=`. The tenant's audit chain records it.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/councils/{council}", tag = "tenants",
    params(
        ("tenant" = String, Path, description = "Tenant id"),
        ("council" = String, Path, description = "Council id"),
        Confirmation,
    ),
    responses(
        (status = 200, description = "Deleted; the rows removed, by table", body = Deleted),
        (status = 400, description = "Invalid id or query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's roles in the tenant do not allow deleting councils", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or council", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The confirmation names another id; nothing was deleted", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No confirmation; nothing was deleted. The problem says how to confirm", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_council(
    State(state): State<AppState>,
    Scope(scope): Scope,
    Path((_tenant, council)): Path<(String, CouncilId)>,
    Query(query): Query<Confirmation>,
) -> Result<Response, ApiError> {
    let deleted = guildhall_operations::tenant_archive::delete_council(
        &state.store,
        &scope,
        &council,
        query.confirm.as_deref(),
    )
    .await?;
    Ok(with_detail(deleted))
}

/// The deletion's answer, with what it removed added to its audit entry.
fn with_detail(deleted: Deleted) -> Response {
    let mut detail = serde_json::Map::new();
    detail.insert(
        "removed".into(),
        serde_json::to_value(&deleted.rows).unwrap_or_default(),
    );
    let mut response = (StatusCode::OK, axum::Json(deleted)).into_response();
    response.extensions_mut().insert(AuditDetail(detail));
    response
}
