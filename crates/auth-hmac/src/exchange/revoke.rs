//! The revocation endpoint: `POST /auth/revoke` (RFC 7009) for the role tokens the exchange
//! issues.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tower_auth_core::sha256_digest;
//! use tower_auth_hmac::{ExchangeEndpoint, HmacAuthenticator, HmacConfig, TokenClients};
//! use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//!
//! let digest = hex::encode(sha256_digest(b"registration-secret-of-the-metrics-agent"));
//! let clients = TokenClients::parse(
//!     "AUTH_TOKEN_CLIENTS",
//!     &format!(r#"[{{"client_id":"agent","secret_sha256":"sha256:{digest}","roles":["runtime.metrics:read"]}}]"#),
//! ).unwrap();
//! let config = HmacConfig::builder("9c4e1a7f3b8d2e6a0c5f9b3d7e1a4c8f-role-tokens").build().unwrap();
//! let auth = HmacAuthenticator::new(config.clone(), Admins::default());
//! let exchange = ExchangeEndpoint::builder(config, clients).build().unwrap();
//! // The list the authenticator checks is the one the endpoint writes.
//! let revoke = exchange.revocation_endpoint(auth.revocations().clone());
//!
//! let issued = exchange.oneshot(
//!     http::Request::post("/auth/token")
//!         .header("content-type", "application/json")
//!         .body(Full::new(bytes::Bytes::from(
//!             r#"{"client_id":"agent","credential":"registration-secret-of-the-metrics-agent"}"#,
//!         )))
//!         .unwrap(),
//! ).await.unwrap();
//! let body: serde_json::Value = serde_json::from_slice(&issued.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! let token = body["access_token"].as_str().unwrap();
//! assert!(matches!(auth.authenticate(Credential::Bearer(token)), Check::Ready(Outcome::Authenticated(_))));
//!
//! // Basic authentication: base64 of `client_id:secret`, each form-urlencoded first.
//! let basic = "Basic YWdlbnQ6cmVnaXN0cmF0aW9uLXNlY3JldC1vZi10aGUtbWV0cmljcy1hZ2VudA==";
//! let response = revoke.oneshot(
//!     http::Request::post("/auth/revoke")
//!         .header("content-type", "application/x-www-form-urlencoded")
//!         .header("authorization", basic)
//!         .body(Full::new(bytes::Bytes::from(format!("token={token}&token_type_hint=access_token"))))
//!         .unwrap(),
//! ).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! assert!(matches!(auth.authenticate(Credential::Bearer(token)), Check::Ready(Outcome::Rejected(_))));
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body::Body;
use tower_auth_core::{ADMIN_ROLE, Capped, Credential, Identity, Secret};

use super::request::{Answer, ClientAuth, Endpoint, Refusal, read_body, respond};
use super::{BoxError, MAX_BODY_BYTES};
use crate::revocation::{By, Inserted};
use crate::{AccessTokenClaims, RevocationError, RevocationList};

/// The path the revocation endpoint is conventionally mounted at, beside
/// [`TOKEN_PATH`](crate::TOKEN_PATH).
pub const REVOKE_PATH: &str = "/auth/revoke";

/// The challenge sent with 401 `invalid_client` (RFC 6749 section 5.2).
const BASIC_CHALLENGE: &str = r#"Basic realm="auth/revoke", charset="UTF-8""#;

