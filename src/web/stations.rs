//! The panels' way to the agent: one MQTT connection per station, logged in with that station's
//! own broker account, so the broker — not this server — decides what a panel may do: the
//! shipped ACL lets the account `ws-1` command as `ws-1` and read `ws-1`'s replies, nothing
//! else. A command goes out as `linegate send` sends it (MQTT 5, a response topic below the
//! station's replies, the request_id as correlation data) and its reply comes back to the
//! browser that asked.
//!
//! Signing in is the broker's verdict too: a connection with the password given either is
//! accepted, and becomes the station's link, or is refused, and nothing changes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event};
use rumqttc::Outgoing;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, MqttConfig};
use crate::mqtt::topics::Topic;

/// How long a browser's request waits for the agent's reply before it is told to ask again.
const REPLY_WAIT: Duration = Duration::from_secs(8);
/// How long a sign-in waits for the broker's verdict.
const SIGN_IN_WAIT: Duration = Duration::from_secs(5);
/// Between attempts while the broker cannot be reached.
const RETRY: Duration = Duration::from_millis(500);
/// Requests of one station waiting for a reply at once.
const MAX_WAITING: usize = 64;
/// The actions a panel may send (docs/mqtt.md).
pub(crate) const ACTIONS: [&str; 8] = [
    "register-mo",
    "start-production",
    "changeover",
    "end-production",
    "mo-options",
    "ready-mo",
    "running-mo",
    "sync-now",
];

/// What came of a command.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The agent's reply (its `ok` says whether it was applied).
    Reply(Value),
    /// No reply in time: the broker or the agent may be away. Asking again with the same
    /// request_id is safe (the agent answers a repeated one with its first reply).
    Pending,
    /// The broker refused the command or the subscription to its reply.
    Refused(String),
    /// Too many requests of this station are waiting already.
    Busy,
}

/// The broker's verdict on a sign-in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignIn {
    Accepted,
    /// Not the station's password.
    Refused(String),
    /// The password is right, but the broker does not let the station read its replies (its
    /// ACL): a matter for whoever keeps the broker, not a wrong guess.
    Forbidden(String),
    Unreachable(String),
}

/// Why a session cannot act.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// The broker refuses its password (changed since it signed in).
    SignedOut,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Connecting,
    Up,
    /// The broker refused the login: nothing will change that but a new sign-in.
    Refused(String),
    /// The broker refused the subscription to the station's replies.
    Forbidden(String),
}

/// Links per station at most: the station's password and one other (the one before a change,
/// or the next), so that whichever sessions come first after a restart, each finds its own.
const LINKS_PER_STATION: usize = 2;

/// What the link's task and the requests share about replies.
#[derive(Default)]
struct Replies {
    waiting: HashMap<String, Vec<oneshot::Sender<Answer>>>,
    /// request_ids in the order their publishes went to the event loop, until rumqttc names
    /// their packet id.
    unsent: VecDeque<String>,
    /// Packet id → request_id, until the broker's PUBACK.
    in_flight: HashMap<u16, String>,
}

type Answer = Result<Value, String>;

impl Replies {
    fn answer(&mut self, request_id: &str, answer: &Answer) {
        for tx in self.waiting.remove(request_id).unwrap_or_default() {
            let _ = tx.send(answer.clone());
        }
    }
}

/// One station's connection.
struct Link {
    password: String,
    client: AsyncClient,
    command_prefix: String,
    response_topic: String,
    replies: Arc<Mutex<Replies>>,
    state: watch::Receiver<State>,
    stop: CancellationToken,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Every station's links, the newest last.
pub(crate) struct Stations {
    mqtt: MqttConfig,
    prefix: String,
    links: Mutex<HashMap<String, Vec<Arc<Link>>>>,
    stop: CancellationToken,
}

impl Stations {
    pub(crate) fn new(mqtt: &MqttConfig, stop: CancellationToken) -> Stations {
        Stations {
            prefix: mqtt.topic_prefix(),
            mqtt: mqtt.clone(),
            links: Mutex::new(HashMap::new()),
            stop,
        }
    }

