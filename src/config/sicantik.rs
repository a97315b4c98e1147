//! `[sicantik]`: the regency's licensing backoffice, its courtesy limits, and reminders.

use std::time::Duration;

use serde::Deserialize;

use super::units::{duration, size};
use super::{default_request_timeout, ConfigError};

/// The regency's SICANTIK backoffice, where permits and their expiry dates are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SicantikConfig {
    /// The API base, e.g. `https://perizinan.example.go.id/backoffice/api`.
    pub(crate) url: String,
    /// Requests per second, all endpoints together (the server has no limit; this is courtesy).
    #[serde(default = "default_rate_limit")]
    pub rate_limit: f64,
    /// Requests in flight at once, so a slow server still gets `rate_limit` requests a second.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_sicantik_page_size")]
    pub(crate) page_size: u32,
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    /// Longer answers are refused unread (memory stays bounded whatever the server, a proxy
    /// or a bug sends).
    #[serde(default = "default_max_response", deserialize_with = "size")]
    pub max_response: usize,
    /// How often new permits are listed (from the newest, until a page has nothing new).
    #[serde(default = "default_list_interval", deserialize_with = "duration")]
    pub(crate) list_interval: Duration,
    /// How often expiry dates are fetched for permits that lack one.
    #[serde(default = "default_list_interval", deserialize_with = "duration")]
    pub(crate) expiry_interval: Duration,
    /// How often the whole listing is read, to catch permits missed when rows shifted.
    #[serde(default = "default_full_listing_interval", deserialize_with = "duration")]
    pub(crate) full_listing_interval: Duration,
    /// Days before expiry at which a reminder goes out, once per permit and expiry date.
    #[serde(default = "default_reminder_days")]
    pub(crate) reminder_days: Vec<u32>,
    /// The regency's zone: the date that decides expiry. Asia/Jakarta, Asia/Makassar,
    /// Asia/Jayapura, or an offset like +07:00.
    #[serde(default = "default_timezone")]
    pub(crate) timezone: String,
    /// Optional: reminders are also POSTed here (a WhatsApp gateway, say), from a durable outbox.
    pub(crate) webhook_url: Option<String>,
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

fn default_max_response() -> usize {
    2 << 20
}

impl SicantikConfig {
    pub fn new(url: impl Into<String>) -> SicantikConfig {
        SicantikConfig {
            url: url.into(),
            rate_limit: default_rate_limit(),
            concurrency: default_concurrency(),
            page_size: default_sicantik_page_size(),
            request_timeout: default_request_timeout(),
            max_response: default_max_response(),
            list_interval: default_list_interval(),
            expiry_interval: default_list_interval(),
            full_listing_interval: default_full_listing_interval(),
            reminder_days: default_reminder_days(),
            timezone: default_timezone(),
            webhook_url: None,
        }
    }

    /// Seconds east of UTC of the configured zone.
    pub(crate) fn zone_offset(&self) -> Result<i64, ConfigError> {
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        if self.max_response < 64 << 10 {
            return Err(ConfigError::new("sicantik.max_response", "must be at least 64KiB"));
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
