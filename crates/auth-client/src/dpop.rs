//! DPoP (RFC 9449) on the calling side: a [`DpopKey`] the client holds, and [`DpopLayer`],
//! which turns the `Authorization: Bearer <token>` that [`BearerLayer`](crate::BearerLayer)
//! writes into `Authorization: DPoP <token>` with a fresh proof for each request (`htm`,
//! `htu`, `ath`, a random `jti`, `iat` now).
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_auth_client::dpop::{DpopKey, DpopLayer};
//! use tower_auth_client::{BearerLayer, StaticToken};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let key = DpopKey::generate()?;
//! // The token's `cnf.jkt` must name this thumbprint (the IdP binds it when the token
//! // request carries a proof by the same key).
//! assert_eq!(key.thumbprint().len(), 43);
//! let api = service_fn(|request: Request<String>| async move {
//!     assert!(request.headers()["authorization"].to_str().unwrap().starts_with("DPoP "));
//!     assert!(request.headers().contains_key("dpop"));
//!     Ok::<_, Infallible>(Response::new(String::new()))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(BearerLayer::new(StaticToken::new("k7Qm2VxP9rTz4LwN")?).allow_origin("https://api.example.com")?)
//!     .layer(DpopLayer::new(key))
//!     .service(api);
//! let request = Request::get("https://api.example.com/orders").body(String::new())?;
//! client.oneshot(request).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Uri};
use serde_json::{Value, json};
use tower_layer::Layer;
use tower_service::Service;

use crate::bearer::{CloneBody, NoRetry};
use crate::{TokenError, TokenErrorKind};

/// The header a proof travels in.
pub const DPOP_HEADER: &str = "dpop";

#[cfg(feature = "aws_lc_rs")]
mod backend {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    pub(super) struct Signer(EcdsaKeyPair);

    impl Signer {
        pub(super) fn generate() -> Option<Self> {
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .ok()
                .map(Self)
        }

        pub(super) fn from_pkcs8(der: &[u8]) -> Option<Self> {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .ok()
                .map(Self)
        }

        pub(super) fn from_scalar(d: &[u8], point: &[u8]) -> Option<Self> {
            EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                d,
                point,
            )
            .ok()
            .map(Self)
        }

        /// The uncompressed public point, `04 || x || y`.
        pub(super) fn public_point(&self) -> Vec<u8> {
            self.0.public_key().as_ref().to_vec()
        }

        /// R || S, 64 bytes.
        pub(super) fn sign(&self, input: &[u8]) -> Option<Vec<u8>> {
            let sig = self.0.sign(&SystemRandom::new(), input).ok()?;
            Some(sig.as_ref().to_vec())
        }
    }
}

#[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
mod backend {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::DecodePrivateKey;

    pub(super) struct Signer(SigningKey);

    impl Signer {
        pub(super) fn generate() -> Option<Self> {
            let mut bytes = [0u8; 32];
            // A scalar out of range (probability ~2^-32) is drawn again.
            for _ in 0..8 {
                rand::fill(&mut bytes);
                if let Ok(key) = SigningKey::from_slice(&bytes) {
                    return Some(Self(key));
                }
            }
            None
        }

        pub(super) fn from_pkcs8(der: &[u8]) -> Option<Self> {
            SigningKey::from_pkcs8_der(der).ok().map(Self)
        }

        pub(super) fn from_scalar(d: &[u8], point: &[u8]) -> Option<Self> {
            let signer = Self(SigningKey::from_slice(d).ok()?);
            (signer.public_point() == point).then_some(signer)
        }

        pub(super) fn public_point(&self) -> Vec<u8> {
            self.0
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec()
        }

        pub(super) fn sign(&self, input: &[u8]) -> Option<Vec<u8>> {
            let sig: Signature = self.0.try_sign(input).ok()?;
            Some(sig.to_bytes().to_vec())
        }
    }
}

/// An ES256 key (P-256) that proves possession for DPoP-bound tokens.
///
/// `Debug` shows the public key's thumbprint only.
#[derive(Clone)]
pub struct DpopKey(Arc<Inner>);

struct Inner {
    signer: backend::Signer,
    /// The public JWK: `kty`, `crv`, `x`, `y`.
    jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &"ES256")
            .field("thumbprint", &self.0.thumbprint)
            .finish_non_exhaustive()
    }
}

fn key_error(reason: &'static str) -> TokenError {
    TokenError::new(TokenErrorKind::Other, reason)
}

