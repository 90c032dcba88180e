//! [`RefreshPolicy`]: when a token is due for refresh and how long to wait after a failure,
//! as pure functions of the token's lifetime and the failures so far.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tower_auth_core::ConfigError;

/// When to refresh, and how to back off: the knobs of a [`TokenCache`](crate::TokenCache).
///
/// The defaults: refresh ahead of expiry by the larger of 5 minutes or 10% of the token's
/// lifetime, but never more than half of it (so that a 2-minute token is used for a minute);
/// up to 10% of that margin more at random (jitter; less instead, where more would pass half
/// the lifetime), so that many clients started together do not refresh together; after a failure retry in 1 s, doubling up to 60 s (with jitter, and
/// at least the server's `Retry-After`, itself honoured up to those 60 s); a token without a
/// known expiry refreshed every hour; at most one refresh forced by a 401 every 5 s; give
/// a fetch 30 s in all.
///
/// ```
/// use std::time::Duration;
/// use tower_auth_client::RefreshPolicy;
///
/// let policy = RefreshPolicy::default();
/// assert_eq!(policy.margin_for(Duration::from_secs(3600)), Duration::from_secs(360));
/// assert_eq!(policy.margin_for(Duration::from_secs(1200)), Duration::from_secs(300));
/// assert_eq!(policy.margin_for(Duration::from_secs(120)), Duration::from_secs(60));
/// let fixed = RefreshPolicy::default().margin(Duration::from_secs(30));
/// assert_eq!(fixed.margin_for(Duration::from_secs(3600)), Duration::from_secs(30));
/// ```
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    margin: Option<Duration>,
    jitter: f64,
    min_backoff: Duration,
    max_backoff: Duration,
    pub(crate) forced_refresh_interval: Duration,
    pub(crate) fetch_timeout: Duration,
    unknown_expiry_refresh: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: None,
            jitter: 0.1,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            forced_refresh_interval: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(30),
            unknown_expiry_refresh: Duration::from_secs(3600),
        }
    }
}

impl RefreshPolicy {
    /// Refreshes `margin` before expiry instead of the default rule (still at most half the lifetime).
    #[must_use]
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// The random extra lead, as a share of the margin (0 to 1; default 0.1; 0 turns jitter
    /// off). [`TokenCache::with_policy`](crate::TokenCache::with_policy) refuses a share
    /// outside 0 to 1.
    #[must_use]
    pub fn jitter(mut self, share: f64) -> Self {
        self.jitter = share;
        self
    }

    /// The wait after a failed fetch: `min` after the first, doubling up to `max`.
    /// [`TokenCache::with_policy`](crate::TokenCache::with_policy) refuses a `max` below `min`.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// At most one refresh forced by a rejected token (401 / UNAUTHENTICATED) per `interval`,
    /// so that a server that rejects every token cannot make us hammer the token endpoint.
    #[must_use]
    pub fn forced_refresh_interval(mut self, interval: Duration) -> Self {
        self.forced_refresh_interval = interval;
        self
    }

    /// The time a whole fetch may take (discovery and token request together) before it
    /// counts as failed (default 30 s).
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// How often a token without a known expiry (no `expires_in`, a [`StaticToken`](crate::StaticToken))
    /// is fetched again (default one hour): a revoked or rotated one is then not used forever.
    #[must_use]
    pub fn refresh_unknown_expiry_every(mut self, every: Duration) -> Self {
        self.unknown_expiry_refresh = every;
        self
    }

