//! Simulated upstream servers that behave like the real ones on the wire, so `linegate demo` and
//! the agent's integration tests exercise the production clients unchanged; and a real mosquitto
//! on a free loopback port. None of this ships in the packages: the agent uses it as a
//! dev-dependency, and `linegate demo` through its `demo` feature.
mod clock;
pub mod mosquitto;
pub mod odoo;
pub mod sicantik;
pub mod webhook;

use std::future::Future;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};

/// A connection a simulated server closes without an answer (a fault it was told to inject).
#[derive(Debug)]
pub(crate) struct Dropped(pub &'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Dropped {}

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
    F: Future<Output = Result<hyper::Response<Full<Bytes>>, Dropped>> + Send + 'static,
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
