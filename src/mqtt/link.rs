//! The task that owns rumqttc's event loop. It polls without pause and never waits on another
//! task: commands go to the command server through a bounded channel (the broker's receive
//! maximum bounds what it sends us, and what does not fit waits here), acknowledgements and
//! tracked publishes go straight into the event loop's own queue, where no full channel can
//! drop them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Filter, Packet, PubAck, PubAckReason, Publish, RetainForwardRule, Subscribe,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Event, EventLoop, Request as MqttRequest};
use rumqttc::Outgoing;
use tokio::sync::{mpsc, oneshot, watch};

use super::options::OUTGOING_INFLIGHT;
use super::topics::Topic;
use super::Incoming;
use crate::backoff::Backoff;
use crate::heartbeat::Heart;
use crate::shutdown::Shutdown;
use crate::uplink::LinkState;

/// Waits between failed connects (rumqttc itself would retry at once, in a loop). Capped low
/// so that the link is back within 2 s of the broker's return; 250 ms doubling, so that a
/// broker that is down gets about 40 attempts a minute, not a storm.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_millis(1600));
/// Commands waiting for the command server, at most (beyond the broker's receive maximum,
/// only QoS 0 ones could pile up).
const BACKLOG_MAX: usize = 2 * super::RECEIVE_MAXIMUM as usize;
/// A connection that lasted this long was a good one: the next failure starts the backoff over.
const STABLE: Duration = Duration::from_secs(30);

/// A publish whose fate its sender wants to know: `done` gets `Ok` on the broker's PUBACK, or
/// why not.
pub(crate) struct Tracked {
    pub(crate) publish: Publish,
    pub(crate) done: oneshot::Sender<Result<(), NotConfirmed>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotConfirmed {
    /// The broker answered with a refusal (not authorized, quota exceeded, …).
    #[error("the broker refused it: {0}")]
    Refused(String),
    /// The session that carried it is gone (or the link stopped) before a PUBACK came.
    #[error("the broker's session was lost before it acknowledged")]
    Lost,
    /// Shutdown came first.
    #[error("stopped by shutdown")]
    Stopped,
}

/// Publishes through the link and waits for the broker's PUBACK, beating `heart` meanwhile
/// (waiting on the broker is not being wedged) and giving up on shutdown.
pub(crate) async fn publish_confirmed(
    link: &mpsc::Sender<Tracked>,
    publish: Publish,
    heart: &Heart,
    shutdown: &Shutdown,
) -> Result<(), NotConfirmed> {
    let (done, mut confirmed) = oneshot::channel();
    let mut pulse = tokio::time::interval(crate::heartbeat::BEAT);
    let send = link.send(Tracked { publish, done });
    tokio::pin!(send);
    loop {
        tokio::select! {
            sent = &mut send => {
                sent.map_err(|_| NotConfirmed::Lost)?;
                break;
            }
            _ = pulse.tick() => heart.beat(),
            _ = shutdown.wait() => return Err(NotConfirmed::Stopped),
        }
    }
    loop {
        tokio::select! {
            outcome = &mut confirmed => return outcome.unwrap_or(Err(NotConfirmed::Lost)),
            _ = pulse.tick() => heart.beat(),
            _ = shutdown.wait() => return Err(NotConfirmed::Stopped),
        }
    }
}

/// Polls the event loop until shutdown has been flushed to the broker (or cannot be).
///
/// Acknowledgements come back on `acks` and are sent only if their command arrived on the
/// current connection: after a reconnect without a session the broker numbers packets anew,
/// and an old PUBACK would acknowledge a different, not yet applied, command.
pub(crate) struct Link {
    pub(crate) events: EventLoop,
    pub(crate) prefix: String,
    /// To the command server: commands with the connection they came on.
    pub(crate) commands: mpsc::Sender<Incoming>,
    /// From the command server: commands answered, to acknowledge.
    pub(crate) acks: mpsc::Receiver<Incoming>,
    /// From the outbox: publishes to confirm on their PUBACK.
    pub(crate) tracked: mpsc::Receiver<Tracked>,
    /// To every MQTT task: the connection as it stands.
    pub(crate) state: watch::Sender<LinkState>,
    /// Set by the publisher before its DISCONNECT: the link's work ends with it.
    pub(crate) goodbye: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Beats on every event (keep-alive pings come at least every `keep_alive`).
    pub(crate) heart: Heart,
    /// Before the first connect: that no other agent is live under this gateway id.
    pub(crate) twin: Option<super::twin::TwinCheck>,
}

type Done = oneshot::Sender<Result<(), NotConfirmed>>;

/// Tracked publishes on their way: the one not numbered yet, and which packet id each got.
#[derive(Default)]
struct InFlight {
    /// Pushed to the front of the event loop's queue; the next outgoing publish is it.
    numbering: Option<Tracked>,
    by_pkid: HashMap<u16, Done>,
    /// A publish rumqttc holds back (a collision: its packet id still waits for a PUBACK).
    /// That PUBACK is the earlier packet's; the held one's sender waits here until it really
    /// goes out, and nothing new is taken meanwhile.
    held: Option<(u16, Option<Done>)>,
}

impl InFlight {
    fn can_take(&self) -> bool {
        self.numbering.is_none() && self.held.is_none()
    }

