//! A client certificate and its private key for mutual TLS (RFC 8705): the token request of
//! `tls_client_auth` / `self_signed_tls_client_auth` clients, and tokens bound to the
//! certificate, presented again on the calls that use them.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::HttpError;
use crate::roots::CaBundle;

/// Why a client certificate could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCertError {
    /// The certificate or key file could not be read.
    Unreadable(std::io::ErrorKind),
    /// No `CERTIFICATE` section, or one that does not parse.
    NoCertificate,
    /// No private key (PKCS#8, PKCS#1 or SEC1 PEM), or one that does not parse.
    NoKey,
    /// The key does not belong to the certificate, or rustls cannot use it.
    Unusable,
}

impl fmt::Display for ClientCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(kind) => write!(f, "cannot be read ({kind})"),
            Self::NoCertificate => f.write_str("holds no PEM certificate"),
            Self::NoKey => f.write_str("holds no PEM private key"),
            Self::Unusable => f.write_str("the key does not fit the certificate"),
        }
    }
}

impl std::error::Error for ClientCertError {}

/// A client certificate chain (the client's own certificate first) and its private key. The
/// key never appears in `Debug` output; cloning shares it.
#[derive(Clone)]
pub struct ClientCertificate {
    chain: Arc<[CertificateDer<'static>]>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .field("chain", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ClientCertificate {
    /// From PEM texts: the chain (client certificate first, then intermediates) and the key.
    ///
    /// # Errors
    /// [`ClientCertError::NoCertificate`], [`ClientCertError::NoKey`], or
    /// [`ClientCertError::Unusable`] when rustls refuses the pair (a key of another
    /// certificate).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, ClientCertError> {
        let chain: Vec<_> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|_| ClientCertError::NoCertificate)?;
        if chain.is_empty() {
            return Err(ClientCertError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| ClientCertError::NoKey)?;
        let certificate = Self {
            chain: chain.into(),
            key: Arc::new(key),
        };
        // Checked once here, so that building a client with it later cannot fail.
        certificate
            .tls_config(&[])
            .map_err(|_| ClientCertError::Unusable)?;
        Ok(certificate)
    }

    /// [`from_pem`](Self::from_pem) of two files (they may be the same file).
    ///
    /// # Errors
    /// [`ClientCertError::Unreadable`], or as [`from_pem`](Self::from_pem).
    pub fn from_pem_files(chain: &Path, key: &Path) -> Result<Self, ClientCertError> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| ClientCertError::Unreadable(e.kind()));
        Self::from_pem(&read(chain)?, &read(key)?)
    }

    /// The client's own certificate, DER.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The RFC 8705 `x5t#S256` thumbprint of the client's certificate: what a token bound to
    /// it carries in `cnf`.
    pub fn thumbprint(&self) -> String {
        tower_auth_core::certificate_thumbprint(self.certificate())
    }

    /// A rustls client configuration that presents this certificate and trusts the platform's
    /// store, the webpki roots and `extra`: for the outgoing calls that use a token bound to
    /// the certificate (a hyper-rustls `HttpsConnectorBuilder::with_tls_config`, or a tonic
    /// channel through such a connector).
    ///
    /// # Errors
    /// [`HttpError::NoCryptoBackend`] or [`HttpError::Tls`].
    pub fn tls_config(&self, extra: &[&CaBundle]) -> Result<rustls::ClientConfig, HttpError> {
        crate::client::tls_config(extra, Some(self))
    }

    pub(crate) fn parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.to_vec(), self.key.clone_key())
    }
}
