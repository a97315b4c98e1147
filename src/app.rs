//! The agent as a whole: reading this file tells the architecture. `run` opens the store,
//! starts one task per concern, and on shutdown stops them in order within a deadline.
//!
//! ```text
//!   Odoo ──HTTP──▶ sync::Scheduler ──pages──▶ Store ◀──protected writes── command::Commands
//!                     ▲      │                  │                            ▲
//!          sync-now ──┘      └── changes ──▶ mqtt::Publisher ──retained──▶   │
//!                                                   │                        │
//!   broker ◀──────────────── mqtt::link (owns the event loop) ──commands─────┘
//! ```

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::command::{Commands, Limits};
use crate::config::{Config, ConfigError};
use crate::mqtt::{self, Identity, LinkState, Publisher};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use crate::sync::odoo::OdooSync;
use crate::sync::scheduler::{Scheduler, Uplink};
use crate::sync::sicantik::SicantikSync;

/// How long the tasks get to finish once shutdown is triggered.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("task {0} stopped on its own")]
    TaskDied(&'static str),
}

/// Runs the agent until `shutdown` fires or a task dies.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), AppError> {
    config.validate()?;
    config.validate_secrets()?;
    let store = Store::open(&config.store.path)?;
    let retention = Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
    let mut tasks: JoinSet<&'static str> = JoinSet::new();
    // The tasks' own stop signal: fired on the caller's shutdown, or when any task dies.
    let (stop, stopping) = crate::shutdown::channel();
    // Every task beats; systemd's watchdog is fed only while all of them do.
    let health = crate::health::Health::new();

    // sync-now: the command layer sends, the scheduler receives (capacity 1: one pending
    // request is as good as many).
    let (sync_now, triggers) = mpsc::channel::<()>(1);
    // The Odoo uplink as the last sync saw it: the scheduler sends, the publisher shows it.
    let (uplink_tx, uplink) = watch::channel(Uplink::Unknown);
    // Store changes: the sync and the command layer send, the publisher shows them. Only
    // created when a broker is configured.
    let (changes, changes_rx) = match &config.mqtt {
        Some(_) => {
            let (tx, rx) = crate::changes::channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };

    if let Some(odoo) = &config.odoo {
        let mut sync = OdooSync::new(odoo, store.clone(), retention)?;
        if let Some(changes) = &changes {
            sync.notify(changes.clone());
        }
        let scheduler = Scheduler {
            sync,
            store: store.clone(),
            db: config.store.path.clone(),
            interval: odoo.sync_interval,
            triggers,
            uplink: uplink_tx,
            changes: changes.clone(),
            heart: health.heart("odoo sync"),
        };
        spawn_scheduler(&mut tasks, "odoo sync", scheduler, stopping.clone());
    } else {
        tracing::warn!("no [odoo] section: MOs are served as the store has them, nothing is synced");
    }
    let mut uplinks = vec![("odoo", uplink)];
    // The broker link as the health summary shows it, when there is a broker.
    let mut broker_up = None;

    if let Some(sicantik) = &config.sicantik {
        let mut sync = SicantikSync::new(sicantik, store.clone())?;
        if let Some(changes) = &changes {
            sync.notify(changes.clone());
        }
        let (uplink_tx, uplink_rx) = watch::channel(Uplink::Unknown);
        uplinks.push(("sicantik", uplink_rx));
        // sync-now is for Odoo; SICANTIK keeps its own schedule (its sender is dropped here).
        let (_, triggers) = mpsc::channel::<()>(1);
        let scheduler = Scheduler {
            sync,
            store: store.clone(),
            db: config.store.path.clone(),
            interval: sicantik.list_interval.min(sicantik.expiry_interval),
            triggers,
            uplink: uplink_tx,
            changes: changes.clone(),
            heart: health.heart("sicantik sync"),
        };
        spawn_scheduler(&mut tasks, "sicantik sync", scheduler, stopping.clone());
        if let Some(url) = &sicantik.webhook_url {
            let deliver = crate::outbox::deliver_webhooks(
                store.clone(),
                url.clone(),
                sicantik.request_timeout,
                crate::outbox::RETRY_MIN,
                stopping.clone(),
            );
            tasks.spawn(async move {
                deliver.await;
                "webhook outbox"
            });
        }
    }

    if let (Some(mqtt_config), Some(changes), Some(changes_rx)) = (&config.mqtt, changes, changes_rx) {
        let identity = Identity {
            prefix: mqtt_config.topic_prefix(),
            gateway: mqtt_config.gateway_id(),
            started_at: crate::clock::format_rfc3339(crate::clock::now_unix()),
        };
        let (client, events) = rumqttc::v5::AsyncClient::new(mqtt::options(mqtt_config, &identity)?, 1024);
        // Commands: the link receives them from the broker, the command task applies them and
        // hands them back to the link to acknowledge.
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let (link_tx, link_rx) = watch::channel(LinkState::default());
        broker_up = Some(link_rx.clone());
        let link = mqtt::link(
            mqtt::Link {
                events,
                client: client.clone(),
                prefix: identity.prefix.clone(),
                commands: commands_tx,
                acks: acks_rx,
                state: link_tx,
                heart: health.heart("mqtt link"),
            },
            stopping.clone(),
        );
        tasks.spawn(async move {
            link.await;
            "mqtt link"
        });
        let publisher = Publisher {
            client: client.clone(),
            store: store.clone(),
            identity: identity.clone(),
            changes: changes_rx,
            link: link_rx.clone(),
            uplinks,
            permits_zone: config.sicantik.as_ref().map(|s| s.zone_offset()).transpose()?,
            last_status: Default::default(),
            progress: Default::default(),
            last_permits: Default::default(),
            heart: health.heart("mqtt publisher"),
        };
        let publisher_shutdown = stopping.clone();
        tasks.spawn(async move {
            publisher.run(publisher_shutdown).await;
            "mqtt publisher"
        });
        let limits = Limits {
            max_age: mqtt_config.command_max_age,
            max_payload: mqtt_config.max_payload,
        };
        let commands = Commands::new(store.clone(), limits, sync_now);
        let server = mqtt::CommandServer {
            commands,
            client,
            prefix: identity.prefix,
            incoming: commands_rx,
            acks: acks_tx,
            link: link_rx,
            changes,
            heart: health.heart("commands"),
        };
        let serve = server.run(stopping.clone());
        tasks.spawn(async move {
            serve.await;
            "commands"
        });
    }
    let watch = crate::health::watch(health.clone(), store.clone(), broker_up, stopping.clone());
    tasks.spawn(async move {
        watch.await;
        "health"
    });
    tracing::info!(db = %config.store.path.display(), "linegate running");
    crate::health::ready("started");

    let died = tokio::select! {
        _ = shutdown.wait() => None,
        Some(joined) = tasks.join_next() => Some(joined.unwrap_or("a task (it panicked)")),
    };
    // Every task watches `stopping`; a dead task means the rest must stop too.
    crate::health::stopping();
    stop.fire();
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("tasks did not stop within {DRAIN_DEADLINE:?}; leaving them");
        tasks.abort_all();
    }
    drop(store);
    match died {
        Some(name) if !shutdown.is_set() => Err(AppError::TaskDied(name)),
        _ => {
            tracing::info!("linegate stopped");
            Ok(())
        }
    }
}

/// A sync scheduler as one of the agent's tasks, named for the logs when it stops.
fn spawn_scheduler<S: crate::sync::scheduler::Source + 'static>(
    tasks: &mut JoinSet<&'static str>,
    name: &'static str,
    scheduler: Scheduler<S>,
    shutdown: Shutdown,
) {
    tasks.spawn(async move {
        scheduler.run(shutdown).await;
        name
    });
}
