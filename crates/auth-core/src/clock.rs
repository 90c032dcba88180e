//! Wall-clock time, injectable so that expiry is tested without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time for `exp` / `nbf` / `iat` checks.
///
/// Cache ages use the runtime's monotonic clock instead; this is only for comparing with
/// timestamps that come from outside.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands still at `unix_secs` until [`Clock::advance`] or [`Clock::set`] moves it.
    /// Clones share the same time.
    pub fn manual(unix_secs: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(unix_secs))))
    }

    /// Seconds since the Unix epoch.
    pub fn now_unix(&self) -> u64 {
        match &self.0 {
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            Some(t) => t.load(Ordering::Relaxed),
        }
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.now_unix())
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.0 {
            t.fetch_add(by.as_secs(), Ordering::Relaxed);
        }
    }

    /// Sets a manual clock; does nothing to the system clock.
    pub fn set(&self, unix_secs: u64) {
        if let Some(t) = &self.0 {
            t.store(unix_secs, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::System"),
            Some(t) => write!(f, "Clock::Manual({})", t.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        clock.advance(Duration::from_secs(61));
        assert_eq!(other.now_unix(), 1_061);
        other.set(5);
        assert_eq!(clock.now_unix(), 5);
    }

    #[test]
    fn system_clock_is_not_moved() {
        let clock = Clock::system();
        clock.set(5);
        assert!(clock.now_unix() > 1_700_000_000);
    }
}
