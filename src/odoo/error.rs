use std::time::Duration;

/// What went wrong talking to Odoo, by cause. [`OdooError::is_retryable`] says which are worth
/// another try; the rest are configuration or data problems to report, not to hammer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OdooError {
    /// No connection was made: nothing was sent.
    #[error("cannot reach Odoo: {0}")]
    Unreached(String),
    /// The connection failed once made: a request may have gone out unanswered.
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

/// PostgreSQL's errors that pass: the connection, a serialisation conflict, a lock wait, a
/// deadlock (psycopg2's class names; Odoo retries some itself before answering).
const PASSING_DATABASE_ERRORS: [&str; 6] = [
    "psycopg2.OperationalError",
    "psycopg2.InterfaceError",
    "psycopg2.extensions.TransactionRollbackError",
    "psycopg2.errors.SerializationFailure",
    "psycopg2.errors.LockNotAvailable",
    "psycopg2.errors.DeadlockDetected",
];

impl OdooError {
    /// Worth retrying unchanged: the link or the server had a passing problem.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            OdooError::Transport(_)
            | OdooError::Unreached(_)
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
            crate::http::NoAnswer::Unreached(text) => OdooError::Unreached(text),
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
            // A database the server cannot reach, a lock conflict, a worker killed mid-call;
            // not a value the database refuses (DataError, IntegrityError: the same again
            // would be refused again).
            _ => {
                let retryable = PASSING_DATABASE_ERRORS.contains(&name)
                    || matches!(status, Some(409) | Some(502) | Some(503) | Some(504))
                    || (status == Some(500)
                        && !["odoo.exceptions", "builtins", "psycopg2"]
                            .iter()
                            .any(|p| name.starts_with(p)));
                OdooError::Rpc {
                    name: name.to_string(),
                    message,
                    retryable,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_database_error_is_retried_and_a_refused_value_is_not() {
        let class = |status, name| OdooError::from_exception(Some(status), name, "m").is_retryable();
        assert!(class(500, "psycopg2.OperationalError"));
        assert!(class(500, "psycopg2.errors.SerializationFailure"));
        assert!(class(409, "psycopg2.errors.SerializationFailure"));
        assert!(class(500, "werkzeug.exceptions.InternalServerError"));
        // The same value would be refused again: an integer field given billions, a duplicate.
        assert!(!class(500, "psycopg2.errors.NumericValueOutOfRange"));
        assert!(!class(500, "psycopg2.errors.UniqueViolation"));
        assert!(!class(422, "odoo.exceptions.ValidationError"));
        assert!(!class(500, "builtins.ValueError"));
    }
}
