//! What a panel gets back: a [`Reply`], built here and nowhere else, and the [`Refusal`]s
//! that become its `error`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::mo::{MoRow, Protected};

pub(crate) const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub(crate) schema: u32,
    pub(crate) request_id: Option<String>,
    pub(crate) action: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyError {
    /// Stable, for panel firmware to switch on.
    pub(crate) code: String,
    /// For the operator.
    pub(crate) message: String,
}

/// A refusal: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

pub(crate) fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl Reply {
    pub(crate) fn ok(request_id: Option<String>, action: &str, result: Value) -> Reply {
        Reply {
            schema: SCHEMA,
            request_id,
            action: action.to_string(),
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub(crate) fn refused(request_id: Option<String>, action: &str, refusal: Refusal) -> Reply {
        Reply {
            schema: SCHEMA,
            request_id,
            action: action.to_string(),
            ok: false,
            result: None,
            error: Some(ReplyError {
                code: refusal.code.into(),
                message: refusal.message,
            }),
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replies serialize")
    }
}

/// A refusal in place of a reply too large for the broker (a long list, say).
pub(crate) fn too_large_reply(reply: &Reply, max_packet: usize) -> String {
    let refusal = refuse(
        "too_large",
        format!("the reply is larger than the broker accepts ({max_packet} bytes); ask with a line filter"),
    );
    Reply::refused(reply.request_id.clone(), &reply.action, refusal).to_json()
}

/// What a panel needs to know of an MO.
pub(crate) fn summary(row: &MoRow) -> Value {
    summary_of(row, &row.protected)
}

/// What a panel needs to know of an MO, with the protected values a command gave it.
pub(crate) fn summary_of(row: &MoRow, p: &Protected) -> Value {
    json!({
        "id": row.upstream.id,
        "name": row.upstream.name,
        "product": row.upstream.product_name,
        "product_qty": row.upstream.product_qty,
        "phase": p.phase().as_str(),
        "auth_first": p.auth_first,
        "auth_last": p.auth_last,
        "roll_number": p.roll_number,
        "leader_id": p.leader_id,
        "line": p.line,
        "date_start": p.date_start,
        "date_finished": p.date_finished,
    })
}
