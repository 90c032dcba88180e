//! DPoP (RFC 9449): tokens bound to a key the client holds, proved on every request.
//!
//! A token whose `cnf.jkt` names a key thumbprint (RFC 7638) is usable only with
//! `Authorization: DPoP <token>` and one `DPoP` header holding a fresh proof signed by that
//! key: a JWS with `typ: dpop+jwt`, an asymmetric `alg` of the issuer's allow-list, the public
//! `jwk` in its header, and `htm`, `htu`, `iat`, `jti` and `ath` claims checked as section
//! 4.3 says. [`DpopVerifier`] makes those checks; the layer calls it for every request that
//! carries a bound token, after the token's own checks (which the validated-token cache may
//! answer: a proof is never cached, each is single use).
//!
//! ```
//! use tower_auth_oidc::{DpopVerifier, OidcConfig};
//!
//! let config = OidcConfig::from_json("OIDC_CONFIG", r#"{"issuers": [
//!     {"issuer": "https://login.example.com", "audience": "api", "algorithms": ["ES256", "EdDSA"],
//!      "dpop": "required"}]}"#).unwrap();
//! let verifier = DpopVerifier::builder(&config)
//!     .origin("https://api.example.com")
//!     .build()
//!     .unwrap();
//! // What `WWW-Authenticate: DPoP algs="..."` offers (RFC 9449 section 7.1).
//! assert_eq!(verifier.algorithms(), "ES256 EdDSA");
//! // A request with a DPoP token but no proof: 401 invalid_token.
//! let request = http::Request::get("/orders").body(()).unwrap();
//! let refused = verifier
//!     .verify(&request, "https://login.example.com", "a.b.c", "thumbprint")
//!     .unwrap_err();
//! assert_eq!(refused.http_status(), 401);
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderName, Request, Uri};
use jsonwebtoken::Algorithm;
use jsonwebtoken::AlgorithmFamily;
use serde::Deserialize;
use serde_json::{Map, Value};
use tower_auth_core::{AuthError, Clock, ConfigError, Secret, jose, sha256_digest};

use crate::OidcConfig;
use crate::dpop_nonce::Nonces;
use crate::keys::{Key, usable_key};

/// The request header that carries a proof.
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");

/// How long either side of now a proof's `iat` may be, unless configured.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Proofs remembered at once, unless configured: about 60 bytes each, so 16 MiB at most.
const DEFAULT_REPLAY_CAPACITY: usize = 1 << 18;

/// A longer `jti` is refused: real ones are a UUID or 16-32 random bytes in base64url.
const MAX_JTI_LEN: usize = 256;

/// A JWK member that only a private or symmetric key has (RFC 7518 section 6): a proof
/// carrying one is refused (RFC 9449 section 4.3, check 7), whatever else it says.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

const SHARDS: usize = 16;

/// Whether an issuer's tokens must be DPoP-bound (`"dpop"` in `OIDC_CONFIG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DpopPolicy {
    /// Bearer tokens are accepted; a token bound by `cnf.jkt` still needs its proof.
    #[default]
    Allowed,
    /// Every token must be bound by `cnf.jkt` and come with its proof.
    Required,
}

/// The key thumbprint a token is bound to: its `cnf.jkt`, `Ok(None)` for a token bound to
/// no key. A `cnf` that is not an object, or a `jkt` that is not a non-empty string, is a
/// malformed token rather than an unbound one.
///
/// # Errors
/// `invalid_token` for a malformed `cnf` or `jkt`.
pub fn confirmation_jkt(claims: &Map<String, Value>) -> Result<Option<&str>, AuthError> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            None => Ok(None),
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt)),
            Some(_) => Err(AuthError::invalid_token("malformed_cnf_jkt")),
        },
        Some(_) => Err(AuthError::invalid_token("malformed_cnf")),
    }
}

/// The issuer's policy over a token's verified claims: under `Required`, a token bound to
/// no key is refused whatever the scheme it came with.
pub(crate) fn check_policy(
    claims: &Map<String, Value>,
    policy: DpopPolicy,
) -> Result<(), AuthError> {
    let jkt = confirmation_jkt(claims)?;
    if policy == DpopPolicy::Required && jkt.is_none() {
        return Err(AuthError::invalid_token("dpop_binding_required"));
    }
    Ok(())
}

/// The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: the required members of its
/// `kty` (EC: `crv`, `kty`, `x`, `y`; RSA: `e`, `kty`, `n`; OKP: `crv`, `kty`, `x`), in
/// lexicographic order, without whitespace. `None` for another `kty` or a member that is
/// missing or not a string.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(sha256_digest(canonical.as_bytes())))
}

/// Verifies DPoP proofs (RFC 9449 section 4.3) for the configured issuers, and remembers
/// the `jti` of each accepted proof until its `iat` leaves the window, so that none is
/// accepted twice.
///
/// The replay memory is bounded ([`DpopVerifierBuilder::replay_capacity`]). When it is
/// full of proofs still inside their window, a new proof is refused with 503 and
/// `Retry-After` rather than an old one forgotten: forgetting would let that proof be
/// replayed.
pub struct DpopVerifier {
    algorithms: HashMap<Arc<str>, Vec<Algorithm>>,
    offered: String,
    window: u64,
    clock: Clock,
    origin: Option<String>,
    replay: ReplayCache,
    /// The issuers whose proofs must carry a nonce we issued (`"dpop_nonce": true`).
    nonce_issuers: Vec<Arc<str>>,
    /// Issues and checks those nonces; `None` when no issuer asks for them.
    nonces: Option<Nonces>,
    /// Whether some issuer has `"dpop": "required"` or `"dpop_nonce": true`.
    configured: bool,
    /// The memory shared with other replicas (Redis), asked after the local one.
    shared: Option<Arc<dyn ReplayStore>>,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("algorithms", &self.offered)
            .field("window_secs", &self.window)
            .field("origin", &self.origin)
            .field("nonce_issuers", &self.nonce_issuers)
            .field("shared_replay", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`DpopVerifier`]; [`build`](Self::build) checks every setting.
#[derive(Debug)]
#[must_use]
pub struct DpopVerifierBuilder {
    algorithms: Vec<(Arc<str>, Vec<Algorithm>)>,
    window: Duration,
    clock: Clock,
    origin: Option<String>,
    replay_capacity: usize,
    replay_per_key: Option<usize>,
    nonce_issuers: Vec<Arc<str>>,
    nonce_key: Option<Secret>,
    nonce_slot: Duration,
    configured: bool,
}

impl DpopVerifierBuilder {
    /// The externally visible scheme and host (`https://api.example.com`) that proofs name in
    /// `htu`, for a service behind a proxy that rewrites them. Without it, the request's own
    /// URI says (an HTTP/2 request carries them), then its `Host` header with `https`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// How far from now a proof's `iat` may be, either way (default 60 s).
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How many proofs are remembered at once (default 262144).
    pub fn replay_capacity(mut self, capacity: usize) -> Self {
        self.replay_capacity = capacity;
        self
    }

