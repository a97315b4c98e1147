//! What the floor knows about a regency permit, and when its holder is reminded of its expiry
//! ([`expiry`]). The sync maps SICANTIK's rows to these types; the store keeps them.

pub mod expiry;

use serde::Serialize;

/// A permit type from SICANTIK's catalogue; fields linegate does not use are kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct PermitType {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub sla_days: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A permit as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub pendaftaran_id: String,
    pub no_surat: String,
    pub applicant: Option<String>,
    pub permit_name: Option<String>,
}

/// A permit's detail, from cekperizinan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    pub expiry: Option<String>,
    pub issued: Option<String>,
    pub received: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub company: Option<String>,
}

/// A permit with a known expiry, as reminders and the summary need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    pub pendaftaran_id: String,
    pub no_surat: String,
    pub permit: Option<String>,
    pub applicant: Option<String>,
    pub phone: Option<String>,
    pub expiry: String,
    /// The regency's date when this expiry was first seen.
    pub learned: Option<String>,
}

/// One threshold reached: recorded once; when `sent`, its messages go into the outbox.
#[derive(Debug, Clone)]
pub struct Reminder {
    pub pendaftaran_id: String,
    pub expiry: String,
    pub threshold: u32,
    pub sent: bool,
    /// (channel, payload) for the outbox.
    pub messages: Vec<(&'static str, String)>,
}

/// `…/permits/reminder`, and the webhook's body.
pub fn reminder_payload(p: &Expiring, threshold: u32, days_left: i64) -> serde_json::Value {
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
