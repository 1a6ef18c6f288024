//! An alliance's usage per council (with each council's share, and as CSV), its services' performance (KPIs, charted as SVG on the server) and citizens' feedback.

use axum::Router;

use crate::Console;

/// This module's templates.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[];

/// This module's routes, relative to `/console`.
pub fn routes() -> Router<Console> {
    Router::new()
}