    /// How many of those one key's proofs may take (default a sixteenth of the capacity,
    /// 16384: 270 proofs a second, sustained, with the 60 s window). A key over its share
    /// gets 503 for new proofs until some of its own expire; other keys are not affected.
    pub fn replay_per_key(mut self, per_key: usize) -> Self {
        self.replay_per_key = Some(per_key);
        self
    }

    /// The key of the nonces issued for issuers with `"dpop_nonce": true`
    /// (`AUTH_DPOP_NONCE_KEY`): replicas with the same key accept each other's nonces.
    /// Without it each verifier draws a random key, and its nonces are good with it only.
    pub fn nonce_key(mut self, key: Secret) -> Self {
        self.nonce_key = Some(key);
        self
    }

    /// How long one nonce slot lasts (default 300 s): a nonce is accepted in its slot and
    /// the next, so for one to two slots.
    pub fn nonce_slot(mut self, slot: Duration) -> Self {
        self.nonce_slot = slot;
        self
    }

    /// The clock `iat` is judged by (default: the OIDC configuration's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The verifier.
    ///
    /// # Errors
    /// An origin that is not `http(s)://host[:port]`, a window of zero or over an hour, or a
    /// replay capacity under 16.
    pub fn build(self) -> Result<DpopVerifier, ConfigError> {
        let origin = self
            .origin
            .map(|o| {
                let uri: Uri = o
                    .parse()
                    .map_err(|_| ConfigError::new("AUTH_DPOP_ORIGIN", "is not a URL"))?;
                let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
                    return Err(ConfigError::new(
                        "AUTH_DPOP_ORIGIN",
                        "must be an absolute http(s) URL: scheme and host",
                    ));
                };
                if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
                    return Err(ConfigError::new(
                        "AUTH_DPOP_ORIGIN",
                        "must be a scheme and host only, without a path or query",
                    ));
                }
                normalise_origin(scheme, authority)
                    .ok_or_else(|| ConfigError::new("AUTH_DPOP_ORIGIN", "must use http or https"))
            })
            .transpose()?;
        if self.window.is_zero() || self.window > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "DpopVerifier::iat_window",
                "must be between 1 s and 1 hour",
            ));
        }
        if self.nonce_slot < Duration::from_secs(1) || self.nonce_slot > Duration::from_secs(86_400)
        {
            return Err(ConfigError::new(
                "DpopVerifier::nonce_slot",
                "must be between 1 s and 1 day",
            ));
        }
        if let Some(key) = &self.nonce_key
            && let Err(weakness) = tower_auth_core::check_secret_strength(key.expose_secret())
        {
            return Err(ConfigError::new("AUTH_DPOP_NONCE_KEY", weakness.describe()));
        }
        if self.replay_capacity < SHARDS {
            return Err(ConfigError::new(
                "DpopVerifier::replay_capacity",
                "must be at least 16",
            ));
        }
        let per_key = self.replay_per_key.unwrap_or(self.replay_capacity / SHARDS);
        if per_key == 0 || per_key > self.replay_capacity {
            return Err(ConfigError::new(
                "DpopVerifier::replay_per_key",
                "must be between 1 and the replay capacity",
            ));
        }
        let mut offered: Vec<&str> = Vec::new();
        for (_, algs) in &self.algorithms {
            for alg in algs {
                let name = alg_name(*alg);
                if !offered.contains(&name) {
                    offered.push(name);
                }
            }
        }
        let offered = offered.join(" ");
        Ok(DpopVerifier {
            algorithms: self.algorithms.into_iter().collect(),
            offered,
            window: self.window.as_secs(),
            clock: self.clock,
            origin,
            replay: ReplayCache::new(self.replay_capacity, per_key),
            nonces: (!self.nonce_issuers.is_empty())
                .then(|| Nonces::new(self.nonce_key.as_ref(), self.nonce_slot)),
            configured: self.configured || !self.nonce_issuers.is_empty(),
            nonce_issuers: self.nonce_issuers,
            shared: None,
        })
    }
}

impl DpopVerifier {
    /// A verifier for the issuers of `config`: each issuer's proofs may use the asymmetric
    /// algorithms of its allow-list (never `none` or HS*).
    pub fn builder(config: &OidcConfig) -> DpopVerifierBuilder {
        DpopVerifierBuilder {
            algorithms: config
                .issuers
                .iter()
                .map(|issuer| {
                    let algs = issuer
                        .algorithms
                        .iter()
                        .copied()
                        .filter(|a| a.family() != AlgorithmFamily::Hmac)
                        .collect();
                    (Arc::clone(&issuer.issuer), algs)
                })
                .collect(),
            window: DEFAULT_WINDOW,
            clock: config.clock.clone(),
            origin: None,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            replay_per_key: None,
            nonce_issuers: config
                .issuers
                .iter()
                .filter(|issuer| issuer.dpop_nonce)
                .map(|issuer| Arc::clone(&issuer.issuer))
                .collect(),
            nonce_key: None,
            nonce_slot: crate::dpop_nonce::DEFAULT_SLOT,
            configured: config
                .issuers
                .iter()
                .any(|issuer| issuer.dpop == DpopPolicy::Required),
        }
    }

    /// The nonce to send in `DPoP-Nonce` now, when some issuer's proofs need one: with the
    /// `use_dpop_nonce` challenge of a proof refused for its nonce
    /// ([`asks_for_nonce`](crate::asks_for_nonce)).
    pub fn nonce(&self) -> Option<String> {
        let nonces = self.nonces.as_ref()?;
        Some(nonces.issue(self.clock.now_unix()))
    }

    /// Whether some issuer's configuration names DPoP (`"dpop": "required"` or
    /// `"dpop_nonce": true`), so that DPoP is surely in use.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Whether the nonces are checkable by every replica (a configured key) rather than by
    /// this verifier only (a random key).
    pub fn nonces_shared(&self) -> bool {
        self.nonces.as_ref().is_some_and(|n| n.shared)
    }

    /// The algorithms a proof may use with some issuer, space-separated, for the
    /// `WWW-Authenticate: DPoP algs="..."` challenge.
    pub fn algorithms(&self) -> &str {
        &self.offered
    }

