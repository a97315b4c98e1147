//! The SICANTIK backoffice client (`../shared/protocols/sicantik.md`): every request a GET
//! through one rate limiter, JSON asked for and XML still understood, the 404s told apart
//! (end of a listing, unknown permit number, a real error), transient failures retried.

pub(crate) mod parse;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{StatusCode, Url};

use crate::backoff::Backoff;
use crate::config::{ConfigError, SicantikConfig};
use crate::http::{snippet, BodyError, NoAnswer};

pub(crate) use parse::Row;

const ATTEMPTS: u32 = 3;
/// Waits between them: 1 s, then 2 s.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));

#[derive(Debug, Clone, thiserror::Error)]
pub enum SicantikError {
    #[error("cannot reach SICANTIK: {0}")]
    Transport(String),
    #[error("SICANTIK did not answer within {0:?}")]
    Timeout(Duration),
    #[error("SICANTIK answered HTTP {status} on {endpoint}: {detail}")]
    Status {
        endpoint: &'static str,
        status: u16,
        detail: String,
    },
    #[error("SICANTIK's answer on {endpoint} cannot be read: {detail}")]
    Parse { endpoint: &'static str, detail: String },
    #[error("SICANTIK's answer on {endpoint} is larger than sicantik.max_response ({limit} bytes); refused unread")]
    TooLarge { endpoint: &'static str, limit: usize },
}

impl SicantikError {
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            SicantikError::Transport(_) | SicantikError::Timeout(_) => true,
            SicantikError::Status { status, .. } => *status >= 500 || *status == 429,
            // An HTML page or JSON cut short: a proxy, a captive portal, a PHP fatal error.
            SicantikError::Parse { .. } => true,
            SicantikError::TooLarge { .. } => false,
        }
    }
}

/// What a GET came back with.
enum Answer {
    Rows(Vec<Row>),
    /// 404 "Tidak ada data..": an empty list, or paging past its end.
    NoData,
    /// 404 "No Izin tidak Terdaftar!": the number is not known (to this endpoint).
    NotRegistered,
}

pub(crate) struct SicantikClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    /// Longer answers are refused unread.
    max_response: usize,
    /// Every request waits here: the server has no limit of its own, so we keep the courtesy.
    limiter: Arc<DefaultDirectRateLimiter>,
    /// Requests sent so far; shared, so that a sync's scheduler can see a run make progress.
    requests: Arc<AtomicU64>,
}

