//! The JSON the displays receive, documented in docs/mqtt.md. Every payload carries `schema`.

use serde_json::{json, Value};

use crate::mo::auth;
use crate::mo::{MoRow, Phase};
use crate::store::sync::RunRecord;
use crate::uplink::Uplink;

pub(crate) const SCHEMA: u32 = 1;

/// `…/mo/<id>`: everything the floor knows of one MO.
pub(crate) fn mo(row: &MoRow, upload: Option<&crate::store::outbox::Upload>) -> Value {
    let u = &row.upstream;
    let (produced, loss) = counts(row);
    json!({
        "schema": SCHEMA,
        "id": u.id,
        "name": u.name,
        "state": u.state,
        "phase": row.phase.as_str(),
        "gone": row.gone_at.is_some(),
        "product": {"id": u.product_id, "name": u.product_name},
        "uom": u.uom,
        "product_qty": u.product_qty,
        "qty_producing": u.qty_producing,
        "initial_qty_target": u.initial_qty_target,
        "origin": u.origin,
        "transfer": {"id": u.transfer_id, "name": u.transfer_name},
        "planned_start": u.planned_start,
        "planned_finish": u.planned_finish,
        "date_deadline": u.date_deadline,
        "group_worker": u.group_worker,
        "note": u.note,
        "operator": &row.protected,
        "last_write": last_write(row),
        "produced": produced,
        "loss": loss,
        "last_synced_at": row.synced_at,
        // Results Odoo does not have yet, and why the first of them waits, when it does.
        "pending_upload": upload.map(|u| json!({"count": u.count, "oldest_at": u.oldest, "parked": u.parked})),
    })
}

/// What the stickers say was made (`auth_last − auth_first + 1`), and the loss against the
/// target (`initial_qty_target`, else `product_qty`); unknown until the last code is.
fn counts(row: &MoRow) -> (Option<u64>, Option<f64>) {
    let p = &row.protected;
    let produced = match (&p.auth_first, &p.auth_last) {
        (Some(first), Some(last)) => auth::count(first, last),
        _ => None,
    };
    let target = row.upstream.initial_qty_target.unwrap_or(row.upstream.product_qty);
    (produced, produced.map(|n| target - n as f64))
}

/// Who last acted on the MO from a panel: `operator`, `station`, `at` (RFC 3339 UTC) and
/// `clock_synced` (whether the gateway's clock was trusted then); null before any command.
fn last_write(row: &MoRow) -> Value {
    row.last_write.as_ref().map_or(
        Value::Null,
        |a| json!({"operator": a.operator, "station": a.station, "at": a.at, "clock_synced": a.clock_synced}),
    )
}

/// `…/line/<line>`: what runs there, what is ready next, and what it ended last.
pub(crate) fn line(name: &str, view: &crate::store::mo::LineView) -> Value {
    let (running, ready, ended) = (&view.running, &view.ready, &view.ended);
    let brief = |r: &MoRow| {
        let (produced, loss) = counts(r);
        json!({
            "id": r.upstream.id, "name": r.upstream.name, "product": r.upstream.product_name,
            "product_qty": r.upstream.product_qty, "uom": r.upstream.uom, "phase": r.phase.as_str(),
            "auth_first": r.protected.auth_first, "auth_last": r.protected.auth_last,
            "roll_number": r.protected.roll_number, "leader_id": r.protected.leader_id,
            "date_start": r.protected.date_start, "date_finished": r.protected.date_finished,
            "produced": produced, "loss": loss, "last_write": last_write(r),
        })
    };
    debug_assert!(running.iter().all(|r| r.phase == Phase::Running));
    json!({
        "schema": SCHEMA,
        "line": name,
        "running": running.iter().map(brief).collect::<Vec<_>>(),
        "ready": ready.iter().map(brief).collect::<Vec<_>>(),
        "ended": ended.iter().map(brief).collect::<Vec<_>>(),
    })
}

/// Who the status is about.
pub(crate) struct Gateway<'a> {
    pub(crate) online: bool,
    pub(crate) id: &'a str,
    pub(crate) started_at: &'a str,
    pub(crate) instance: &'a str,
}

/// What goes to Odoo: the results waiting, and what Odoo would refuse of the configured work.
pub(crate) struct ToOdoo<'a> {
    pub(crate) backlog: &'a crate::store::outbox::Backlog,
    pub(crate) refusals: &'a crate::uplink::Refusals,
}

