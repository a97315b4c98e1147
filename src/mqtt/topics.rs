//! Every topic linegate speaks, as a type: `build` and `parse` are inverse (a property test
//! below), and subscriptions come from the same place. Segments that come from names (lines,
//! stations) are percent-encoded so that `/`, `+`, `#` and empty names cannot add, wildcard or
//! empty a level.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topic {
    /// Retained: online/offline, uplink, last syncs. Also the last will.
    Status,
    /// Retained: one MO, by Odoo id.
    Mo(i64),
    /// Retained: what runs on a line and what is ready next.
    Line(String),
    /// In: a panel's command.
    Command { station: String, action: String },
    /// Out: replies to one station's panel.
    Reply { station: String },
    /// Retained: permits expiring soon (SICANTIK).
    PermitsExpiring,
    /// Events: one per permit reminder.
    PermitReminder,
}

impl Topic {
    pub(crate) fn build(&self, prefix: &str) -> String {
        match self {
            Topic::Status => format!("{prefix}/status"),
            Topic::Mo(id) => format!("{prefix}/mo/{id}"),
            Topic::Line(line) => format!("{prefix}/line/{}", encode(line)),
            Topic::Command { station, action } => format!("{prefix}/cmd/{}/{}", encode(station), encode(action)),
            Topic::Reply { station } => format!("{prefix}/reply/{}", encode(station)),
            Topic::PermitsExpiring => format!("{prefix}/permits/expiring"),
            Topic::PermitReminder => format!("{prefix}/permits/reminder"),
        }
    }

    /// The topic for `name` under `prefix`, or None for anything linegate does not speak.
    pub(crate) fn parse(prefix: &str, name: &str) -> Option<Topic> {
        let rest = name.strip_prefix(prefix)?.strip_prefix('/')?;
        let levels: Vec<&str> = rest.split('/').collect();
        match levels.as_slice() {
            ["status"] => Some(Topic::Status),
            ["permits", "expiring"] => Some(Topic::PermitsExpiring),
            ["permits", "reminder"] => Some(Topic::PermitReminder),
            ["mo", id] => id.parse().ok().filter(|_| !id.starts_with('+')).map(Topic::Mo),
            ["line", line] => Some(Topic::Line(decode(line)?)),
            ["cmd", station, action] => Some(Topic::Command {
                station: decode(station)?,
                action: decode(action)?,
            }),
            ["reply", station] => Some(Topic::Reply {
                station: decode(station)?,
            }),
            _ => None,
        }
    }

    /// What the agent subscribes to: every station's commands.
    pub(crate) fn command_filter(prefix: &str) -> String {
        format!("{prefix}/cmd/+/+")
    }
}

/// Whether `topic` is in `station`'s own reply space (its reply topic or a topic below it): the
/// only place an MQTT 5 response topic may make the agent publish. Anywhere else the agent
/// would publish with its own rights on a display's topic or another station's commands.
pub(crate) fn in_reply_space(prefix: &str, station: &str, topic: &str) -> bool {
    let own = Topic::Reply {
        station: station.to_string(),
    }
    .build(prefix);
    let below = topic
        .strip_prefix(&own)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    below && publishable(topic)
}

/// Whether a client may publish to `topic`: not empty, no wildcards, no `$` system topic, no
/// NUL, within MQTT's length.
pub(crate) fn publishable(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 65_535 && !topic.starts_with('$') && !topic.contains(['+', '#', '\0'])
}

