//! The shared catalogue: list, show, publish and yank plugin versions.

use std::collections::BTreeMap;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guildhall_domain::PluginName;
use guildhall_domain::manifest::{Capabilities, ConfigField, Limits};
use guildhall_store::{AdoptionFigures, AdoptionMap, PluginRecord, Published, VersionRecord};
use serde::Serialize;

use guildhall_authz::Principal;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::Path;

/// Whether and by whom a version is signed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignatureView {
    /// `verified` or `unsigned`.
    status: &'static str,
    /// The fingerprint of the owner's key that verified the signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// The base64 signature, so anyone can check it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// `sha256:` and the digest of plugin.toml as uploaded, which the signed statement names.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_sha256: Option<String>,
}

/// One published version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VersionView {
    plugin: String,
    version: String,
    /// `sha256:` and the component's digest.
    digest: String,
    description: String,
    /// The manifest's display name for the publisher (not an identity: see the owners).
    publisher: String,
    licence: String,
    capabilities: Capabilities,
    limits: Limits,
    /// The settings each install gives.
    config: BTreeMap<String, ConfigField>,
    signature: SignatureView,
    /// Yanked versions cannot be newly installed.
    yanked: bool,
    /// RFC 3339.
    published_at: String,
    /// Who runs this version and how it performs (catalogue reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    adoption: Option<AdoptionView>,
}

/// Who runs a plugin (or version) and how it performs, across every alliance on the
/// platform. Counts are shared; an alliance is named only when it opted in
/// (`share_adoption = true` in its tenant file).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct AdoptionView {
    /// Alliances (tenants) that run it.
    tenants: i64,
    /// Councils it serves across them.
    councils: i64,
    /// Alliances that run it and agreed to be named.
    named_tenants: Vec<String>,
    /// Calls over the last 30 days.
    calls_30d: i64,
    /// Share of those calls without a platform or plugin error.
    #[serde(skip_serializing_if = "Option::is_none")]
    success_rate_30d: Option<f64>,
    /// 95th percentile latency over 30 days, in milliseconds (the upper bound of its
    /// latency bucket, so within about a quarter).
    #[serde(skip_serializing_if = "Option::is_none")]
    p95_ms_30d: Option<f64>,
    /// Mean citizen rating (1 to 5) over 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    satisfaction_30d: Option<f64>,
    /// Ratings over 30 days.
    ratings_30d: i64,
}

impl From<&AdoptionFigures> for AdoptionView {
    fn from(f: &AdoptionFigures) -> Self {
        Self {
            tenants: f.tenants,
            councils: f.councils,
            named_tenants: f.named_tenants.clone(),
            calls_30d: f.calls,
            success_rate_30d: f.success_rate,
            p95_ms_30d: f.p95_ms,
            satisfaction_30d: f.satisfaction,
            ratings_30d: f.ratings,
        }
    }
}

/// The first day of the adoption window: 30 days including today.
fn adoption_since() -> String {
    guildhall_domain::metering::day_of(time::OffsetDateTime::now_utc() - time::Duration::days(29))
}

/// Adoption of one plugin's versions (`""` is the plugin as a whole).
fn adoption_of(map: &AdoptionMap, plugin: &str) -> impl Fn(&str) -> AdoptionView {
    let versions = map.get(plugin).cloned().unwrap_or_default();
    move |version: &str| {
        versions
            .get(version)
            .map(AdoptionView::from)
            .unwrap_or_default()
    }
}

impl From<&VersionRecord> for VersionView {
    fn from(v: &VersionRecord) -> Self {
        Self {
            plugin: v.plugin.to_string(),
            version: v.version.clone(),
            digest: v.digest.to_string(),
            description: v.manifest.description.clone(),
            publisher: v.manifest.publisher.clone(),
            licence: v.manifest.licence.clone(),
            capabilities: v.manifest.capabilities.clone(),
            limits: v.manifest.limits.clone(),
            config: v.manifest.config.clone(),
            signature: SignatureView {
                status: if v.signed_by.is_some() {
                    "verified"
                } else {
                    "unsigned"
                },
                key: v.signed_by.clone(),
                value: v.signature.clone(),
                manifest_sha256: v.manifest_sha256.map(|d| d.to_string()),
            },
            yanked: v.yanked,
            adoption: None,
            published_at: v
                .published_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

/// A plugin in the catalogue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PluginView {
    name: String,
    publisher: String,
    description: String,
    /// The highest version that is not yanked.
    latest_version: Option<String>,
    /// Every version, highest first.
    versions: Vec<VersionView>,
    /// Who runs the plugin, any version, and how it performs.
    adoption: AdoptionView,
}

impl PluginView {
    fn new(p: &PluginRecord, adoption: &AdoptionMap) -> Self {
        let of = adoption_of(adoption, p.name.as_str());
        Self {
            name: p.name.to_string(),
            publisher: p.publisher.clone(),
            description: p.description.clone(),
            latest_version: p.latest().map(|v| v.version.clone()),
            versions: p
                .versions
                .iter()
                .map(|v| VersionView {
                    adoption: Some(of(&v.version)),
                    ..VersionView::from(v)
                })
                .collect(),
            adoption: of(""),
        }
    }
}

/// The catalogue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PluginList {
    plugins: Vec<PluginView>,
}

/// The multipart form of a publish request.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub(crate) struct PublishForm {
    /// The `plugin.toml` text.
    manifest: String,
    /// The component bytes.
    #[schema(format = Binary, content_media_type = "application/wasm")]
    component: Vec<u8>,
    /// Optional base64 ed25519 signature over the statement
    /// `guildhall-signature-v1\nname=…\nversion=…\nmanifest-sha256=…\ncomponent-sha256=…\n`
    /// by a key registered to an owner of the plugin.
    signature: Option<String>,
}

