//! Where a request comes from: the connection's peer, or, behind a proxy the operator
//! trusts, the address that proxy says it forwarded. The token exchange counts its failures
//! per source, and the auth layer its `AUTH_FAILURE_LIMIT` and its rejection log lines.

use std::net::{IpAddr, SocketAddr};

use http::header::FORWARDED;
use http::{HeaderMap, Request};

/// The one header a trusted proxy writes the client's address into. Only that header is
/// read: most proxies append to `X-Forwarded-For` and pass a client's `Forwarded` through
/// untouched (or the other way round), so reading the other one would let a client name its
/// own source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239; Envoy can, and some others).
    Forwarded,
}

impl ForwardedHeader {
    /// `x-forwarded-for` or `forwarded`, in any case (`AUTH_TRUSTED_PROXY_HEADER`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            n if n.eq_ignore_ascii_case("x-forwarded-for") => Some(Self::XForwardedFor),
            n if n.eq_ignore_ascii_case("forwarded") => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// An address block in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is one host).
/// An IPv4 block may also be written IPv4-mapped (`::ffff:10.0.0.0/104`): it is the same
/// block, and it matches the same peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `address/prefix` or a bare address; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        // Peers are compared as IPv4 when they are IPv4-mapped; so is a block written so.
        if let IpAddr::V6(v6) = network
            && let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96)
        {
            return Some(Self {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Some(Self { network, prefix })
    }

    /// Parses every entry of `entries` (blank ones skipped: a list may end in a comma), or
    /// answers the position (from 0) of the first that is not an address or block.
    ///
    /// # Errors
    /// The position of the first bad entry.
    pub fn parse_all<I, S>(entries: I) -> Result<Vec<Self>, usize>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .filter(|e| !e.as_ref().trim().is_empty())
            .enumerate()
            .map(|(i, e)| Self::parse(e.as_ref()).ok_or(i))
            .collect()
    }

    /// Whether `address` (an IPv4-mapped one as IPv4) is in the block.
    pub fn contains(&self, address: IpAddr) -> bool {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
            IpAddr::V6(v6) => (u128::from(v6), false),
        };
        let address = match address {
            // A v4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let ((net, net_v4), (addr, addr_v4)) = (bits(self.network), bits(address));
        if net_v4 != addr_v4 {
            return false;
        }
        // A v4 network sits in the top 32 bits, so its prefix counts from the top as a v6 one.
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        net & mask == addr & mask
    }
}

/// A peer address inserted as a plain `SocketAddr` in the request's extensions, as a hand-made
/// hyper server can. The framework glue reads its own first: axum's `ConnectInfo`, tonic's
/// `TcpConnectInfo`.
pub fn socket_addr_of<B>(request: &Request<B>) -> Option<IpAddr> {
    request.extensions().get::<SocketAddr>().map(SocketAddr::ip)
}

/// The source of a request from `peer` with `headers`: the peer, unless it is one of
/// `trusted` proxies; then the last address in `header` that is not itself a trusted proxy,
/// read from the right, since only the entries our proxies appended can be believed. `None`
/// when no peer address is known.
pub fn source_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[Cidr],
    header: ForwardedHeader,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    // Borrowed from the header values: a hop is looked at, never kept.
    let hops: Vec<&str> = match header {
        ForwardedHeader::XForwardedFor => headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect(),
        ForwardedHeader::Forwarded => headers
            .get_all(FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for")
                        .then(|| value.trim_matches('"'))
                })
            })
            .collect(),
    };
    for hop in hops.iter().rev() {
        let Some(address) = parse_hop(hop) else {
            // Garbage where an address should be: the chain cannot be followed further; the
            // last trusted hop is the best we know.
            return Some(peer);
        };
        if !trusted.iter().any(|c| c.contains(address)) {
            return Some(address);
        }
    }
    Some(peer)
}

/// An address as a forwarding header writes it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(address) = hop.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .and_then(|(address, _)| address.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    }

    fn source(request: &Request<()>, trusted: &[Cidr], header: ForwardedHeader) -> Option<IpAddr> {
        source_address(socket_addr_of(request), request.headers(), trusted, header)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            !Cidr::parse("fd00::/8")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        // The same block, written IPv4-mapped, matches the same peers.
        let mapped = Cidr::parse("::ffff:10.1.0.0/112").unwrap();
        assert_eq!(mapped, net);
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("10.2.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::1/129", ""] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    /// SECURITY.md X3.
    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        // An untrusted peer's headers are ignored: it could write anything there.
        let xff = ForwardedHeader::XForwardedFor;
        let direct = request("192.0.2.7:5000", &[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(source(&direct, &trusted, xff), ip("192.0.2.7"));
        // Through our proxy: the rightmost address that is not one of ours.
        let proxied = request(
            "10.0.0.5:443",
            &[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.6")],
        );
        assert_eq!(source(&proxied, &trusted, xff), ip("203.0.113.9"));
        let forwarded = request(
            "10.0.0.5:443",
            &[(
                "forwarded",
                r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#,
            )],
        );
        assert_eq!(
            source(&forwarded, &trusted, ForwardedHeader::Forwarded),
            ip("2001:db8::7")
        );
        // Only the configured header counts: a client's own `Forwarded`, which a proxy that
        // appends to X-Forwarded-For passes through, names nothing.
        let both = request(
            "10.0.0.5:443",
            &[
                ("forwarded", "for=198.51.100.1"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        );
        assert_eq!(source(&both, &trusted, xff), ip("203.0.113.9"));
        let forged = request("10.0.0.5:443", &[("forwarded", "for=198.51.100.1")]);
        assert_eq!(source(&forged, &trusted, xff), ip("10.0.0.5"));
        // Our proxy with nothing to say, or garbage: the proxy itself.
        assert_eq!(
            source(&request("10.0.0.5:443", &[]), &trusted, xff),
            ip("10.0.0.5")
        );
        let garbage = request("10.0.0.5:443", &[("x-forwarded-for", "1.1.1.1, not-an-ip")]);
        assert_eq!(source(&garbage, &trusted, xff), ip("10.0.0.5"));
        // No peer address: no source.
        assert_eq!(source(&Request::new(()), &trusted, xff), None);
    }
}
