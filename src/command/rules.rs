//! The floor's rules for production commands, as a pure function: given a [`Plan`] and the rows
//! of the MOs it names, either the writes to make and the result to reply, or a refusal (which
//! writes nothing). The store reads the rows and applies the writes in the command's own
//! transaction (`store::command::exactly_once`).

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::parse::Plan;
use super::reply::{refuse, summary_of, Refusal};
use crate::mo::{auth, MoRef, MoRow, OperatorWrite, Phase, Protected};

/// What an accepted command does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// The reply's `result`.
    pub(crate) result: Value,
    pub(crate) writes: Vec<OperatorWrite>,
}

/// Decides `plan` on `rows`, the rows of [`Plan::refs`] in order (None where no MO matched),
/// at `now` (RFC 3339, the command's arrival).
pub(crate) fn decide(plan: &Plan, rows: &[Option<MoRow>], now: &str) -> Result<Decision, Refusal> {
    let refs = plan.refs();
    let row =
        |i: usize| -> Result<&MoRow, Refusal> { rows.get(i).and_then(Option::as_ref).ok_or_else(|| unknown(&refs[i])) };
    match plan {
        Plan::Register {
            auth_first, roll, line, ..
        } => {
            let row = row(0)?;
            not_started(row)?;
            if row.protected.ready_for_production {
                return Err(refuse(
                    "already_registered",
                    format!("{} is already registered", row.upstream.name),
                ));
            }
            let p = Protected {
                ready_for_production: true,
                auth_first: auth_first.clone(),
                roll_number: roll.clone(),
                line: line.clone().or(row.protected.line.clone()),
                ..row.protected.clone()
            };
            Ok(one(row, p))
        }
        Plan::Start { leader, line, .. } => {
            let row = row(0)?;
            not_started(row)?;
            registered(row)?;
            let p = Protected {
                date_start: Some(now.to_string()),
                leader_id: Some(leader.clone()),
                line: line.clone().or(row.protected.line.clone()),
                ..row.protected.clone()
            };
            Ok(one(row, p))
        }
        Plan::Changeover { new_auth, roll, .. } => {
            let (cur, nxt) = (row(0)?, row(1)?);
            if cur.upstream.id == nxt.upstream.id {
                return Err(refuse("invalid_field", "current_mo and next_mo are the same MO"));
            }
            running(cur)?;
            not_started(nxt)?;
            registered(nxt)?;
            let ended = Protected {
                auth_last: Some(last_code("new_auth", new_auth, cur)?),
                date_finished: Some(now.to_string()),
                ..cur.protected.clone()
            };
            let started = Protected {
                auth_first: Some(new_auth.clone()),
                date_start: Some(now.to_string()),
                roll_number: roll.clone().or(nxt.protected.roll_number.clone()),
                leader_id: cur.protected.leader_id.clone(),
                line: cur.protected.line.clone().or(nxt.protected.line.clone()),
                ..nxt.protected.clone()
            };
            Ok(Decision {
                result: json!({"current": summary_of(cur, &ended), "next": summary_of(nxt, &started)}),
                writes: vec![write(cur, ended), write(nxt, started)],
            })
        }
        Plan::End { authenticity, roll, .. } => {
            let row = row(0)?;
            running(row)?;
            let p = Protected {
                auth_last: Some(last_code("authenticity", authenticity, row)?),
                date_finished: Some(now.to_string()),
                roll_number: roll.clone().or(row.protected.roll_number.clone()),
                ..row.protected.clone()
            };
            Ok(one(row, p))
        }
    }
}

/// Puts operator data salvaged from a damaged store back on MO `id` (`row`, as the fresh store
/// holds it): only onto an MO no operator has written to since, never over newer work, and
/// only values of the shapes a command writes (a damaged file may hold anything).
pub(crate) fn restore(
    id: i64,
    row: Option<&MoRow>,
    name: Option<&str>,
    salvaged: &Protected,
) -> Result<Decision, Refusal> {
    let row = row.ok_or_else(|| unknown(&MoRef::Id(id)))?;
    // The same id in another Odoo database (the configuration changed since) is another MO.
    // A backorder renames it (`WH/MO/00007` becomes `WH/MO/00007-001`): that is the same one.
    let base = |name: &str| match name.rsplit_once('-') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
        _ => name.to_string(),
    };
    if let Some(kept) = name.filter(|kept| base(kept) != base(&row.upstream.name)) {
        return Err(refuse(
            "different_mo",
            format!(
                "the kept file's MO {id} is {kept}, the store's is {}",
                row.upstream.name
            ),
        ));
    }
    if row.protected != Protected::default() {
        return Err(refuse(
            "already_written",
            format!(
                "{} has operator data of its own since; kept as it is",
                row.upstream.name
            ),
        ));
    }
    let codes = [("auth_first", &salvaged.auth_first), ("auth_last", &salvaged.auth_last)];
    for (column, code) in codes {
        if code.as_deref().is_some_and(|c| !auth::is_code(c)) {
            return Err(refuse(
                "invalid_field",
                format!("{column} {code:?} is not a sticker code"),
            ));
        }
    }
    let times = [
        ("date_start", &salvaged.date_start),
        ("date_finished", &salvaged.date_finished),
    ];
    for (column, at) in times {
        if at.as_deref().is_some_and(|t| crate::clock::parse_rfc3339(t).is_none()) {
            return Err(refuse("invalid_field", format!("{column} {at:?} is not a time")));
        }
    }
    Ok(one(row, salvaged.clone()))
}

