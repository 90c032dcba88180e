//! Certificate-bound access tokens (RFC 8705 section 3): the client certificate of a request's
//! connection, its SHA-256 thumbprint, the token's `cnf["x5t#S256"]`, and the headers a
//! TLS-terminating proxy forwards a client certificate in.
//!
//! A token bound to a certificate is usable only over a connection that presented that
//! certificate: a thief who copied the token lacks the private key. The server puts the
//! connection's certificate into each request's extensions as a [`PeerCertificate`] (the
//! `tls` feature of `tower-auth` has an acceptor that does); behind a proxy, the proxy's
//! [`ClientCertHeader`] says which certificate the client presented to it.
//!
//! ```
//! use tower_auth_core::{AuthMethod, Identity, PeerCertificate, confirm_certificate};
//!
//! let certificate = PeerCertificate::from_der(b"a DER certificate".to_vec());
//! let bound = Identity::builder("u1", AuthMethod::Oidc { issuer: "https://idp".into() })
//!     .bound_certificate(certificate.thumbprint())
//!     .build();
//! assert!(confirm_certificate(&bound, Some(certificate.thumbprint())).is_ok());
//! let refused = confirm_certificate(&bound, None).unwrap_err();
//! assert_eq!(refused.http_status(), 401);
//! assert_eq!(refused.body(), r#"{"error":"invalid_token"}"#);
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{AuthError, Identity};

/// The `x-forwarded-client-cert` header as Envoy writes it.
const XFCC: &str = "x-forwarded-client-cert";

/// A forwarded certificate header longer than this is not read: a certificate chain of a few
/// certificates, url-encoded, fits many times over, and parsing stays bounded.
pub const MAX_CLIENT_CERT_HEADER_LEN: usize = 32 * 1024;

/// The RFC 8705 thumbprint of a DER-encoded certificate: base64url (no padding) of its SHA-256,
/// as a token's `cnf["x5t#S256"]` carries it.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The client certificate that a request's TLS connection presented, with its thumbprint,
/// computed once per connection. A server inserts it into each request's extensions; cloning
/// it is one reference count.
#[derive(Clone)]
pub struct PeerCertificate(Arc<PeerInner>);

struct PeerInner {
    der: Box<[u8]>,
    thumbprint: Box<str>,
}

impl PeerCertificate {
    /// The certificate (DER, the end-entity certificate the client presented first).
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        let der: Vec<u8> = der.into();
        let thumbprint = certificate_thumbprint(&der).into_boxed_str();
        Self(Arc::new(PeerInner {
            der: der.into_boxed_slice(),
            thumbprint,
        }))
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.0.der
    }

    /// Its RFC 8705 `x5t#S256` thumbprint.
    pub fn thumbprint(&self) -> &str {
        &self.0.thumbprint
    }
}

impl fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerCertificate")
            .field("x5t#S256", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

/// The certificate a token is bound to, from its claims: `cnf["x5t#S256"]` when `cnf` is an
/// object that has it. A value that is not a string is kept as an empty thumbprint, which no
/// certificate has: the token is bound, to nothing a client can present.
pub fn certificate_binding(claims: &Map<String, Value>) -> Option<String> {
    let value = claims.get("cnf")?.as_object()?.get("x5t#S256")?;
    Some(value.as_str().unwrap_or_default().to_owned())
}

/// Whether `identity` may be used with the certificate whose thumbprint is `presented`: an
/// identity not bound to a certificate always may; a bound one only with that certificate
/// (RFC 8705 section 3), otherwise `invalid_token`.
pub fn confirm_certificate(identity: &Identity, presented: Option<&str>) -> Result<(), AuthError> {
    match (identity.bound_certificate(), presented) {
        (None, _) => Ok(()),
        (Some(bound), Some(presented)) if !bound.is_empty() && bound == presented => Ok(()),
        (Some(_), None) => Err(AuthError::invalid_token("certificate_binding_missing")),
        (Some(_), Some(_)) => Err(AuthError::invalid_token("certificate_binding_mismatch")),
    }
}

/// How a TLS-terminating proxy forwards the client's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCertFormat {
    /// Envoy's `x-forwarded-client-cert`: elements separated by `,`, each `key=value` pairs
    /// separated by `;`; the thumbprint comes from `Hash` (hex SHA-256 of the DER) or from
    /// `Cert` (the url-encoded PEM). Only the last element is read: the one the proxy in front
    /// of us appended, describing the connection it received; earlier ones came with the
    /// request and may be the client's own.
    EnvoyXfcc,
    /// A url-encoded PEM certificate, as nginx's `$ssl_client_escaped_cert` writes it (and
    /// AWS ALB's `X-Amzn-Mtls-Clientcert`); the first certificate is the client's.
    UrlEncodedPem,
}

