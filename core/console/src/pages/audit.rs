//! An alliance's audit log, page by page, and verifying its hash chain.

use axum::Router;

use crate::Console;

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
}
