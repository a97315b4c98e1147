//! `linegate send STATION ACTION [BODY]`: one panel command from the command line, as a
//! workstation panel sends it, and the agent's reply — so a newcomer at the demo, or an
//! electrician at a gateway, can act as a station with nothing else installed. It is an MQTT
//! client like a panel: the `[mqtt]` keys (host, port, TLS, login), a client id of its own.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::Value;

use crate::config::{ConfigError, MqttConfig};
use crate::mqtt::topics::Topic;
use crate::shutdown::Shutdown;

/// Between attempts while the broker cannot be reached.
const RETRY: Duration = Duration::from_millis(500);

/// What to send.
#[derive(Debug, Clone)]
pub struct SendArgs {
    /// The station the command comes from (its topics: `P/cmd/<station>/…`, `P/reply/<station>`).
    pub station: String,
    /// `register-mo`, `start-production`, …, as in docs/mqtt.md.
    pub action: String,
    /// The command's JSON object; a `request_id` is added when it has none.
    pub body: String,
    /// How long to wait for the reply.
    pub timeout: Duration,
}

/// How it went.
#[derive(Debug)]
pub enum Sent {
    /// The agent's reply (its `ok` says whether the command was applied).
    Reply(Value),
    /// No reply within the timeout, and how far the command got.
    NoReply {
        request_id: String,
        got: Got,
        /// Why the broker could not be reached, when it could not.
        trouble: Option<String>,
    },
    /// The broker refused the subscription to the reply or the command itself (an ACL).
    Refused(String),
    /// Stopped (SIGINT/SIGTERM) before a reply came.
    Stopped,
}

/// How far an unanswered command got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Got {
    /// Not to the broker: no connection.
    Nowhere,
    /// Connected, but the broker had not taken it (no PUBACK).
    Unacknowledged,
    /// The broker has it, and keeps it for the agent: it may still be applied.
    Broker,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the command's body: {0}")]
    Body(String),
}

/// The payload as sent: the body, a JSON object, with a request_id (one made up when missing);
/// at most `max` bytes — the agent's `[mqtt] max_payload`, so that a refusal is local and clear.
pub(crate) fn payload(text: &str, max: usize) -> Result<(String, String), SendError> {
    // Unread when far too large; the exact bound applies to what would be sent.
    if text.len() > max {
        return Err(SendError::Body(format!("{} bytes; at most {max}", text.len())));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| SendError::Body(format!("not JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(SendError::Body(
            "must be a JSON object, e.g. '{\"operator\":\"ana\",\"mo\":1}'".into(),
        ));
    };
    let request_id = match fields.get("request_id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => return Err(SendError::Body(format!("`request_id` must be text, not {other}"))),
        None => {
            let id = format!("send-{:016x}", crate::mqtt::options::unique());
            fields.insert("request_id".into(), Value::String(id.clone()));
            id
        }
    };
    let payload = Value::Object(fields).to_string();
    if payload.len() > max {
        return Err(SendError::Body(format!(
            "{} bytes with its request_id; at most {max}",
            payload.len()
        )));
    }
    Ok((payload, request_id))
}

/// Sends the command and waits for the reply that carries its request_id.
pub async fn run(config: &MqttConfig, args: &SendArgs, shutdown: Shutdown) -> Result<Sent, SendError> {
    let (payload, request_id) = payload(&args.body, config.max_payload)?;
    let prefix = config.topic_prefix();
    let command = Topic::Command {
        station: args.station.clone(),
        action: args.action.clone(),
    }
    .build(&prefix);
    // Below the station's own reply topic, so this one client gets it (the agent sends it to
    // the station's topic as well, for the panel itself).
    let own = Topic::Reply {
        station: args.station.clone(),
    }
    .build(&prefix);
    let response_topic = format!("{own}/send-{:016x}", crate::mqtt::options::unique());
    let properties = PublishProperties {
        response_topic: Some(response_topic.clone()),
        correlation_data: Some(request_id.clone().into()),
        ..Default::default()
    };

    let options = crate::mqtt::options::sessionless(config, "send")?;
    let (client, mut events) = AsyncClient::new(options, 8);
    let deadline = tokio::time::sleep(args.timeout);
    tokio::pin!(deadline);
    let mut trouble = None;
    let mut got = Got::Nowhere;
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = &mut deadline => return Ok(Sent::NoReply { request_id, got, trouble }),
            _ = shutdown.wait() => return Ok(Sent::Stopped),
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                trouble = None;
                got = got.max(Got::Unacknowledged);
                // No session: subscribe on every connect, and send once subscribed.
                let _ = client.try_subscribe(response_topic.clone(), QoS::AtLeastOnce);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if let Some(refused) = ack
                    .return_codes
                    .iter()
                    .find(|c| !matches!(c, SubscribeReasonCode::Success(_)))
                {
                    return Ok(Sent::Refused(format!(
                        "the subscription to {response_topic}: {refused:?}"
                    )));
                }
                // Sent again after a reconnect: the first may not have arrived, and if it did
                // the agent answers the same request_id with the same reply, applying nothing
                // twice.
                let _ = client.try_publish_with_properties(
                    command.clone(),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                    properties.clone(),
                );
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => match ack.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => got = Got::Broker,
                refused => return Ok(Sent::Refused(format!("the command on {command}: {refused:?}"))),
            },
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Ok(reply) = serde_json::from_slice::<Value>(&p.payload) else {
                    continue;
                };
                if reply["request_id"] == request_id.as_str() {
                    return Ok(Sent::Reply(reply));
                }
            }
            Ok(_) => {}
            Err(e) => {
                trouble = Some(e.to_string());
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = &mut deadline => return Ok(Sent::NoReply { request_id, got, trouble }),
                    _ = shutdown.wait() => return Ok(Sent::Stopped),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;

    #[test]
    fn a_body_gets_a_request_id_unless_it_has_one() {
        let (sent, id) = payload(r#"{"operator":"ana","mo":1}"#, MAX).unwrap();
        let sent: Value = serde_json::from_str(&sent).unwrap();
        assert!(id.starts_with("send-"), "{id}");
        assert_eq!(sent["request_id"], id.as_str());
        assert_eq!(sent["mo"], 1);
        let (_, again) = payload(r#"{"operator":"ana","mo":1}"#, MAX).unwrap();
        assert_ne!(id, again, "each send has its own");
        let (_, id) = payload(r#"{"request_id":"r-7","operator":"ana"}"#, MAX).unwrap();
        assert_eq!(id, "r-7");
    }

    #[test]
    fn a_bad_body_is_refused_before_anything_is_sent() {
        for bad in ["", "mo=1", "[1]", "\"text\"", r#"{"request_id":7}"#] {
            let e = payload(bad, MAX).unwrap_err();
            assert!(matches!(e, SendError::Body(_)), "{bad}: {e}");
        }
        let huge = format!(r#"{{"note":"{}"}}"#, "x".repeat(MAX));
        assert!(payload(&huge, MAX).unwrap_err().to_string().contains("at most"));
        // Within the bound as typed, over it once the request_id is added.
        let edge = format!(r#"{{"note":"{}"}}"#, "x".repeat(MAX - 11));
        assert_eq!(edge.len(), MAX);
        assert!(payload(&edge, MAX)
            .unwrap_err()
            .to_string()
            .contains("with its request_id"));
    }
}
