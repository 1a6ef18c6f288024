//! Guildhall's HTTP interface.
//!
//! [`router`] assembles every route with its middleware; [`openapi`] is the OpenAPI document
//! generated from the same handlers, so the two cannot drift apart.
//!
//! **API Boundary:** this crate turns HTTP into calls on the store (and later the runtime)
//! and back. It holds no SQL and no wasm; errors leave it only as problem+json.

pub mod access;
pub mod catalogue;
mod citizen;
pub mod client;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod middleware;
mod routes;
mod service_path;
mod state;
pub mod subject_requests;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, FieldError, Problem};
pub use gateway::{Gateway, SchedulesConfig, SessionsConfig, spawn_scheduler};
pub use guildhall_operations::catalogue::{CatalogueConfig, TrustedKeys};
pub use state::{AppState, AppStateParts, Telemetry};

/// HTTP settings from the operator's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest JSON body accepted on `/api` routes, in bytes.
    pub api_body_limit: usize,
    /// Pages served beside the API (the console), under the same outermost layers: request
    /// ids, caught panics, `nosniff` and `no-referrer`. They bring their own security
    /// headers and error pages.
    pub pages: Option<Router>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_body_limit: 1024 * 1024,
            pages: None,
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Guildhall",
        description = "Shared digital services for alliances of UK councils.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "tenants", description = "Alliances and their member councils"),
        (name = "catalogue", description = "Published plugins and their versions"),
        (name = "installs", description = "Which plugin versions each alliance runs"),
        (name = "access", description = "Members, tokens and the audit log"),
        (name = "observability", description = "Usage for cost sharing, KPIs and citizen feedback"),
        (name = "data-protection", description = "Residents' subject access and erasure requests across every service"),
    ),
    components(schemas(Problem, error::FieldError)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// Declares bearer authentication, and on each `/api/v1` operation the permission it needs
/// (`x-guildhall-access`, from [`access::RULES`]) and that it needs a bearer credential.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A Guildhall token (`ghall_…`) or a JWT from a configured OpenID Connect issuer",
                    ))
                    .build(),
            ),
        );
    }
}

fn annotate_access(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::extensions::ExtensionsBuilder;
    use utoipa::openapi::security::SecurityRequirement;
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            (axum::http::Method::GET, item.get.as_mut()),
            (axum::http::Method::PUT, item.put.as_mut()),
            (axum::http::Method::POST, item.post.as_mut()),
            (axum::http::Method::DELETE, item.delete.as_mut()),
        ];
        for (method, operation) in operations {
            let (Some(operation), Some(rule)) = (operation, access::rule_for(&method, path)) else {
                continue;
            };
            operation.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
            let extensions = ExtensionsBuilder::new()
                .add("x-guildhall-access", rule.access.describe())
                .build();
            match operation.extensions.as_mut() {
                Some(existing) => existing.merge(extensions),
                None => operation.extensions = Some(extensions),
            }
        }
    }
}

fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::telemetry::metrics))
}

fn service_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        routes::telemetry::feedback,
        routes::telemetry::feedback_form
    ))
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            routes::tenants::create_tenant,
            routes::tenants::list_tenants
        ))
        .routes(routes!(
            routes::tenants::get_tenant,
            routes::tenant_lifecycle::delete_tenant
        ))
        .routes(routes!(
            routes::tenants::put_council,
            routes::tenant_lifecycle::delete_council
        ))
        .routes(routes!(routes::tenant_lifecycle::export_tenant))
        .routes(routes!(routes::tenants::put_brand))
        .routes(routes!(routes::plugins::list_plugins))
        .routes(routes!(routes::plugins::get_plugin))
        .routes(routes!(routes::plugins::get_version))
        .routes(routes!(routes::plugins::yank))
        .routes(routes!(routes::owners::list_owners))
        .routes(routes!(
            routes::owners::add_owner,
            routes::owners::remove_owner
        ))
        .routes(routes!(routes::owners::list_keys))
        .routes(routes!(routes::owners::put_key, routes::owners::delete_key))
        .routes(routes!(routes::installs::list_installs))
        .routes(routes!(
            routes::installs::put_install,
            routes::installs::delete_install
        ))
        .routes(routes!(routes::install_settings::list_secrets))
        .routes(routes!(
            routes::install_settings::put_secret,
            routes::install_settings::delete_secret
        ))
        .routes(routes!(
            routes::install_settings::get_council_config,
            routes::install_settings::put_council_config
        ))
        .routes(routes!(routes::install_settings::list_schedules))
        .routes(routes!(routes::install_settings::run_schedule))
        .routes(routes!(
            routes::subject_requests::create_subject_request,
            routes::subject_requests::list_subject_requests
        ))
        .routes(routes!(routes::subject_requests::get_subject_request))
        .routes(routes!(
            routes::retention::get_retention,
            routes::retention::put_retention
        ))
        .routes(routes!(routes::members::list_members))
        .routes(routes!(routes::members::put_member))
        .routes(routes!(
            routes::tokens::create_token,
            routes::tokens::list_tokens
        ))
        .routes(routes!(routes::tokens::revoke_token))
        .routes(routes!(routes::audit::read_audit))
        .routes(routes!(routes::telemetry::usage))
        .routes(routes!(routes::telemetry::kpis))
        .routes(routes!(routes::telemetry::comments))
}

