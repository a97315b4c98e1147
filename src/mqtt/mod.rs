//! linegate on the plant's broker. Three tasks, wired in `app.rs`:
//!
//! - [`link`]: owns rumqttc's event loop and polls it without pause. It never waits on SQLite
//!   or HTTP: commands go out on an unbounded channel (the broker's inflight window bounds
//!   it), connection changes on a watch. It subscribes again after every ConnAck without a
//!   session, and backs off with jitter between failed connects (rumqttc has no backoff).
//! - [`Publisher`]: retained state for the displays, read from SQLite: everything on every
//!   (re)connect, then what changed.
//! - [`serve_commands`]: panel commands through the command layer; the reply is published and
//!   the message acknowledged only after the command's transaction committed.

pub mod payload;
pub mod topics;

use std::collections::HashMap;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Filter, LastWill, Packet, Publish, PublishProperties, RetainForwardRule, Subscribe,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions, Request as MqttRequest};
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

use crate::changes::{Change, Receiver as Changes, Sender as ChangeSender};
use crate::command::{Commands, Request};
use crate::config::{ConfigError, MqttConfig};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::sync::scheduler::Uplink;
use topics::Topic;

/// How long the broker keeps our session (and the commands queued for us) while we are away.
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;
const OUTGOING_INFLIGHT: u16 = 100;
const MAX_PACKET: u32 = 1024 * 1024;
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The link as the other tasks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    pub connected: bool,
    /// Counts connections: a new value means "republish everything".
    pub generation: u64,
    /// The broker's largest packet, when it says (MQTT 5 CONNACK).
    pub max_packet: Option<u32>,
}

/// Everything the tasks share about this gateway's place on the broker.
#[derive(Debug, Clone)]
pub struct Identity {
    pub prefix: String,
    pub gateway: String,
    pub started_at: String,
}

/// The client options: persistent session with manual acks (a command is acknowledged only
/// once applied), a retained last will on the status topic, TCP_NODELAY, TLS when configured.
pub fn options(config: &MqttConfig, identity: &Identity) -> Result<MqttOptions, ConfigError> {
    let mut options = MqttOptions::new(config.client_id(), config.host.clone(), config.port);
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
        .set_manual_acks(true)
        .set_request_channel_capacity(1024)
        // rumqttc preallocates a slot per possible inflight publish: 65,535 by default, 14 MB.
        // The broker's receive maximum is far lower anyway (mosquitto: 20).
        .set_outgoing_inflight_upper_limit(OUTGOING_INFLIGHT)
        // Generous on purpose: a payload over `max_payload` must reach the command layer to
        // be refused with a reply. Beyond this the broker drops it (the limit goes to the
        // broker in CONNECT), rather than the client dropping the connection in a loop.
        .set_max_packet_size(Some(MAX_PACKET.max(config.max_payload as u32 + 4096)))
        .set_last_will(LastWill::new(
            Topic::Status.build(&identity.prefix),
            payload::lost(&identity.gateway, &identity.started_at).to_string(),
            QoS::AtLeastOnce,
            true,
            None,
        ));
    let mut network = NetworkOptions::new();
    // Nagle plus the broker's delayed ACK costs 40-90 ms per request/reply on loopback.
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    options.set_network_options(network);
    if let Some(user) = &config.username {
        options.set_credentials(user.clone(), config.password()?.unwrap_or_default());
    }
    if let Some(ca_file) = &config.ca_file {
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| ConfigError {
                key: key.into(),
                message: format!("{}: {e}", path.display()),
            })
        };
        let ca = read("mqtt.ca_file", ca_file)?;
        let client_auth = match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => Some((read("mqtt.client_cert_file", cert)?, read("mqtt.client_key_file", key)?)),
            _ => None,
        };
        // rumqttc builds its rustls config from the process-wide provider: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        options.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca,
            alpn: None,
            client_auth,
        }));
    }
    Ok(options)
}

/// A command from the broker, with the connection it came on (its packet id means nothing on
/// another one).
pub type Incoming = (u64, Publish);

/// A connection that lasted this long was a good one: the next failure starts the backoff over.
const STABLE: Duration = Duration::from_secs(30);

