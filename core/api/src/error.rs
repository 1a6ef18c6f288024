//! The one error type at the HTTP edge: every failure becomes RFC 9457 problem+json.
//!
//! Handlers return [`ApiError`]. Internal details (database errors, panics) are never put in
//! the body; they travel to the request middleware in a response extension and are logged
//! there once, with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The most characters of one caller-facing text (a detail, a field or a reason) in a problem.
/// Details can quote what the caller sent (a manifest line, a name); a problem stays small
/// whatever that was.
pub const MAX_PROBLEM_TEXT: usize = 1024;

/// The most field errors listed in one problem; the rest are counted.
const MAX_FIELD_ERRORS: usize = 50;

/// `text` cut to [`MAX_PROBLEM_TEXT`] characters, marked with an ellipsis when cut.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_PROBLEM_TEXT) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// One field-level validation failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// A path to the field, e.g. `councils[1].id` or `config.collection_api`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An RFC 9457 problem document as Guildhall sends it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:guildhall:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, safe to show to the caller.
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id, also in the `x-request-id` header and every log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level errors for validation failures.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// Extra members specific to the problem type.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
}

/// Marks a response rendered from an [`ApiError`]: the outermost middleware adds the request's
/// path and id to its problem document, whichever layer produced it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unstamped;

/// The internal cause of a 5xx response, for the log only.
#[derive(Debug, Clone)]
pub(crate) struct InternalCause(pub(crate) String);

/// An error the API answers with. Boxed, so results that carry it stay small.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    extensions: Map<String, Value>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    internal: Option<String>,
}

