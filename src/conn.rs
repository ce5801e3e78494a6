//! A TCP connection and what is known about it: a fault can reset it (the
//! socket is closed with `SO_LINGER` 0, so the client sees a connection reset
//! rather than an orderly close), the server reads from it whether it is idle
//! (for the idle timeout), and it pays back the response budget as the
//! client takes the bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Shared between a connection and the requests on it.
#[derive(Debug)]
pub struct Control {
    reset: AtomicBool,
    requested: AtomicBool,
    /// When the connection was accepted; activity is kept as milliseconds since.
    epoch: Instant,
    /// Requests whose handler has not returned yet (the server is busy).
    in_service: AtomicUsize,
    /// Response bodies whose last poll returned `Pending`: they wait on
    /// themselves (a timer, a file, the budget), not on the client.
    waiting: AtomicUsize,
    /// The last time a request started or a response moved, in ms since `epoch`.
    last_activity: AtomicU64,
    /// Bytes of response bodies taken from the budget and not yet written.
    owed: AtomicU64,
    /// The shared response budget, in bytes.
    budget: Arc<Semaphore>,
    /// The local address the client reached: where URLs point when the
    /// client names no usable host. Kept here, once per connection, rather
    /// than in every request's extensions (an allocation per request).
    reached: Option<std::net::SocketAddr>,
    /// HTTP/1: when the bytes of a request head began to arrive with no
    /// handler running, in ms since `epoch` plus one (0: none). The server's
    /// loop enforces the header timeout from it, instead of a timer armed and
    /// dropped by hyper for every request.
    head_since: AtomicU64,
    /// The connection speaks HTTP/2 (its frames are not request heads).
    h2: AtomicBool,
}

impl Default for Control {
    fn default() -> Control {
        Control::new(Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)))
    }
}

impl Control {
    /// A new connection's control, drawing response bytes from `budget`.
    pub fn new(budget: Arc<Semaphore>) -> Control {
        Control {
            reset: AtomicBool::new(false),
            requested: AtomicBool::new(false),
            epoch: Instant::now(),
            in_service: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            last_activity: AtomicU64::new(0),
            owed: AtomicU64::new(0),
            budget,
            reached: None,
            head_since: AtomicU64::new(0),
            h2: AtomicBool::new(false),
        }
    }

    /// Notes the protocol of the connection's requests.
    pub fn note_version(&self, version: hyper::Version) {
        if version == hyper::Version::HTTP_2 && !self.h2.load(Ordering::Relaxed) {
            self.h2.store(true, Ordering::Relaxed);
        }
    }

    /// Bytes arrived: with no handler running on an HTTP/1 connection they
    /// begin a request head, unless one is already begun.
    fn note_read(&self) {
        if self.head_since.load(Ordering::Relaxed) == 0
            && self.in_service.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Relaxed)
        {
            let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
            let _ = self.head_since.compare_exchange(0, ms + 1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Since when a request head has been arriving without being complete
    /// (HTTP/1 only; `None` when no head is pending).
    pub fn head_since(&self) -> Option<Instant> {
        match self.head_since.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms - 1)),
        }
    }

    /// The same control, for a connection that reached `addr`.
    pub fn with_reached(mut self, addr: Option<std::net::SocketAddr>) -> Control {
        self.reached = addr;
        self
    }

    /// The local address the client reached, when known.
    pub fn reached(&self) -> Option<std::net::SocketAddr> {
        self.reached
    }

    /// Notes that a request arrived on the connection.
    pub fn note_request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// True once a request arrived.
    pub fn has_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Asks for the connection to be reset when it closes.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Release);
    }

    fn wants_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }

    /// Notes that something happened on the connection now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity.fetch_max(ms, Ordering::AcqRel);
    }

    /// A handler started; the returned guard marks its end when dropped.
    pub fn serving(self: &Arc<Self>) -> Serving {
        // No need to note the time: the connection is busy until the guard drops.
        self.in_service.fetch_add(1, Ordering::AcqRel);
        // The head is complete: the header timeout no longer applies.
        self.head_since.store(0, Ordering::Release);
        Serving(self.clone())
    }

    /// A response body now waits on itself (`true`) or no longer does.
    pub fn set_waiting(&self, waiting: bool) {
        if waiting {
            self.waiting.fetch_add(1, Ordering::AcqRel);
        } else {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.touch();
        }
    }

    /// Since when the connection has been idle: no handler running, and no
    /// response body waiting on the server's side. A response body that is
    /// not being polled waits on its client, which counts as idle too (a
    /// client that takes nothing). `None` while busy.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.in_service.load(Ordering::Acquire) > 0 || self.waiting.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_millis(self.last_activity.load(Ordering::Acquire)))
    }

    /// The shared response budget.
    pub fn budget(&self) -> &Arc<Semaphore> {
        &self.budget
    }

    /// Records `n` bytes taken from the budget for this connection.
    pub fn owe(&self, n: usize) {
        self.owed.fetch_add(n as u64, Ordering::AcqRel);
    }

    /// Gives back up to `n` owed bytes to the budget (they were written).
    fn repay(&self, n: usize) {
        let mut owed = self.owed.load(Ordering::Acquire);
        while owed > 0 {
            let back = owed.min(n as u64);
            match self.owed.compare_exchange_weak(owed, owed - back, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.budget.add_permits(back as usize);
                    return;
                }
                Err(now) => owed = now,
            }
        }
    }
}

/// A handler in progress on a connection; dropped when it returns.
#[derive(Debug)]
pub struct Serving(Arc<Control>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.in_service.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// The stream hyper reads and writes.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    control: Arc<Control>,
}

impl Conn {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, control: Arc<Control>) -> Conn {
        Conn { stream, control }
    }

    fn check(&self) -> io::Result<()> {
        if self.control.wants_reset() {
            let _ = self.stream.set_zero_linger();
            return Err(io::Error::from(io::ErrorKind::ConnectionReset));
        }
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Whatever was still buffered for the client goes with the connection.
        self.control.repay(usize::MAX);
        if self.control.wants_reset() {
            // Closing with a zero linger sends RST instead of FIN.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.control.note_read();
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.control.repay(n);
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            this.control.repay(n);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
