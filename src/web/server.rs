//! The listener: plain HTTP/1.1, or TLS (rustls, as the rest of linegate) when `[web]` names a
//! certificate. Every bound is here: connections at once, the time a client may take to send
//! a request's head (and to send the next one on a kept-alive connection), the size of a
//! head. Bodies are bounded where they are read (`routes`), event streams where they are made
//! (`events`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{Web, WebError};
use crate::config::WebConfig;
use crate::shutdown::Shutdown;

/// A client gets this long to send a request's head (also between requests on one
/// connection: an idle browser's connection is closed after it).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// And this long for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's head (request line and headers) at most.
const MAX_HEAD: usize = 16 * 1024;
/// Open connections get this long to finish when the server stops.
const DRAIN: Duration = Duration::from_secs(5);
/// What a connection may send without the other end acknowledging it, before it is given up:
/// a page on a tablet that left the Wi-Fi holds its stream's slot no longer than this (the
/// stream's ticks keep data going out).
const UNACKNOWLEDGED: Duration = Duration::from_secs(30);
/// When full, a plain connection gets this answer rather than nothing.
const FULL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Where the server listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub addr: SocketAddr,
}

/// The TLS acceptor `[web]` asks for, if any.
pub(super) fn tls(config: &WebConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, WebError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| WebError::Tls(format!("web.tls_cert_file {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| WebError::Tls(format!("web.tls_key_file {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| WebError::Tls(format!("web.tls_cert_file and web.tls_key_file: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))))
}

/// Accepts connections until `shutdown`, then lets open ones finish for a moment.
pub(super) async fn serve(
    web: Arc<Web>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: Shutdown,
    bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), WebError> {
    let addr = web.config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|error| WebError::Listen { addr, error })?;
    let local = listener
        .local_addr()
        .map_err(|error| WebError::Listen { addr, error })?;
    tracing::info!(addr = %local, tls = tls.is_some(), "serving the floor's screens");
    if let Some(bound) = bound {
        let _ = bound.send(Bound { addr: local });
    }
    crate::health::ready(&format!("serving the floor's screens on {local}"));
    let slots = Arc::new(Semaphore::new(web.config.max_connections));
    // One device (a page stuck reloading, a browser with many tabs) takes a quarter at most.
    let per_device = Devices::new((web.config.max_connections / 4).max(1));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let (Ok(slot), Some(device)) = (slots.clone().try_acquire_owned(), per_device.enter(peer.ip())) else {
            // Full: the browser tries again (an event stream by itself, a page on reload).
            tracing::debug!(%peer, "too many connections; refused");
            if tls.is_none() {
                let _ = stream.try_write(FULL);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        give_up_unacknowledged(&stream, UNACKNOWLEDGED);
        let web = web.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = (slot, device);
            match tls {
                None => connection(web, stream, peer, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => connection(web, stream, peer, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    crate::health::stopping();
    tracker.close();
    web.stop.cancel();
    let _ = tokio::time::timeout(DRAIN, tracker.wait()).await;
    Ok(())
}

/// One browser's connection.
async fn connection<IO>(web: Arc<Web>, io: IO, peer: SocketAddr, shutdown: Shutdown)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let web = web.clone();
        async move { Ok::<_, std::convert::Infallible>(super::routes::handle(web, peer, request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        }
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

/// Connections per device, bounded.
#[derive(Clone)]
struct Devices {
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    max: usize,
}

/// One connection of a device, counted until dropped.
struct DeviceSlot {
    devices: Devices,
    ip: std::net::IpAddr,
}

impl Devices {
    fn new(max: usize) -> Devices {
        Devices {
            open: Arc::default(),
            max,
        }
    }

    fn enter(&self, ip: std::net::IpAddr) -> Option<DeviceSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(DeviceSlot {
            devices: self.clone(),
            ip,
        })
    }
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        let mut open = self.devices.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// TCP_USER_TIMEOUT: data unacknowledged for `after` closes the connection, where TCP alone
/// would retry for a quarter of an hour.
#[allow(
    unsafe_code,
    reason = "TCP_USER_TIMEOUT has no binding in std or tokio; setsockopt only sets an int on our own socket"
)]
fn give_up_unacknowledged(stream: &tokio::net::TcpStream, after: Duration) {
    use std::os::fd::AsRawFd;
    let ms = libc::c_uint::try_from(after.as_millis()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: the descriptor is the stream's, open for the call; the value is a c_uint of the
    // size given.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if set != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_USER_TIMEOUT not set");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_holds_its_share_of_connections_until_they_end() {
        let devices = Devices::new(2);
        let tablet: std::net::IpAddr = [10, 0, 0, 5].into();
        let a = devices.enter(tablet).unwrap();
        let _b = devices.enter(tablet).unwrap();
        assert!(devices.enter(tablet).is_none());
        assert!(devices.enter([10, 0, 0, 6].into()).is_some(), "another device");
        drop(a);
        assert!(devices.enter(tablet).is_some());
    }
}
