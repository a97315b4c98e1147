//! `linegate status`: what the store knows, without the network.

use std::fmt::Write;

use crate::store::sync::{RunRecord, Status};
use crate::store::StoreHealth;

/// `agent`: the running agent's process id and the bytes it wrote to storage since it started.
pub(super) fn render(status: &Status, db: &std::path::Path, health: &StoreHealth, agent: Option<(u32, u64)>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "database  {} (schema {})", db.display(), status.schema_version);
    let _ = writeln!(out, "store     {health}");
    if let Some((pid, written)) = agent {
        let written = crate::wear::human(written);
        let _ = writeln!(
            out,
            "agent     running (pid {pid}), wrote {written} to storage since it started"
        );
    }
    let _ = writeln!(out, "MOs       {} in Odoo's domain, {} gone", status.mos, status.gone);
    let list = |pairs: &[(String, u64)]| {
        if pairs.is_empty() {
            "none".to_string()
        } else {
            pairs
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(out, "by state  {}", list(&status.by_state));
    let _ = writeln!(out, "by phase  {}", list(&status.by_phase));
    let p = &status.permits;
    if p.permits > 0 || p.types > 0 {
        let _ = writeln!(
            out,
            "permits   {} ({} with expiry, {} waiting for it, {} unknown to SICANTIK), {} types",
            p.permits, p.expiry_known, p.expiry_pending, p.expiry_unknown, p.types
        );
    }
    if !status.outbox.is_empty() {
        let _ = writeln!(out, "outbox    {}", list(&status.outbox));
    }
    let o = &status.to_odoo;
    if o.pending > 0 || o.dropped > 0 {
        let since = o.oldest.as_deref().map(|at| format!(" since {at}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "to Odoo   {} results waiting{since}, {} parked (linegate outbox list), {} ever dropped",
            o.pending, o.parked, o.dropped
        );
    }
    if status.sources.is_empty() {
        let _ = writeln!(out, "sync      never ran");
    }
    for source in &status.sources {
        let _ = writeln!(out, "{:<9} last run {}", source.source, run_line(&source.last));
        if !source.last.ok {
            match &source.last_ok {
                Some(ok) => {
                    let _ = writeln!(out, "{:<9} last good {}", "", run_line(ok));
                }
                None => {
                    let _ = writeln!(out, "{:<9} never succeeded", "");
                }
            }
        }
    }
    out
}

fn run_line(run: &RunRecord) -> String {
    let outcome = match &run.error {
        None => "ok".to_string(),
        Some(error) => format!("FAILED: {error}"),
    };
    format!(
        "{} {} in {:.2} s — fetched {}, inserted {}, updated {}, unchanged {}, gone {}, purged {}, {} requests",
        run.started_at,
        outcome,
        run.duration_ms as f64 / 1000.0,
        run.fetched,
        run.inserted,
        run.updated,
        run.unchanged,
        run.gone,
        run.purged,
        run.requests
    )
}
