//! The accept loop: connections served by hyper-util's auto builder (HTTP/1.1
//! and HTTP/2 cleartext), each watched for its first request, idleness and
//! shutdown, at most `max_connections` at once, drained gracefully on
//! shutdown. Every response leaves through here, so what holds for every
//! route is done here: HEAD answers carry headers only, and bodies are
//! drawn from the response budget ([`crate::outgoing`]).

use crate::app::App;
use crate::body::Body;
use crate::config::{Config, Limits};
use crate::conn::{Conn, Control};
use crate::outgoing::Outgoing;
use hyper::body::Body as _;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long in-flight requests may take to finish after shutdown begins.
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// How long a connection closed for idleness may take to say goodbye (an
/// HTTP/2 GOAWAY, the rest of a response) before it is dropped.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Per-stream HTTP/2 send buffer: what one stream may have queued for a
/// client that does not read, on top of one [`crate::body::CHUNK`].
const H2_SEND_BUFFER: usize = 64 * 1024;

/// HTTP/2 streams a client may have open on one connection.
const H2_MAX_STREAMS: u32 = 64;

/// The backlog used when the system's maximum cannot be read.
pub const FALLBACK_BACKLOG: u32 = 4096;

/// The system's largest listen backlog (`/proc/sys/net/core/somaxconn` on
/// Linux), or [`FALLBACK_BACKLOG`].
pub fn system_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .map_or(FALLBACK_BACKLOG, |n| n.min(i32::MAX as u32))
}

/// Binds `addr` and listens with the system's largest backlog, so that a
/// burst of connections waits in the kernel instead of for SYN retransmits.
/// Returns the listener and the backlog asked for.
pub fn bind(addr: SocketAddr) -> io::Result<(TcpListener, u32)> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let backlog = system_backlog();
    Ok((socket.listen(backlog)?, backlog))
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting
/// and gives open connections up to [`GRACE_PERIOD`] to finish.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let limits = app.state().limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No hyper header timer for HTTP/1: it allocates, arms and drops a timer
    // for every request. The connection's loop enforces the header timeout
    // from `Control::head_since` instead (see `serve`).
    builder
        .http1()
        // A client that half-closes after its request still gets the answer.
        .half_close(true)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_send_buf_size(H2_SEND_BUFFER)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    let max_connections = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max_connections));
    let budget =
        Arc::new(Semaphore::new(limits.response_budget.clamp(crate::body::CHUNK as usize, Semaphore::MAX_PERMITS)));
    let stops = Arc::new(Stops::default());
    tokio::pin!(shutdown);
    loop {
        // At the cap, stop accepting until a connection closes: newcomers
        // wait in the listen backlog rather than being turned away.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    crate::reqlog::notice(&format!("trigger-mock: accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let control = Arc::new(Control::new(budget.clone()).with_reached(stream.local_addr().ok()));
        let stop = Stops::add(&stops);
        tokio::spawn(serve(stream, app.clone(), builder.clone(), control, limits, stop, slot));
    }
    drop(listener);
    // Held realtime polls answer now instead of holding the drain for their full hold time.
    app.state().hub.close();
    stops.stop_all();
    tokio::select! {
        _ = slots.acquire_many(max_connections as u32) => {}
        () = tokio::time::sleep(GRACE_PERIOD) => {}
    }
}