/// One topic level from a name: never empty, no `/`, `+`, `#`, `%` or control characters.
pub(crate) fn encode(name: &str) -> String {
    if name.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' | '+' | '#' | '%' | '\0'..='\u{1f}' | '\u{7f}' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`encode`]; None for a level `encode` cannot have made.
pub(crate) fn decode(level: &str) -> Option<String> {
    if level == "%" {
        return Some(String::new());
    }
    if level.is_empty() || level.contains(['+', '#', '/']) {
        return None;
    }
    let text = String::from_utf8(percent_decoded(level)?).ok()?;
    // Only canonical encodings decode, so that build(parse(t)) == t as well.
    (encode(&text) == level).then_some(text)
}

/// The bytes `%XX` escapes stand for, the rest as it is; None for a `%` without two hex digits.
/// (Also how `linegate web` reads a path's segments.)
pub(crate) fn percent_decoded(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PREFIX: &str = "linegate/gw-1";

    #[test]
    fn names_cannot_escape_their_level() {
        let topic = Topic::Line("A/B+#".into()).build(PREFIX);
        assert_eq!(topic, "linegate/gw-1/line/A%2FB%2B%23");
        assert_eq!(Topic::Line(String::new()).build(PREFIX), "linegate/gw-1/line/%");
        assert_eq!(
            Topic::parse(PREFIX, "linegate/gw-1/cmd/ws1/start-production"),
            Some(Topic::Command {
                station: "ws1".into(),
                action: "start-production".into()
            })
        );
        assert_eq!(Topic::parse(PREFIX, "linegate/gw-1/cmd/ws1/start/extra"), None);
        assert_eq!(Topic::parse(PREFIX, "linegate/gw-2/status"), None);
        assert_eq!(Topic::parse(PREFIX, "linegate/gw-1/mo/x"), None);
    }

    #[test]
    fn responses_go_only_to_the_stations_own_replies() {
        let ok = |t: &str| in_reply_space(PREFIX, "ws-1", t);
        assert!(ok("linegate/gw-1/reply/ws-1"));
        assert!(ok("linegate/gw-1/reply/ws-1/panel-7"));
        for refused in [
            "linegate/gw-1/status",
            "linegate/gw-1/line/L1",
            "linegate/gw-1/mo/5",
            "linegate/gw-1/cmd/station-B/register-mo",
            "linegate/gw-1/reply/ws-2",
            "linegate/gw-1/reply/ws-10",
            "linegate/gw-1/reply/ws-1x",
            "linegate/gw-1/reply/ws-1/+",
            "linegate/gw-1/reply/ws-1/#",
            "",
        ] {
            assert!(!ok(refused), "{refused}");
        }
        // A station whose name is encoded has its encoded reply space.
        assert!(in_reply_space(PREFIX, "a/b", "linegate/gw-1/reply/a%2Fb/x"));
        assert!(!in_reply_space(PREFIX, "a/b", "linegate/gw-1/reply/a/b"));
    }

    fn topic() -> impl Strategy<Value = Topic> {
        let name = || "\\PC{0,12}";
        prop_oneof![
            Just(Topic::Status),
            any::<i64>().prop_map(Topic::Mo),
            name().prop_map(Topic::Line),
            (name(), name()).prop_map(|(station, action)| Topic::Command { station, action }),
            name().prop_map(|station| Topic::Reply { station }),
            Just(Topic::PermitsExpiring),
            Just(Topic::PermitReminder),
        ]
    }

    proptest! {
        #[test]
        fn build_and_parse_are_inverse(t in topic()) {
            let built = t.build(PREFIX);
            prop_assert!(!built.contains(['+', '#']), "{built}");
            prop_assert!(!built.contains("//") && !built.ends_with('/'), "{built}");
            prop_assert_eq!(Topic::parse(PREFIX, &built), Some(t));
        }

        /// Any topic a broker could hand over parses to one of ours and builds back the same, or
        /// is not ours.
        #[test]
        fn fuzz_topics_parse_to_ours_or_nothing(name in prop_oneof![
            "\\PC{0,40}".prop_map(|rest| format!("{PREFIX}/{rest}")),
            "[a-z/%+#0-9-]{0,30}".prop_map(|rest| format!("{PREFIX}/{rest}")),
            "\\PC{0,40}",
        ]) {
            if let Some(t) = Topic::parse(PREFIX, &name) {
                prop_assert_eq!(t.build(PREFIX), name);
            }
        }

        #[test]
        fn parse_then_build_gives_the_same_topic(level in "[a-zA-Z0-9%/+#-]{0,10}") {
            let name = format!("{PREFIX}/line/{level}");
            if let Some(t) = Topic::parse(PREFIX, &name) {
                prop_assert_eq!(t.build(PREFIX), name);
            }
        }
    }
}
