//! Serving HTTPS with client certificates, so that certificate-bound tokens (RFC 8705) can
//! be checked: a [`TlsListener`] accepts TCP connections, runs their TLS handshakes
//! concurrently (each bounded by a timeout), and yields each connection with a [`TlsPeer`]:
//! its address and the client certificate it presented, whose thumbprint is computed once
//! per connection.
//!
//! With axum, serve with `into_make_service_with_connect_info::<TlsPeer>()`: every request then
//! carries `ConnectInfo<TlsPeer>`, which the auth layer reads (the certificate for bound
//! tokens, the address for `AUTH_FAILURE_LIMIT`).
//!
//! ```no_run
//! # async fn run(config: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! use tower_auth::{AuthLayer, TlsPeer, tls::TlsListener};
//!
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(AuthLayer::from_env().expect("auth configuration"));
//! let tcp = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! axum::serve(
//!     TlsListener::new(tcp, config),
//!     app.into_make_service_with_connect_info::<TlsPeer>(),
//! )
//! .await
//! # }
//! ```
//!
//! A hyper server calls [`TlsListener::accept`] itself and inserts the [`TlsPeer`] (or its
//! [`PeerCertificate`]) into each request's extensions. The rustls `ServerConfig` decides
//! whether a certificate is asked for: `WebPkiClientVerifier::builder(roots)
//! .allow_unauthenticated()` asks for one signed by `roots` without requiring it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower_auth_core::PeerCertificate;

use crate::TlsPeer;

/// How long a TLS handshake may take unless [`TlsListener::handshake_timeout`] says otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many handshakes run at once unless [`TlsListener::max_handshakes`] says
/// otherwise; further connections wait in the kernel's backlog.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1024;

type Handshake = Option<(TlsStream<TcpStream>, TlsPeer)>;

/// A TCP listener that yields TLS connections with their [`TlsPeer`]; see the
/// [module docs](self).
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Handshake>,
    timeout: Duration,
    max_handshakes: usize,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Serves TLS with `config` on the connections `tcp` accepts.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
        }
    }

    /// How long one handshake may take before its connection is closed.
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many handshakes may run at once (at least one).
    #[must_use]
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next connection whose handshake succeeded. Failed and timed-out handshakes are
    /// dropped (logged at debug level); a slow one never holds up the others. Cancel-safe.
    pub async fn accept(&mut self) -> (TlsStream<TcpStream>, TlsPeer) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept(), if self.handshakes.len() < self.max_handshakes => {
                    match accepted {
                        Ok((stream, remote_addr)) => {
                            let acceptor = self.acceptor.clone();
                            let timeout = self.timeout;
                            self.handshakes
                                .spawn(handshake(acceptor, stream, remote_addr, timeout));
                        }
                        Err(error) => accept_error(error).await,
                    }
                }
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote_addr: std::net::SocketAddr,
    timeout: Duration,
) -> Handshake {
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(target: "auth", peer = %remote_addr, %error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(target: "auth", peer = %remote_addr, "TLS handshake timed out");
            return None;
        }
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| PeerCertificate::from_der(der.as_ref()));
    Some((
        stream,
        TlsPeer {
            remote_addr,
            certificate,
        },
    ))
}

/// Errors of one connection are skipped; others (out of file descriptors) wait a moment, as
/// axum's own listener does, rather than spin.
async fn accept_error(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(target: "auth", %error, "accepting a TCP connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        TlsListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(TlsPeer {
            remote_addr: self.tcp.local_addr()?,
            certificate: None,
        })
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for TlsPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}
