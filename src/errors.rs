//! Every error response the mock sends, built in one place with the real
//! server's status codes, headers and bodies.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderValue;

/// An error the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// No `Authorization` header: the rate-limit middleware's problem+json 401.
    NoAuthorizationHeader,
    /// An empty bearer token, or not a bearer token at all.
    MissingApiKey,
    /// A key that is unknown, revoked or refused.
    InvalidApiKey,
    /// A run id without the `run_` prefix.
    InvalidRunId,
    /// No such run. `should_retry` is the `x-should-retry` header the SDK obeys.
    RunNotFound { should_retry: bool },
    /// No such route.
    RouteNotFound,
    /// The route exists but not for this method.
    MethodNotAllowed { allow: &'static str },
    /// A public access token (`"pub": true`) without a `sub`, or naming an
    /// environment the mock does not know.
    InvalidPublicAccessToken,
    /// A public access token whose signature, algorithm, `iss`, `aud`, `exp`
    /// or `nbf` is wrong.
    PublicAccessTokenInvalid,
    /// A public access token whose scopes do not cover the resource.
    Forbidden,
    /// A route that checks the key itself refusing anything but a secret key,
    /// in its own words.
    KeyRequired(KeyRefusal),
    /// An action route's resource does not exist.
    ResourceNotFound,
    /// `POST /api/v1/auth/public-tokens`: the body is not JSON.
    InvalidRequestBody,
    /// `POST /api/v1/auth/public-tokens`: `expirationTime` is not a time.
    InvalidExpirationTime,
    /// `POST /api/v1/auth/public-tokens`: `expirationTime` is not in the future.
    ExpirationNotFuture,
    /// `POST /api/v1/auth/public-tokens`: `expirationTime` is more than 30 days away.
    ExpirationTooLong,
}

/// The 401 texts of the routes that authenticate by hand and take only
/// secret keys (each spells it its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// `POST /api/v1/auth/jwt/claims`: `Invalid or Missing API key`.
    Claims,
    /// `POST /api/v1/runs/{id}/reschedule`: `Invalid or missing API Key`.
    Reschedule,
    /// `POST /api/v1/runs/{id}/tags`, `GET /api/v1/runs/{id}/metadata`: `Invalid or Missing API Key`.
    TagsAndMetadata,
}

/// The parts of an error response.
pub struct ErrorParts {
    pub status: StatusCode,
    pub content_type: HeaderValue,
    pub body: Bytes,
    /// One extra header, if the error has one.
    pub extra: Option<(&'static str, &'static str)>,
}

const JSON: &str = "application/json; charset=utf-8";
const PROBLEM_JSON: &str = "application/problem+json; charset=utf-8";

/// The middleware's body, pretty-printed with two spaces as the server sends it.
const NO_AUTH_BODY: &str = r#"{
  "title": "Unauthorized",
  "status": 401,
  "type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/401",
  "detail": "No authorization header provided",
  "error": "No authorization header provided"
}"#;

impl ApiError {
    /// The status code.
    pub fn status(self) -> StatusCode {
        match self {
            ApiError::NoAuthorizationHeader
            | ApiError::MissingApiKey
            | ApiError::InvalidApiKey
            | ApiError::InvalidPublicAccessToken
            | ApiError::PublicAccessTokenInvalid
            | ApiError::KeyRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::InvalidRunId
            | ApiError::InvalidRequestBody
            | ApiError::InvalidExpirationTime
            | ApiError::ExpirationNotFuture
            | ApiError::ExpirationTooLong => StatusCode::BAD_REQUEST,
            ApiError::RunNotFound { .. } | ApiError::RouteNotFound | ApiError::ResourceNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// Status, content type, body and extra headers.
    pub fn parts(self) -> ErrorParts {
        let json = |body: &'static str| (HeaderValue::from_static(JSON), Bytes::from_static(body.as_bytes()));
        let (content_type, body) = match self {
            ApiError::NoAuthorizationHeader => {
                (HeaderValue::from_static(PROBLEM_JSON), Bytes::from_static(NO_AUTH_BODY.as_bytes()))
            }
            ApiError::MissingApiKey => json(r#"{"error":"Invalid or Missing API key"}"#),
            ApiError::InvalidApiKey => json(r#"{"error":"Invalid API key"}"#),
            ApiError::InvalidRunId => json(r#"{"error":"Invalid or missing run ID"}"#),
            ApiError::RunNotFound { .. } | ApiError::RouteNotFound => json(r#"{"error":"Not found"}"#),
            ApiError::MethodNotAllowed { .. } => json(r#"{"error":"Method not allowed"}"#),
            ApiError::InvalidPublicAccessToken => json(r#"{"error":"Invalid Public Access Token"}"#),
            ApiError::PublicAccessTokenInvalid => json(r#"{"error":"Public Access Token is invalid"}"#),
            ApiError::Forbidden => {
                json(r#"{"error":"Unauthorized","code":"unauthorized","param":"access_token","type":"authorization"}"#)
            }
            ApiError::KeyRequired(KeyRefusal::Claims) => json(r#"{"error":"Invalid or Missing API key"}"#),
            ApiError::KeyRequired(KeyRefusal::Reschedule) => json(r#"{"error":"Invalid or missing API Key"}"#),
            ApiError::KeyRequired(KeyRefusal::TagsAndMetadata) => json(r#"{"error":"Invalid or Missing API Key"}"#),
            ApiError::ResourceNotFound => json(r#"{"error":"Resource not found"}"#),
            ApiError::InvalidRequestBody => json(r#"{"error":"Invalid request body"}"#),
            ApiError::InvalidExpirationTime => json(r#"{"error":"Invalid expiration time"}"#),
            ApiError::ExpirationNotFuture => json(r#"{"error":"Expiration time must be in the future"}"#),
            ApiError::ExpirationTooLong => json(r#"{"error":"Expiration time cannot exceed 30 days"}"#),
        };
        let extra = match self {
            ApiError::RunNotFound { should_retry: true } => Some(("x-should-retry", "true")),
            ApiError::RunNotFound { should_retry: false } => Some(("x-should-retry", "false")),
            ApiError::MethodNotAllowed { allow } => Some(("allow", allow)),
            _ => None,
        };
        ErrorParts { status: self.status(), content_type, body, extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_json_with_an_error_string() {
        for e in [
            ApiError::NoAuthorizationHeader,
            ApiError::MissingApiKey,
            ApiError::InvalidApiKey,
            ApiError::InvalidRunId,
            ApiError::RunNotFound { should_retry: true },
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed { allow: "GET, HEAD, OPTIONS" },
            ApiError::InvalidPublicAccessToken,
            ApiError::PublicAccessTokenInvalid,
            ApiError::Forbidden,
            ApiError::KeyRequired(KeyRefusal::Claims),
            ApiError::KeyRequired(KeyRefusal::Reschedule),
            ApiError::KeyRequired(KeyRefusal::TagsAndMetadata),
            ApiError::ResourceNotFound,
            ApiError::InvalidRequestBody,
            ApiError::InvalidExpirationTime,
            ApiError::ExpirationNotFuture,
            ApiError::ExpirationTooLong,
        ] {
            let parts = e.parts();
            let v: serde_json::Value = serde_json::from_slice(&parts.body).unwrap_or_default();
            assert!(v["error"].is_string(), "{e:?}");
        }
    }
}
