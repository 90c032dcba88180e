//! The connection's peer address, where the server put it in the request's extensions.

use std::net::IpAddr;

use http::Request;

/// axum's `ConnectInfo<SocketAddr>` (`into_make_service_with_connect_info`), or a plain
/// `SocketAddr` that a hyper server inserted.
pub(super) fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(addr.ip());
    }
    tower_auth_core::socket_addr_of(request)
}
