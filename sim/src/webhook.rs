//! A webhook receiver (a WhatsApp gateway, say) that fails its first requests on demand and
//! keeps the body of every one it accepted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};

use crate::{Drip, Dropped};

pub struct Webhook {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Requests still to answer 503 before accepting.
    failures: usize,
    received: Vec<String>,
}

impl Webhook {
    /// Listens on a free loopback port; the first `failures` requests get 503.
    pub async fn start(failures: usize) -> std::io::Result<Webhook> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            failures,
            received: Vec::new(),
        }));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(crate::serve(listener, state.clone(), stopped, answer));
        Ok(Webhook { addr, state, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The bodies accepted so far, in arrival order.
    pub fn received(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).received.clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn answer(state: Arc<Mutex<State>>, request: hyper::Request<Incoming>) -> Result<hyper::Response<Drip>, Dropped> {
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|_| Dropped("the webhook's request body broke off"))?
        .to_bytes();
    let status = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.failures > 0 {
            s.failures -= 1;
            503
        } else {
            s.received.push(String::from_utf8_lossy(&body).into_owned());
            200
        }
    };
    Ok(hyper::Response::builder()
        .status(status)
        .body(Drip::full(Bytes::new()))
        .expect("a status and an empty body make a response"))
}
