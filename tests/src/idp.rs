//! The in-process test identity provider: real discovery and JWKS over HTTP on 127.0.0.1:0,
//! or over HTTPS with a certificate from a [`TestCa`] the test makes.
//!
//! It holds signing keys (RSA, EC P-256, Ed25519, generated with aws-lc-rs), mints tokens
//! with any header and claims (or raw segments), publishes and withdraws keys, counts
//! requests, and misbehaves on demand: connections closed, responses held or hanging,
//! error statuses with `Retry-After`, redirects and garbage bodies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tower_auth_core::{AuthErrorKind, Authenticator, Check, Clock, Credential, Identity, Outcome};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The wall-clock time tests start at (2030-03-17), for `Clock::manual`.
pub const NOW: u64 = 1_900_000_000;

/// The audience the IdP's default claims carry.
pub const AUDIENCE: &str = "api";

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/jwks";
pub const INTROSPECT_PATH: &str = "/introspect";
/// The client the IdP expects at its introspection endpoint; the secret has characters that
/// RFC 6749 section 2.3.1 form-urlencodes before Basic.
pub const INTROSPECT_CLIENT_ID: &str = "resource server";
pub const INTROSPECT_SECRET: &str = "s3cret:with%odd+chars/and=more";

/// How the introspection endpoint answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Introspection {
    /// `active: true` with the token's registered claims, `active: false` for others.
    #[default]
    Normal,
    /// 503 with `Retry-After: 7`.
    Down,
    /// 200 with this body whatever the token.
    Body(String),
    /// `active: false` even for registered tokens.
    Inactive,
    /// The registered claims with another `iss`.
    ForeignIss,
}

/// A published RSA-1024 JWK and an RS256 token it signed (made once with openssl; aws-lc-rs
/// refuses to sign with keys this small). Issuer `https://small-rsa.test`, audience `api`,
/// subject `small`, `exp` in 2100.
pub const SMALL_RSA_ISSUER: &str = "https://small-rsa.test";
pub const SMALL_RSA_JWK: &str = r#"{"kty":"RSA","kid":"rsa-1024","alg":"RS256","use":"sig","n":"xdu9NyOw09CTBmRSmToniwYLgZomwvJLdpbFj5luST2zNfaWTK4J4jm_GARnS01OQh6rdDVmEW6rE6Kae7v384QMUSvYB0i4Eu_DyQTteWF6rA58MxSlzRNnUOzgxamUxmdL01qNYC1Xe7Lnips2uwRpjsyS8cqU2EqRCZuqHvs","e":"AQAB"}"#;
pub const SMALL_RSA_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xMDI0IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL3NtYWxsLXJzYS50ZXN0Iiwic3ViIjoic21hbGwiLCJhdWQiOiJhcGkiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.h9DT28c4hAKxjyIwl4hYO3P4LWlnyIgwmQah8QVR2xJeGdulW0ovw0V5j0n7nqxxOVnnxswwHVOTyk9cF7xzbN_2SThOMYan3a65dOQRf6FVCWsU0GhdeD2O4GjkJziHdV8ll9zNkoUiMiWiFH3AAz3H-Du-5_aniY-QRNZe6Qk";

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

#[derive(Clone)]
enum Private {
    Rsa(Arc<RsaKeyPair>, &'static dyn signature::RsaEncoding),
    Ec(Arc<EcdsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
}

/// A signing key and the JWK the IdP publishes for it.
#[derive(Clone)]
pub struct SigningKey {
    kid: Option<String>,
    alg: &'static str,
    private: Private,
    jwk: Value,
}

/// RSA key generation is slow in debug builds; tests share a few keys per process.
fn rsa_pair(slot: usize) -> Arc<RsaKeyPair> {
    static POOL: OnceLock<Mutex<Vec<Arc<RsaKeyPair>>>> = OnceLock::new();
    let pool = POOL.get_or_init(Mutex::default);
    let mut pool = pool.lock().unwrap();
    while pool.len() <= slot {
        pool.push(Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()));
    }
    Arc::clone(&pool[slot])
}

impl SigningKey {
    /// An RS256 key (RSA 2048). `slot` picks one of the process's shared RSA keys: keys
    /// with different slots differ.
    pub fn rsa(kid: &str, slot: usize) -> Self {
        Self::rsa_alg(kid, slot, "RS256")
    }

