//! Why a request was refused, and how each refusal is answered over HTTP and gRPC.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};

/// The realm in `WWW-Authenticate` challenges unless one is configured.
pub const DEFAULT_REALM: &str = "api";

/// How a request expects to be refused: as HTTP, or in gRPC's form (HTTP 200 with
/// `grpc-status`, since gRPC clients turn an HTTP 401 into UNKNOWN or UNAVAILABLE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Anything that is not gRPC: a status, a challenge and a JSON body.
    Http,
    /// gRPC: a `POST` over HTTP/2 with `content-type: application/grpc` or
    /// `application/grpc+<codec>`.
    Grpc,
    /// gRPC-Web: a `POST` with `content-type: application/grpc-web[-text][+<codec>]`, over
    /// any HTTP version. Answered like gRPC, with the request's own content type, so that a
    /// browser client can read `grpc-status`. Put the auth layer outside
    /// `tonic_web::GrpcWebLayer`, so that it sees the request as sent: tonic-web rewrites the
    /// content type to `application/grpc` but keeps HTTP/1.1, which would be answered as HTTP.
    GrpcWeb(HeaderValue),
}

impl Protocol {
    /// The protocol of `request`, from its method, HTTP version and content type alone.
    ///
    /// A gRPC content type on anything but a `POST` over HTTP/2 is plain HTTP: no gRPC client
    /// sends one, and answering it with `200 OK` would tell a shared cache or a monitor that
    /// a refused request succeeded.
    pub fn of<B>(request: &Request<B>) -> Self {
        if request.method() != Method::POST {
            return Self::Http;
        }
        let Some(content_type) = request.headers().get(CONTENT_TYPE) else {
            return Self::Http;
        };
        let media_type = content_type
            .as_bytes()
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let is = |base: &[u8]| {
            media_type.len() >= base.len()
                && media_type[..base.len()].eq_ignore_ascii_case(base)
                && matches!(media_type.get(base.len()), None | Some(b'+'))
        };
        if is(b"application/grpc-web") || is(b"application/grpc-web-text") {
            Self::GrpcWeb(content_type.clone())
        } else if is(b"application/grpc") && request.version() == Version::HTTP_2 {
            Self::Grpc
        } else {
            Self::Http
        }
    }

    /// Whether the answer takes gRPC's form (gRPC or gRPC-Web).
    pub fn is_grpc(&self) -> bool {
        !matches!(self, Self::Http)
    }
}

/// The kind of an [`AuthError`]; each kind has one fixed answer (see [`AuthError`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// No credential on a protected route.
    MissingCredential,
    /// The request itself is malformed: two `Authorization` headers, an empty bearer, a
    /// bearer outside the RFC 6750 b64token syntax, or two credentials at once.
    InvalidRequest,
    /// The credential is invalid, expired, unknown or too large.
    InvalidToken,
    /// The caller is known but lacks a required role.
    InsufficientScope,
    /// The source of keys is unavailable (no JWKS yet, or stale past its limit).
    Unavailable,
    /// The request's source has failed to authenticate too often in the current window
    /// (`AUTH_FAILURE_LIMIT`): refused before its credential is looked at.
    RateLimited,
}

/// gRPC status codes that authentication answers with.
///
/// Kept here as plain numbers so that `tower-auth-core` needs no gRPC dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrpcCode {
    /// 7: the caller is identified but not allowed.
    PermissionDenied = 7,
    /// 8: too many failed attempts; try again later.
    ResourceExhausted = 8,
    /// 14: try again later.
    Unavailable = 14,
    /// 16: the caller could not be identified.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The numeric code, as sent in `grpc-status`.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// A refused request: an opaque error with a [`kind`](Self::kind).
