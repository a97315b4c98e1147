//! The agent as a whole: reading this file tells the architecture. `run` opens the store,
//! starts one task per concern, and on shutdown stops them in order within a deadline.
//!
//! ```text
//!   Odoo ──HTTP──▶ sync::Scheduler ──pages──▶ Store ◀──protected writes── command::Commands
//!                     ▲      │                  │                            ▲
//!          sync-now ──┘      └── changes ──▶ mqtt::publisher ──retained──▶   │
//!                                                   │                        │
//!   broker ◀──────────────── mqtt::link (owns the event loop) ──commands─────┘
//!      ▲
//!      └── outbox::mqtt (reminder events)        outbox::webhook ──HTTP──▶ webhook
//! ```
//!
//! The tasks stop in stages: intake first (syncs, commands, outbox), then the publisher, which
//! says `offline` and disconnects, then the link that carries that to the broker, then the
//! watchdog; last, the store's thread is joined so its close-time checkpoint completes.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::command::{Commands, Limits};
use crate::config::{Config, ConfigError};
use crate::heartbeat::Hearts;
use crate::lock::{self, FileLock};
use crate::mqtt::{self, Identity};
use crate::shutdown::{Shutdown, Tasks};
use crate::store::{Store, StoreError};
use crate::sync::odoo::OdooSync;
use crate::sync::runs::Runs;
use crate::sync::scheduler::Scheduler;
use crate::sync::sicantik::SicantikSync;
use crate::uplink::{LinkState, Uplink};

/// How long the tasks get to finish once shutdown is triggered.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Then the store's thread, to finish its last transaction and checkpoint.
const STORE_CLOSE_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("task {0} stopped on its own")]
    TaskDied(&'static str),
    #[error("another linegate is running on {} (it holds {}); one agent per database", db.display(), lock.display())]
    AlreadyRunning { db: PathBuf, lock: PathBuf },
    #[error("cannot take the agent's lock {}: {error}", lock.display())]
    Lock { lock: PathBuf, error: std::io::Error },
    /// Another agent is live on the broker under this gateway id.
    #[error("{0}")]
    Twin(String),
}

