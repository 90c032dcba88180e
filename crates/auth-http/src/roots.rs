//! Whom the client trusts: the platform's certificate store, the Mozilla roots of
//! `webpki-roots`, and any [`CaBundle`] the configuration adds.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A CA file larger than this is refused unread: a bundle of every public root is about
/// 250 KiB, and a path such as `/dev/zero` must not hang start-up.
pub const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// Why a CA bundle was refused. `Display` follows the path of the file (`/etc/idp-ca.pem:
/// holds no certificate`) and never quotes what the file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaError {
    /// The file could not be opened or read.
    Unreadable(std::io::ErrorKind),
    /// The file is over [`MAX_CA_FILE`].
    TooLarge,
    /// No `CERTIFICATE` section.
    NoCertificate,
    /// A PEM section that does not parse (no end line, bad base64), or a `CERTIFICATE`
    /// section that is not an X.509 certificate.
    Malformed,
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(kind) => write!(f, "cannot be read ({kind})"),
            Self::TooLarge => write!(f, "is larger than {MAX_CA_FILE} bytes"),
            Self::NoCertificate => f.write_str("holds no PEM certificate"),
            Self::Malformed => f.write_str("is not a well-formed PEM file of X.509 certificates"),
        }
    }
}

impl std::error::Error for CaError {}

/// Certificates of certificate authorities to trust besides the platform's and the webpki
/// roots: a private IdP's CA. Cloning is one reference count.
///
/// ```
/// use tower_auth_http::{CaBundle, CaError};
///
/// assert_eq!(CaBundle::from_pem(b"no PEM here").unwrap_err(), CaError::NoCertificate);
/// let truncated = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
/// assert_eq!(CaBundle::from_pem(truncated).unwrap_err(), CaError::Malformed);
/// ```
#[derive(Clone)]
pub struct CaBundle {
    certs: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl CaBundle {
    /// The `CERTIFICATE` sections of a PEM text (other sections are skipped), each checked
    /// to be a certificate that can serve as a trust anchor.
    ///
    /// # Errors
    /// [`CaError::Malformed`] or [`CaError::NoCertificate`].
    pub fn from_pem(pem: &[u8]) -> Result<Self, CaError> {
        let mut certs = Vec::new();
        let mut check = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| CaError::Malformed)?;
            check.add(cert.clone()).map_err(|_| CaError::Malformed)?;
            certs.push(cert);
        }
        if certs.is_empty() {
            return Err(CaError::NoCertificate);
        }
        Ok(Self {
            certs: certs.into(),
        })
    }

    /// Reads a PEM file of one or more certificates (at most [`MAX_CA_FILE`] bytes).
    ///
    /// # Errors
    /// [`CaError::Unreadable`], [`CaError::TooLarge`], or as [`from_pem`](Self::from_pem).
    pub fn read(path: &Path) -> Result<Self, CaError> {
        let unreadable = |e: std::io::Error| CaError::Unreadable(e.kind());
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut pem = Vec::new();
        file.take(MAX_CA_FILE + 1)
            .read_to_end(&mut pem)
            .map_err(unreadable)?;
        if pem.len() as u64 > MAX_CA_FILE {
            return Err(CaError::TooLarge);
        }
        Self::from_pem(&pem)
    }

    /// How many certificates the bundle holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Always `false`: a bundle holds at least one certificate.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// The platform's store, read once per process: an operator adds a private CA there, and
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere. Unreadable entries are skipped, with one
/// warning that says so (a mistyped `SSL_CERT_FILE` would otherwise fail every handshake with
/// a private CA and no word why); the webpki roots still stand where a container has no store
/// at all.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static NATIVE: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if let Some(first) = loaded.errors.first() {
            tracing::warn!(
                target: "auth",
                event = "native_roots_unreadable",
                errors = loaded.errors.len(),
                first = %first,
                certificates = loaded.certs.len(),
                "part of the platform's certificate store could not be read (SSL_CERT_FILE, SSL_CERT_DIR or the system store); it is skipped"
            );
        }
        loaded.certs
    })
}

