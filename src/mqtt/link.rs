//! The task that owns rumqttc's event loop.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Filter, Packet, RetainForwardRule, Subscribe};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, Request as MqttRequest};
use tokio::sync::{mpsc, watch};

use super::topics::Topic;
use super::Incoming;
use crate::backoff::Backoff;
use crate::heartbeat::Heart;
use crate::shutdown::Shutdown;
use crate::uplink::LinkState;

/// Waits between failed connects (rumqttc itself would retry at once, in a loop).
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30)).with_jitter(0.3);
/// A connection that lasted this long was a good one: the next failure starts the backoff over.
const STABLE: Duration = Duration::from_secs(30);

/// Polls the event loop until shutdown has been flushed to the broker (or cannot be).
///
/// Acknowledgements come back on `acks` and are sent only if their command arrived on the
/// current connection: after a reconnect without a session the broker numbers packets anew,
/// and an old PUBACK would acknowledge a different, not yet applied, command.
pub(crate) struct Link {
    pub(crate) events: EventLoop,
    pub(crate) client: AsyncClient,
    pub(crate) prefix: String,
    /// To the command server: commands with the connection they came on.
    pub(crate) commands: mpsc::UnboundedSender<Incoming>,
    /// From the command server: commands answered, to acknowledge.
    pub(crate) acks: mpsc::UnboundedReceiver<Incoming>,
    /// To the publisher and the command server: the connection as it stands.
    pub(crate) state: watch::Sender<LinkState>,
    /// Beats on every event (keep-alive pings come at least every `keep_alive`).
    pub(crate) heart: Heart,
}

pub(crate) async fn run(link: Link, shutdown: Shutdown) {
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
    let mut retries = RECONNECT.retries();
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
                    retries.reset();
                }
                let text = e.to_string();
                // Once per distinct failure, not once per retry.
                if last_error.as_deref() != Some(&text) {
                    tracing::warn!(error = %text, host = ?client_host(&events), "MQTT connection failed; retrying with backoff");
                    last_error = Some(text);
                }
                tokio::select! {
                    _ = tokio::time::sleep(retries.failed()) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
    }
}

fn client_host(events: &EventLoop) -> String {
    let (host, port) = events.options.broker_address();
    format!("{host}:{port}")
}
