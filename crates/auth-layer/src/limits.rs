//! Limits per source address: the opt-in `AUTH_FAILURE_LIMIT` (a source that fails too often
//! gets 429 before its credential is looked at) and the always-on limit on rejection log
//! lines (a source cannot decide how much log its refusals write).
//!
//! The failure limit counts in a [`WindowCounters`] sketch (two atomic loads answer most
//! requests) backed by exact [`SourceCounts`], so that no source is refused for what others
//! did; the log limit in a [`RejectionLog`]. A request's source is its peer address, or
//! behind a trusted proxy the address that proxy forwarded ([`source_address`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Extensions, Request};
use tower_auth_core::{
    Added, Cidr, ClientCertHeader, Clock, ForwardedHeader, LogPermit, RejectionLog, SourceCounts,
    WindowCounters, source_address, source_network,
};

/// Counters of the failure limit's first check: 2^16 of 8 bytes (512 KiB).
const FAILURE_SLOTS: usize = 1 << 16;

/// Sources the failure limit counts exactly at once (see [`SourceCounts`]).
const FAILURE_SOURCES: usize = 65_536;

/// Reads a request's peer address from its extensions, for servers whose connection info the
/// layer does not know (tonic's TLS `TlsConnectInfo`, a Unix socket's credentials).
pub type PeerAddress = fn(&Extensions) -> Option<IpAddr>;

/// What the limits are configured with; kept so that a builder can change one setting.
#[derive(Clone, Debug)]
pub(crate) struct LimitConfig {
    pub(crate) trusted_proxies: Arc<[Cidr]>,
    pub(crate) forwarded_header: ForwardedHeader,
    /// At most this many failures in this window per source, when set.
    pub(crate) failure_limit: Option<(u32, Duration)>,
    pub(crate) peer_address: Option<PeerAddress>,
    pub(crate) clock: Clock,
    /// `AUTH_CLIENT_CERT_HEADER`: where trusted proxies forward the client certificate.
    pub(crate) client_cert_header: Option<ClientCertHeader>,
    /// The failure counts of every replica, with `AUTH_REDIS_URL` and `AUTH_FAILURE_LIMIT`.
    #[cfg(feature = "redis")]
    pub(crate) shared: Option<tower_auth_hmac::SharedCounts>,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Arc::from([]),
            forwarded_header: ForwardedHeader::default(),
            failure_limit: None,
            peer_address: None,
            clock: Clock::system(),
            client_cert_header: None,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }
}

/// The failure limit's counts: a sketch that answers "under the limit" for most requests
/// with two atomic loads, and exact counts that decide when the sketch reads high, so that
/// no source is refused for what other sources did.
struct FailureCounts {
    max: u32,
    sketch: WindowCounters,
    exact: SourceCounts,
}

/// The counters of one layer, shared by all its services.
pub(crate) struct SourceLimits {
    config: LimitConfig,
    failures: Option<FailureCounts>,
    logged: RejectionLog,
    /// Set once the layer has said that requests carry no peer address.
    warned_no_peer: AtomicBool,
}

impl std::fmt::Debug for SourceLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SourceLimits {
    pub(crate) fn new(config: LimitConfig) -> Self {
        Self {
            failures: config.failure_limit.map(|(max, window)| FailureCounts {
                max,
                sketch: WindowCounters::new(1, FAILURE_SLOTS, window),
                exact: SourceCounts::new(FAILURE_SOURCES, window),
            }),
            logged: RejectionLog::default(),
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
        let peer = self.peer(request);
        let source = source_address(
            peer,
            request.headers(),
            &self.config.trusted_proxies,
            self.config.forwarded_header,
        );
        if source.is_none() {
            self.warn_no_peer();
        }
        source.map(source_network)
    }

    /// The connection's peer address, where the server put it in the request.
    pub(crate) fn peer<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        self.config
            .peer_address
            .and_then(|read| read(request.extensions()))
            .or_else(|| peer(request))
    }

