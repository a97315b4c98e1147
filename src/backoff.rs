//! How long to wait before trying again, for every retry loop in the agent: exponential from a
//! minimum, capped, and moved by a random fraction so that gateways restarted together (or a
//! fleet behind one broker) do not retry in step.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    /// Each wait is moved by up to ±this fraction.
    jitter: f64,
}

impl Backoff {
    /// From `min`, doubling up to `max`, each wait moved by up to ±20 %.
    pub(crate) const fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, jitter: 0.2 }
    }

    pub(crate) const fn with_jitter(self, jitter: f64) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// The wait before retry `n` (1 for the first): `min · 2^(n−1)`, at most `max`.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let exp = self.min.saturating_mul(1 << n.saturating_sub(1).min(20));
        jitter(exp.min(self.max), self.jitter)
    }

    /// A retry loop's state, starting before its first failure.
    pub(crate) fn retries(self) -> Retries {
        Retries {
            backoff: self,
            failures: 0,
        }
    }
}

/// Failures counted by a retry loop.
#[derive(Debug, Clone)]
pub(crate) struct Retries {
    backoff: Backoff,
    failures: u32,
}

impl Retries {
    /// Counts a failure and returns how long to wait before the next attempt.
    pub(crate) fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.backoff.delay(self.failures)
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts over after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// `d` moved by up to ±`fraction`.
pub(crate) fn jitter(d: Duration, fraction: f64) -> Duration {
    if fraction <= 0.0 {
        return d;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    // splitmix64: enough randomness for spreading timers.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)

    // A wait too long to move keeps its length instead of overflowing.
    Duration::try_from_secs_f64(d.as_secs_f64() * (1.0 + fraction * (2.0 * unit - 1.0))).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, lo_ms: u64, hi_ms: u64) -> bool {
        d >= Duration::from_millis(lo_ms) && d <= Duration::from_millis(hi_ms)
    }

    #[test]
    fn doubles_from_the_minimum_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(30));
        assert!(within(b.delay(1), 1600, 2400), "{:?}", b.delay(1));
        assert!(within(b.delay(4), 12_800, 19_200), "{:?}", b.delay(4));
        assert!(within(b.delay(6), 24_000, 36_000), "{:?}", b.delay(6));
        assert!(within(b.delay(u32::MAX), 24_000, 36_000));
        let exact = b.with_jitter(0.0);
        assert_eq!(exact.delay(0), Duration::from_secs(2));
        assert_eq!(exact.delay(3), Duration::from_secs(8));
    }

    #[test]
    fn a_cap_below_the_doubling_holds_as_the_schedulers_interval_does() {
        // The scheduler caps retries at its interval: 2 s doubling, never past 5 s (+20 %).
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(5));
        assert!(b.delay(30) <= Duration::from_secs(6), "{:?}", b.delay(30));
    }

    #[test]
    fn a_retry_loop_counts_and_starts_over() {
        let mut r = Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
            .with_jitter(0.0)
            .retries();
        assert_eq!(r.failed(), Duration::from_millis(500));
        assert_eq!(r.failed(), Duration::from_secs(1));
        assert_eq!(r.failures(), 2);
        r.reset();
        assert_eq!(r.failed(), Duration::from_millis(500));
    }

    #[test]
    fn a_full_spread_reaches_across_the_whole_width_and_no_further() {
        // The scheduler's phase: half an interval ±100 %, anywhere within one interval; 300
        // draws reach well past ±10 % of the middle (all within it: 0.2^300)
        let draws: Vec<Duration> = (0..300).map(|_| jitter(Duration::from_secs(50), 1.0)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(100)), "{draws:?}");
        assert!(draws.iter().any(|d| *d < Duration::from_secs(40)), "{draws:?}");
        assert!(draws.iter().any(|d| *d > Duration::from_secs(60)), "{draws:?}");
    }

    #[test]
    fn huge_durations_saturate_instead_of_overflowing() {
        let b = Backoff::new(Duration::MAX / 2, Duration::MAX);
        assert!(b.delay(64) >= Duration::MAX / 2);
    }
}
