//! The console's pages, one module per area.

pub mod audit;
pub mod catalogue;
pub mod councils;
pub mod home;
pub mod installs;
pub mod keys;
pub mod members;
pub mod owners;
pub mod platform;
pub mod subject_requests;
pub mod tokens;
pub mod usage;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use guildhall_api::ApiError;
use guildhall_store::TenantScope;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::Console;
use crate::render::PageError;

/// Any path under `/console` with no page.
pub async fn not_found() -> Response {
    PageError::not_found().into_response()
}

/// A method a page does not take (a GET of a form's action, say).
pub async fn method_not_allowed() -> Response {
    PageError::method_not_allowed().into_response()
}

/// A page's `?done=` query: what the form posted before the redirect did, for the
/// confirmation banner.
#[derive(Debug, Deserialize)]
pub struct Flash {
    done: Option<String>,
}

/// One entry of a GOV.UK error summary: the field's id (the link target) and the message.
#[derive(Debug, Clone, Serialize)]
pub struct FormError {
    /// The id of the field in error, if the error is about one.
    pub field: Option<String>,
    /// The message, said the GOV.UK way ("Enter …", "Select …").
    pub text: String,
}

impl FormError {
    /// An error about `field`.
    pub fn at(field: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            text: text.into(),
        }
    }

    /// An error about the whole form.
    pub fn general(text: impl Into<String>) -> Self {
        Self {
            field: None,
            text: text.into(),
        }
    }
}

/// The first error about `field`, for the message beside it.
pub fn error_for<'a>(errors: &'a [FormError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field.as_deref() == Some(field))
        .map(|e| e.text.as_str())
}

/// The operation's message as a sentence on the page.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The error summary's entries for an operation's refusal: its fields, or the whole form.
pub fn refusal(
    e: &ApiError,
    field_of: impl Fn(&str) -> Option<&'static str>,
    conflict_at: &str,
) -> Vec<FormError> {
    if e.errors().is_empty() {
        return vec![if e.status() == StatusCode::CONFLICT {
            FormError::at(conflict_at, e.detail().to_string())
        } else {
            FormError::general(e.detail().to_string())
        }];
    }
    e.errors()
        .iter()
        .map(|f| match field_of(&f.field) {
            Some(id) => FormError::at(id, f.reason.clone()),
            None => FormError::general(format!("{}: {}", f.field, f.reason)),
        })
        .collect()
}

/// The options of a form's council `<select>`: "All councils" (the empty value), then each
/// of the alliance's councils, with the one `chosen` selected.
pub async fn council_options(
    console: &Console,
    scope: &TenantScope,
    chosen: &str,
) -> Result<Vec<minijinja::Value>, PageError> {
    let councils = console.app.store.councils(scope).list().await?;
    let mut options = vec![context! {
        value => "", text => "All councils", selected => chosen.is_empty()
    }];
    options.extend(councils.iter().map(|c| {
        context! {
            value => c.id.to_string(),
            text => format!("{} ({})", c.name, c.id),
            selected => chosen == c.id.as_str(),
        }
    }));
    Ok(options)
}

/// A date and time as people read it: `6 December 2026, 20:15 UTC`.
pub fn when(t: &time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}
