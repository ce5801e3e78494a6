//! The one validated configuration the server runs on: plain data, read by
//! [`App::from_config`] (which builds the application) and the server.

use crate::app::App;
use crate::auth::AuthPolicy;
use crate::clock::Clock;
use crate::scenario::Source;
use crate::server::StartError;
use std::net::{Ipv4Addr, SocketAddr};

/// The port the server binds when no `--addr` is given.
pub const DEFAULT_PORT: u16 = 3033;

/// Everything that decides the server's behaviour, checked before binding.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The global seed of generated runs.
    pub seed: u64,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Generate runs for unknown well-formed ids (otherwise they are 404s).
    pub generate: bool,
    /// Which keys are accepted.
    pub auth: AuthPolicy,
    /// `x-should-retry` on the 404 of an unknown run.
    pub not_found_retry: bool,
    /// Scenario files (paths or `builtin:NAME`), in order.
    pub scenarios: Vec<String>,
    /// Scenario sources given in memory (tests, embedding), after the files.
    pub inline_scenarios: Vec<Source>,
    /// The real server's rate limiter for every key, unless a scenario sets one.
    pub rate_limit: bool,
    /// Records kept by the request journal; 0 switches it off.
    pub journal_size: usize,
    /// The most bytes the journal's records take (see `Journal::bytes`).
    pub journal_bytes: usize,
    /// The most bytes the per-key state takes; least recently used keys are forgotten first.
    pub key_state_bytes: usize,
    /// The secret that signs presigned URLs; a random one per process when absent.
    pub presign_secret: Option<String>,
    /// Packets of this many bytes or more are offloaded.
    pub offload_threshold: u64,
    /// Connection limits against slow or hostile clients.
    pub limits: Limits,
    /// Who may use the admin API under `/_mock/`.
    pub admin: AdminAccess,
    /// Limits of the ledger of created runs.
    pub ledger: crate::ledger::Caps,
    /// How long a realtime live long-poll is held waiting for a change.
    pub realtime_hold: std::time::Duration,
}

/// The server's realtime hold: 20 seconds.
pub const DEFAULT_REALTIME_HOLD: std::time::Duration = std::time::Duration::from_secs(20);
/// The longest `--realtime-hold` allowed.
pub const MAX_REALTIME_HOLD_MS: u64 = 300_000;

/// Limits on what a client may do to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A client must send its request headers within this time (slow-loris).
    pub header_timeout: std::time::Duration,
    /// Request headers larger than this get 431 (HTTP/1.1) or a stream error (HTTP/2).
    pub max_header_bytes: usize,
    /// A connection with no request in flight, or whose client has taken
    /// nothing of its response, for this long is closed (both protocols).
    pub idle_timeout: std::time::Duration,
    /// A request body must arrive whole within this time, or the answer is 408.
    pub body_timeout: std::time::Duration,
    /// Connections served at once; beyond it the server stops accepting until
    /// one closes (the kernel's listen backlog holds the newcomers).
    pub max_connections: usize,
    /// Bytes of streamed response bodies (generated and file packets) handed
    /// to the connections and not yet taken by the clients, across all of
    /// them ([`crate::outgoing`]).
    pub response_budget: usize,
}

/// The default of [`Limits::max_connections`]: room under the usual limit
/// of 1024 open descriptors for the listener, packet files and the runtime.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// The default of [`Limits::response_budget`].
pub const DEFAULT_RESPONSE_BUDGET: usize = 32 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: std::time::Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            idle_timeout: std::time::Duration::from_secs(60),
            body_timeout: std::time::Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            response_budget: DEFAULT_RESPONSE_BUDGET,
        }
    }
}

/// Access to the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdminAccess {
    /// Anyone who can reach the server (the default: it listens on loopback).
    #[default]
    Open,
    /// Requests must carry `Authorization: Bearer TOKEN`.
    Token(String),
    /// The admin API does not exist.
    Off,
}

/// The journal's default size.
pub const DEFAULT_JOURNAL_SIZE: usize = 10_000;

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            seed: 0,
            clock: Clock::system(),
            generate: true,
            auth: AuthPolicy::default(),
            not_found_retry: true,
            scenarios: Vec::new(),
            inline_scenarios: Vec::new(),
            rate_limit: false,
            journal_size: DEFAULT_JOURNAL_SIZE,
            journal_bytes: crate::journal::DEFAULT_JOURNAL_BYTES,
            key_state_bytes: crate::keys::DEFAULT_KEY_STATE_BYTES,
            presign_secret: None,
            offload_threshold: crate::world::DEFAULT_OFFLOAD_THRESHOLD,
            limits: Limits::default(),
            admin: AdminAccess::Open,
            ledger: crate::ledger::Caps::default(),
            realtime_hold: DEFAULT_REALTIME_HOLD,
        }
    }
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port and a frozen clock.
    pub fn ephemeral(clock: Clock) -> Config {
        Config { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), clock, ..Config::default() }
    }

    /// Reads the scenario files. Every problem is reported, one line each.
    pub fn sources(&self) -> Result<Vec<Source>, StartError> {
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        for arg in &self.scenarios {
            match Source::load(arg) {
                Ok(source) => sources.push(source),
                Err(d) => problems.push(d.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(StartError::Invalid(problems));
        }
        sources.extend(self.inline_scenarios.iter().cloned());
        Ok(sources)
    }

    /// The application this configuration describes: [`App::from_config`].
    pub fn build_app(&self) -> Result<App, StartError> {
        App::from_config(self)
    }
}