fn write(row: &MoRow, protected: Protected) -> OperatorWrite {
    OperatorWrite {
        id: row.upstream.id,
        protected,
    }
}

/// One MO written, and its summary as the result.
fn one(row: &MoRow, p: Protected) -> Decision {
    Decision {
        result: json!({"mo": summary_of(row, &p)}),
        writes: vec![write(row, p)],
    }
}

fn unknown(r: &MoRef) -> Refusal {
    refuse("unknown_mo", format!("no MO {r}"))
}

/// An MO an operator may still register or start: open in Odoo, not started on the floor.
fn not_started(row: &MoRow) -> Result<(), Refusal> {
    if row.gone_at.is_some() {
        return Err(refuse(
            "gone",
            format!("{} is no longer open in Odoo", row.upstream.name),
        ));
    }
    if row.protected.date_start.is_some() {
        return Err(refuse(
            "already_started",
            format!("{} has already started", row.upstream.name),
        ));
    }
    Ok(())
}

/// An MO registered for production (ready).
fn registered(row: &MoRow) -> Result<(), Refusal> {
    if !row.protected.ready_for_production {
        return Err(refuse(
            "not_ready",
            format!("{} is not registered yet", row.upstream.name),
        ));
    }
    Ok(())
}

fn running(row: &MoRow) -> Result<(), Refusal> {
    if row.phase != Phase::Running {
        return Err(refuse("not_running", format!("{} is not running", row.upstream.name)));
    }
    Ok(())
}

