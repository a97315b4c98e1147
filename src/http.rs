//! The one place HTTP clients are built: timeouts, user agent, TCP_NODELAY and rustls with the
//! ring provider (it cross-compiles for the Pi with plain gcc; no OpenSSL anywhere).

use std::time::Duration;

pub(crate) const USER_AGENT: &str = concat!("linegate/", env!("CARGO_PKG_VERSION"));

#[allow(clippy::disallowed_methods, reason = "the one place HTTP clients are built")]
pub(crate) fn client(request_timeout: Duration) -> reqwest::Client {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(request_timeout)
        .connect_timeout(request_timeout.min(Duration::from_secs(10)))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .expect("the HTTP client's settings are fixed and valid")
}

/// `url` as a base that paths join under: with a trailing slash, `…/api` + `x` is `…/api/x`
/// rather than `…/x`.
pub(crate) fn as_base(mut url: reqwest::Url) -> reqwest::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// No connection was made (refused, no route, name unknown, connect timeout): the request
    /// never left.
    Unreached(String),
    Timeout,
    /// The connection failed after it was made: the whole chain of causes.
    Transport(String),
}

pub(crate) fn no_answer(e: &reqwest::Error) -> NoAnswer {
    if e.is_connect() {
        NoAnswer::Unreached(error_text(e))
    } else if e.is_timeout() {
        NoAnswer::Timeout
    } else {
        NoAnswer::Transport(error_text(e))
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Longer than the configured limit: refused as it streamed in, never held whole.
    TooLarge {
        limit: usize,
    },
    NoAnswer(NoAnswer),
}

/// Reads a response's body as it streams in, refusing it as soon as it passes `limit` bytes
/// (or says it will): whatever an upstream, a proxy or a bug sends, memory stays bounded.
pub(crate) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<String, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let expected = response.content_length().map_or(0, |n| n as usize);
    let mut body = Vec::with_capacity(expected.min(limit).min(1 << 20));
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::NoAnswer(no_answer(&e)))? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The start of a body, on one line, for error messages.
pub(crate) fn snippet(text: &str) -> String {
    let one_line: String = text
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_string()
}

/// An error with its whole chain of causes ("…: connection refused"), where the useful part is.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_with_the_ring_provider() {
        let _ = super::client(std::time::Duration::from_secs(5));
    }

    #[test]
    fn bases_join_below_their_path() {
        for text in ["http://h/backoffice/api", "http://h/backoffice/api/"] {
            let base = super::as_base(reqwest::Url::parse(text).unwrap());
            assert_eq!(base.join("x").unwrap().as_str(), "http://h/backoffice/api/x");
        }
        assert_eq!(super::snippet("  <html>\n<body>  "), "<html> <body>");
    }
}