/// Polls the event loop until shutdown has been flushed to the broker (or cannot be).
///
/// Acknowledgements come back on `acks` and are sent only if their command arrived on the
/// current connection: after a reconnect without a session the broker numbers packets anew,
/// and an old PUBACK would acknowledge a different, not yet applied, command.
pub struct Link {
    pub events: EventLoop,
    pub client: AsyncClient,
    pub prefix: String,
    /// To the command server: commands with the connection they came on.
    pub commands: mpsc::UnboundedSender<Incoming>,
    /// From the command server: commands answered, to acknowledge.
    pub acks: mpsc::UnboundedReceiver<Incoming>,
    /// To the publisher and the command server: the connection as it stands.
    pub state: watch::Sender<LinkState>,
    /// Beats on every event (keep-alive pings come at least every `keep_alive`).
    pub heart: crate::health::Heart,
}

pub async fn link(link: Link, shutdown: Shutdown) {
    let Link {
        mut events,
        client,
        prefix,
        commands,
        mut acks,
        state,
        heart,
    } = link;
    let filter = Topic::command_filter(&prefix);
    let mut backoff = RECONNECT_MIN;
    let mut last_error: Option<String> = None;
    let mut connected_at: Option<std::time::Instant> = None;
    // After shutdown the publisher sends "offline" and DISCONNECT; keep polling so they reach
    // the broker, but not forever (one deadline, not one per event).
    let grace = async {
        shutdown.wait().await;
        tokio::time::sleep(Duration::from_secs(3)).await
    };
    tokio::pin!(grace);
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            Some((generation, publish)) = acks.recv() => {
                let current = *state.borrow();
                if current.connected && current.generation == generation {
                    let _ = client.try_ack(&publish);
                }
                continue;
            }
            _ = &mut grace => return,
        };
        heart.beat();
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                last_error = None;
                connected_at = Some(std::time::Instant::now());
                if !ack.session_present {
                    // A new session has no subscriptions. Ahead of everything queued (a full
                    // request channel during a republish must not lose it); retained commands
                    // are never replayed to us.
                    let mut command_filter = Filter::new(filter.clone(), QoS::AtLeastOnce);
                    command_filter.retain_forward_rule = RetainForwardRule::Never;
                    events
                        .pending
                        .push_front(MqttRequest::Subscribe(Subscribe::new(command_filter, None)));
                }
                let max_packet = ack.properties.as_ref().and_then(|p| p.max_packet_size);
                state.send_modify(|s| {
                    s.connected = true;
                    s.generation += 1;
                    s.max_packet = max_packet;
                });
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let topic = String::from_utf8_lossy(&publish.topic).to_string();
                match Topic::parse(&prefix, &topic) {
                    Some(Topic::Command { .. }) if !publish.retain => {
                        let _ = commands.send((state.borrow().generation, publish));
                    }
                    _ => {
                        // Not ours to handle (or a retained command, which would run again on
                        // every subscribe): acknowledge it so it is not redelivered forever.
                        tracing::warn!(topic, retain = publish.retain, "message dropped");
                        let _ = client.try_ack(&publish);
                    }
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) if shutdown.is_set() => return,
            Ok(_) => {}
            Err(e) => {
                state.send_modify(|s| s.connected = false);
                if shutdown.is_set() {
                    return;
                }
                // Only a connection that held starts the backoff over: one the broker drops at
                // once (it refuses something we send) must not reconnect at full speed.
                if connected_at.take().is_some_and(|at| at.elapsed() >= STABLE) {
                    backoff = RECONNECT_MIN;
                }
                let text = e.to_string();
                // Once per distinct failure, not once per retry.
                if last_error.as_deref() != Some(&text) {
                    tracing::warn!(error = %text, host = ?client_host(&events), "MQTT connection failed; retrying with backoff");
                    last_error = Some(text);
                }
                let delay = crate::sync::scheduler::jitter(backoff, 0.3);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => return,
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

fn client_host(events: &EventLoop) -> String {
    let (host, port) = events.options.broker_address();
    format!("{host}:{port}")
}

/// Publishes retained state for the displays.
pub struct Publisher {
    pub client: AsyncClient,
    pub store: Store,
    pub identity: Identity,
    pub changes: Changes,
    pub link: watch::Receiver<LinkState>,
    /// Each sync's uplink as its scheduler last saw it; shown in the status after every run.
    pub uplinks: Vec<(&'static str, watch::Receiver<Uplink>)>,
    /// The regency's zone offset when SICANTIK is synced: permits' expiry summary.
    pub permits_zone: Option<i64>,
    /// The status last published, so an unchanged one is not sent again.
    pub last_status: std::sync::Mutex<Option<String>>,
    /// Each source's long step under way, as the status shows it.
    pub progress: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
    /// The permits summary last published: days left change at the regency's midnight even
    /// when nothing else does, so it is recomputed every few minutes and sent when it differs.
    pub last_permits: std::sync::Mutex<Option<String>>,
    pub heart: crate::health::Heart,
}

impl Publisher {
    pub async fn run(mut self, shutdown: Shutdown) {
        // What each line topic last carried, so a change elsewhere does not republish it.
        let mut lines: HashMap<String, String> = HashMap::new();
        // MOs purged while the broker was away: their retained topics still need clearing.
        let mut purged_offline: Vec<i64> = Vec::new();
        let mut summary_tick = tokio::time::interval(Duration::from_secs(300));
        let mut pulse = tokio::time::interval(crate::health::BEAT);
        loop {
            self.heart.beat();
            tokio::select! {
                _ = pulse.tick() => {}
                changed = self.link.changed() => {
                    if changed.is_err() { return }
                    if self.link.borrow().connected {
                        // Every line we ever showed is sent again; one with nothing left gets
                        // an empty view instead of keeping a stale one.
                        lines.values_mut().for_each(String::clear);
                        let purged = std::mem::take(&mut purged_offline);
                        let outcome = match self.publish_change(Change::Purged(purged.clone()), &mut lines).await {
                            Ok(()) => self.republish_all(&mut lines).await,
                            Err(e) => {
                                purged_offline = purged;
                                Err(e)
                            }
                        };
                        if let Err(e) = outcome {
                            tracing::warn!(error = %e, "republishing retained state failed");
                        }
                    }
                }
                Some(change) = self.changes.recv() => {
                    if !self.link.borrow().connected {
                        // Everything is republished on the next connect; purges are remembered.
                        if let Change::Purged(ids) = change {
                            purged_offline.extend(ids);
                        }
                        continue;
                    }
                    if let Err(e) = self.publish_change(change, &mut lines).await {
                        tracing::warn!(error = %e, "publishing a change failed");
                    }
                }
                _ = summary_tick.tick(), if self.permits_zone.is_some() => {
                    if self.link.borrow().connected {
                        if let Err(e) = self.publish_permits().await {
                            tracing::warn!(error = %e, "publishing the permits summary failed");
                        }
                    }
                }
                _ = shutdown.wait() => break,
            }
        }
        // A clean goodbye: the broker sends the last will only when we vanish.
        if self.link.borrow().connected {
            let _ = self.publish_status(false).await;
            let _ = self.client.disconnect().await;
        }
    }

    async fn retained(&self, topic: Topic, payload: String) -> Result<(), rumqttc::v5::ClientError> {
        self.client
            .publish(topic.build(&self.identity.prefix), QoS::AtLeastOnce, true, payload)
            .await
    }

    async fn republish_all(&self, lines: &mut HashMap<String, String>) -> Result<(), PublishError> {
        // The broker may have lost everything: nothing counts as published any more.
        *self.last_status.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.last_permits.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.publish_status(true).await?;
        let ids = self.store.call(|c| store::mo::all_ids(c)).await?;
        for chunk in ids.chunks(500) {
            self.publish_mos(chunk.to_vec()).await?;
        }
        self.publish_lines(lines).await?;
        self.publish_permits().await?;
        tracing::info!(mos = ids.len(), "retained state republished");
        Ok(())
    }

    async fn publish_change(&self, change: Change, lines: &mut HashMap<String, String>) -> Result<(), PublishError> {
        match change {
            Change::Mos(ids) => {
                self.publish_mos(ids).await?;
                self.publish_lines(lines).await?;
            }
            Change::Purged(ids) => {
                for id in ids {
                    // An empty retained message clears the topic.
                    self.retained(Topic::Mo(id), String::new()).await?;
                }
                self.publish_lines(lines).await?;
            }
            Change::Synced => self.publish_status(true).await?,
            Change::Permits => self.publish_permits().await?,
            Change::Progress {
                source,
                step,
                done,
                total,
            } => {
                let value = serde_json::json!({"step": step, "done": done, "total": total});
                self.progress
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(source.to_string(), value);
                self.publish_status(true).await?;
            }
        }
        Ok(())
    }

    /// The expiring-permits summary, then every reminder waiting in the outbox.
    async fn publish_permits(&self) -> Result<(), PublishError> {
        let Some(zone) = self.permits_zone else { return Ok(()) };
        let permits = self.store.call(|c| store::permit::with_expiry(c)).await?;
        let today = crate::sicantik::expiry::today(crate::clock::now_unix(), zone);
        let summary = payload::expiring(&permits, today).to_string();
        let unchanged = self.last_permits.lock().unwrap_or_else(|e| e.into_inner()).as_ref() == Some(&summary);
        if !unchanged {
            self.retained(Topic::PermitsExpiring, summary.clone()).await?;
            *self.last_permits.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary);
        }
        loop {
            let due = self
                .store
                .call(|c| {
                    store::permit::outbox_due(c, "mqtt", &crate::clock::format_rfc3339(crate::clock::now_unix()), 100)
                })
                .await?;
            if due.is_empty() {
                return Ok(());
            }
            for (id, message, _) in due {
                let topic = Topic::PermitReminder.build(&self.identity.prefix);
                self.client.publish(topic, QoS::AtLeastOnce, false, message).await?;
                let now = crate::clock::format_rfc3339(crate::clock::now_unix());
                self.store
                    .call(move |c| store::permit::outbox_delivered(c, id, &now))
                    .await?;
            }
        }
    }

    async fn publish_mos(&self, ids: Vec<i64>) -> Result<(), PublishError> {
        let rows = self.store.call(move |c| store::mo::get_many(c, &ids)).await?;
        for row in rows {
            self.retained(Topic::Mo(row.upstream.id), payload::mo(&row).to_string())
                .await?;
        }
        Ok(())
    }

    /// Every line's view; only those that changed are published. A line with nothing left
    /// gets an empty view rather than a stale one.
    async fn publish_lines(&self, published: &mut HashMap<String, String>) -> Result<(), PublishError> {
        let views = self
            .store
            .call(|c| {
                let names = store::mo::lines(c)?;
                names
                    .into_iter()
                    .map(|l| Ok((l.clone(), store::mo::line_view(c, &l)?)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let mut current: HashMap<String, String> = views
            .iter()
            .map(|(name, (running, ready))| (name.clone(), payload::line(name, running, ready).to_string()))
            .collect();
        for name in published.keys() {
            current
                .entry(name.clone())
                .or_insert_with(|| payload::line(name, &[], &[]).to_string());
        }
        for (name, text) in &current {
            if published.get(name) != Some(text) {
                self.retained(Topic::Line(name.clone()), text.clone()).await?;
            }
        }
        *published = current;
        Ok(())
    }

    async fn publish_status(&self, online: bool) -> Result<(), PublishError> {
        let runs = self.store.call(|c| store::sync::last_runs(c)).await?;
        let last: Vec<_> = runs.into_iter().map(|s| s.last).collect();
        let uplinks: Vec<(&str, Uplink)> = self
            .uplinks
            .iter()
            .map(|(name, rx)| (*name, rx.borrow().clone()))
            .collect();
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let status = payload::status(
            online,
            &self.identity.gateway,
            &self.identity.started_at,
            &uplinks,
            &last,
            &progress,
        );
        let status = status.to_string();
        let unchanged = self.last_status.lock().unwrap_or_else(|e| e.into_inner()).as_ref() == Some(&status);
        if !unchanged {
            self.retained(Topic::Status, status.clone()).await?;
            *self.last_status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("MQTT client: {0}")]
    Client(#[from] rumqttc::v5::ClientError),
}

/// Crash tests' hook: `LINEGATE_FAILPOINT=<name>` kills the process here, as `kill -9` would,
/// at a moment no test could hit from outside.
fn failpoint(name: &str) {
    if std::env::var("LINEGATE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Runs panel commands: through the command layer, then the reply, then the acknowledgement.
pub struct CommandServer {
    pub commands: Commands,
    pub client: AsyncClient,
    pub prefix: String,
    /// From the link: commands with the connection they came on.
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    /// To the link: commands answered, to acknowledge if their connection still stands.
    pub acks: mpsc::UnboundedSender<Incoming>,
    pub link: watch::Receiver<LinkState>,
    pub changes: ChangeSender,
    pub heart: crate::health::Heart,
}

impl CommandServer {
    pub async fn run(self, shutdown: Shutdown) {
        let CommandServer {
            commands,
            client,
            prefix,
            mut incoming,
            acks,
            link,
            changes,
            heart,
        } = self;
        let mut pulse = tokio::time::interval(crate::health::BEAT);
        loop {
            heart.beat();
            let (generation, publish) = tokio::select! {
                _ = pulse.tick() => continue,
                Some(incoming) = incoming.recv() => incoming,
                // Stop intake; an unacknowledged command is redelivered to the next run.
                _ = shutdown.wait() => return,
                else => return,
            };
            let topic = String::from_utf8_lossy(&publish.topic).to_string();
            let Some(Topic::Command { station, action }) = Topic::parse(&prefix, &topic) else {
                let _ = acks.send((generation, publish));
                continue;
            };
            let request = Request {
                station: station.clone(),
                action,
                payload: publish.payload.to_vec(),
                received_unix: crate::clock::now_unix(),
            };
            failpoint("command-before-commit");
            let handled = commands.handle(request).await;
            failpoint("command-after-commit");
            match &handled.reply.error {
                Some(error) => {
                    tracing::warn!(station, request_id = ?handled.reply.request_id, code = error.code, message = error.message, "command refused")
                }
                None => {
                    tracing::info!(station, request_id = ?handled.reply.request_id, action = handled.reply.action, replayed = handled.replayed, "command done")
                }
            }
            if !handled.changed.is_empty() {
                let _ = changes.send(Change::Mos(handled.changed.clone()));
            }
            // A reply the broker would refuse (larger than its packet limit) would drop the
            // connection and come back after every reconnect: send a short refusal instead.
            let max_packet = link.borrow().max_packet.unwrap_or(MAX_PACKET) as usize;
            let mut reply = serde_json::to_string(&handled.reply).expect("replies serialize");
            if reply.len() + prefix.len() + 512 > max_packet {
                reply = crate::command::too_large_reply(&handled.reply, max_packet);
            }
            let reply_topic = Topic::Reply { station }.build(&prefix);
            if let Err(e) = client
                .publish(reply_topic, QoS::AtLeastOnce, false, reply.clone())
                .await
            {
                tracing::warn!(error = %e, "reply not sent");
            }
            // MQTT 5 request/response: answer where the panel asked, with its correlation data —
            // if the topic is one we may publish to (an empty or wildcard one would get us
            // disconnected, again after every reconnect).
            let response = publish
                .properties
                .as_ref()
                .and_then(|p| p.response_topic.as_ref().map(|t| (t, p)));
            if let Some((response_topic, props)) = response {
                if topics::publishable(response_topic) {
                    let properties = PublishProperties {
                        correlation_data: props.correlation_data.clone(),
                        ..Default::default()
                    };
                    let _ = client
                        .publish_with_properties(response_topic.clone(), QoS::AtLeastOnce, false, reply, properties)
                        .await;
                } else {
                    tracing::warn!(response_topic, "response topic ignored: not a topic one can publish to");
                }
            }
            // Only now: the command is committed and answered.
            let _ = acks.send((generation, publish));
        }
    }
}