///
/// | kind | HTTP | `WWW-Authenticate` | gRPC |
/// |---|---|---|---|
/// | `MissingCredential` | 401 | `Bearer realm=".."` | 16 UNAUTHENTICATED |
/// | `InvalidRequest` | 400 | `error="invalid_request"` | 16 UNAUTHENTICATED |
/// | `InvalidToken` | 401 | `error="invalid_token"` | 16 UNAUTHENTICATED |
/// | `InsufficientScope` | 403 | `error="insufficient_scope", scope=".."` | 7 PERMISSION_DENIED |
/// | `Unavailable` | 503 + `Retry-After` | none | 14 UNAVAILABLE |
/// | `RateLimited` | 429 + `Retry-After` | none | 8 RESOURCE_EXHAUSTED |
///
/// The body and gRPC message are fixed per kind and never carry the credential, claims,
/// key id, issuer, algorithm or a library's error text. The [`reason`](Self::reason) is a
/// short code for logs only.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthError {
    kind: AuthErrorKind,
    reason: &'static str,
    scope: Option<Arc<str>>,
    retry_after: Option<Duration>,
}

/// What a 503 asks the client to wait when the source gave no better figure.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

impl AuthError {
    fn new(kind: AuthErrorKind, reason: &'static str) -> Self {
        Self {
            kind,
            reason,
            scope: None,
            retry_after: None,
        }
    }

    /// No credential was presented.
    pub fn missing_credential() -> Self {
        Self::new(AuthErrorKind::MissingCredential, "missing_credential")
    }

    /// The request is malformed; `reason` is a log code such as `duplicate_authorization`.
    pub fn invalid_request(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidRequest, reason)
    }

    /// The credential is not valid; `reason` is a log code such as `unknown_api_key`.
    pub fn invalid_token(reason: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidToken, reason)
    }

    /// The caller lacks a role; `scope` is the space-separated list of roles that would do.
    pub fn insufficient_scope(scope: impl Into<Arc<str>>) -> Self {
        Self {
            scope: Some(scope.into()),
            ..Self::new(AuthErrorKind::InsufficientScope, "missing_role")
        }
    }

    /// The key source is unavailable; `retry_after` is sent as `Retry-After` (whole seconds, at least 1).
    pub fn unavailable(reason: &'static str, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after: Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
            ..Self::new(AuthErrorKind::Unavailable, reason)
        }
    }

    /// The request's source is over its failure limit; `retry_after` is when its window ends
    /// (sent as `Retry-After`, whole seconds, at least 1).
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after.max(Duration::from_secs(1))),
            ..Self::new(AuthErrorKind::RateLimited, "rate_limited")
        }
    }

    /// The kind, which decides the answer.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// A short reason code for logs, never shown to the client.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The roles that would satisfy the requirement, for `InsufficientScope`.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// How long the client should wait, for `Unavailable` and `RateLimited`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status.
    pub fn http_status(&self) -> StatusCode {
        match self.kind {
            AuthErrorKind::MissingCredential | AuthErrorKind::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            AuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            AuthErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The RFC 6750 error code, where the kind has one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            AuthErrorKind::MissingCredential
            | AuthErrorKind::Unavailable
            | AuthErrorKind::RateLimited => None,
            AuthErrorKind::InvalidRequest => Some("invalid_request"),
            AuthErrorKind::InvalidToken => Some("invalid_token"),
            AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 section 3), or `None` for a 503 or a 429:
    /// neither asks for credentials.
    ///
    /// `realm` must be a valid quoted-string body; [`crate::ConfigError`] is raised for a bad
    /// realm when the layer is built, so this never fails at request time.
    pub fn www_authenticate(&self, realm: &str) -> Option<HeaderValue> {
        let value = match (self.kind, self.error_code()) {
            (AuthErrorKind::Unavailable | AuthErrorKind::RateLimited, _) => return None,
            (AuthErrorKind::InsufficientScope, Some(code)) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", scope=\"{}\"",
                self.scope.as_deref().unwrap_or_default()
            ),
            (_, Some(code)) => format!("Bearer realm=\"{realm}\", error=\"{code}\""),
            (_, None) => format!("Bearer realm=\"{realm}\""),
        };
        HeaderValue::try_from(value).ok()
    }

    /// The fixed JSON body.
    pub fn body(&self) -> &'static str {
        match self.kind {
            AuthErrorKind::MissingCredential => r#"{"error":"unauthorized"}"#,
            AuthErrorKind::InvalidRequest => r#"{"error":"invalid_request"}"#,
            AuthErrorKind::InvalidToken => r#"{"error":"invalid_token"}"#,
            AuthErrorKind::InsufficientScope => r#"{"error":"insufficient_scope"}"#,
            AuthErrorKind::Unavailable => r#"{"error":"temporarily_unavailable"}"#,
            AuthErrorKind::RateLimited => r#"{"error":"too_many_requests"}"#,
        }
    }

    /// The gRPC status code.
    pub fn grpc_code(&self) -> GrpcCode {
        match self.kind {
            AuthErrorKind::MissingCredential
            | AuthErrorKind::InvalidRequest
            | AuthErrorKind::InvalidToken => GrpcCode::Unauthenticated,
            AuthErrorKind::InsufficientScope => GrpcCode::PermissionDenied,
            AuthErrorKind::Unavailable => GrpcCode::Unavailable,
            AuthErrorKind::RateLimited => GrpcCode::ResourceExhausted,
        }
    }

    /// The fixed `grpc-message`.
    pub fn grpc_message(&self) -> &'static str {
        match self.kind {
            AuthErrorKind::MissingCredential => "missing credential",
            AuthErrorKind::InvalidRequest => "invalid request",
            AuthErrorKind::InvalidToken => "invalid credential",
            AuthErrorKind::InsufficientScope => "insufficient scope",
            AuthErrorKind::Unavailable => "authentication temporarily unavailable",
            AuthErrorKind::RateLimited => "too many failed attempts",
        }
    }
}

