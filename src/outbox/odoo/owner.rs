//! One gateway reports on an MO: the first whose note is in the MO's chatter. Two gateways
//! whose `mo_domain`s overlap both hold the MOs in common, and both would start, close and
//! book them in Odoo. So every note names its gateway, and before a result's note is posted the
//! MO's first such note is read: another gateway's parks the result, and the rest of that MO's
//! results here, for a person, who makes the domains disjoint.
//!
//! Two gateways whose first results for one MO are under way at once (between one's check and
//! its note, which a slow Odoo can stretch to seconds) can both post a first note, and both
//! results go up whole; the next result of the one whose note came second parks. Without
//! chatter notes (`odoo.push.chatter = false`) there is nothing to go by, and nothing is
//! checked.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::{classify, Failure};
use crate::odoo::OdooClient;

/// What every note's gateway line starts with.
const MARK: &str = "[linegate gateway ";
/// MOs known to be this gateway's, at most (then forgotten, and asked again).
const KNOWN_MAX: usize = 4096;

/// The line of a note that names `gateway`.
pub(super) fn line(gateway: &str) -> String {
    format!("{MARK}{gateway}]")
}

/// This gateway, and the MOs whose first note is known to be its own: a note stays in the
/// chatter, so once its own is first an MO needs no more asking.
pub(crate) struct Owners {
    gateway: String,
    ours: Mutex<HashSet<i64>>,
}

impl Owners {
    pub(crate) fn new(gateway: String) -> Owners {
        Owners {
            gateway,
            ours: Mutex::new(HashSet::new()),
        }
    }

    pub(super) fn gateway(&self) -> &str {
        &self.gateway
    }

    /// Ok when no other gateway reported on `mo` before this one: one request, the first time.
    pub(super) async fn check(&self, client: &OdooClient, mo: i64) -> Result<(), Failure> {
        if self.ours.lock().unwrap().contains(&mo) {
            return Ok(());
        }
        let domain = json!([
            ["model", "=", "mrp.production"],
            ["res_id", "=", mo],
            ["body", "ilike", MARK]
        ]);
        let fields = ["body".to_string(), "date".to_string()];
        let first = client
            .search_read("mail.message", &domain, &fields, "id asc", Some(1))
            .await
            .map_err(classify)?;
        let Some(first) = first.first() else {
            // No note yet: this result's is the first.
            return Ok(());
        };
        let body = first.get("body").and_then(Value::as_str).unwrap_or_default();
        // Gateway ids are letters, digits, `.`, `_` and `-` (config/mqtt.rs): Odoo's escaping
        // of a plain-text body leaves them as they are.
        if body.contains(&line(&self.gateway)) {
            let mut ours = self.ours.lock().unwrap();
            if ours.len() >= KNOWN_MAX {
                ours.clear();
            }
            ours.insert(mo);
            return Ok(());
        }
        let date = first.get("date").and_then(Value::as_str).unwrap_or("?");
        Err(Failure::NotOurs(format!(
            "gateway {} reported on this MO in Odoo first (its note of {} UTC): two gateways hold it, and \
             only the first reports. Make the gateways' odoo.mo_domain disjoint, then drop this MO's results \
             here (linegate outbox list; linegate outbox drop ID --yes)",
            named(body),
            shown(date)
        )))
    }
}

/// The gateway a note's body names, for a person: printable and short.
fn named(body: &str) -> String {
    let Some(at) = body.find(MARK) else { return "?".into() };
    let rest = &body[at + MARK.len()..];
    let end = rest.find([']', '<']).unwrap_or(rest.len());
    shown(&rest[..end])
}

fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notes_gateway_is_found_in_the_body_as_odoo_keeps_it() {
        let body = format!(
            "<p>linegate: WH/MO/00007 ended<br>{}<br>event lg-1</p>",
            line("line-gw.2")
        );
        assert_eq!(named(&body), "line-gw.2");
        assert!(body.contains(&line("line-gw.2")));
        assert!(!body.contains(&line("line-gw")), "a prefix of another id is not it");
        // Cut at the end of the paragraph when the bracket is missing
        assert_eq!(named("<p>[linegate gateway gw-9</p>"), "gw-9");
        assert_eq!(named("<p>no mark</p>"), "?");
        assert_eq!(named(&format!("{MARK}{}", "\u{1b}x".repeat(100))).len(), 64);
    }
}
