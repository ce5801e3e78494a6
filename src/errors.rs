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
            ApiError::NoAuthorizationHeader | ApiError::MissingApiKey | ApiError::InvalidApiKey => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::InvalidRunId => StatusCode::BAD_REQUEST,
            ApiError::RunNotFound { .. } | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
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
        ] {
            let parts = e.parts();
            let v: serde_json::Value = serde_json::from_slice(&parts.body).unwrap_or_default();
            assert!(v["error"].is_string(), "{e:?}");
        }
    }
}
