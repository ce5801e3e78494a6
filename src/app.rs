//! Request → route → handler → response. No sockets here: [`App::handle`] is
//! a function of a request (and a handle to reset its connection), so it is
//! tested without a server.
//!
//! Per request: authenticate by the route's rules (a key, or a public access
//! token verified against its environment's key), then under the caller's key
//! lock (a few arithmetic steps, never across `.await`) take a rate-limit
//! token, decide the fault and move the run's lifecycle; then, with no lock
//! held, check the token's scopes, render, sleep if a fault says so, and
//! answer.

use crate::auth::{AuthPolicy, Environment, KeyKind, Principal, RouteAuth, TokenSummary, bearer_token as bearer};
use crate::body::Body;
use crate::clock::{Clock, wall_now};
use crate::config::{AdminAccess, Config, Limits};
use crate::conn::Control;
use crate::environments::Environments;
use crate::errors::{ApiError, KeyRefusal};
use crate::faults::{Action, decide};
use crate::journal::{self, Journal};
use crate::keys::Keys;
use crate::lifecycle::Progress;
use crate::model::{ApiVersion, PacketUrls, RenderOptions, Run};
use crate::packet::Packet;
use crate::presign::Presigner;
use crate::ratelimit::{Bucket, JWT_WINDOW, Verdict, Windows};
use crate::reqlog;
use crate::scenario::format::RouteName;
use crate::scenario::{Diagnostic, Source};
use crate::scope::{Action as ScopeAction, Resource};
use crate::time::Millis;
use crate::world::{Rendering, Settings, World};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

mod admin;
mod dashboard;
pub use admin::redact;
mod batches;
mod drive;
mod packets;
mod realtime;
mod reply;
mod retrieve;
mod runs;
mod shaping;
mod tasks;
mod tokens;
mod uploads;

pub use retrieve::{Reached, host_of, host_or};
use retrieve::{build_family, reached_of, render_options};
use shaping::{rate_limited, replacement, shape, with_rate_headers};

/// Where the realtime feeds live (outside the `/api` rate limiter, as on the server).
pub const REALTIME_PREFIX: &str = "/realtime/";

/// The reserved prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/_mock";

/// Everything a request may read or change.
#[derive(Debug)]
pub struct State {
    world: RwLock<Arc<World>>,
    settings: Settings,
    /// The scenario sources the world was built from, in order (shared, so
    /// that reading them never copies the files' text).
    sources: Mutex<Arc<Vec<Source>>>,
    /// Held by the one change to the scenarios under way (see [`App::update`]).
    writer: Mutex<()>,
    /// Admin changes to the scenarios whose body is being read or whose world
    /// is being built, at most [`CHANGES_IN_FLIGHT`]; the others wait their
    /// turn before reading their body, so a flood of large PUTs holds a
    /// bounded amount of memory.
    pub changes: tokio::sync::Semaphore,
    pub keys: Keys,
    pub journal: Journal,
    pub clock: Clock,
    pub auth: AuthPolicy,
    /// The `x-should-retry` header on a run that does not exist.
    pub not_found_retry: bool,
    /// Signs and checks packet URLs.
    pub presigner: Presigner,
    /// Connection limits, read by the server.
    pub limits: Limits,
    /// Who may use `/_mock/`.
    pub admin: AdminAccess,
    /// The runs and batches each environment created.
    pub ledger: crate::ledger::Ledger,
    /// The environments public access tokens may name.
    pub environments: Environments,
    /// The rate-limit windows of public access tokens.
    pub windows: Windows,
    /// Wakes the realtime long-polls; the run ledger calls [`crate::notify::Hub::changed`].
    pub hub: Arc<crate::notify::Hub>,
    /// How long a realtime live poll waits for a change.
    pub realtime_hold: Duration,
    /// The listen backlog the server asked for; 0 until it listens.
    backlog: std::sync::atomic::AtomicU32,
    /// Tells open dashboards what changed.
    pub feed: crate::feed::Feed,
    /// The problems of the last refused scenario reload, with when it was
    /// refused (mock clock); cleared by a reload that succeeds.
    reload_problems: Mutex<Option<(Millis, Vec<String>)>>,
}

impl State {
    /// The listen backlog in use, once the server listens.
    pub fn listen_backlog(&self) -> Option<u32> {
        Some(self.backlog.load(std::sync::atomic::Ordering::Acquire)).filter(|b| *b > 0)
    }

    /// Records the listen backlog in use.
    pub fn set_listen_backlog(&self, backlog: u32) {
        self.backlog.store(backlog, std::sync::atomic::Ordering::Release);
    }
}

/// The application: cheap to clone, shared by all connections.
#[derive(Debug, Clone)]
pub struct App {
    state: Arc<State>,
}

/// Admin changes to the scenarios read or built at a time (see [`State::changes`]).
pub const CHANGES_IN_FLIGHT: usize = 4;

/// Why a change to the scenarios was not made.
#[derive(Debug)]
pub enum Refusal {
    /// The scenario to remove is not loaded.
    Missing,
    /// The set it would produce is invalid; the previous set keeps serving.
    Invalid(Vec<Diagnostic>),
}

