//! The agent's configuration: strict TOML, defaults in code, every error naming its dotted key.
//! The schema of each source is its own file ([`odoo`], [`mqtt`], [`sicantik`]); secrets come
//! from the environment, a systemd credential or a private file ([`secret`]); TOML errors are
//! turned into dotted keys in [`diagnostics`].

mod diagnostics;
mod domain;
mod language;
mod mqtt;
mod odoo;
mod push;
mod secret;
mod sicantik;
mod units;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use language::Language;
pub use mqtt::MqttConfig;
pub use odoo::{InstanceFields, OdooApi, OdooConfig};
pub use push::{PushConfig, PushFields};
pub(crate) use secret::{read_private, Secret};
pub use sicantik::SicantikConfig;
pub use web::WebConfig;

/// The broker's session for the agent lasts 7 days; answered commands are kept longer.
const MIN_LOG_RETENTION_DAYS: u32 = 8;

/// Where the package installs the configuration.
pub const DEFAULT_PATH: &str = "/etc/linegate/linegate.toml";

/// A configuration problem, naming the key an operator has to fix.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub(crate) key: String,
    pub(crate) message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    pub odoo: Option<OdooConfig>,
    pub mqtt: Option<MqttConfig>,
    pub sicantik: Option<SicantikConfig>,
    /// `linegate web`, the floor's screens (the agent itself ignores it).
    pub web: Option<WebConfig>,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `info`, `debug`, … or a filter like `info,linegate::mqtt=debug`. RUST_LOG overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Days a finished or vanished MO stays in the store before it is purged.
    pub retention_days: u32,
    /// Days answered commands and delivered outbox messages are kept, then pruned (a command
    /// repeated within them gets its first reply again).
    pub log_retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/linegate/linegate.db"),
            retention_days: 30,
            log_retention_days: 30,
        }
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Config {
    /// Reads, parses and validates the file. Inline secrets are refused when others can read
    /// the file: only the file itself knows that, so [`Config::parse`] cannot check it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("(file)", format!("{}: {e}", path.display())))?;
        let config = Config::parse(&text)?;
        config.refuse_inline_secrets(secret::readable_by_others(path).then_some(path))?;
        Ok(config)
    }

    /// Parses and validates; every error names the key at fault.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| diagnostics::toml_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// `readable_by`: the config file, when users other than its owner and group can read it.
    /// A secret written inline in such a file is every user's secret.
    fn refuse_inline_secrets(&self, readable_by: Option<&Path>) -> Result<(), ConfigError> {
        let Some(path) = readable_by else { return Ok(()) };
        let odoo = self.odoo.as_ref();
        let inline = [
            ("odoo.api_key", odoo.is_some_and(|o| o.api_key.is_some())),
            ("odoo.password", odoo.is_some_and(|o| o.password.is_some())),
            (
                "mqtt.password",
                self.mqtt.as_ref().is_some_and(|m| m.password.is_some()),
            ),
            (
                "web.display_password",
                self.web.as_ref().is_some_and(|w| w.display_password.is_some()),
            ),
        ];
        match inline.into_iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(ConfigError::new(
                key,
                format!(
                    "{} is readable by every user: move the secret to {key}_file (or the environment), \
                     or chmod o-r the file",
                    path.display()
                ),
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.store.path.as_os_str().is_empty() {
            return Err(ConfigError::new("store.path", "must not be empty"));
        }
        // A command the broker redelivers (it keeps the agent's session a week) or a panel
        // repeats must still find its first reply, or it would be applied again.
        if self.store.log_retention_days < MIN_LOG_RETENTION_DAYS {
            return Err(ConfigError::new(
                "store.log_retention_days",
                format!("must be at least {MIN_LOG_RETENTION_DAYS}: the broker keeps the agent's session 7 days"),
            ));
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate()?;
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                format!("{:?} is not a level like info or debug", self.log.level),
            ));
        }
        if let Some(sicantik) = &self.sicantik {
            sicantik.validate()?;
        }
        if let Some(odoo) = &self.odoo {
            odoo.validate()?;
        }
        if let Some(web) = &self.web {
            web.validate()?;
            if self.mqtt.is_none() {
                return Err(ConfigError::new(
                    "web",
                    "the screens reach the agent through the broker: [web] needs [mqtt]",
                ));
            }
        }
        Ok(())
    }

    /// Checks there is something to do: without Odoo, a broker or SICANTIK the agent would only
    /// sit on its store.
    pub(crate) fn validate_work(&self) -> Result<(), ConfigError> {
        if self.odoo.is_none() && self.mqtt.is_none() && self.sicantik.is_none() {
            return Err(ConfigError::new(
                "(file)",
                "nothing to do: there is no [odoo], [mqtt] or [sicantik] section",
            ));
        }
        Ok(())
    }

    /// Resolves the secrets and checks they fit the chosen API. Separate from [`Config::validate`]
    /// because `linegate status` must work without access to them.
    pub(crate) fn validate_secrets(&self) -> Result<(), ConfigError> {
        if let Some(mqtt) = &self.mqtt {
            mqtt.password()?;
            if mqtt.password()?.is_some() && mqtt.username.is_none() {
                return Err(ConfigError::new("mqtt.username", "a broker password needs a username"));
            }
        }
        if let Some(web) = &self.web {
            if web.display_password()?.is_some() && web.display_username.is_none() {
                return Err(ConfigError::new(
                    "web.display_username",
                    "a display password needs a username",
                ));
            }
        }
        if let Some(odoo) = &self.odoo {
            let secret = odoo.secret()?;
            if odoo.api == OdooApi::Json2 && !matches!(secret, Secret::ApiKey(_)) {
                return Err(ConfigError::new("odoo.api", "json2 needs an API key"));
            }
            if odoo.api == OdooApi::Jsonrpc && odoo.login.is_none() {
                return Err(ConfigError::new(
                    "odoo.login",
                    "/jsonrpc needs the login of the key's user",
                ));
            }
            if matches!(secret, Secret::Password(_)) && odoo.login.is_none() {
                return Err(ConfigError::new("odoo.login", "a password needs a login"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let config = Config::parse(text)?;
        config.validate_secrets()?;
        Ok(config)
    }

    const MINIMAL: &str = r#"
        [store]
        path = "/tmp/x.db"
        [odoo]
        url = "http://127.0.0.1:8069"
        database = "mes"
        api_key = "k"
    "#;

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(MINIMAL).unwrap();
        let odoo = config.odoo.unwrap();
        assert_eq!(odoo.sync_interval, Duration::from_secs(300));
        assert_eq!(odoo.page_size, 200);
        assert_eq!(odoo.api, OdooApi::Auto);
        assert_eq!(odoo.secret().unwrap(), Secret::ApiKey("k".into()));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(&format!("{MINIMAL}\nsync_intervall = \"5m\"")).unwrap_err();
        assert_eq!(err.key, "odoo.sync_intervall", "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (patch, key) in [
            ("mo_domain = '[[\"state\", \"=\"]]'", "odoo.mo_domain"),
            ("mo_domain = '[\"|\", [\"state\", \"=\", \"done\"]]'", "odoo.mo_domain"),
            ("page_size = 0", "odoo.page_size"),
            ("page_size = \"abc\"", "odoo.page_size"),
            ("page_size = -1", "odoo.page_size"),
            ("sync_interval = \"often\"", "odoo.sync_interval"),
            ("request_timeout = \"0s\"", "odoo.request_timeout"),
            ("[odoo.fields]\nfoo = \"x_foo\"", "odoo.fields.foo"),
            ("fields.note = 3", "odoo.fields.note"),
            ("[mqtt]\nport = \"high\"", "mqtt.port"),
            (
                "api = \"json2\"\npassword = \"p\"\napi_key_file = \"/nonexistent\"",
                "odoo.api_key_file",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}\n{patch}")).unwrap_err();
            assert_eq!(err.key, key, "{patch}: {err}");
        }
        let err = parse(&MINIMAL.replace("8069\"", "8069\"\nsync_interval = \"5 minutes\"")).unwrap_err();
        assert!(err.to_string().contains("5 minutes"), "{err}");
        assert_eq!(err.key, "odoo.sync_interval");
    }

    #[test]
    fn keys_of_other_tables_and_missing_keys_are_named_with_their_table() {
        // Given a typo in [store], a missing required key, an unknown table
        for (text, key) in [
            (MINIMAL.replace("path = ", "pathh = "), "store.pathh"),
            (MINIMAL.replace("url = \"http://127.0.0.1:8069\"", ""), "odoo.url"),
            (format!("{MINIMAL}\n[stor]\npath = \"x\""), "stor"),
            (
                format!("{MINIMAL}\nmo_domain = [\n  \"state\",\n  1]"),
                "odoo.mo_domain",
            ),
        ] {
            // When parsed, then the error names the dotted key and its line
            let err = parse(&text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
            assert!(err.message.starts_with("line "), "{err}");
        }
    }

    #[test]
    fn inline_secrets_are_refused_in_a_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let mqtt = "[mqtt]\nusername = \"gw\"\npassword = \"p\"\n";
        let with_key_file = MINIMAL.replace("api_key = \"k\"", "api_key_file = \"/etc/linegate/key\"");
        for (text, key) in [
            (MINIMAL.to_string(), "odoo.api_key"),
            (
                MINIMAL.replace("api_key = \"k\"", "login = \"u\"\npassword = \"p\""),
                "odoo.password",
            ),
            (format!("{with_key_file}\n{mqtt}"), "mqtt.password"),
        ] {
            // Given a config file with an inline secret, readable by every user
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("linegate.toml");
            std::fs::write(&file, &text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            // When it is loaded, then the secret's key is named
            let err = Config::load(&file).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.message.contains("readable by every user"), "{err}");
            // And once only its owner and group can read it, it loads
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
            Config::load(&file).unwrap();
        }
    }

    #[test]
    fn world_readable_secret_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "secret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = MINIMAL.replace("api_key = \"k\"", &format!("api_key_file = {:?}", file));
        let err = parse(&text).unwrap_err();
        assert_eq!(err.key, "odoo.api_key_file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let config = parse(&text).unwrap();
        assert_eq!(config.odoo.unwrap().secret().unwrap(), Secret::ApiKey("secret".into()));
    }

    #[test]
    fn a_log_level_that_is_no_filter_is_named() {
        let err = parse(&format!("{MINIMAL}\n[log]\nlevel = \"linegate=loudest\"")).unwrap_err();
        assert_eq!(err.key, "log.level", "{err}");
        let config = parse(&format!("{MINIMAL}\n[log]\nlevel = \"info,linegate::mqtt=debug\"")).unwrap();
        assert_eq!(config.log.level, "info,linegate::mqtt=debug");
    }
}
