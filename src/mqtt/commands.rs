//! Panel commands: through the command layer, then the reply, then the acknowledgement.

use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::{mpsc, watch};

use super::link::{publish_confirmed, NotConfirmed, Tracked};
use super::topics::{self, Topic};
use super::{Incoming, MAX_PACKET};
use crate::changes::{Change, Sender as ChangeSender};
use crate::command::reply::refuse;
use crate::command::{Commands, Request};
use crate::heartbeat::{Heart, BEAT};
use crate::shutdown::Shutdown;
use crate::uplink::LinkState;

/// Crash tests' hook: `LINEGATE_FAILPOINT=<name>` kills the process here, as `kill -9` would,
/// at a moment no test could hit from outside.
fn failpoint(name: &str) {
    if std::env::var("LINEGATE_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Runs panel commands: through the command layer, then the reply, then the acknowledgement.
pub(crate) struct CommandServer {
    pub(crate) commands: Commands,
    pub(crate) prefix: String,
    /// From the link: commands with the connection they came on.
    pub(crate) incoming: mpsc::Receiver<Incoming>,
    /// To the link: commands answered, to acknowledge if their connection still stands.
    pub(crate) acks: mpsc::Sender<Incoming>,
    /// To the link: replies, confirmed on the broker's PUBACK.
    pub(crate) tracked: mpsc::Sender<Tracked>,
    pub(crate) link: watch::Receiver<LinkState>,
    pub(crate) changes: ChangeSender,
    pub(crate) heart: Heart,
}

impl CommandServer {
    pub(crate) async fn run(self, shutdown: Shutdown) {
        let CommandServer {
            commands,
            prefix,
            mut incoming,
            acks,
            tracked,
            link,
            changes,
            heart,
        } = self;
        let mut pulse = tokio::time::interval(BEAT);
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
                let _ = acks.send((generation, publish)).await;
                continue;
            };
            let request = Request {
                station: station.clone(),
                action,
                payload: publish.payload.to_vec(),
                received_unix: crate::clock::now_unix(),
            };
            // MQTT 5 request/response: the panel may ask for the answer on a topic of its own,
            // with its correlation data — within its station's reply space only.
            let response = publish.properties.as_ref().and_then(|p| {
                p.response_topic
                    .as_ref()
                    .map(|t| (t.clone(), p.correlation_data.clone()))
            });
            let outside = response
                .as_ref()
                .filter(|(t, _)| !topics::in_reply_space(&prefix, &station, t));
            failpoint("command-before-commit");
            let handled = match outside {
                Some((topic, _)) => commands.refuse(
                    &request,
                    refuse(
                        "bad_response_topic",
                        format!(
                            "response topic {topic:?} is not this station's: use {} or a topic below it",
                            Topic::Reply {
                                station: station.clone()
                            }
                            .build(&prefix)
                        ),
                    ),
                ),
                None => commands.handle(request).await,
            };
            failpoint("command-after-commit");
            match &handled.reply.error {
                Some(error) => {
                    tracing::warn!(station, request_id = ?handled.reply.request_id, code = error.code, message = error.message, "command refused")
                }
                None => {
                    tracing::info!(station, request_id = ?handled.reply.request_id, action = handled.reply.action, replayed = handled.replayed, "command done")
                }
            }
            // A reply the broker would refuse (larger than its packet limit) would drop the
            // connection and come back after every reconnect: send a short refusal instead.
            let max_packet = link.borrow().max_packet.unwrap_or(MAX_PACKET) as usize;
            let reply = serde_json::to_string(&handled.reply).expect("replies serialize");
            // Within the broker's packet limit with `around` bytes of topic and properties.
            let fitted = |around: usize| {
                if reply.len() + around + 512 > max_packet {
                    crate::command::reply::too_large_reply(&handled.reply, max_packet)
                } else {
                    reply.clone()
                }
            };
            let reply_topic = Topic::Reply {
                station: station.clone(),
            }
            .build(&prefix);
            let mut replies = vec![Publish::new(
                reply_topic.clone(),
                QoS::AtLeastOnce,
                fitted(reply_topic.len()),
                None,
            )];
            match response {
                // Refused above, on the station's own reply topic.
                Some(_) if outside.is_some() => {}
                // The station's own reply topic: sent once.
                Some((topic, _)) if topic == reply_topic => {}
                Some((topic, correlation_data)) => {
                    // The panel chose both: together they must leave room for a reply.
                    let around = topic.len() + correlation_data.as_ref().map_or(0, |c| c.len());
                    if around + 1024 > max_packet {
                        tracing::warn!(
                            station,
                            "response topic and correlation data too long for the broker's packet limit"
                        );
                    } else {
                        let properties = PublishProperties {
                            correlation_data,
                            ..Default::default()
                        };
                        replies.push(Publish::new(topic, QoS::AtLeastOnce, fitted(around), Some(properties)));
                    }
                }
                None => {}
            }
            // The command is acknowledged only once the broker has its replies: were the agent
            // to die between the two, the broker hands the command over again, and the stored
            // reply goes out then. (An acknowledgement sent ahead could leave a panel with none.)
            let (mut session_lost, mut stopped) = (false, false);
            for publish in replies {
                match publish_confirmed(&tracked, publish, &heart, &shutdown).await {
                    Ok(()) => {}
                    // Not acknowledged: redelivered to the next run, which replays the reply.
                    Err(NotConfirmed::Stopped) => {
                        stopped = true;
                        break;
                    }
                    // The command came on that session: nothing to acknowledge any more.
                    Err(NotConfirmed::Lost) => session_lost = true,
                    // Acknowledged all the same: the broker would refuse the reply again, and
                    // the panel gets it by asking with the same request_id.
                    Err(e @ NotConfirmed::Refused(_)) => {
                        tracing::warn!(station, error = %e, "reply refused by the broker")
                    }
                }
            }
            // The displays after the panel: the publisher's reads and retained publishes do not
            // stand between the panel and its reply.
            if !handled.changed.is_empty() {
                changes.send(Change::Mos(handled.changed.clone()));
            }
            if stopped {
                return;
            }
            if session_lost {
                continue;
            }
            // Only now: the command is committed and its replies are out.
            if acks.send((generation, publish)).await.is_err() {
                return;
            }
        }
    }
}
