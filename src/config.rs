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
    pub sicantik: Option<SicantikConfig>,
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

/// The regency's SICANTIK backoffice, where permits and their expiry dates are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SicantikConfig {
    /// The API base, e.g. `https://perizinan.example.go.id/backoffice/api`.
    pub url: String,
    /// Requests per second, all endpoints together (the server has no limit; this is courtesy).
    #[serde(default = "default_rate_limit")]
    pub rate_limit: f64,
    /// Requests in flight at once, so a slow server still gets `rate_limit` requests a second.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_sicantik_page_size")]
    pub page_size: u32,
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// How often new permits are listed (from the newest, until a page has nothing new).
    #[serde(default = "default_list_interval", deserialize_with = "duration")]
    pub list_interval: Duration,
    /// How often expiry dates are fetched for permits that lack one.
    #[serde(default = "default_list_interval", deserialize_with = "duration")]
    pub expiry_interval: Duration,
    /// How often the whole listing is read, to catch permits missed when rows shifted.
    #[serde(default = "default_full_listing_interval", deserialize_with = "duration")]
    pub full_listing_interval: Duration,
    /// Days before expiry at which a reminder goes out, once per permit and expiry date.
    #[serde(default = "default_reminder_days")]
    pub reminder_days: Vec<u32>,
    /// The regency's zone: the date that decides expiry. Asia/Jakarta, Asia/Makassar,
    /// Asia/Jayapura, or an offset like +07:00.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Optional: reminders are also POSTed here (a WhatsApp gateway, say), from a durable outbox.
    pub webhook_url: Option<String>,
}

fn default_rate_limit() -> f64 {
    10.0
}
fn default_concurrency() -> usize {
    // Enough to keep 10 requests a second going against a server that takes 1.6 s to answer;
    // the rate limiter, not this, decides how fast requests go.
    16
}
fn default_sicantik_page_size() -> u32 {
    100
}
fn default_list_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_full_listing_interval() -> Duration {
    Duration::from_secs(86_400)
}
fn default_reminder_days() -> Vec<u32> {
    vec![90, 60, 30, 7]
}
fn default_timezone() -> String {
    "Asia/Jakarta".into()
}

impl SicantikConfig {
    pub fn new(url: impl Into<String>) -> SicantikConfig {
        SicantikConfig {
            url: url.into(),
            rate_limit: default_rate_limit(),
            concurrency: default_concurrency(),
            page_size: default_sicantik_page_size(),
            request_timeout: default_request_timeout(),
            list_interval: default_list_interval(),
            expiry_interval: default_list_interval(),
            full_listing_interval: default_full_listing_interval(),
            reminder_days: default_reminder_days(),
            timezone: default_timezone(),
            webhook_url: None,
        }
    }

    /// Seconds east of UTC of the configured zone.
    pub fn zone_offset(&self) -> Result<i64, ConfigError> {
        crate::clock::zone_offset(&self.timezone).ok_or_else(|| {
            ConfigError::new(
                "sicantik.timezone",
                format!(
                    "{:?}: use Asia/Jakarta, Asia/Makassar, Asia/Jayapura or +07:00",
                    self.timezone
                ),
            )
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| ConfigError::new("sicantik.url", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new("sicantik.url", "must be http:// or https://"));
        }
        if !(self.rate_limit > 0.0 && self.rate_limit <= 1000.0) {
            return Err(ConfigError::new(
                "sicantik.rate_limit",
                "must be between 0 and 1000 requests a second",
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(ConfigError::new("sicantik.concurrency", "must be between 1 and 64"));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(ConfigError::new("sicantik.page_size", "must be between 1 and 1000"));
        }
        if self.request_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new("sicantik.request_timeout", "must be at least 1s"));
        }
        if self.reminder_days.is_empty() || self.reminder_days.iter().any(|d| *d == 0 || *d > 3650) {
            return Err(ConfigError::new(
                "sicantik.reminder_days",
                "days between 1 and 3650, at least one",
            ));
        }
        if let Some(hook) = &self.webhook_url {
            reqwest::Url::parse(hook).map_err(|e| ConfigError::new("sicantik.webhook_url", e.to_string()))?;
        }
        self.zone_offset().map(|_| ())
    }
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
        check_domain_arity(terms).map_err(|why| ConfigError::new(key, why))?;
        Ok(value)
    }
}

