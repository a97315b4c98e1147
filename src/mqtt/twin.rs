//! One agent per gateway id on a broker. Two would overwrite each other's retained state, answer
//! each other's panels and, under one client id, take each other's session in turn. So before
//! the link first connects as this gateway, a probe of its own (no session, no will) looks at
//! the retained status: an `online` one of another run is asked, with a query command, whether
//! it is alive. If it answers, this agent refuses (the newcomer yields; the running line is left
//! alone). If not, that status is a crash's the broker has not noticed yet, and we go on.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::{json, Value};

use super::topics::Topic;
use super::Identity;
use crate::config::{ConfigError, MqttConfig};

/// How long a retained status may take after the second subscription is granted. A broker
/// sends a subscription's retained messages as it grants it, ahead of the next SUBACK
/// (mosquitto: in order on one queue); this is slack for one that does not.
const RETAINED: Duration = Duration::from_millis(300);
/// How long a live agent may take to answer the query.
const ANSWER: Duration = Duration::from_secs(3);
/// How long the whole probe may take before the broker counts as unreachable.
const CONNECT: Duration = Duration::from_secs(5);

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No other live agent under this gateway id.
    Clear,
    /// Another one, live: what its status says of it.
    Twin { started_at: String, instance: String },
    /// The broker could not be asked.
    Unreachable(String),
}

/// Where the probe is.
enum Stage {
    /// Until both subscriptions are granted.
    Connecting { granted: usize },
    /// Subscribed: a retained status comes now, or there is none.
    Listening,
    /// Another run's `online` status came; its answer to the query is awaited.
    Asked { started_at: String, instance: String },
}

/// Looks for another live agent under `identity`'s gateway id on the broker.
pub(crate) async fn probe(config: &MqttConfig, identity: &Identity) -> Result<Probe, ConfigError> {
    let options = super::options::sessionless(config, "probe")?;
    let (client, mut events) = AsyncClient::new(options, 8);
    let status_topic = Topic::Status.build(&identity.prefix);
    // A station no panel has, so the reply reaches this probe alone.
    let station = format!("linegate-probe-{:08x}", super::options::unique() as u32);
    let reply_topic = Topic::Reply {
        station: station.clone(),
    }
    .build(&identity.prefix);
    let request_id = format!("probe-{}", identity.instance);
    let mut stage = Stage::Connecting { granted: 0 };
    let mut deadline = tokio::time::Instant::now() + CONNECT;
    let found = loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = tokio::time::sleep_until(deadline) => break match stage {
                Stage::Connecting { .. } => Probe::Unreachable("the broker did not answer in time".into()),
                // No retained status; or one whose agent did not answer: a crash the broker has
                // not noticed yet (its will comes once it does).
                Stage::Listening | Stage::Asked { .. } => Probe::Clear,
            },
        };
        match (event, &mut stage) {
            (Ok(Event::Incoming(Packet::ConnAck(_))), _) => {
                // The status first: its retained message comes before the second SUBACK.
                let _ = client.try_subscribe(status_topic.clone(), QoS::AtMostOnce);
                let _ = client.try_subscribe(reply_topic.clone(), QoS::AtLeastOnce);
            }
            (Ok(Event::Incoming(Packet::SubAck(_))), Stage::Connecting { granted }) => {
                *granted += 1;
                if *granted == 2 {
                    stage = Stage::Listening;
                    deadline = tokio::time::Instant::now() + RETAINED;
                }
            }
            (Ok(Event::Incoming(Packet::Publish(p))), Stage::Connecting { .. } | Stage::Listening)
                if p.topic == status_topic.as_bytes() =>
            {
                let status: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                let instance = status["instance"].as_str().unwrap_or_default();
                if status["state"] != "online" || instance == identity.instance {
                    break Probe::Clear;
                }
                let command = Topic::Command {
                    station: station.clone(),
                    action: "running-mo".into(),
                }
                .build(&identity.prefix);
                let query = json!({"schema": 1, "request_id": request_id});
                let _ = client.try_publish(command, QoS::AtLeastOnce, false, query.to_string());
                stage = Stage::Asked {
                    started_at: status["started_at"].as_str().unwrap_or("?").to_string(),
                    instance: instance.to_string(),
                };
                deadline = tokio::time::Instant::now() + ANSWER;
            }
            (Ok(Event::Incoming(Packet::Publish(p))), Stage::Asked { started_at, instance }) => {
                let reply: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                if reply["request_id"] == request_id.as_str() {
                    break Probe::Twin {
                        started_at: std::mem::take(started_at),
                        instance: std::mem::take(instance),
                    };
                }
            }
            (Ok(_), _) => {}
            (Err(e), _) => break Probe::Unreachable(e.to_string()),
        }
    };
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while events.poll().await.is_ok() {}
    })
    .await;
    Ok(found)
}

/// The check the link makes before it first connects as this gateway.
pub(crate) struct TwinCheck {
    pub(crate) config: MqttConfig,
    pub(crate) identity: Identity,
    /// Why this agent refused, for the app to stop on (and exit 78: a configuration error,
    /// which systemd does not restart).
    pub(crate) refused: tokio::sync::watch::Sender<Option<String>>,
}

/// Between probes while the broker cannot be reached: the agent works offline meanwhile, as
/// it does whenever the broker is away.
const RETRY: crate::backoff::Backoff =
    crate::backoff::Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

/// Probes until the broker answers: true when this agent may connect, false when it refused
/// (another live agent under its id) or shutdown came first.
pub(crate) async fn until_clear(
    check: &TwinCheck,
    heart: &crate::heartbeat::Heart,
    shutdown: &crate::shutdown::Shutdown,
) -> bool {
    let mut retries = RETRY.retries();
    let mut said: Option<String> = None;
    loop {
        heart.beat();
        let probed = tokio::select! {
            probed = probe(&check.config, &check.identity) => probed,
            _ = shutdown.wait() => return false,
        };
        match probed {
            // Built and used already by the link's own options: cannot fail here.
            Ok(Probe::Clear) | Err(_) => return true,
            Ok(Probe::Twin { started_at, instance }) => {
                let why = format!(
                    "another linegate is live on the broker as gateway {:?} (started {started_at}, instance \
                     {instance}): gateway_id must be unique among the agents on a broker; this one does not \
                     connect",
                    check.identity.gateway
                );
                tracing::error!("{why}");
                let _ = check.refused.send(Some(why));
                return false;
            }
            Ok(Probe::Unreachable(error)) => {
                if said.as_deref() != Some(&error) {
                    tracing::warn!(%error, "cannot look for another agent under this gateway id yet; trying again");
                    said = Some(error);
                }
                tokio::select! {
                    _ = tokio::time::sleep(retries.failed()) => {}
                    _ = shutdown.wait() => return false,
                }
            }
        }
    }
}