    /// How long `source` must wait, when it has used up its failures in the current window.
    pub(crate) fn blocked(&self, source: Option<IpAddr>) -> Option<Duration> {
        let (failures, source) = self.failures.as_ref().zip(source)?;
        let now = self.config.clock.now_unix();
        // The sketch never reads low: under the limit there, under the limit here.
        if failures.sketch.peek(0, &source, now).0 >= failures.max {
            let (count, wait) = failures.exact.peek(source, now);
            if count >= failures.max {
                return Some(Duration::from_secs(wait.max(1)));
            }
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.config.shared
            && let Some((count, wait)) = shared.count(&shared_key(source), now)
            && count >= u64::from(failures.max)
        {
            return Some(Duration::from_secs(wait.max(1)));
        }
        None
    }

    /// Counts a failed authentication from `source`; `Some(wait)` when it used up the
    /// source's last failure of the window, so that the block is logged once.
    pub(crate) fn failed(&self, source: Option<IpAddr>) -> Option<Duration> {
        let (failures, source) = self.failures.as_ref().zip(source)?;
        let now = self.config.clock.now_unix();
        let _ = failures
            .sketch
            .add(0, &source, now, u32::MAX, &mut Added::default());
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.config.shared {
            shared.add(&shared_key(source), now, 1);
        }
        let count = failures.exact.add(source, now)?;
        (count == failures.max)
            .then(|| Duration::from_secs(failures.exact.peek(source, now).1.max(1)))
    }

    /// Whether a rejection of a request from `source` is logged.
    pub(crate) fn may_log(&self, source: Option<IpAddr>) -> LogPermit {
        self.logged.permit(source, self.config.clock.now_unix())
    }

    fn warn_no_peer(&self) {
        if self.warned_no_peer.swap(true, Ordering::Relaxed) {
            return;
        }
        if self.failure_limit_enabled() {
            tracing::warn!(
                target: "auth",
                event = "no_peer_address",
                "AUTH_FAILURE_LIMIT is set but requests carry no peer address, so no source is \
                 limited, and rejection events are limited for all such requests together; \
                 serve with into_make_service_with_connect_info::<SocketAddr>() (axum), or give \
                 AuthLayerBuilder::peer_address a reader for your server's connection info"
            );
        } else {
            tracing::info!(
                target: "auth",
                event = "no_peer_address",
                "requests carry no peer address: rejection events are limited for all of them \
                 together, not per source; serve with \
                 into_make_service_with_connect_info::<SocketAddr>() (axum) to limit them per source"
            );
        }
    }
}

/// A source's key among the shared counts: its 16 bytes (IPv4 mapped).
#[cfg(feature = "redis")]
fn shared_key(source: IpAddr) -> [u8; 16] {
    match source {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The connection's peer address, where the server put it in the request's extensions:
/// axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`), tonic's
/// `TcpConnectInfo` (its server inserts it for plain TCP), or a plain `SocketAddr`.
fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    if let Some(peer) = crate::client_cert::TlsPeer::of(request.extensions()) {
        return Some(peer.remote_addr.ip());
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

    /// SECURITY.md X5: a flood of failures from many sources fills the sketch, but the exact
    /// counts decide, so a source that failed nothing is never refused.
    #[test]
    fn a_flood_of_other_sources_never_blocks_an_innocent_one() {
        let clock = Clock::manual(1_000);
        let limits = limits(Some((2, Duration::from_secs(60))), &clock);
        for i in 0u32..200_000 {
            let source = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + i)));
            limits.failed(source);
            limits.failed(source);
        }
        let blocked = (0u32..10_000)
            .filter(|i| {
                let innocent = IpAddr::V4(std::net::Ipv4Addr::from(0xC000_0000 + i));
                limits.blocked(Some(innocent)).is_some()
            })
            .count();
        assert_eq!(blocked, 0);
        // The first sources the exact table held are blocked, flood or not.
        assert!(limits.blocked(Some(IpAddr::from([10, 0, 0, 0]))).is_some());
    }

    #[test]
    fn a_peer_address_reader_is_asked_first() {
        #[derive(Clone)]
        struct TlsPeer(IpAddr);
        let clock = Clock::manual(1_000);
        let limits = SourceLimits::new(LimitConfig {
            peer_address: Some(|e: &Extensions| e.get::<TlsPeer>().map(|p| p.0)),
            clock,
            ..LimitConfig::default()
        });
        let mut request = from("127.0.0.2:1");
        assert_eq!(limits.source(&request), Some(IpAddr::from([127, 0, 0, 2])));
        request
            .extensions_mut()
            .insert(TlsPeer(IpAddr::from([192, 0, 2, 9])));
        assert_eq!(limits.source(&request), Some(IpAddr::from([192, 0, 2, 9])));
    }
}