    /// Checks the one `DPoP` header of `request` as the proof for `token`, a token of
    /// `issuer` bound to the key whose thumbprint is `jkt` (the token's `cnf.jkt`), and
    /// remembers the proof's `jti`.
    ///
    /// # Errors
    /// `invalid_request` (400) for two `DPoP` headers or a request without a host;
    /// `invalid_token` (401) for a missing or bad proof; `unavailable` (503) when the replay
    /// memory is full, or always once a shared one is set (use [`check_at`](Self::check_at)).
    pub fn verify<B>(
        &self,
        request: &Request<B>,
        issuer: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(), AuthError> {
        self.verify_at(request, request.uri().path(), issuer, token, jkt)
    }

    /// [`verify`](Self::verify) for a request the client sent to `path`, when the service
    /// sees it under another (a router that strips a prefix: axum's `Router::nest` keeps the
    /// client's in its `OriginalUri` extension, which the auth layer passes here).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_at<B>(
        &self,
        request: &Request<B>,
        path: &str,
        issuer: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(), AuthError> {
        if self.shared.is_some() {
            return Err(AuthError::unavailable(
                "dpop_replay_store_needs_check_at",
                None,
            ));
        }
        self.check_local(request, path, issuer, token, jkt)
            .map(|_| ())
    }

    /// Every check, and the local replay memory: the proof's identity and expiry once it is
    /// remembered there.
    fn check_local<B>(
        &self,
        request: &Request<B>,
        path: &str,
        issuer: &str,
        token: &str,
        jkt: &str,
    ) -> Result<(ReplayId, u64, u64), AuthError> {
        let mut proofs = request.headers().get_all(DPOP_HEADER).iter();
        let proof = proofs
            .next()
            .ok_or(AuthError::invalid_token("dpop_proof_missing"))?;
        // RFC 9449 section 4.3, check 1: not more than one DPoP header.
        if proofs.next().is_some() {
            return Err(AuthError::invalid_request("dpop_proof_repeated"));
        }
        let proof = proof
            .to_str()
            .map_err(|_| AuthError::invalid_token("dpop_proof_malformed"))?;
        let algorithms = self
            .algorithms
            .get(issuer)
            .ok_or(AuthError::invalid_token("dpop_issuer_unknown"))?;
        let htu = self.request_htu(request, path)?;
        let proven = Proof::read(proof, algorithms)?;
        // Check 13 (section 7.1): the proof's key is the token's.
        if proven.thumbprint != jkt {
            return Err(AuthError::invalid_token("dpop_key_mismatch"));
        }
        proven.check_claims(request.method().as_str(), &htu, token)?;
        let now = self.clock.now_unix();
        // Check 11: `iat` within the window, either way.
        if proven.iat.abs_diff(now) > self.window {
            return Err(AuthError::invalid_token("dpop_proof_iat"));
        }
        // Check 6, last of the checks: the costliest.
        if !proven.signature_ok() {
            return Err(AuthError::invalid_token("dpop_proof_signature"));
        }
        // Section 9: a nonce we issued, for the issuers that ask for one. After the signature,
        // so that what a client is told to fix is its proof's real fault first.
        if let Some(nonces) = &self.nonces
            && self.nonce_issuers.iter().any(|i| &**i == issuer)
        {
            nonces.check(proven.claims.get("nonce"), now)?;
        }
        // Only a proof that passed everything is remembered: one that failed cannot use up a
        // `jti` its key's holder may send.
        let id = ReplayId::new(jkt, &proven.jti);
        let expires = proven.iat.saturating_add(self.window).saturating_add(1);
        // The local memory first: a proof seen here is refused without a round trip.
        match self.replay.remember(&id, expires, now) {
            Remembered::Now(Ok(true)) => Ok((id, expires, now)),
            Remembered::Now(Ok(false)) => Err(AuthError::invalid_token("dpop_proof_replayed")),
            Remembered::Now(Err(error)) => Err(error),
            Remembered::Later(_) => unreachable!("the local memory answers at once"),
        }
    }

    /// [`verify_at`](Self::verify_at), asking the replay memory shared with other replicas
    /// too when there is one ([`with_replay_store`](Self::with_replay_store)): the answer
    /// may have to wait for it. Without a shared memory the answer is always `Done`.
    pub fn check_at<B>(
        &self,
        request: &Request<B>,
        path: &str,
        issuer: &str,
        token: &str,
        jkt: &str,
    ) -> ProofCheck {
        let (id, expires, now) = match self.check_local(request, path, issuer, token, jkt) {
            Ok(remembered) => remembered,
            Err(error) => return ProofCheck::Done(Err(error)),
        };
        let Some(shared) = &self.shared else {
            return ProofCheck::Done(Ok(()));
        };
        let verdict = |new: Result<bool, AuthError>| match new {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::invalid_token("dpop_proof_replayed")),
            Err(error) => Err(error),
        };
        match shared.remember(&id, expires, now) {
            Remembered::Now(new) => ProofCheck::Done(verdict(new)),
            Remembered::Later(future) => {
                ProofCheck::Pending(Box::pin(async move { verdict(future.await) }))
            }
        }
    }

    /// Shares the memory of accepted proofs with other replicas through `store` (the layer
    /// uses Redis with `AUTH_REDIS_URL`): a proof is accepted only when both this process's
    /// memory and `store` say it is new. [`check_at`](Self::check_at) asks it;
    /// [`verify`](Self::verify) and [`verify_at`](Self::verify_at) cannot wait for it and
    /// refuse every proof with 503 once it is set.
    #[must_use]
    pub fn with_replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.shared = Some(store);
        self
    }

    /// The request's target URI as a proof must name it (section 4.3, check 9).
    fn request_htu<B>(&self, request: &Request<B>, path: &str) -> Result<String, AuthError> {
        let path = normalise_path(path);
        if let Some(origin) = &self.origin {
            return Ok(format!("{origin}{path}"));
        }
        let uri = request.uri();
        let authority = match uri.authority() {
            Some(authority) => authority.clone(),
            None => {
                let mut hosts = request.headers().get_all(HOST).iter();
                let (Some(host), None) = (hosts.next(), hosts.next()) else {
                    return Err(AuthError::invalid_request("dpop_no_host"));
                };
                Authority::try_from(host.as_bytes())
                    .map_err(|_| AuthError::invalid_request("dpop_no_host"))?
            }
        };
        let origin = normalise_origin(uri.scheme_str().unwrap_or("https"), &authority)
            .ok_or(AuthError::invalid_request("dpop_no_host"))?;
        Ok(format!("{origin}{path}"))
    }
}

