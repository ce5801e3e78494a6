//! Response bodies on their way out of a connection. Every body the server
//! sends is wrapped in an [`Outgoing`], which
//!
//! - draws the bytes of bodies computed or read lazily (generated packets,
//!   files), [`CHUNK`] at a time, from the byte budget shared by all
//!   connections, before they are computed or read. The connection pays the
//!   bytes back as the socket takes them (see [`crate::conn`]), and all of
//!   them when it closes. Clients that stop reading therefore hold at most
//!   the budget between them; a download waits while it is spent. Bodies
//!   already whole in memory (rendered runs, errors, inline packets) pass
//!   through undrawn, so the API's answers never wait on the budget;
//! - tells the connection whether the body waits on the server (a timer, a
//!   file, the budget) or on the client, for the idle timeout.

use crate::body::{Body, CHUNK};
use crate::conn::Control;
use bytes::Bytes;
use hyper::body::{Body as _, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{AcquireError, OwnedSemaphorePermit};

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + Sync>>;

/// A response body drawn from the shared budget.
pub struct Outgoing {
    inner: Body,
    control: Arc<Control>,
    /// Produced by `inner` and not yet handed to hyper.
    pending: Bytes,
    /// Budget bytes held for the next piece.
    held: usize,
    acquiring: Option<Acquire>,
    /// The last poll returned `Pending` (counted in the connection's `waiting`).
    waiting: bool,
    /// Whether the body's bytes are drawn from the budget.
    drawn: bool,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").field("inner", &self.inner).field("held", &self.held).finish_non_exhaustive()
    }
}

impl Outgoing {
    /// Wraps `inner`, sent on the connection of `control`.
    pub fn new(inner: Body, control: Arc<Control>) -> Outgoing {
        let drawn = matches!(inner, Body::Generated { .. } | Body::Channel { .. });
        Outgoing { inner, control, pending: Bytes::new(), held: 0, acquiring: None, waiting: false, drawn }
    }

    /// How many bytes to draw for the next piece; 0 when nothing is left.
    fn want(&self) -> usize {
        let chunk = CHUNK as usize;
        if !self.pending.is_empty() {
            return self.pending.len().min(chunk);
        }
        match self.inner.size_hint().exact() {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(chunk),
            None => chunk,
        }
    }

    /// Draws `want` bytes from the budget; `Pending` until they are there.
    fn draw(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<()> {
        if self.held >= want {
            return Poll::Ready(());
        }
        // `want` is at most CHUNK, far below u32::MAX.
        let need = (want - self.held).min(u32::MAX as usize) as u32;
        if self.acquiring.is_none() {
            let budget = self.control.budget();
            if let Ok(permit) = budget.try_acquire_many(need) {
                permit.forget();
                self.held += need as usize;
                return Poll::Ready(());
            }
            self.acquiring = Some(Box::pin(budget.clone().acquire_many_owned(need)));
        }
        let Some(acquiring) = self.acquiring.as_mut() else { return Poll::Ready(()) };
        match acquiring.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.acquiring = None;
                if let Ok(permit) = result {
                    permit.forget();
                    self.held += need as usize;
                }
                // A closed budget (never, in practice) lets bytes through undrawn.
                Poll::Ready(())
            }
        }
    }

    /// Returns what is held beyond what was handed out.
    fn give_back(&mut self) {
        if self.held > 0 {
            self.control.budget().add_permits(self.held);
            self.held = 0;
        }
    }

    fn set_waiting(&mut self, waiting: bool) {
        if self.waiting != waiting {
            self.waiting = waiting;
            self.control.set_waiting(waiting);
        }
    }

    fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if !self.drawn {
            return Pin::new(&mut self.inner).poll_frame(cx);
        }
        loop {
            let want = self.want();
            if want > 0 && self.draw(cx, want).is_pending() {
                return Poll::Pending;
            }
            if !self.pending.is_empty() {
                let n = self.pending.len().min(self.held.max(1));
                let piece = self.pending.split_to(n);
                let drawn = n.min(self.held);
                self.held -= drawn;
                self.control.owe(drawn);
                self.give_back();
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.pending = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(other) => {
                    self.give_back();
                    return Poll::Ready(other);
                }
            }
        }
    }
}

impl hyper::body::Body for Outgoing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let polled = this.poll_piece(cx);
        this.set_waiting(polled.is_pending());
        if this.drawn && polled.is_ready() {
            // A streamed body moved: not idle. (Whole bodies are sent at
            // once; their end, when they are dropped, is the activity.)
            this.control.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let extra = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(extra));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(extra));
        }
        hint
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.give_back();
        self.set_waiting(false);
        self.control.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Generated, PacketType};
    use http_body_util::BodyExt;
    use tokio::sync::Semaphore;

    fn control(budget: usize) -> Arc<Control> {
        Arc::new(Control::new(Arc::new(Semaphore::new(budget))))
    }

    fn generated(size: u64) -> Body {
        let packet = Generated::new(PacketType::Text, size, "2026-01-01T00:00:00.000Z").unwrap();
        Body::Generated { packet: Arc::new(packet), pos: 0, end: size }
    }

    #[tokio::test]
    async fn lazy_bodies_go_out_in_drawn_chunks_and_keep_their_length() {
        let c = control(1 << 20);
        let size = 3 * CHUNK + 5;
        let mut body = Outgoing::new(generated(size), c.clone());
        assert_eq!(body.size_hint().exact(), Some(size));
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [CHUNK as usize, CHUNK as usize, CHUNK as usize, 5]);
        // Nothing was written: everything handed out is still owed.
        assert_eq!(c.budget().available_permits(), (1 << 20) - size as usize);
    }

    #[tokio::test]
    async fn an_exhausted_budget_holds_lazy_bodies_back_but_not_whole_ones() {
        let c = control(CHUNK as usize);
        let mut first = Outgoing::new(generated(CHUNK), c.clone());
        assert_eq!(first.frame().await.unwrap().unwrap().into_data().unwrap().len(), CHUNK as usize);
        let mut whole = Outgoing::new(Body::full(vec![2u8; 3 * CHUNK as usize]), c.clone());
        assert_eq!(whole.frame().await.unwrap().unwrap().into_data().unwrap().len(), 3 * CHUNK as usize);
        let mut second = Outgoing::new(generated(1000), c.clone());
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), second.frame()).await;
        assert!(waited.is_err(), "the second lazy body waits for the budget");
        assert!(c.idle_since().is_none(), "a body waiting for the budget keeps the connection busy");
        c.budget().add_permits(CHUNK as usize); // as a write would
        assert_eq!(second.frame().await.unwrap().unwrap().into_data().unwrap().len(), 1000);
        drop(second);
        assert!(c.idle_since().is_some());
    }
}
