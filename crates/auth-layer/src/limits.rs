//! Limits per source address: the opt-in `AUTH_FAILURE_LIMIT` (a source that fails too often
//! gets 429 before its credential is looked at) and the always-on limit on rejection log
//! lines (a source cannot decide how much log its refusals write).
//!
//! Both count in [`WindowCounters`]: fixed memory, no lock, nothing a flood of other sources
//! can evict. A request's source is its peer address, or behind a trusted proxy the address
//! that proxy forwarded ([`source_address`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::Request;
use tower_auth_core::{
    Added, Cidr, Clock, ForwardedHeader, WindowCounters, source_address, source_network,
};

/// Rejection events logged per source and window; the rest are counted, and the count is
/// logged with the source's first event of a later window.
pub const LOGGED_REJECTIONS_PER_SOURCE: u32 = 10;

/// The window of the rejection log limit.
pub const LOG_WINDOW: Duration = Duration::from_secs(60);

/// Counters of the log limit: 2^14 of 8 bytes (128 KiB) a table, two tables.
const LOG_SLOTS: usize = 1 << 14;

/// Counters of the failure limit: 2^16 of 8 bytes (512 KiB).
const FAILURE_SLOTS: usize = 1 << 16;

/// What the limits are configured with; kept so that a builder can change one setting.
#[derive(Clone, Debug)]
pub(crate) struct LimitConfig {
    pub(crate) trusted_proxies: Arc<[Cidr]>,
    pub(crate) forwarded_header: ForwardedHeader,
    /// At most this many failures in this window per source, when set.
    pub(crate) failure_limit: Option<(u32, Duration)>,
    pub(crate) clock: Clock,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Arc::from([]),
            forwarded_header: ForwardedHeader::default(),
            failure_limit: None,
            clock: Clock::system(),
        }
    }
}

/// The counters of one layer, shared by all its services.
pub(crate) struct SourceLimits {
    config: LimitConfig,
    failures: Option<WindowCounters>,
    logged: WindowCounters,
    /// Set once the layer has warned that it cannot count failures per source.
    warned_no_peer: AtomicBool,
}

impl std::fmt::Debug for SourceLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether a rejection is logged.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogPermit {
    /// Log it; `unlogged` rejections of the source's previous window were not.
    Log { unlogged: u32 },
    /// The source's last logged rejection of this window: log it, and say the rest of the
    /// window is not logged.
    Last,
    /// Over the limit: count it, do not log it.
    Quiet,
}

impl SourceLimits {
    pub(crate) fn new(config: LimitConfig) -> Self {
        Self {
            failures: config
                .failure_limit
                .map(|(_, window)| WindowCounters::new(1, FAILURE_SLOTS, window)),
            logged: WindowCounters::new(1, LOG_SLOTS, LOG_WINDOW),
            config,
            warned_no_peer: AtomicBool::new(false),
        }
    }

    pub(crate) fn config(&self) -> &LimitConfig {
        &self.config
    }

    pub(crate) fn failure_limit_enabled(&self) -> bool {
        self.failures.is_some()
    }

    /// The request's source network (an IPv6 /64, an IPv4 address), `None` when the server
    /// put no peer address in the request.
    pub(crate) fn source<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        source_address(
            peer(request),
            request.headers(),
            &self.config.trusted_proxies,
            self.config.forwarded_header,
        )
        .map(source_network)
    }

    /// How long `source` must wait, when it has used up its failures in the current window.
    pub(crate) fn blocked(&self, source: Option<IpAddr>) -> Option<Duration> {
        let (counters, (max, _)) = self.failures.as_ref().zip(self.config.failure_limit)?;
        let Some(source) = source else {
            self.warn_no_peer();
            return None;
        };
        let (count, wait) = counters.peek(0, &source, self.config.clock.now_unix());
        (count >= max).then(|| Duration::from_secs(wait.max(1)))
    }

    /// Counts a failed authentication from `source`; `Some(wait)` when it used up the
    /// source's last failure of the window, so that the block is logged once.
    pub(crate) fn failed(&self, source: Option<IpAddr>) -> Option<Duration> {
        let (counters, (max, _)) = self.failures.as_ref().zip(self.config.failure_limit)?;
        let source = source?;
        let now = self.config.clock.now_unix();
        let counted = counters
            .add(0, &source, now, u32::MAX, &mut Added::default())
            .ok()?;
        (counted.count == max).then(|| Duration::from_secs(counters.peek(0, &source, now).1.max(1)))
    }

    /// Whether a rejection of a request from `source` is logged. Requests without a peer
    /// address share one count.
    pub(crate) fn may_log(&self, source: Option<IpAddr>) -> LogPermit {
        let now = self.config.clock.now_unix();
        let Ok(counted) = self
            .logged
            .add(0, &source, now, u32::MAX, &mut Added::default())
        else {
            return LogPermit::Quiet;
        };
        match counted.count {
            n if n < LOGGED_REJECTIONS_PER_SOURCE => LogPermit::Log {
                unlogged: counted.ended.saturating_sub(LOGGED_REJECTIONS_PER_SOURCE),
            },
            LOGGED_REJECTIONS_PER_SOURCE => LogPermit::Last,
            _ => LogPermit::Quiet,
        }
    }

    fn warn_no_peer(&self) {
        if !self.warned_no_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "auth",
                event = "failure_limit_no_peer_address",
                "AUTH_FAILURE_LIMIT is set but requests carry no peer address, so failures \
                 cannot be counted per source and no source is limited; serve with \
                 into_make_service_with_connect_info::<SocketAddr>() (axum) or tonic's server"
            );
        }
    }
}