/// A proof read and judged, its signature not yet verified.
struct Proof<'p> {
    signing_input: &'p str,
    signature: Vec<u8>,
    signature_b64: &'p str,
    key: Key,
    alg: Algorithm,
    thumbprint: String,
    claims: Map<String, Value>,
    iat: u64,
    jti: String,
}

impl<'p> Proof<'p> {
    /// Checks 2 to 5 and 7: one JWS; `typ`, `alg` and a public `jwk` in its header.
    fn read(proof: &'p str, algorithms: &[Algorithm]) -> Result<Self, AuthError> {
        let malformed = || AuthError::invalid_token("dpop_proof_malformed");
        if proof.len() > tower_auth_core::MAX_CREDENTIAL_LEN {
            return Err(malformed());
        }
        let mut segments = proof.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(malformed());
        };
        let mut header = jose::strict_object_segment(header_b64).ok_or_else(malformed)?;
        if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
            return Err(AuthError::invalid_token("dpop_proof_typ"));
        }
        // As for tokens: no extension is understood, and `b64` changes what is signed.
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err(malformed());
        }
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some(name) => name.parse::<Algorithm>().ok(),
            None => None,
        };
        // `none` does not parse; HS* is never on an issuer's list, checked again here.
        let alg = alg
            .filter(|a| a.family() != AlgorithmFamily::Hmac && algorithms.contains(a))
            .ok_or(AuthError::invalid_token("dpop_proof_alg"))?;
        let Some(Value::Object(jwk)) = header.remove("jwk") else {
            return Err(AuthError::invalid_token("dpop_proof_key"));
        };
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m))
            || jwk.get("kty").and_then(Value::as_str) == Some("oct")
        {
            return Err(AuthError::invalid_token("dpop_proof_private_key"));
        }
        let thumbprint = jwk_thumbprint(&jwk).ok_or(AuthError::invalid_token("dpop_proof_key"))?;
        let key = usable_key(&Value::Object(jwk))
            .filter(|key| key.fits(alg))
            .ok_or(AuthError::invalid_token("dpop_proof_key"))?;
        let claims = jose::strict_object_segment(payload_b64).ok_or_else(malformed)?;
        let iat = match claims.get("iat") {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(malformed)?,
            _ => return Err(malformed()),
        };
        let jti = match claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.clone(),
            _ => return Err(malformed()),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| AuthError::invalid_token("dpop_proof_signature"))?;
        Ok(Self {
            signing_input: &proof[..header_b64.len() + 1 + payload_b64.len()],
            signature,
            signature_b64,
            key,
            alg,
            thumbprint,
            claims,
            iat,
            jti,
        })
    }

    /// Checks 8, 9 and 12: `htm`, `htu` and `ath`.
    fn check_claims(&self, method: &str, htu: &str, token: &str) -> Result<(), AuthError> {
        if self.claims.get("htm").and_then(Value::as_str) != Some(method) {
            return Err(AuthError::invalid_token("dpop_proof_htm"));
        }
        let proven = self
            .claims
            .get("htu")
            .and_then(Value::as_str)
            .and_then(normalise_htu);
        if proven.as_deref() != Some(htu) {
            return Err(AuthError::invalid_token("dpop_proof_htu"));
        }
        let ath = URL_SAFE_NO_PAD.encode(sha256_digest(token.as_bytes()));
        if self.claims.get("ath").and_then(Value::as_str) != Some(ath.as_str()) {
            return Err(AuthError::invalid_token("dpop_proof_ath"));
        }
        Ok(())
    }

    fn signature_ok(&self) -> bool {
        if let Some(len) = match self.alg {
            Algorithm::ES256 => Some(64),
            Algorithm::ES384 => Some(96),
            _ => None,
        } {
            // RFC 7518 section 3.4: R || S, each exactly half; a zero R or S is never valid
            // (CVE-2022-21449), whatever the backend does with it.
            let (r, s) = self.signature.split_at(self.signature.len() / 2);
            if self.signature.len() != len || r.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 0)
            {
                return false;
            }
        }
        jsonwebtoken::crypto::verify(
            self.signature_b64,
            self.signing_input.as_bytes(),
            &self.key.decoding,
            self.alg,
        )
        .unwrap_or(false)
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // A later jsonwebtoken's algorithm: never on an allow-list read by this version.
        _ => "",
    }
}

/// `scheme://host[:port]` with scheme and host in lower case and the scheme's default port
/// left out (RFC 3986 sections 6.2.2.1 and 6.2.3); `None` for a scheme other than http(s).
fn normalise_origin(scheme: &str, authority: &Authority) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The path with `/` for an empty one and the hex digits of percent-encodings in upper case
/// (RFC 3986 section 6.2.2.1). Dot segments are compared as sent.
fn normalise_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push('%');
            out.push(bytes[i + 1].to_ascii_uppercase() as char);
            out.push(bytes[i + 2].to_ascii_uppercase() as char);
            i += 3;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

/// A proof's `htu` normalised for comparison (section 4.3, check 9): without query and
/// fragment, by [`normalise_origin`] and [`normalise_path`]; `None` when it is not an
/// absolute http(s) URI.
fn normalise_htu(htu: &str) -> Option<String> {
    let htu = htu.split_once('#').map_or(htu, |(before, _)| before);
    let uri: Uri = htu.parse().ok()?;
    let origin = normalise_origin(uri.scheme_str()?, uri.authority()?)?;
    Some(format!("{origin}{}", normalise_path(uri.path())))
}

/// What names one accepted proof in a replay memory: the SHA-256 of its key's thumbprint
/// and its `jti` (so a `jti`, which the client chose, is never stored or sent as it is, and
/// every name has the same length), and the SHA-256 of the thumbprint alone.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayId {
    proof: [u8; 32],
    key: [u8; 32],
}

impl ReplayId {
    /// The name of the proof with `jti` made with the key whose thumbprint is `jkt`.
    pub fn new(jkt: &str, jti: &str) -> Self {
        let mut input = Vec::with_capacity(jkt.len() + 1 + jti.len());
        input.extend_from_slice(jkt.as_bytes());
        input.push(0);
        input.extend_from_slice(jti.as_bytes());
        Self {
            proof: sha256_digest(&input),
            key: sha256_digest(jkt.as_bytes()),
        }
    }

    /// The digest naming the proof (its key and `jti`).
    pub fn proof(&self) -> &[u8; 32] {
        &self.proof
    }

    /// The digest naming the proof's key, for a memory that bounds each key's share.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

impl std::fmt::Debug for ReplayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayId").finish_non_exhaustive()
    }
}

/// What a shared replay memory answers later: whether the proof was new.
pub type RememberFuture = Pin<Box<dyn Future<Output = Result<bool, AuthError>> + Send>>;