    /// An RSA key for `alg` (RS256/384/512, PS256/384/512).
    pub fn rsa_alg(kid: &str, slot: usize, alg: &'static str) -> Self {
        let pair = rsa_pair(slot);
        let encoding: &'static dyn signature::RsaEncoding = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            "PS512" => &signature::RSA_PSS_SHA512,
            other => panic!("not an RSA algorithm: {other}"),
        };
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": alg, "n": b64(&public.n), "e": b64(&public.e)});
        Self {
            kid: Some(kid.into()),
            alg,
            private: Private::Rsa(pair, encoding),
            jwk,
        }
    }

    /// An ES256 key (P-256).
    pub fn ec(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                         "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        Self {
            kid: Some(kid.into()),
            alg: "ES256",
            private: Private::Ec(Arc::new(pair)),
            jwk,
        }
    }

    /// An EdDSA key (Ed25519).
    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA",
                         "x": b64(pair.public_key().as_ref())});
        Self {
            kid: Some(kid.into()),
            alg: "EdDSA",
            private: Private::Ed(Arc::new(pair)),
            jwk,
        }
    }

    /// The same key, published with a changed JWK (e.g. `use: enc`, another `alg`, no `kid`).
    pub fn with_jwk(mut self, change: impl FnOnce(&mut Value)) -> Self {
        change(&mut self.jwk);
        self.kid = self
            .jwk
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> &'static str {
        self.alg
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The header a well-behaved IdP would send: `alg`, `kid`, `typ: JWT`.
    pub fn header(&self) -> Value {
        let mut header = json!({"alg": self.alg, "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// Signs `input` with this key's algorithm.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.private {
            Private::Rsa(pair, encoding) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, input, &mut sig).unwrap();
                sig
            }
            Private::Ec(pair) => pair.sign(&rng, input).unwrap().as_ref().to_vec(),
            Private::Ed(pair) => pair.sign(input).as_ref().to_vec(),
        }
    }

    /// A token with exactly this header and these claims, signed by this key.
    pub fn mint(&self, header: &Value, claims: &Value) -> String {
        self.mint_raw(&b64(header.to_string()), &b64(claims.to_string()))
    }

    /// A token from already encoded header and payload segments (which may be malformed).
    pub fn mint_raw(&self, header_segment: &str, payload_segment: &str) -> String {
        let input = format!("{header_segment}.{payload_segment}");
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }
}

/// How the IdP misbehaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Serves discovery and JWKS normally.
    #[default]
    None,
    /// Accepts connections and closes them at once (an IdP that is down).
    Close,
    /// Reads the request and never answers.
    Hang,
    /// Answers with this status and, if given, `Retry-After` seconds.
    Status(u16, Option<u64>),
    /// Answers 200 with this body (HTML, bad JSON, ...).
    Body(String),
    /// Answers 200 with a valid key set padded beyond 64 KiB.
    Oversize,
    /// Answers 302 to this location.
    Redirect(String),
}

/// A host name no resolver knows, in the test certificate: reachable only through a proxy that
/// the test starts ([`crate::proxy::TestProxy`]), which maps it to the IdP.
pub const PROXIED_HOST: &str = "idp.test";

