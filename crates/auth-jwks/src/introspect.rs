//! RFC 7662 introspection of opaque access tokens, for the one issuer that enables it.
//!
//! - Only a bearer token that is not shaped like a JWS (`eyJ..` with two dots) is sent: a JWT
//!   is judged by its signature, or refused, and never handed to an endpoint.
//! - The client authenticates with `client_secret_basic`: RFC 6749 section 2.3.1
//!   form-urlencodes the id and secret before they are joined and base64-encoded.
//! - The answer is trusted only when `active` is the boolean `true`; `iss`, when present, must
//!   be the issuer; `exp` and `nbf`, when present, are checked with the leeway; `aud` must name
//!   a configured audience, as for JWTs; `token_type`, when present, must be a bearer access
//!   token (a refresh token is active too, but is no access token). Roles come from `scope`
//!   (and the issuer's `roles_claim`) with its `roles_prefix`; the subject is `sub`, or the
//!   `client_id` of a token without one (RFC 9068 section 2.2 does the same for client
//!   credentials).
//! - Answers are cached under the token's SHA-256 (never the token): an active one until its
//!   `exp` or the token cache TTL, whichever is first; a refusal for [`NEGATIVE_TTL`]. An
//!   unreachable endpoint is not cached. Concurrent requests with one token share one call,
//!   made by a task that outlives the requests; at most [`MAX_IN_FLIGHT`] calls run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, Uri};
use serde_json::{Map, Value};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_auth_core::jose::{self, looks_like_jws};
use tower_auth_core::{
    Admins, AuthError, Check, Clock, DigestBuildHasher, Fingerprint, Identity, Outcome,
    sha256_digest,
};
use tower_auth_http::{Discovery, HttpClient, HttpError};

use crate::config::Issuer;
use crate::validate::identity;

/// How long a refused token is remembered: long enough to absorb a client retrying in a
/// loop, short enough that a token just issued (and introspected a moment too early) works soon.
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Introspection calls in flight at most; beyond, requests with new tokens get 503.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

type Key = [u8; 32];

/// What an introspection decided.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    Active(Identity),
    Refused(&'static str),
    Unavailable(&'static str, Option<Duration>),
}

impl Verdict {
    pub(crate) fn into_outcome(self) -> Outcome {
        match self {
            Self::Active(identity) => Outcome::Authenticated(identity),
            Self::Refused(reason) => Outcome::Rejected(AuthError::invalid_token(reason)),
            Self::Unavailable(reason, retry) => {
                Outcome::Rejected(AuthError::unavailable(reason, retry))
            }
        }
    }
}

#[derive(Clone)]
struct Entry {
    verdict: Verdict,
    /// The entry is good until then (monotonic).
    until: Instant,
    /// An active token's `exp`, rechecked on every hit against the wall clock.
    exp: Option<u64>,
}

pub(crate) struct Introspector {
    issuer: Arc<Issuer>,
    client: HttpClient,
    discovered: Mutex<Option<Uri>>,
    cache: Option<moka::sync::Cache<Key, Entry, DigestBuildHasher>>,
    in_flight: Mutex<HashMap<Key, watch::Receiver<Option<Verdict>>>>,
    ttl: Duration,
    clock: Clock,
    leeway: u64,
    admins: Admins,
    runtime: Handle,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings shared with the token cache.
pub(crate) struct CacheSettings {
    pub(crate) size: u64,
    pub(crate) ttl: Duration,
    pub(crate) leeway: u64,
    pub(crate) clock: Clock,
}

/// Ends a token's single flight when dropped.
struct InFlight(Arc<Introspector>, Key);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0.in_flight).remove(&self.1);
    }
}

