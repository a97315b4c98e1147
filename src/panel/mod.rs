//! `linegate send STATION ACTION [BODY]`: one panel command from the command line, as a
//! workstation panel sends it, and the agent's reply — so a newcomer at the demo, or an
//! electrician at a gateway, can act as a station with nothing else installed. It is an MQTT
//! client like a panel: the `[mqtt]` keys (host, port, TLS, login), a client id of its own.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::{Map, Value};

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
    /// No reply within the timeout; why, when the broker could not be reached. Once the broker
    /// has taken it (`taken`), the command may still be applied: it keeps it for the agent.
    NoReply {
        request_id: String,
        taken: bool,
        trouble: Option<String>,
    },
    /// Stopped (SIGINT/SIGTERM) before a reply came.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the command's body: {0}")]
    Body(String),
}

/// The body as sent: a JSON object with a request_id (one made up when missing), of at most
/// `max` bytes — the agent's `[mqtt] max_payload`, so that a refusal is local and clear.
pub(crate) fn body(text: &str, max: usize) -> Result<(Map<String, Value>, String), SendError> {
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
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let id = format!("send-{}-{now}", std::process::id());
            fields.insert("request_id".into(), Value::String(id.clone()));
            id
        }
    };
    Ok((fields, request_id))
}

/// Sends the command and waits for the reply that carries its request_id.
pub async fn run(config: &MqttConfig, args: &SendArgs, shutdown: Shutdown) -> Result<Sent, SendError> {
    let (fields, request_id) = body(&args.body, config.max_payload)?;
    let payload = Value::Object(fields).to_string();
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
    let response_topic = format!("{own}/send-{}", std::process::id());
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
    let mut taken = false;
    loop {
        let event = tokio::select! {
            event = events.poll() => event,
            _ = &mut deadline => return Ok(Sent::NoReply {
                request_id,
                taken,
                trouble,
            }),
            _ = shutdown.wait() => return Ok(Sent::Stopped),
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                trouble = None;
                // No session: subscribe on every connect, and send once subscribed.
                let _ = client.try_subscribe(response_topic.clone(), QoS::AtLeastOnce);
            }
            // Sent again after a reconnect: the first may not have arrived, and if it did the
            // agent answers the same request_id with the same reply, applying nothing twice.
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = client.try_publish_with_properties(
                    command.clone(),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                    properties.clone(),
                );
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => taken = true,
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
                        _ = &mut deadline => return Ok(Sent::NoReply {
                    request_id,
                    taken,
                    trouble,
                }),
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
        let (fields, id) = body(r#"{"operator":"ana","mo":1}"#, MAX).unwrap();
        assert!(id.starts_with("send-"), "{id}");
        assert_eq!(fields["request_id"], id.as_str());
        assert_eq!(fields["mo"], 1);
        let (_, id) = body(r#"{"request_id":"r-7","operator":"ana"}"#, MAX).unwrap();
        assert_eq!(id, "r-7");
    }

    #[test]
    fn a_bad_body_is_refused_before_anything_is_sent() {
        for bad in ["", "mo=1", "[1]", "\"text\"", r#"{"request_id":7}"#] {
            let e = body(bad, MAX).unwrap_err();
            assert!(matches!(e, SendError::Body(_)), "{bad}: {e}");
        }
        let huge = format!(r#"{{"note":"{}"}}"#, "x".repeat(MAX));
        assert!(body(&huge, MAX).unwrap_err().to_string().contains("at most"));
    }
}
