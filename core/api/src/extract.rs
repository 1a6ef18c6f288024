//! Extractors whose rejections are problem+json with a precise message.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Unknown fields are rejected by the target types (`deny_unknown_fields`);
/// a wrong content type is 415, an oversized body 413, malformed JSON 400 and a body that
/// does not fit the type 422, each with the parser's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a request body with content type application/json".to_string()
        }
        _ => rejection.body_text(),
    };
    ApiError::from_status(status, detail)
}

/// Path parameters, with a 400 problem when they do not parse (e.g. an invalid id).
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        PathRejection::FailedToDeserializePathParams(e) => {
            // The serde message already says which id is invalid and why.
            e.body_text()
                .trim_start_matches("Invalid URL: ")
                .to_string()
        }
        _ => rejection.body_text(),
    };
    if status.is_server_error() {
        ApiError::internal(detail)
    } else {
        ApiError::bad_request(detail)
    }
}

/// The tenant of a `/api/v1/tenants/{tenant}/…` route, checked to exist and resolved once
/// by the access layer, which decided the caller may act in it. Handlers take it instead of
/// parsing and looking up the `{tenant}` segment again.
#[derive(Debug, Clone)]
pub struct Scope(pub guildhall_store::TenantScope);

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<guildhall_store::TenantScope>()
            .cloned()
            .map(Scope)
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "{} has no tenant scope: it is not a tenant route of the access layer",
                    parts.uri.path()
                ))
            })
    }
}

/// A query string. Parameters that do not fit the target type (unknown ones included, with
/// `deny_unknown_fields`) are 400 with the parser's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}