/// Runs the agent until `shutdown` fires or a task dies.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), AppError> {
    config.validate()?;
    config.validate_secrets()?;
    config.validate_work()?;
    // Held for the agent's life: a second agent on this database would fight this one over the
    // broker's client id and the store.
    let db = &config.store.path;
    let lock_file = lock::lock_path(db, lock::AGENT);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let _agent_lock = match FileLock::try_acquire(db, lock::AGENT) {
        Ok(Some(mut held)) => {
            held.record_pid();
            Some(held)
        }
        Ok(None) => {
            return Err(AppError::AlreadyRunning {
                db: db.clone(),
                lock: lock_file,
            })
        }
        // Nobody can write there, a second agent included: the store is served read-only.
        Err(error) if error.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            tracing::warn!(lock = %lock_file.display(), "no agent lock on a read-only file system");
            None
        }
        Err(error) => return Err(AppError::Lock { lock: lock_file, error }),
    };
    let (store, _kept) = Store::open_or_start_afresh(&config.store.path)?;
    // Each source's newest recorded run, shown until its first run here.
    let mut recorded = store.call(|c| crate::store::sync::last_runs(c)).await?;
    let mut last_run = |source: &str| {
        let at = recorded.iter().position(|s| s.source == source)?;
        Some(recorded.swap_remove(at).last)
    };
    // Each source's runs as they happen: the schedulers send, the publisher and the health
    // summary show them.
    let mut shown_runs = Vec::new();
    let retention = Duration::from_secs(u64::from(config.store.retention_days) * 86_400);
    let mut tasks = Tasks::default();
    let intake = tasks.stage("intake");
    let publish = tasks.stage("publisher");
    let link_stage = tasks.stage("link");
    let last = tasks.stage("watchdog");
    // Every task beats; systemd's watchdog is fed only while all of them do.
    let hearts = Hearts::new();

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
    // Rung by the SICANTIK sync when it queued reminders; the outbox's tasks wait on it.
    let queued = crate::changes::Queued::default();
    // Rung by the command layer when it queued results for Odoo; their delivery waits on it.
    let results_queued = crate::changes::Queued::default();
    let push = config.odoo.as_ref().map(|o| &o.push).filter(|p| p.active());
    // What Odoo would refuse of the configured work: the Odoo outbox checks and sends, the
    // publisher shows it (without an outbox the sender is dropped and nothing is shown).
    let (refusals_tx, refusals) = watch::channel(None);

    if let Some(odoo) = &config.odoo {
        let mut sync = OdooSync::new(odoo, store.clone(), retention)?;
        if let Some(changes) = &changes {
            sync.notify(changes.clone());
        }
        let (runs, shown) = Runs::idle_every(odoo.reconcile_interval, last_run(crate::uplink::ODOO));
        shown_runs.push(shown);
        let scheduler = Scheduler {
            sync,
            store: store.clone(),
            db: config.store.path.clone(),
            interval: odoo.sync_interval,
            triggers,
            uplink: uplink_tx,
            changes: changes.clone(),
            heart: hearts.heart("odoo sync"),
            runs,
        };
        tasks.spawn(intake, "odoo sync", |stop| scheduler.run(stop));
    } else {
        tracing::warn!("no [odoo] section: MOs are served as the store has them, nothing is synced");
    }
    if let (Some(odoo), Some(push)) = (&config.odoo, push) {
        let outbox = crate::outbox::odoo::OdooOutbox {
            store: store.clone(),
            client: crate::odoo::OdooClient::new(odoo)?,
            push: push.clone(),
            uplink: uplink.clone(),
            check_uplink: sync_now.clone(),
            queued: results_queued.subscribe(),
            changes: changes.clone(),
            heart: hearts.heart("odoo outbox"),
            refusals: refusals_tx,
            owners: config
                .mqtt
                .as_ref()
                .map(|mqtt| crate::outbox::odoo::owner::Owners::new(mqtt.gateway_id())),
        };
        tasks.spawn(intake, "odoo outbox", |stop| outbox.run(stop));
    }
    let mut uplinks = vec![(crate::uplink::ODOO, uplink)];

    if let Some(sicantik) = &config.sicantik {
        let mut sync = SicantikSync::new(sicantik, store.clone())?;
        if let Some(changes) = &changes {
            sync.notify(changes.clone(), queued.clone());
        }
        let (uplink_tx, uplink_rx) = watch::channel(Uplink::Unknown);
        uplinks.push((crate::uplink::SICANTIK, uplink_rx));
        // sync-now is for Odoo; SICANTIK keeps its own schedule (its sender is dropped here).
        let (_, triggers) = mpsc::channel::<()>(1);
        let (runs, shown) = Runs::idle_every(
            crate::sync::runs::IDLE_RECORDED_EVERY,
            last_run(crate::uplink::SICANTIK),
        );
        shown_runs.push(shown);
        let scheduler = Scheduler {
            sync,
            store: store.clone(),
            db: config.store.path.clone(),
            interval: sicantik.list_interval.min(sicantik.expiry_interval),
            triggers,
            uplink: uplink_tx,
            changes: changes.clone(),
            heart: hearts.heart("sicantik sync"),
            runs,
        };
        tasks.spawn(intake, "sicantik sync", |stop| scheduler.run(stop));
        if let Some(url) = &sicantik.webhook_url {
            let webhook = crate::outbox::webhook::Webhook {
                store: store.clone(),
                url: url.clone(),
                timeout: sicantik.request_timeout,
                retry_min: crate::outbox::webhook::RETRY_MIN,
                queued: queued.subscribe(),
            };
            tasks.spawn(intake, "webhook outbox", |stop| webhook.run(stop));
        }
    }

    // The broker link as the health summary shows it, when there is a broker.
    let mut broker_up = None;
    // Set by the link when another agent is live under this gateway id.
    let (twin_tx, twin) = watch::channel(None);
    if let (Some(mqtt_config), Some(changes), Some(changes_rx)) = (&config.mqtt, changes, changes_rx) {
        let identity = Identity {
            prefix: mqtt_config.topic_prefix(),
            gateway: mqtt_config.gateway_id(),
            started_at: crate::clock::format_rfc3339(crate::clock::now_unix()),
            instance: format!("{:016x}", mqtt::options::unique()),
        };
        // rumqttc's request channel carries only the publisher's retained state and its goodbye
        // (replies, reminder events, acknowledgements and subscriptions go straight into the
        // event loop's own queue): kept short, so that the goodbye never waits behind a long
        // republish, and what it buffers stays small.
        let (client, events) = rumqttc::v5::AsyncClient::new(mqtt::options::build(mqtt_config, &identity)?, 64);
        // Commands: the link receives them from the broker, the command task applies them and
        // hands them back to the link to acknowledge. The broker sends at most RECEIVE_MAXIMUM
        // unacknowledged ones, so neither channel can hold more.
        let window = usize::from(mqtt::RECEIVE_MAXIMUM);
        let (commands_tx, commands_rx) = mpsc::channel(window);
        let (acks_tx, acks_rx) = mpsc::channel(window);
        // Publishes whose PUBACK someone waits for (replies before their command's ack, reminder
        // events before they leave the outbox): the command server and the MQTT outbox send,
        // the link confirms.
        let (tracked_tx, tracked_rx) = mpsc::channel(1);
        // The connection as it stands: the link sends, every MQTT task watches.
        let (link_tx, link_rx) = watch::channel(LinkState::default());
        broker_up = Some(link_rx.clone());
        // Set by the publisher before its DISCONNECT, read by the link.
        let goodbye = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let link = mqtt::link::Link {
            events,
            prefix: identity.prefix.clone(),
            commands: commands_tx,
            acks: acks_rx,
            tracked: tracked_rx,
            state: link_tx,
            goodbye: goodbye.clone(),
            heart: hearts.heart("mqtt link"),
            twin: Some(mqtt::twin::TwinCheck {
                config: mqtt_config.clone(),
                identity: identity.clone(),
                refused: twin_tx,
            }),
        };
        tasks.spawn(link_stage, "mqtt link", |stop| mqtt::link::run(link, stop));
        let publisher = mqtt::publisher::Publisher {
            client: client.clone(),
            store: store.clone(),
            identity: identity.clone(),
            changes: changes_rx,
            link: link_rx.clone(),
            uplinks,
            refusals,
            runs: shown_runs.clone(),
            permits_zone: config.sicantik.as_ref().map(|s| s.zone_offset()).transpose()?,
            goodbye,
            heart: hearts.heart("mqtt publisher"),
        };
        tasks.spawn(publish, "mqtt publisher", |stop| publisher.run(stop));
        let reminders = crate::outbox::mqtt::MqttOutbox {
            store: store.clone(),
            link_tx: tracked_tx.clone(),
            topic: mqtt::topics::Topic::PermitReminder.build(&identity.prefix),
            link: link_rx.clone(),
            queued: queued.subscribe(),
            heart: hearts.heart("mqtt outbox"),
        };
        tasks.spawn(intake, "mqtt outbox", |stop| reminders.run(stop));
        let limits = Limits {
            max_age: mqtt_config.command_max_age,
            max_payload: mqtt_config.max_payload,
        };
        let server = mqtt::commands::CommandServer {
            commands: match push {
                Some(_) => {
                    Commands::new(store.clone(), limits, sync_now).report_to_odoo(&identity.gateway, results_queued)
                }
                None => Commands::new(store.clone(), limits, sync_now),
            },
            prefix: identity.prefix,
            incoming: commands_rx,
            acks: acks_tx,
            tracked: tracked_tx,
            link: link_rx,
            changes,
            heart: hearts.heart("commands"),
        };
        tasks.spawn(intake, "commands", |stop| server.run(stop));
    }
    let housekeeping = crate::housekeeping::Housekeeping {
        store: store.clone(),
        keep: Duration::from_secs(u64::from(config.store.log_retention_days) * 86_400),
        heart: hearts.heart("housekeeping"),
    };
    tasks.spawn(intake, "housekeeping", |stop| housekeeping.run(stop));
    let watch = |stop| crate::health::watch(hearts.clone(), store.clone(), shown_runs, broker_up, stop);
    tasks.spawn(last, "health", watch);
    tracing::info!(db = %config.store.path.display(), "linegate running");
    crate::health::ready("started");

    let died = tokio::select! {
        _ = shutdown.wait() => None,
        name = tasks.ended() => Some(name),
    };
    // A dead task means the rest must stop too.
    crate::health::stopping();
    tasks.stop(DRAIN_DEADLINE).await;
    // Its close-time checkpoint, unless the disk is wedged: systemd would kill us anyway.
    if tokio::time::timeout(STORE_CLOSE_DEADLINE, store.close()).await.is_err() {
        tracing::error!("the store's thread did not finish within {STORE_CLOSE_DEADLINE:?}; exiting without it");
    }
    if let Some(why) = twin.borrow().clone() {
        return Err(AppError::Twin(why));
    }
    match died {
        Some(name) if !shutdown.is_set() => Err(AppError::TaskDied(name)),
        _ => {
            tracing::info!("linegate stopped");
            Ok(())
        }
    }
}
