//! `[odoo.push]`: what Odoo is told of the floor's results, and how much may wait for it.

use std::time::Duration;

use serde::Deserialize;

use super::units::duration;
use super::{ConfigError, Language};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Whether results go back to Odoo at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A note in the MO's chatter for every result (who, where, codes, roll, produced, loss,
    /// the gateway's times): what the floor did, where Odoo users look.
    #[serde(default = "yes")]
    pub chatter: bool,
    /// Operator values written into the instance's own `mrp.production` fields.
    #[serde(default)]
    pub fields: PushFields,
    /// The MO's own progress in Odoo: `action_start` when the floor starts it; on the end,
    /// the quantity produced, then `button_mark_done` (a backorder for what was not made).
    #[serde(default)]
    pub progress: bool,
    /// A time-tracking entry on the MO's work order with the floor's real start and end, so
    /// that Odoo's own reports show floor times (MOs without work orders have none).
    #[serde(default)]
    pub time_tracking: bool,
    /// Results waiting for Odoo, at most; past it the oldest is dropped (logged, counted).
    #[serde(default = "default_max_pending")]
    pub max_pending: u32,
    /// A result still waiting after this long is dropped (logged, counted).
    #[serde(default = "default_max_age", deserialize_with = "duration")]
    pub max_age: Duration,
    /// A call whose answer was never heard (a timeout, a connection lost mid-call, the agent
    /// killed) may still be running in Odoo, to commit later: Odoo is asked whether it has it
    /// only after this long. Above Odoo's `limit_time_real` (120 s unless configured).
    #[serde(default = "default_settle_time", deserialize_with = "duration")]
    pub settle_time: Duration,
    /// The language of the labels `linegate odoo-setup` gives the fields and the MO form's page.
    #[serde(default = "default_language")]
    pub language: Language,
}

/// Operator value → the instance's `mrp.production` field it is written to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFields {
    pub auth_first: Option<String>,
    pub auth_last: Option<String>,
    pub roll_number: Option<String>,
    pub leader_id: Option<String>,
    pub line: Option<String>,
    pub operator: Option<String>,
    pub date_start: Option<String>,
    pub date_finished: Option<String>,
    pub produced: Option<String>,
}

impl PushFields {
    /// (config key, Odoo field) for every mapped value.
    pub(crate) fn mapped(&self) -> Vec<(&'static str, &str)> {
        [
            ("auth_first", &self.auth_first),
            ("auth_last", &self.auth_last),
            ("roll_number", &self.roll_number),
            ("leader_id", &self.leader_id),
            ("line", &self.line),
            ("operator", &self.operator),
            ("date_start", &self.date_start),
            ("date_finished", &self.date_finished),
            ("produced", &self.produced),
        ]
        .into_iter()
        .filter_map(|(key, field)| field.as_deref().map(|f| (key, f)))
        .collect()
    }
}

fn yes() -> bool {
    true
}
/// Odoo's labels are English unless the plant says otherwise.
fn default_language() -> Language {
    Language::En
}

fn default_max_pending() -> u32 {
    100_000
}
fn default_max_age() -> Duration {
    Duration::from_secs(90 * 86_400)
}
fn default_settle_time() -> Duration {
    Duration::from_secs(150)
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            enabled: true,
            chatter: true,
            fields: PushFields::default(),
            progress: false,
            time_tracking: false,
            max_pending: default_max_pending(),
            max_age: default_max_age(),
            settle_time: default_settle_time(),
            language: default_language(),
        }
    }
}

impl PushConfig {
    /// Whether there is anything to tell Odoo.
    pub(crate) fn active(&self) -> bool {
        self.enabled && (self.chatter || !self.fields.mapped().is_empty() || self.progress || self.time_tracking)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_pending == 0 {
            return Err(ConfigError::new("odoo.push.max_pending", "must be at least 1"));
        }
        if self.settle_time > Duration::from_secs(86_400) {
            return Err(ConfigError::new("odoo.push.settle_time", "must be at most 1d"));
        }
        if self.max_age < Duration::from_secs(86_400) {
            return Err(ConfigError::new("odoo.push.max_age", "must be at least 1d"));
        }
        for (key, field) in self.fields.mapped() {
            // Odoo field names: what `fields_get` could ever list.
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ConfigError::new(
                    format!("odoo.push.fields.{key}"),
                    "must be an Odoo field name (letters, digits, _)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_en_or_id_and_another_is_named_by_its_key() {
        let config = |push: &str| {
            let text = format!("[odoo]\nurl = \"http://x\"\ndatabase = \"mes\"\n[odoo.push]\n{push}");
            crate::config::Config::parse(&text).map(|c| c.odoo.unwrap().push.language)
        };
        assert_eq!(config("").unwrap(), Language::En);
        assert_eq!(config("language = \"id\"").unwrap(), Language::Id);
        let err = config("language = \"de\"").unwrap_err();
        assert_eq!(err.key, "odoo.push.language", "{err}");
    }
}