    /// Asks the broker whether `password` is `station`'s; when it is, that connection becomes
    /// the station's link for it.
    pub(crate) async fn sign_in(&self, station: &str, password: &str) -> SignIn {
        let link = match self.start(station, password) {
            Ok(link) => link,
            Err(e) => return SignIn::Unreachable(e.to_string()),
        };
        let mut state = link.state.clone();
        let verdict = tokio::time::timeout(SIGN_IN_WAIT, state.wait_for(|s| *s != State::Connecting)).await;
        let verdict = match verdict {
            Ok(Ok(s)) => s.clone(),
            _ => return SignIn::Unreachable("the broker did not answer".into()),
        };
        match verdict {
            State::Up => {
                self.keep(station, Arc::new(link));
                SignIn::Accepted
            }
            State::Refused(why) => SignIn::Refused(why),
            State::Forbidden(why) => SignIn::Forbidden(why),
            State::Connecting => SignIn::Unreachable("the broker did not answer".into()),
        }
    }

    /// Sends a command for a session of `station` signed in with `password`.
    pub(crate) async fn send(
        &self,
        station: &str,
        password: &str,
        action: &str,
        body: Map<String, Value>,
    ) -> Result<Outcome, Denied> {
        let link = self.link(station, password)?;
        Ok(link.send(action, body).await)
    }

    /// Whether a session of `station` with `password` may act.
    pub(crate) fn check(&self, station: &str, password: &str) -> Result<(), Denied> {
        self.link(station, password).map(|_| ())
    }

    /// The station's link for `password`: made when there is none (after a restart, each
    /// password comes back with its sessions), refused once the broker refused it.
    fn link(&self, station: &str, password: &str) -> Result<Arc<Link>, Denied> {
        {
            let links = self.lock();
            let own = links
                .get(station)
                .into_iter()
                .flatten()
                .find(|l| same(&l.password, password));
            if let Some(link) = own {
                return match *link.state.borrow() {
                    State::Refused(_) => Err(Denied::SignedOut),
                    _ => Ok(link.clone()),
                };
            }
        }
        let link = Arc::new(self.start(station, password).map_err(|e| {
            tracing::error!(error = %e, "cannot build the station's connection");
            Denied::SignedOut
        })?);
        self.keep(station, link.clone());
        Ok(link)
    }

