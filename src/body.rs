//! The response body: a whole buffer on the hot path, or one of the shapes a
//! fault needs (dribbled slowly, cut off mid-way). An enum rather than a
//! boxed body, so the common case costs nothing extra.

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
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
}

/// The error of a body that was cut on purpose.
#[derive(Debug)]
pub struct CutOff;

impl std::fmt::Display for CutOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body was cut off on purpose (closeMidBody fault)")
    }
}

impl std::error::Error for CutOff {}

impl Body {
    /// A whole body.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body::Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = CutOff;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, CutOff>>> {
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
                Poll::Ready(Some(Err(CutOff)))
            }
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
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Body::Dribble { rest, .. } => SizeHint::with_exact(rest.len() as u64),
            Body::Cut { announced, .. } => SizeHint::with_exact(*announced),
        }
    }
}

use std::future::Future;
