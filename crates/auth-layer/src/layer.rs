//! `AuthLayer`: the configuration of authentication, shared by every service it builds.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use tower_auth_core::{
    AuthError, Authenticator, ConfigError, Credential, CredentialExtractor, DEFAULT_REALM, Identity,
};
use tower_layer::Layer;

use crate::chain::{Chain, Step};
use crate::rules::{PathRule, RoleRequirement, Rules};
use crate::{AuthService, RequireRoles};

/// Identity headers a client might send to impersonate someone behind a trusting proxy or
/// handler; they are removed from every request before it reaches the inner service.
pub static STRIPPED_IDENTITY_HEADERS: [HeaderName; 8] = [
    HeaderName::from_static("x-auth-subject"),
    HeaderName::from_static("x-auth-roles"),
    HeaderName::from_static("x-auth-method"),
    HeaderName::from_static("x-forwarded-user"),
    HeaderName::from_static("x-forwarded-email"),
    HeaderName::from_static("x-forwarded-groups"),
    HeaderName::from_static("x-remote-user"),
    HeaderName::from_static("remote-user"),
];

/// Removes [`STRIPPED_IDENTITY_HEADERS`] from `headers`.
///
/// A request almost never has one, so the names it does have are compared first, by length
/// and then bytes; removing all eight by name would hash each of them on every request.
pub(crate) fn strip_identity_headers(headers: &mut HeaderMap) {
    if headers.keys().any(|name| {
        STRIPPED_IDENTITY_HEADERS
            .iter()
            .any(|stripped| stripped.as_str() == name.as_str())
    }) {
        for name in &STRIPPED_IDENTITY_HEADERS {
            headers.remove(name);
        }
    }
}

/// A tower layer that authenticates every request.
///
/// It reads the credential (`Authorization: Bearer` or the API-key header), tries each
/// authenticator in order, puts the [`Identity`] into the request extensions and answers
/// 401 / 400 / 403 / 503 (or the gRPC status) itself. The inner service is never called for
/// a rejected request and its error type is never changed.
///
/// ```
/// use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
/// use tower_auth::{AuthLayer, RequireRoles};
/// use axum::{Router, routing::get};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keys = ApiKeySet::parse("API_KEYS", r#"[{"name":"ci","key":"k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA"}]"#, &Admins::default()).unwrap();
/// let app = Router::new()
///     .route("/admin", get(|| async { "admin" }).route_layer(RequireRoles::any(["admin"])))
///     .route("/whoami", get(|id: tower_auth_core::Identity| async move { id.subject().to_owned() }))
///     .layer(AuthLayer::new(ApiKeyAuthenticator::new(keys)));
///
/// let request = |path: &str, key: Option<&str>| {
///     let mut r = http::Request::builder().uri(path);
///     if let Some(key) = key {
///         r = r.header("x-api-key", key);
///     }
///     r.body(axum::body::Body::empty()).unwrap()
/// };
/// let key = Some("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA");
/// assert_eq!(app.clone().oneshot(request("/whoami", key)).await.unwrap().status(), 200);
/// assert_eq!(app.clone().oneshot(request("/whoami", None)).await.unwrap().status(), 401);
/// assert_eq!(app.clone().oneshot(request("/admin", key)).await.unwrap().status(), 403);
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    pub(crate) shared: Arc<Shared>,
}