/// The header a TLS-terminating proxy forwards the client certificate in
/// (`AUTH_CLIENT_CERT_HEADER`), read only from a trusted proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertHeader {
    name: HeaderName,
    format: ClientCertFormat,
}

impl ClientCertHeader {
    /// The header `name`: `x-forwarded-client-cert` is Envoy's format, any other name a
    /// url-encoded PEM. `None` when `name` is not a header name.
    pub fn parse(name: &str) -> Option<Self> {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let format = if name == XFCC {
            ClientCertFormat::EnvoyXfcc
        } else {
            ClientCertFormat::UrlEncodedPem
        };
        Some(Self { name, format })
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// How its value is read.
    pub fn format(&self) -> ClientCertFormat {
        self.format
    }

    /// The thumbprint of the certificate the header carries. `None` when the header is
    /// missing, repeated, over [`MAX_CLIENT_CERT_HEADER_LEN`] or unreadable: no certificate.
    pub fn thumbprint(&self, headers: &HeaderMap) -> Option<String> {
        let mut values = headers.get_all(&self.name).iter();
        let value = values.next()?;
        if values.next().is_some() || value.len() > MAX_CLIENT_CERT_HEADER_LEN {
            return None;
        }
        let value = value.to_str().ok()?;
        match self.format {
            ClientCertFormat::EnvoyXfcc => xfcc_thumbprint(value),
            ClientCertFormat::UrlEncodedPem => pem_thumbprint(&percent_decode(value)?),
        }
    }
}

/// The thumbprint from the last element of an `x-forwarded-client-cert` value: its `Hash`,
/// or its `Cert`'s. An element with two of either, or whose `Hash` is not its `Cert`'s, is
/// no certificate: which of them the proxy wrote cannot be told. SECURITY.md L6.
fn xfcc_thumbprint(value: &str) -> Option<String> {
    let element = split_unquoted(value, b',').pop()?;
    let (mut hash, mut cert) = (None, None);
    for pair in split_unquoted(element, b';') {
        let (key, value) = pair.trim().split_once('=')?;
        let value = unquote(value.trim())?;
        let slot = match key.trim() {
            key if key.eq_ignore_ascii_case("hash") => &mut hash,
            key if key.eq_ignore_ascii_case("cert") => &mut cert,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let from_hash = match hash {
        Some(hash) => {
            let digest = hex::decode(hash).ok().filter(|d| d.len() == 32)?;
            Some(URL_SAFE_NO_PAD.encode(digest))
        }
        None => None,
    };
    let from_cert = match cert {
        Some(cert) => Some(pem_thumbprint(&percent_decode(&cert)?)?),
        None => None,
    };
    match (from_hash, from_cert) {
        (Some(a), Some(b)) => (a == b).then_some(a),
        (a, b) => a.or(b),
    }
}

/// Splits at `separator` outside double quotes (a `\` escapes the next character inside).
fn split_unquoted(value: &str, separator: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, byte) in value.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b if b == separator && !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A value as written, or the inside of a quoted one with its `\` escapes undone; `None` for
/// an unterminated quote.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// Undoes `%XX` escapes (a `+` stays a `+`: it is a base64 character here, not a space).
/// `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The thumbprint of the first certificate of a PEM text.
fn pem_thumbprint(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let body = &pem[pem.find(BEGIN)? + BEGIN.len()..];
    let body = &body[..body.find(END)?];
    let base64: String = body.split_ascii_whitespace().collect();
    let der = STANDARD.decode(base64).ok().filter(|der| !der.is_empty())?;
    Some(certificate_thumbprint(&der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthMethod;

    const DER: &[u8] = b"not a real certificate, but bytes a thumbprint is taken of";

    fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    /// Escapes as nginx and Envoy do: everything but letters, digits and `-._~`.
    fn url_encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn bound(thumbprint: &str) -> Identity {
        Identity::builder("u", AuthMethod::Oidc { issuer: "i".into() })
            .bound_certificate(thumbprint)
            .build()
    }

    #[test]
    fn the_thumbprint_is_base64url_sha256_of_the_der() {
        // RFC 8705 section 3.1: base64url-encoded SHA-256 of the DER, without padding.
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(DER));
        assert_eq!(certificate_thumbprint(DER), expected);
        assert_eq!(expected.len(), 43);
        assert_eq!(PeerCertificate::from_der(DER).thumbprint(), expected);
        assert_eq!(PeerCertificate::from_der(DER).der(), DER);
    }

    #[test]
    fn the_binding_is_read_from_cnf() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let x5t = certificate_thumbprint(DER);
        assert_eq!(
            certificate_binding(&claims(serde_json::json!({"cnf": {"x5t#S256": x5t}}))),
            Some(x5t.clone())
        );
        assert_eq!(
            certificate_binding(&claims(serde_json::json!({"cnf": {"jkt": "k"}}))),
            None
        );
        assert_eq!(certificate_binding(&claims(serde_json::json!({}))), None);
        // Bound, to something no certificate matches.
        assert_eq!(
            certificate_binding(&claims(serde_json::json!({"cnf": {"x5t#S256": 7}}))),
            Some(String::new())
        );
    }

    /// SECURITY.md L1.
    #[test]
    fn a_bound_identity_needs_its_certificate() {
        let x5t = certificate_thumbprint(DER);
        let identity = bound(&x5t);
        assert!(confirm_certificate(&identity, Some(&x5t)).is_ok());
        let other = certificate_thumbprint(b"another certificate");
        for presented in [None, Some(other.as_str()), Some("")] {
            let error = confirm_certificate(&identity, presented).unwrap_err();
            assert_eq!(error.http_status(), 401);
            assert_eq!(error.body(), r#"{"error":"invalid_token"}"#);
        }
        // An unbound identity works with or without a certificate.
        let unbound = Identity::builder("u", AuthMethod::Oidc { issuer: "i".into() }).build();
        assert!(confirm_certificate(&unbound, None).is_ok());
        assert!(confirm_certificate(&unbound, Some(&x5t)).is_ok());
    }

    /// SECURITY.md L3.
    #[test]
    fn a_malformed_binding_matches_no_certificate() {
        let identity = bound("");
        assert!(confirm_certificate(&identity, Some("")).is_err());
        // Padded, or in standard base64: not the canonical text, not the same thumbprint.
        let padded = format!("{}=", certificate_thumbprint(DER));
        assert!(confirm_certificate(&bound(&padded), Some(&certificate_thumbprint(DER))).is_err());
    }

    #[test]
    fn nginx_url_encoded_pem_is_read() {
        let header = ClientCertHeader::parse("X-SSL-Client-Cert").unwrap();
        assert_eq!(header.format(), ClientCertFormat::UrlEncodedPem);
        let value = url_encode(&pem(DER));
        assert_eq!(
            header.thumbprint(&headers("x-ssl-client-cert", &[&value])),
            Some(certificate_thumbprint(DER))
        );
        // A chain: the first certificate is the client's.
        let chain = url_encode(&format!("{}{}", pem(DER), pem(b"issuer")));
        assert_eq!(
            header.thumbprint(&headers("x-ssl-client-cert", &[&chain])),
            Some(certificate_thumbprint(DER))
        );
    }

    #[test]
    fn envoy_xfcc_is_read_from_hash_or_cert_of_the_last_element() {
        let header = ClientCertHeader::parse("X-Forwarded-Client-Cert").unwrap();
        assert_eq!(header.format(), ClientCertFormat::EnvoyXfcc);
        let x5t = certificate_thumbprint(DER);
        let hash = hex::encode(Sha256::digest(DER));
        let cert = url_encode(&pem(DER));
        let read = |v: &str| header.thumbprint(&headers(XFCC, &[v]));
        assert_eq!(
            read(&format!(
                "By=spiffe://cluster.local/ns/default/sa/api;Hash={hash};Subject=\"CN=client,O=Example; Inc\";URI=spiffe://x"
            )),
            Some(x5t.clone())
        );
        assert_eq!(
            read(&format!("By=spiffe://a;Cert=\"{cert}\";Subject=\"\"")),
            Some(x5t.clone())
        );
        // An element the client sent first, the proxy's appended last: the last one counts.
        let forged = hex::encode(Sha256::digest(b"forged"));
        assert_eq!(
            read(&format!("Hash={forged};Subject=\"a,b\",Hash={hash}")),
            Some(x5t.clone())
        );
        assert_eq!(read(&format!("Hash={hash},Hash={forged}")), {
            Some(URL_SAFE_NO_PAD.encode(Sha256::digest(b"forged")))
        });
        // Both members of one element must agree, and each may appear once.
        assert_eq!(
            read(&format!("Hash={hash};Cert=\"{cert}\"")),
            Some(x5t.clone())
        );
        assert_eq!(read(&format!("Hash={forged};Cert=\"{cert}\"")), None);
        assert_eq!(read(&format!("Hash={hash};Hash={forged}")), None);
        assert_eq!(read(&format!("Cert=\"{cert}\";Cert=\"{cert}\"")), None);
    }

    /// SECURITY.md L6.
    #[test]
    fn unreadable_forwarded_certificates_are_no_certificate() {
        let xfcc = ClientCertHeader::parse(XFCC).unwrap();
        let pem_header = ClientCertHeader::parse("x-client-cert").unwrap();
        let hash = hex::encode(Sha256::digest(DER));
        for value in [
            "Hash=abcd".to_owned(),
            "Hash=zz".to_owned(),
            "Subject=\"CN=a\"".to_owned(),
            "Cert=\"unterminated".to_owned(),
            "Cert=\"%ZZ\"".to_owned(),
            "no pairs here".to_owned(),
            String::new(),
        ] {
            assert_eq!(xfcc.thumbprint(&headers(XFCC, &[&value])), None, "{value}");
        }
        // Two headers: which one the proxy wrote cannot be told.
        let one = format!("Hash={hash}");
        assert_eq!(xfcc.thumbprint(&headers(XFCC, &[&one, &one])), None);
        let long = format!("Hash={hash};Subject=\"{}\"", "a".repeat(40_000));
        assert_eq!(xfcc.thumbprint(&headers(XFCC, &[&long])), None);
        for value in [
            "-----BEGIN CERTIFICATE-----%0A!!!%0A-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----%0A%0A-----END CERTIFICATE-----",
            "MIIBxTCCAW",
            "%E2%28%A1",
        ] {
            assert_eq!(
                pem_header.thumbprint(&headers("x-client-cert", &[value])),
                None,
                "{value}"
            );
        }
        assert!(ClientCertHeader::parse("not a header").is_none());
    }

    #[test]
    fn debug_shows_the_thumbprint_only() {
        let shown = format!("{:?}", PeerCertificate::from_der(DER));
        assert!(shown.contains(&certificate_thumbprint(DER)), "{shown}");
    }
}