/// Returned instead of a response when a fault resets the connection.
#[derive(Debug)]
pub struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset on purpose (reset fault)")
    }
}

impl std::error::Error for ResetConnection {}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json; charset=utf-8");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const REALTIME_JSON: HeaderValue = HeaderValue::from_static("application/json");
const RUNS_ALLOW: &str = "GET, HEAD, OPTIONS";

/// The API routes the mock knows. Path segments are as sent (not decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    RetrieveRun(&'a str),
    /// `POST /api/v1/tasks/{taskId}/trigger`
    Trigger(&'a str),
    /// `PUT /api/v2/packets/{filename}`
    UploadPacket(&'a str),
    /// `POST /api/v3/batches`
    CreateBatch,
    /// `POST /api/v3/batches/{batchId}/items`
    BatchItems(&'a str),
    /// `GET /api/v2/batches/{batchId}`
    RetrieveBatch(&'a str),
    /// `GET /api/v1/runs`
    ListRuns,
    /// `POST /api/v2/runs/{runId}/cancel`
    Cancel(&'a str),
    /// `POST /api/v1/runs/{runId}/replay`
    Replay(&'a str),
    /// `POST /api/v1/runs/{runId}/reschedule`
    Reschedule(&'a str),
    /// `POST /api/v1/runs/{runId}/tags`
    Tags(&'a str),
    /// `GET|PUT /api/v1/runs/{runId}/metadata`
    Metadata(&'a str),
    /// `POST /api/v1/auth/jwt/claims`
    JwtClaims,
    /// `POST /api/v1/auth/public-tokens`
    PublicTokens,
    /// `GET /realtime/v1/runs/{runId}`
    RealtimeRun(&'a str),
    /// `GET /realtime/v1/runs?tags=…`
    RealtimeRuns,
    /// `GET /realtime/v1/batches/{batchId}`
    RealtimeBatch(&'a str),
    NotFound,
}

/// `prefix{segment}suffix` with a segment that has no `/`.
fn segment<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    // Without a suffix, no comparison: `strip_suffix("")` still calls `memcmp`
    // (perf put 1% of a retrieve's samples there).
    let segment = if suffix.is_empty() { rest } else { rest.strip_suffix(suffix)? };
    (!segment.contains('/')).then_some(segment)
}

impl Route<'_> {
    /// How the route authenticates, as the server builds it (runs-api.md §1.2).
    fn auth(&self, method: &Method) -> RouteAuth {
        match self {
            Route::RetrieveRun(_)
            | Route::Trigger(_)
            | Route::CreateBatch
            | Route::BatchItems(_)
            | Route::RetrieveBatch(_)
            | Route::ListRuns
            | Route::Cancel(_)
            | Route::UploadPacket(_)
            | Route::RealtimeRun(_)
            | Route::RealtimeRuns
            | Route::RealtimeBatch(_)
            | Route::NotFound => RouteAuth::KeysAndTokens,
            Route::JwtClaims => RouteAuth::OwnCheck { refusal: KeyRefusal::Claims, exempt_from_limiter: true },
            Route::Reschedule(_) => RouteAuth::OwnCheck { refusal: KeyRefusal::Reschedule, exempt_from_limiter: false },
            Route::Tags(_) => RouteAuth::OwnCheck { refusal: KeyRefusal::TagsAndMetadata, exempt_from_limiter: false },
            // `GET` checks the key by hand; `PUT` is an action route without `allowJWT`.
            Route::Metadata(_) if method == Method::GET || method == Method::HEAD => {
                RouteAuth::OwnCheck { refusal: KeyRefusal::TagsAndMetadata, exempt_from_limiter: false }
            }
            Route::PublicTokens | Route::Replay(_) | Route::Metadata(_) => RouteAuth::Keys,
        }
    }
}

fn route(path: &str) -> Route<'_> {
    type Make = for<'a> fn(&'a str) -> Route<'a>;
    const TABLE: [(&str, &str, Make); 12] = [
        ("/api/v3/runs/", "", |s| Route::RetrieveRun(s)),
        ("/api/v1/tasks/", "/trigger", |s| Route::Trigger(s)),
        ("/api/v2/packets/", "", |s| Route::UploadPacket(s)),
        ("/api/v3/batches/", "/items", |s| Route::BatchItems(s)),
        ("/api/v2/batches/", "", |s| Route::RetrieveBatch(s)),
        ("/api/v2/runs/", "/cancel", |s| Route::Cancel(s)),
        ("/api/v1/runs/", "/replay", |s| Route::Replay(s)),
        ("/api/v1/runs/", "/reschedule", |s| Route::Reschedule(s)),
        ("/api/v1/runs/", "/tags", |s| Route::Tags(s)),
        ("/api/v1/runs/", "/metadata", |s| Route::Metadata(s)),
        ("/realtime/v1/runs/", "", |s| Route::RealtimeRun(s)),
        ("/realtime/v1/batches/", "", |s| Route::RealtimeBatch(s)),
    ];
    match path {
        "/api/v1/auth/jwt/claims" => return Route::JwtClaims,
        "/api/v1/auth/public-tokens" => return Route::PublicTokens,
        "/api/v3/batches" => return Route::CreateBatch,
        "/api/v1/runs" => return Route::ListRuns,
        "/realtime/v1/runs" => return Route::RealtimeRuns,
        _ => {}
    }
    TABLE.iter().find_map(|(prefix, suffix, make)| segment(path, prefix, suffix).map(make)).unwrap_or(Route::NotFound)
}

impl<'a> Route<'a> {
    /// The run the path names, for faults and the journal.
    fn run_id(self) -> Option<&'a str> {
        match self {
            Route::RetrieveRun(id)
            | Route::Cancel(id)
            | Route::Replay(id)
            | Route::Reschedule(id)
            | Route::Tags(id)
            | Route::Metadata(id)
            | Route::RealtimeRun(id) => Some(id),
            _ => None,
        }
    }

    /// The name scenario faults use for the route.
    fn name(self) -> RouteName {
        match self {
            Route::RetrieveRun(_) => RouteName::Retrieve,
            Route::Trigger(_) => RouteName::Trigger,
            Route::CreateBatch | Route::BatchItems(_) | Route::RetrieveBatch(_) => RouteName::Batches,
            Route::ListRuns => RouteName::List,
            Route::Cancel(_) => RouteName::Cancel,
            Route::Replay(_) => RouteName::Replay,
            Route::Reschedule(_) => RouteName::Reschedule,
            Route::RealtimeRun(_) | Route::RealtimeRuns | Route::RealtimeBatch(_) => RouteName::Realtime,
            Route::UploadPacket(_)
            | Route::Tags(_)
            | Route::Metadata(_)
            | Route::JwtClaims
            | Route::PublicTokens
            | Route::NotFound => RouteName::Any,
        }
    }

    /// The largest body the route reads, and whether it needs a
    /// `content-length` (the server's `maxContentLength`); `None` for routes
    /// without a body.
    fn body_limit(self, method: &Method) -> Option<(usize, bool)> {
        match (self, method) {
            (Route::Trigger(_), &Method::POST) => Some((tasks::MAX_BODY, true)),
            (Route::CreateBatch, &Method::POST) => Some((batches::MAX_CREATE_BODY, true)),
            (Route::BatchItems(_), &Method::POST) => Some((batches::MAX_ITEMS_BODY, false)),
            (Route::Metadata(_), &Method::PUT) => Some((runs::MAX_METADATA_BODY, true)),
            (Route::Replay(_) | Route::Reschedule(_) | Route::Tags(_) | Route::Cancel(_), &Method::POST) => {
                Some((runs::MAX_SMALL_BODY, false))
            }
            _ => None,
        }
    }
}

/// Which rate limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limiter {
    /// The key's token bucket.
    Bucket,
    /// A public access token's fixed window, by the token's fingerprint.
    Window(u64),
    /// A path the server's limiter skips.
    Exempt,
}

/// What the key's lock decided for one request.
struct Decided<'w> {
    /// "Now" for this request, read under the key's lock when one is taken,
    /// so that one key's requests see the clock in the order they change
    /// its state (a run's `updatedAt` never goes back).
    now: Millis,
    verdict: Option<Verdict>,
    fault: Option<&'w crate::faults::Fault>,
    /// The run as this key sees it now, for scripted runs (boxed: the
    /// request's future holds it across its awaits).
    scripted: Option<Box<Run>>,
}

impl App {
    /// An app over a built world; the rest of its settings come from `config`.
    pub fn new(config: &Config, world: World, settings: Settings, sources: Vec<Source>, presigner: Presigner) -> App {
        let environments = Environments::default();
        for key in &config.auth.secret_keys {
            environments.register(key);
        }
        App {
            state: Arc::new(State {
                world: RwLock::new(Arc::new(world)),
                settings,
                sources: Mutex::new(Arc::new(sources)),
                writer: Mutex::new(()),
                changes: tokio::sync::Semaphore::new(CHANGES_IN_FLIGHT),
                keys: Keys::new(config.key_state_bytes),
                journal: Journal::new(config.journal_size, config.journal_bytes),
                clock: config.clock.clone(),
                auth: config.auth.clone(),
                not_found_retry: config.not_found_retry,
                presigner,
                limits: config.limits,
                admin: config.admin.clone(),
                ledger: crate::ledger::Ledger::new(config.seed, config.ledger),
                environments,
                windows: Windows::default(),
                hub: Arc::default(),
                realtime_hold: config.realtime_hold,
                backlog: std::sync::atomic::AtomicU32::new(0),
                feed: crate::feed::Feed::default(),
                reload_problems: Mutex::new(None),
            }),
        }
    }

    /// Loads the catalogue and the scenarios `config` names and builds the
    /// application. Everything that can be done before the first request is
    /// done here; the configuration itself is plain data.
    pub fn from_config(config: &Config) -> Result<App, crate::server::StartError> {
        let sources = config.sources()?;
        let settings = Settings {
            seed: config.seed,
            anchor: config.clock.now(),
            generate: config.generate,
            rate_limit: config.rate_limit,
            offload_threshold: config.offload_threshold,
        };
        let secret = match &config.presign_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                use rand::RngExt;
                rand::rng().random::<[u8; 32]>().to_vec()
            }
        };
        let world = World::build(&settings, &sources).map_err(|problems| {
            crate::server::StartError::Invalid(problems.iter().map(ToString::to_string).collect())
        })?;
        Ok(App::new(config, world, settings, sources, crate::presign::Presigner::new(&secret)))
    }

    /// The shared state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The current world (a cheap `Arc` clone; the lock is held for the clone only).
    pub fn world(&self) -> Arc<World> {
        self.state.world.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the world from `sources`. On success it replaces the old one
    /// and every key's scenario state starts afresh; on failure nothing
    /// changes and the problems are returned.
    pub fn reload(&self, sources: Vec<Source>) -> Result<(), Vec<Diagnostic>> {
        match self.update(|_| Ok(sources)) {
            Ok(_) => Ok(()),
            Err(Refusal::Invalid(problems)) => Err(problems),
            Err(Refusal::Missing) => Ok(()),
        }
    }

    /// Changes the set of scenario sources as the only writer: `next` sees
    /// the sources now serving and returns the set to build; the world built
    /// from it replaces the old one whole, or nothing changes. Concurrent
    /// changes (admin requests, `--watch`) wait for each other, so none is
    /// lost and each is checked against the set it produces. This parses and
    /// builds: call it off the request threads ([`App::update_off_thread`]).
    pub fn update(&self, next: impl FnOnce(&[Source]) -> Result<Vec<Source>, Refusal>) -> Result<Arc<World>, Refusal> {
        let _one_writer = self.state.writer.lock().unwrap_or_else(|p| p.into_inner());
        let sources = next(&self.sources())?;
        let world = Arc::new(World::build(&self.state.settings, &sources).map_err(Refusal::Invalid)?);
        let old = std::mem::replace(&mut *self.state.world.write().unwrap_or_else(|p| p.into_inner()), world.clone());
        *self.state.sources.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(sources);
        self.state.keys.reset(None);
        self.state.hub.everything_changed();
        // The old world is freed here, on this thread, unless a request still holds it.
        drop(old);
        Ok(world)
    }

    /// [`App::update`] on tokio's blocking threads, so that parsing a large
    /// scenario never stalls the requests of other clients.
    pub async fn update_off_thread(
        &self,
        next: impl FnOnce(&[Source]) -> Result<Vec<Source>, Refusal> + Send + 'static,
    ) -> Result<Arc<World>, Refusal> {
        let app = self.clone();
        match tokio::task::spawn_blocking(move || app.update(next)).await {
            Ok(outcome) => outcome,
            Err(e) => Err(Refusal::Invalid(vec![Diagnostic::whole("(admin)", format!("the change failed: {e}"))])),
        }
    }

    /// Notes the problems of a refused reload (`None` after one that
    /// succeeded), for the dashboard, and tells it.
    pub fn note_reload(&self, problems: Option<Vec<String>>) {
        let noted = problems.map(|p| (self.state.clock.now(), p));
        *self.state.reload_problems.lock().unwrap_or_else(|p| p.into_inner()) = noted;
        self.state.feed.changed(crate::feed::Change::Scenarios);
    }

    /// The problems of the last refused reload, if the last reload was refused.
    pub fn reload_problems(&self) -> Option<(Millis, Vec<String>)> {
        self.state.reload_problems.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The scenario sources now serving.
    pub fn sources(&self) -> Arc<Vec<Source>> {
        self.state.sources.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers one request. Every problem is a response, except a reset
    /// fault, which closes the connection instead. Writes the request's line
    /// in the request log when it is on.
    pub async fn handle<B>(&self, req: Request<B>, conn: &Control) -> Result<Response<Body>, ResetConnection>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if !reqlog::enabled() {
            return self.answer(req, conn).await;
        }
        let admin = is_admin(req.uri().path());
        let verbose = reqlog::verbose();
        if admin && !verbose {
            return self.answer(req, conn).await;
        }
        Box::pin(self.logged(req, conn, verbose)).await
    }

    /// [`App::handle`] with the request's line written to the log (boxed:
    /// the line and its timer stay out of the unlogged request's future).
    async fn logged<B>(&self, req: Request<B>, conn: &Control, verbose: bool) -> Result<Response<Body>, ResetConnection>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = std::time::Instant::now();
        let mut line = reqlog::Line {
            at: self.state.clock.now(),
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            ..reqlog::Line::default()
        };
        if verbose {
            line.http = Some(format!("{:?}", req.version()));
            line.api_version = req
                .headers()
                .get(ApiVersion::header_name())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            line.wall = Some(wall_now());
        }
        let result = self.answer(req, conn).await;
        line.duration = started.elapsed();
        match &result {
            Ok(response) => {
                line.status = response.status().as_u16();
                if let Some(facts) = response.extensions().get::<reqlog::Facts>() {
                    line.key = facts.key.as_deref().map(reqlog::key_prefix);
                    line.run_status = facts.run_status.map(str::to_owned);
                    line.fault.clone_from(&facts.fault);
                }
            }
            Err(ResetConnection) => line.fault = Some("reset".to_owned()),
        }
        line.emit();
        result
    }

    async fn answer<B>(&self, req: Request<B>, conn: &Control) -> Result<Response<Body>, ResetConnection>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        if is_admin(path) || path.starts_with(uploads::PREFIX) || path.starts_with(packets::PREFIX) {
            // Boxed: their futures stay out of every API request's.
            return Ok(Box::pin(self.beside_api(req)).await);
        }
        let api = path == "/api" || path.starts_with("/api/") || path.starts_with(REALTIME_PREFIX);
        if !api {
            return Ok(error_response(ApiError::RouteNotFound));
        }
        let (parts, body) = req.into_parts();
        let head = Request::from_parts(parts, ());
        let mut response = self.api(&head, body, conn).await?;
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
        Ok(response)
    }

    /// The admin API, packet uploads and packet downloads.
    async fn beside_api<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path();
        if is_admin(path) {
            return match &self.state.admin {
                AdminAccess::Open => admin::handle(self, req).await,
                AdminAccess::Token(token)
                    if bearer(req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes)) == token =>
                {
                    admin::handle(self, req).await
                }
                // The page itself is static and shows nothing without the token, which it asks for.
                AdminAccess::Token(_) if dashboard::is_shell(path) => admin::handle(self, req).await,
                AdminAccess::Token(_) => admin::unauthorized(),
                AdminAccess::Off => error_response(ApiError::RouteNotFound),
            };
        }
        if path.starts_with(uploads::PREFIX) {
            let (parts, body) = req.into_parts();
            let req = Request::from_parts(parts, ());
            let response = uploads::handle(self, &req, body).await;
            return self.journaled(&req, None, None, None, response, None);
        }
        let response = packets::handle(self, &req).await;
        self.journaled(&req, packets::run_id(path), None, None, response, None)
    }

    async fn api<B>(&self, req: &Request<()>, body: B, conn: &Control) -> Result<Response<Body>, ResetConnection>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if req.method() == Method::OPTIONS {
            return Ok(preflight(req));
        }
        let path = req.uri().path();
        let route = route(path);
        let now = self.state.clock.now();
        // As on the real server, authentication comes before routing for every `/api` path.
        let header = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        let principal = match self.state.auth.resolve(header, route.auth(req.method()), &self.state.environments, now) {
            Ok(principal) => principal,
            Err(e) => {
                let token = TokenSummary::of_refused(header);
                return Ok(self.journaled(req, None, None, token.as_ref(), error_response(e), None));
            }
        };
        let key = principal.scenario_key();
        let token = principal.token().map(|t| &t.summary);
        let route_name = route.name();
        let run_id = route.run_id();
        let limiter = match (&route, principal.token()) {
            (Route::JwtClaims | Route::RealtimeRun(_) | Route::RealtimeRuns | Route::RealtimeBatch(_), _) => {
                Limiter::Exempt
            }
            (_, Some(t)) => Limiter::Window(t.fingerprint),
            (_, None) => Limiter::Bucket,
        };
        let world = self.world();
        if let Some(id) = run_id {
            build_family(&world, id).await;
        }
        let ability = principal.token().map(|t| &t.ability);
        let decided = self.decide(&world, key, now, route_name, run_id, req.method(), limiter, ability);
        let now = decided.now;
        let fault_label = decided.fault.map(|f| f.label.clone());

        if let Some(v) = decided.verdict.filter(|v| !v.allowed) {
            let response = rate_limited(v, now);
            return Ok(self.journaled(req, run_id, Some(key), token, response, fault_label));
        }
        if let Some(fault) = decided.fault
            && fault.delay_ms > 0
        {
            Box::pin(tokio::time::sleep(Duration::from_millis(fault.delay_ms))).await;
        }
        let scripted_status = decided.scripted.as_ref().map(|r| r.status);
        let action = decided.fault.and_then(|f| f.action.as_ref());
        if let Some(Action::Reset) = action {
            conn.reset();
            self.record(req, run_id, Some(key), token, 0, fault_label, &[]);
            return Err(ResetConnection);
        }
        let response = match action.and_then(|a| replacement(a, now)) {
            Some(response) => response,
            None => {
                let answered = matches!(action, None | Some(Action::Dribble { .. }));
                let normal = match (&route, req.method()) {
                    (Route::RetrieveRun(id), &Method::GET | &Method::HEAD) => self
                        .retrieve(&world, (req, conn), id, &principal, decided.scripted.map(|r| *r), now, answered)
                        .map_err(error_response),
                    (Route::RetrieveRun(_), _) => Err(error_response(ApiError::MethodNotAllowed { allow: RUNS_ALLOW })),
                    (Route::JwtClaims, &Method::POST) => Ok(tokens::claims(self, &principal)),
                    (Route::PublicTokens, &Method::POST) => {
                        Box::pin(tokens::public_token(self, &principal, body, now)).await
                    }
                    (Route::JwtClaims | Route::PublicTokens, _) => {
                        Err(error_response(ApiError::MethodNotAllowed { allow: tokens::ALLOW }))
                    }
                    (
                        Route::RealtimeRun(_) | Route::RealtimeRuns | Route::RealtimeBatch(_),
                        &Method::GET | &Method::HEAD,
                    ) => {
                        let feed = match route {
                            Route::RealtimeRun(id) => realtime::Feed::Run(id),
                            Route::RealtimeBatch(id) => realtime::Feed::Batch(id),
                            _ => realtime::Feed::Tags,
                        };
                        match Box::pin(self.realtime(world.clone(), req, feed, &principal)).await {
                            Ok(answer) => {
                                let mut response = shape(answer.status, answer.body, action);
                                response.headers_mut().extend(answer.headers);
                                response.headers_mut().insert(header::CONTENT_TYPE, REALTIME_JSON);
                                let response = with_rate_headers(response, decided.verdict, now);
                                return Ok(self.journaled(req, run_id, Some(key), token, response, fault_label));
                            }
                            Err(e) => Err(error_response(e)),
                        }
                    }
                    (Route::RealtimeRun(_) | Route::RealtimeRuns | Route::RealtimeBatch(_), _) => {
                        Err(error_response(ApiError::MethodNotAllowed { allow: RUNS_ALLOW }))
                    }
                    (Route::NotFound, _) => Err(error_response(ApiError::RouteNotFound)),
                    (route, method) => {
                        let reply = if matches!(principal, Principal::Key { kind: KeyKind::Public(_), .. }) {
                            // `pk_…` keys are refused by the server's key lookup.
                            reply::Reply::api_error(ApiError::InvalidApiKey)
                        } else {
                            match Box::pin(read_body(
                                body,
                                route.body_limit(method),
                                req,
                                self.state.limits.body_timeout,
                            ))
                            .await
                            {
                                Ok(body) => {
                                    let ctx = reply::Ctx {
                                        app: self,
                                        world: &world,
                                        req,
                                        key,
                                        principal: &principal,
                                        kind: principal.render_kind(),
                                        reached: conn.reached().or_else(|| reached_of(req)),
                                        now,
                                        body,
                                    };
                                    self.run_flow(*route, &ctx)
                                }
                                Err(reply) => reply,
                            }
                        };
                        let touched = reply.touched;
                        if reply.status.is_success()
                            && !reply.stamped
                            && matches!(*req.method(), Method::POST | Method::PUT)
                        {
                            // Every ledger mutation answers with the runs it touched.
                            self.changed_runs(&world, key, &touched);
                        }
                        let mut response = shape(reply.status, reply.body, action);
                        for (name, value) in reply.headers {
                            response.headers_mut().insert(name, value);
                        }
                        let response = with_rate_headers(response, decided.verdict, now);
                        let response =
                            self.journaled_touching(req, run_id, Some(key), token, response, fault_label, &touched);
                        return Ok(response);
                    }
                };
                match normal {
                    Ok(body) => shape(StatusCode::OK, body, action),
                    Err(response) => response,
                }
            }
        };
        let response = with_rate_headers(response, decided.verdict, now);
        let mut response = self.journaled(req, run_id, Some(key), token, response, fault_label);
        if let (Route::RetrieveRun(id), Some(facts)) = (&route, response.extensions_mut().get_mut::<reqlog::Facts>())
            && facts.fault.is_none()
        {
            // Only while the log is on: a run looked up again to name its status.
            facts.run_status = scripted_status.or_else(|| world.store.get(id).map(|r| r.status)).map(|s| s.name());
        }
        Ok(response)
    }

    /// Wakes the realtime polls watching the runs `ids` that a request of
    /// `key` just created or changed, their tags and their batches.
    fn changed_runs(&self, world: &World, key: &str, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let hub = &self.state.hub;
        let ledger = &self.state.ledger;
        let env = ledger.env(key);
        for id in ids {
            let created = env
                .as_ref()
                .filter(|_| ledger.is_run_id(id))
                .is_some_and(|env| env.with(|st| st.stamp(id, |tags, batch| hub.changed(key, id, tags, batch))));
            if !created {
                // A run the environment did not create: its own tags, and those it added.
                let mut tags = world.store.related(id).map(|r| r.tags.clone()).unwrap_or_default();
                let batch = world.store.related(id).and_then(|r| r.batch_id.clone());
                if let Some(env) = &env {
                    env.with(|st| {
                        tags.extend(st.overlays.get(id).into_iter().flat_map(|o| o.added_tags.iter().cloned()))
                    });
                }
                hub.changed(key, id, &tags, batch.as_deref());
            }
        }
    }

    /// The routes of the run flow (everything but retrieve), by route.
    fn run_flow(&self, route: Route<'_>, ctx: &reply::Ctx<'_>) -> reply::Reply {
        let method = ctx.req.method();
        match route {
            Route::Trigger(task) if method == Method::POST => tasks::trigger(ctx, task),
            Route::UploadPacket(name) if method == Method::PUT => uploads::presign(ctx, name),
            Route::CreateBatch if method == Method::POST => batches::create(ctx),
            Route::BatchItems(id) if method == Method::POST => batches::items(ctx, id),
            Route::RetrieveBatch(id) if method == Method::GET || method == Method::HEAD => batches::retrieve(ctx, id),
            Route::ListRuns if method == Method::GET || method == Method::HEAD => runs::list(ctx),
            Route::Cancel(id) if method == Method::POST => runs::cancel(ctx, id),
            Route::Replay(id) if method == Method::POST => runs::replay(ctx, id),
            Route::Reschedule(id) if method == Method::POST => runs::reschedule(ctx, id),
            Route::Tags(id) if method == Method::POST => runs::add_tags(ctx, id),
            Route::Metadata(id) if method == Method::GET || method == Method::PUT => runs::metadata(ctx, id),
            Route::Metadata(_) => reply::Reply::method_not_allowed("GET, PUT"),
            Route::UploadPacket(_) => reply::Reply::method_not_allowed("PUT"),
            Route::RetrieveBatch(_) | Route::ListRuns => reply::Reply::method_not_allowed("GET"),
            _ => reply::Reply::method_not_allowed("POST"),
        }
    }

    /// The decisions taken under the key's lock.
    #[allow(clippy::too_many_arguments)]
    fn decide<'w>(
        &self,
        world: &'w World,
        key: &str,
        now: Millis,
        route_name: RouteName,
        run_id: Option<&str>,
        method: &Method,
        limiter: Limiter,
        ability: Option<&crate::scope::Ability>,
    ) -> Decided<'w> {
        let seed = self.state.settings.seed;
        if world.rate_limit.is_none() && world.faults.is_empty() && world.lifecycles.is_empty() {
            // Nothing is kept per key: no lock to take.
            return Decided { now, verdict: None, fault: None, scripted: None };
        }
        // A token's window is its own, not its environment's: counted before the key's lock.
        let window = match limiter {
            Limiter::Window(fingerprint) if world.rate_limit.is_some() => {
                Some(self.state.windows.take(JWT_WINDOW, fingerprint, now))
            }
            _ => None,
        };
        if window.is_some_and(|v| !v.allowed) {
            return Decided { now, verdict: window, fault: None, scripted: None };
        }
        // Other routes that name a run (metadata, cancel…) do not move it on.
        let reads = (method == Method::GET || method == Method::HEAD) && route_name == RouteName::Retrieve;
        // Built on first use, so before the key's lock is taken.
        let script = run_id.filter(|_| reads).and_then(|id| Some((id, world.lifecycle(id)?, world.store.related(id)?)));
        let bucket = matches!(limiter, Limiter::Bucket) && world.rate_limit.is_some();
        if !bucket && script.is_none() && !crate::faults::any_applies(&world.faults, route_name, run_id) {
            // Nothing of the key's state takes part (a catalogue run beside
            // faults for other runs): the key's lock is not taken.
            return Decided { now, verdict: window, fault: None, scripted: None };
        }
        self.state.keys.with(key, now, |ks| {
            let now = self.state.clock.now();
            let verdict = match limiter {
                Limiter::Bucket => {
                    world.rate_limit.map(|rl| ks.bucket.get_or_insert_with(|| Bucket::new(&rl, now)).take(&rl, now))
                }
                Limiter::Window(_) => window,
                Limiter::Exempt => None,
            };
            if verdict.is_some_and(|v| !v.allowed) {
                return Decided { now, verdict, fault: None, scripted: None };
            }
            let decision = decide(&world.faults, &mut ks.fault_counters, route_name, run_id, seed, key);
            let answered = decision.is_none_or(|d| matches!(d.fault.action, None | Some(Action::Dribble { .. })));
            let scripted = script.map(|(id, lifecycle, base)| {
                let epoch = ks.epoch;
                let start = || Progress::start(base, lifecycle, world.anchor, epoch);
                ks.with_progress(id, start, |progress| {
                    let run = progress.view(base, lifecycle, now);
                    // A token refused by its scopes does not move the run on.
                    let permitted = ability.is_none_or(|a| a.can(ScopeAction::Read, &Resource::of_run(&run)));
                    // Only retrieves count: a realtime read never moves a retrieve-driven step.
                    if answered && permitted && route_name == RouteName::Retrieve {
                        let before = progress.changes();
                        progress.count_retrieve(lifecycle, now);
                        if progress.changes() != before {
                            self.state.hub.changed(key, id, &run.tags, run.batch_id.as_deref());
                        }
                    }
                    run
                })
            });
            Decided { now, verdict, fault: decision.map(|d| d.fault), scripted: scripted.map(Box::new) }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record<B>(
        &self,
        req: &Request<B>,
        run_id: Option<&str>,
        key: Option<&str>,
        token: Option<&TokenSummary>,
        status: u16,
        fault: Option<String>,
        run_ids: &[String],
    ) {
        let journal = &self.state.journal;
        if !journal.enabled() {
            return;
        }
        static TRIGGER_VERSION: header::HeaderName = header::HeaderName::from_static("trigger-version");
        let trigger_version = req.headers().get(&TRIGGER_VERSION).and_then(|v| v.to_str().ok());
        let wall = wall_now();
        let request = journal::Request {
            at: self.state.clock.at_wall(wall),
            wall_ms: wall.0,
            method: req.method().as_str(),
            path: req.uri().path(),
            run_id,
            key,
            token,
            status,
            fault: fault.as_deref(),
            run_ids,
            trigger_version,
        };
        journal.push(&request);
        self.state.feed.changed(crate::feed::Change::Journal);
    }

    fn journaled<B>(
        &self,
        req: &Request<B>,
        run_id: Option<&str>,
        key: Option<&str>,
        token: Option<&TokenSummary>,
        response: Response<Body>,
        fault: Option<String>,
    ) -> Response<Body> {
        self.journaled_touching(req, run_id, key, token, response, fault, &[])
    }

    #[allow(clippy::too_many_arguments)]
    fn journaled_touching<B>(
        &self,
        req: &Request<B>,
        run_id: Option<&str>,
        key: Option<&str>,
        token: Option<&TokenSummary>,
        response: Response<Body>,
        fault: Option<String>,
        touched: &[String],
    ) -> Response<Body> {
        let mut response = response;
        if reqlog::enabled() {
            let facts = reqlog::Facts { key: key.map(str::to_owned), run_status: None, fault: fault.clone() };
            response.extensions_mut().insert(facts);
        }
        // A batch touches up to 1000 runs; the journal keeps the first few.
        self.record(req, run_id, key, token, response.status().as_u16(), fault, touched);
        response
    }
}

/// True for the admin API's paths.
fn is_admin(path: &str) -> bool {
    path == ADMIN_PREFIX || path.starts_with("/_mock/")
}

/// Reads a request body up to `limit` (the route's limit and whether it
/// needs a `content-length`), answering the server's 413 otherwise; 400 when
/// it is malformed (a broken chunked encoding, a body cut short) and 408,
/// closing the connection, when it has not arrived whole within `timeout`
/// (`--body-timeout`).
async fn read_body<B>(
    body: B,
    limit: Option<(usize, bool)>,
    req: &Request<()>,
    timeout: Duration,
) -> Result<Bytes, reply::Reply>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::{BodyExt, Limited};
    let Some((max, needs_length)) = limit else { return Ok(Bytes::new()) };
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match length {
        Some(n) if n > max as u64 => return Err(reply::Reply::too_large()),
        None if needs_length && req.version() < hyper::Version::HTTP_2 => return Err(reply::Reply::too_large()),
        _ => {}
    }
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(reply::Reply::too_large()),
        Ok(Err(_)) => Err(reply::Reply::error(StatusCode::BAD_REQUEST, "Request body is malformed")),
        Err(_) => Err(reply::Reply::error(StatusCode::REQUEST_TIMEOUT, "Request body did not arrive in time")
            .with_header("connection", "close")),
    }
}

