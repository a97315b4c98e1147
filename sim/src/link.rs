//! A network link that can be cut: a TCP forwarder on a free loopback port to a target, for the
//! plant network between a gateway's broker and the plant broker in the fleet tests. While cut,
//! every connection through it is closed and new ones are closed as they come (the port stays,
//! as a switch's port does); restored, it forwards again. Stopped when dropped.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Link {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut: the open connections watch it and close.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Forwards 127.0.0.1:<port> to `target`; must be called inside a tokio runtime.
    pub async fn start(target: SocketAddr) -> io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let task = tokio::spawn(forward(listener, target, cut.clone(), cuts.clone()));
        Ok(Link { port, cut, cuts, task })
    }

    /// Cuts the link: open connections close, new ones are refused until [`Link::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

async fn forward(listener: TcpListener, target: SocketAddr, cut: Arc<AtomicBool>, cuts: watch::Sender<u64>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of descriptors, say: not a hot loop.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        // Watching for cuts before looking: a cut between the two still closes this one.
        let mut cut_now = cuts.subscribe();
        if cut.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut inbound, mut outbound) = (inbound, outbound);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut_now.changed() => {}
            }
        });
    }
}