/// The revocation endpoint (RFC 7009) as a tower service over `http::Request<B>`; made from
/// the [`ExchangeEndpoint`](crate::ExchangeEndpoint) whose clients may use it, with
/// [`ExchangeEndpoint::revocation_endpoint`](crate::ExchangeEndpoint::revocation_endpoint).
///
/// `POST` a form body (`application/x-www-form-urlencoded`) `token=...`, optionally with
/// `token_type_hint` (ignored, as RFC 7009 section 2.1 allows: only role tokens are
/// revoked here). The caller authenticates in exactly one way:
///
/// - as a registered client, with HTTP Basic (`client_id:secret`, each form-urlencoded
///   first as RFC 6749 section 2.3.1 says; plain ids and secrets are their own encoding) or
///   the form fields `client_id` and `client_secret`. A client may revoke only tokens the
///   exchange issued to it, which carry its id in their `client_id` claim. Its failures
///   count in the exchange's limiter, against the same (client, source) pair as a wrong
///   secret at `/auth/token`.
/// - as an identity with role `admin`, which may revoke any role token of this issuer. The
///   identity is the one an `AuthLayer` in front of the endpoint put into the request's
///   extensions (from `Authorization: Bearer`, or an API key): the admin authenticates the
///   same way as everywhere else in the application, with the same rules and audit trail,
///   and the endpoint does not verify credentials of its own. Mount the endpoint inside the
///   layer (`tower_auth` exempts [`REVOKE_PATH`] so that clients with Basic credentials get
///   through); without a layer, no one is admin here.
///
/// | case | answer |
/// |---|---|
/// | a role token of the caller's (or any, for an admin), unexpired | 200, revoked: the verifier refuses it from now on |
/// | an unknown, invalid, foreign or expired token (RFC 7009 section 2.2) | 200, nothing changes |
/// | a valid token issued to another client (RFC 7009 section 2.1) | 400 `{"error":"unauthorized_client"}`, not revoked |
/// | an admin's token without `jti` (not minted here) | 400 `{"error":"unsupported_token_type"}` |
/// | `subject=S` (instead of `token`) from an admin: every token of S issued up to now; with `issuer=URL`, S of that OIDC issuer, else the HMAC subject S ([`RevocationList::revoke_subject`]) | 200, cut off: the layer refuses those tokens from now on |
/// | `subject=S` from a registered client | 400 `{"error":"unauthorized_client"}`, nothing cut off |
/// | unknown client, wrong secret, or no authentication | 401 `{"error":"invalid_client"}` + `WWW-Authenticate: Basic` |
/// | `Authorization: Bearer` that the layer did not accept | 401 `{"error":"invalid_token"}` + `WWW-Authenticate: Bearer` |
/// | an identity without role `admin` | 403 `{"error":"insufficient_scope"}` |
/// | no `token` (nor `subject`), both, `issuer` without `subject`, a repeated parameter, two ways of authenticating, a malformed Basic header, wrong content type, body over 4 KiB | 400 `{"error":"invalid_request"}` |
/// | the exchange's limit of failures reached | 429 `{"error":"too_many_requests"}` + `Retry-After` |
/// | a body not complete within [`BODY_DEADLINE`](crate::BODY_DEADLINE) | 408 |
/// | any method but `POST` | 405 + `Allow: POST` |
/// | the revocation list full, or its file not written | 500 `{"error":"server_error"}` (a revocation in memory stays in force) |
///
/// Every answer carries `Cache-Control: no-store`. Every revocation is an audit event
/// (target `auth`, `event = "token_revoked"`) with the token's fingerprint, `jti`, `sub`, and
/// who revoked it; never the token. With a [`RevocationList`] kept in a file
/// (`AUTH_REVOCATION_FILE`), the answer waits until the file is written, on Tokio's blocking
/// pool ([`RevocationList::persist`]).
#[derive(Clone)]
pub struct RevocationEndpoint {
    auth: Arc<ClientAuth>,
    revocations: RevocationList,
}

impl fmt::Debug for RevocationEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEndpoint")
            .field("clients", &self.auth.clients)
            .field("revocations", &self.revocations)
            .finish_non_exhaustive()
    }
}

/// Who asks for a revocation.
enum Revoker<'a> {
    /// A registered client, authenticated.
    Client(&'a str),
    /// An identity with role `admin`.
    Admin(&'a Identity),
}

impl Revoker<'_> {
    fn client_id(&self) -> Option<&str> {
        match self {
            Self::Client(id) => Some(id),
            Self::Admin(_) => None,
        }
    }

    fn admin(&self) -> Option<&str> {
        match self {
            Self::Client(_) => None,
            Self::Admin(identity) => Some(identity.subject()),
        }
    }
}

/// The parameters of a revocation request.
#[derive(Default)]
struct Form {
    token: Option<String>,
    /// An admin's `subject=S`: every token of S issued up to now.
    subject: Option<String>,
    /// With `subject`, the OIDC issuer that vouched for it (absent: this HMAC issuer).
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
}

impl Form {
    /// The form, or `None` when a parameter is repeated (RFC 6749 section 3.2).
    fn parse(body: &[u8]) -> Option<Self> {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let repeated = match &*name {
                "token" => form.token.replace(value.into_owned()).is_some(),
                "subject" => form.subject.replace(value.into_owned()).is_some(),
                "issuer" => form.issuer.replace(value.into_owned()).is_some(),
                "client_id" => form.client_id.replace(value.into_owned()).is_some(),
                "client_secret" => form
                    .client_secret
                    .replace(Secret::from(value.into_owned()))
                    .is_some(),
                "token_type_hint" => false,
                _ => false,
            };
            if repeated {
                return None;
            }
        }
        Some(form)
    }
}

