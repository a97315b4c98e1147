//! `[odoo]`: the server, its secret, which MOs the floor sees (an Odoo domain, checked here
//! as Odoo would), instance fields, and the sync's pace.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secret::{lookup, Secret};
use super::units::{duration, size};
use super::{default_request_timeout, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OdooApi {
    /// JSON-2 on Odoo 19 and later when an API key is configured, `/jsonrpc` otherwise.
    #[default]
    Auto,
    Json2,
    Jsonrpc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdooConfig {
    pub(crate) url: String,
    pub(crate) database: String,
    #[serde(default)]
    pub api: OdooApi,
    pub login: Option<String>,
    pub(super) api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    pub(super) password: Option<String>,
    password_file: Option<PathBuf>,
    /// Which MOs the floor sees, as an Odoo domain in JSON.
    #[serde(default = "default_mo_domain")]
    pub(crate) mo_domain: String,
    /// The site's own `mrp.production` fields that name a line group, beside the standard
    /// ones (`check-config` warns when the domain restricts by none of them).
    #[serde(default)]
    pub(crate) line_group_fields: Vec<String>,
    /// Instance-specific `mrp.production` fields, local name → Odoo field name.
    #[serde(default)]
    pub fields: InstanceFields,
    #[serde(default = "default_sync_interval", deserialize_with = "duration")]
    pub sync_interval: Duration,
    #[serde(default = "default_reconcile_interval", deserialize_with = "duration")]
    pub reconcile_interval: Duration,
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Longer answers are refused unread (memory stays bounded whatever the server, a proxy
    /// or a bug sends).
    #[serde(default = "default_max_response", deserialize_with = "size")]
    pub max_response: usize,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// What Odoo is told of the floor's results.
    #[serde(default)]
    pub push: super::PushConfig,
}

/// The fields the factory's own Odoo adds to `mrp.production`. Absent ones are not fetched.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFields {
    pub group_worker: Option<String>,
    pub note: Option<String>,
    pub(crate) initial_qty_target: Option<String>,
}

impl InstanceFields {
    /// (config key, Odoo field) for every configured field.
    pub(crate) fn configured(&self) -> Vec<(&'static str, &str)> {
        [
            ("group_worker", &self.group_worker),
            ("note", &self.note),
            ("initial_qty_target", &self.initial_qty_target),
        ]
        .into_iter()
        .filter_map(|(key, field)| field.as_deref().map(|f| (key, f)))
        .collect()
    }
}

fn default_mo_domain() -> String {
    r#"[["state", "in", ["confirmed", "progress", "to_close"]]]"#.to_string()
}
fn default_sync_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_reconcile_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_page_size() -> u32 {
    200
}

fn default_max_response() -> usize {
    8 << 20
}

impl OdooConfig {
    /// A config for the given server and key, with every other setting at its default.
    pub fn with_api_key(url: impl Into<String>, database: impl Into<String>, key: impl Into<String>) -> Self {
        OdooConfig {
            url: url.into(),
            database: database.into(),
            api: OdooApi::Auto,
            login: None,
            api_key: Some(key.into()),
            api_key_file: None,
            password: None,
            password_file: None,
            mo_domain: default_mo_domain(),
            line_group_fields: Vec::new(),
            fields: InstanceFields::default(),
            sync_interval: default_sync_interval(),
            reconcile_interval: default_reconcile_interval(),
            request_timeout: default_request_timeout(),
            max_response: default_max_response(),
            page_size: default_page_size(),
            push: super::PushConfig::default(),
        }
    }

    /// Replaces the configured secret by a password (tests and the demo use this).
    pub fn set_password(&mut self, login: &str, password: &str) {
        self.login = Some(login.to_string());
        self.api_key = None;
        self.password = Some(password.to_string());
    }

    /// The secret, looked up in order: environment, systemd credential, file, inline value.
    /// An API key wins over a password.
    pub(crate) fn secret(&self) -> Result<Secret, ConfigError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        if let Some(key) = lookup(
            "LINEGATE_ODOO_API_KEY",
            credentials.as_deref(),
            "odoo_api_key",
            &self.api_key_file,
            &self.api_key,
            "odoo.api_key",
        )? {
            return Ok(Secret::ApiKey(key));
        }
        if let Some(pw) = lookup(
            "LINEGATE_ODOO_PASSWORD",
            credentials.as_deref(),
            "odoo_password",
            &self.password_file,
            &self.password,
            "odoo.password",
        )? {
            return Ok(Secret::Password(pw));
        }
        Err(ConfigError::new(
            "odoo.api_key",
            "no Odoo secret: set api_key_file (or api_key), or login with password_file, or LINEGATE_ODOO_API_KEY",
        ))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| ConfigError::new("odoo.url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new("odoo.url", "must be http:// or https://"));
        }
        if self.database.trim().is_empty() {
            return Err(ConfigError::new("odoo.database", "must not be empty"));
        }
        self.domain()?;
        if self.line_group_fields.len() > 16 {
            return Err(ConfigError::new("odoo.line_group_fields", "at most 16 fields"));
        }
        let field_name = |f: &String| {
            (1..=64).contains(&f.len())
                && f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if let Some(bad) = self.line_group_fields.iter().find(|f| !field_name(f)) {
            return Err(ConfigError::new(
                "odoo.line_group_fields",
                format!("{bad:?} is not an Odoo field name (lowercase letters, digits and _)"),
            ));
        }
        if !(1..=5000).contains(&self.page_size) {
            return Err(ConfigError::new("odoo.page_size", "must be between 1 and 5000"));
        }
        if self.sync_interval < Duration::from_secs(1) {
            return Err(ConfigError::new("odoo.sync_interval", "must be at least 1s"));
        }
        // Below a second every request would time out; reconcile_interval may be 0 ("every run").
        if self.request_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new("odoo.request_timeout", "must be at least 1s"));
        }
        if self.max_response < 64 << 10 {
            return Err(ConfigError::new("odoo.max_response", "must be at least 64KiB"));
        }
        self.push.validate()
    }

    /// The MO domain, parsed and checked for shape.
    pub(crate) fn domain(&self) -> Result<serde_json::Value, ConfigError> {
        let key = "odoo.mo_domain";
        let value: serde_json::Value =
            serde_json::from_str(&self.mo_domain).map_err(|e| ConfigError::new(key, format!("not JSON: {e}")))?;
        let terms = value
            .as_array()
            .ok_or_else(|| ConfigError::new(key, "must be a JSON array"))?;
        super::domain::check_arity(terms).map_err(|why| ConfigError::new(key, why))?;
        Ok(value)
    }

    /// The terms of the MO domain that keep this gateway to its own line group, as JSON; none
    /// when some MO it selects could be another gateway's too (two such gateways would both
    /// hold it, and both report on it).
    pub(crate) fn line_group_terms(&self) -> Vec<String> {
        let Ok(domain) = self.domain() else { return Vec::new() };
        let terms = domain.as_array().map(Vec::as_slice).unwrap_or_default();
        super::domain::line_group_leaves(terms, &self.line_group_fields)
            .into_iter()
            .map(|leaf| leaf.to_string())
            .collect()
    }

    /// The fields [`OdooConfig::line_group_terms`] counts, for a message.
    pub(crate) fn line_group_field_names(&self) -> String {
        let mut names: Vec<&str> = super::domain::LINE_GROUP_FIELDS.to_vec();
        names.extend(self.line_group_fields.iter().map(String::as_str));
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(text: &str) -> Result<serde_json::Value, ConfigError> {
        let mut odoo = OdooConfig::with_api_key("http://x", "mes", "k");
        odoo.mo_domain = text.to_string();
        odoo.domain()
    }

    #[test]
    fn domains_odoo_normalizes_are_accepted() {
        let (a, b, c) = (r#"["state","=","done"]"#, r#"["id",">",1]"#, r#"["name","ilike","MO"]"#);
        for text in [
            "[]".to_string(),
            format!("[{a}]"),
            format!("[{a}, {b}]"),
            format!(r#"["|", {a}, {b}]"#),
            format!(r#"[{a}, "|", {b}, {c}]"#),
            format!(r#"["!", {a}]"#),
            format!(r#"[{a}, "!", {b}]"#),
            format!(r#"["&", "|", {a}, {b}, "!", {c}]"#),
            r#"[[1, "=", 1]]"#.to_string(),
        ] {
            assert!(domain(&text).is_ok(), "{text}: {:?}", domain(&text));
        }
    }

    #[test]
    fn domains_with_operators_short_of_operands_are_refused() {
        let (a, b) = (r#"["state","=","done"]"#, r#"["id",">",1]"#);
        for text in [
            format!(r#"["|", {a}]"#),
            format!(r#"[{a}, "|", {b}]"#),
            format!(r#"[{a}, "!"]"#),
            format!(r#"[{a}, "&"]"#),
            r#"["!"]"#.to_string(),
            format!(r#"["|", "&", {a}, {b}]"#),
            format!(r#"[{a}, "xor", {b}]"#),
            r#"{"state": "done"}"#.to_string(),
        ] {
            let err = domain(&text).unwrap_err();
            assert_eq!(err.key, "odoo.mo_domain", "{text}");
        }
    }
}
