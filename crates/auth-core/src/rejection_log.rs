//! [`RejectionLog`]: how many rejection events a source may write, so that the caller does
//! not decide how much log its refusals cost (SECURITY.md E9).

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use crate::{Added, WindowCounters, source_network};

/// Rejection events logged per source and window; the rest are counted, and the count is
/// logged with the source's first event of a later window.
pub const LOGGED_REJECTIONS_PER_SOURCE: u32 = 10;

/// Rejection events logged per window for all requests without a peer address together: a
/// server that gives no peer address still writes a bounded log, and more than one source's
/// worth of it.
pub const LOGGED_REJECTIONS_WITHOUT_PEER: u32 = 100;

/// The window of the rejection log limit.
pub const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Counters: 2^14 of 8 bytes, 128 KiB.
const SLOTS: usize = 1 << 14;

/// Whether a rejection is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPermit {
    /// Log it; `unlogged` rejections of the source's previous window were not.
    Log {
        /// How many of the source's rejections in its previous window were not logged.
        unlogged: u32,
    },
    /// The source's last logged rejection of this window: log it, and say the rest of the
    /// window is counted, not logged.
    Last,
    /// Over the limit: counted, not logged.
    Quiet,
}

/// Rejection events per source (an IPv6 /64, an IPv4 address) in fixed windows of
/// [`LOG_WINDOW`]: [`LOGGED_REJECTIONS_PER_SOURCE`] are logged, or
/// [`LOGGED_REJECTIONS_WITHOUT_PEER`] for all requests without a peer address together.
///
/// It counts in [`WindowCounters`]: fixed memory, no lock. When very many sources are
/// refused at once the counters fill, and a source's first events may be counted rather than
/// logged; the counts still come out with a later event.
#[derive(Debug)]
pub struct RejectionLog {
    counters: WindowCounters,
}

impl Default for RejectionLog {
    fn default() -> Self {
        Self {
            counters: WindowCounters::new(1, SLOTS, LOG_WINDOW),
        }
    }
}

impl RejectionLog {
    /// Counts a rejection of a request from `source` at `now` (Unix seconds), and says
    /// whether to log it.
    pub fn permit(&self, source: Option<IpAddr>, now: u64) -> LogPermit {
        let budget = match source {
            Some(_) => LOGGED_REJECTIONS_PER_SOURCE,
            None => LOGGED_REJECTIONS_WITHOUT_PEER,
        };
        self.count(&(0u8, source.map(source_network)), budget, now)
    }

    /// As [`permit`](Self::permit), for rejections counted by another key than the source
    /// (an authenticated subject refused a role), [`LOGGED_REJECTIONS_PER_SOURCE`] a window.
    pub fn permit_for(&self, key: &impl Hash, now: u64) -> LogPermit {
        self.count(&(1u8, key), LOGGED_REJECTIONS_PER_SOURCE, now)
    }

    fn count(&self, key: &impl Hash, budget: u32, now: u64) -> LogPermit {
        let Ok(counted) = self
            .counters
            .add(0, key, now, u32::MAX, &mut Added::default())
        else {
            return LogPermit::Quiet;
        };
        match counted.count {
            n if n < budget => LogPermit::Log {
                unlogged: counted.ended.saturating_sub(budget),
            },
            n if n == budget => LogPermit::Last,
            _ => LogPermit::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_logged_up_to_the_budget_then_counted() {
        let log = RejectionLog::default();
        let a = Some(IpAddr::from([127, 0, 0, 2]));
        let permits: Vec<LogPermit> = (0..25).map(|_| log.permit(a, 1_000)).collect();
        let n = LOGGED_REJECTIONS_PER_SOURCE as usize;
        assert!(
            permits[..n - 1]
                .iter()
                .all(|p| *p == LogPermit::Log { unlogged: 0 })
        );
        assert_eq!(permits[n - 1], LogPermit::Last);
        assert!(permits[n..].iter().all(|p| *p == LogPermit::Quiet));
        let b = Some(IpAddr::from([127, 0, 0, 3]));
        assert_eq!(log.permit(b, 1_000), LogPermit::Log { unlogged: 0 });
        // 25 rejections, 10 logged: the first line of the next window says so.
        assert_eq!(
            log.permit(a, 1_000 + LOG_WINDOW.as_secs()),
            LogPermit::Log { unlogged: 15 }
        );
    }

    #[test]
    fn requests_without_a_peer_share_a_larger_budget() {
        let log = RejectionLog::default();
        let logged = (0..500)
            .filter(|_| log.permit(None, 1_000) != LogPermit::Quiet)
            .count();
        assert_eq!(logged, LOGGED_REJECTIONS_WITHOUT_PEER as usize);
    }
}