/// Lists the catalogue.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "catalogue",
    responses((status = 200, description = "Every plugin", body = PluginList)))]
pub(crate) async fn list_plugins(
    State(state): State<AppState>,
) -> Result<axum::Json<PluginList>, ApiError> {
    let plugins = state.store.catalogue().list().await?;
    let adoption = state
        .store
        .adoption()
        .figures(None, &adoption_since())
        .await?;
    Ok(axum::Json(PluginList {
        plugins: plugins
            .iter()
            .map(|p| PluginView::new(p, &adoption))
            .collect(),
    }))
}

/// Shows one plugin and its versions.
#[utoipa::path(get, path = "/api/v1/plugins/{plugin}", tag = "catalogue",
    params(("plugin" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin", body = PluginView),
        (status = 404, description = "No such plugin", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_plugin(
    State(state): State<AppState>,
    Path(plugin): Path<PluginName>,
) -> Result<axum::Json<PluginView>, ApiError> {
    let record = state
        .store
        .catalogue()
        .get(&plugin)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no plugin {plugin}")))?;
    let adoption = state
        .store
        .adoption()
        .figures(Some(plugin.as_str()), &adoption_since())
        .await?;
    Ok(axum::Json(PluginView::new(&record, &adoption)))
}

/// Shows one version.
#[utoipa::path(get, path = "/api/v1/plugins/{plugin}/versions/{version}", tag = "catalogue",
    params(("plugin" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Version")),
    responses(
        (status = 200, description = "The version", body = VersionView),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_version(
    State(state): State<AppState>,
    Path((plugin, version)): Path<(PluginName, String)>,
) -> Result<axum::Json<VersionView>, ApiError> {
    let record = state
        .store
        .catalogue()
        .version(&plugin, &version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of plugin {plugin}")))?;
    Ok(axum::Json(version_view(&state, &plugin, &record).await?))
}

/// Publishes a version. The same bytes again answer 200; other bytes under a published
/// version answer 409.
#[utoipa::path(post, path = "/api/v1/plugins/{plugin}/versions", tag = "catalogue",
    params(("plugin" = String, Path, description = "Plugin name")),
    request_body(content = PublishForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Published", body = VersionView),
        (status = 200, description = "Already published with the same bytes", body = VersionView),
        (status = 400, description = "Malformed form", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not an owner of the plugin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The version exists with other bytes", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Component too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid manifest, component or signature", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every upload compile slot stayed busy; retry after the Retry-After seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn publish(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(plugin): Path<PluginName>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::from_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected a multipart/form-data body with fields manifest, component and signature: {e}"),
        )
    })?;
    let mut manifest = None;
    let mut component = None;
    let mut signature = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "manifest" => manifest = Some(field.text().await.map_err(multipart_error)?),
            "component" => component = Some(field.bytes().await.map_err(multipart_error)?.to_vec()),
            "signature" => signature = Some(field.text().await.map_err(multipart_error)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field {other:?}; expected manifest, component and optionally signature"
                )));
            }
        }
    }
    let manifest =
        manifest.ok_or_else(|| ApiError::bad_request("the form has no manifest field"))?;
    let component =
        component.ok_or_else(|| ApiError::bad_request("the form has no component field"))?;
    let published = guildhall_operations::catalogue::publish(
        crate::catalogue::catalogue(&state),
        crate::catalogue::actor_of(&state, &principal),
        Some(&plugin),
        &manifest,
        component,
        signature.as_deref(),
    )
    .await?;
    let (status, record) = match &published {
        Published::Created(v) => (StatusCode::CREATED, v),
        Published::Existing(v) => (StatusCode::OK, v),
    };
    let mut response = (status, axum::Json(VersionView::from(record))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/api/v1/plugins/{}/versions/{}",
        record.plugin, record.version
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::from_status(
        e.status(),
        format!("cannot read the form: {}", e.body_text()),
    )
}

/// Yanks a version: no new installs; running installs keep working.
#[utoipa::path(post, path = "/api/v1/plugins/{plugin}/versions/{version}/yank", tag = "catalogue",
    params(("plugin" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Version")),
    responses(
        (status = 200, description = "Yanked", body = VersionView),
        (status = 403, description = "The caller is not an owner of the plugin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn yank(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((plugin, version)): Path<(PluginName, String)>,
) -> Result<axum::Json<VersionView>, ApiError> {
    let actor = guildhall_operations::owners::actor(&state.authz, &principal);
    let record = guildhall_operations::owners::yank(&state.store, actor, &plugin, &version).await?;
    Ok(axum::Json(version_view(&state, &plugin, &record).await?))
}

/// A version as the catalogue shows it, with its adoption figures.
async fn version_view(
    state: &AppState,
    plugin: &PluginName,
    record: &VersionRecord,
) -> Result<VersionView, ApiError> {
    let adoption = state
        .store
        .adoption()
        .figures(Some(plugin.as_str()), &adoption_since())
        .await?;
    Ok(VersionView {
        adoption: Some(adoption_of(&adoption, plugin.as_str())(&record.version)),
        ..VersionView::from(record)
    })
}