/// What a request revokes.
enum Target {
    /// One token (RFC 7009).
    Token(String),
    /// Every token of a subject issued up to now, with the OIDC issuer naming it.
    Subject(String, Option<String>),
}

/// How the request authenticates, as read from its head and form.
enum Caller<'a> {
    None,
    Client(String, Secret),
    Identity(&'a Identity),
    /// A bearer credential that no layer turned into an identity.
    RefusedBearer,
}

impl RevocationEndpoint {
    pub(super) fn new(auth: Arc<ClientAuth>, revocations: RevocationList) -> Self {
        Self { auth, revocations }
    }

    /// The list revocations go into.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    /// Answers one request; the service's `call` is this.
    async fn handle<B>(&self, request: Request<B>) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let source = self.auth.source(&request);
        let (parts, body) = match read_body(request, "application/x-www-form-urlencoded").await {
            Ok(read) => read,
            Err(answer) => return answer,
        };
        let Some(form) = Form::parse(&body) else {
            return Refusal::InvalidRequest.answer();
        };
        // Exactly one of `token` and `subject` (with `issuer` only beside `subject`).
        let target = match (
            form.token.filter(|t| !t.is_empty()),
            form.subject.filter(|s| !s.is_empty()),
            form.issuer,
        ) {
            (Some(token), None, None) => Target::Token(token),
            (None, Some(subject), issuer) if issuer.as_ref().is_none_or(|i| !i.is_empty()) => {
                Target::Subject(subject, issuer)
            }
            _ => return Refusal::InvalidRequest.answer(),
        };
        let identity = parts.extensions.get::<Identity>();
        let caller = match caller(&parts.headers, form.client_id, form.client_secret, identity) {
            Ok(caller) => caller,
            Err(refusal) => return refusal.answer(),
        };
        let client_id;
        let revoker = match caller {
            Caller::Client(id, secret) => {
                if let Err(refusal) = self
                    .auth
                    .authenticate(Endpoint::Revoke, &id, secret, source)
                {
                    let mut answer = refusal.answer();
                    if refusal == Refusal::InvalidClient {
                        challenge(&mut answer);
                    }
                    return answer;
                }
                client_id = id;
                Revoker::Client(&client_id)
            }
            Caller::Identity(identity) if identity.has_role(ADMIN_ROLE) => Revoker::Admin(identity),
            Caller::Identity(identity) => {
                if self.auth.may_log(source) {
                    tracing::info!(target: "auth", event = "token_revocation_failed", reason = "not_admin", subject = %Capped(identity.subject()), source = ?source, "revocation refused: the identity is not admin");
                }
                return respond(StatusCode::FORBIDDEN, r#"{"error":"insufficient_scope"}"#);
            }
            Caller::RefusedBearer => {
                if self.auth.may_log(source) {
                    tracing::info!(target: "auth", event = "token_revocation_failed", reason = "bearer_not_accepted", source = ?source, "revocation refused: the bearer credential was not accepted");
                }
                let mut answer = respond(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_token"}"#);
                answer.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
                return answer;
            }
            Caller::None => {
                if self.auth.may_log(source) {
                    tracing::info!(target: "auth", event = "token_revocation_failed", reason = "no_client_authentication", source = ?source, "revocation refused: no client authentication");
                }
                let mut answer = Refusal::InvalidClient.answer();
                challenge(&mut answer);
                return answer;
            }
        };
        match target {
            Target::Token(token) => self.revoke(&token, &revoker, source).await,
            Target::Subject(subject, issuer) => {
                self.revoke_subject(&subject, issuer, &revoker, source)
                    .await
            }
        }
    }

    /// Cuts off every token of `subject` (of `issuer`, an OIDC issuer, or else of this HMAC
    /// issuer) issued up to now: for admins only.
    async fn revoke_subject(
        &self,
        subject: &str,
        issuer: Option<String>,
        revoker: &Revoker<'_>,
        source: Option<std::net::IpAddr>,
    ) -> Answer {
        let Revoker::Admin(admin) = revoker else {
            if self.auth.may_log(source) {
                tracing::info!(target: "auth", event = "subject_revocation_failed", reason = "not_admin", sub = %Capped(subject), client_id = revoker.client_id().map(|c| tracing::field::display(Capped(c))), source = ?source, "revocation of a subject refused: only admins may");
            }
            return respond(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unauthorized_client"}"#,
            );
        };
        let method = match issuer {
            Some(issuer) if *issuer != *self.auth.config.issuer => {
                tower_auth_core::AuthMethod::Oidc {
                    issuer: issuer.into(),
                }
            }
            _ => tower_auth_core::AuthMethod::Hmac {
                issuer: Arc::clone(&self.auth.config.issuer),
            },
        };
        let Ok(cutoff) = self.revocations.cut_off_now(&method, subject) else {
            // A full list of cut-offs, reported with an error event.
            return server_error();
        };
        if let Err(e) = self.revocations.persist().await {
            tracing::error!(target: "auth", event = "revocation_file_error", sub = %Capped(subject), error = %e, file = ?self.revocations.file(), "the subject is cut off in memory but the revocation file was not written: it would be forgotten on restart");
            return server_error();
        }
        tracing::info!(target: "auth", event = "subject_revoked", method = %method, sub = %Capped(subject), before = cutoff.before, admin = admin.subject(), admin_method = admin.method().kind(), "every token of the subject issued up to now is revoked");
        revoked()
    }

    /// Revokes `token` for an authenticated `revoker`.
    async fn revoke(
        &self,
        token: &str,
        revoker: &Revoker<'_>,
        source: Option<std::net::IpAddr>,
    ) -> Answer {
        let fingerprint = Credential::Bearer(token).fingerprint();
        let claims = match self.auth.config.decode(token) {
            Ok(claims) => claims,
            Err(e) => {
                // Invalid, foreign and expired tokens need no revocation (RFC 7009 section
                // 2.2): the verifier refuses them anyway.
                if self.auth.may_log(source) {
                    tracing::info!(target: "auth", event = "token_revocation_ignored", reason = e.reason(), fingerprint = %fingerprint, client_id = revoker.client_id(), admin = revoker.admin(), "revocation of a token that is not valid: nothing to do");
                }
                return revoked();
            }
        };
        let AccessTokenClaims {
            jti,
            sub,
            exp,
            client_id: issued_to,
            ..
        } = &claims;
        if let Revoker::Client(client) = revoker
            && issued_to.as_deref() != Some(*client)
        {
            if self.auth.may_log(source) {
                tracing::info!(target: "auth", event = "token_revocation_failed", reason = "not_issued_to_client", fingerprint = %fingerprint, jti = jti.as_deref(), sub = %Capped(sub), client_id = %Capped(client), source = ?source, "revocation refused: the token was not issued to this client");
            }
            return respond(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unauthorized_client"}"#,
            );
        }
        let Some(jti) = jti else {
            if self.auth.may_log(source) {
                tracing::warn!(target: "auth", event = "token_revocation_failed", reason = "no_jti", fingerprint = %fingerprint, sub = %Capped(sub), admin = revoker.admin(), "revocation refused: the token has no jti; rotate the secret to end it");
            }
            return respond(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unsupported_token_type"}"#,
            );
        };
        let keep_until = exp.saturating_add(self.auth.config.leeway_secs);
        let by = match revoker {
            Revoker::Admin(_) => By::Admin,
            Revoker::Client(_) => By::Client,
        };
        match self.revocations.insert(jti, sub, keep_until, by) {
            Ok(Inserted::Added | Inserted::Expired) => {}
            // Revoked already: nothing to write and nothing new to audit.
            Ok(Inserted::Unchanged) => {
                tracing::debug!(target: "auth", event = "token_revocation_repeated", fingerprint = %fingerprint, jti = %jti, "revocation of a token revoked already");
                return revoked();
            }
            Err(RevocationError::ClientQuota) => {
                if self.auth.may_log(source) {
                    tracing::warn!(target: "auth", event = "token_revocation_failed", reason = "client_quota", jti = %jti, client_id = revoker.client_id(), "revocation refused: the client holds its share of the revocation list");
                }
                let mut answer = respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"temporarily_unavailable"}"#,
                );
                answer
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("60"));
                return answer;
            }
            // A full list, which `insert` reports with an error event.
            Err(_) => return server_error(),
        }
        if let Err(e) = self.revocations.persist().await {
            tracing::error!(target: "auth", event = "revocation_file_error", fingerprint = %fingerprint, jti = %jti, error = %e, file = ?self.revocations.file(), "the token is revoked in memory but the revocation file was not written: it would be forgotten on restart");
            return server_error();
        }
        crate::metrics::revoked();
        tracing::info!(target: "auth::audit", event = "token_revoked", fingerprint = %fingerprint, jti = %jti, sub = %sub, exp, client_id = revoker.client_id(), admin = revoker.admin(), admin_method = match revoker { Revoker::Admin(identity) => Some(identity.method().kind()), Revoker::Client(_) => None }, "role token revoked");
        revoked()
    }
}