    /// A publish went out with `pkid`, or was held back with it.
    fn numbered(&mut self, pkid: u16, held_back: bool) {
        if held_back {
            self.held = Some((pkid, self.numbering.take().map(|t| t.done)));
            return;
        }
        if self.held.as_ref().is_some_and(|(held, _)| *held == pkid) {
            if let Some((_, Some(done))) = self.held.take() {
                self.by_pkid.insert(pkid, done);
            }
            return;
        }
        if let Some(t) = self.numbering.take() {
            self.by_pkid.insert(pkid, t.done);
        }
    }

    fn acked(&mut self, ack: &PubAck) {
        if let Some(done) = self.by_pkid.remove(&ack.pkid) {
            let outcome = match ack.reason {
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                reason => Err(NotConfirmed::Refused(format!("{reason:?}"))),
            };
            let _ = done.send(outcome);
        }
    }

    /// The session is gone, and with it every tracked publish it had not acknowledged.
    fn lost(&mut self) {
        let numbering = self.numbering.take().map(|t| t.done);
        let held = self.held.take().and_then(|(_, done)| done);
        for done in numbering
            .into_iter()
            .chain(held)
            .chain(self.by_pkid.drain().map(|(_, d)| d))
        {
            let _ = done.send(Err(NotConfirmed::Lost));
        }
    }
}

pub(crate) async fn run(link: Link, shutdown: Shutdown) {
    let Link {
        mut events,
        prefix,
        commands,
        mut acks,
        mut tracked,
        state,
        goodbye,
        heart,
        twin,
    } = link;
    // Not even once as this gateway while another agent is live as it: connecting under its
    // client id would take its session, and publishing would overwrite its state.
    if let Some(check) = &twin {
        if !super::twin::until_clear(check, &heart, &shutdown).await {
            return;
        }
    }
    let filter = Topic::command_filter(&prefix);
    let mut retries = RECONNECT.retries();
    let mut last_error: Option<String> = None;
    let mut connected_at: Option<Instant> = None;
    // Commands the command server had no room for yet; the broker's receive maximum bounds it.
    let mut backlog: VecDeque<Incoming> = VecDeque::new();
    let mut in_flight = InFlight::default();
    // ConnAcks so far: the retained status of the first one is the probe's business.
    let mut connects = 0u64;
    // Publishes the broker takes before acknowledging any (its receive maximum), and ours.
    let mut window = OUTGOING_INFLIGHT;
    // The link stops after the publisher, whose "offline" and DISCONNECT it carries: it ends when
    // DISCONNECT is out, or after this grace when the broker cannot be reached.
    let grace = async {
        shutdown.wait().await;
        tokio::time::sleep(Duration::from_secs(3)).await
    };
    tokio::pin!(grace);
    loop {
        let connected = state.borrow().connected;
        let event = tokio::select! {
            event = events.poll() => event,
            Some((generation, publish)) = acks.recv() => {
                let current = *state.borrow();
                if current.connected && current.generation == generation && publish.qos == QoS::AtLeastOnce {
                    // Into the event loop's own queue: unlike rumqttc's request channel it cannot
                    // be full. rumqttc clears it when a new session starts, so a PUBACK never
                    // reaches a connection whose packet ids mean something else.
                    events.pending.push_back(MqttRequest::PubAck(PubAck::new(publish.pkid, None)));
                }
                continue;
            }
            Ok(permit) = commands.reserve(), if !backlog.is_empty() => {
                if let Some(command) = backlog.pop_front() {
                    permit.send(command);
                }
                continue;
            }
            // Only into a free slot of the broker's window: rumqttc sends what is at the front of
            // its queue even when the window is full, and would then hold it back on another
            // packet's id.
            // Nor ahead of publishes queued from the last connection: they keep their packet
            // ids, one of which the next new id could be.
            Some(t) = tracked.recv(), if connected && in_flight.can_take()
                && events.state.inflight() < window && events.state.collision.is_none()
                && !events.pending.iter().any(|r| matches!(r, MqttRequest::Publish(_))) => {
                // At the front: the next publish the event loop sends is this one, so the
                // packet id in that outgoing event is its own.
                events.pending.push_front(MqttRequest::Publish(t.publish.clone()));
                in_flight.numbering = Some(t);
                continue;
            }
            _ = &mut grace => return,
        };
        heart.beat();
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                last_error = None;
                connected_at = Some(Instant::now());
                if !ack.session_present {
                    in_flight.lost();
                }
                // On every connect, not only a new session's: a resumed session need not hold
                // our subscription, when the connection that made the session ended before its
                // SUBSCRIBE reached the broker (cut, or taken over by a twin). Subscribing again
                // replaces the subscription without interrupting it. Ahead of everything queued;
                // retained commands are never replayed to us.
                let mut command_filter = Filter::new(filter.clone(), QoS::AtLeastOnce);
                command_filter.retain_forward_rule = RetainForwardRule::Never;
                events
                    .pending
                    .push_front(MqttRequest::Subscribe(Subscribe::new(command_filter, None)));
                // Our own status too, on every connect, so that the broker sends what it retains
                // there now: another run's status, or its will, means a twin (see twin.rs).
                if twin.is_some() {
                    let status = Filter::new(Topic::Status.build(&prefix), QoS::AtMostOnce);
                    events
                        .pending
                        .push_back(MqttRequest::Subscribe(Subscribe::new(status, None)));
                }
                connects += 1;
                requeue_held_back(&mut events);
                // A new session's broker redelivers nothing of the old one; a resumed one
                // redelivers every command not acknowledged, so the old copies waiting here
                // would be handled twice (and their acknowledgements dropped as stale).
                if ack.session_present {
                    backlog.retain(|(_, p)| p.qos == QoS::AtMostOnce);
                }
                let max_packet = ack.properties.as_ref().and_then(|p| p.max_packet_size);
                // As rumqttc does: a CONNACK without it leaves the last one in force.
                if let Some(receive_max) = ack.properties.as_ref().and_then(|p| p.receive_max) {
                    window = receive_max.clamp(1, OUTGOING_INFLIGHT);
                }
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
                    Some(Topic::Status) => {
                        let Some(check) = &twin else { continue };
                        // Retained at a reconnect (someone wrote it while we were away), or
                        // live: both are another run's doing when it is not ours.
                        if publish.retain && connects < 2 {
                            continue;
                        }
                        if let Some(why) = super::twin::older_twin(&check.identity, &publish.payload) {
                            tracing::error!("{why}");
                            let _ = check.refused.send(Some(why));
                            return;
                        }
                    }
                    Some(Topic::Command { .. }) if !publish.retain => {
                        let command = (state.borrow().generation, publish);
                        if !backlog.is_empty() {
                            backlog.push_back(command);
                        } else if let Err(mpsc::error::TrySendError::Full(command)) = commands.try_send(command) {
                            backlog.push_back(command);
                        }
                        // The receive maximum bounds QoS 1 commands; QoS 0 ones, which nobody
                        // will send again anyway, are dropped past a bound.
                        while backlog.len() > BACKLOG_MAX {
                            if let Some(at) = backlog.iter().position(|(_, p)| p.qos == QoS::AtMostOnce) {
                                let (_, dropped) = backlog.remove(at).expect("the position is in the queue");
                                tracing::warn!(topic = %String::from_utf8_lossy(&dropped.topic), "QoS 0 command dropped: too many waiting");
                            } else {
                                break;
                            }
                        }
                    }
                    _ => {
                        // Not ours to handle (or a retained command, which would run again on
                        // every subscribe): acknowledge it so it is not redelivered forever.
                        tracing::warn!(topic, retain = publish.retain, "message dropped");
                        if publish.qos == QoS::AtLeastOnce {
                            events
                                .pending
                                .push_back(MqttRequest::PubAck(PubAck::new(publish.pkid, None)));
                        }
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => in_flight.numbered(pkid, false),
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => in_flight.numbered(pkid, true),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                in_flight.acked(&ack);
                release_on_refusal(&mut events, &ack);
            }
            // The publisher's goodbye (rumqttc also disconnects on a protocol error, and then
            // reconnects). Read on until the broker closes the connection: closing it ourselves
            // with its acknowledgements unread would reset it, and a broker that gets a reset
            // may drop our last packets (the goodbye among them) and publish the last will.
            Ok(Event::Outgoing(Outgoing::Disconnect)) if goodbye.load(std::sync::atomic::Ordering::Relaxed) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), async { while events.poll().await.is_ok() {} }).await;
                return;
            }
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

