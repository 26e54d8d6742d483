//! The request extractors every handler uses: [`ApiJson`] (the body), [`ApiPath`] and
//! [`ApiQuery`]. Their one rejection type is [`ApiError`], so a malformed request gets the same
//! error body as any other failure.
//!
//! Request bodies are deserialized leniently: each field of a body type holds the JSON value
//! as sent, and the configuration layer validates them afterwards, so a request with several
//! bad fields hears about every one at once (`errors: {"<field>": ...}`), not only the first
//! one serde tripped over. An empty body counts as `{}`; `Content-Type` is not required.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ErrorKind};

/// A JSON object request body, deserialized into `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await?;
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new(
                    ErrorKind::BadRequest,
                    format!("the request body is not valid JSON: {e}"),
                )
            })?
        };
        if !value.is_object() {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_value(value).map(ApiJson).map_err(|e| {
            ApiError::new(
                ErrorKind::BadRequest,
                format!("the request body does not fit: {e}"),
            )
        })
    }
}

/// The path parameters, deserialized into `T`.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(t) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(t))
    }
}

/// The query string, deserialized into `T`.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(t) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(t))
    }
}
