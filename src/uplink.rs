//! The links the agent depends on, as the tasks that use them last saw them: each upstream
//! (Odoo, SICANTIK), told by its sync scheduler, and the MQTT broker, told by the link task.
//! The status topic and systemd's STATUS show them; nothing here talks to anything.

/// The upstreams by name, as logs, the run history and the status topic name them.
pub const ODOO: &str = "odoo";
pub const SICANTIK: &str = "sicantik";

/// An upstream as its last sync saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uplink {
    Unknown,
    Up,
    /// Unreachable since this Unix time.
    Down {
        since: i64,
        error: String,
    },
    /// Reachable, but it refused us (credentials, configuration).
    Refused {
        error: String,
    },
}

/// What Odoo would refuse of the sync and the steps of `[odoo.push]`, as the latest check of
/// the API user's rights found it: each refused part with why (the missing right, in Odoo's
/// words); None until Odoo was asked.
pub type Refusals = Option<Vec<(String, String)>>;

/// The broker connection as the MQTT tasks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LinkState {
    pub(crate) connected: bool,
    /// Counts connections: a new value means "republish everything".
    pub(crate) generation: u64,
    /// The broker's largest packet, when it says (MQTT 5 CONNACK).
    pub(crate) max_packet: Option<u32>,
}
