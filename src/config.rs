//! The agent's configuration: strict TOML, defaults in code, secrets from the environment, a
//! systemd credential or a private file — never from a file others can read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where the package installs the configuration.
pub const DEFAULT_PATH: &str = "/etc/linegate/linegate.toml";

/// A configuration problem, naming the key an operator has to fix.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
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
}

/// The plant's broker, where displays and panels are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    #[serde(default = "default_mqtt_host")]
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// Names this gateway in topics and the client id; the host name by default.
    pub gateway_id: Option<String>,
    /// `linegate/<gateway_id>` by default.
    pub topic_prefix: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    /// TLS when set: the CA that signed the broker's certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for brokers that require them.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    #[serde(default = "default_keep_alive", deserialize_with = "duration")]
    pub keep_alive: Duration,
    /// Commands older than this when they arrive (by their `sent_at`) are refused as stale.
    #[serde(default = "default_command_max_age", deserialize_with = "duration")]
    pub command_max_age: Duration,
    /// Larger command payloads are refused unread.
    #[serde(default = "default_max_payload")]
    pub max_payload: usize,
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

    pub fn gateway_id(&self) -> String {
        self.gateway_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "gateway".into())
        })
    }

    pub fn topic_prefix(&self) -> String {
        self.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("linegate/{}", self.gateway_id()))
    }

    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("linegate-{}", self.gateway_id()))
    }

    /// The broker password: environment, systemd credential, file, inline value.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
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

    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::new("mqtt.host", "must not be empty"));
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Days a finished or vanished MO stays in the store before it is purged.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/linegate/linegate.db"),
            retention_days: 30,
        }
    }
}

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
    pub url: String,
    pub database: String,
    #[serde(default)]
    pub api: OdooApi,
    pub login: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    /// Which MOs the floor sees, as an Odoo domain in JSON.
    #[serde(default = "default_mo_domain")]
    pub mo_domain: String,
    /// Instance-specific `mrp.production` fields, local name → Odoo field name.
    #[serde(default)]
    pub fields: InstanceFields,
    #[serde(default = "default_sync_interval", deserialize_with = "duration")]
    pub sync_interval: Duration,
    #[serde(default = "default_reconcile_interval", deserialize_with = "duration")]
    pub reconcile_interval: Duration,
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

/// The fields the factory's own Odoo adds to `mrp.production`. Absent ones are not fetched.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFields {
    pub group_worker: Option<String>,
    pub note: Option<String>,
    pub initial_qty_target: Option<String>,
}

impl InstanceFields {
    /// (config key, Odoo field) for every configured field.
    pub fn configured(&self) -> Vec<(&'static str, &str)> {
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
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_page_size() -> u32 {
    200
}

/// The secret the Odoo client authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    ApiKey(String),
    Password(String),
}

impl std::fmt::Debug for Secret {
    // Never let a secret reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::ApiKey(_) => f.write_str("ApiKey(***)"),
            Secret::Password(_) => f.write_str("Password(***)"),
        }
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        match self {
            Secret::ApiKey(s) | Secret::Password(s) => s,
        }
    }
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
            fields: InstanceFields::default(),
            sync_interval: default_sync_interval(),
            reconcile_interval: default_reconcile_interval(),
            request_timeout: default_request_timeout(),
            page_size: default_page_size(),
        }
    }

    /// Replaces the configured secret by a password (tests and the demo use this).
    pub fn set_password(&mut self, login: &str, password: &str) {
        self.login = Some(login.to_string());
        self.api_key = None;
        self.password = Some(password.to_string());
    }

    /// Replaces the configured secret by an API key.
    pub fn set_api_key(&mut self, key: &str) {
        self.api_key = Some(key.to_string());
        self.password = None;
    }

    /// The secret, looked up in order: environment, systemd credential, file, inline value.
    /// An API key wins over a password.
    pub fn secret(&self) -> Result<Secret, ConfigError> {
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

    /// The MO domain, parsed and checked for shape.
    pub fn domain(&self) -> Result<serde_json::Value, ConfigError> {
        let key = "odoo.mo_domain";
        let value: serde_json::Value =
            serde_json::from_str(&self.mo_domain).map_err(|e| ConfigError::new(key, format!("not JSON: {e}")))?;
        let terms = value
            .as_array()
            .ok_or_else(|| ConfigError::new(key, "must be a JSON array"))?;
        let mut needed: i64 = 1;
        for term in terms {
            match term {
                serde_json::Value::String(op) if op == "&" || op == "|" => needed += 1,
                serde_json::Value::String(op) if op == "!" => {}
                serde_json::Value::Array(leaf) if leaf.len() == 3 && leaf[0].is_string() && leaf[1].is_string() => {
                    needed -= 1
                }
                other => return Err(ConfigError::new(key, format!("not a domain term: {other}"))),
            }
        }
        // Consecutive complete expressions are and-ed by Odoo; an operator short of operands is not.
        if !terms.is_empty() && needed > 0 {
            return Err(ConfigError::new(key, "an operator lacks operands"));
        }
        Ok(value)
    }
}