/// The certificates of the platform's store and of `extra`, as one PEM text: the trust of a
/// TLS client that takes its roots as PEM (the Redis client of tower-auth-hmac). The webpki
/// roots are trust anchors, not certificates, and are not part of it.
pub fn trusted_certificates_pem(extra: &[&CaBundle]) -> String {
    use base64::Engine as _;
    let mut pem = String::new();
    let certs = native_roots()
        .iter()
        .chain(extra.iter().flat_map(|bundle| bundle.certs.iter()));
    for cert in certs {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            // Base64 is ASCII.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The webpki roots, the platform's, and `extra`.
pub(crate) fn root_store(extra: &[&CaBundle]) -> RootCertStore {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(native_roots().iter().cloned());
    for bundle in extra {
        // Each was checked by `from_pem`.
        roots.add_parsable_certificates(bundle.certs.iter().cloned());
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed CA certificate (P-256) made with openssl for this test, valid until 2126;
    // its key was thrown away.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBpTCCAUugAwIBAgIUNk0IefD8PFsRMySeNdULJEt+lngwCgYIKoZIzj0EAwIw
JzElMCMGA1UEAwwcdG93ZXItYXV0aC1odHRwIHVuaXQgdGVzdCBDQTAgFw0yNjEx
MzAwNzUxNTFaGA8yMTI2MTEwNjA3NTE1MVowJzElMCMGA1UEAwwcdG93ZXItYXV0
aC1odHRwIHVuaXQgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJDO
X+/77H+6AhJCwowX8TiGluuwyoQIHnbvTCimNClWi1SeRYDy5bAt6Hb50dfIkxpf
FGD0qkbcanvj8llQE4ijUzBRMB0GA1UdDgQWBBQzRi6nSMxGXVd1WLTkReEEvhap
8jAfBgNVHSMEGDAWgBQzRi6nSMxGXVd1WLTkReEEvhap8jAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0gAMEUCIC8DfGB1OrOEvdDPufT7BK0PYPw6f9UewpQd
imosRVS4AiEA/tzZgC6nDhktRhEyFelm5rN8Re478V1oR6QGmjHTSHY=
-----END CERTIFICATE-----
";

    /// SECURITY.md G5.
    #[test]
    fn a_bundle_is_one_or_more_certificates_and_nothing_else_counts() {
        assert_eq!(CaBundle::from_pem(CERT.as_bytes()).unwrap().len(), 1);
        let two = format!("# a comment line\n{CERT}\n{CERT}");
        assert_eq!(CaBundle::from_pem(two.as_bytes()).unwrap().len(), 2);
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        for (pem, error) in [
            ("", CaError::NoCertificate),
            ("hello", CaError::NoCertificate),
            (key_only, CaError::NoCertificate),
            ("-----BEGIN CERTIFICATE-----\nMIIB\n", CaError::Malformed),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                CaError::Malformed,
            ),
            (
                // Base64 that is not DER.
                "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
                CaError::Malformed,
            ),
        ] {
            assert_eq!(
                CaBundle::from_pem(pem.as_bytes()).unwrap_err(),
                error,
                "{pem}"
            );
        }
        // One bad certificate spoils the bundle: a half-trusted file is a mistake to report.
        let mixed =
            format!("{CERT}-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
        assert_eq!(
            CaBundle::from_pem(mixed.as_bytes()).unwrap_err(),
            CaError::Malformed
        );
    }

    #[test]
    fn the_trusted_pem_holds_the_extra_bundle_and_parses_back() {
        let bundle = CaBundle::from_pem(CERT.as_bytes()).unwrap();
        let pem = trusted_certificates_pem(&[&bundle]);
        let back: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back.len(), native_roots().len() + 1);
        assert_eq!(back.last(), bundle.certs.first());
        assert!(
            pem.ends_with(CERT),
            "64-column lines, as openssl writes them"
        );
    }

    /// SECURITY.md G5.
    #[test]
    fn reading_names_the_failure_and_never_the_contents() {
        let missing = CaBundle::read(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert_eq!(missing, CaError::Unreadable(std::io::ErrorKind::NotFound));
        assert!(missing.to_string().starts_with("cannot be read"));
        let dir = tempfile::tempdir().unwrap();
        let secretish = dir.path().join("key.pem");
        std::fs::write(
            &secretish,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = CaBundle::read(&secretish).unwrap_err();
        assert_eq!(error, CaError::NoCertificate);
        assert!(!format!("{error} {error:?}").contains("c2VjcmV0"));
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; MAX_CA_FILE as usize + 1]).unwrap();
        assert_eq!(CaBundle::read(&big).unwrap_err(), CaError::TooLarge);
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, CERT).unwrap();
        let bundle = CaBundle::read(&good).unwrap();
        assert_eq!(format!("{bundle:?}"), "CaBundle { certificates: 1 }");
    }

    #[test]
    fn extra_roots_are_added_to_the_public_ones() {
        let public = root_store(&[]).len();
        assert!(public >= webpki_roots::TLS_SERVER_ROOTS.len());
        let bundle = CaBundle::from_pem(CERT.as_bytes()).unwrap();
        assert_eq!(root_store(&[&bundle, &bundle]).len(), public + 2);
    }
}