impl Introspector {
    pub(crate) fn new(
        issuer: Arc<Issuer>,
        client: HttpClient,
        settings: CacheSettings,
        admins: Admins,
        runtime: Handle,
    ) -> Arc<Self> {
        let cache = (settings.size > 0 && !settings.ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.size)
                // Entries carry their own end; this only lets moka drop them in time.
                .time_to_live(settings.ttl.max(NEGATIVE_TTL))
                .build_with_hasher(DigestBuildHasher::default())
        });
        Arc::new(Self {
            issuer,
            client,
            discovered: Mutex::new(None),
            cache,
            in_flight: Mutex::new(HashMap::new()),
            ttl: settings.ttl,
            clock: settings.clock,
            leeway: settings.leeway,
            admins,
            runtime,
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer.issuer
    }

    /// Whether `token` is one this introspector takes: not shaped like a JWS.
    pub(crate) fn takes(token: &str) -> bool {
        !looks_like_jws(token)
    }

    /// The cached verdict, or a wait for the (shared) call.
    pub(crate) fn check(self: &Arc<Self>, token: &str) -> Check {
        let key = sha256_digest(token.as_bytes());
        if let Some(verdict) = self.cached(&key) {
            return Check::Ready(self.settle(token, verdict));
        }
        let this = Arc::clone(self);
        let token = token.to_owned();
        Check::Pending(Box::pin(async move {
            let verdict = this.verdict_for(key, &token).await;
            this.settle(&token, verdict)
        }))
    }

    /// The verdict for `token`, from the cache or a (shared) call.
    pub(crate) async fn verdict(self: &Arc<Self>, token: &str) -> Verdict {
        let key = sha256_digest(token.as_bytes());
        match self.cached(&key) {
            Some(verdict) => verdict,
            None => self.verdict_for(key, token).await,
        }
    }

    /// A request's outcome. A token the issuer does not vouch for is not claimed, rather
    /// than refused: an opaque bearer token may be another method's (an API key, when `oidc`
    /// comes first in the chain), and one nobody claims is refused as `invalid_token` all the
    /// same. SECURITY.md N1.
    fn settle(&self, token: &str, verdict: Verdict) -> Outcome {
        if let Verdict::Refused(reason) | Verdict::Unavailable(reason, _) = &verdict {
            tracing::debug!(target: "auth", reason, fingerprint = %Fingerprint::of(token.as_bytes()),
                issuer = self.issuer(), "introspected token refused");
        }
        match verdict {
            Verdict::Refused(_) => Outcome::NotMine,
            other => other.into_outcome(),
        }
    }

    fn cached(&self, key: &Key) -> Option<Verdict> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(key)?;
        let fresh = Instant::now() < entry.until
            && entry
                .exp
                .is_none_or(|exp| self.clock.now_unix() < exp.saturating_add(self.leeway));
        if fresh {
            Some(entry.verdict)
        } else {
            cache.invalidate(key);
            None
        }
    }

    async fn verdict_for(self: &Arc<Self>, key: Key, token: &str) -> Verdict {
        let mut rx = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    if in_flight.len() >= MAX_IN_FLIGHT {
                        return Verdict::Unavailable("introspection_busy", None);
                    }
                    let (tx, rx) = watch::channel(None);
                    in_flight.insert(key, rx.clone());
                    // A task, not this request's future: if the request is cancelled, the
                    // others waiting for the same token still get the answer.
                    let this = Arc::clone(self);
                    let token = token.to_owned();
                    self.runtime.spawn(async move {
                        // Removed however the task ends: a panic must not leave the token
                        // answered "busy" until a restart (the waiters then get 503 once).
                        let _in_flight = InFlight(Arc::clone(&this), key);
                        let (verdict, exp) = this.introspect(&token).await;
                        this.remember(key, &verdict, exp);
                        tx.send_replace(Some(verdict));
                    });
                    rx
                }
            }
        };
        match rx.wait_for(Option::is_some).await {
            Ok(verdict) => verdict
                .clone()
                .unwrap_or(Verdict::Unavailable("introspection_lost", None)),
            Err(_) => Verdict::Unavailable("introspection_lost", None),
        }
    }

    fn remember(&self, key: Key, verdict: &Verdict, exp: Option<u64>) {
        let Some(cache) = &self.cache else { return };
        let now = Instant::now();
        let until = match verdict {
            Verdict::Active(_) => {
                // `exp` bounds the entry on the wall clock at every hit; the TTL on the monotonic one.
                now + self.ttl
            }
            Verdict::Refused(_) => now + NEGATIVE_TTL,
            Verdict::Unavailable(..) => return,
        };
        cache.insert(
            key,
            Entry {
                verdict: verdict.clone(),
                until,
                exp,
            },
        );
    }

    /// Asks the endpoint; returns the verdict and an active token's `exp`.
    async fn introspect(&self, token: &str) -> (Verdict, Option<u64>) {
        let endpoint = match self.endpoint().await {
            Ok(endpoint) => endpoint,
            Err(verdict) => return (verdict, None),
        };
        let Some(settings) = &self.issuer.introspection else {
            return (
                Verdict::Unavailable("introspection_not_configured", None),
                None,
            );
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let reply = match self
            .client
            .post_form(
                &endpoint,
                Some(basic(&settings.client_id, &settings.secret)),
                form,
            )
            .await
        {
            Ok(reply) => reply,
            Err(error) => return (unreachable(self.issuer(), error), None),
        };
        if let Some(error) = reply.failure() {
            return (unreachable(self.issuer(), error), None);
        }
        if reply.status != StatusCode::OK {
            // Our own client credentials refused (401), or a request the server does not
            // understand: no token can be judged until the configuration is fixed.
            tracing::error!(target: "auth", issuer = self.issuer(), status = reply.status.as_u16(),
                "the introspection endpoint refused our request; check the introspection client_id and secret");
            return (
                Verdict::Unavailable("introspection_refused_client", None),
                None,
            );
        }
        let now = self.clock.now_unix();
        let end = now.saturating_add(self.ttl.as_secs());
        match judge(
            &reply.body,
            &self.issuer,
            now,
            self.leeway,
            end,
            &self.admins,
        ) {
            Ok((identity, exp)) => (Verdict::Active(identity), exp),
            Err(reason) => (Verdict::Refused(reason), None),
        }
    }

    /// The configured endpoint, or the discovered one (remembered once found).
    async fn endpoint(&self) -> Result<Uri, Verdict> {
        if let Some(endpoint) = self
            .issuer
            .introspection
            .as_ref()
            .and_then(|i| i.endpoint.clone())
        {
            return Ok(endpoint);
        }
        if let Some(endpoint) = lock(&self.discovered).clone() {
            return Ok(endpoint);
        }
        let issuer = self.issuer();
        let discovery = Discovery::openid(issuer)
            .map_err(|_| Verdict::Unavailable("introspection_discovery_failed", None))?;
        // Whatever went wrong with discovery (down, a 404, an issuer mismatch, HTML), no
        // token of this issuer can be judged: 503, never a 401 for the token.
        let metadata = discovery.fetch(&self.client).await.map_err(|e| {
            tracing::warn!(target: "auth", issuer, reason = e.reason(),
                "discovery for the introspection endpoint failed");
            Verdict::Unavailable("introspection_discovery_failed", e.retry_after())
        })?;
        let endpoint = metadata.introspection_endpoint().map_err(|e| {
            // A missing or plain-http endpoint is the IdP's configuration, not an outage of
            // a moment; still 503, as no token of this issuer can be judged. SECURITY.md N4.
            tracing::error!(target: "auth", issuer, reason = e.reason(),
                "the discovery document has no usable introspection_endpoint");
            Verdict::Unavailable("introspection_no_endpoint", None)
        })?;
        *lock(&self.discovered) = Some(endpoint.clone());
        Ok(endpoint)
    }
}

