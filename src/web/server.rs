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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: the browser tries again (an event stream by itself, a page on reload).
            tracing::debug!(%peer, "too many connections; refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let web = web.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
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
