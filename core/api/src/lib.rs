//! Guildhall's HTTP interface.
//!
//! [`router`] assembles every route with its middleware; [`openapi`] is the OpenAPI document
//! generated from the same handlers, so the two cannot drift apart.
//!
//! **API Boundary:** this crate turns HTTP into calls on the store (and later the runtime)
//! and back. It holds no SQL and no wasm; errors leave it only as problem+json.

pub mod error;
pub mod extract;
pub mod middleware;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use guildhall_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, FieldError, Problem};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
}

/// HTTP settings from the operator's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest JSON body accepted on `/api` routes, in bytes.
    pub api_body_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_body_limit: 1024 * 1024,
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
    ),
    components(schemas(Problem, error::FieldError)),
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(
            routes::tenants::create_tenant,
            routes::tenants::list_tenants
        ))
        .routes(routes!(routes::tenants::get_tenant))
        .routes(routes!(routes::tenants::put_council))
}

/// The OpenAPI document for every route the server has.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// Builds the whole HTTP application.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let (routes, doc) = api_routes().split_for_parts();
    let doc = Arc::new(
        doc.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    routes
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
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(settings.api_body_limit))
        .layer(axum::middleware::from_fn(middleware::problem_details))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