impl ApiError {
    /// A problem with the given status, type slug, title and detail.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Inner {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Map::new(),
            headers: Vec::new(),
            internal: None,
        }))
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 404: no such resource, or one the caller may not know exists.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 422: the request is well-formed but its content is invalid.
    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation failed",
            detail,
        );
        e.0.errors = errors;
        e
    }

    /// 500: something failed inside Guildhall. `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "The server could not complete the request; the request id identifies it in the logs.",
        );
        e.0.internal = Some(cause.to_string());
        e
    }

    /// 503: a dependency (usually the database) is unavailable.
    pub fn unavailable(detail: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        );
        e.0.internal = Some(cause.to_string());
        e
    }

    /// A problem for a status with no more specific information.
    pub fn from_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let (slug, title) = status_slug(status);
        Self::new(status, slug, title, detail)
    }

    /// Adds a member to the problem document.
    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extensions.insert(key.to_string(), value.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// A header the answer will carry, if set.
    pub fn header(&self, name: header::HeaderName) -> Option<HeaderValue> {
        self.0
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// The problem document as a JSON object, without the instance and request id the
    /// middleware adds.
    pub(crate) fn problem_object(&self) -> Map<String, Value> {
        match serde_json::to_value(self.problem()) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The caller-facing detail.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The field-level errors of a validation failure.
    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// The internal cause of a 5xx, for the log only (never shown to a caller).
    pub fn internal_cause(&self) -> Option<&str> {
        self.0.internal.as_deref()
    }

    /// The detail with any field errors and extensions, on one line, for the command line.
    pub fn describe(&self) -> String {
        let mut out = self.0.detail.clone();
        for e in &self.0.errors {
            out.push_str(&format!("; {}: {}", e.field, e.reason));
        }
        for (key, value) in &self.0.extensions {
            out.push_str(&format!("; {key}: {value}"));
        }
        out
    }

    fn problem(&self) -> Problem {
        let e = &self.0;
        let mut errors: Vec<FieldError> = e
            .errors
            .iter()
            .take(MAX_FIELD_ERRORS)
            .map(|f| FieldError {
                field: clip(&f.field),
                reason: clip(&f.reason),
            })
            .collect();
        if e.errors.len() > MAX_FIELD_ERRORS {
            errors.push(FieldError {
                field: "*".to_string(),
                reason: format!("{} more errors", e.errors.len() - MAX_FIELD_ERRORS),
            });
        }
        Problem {
            kind: format!("urn:guildhall:problem:{}", e.slug),
            title: e.title.to_string(),
            status: e.status.as_u16(),
            detail: clip(&e.detail),
            instance: None,
            request_id: None,
            errors,
            extensions: e.extensions.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0.status.as_u16(), self.0.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let inner = *self.0;
        let mut response = (inner.status, axum::Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in inner.headers {
            response.headers_mut().insert(name, value);
        }
        if let Some(cause) = inner.internal {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response.extensions_mut().insert(Unstamped);
        response
    }
}

impl From<guildhall_store::Error> for ApiError {
    fn from(err: guildhall_store::Error) -> Self {
        use guildhall_store::Error as E;
        match err {
            E::TenantExists(t) => ApiError::conflict(format!("tenant {t} already exists")),
            E::DuplicateTenant(t) => {
                ApiError::bad_request(format!("tenant {t} is declared more than once"))
            }
            E::UnknownLogo(logo) => ApiError::validation(
                format!("no logo is stored at {logo}"),
                vec![FieldError {
                    field: "brand.logo".to_string(),
                    reason: "no logo is stored at that path".to_string(),
                }],
            ),
            E::InvalidOverrides { council, fields } => ApiError::validation(
                format!(
                    "council {council}'s own settings do not fit this version; change them first"
                ),
                fields
                    .into_iter()
                    .map(|(field, reason)| FieldError {
                        field: format!("councils.{council}.{field}"),
                        reason,
                    })
                    .collect(),
            ),
            E::UnknownCouncil(council) => ApiError::validation(
                "invalid councils",
                vec![FieldError {
                    field: "councils".to_string(),
                    reason: format!("no council {council} in this tenant"),
                }],
            ),
            E::CouncilGone(council) => ApiError::not_found(format!("no council {council}")),
            e if e.is_tenant_gone() => {
                ApiError::not_found(format!("no tenant {}", gone_tenant(&e)))
            }
            e if e.is_transient() => ApiError::unavailable(
                "the database is busy or unreachable; retry after the time in Retry-After",
                e,
            )
            .with_header(
                header::RETRY_AFTER,
                HeaderValue::from_static(DATABASE_RETRY_AFTER_SECS),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<guildhall_operations::Error> for ApiError {
    fn from(e: guildhall_operations::Error) -> Self {
        use axum::http::StatusCode;
        use guildhall_operations::Error as E;
        match e {
            E::Invalid { detail, fields } => ApiError::validation(
                detail,
                fields
                    .into_iter()
                    .map(|f| FieldError {
                        field: f.field,
                        reason: f.reason,
                    })
                    .collect(),
            ),
            e @ E::TooLarge(_) => {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            E::Conflict(detail) => ApiError::conflict(detail),
            E::Forbidden(detail) => ApiError::from_status(StatusCode::FORBIDDEN, detail),
            E::NotFound(detail) => ApiError::not_found(detail),
            E::Unconfirmed(detail) => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "confirmation-required",
                "Confirmation required",
                detail,
            ),
            e @ E::Archive(_) => ApiError::internal(e),
            E::Prepare(e) => e.into(),
            E::Access(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<guildhall_store::OwnerError> for ApiError {
    fn from(e: guildhall_store::OwnerError) -> Self {
        guildhall_operations::Error::from(e).into()
    }
}

/// A runtime refusal, as the publisher or installer sees it.
impl From<guildhall_runtime::PrepareError> for ApiError {
    fn from(e: guildhall_runtime::PrepareError) -> Self {
        use axum::http::StatusCode;
        use guildhall_runtime::PrepareError;
        match e {
            PrepareError::Manifest(errors) => ApiError::validation(
                "invalid manifest",
                errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: format!("manifest.{}", e.field),
                        reason: e.reason,
                    })
                    .collect(),
            ),
            PrepareError::TooLarge { .. } => {
                ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            PrepareError::UndeclaredImports(ref imports) => {
                let imports = imports.clone();
                ApiError::validation(e.to_string(), Vec::new()).with_extension("imports", imports)
            }
            PrepareError::Busy(wait) => {
                ApiError::from_status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_header(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                )
            }
            PrepareError::NotAComponent(_)
            | PrepareError::Compile(_)
            | PrepareError::CompileTimeout(_)
            | PrepareError::NotAService(_)
            | PrepareError::Link(_) => ApiError::validation(e.to_string(), Vec::new()),
            PrepareError::Load(_) | PrepareError::Engine(_) => ApiError::internal(e),
        }
    }
}

impl From<guildhall_authz::ManageError> for ApiError {
    fn from(e: guildhall_authz::ManageError) -> Self {
        use guildhall_authz::ManageError as E;
        match e {
            E::Invalid(reason) => ApiError::validation(reason, Vec::new()),
            E::Field(field, reason) => ApiError::validation(
                reason.clone(),
                vec![FieldError {
                    field: field.into(),
                    reason,
                }],
            ),
            E::Store(e) => e.into(),
            E::Casbin(e) => ApiError::internal(e),
        }
    }
}

/// The tenant a write found deleted, as far as the error names it.
fn gone_tenant(e: &guildhall_store::Error) -> String {
    match e {
        guildhall_store::Error::TenantGone(tenant) => tenant.to_string(),
        _ => "(deleted while the request was served)".to_string(),
    }
}

/// How long a caller is asked to wait when the database is busy or reconnecting.
pub const DATABASE_RETRY_AFTER_SECS: &str = "2";

/// The type slug and title used for a bare status.
pub(crate) fn status_slug(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad-request", "Bad request"),
        401 => ("unauthenticated", "Unauthenticated"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        406 => ("not-acceptable", "Not acceptable"),
        408 => ("timeout", "Request timeout"),
        409 => ("conflict", "Conflict"),
        413 => ("payload-too-large", "Payload too large"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        422 => ("validation", "Validation failed"),
        429 => ("too-many-requests", "Too many requests"),
        500 => ("internal", "Internal server error"),
        502 => ("bad-gateway", "Bad gateway"),
        503 => ("unavailable", "Service unavailable"),
        504 => ("gateway-timeout", "Gateway timeout"),
        s if s >= 500 => ("server-error", "Server error"),
        _ => ("client-error", "Client error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_detail_is_clipped_at_a_character_boundary() {
        let detail = "é".repeat(70_000);
        let problem = ApiError::bad_request(detail).problem();
        assert_eq!(problem.detail.chars().count(), MAX_PROBLEM_TEXT + 1);
        assert!(problem.detail.ends_with('…'));
        assert_eq!(ApiError::bad_request("short").problem().detail, "short");
    }

    #[test]
    fn many_field_errors_are_listed_up_to_a_limit_and_counted() {
        let errors = (0..70)
            .map(|i| FieldError {
                field: format!("f{i}"),
                reason: "x".repeat(5000),
            })
            .collect();
        let problem = ApiError::validation("bad", errors).problem();
        assert_eq!(problem.errors.len(), MAX_FIELD_ERRORS + 1);
        assert_eq!(problem.errors[MAX_FIELD_ERRORS].reason, "20 more errors");
        assert!(problem.errors[0].reason.chars().count() <= MAX_PROBLEM_TEXT + 1);
        let rendered = serde_json::to_vec(&problem).unwrap();
        assert!(
            rendered.len() < crate::middleware::MAX_ERROR_BODY,
            "{}",
            rendered.len()
        );
    }
}
