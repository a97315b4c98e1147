use std::time::Duration;

/// What went wrong talking to Odoo, by cause. [`OdooError::is_retryable`] says which are worth
/// another try; the rest are configuration or data problems to report, not to hammer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OdooError {
    #[error("cannot reach Odoo: {0}")]
    Transport(String),
    #[error("Odoo did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Odoo is unavailable (HTTP {status}): {detail}")]
    Unavailable { status: u16, detail: String },
    #[error("Odoo session expired")]
    SessionExpired,
    #[error("Odoo refused the credentials: {0}")]
    AccessDenied(String),
    #[error("Odoo refused access: {0}")]
    AccessError(String),
    #[error("{key}: Odoo has no field `{field}` on {model}")]
    UnknownField { key: String, field: String, model: String },
    #[error("Odoo error {name}: {message}")]
    Rpc {
        name: String,
        message: String,
        retryable: bool,
    },
    #[error("unexpected answer from Odoo: {0}")]
    Decode(String),
    /// A 200 whose body is no JSON at all, or JSON cut short: a proxy, a captive portal, a
    /// connection lost mid-body — not Odoo saying no.
    #[error("the answer is not Odoo's (a proxy or a captive portal?): {0}")]
    NotOdoo(String),
    #[error("Odoo's answer is larger than odoo.max_response ({limit} bytes); refused unread")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Unsupported(String),
}

impl OdooError {
    /// Worth retrying unchanged: the link or the server had a passing problem.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            OdooError::Transport(_)
            | OdooError::Timeout(_)
            | OdooError::Unavailable { .. }
            | OdooError::NotOdoo(_)
            | OdooError::SessionExpired => true,
            OdooError::Rpc { retryable, .. } => *retryable,
            _ => false,
        }
    }

    pub(super) fn from_reqwest(e: &reqwest::Error, timeout: Duration) -> Self {
        OdooError::no_answer(crate::http::no_answer(e), timeout)
    }

    pub(super) fn no_answer(why: crate::http::NoAnswer, timeout: Duration) -> Self {
        match why {
            crate::http::NoAnswer::Timeout => OdooError::Timeout(timeout),
            crate::http::NoAnswer::Transport(text) => OdooError::Transport(text),
        }
    }

    /// A 200's body that serde could not read: not JSON, or cut short, is someone else
    /// answering (worth retrying); JSON of another shape is Odoo's and stays a decode error.
    pub(super) fn unreadable(e: &serde_json::Error, text: &str) -> Self {
        let detail = format!("{e}: {}", crate::http::snippet(text));
        // serde stops at the first wrong thing it meets: "5<junk>" read as a map is a type
        // error, though the body is no JSON at all.
        let json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        if e.is_syntax() || e.is_eof() || !json {
            OdooError::NotOdoo(detail)
        } else {
            OdooError::Decode(detail)
        }
    }

    /// Classifies an Odoo exception by its class name, for both JSON-RPC and JSON-2.
    pub(super) fn from_exception(status: Option<u16>, name: &str, message: &str) -> Self {
        let message = message.trim().to_string();
        match name {
            "odoo.http.SessionExpiredException" => OdooError::SessionExpired,
            "odoo.exceptions.AccessDenied" => OdooError::AccessDenied(message),
            "werkzeug.exceptions.Unauthorized" => OdooError::AccessDenied(message),
            "odoo.exceptions.AccessError" => OdooError::AccessError(message),
            // A database the server cannot reach, a lock conflict, a worker killed mid-call.
            _ => {
                let retryable = name.starts_with("psycopg2")
                    || matches!(status, Some(409) | Some(502) | Some(503) | Some(504))
                    || (status == Some(500) && !name.starts_with("odoo.exceptions") && !name.starts_with("builtins"));
                OdooError::Rpc {
                    name: name.to_string(),
                    message,
                    retryable,
                }
            }
        }
    }
}