fn publish_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(routes::plugins::publish))
}

/// The OpenAPI document for every route the server has.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = health_routes()
        .merge(api_routes())
        .merge(publish_routes())
        .merge(service_routes())
        .into_openapi();
    annotate_access(&mut doc);
    doc
}

/// Builds the whole HTTP application.
pub fn router(state: AppState, settings: &Settings) -> Router {
    // Uploads carry a component, so their limit is the component cap plus room for the
    // manifest and signature; every other /api body is small JSON.
    let upload_limit = state.runtime.config().max_component_bytes + (1 << 20);
    let (publish, _) = publish_routes().split_for_parts();
    let (routes, _) = api_routes().split_for_parts();
    let (health, _) = health_routes().split_for_parts();
    let (services, _) = service_routes().split_for_parts();
    let expose = || axum::middleware::from_fn(middleware::expose_route);
    // One layer decides access for every /api/v1 route (route_layer: it sees the matched
    // route, and unmatched paths still get their plain 404).
    let guard = axum::middleware::from_fn_with_state(state.clone(), access::enforce);
    let routes = routes.route_layer(guard.clone());
    let publish = publish.route_layer(guard);
    let doc = openapi();
    let doc = Arc::new(
        doc.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    let platform = routes
        .merge(health)
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_ref().clone(),
                    )
                }
            }),
        )
        .route_layer(expose())
        .fallback(not_found)
        // A body whose Content-Length is over the limit is refused before it is read;
        // one without a length is cut off at the limit while it is read.
        .layer(RequestBodyLimitLayer::new(settings.api_body_limit))
        .layer(DefaultBodyLimit::max(settings.api_body_limit))
        .merge(
            publish
                .route_layer(expose())
                .layer(RequestBodyLimitLayer::new(upload_limit))
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .layer(axum::middleware::from_fn(middleware::problem_details))
        // Platform responses are JSON for programs: nothing to frame, run or sniff.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    // The gateway passes plugins' own responses through (a plugin's 404 is its own
    // business), adding only security headers they did not set, and enforces the request
    // body cap itself.
    // Ratings are small (JSON, or the feedback page's form), whatever the service's own
    // body limit.
    let services = services
        .route_layer(expose())
        .layer(RequestBodyLimitLayer::new(32 * 1024))
        .layer(DefaultBodyLimit::max(32 * 1024))
        .route(
            "/assets/brand/colours/{file}",
            axum::routing::get(citizen::colour_css),
        )
        .route(
            "/assets/brand/logos/{digest}",
            axum::routing::get(citizen::logo),
        );
    let gateway = Router::new()
        .route(
            "/s/{tenant}/{council}/{plugin}",
            axum::routing::any(gateway::serve),
        )
        .route(
            "/s/{tenant}/{council}/{plugin}/",
            axum::routing::any(gateway::serve),
        )
        .route(
            "/s/{tenant}/{council}/{plugin}/{*path}",
            axum::routing::any(gateway::serve),
        )
        .route_layer(expose())
        .layer(DefaultBodyLimit::disable())
        // Plugins may set their own policy; a plugin that sets none still gets one, so a
        // page it serves cannot load scripts from elsewhere or be framed.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(gateway::DEFAULT_CSP),
        ))
        .merge(services);
    #[cfg(feature = "bench")]
    let gateway = gateway.merge(
        Router::new()
            .route(
                "/_bench/native/{tenant}/{council}",
                axum::routing::get(bench_native),
            )
            .route_layer(expose()),
    );
    let metrics = state.telemetry.metrics.clone();
    let app = platform.merge(gateway).with_state(state);
    let app = match settings.pages.clone() {
        Some(pages) => app.merge(pages),
        None => app,
    };
    app
        // On every response, plugins' included: no MIME sniffing, no referrer leaks.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            middleware::request_context,
        ))
}

/// The benchmark harness's reference: a native handler answering what `hello` answers,
/// behind the same layers as the gateway. Only in builds with the `bench` feature.
#[cfg(feature = "bench")]
async fn bench_native(
    axum::extract::Path((tenant, council)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Hello from {council} ({tenant})!"),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
