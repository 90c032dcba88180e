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

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Uri};
use serde_json::{Value, json};
use tower_layer::Layer;
use tower_service::Service;

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
#[derive(Clone, Debug)]
pub struct DpopLayer {
    key: DpopKey,
    origin: Option<(http::uri::Scheme, http::uri::Authority)>,
}

impl DpopLayer {
    /// Proofs by `key`.
    pub fn new(key: DpopKey) -> Self {
        Self { key, origin: None }
    }

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

impl<S> Layer<S> for DpopLayer {
    type Service = Dpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dpop {
            inner,
            key: self.key.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// The service [`DpopLayer`] builds.
#[derive(Clone, Debug)]
pub struct Dpop<S> {
    inner: S,
    key: DpopKey,
    origin: Option<(http::uri::Scheme, http::uri::Authority)>,
}

impl<S, B> Service<Request<B>> for Dpop<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let absolute = match (&self.origin, request.uri().authority()) {
            (Some((scheme, authority)), None) => {
                let mut parts = http::uri::Parts::default();
                parts.scheme = Some(scheme.clone());
                parts.authority = Some(authority.clone());
                parts.path_and_query = request.uri().path_and_query().cloned();
                Uri::from_parts(parts).ok()
            }
            _ => None,
        };
        let uri = absolute.as_ref().unwrap_or(request.uri());
        if let Some(token) = token
            && let Ok(proof) = self.key.proof(request.method(), uri, Some(&token), None)
            && let (Ok(authorization), Ok(proof)) = (
                HeaderValue::from_str(&format!("DPoP {token}")),
                HeaderValue::from_str(&proof),
            )
        {
            // Kept out of `Debug` output and HPACK's dynamic table, as `BearerLayer` does.
            let mut authorization = authorization;
            authorization.set_sensitive(true);
            let headers = request.headers_mut();
            headers.insert(AUTHORIZATION, authorization);
            headers.insert(DPOP_HEADER, proof);
        }
        self.inner.call(request)
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
