//! From the bytes a panel sent to what it asks for, checked for shape before the store is
//! touched: first the [`Envelope`] (a JSON object, a known action, a request_id), then the
//! [`Command`] (only the action's fields, of the right types, not stale). Pure: no I/O.

use serde_json::{Map, Value};

use super::reply::{refuse, Refusal};
use crate::clock;
use crate::mo::MoRef;
use crate::mo::{auth, Phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    RegisterMo,
    StartProduction,
    Changeover,
    EndProduction,
    MoOptions,
    ReadyMo,
    RunningMo,
    SyncNow,
}

/// Every action by its topic name: the one table both directions read.
const ACTIONS: [(&str, Action); 8] = [
    ("register-mo", Action::RegisterMo),
    ("start-production", Action::StartProduction),
    ("changeover", Action::Changeover),
    ("end-production", Action::EndProduction),
    ("mo-options", Action::MoOptions),
    ("ready-mo", Action::ReadyMo),
    ("running-mo", Action::RunningMo),
    ("sync-now", Action::SyncNow),
];

impl Action {
    pub(crate) fn parse(name: &str) -> Option<Action> {
        ACTIONS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub(crate) fn name(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .expect("every action is in the table")
    }

    /// The fields this action takes, beyond the common ones.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Action::RegisterMo => &["mo", "auth_first", "roll_number", "line", "mid_production"],
            Action::StartProduction => &["mo", "leader_id", "line"],
            Action::Changeover => &["current_mo", "next_mo", "new_auth", "roll_number"],
            Action::EndProduction => &["mo", "authenticity", "roll_number"],
            Action::MoOptions | Action::ReadyMo | Action::RunningMo => &["line"],
            Action::SyncNow => &[],
        }
    }

    /// Whether it writes (production commands) or only asks (queries).
    pub(crate) fn writes(self) -> bool {
        matches!(
            self,
            Action::RegisterMo | Action::StartProduction | Action::Changeover | Action::EndProduction
        )
    }
}

const COMMON_FIELDS: [&str; 4] = ["schema", "request_id", "operator", "sent_at"];
/// How far ahead of the gateway's clock a panel's `sent_at` may be: two clocks are never quite
/// equal, but a command from the future is a wrong clock or a forgery.
pub(crate) const CLOCK_SKEW: i64 = 120;
/// The latest `sent_at` that is a time at all: 9999-12-31T23:59:59Z.
const LATEST: i64 = 253_402_300_799;
/// No panel of this agent was made before 2026: with the gateway's own clock not synchronised
/// (it may think it is 1970), a `sent_at` is still implausible beyond a year after the later
/// of its clock and this.
const EARLIEST: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const UNSYNCED_SKEW: i64 = 366 * 86_400;
/// Longest request_id kept in the command log.
const MAX_REQUEST_ID: usize = 128;

/// A command's outer shape: a JSON object for a known action, with a request_id.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) action: Action,
    pub(crate) request_id: String,
    fields: Map<String, Value>,
}

/// A refusal, with the request_id when the payload had a readable one (the reply carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) request_id: Option<String>,
    pub(crate) refusal: Refusal,
}

/// Reads the envelope of `payload` sent as `action`; payloads over `max_payload` bytes are
/// refused unread.
pub(crate) fn envelope(action: &str, payload: &[u8], max_payload: usize) -> Result<Envelope, Refused> {
    let unread = |refusal| Refused {
        request_id: None,
        refusal,
    };
    if payload.len() > max_payload {
        return Err(unread(refuse(
            "too_large",
            format!("payload of {} bytes; at most {max_payload} are accepted", payload.len()),
        )));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| unread(refuse("invalid_json", format!("the payload is not JSON: {e}"))))?;
    let Value::Object(fields) = value else {
        return Err(unread(refuse("invalid_json", "the payload must be a JSON object")));
    };
    let f = Fields { map: &fields };
    let readable_id = f.text("request_id").ok().flatten().map(str::to_string);
    let refused = |refusal| Refused {
        request_id: readable_id.clone(),
        refusal,
    };
    let action =
        Action::parse(action).ok_or_else(|| refused(refuse("unknown_action", format!("no action {action:?}"))))?;
    let request_id = f.required_text("request_id").map_err(refused)?.to_string();
    if request_id.len() > MAX_REQUEST_ID {
        return Err(refused(refuse(
            "invalid_field",
            format!("`request_id` is longer than {MAX_REQUEST_ID} characters"),
        )));
    }
    Ok(Envelope {
        action,
        request_id,
        fields,
    })
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Write { operator: String, plan: Plan },
    Query(Query),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    /// Open MOs in a phase, optionally for one line.
    Phase {
        phase: Phase,
        line: Option<String>,
    },
    SyncNow,
}