/// A [`ReplayStore`]'s answer: now, or once a round trip is done.
#[non_exhaustive]
pub enum Remembered {
    /// Whether the proof was new, or why the memory cannot say (503 when full).
    Now(Result<bool, AuthError>),
    /// The answer of a memory elsewhere.
    Later(RememberFuture),
}

impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Now(answer) => f.debug_tuple("Now").field(answer).finish(),
            Self::Later(_) => f.write_str("Later"),
        }
    }
}

/// A memory of accepted proofs: "remember this proof until `expires` (Unix seconds), and
/// tell me whether it was new". The verifier always has its own bounded in-memory one, asked
/// first; [`DpopVerifier::with_replay_store`] adds one shared with other replicas.
pub trait ReplayStore: Send + Sync + 'static {
    /// Remembers `id` until `expires` unless it is already remembered; `Ok(true)` when it was
    /// new, `Ok(false)` for a replay, an error (503) when the memory cannot say.
    fn remember(&self, id: &ReplayId, expires: u64, now: u64) -> Remembered;
}

/// The outcome of [`DpopVerifier::check_at`]: decided, or waiting for the shared replay
/// memory.
pub enum ProofCheck {
    /// Decided without waiting.
    Done(Result<(), AuthError>),
    /// Decided once the shared memory answers.
    Pending(Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>),
}

impl std::fmt::Debug for ProofCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Done(result) => f.debug_tuple("Done").field(result).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// The `jti`s of accepted proofs (as digests with the key's thumbprint), each until its
/// proof leaves the `iat` window; bounded, in shards to spread the locking.
///
/// Each key may hold only its share of the memory: without that, one bound token's holder
/// making proofs as fast as it can (about 2,200 a second on one core) would fill it, and
/// every other client's new proofs would get 503 until they expired. SECURITY.md P22.
struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// The expiries of each key's remembered proofs, by a digest of its thumbprint.
    keys: Box<[Mutex<KeyShard>]>,
    per_key: usize,
}

#[derive(Default)]
struct KeyShard {
    expiries: HashMap<[u8; 32], Vec<u64>>,
    /// The expiries held, live or not, over all keys.
    entries: usize,
    swept_at: u64,
}

impl KeyShard {
    /// Whether the key may remember one more proof, dropping its expired ones when it is at
    /// its share. Everything expired is dropped at most once a second once the shard holds
    /// many keys or entries, so expired entries never outgrow the live ones by much.
    fn admit(&mut self, key: &[u8; 32], per_key: usize, limit: usize, now: u64) -> bool {
        if self.swept_at != now && (self.expiries.len() >= 1024 || self.entries >= limit) {
            let mut entries = 0;
            self.expiries.retain(|_, list| {
                list.retain(|&at| at > now);
                entries += list.len();
                !list.is_empty()
            });
            self.entries = entries;
            self.swept_at = now;
        }
        let Some(list) = self.expiries.get_mut(key) else {
            return true;
        };
        if list.len() >= per_key {
            let before = list.len();
            list.retain(|&at| at > now);
            self.entries -= before - list.len();
        }
        list.len() < per_key
    }
}

#[derive(Default)]
struct Shard {
    expiries: HashMap<[u8; 32], u64>,
    /// When expired entries were last dropped: at most once a second, so that a full shard
    /// does not cost a sweep per request.
    swept_at: u64,
}

