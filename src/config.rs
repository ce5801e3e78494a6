//! The one validated configuration the server runs on, and how it becomes an
//! [`App`].

use crate::app::{App, State};
use crate::auth::AuthPolicy;
use crate::catalogue::{compile, default_catalogue};
use crate::clock::Clock;
use crate::store::Store;
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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            seed: 0,
            clock: Clock::system(),
            generate: true,
            auth: AuthPolicy::default(),
            not_found_retry: true,
        }
    }
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port and a frozen clock.
    pub fn ephemeral(clock: Clock) -> Config {
        Config { addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), clock, ..Config::default() }
    }

    /// Loads the catalogue and builds the application. Everything that can be
    /// done before the first request is done here.
    pub fn build_app(&self) -> Result<App, String> {
        let catalogue = default_catalogue()?;
        let anchor = self.clock.now();
        let defined =
            compile(&catalogue.runs, self.seed, anchor).map_err(|e| format!("fixtures/catalogue.json: {e}"))?;
        Ok(App::new(State {
            store: Store::new(defined, self.seed, anchor, self.generate),
            auth: self.auth.clone(),
            not_found_retry: self.not_found_retry,
        }))
    }
}