/// What a production command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    Register {
        mo: MoRef,
        auth_first: Option<String>,
        roll: Option<String>,
        line: Option<String>,
    },
    Start {
        mo: MoRef,
        leader: String,
        line: Option<String>,
    },
    Changeover {
        current: MoRef,
        next: MoRef,
        new_auth: String,
        roll: Option<String>,
    },
    End {
        mo: MoRef,
        authenticity: String,
        roll: Option<String>,
    },
}

impl Plan {
    /// The MOs the plan names, in the order [`super::rules::decide`] expects their rows.
    pub(crate) fn refs(&self) -> Vec<MoRef> {
        match self {
            Plan::Register { mo, .. } | Plan::Start { mo, .. } | Plan::End { mo, .. } => vec![mo.clone()],
            Plan::Changeover { current, next, .. } => vec![current.clone(), next.clone()],
        }
    }
}

/// Settings of the checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checks {
    /// Commands older than this (seconds) when they arrive are refused as stale.
    pub(crate) max_age: i64,
    /// Whether the gateway's clock is synchronised: only then is a `sent_at` ahead of it a
    /// sign of a wrong panel (a gateway without a clock battery boots in the past, and panels'
    /// correct times look like the future to it until NTP has answered).
    pub(crate) clock_synced: bool,
}

/// The command in an envelope received at `received_unix`.
pub(crate) fn command(envelope: &Envelope, received_unix: i64, checks: Checks) -> Result<Command, Refusal> {
    let action = envelope.action;
    let map = &envelope.fields;
    if let Some(unknown) = map
        .keys()
        .find(|k| !COMMON_FIELDS.contains(&k.as_str()) && !action.fields().contains(&k.as_str()))
    {
        return Err(refuse(
            "invalid_field",
            format!("{:?} takes no field `{unknown}`", action.name()),
        ));
    }
    if let Some(sent) = sent_at(map)? {
        if checks.clock_synced && sent > received_unix.saturating_add(CLOCK_SKEW) {
            return Err(refuse(
                "invalid_field",
                format!(
                    "`sent_at` is {} s ahead of the gateway's clock; at most {CLOCK_SKEW} s are allowed",
                    sent.saturating_sub(received_unix)
                ),
            ));
        }
        if !checks.clock_synced && sent > received_unix.max(EARLIEST).saturating_add(UNSYNCED_SKEW) {
            return Err(refuse(
                "invalid_field",
                "`sent_at` is more than a year in the future (the gateway's clock is not synchronised)",
            ));
        }
        let age = received_unix.saturating_sub(sent);
        if age > checks.max_age {
            return Err(refuse(
                "stale",
                format!("sent {age} s ago; commands older than {} s are refused", checks.max_age),
            ));
        }
    }
    let f = Fields { map };
    if !action.writes() {
        let phase = match action {
            Action::SyncNow => return Ok(Command::Query(Query::SyncNow)),
            Action::MoOptions => Phase::Waiting,
            Action::ReadyMo => Phase::Ready,
            _ => Phase::Running,
        };
        let line = f.text("line")?.map(str::to_string);
        return Ok(Command::Query(Query::Phase { phase, line }));
    }
    let operator = f.required_text("operator")?.to_string();
    Ok(Command::Write {
        operator,
        plan: plan(action, &f)?,
    })
}

