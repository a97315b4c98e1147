//! What the floor did to one MO, as Odoo is told it: one [`FloorResult`] per MO a command
//! changed, with an event id that finds it again in Odoo after an answer was lost.

use serde::{Deserialize, Serialize};

use super::{auth, Mark, Protected};

/// What happened, read from the protected values before and after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Happened {
    Registered,
    Started,
    Ended,
}

impl Happened {
    /// The newest mark `after` carries that `before` did not; None when a write added no mark
    /// (a roll number changed on a registered MO, say): nothing for Odoo to hear of.
    pub(crate) fn between(before: &Protected, after: &Protected) -> Option<Happened> {
        [
            (Mark::Finished, Happened::Ended),
            (Mark::Started, Happened::Started),
            (Mark::Registered, Happened::Registered),
        ]
        .into_iter()
        .find(|(mark, _)| after.has(*mark) && !before.has(*mark))
        .map(|(_, happened)| happened)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Happened::Registered => "registered",
            Happened::Started => "started",
            Happened::Ended => "ended",
        }
    }
}

/// One operator result for Odoo, as queued in the command's own transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FloorResult {
    /// `lg-` and 16 hex digits: the same for the same command on the same MO, different for
    /// anything else (the gateway is part of it), and safe inside an `ilike` pattern.
    pub(crate) event_id: String,
    pub(crate) happened: Happened,
    /// The MO's Odoo id: what it is addressed by (its name changes on backorder).
    pub(crate) mo: i64,
    /// Its name when it happened.
    pub(crate) name: String,
    pub(crate) operator: Option<String>,
    pub(crate) station: String,
    /// The gateway's time (RFC 3339 UTC), and whether its clock was synchronised.
    pub(crate) at: String,
    pub(crate) clock_synced: bool,
    /// The MO's operator data after the command.
    pub(crate) protected: Protected,
    /// What the MO was to make: Odoo's quantity, or the instance's target when it has one.
    pub(crate) target: f64,
}

impl FloorResult {
    /// Stickers used, `auth_last − auth_first + 1`, once the MO has ended.
    pub(crate) fn produced(&self) -> Option<u64> {
        match (&self.protected.auth_first, &self.protected.auth_last) {
            (Some(first), Some(last)) => auth::count(first, last),
            _ => None,
        }
    }

    /// Target minus produced; negative when more was made than planned.
    pub(crate) fn loss(&self) -> Option<f64> {
        self.produced().map(|n| self.target - n as f64)
    }
}

/// The event id of `happened` to MO `mo` through the command `request_id` of `station` on
/// `gateway`: FNV-1a over the parts, so that it is stable across restarts and retries.
pub(crate) fn event_id(gateway: &str, station: &str, request_id: &str, mo: i64, happened: Happened) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mo = mo.to_string();
    let parts = [gateway, station, request_id, &mo, happened.as_str()];
    let mut hash = OFFSET;
    for part in parts {
        // The length first: ("ab", "c") and ("a", "bc") hash apart.
        for byte in (part.len() as u64).to_le_bytes().into_iter().chain(part.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("lg-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_happened_is_the_newest_mark_a_command_added() {
        let registered = Protected {
            ready_for_production: true,
            auth_first: Some("100".into()),
            ..Default::default()
        };
        let started = Protected {
            date_start: Some("2026-12-01T06:00:00Z".into()),
            ..registered.clone()
        };
        let ended = Protected {
            date_finished: Some("2026-12-01T08:00:00Z".into()),
            auth_last: Some("219".into()),
            ..started.clone()
        };
        let between = Happened::between;
        assert_eq!(between(&Protected::default(), &registered), Some(Happened::Registered));
        assert_eq!(between(&registered, &started), Some(Happened::Started));
        assert_eq!(between(&started, &ended), Some(Happened::Ended));
        // Registered mid-production: started and ready at once, the start is what Odoo hears
        assert_eq!(between(&Protected::default(), &started), Some(Happened::Started));
        assert_eq!(between(&registered, &registered), None);
    }

    #[test]
    fn event_ids_are_stable_distinct_and_plain() {
        let id = event_id("gw-1", "ws-1", "r1", 7, Happened::Started);
        assert_eq!(id, event_id("gw-1", "ws-1", "r1", 7, Happened::Started));
        for other in [
            event_id("gw-2", "ws-1", "r1", 7, Happened::Started),
            event_id("gw-1", "ws-1", "r1", 8, Happened::Started),
            event_id("gw-1", "ws-1", "r1", 7, Happened::Ended),
            event_id("gw-1", "ws-1r", "1", 7, Happened::Started),
        ] {
            assert_ne!(id, other);
        }
        assert_eq!(id.len(), 19);
        assert!(id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn produced_and_loss_come_from_the_sticker_codes() {
        let result = FloorResult {
            event_id: "lg-0".into(),
            happened: Happened::Ended,
            mo: 7,
            name: "WH/MO/00007".into(),
            operator: None,
            station: "ws-1".into(),
            at: "2026-12-01T08:00:00Z".into(),
            clock_synced: true,
            protected: Protected {
                auth_first: Some("000100".into()),
                auth_last: Some("000219".into()),
                ..Default::default()
            },
            target: 125.0,
        };
        assert_eq!(result.produced(), Some(120));
        assert_eq!(result.loss(), Some(5.0));
    }
}
