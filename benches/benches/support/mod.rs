//! Fixtures shared by the bench targets: keys and tokens, a JWKS server on 127.0.0.1, our
//! authenticators, the peers, and the axum hello-world in every variant.
//!
//! Every OIDC variant, ours and the peers', trusts the same issuer, audience and JWKS (one
//! RS256, one ES256 and one EdDSA key, fetched over HTTP from this process) and is handed the
//! same ~800-byte access token, so that only the middleware differs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents,
};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_auth::AuthLayer;
use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet, Clock, sha256_digest};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// The criterion settings of every benchmark here: 1 s of warm-up, 3 s of measurement and 30
/// samples (BENCHMARKS.md quotes them).
/// The benches' runtime: the key server, the key refreshes and other background tasks run on
/// its one worker; requests are driven on the bench thread (`block_on`).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

pub(crate) const ISSUER: &str = "https://login.example.com";
pub(crate) const AUDIENCE: &str = "api://orders";
pub(crate) const HMAC_SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-bench";

// ---------------------------------------------------------------- allocations

/// Counts allocations; installed as the global allocator by `checks` and `service` only (the
/// load-test server does not pay for the shared counter).
pub(crate) struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Mean allocations (and reallocations) per call of `f` over 1,000 calls, after 100 of warm-up.
pub(crate) fn allocations_per_call(mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1000.0
}

/// One line per figure, collected by `benches/summarize.py` from the bench output.
pub(crate) fn report_allocations(name: &str, per_call: f64) {
    println!("ALLOCS {name} {per_call:.1}");
}

// ---------------------------------------------------------------- futures

/// Polls `future` once on the current thread; the benchmarks only drive futures that are
/// ready at once (keys loaded), so a peer's async check pays for no executor.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmark expects a future that is ready at once"),
    }
}

// ---------------------------------------------------------------- keys and tokens