    /// The one validation of the setters' values, made when a cache takes the policy.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                "jitter",
                "must be a share between 0 and 1",
            ));
        }
        if self.max_backoff < self.min_backoff {
            return Err(ConfigError::new(
                "backoff",
                "the maximum must not be below the minimum",
            ));
        }
        if self.unknown_expiry_refresh < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "refresh_unknown_expiry_every",
                "must be at least one second",
            ));
        }
        Ok(())
    }

    /// How long before expiry a token of this `lifetime` is refreshed (without jitter).
    pub fn margin_for(&self, lifetime: Duration) -> Duration {
        let margin = self
            .margin
            .unwrap_or_else(|| Duration::from_secs(300).max(lifetime / 10));
        margin.min(lifetime / 2)
    }

    /// When a token received at `received_at` with `lifetime` is due for refresh.
    ///
    /// The jitter makes the lead longer, unless that would refresh before half the lifetime:
    /// then it makes it shorter, so that every token is used for at least half its life.
    pub(crate) fn refresh_at(&self, received_at: Instant, lifetime: Duration) -> Instant {
        let margin = self.margin_for(lifetime);
        let jitter = margin.mul_f64(self.jitter * rand::rng().random::<f64>());
        let lead = if margin + jitter <= lifetime / 2 {
            margin + jitter
        } else {
            margin.saturating_sub(jitter)
        };
        received_at + lifetime.saturating_sub(lead)
    }

    /// When a token received at `received_at` with `lifetime` (or none known) is due for a
    /// refresh: [`refresh_at`](Self::refresh_at), or for a token without a known expiry
    /// [`refresh_unknown_expiry_every`](Self::refresh_unknown_expiry_every) after it came.
    pub(crate) fn due_at(&self, received_at: Instant, lifetime: Option<Duration>) -> Instant {
        match lifetime {
            Some(lifetime) => self.refresh_at(received_at, lifetime),
            // Past what an `Instant` holds: never.
            None => received_at
                .checked_add(self.unknown_expiry_refresh)
                .unwrap_or_else(|| received_at + crate::token::MAX_LIFETIME),
        }
    }

    /// The wait after `failures` failures in a row: exponential, "equal jitter" (half fixed,
    /// half random), at least the server's `Retry-After`.
    pub(crate) fn backoff_after(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let base = self
            .min_backoff
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        let wait = base / 2 + (base / 2).mul_f64(rand::rng().random::<f64>());
        // The server's `Retry-After` is honoured up to the longest backoff: a token endpoint
        // that asks for a day does not stop this client for a day.
        wait.max(retry_after.unwrap_or_default().min(self.max_backoff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SECURITY.md O5.
    #[test]
    fn retry_after_is_honoured_up_to_the_longest_backoff() {
        let p = RefreshPolicy::default();
        let day = Some(Duration::from_secs(86_400));
        assert_eq!(p.backoff_after(1, day), Duration::from_secs(60));
        assert_eq!(
            p.backoff_after(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_without_a_known_expiry_is_due_after_the_period() {
        let now = Instant::now();
        let p = RefreshPolicy::default();
        assert_eq!(p.due_at(now, None), now + Duration::from_secs(3600));
        let p = p.refresh_unknown_expiry_every(Duration::from_secs(120));
        assert_eq!(p.due_at(now, None), now + Duration::from_secs(120));
        assert!(
            RefreshPolicy::default()
                .refresh_unknown_expiry_every(Duration::ZERO)
                .check()
                .is_err()
        );
        // "Never", said as the largest duration: no overflow.
        let never = RefreshPolicy::default().refresh_unknown_expiry_every(Duration::MAX);
        assert!(never.due_at(now, None) > now + Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn margins() {
        let p = RefreshPolicy::default();
        assert_eq!(
            p.margin_for(Duration::from_secs(86_400)),
            Duration::from_secs(8_640)
        );
        assert_eq!(
            p.margin_for(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            p.margin_for(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        let p = RefreshPolicy::default().margin(Duration::from_secs(4000));
        assert_eq!(
            p.margin_for(Duration::from_secs(3600)),
            Duration::from_secs(1800)
        );
        let start = Instant::now();
        for _ in 0..100 {
            let at = RefreshPolicy::default().refresh_at(start, Duration::from_secs(3600));
            assert!(
                at >= start + Duration::from_secs(3600 - 396)
                    && at <= start + Duration::from_secs(3240)
            );
        }
        for _ in 0..100 {
            // Capped at half the lifetime: the jitter shortens the lead instead.
            let at = RefreshPolicy::default().refresh_at(start, Duration::from_secs(120));
            assert!(at >= start + Duration::from_secs(60) && at <= start + Duration::from_secs(66));
        }
        assert_eq!(
            RefreshPolicy::default()
                .jitter(0.0)
                .refresh_at(start, Duration::from_secs(3600)),
            start + Duration::from_secs(3240)
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let p = RefreshPolicy::default();
        for _ in 0..50 {
            let first = p.backoff_after(1, None);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let fourth = p.backoff_after(4, None);
            assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
            let many = p.backoff_after(40, None);
            assert!(many >= Duration::from_secs(30) && many <= Duration::from_secs(60));
        }
        assert!(p.backoff_after(1, Some(Duration::from_secs(50))) >= Duration::from_secs(50));
    }

    #[test]
    fn out_of_range_values_are_refused_not_clamped() {
        for share in [0.0, 0.5, 1.0] {
            RefreshPolicy::default().jitter(share).check().unwrap();
        }
        for share in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = RefreshPolicy::default().jitter(share).check().unwrap_err();
            assert_eq!(err.variable(), "jitter", "{share}");
        }
        let (one, ten) = (Duration::from_secs(1), Duration::from_secs(10));
        RefreshPolicy::default().backoff(one, ten).check().unwrap();
        RefreshPolicy::default().backoff(one, one).check().unwrap();
        let err = RefreshPolicy::default()
            .backoff(ten, one)
            .check()
            .unwrap_err();
        assert_eq!(err.variable(), "backoff");
    }
}
