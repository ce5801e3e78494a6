//! Request → route → handler → response. No sockets here: [`App::handle`] is a
//! plain function of a request, so it is tested without a server.

use crate::auth::{AuthPolicy, Caller, Environment, KeyKind};
use crate::errors::ApiError;
use crate::model::{ApiVersion, RenderOptions, render_json};
use crate::store::Store;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// The response body type.
pub type Body = Full<Bytes>;

/// Everything a request may read; immutable after start-up.
#[derive(Debug)]
pub struct State {
    pub store: Store,
    pub auth: AuthPolicy,
    /// The `x-should-retry` header on a run that does not exist.
    pub not_found_retry: bool,
}

/// The application: cheap to clone, shared by all connections.
#[derive(Debug, Clone)]
pub struct App {
    state: Arc<State>,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const RUNS_ALLOW: &str = "GET, HEAD, OPTIONS";

/// The routes the mock knows.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    RetrieveRun(&'a str),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    match path.strip_prefix("/api/v3/runs/") {
        Some(id) if !id.contains('/') => Route::RetrieveRun(id),
        _ => Route::NotFound,
    }
}

impl App {
    /// An app over `state`.
    pub fn new(state: State) -> App {
        App { state: Arc::new(state) }
    }

    /// The shared state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Answers one request. Never fails: every problem is a response.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Body> {
        let path = req.uri().path();
        let api = path == "/api" || path.starts_with("/api/");
        let mut response = match self.answer(req, path, api) {
            Ok(response) => response,
            Err(e) => error_response(e),
        };
        if api {
            response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
        }
        response
    }

    fn answer<B>(&self, req: &Request<B>, path: &str, api: bool) -> Result<Response<Body>, ApiError> {
        if !api {
            return Err(ApiError::RouteNotFound);
        }
        if req.method() == Method::OPTIONS {
            return Ok(preflight(req));
        }
        // As on the real server, authentication comes before routing for every
        // `/api` path.
        let header = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        let caller = self.state.auth.authenticate(header)?;
        match route(path) {
            Route::RetrieveRun(id) => {
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    return Err(ApiError::MethodNotAllowed { allow: RUNS_ALLOW });
                }
                self.retrieve_run(req, id, caller)
            }
            Route::NotFound => Err(ApiError::RouteNotFound),
        }
    }

    fn retrieve_run<B>(&self, req: &Request<B>, id: &str, caller: Caller) -> Result<Response<Body>, ApiError> {
        if !id.starts_with("run_") {
            return Err(ApiError::InvalidRunId);
        }
        let store = &self.state.store;
        let run = store.get(id).ok_or(ApiError::RunNotFound { should_retry: self.state.not_found_retry })?;
        let version = ApiVersion::from_header(req.headers().get(ApiVersion::HEADER).map(HeaderValue::as_bytes));
        let opts = RenderOptions {
            version,
            zero_costs: caller.kind.environment() == Environment::Development,
            hide_packets: matches!(caller.kind, KeyKind::Public(_)),
        };
        let body = render_json(&run, opts, |id| store.related(id));
        Ok(json_response(StatusCode::OK, Bytes::from(body)))
    }
}

/// A JSON response with the API's content type.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// The response for an [`ApiError`].
pub fn error_response(e: ApiError) -> Response<Body> {
    let parts = e.parts();
    let mut response = Response::new(Full::new(parts.body));
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, parts.content_type);
    if let Some((name, value)) = parts.extra {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A CORS preflight answer: `{}` with the allowed methods, and the requested
/// headers echoed back.
fn preflight<B>(req: &Request<B>) -> Response<Body> {
    let mut response = json_response(StatusCode::OK, Bytes::from_static(b"{}"));
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"));
    let requested = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static("authorization, content-type, x-trigger-api-version")),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    headers.insert(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/api/v3/runs/run_1"), Route::RetrieveRun("run_1"));
        assert_eq!(route("/api/v3/runs/"), Route::RetrieveRun(""));
        assert_eq!(route("/api/v3/runs/run_1/x"), Route::NotFound);
        assert_eq!(route("/api/v3/runs"), Route::NotFound);
        assert_eq!(route("/"), Route::NotFound);
    }
}