/// A failed exchange: 503 when the endpoint is down or busy, 401 when what came back is no
/// answer at all (a redirect, an oversized body). SECURITY.md N2.
fn unreachable(issuer: &str, error: HttpError) -> Verdict {
    if error.is_unavailable() {
        tracing::warn!(target: "auth", issuer, reason = error.reason(), "introspection endpoint unavailable");
        Verdict::Unavailable("introspection_unavailable", error.retry_after())
    } else {
        tracing::warn!(target: "auth", issuer, reason = error.reason(), "introspection answered garbage");
        Verdict::Refused("introspection_garbage")
    }
}

/// `client_secret_basic` (RFC 6749 section 2.3.1): each part form-urlencoded, then joined and
/// base64-encoded.
pub(crate) fn basic(client_id: &str, secret: &tower_auth_core::Secret) -> HeaderValue {
    let encode = |bytes: &[u8]| form_urlencoded::byte_serialize(bytes).collect::<String>();
    let mut joined = encode(client_id.as_bytes());
    joined.push(':');
    joined.push_str(&encode(secret.expose_secret()));
    let mut value = String::from("Basic ");
    STANDARD.encode_string(joined.as_bytes(), &mut value);
    // Neither string is needed again; overwrite them before they are freed.
    zeroize(joined);
    let mut header = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Basic"));
    zeroize(value);
    header.set_sensitive(true);
    header
}

