//! `[mqtt]`: the plant's broker, this gateway's place on it, and the command layer's limits.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secret::lookup;
use super::units::duration;
use super::ConfigError;

/// The plant's broker, where displays and panels are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default = "default_mqtt_host")]
    pub(crate) host: String,
    #[serde(default = "default_mqtt_port")]
    pub(crate) port: u16,
    /// Names this gateway in topics and the client id; the host name by default.
    pub(crate) gateway_id: Option<String>,
    /// `linegate/<gateway_id>` by default.
    pub(crate) topic_prefix: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) username: Option<String>,
    pub(super) password: Option<String>,
    password_file: Option<PathBuf>,
    /// TLS when set: the CA that signed the broker's certificate.
    pub(crate) ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require them.
    pub(crate) client_cert_file: Option<PathBuf>,
    pub(crate) client_key_file: Option<PathBuf>,
    #[serde(default = "default_keep_alive", deserialize_with = "duration")]
    pub(crate) keep_alive: Duration,
    /// Commands older than this when they arrive (by their `sent_at`) are refused as stale.
    #[serde(default = "default_command_max_age", deserialize_with = "duration")]
    pub(crate) command_max_age: Duration,
    /// Larger command payloads are refused unread.
    #[serde(default = "default_max_payload")]
    pub(crate) max_payload: usize,
}

fn default_mqtt_host() -> String {
    "127.0.0.1".into()
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_command_max_age() -> Duration {
    Duration::from_secs(300)
}
fn default_max_payload() -> usize {
    16 * 1024
}

impl MqttConfig {
    /// A broker on `host:port` with every other setting at its default.
    pub fn new(host: impl Into<String>, port: u16, gateway_id: impl Into<String>) -> MqttConfig {
        MqttConfig {
            host: host.into(),
            port,
            gateway_id: Some(gateway_id.into()),
            topic_prefix: None,
            client_id: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: default_keep_alive(),
            command_max_age: default_command_max_age(),
            max_payload: default_max_payload(),
        }
    }

    /// Logs in as `user` with `password` (tests and the demo use this; a gateway's password
    /// comes from a file, the environment or a credential).
    pub fn set_login(&mut self, user: &str, password: &str) {
        self.username = Some(user.to_string());
        self.password = Some(password.to_string());
    }

    pub(crate) fn gateway_id(&self) -> String {
        self.gateway_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "gateway".into())
        })
    }

    pub(crate) fn topic_prefix(&self) -> String {
        self.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("linegate/{}", self.gateway_id()))
    }

    pub(crate) fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("linegate-{}", self.gateway_id()))
    }

    /// The broker password: environment, systemd credential, file, inline value.
    pub(crate) fn password(&self) -> Result<Option<String>, ConfigError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        lookup(
            "LINEGATE_MQTT_PASSWORD",
            credentials.as_deref(),
            "mqtt_password",
            &self.password_file,
            &self.password,
            "mqtt.password",
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::new("mqtt.host", "must not be empty"));
        }
        // It names the gateway's topics, its client id and its notes in Odoo (outbox/odoo/owner.rs
        // finds them again as written): nothing a topic, a broker or Odoo's HTML would change.
        let gateway = self.gateway_id();
        let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if !(1..=64).contains(&gateway.len()) || !gateway.bytes().all(plain) {
            return Err(ConfigError::new(
                "mqtt.gateway_id",
                format!(
                    "{:?}: 1 to 64 letters, digits, '.', '_' or '-' (the host name is the default)",
                    gateway.chars().take(80).collect::<String>()
                ),
            ));
        }
        let prefix = self.topic_prefix();
        if prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/') || prefix.starts_with('/') {
            return Err(ConfigError::new(
                "mqtt.topic_prefix",
                "must be a topic without wildcards or a trailing /",
            ));
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err(ConfigError::new(
                "mqtt.client_key_file",
                "client_cert_file and client_key_file go together",
            ));
        }
        if self.client_cert_file.is_some() && self.ca_file.is_none() {
            return Err(ConfigError::new(
                "mqtt.ca_file",
                "a client certificate needs TLS: set ca_file",
            ));
        }
        Ok(())
    }
}