fn plan(action: Action, f: &Fields) -> Result<Plan, Refusal> {
    let owned = |o: Option<&str>| o.map(str::to_string);
    Ok(match action {
        Action::RegisterMo => {
            let mid_production = f.flag("mid_production")?;
            let auth_first = owned(f.code("auth_first")?);
            if !mid_production && auth_first.is_none() {
                return Err(refuse(
                    "missing_field",
                    "`auth_first` is required (or `mid_production: true`)",
                ));
            }
            let roll = owned(f.text("roll_number")?);
            if !mid_production && roll.is_none() {
                return Err(refuse(
                    "missing_field",
                    "`roll_number` is required (or `mid_production: true`)",
                ));
            }
            Plan::Register {
                mo: f.mo("mo")?,
                auth_first,
                roll,
                line: owned(f.text("line")?),
            }
        }
        Action::StartProduction => Plan::Start {
            mo: f.mo("mo")?,
            leader: f.required_text("leader_id")?.into(),
            line: owned(f.text("line")?),
        },
        Action::Changeover => Plan::Changeover {
            current: f.mo("current_mo")?,
            next: f.mo("next_mo")?,
            new_auth: f.required_code("new_auth")?.into(),
            roll: owned(f.text("roll_number")?),
        },
        Action::EndProduction => Plan::End {
            mo: f.mo("mo")?,
            authenticity: f.required_code("authenticity")?.into(),
            roll: owned(f.text("roll_number")?),
        },
        Action::MoOptions | Action::ReadyMo | Action::RunningMo | Action::SyncNow => {
            unreachable!("queries are not planned")
        }
    })
}

/// `sent_at`: RFC 3339 (fractions and offsets too, as `toISOString()` writes it), or Unix
/// seconds.
fn sent_at(map: &Map<String, Value>) -> Result<Option<i64>, Refusal> {
    match map.get("sent_at") {
        None | Some(Value::Null) => Ok(None),
        // Whole seconds between 1970 and 9999: nothing else converts without saturating.
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| (0.0..=LATEST as f64).contains(f))
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| refuse("invalid_field", format!("`sent_at` {n} is not a time in Unix seconds"))),
        Some(Value::String(s)) => clock::parse_rfc3339(s).map(Some).ok_or_else(|| {
            refuse(
                "invalid_field",
                format!("`sent_at` {s:?} is not a time like 2026-11-22T08:00:00Z"),
            )
        }),
        Some(other) => Err(refuse(
            "invalid_field",
            format!("`sent_at` must be a time, not {other}"),
        )),
    }
}