/// Serves one connection until it ends, is idle for too long, or the
/// server stops. `_slot` is its place under `max_connections`.
async fn serve(
    stream: TcpStream,
    app: App,
    builder: Arc<auto::Builder<TokioExecutor>>,
    control: Arc<Control>,
    limits: Limits,
    mut stop: Stop,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let accepted = Instant::now();
    let io = TokioIo::new(Conn::new(stream, control.clone()));
    let service = {
        let control = control.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            control.note_request();
            control.note_version(req.version());
            let serving = control.serving();
            let app = app.clone();
            let control = control.clone();
            async move {
                let head = req.method() == Method::HEAD;
                let response = app.handle(req, &control).await?;
                drop(serving);
                let response = if head { headers_only(response) } else { response };
                Ok::<_, crate::app::ResetConnection>(response.map(|body| Outgoing::new(body, control)))
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // hyper's header timeout starts once it knows the protocol; a client
    // that sends nothing (or half an HTTP/2 preface) would hold the
    // connection forever. It gets the same time for its first request.
    let first_request_by = accepted + limits.header_timeout;
    let mut check_at = first_request_by.min(accepted + limits.idle_timeout);
    let mut closing: Option<Instant> = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            // The connection first: it is what woke the task on almost every
            // poll, and a fixed order spares the random start per poll.
            biased;
            _ = &mut conn => return,
            stopped = &mut stop.signal, if !stopping => {
                stopping = true;
                if stopped.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(check_at) => {
                if !control.has_requested() {
                    if Instant::now() >= first_request_by {
                        return;
                    }
                    check_at = first_request_by.min(Instant::now() + limits.idle_timeout);
                    continue;
                }
                if let Some(since) = closing {
                    if since.elapsed() >= CLOSE_LINGER {
                        return;
                    }
                    check_at = since + CLOSE_LINGER;
                    continue;
                }
                // HTTP/1: a request head that has been arriving for longer than
                // the header timeout (a slow-loris on a kept-alive connection).
                let head_deadline = control.head_since().map(|since| Instant::from_std(since) + limits.header_timeout);
                if head_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return;
                }
                // Wake at least once per header timeout, so a head that starts
                // between two checks is caught at its deadline.
                let soon = head_deadline.unwrap_or_else(|| Instant::now() + limits.header_timeout);
                match control.idle_since().map(Instant::from_std) {
                    Some(since) if since.elapsed() >= limits.idle_timeout => {
                        // Idle, or the client takes nothing of its response:
                        // close (an HTTP/2 GOAWAY), and drop it if it lingers.
                        conn.as_mut().graceful_shutdown();
                        let now = Instant::now();
                        closing = Some(now);
                        check_at = now + CLOSE_LINGER;
                    }
                    Some(since) => check_at = (since + limits.idle_timeout).min(soon),
                    None => check_at = (Instant::now() + limits.idle_timeout).min(soon),
                }
            }
        }
    }
}

/// The open connections' stop signals. Each connection's task polls only
/// its own, a oneshot that is checked without a lock whenever the task
/// wakes; one `watch` shared by all connections took a lock shared by all
/// of them on every poll, that is on every request.
#[derive(Default)]
struct Stops {
    open: Mutex<(u64, HashMap<u64, oneshot::Sender<()>>)>,
}

/// One connection's stop signal; leaves [`Stops`] when dropped.
struct Stop {
    id: u64,
    signal: oneshot::Receiver<()>,
    stops: Arc<Stops>,
}

impl Stops {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, oneshot::Sender<()>>)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stop signal for a connection just accepted.
    fn add(stops: &Arc<Stops>) -> Stop {
        let (tx, signal) = oneshot::channel();
        let mut open = stops.lock();
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, tx);
        Stop { id, signal, stops: stops.clone() }
    }

    /// Signals every open connection to stop.
    fn stop_all(&self) {
        let senders = std::mem::take(&mut self.lock().1);
        for tx in senders.into_values() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stops.lock().1.remove(&self.id);
    }
}

/// The answer to a HEAD request: the headers the GET would send, with its
/// `content-length`, and no body, whatever the route.
fn headers_only(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && let Some(len) = body.size_hint().exact()
    {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::Full(None))
}

/// A server running in this process, for tests and embedding.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Builds the app from `config`, binds `config.addr` and starts serving on
    /// the current tokio runtime.
    pub async fn start(config: &Config) -> Result<Server, StartError> {
        let app = config.build_app()?;
        let (listener, backlog) = bind(config.addr).map_err(|e| StartError::Bind(config.addr, e))?;
        app.state().set_listen_backlog(backlog);
        Server::on(listener, app)
    }

    /// Starts serving `app` on an already bound listener.
    pub fn on(listener: TcpListener, app: App) -> Result<Server, StartError> {
        let addr = listener.local_addr().map_err(|e| StartError::Bind(SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let feed_of = app.clone();
        let task = tokio::spawn(run(listener, app, async move {
            let _ = stopped.await;
            // Open dashboards end their event streams, so draining is quick.
            feed_of.state().feed.close();
        }));
        Ok(Server { addr, stop: Some(stop), task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains open connections and waits until done.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration or its files are invalid: one line per problem,
    /// `FILE:LINE:COLUMN: message` for files.
    Invalid(Vec<String>),
    /// The address could not be bound.
    Bind(SocketAddr, io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Invalid(lines) => f.write_str(&lines.join("\n")),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_connections_leave_the_stop_list_and_open_ones_are_signalled() {
        let stops = Arc::new(Stops::default());
        let closed = Stops::add(&stops);
        let mut open = Stops::add(&stops);
        drop(closed);
        assert_eq!(stops.lock().1.len(), 1, "a closed connection keeps no sender");
        stops.stop_all();
        assert!((&mut open.signal).await.is_ok(), "an open connection hears the stop");
        assert!(stops.lock().1.is_empty());
        drop(open);
        assert!(stops.lock().1.is_empty());
    }
}
