//! One agent per gateway id on a broker. Two would overwrite each other's retained state, answer
//! each other's panels and, under one client id, take each other's session in turn. So before
//! the link first connects as this gateway, a probe of its own (no session, no will) looks at
//! the retained status: an `online` one of another run is asked, with a query command, whether
//! it is alive. If it answers, this agent refuses (the newcomer yields; the running line is left
//! alone). If not, that status is a crash's the broker has not noticed yet, and we go on.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
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
    /// The broker would not let the probe look (its ACL, a connection limit): the agent goes
    /// on, with the live check of the link alone ([`older_twin`]).
    Refused(String),
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
            (Ok(Event::Incoming(Packet::ConnAck(ack))), _) if ack.code != ConnectReturnCode::Success => {
                break Probe::Refused(format!("the broker refused the probe's connection: {:?}", ack.code));
            }
            (Ok(Event::Incoming(Packet::ConnAck(_))), _) => {
                // The status first: its retained message comes before the second SUBACK.
                let _ = client.try_subscribe(status_topic.clone(), QoS::AtMostOnce);
                let _ = client.try_subscribe(reply_topic.clone(), QoS::AtLeastOnce);
            }
            (Ok(Event::Incoming(Packet::SubAck(ack))), _)
                if ack
                    .return_codes
                    .iter()
                    .any(|c| !matches!(c, SubscribeReasonCode::Success(_))) =>
            {
                break Probe::Refused(format!(
                    "the broker refused the probe's subscription: {:?}",
                    ack.return_codes
                ));
            }
            (Ok(Event::Incoming(Packet::PubAck(ack))), _)
                if !matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers) =>
            {
                break Probe::Refused(format!("the broker refused the probe's query: {:?}", ack.reason));
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

/// Between probes while the broker cannot be reached (the agent works offline meanwhile, as
/// whenever the broker is away): as the link's own reconnects, so that the first connect too
/// comes within 2 s of the broker's return.
const RETRY: crate::backoff::Backoff =
    crate::backoff::Backoff::new(Duration::from_millis(250), Duration::from_millis(1600));

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
            Ok(Probe::Refused(why)) => {
                tracing::warn!(%why, "cannot look for another agent under this gateway id before connecting; going on");
                return true;
            }
            Ok(Probe::Twin { started_at, instance }) => {
                let why = format!(
                    "another linegate is live on the broker as gateway {:?} (started {}, instance {}): \
                     gateway_id must be unique among the agents on a broker; this one does not connect",
                    check.identity.gateway,
                    shown(&started_at),
                    shown(&instance)
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

/// Whether `status`, seen on our own status topic once we had been online, shows another run
/// of this gateway that should keep it: the older of two live twins keeps the line (the
/// newer refuses), so two agents that both got past the probe (started at once, or with a
/// slow twin) settle on one. Why this one must stop, when it must.
pub(crate) fn older_twin(identity: &Identity, status: &[u8]) -> Option<String> {
    let status: Value = serde_json::from_slice(status).ok()?;
    let instance = status["instance"].as_str()?;
    let started_at = status["started_at"].as_str().unwrap_or_default();
    if instance == identity.instance {
        return None;
    }
    // RFC 3339 UTC of one format: the text orders as the time does; the instance breaks a tie.
    let theirs = (started_at, instance);
    let ours = (identity.started_at.as_str(), identity.instance.as_str());
    if theirs < ours {
        Some(format!(
            "another linegate writes this gateway's status ({:?}, started {}, instance {}): gateway_id \
             must be unique among the agents on a broker; the older one keeps the line, this one stops",
            identity.gateway,
            shown(started_at),
            shown(instance)
        ))
    } else {
        tracing::error!(
            gateway = %identity.gateway,
            other_started_at = %shown(started_at),
            other_instance = %shown(instance),
            "another linegate writes this gateway's status; it started later and will stop"
        );
        None
    }
}

/// Text from the broker, for the journal: printable, and short.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Identity {
        Identity {
            prefix: "linegate/gw".into(),
            gateway: "gw".into(),
            started_at: "2026-12-01T08:00:00Z".into(),
            instance: "bbbb".into(),
        }
    }

    fn status(started_at: &str, instance: &str) -> Vec<u8> {
        json!({"state": "online", "started_at": started_at, "instance": instance})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn of_two_live_twins_the_newer_stops_and_the_older_keeps_the_line() {
        // Ours, and not a status at all: nothing to do
        assert_eq!(older_twin(&us(), &status("2026-12-01T08:00:00Z", "bbbb")), None);
        assert_eq!(older_twin(&us(), b"not json"), None);
        assert_eq!(older_twin(&us(), br#"{"state":"online"}"#), None);
        // Another run started earlier: this one stops
        let why = older_twin(&us(), &status("2026-12-01T07:59:59Z", "ffff")).unwrap();
        assert!(why.contains("the older one keeps the line, this one stops"), "{why}");
        // Started later: it stops, not this one
        assert_eq!(older_twin(&us(), &status("2026-12-01T08:00:01Z", "0000"),), None);
        // In the same second the instance decides, the same way on both sides
        assert!(older_twin(&us(), &status("2026-12-01T08:00:00Z", "aaaa")).is_some());
        assert_eq!(older_twin(&us(), &status("2026-12-01T08:00:00Z", "cccc")), None);
        // Its will counts as well: it was there, and it is not us
        let will = json!({"state": "offline", "reason": "connection lost", "started_at": "2026-12-01T07:00:00Z",
            "instance": "eeee"});
        assert!(older_twin(&us(), will.to_string().as_bytes()).is_some());
    }

    #[test]
    fn what_the_broker_says_of_a_twin_is_printable_and_short() {
        let hostile = status("2026-12-01T07:00:00Z\u{1b}[2J", &"x".repeat(10_000));
        let why = older_twin(&us(), &hostile).unwrap();
        assert!(!why.chars().any(|c| c.is_control()), "{why:?}");
        assert!(why.len() < 600, "{}", why.len());
    }
}
