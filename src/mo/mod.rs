//! What the floor knows about a manufacturing order, split by owner, and where it stands
//! ([`Phase`]); its hologram-sticker codes are [`auth`].

pub mod auth;
pub(crate) mod result;

use serde::{Deserialize, Serialize};

/// The upstream-owned values of one MO, as the sync writes them. Empty Odoo values (`false`)
/// are `None` here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamMo {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub(crate) product_id: Option<i64>,
    pub(crate) product_name: Option<String>,
    pub(crate) uom: Option<String>,
    pub product_qty: f64,
    pub qty_producing: f64,
    pub origin: Option<String>,
    pub(crate) create_date: Option<String>,
    pub write_date: String,
    pub planned_start: Option<String>,
    pub planned_finish: Option<String>,
    pub date_deadline: Option<String>,
    pub transfer_id: Option<i64>,
    pub transfer_name: Option<String>,
    pub group_worker: Option<String>,
    pub(crate) note: Option<String>,
    pub(crate) initial_qty_target: Option<f64>,
}

/// The operator-owned values of one MO. Only the command layer changes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protected {
    pub auth_first: Option<String>,
    pub auth_last: Option<String>,
    pub leader_id: Option<String>,
    pub roll_number: Option<String>,
    pub ready_for_production: bool,
    pub date_start: Option<String>,
    pub date_finished: Option<String>,
    /// The line the MO runs on.
    pub line: Option<String>,
}

/// Who wrote an MO's protected columns, from where, and whether the clock could be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Audit {
    pub(crate) operator: Option<String>,
    pub(crate) station: String,
    pub(crate) at: String,
    pub(crate) clock_synced: bool,
}

/// An operator's mark on an MO that puts it in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Finished,
    Started,
    Registered,
    None,
}

/// The phase state machine, as data: the first mark an MO carries decides its phase. Both
/// [`Protected::phase`] and the store's SQL (`store::mo`) are read from this one table.
pub(crate) const PHASES: [(Mark, Phase); 4] = [
    (Mark::Finished, Phase::Finished),
    (Mark::Started, Phase::Running),
    (Mark::Registered, Phase::Ready),
    (Mark::None, Phase::Waiting),
];

impl Protected {
    /// Where the MO stands on the floor, derived from the operator's data alone.
    pub(crate) fn phase(&self) -> Phase {
        PHASES
            .iter()
            .find(|(mark, _)| self.has(*mark))
            .map_or(Phase::Waiting, |(_, phase)| *phase)
    }

    pub(crate) fn has(&self, mark: Mark) -> bool {
        match mark {
            Mark::Finished => self.date_finished.is_some(),
            Mark::Started => self.date_start.is_some(),
            Mark::Registered => self.ready_for_production,
            Mark::None => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Waiting,
    Ready,
    Running,
    Finished,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Ready => "ready",
            Phase::Running => "running",
            Phase::Finished => "finished",
        }
    }
}

/// An MO as a panel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoRef {
    Id(i64),
    /// The current name; names change on backorder, so the newest holder wins.
    Name(String),
}

impl std::fmt::Display for MoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoRef::Id(id) => write!(f, "with id {id}"),
            MoRef::Name(name) => write!(f, "named {name:?}"),
        }
    }
}

/// An MO's protected values, as a command decided them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorWrite {
    pub id: i64,
    pub protected: Protected,
}

/// One MO as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoRow {
    #[serde(flatten)]
    pub upstream: UpstreamMo,
    #[serde(flatten)]
    pub protected: Protected,
    pub phase: Phase,
    pub(crate) synced_at: String,
    pub gone_at: Option<String>,
    /// Who last wrote its protected values (None until a command has).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_write: Option<Audit>,
}

#[cfg(test)]
impl UpstreamMo {
    /// A confirmed MO of 3 desks, for tests: change what a test is about with `..`.
    pub(crate) fn example(id: i64) -> UpstreamMo {
        UpstreamMo {
            id,
            name: format!("WH/MO/{id:05}"),
            state: "confirmed".into(),
            product_id: Some(8),
            product_name: Some("[FURN_7800] Desk Combination".into()),
            uom: Some("Units".into()),
            product_qty: 3.0,
            qty_producing: 0.0,
            origin: None,
            create_date: Some("2026-11-22 01:36:38".into()),
            write_date: "2026-11-22 01:36:38".into(),
            planned_start: None,
            planned_finish: None,
            date_deadline: None,
            transfer_id: None,
            transfer_name: None,
            group_worker: None,
            note: None,
            initial_qty_target: None,
        }
    }
}
