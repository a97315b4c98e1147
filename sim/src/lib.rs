//! Simulated upstream servers that behave like the real ones on the wire, so `linegate demo` and
//! the agent's integration tests exercise the production clients unchanged; and a real mosquitto
//! on a free loopback port. None of this ships in the packages: the agent uses it as a
//! dev-dependency, and `linegate demo` through its `demo` feature.
pub mod broker;
mod clock;
pub mod link;
pub mod mosquitto;
pub mod odoo;
#[cfg(feature = "powercut")]
pub mod powercut;
pub mod sicantik;
pub mod webhook;

use std::future::Future;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Bytes, Frame, Incoming};

/// A connection a simulated server closes without an answer (a fault it was told to inject).
#[derive(Debug)]
pub(crate) struct Dropped(pub &'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

/// A response body the simulators send as servers (and what stands in front of them) do: all at
/// once, in many chunks of a huge answer, or a few bytes at a time.
pub(crate) struct Drip {
    parts: VecDeque<Bytes>,
    /// The wait before each part after the first.
    every: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    started: bool,
    /// Whether the response says its length up front (Content-Length) or streams it chunked.
    sized: bool,
}

impl Drip {
    pub(crate) fn full(body: impl Into<Bytes>) -> Drip {
        Drip::parts([body.into()], Duration::ZERO)
    }

    pub(crate) fn parts(parts: impl IntoIterator<Item = Bytes>, every: Duration) -> Drip {
        Drip {
            parts: parts.into_iter().collect(),
            every,
            sleep: None,
            started: false,
            sized: every.is_zero(),
        }
    }

    /// The same body without a Content-Length (chunked), as a proxy streaming it sends it.
    pub(crate) fn chunked(mut self) -> Drip {
        self.sized = false;
        self
    }

    /// `body`, one byte every `every`.
    pub(crate) fn trickle(body: &[u8], every: Duration) -> Drip {
        Drip::parts(body.iter().map(|b| Bytes::copy_from_slice(&[*b])), every)
    }

    /// `prefix`, then `filler` until about `total` bytes, then `suffix`: a huge answer that the
    /// server never holds whole.
    pub(crate) fn huge(prefix: &str, filler: &str, suffix: &str, total: usize) -> Drip {
        let chunk = Bytes::from(filler.repeat((64 * 1024 / filler.len().max(1)).max(1)));
        let count = total.saturating_sub(prefix.len() + suffix.len()) / chunk.len().max(1);
        let parts = std::iter::once(Bytes::from(prefix.to_string()))
            .chain(std::iter::repeat_n(chunk, count))
            .chain(std::iter::once(Bytes::from(suffix.to_string())));
        Drip::parts(parts, Duration::ZERO)
    }

    /// The exact length, when the body is all known (so the response carries Content-Length).
    fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum()
    }
}

impl hyper::body::Body for Drip {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.parts.is_empty() {
            return Poll::Ready(None);
        }
        if self.started && !self.every.is_zero() {
            let every = self.every;
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.started = true;
        Poll::Ready(self.parts.pop_front().map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.sized {
            hyper::body::SizeHint::with_exact(self.len())
        } else {
            hyper::body::SizeHint::default()
        }
    }
}

/// Serves HTTP/1.1 (keep-alive) on `listener` with `handle` until `stopped` turns true; open
/// connections are closed then too, so a stopped server really is gone.
pub(crate) async fn serve<S, H, F>(
    listener: tokio::net::TcpListener,
    state: S,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    handle: H,
) where
    S: Clone + Send + Sync + 'static,
    H: Fn(S, hyper::Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<hyper::Response<Drip>, Dropped>> + Send + 'static,
{
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut conn_stopped = stopped.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = conn_stopped.wait_for(|s| *s) => {}
            }
        });
    }
}