impl DpopKey {
    /// A new random key, for as long as the process lives (tokens bound to it die with it).
    ///
    /// # Errors
    /// When the crypto backend cannot generate a key.
    pub fn generate() -> Result<Self, TokenError> {
        Self::from_signer(
            backend::Signer::generate().ok_or_else(|| key_error("dpop_key_generation_failed"))?,
        )
    }

    /// A P-256 key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
    /// -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it).
    ///
    /// # Errors
    /// Not PEM of a PKCS#8 P-256 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or_else(|| key_error("dpop_key_not_pkcs8_pem"))?;
        let text: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| key_error("dpop_key_not_pkcs8_pem"))?;
        Self::from_signer(
            backend::Signer::from_pkcs8(&der).ok_or_else(|| key_error("dpop_key_not_p256"))?,
        )
    }

    /// A P-256 key from its private JWK (`kty: EC`, `crv: P-256`, `x`, `y`, `d`).
    ///
    /// # Errors
    /// Another key type or curve, or members that do not make one key.
    pub fn from_jwk(jwk: &Value) -> Result<Self, TokenError> {
        let member = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        };
        if jwk.get("kty").and_then(Value::as_str) != Some("EC")
            || jwk.get("crv").and_then(Value::as_str) != Some("P-256")
        {
            return Err(key_error("dpop_key_not_p256"));
        }
        let (Some(x), Some(y), Some(d)) = (member("x"), member("y"), member("d")) else {
            return Err(key_error("dpop_key_not_p256"));
        };
        let mut point = vec![4u8];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Self::from_signer(
            backend::Signer::from_scalar(&d, &point)
                .ok_or_else(|| key_error("dpop_key_not_p256"))?,
        )
    }

    fn from_signer(signer: backend::Signer) -> Result<Self, TokenError> {
        let point = signer.public_point();
        if point.len() != 65 {
            return Err(key_error("dpop_key_not_p256"));
        }
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint =
            URL_SAFE_NO_PAD.encode(tower_auth_core::sha256_digest(canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        Ok(Self(Arc::new(Inner {
            signer,
            jwk,
            thumbprint,
        })))
    }

    /// The RFC 7638 thumbprint of the public key: what a bound token's `cnf.jkt` says.
    pub fn thumbprint(&self) -> &str {
        &self.0.thumbprint
    }

    /// The public JWK a proof carries.
    pub fn public_jwk(&self) -> &Value {
        &self.0.jwk
    }

    /// A proof for one request: `method` to `url` (its query and fragment left out), for
    /// `token` when one is presented (`ath`), with the server's `nonce` when it asked for one.
    ///
    /// # Errors
    /// A URL that is not absolute, or a signing failure.
    pub fn proof(
        &self,
        method: &Method,
        url: &Uri,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, TokenError> {
        let (Some(scheme), Some(authority)) = (url.scheme_str(), url.authority()) else {
            return Err(key_error("dpop_url_not_absolute"));
        };
        let htu = format!("{scheme}://{authority}{}", url.path());
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        rand::fill(&mut jti);
        let mut claims = json!({"jti": URL_SAFE_NO_PAD.encode(jti), "htm": method.as_str(),
                                "htu": htu, "iat": iat});
        if let Some(token) = token {
            claims["ath"] =
                json!(URL_SAFE_NO_PAD.encode(tower_auth_core::sha256_digest(token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.0.jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .0
            .signer
            .sign(input.as_bytes())
            .ok_or_else(|| key_error("dpop_signing_failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Makes each request that carries `Authorization: Bearer <token>` a DPoP request: the
/// scheme becomes `DPoP` and a fresh proof by [`DpopKey`] goes in the `DPoP` header. Put it
/// inside [`BearerLayer`](crate::BearerLayer) (added after it in a `ServiceBuilder`), so that
/// a retry with a fresh token gets a fresh proof too.
///
/// `htu` names the request's URI when it is absolute (hyper's client); a tonic client over a
/// layered `Channel` sends only the path, so give the server's origin with
/// [`origin`](Self::origin). A request with neither is sent without a proof, which a server
/// refuses for a bound token.
///
/// A server that issues nonces (RFC 9449 section 9) sends one in `DPoP-Nonce`, with a 401
/// `use_dpop_nonce` challenge or with any answer when it rotates them: the layer remembers
/// the last one per origin and puts it in later proofs. With
/// [`retry_nonce`](Self::retry_nonce) (request bodies that are `Clone`) the refused request
/// itself is sent once more with the new nonce; without it, the next request carries it.
#[derive(Clone, Debug)]
pub struct DpopLayer<R = NoRetry> {
    key: DpopKey,
    origin: Option<(http::uri::Scheme, http::uri::Authority)>,
    nonces: Nonces,
    /// Whether a `use_dpop_nonce` answer is retried: [`NoRetry`] or [`CloneBody`].
    mode: std::marker::PhantomData<R>,
}

impl DpopLayer {
    /// Proofs by `key`.
    pub fn new(key: DpopKey) -> Self {
        Self {
            key,
            origin: None,
            nonces: Nonces::default(),
            mode: std::marker::PhantomData,
        }
    }

    /// The same layer, sending a request refused with `use_dpop_nonce` once more with the
    /// server's new nonce (a clone of its body: `Full<Bytes>`, `String`, ...). Asked again,
    /// the second answer is returned: never a loop.
    pub fn retry_nonce(self) -> DpopLayer<CloneBody> {
        DpopLayer {
            key: self.key,
            origin: self.origin,
            nonces: self.nonces,
            mode: std::marker::PhantomData,
        }
    }
}

impl<R> DpopLayer<R> {
    /// The scheme and host (`https://api.example.com`) of requests whose URI is only a path.
    ///
    /// # Errors
    /// Not an absolute URL.
    pub fn origin(mut self, origin: &str) -> Result<Self, TokenError> {
        let uri: Uri = origin
            .parse()
            .map_err(|_| key_error("dpop_origin_not_absolute"))?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(key_error("dpop_origin_not_absolute"));
        };
        self.origin = Some((scheme, authority));
        Ok(self)
    }
}

impl<S, R> Layer<S> for DpopLayer<R> {
    type Service = Dpop<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Dpop {
            inner,
            key: self.key.clone(),
            origin: self.origin.clone(),
            nonces: self.nonces.clone(),
            mode: std::marker::PhantomData,
        }
    }
}

/// How many servers' nonces a layer remembers; past that it starts over.
const MAX_NONCE_ORIGINS: usize = 64;

/// A longer `DPoP-Nonce` is ignored.
const MAX_NONCE_LEN: usize = 512;

/// The last nonce each server gave, by origin, shared by the services of one layer.
#[derive(Clone, Debug, Default)]
struct Nonces(Arc<Mutex<HashMap<String, String>>>);

impl Nonces {
    fn get(&self, origin: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            .cloned()
    }

    /// Remembers the `DPoP-Nonce` of `headers`, if one fits; whether it is new.
    fn remember(&self, origin: &str, headers: &http::HeaderMap) -> bool {
        let Some(nonce) = headers
            .get(DPOP_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|n| !n.is_empty() && n.len() <= MAX_NONCE_LEN)
        else {
            return false;
        };
        let mut nonces = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if nonces.get(origin).is_some_and(|known| known == nonce) {
            return false;
        }
        if nonces.len() >= MAX_NONCE_ORIGINS && !nonces.contains_key(origin) {
            nonces.clear();
        }
        nonces.insert(origin.to_owned(), nonce.to_owned());
        true
    }
}

/// The header a server's nonce comes in.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

const USE_NONCE: &[u8] = b"error=\"use_dpop_nonce\"";

/// Whether an answer is the `use_dpop_nonce` challenge (RFC 9449 section 9): a
/// `WWW-Authenticate` saying so, over HTTP (401) or in gRPC's metadata.
fn asks_for_nonce(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .any(|v| {
            let v = v.as_bytes();
            v.len() > 5
                && v[..5].eq_ignore_ascii_case(b"dpop ")
                && v.windows(USE_NONCE.len()).any(|w| w == USE_NONCE)
        })
}

/// The service [`DpopLayer`] builds.
#[derive(Clone, Debug)]
pub struct Dpop<S, R = NoRetry> {
    inner: S,
    key: DpopKey,
    origin: Option<(http::uri::Scheme, http::uri::Authority)>,
    nonces: Nonces,
    /// Whether a `use_dpop_nonce` answer is retried: [`NoRetry`] or [`CloneBody`].
    mode: std::marker::PhantomData<R>,
}

impl<S, R> Dpop<S, R> {
    /// The request's URI made absolute with the configured origin when it is only a path.
    fn target<B>(&self, request: &Request<B>) -> Option<Uri> {
        match (&self.origin, request.uri().authority()) {
            (Some((scheme, authority)), None) => {
                let mut parts = http::uri::Parts::default();
                parts.scheme = Some(scheme.clone());
                parts.authority = Some(authority.clone());
                parts.path_and_query = request.uri().path_and_query().cloned();
                Uri::from_parts(parts).ok()
            }
            (_, Some(_)) => Some(request.uri().clone()),
            (None, None) => None,
        }
    }

    /// Turns a Bearer request into a DPoP one with a fresh proof (with the server's nonce
    /// when it gave one); returns the origin its nonces are kept under.
    fn prove<B>(&self, request: &mut Request<B>) -> Option<String> {
        self.prove_with(request).map(|(origin, _)| origin)
    }

    /// [`prove`](Self::prove), also giving the nonce the proof carries.
    fn prove_with<B>(&self, request: &mut Request<B>) -> Option<(String, Option<String>)> {
        let uri = self.target(request)?;
        let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)?;
        let nonce = self.nonces.get(&origin);
        if let Ok(proof) = self
            .key
            .proof(request.method(), &uri, Some(&token), nonce.as_deref())
            && let (Ok(mut authorization), Ok(proof)) = (
                HeaderValue::from_str(&format!("DPoP {token}")),
                HeaderValue::from_str(&proof),
            )
        {
            // Kept out of `Debug` output and HPACK's dynamic table, as `BearerLayer` does.
            authorization.set_sensitive(true);
            let headers = request.headers_mut();
            headers.insert(AUTHORIZATION, authorization);
            headers.insert(DPOP_HEADER, proof);
        }
        Some((origin, nonce))
    }
}

impl<S, B, RB> Service<Request<B>> for Dpop<S, NoRetry>
where
    S: Service<Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = NonceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let origin = self.prove(&mut request);
        NonceFuture {
            future: self.inner.call(request),
            remember: origin.map(|origin| (self.nonces.clone(), origin)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Dpop`] without retries: the inner one's, remembering the
    /// server's `DPoP-Nonce`.
    pub struct NonceFuture<F> {
        #[pin]
        future: F,
        remember: Option<(Nonces, String)>,
    }
}

impl<F, RB, E> Future for NonceFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.future.poll(cx));
        if let (Ok(response), Some((nonces, origin))) = (&output, this.remember.take()) {
            nonces.remember(&origin, response.headers());
        }
        Poll::Ready(output)
    }
}

impl<S, B, RB> Service<Request<B>> for Dpop<S, CloneBody>
where
    S: Service<Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let original = request.clone();
        let mut request = request;
        let proved = self.prove_with(&mut request);
        // The service polled ready goes with the request; a clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let this = Dpop {
            inner: self.inner.clone(),
            key: self.key.clone(),
            origin: self.origin.clone(),
            nonces: self.nonces.clone(),
            mode: std::marker::PhantomData::<NoRetry>,
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            let Some((origin, used)) = proved else {
                return Ok(response);
            };
            this.nonces.remember(&origin, response.headers());
            // Decided per request: another request's answer may have brought the nonce first,
            // and this one must still be retried with it. The retry proves with the nonce now
            // held; the same one again would get the same answer.
            if !asks_for_nonce(response.headers()) || this.nonces.get(&origin) == used {
                return Ok(response);
            }
            // Once, with the nonce just given: a second challenge is the answer.
            let mut again = original;
            this.prove(&mut again);
            let mut inner = this.inner;
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(again).await?;
            this.nonces.remember(&origin, response.headers());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(segment: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_names_the_request_and_the_token() {
        let key = DpopKey::generate().unwrap();
        let url: Uri = "https://api.example.com/orders?page=2".parse().unwrap();
        let proof = key
            .proof(&Method::POST, &url, Some("tok"), Some("n1"))
            .unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(&header["jwk"], key.public_jwk());
        assert!(header["jwk"].get("d").is_none());
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://api.example.com/orders");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(tower_auth_core::sha256_digest(b"tok"))
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
        let again = key.proof(&Method::POST, &url, Some("tok"), None).unwrap();
        assert_ne!(
            decode(again.split('.').nth(1).unwrap())["jti"],
            claims["jti"]
        );
        let relative: Uri = "/orders".parse().unwrap();
        assert!(key.proof(&Method::GET, &relative, None, None).is_err());
    }

    /// SECURITY.md P21: the challenge is recognised in either form, and a nonce too long
    /// or empty is not taken.
    #[test]
    fn a_nonce_challenge_is_recognised_and_the_nonce_kept_per_origin() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        assert!(asks_for_nonce(&headers(&[
            ("www-authenticate", r#"Bearer realm="api""#),
            (
                "www-authenticate",
                r#"dpop error="use_dpop_nonce", algs="ES256""#
            ),
        ])));
        assert!(!asks_for_nonce(&headers(&[(
            "www-authenticate",
            r#"Bearer error="use_dpop_nonce""#
        )])));
        assert!(!asks_for_nonce(&headers(&[(
            "www-authenticate",
            r#"DPoP error="invalid_token""#
        )])));
        let nonces = Nonces::default();
        let a = "https://a.example";
        assert!(nonces.remember(a, &headers(&[("dpop-nonce", "n1")])));
        assert!(!nonces.remember(a, &headers(&[("dpop-nonce", "n1")])));
        assert!(!nonces.remember(a, &headers(&[("dpop-nonce", &"n".repeat(513))])));
        assert!(!nonces.remember(a, &headers(&[])));
        assert_eq!(nonces.get(a).as_deref(), Some("n1"));
        assert_eq!(nonces.get("https://b.example"), None);
        for i in 0..MAX_NONCE_ORIGINS + 1 {
            nonces.remember(
                &format!("https://{i}.example"),
                &headers(&[("dpop-nonce", "x")]),
            );
        }
        assert!(nonces.0.lock().unwrap().len() <= MAX_NONCE_ORIGINS);
    }

    /// Two requests in flight, both proven before the server's nonce was known, both
    /// challenged with the same nonce: each is retried once with it, not only the first to
    /// bring it home.
    #[tokio::test]
    async fn every_request_challenged_is_retried_even_when_another_brought_the_nonce() {
        use tower::{Layer, ServiceExt};
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let server = tower::service_fn(move |request: Request<String>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let proof = request.headers()[DPOP_HEADER].to_str().unwrap().to_owned();
            let claims = decode(proof.split('.').nth(1).unwrap());
            let response = if claims["nonce"] == "n1" {
                http::Response::new(String::from("ok"))
            } else {
                http::Response::builder()
                    .status(401)
                    .header("www-authenticate", r#"DPoP error="use_dpop_nonce""#)
                    .header(DPOP_NONCE_HEADER, "n1")
                    .body(String::new())
                    .unwrap()
            };
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let mut service = DpopLayer::new(DpopKey::generate().unwrap())
            .retry_nonce()
            .layer(server);
        let request = || {
            Request::get("https://api.example/orders")
                .header(AUTHORIZATION, "Bearer tok")
                .body(String::new())
                .unwrap()
        };
        let first = service.ready().await.unwrap().call(request());
        let second = service.ready().await.unwrap().call(request());
        assert_eq!(first.await.unwrap().status(), 200);
        assert_eq!(second.await.unwrap().status(), 200);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn a_jwk_loads_the_same_key_and_debug_shows_no_secret() {
        let key = DpopKey::generate().unwrap();
        let other = DpopKey::generate().unwrap();
        assert_ne!(key.thumbprint(), other.thumbprint());
        let debug = format!("{key:?}");
        assert!(debug.contains(key.thumbprint()), "{debug}");
        assert!(!debug.contains("\"d\""), "{debug}");
        // A JWK whose `d` does not match its public point is refused.
        let mut mismatched = other.public_jwk().clone();
        mismatched["d"] = json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert!(DpopKey::from_jwk(&mismatched).is_err());
        assert!(DpopKey::from_jwk(&json!({"kty": "RSA"})).is_err());
        assert!(DpopKey::from_pkcs8_pem("not pem").is_err());
        // d = SHA-256("tower-auth dpop test key"); the point and the RFC 7638 thumbprint
        // computed apart, with Python's integers and hashlib.
        let fixed = json!({"kty": "EC", "crv": "P-256",
            "x": "951XsF72TAp7vxL9yxbPcqCpTWga-TFeC3cmDBl4hMg",
            "y": "eXGHmCbdhRlbXR_THlfKH-HkkgKzhfBDOBifTbtU62k",
            "d": "QO6FJyg9iyj6UUW9Av1QYtYf3qAAr1VuvAkU0u_UEsw"});
        let loaded = DpopKey::from_jwk(&fixed).unwrap();
        assert_eq!(
            loaded.thumbprint(),
            "8q3rlqgtHbw_7P_V0g5qUUw6XUrP2EFdWvV-Pi72k6Y"
        );
        assert!(loaded.public_jwk().get("d").is_none());
    }
}