/// Everything a service needs, behind one `Arc` so that cloning a service is one refcount.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) chain: Chain,
    pub(crate) extractor: CredentialExtractor,
    pub(crate) rules: Rules,
    pub(crate) realm: Arc<str>,
    /// `false` only for [`AuthLayer::disabled`].
    pub(crate) enabled: bool,
    /// Background work (key-file reloads) that lives as long as the layer and its services.
    pub(crate) tasks: Vec<Arc<crate::reload::TaskGuard>>,
    /// The token-exchange endpoint configured with the layer (`AUTH_TOKEN_CLIENTS`).
    #[cfg(feature = "hmac")]
    pub(crate) token_exchange: Option<tower_auth_hmac::TokenExchange>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("mode", &self.mode())
            .field("api_key_header", self.shared.extractor.api_key_header())
            .field("rules", &self.shared.rules)
            .field("realm", &self.shared.realm)
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// A layer with one authenticator; add more with [`or`](Self::or).
    ///
    /// `/health` and `/grpc.health.v1.Health/Check` are exempt by default.
    pub fn new<A: Authenticator>(authenticator: A) -> Self {
        let mut layer = Self::empty(true);
        layer.shared_mut().chain.push(Arc::new(authenticator));
        layer
    }

    /// A layer that authenticates nothing and lets every request through without an
    /// identity (`AUTH_MODE=none`). `/health` reports `auth_mode: none`.
    pub fn disabled() -> Self {
        Self::empty(false)
    }

    fn empty(enabled: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                chain: Chain::default(),
                extractor: CredentialExtractor::default(),
                rules: Rules::default(),
                realm: DEFAULT_REALM.into(),
                enabled,
                tasks: Vec::new(),
                #[cfg(feature = "hmac")]
                token_exchange: None,
            }),
        }
    }

    pub(crate) fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }

    /// Tries `authenticator` after the ones already configured.
    pub fn or<A: Authenticator>(mut self, authenticator: A) -> Self {
        let shared = self.shared_mut();
        shared.chain.push(Arc::new(authenticator));
        shared.enabled = true;
        self
    }

    /// Exempts an exact path, a full gRPC method (`/pkg.Service/Method`), or every method of a
    /// gRPC service (`/grpc.reflection.v1.ServerReflection/*`, for gRPC requests only). An
    /// exempt request is never rejected, and still gets an identity when it carries a valid
    /// credential.
    ///
    /// # Panics
    /// If `path` does not start with `/`, or has a `*` other than as `/package.Service/*`.
    pub fn exempt(mut self, path: impl AsRef<str>) -> Self {
        if let Err(e) = self.shared_mut().rules.exempt(path.as_ref()) {
            panic!("AuthLayer::exempt: {e}");
        }
        self
    }

    /// Removes every exemption, the defaults included.
    pub fn without_exemptions(mut self) -> Self {
        self.shared_mut().rules.clear_exemptions();
        self
    }

    /// Requires roles on an exact path, or on every method of a gRPC service (`/pkg.Service/*`).
    /// An exemption wins over a role rule.
    ///
    /// # Panics
    /// If the pattern does not start with `/` or has a `*` other than as its last segment.
    pub fn require(mut self, pattern: impl AsRef<str>, roles: RequireRoles) -> Self {
        let requirement = roles.requirement();
        if let Err(e) = self
            .shared_mut()
            .rules
            .require(pattern.as_ref(), requirement)
        {
            panic!("AuthLayer::require: {e}");
        }
        self
    }

    /// The header API keys are read from (default `X-API-Key`).
    ///
    /// # Panics
    /// If `header` is `Authorization`.
    pub fn api_key_header(mut self, header: HeaderName) -> Self {
        self.shared_mut().extractor = CredentialExtractor::new(header);
        self
    }

    /// The realm in `WWW-Authenticate` challenges (default `api`).
    ///
    /// # Panics
    /// If `realm` has a quote, a backslash or a control character.
    pub fn realm(mut self, realm: &str) -> Self {
        if let Err(e) = check_realm(realm) {
            panic!("{e}");
        }
        self.shared_mut().realm = realm.into();
        self
    }

    /// The methods in order (`api_key,oidc`), or `none` for a disabled layer.
    pub fn mode(&self) -> String {
        if self.shared.enabled && !self.shared.chain.is_empty() {
            self.shared.chain.methods()
        } else {
            "none".into()
        }
    }

    /// The token-exchange endpoint configured from `AUTH_TOKEN_CLIENTS`, to be served at
    /// [`tower_auth_hmac::TOKEN_PATH`] (which the layer exempts). `None` without it.
    #[cfg(feature = "hmac")]
    pub fn token_exchange(&self) -> Option<&tower_auth_hmac::TokenExchange> {
        self.shared.token_exchange.as_ref()
    }

    /// The exempt paths, in no particular order.
    pub fn exemptions(&self) -> Vec<String> {
        self.shared.rules.exemptions().collect()
    }
}

pub(crate) fn check_realm(realm: &str) -> Result<(), ConfigError> {
    if realm
        .bytes()
        .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
    {
        Ok(())
    } else {
        Err(ConfigError::new(
            "realm",
            "must be printable ASCII without quotes or backslashes",
        ))
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService::new(inner, Arc::clone(&self.shared))
    }
}