/// A signing key of the test issuer: its JWK and a typical access token it signed.
pub(crate) struct Key {
    pub(crate) alg: &'static str,
    pub(crate) jwk: Value,
    pub(crate) token: String,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A typical access token (about 800 bytes) for `issuer`, signed by `sign`.
fn mint(alg: &str, kid: &str, issuer: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let now = Clock::system().now_unix();
    let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
    let claims = json!({
        "iss": issuer, "sub": "248289761001", "aud": AUDIENCE, "iat": now, "nbf": now,
        "exp": now + 24 * 3600,
        "jti": "d3b07384d113edec49eaa6238ad5ff00", "client_id": "s6BhdRkqt3",
        "scope": "openid profile orders:read orders:write metrics:read",
        "email": "jane.doe@example.com", "name": "Jane Doe", "roles": ["orders.admin", "billing.viewer"],
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// RS256 (2048-bit), ES256 and EdDSA keys, in that order, each with a token of [`ISSUER`].
pub(crate) fn keys() -> Vec<Key> {
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let rs = Key {
        alg: "RS256",
        jwk: json!({"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(&public.n), "e": b64(&public.e)}),
        token: mint("RS256", "rs", ISSUER, |m| {
            let mut sig = vec![0; rsa.public_modulus_len()];
            rsa.sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                m,
                &mut sig,
            )
            .unwrap();
            sig
        }),
    };
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let es = Key {
        alg: "ES256",
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "use": "sig", "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        token: mint("ES256", "es", ISSUER, |m| {
            ec.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()
        }),
    };
    let ed = Ed25519KeyPair::generate().unwrap();
    let eddsa = Key {
        alg: "EdDSA",
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig", "x": b64(ed.public_key().as_ref())}),
        token: mint("EdDSA", "ed", ISSUER, |m| ed.sign(m).as_ref().to_vec()),
    };
    vec![rs, es, eddsa]
}

/// Serves `{"keys": [...]}` at any path on 127.0.0.1 (an OS-chosen port) on the current
/// runtime; returns the JWKS URL.
pub(crate) async fn serve_jwks(keys: &[Key]) -> String {
    let body = Bytes::from(
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_| {
                    let mut response = http::Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/jwks")
}

/// An RFC 7662 introspection endpoint on loopback that says every token is active for
/// `ISSUER` and `AUDIENCE`; returns its URL.
pub(crate) async fn serve_introspection() -> String {
    let body = Bytes::from(
        json!({"active": true, "iss": ISSUER, "sub": "bench", "aud": AUDIENCE,
               "scope": "runtime.metrics:read orders:read", "exp": now_unix() + 3600})
        .to_string(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_| {
                    let mut response = http::Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/introspect")
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Our OIDC authenticator with a token cache of 10 000 and introspection of opaque tokens
/// at `introspection_url`.
pub(crate) async fn oidc_introspecting(
    jwks_url: &str,
    introspection_url: &str,
) -> OidcAuthenticator {
    let introspection = tower_auth_oidc::IntrospectionConfig::new("bench", "bench-secret")
        .endpoint(introspection_url);
    let config = OidcConfig::builder()
        .issuer(
            IssuerConfig::new(ISSUER, AUDIENCE)
                .jwks_uri(jwks_url)
                .introspection(introspection),
        )
        .token_cache_size(10_000)
        .build()
        .unwrap();
    OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap()
}

// ---------------------------------------------------------------- ours

/// `n` random-looking hex keys (SHA-256 of a counter), and the authenticator holding them.
pub(crate) fn api_keys(n: usize) -> (Vec<String>, ApiKeyAuthenticator) {
    let keys: Vec<String> = (0..n)
        .map(|i| hex(&sha256_digest(format!("bench-{i}").as_bytes())))
        .collect();
    let set = ApiKeySet::parse("API_KEYS", &keys.join(","), &Admins::default()).unwrap();
    (keys, ApiKeyAuthenticator::new(set))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HMAC authenticator and a typical role token it accepts.
pub(crate) fn hmac() -> (HmacAuthenticator, String) {
    let config = HmacConfig::builder(HMAC_SECRET)
        .audience("metrics")
        .build()
        .unwrap();
    let token = config
        .mint(
            "ops",
            ["runtime.health:read", "runtime.metrics:read"],
            Duration::from_secs(24 * 3600),
            Some("metrics"),
        )
        .unwrap();
    (HmacAuthenticator::new(config, Admins::default()), token)
}

/// Our OIDC authenticator for [`ISSUER`]; `cache_size` 0 turns the token cache off (cold).
pub(crate) async fn oidc(jwks_url: &str, cache_size: u64) -> OidcAuthenticator {
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(ISSUER, AUDIENCE).jwks_uri(jwks_url))
        .token_cache_size(cache_size)
        .build()
        .unwrap();
    OidcAuthenticator::start(config, Admins::default())
        .await
        .unwrap()
}

// ---------------------------------------------------------------- peers

/// jwt-authorizer 0.15: JWKS by URL, issuer, audience and leeway checked like ours.
pub(crate) async fn jwt_authorizer(
    jwks_url: &str,
) -> jwt_authorizer::Authorizer<jwt_authorizer::RegisteredClaims> {
    jwt_authorizer::JwtAuthorizer::<jwt_authorizer::RegisteredClaims>::from_jwks_url(jwks_url)
        .validation(
            jwt_authorizer::Validation::new()
                .iss(&[ISSUER])
                .aud(&[AUDIENCE])
                .leeway(60),
        )
        .build()
        .await
        .unwrap()
}

/// The claims axum-jwt-auth deserializes (it has no claims type of its own).
#[derive(Clone, serde::Deserialize)]
pub(crate) struct PeerClaims {
    #[allow(dead_code)]
    pub(crate) sub: String,
    #[allow(dead_code)]
    pub(crate) scope: String,
}

/// axum-jwt-auth 0.7: a remote JWKS decoder for one algorithm (its `Validation` names one
/// key family), keys loaded by `initialize`.
pub(crate) async fn axum_jwt_auth(jwks_url: &str, alg: &str) -> axum_jwt_auth::Decoder<PeerClaims> {
    let mut validation = jsonwebtoken10::Validation::new(alg.parse().unwrap());
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 60;
    let decoder = axum_jwt_auth::RemoteJwksDecoder::builder()
        .jwks_url(jwks_url.to_owned())
        .validation(validation)
        .build()
        .unwrap();
    decoder.initialize().await.unwrap();
    Arc::new(decoder)
}

/// tower-oauth2-resource-server 0.12: one tenant, JWKS by URL, issuer, audience, exp and nbf.
pub(crate) async fn tower_oauth2(
    jwks_url: &str,
) -> tower_oauth2_resource_server::server::OAuth2ResourceServer {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let tenant = TenantConfiguration::builder(ISSUER)
        .jwks_url(jwks_url)
        .audiences(&[AUDIENCE])
        .claims_validation(
            ClaimsValidationSpec::new()
                .iss(ISSUER)
                .aud(&vec![AUDIENCE.to_owned()])
                .exp(true)
                .nbf(true),
        )
        .build()
        .await
        .unwrap();
    <OAuth2ResourceServer>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .unwrap()
}

// ---------------------------------------------------------------- the hello-world

/// The hello-world behind each middleware: `/hello` answers `hello`. Every variant but the
/// API-key one is sent the same RS256 bearer token (`no_auth` ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    NoAuth,
    ApiKey,
    /// As `ApiKey`, with `AUTH_FAILURE_LIMIT` on and the peer address in the request (as
    /// axum's connect info puts it): the per-source check on every request.
    ApiKeyFailureLimit,
    /// As `ApiKey`, the key sent as the password of `Authorization: Basic`
    /// (`API_KEY_BASIC=true`).
    ApiKeyBasic,
    OidcCached,
    OidcCold,
    /// `api_key`, `hmac`, `oidc` (cached) in that order; the request carries an OIDC token.
    ChainOidcCached,
    JwtAuthorizer,
    AxumJwtAuth,
    TowerOauth2,
    /// As `OidcCached`, with subject cut-offs checked and none held (what a layer from the
    /// environment with HMAC does).
    OidcCachedCutoffsEmpty,
    /// As `OidcCached`, with 1,000 cut-offs of other subjects of the same issuer held.
    OidcCachedCutoffsHeld,
}

impl Variant {
    pub(crate) const ALL: [Variant; 12] = [
        Variant::NoAuth,
        Variant::ApiKey,
        Variant::ApiKeyFailureLimit,
        Variant::ApiKeyBasic,
        Variant::OidcCached,
        Variant::OidcCold,
        Variant::ChainOidcCached,
        Variant::JwtAuthorizer,
        Variant::AxumJwtAuth,
        Variant::TowerOauth2,
        Variant::OidcCachedCutoffsEmpty,
        Variant::OidcCachedCutoffsHeld,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Variant::NoAuth => "no_auth",
            Variant::ApiKey => "ours_api_key",
            Variant::ApiKeyFailureLimit => "ours_api_key_failure_limit",
            Variant::ApiKeyBasic => "ours_api_key_basic",
            Variant::OidcCached => "ours_oidc_cached",
            Variant::OidcCold => "ours_oidc_cold",
            Variant::ChainOidcCached => "ours_chain_oidc_cached",
            Variant::JwtAuthorizer => "jwt_authorizer",
            Variant::AxumJwtAuth => "axum_jwt_auth",
            Variant::TowerOauth2 => "tower_oauth2_resource_server",
            Variant::OidcCachedCutoffsEmpty => "ours_oidc_cached_cutoffs_empty",
            Variant::OidcCachedCutoffsHeld => "ours_oidc_cached_cutoffs_held",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A hello-world app and the credential header its requests carry.
pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) credential: Option<(HeaderName, HeaderValue)>,
    /// The peer address a server would put in the request, for variants that read it.
    pub(crate) peer: Option<std::net::SocketAddr>,
}

impl App {
    /// `GET /hello` with the credential, as a client would send it.
    pub(crate) fn request(&self) -> Request<Body> {
        let mut request = Request::get("/hello")
            .header(http::header::HOST, "bench")
            .body(Body::empty())
            .unwrap();
        if let Some((name, value)) = &self.credential {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        if let Some(peer) = self.peer {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        request
    }
}

fn hello() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

fn bearer(token: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    ))
}

/// Builds `variant` on the current runtime (which then runs the key refreshes); `jwks_url`
/// serves `keys`, whose first (RS256) token every OIDC variant is sent.
pub(crate) async fn app(variant: Variant, jwks_url: &str, keys: &[Key]) -> App {
    let token = &keys[0].token;
    match variant {
        // The same request as the OIDC variants, credential and all, without a middleware.
        Variant::NoAuth => App {
            router: hello(),
            credential: bearer(token),
            peer: None,
        },
        Variant::ApiKey | Variant::ApiKeyFailureLimit => {
            let (keys, auth) = api_keys(1);
            let limited = variant == Variant::ApiKeyFailureLimit;
            let mut layer = AuthLayer::builder(auth);
            if limited {
                layer = layer.failure_limit(20, Duration::from_secs(60));
            }
            App {
                router: hello().layer(layer.build().unwrap()),
                credential: Some((
                    HeaderName::from_static("x-api-key"),
                    HeaderValue::from_str(&keys[0]).unwrap(),
                )),
                peer: limited.then(|| "192.0.2.7:40000".parse().unwrap()),
            }
        }
        Variant::ApiKeyBasic => {
            use base64::Engine as _;
            let (keys, auth) = api_keys(1);
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("bench:{}", keys[0]));
            App {
                router: hello().layer(
                    AuthLayer::builder(auth)
                        .api_key_basic(true)
                        .build()
                        .unwrap(),
                ),
                credential: Some((
                    http::header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
                )),
                peer: None,
            }
        }
        Variant::OidcCached | Variant::OidcCold => {
            let cache = if variant == Variant::OidcCached {
                10_000
            } else {
                0
            };
            App {
                router: hello().layer(AuthLayer::new(oidc(jwks_url, cache).await)),
                credential: bearer(token),
                peer: None,
            }
        }
        Variant::OidcCachedCutoffsEmpty | Variant::OidcCachedCutoffsHeld => {
            let oidc = oidc(jwks_url, 10_000).await;
            let list = tower_auth_hmac::RevocationList::default();
            if variant == Variant::OidcCachedCutoffsHeld {
                let method = tower_auth_core::AuthMethod::Oidc {
                    issuer: ISSUER.into(),
                };
                for i in 0..1_000 {
                    list.revoke_subject(&method, &format!("other-{i}")).unwrap();
                }
            }
            let layer = AuthLayer::builder(oidc)
                .subject_cutoffs(list)
                .build()
                .unwrap();
            App {
                router: hello().layer(layer),
                credential: bearer(token),
                peer: None,
            }
        }
        Variant::ChainOidcCached => {
            let (_, api) = api_keys(1);
            let (hmac, _) = hmac();
            let layer = AuthLayer::builder(api)
                .or(hmac)
                .or(oidc(jwks_url, 10_000).await)
                .build()
                .unwrap();
            App {
                router: hello().layer(layer),
                credential: bearer(token),
                peer: None,
            }
        }
        Variant::JwtAuthorizer => {
            use jwt_authorizer::IntoLayer;
            let layer = jwt_authorizer(jwks_url).await.into_layer();
            // jwt-authorizer 0.15 is built on axum 0.7: its rejection is an axum 0.7
            // response, so the app's body is carried across as one (a box each way).
            let adapted = ServiceBuilder::new()
                .map_response(|r: http::Response<axum07::body::Body>| r.map(Body::new))
                .layer(layer)
                .map_response(|r: axum::response::Response| r.map(axum07::body::Body::new));
            App {
                router: hello().layer(adapted),
                credential: bearer(token),
                peer: None,
            }
        }
        Variant::AxumJwtAuth => {
            // An extractor, not a layer: the handler asks for the claims.
            async fn handler(_: axum_jwt_auth::Claims<PeerClaims>) -> &'static str {
                "hello"
            }
            let decoder = axum_jwt_auth(jwks_url, "RS256").await;
            App {
                router: Router::new()
                    .route("/hello", get(handler))
                    .with_state(decoder),
                credential: bearer(token),
                peer: None,
            }
        }
        Variant::TowerOauth2 => {
            let server = tower_oauth2(jwks_url).await;
            App {
                router: hello().layer(server.into_layer()),
                credential: bearer(token),
                peer: None,
            }
        }
    }
}
