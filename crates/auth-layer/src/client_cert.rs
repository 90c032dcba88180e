//! Certificate-bound tokens (RFC 8705 section 3) on the request path: an identity bound to a
//! client certificate holds only when the request's connection presented that certificate.
//!
//! The connection's certificate is read, in this order, from
//! 1. the header named by `AUTH_CLIENT_CERT_HEADER`
//!    ([`AuthLayerBuilder::client_cert_header`](crate::AuthLayerBuilder::client_cert_header)),
//!    only when the peer is one of `AUTH_TRUSTED_PROXIES` (a TLS-terminating proxy); from any
//!    other peer the header is ignored;
//! 2. the request's extensions: a [`PeerCertificate`], a [`TlsPeer`], or axum's
//!    `ConnectInfo<TlsPeer>` (what [`TlsListener`](crate::tls::TlsListener) gives).
//!
//! The thumbprint of a connection's certificate is computed once per connection; the check
//! per request is one comparison of two 43-byte strings. Unbound identities cost one branch.

use std::borrow::Cow;

use http::Request;
use tower_auth_core::{AuthError, Identity, PeerCertificate, confirm_certificate};

use crate::limits::SourceLimits;

/// What a TLS server knows of a connection: its peer address and the client certificate it
/// presented, if any. [`TlsListener`](crate::tls::TlsListener) yields one per connection (axum
/// puts it in each request as `ConnectInfo<TlsPeer>`); a hand-made server may insert it into
/// each request's extensions itself. The auth layer reads the peer address and the
/// certificate from either.
#[derive(Clone, Debug)]
pub struct TlsPeer {
    /// The connection's peer address.
    pub remote_addr: std::net::SocketAddr,
    /// The certificate the client presented, if it presented one.
    pub certificate: Option<PeerCertificate>,
}

impl TlsPeer {
    /// The `TlsPeer` the server put in a request's extensions, as itself or as axum's
    /// `ConnectInfo<TlsPeer>`.
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&TlsPeer> {
        if let Some(peer) = extensions.get::<TlsPeer>() {
            return Some(peer);
        }
        #[cfg(feature = "axum")]
        if let Some(axum::extract::ConnectInfo(peer)) =
            extensions.get::<axum::extract::ConnectInfo<TlsPeer>>()
        {
            return Some(peer);
        }
        None
    }
}

/// `identity`, if the request may use it: see the module docs.
pub(crate) fn confirm<B>(
    limits: &SourceLimits,
    request: &Request<B>,
    identity: Identity,
) -> Result<Identity, AuthError> {
    if identity.bound_certificate().is_none() {
        return Ok(identity);
    }
    let presented = presented(limits, request);
    confirm_certificate(&identity, presented.as_deref()).map(|()| identity)
}

/// The thumbprint of the client certificate of the request's connection, if it has one.
/// From a trusted proxy, only its header counts: a proxy's own certificate on the connection
/// to us is not its client's, so a missing or unreadable header is no certificate.
/// SECURITY.md L11.
fn presented<'r, B>(limits: &SourceLimits, request: &'r Request<B>) -> Option<Cow<'r, str>> {
    let config = limits.config();
    if let Some(header) = &config.client_cert_header
        && let Some(peer) = limits.peer(request)
        && config.trusted_proxies.iter().any(|c| c.contains(peer))
    {
        return header.thumbprint(request.headers()).map(Cow::Owned);
    }
    connection_certificate(request).map(|c| Cow::Borrowed(c.thumbprint()))
}

/// The certificate the server put in the request's extensions.
fn connection_certificate<B>(request: &Request<B>) -> Option<&PeerCertificate> {
    let extensions = request.extensions();
    if let Some(certificate) = extensions.get::<PeerCertificate>() {
        return Some(certificate);
    }
    TlsPeer::of(extensions)?.certificate.as_ref()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tower_auth_core::{AuthMethod, ClientCertHeader, certificate_thumbprint};

    use super::*;
    use crate::limits::LimitConfig;

    const DER: &[u8] = b"the client's certificate";

    fn limits(header: Option<&str>, trusted: &[&str]) -> SourceLimits {
        SourceLimits::new(LimitConfig {
            trusted_proxies: tower_auth_core::Cidr::parse_all(trusted).unwrap().into(),
            client_cert_header: header.map(|h| ClientCertHeader::parse(h).unwrap()),
            ..LimitConfig::default()
        })
    }

    fn bound() -> Identity {
        Identity::builder("u", AuthMethod::Oidc { issuer: "i".into() })
            .bound_certificate(certificate_thumbprint(DER))
            .build()
    }

    fn request(peer: &str, header: Option<(&str, String)>) -> Request<()> {
        let mut request = Request::builder();
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let mut request = request.body(()).unwrap();
        request
            .extensions_mut()
            .insert(peer.parse::<SocketAddr>().unwrap());
        request
    }

    fn xfcc(der: &[u8]) -> Option<(&'static str, String)> {
        let hash: String = tower_auth_core::sha256_digest(der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some((
            "x-forwarded-client-cert",
            format!("By=spiffe://api;Hash={hash}"),
        ))
    }

    #[test]
    fn the_connection_certificate_confirms_a_bound_identity() {
        let limits = limits(None, &[]);
        let mut with = request("192.0.2.1:1", None);
        with.extensions_mut()
            .insert(PeerCertificate::from_der(DER.to_vec()));
        assert!(confirm(&limits, &with, bound()).is_ok());
        let mut other = request("192.0.2.1:1", None);
        other.extensions_mut().insert(TlsPeer {
            remote_addr: "192.0.2.1:1".parse().unwrap(),
            certificate: Some(PeerCertificate::from_der(b"another".to_vec())),
        });
        assert!(confirm(&limits, &other, bound()).is_err());
        assert!(confirm(&limits, &request("192.0.2.1:1", None), bound()).is_err());
    }

    /// SECURITY.md L4.
    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let limits = limits(Some("x-forwarded-client-cert"), &["10.0.0.0/8"]);
        assert!(confirm(&limits, &request("10.1.2.3:5", xfcc(DER)), bound()).is_ok());
        let error = confirm(&limits, &request("192.0.2.9:5", xfcc(DER)), bound()).unwrap_err();
        assert_eq!(error.reason(), "certificate_binding_missing");
        // From the trusted proxy, another certificate is another certificate.
        let error = confirm(&limits, &request("10.1.2.3:5", xfcc(b"x")), bound()).unwrap_err();
        assert_eq!(error.reason(), "certificate_binding_mismatch");
        // No header configured: the proxy's header means nothing.
        let unset = super::tests::limits(None, &["10.0.0.0/8"]);
        assert!(confirm(&unset, &request("10.1.2.3:5", xfcc(DER)), bound()).is_err());
    }
}