/// The last code of a running MO, from the first code of what comes next (`field`): one less,
/// same width, and not below the MO's own first code.
fn last_code(field: &str, next: &str, row: &MoRow) -> Result<String, Refusal> {
    let last = auth::predecessor(next).ok_or_else(|| refuse("invalid_field", format!("`{field}` cannot be zero")))?;
    match &row.protected.auth_first {
        Some(first) if auth::compare(&last, first) == Ordering::Less => Err(refuse(
            "invalid_field",
            format!(
                "{field} {next} would end {} below its first code {first}",
                row.upstream.name
            ),
        )),
        _ => Ok(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::UpstreamMo;
    use proptest::prelude::*;

    const NOW: &str = "2026-11-22T08:00:00Z";

    #[test]
    fn salvaged_data_is_restored_only_onto_an_untouched_mo_and_only_in_shape() {
        let salvaged = Protected {
            date_start: Some(NOW.into()),
            ..ready(1).protected
        };
        let name = waiting(1).upstream.name;
        let code = |r: Result<Decision, Refusal>| r.unwrap_err().code;
        // Onto an MO nobody has written to since: written as it was, also when a backorder
        // renamed it since
        let decision = restore(1, Some(&waiting(1)), Some(&name), &salvaged).unwrap();
        assert_eq!(decision.writes, vec![write(&waiting(1), salvaged.clone())]);
        let renamed = format!("{name}-001");
        assert!(restore(1, Some(&waiting(1)), Some(&renamed), &salvaged).is_ok());
        // Not onto newer work, nor onto an MO the store does not hold, nor onto another MO
        // with the same id
        assert_eq!(
            code(restore(1, Some(&ready(1)), Some(&name), &salvaged)),
            "already_written"
        );
        assert_eq!(code(restore(1, None, Some(&name), &salvaged)), "unknown_mo");
        assert_eq!(
            code(restore(1, Some(&waiting(1)), Some("X/MO/1"), &salvaged)),
            "different_mo"
        );
        // Nor values no command writes
        for bad in [
            Protected {
                auth_first: Some("12ab".into()),
                ..salvaged.clone()
            },
            Protected {
                date_start: Some("yesterday".into()),
                ..salvaged.clone()
            },
        ] {
            assert_eq!(code(restore(1, Some(&waiting(1)), Some(&name), &bad)), "invalid_field");
        }
    }

    fn mo(id: i64, p: Protected) -> MoRow {
        MoRow {
            upstream: UpstreamMo::example(id),
            phase: p.phase(),
            protected: p,
            synced_at: "t".into(),
            gone_at: None,
            last_write: None,
        }
    }

    fn waiting(id: i64) -> MoRow {
        mo(id, Protected::default())
    }

    fn ready(id: i64) -> MoRow {
        mo(
            id,
            Protected {
                ready_for_production: true,
                auth_first: Some("000100".into()),
                roll_number: Some("R-1".into()),
                line: Some("L1".into()),
                ..Default::default()
            },
        )
    }

    fn running_mo(id: i64) -> MoRow {
        let r = ready(id);
        mo(
            id,
            Protected {
                leader_id: Some("007".into()),
                date_start: Some("2026-11-22T07:00:00Z".into()),
                ..r.protected
            },
        )
    }

    fn register(id: i64) -> Plan {
        Plan::Register {
            mo: MoRef::Id(id),
            auth_first: Some("000100".into()),
            roll: Some("R-1".into()),
            line: Some("L1".into()),
        }
    }

    fn start(id: i64) -> Plan {
        Plan::Start {
            mo: MoRef::Id(id),
            leader: "007".into(),
            line: None,
        }
    }

    fn changeover(current: i64, next: i64, new_auth: &str) -> Plan {
        Plan::Changeover {
            current: MoRef::Id(current),
            next: MoRef::Id(next),
            new_auth: new_auth.into(),
            roll: Some("R-2".into()),
        }
    }

    fn end(id: i64, authenticity: &str) -> Plan {
        Plan::End {
            mo: MoRef::Id(id),
            authenticity: authenticity.into(),
            roll: None,
        }
    }

    fn code(r: Result<Decision, Refusal>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.code)
    }

    #[test]
    fn register_start_changeover_end_make_the_writes_an_operator_expects() {
        // Register: ready, with the codes, roll and line
        let d = decide(&register(1), &[Some(waiting(1))], NOW).unwrap();
        assert_eq!(
            d.writes,
            vec![OperatorWrite {
                id: 1,
                protected: ready(1).protected
            }]
        );
        assert_eq!(d.result["mo"]["phase"], "ready");
        // Start: running since now, led by the leader, on the line it was registered for
        let d = decide(&start(1), &[Some(ready(1))], NOW).unwrap();
        let p = &d.writes[0].protected;
        assert_eq!(
            (p.date_start.as_deref(), p.leader_id.as_deref(), p.line.as_deref()),
            (Some(NOW), Some("007"), Some("L1"))
        );
        // Changeover: the running MO ends one code before the next one's first, which starts
        // with the same leader and line
        let d = decide(&changeover(1, 2, "000500"), &[Some(running_mo(1)), Some(ready(2))], NOW).unwrap();
        let (ended, started) = (&d.writes[0], &d.writes[1]);
        assert_eq!(
            (
                ended.id,
                ended.protected.auth_last.as_deref(),
                ended.protected.date_finished.as_deref()
            ),
            (1, Some("000499"), Some(NOW))
        );
        assert_eq!(
            (
                started.id,
                started.protected.auth_first.as_deref(),
                started.protected.leader_id.as_deref()
            ),
            (2, Some("000500"), Some("007"))
        );
        assert_eq!(started.protected.roll_number.as_deref(), Some("R-2"));
        assert_eq!(d.result["current"]["phase"], "finished");
        assert_eq!(d.result["next"]["phase"], "running");
        // End: finished, the last code one before the next free one, same width
        let d = decide(&end(2, "001000"), &[Some(running_mo(2))], NOW).unwrap();
        assert_eq!(d.writes[0].protected.auth_last.as_deref(), Some("000999"));
        assert_eq!(d.writes[0].protected.phase(), Phase::Finished);
    }

    #[test]
    fn commands_out_of_turn_are_refused_with_their_codes() {
        let gone = MoRow {
            gone_at: Some("g".into()),
            last_write: None,
            ..waiting(1)
        };
        let cases = [
            (register(1), vec![None], "unknown_mo"),
            (register(1), vec![Some(gone)], "gone"),
            (register(1), vec![Some(ready(1))], "already_registered"),
            (register(1), vec![Some(running_mo(1))], "already_started"),
            (start(1), vec![Some(waiting(1))], "not_ready"),
            (start(1), vec![Some(running_mo(1))], "already_started"),
            (end(1, "5"), vec![Some(ready(1))], "not_running"),
            (end(1, "000100"), vec![Some(running_mo(1))], "invalid_field"),
            (end(1, "0000"), vec![Some(running_mo(1))], "invalid_field"),
            (
                changeover(1, 1, "000500"),
                vec![Some(running_mo(1)), Some(running_mo(1))],
                "invalid_field",
            ),
            (
                changeover(1, 2, "000500"),
                vec![Some(ready(1)), Some(ready(2))],
                "not_running",
            ),
            (
                changeover(1, 2, "000500"),
                vec![Some(running_mo(1)), Some(waiting(2))],
                "not_ready",
            ),
            (
                changeover(1, 2, "000500"),
                vec![Some(running_mo(1)), None],
                "unknown_mo",
            ),
        ];
        for (plan, rows, expected) in cases {
            assert_eq!(code(decide(&plan, &rows, NOW)), expected, "{plan:?}");
        }
    }

    /// Protected values an MO can have on the floor: what some sequence of commands leaves.
    fn reachable() -> impl Strategy<Value = Protected> {
        let code = || proptest::option::of("[0-9]{1,6}");
        (0u8..4, code(), code(), "[a-z0-9]{1,4}", proptest::option::of("L[0-9]")).prop_map(
            |(phase, auth_first, auth_last, who, line)| {
                let mut p = Protected::default();
                if phase >= 1 {
                    p.ready_for_production = true;
                    p.auth_first = auth_first;
                    p.roll_number = Some(format!("R-{who}"));
                    p.line = line;
                }
                if phase >= 2 {
                    p.leader_id = Some(who.clone());
                    p.date_start = Some("2026-11-22T07:00:00Z".into());
                }
                if phase >= 3 {
                    p.auth_last = auth_last;
                    p.date_finished = Some("2026-11-22T07:30:00Z".into());
                }
                p
            },
        )
    }

    fn plan() -> impl Strategy<Value = Plan> {
        let id = || 1i64..4;
        let code = || "[0-9]{1,6}";
        prop_oneof![
            (id(), proptest::option::of(code()), proptest::option::of("[A-Z]{1,3}")).prop_map(
                |(id, auth_first, roll)| Plan::Register {
                    mo: MoRef::Id(id),
                    auth_first,
                    roll,
                    line: None
                }
            ),
            id().prop_map(start),
            (id(), id(), code()).prop_map(|(a, b, c)| changeover(a, b, &c)),
            (id(), code()).prop_map(|(a, c)| end(a, &c)),
        ]
    }

    /// Where an MO may go next on the floor: never back, never skipping a step.
    fn allowed(from: Phase, to: Phase) -> bool {
        use Phase::*;
        matches!((from, to), (Waiting, Ready) | (Ready, Running) | (Running, Finished))
    }

    proptest! {
        /// Whatever the rows and the plan: a refusal writes nothing; an accepted command writes
        /// only the MOs it names, each one phase forward, and an MO that ends keeps its first code and
        /// gets its last.
        #[test]
        fn accepted_commands_move_the_mos_they_name_one_phase_forward(
            plan in plan(),
            states in proptest::collection::vec((reachable(), any::<bool>()), 3),
        ) {
            let rows: Vec<MoRow> = states.iter().enumerate().map(|(i, (p, gone))| MoRow {
                gone_at: gone.then(|| "g".to_string()),
                last_write: None,
                ..mo(i as i64 + 1, p.clone())
            }).collect();
            let named: Vec<Option<MoRow>> = plan.refs().iter().map(|r| match r {
                MoRef::Id(id) => rows.iter().find(|m| m.upstream.id == *id).cloned(),
                MoRef::Name(_) => None,
            }).collect();
            if let Ok(decision) = decide(&plan, &named, NOW) {
                prop_assert!(!decision.writes.is_empty());
                for w in &decision.writes {
                    let before = named.iter().flatten().find(|m| m.upstream.id == w.id);
                    prop_assert!(before.is_some(), "wrote MO {} it was not asked about", w.id);
                    let before = before.unwrap();
                    prop_assert!(allowed(before.phase, w.protected.phase()), "{:?} -> {:?}", before.phase, w.protected.phase());
                    if before.phase == Phase::Running {
                        prop_assert_eq!(&before.protected.auth_first, &w.protected.auth_first);
                        prop_assert!(w.protected.auth_last.is_some(), "a finished MO has its last code");
                    }
                }
            }
        }
    }
}