impl ReplayCache {
    fn new(capacity: usize, per_key: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity / SHARDS,
            keys: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_key,
        }
    }

    /// Remembers `key` (a proof of the key whose thumbprint digest is `owner`) until
    /// `expires`: `Ok(false)` for a key already remembered, 503 for one more of a key over
    /// its share or when the memory is full.
    fn insert(
        &self,
        key: [u8; 32],
        owner: [u8; 32],
        expires: u64,
        now: u64,
    ) -> Result<bool, AuthError> {
        let mut shard = self.shards[usize::from(key[0]) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.expiries.get(&key).is_some_and(|&at| at > now) {
            return Ok(false);
        }
        // Always locked after a proof shard, never before: no two locks wait on each other.
        let mut keys = self.keys[usize::from(owner[0]) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !keys.admit(&owner, self.per_key, self.per_shard.max(1024), now) {
            return Err(AuthError::unavailable(
                "dpop_replay_key_share_full",
                Some(Duration::from_secs(1)),
            ));
        }
        if shard.expiries.len() >= self.per_shard && shard.swept_at != now {
            shard.expiries.retain(|_, at| *at > now);
            shard.swept_at = now;
        }
        if shard.expiries.len() >= self.per_shard && !shard.expiries.contains_key(&key) {
            return Err(AuthError::unavailable(
                "dpop_replay_memory_full",
                Some(Duration::from_secs(1)),
            ));
        }
        shard.expiries.insert(key, expires);
        keys.expiries.entry(owner).or_default().push(expires);
        keys.entries += 1;
        Ok(true)
    }
}

/// The in-memory store: bounded, each key to its share, answering at once.
impl ReplayStore for ReplayCache {
    fn remember(&self, id: &ReplayId, expires: u64, now: u64) -> Remembered {
        Remembered::Now(self.insert(id.proof, id.key, expires, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asks_for_nonce;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;
    use tower_auth_core::AuthErrorKind;

    const NOW: u64 = 1_700_000_000;
    const ISSUER: &str = "https://login.example.com";
    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    /// A client key that signs proofs by hand (aws-lc-rs, not jsonwebtoken's encoder).
    struct Client {
        key: EcdsaKeyPair,
        jwk: Value,
    }

    impl Client {
        fn new() -> Self {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let point = key.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
            Self { key, jwk }
        }

        fn jkt(&self) -> String {
            jwk_thumbprint(self.jwk.as_object().unwrap()).unwrap()
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let sig = self.key.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn header(&self) -> Value {
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
        }

        fn claims(jti: &str) -> Value {
            json!({"jti": jti, "htm": "GET", "htu": "https://api.example.com/orders",
                "iat": NOW, "ath": URL_SAFE_NO_PAD.encode(sha256_digest(TOKEN.as_bytes()))})
        }

        fn proof(&self, jti: &str) -> String {
            self.sign(&self.header(), &Self::claims(jti))
        }
    }

    fn verifier(clock: &Clock) -> DpopVerifier {
        let config = OidcConfig::from_json(
            "OIDC_CONFIG",
            &format!(r#"{{"issuers":[{{"issuer":"{ISSUER}","audience":"api","algorithms":["ES256","RS256"]}}]}}"#),
        )
        .unwrap();
        DpopVerifier::builder(&config)
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    fn request(uri: &str, proofs: &[&str]) -> Request<()> {
        let mut builder = Request::get(uri);
        for proof in proofs {
            builder = builder.header("dpop", *proof);
        }
        builder.body(()).unwrap()
    }

    fn check(verifier: &DpopVerifier, client: &Client, proof: &str) -> Result<(), &'static str> {
        let request = request("https://api.example.com/orders?page=2", &[proof]);
        verifier
            .verify(&request, ISSUER, TOKEN, &client.jkt())
            .map_err(|e| e.reason())
    }

    #[test]
    fn a_fresh_proof_is_accepted_once() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        let proof = client.proof("j1");
        assert_eq!(check(&verifier, &client, &proof), Ok(()));
        assert_eq!(
            check(&verifier, &client, &proof),
            Err("dpop_proof_replayed")
        );
        // Past the window the replay is refused for its age instead.
        clock.advance(Duration::from_secs(61));
        assert_eq!(check(&verifier, &client, &proof), Err("dpop_proof_iat"));
    }

    #[test]
    fn iat_is_judged_either_way_of_now() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        for (iat, expected) in [
            (NOW - 60, Ok(())),
            (NOW + 60, Ok(())),
            (NOW - 61, Err("dpop_proof_iat")),
            (NOW + 61, Err("dpop_proof_iat")),
        ] {
            let mut claims = Client::claims(&format!("iat-{iat}"));
            claims["iat"] = json!(iat);
            let proof = client.sign(&client.header(), &claims);
            assert_eq!(check(&verifier, &client, &proof), expected, "iat {iat}");
        }
    }

    #[test]
    fn htu_is_compared_after_normalisation() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        for (i, (htu, expected)) in [
            ("HTTPS://API.Example.COM:443/orders", Ok(())),
            ("https://api.example.com/orders?page=1#top", Ok(())),
            ("https://api.example.com/orders/", Err("dpop_proof_htu")),
            ("https://api.example.com/Orders", Err("dpop_proof_htu")),
            ("http://api.example.com/orders", Err("dpop_proof_htu")),
            ("https://api.example.com:8443/orders", Err("dpop_proof_htu")),
            ("https://other.example.com/orders", Err("dpop_proof_htu")),
            ("/orders", Err("dpop_proof_htu")),
        ]
        .into_iter()
        .enumerate()
        {
            let mut claims = Client::claims(&format!("htu-{i}"));
            claims["htu"] = json!(htu);
            let proof = client.sign(&client.header(), &claims);
            assert_eq!(check(&verifier, &client, &proof), expected, "{htu}");
        }
    }

    #[test]
    fn the_configured_origin_replaces_the_requests() {
        let clock = Clock::manual(NOW);
        let config = OidcConfig::from_json(
            "OIDC_CONFIG",
            &format!(r#"{{"issuers":[{{"issuer":"{ISSUER}","audience":"api"}}]}}"#),
        )
        .unwrap();
        let verifier = DpopVerifier::builder(&config)
            .origin("HTTPS://API.example.com:443")
            .clock(clock)
            .build()
            .unwrap();
        let client = Client::new();
        // Behind a proxy the request names an inner host; the proof names the public one.
        let request = request("http://10.0.0.7:8080/orders", &[&client.proof("o1")]);
        assert!(
            verifier
                .verify(&request, ISSUER, TOKEN, &client.jkt())
                .is_ok()
        );
        for bad in [
            "api.example.com",
            "https://api.example.com/base",
            "ftp://api.example.com",
        ] {
            assert_eq!(
                DpopVerifier::builder(&config)
                    .origin(bad)
                    .build()
                    .unwrap_err()
                    .variable(),
                "AUTH_DPOP_ORIGIN",
                "{bad}"
            );
        }
    }

    #[test]
    fn without_an_absolute_uri_the_host_header_and_https_are_the_origin() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        let request = Request::get("/orders")
            .header("host", "API.example.com")
            .header("dpop", client.proof("h1"))
            .body(())
            .unwrap();
        assert!(
            verifier
                .verify(&request, ISSUER, TOKEN, &client.jkt())
                .is_ok()
        );
        let no_host = request_without_host(&client.proof("h2"));
        let error = verifier
            .verify(&no_host, ISSUER, TOKEN, &client.jkt())
            .unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidRequest);
    }

    fn request_without_host(proof: &str) -> Request<()> {
        Request::get("/orders")
            .header("dpop", proof)
            .body(())
            .unwrap()
    }

    #[test]
    fn each_bad_proof_is_refused_for_its_own_reason() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        let other = Client::new();
        let header = client.header();
        let claims = Client::claims("bad");
        let with = |mut value: Value, key: &str, member: Value| {
            value[key] = member;
            value
        };
        let mut private_jwk = client.jwk.clone();
        private_jwk["d"] = json!("c2VjcmV0");
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD
                .encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let hs256 = {
            let h =
                json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(h.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let tag = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"secret"),
                input.as_bytes(),
            );
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
        };
        let forged = {
            let proof = client.proof("forged");
            let (input, _) = proof.rsplit_once('.').unwrap();
            let sig = other.sign(&header, &claims);
            format!("{input}.{}", sig.rsplit_once('.').unwrap().1)
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("another key", other.proof("k"), "dpop_key_mismatch"),
            (
                "another method",
                client.sign(&header, &with(claims.clone(), "htm", json!("POST"))),
                "dpop_proof_htm",
            ),
            (
                "wrong ath",
                client.sign(&header, &with(claims.clone(), "ath", json!("AAAA"))),
                "dpop_proof_ath",
            ),
            (
                "no ath",
                client.sign(&header, &{
                    let mut c = claims.clone();
                    c.as_object_mut().unwrap().remove("ath");
                    c
                }),
                "dpop_proof_ath",
            ),
            ("alg none", unsigned, "dpop_proof_alg"),
            ("HS256", hs256, "dpop_proof_alg"),
            (
                "alg off the list",
                client.sign(&with(header.clone(), "alg", json!("ES384")), &claims),
                "dpop_proof_alg",
            ),
            (
                "private key",
                client.sign(&with(header.clone(), "jwk", private_jwk), &claims),
                "dpop_proof_private_key",
            ),
            (
                "typ JWT",
                client.sign(&with(header.clone(), "typ", json!("JWT")), &claims),
                "dpop_proof_typ",
            ),
            (
                "no jwk",
                client.sign(
                    &{
                        let mut h = header.clone();
                        h.as_object_mut().unwrap().remove("jwk");
                        h
                    },
                    &claims,
                ),
                "dpop_proof_key",
            ),
            ("bad signature", forged, "dpop_proof_signature"),
            (
                "no jti",
                client.sign(&header, &{
                    let mut c = claims.clone();
                    c.as_object_mut().unwrap().remove("jti");
                    c
                }),
                "dpop_proof_malformed",
            ),
            (
                "string iat",
                client.sign(&header, &with(claims.clone(), "iat", json!("1700000000"))),
                "dpop_proof_malformed",
            ),
            (
                "two segments",
                "eyJhIjoxfQ.eyJhIjoxfQ".into(),
                "dpop_proof_malformed",
            ),
        ];
        for (name, proof, reason) in cases {
            assert_eq!(check(&verifier, &client, &proof), Err(reason), "{name}");
        }
        // None of them used up the jti "bad": the good proof with it still passes.
        assert_eq!(check(&verifier, &client, &client.proof("bad")), Ok(()));
    }

    #[test]
    fn a_missing_proof_is_invalid_token_and_two_are_invalid_request() {
        let clock = Clock::manual(NOW);
        let (verifier, client) = (verifier(&clock), Client::new());
        let none = request("https://api.example.com/orders", &[]);
        let error = verifier
            .verify(&none, ISSUER, TOKEN, &client.jkt())
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (AuthErrorKind::InvalidToken, "dpop_proof_missing")
        );
        let (p1, p2) = (client.proof("a"), client.proof("b"));
        let two = request("https://api.example.com/orders", &[&p1, &p2]);
        let error = verifier
            .verify(&two, ISSUER, TOKEN, &client.jkt())
            .unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::InvalidRequest);
    }

    #[test]
    fn a_full_replay_memory_refuses_new_proofs_until_old_ones_expire() {
        let clock = Clock::manual(NOW);
        let config = OidcConfig::from_json(
            "OIDC_CONFIG",
            &format!(r#"{{"issuers":[{{"issuer":"{ISSUER}","audience":"api"}}]}}"#),
        )
        .unwrap();
        let verifier = DpopVerifier::builder(&config)
            .replay_capacity(16)
            .replay_per_key(16)
            .clock(clock.clone())
            .build()
            .unwrap();
        let client = Client::new();
        // One entry per shard: fill until some shard refuses.
        let mut full = None;
        for i in 0..200 {
            match check(&verifier, &client, &client.proof(&format!("f{i}"))) {
                Ok(()) => {}
                Err(reason) => {
                    full = Some((i, reason));
                    break;
                }
            }
        }
        let (i, reason) = full.expect("the memory fills up");
        assert_eq!(reason, "dpop_replay_memory_full");
        // Once the remembered proofs are past their window they are dropped for new ones.
        clock.advance(Duration::from_secs(61));
        let mut claims = Client::claims(&format!("f{i}"));
        claims["iat"] = json!(NOW + 61);
        assert_eq!(
            check(&verifier, &client, &client.sign(&client.header(), &claims)),
            Ok(())
        );
    }

    /// SECURITY.md P21.
    #[test]
    fn an_issuer_with_nonces_wants_a_current_one_and_others_do_not() {
        let clock = Clock::manual(NOW);
        let config = OidcConfig::from_json(
            "OIDC_CONFIG",
            &format!(
                r#"{{"issuers":[{{"issuer":"{ISSUER}","audience":"api","dpop_nonce":true}},
                   {{"issuer":"https://other.example.com","audience":"api"}}]}}"#
            ),
        )
        .unwrap();
        let verifier = DpopVerifier::builder(&config)
            .clock(clock.clone())
            .build()
            .unwrap();
        assert!(!verifier.nonces_shared());
        let client = Client::new();
        let with_nonce = |jti: &str, nonce: &str| {
            let mut claims = Client::claims(jti);
            claims["nonce"] = json!(nonce);
            claims["iat"] = json!(clock.now_unix());
            client.sign(&client.header(), &claims)
        };
        let verify = |proof: &str, issuer: &str| {
            let request = request("https://api.example.com/orders", &[proof]);
            verifier
                .verify(&request, issuer, TOKEN, &client.jkt())
                .map_err(|e| e.reason())
        };
        let missing = verify(&client.proof("n0"), ISSUER).unwrap_err();
        assert_eq!(missing, "dpop_nonce_missing");
        assert!(asks_for_nonce(&AuthError::invalid_token(missing)));
        // The proof without a nonce did not use up its jti; the other issuer needs none.
        assert_eq!(
            verify(&client.proof("n0"), "https://other.example.com"),
            Ok(())
        );
        let nonce = verifier.nonce().unwrap();
        assert_eq!(verify(&with_nonce("n1", &nonce), ISSUER), Ok(()));
        assert_eq!(
            verify(&with_nonce("n2", "1.AAAA"), ISSUER),
            Err("dpop_nonce_invalid")
        );
        // Ten minutes on, the nonce's slot is two behind: a fresh one is needed.
        clock.advance(Duration::from_secs(600));
        assert_eq!(
            verify(&with_nonce("n3", &nonce), ISSUER),
            Err("dpop_nonce_stale")
        );
        assert_ne!(verifier.nonce().unwrap(), nonce);
        assert_eq!(
            verify(&with_nonce("n4", &verifier.nonce().unwrap()), ISSUER),
            Ok(())
        );
        // A weak configured key is refused at build, naming the variable.
        let error = DpopVerifier::builder(&config)
            .nonce_key(Secret::new(
                b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            ))
            .build()
            .unwrap_err();
        assert_eq!(error.variable(), "AUTH_DPOP_NONCE_KEY");
    }

    /// SECURITY.md P22.
    #[test]
    fn one_key_fills_only_its_share_of_the_replay_memory() {
        let clock = Clock::manual(NOW);
        let config = OidcConfig::from_json(
            "OIDC_CONFIG",
            &format!(r#"{{"issuers":[{{"issuer":"{ISSUER}","audience":"api"}}]}}"#),
        )
        .unwrap();
        let verifier = DpopVerifier::builder(&config)
            .replay_capacity(1024)
            .replay_per_key(8)
            .clock(clock.clone())
            .build()
            .unwrap();
        let (greedy, other) = (Client::new(), Client::new());
        for i in 0..8 {
            assert_eq!(
                check(&verifier, &greedy, &greedy.proof(&format!("g{i}"))),
                Ok(())
            );
        }
        let refused = verifier
            .verify(
                &request("https://api.example.com/orders", &[&greedy.proof("g8")]),
                ISSUER,
                TOKEN,
                &greedy.jkt(),
            )
            .unwrap_err();
        assert_eq!(
            (refused.reason(), refused.http_status().as_u16()),
            ("dpop_replay_key_share_full", 503)
        );
        // Another key is unaffected, and its proofs are still remembered as such.
        let proof = other.proof("o1");
        assert_eq!(check(&verifier, &other, &proof), Ok(()));
        assert_eq!(check(&verifier, &other, &proof), Err("dpop_proof_replayed"));
        // Once the greedy key's proofs expire it has its share again.
        clock.advance(Duration::from_secs(61));
        let mut claims = Client::claims("g9");
        claims["iat"] = json!(NOW + 61);
        assert_eq!(
            check(&verifier, &greedy, &greedy.sign(&greedy.header(), &claims)),
            Ok(())
        );
        for bad in [0, 1025] {
            assert_eq!(
                DpopVerifier::builder(&config)
                    .replay_capacity(1024)
                    .replay_per_key(bad)
                    .build()
                    .unwrap_err()
                    .variable(),
                "DpopVerifier::replay_per_key"
            );
        }
    }

    fn now(answer: Remembered) -> Result<bool, AuthError> {
        match answer {
            Remembered::Now(answer) => answer,
            Remembered::Later(_) => panic!("the memory answers at once"),
        }
    }

    #[test]
    fn the_memory_store_says_new_once_per_proof_until_it_expires() {
        let store = ReplayCache::new(1024, 4);
        let (a, b) = (ReplayId::new("key-a", "j1"), ReplayId::new("key-b", "j1"));
        assert_ne!(a.proof(), b.proof(), "the jti is named with its key");
        assert_eq!(a.key(), ReplayId::new("key-a", "j2").key());
        assert!(now(store.remember(&a, NOW + 10, NOW)).unwrap());
        assert!(!now(store.remember(&a, NOW + 10, NOW + 9)).unwrap());
        assert!(now(store.remember(&b, NOW + 10, NOW)).unwrap());
        // Once expired it is forgotten: the verifier's `iat` window refuses it by then.
        assert!(now(store.remember(&a, NOW + 20, NOW + 10)).unwrap());
        // One key's share (4) is all it may hold at once; another key is unaffected.
        for i in 2..5 {
            let id = ReplayId::new("key-a", &format!("j{i}"));
            assert!(now(store.remember(&id, NOW + 20, NOW + 10)).unwrap());
        }
        let over = now(store.remember(&ReplayId::new("key-a", "j5"), NOW + 20, NOW + 10));
        assert_eq!(over.unwrap_err().http_status().as_u16(), 503);
        let other = ReplayId::new("key-c", "j5");
        assert!(now(store.remember(&other, NOW + 20, NOW + 10)).unwrap());
    }

    /// A shared memory that answers later, as told, counting what it is asked.
    struct Shared {
        answer: Mutex<Result<bool, AuthError>>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl ReplayStore for Shared {
        fn remember(&self, _: &ReplayId, expires: u64, now: u64) -> Remembered {
            assert!(expires > now);
            self.asked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let answer = self.answer.lock().unwrap().clone();
            Remembered::Later(Box::pin(async move {
                tokio::task::yield_now().await;
                answer
            }))
        }
    }

    async fn settle(check: ProofCheck) -> Result<(), &'static str> {
        match check {
            ProofCheck::Done(result) => result,
            ProofCheck::Pending(future) => future.await,
        }
        .map_err(|e| e.reason())
    }

    /// SECURITY.md P24.
    #[tokio::test]
    async fn a_shared_memory_is_asked_after_the_local_one_and_has_the_last_word() {
        let clock = Clock::manual(NOW);
        let shared = Arc::new(Shared {
            answer: Mutex::new(Ok(true)),
            asked: 0.into(),
        });
        let verifier = verifier(&clock).with_replay_store(shared.clone());
        let client = Client::new();
        let asked = || shared.asked.load(std::sync::atomic::Ordering::Relaxed);
        let check = |proof: &str| {
            let request = request("https://api.example.com/orders", &[proof]);
            verifier.check_at(&request, "/orders", ISSUER, TOKEN, &client.jkt())
        };
        let proof = client.proof("s1");
        assert_eq!(settle(check(&proof)).await, Ok(()));
        assert_eq!(asked(), 1);
        // Seen here: refused without asking the shared memory.
        assert_eq!(settle(check(&proof)).await, Err("dpop_proof_replayed"));
        assert_eq!(asked(), 1);
        // New here but seen by another replica: refused.
        *shared.answer.lock().unwrap() = Ok(false);
        assert_eq!(
            settle(check(&client.proof("s2"))).await,
            Err("dpop_proof_replayed")
        );
        // The shared memory cannot say: its error is the answer.
        *shared.answer.lock().unwrap() = Err(AuthError::unavailable("down", None));
        assert_eq!(settle(check(&client.proof("s3"))).await, Err("down"));
        // A bad proof is refused before either memory is asked.
        assert_eq!(
            settle(check(&other_key_proof())).await,
            Err("dpop_key_mismatch")
        );
        assert_eq!(asked(), 3);
        // The synchronous calls cannot wait for it: 503 rather than a local-only verdict.
        let error = verifier
            .verify(
                &request("https://api.example.com/orders", &[&client.proof("s4")]),
                ISSUER,
                TOKEN,
                &client.jkt(),
            )
            .unwrap_err();
        assert_eq!(error.http_status().as_u16(), 503);
        // Without a shared memory the check is decided at once.
        let local = self::verifier(&clock);
        let request = request("https://api.example.com/orders", &[&client.proof("s5")]);
        assert!(matches!(
            local.check_at(&request, "/orders", ISSUER, TOKEN, &client.jkt()),
            ProofCheck::Done(Ok(()))
        ));
    }

    fn other_key_proof() -> String {
        Client::new().proof("s9")
    }

    #[test]
    fn thumbprint_of_the_rfc_7638_example() {
        let jwk = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(
            jwk_thumbprint(json!({"kty": "oct", "k": "a"}).as_object().unwrap()),
            None
        );
    }

    #[test]
    fn required_policy_refuses_unbound_tokens_and_cnf_must_be_well_formed() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let bound = claims(json!({"cnf": {"jkt": "abc"}}));
        let unbound = claims(json!({"sub": "a"}));
        assert!(check_policy(&bound, DpopPolicy::Required).is_ok());
        assert!(check_policy(&unbound, DpopPolicy::Allowed).is_ok());
        assert_eq!(
            check_policy(&unbound, DpopPolicy::Required)
                .unwrap_err()
                .reason(),
            "dpop_binding_required"
        );
        for bad in [
            json!({"cnf": "abc"}),
            json!({"cnf": {"jkt": 1}}),
            json!({"cnf": {"jkt": ""}}),
        ] {
            assert_eq!(
                check_policy(&claims(bad), DpopPolicy::Allowed)
                    .unwrap_err()
                    .kind(),
                AuthErrorKind::InvalidToken
            );
        }
    }
}