/// How the request authenticates: 400 when it does in more than one way (RFC 6749 section
/// 2.3: "MUST NOT use more than one authentication method in each request"), sends only one
/// of `client_id` and `client_secret`, or a malformed Basic header.
fn caller<'a>(
    headers: &HeaderMap,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    identity: Option<&'a Identity>,
) -> Result<Caller<'a>, Refusal> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(Refusal::InvalidRequest);
    }
    let scheme_is = |value: &HeaderValue, scheme: &str| {
        value.as_bytes().get(..scheme.len() + 1).is_some_and(|s| {
            s[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes()) && s[scheme.len()] == b' '
        })
    };
    let basic = match header {
        Some(value) if scheme_is(value, "Basic") => {
            Some(basic_credentials(&value.as_bytes()[6..]).ok_or(Refusal::InvalidRequest)?)
        }
        _ => None,
    };
    let bearer = header.is_some_and(|value| scheme_is(value, "Bearer"));
    let form = match (client_id, client_secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        _ => return Err(Refusal::InvalidRequest),
    };
    let methods = usize::from(basic.is_some())
        + usize::from(form.is_some())
        + usize::from(identity.is_some() || bearer);
    if methods > 1 {
        return Err(Refusal::InvalidRequest);
    }
    Ok(match (basic.or(form), identity) {
        (Some((id, secret)), _) => Caller::Client(id, secret),
        (None, Some(identity)) => Caller::Identity(identity),
        (None, None) if bearer => Caller::RefusedBearer,
        (None, None) => Caller::None,
    })
}

