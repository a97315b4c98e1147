//! Secrets: from the environment, a systemd credential or a file only its owner and group can
//! read — never from a file others can read.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// The secret the Odoo client authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
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
    pub(crate) fn expose(&self) -> &str {
        match self {
            Secret::ApiKey(s) | Secret::Password(s) => s,
        }
    }
}

pub(super) fn lookup(
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

/// A secret from a file only its owner and group can read, for a secret the configuration
/// does not hold (`what` names where it was given, e.g. a command-line option).
pub(crate) fn read_private(path: &Path, what: &str) -> Result<String, ConfigError> {
    read_secret(path, what, true)
}

/// True when the file's mode lets users outside its owner and group read it.
pub(super) fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}