fn lookup(
    env: &str,
    credentials: Option<&Path>,
    credential: &str,
    file: &Option<PathBuf>,
    inline: &Option<String>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    if let Some(value) = std::env::var(env).ok().filter(|v| !v.trim().is_empty()) {
        return Ok(Some(value.trim().to_string()));
    }
    if let Some(path) = credentials.map(|dir| dir.join(credential)).filter(|p| p.exists()) {
        // systemd made this file for us alone; its mode is systemd's business.
        return read_secret(&path, key, false).map(Some);
    }
    if let Some(path) = file {
        return read_secret(path, &format!("{key}_file"), true).map(Some);
    }
    Ok(inline.clone())
}

fn read_secret(path: &Path, key: &str, check_mode: bool) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))?;
    if check_mode {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(ConfigError::new(
                key,
                format!("{} is readable by every user; chmod o-r it", path.display()),
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(ConfigError::new(key, format!("{} is empty", path.display())));
    }
    Ok(secret.to_string())
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("(file)", format!("{}: {e}", path.display())))?;
        Config::parse(&text)
    }

    /// Parses and validates; every error names the key at fault.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let key = e.message().split('`').nth(1).unwrap_or("(syntax)").to_string();
            ConfigError::new(key, e.to_string().trim().replace('\n', " "))
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store.path.as_os_str().is_empty() {
            return Err(ConfigError::new("store.path", "must not be empty"));
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate()?;
        }
        if let Some(odoo) = &self.odoo {
            let url = reqwest::Url::parse(&odoo.url).map_err(|e| ConfigError::new("odoo.url", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::new("odoo.url", "must be http:// or https://"));
            }
            if odoo.database.trim().is_empty() {
                return Err(ConfigError::new("odoo.database", "must not be empty"));
            }
            odoo.domain()?;
            if !(1..=5000).contains(&odoo.page_size) {
                return Err(ConfigError::new("odoo.page_size", "must be between 1 and 5000"));
            }
            if odoo.sync_interval < Duration::from_secs(1) {
                return Err(ConfigError::new("odoo.sync_interval", "must be at least 1s"));
            }
        }
        Ok(())
    }

    /// Resolves the secrets and checks they fit the chosen API. Separate from [`Config::validate`]
    /// because `linegate status` must work without access to them.
    pub fn validate_secrets(&self) -> Result<(), ConfigError> {
        if let Some(mqtt) = &self.mqtt {
            mqtt.password()?;
            if mqtt.password()?.is_some() && mqtt.username.is_none() {
                return Err(ConfigError::new("mqtt.username", "a broker password needs a username"));
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

/// Durations are written as `300`, `90s`, `5m`, `1h` or `2d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(scale)?))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("`{t}` is not a duration like 90s, 5m or 1h"))),
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
        assert_eq!(err.key, "sync_intervall", "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (patch, key) in [
            ("mo_domain = '[[\"state\", \"=\"]]'", "odoo.mo_domain"),
            ("mo_domain = '[\"|\", [\"state\", \"=\", \"done\"]]'", "odoo.mo_domain"),
            ("page_size = 0", "odoo.page_size"),
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
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 minutes"), None);
    }
}