/// `…/status`: the agent's own state; also its last will (with `online: false`).
pub(crate) fn status(
    gateway: Gateway<'_>,
    uplinks: &[(&str, Uplink)],
    last_runs: &[RunRecord],
    progress: &serde_json::Map<String, Value>,
    store: &crate::store::StoreHealth,
    to_odoo: ToOdoo<'_>,
    written_bytes: Option<u64>,
) -> Value {
    let ToOdoo { backlog, refusals } = to_odoo;
    let uplink = |u: &Uplink| match u {
        Uplink::Unknown => json!({"state": "unknown"}),
        Uplink::Up => json!({"state": "up"}),
        Uplink::Down { since, error } => {
            json!({"state": "down", "since": crate::clock::format_rfc3339(*since), "error": error})
        }
        Uplink::Refused { error } => json!({"state": "refused", "error": error}),
    };
    let uplinks: serde_json::Map<String, Value> =
        uplinks.iter().map(|(name, u)| (name.to_string(), uplink(u))).collect();
    let syncs: serde_json::Map<String, Value> = last_runs
        .iter()
        .map(|r| {
            let mut run = json!({"at": r.started_at, "ok": r.ok, "error": r.error, "duration_ms": r.duration_ms,
                "fetched": r.fetched, "inserted": r.inserted, "updated": r.updated, "gone": r.gone});
            // Permit details, unknown permits and reminders are SICANTIK's alone.
            if r.source == crate::uplink::SICANTIK {
                run["details"] = json!(r.details);
                run["unknown"] = json!(r.unknown);
                run["reminders"] = json!(r.reminders);
            }
            (r.source.clone(), run)
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "state": if gateway.online { "online" } else { "offline" },
        "gateway": gateway.id,
        "instance": gateway.instance,
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": gateway.started_at,
        "uplink": uplinks,
        "last_sync": syncs,
        "progress": progress,
        "store": store,
        "outbox": {"odoo": {"pending": backlog.pending, "oldest_at": backlog.oldest, "parked": backlog.parked,
            "dropped": backlog.dropped}},
        "odoo_refuses": refusals.as_ref().map(|refused| refused.iter()
            .map(|(step, why)| json!({"step": step, "why": why})).collect::<Vec<_>>()),
        // The card's wear: what the agent wrote to storage since `started_at`.
        "written_bytes": written_bytes,
    })
}

/// `…/permits/expiring`: permits within 60 days of expiry or expired in the last 30 (the ones
/// still valid first, soonest first; at most 200), and counts by status of all permits with a
/// known expiry, as of the regency's date `today`.
pub(crate) fn expiring(permits: &[crate::permit::Expiring], today: i64) -> Value {
    use crate::permit::expiry::{days_left, Status};
    let mut counts = serde_json::Map::new();
    for s in ["ok", "warning", "critical", "expired"] {
        counts.insert(s.into(), json!(0));
    }
    let mut window = Vec::new();
    for p in permits {
        let Some(days) = days_left(&p.expiry, today) else {
            continue;
        };
        let status = Status::of(days);
        if let Some(n) = counts.get_mut(status.as_str()) {
            *n = json!(n.as_u64().unwrap_or(0) + 1);
        }
        if (-30..=60).contains(&days) {
            window.push((days, p, status));
        }
    }
    // The most urgent are those about to expire, then the ones that just did.
    window.sort_by_key(|(days, p, _)| (*days <= 0, days.abs(), p.pendaftaran_id.clone()));
    let listed: Vec<Value> = window
        .iter()
        .take(200)
        .map(|(days, p, status)| {
            json!({"pendaftaran_id": p.pendaftaran_id, "no_surat": p.no_surat, "permit": p.permit,
                "applicant": p.applicant, "expiry": p.expiry, "days_left": days, "status": status.as_str()})
        })
        .collect();
    let as_of = crate::clock::format_odoo(today * 86_400)[..10].to_string();
    json!({"schema": SCHEMA, "as_of": as_of, "counts": counts, "permits": listed})
}

/// The last will: what the broker says for us when we vanish without a word.
pub(crate) fn lost(identity: &super::Identity) -> Value {
    json!({"schema": SCHEMA, "state": "offline", "reason": "connection lost", "gateway": identity.gateway,
           "instance": identity.instance, "version": env!("CARGO_PKG_VERSION"), "started_at": identity.started_at})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreHealth;

    #[test]
    fn the_status_carries_each_sources_own_figures_and_the_stores_health() {
        let run = |source: &str| RunRecord {
            source: source.into(),
            started_at: "2026-12-01T08:00:00Z".into(),
            ok: true,
            fetched: 5,
            details: 3,
            unknown: 1,
            reminders: 2,
            ..Default::default()
        };
        let full = StoreHealth::Full("12 KiB free on /var/lib/linegate".into());
        let gateway = Gateway {
            online: true,
            id: "gw",
            started_at: "t",
            instance: "i",
        };
        let status = status(
            gateway,
            &[("odoo", Uplink::Up)],
            &[run("odoo"), run("sicantik")],
            &Default::default(),
            &full,
            ToOdoo {
                backlog: &Default::default(),
                refusals: &Some(vec![(
                    "progress".into(),
                    "the API user may not write mrp.production".into(),
                )]),
            },
            Some(41_165),
        );
        assert_eq!(status["written_bytes"], 41_165);
        assert_eq!(
            status["odoo_refuses"],
            json!([{"step": "progress", "why": "the API user may not write mrp.production"}])
        );
        let odoo = status["last_sync"]["odoo"].as_object().unwrap();
        assert_eq!(odoo["fetched"], 5);
        for sicantik_only in ["details", "unknown", "reminders"] {
            assert!(!odoo.contains_key(sicantik_only), "odoo has {sicantik_only}");
            assert!(status["last_sync"]["sicantik"][sicantik_only].is_number());
        }
        assert_eq!(
            status["store"],
            json!({"state": "full", "reason": "12 KiB free on /var/lib/linegate"})
        );
    }
}
