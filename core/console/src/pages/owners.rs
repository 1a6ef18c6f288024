//! For plugin owners: their plugins, versions, co-owners, signing keys and yanking.

use axum::Router;

use crate::Console;

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
}