/// The client id and secret of a Basic credential (after `Basic `): base64 of
/// `id:secret`, each form-urlencoded (RFC 6749 section 2.3.1).
fn basic_credentials(encoded: &[u8]) -> Option<(String, Secret)> {
    let encoded = encoded.trim_ascii();
    if encoded.len() > MAX_BODY_BYTES {
        return None;
    }
    let decoded = zeroize::Zeroizing::new(STANDARD.decode(encoded).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, Secret::from(form_decode(secret)?)))
}

/// Undoes `application/x-www-form-urlencoded` encoding of one value: `+` is a space and
/// `%XX` a byte; `None` for a `%` not followed by two hex digits or bytes that are not UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Adds the Basic challenge to a 401 `invalid_client`.
fn challenge(answer: &mut Answer) {
    answer
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
}

/// 200 with no body (RFC 7009 section 2.2: the client ignores it).
fn revoked() -> Answer {
    let mut answer = respond(StatusCode::OK, Bytes::new());
    answer.headers_mut().remove(CONTENT_TYPE);
    answer
}

fn server_error() -> Answer {
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"error":"server_error"}"#,
    )
}

// As the exchange's: a `Router` that hands every method to the service, so that a GET gets
// the endpoint's own 405 with `Allow: POST` and `Cache-Control: no-store`.
endpoint_service!(
    RevocationEndpoint,
    REVOKE_PATH,
    "A router serving this endpoint at [`REVOKE_PATH`]; merge it into the app's router \
     inside the auth layer (`app.merge(revoke.router()).layer(auth)`), so that the layer's \
     identity reaches it for admins."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_follows_the_media_type() {
        assert_eq!(form_decode("a+b%3Ac%25").as_deref(), Some("a b:c%"));
        assert_eq!(form_decode("plain-id").as_deref(), Some("plain-id"));
        for bad in ["%", "%4", "%zz", "%ff"] {
            assert_eq!(form_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn basic_credentials_are_decoded_and_split_at_the_first_colon() {
        let encoded = STANDARD.encode("my%20client:s%3Acret:more");
        let (id, secret) = basic_credentials(encoded.as_bytes()).unwrap();
        assert_eq!(id, "my client");
        assert_eq!(secret.expose_secret(), b"s:cret:more");
        for bad in [
            "not base64!".to_owned(),
            STANDARD.encode("no colon"),
            STANDARD.encode("bad%zz:secret"),
        ] {
            assert!(basic_credentials(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_repeated_parameter_makes_the_form_malformed() {
        assert!(Form::parse(b"token=a&token=b").is_none());
        assert!(Form::parse(b"token=a&client_secret=x&client_secret=y").is_none());
        let form = Form::parse(b"token=a%2Bb&token_type_hint=refresh_token&other=1").unwrap();
        assert_eq!(form.token.as_deref(), Some("a+b"));
    }
}
