//! A certificate authority for the mutual-TLS tests (RFC 8705): a CA made with rcgen, a
//! server certificate for 127.0.0.1 and client certificates, written as PEM files.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use tower_auth_core::certificate_thumbprint;

/// A CA made by the test, a server certificate for 127.0.0.1 and client certificates, all
/// written as PEM files into `dir`.
pub struct Pki {
    pub ca: Issuer<'static, KeyPair>,
    pub ca_der: CertificateDer<'static>,
    dir: tempfile::TempDir,
}

/// A client certificate and its key.
pub struct ClientCert {
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
    pub cert_file: String,
    pub key_file: String,
}

impl ClientCert {
    pub fn thumbprint(&self) -> String {
        certificate_thumbprint(&self.der)
    }

    pub fn pem(&self) -> String {
        std::fs::read_to_string(&self.cert_file).unwrap()
    }
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tower-auth mTLS test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        Self {
            ca_der: cert.der().clone(),
            ca: Issuer::new(params, key),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// The server's certificate and key files, for 127.0.0.1.
    pub fn server_files(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        std::fs::write(self.path("server.pem"), cert.pem()).unwrap();
        std::fs::write(self.path("server.key"), key.serialize_pem()).unwrap();
        (self.path("server.pem"), self.path("server.key"))
    }

    /// A client certificate named `name`, signed by this CA or, with `by: None`, by itself.
    pub fn client(&self, name: &str, by: Option<&Issuer<'static, KeyPair>>) -> ClientCert {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = match by {
            Some(issuer) => params.signed_by(&key, issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        let (cert_file, key_file) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        ClientCert {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_file,
            key_file,
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Escapes as nginx's `$ssl_client_escaped_cert` does: all but letters, digits and `-._~`.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A DER certificate as PEM text.
pub fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}
