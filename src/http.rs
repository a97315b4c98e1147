//! The one place HTTP clients are built: timeouts, user agent, TCP_NODELAY and rustls with the
//! ring provider (it cross-compiles for the Pi with plain gcc; no OpenSSL anywhere).

use std::time::Duration;

pub const USER_AGENT: &str = concat!("linegate/", env!("CARGO_PKG_VERSION"));

pub fn client(request_timeout: Duration) -> reqwest::Client {
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

/// An error with its whole chain of causes ("…: connection refused"), where the useful part is.
pub fn error_text(e: &dyn std::error::Error) -> String {
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
}