/// The connection's peer address, where the server put it in the request's extensions:
/// axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`), tonic's
/// `TcpConnectInfo` (its server inserts it), or a plain `SocketAddr`.
fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(addr.ip());
    }
    tower_auth_core::socket_addr_of(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn from(peer: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    }

    fn limits(failure_limit: Option<(u32, Duration)>, clock: &Clock) -> SourceLimits {
        SourceLimits::new(LimitConfig {
            failure_limit,
            clock: clock.clone(),
            ..LimitConfig::default()
        })
    }

    #[test]
    fn a_source_is_blocked_after_its_failures_until_the_window_ends() {
        let clock = Clock::manual(1_000);
        let limits = limits(Some((3, Duration::from_secs(60))), &clock);
        let a = limits.source(&from("127.0.0.2:5000"));
        let b = limits.source(&from("127.0.0.3:5000"));
        assert_eq!(limits.failed(a), None);
        assert_eq!(limits.failed(a), None);
        assert_eq!(limits.blocked(a), None);
        clock.advance(Duration::from_secs(10));
        // The third failure uses up the window (which started at 1_000): logged once.
        assert_eq!(limits.failed(a), Some(Duration::from_secs(50)));
        assert_eq!(limits.failed(a), None, "announced once");
        assert_eq!(limits.blocked(a), Some(Duration::from_secs(50)));
        assert_eq!(limits.blocked(b), None, "another source");
        clock.advance(Duration::from_secs(50));
        assert_eq!(limits.blocked(a), None, "a new window");
    }

    #[test]
    fn an_ipv6_source_counts_as_its_64() {
        let clock = Clock::manual(1_000);
        let limits = limits(Some((1, Duration::from_secs(60))), &clock);
        limits.failed(limits.source(&from("[2001:db8:1:2::1]:1")));
        assert!(
            limits
                .blocked(limits.source(&from("[2001:db8:1:2::ff]:1")))
                .is_some()
        );
        assert!(
            limits
                .blocked(limits.source(&from("[2001:db8:1:3::1]:1")))
                .is_none()
        );
    }

    #[test]
    fn without_the_setting_or_a_peer_nothing_is_blocked() {
        let clock = Clock::manual(1_000);
        let off = limits(None, &clock);
        let a = off.source(&from("127.0.0.2:5000"));
        for _ in 0..100 {
            assert_eq!(off.failed(a), None);
        }
        assert_eq!(off.blocked(a), None);
        let on = limits(Some((1, Duration::from_secs(60))), &clock);
        let none = on.source(&Request::new(()));
        assert_eq!(none, None);
        on.failed(none);
        assert_eq!(on.blocked(none), None);
    }

    #[test]
    fn rejections_are_logged_up_to_the_limit_then_counted() {
        let clock = Clock::manual(1_000);
        let limits = limits(None, &clock);
        let a = limits.source(&from("127.0.0.2:5000"));
        let permits: Vec<LogPermit> = (0..25).map(|_| limits.may_log(a)).collect();
        let n = LOGGED_REJECTIONS_PER_SOURCE as usize;
        assert!(
            permits[..n - 1]
                .iter()
                .all(|p| *p == LogPermit::Log { unlogged: 0 })
        );
        assert_eq!(permits[n - 1], LogPermit::Last);
        assert!(permits[n..].iter().all(|p| *p == LogPermit::Quiet));
        assert_eq!(
            limits.may_log(limits.source(&from("127.0.0.3:1"))),
            LogPermit::Log { unlogged: 0 },
            "another source"
        );
        clock.advance(LOG_WINDOW);
        // 25 rejections, 10 logged: the first line of the next window says so.
        assert_eq!(limits.may_log(a), LogPermit::Log { unlogged: 15 });
    }
}