/// A certificate authority made by the test, and a server certificate it signed for
/// `127.0.0.1`, `localhost` and [`PROXIED_HOST`]: an IdP behind a company's private CA, which no public or
/// platform root trusts.
pub struct TestCa {
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tower-auth test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let names = ["127.0.0.1", "localhost", PROXIED_HOST].map(str::to_owned);
        let server = CertificateParams::new(names.to_vec())
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA certificate to `dir/name` and returns the path.
    pub fn write_ca_file(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

struct Shared {
    issuer: String,
    discovery_issuer: Mutex<Option<String>>,
    discovery_jwks_uri: Mutex<Option<String>>,
    published: Mutex<Vec<Value>>,
    jwks_body: Mutex<Option<String>>,
    fault: Mutex<Fault>,
    discovery_requests: AtomicU64,
    jwks_requests: AtomicU64,
    connections: AtomicU64,
    requests: watch::Sender<u64>,
    held: watch::Sender<bool>,
    opaque: Mutex<std::collections::HashMap<String, Value>>,
    introspection: Mutex<Introspection>,
    introspections: AtomicU64,
}

/// A running test IdP; stops serving when dropped.
pub struct TestIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIdp {
    /// Starts an IdP on 127.0.0.1 with an OS-chosen port and publishes `keys`.
    pub async fn start(keys: &[&SigningKey]) -> Self {
        Self::start_with(keys, None).await
    }

    /// [`start`](Self::start) over HTTPS with a certificate of `ca`: the issuer is
    /// `https://127.0.0.1:<port>`.
    pub async fn start_tls(keys: &[&SigningKey], ca: &TestCa) -> Self {
        Self::start_with(keys, Some(ca.acceptor.clone())).await
    }

    /// [`start_tls`](Self::start_tls) with the issuer `https://idp.test:<port>`
    /// ([`PROXIED_HOST`]): only a proxy can reach it.
    pub async fn start_tls_proxied(keys: &[&SigningKey], ca: &TestCa) -> Self {
        Self::start_named(keys, Some(ca.acceptor.clone()), Some(PROXIED_HOST)).await
    }

    async fn start_with(keys: &[&SigningKey], tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        Self::start_named(keys, tls, None).await
    }

    async fn start_named(
        keys: &[&SigningKey],
        tls: Option<tokio_rustls::TlsAcceptor>,
        host: Option<&str>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let authority = match host {
            Some(host) => format!("{host}:{}", addr.port()),
            None => addr.to_string(),
        };
        let shared = Arc::new(Shared {
            issuer: format!("{scheme}://{authority}"),
            discovery_issuer: Mutex::new(None),
            discovery_jwks_uri: Mutex::new(None),
            published: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
            jwks_body: Mutex::new(None),
            fault: Mutex::new(Fault::None),
            discovery_requests: AtomicU64::new(0),
            jwks_requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            requests: watch::Sender::new(0),
            held: watch::Sender::new(false),
            opaque: Mutex::new(std::collections::HashMap::new()),
            introspection: Mutex::new(Introspection::Normal),
            introspections: AtomicU64::new(0),
        });
        let admit_shared = Arc::clone(&shared);
        let respond_shared = Arc::clone(&shared);
        let task = crate::serve_each_connection(
            listener,
            tls,
            move || {
                admit_shared.connections.fetch_add(1, Ordering::SeqCst);
                *admit_shared.fault.lock().unwrap() != Fault::Close
            },
            move |request| respond(Arc::clone(&respond_shared), request),
        );
        Self { shared, addr, task }
    }

    /// `http://127.0.0.1:<port>` (`https` for [`start_tls`](Self::start_tls)): the issuer, as
    /// discovery names it.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.issuer)
    }

    /// Claims a good access token of this IdP carries: `iss`, `sub`, `aud`, `iat` = [`NOW`],
    /// `exp` an hour later.
    pub fn claims(&self, sub: &str) -> Value {
        json!({"iss": self.issuer(), "sub": sub, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 3600})
    }

    /// A good token for `sub`, signed by `key`.
    pub fn token(&self, key: &SigningKey, sub: &str) -> String {
        key.mint(&key.header(), &self.claims(sub))
    }

    /// A token signed by `key` with the default claims changed by `change`.
    pub fn token_with(&self, key: &SigningKey, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims("user-1");
        change(&mut claims);
        key.mint(&key.header(), &claims)
    }

    /// Adds `key` to the published key set.
    pub fn publish(&self, key: &SigningKey) {
        self.publish_jwk(key.jwk.clone());
    }

    /// Adds a raw JWK to the published key set.
    pub fn publish_jwk(&self, jwk: Value) {
        self.shared.published.lock().unwrap().push(jwk);
    }

    /// Removes every published key with this `kid`.
    pub fn unpublish(&self, kid: &str) {
        self.shared
            .published
            .lock()
            .unwrap()
            .retain(|k| k.get("kid").and_then(Value::as_str) != Some(kid));
    }

    /// Serves exactly this JWKS body (or, with `None`, the published keys again).
    pub fn set_jwks_body(&self, body: Option<String>) {
        *self.shared.jwks_body.lock().unwrap() = body;
    }

    /// Makes discovery name another issuer (or, with `None`, the right one again).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        *self.shared.discovery_issuer.lock().unwrap() = issuer;
    }