impl AuthError {
    /// The whole answer: status, headers and fixed body in HTTP form or, for
    /// [`Protocol::Grpc`] and [`Protocol::GrpcWeb`], a trailers-only gRPC response (HTTP 200,
    /// `grpc-status`, `grpc-message`, no body). Both carry `Cache-Control: no-store`.
    pub fn to_response(&self, realm: &str, protocol: &Protocol) -> Response<&'static str> {
        let mut response = Response::new("");
        let headers = response.headers_mut();
        // A refusal is about one request: no cache may keep it, in either form.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let grpc_type = match protocol {
            Protocol::Http => None,
            Protocol::Grpc => Some(HeaderValue::from_static("application/grpc")),
            Protocol::GrpcWeb(content_type) => Some(content_type.clone()),
        };
        if let Some(content_type) = grpc_type {
            headers.insert(CONTENT_TYPE, content_type);
            headers.insert("grpc-status", HeaderValue::from(self.grpc_code().as_i32()));
            headers.insert(
                "grpc-message",
                HeaderValue::from_static(self.grpc_message()),
            );
            return response;
        }
        *response.status_mut() = self.http_status();
        *response.body_mut() = self.body();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = self.www_authenticate(realm) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        response
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("scope", &self.scope)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            self.error_code().unwrap_or(match self.kind {
                AuthErrorKind::Unavailable => "unavailable",
                AuthErrorKind::RateLimited => "rate_limited",
                _ => "unauthorized",
            }),
            self.reason
        )
    }
}

impl std::error::Error for AuthError {}

/// A configuration mistake, found while building; never raised per request.
///
/// The message names the variable (or builder setting) and, for lists, the position of the
/// bad entry. It never contains a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    variable: String,
    message: String,
}

