//! The response body: a whole buffer on the hot path, or one of the shapes a
//! fault needs (dribbled slowly, cut off mid-way). An enum rather than a
//! boxed body, so the common case costs nothing extra.

use crate::packet::Generated;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Sleep;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// The whole body at once.
    Full(Option<Bytes>),
    /// The body a few bytes at a time.
    Dribble { rest: Bytes, chunk: usize, interval: Duration, sleep: Option<Pin<Box<Sleep>>> },
    /// Announces `announced` bytes, sends `first`, then, once that had time
    /// to be flushed, fails: the connection closes mid-body.
    Cut { first: Option<Bytes>, announced: u64, pause: Option<Pin<Box<Sleep>>> },
    /// `[pos, end)` of a generated packet, computed a chunk at a time.
    Generated { packet: Arc<Generated>, pos: u64, end: u64 },
    /// Chunks read by a file-reading task, through a bounded channel.
    Channel { rx: mpsc::Receiver<io::Result<Bytes>>, remaining: u64 },
    /// A stream of unknown length (server-sent events) that ends when its sender does.
    Stream { rx: mpsc::Receiver<Bytes> },
}

/// How much of a packet one frame carries.
pub const CHUNK: u64 = 16 * 1024;

fn cut_off() -> io::Error {
    io::Error::other("the body was cut off on purpose (closeMidBody fault)")
}

impl Body {
    /// A whole body.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body::Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Cut { first, pause, .. } => {
                if let Some(d) = first.take() {
                    *pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(20))));
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                if let Some(p) = pause
                    && p.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(cut_off())))
            }
            Body::Generated { packet, pos, end } => {
                if *pos >= *end {
                    return Poll::Ready(None);
                }
                let to = (*pos + CHUNK).min(*end);
                let data = packet.range(*pos, to);
                *pos = to;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Body::Stream { rx } => rx.poll_recv(cx).map(|data| data.map(|d| Ok(Frame::data(d)))),
            Body::Channel { rx, remaining } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if *remaining > 0 => {
                    Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the packet file shrank"))))
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Body::Dribble { rest, chunk, interval, sleep } => {
                if rest.is_empty() {
                    return Poll::Ready(None);
                }
                if let Some(s) = sleep {
                    if s.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                let piece = rest.split_to((*chunk).min(rest.len()));
                *sleep = Some(Box::pin(tokio::time::sleep(*interval)));
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(data) => data.is_none(),
            Body::Dribble { rest, .. } => rest.is_empty(),
            Body::Cut { .. } => false,
            Body::Generated { pos, end, .. } => pos >= end,
            Body::Channel { remaining, .. } => *remaining == 0,
            Body::Stream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Dribble { rest, .. } => SizeHint::with_exact(rest.len() as u64),
            Body::Cut { announced, .. } => SizeHint::with_exact(*announced),
            Body::Generated { pos, end, .. } => SizeHint::with_exact(end.saturating_sub(*pos)),
            Body::Channel { remaining, .. } => SizeHint::with_exact(*remaining),
            Body::Stream { .. } => SizeHint::default(),
        }
    }
}

use std::future::Future;

/// Opens a packet file for reading, refusing anything but a regular file.
/// The file is opened without blocking (`O_NONBLOCK`), so a FIFO or a device
/// put in its place cannot hold the opening thread, and its type is checked
/// on the open descriptor, so it cannot be swapped after the check.
/// Blocking (a metadata call): run it with `spawn_blocking`.
pub fn open_regular(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// Streams `[start, end)` of an open regular file through a bounded channel:
/// at most a chunk or two are in memory whatever the file's size. Reading
/// stops when the client goes away (the receiver is dropped).
pub fn file_body(file: std::fs::File, start: u64, end: u64) -> Body {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let (tx, rx) = mpsc::channel(1);
    let mut file = tokio::fs::File::from_std(file);
    tokio::spawn(async move {
        if let Err(e) = file.seek(io::SeekFrom::Start(start)).await {
            let _ = tx.send(Err(e)).await;
            return;
        }
        let mut left = end.saturating_sub(start);
        while left > 0 {
            let mut buf = vec![0u8; CHUNK.min(left) as usize];
            match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Body::Channel { rx, remaining: end.saturating_sub(start) }
}