    /// Makes discovery name this `jwks_uri` (or, with `None`, the IdP's own again).
    pub fn set_discovery_jwks_uri(&self, jwks_uri: Option<String>) {
        *self.shared.discovery_jwks_uri.lock().unwrap() = jwks_uri;
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Holds every response until [`release`](Self::release) (a slow IdP, under test control).
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    pub fn discovery_requests(&self) -> u64 {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    pub fn jwks_requests(&self) -> u64 {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// Connections accepted, including those closed at once by [`Fault::Close`].
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` HTTP requests have arrived (held ones included).
    pub async fn wait_for_requests(&self, n: u64) {
        let mut rx = self.shared.requests.subscribe();
        let _ = rx.wait_for(|&seen| seen >= n).await;
    }

    pub fn requests(&self) -> u64 {
        *self.shared.requests.borrow()
    }

    /// `{issuer}/introspect`, which discovery names.
    pub fn introspection_endpoint(&self) -> String {
        format!("{}{INTROSPECT_PATH}", self.shared.issuer)
    }

    /// Issues an opaque access token: a random string that introspection answers `active:
    /// true` for, with `claims` (besides `active`).
    pub fn opaque_token(&self, claims: Value) -> String {
        let mut bytes = [0u8; 24];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let token = b64(bytes);
        self.shared
            .opaque
            .lock()
            .unwrap()
            .insert(token.clone(), claims);
        token
    }

    /// Revokes an opaque token: introspection answers `active: false` from now on.
    pub fn revoke_opaque(&self, token: &str) {
        self.shared.opaque.lock().unwrap().remove(token);
    }

    pub fn set_introspection(&self, mode: Introspection) {
        *self.shared.introspection.lock().unwrap() = mode;
    }

    /// Introspection requests received (authenticated or not).
    pub fn introspections(&self) -> u64 {
        self.shared.introspections.load(Ordering::SeqCst)
    }
}

/// The introspection endpoint: `client_secret_basic` as RFC 6749 section 2.3.1 has it, a form
/// with `token`, and an answer as [`Introspection`] says.
fn introspect(shared: &Shared, authorization: Option<&str>, body: &[u8]) -> (u16, String) {
    shared.introspections.fetch_add(1, Ordering::SeqCst);
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(INTROSPECT_CLIENT_ID),
            encode(INTROSPECT_SECRET)
        ))
    );
    if authorization != Some(expected.as_str()) {
        return (401, r#"{"error":"invalid_client"}"#.into());
    }
    let body = String::from_utf8_lossy(body);
    let token = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default();
    let mode = shared.introspection.lock().unwrap().clone();
    let claims = shared.opaque.lock().unwrap().get(token).cloned();
    match (mode, claims) {
        (Introspection::Down, _) => (503, String::new()),
        (Introspection::Body(body), _) => (200, body),
        (Introspection::Inactive, _) | (_, None) => (200, r#"{"active":false}"#.into()),
        (mode, Some(mut claims)) => {
            claims["active"] = json!(true);
            if mode == Introspection::ForeignIss {
                claims["iss"] = json!("https://elsewhere.example");
            }
            (200, claims.to_string())
        }
    }
}

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = {
        use http_body_util::BodyExt;
        request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default()
    };
    match path.as_str() {
        DISCOVERY_PATH => shared.discovery_requests.fetch_add(1, Ordering::SeqCst),
        JWKS_PATH => shared.jwks_requests.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    shared.requests.send_modify(|n| *n += 1);
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|&h| !h).await;
    let fault = shared.fault.lock().unwrap().clone();
    let reply = |status: u16, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let response = match fault {
        Fault::Hang => std::future::pending().await,
        Fault::Status(status, retry_after) => {
            let mut response = reply(status, r#"{"error":"unavailable"}"#.into());
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            response
        }
        Fault::Body(body) => Response::builder()
            .status(200)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
        Fault::Oversize => {
            let keys = shared.published.lock().unwrap().clone();
            reply(
                200,
                json!({"keys": keys, "padding": "x".repeat(70 * 1024)}).to_string(),
            )
        }
        Fault::Redirect(location) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", location)
            .body(Full::new(Bytes::new()))
            .unwrap(),
        Fault::None | Fault::Close => match path.as_str() {
            DISCOVERY_PATH => {
                let issuer = shared
                    .discovery_issuer
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| shared.issuer.clone());
                let jwks_uri = shared
                    .discovery_jwks_uri
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| format!("{}{JWKS_PATH}", shared.issuer));
                reply(
                    200,
                    json!({"issuer": issuer, "jwks_uri": jwks_uri,
                           "introspection_endpoint": format!("{}{INTROSPECT_PATH}", shared.issuer),
                           "response_types_supported": ["code"], "subject_types_supported": ["public"],
                           "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]})
                    .to_string(),
                )
            }
            JWKS_PATH => {
                let body = shared.jwks_body.lock().unwrap().clone().unwrap_or_else(|| {
                    json!({"keys": *shared.published.lock().unwrap()}).to_string()
                });
                reply(200, body)
            }
            INTROSPECT_PATH => {
                let (status, body) = introspect(&shared, authorization.as_deref(), &body);
                let mut response = reply(status, body);
                if status == 503 {
                    response
                        .headers_mut()
                        .insert("retry-after", "7".parse().unwrap());
                }
                response
            }
            _ => reply(404, r#"{"error":"not_found"}"#.into()),
        },
    };
    Ok(response)
}

// ---- Driving an authenticator -------------------------------------------------------------

/// Runs `authenticate` to completion, awaiting a pending check.
pub async fn run(auth: &impl Authenticator, token: &str) -> Outcome {
    match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(future) => future.await,
    }
}

/// The outcome if it was decided without waiting; `None` if the check had to wait.
pub fn ready(auth: &impl Authenticator, token: &str) -> Option<Outcome> {
    match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(outcome) => Some(outcome),
        Check::Pending(_) => None,
    }
}

/// The identity of an accepted token; panics with the reason otherwise.
#[track_caller]
pub fn accepted(outcome: Outcome) -> Identity {
    match outcome {
        Outcome::Authenticated(identity) => identity,
        Outcome::Rejected(e) => panic!("refused: {e:?}"),
        Outcome::NotMine => panic!("not mine"),
    }
}

/// Asserts the 401 `invalid_token` a client would see: refused by the OIDC authenticator,
/// or claimed by nobody (the chain answers 401 `invalid_token` for that). Returns the reason.
#[track_caller]
pub fn assert_invalid(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Rejected(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            assert_eq!(e.http_status().as_u16(), 401);
            e.reason()
        }
        Outcome::NotMine => "not_mine",
        Outcome::Authenticated(id) => panic!("accepted {id:?}"),
    }
}

/// Asserts a refusal by this authenticator (the token is recognised as ours); returns the reason.
#[track_caller]
pub fn assert_refused(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Rejected(e) => {
            assert_eq!(e.kind(), AuthErrorKind::InvalidToken, "{e:?}");
            e.reason()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asserts 503 with `Retry-After`; returns the wait asked for.
#[track_caller]
pub fn assert_unavailable(outcome: &Outcome) -> Duration {
    match outcome {
        Outcome::Rejected(e) => {
            assert_eq!(e.kind(), AuthErrorKind::Unavailable, "{e:?}");
            assert_eq!(e.http_status().as_u16(), 503);
            e.retry_after().expect("503 carries Retry-After")
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

/// Moves both clocks forward by `by` at once: the wall clock that `exp` is checked against,
/// and Tokio's clock that drives refreshes, cooldowns and cache ages. Timers due in between
/// fire; afterwards time runs on normally, so real I/O keeps its real timeouts. Needs a
/// current-thread runtime (the `#[tokio::test]` default) and no fetch in flight.
pub async fn warp(clock: &Clock, by: Duration) {
    clock.advance(by);
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}