impl ConfigError {
    /// An error about `variable` (an environment variable or a builder setting).
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }

    /// The variable or setting at fault.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(e: &AuthError) -> Option<String> {
        e.www_authenticate("api")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn each_kind_maps_to_its_status_challenge_and_grpc_code() {
        let cases = [
            (
                AuthError::missing_credential(),
                401,
                Some(r#"Bearer realm="api""#),
                16,
            ),
            (
                AuthError::invalid_request("x"),
                400,
                Some(r#"Bearer realm="api", error="invalid_request""#),
                16,
            ),
            (
                AuthError::invalid_token("x"),
                401,
                Some(r#"Bearer realm="api", error="invalid_token""#),
                16,
            ),
            (
                AuthError::insufficient_scope("admin ops"),
                403,
                Some(r#"Bearer realm="api", error="insufficient_scope", scope="admin ops""#),
                7,
            ),
            (
                AuthError::unavailable("jwks_not_loaded", None),
                503,
                None,
                14,
            ),
            (
                AuthError::rate_limited(Duration::from_secs(20)),
                429,
                None,
                8,
            ),
        ];
        for (error, status, www, grpc) in cases {
            assert_eq!(error.http_status().as_u16(), status, "{error:?}");
            assert_eq!(challenge(&error).as_deref(), www, "{error:?}");
            assert_eq!(error.grpc_code().as_i32(), grpc, "{error:?}");
            let body: serde_json::Value = serde_json::from_str(error.body()).unwrap();
            assert!(body["error"].is_string(), "{error:?}");
        }
    }

    #[test]
    fn responses_carry_status_challenge_fixed_json_and_retry_after() {
        let r = AuthError::invalid_token("x").to_response("api", &Protocol::Http);
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="api", error="invalid_token""#
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(*r.body(), r#"{"error":"invalid_token"}"#);

        let r = AuthError::unavailable("x", Some(Duration::from_secs(30)))
            .to_response("api", &Protocol::Http);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "30");
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());

        let r =
            AuthError::rate_limited(Duration::from_millis(10)).to_response("api", &Protocol::Http);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(*r.body(), r#"{"error":"too_many_requests"}"#);
    }

    #[test]
    fn grpc_response_is_http_200_with_grpc_status() {
        for (error, code) in [
            (AuthError::missing_credential(), "16"),
            (AuthError::invalid_request("x"), "16"),
            (AuthError::invalid_token("x"), "16"),
            (AuthError::insufficient_scope("admin"), "7"),
            (AuthError::unavailable("x", None), "14"),
            (AuthError::rate_limited(Duration::from_secs(9)), "8"),
        ] {
            let r = error.to_response("api", &Protocol::Grpc);
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["grpc-status"], code);
            assert_eq!(r.headers()[CONTENT_TYPE], "application/grpc");
            assert!(r.body().is_empty());
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        }
    }

    /// SECURITY.md E7.
    #[test]
    fn only_a_post_over_http2_with_a_grpc_type_is_grpc() {
        let request = |method: Method, version: Version, content_type: Option<&str>| {
            let mut r = Request::builder().method(method).version(version);
            if let Some(t) = content_type {
                r = r.header(CONTENT_TYPE, t);
            }
            Protocol::of(&r.body(()).unwrap())
        };
        let h2 = Version::HTTP_2;
        for t in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC; charset=x",
        ] {
            assert_eq!(request(Method::POST, h2, Some(t)), Protocol::Grpc, "{t}");
        }
        for (method, version, t) in [
            (Method::GET, h2, Some("application/grpc")),
            (Method::POST, Version::HTTP_11, Some("application/grpc")),
            (Method::POST, h2, Some("application/grpcx")),
            (Method::POST, h2, Some("application/json")),
            (Method::POST, h2, None),
            (Method::GET, Version::HTTP_11, Some("application/grpc-web")),
        ] {
            assert_eq!(
                request(method.clone(), version, t),
                Protocol::Http,
                "{method} {version:?} {t:?}"
            );
        }
        for t in [
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web-text",
        ] {
            let p = request(Method::POST, Version::HTTP_11, Some(t));
            assert_eq!(p, Protocol::GrpcWeb(HeaderValue::from_static(t)), "{t}");
            assert!(p.is_grpc());
            // gRPC-Web gets its own content type back.
            let r = AuthError::invalid_token("x").to_response("api", &p);
            assert_eq!(
                (r.status(), &r.headers()[CONTENT_TYPE]),
                (StatusCode::OK, &HeaderValue::from_static(t))
            );
            assert_eq!(r.headers()["grpc-status"], "16");
        }
    }

    #[test]
    fn missing_credential_has_no_error_code() {
        // RFC 6750 section 3.1: a request without authentication information
        // SHOULD NOT carry an error code.
        assert!(
            !challenge(&AuthError::missing_credential())
                .unwrap()
                .contains("error=")
        );
    }

    #[test]
    fn unavailable_always_has_retry_after() {
        assert_eq!(
            AuthError::unavailable("x", None).retry_after(),
            Some(DEFAULT_RETRY_AFTER)
        );
        let e = AuthError::unavailable("x", Some(Duration::from_secs(30)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn body_and_grpc_message_do_not_carry_the_reason() {
        let e = AuthError::invalid_token("bad_signature");
        assert!(!e.body().contains("signature"));
        assert!(!e.grpc_message().contains("signature"));
    }
}