/// A rate limiter letting through `per_second` requests a second, one at a time.
pub(crate) fn limiter(per_second: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    let quota = Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

impl SicantikClient {
    pub(crate) fn new(config: &SicantikConfig) -> Result<SicantikClient, ConfigError> {
        let base = Url::parse(&config.url).map_err(|e| ConfigError {
            key: "sicantik.url".into(),
            message: e.to_string(),
        })?;
        Ok(SicantikClient {
            http: crate::http::client(config.request_timeout),
            base: crate::http::as_base(base),
            timeout: config.request_timeout,
            max_response: config.max_response,
            limiter: Arc::new(limiter(config.rate_limit)),
            requests: Arc::default(),
        })
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The request counter itself, to watch from outside a run.
    pub(crate) fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    async fn get(&self, endpoint: &'static str, path: &str, query: &[(&str, &str)]) -> Result<Answer, SicantikError> {
        let mut attempt = 1;
        loop {
            match self.get_once(endpoint, path, query).await {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    tracing::debug!(endpoint, attempt, error = %e, "retrying SICANTIK request");
                    tokio::time::sleep(RETRY.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn get_once(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Answer, SicantikError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| SicantikError::Transport(e.to_string()))?;
        if !query.is_empty() {
            // Form-encoded: base64's + / = travel as %2B %2F %3D, never as a space.
            url.query_pairs_mut().extend_pairs(query);
        }
        self.limiter.until_ready().await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = crate::http::read_body(response, self.max_response)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => SicantikError::TooLarge { endpoint, limit },
                BodyError::NoAnswer(why) => self.no_answer(why),
            })?;
        if status == StatusCode::NOT_FOUND {
            return match body.trim() {
                b if b.contains("Tidak ada data") => Ok(Answer::NoData),
                b if b.contains("No Izin tidak Terdaftar") => Ok(Answer::NotRegistered),
                "" => Err(SicantikError::Status {
                    endpoint,
                    status: 404,
                    detail: "empty body (a required parameter is missing)".into(),
                }),
                b => Err(SicantikError::Status {
                    endpoint,
                    status: 404,
                    detail: snippet(b),
                }),
            };
        }
        if !status.is_success() {
            return Err(SicantikError::Status {
                endpoint,
                status: status.as_u16(),
                detail: snippet(&body),
            });
        }
        let (rows, warned) = parse::rows(&body).map_err(|e| SicantikError::Parse { endpoint, detail: e.0 })?;
        if warned {
            tracing::warn!(
                endpoint,
                "SICANTIK prints PHP warnings before its answers; read past them"
            );
        }
        Ok(Answer::Rows(rows))
    }

    fn transport(&self, e: reqwest::Error) -> SicantikError {
        self.no_answer(crate::http::no_answer(&e))
    }

    fn no_answer(&self, why: NoAnswer) -> SicantikError {
        match why {
            NoAnswer::Timeout => SicantikError::Timeout(self.timeout),
            NoAnswer::Transport(text) | NoAnswer::Unreached(text) => SicantikError::Transport(text),
        }
    }

    /// Permit types. An install with none answers 404 with an empty body.
    pub(crate) async fn permit_types(&self) -> Result<Vec<Row>, SicantikError> {
        match self.get("jenisperizinanlist", "jenisperizinanlist", &[]).await {
            Ok(Answer::Rows(rows)) => Ok(rows),
            Ok(_) => Ok(vec![]),
            Err(SicantikError::Status {
                status: 404, detail, ..
            }) if detail.starts_with("empty body") => Ok(vec![]),
            Err(e) => Err(e),
        }
    }

    /// One page of issued permits, newest first; None past the end.
    pub(crate) async fn issued(&self, limit: u32, offset: u32) -> Result<Option<Vec<Row>>, SicantikError> {
        let path = format!("listpermohonanterbit/limit/{limit}/offset/{offset}");
        match self.get("listpermohonanterbit", &path, &[]).await? {
            Answer::Rows(rows) if !rows.is_empty() => Ok(Some(rows)),
            _ => Ok(None),
        }
    }

    /// A permit's detail (with its expiry), by its number: `cekperizinan` first, then
    /// `cekperizinanizin`, which decodes the number instead of comparing base64 text.
    pub(crate) async fn detail(&self, no_surat: &str) -> Result<Option<Row>, SicantikError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(no_surat.as_bytes());
        let query = [("no_izin", encoded.as_str())];
        if let Answer::Rows(mut rows) = self.get("cekperizinan", "cekperizinan", &query).await? {
            if !rows.is_empty() {
                return Ok(Some(rows.swap_remove(0)));
            }
        }
        match self.get("cekperizinanizin", "cekperizinanizin", &query).await {
            Ok(Answer::Rows(mut rows)) if !rows.is_empty() => Ok(Some(rows.swap_remove(0))),
            Ok(_) => Ok(None),
            // Installs without the fallback endpoint answer "Unknown method.": not found there.
            Err(SicantikError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `0812-3456-789` → `+628123456789`: what WhatsApp gateways expect.
pub(crate) fn normalise_phone(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if digits.is_empty() || digits.chars().skip(1).any(|c| !c.is_ascii_digit()) {
        return None;
    }
    Some(if let Some(rest) = digits.strip_prefix('+') {
        format!("+{rest}")
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("+62{rest}")
    } else if digits.starts_with("62") {
        format!("+{digits}")
    } else {
        digits
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_become_international() {
        assert_eq!(
            super::normalise_phone("0812-3456-789").as_deref(),
            Some("+628123456789")
        );
        assert_eq!(
            super::normalise_phone("(0361) 123 456").as_deref(),
            Some("+62361123456")
        );
        assert_eq!(super::normalise_phone("62812345").as_deref(), Some("+62812345"));
        assert_eq!(super::normalise_phone("+62 812").as_deref(), Some("+62812"));
        assert_eq!(super::normalise_phone("-"), None);
        assert_eq!(super::normalise_phone("n/a"), None);
    }
}
