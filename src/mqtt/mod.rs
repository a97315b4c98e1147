//! linegate on the plant's broker: the client's [`options`], and three tasks, wired in `app.rs`:
//!
//! - [`link`]: owns rumqttc's event loop and polls it without pause. It never waits on SQLite
//!   or HTTP: commands go out on a bounded channel (the broker's receive maximum bounds what
//!   it sends; what does not fit waits in the link), connection changes on a watch;
//!   acknowledgements and the publishes whose PUBACK someone waits for (replies, reminder
//!   events) go straight into the event loop's own queue. It subscribes again after every
//!   ConnAck (a resumed session need not hold the subscription), and backs off with jitter
//!   between failed connects (rumqttc has no backoff).
//! - [`publisher`]: retained state for the displays, read from SQLite: everything on every
//!   (re)connect, then what changed.
//! - [`commands`]: panel commands through the command layer; the message is acknowledged only
//!   after the command's transaction committed and the broker has its reply.
//!
//! What the displays receive is [`payload`]; every topic is a [`topics::Topic`].

pub(crate) mod commands;
pub(crate) mod link;
pub(crate) mod options;
pub(crate) mod payload;
pub(crate) mod publisher;
pub(crate) mod topics;
pub(crate) mod twin;

/// Our largest packet, and the broker's when it does not say.
const MAX_PACKET: u32 = 1024 * 1024;
/// Commands the broker may send us before we acknowledge one (MQTT 5's receive maximum): it
/// bounds what waits between the link and the command server.
pub(crate) const RECEIVE_MAXIMUM: u16 = 32;

/// Everything the tasks share about this gateway's place on the broker.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) prefix: String,
    pub(crate) gateway: String,
    pub(crate) started_at: String,
    /// This run of the agent, among any others under the same gateway id (there must be none:
    /// [`twin`] looks before we connect).
    pub(crate) instance: String,
}

/// A command from the broker, with the connection it came on (its packet id means nothing on
/// another one).
pub(crate) type Incoming = (u64, rumqttc::v5::mqttbytes::v5::Publish);
