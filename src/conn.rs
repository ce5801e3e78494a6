//! A TCP connection that a fault can reset: when asked, the socket is closed
//! with `SO_LINGER` 0, so the client sees a connection reset (RST) rather
//! than an orderly close.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Shared between a connection and the requests on it.
#[derive(Debug, Default)]
pub struct Control {
    reset: AtomicBool,
    requested: AtomicBool,
}

impl Control {
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
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
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