/// rumqttc keeps a publish it held back (its packet id still waiting for a PUBACK) across
/// reconnects, and takes nothing new until that id is acknowledged, which on a new connection
/// it may never be: it is queued again instead (behind the resent packet, if any).
fn requeue_held_back(events: &mut EventLoop) {
    if let Some(held_back) = events.state.collision.take() {
        events.pending.push_back(MqttRequest::Publish(held_back));
    }
}

/// rumqttc releases a publish held back on a packet id only on that id's successful PUBACK:
/// on a refusal it would wait for another one forever. The id is free now; it goes next.
fn release_on_refusal(events: &mut EventLoop, ack: &PubAck) {
    let refused = !matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers);
    if refused && events.state.collision.as_ref().is_some_and(|p| p.pkid == ack.pkid) {
        if let Some(held_back) = events.state.collision.take() {
            events.pending.push_front(MqttRequest::Publish(held_back));
        }
    }
}

fn client_host(events: &EventLoop) -> String {
    let (host, port) = events.options.broker_address();
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked() -> (Tracked, oneshot::Receiver<Result<(), NotConfirmed>>) {
        let (done, rx) = oneshot::channel();
        let publish = Publish::new("t", QoS::AtLeastOnce, "x", None);
        (Tracked { publish, done }, rx)
    }

    fn ack(pkid: u16, reason: PubAckReason) -> PubAck {
        let mut ack = PubAck::new(pkid, None);
        ack.reason = reason;
        ack
    }

    fn held_back(events: &mut EventLoop, pkid: u16) {
        let mut publish = Publish::new("t", QoS::AtLeastOnce, "held", None);
        publish.pkid = pkid;
        events.state.collision = Some(publish);
    }

    fn queued(events: &EventLoop) -> Vec<u16> {
        events
            .pending
            .iter()
            .filter_map(|r| match r {
                MqttRequest::Publish(p) => Some(p.pkid),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_publish_held_back_is_not_stranded_by_a_refusal_or_a_reconnect() {
        let options = rumqttc::v5::MqttOptions::new("t", "127.0.0.1", 1);
        let (_client, mut events) = rumqttc::v5::AsyncClient::new(options, 4);
        // A refused PUBACK on its packet id sends it next; one on another id does not
        held_back(&mut events, 5);
        release_on_refusal(&mut events, &ack(4, PubAckReason::NotAuthorized));
        assert!(events.state.collision.is_some());
        release_on_refusal(&mut events, &ack(5, PubAckReason::Success));
        assert!(
            events.state.collision.is_some(),
            "rumqttc itself releases it on success"
        );
        release_on_refusal(&mut events, &ack(5, PubAckReason::NotAuthorized));
        assert!(events.state.collision.is_none());
        assert_eq!(queued(&events), vec![5]);
        // And a reconnect queues it again, behind what was queued
        held_back(&mut events, 9);
        requeue_held_back(&mut events);
        assert!(events.state.collision.is_none());
        assert_eq!(queued(&events), vec![5, 9]);
    }

    #[test]
    fn a_tracked_publish_is_done_on_its_own_puback_only() {
        let mut f = InFlight::default();
        let (t, mut rx) = tracked();
        f.numbering = Some(t);
        f.numbered(7, false);
        assert!(f.can_take());
        f.acked(&ack(6, PubAckReason::Success));
        assert!(rx.try_recv().is_err(), "another packet's PUBACK");
        f.acked(&ack(7, PubAckReason::Success));
        assert_eq!(rx.try_recv(), Ok(Ok(())));
    }

    #[test]
    fn a_refusal_or_a_lost_session_is_not_delivery() {
        let mut f = InFlight::default();
        let (t, mut refused) = tracked();
        f.numbering = Some(t);
        f.numbered(3, false);
        f.acked(&ack(3, PubAckReason::NotAuthorized));
        assert!(matches!(refused.try_recv(), Ok(Err(_))));
        let (t, mut lost) = tracked();
        f.numbering = Some(t);
        f.lost();
        assert!(matches!(lost.try_recv(), Ok(Err(_))));
    }

    #[test]
    fn a_held_back_publish_is_not_done_on_the_puback_of_the_packet_it_waits_for() {
        // Given a tracked publish held back on packet id 4, still the earlier packet's
        let mut f = InFlight::default();
        let (t, mut held) = tracked();
        f.numbering = Some(t);
        f.numbered(4, true);
        assert!(!f.can_take(), "nothing new while rumqttc holds one back");
        // When the earlier packet's PUBACK comes, and only then ours goes out
        f.acked(&ack(4, PubAckReason::Success));
        assert!(held.try_recv().is_err(), "done on another packet's PUBACK");
        f.numbered(4, false);
        assert!(f.can_take());
        // Then its own PUBACK is what makes it done
        f.acked(&ack(4, PubAckReason::Success));
        assert_eq!(held.try_recv(), Ok(Ok(())));
        // And an untracked publish held back blocks new ones too, until it goes out
        f.numbered(9, true);
        assert!(!f.can_take());
        f.numbered(9, false);
        assert!(f.can_take());
    }
}