/// Odoo's `normalize_domain`, as a check: the count of expressions still expected, where a
/// complete expression followed by more terms gets an implicit `&` in front (so
/// `[A, "|", B, C]` is `A & (B | C)`), and any operator still short of operands at the end
/// makes the domain "syntactically not correct". Checking it here turns what would be an
/// Odoo error on every sync into a configuration error at start.
fn check_domain_arity(terms: &[serde_json::Value]) -> Result<(), String> {
    let mut expected: u32 = 1;
    for term in terms {
        if expected == 0 {
            expected = 1;
        }
        match term {
            serde_json::Value::String(op) if op == "&" || op == "|" => expected += 1,
            serde_json::Value::String(op) if op == "!" => {}
            serde_json::Value::Array(leaf) if is_leaf(leaf) => expected -= 1,
            other => return Err(format!("not a domain term: {other}")),
        }
    }
    if !terms.is_empty() && expected > 0 {
        return Err("an operator lacks operands".into());
    }
    Ok(())
}

/// `[field, operator, value]`, or Odoo's TRUE_LEAF `[1, "=", 1]` / FALSE_LEAF `[0, "=", 1]`.
fn is_leaf(leaf: &[serde_json::Value]) -> bool {
    let constant = |v: &serde_json::Value| *v == 0 || *v == 1;
    leaf.len() == 3 && (leaf[0].is_string() || constant(&leaf[0])) && leaf[1].is_string()
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
    /// Reads, parses and validates the file. Inline secrets are refused when others can read
    /// the file: only the file itself knows that, so [`Config::parse`] cannot check it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("(file)", format!("{}: {e}", path.display())))?;
        let config = Config::parse(&text)?;
        config.refuse_inline_secrets(readable_by_others(path).then_some(path))?;
        Ok(config)
    }

    /// Parses and validates; every error names the key at fault.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
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

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.store.path.as_os_str().is_empty() {
            return Err(ConfigError::new("store.path", "must not be empty"));
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
            // Below a second every request would time out; reconcile_interval may be 0 ("every run").
            if odoo.request_timeout < Duration::from_secs(1) {
                return Err(ConfigError::new("odoo.request_timeout", "must be at least 1s"));
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

/// True when the file's mode lets users outside its owner and group read it.
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// A TOML or deserialization error, named by the dotted key it is about. serde's messages name
/// only the last part of a key (`unknown field \`foo\``) or none at all (`invalid type: string
/// "abc", expected u32`), so the key is found from where the error points in the document.
fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        let key = quoted_name(&message).unwrap_or("(syntax)").to_string();
        return ConfigError::new(key, message);
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let key = match key_at(text, span.start) {
        // A table is named when one of its keys is missing: add that key.
        Some((path, true)) if message.starts_with("missing field") => match quoted_name(&message) {
            Some(field) => format!("{path}.{field}"),
            None => path,
        },
        Some((path, _)) => path,
        None => quoted_name(&message).unwrap_or("(syntax)").to_string(),
    };
    ConfigError::new(key, format!("line {line}: {message}"))
}

/// The first `name` quoted in backticks in a serde message.
fn quoted_name(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// The dotted path of the key or value at byte `offset` of `text`, and whether it is a table.
fn key_at(text: &str, offset: usize) -> Option<(String, bool)> {
    let (document, _) = toml::de::DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    let found = locate(document.get_ref(), offset, &mut path)?;
    Some((path.join("."), found))
}

/// Walks `table` for the entry whose key or value covers `offset`, leaving its path in `path`.
/// Nested tables are searched first: a `[table]`'s span is its header, away from its keys.
fn locate(table: &toml::de::DeTable, offset: usize, path: &mut Vec<String>) -> Option<bool> {
    use toml::de::DeValue;
    let covers = |span: std::ops::Range<usize>| span.contains(&offset);
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        if covers(key.span()) {
            return Some(matches!(value.get_ref(), DeValue::Table(_)));
        }
        let children: Vec<&toml::de::DeTable> = match value.get_ref() {
            DeValue::Table(t) => vec![t],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::Table(t) => Some(t),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        };
        for child in children {
            if let Some(is_table) = locate(child, offset, path) {
                return Some(is_table);
            }
        }
        if covers(value.span()) {
            return Some(matches!(value.get_ref(), DeValue::Table(_)));
        }
        path.pop();
    }
    None
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
