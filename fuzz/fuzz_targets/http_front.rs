//! Bytes → an HTTP/1.1 connection over an in-memory duplex stream, served by
//! hyper's HTTP/1.1 server with `App::handle` behind it, as the real server
//! does. Whatever the bytes, nothing may panic or hang, and the first answer
//! (if any) must be a status line with a status the mock or hyper sends.
//!
//! The runtime's clock is paused: timers (header timeouts, fault delays,
//! dribbled bodies) fire as soon as nothing else can run, so a slow answer
//! costs no real time, and the timeout around the exchange fires only when
//! the connection truly waits for nothing.
#![no_main]

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trigger_mock::app::App;
use trigger_mock::clock::Clock;
use trigger_mock::config::Config;
use trigger_mock::conn::Control;
use trigger_mock::time::Millis;

/// The frozen "now": 2026-01-01T00:00:00Z.
const NOW: Millis = Millis(1_767_225_600_000);

/// Longer than any timer the server sets by itself (the 30 s header timeout).
const LIMIT: Duration = Duration::from_secs(120);

/// Statuses the mock sends without faults, and hyper's own (100 Continue, and
/// 400, 414 and 431 for requests it cannot parse).
const KNOWN: &[u16] = &[100, 200, 206, 400, 401, 403, 404, 405, 413, 414, 416, 422, 431];

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let config = Config { presign_secret: Some("p".into()), ..Config::ephemeral(Clock::frozen(NOW)) };
        config.build_app().unwrap_or_else(|e| panic!("the app does not build: {e}"))
    })
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"));
}

/// Undoes what an input changed through the admin API, so that every input
/// starts from the same state.
fn restore(app: &App) {
    if !app.sources().is_empty()
        && let Err(problems) = app.reload(Vec::new())
    {
        panic!("the empty world does not build: {problems:?}");
    }
    let state = app.state();
    state.keys.reset(None);
    state.clock.freeze(true);
    state.clock.set(NOW);
    state.journal.clear();
}

/// Writes `data` as the client, half-closes, and reads everything the server
/// sends until it closes.
async fn exchange(app: &'static App, data: &[u8]) -> Option<Vec<u8>> {
    let (client, server) = tokio::io::duplex(16 * 1024);
    let limits = app.state().limits;
    let control = Arc::new(Control::default());
    let service = service_fn(move |req| {
        let control = control.clone();
        async move { app.handle(req, &control).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // Answer requests whose client has already closed its side.
        .half_close(true);
    let conn = builder.serve_connection(TokioIo::new(server), service);
    let (mut rd, mut wr) = tokio::io::split(client);
    let write = async move {
        let _ = wr.write_all(data).await;
        let _ = wr.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    };
    let all = async {
        let (_, (), out) = tokio::join!(conn, write, read);
        out
    };
    tokio::time::timeout(LIMIT, all).await.ok()
}

/// The status of the first answer.
fn first_status(out: &[u8]) -> u16 {
    let line = out.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    // hyper answers an HTTP/1.0 request in HTTP/1.0.
    let rest = line.strip_prefix("HTTP/1.1 ").or_else(|| line.strip_prefix("HTTP/1.0 "));
    let status = rest.and_then(|rest| rest.get(..3)).and_then(|s| s.parse().ok());
    status.unwrap_or_else(|| panic!("not a status line: {line:?}"))
}

fuzz_target!(|data: &[u8]| {
    let app = app();
    let out = RUNTIME.with(|rt| rt.block_on(exchange(app, data)));
    match out {
        Some(out) if !out.is_empty() => {
            let status = first_status(&out);
            // The first request meets the world as it starts, without faults.
            assert!(KNOWN.contains(&status), "status {status} for {:?}", String::from_utf8_lossy(data));
        }
        Some(_) => {}
        // Only a fault installed by this input (a long delay, a slow dribble)
        // may keep a connection busy that long.
        None => assert!(!app.world().faults.is_empty(), "the connection hung on {:?}", String::from_utf8_lossy(data)),
    }
    restore(app);
});