/// A command's fields, read with their types checked.
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn text(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.as_str())),
            Some(Value::String(_)) => Err(refuse("invalid_field", format!("`{name}` is empty"))),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be a string, not {other}"),
            )),
        }
    }

    fn required_text(&self, name: &str) -> Result<&'a str, Refusal> {
        self.text(name)?
            .ok_or_else(|| refuse("missing_field", format!("`{name}` is required")))
    }

    fn code(&self, name: &str) -> Result<Option<&'a str>, Refusal> {
        match self.text(name)? {
            Some(code) if auth::is_code(code) => Ok(Some(code)),
            Some(code) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be digits only, not {code:?}"),
            )),
            None => Ok(None),
        }
    }

    fn required_code(&self, name: &str) -> Result<&'a str, Refusal> {
        self.code(name)?
            .ok_or_else(|| refuse("missing_field", format!("`{name}` is required")))
    }

    fn flag(&self, name: &str) -> Result<bool, Refusal> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be true or false, not {other}"),
            )),
        }
    }

    /// An MO by Odoo id (a number or digits) or by its current name.
    fn mo(&self, name: &str) -> Result<MoRef, Refusal> {
        match self.map.get(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .map(MoRef::Id)
                .ok_or_else(|| refuse("invalid_field", format!("`{name}`: {n}"))),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(match s.trim().parse::<i64>() {
                Ok(id) if s.trim().bytes().all(|b| b.is_ascii_digit()) => MoRef::Id(id),
                _ => MoRef::Name(s.trim().to_string()),
            }),
            None | Some(Value::Null) => Err(refuse("missing_field", format!("`{name}` is required"))),
            Some(other) => Err(refuse(
                "invalid_field",
                format!("`{name}` must be an MO id or name, not {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_795_334_400; // 2026-11-22T08:00:00Z
    const CHECKS: Checks = Checks {
        max_age: 300,
        clock_synced: true,
    };

    fn parse(action: &str, body: Value) -> Result<Command, (Option<String>, &'static str)> {
        let bytes = body.to_string().into_bytes();
        let e = envelope(action, &bytes, 16 * 1024).map_err(|r| (r.request_id, r.refusal.code))?;
        let id = Some(e.request_id.clone());
        command(&e, NOW, CHECKS).map_err(|r| (id, r.code))
    }

    #[test]
    fn the_action_table_reads_both_ways() {
        for (name, action) in ACTIONS {
            assert_eq!(Action::parse(name), Some(action));
            assert_eq!(action.name(), name);
        }
        assert_eq!(Action::parse("launch-missiles"), None);
    }

    #[test]
    fn a_register_is_planned_with_its_codes_and_mo() {
        let got = parse(
            "register-mo",
            json!({"request_id": "r1", "operator": "ana", "mo": "21", "auth_first": "000100",
                   "roll_number": "R-1", "line": "L1"}),
        );
        assert_eq!(
            got,
            Ok(Command::Write {
                operator: "ana".into(),
                plan: Plan::Register {
                    mo: MoRef::Id(21),
                    auth_first: Some("000100".into()),
                    roll: Some("R-1".into()),
                    line: Some("L1".into()),
                },
            })
        );
        let by_name = parse(
            "end-production",
            json!({"request_id": "r2", "operator": "ana", "mo": "WH/MO/00021", "authenticity": "500"}),
        );
        assert!(
            matches!(by_name, Ok(Command::Write { plan: Plan::End { mo: MoRef::Name(n), .. }, .. }) if n == "WH/MO/00021")
        );
    }

    #[test]
    fn malformed_commands_get_their_documented_codes() {
        let cases = [
            (
                "register-mo",
                json!({"request_id": "a", "operator": "o", "mo": 1, "roll_number": "r"}),
                "missing_field",
            ),
            (
                "register-mo",
                json!({"request_id": "a", "operator": "o", "mo": 1, "auth_first": "12a", "roll_number": "r"}),
                "invalid_field",
            ),
            (
                "register-mo",
                json!({"request_id": "a", "operator": "o", "mo": 1, "auth_first": "1", "roll_number": "r", "colour": "red"}),
                "invalid_field",
            ),
            (
                "start-production",
                json!({"request_id": "a", "operator": "o", "mo": 1}),
                "missing_field",
            ),
            (
                "start-production",
                json!({"request_id": "a", "mo": 1, "leader_id": "7"}),
                "missing_field",
            ),
            (
                "start-production",
                json!({"request_id": "a", "operator": "o", "mo": [1], "leader_id": "7"}),
                "invalid_field",
            ),
            (
                "changeover",
                json!({"request_id": "a", "operator": "o", "current_mo": 1, "next_mo": 2, "new_auth": ""}),
                "invalid_field",
            ),
            (
                "register-mo",
                json!({"request_id": "a", "operator": "o", "mo": 1, "mid_production": "yes"}),
                "invalid_field",
            ),
            ("ready-mo", json!({"request_id": "a", "line": 3}), "invalid_field"),
            ("ready-mo", json!({"request_id": "a", "sent_at": NOW - 301}), "stale"),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": "yesterday"}),
                "invalid_field",
            ),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": -1e300}),
                "invalid_field",
            ),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": 1e300}),
                "invalid_field",
            ),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": "9999-12-31T23:59:59Z"}),
                "invalid_field",
            ),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": NOW + 365 * 86_400}),
                "invalid_field",
            ),
            (
                "ready-mo",
                json!({"request_id": "a", "sent_at": NOW + CLOCK_SKEW + 1}),
                "invalid_field",
            ),
        ];
        for (action, body, code) in cases {
            assert_eq!(
                parse(action, body.clone()),
                Err((Some("a".into()), code)),
                "{action} {body}"
            );
        }
        assert_eq!(
            parse("fly", json!({"request_id": "a"})),
            Err((Some("a".into()), "unknown_action"))
        );
        assert_eq!(
            parse("ready-mo", json!({"request_id": 5})),
            Err((None, "invalid_field"))
        );
        assert_eq!(parse("ready-mo", json!({})), Err((None, "missing_field")));
        let long = "x".repeat(129);
        assert_eq!(
            parse("ready-mo", json!({"request_id": long})),
            Err((Some(long), "invalid_field"))
        );
        assert!(matches!(
            envelope("ready-mo", b"[1]", 100),
            Err(Refused {
                refusal: Refusal {
                    code: "invalid_json",
                    ..
                },
                ..
            })
        ));
        assert!(matches!(
            envelope("ready-mo", b"{", 100),
            Err(Refused {
                refusal: Refusal {
                    code: "invalid_json",
                    ..
                },
                ..
            })
        ));
        assert!(matches!(
            envelope("ready-mo", &[b' '; 101], 100),
            Err(Refused {
                refusal: Refusal { code: "too_large", .. },
                ..
            })
        ));
    }

    #[test]
    fn queries_name_a_phase_and_an_optional_line() {
        assert_eq!(
            parse(
                "ready-mo",
                json!({"request_id": "q", "line": "L2", "sent_at": "2026-11-22T07:59:00Z"})
            ),
            Ok(Command::Query(Query::Phase {
                phase: Phase::Ready,
                line: Some("L2".into())
            }))
        );
        assert_eq!(
            parse("mo-options", json!({"request_id": "q"})),
            Ok(Command::Query(Query::Phase {
                phase: Phase::Waiting,
                line: None
            }))
        );
        assert_eq!(
            parse("sync-now", json!({"request_id": "q"})),
            Ok(Command::Query(Query::SyncNow))
        );
        // A panel's clock a little ahead of the gateway's is not a refusal; nor any time ahead
        // of a gateway whose own clock is not synchronised yet.
        assert!(parse("sync-now", json!({"request_id": "q", "sent_at": NOW + CLOCK_SKEW})).is_ok());
        let e = envelope("sync-now", br#"{"request_id": "q", "sent_at": 1780000000}"#, 100).unwrap();
        let unsynced = Checks {
            clock_synced: false,
            ..CHECKS
        };
        assert!(command(&e, 0, unsynced).is_ok(), "a gateway that thinks it is 1970");
        // But not the year 9999, however wrong the gateway's clock
        let e = envelope(
            "sync-now",
            br#"{"request_id": "q", "sent_at": "9999-12-31T23:59:59Z"}"#,
            100,
        )
        .unwrap();
        assert!(command(&e, 0, unsynced).is_err());
    }

    /// The documented error codes: a panel can switch on every one it can be sent.
    const CODES: [&str; 6] = [
        "too_large",
        "invalid_json",
        "unknown_action",
        "missing_field",
        "invalid_field",
        "stale",
    ];

    proptest! {
        #[test]
        fn any_sent_at_is_accepted_refused_or_stale_without_overflow(sent in prop_oneof![
            any::<i64>().prop_map(Value::from), any::<u64>().prop_map(Value::from), any::<f64>().prop_map(Value::from),
            (NOW - 1000..NOW + 1000).prop_map(Value::from)]) {
            let got = parse("ready-mo", json!({"request_id": "t", "sent_at": sent}));
            let seconds = sent.as_f64().unwrap_or(f64::NAN).floor();
            match got {
                Ok(_) => prop_assert!(seconds <= (NOW + CLOCK_SKEW) as f64 && seconds >= (NOW - 300) as f64, "{sent}"),
                Err((_, code)) => prop_assert!(code == "invalid_field" || code == "stale", "{sent}: {code}"),
            }
        }

        #[test]
        fn fuzz_command_payloads_get_an_answer_never_a_panic(payload in proptest::collection::vec(any::<u8>(), 0..300),
                                                   action in prop_oneof![Just("register-mo".to_string()), Just("ready-mo".to_string()), "\\PC{0,12}"]) {
            match envelope(&action, &payload, 200) {
                Ok(e) => {
                    if let Err(r) = command(&e, NOW, CHECKS) {
                        prop_assert!(CODES.contains(&r.code), "{}", r.code);
                    }
                }
                Err(r) => prop_assert!(CODES.contains(&r.refusal.code), "{}", r.refusal.code),
            }
        }

        #[test]
        fn any_json_object_of_known_fields_is_planned_or_refused_with_a_code(
            fields in proptest::collection::btree_map(
                prop_oneof![Just("mo"), Just("auth_first"), Just("roll_number"), Just("line"), Just("mid_production"),
                            Just("operator"), Just("sent_at"), Just("leader_id"), Just("current_mo"), Just("next_mo"),
                            Just("new_auth"), Just("authenticity")],
                prop_oneof![any::<i64>().prop_map(Value::from), "[0-9]{0,8}".prop_map(Value::from),
                            "\\PC{0,8}".prop_map(Value::from), any::<bool>().prop_map(Value::from), Just(Value::Null),
                            any::<f64>().prop_map(Value::from)],
                0..8),
            action in prop_oneof![Just("register-mo"), Just("start-production"), Just("changeover"), Just("end-production")]) {
            let mut body: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            body.insert("request_id".into(), json!("p"));
            if let Err((_, code)) = parse(action, Value::Object(body)) {
                prop_assert!(CODES.contains(&code), "{code}");
            }
        }
    }
}