    /// Keeps `link` as the newest of `station`'s, in place of one with the same password; the
    /// oldest beyond the bound goes (and its connection with it).
    fn keep(&self, station: &str, link: Arc<Link>) {
        let mut links = self.lock();
        let kept = links.entry(station.to_string()).or_default();
        kept.retain(|l| !same(&l.password, &link.password));
        kept.push(link);
        if kept.len() > LINKS_PER_STATION {
            kept.remove(0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Arc<Link>>>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, station: &str, password: &str) -> Result<Link, ConfigError> {
        let role = format!("web-{station}");
        let options =
            crate::mqtt::options::sessionless_as(&self.mqtt, &role, Some((station.to_string(), password.to_string())))?;
        let (client, events) = AsyncClient::new(options, 16);
        let own = Topic::Reply {
            station: station.to_string(),
        }
        .build(&self.prefix);
        let response_topic = format!("{own}/web-{:08x}", crate::mqtt::options::unique() as u32);
        let command_prefix = format!("{}/cmd/{}", self.prefix, crate::mqtt::topics::encode(station));
        let (state_tx, state) = watch::channel(State::Connecting);
        let replies = Arc::new(Mutex::new(Replies::default()));
        let stop = self.stop.child_token();
        let task = Task {
            station: station.to_string(),
            client: client.clone(),
            response_topic: response_topic.clone(),
            replies: replies.clone(),
            state: state_tx,
        };
        tokio::spawn(task.run(events, stop.clone()));
        Ok(Link {
            password: password.to_string(),
            client,
            command_prefix,
            response_topic,
            replies,
            state,
            stop,
        })
    }
}

impl Link {
    async fn send(&self, action: &str, body: Map<String, Value>) -> Outcome {
        let Some(Value::String(request_id)) = body.get("request_id").cloned() else {
            return Outcome::Refused("a command needs a request_id".into());
        };
        if let State::Refused(why) | State::Forbidden(why) = &*self.state.borrow() {
            return Outcome::Refused(why.clone());
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
            if !replies.waiting.contains_key(&request_id) && replies.waiting.len() >= MAX_WAITING {
                return Outcome::Busy;
            }
            replies.waiting.entry(request_id.clone()).or_default().push(tx);
            let properties = PublishProperties {
                response_topic: Some(self.response_topic.clone()),
                correlation_data: Some(request_id.clone().into()),
                ..Default::default()
            };
            let topic = format!("{}/{}", self.command_prefix, crate::mqtt::topics::encode(action));
            let payload = Value::Object(body).to_string();
            // Never waits: the event loop's queue is bounded, and a full one is a busy station.
            if self
                .client
                .try_publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
                .is_err()
            {
                replies.waiting.remove(&request_id);
                return Outcome::Busy;
            }
            replies.unsent.push_back(request_id.clone());
        }
        let outcome = match tokio::time::timeout(REPLY_WAIT, rx).await {
            Ok(Ok(Ok(reply))) => Outcome::Reply(reply),
            Ok(Ok(Err(refused))) => Outcome::Refused(refused),
            Ok(Err(_)) | Err(_) => Outcome::Pending,
        };
        if matches!(outcome, Outcome::Pending) {
            let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(left) = replies.waiting.get_mut(&request_id) {
                left.retain(|tx| !tx.is_closed());
                if left.is_empty() {
                    replies.waiting.remove(&request_id);
                }
            }
        }
        outcome
    }
}

/// The link's task: polls its event loop without pause.
struct Task {
    station: String,
    client: AsyncClient,
    response_topic: String,
    replies: Arc<Mutex<Replies>>,
    state: watch::Sender<State>,
}

impl Task {
    async fn run(self, mut events: rumqttc::v5::EventLoop, stop: CancellationToken) {
        let mut trouble: Option<String> = None;
        loop {
            let event = tokio::select! {
                event = events.poll() => event,
                () = stop.cancelled() => {
                    let _ = self.client.try_disconnect();
                    return;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    trouble = None;
                    // No session: subscribe on every connect.
                    let _ = self.client.try_subscribe(self.response_topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let granted = ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode::Success(_)));
                    if granted {
                        self.state.send_replace(State::Up);
                    } else {
                        let why = format!(
                            "the broker does not let station {} read its replies ({:?}): see the ACL",
                            self.station, ack.return_codes
                        );
                        tracing::error!(station = %self.station, "{why}");
                        self.state.send_replace(State::Forbidden(why));
                        return;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
                    // A publish sent again after a reconnect keeps its packet id.
                    if !replies.in_flight.contains_key(&pkid) {
                        if let Some(id) = replies.unsent.pop_front() {
                            replies.in_flight.insert(pkid, id);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let mut replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
                    let id = replies.in_flight.remove(&ack.pkid);
                    if !matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers) {
                        let why = format!(
                            "the broker refused the command of station {} ({:?}): see the ACL",
                            self.station, ack.reason
                        );
                        tracing::warn!(station = %self.station, "{why}");
                        if let Some(id) = id {
                            replies.answer(&id, &Err(why));
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Ok(reply) = serde_json::from_slice::<Value>(&p.payload) else {
                        continue;
                    };
                    if let Some(id) = reply["request_id"].as_str() {
                        let id = id.to_string();
                        self.replies
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .answer(&id, &Ok(reply));
                    }
                }
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(
                    code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
                )) => {
                    let why = format!("the broker refused station {}'s login ({code:?})", self.station);
                    tracing::warn!(station = %self.station, "{why}");
                    self.state.send_replace(State::Refused(why));
                    return;
                }
                Err(e) => {
                    let why = e.to_string();
                    if trouble.as_ref() != Some(&why) {
                        tracing::warn!(station = %self.station, error = %why, "the broker cannot be reached; trying again");
                    }
                    trouble = Some(why);
                    self.state.send_if_modified(|s| {
                        let was_up = *s == State::Up;
                        if was_up {
                            *s = State::Connecting;
                        }
                        was_up
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }
}

/// Equal, in a time that does not tell how much of a password matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(same("", ""));
    }

    #[test]
    fn an_answer_reaches_every_request_waiting_on_its_id_and_only_those() {
        let mut replies = Replies::default();
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        let (c, mut rc) = oneshot::channel();
        replies.waiting.insert("r1".into(), vec![a, b]);
        replies.waiting.insert("r2".into(), vec![c]);
        replies.answer("r1", &Ok(serde_json::json!({"ok": true})));
        assert_eq!(ra.try_recv().unwrap().unwrap()["ok"], true);
        assert_eq!(rb.try_recv().unwrap().unwrap()["ok"], true);
        assert!(rc.try_recv().is_err());
        assert_eq!(replies.waiting.len(), 1);
    }
}
