//! The exchange's lock-out: failed attempts per client id in fixed windows.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Failed attempts per client id in fixed windows, over a bounded table.
pub(super) struct FailureLimiter {
    max_failures: u32,
    window_secs: u64,
    capacity: usize,
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    start: u64,
    failures: u32,
}

impl FailureLimiter {
    pub(super) fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window_secs: window.as_secs().max(1),
            capacity: capacity.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt by `client_id` as a failure until [`succeeded`](Self::succeeded)
    /// says otherwise, or refuses it with the seconds to wait when the id has used up its
    /// failures in the current window. Counting before the check, under one lock, keeps
    /// concurrent guesses from slipping past the limit together.
    pub(super) fn attempt(&self, client_id: &str, now: u64) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(window) = windows.get_mut(client_id) {
            let end = window.start.saturating_add(self.window_secs);
            if now >= end {
                *window = Window {
                    start: now,
                    failures: 1,
                };
            } else if window.failures >= self.max_failures {
                return Err((end - now).max(1));
            } else {
                window.failures += 1;
            }
            return Ok(());
        }
        if windows.len() >= self.capacity {
            let window_secs = self.window_secs;
            windows.retain(|_, w| now < w.start.saturating_add(window_secs));
        }
        if windows.len() >= self.capacity {
            // Still full of live windows: make room by forgetting the oldest, which at
            // worst gives one client id a fresh window; the table never grows.
            if let Some(oldest) = windows
                .iter()
                .min_by_key(|(_, w)| w.start)
                .map(|(id, _)| id.clone())
            {
                windows.remove(&oldest);
            }
        }
        windows.insert(
            client_id.to_owned(),
            Window {
                start: now,
                failures: 1,
            },
        );
        Ok(())
    }

    /// The attempt succeeded: the id starts afresh.
    pub(super) fn succeeded(&self, client_id: &str) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }

    #[cfg(test)]
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_per_id_in_fixed_windows() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60), 100);
        assert_eq!(limiter.attempt("a", 1_000), Ok(()));
        assert_eq!(limiter.attempt("a", 1_010), Ok(()));
        assert_eq!(limiter.attempt("a", 1_010), Err(50));
        assert_eq!(limiter.attempt("b", 1_010), Ok(()), "per client id");
        assert_eq!(limiter.attempt("a", 1_059), Err(1));
        assert_eq!(limiter.attempt("a", 1_060), Ok(()), "a new window starts");
        assert_eq!(limiter.attempt("a", 1_061), Ok(()));
        assert_eq!(limiter.attempt("a", 1_062), Err(58));
        limiter.succeeded("a");
        assert_eq!(limiter.attempt("a", 1_062), Ok(()));
        limiter.succeeded("a");
        limiter.succeeded("b");
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn concurrent_guesses_do_not_slip_past_the_limit() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(60), 100);
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10)
                            .filter(|_| limiter.attempt("a", 1_000).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(allowed, 5);
    }

    #[test]
    fn limiter_stays_bounded() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60), 3);
        for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            assert_eq!(limiter.attempt(id, 1_000 + i as u64), Ok(()));
        }
        assert_eq!(limiter.len(), 3);
        assert!(limiter.attempt("e", 1_005).is_err());
        assert_eq!(
            limiter.attempt("a", 1_005),
            Ok(()),
            "the oldest was forgotten"
        );
        // Expired windows are dropped before anything live.
        assert_eq!(limiter.attempt("f", 1_070), Ok(()));
        assert_eq!(limiter.len(), 1);
    }
}
