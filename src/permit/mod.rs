//! What the floor knows about a regency permit, and when its holder is reminded of its expiry
//! ([`expiry`]). The sync maps SICANTIK's rows to these types; the store keeps them.

pub(crate) mod expiry;

use serde::Serialize;

/// A permit type from SICANTIK's catalogue; fields linegate does not use are kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PermitType {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) group: Option<String>,
    pub(crate) sla_days: Option<String>,
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

/// A permit as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) pendaftaran_id: String,
    pub(crate) no_surat: String,
    pub(crate) applicant: Option<String>,
    pub(crate) permit_name: Option<String>,
}

/// A permit's detail, from cekperizinan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Detail {
    pub(crate) expiry: Option<String>,
    pub(crate) issued: Option<String>,
    pub(crate) received: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) company: Option<String>,
}

/// A permit with a known expiry, as reminders and the summary need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Expiring {
    pub(crate) pendaftaran_id: String,
    pub(crate) no_surat: String,
    pub(crate) permit: Option<String>,
    pub(crate) applicant: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) expiry: String,
    /// The regency's date when this expiry was first seen.
    pub(crate) learned: Option<String>,
}

/// One threshold reached: recorded once; when `sent`, its messages go into the outbox.
#[derive(Debug, Clone)]
pub(crate) struct Reminder {
    pub(crate) pendaftaran_id: String,
    pub(crate) expiry: String,
    pub(crate) threshold: u32,
    pub(crate) sent: bool,
    /// (channel, payload) for the outbox.
    pub(crate) messages: Vec<(&'static str, String)>,
}

/// `…/permits/reminder`, and the webhook's body.
pub(crate) fn reminder_payload(p: &Expiring, threshold: u32, days_left: i64) -> serde_json::Value {
    serde_json::json!({
        "schema": 1,
        "pendaftaran_id": p.pendaftaran_id,
        "no_surat": p.no_surat,
        "permit": p.permit,
        "applicant": p.applicant,
        "phone": p.phone,
        "expiry": p.expiry,
        "days_left": days_left,
        "threshold": threshold,
        "status": expiry::Status::of(days_left).as_str(),
    })
}