/// A JSON response with the API's content type.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// The response for an [`ApiError`].
pub fn error_response(e: ApiError) -> Response<Body> {
    let parts = e.parts();
    let mut response = Response::new(Body::full(parts.body));
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
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
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
        assert_eq!(route("/api/v1/tasks/my%2Ftask/trigger"), Route::Trigger("my%2Ftask"));
        assert_eq!(route("/api/v1/tasks/a/b/trigger"), Route::NotFound);
        assert_eq!(
            route("/api/v2/packets/trigger%2Fp%2Fpayload.json"),
            Route::UploadPacket("trigger%2Fp%2Fpayload.json")
        );
        assert_eq!(route("/api/v3/batches"), Route::CreateBatch);
        assert_eq!(route("/api/v3/batches/batch_1/items"), Route::BatchItems("batch_1"));
        assert_eq!(route("/api/v2/batches/batch_1"), Route::RetrieveBatch("batch_1"));
        assert_eq!(route("/api/v1/runs"), Route::ListRuns);
        assert_eq!(route("/api/v2/runs/run_1/cancel"), Route::Cancel("run_1"));
        assert_eq!(route("/api/v1/runs/run_1/replay"), Route::Replay("run_1"));
        assert_eq!(route("/api/v1/runs/run_1/reschedule"), Route::Reschedule("run_1"));
        assert_eq!(route("/api/v1/runs/run_1/tags"), Route::Tags("run_1"));
        assert_eq!(route("/api/v1/runs/run_1/metadata"), Route::Metadata("run_1"));
        assert_eq!(route("/api/v1/runs/run_1"), Route::NotFound);
    }
}
