//! What the run-flow routes (trigger, batches, list, cancel…) share: the
//! request context they get, the reply they give (status, JSON body, extra
//! headers, the runs they touched for the journal) and the real server's
//! generic error bodies.

use super::App;
use crate::auth::{KeyKind, Principal};
use crate::errors::ApiError;
use crate::scope::{Action, Resource, ResourceType};
use crate::time::Millis;
use crate::world::World;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

/// One request to a run-flow route, authenticated and with its body read.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub world: &'a World,
    pub req: &'a Request<()>,
    /// The secret key of the caller's environment (a token's environment's key).
    pub key: &'a str,
    /// Who the caller authenticated as (a secret key or a public access token).
    pub principal: &'a Principal<'a>,
    /// The key kind bodies are rendered for.
    pub kind: KeyKind,
    /// The local address the connection reached (where URLs point without a `Host`).
    pub reached: Option<std::net::SocketAddr>,
    pub now: Millis,
    pub body: Bytes,
}

impl Ctx<'_> {
    /// The host URLs in answers point at (see [`super::host_or`]).
    pub fn host(&self) -> String {
        super::host_or(self.req, self.reached)
    }

    /// The route's scope check (always passes for keys): the 403 otherwise.
    pub fn authorize(&self, action: Action, resources: &[Resource<'_>]) -> Result<(), Reply> {
        self.principal.authorize(action, resources).map_err(Reply::api_error)
    }

    /// A check that passes when the token may do `action` on the whole
    /// collection of any of `collections`, or else on every one of `ids` (of
    /// type `kind`; an empty list of ids is no grant).
    pub fn authorize_all(
        &self,
        action: Action,
        collections: &[ResourceType],
        kind: ResourceType,
        ids: &[String],
    ) -> Result<(), Reply> {
        let Some(token) = self.principal.token() else { return Ok(()) };
        let whole: Vec<Resource<'_>> = collections.iter().map(|c| Resource::collection(*c)).collect();
        let each = !ids.is_empty()
            && ids.iter().all(|id| token.ability.can(action, &[Resource { kind, id: Some(id.as_str()) }]));
        if token.ability.can(action, &whole) || each { Ok(()) } else { Err(Reply::api_error(ApiError::Forbidden)) }
    }

    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

/// A route's answer before faults shape it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Runs created or changed, for the journal.
    pub touched: Vec<String>,
    /// The touched runs were stamped and their watchers woken already
    /// (see [`crate::ledger::Ledger::trigger_stamped`]).
    pub stamped: bool,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        Reply {
            status,
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            headers: Vec::new(),
            touched: Vec::new(),
            stamped: false,
        }
    }

    /// Pre-serialised JSON.
    pub fn bytes(status: StatusCode, body: impl Into<Bytes>) -> Reply {
        Reply { status, body: body.into(), headers: Vec::new(), touched: Vec::new(), stamped: false }
    }

    /// `{"error": message}`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
        Reply::json(status, &json!({ "error": message.into() }))
    }

    /// Names the runs the request created or changed.
    pub fn touching(mut self, ids: impl IntoIterator<Item = String>) -> Reply {
        self.touched.extend(ids);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// The server's 405 for a route that exists with other methods.
    pub fn method_not_allowed(allow: &str) -> Reply {
        Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed").with_header("allow", allow)
    }

    /// An API error as the server's shared error bodies render it.
    pub fn api_error(e: ApiError) -> Reply {
        let parts = e.parts();
        let mut reply = Reply::bytes(parts.status, parts.body);
        if let Some((name, value)) = parts.extra {
            reply = reply.with_header(name, value);
        }
        reply
    }

    /// Adds the `x-trigger-jwt` headers of a minted token.
    pub fn with_minted(mut self, minted: crate::jwt::Minted) -> Reply {
        self.headers.extend(minted.into_headers().into_iter().flatten());
        self
    }

    /// The server's 413.
    pub fn too_large() -> Reply {
        Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    }

    /// 404 `{"error":"Resource not found"}` of an action route's `findResource`.
    pub fn resource_not_found() -> Reply {
        Reply::error(StatusCode::NOT_FOUND, "Resource not found")
    }
}

/// The query parameters, percent-decoded, in order.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub use crate::excerpt::percent_decode;

/// zod's name of a JSON value's type, as in "received number".
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A path as zod-validation-error joins it: `options.tags[0]`.
pub fn join_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) if is_identifier(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Key(k) => out.push_str(&format!("[\"{k}\"]")),
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// One step of a path into a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A path into a request body as a check descends it, held on the stack:
/// copied into an [`Issue`] only when the check finds one, so a valid body
/// costs no allocation for its paths.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    parent: Option<&'a At<'a>>,
    seg: Option<Seg<'a>>,
}

#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// The body itself.
    pub const ROOT: At<'static> = At { parent: None, seg: None };

    /// The member `k` of this.
    pub fn key(&'a self, k: &'a str) -> At<'a> {
        At { parent: Some(self), seg: Some(Seg::Key(k)) }
    }

    /// The item `i` of this.
    pub fn index(&'a self, i: usize) -> At<'a> {
        At { parent: Some(self), seg: Some(Seg::Index(i)) }
    }

    /// The path from the body down to this.
    pub fn path(&self) -> Vec<PathSeg> {
        let mut path = self.parent.map(At::path).unwrap_or_default();
        match self.seg {
            Some(Seg::Key(k)) => path.push(PathSeg::Key(k.to_owned())),
            Some(Seg::Index(i)) => path.push(PathSeg::Index(i)),
            None => {}
        }
        path
    }
}

/// One zod issue: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: Vec<PathSeg>,
    pub message: String,
}

impl Issue {
    /// The issue as zod-validation-error 1.5 prints it.
    pub fn text(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else if let [PathSeg::Index(i)] = self.path.as_slice() {
            format!("{} at index {i}", self.message)
        } else {
            format!("{} at \"{}\"", self.message, join_path(&self.path))
        }
    }
}

/// The 400 of a body that fails its schema: `Validation error: …`, issues joined by `; `.
pub fn validation_error(issues: &[Issue]) -> Reply {
    let text: Vec<String> = issues.iter().map(Issue::text).collect();
    Reply::error(StatusCode::BAD_REQUEST, format!("Validation error: {}", text.join("; ")))
}

/// The JSON body, or the server's 400 for an empty or unparsable one.
pub fn json_body(body: &Bytes) -> Result<Value, Reply> {
    if body.is_empty() {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "Request body is empty"));
    }
    serde_json::from_slice(body).map_err(|_| Reply::error(StatusCode::BAD_REQUEST, "Invalid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_copied_out_segment_by_segment() {
        let root = At::ROOT;
        let options = root.key("options");
        let tags = options.key("tags");
        let second = tags.index(1);
        assert_eq!(join_path(&second.path()), "options.tags[1]");
        assert!(root.path().is_empty());
    }

    #[test]
    fn paths_and_issues_print_as_zod_validation_error() {
        let issue = Issue {
            path: vec![PathSeg::Key("options".into()), PathSeg::Key("tags".into()), PathSeg::Index(0)],
            message: "Tags must be less than 128 characters".into(),
        };
        assert_eq!(issue.text(), "Tags must be less than 128 characters at \"options.tags[0]\"");
        assert_eq!(join_path(&[PathSeg::Key("a-b".into())]), "[\"a-b\"]");
        assert_eq!(
            query_pairs(Some("filter%5Bstatus%5D=A%2CB&x")),
            [("filter[status]".to_owned(), "A,B".to_owned()), ("x".to_owned(), String::new())]
        );
    }
}
