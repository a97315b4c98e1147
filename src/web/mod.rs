//! `linegate web`: the floor's screens in any browser — a line display (`/line/<line>`), a
//! workstation's panel (`/panel/<station>`) and an index (`/`) — served by the gateway in a
//! process of its own (`linegate-web.service`). It is an MQTT client of the broker like any
//! display or panel: it reads the retained state with a display's account ([`feed`]) and acts
//! for a station with that station's own account ([`stations`]); it never opens the store.
//!
//! ```text
//!   broker ──retained──▶ feed ──watch──▶ events (SSE) ──▶ displays, panels, index
//!      ▲                                                        │
//!      └── stations (one login per station) ◀── routes (POST) ◀─┘
//! ```
//!
//! The pages, styles and scripts are files in `assets/`, compiled into the binary: nothing is
//! fetched from outside the gateway.

mod assets;
mod events;
mod feed;
mod routes;
mod server;
mod session;
mod stations;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, Language, WebConfig};
use crate::shutdown::Shutdown;

pub use server::Bound;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// What every request handler shares.
pub(crate) struct Web {
    pub(crate) config: WebConfig,
    pub(crate) gateway: String,
    pub(crate) feed: watch::Receiver<Arc<feed::Snapshot>>,
    pub(crate) stations: stations::Stations,
    pub(crate) sealer: session::Sealer,
    pub(crate) sign_ins: routes::SignInLimiter,
    pub(crate) tls: bool,
    pub(crate) stop: CancellationToken,
}

impl Web {
    pub(crate) fn language(&self) -> Language {
        self.config.language
    }
}

/// What `check-config` asks of `[web]` beyond the file: its TLS files load, its display
/// password can be read.
pub(crate) fn check(web: &WebConfig) -> Result<(), WebError> {
    server::tls(web)?;
    web.display_password()?;
    Ok(())
}

/// Serves the screens until `shutdown`. `bound` hears the listener's address once it listens
/// (tests bind port 0).
pub async fn run(
    config: &Config,
    shutdown: Shutdown,
    bound: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), WebError> {
    // Only what the screens need: the agent's Odoo secrets may be another unit's credentials.
    config.validate()?;
    let (Some(web), Some(mqtt)) = (&config.web, &config.mqtt) else {
        return Err(ConfigError {
            key: "web".into(),
            message: "`linegate web` needs a [web] and an [mqtt] section".into(),
        }
        .into());
    };
    let display_login = match &web.display_username {
        Some(user) => Some((user.clone(), web.display_password()?.unwrap_or_default())),
        None => None,
    };
    if display_login.is_none() {
        tracing::warn!("web.display_username is not set: reading the displays' state without a login");
    }
    let options = crate::mqtt::options::sessionless_as(mqtt, "web", display_login)?;
    let tls = server::tls(web)?;
    let stop = CancellationToken::new();
    let (feed_tx, feed) = watch::channel(Arc::new(feed::Snapshot::new()));
    let prefix = mqtt.topic_prefix();
    let feed_task = tokio::spawn(feed::run(options, prefix, feed_tx, shutdown.clone()));
    let state = Arc::new(Web {
        config: web.clone(),
        gateway: mqtt.gateway_id(),
        feed,
        stations: stations::Stations::new(mqtt, stop.child_token()),
        sealer: session::Sealer::load_or_create(&web.state_dir),
        sign_ins: routes::SignInLimiter::new(),
        tls: tls.is_some(),
        stop: stop.clone(),
    });
    let served = server::serve(state, tls, shutdown.clone(), bound).await;
    stop.cancel();
    feed_task.abort();
    served
}
