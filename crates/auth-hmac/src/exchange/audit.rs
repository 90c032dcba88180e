//! The audit events of refused client authentications (target `auth::audit`) under a flood:
//! one event per kind of refusal, source and window, not one per request.
//!
//! A source posting wrong secrets again and again writes one `token_exchange_failed` (or
//! `token_revocation_failed`) event, and one `token_exchange_limited` once it is locked out;
//! the refusals that follow in the window are counted, and the source's first event of a
//! later window says how many there were (`unlogged_before`). The operational log lines of the
//! endpoints (target `auth`) keep their own, larger limit ([`RejectionLog`](tower_auth_core::RejectionLog)).

use std::net::IpAddr;

use tower_auth_core::{Added, LOG_WINDOW, WindowCounters, source_network};

/// Counters: 2^16 of 8 bytes, 512 KiB per endpoint pair. Each (kind, source) reads the
/// smaller of two counters: with K keys in a minute a new key finds both taken with
/// probability about (1 - e^(-2K/2^16))^2, under 0.4% at K = 2,000 and 5% at K = 8,192.
const SLOTS: usize = 1 << 16;

/// Audit events per (kind, source) in fixed windows of [`LOG_WINDOW`]: the first of a window
/// is logged, the rest counted.
///
/// It counts in [`WindowCounters`] (fixed memory, no lock): when very many sources are
/// refused at once the counters fill, and a source's first refusal may then be counted rather
/// than logged; its count still comes out with its next logged event.
#[derive(Debug)]
pub(super) struct AuditFlood {
    counters: WindowCounters,
}

impl Default for AuditFlood {
    fn default() -> Self {
        Self {
            counters: WindowCounters::new(1, SLOTS, LOG_WINDOW),
        }
    }
}

impl AuditFlood {
    /// Counts an `event` about a request from `source` (all requests without a peer address
    /// count as one source) at `now` (Unix seconds): `Some(unlogged)` to log it, with the
    /// number of such events of the previous window that were not, `None` to stay quiet.
    pub(super) fn permit(
        &self,
        event: &'static str,
        source: Option<IpAddr>,
        now: u64,
    ) -> Option<u32> {
        let key = (event, source.map(source_network));
        let counted = self
            .counters
            .add(0, &key, now, u32::MAX, &mut Added::default())
            .ok()?;
        (counted.count == 1).then(|| counted.ended.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SECURITY.md V4.
    #[test]
    fn a_flood_gives_one_event_per_window_and_its_count_later() {
        let flood = AuditFlood::default();
        let a = Some(IpAddr::from([192, 0, 2, 7]));
        let logged: Vec<_> = (0..40)
            .filter_map(|_| flood.permit("token_exchange_failed", a, 1_000))
            .collect();
        assert_eq!(logged, [0]);
        // Another kind of event and another source each get their own first event.
        assert_eq!(flood.permit("token_exchange_limited", a, 1_000), Some(0));
        assert_eq!(
            flood.permit(
                "token_exchange_failed",
                Some(IpAddr::from([192, 0, 2, 8])),
                1_001
            ),
            Some(0)
        );
        // Still the same window: quiet.
        assert_eq!(flood.permit("token_exchange_failed", a, 1_059), None);
        // The next window's first event counts the 40 of the last one but the logged one.
        let next = 1_000 + LOG_WINDOW.as_secs();
        assert_eq!(flood.permit("token_exchange_failed", a, next), Some(40));
        assert_eq!(flood.permit("token_exchange_failed", a, next), None);
    }
}