/// What to do with a request, decided without waiting or after.
pub(crate) enum Decision {
    /// Call the inner service, with this identity if there is one.
    Pass(Option<Identity>),
    /// Answer with this error.
    Reject(AuthError),
}

impl Shared {
    /// Runs extraction and the chain as far as it goes without waiting.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Step {
        match self.extractor.extract(headers) {
            Ok(Some(credential)) => self.chain.run(credential, 0),
            Ok(None) => Step::Done(Err(AuthError::missing_credential())),
            Err(error) => Step::Done(Err(error)),
        }
    }

    /// Resumes the chain after authenticator `index` said `NotMine` asynchronously.
    pub(crate) fn resume(&self, headers: &HeaderMap, index: usize) -> Step {
        match self.extractor.extract(headers) {
            Ok(Some(credential)) => self.chain.run(credential, index + 1),
            // The headers have not changed since the first extraction succeeded.
            Ok(None) | Err(_) => Step::Done(Err(AuthError::invalid_token("unclaimed_credential"))),
        }
    }

    /// Turns the chain's result into a decision for `path`, and logs it.
    pub(crate) fn decide(
        &self,
        path: &str,
        headers: &HeaderMap,
        result: Result<Identity, AuthError>,
    ) -> Decision {
        // Whether the request is gRPC matters only to `/pkg.Service/*` exemptions.
        let grpc = self.rules.has_grpc_service_exemptions() && tower_auth_core::is_grpc(headers);
        let rule = self.rules.classify(path, grpc);
        let decision = match (rule, result) {
            (PathRule::Exempt, Ok(identity)) => Decision::Pass(Some(identity)),
            (PathRule::Exempt, Err(_)) => Decision::Pass(None),
            (_, Err(error)) => Decision::Reject(error),
            (PathRule::Require(requirement), Ok(identity)) => match requirement.check(&identity) {
                Ok(()) => Decision::Pass(Some(identity)),
                Err(error) => {
                    self.log(path, headers, Some(&identity), Err(&error));
                    return Decision::Reject(error);
                }
            },
            (PathRule::Authenticated, Ok(identity)) => Decision::Pass(Some(identity)),
        };
        match &decision {
            Decision::Pass(identity) => self.log(path, headers, identity.as_ref(), Ok(())),
            Decision::Reject(error) => self.log(path, headers, None, Err(error)),
        }
        decision
    }

    fn log(
        &self,
        path: &str,
        headers: &HeaderMap,
        identity: Option<&Identity>,
        result: Result<(), &AuthError>,
    ) {
        // Field values are only evaluated when the event is enabled, so the fingerprint's
        // SHA-256 costs nothing on a quiet subscriber.
        let fingerprint = || {
            self.extractor
                .extract(headers)
                .ok()
                .flatten()
                .map(|c: Credential<'_>| c.fingerprint().to_string())
                .unwrap_or_default()
        };
        match (result, identity) {
            (Ok(()), Some(identity)) => tracing::debug!(
                target: "auth",
                outcome = "accepted",
                path,
                method = identity.method().kind(),
                subject = identity.subject(),
                fingerprint = %fingerprint(),
            ),
            (Ok(()), None) => tracing::debug!(target: "auth", outcome = "exempt", path),
            (Err(error), identity) => tracing::info!(
                target: "auth",
                outcome = "rejected",
                path,
                reason = error.reason(),
                status = error.http_status().as_u16(),
                subject = identity.map(Identity::subject),
                fingerprint = %fingerprint(),
            ),
        }
    }
}

impl RequireRoles {
    pub(crate) fn requirement(&self) -> Arc<RoleRequirement> {
        Arc::clone(&self.requirement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn every_identity_header_is_stripped_and_nothing_else() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("x-request-id", HeaderValue::from_static("r"));
        strip_identity_headers(&mut headers);
        assert_eq!(headers.len(), 2, "nothing to strip: untouched");

        for name in &STRIPPED_IDENTITY_HEADERS {
            headers.append(name, HeaderValue::from_static("root"));
            headers.append(name, HeaderValue::from_static("admin"));
        }
        // Header names are case-insensitive: any spelling arrives lowercased.
        headers.append(
            HeaderName::from_bytes(b"X-Forwarded-User").unwrap(),
            HeaderValue::from_static("root"),
        );
        strip_identity_headers(&mut headers);
        let left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-api-key", "x-request-id"]);
    }
}