fn zeroize(text: String) {
    drop(tower_auth_core::Secret::from(text));
}

/// Judges an introspection response body: the identity and `exp` of an active token, or
/// the reason code of a refusal.
pub(crate) fn judge(
    body: &[u8],
    issuer: &Issuer,
    now: u64,
    leeway: u64,
    end_without_exp: u64,
    admins: &Admins,
) -> Result<(Identity, Option<u64>), &'static str> {
    const GARBAGE: &str = "introspection_garbage";
    let mut claims: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        _ => return Err(GARBAGE),
    };
    // RFC 7662 section 2.2: `active` is REQUIRED and a boolean; anything else is no answer.
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err("inactive"),
        _ => return Err(GARBAGE),
    }
    match claims.get("iss") {
        None => {}
        Some(Value::String(iss)) if **iss == *issuer.issuer => {}
        Some(Value::String(_)) => return Err("introspection_foreign_iss"),
        Some(_) => return Err(GARBAGE),
    }
    // NumericDates as the JWT path reads them: whole seconds up to the year 9999, so that no
    // answer can overflow a time (SECURITY.md N13).
    let time = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|&secs| secs <= jose::MAX_NUMERIC_DATE)
            .map(Some)
            .ok_or(GARBAGE),
    };
    let exp = time("exp")?;
    if exp.is_some_and(|exp| exp.saturating_add(leeway) <= now) {
        return Err("expired");
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err("not_yet_valid");
    }
    if time("iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err("issued_in_future");
    }
    match claims.get("token_type") {
        None => {}
        // RFC 9449 section 6.2: a DPoP-bound token is introspected as `DPoP`; its `cnf.jkt`
        // then asks the layer for a proof, as for a JWT.
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("bearer")
                || t.eq_ignore_ascii_case("access_token")
                || t.eq_ignore_ascii_case("dpop") => {}
        Some(_) => return Err("introspection_not_an_access_token"),
    }
    // The same question in the members other servers answer it with: Ory Hydra's
    // `token_use`, Keycloak's `typ`. A refresh token is no access token (SECURITY.md N14).
    match claims.get("token_use") {
        None => {}
        Some(Value::String(t)) if t == "access_token" => {}
        Some(_) => return Err("introspection_not_an_access_token"),
    }
    if let Some(Value::String(typ)) = claims.get("typ")
        && ["refresh", "offline", "id"]
            .iter()
            .any(|kind| typ.eq_ignore_ascii_case(kind))
    {
        return Err("introspection_not_an_access_token");
    }
    // The issuer's DPoP policy, as for its JWTs: under `required`, an unbound token is
    // refused, and a malformed `cnf` always is (SECURITY.md N15).
    crate::dpop::check_policy(&claims, issuer.dpop).map_err(|e| e.reason())?;
    jose::require_audience(&claims, &issuer.audiences).map_err(|e| AuthError::from(e).reason())?;
    let text = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(GARBAGE),
    };
    if text("sub")?.is_none() {
        let client_id = text("client_id")?.ok_or("missing_sub")?;
        claims.insert("sub".into(), Value::String(client_id));
    }
    // The identity's end: `exp`, or, without one, when the cache would ask again.
    let end = exp.unwrap_or(end_without_exp);
    Ok((identity(claims, issuer, end, admins), exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6749 section 2.3.1 with the example of RFC 7662 section 2.1 style credentials.
    #[test]
    fn client_secret_basic_form_urlencodes_before_base64() {
        let header = basic("my client", &"p@ss:w%rd+/".into());
        assert!(header.is_sensitive());
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:p%40ss%3Aw%25rd%2B%2F");
    }

    #[test]
    fn jws_shaped_tokens_are_never_taken() {
        assert!(Introspector::takes("2YotnFZFEjr1zCsicMWpAA"));
        assert!(Introspector::takes("eyJhbGciOiJub25lIn0"));
        assert!(!Introspector::takes(
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"
        ));
    }
}
