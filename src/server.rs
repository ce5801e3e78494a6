//! The accept loop: connections served by hyper-util's auto builder (HTTP/1.1
//! and HTTP/2 cleartext), drained gracefully on shutdown.

use crate::app::App;
use crate::config::Config;
use crate::conn::{Conn, Control};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long in-flight requests may take to finish after shutdown begins.
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting
/// and gives open connections up to [`GRACE_PERIOD`] to finish.
pub async fn run(listener: TcpListener, app: App, shutdown: impl Future<Output = ()>) {
    let limits = app.state().limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("trigger-mock: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let control = Arc::new(Control::default());
        let io = TokioIo::new(Conn::new(stream, control.clone()));
        let app = app.clone();
        let service = {
            let control = control.clone();
            service_fn(move |req| {
                control.note_request();
                let app = app.clone();
                let control = control.clone();
                async move { app.handle(req, &control).await }
            })
        };
        let conn = builder.serve_connection(io, service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::pin!(conn);
            // hyper's header timeout starts once it knows the protocol; a client
            // that sends nothing (or half an HTTP/2 preface) would hold the
            // connection forever. It gets the same time for its first request.
            tokio::select! {
                _ = &mut conn => return,
                () = tokio::time::sleep(limits.header_timeout) => {}
            }
            if control.has_requested() {
                // A client that goes away mid-request is not our error.
                let _ = conn.await;
            }
        });
    }
    drop(listener);
    // Held realtime polls answer now instead of holding the drain for their full hold time.
    app.state().hub.close();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE_PERIOD) => {}
    }
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
        let listener = TcpListener::bind(config.addr).await.map_err(|e| StartError::Bind(config.addr, e))?;
        Server::on(listener, app)
    }

    /// Starts serving `app` on an already bound listener.
    pub fn on(listener: TcpListener, app: App) -> Result<Server, StartError> {
        let addr = listener.local_addr().map_err(|e| StartError::Bind(SocketAddr::from(([0, 0, 0, 0], 0)), e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, app, async move {
            let _ = stopped.await;
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
