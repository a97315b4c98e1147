//! `[web]`: `linegate web`, the floor's screens — where it listens, in which language, which
//! stations it serves panels for (and their lines), and the broker account it reads the
//! displays' state with. It reaches the broker with the `[mqtt]` keys (host, port, TLS), but
//! never with `[mqtt]`'s login: that is the agent's, which may act for every station.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::secret::lookup;
use super::{ConfigError, Language};

/// Stations one server serves at most.
const MAX_STATIONS: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port of the floor's browsers' listener.
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
    /// The screens' language until a user picks the other one on the page.
    #[serde(default = "default_language")]
    pub(crate) language: Language,
    /// Each workstation's panel, by station name (its broker account), and the line it works
    /// on.
    #[serde(default)]
    pub(crate) stations: BTreeMap<String, String>,
    /// The broker account the screens read state with: a display's, which may read and never
    /// command (the shipped ACL's `display`). None: no login (a broker that allows anonymous
    /// clients).
    pub(crate) display_username: Option<String>,
    pub(super) display_password: Option<String>,
    display_password_file: Option<PathBuf>,
    /// TLS on the listener: both or neither, PEM.
    pub(crate) tls_cert_file: Option<PathBuf>,
    pub(crate) tls_key_file: Option<PathBuf>,
    /// How long a panel stays signed in on one device.
    #[serde(default = "default_session_days")]
    pub(crate) session_days: u32,
    /// Where the key that seals the panels' sessions is kept (so that they outlive a restart).
    #[serde(default = "default_state_dir")]
    pub(crate) state_dir: PathBuf,
    /// Browsers' connections at once (an open page holds one or two).
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: usize,
}

/// The floor reads Bahasa Indonesia.
fn default_language() -> Language {
    Language::Id
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_session_days() -> u32 {
    30
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/linegate-web")
}
fn default_max_connections() -> usize {
    64
}

/// A station's name: it is a broker account, a topic level and a part of the panel's address.
fn plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl WebConfig {
    /// Listening on `listen`, serving `stations`, everything else at its default.
    pub fn new(listen: SocketAddr, state_dir: PathBuf) -> WebConfig {
        WebConfig {
            listen,
            language: default_language(),
            stations: BTreeMap::new(),
            display_username: None,
            display_password: None,
            display_password_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            session_days: default_session_days(),
            state_dir,
            max_connections: default_max_connections(),
        }
    }

    /// Listens on `addr` instead.
    pub fn set_listen(&mut self, addr: SocketAddr) {
        self.listen = addr;
    }

    /// Serves a panel for `station`, which works on `line`.
    pub fn add_station(&mut self, station: &str, line: &str) {
        self.stations.insert(station.to_string(), line.to_string());
    }

    /// Reads the displays' state as `user` (tests and the demo; a gateway's password comes from
    /// a file, the environment or a credential).
    pub fn set_display_login(&mut self, user: &str, password: &str) {
        self.display_username = Some(user.to_string());
        self.display_password = Some(password.to_string());
    }

    /// Serves at most `n` connections at once.
    pub fn set_max_connections(&mut self, n: usize) {
        self.max_connections = n;
    }

    /// TLS on the listener with this certificate chain and key (PEM files).
    pub fn set_tls(&mut self, cert: PathBuf, key: PathBuf) {
        self.tls_cert_file = Some(cert);
        self.tls_key_file = Some(key);
    }

    /// The display account's password: environment, systemd credential, file, inline value.
    pub(crate) fn display_password(&self) -> Result<Option<String>, ConfigError> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        lookup(
            "LINEGATE_WEB_DISPLAY_PASSWORD",
            credentials.as_deref(),
            "web_display_password",
            &self.display_password_file,
            &self.display_password,
            "web.display_password",
        )
    }

    /// What `check-config` says of it, in a line.
    pub(crate) fn summary(&self) -> String {
        let stations: Vec<String> = self.stations.iter().map(|(s, l)| format!("{s} on {l}")).collect();
        format!(
            "linegate web on {}{} in {}, panels for {}",
            self.listen,
            if self.tls_cert_file.is_some() { " (TLS)" } else { "" },
            self.language.name(),
            if stations.is_empty() {
                "no station".to_string()
            } else {
                stations.join(", ")
            }
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.stations.len() > MAX_STATIONS {
            return Err(ConfigError::new(
                "web.stations",
                format!("{} stations: at most {MAX_STATIONS}", self.stations.len()),
            ));
        }
        for (station, line) in &self.stations {
            let key = format!("web.stations.{station}");
            if !plain_name(station) {
                return Err(ConfigError::new(
                    key,
                    "a station is 1 to 64 letters, digits, '.', '_' or '-' (its broker account's name)",
                ));
            }
            // The command log keeps it for restores (command::SALVAGE_STATION, a layer above).
            if station == "salvage" {
                return Err(ConfigError::new(
                    key,
                    "`salvage` is kept for `linegate salvage --restore`",
                ));
            }
            if line.trim().is_empty() || line.chars().count() > 64 || line.chars().any(char::is_control) {
                return Err(ConfigError::new(
                    key,
                    "the station's line: 1 to 64 characters, no control characters",
                ));
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::new(
                "web.tls_key_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if !(1..=365).contains(&self.session_days) {
            return Err(ConfigError::new("web.session_days", "from 1 to 365"));
        }
        if !(4..=4096).contains(&self.max_connections) {
            return Err(ConfigError::new("web.max_connections", "from 4 to 4096"));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("web.state_dir", "must not be empty"));
        }
        Ok(())
    }
}
