//! # trigger-mock
//!
//! A deterministic test double for the Trigger.dev runs API. Point a
//! Trigger.dev SDK (or any HTTP client) at it and `GET /api/v3/runs/{runId}`
//! answers as the API documents and as the real SDK parses, for every status
//! in both API versions, with the API's own errors. Runs the application
//! triggers, batches, lists, cancels, replays and reschedules live in one
//! ledger per environment (secret key).
//!
//! ```no_run
//! # async fn demo() -> Result<(), trigger_mock::server::StartError> {
//! use trigger_mock::{clock::Clock, config::Config, server::Server};
//! let server = Server::start(&Config::ephemeral(Clock::system())).await?;
//! println!("try {}/api/v3/runs/run_completed", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! - [`cli`]: flags → one validated [`config::Config`].
//! - [`server`]: accept loop, HTTP/1.1 + h2c, connection limits, graceful drain; [`server::Server`] for in-process use.
//! - [`conn`] and [`outgoing`]: what is known about a connection, and response bodies drawn from the byte budget.
//! - [`app`]: request → route → handler → response, no sockets.
//! - [`auth`] and [`errors`]: who is calling; every error body in one place.
//! - [`jwt`], [`scope`] and [`environments`]: public access tokens, what they allow, whose they are.
//! - [`model`]: the run, its one engine status, and its rendering per API version.
//! - [`store`], [`catalogue`], [`generate`], [`convention`]: where runs come from.
//! - [`ledger`]: the runs and batches each environment (secret key) creates
//!   through trigger, batch and replay, and its changes to other runs.
//! - [`realtime`] and [`notify`]: the Electric long-poll protocol of the realtime feeds, and the hub that wakes them.
//! - [`time`] and [`clock`]: ISO-8601 instants and the injectable "now".

#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod auth;
pub mod body;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod convention;
pub mod environments;
pub mod errors;
pub mod excerpt;
pub mod faults;
pub mod feed;
pub mod generate;
pub mod journal;
pub mod jwt;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod memo;
pub mod model;
pub mod notify;
pub mod outgoing;
pub mod packet;
pub mod prefetch;
pub mod presign;
pub mod ratelimit;
pub mod realtime;
pub mod reqlog;
pub mod scenario;
pub mod scope;
pub mod server;
pub mod spin;
pub mod store;
pub mod time;
pub mod watch;
pub mod world;

/// Unit tests only: counts the bytes each thread has allocated and not yet
/// freed, so a test can bound what a structure really costs (the ledger at its
/// cap). Per thread, so tests running in parallel do not disturb each other.
#[cfg(test)]
pub(crate) mod counting_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
    }

    struct Counting;

    fn add(n: isize) {
        // `try_with`: nothing to count while the thread's locals are torn down.
        let _ = LIVE.try_with(|live| live.set(live.get() + n));
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size as isize - layout.size() as isize);
            // SAFETY: the caller's contract, passed on.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    /// Bytes this thread allocated and did not free (frees of memory another
    /// thread allocated count here too, so measure on one thread).
    pub(crate) fn live() -> isize {
        LIVE.with(Cell::get)
    }
}
