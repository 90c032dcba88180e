//! How a refusal is answered: the challenges of `WWW-Authenticate` (assembled in one place,
//! [`Answers::challenges`]), and the application's own answer when it shapes them
//! ([`AuthLayerBuilder::answer_with`](crate::AuthLayerBuilder::answer_with), or the RFC 9457
//! [`problem_details`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use tower_auth_core::{AuthError, AuthErrorKind, GrpcCode, Protocol};

use crate::response::ResponseBody;

/// The application's answer to a refused HTTP request (see
/// [`AuthLayerBuilder::answer_with`](crate::AuthLayerBuilder::answer_with)).
pub type AnswerHook = Arc<dyn Fn(&AuthRejection<'_>) -> Response<Bytes> + Send + Sync>;

/// What the layer adds to the answer of a refusal, beside the error itself: the parameters
/// and challenges of `WWW-Authenticate`, and the application's hook.
#[derive(Clone, Default)]
pub(crate) struct Answers {
    /// `resource_metadata="<URL>"` on every Bearer challenge (RFC 9728 section 5.1).
    pub(crate) resource_metadata: Option<Arc<str>>,
    /// A `Basic` challenge beside the Bearer one on a 401 (`API_KEY_BASIC`).
    pub(crate) basic: bool,
    /// A `DPoP algs=".."` challenge beside the Bearer one on a 401 (RFC 9449 section 7.1),
    /// when the layer accepts DPoP-bound tokens.
    pub(crate) dpop: Option<HeaderValue>,
    pub(crate) hook: Option<AnswerHook>,
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answers")
            .field("resource_metadata", &self.resource_metadata)
            .field("basic", &self.basic)
            .field("dpop", &self.dpop)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl Answers {
    /// The `WWW-Authenticate` values for `error`, each a challenge, in order: the Bearer
    /// challenge with its parameters (RFC 6750 section 3, then `resource_metadata`), then
    /// `Basic` on a 401 when API keys may come as a Basic password. None for a 503 or a 429.
    /// Every challenge of the layer is assembled here.
    pub(crate) fn challenges(&self, error: &AuthError, realm: &str) -> Vec<HeaderValue> {
        let Some(bearer) = error.www_authenticate(realm) else {
            return Vec::new();
        };
        let mut challenges = Vec::with_capacity(2);
        match &self.resource_metadata {
            None => challenges.push(bearer),
            Some(url) => {
                // The realm and the URL were checked to fit a quoted-string when the layer
                // was built.
                let mut value = bearer.as_bytes().to_vec();
                value.extend_from_slice(b", resource_metadata=\"");
                value.extend_from_slice(url.as_bytes());
                value.push(b'"');
                challenges.extend(HeaderValue::from_bytes(&value).ok());
            }
        }
        if error.http_status() == StatusCode::UNAUTHORIZED {
            challenges.extend(self.dpop.clone());
            if self.basic {
                challenges.extend(HeaderValue::try_from(format!("Basic realm=\"{realm}\"")).ok());
            }
        }
        challenges
    }

    /// The answer to a request refused for `error`. gRPC requests always get the gRPC answer;
    /// an HTTP request gets the application's answer when it gave a hook.
    pub(crate) fn respond(
        &self,
        error: &AuthError,
        realm: &str,
        protocol: &Protocol,
    ) -> Response<ResponseBody<()>> {
        if protocol.is_grpc() {
            return fixed(error.to_response(realm, protocol));
        }
        let challenges = self.challenges(error, realm);
        let Some(hook) = &self.hook else {
            let mut response = fixed(error.to_response(realm, protocol));
            set_challenges(response.headers_mut(), &challenges);
            return response;
        };
        let view = AuthRejection {
            error,
            challenges: &challenges,
        };
        let mut response = hook(&view);
        let headers = response.headers_mut();
        // A refusal is about one request: no cache may keep it, whatever the hook said.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if !headers.contains_key(WWW_AUTHENTICATE) {
            set_challenges(headers, &challenges);
        }
        if let (false, Some(after)) = (headers.contains_key(RETRY_AFTER), error.retry_after()) {
            headers.insert(RETRY_AFTER, retry_after(after));
        }
        response.map(|body| ResponseBody::fixed(Some(body)))
    }
}

/// `AUTH_PROBLEM_JSON` (`true` or `false`, default `false`): RFC 9457 answers.
pub(crate) fn from_env(
    vars: &crate::env::Vars<'_>,
) -> Result<Answers, tower_auth_core::ConfigError> {
    let mut answers = Answers::default();
    if let (name, Some(value)) = vars.read("AUTH_PROBLEM_JSON")
        && crate::env::flag(&name, &value)?
    {
        answers.hook = Some(Arc::new(problem_details));
    }
    Ok(answers)
}

/// Derives what the answers need from the settings: the metadata URL (with the document
/// rendered from the final rules) and whether to offer Basic. Every way of building a layer
/// ends here.
pub(crate) fn settle(settings: &mut crate::service::Settings) {
    let rules = &settings.rules;
    settings.answers.resource_metadata = settings.resource.as_mut().map(|resource| {
        resource.render(rules);
        Arc::clone(resource.metadata_url())
    });
    settings.answers.basic = settings.sources.basic;
    #[cfg(feature = "oidc")]
    {
        settings.answers.dpop = crate::dpop::challenge(settings.dpop.as_deref());
    }
}

fn fixed(response: Response<&'static str>) -> Response<ResponseBody<()>> {
    response.map(|body| ResponseBody::fixed(Some(Bytes::from_static(body.as_bytes()))))
}

fn set_challenges(headers: &mut http::HeaderMap, challenges: &[HeaderValue]) {
    headers.remove(WWW_AUTHENTICATE);
    for challenge in challenges {
        headers.append(WWW_AUTHENTICATE, challenge.clone());
    }
}

fn retry_after(after: Duration) -> HeaderValue {
    HeaderValue::from(after.as_secs().max(1))
}

/// A refused HTTP request, as an application's answer sees it: what kind of refusal, and the
/// standard answer's parts (status, challenges, gRPC code). Never the credential, the claims
/// or why exactly it failed, which go to the log only.
pub struct AuthRejection<'a> {
    error: &'a AuthError,
    challenges: &'a [HeaderValue],
}

impl AuthRejection<'_> {
    /// The kind of refusal.
    pub fn kind(&self) -> AuthErrorKind {
        self.error.kind()
    }

    /// The HTTP status of the standard answer (401, 400, 403, 503, 429).
    pub fn http_status(&self) -> StatusCode {
        self.error.http_status()
    }

    /// The gRPC code the same refusal gets over gRPC (gRPC requests are always answered in
    /// gRPC's form, not through the hook).
    pub fn grpc_code(&self) -> GrpcCode {
        self.error.grpc_code()
    }

    /// The RFC 6750 error code (`invalid_token`, `invalid_request`, `insufficient_scope`), or
    /// `None` for a missing credential, a 503 or a 429.
    pub fn error_code(&self) -> Option<&'static str> {
        self.error.error_code()
    }

    /// The `error` member of the standard JSON body: the error code, or `unauthorized`,
    /// `temporarily_unavailable`, `too_many_requests`.
    pub fn error_name(&self) -> &'static str {
        match self.error.kind() {
            AuthErrorKind::MissingCredential => "unauthorized",
            AuthErrorKind::Unavailable => "temporarily_unavailable",
            AuthErrorKind::RateLimited => "too_many_requests",
            _ => self.error.error_code().unwrap_or("unauthorized"),
        }
    }

    /// The roles that would do, for a 403.
    pub fn scope(&self) -> Option<&str> {
        self.error.scope()
    }

    /// How long the client should wait, for a 503 or a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after()
    }

    /// The `WWW-Authenticate` challenges of the standard answer, in order. The layer adds
    /// them to the application's answer unless it sets `WWW-Authenticate` itself.
    pub fn challenges(&self) -> &[HeaderValue] {
        self.challenges
    }

    /// The standard fixed JSON body (`{"error":"invalid_token"}`).
    pub fn default_body(&self) -> &'static str {
        self.error.body()
    }
}

impl fmt::Debug for AuthRejection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRejection")
            .field("kind", &self.kind())
            .field("http_status", &self.http_status())
            .field("challenges", &self.challenges)
            .finish()
    }
}

/// An RFC 9457 `application/problem+json` answer: `type` `about:blank`, `title` the status
/// phrase, `status`, and `error` as in the standard body (an extension member, so that OAuth
/// clients still find the RFC 6750 code). Use it with
/// [`AuthLayerBuilder::problem_json`](crate::AuthLayerBuilder::problem_json).
///
/// ```
/// # use tower_auth::{AuthLayer, ApiKeyAuthenticator, ApiKeySet, Admins};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let keys = ApiKeySet::parse("API_KEYS", "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA", &Admins::default())?;
/// let auth = AuthLayer::builder(ApiKeyAuthenticator::new(keys)).problem_json().build()?;
/// # Ok(())
/// # }
/// ```
pub fn problem_details(rejection: &AuthRejection<'_>) -> Response<Bytes> {
    let status = rejection.http_status();
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "error": rejection.error_name(),
    });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(challenges: &[HeaderValue]) -> Vec<&str> {
        challenges.iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn challenges_carry_the_metadata_url_and_basic_on_401_only() {
        let plain = Answers::default();
        assert_eq!(
            values(&plain.challenges(&AuthError::missing_credential(), "api")),
            [r#"Bearer realm="api""#]
        );
        let all = Answers {
            resource_metadata: Some(
                "https://a.example/.well-known/oauth-protected-resource".into(),
            ),
            basic: true,
            dpop: None,
            hook: None,
        };
        assert_eq!(
            values(&all.challenges(&AuthError::invalid_token("x"), "api")),
            [
                r#"Bearer realm="api", error="invalid_token", resource_metadata="https://a.example/.well-known/oauth-protected-resource""#,
                r#"Basic realm="api""#
            ]
        );
        // A 400 and a 403 keep their Bearer challenge with the URL, and ask for no password.
        for error in [
            AuthError::invalid_request("x"),
            AuthError::insufficient_scope("a"),
        ] {
            let challenges = all.challenges(&error, "api");
            assert_eq!(challenges.len(), 1, "{error:?}");
            assert!(
                values(&challenges)[0].ends_with(
                    r#"resource_metadata="https://a.example/.well-known/oauth-protected-resource""#
                ),
                "{error:?}"
            );
        }
        assert!(
            all.challenges(&AuthError::unavailable("x", None), "api")
                .is_empty()
        );
    }

    #[test]
    fn problem_details_are_rfc_9457_with_the_error_code() {
        let answers = Answers {
            hook: Some(Arc::new(problem_details)),
            ..Answers::default()
        };
        let response = answers.respond(
            &AuthError::rate_limited(Duration::from_secs(7)),
            "api",
            &Protocol::Http,
        );
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[RETRY_AFTER], "7");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        // gRPC stays gRPC.
        let response = answers.respond(&AuthError::invalid_token("x"), "api", &Protocol::Grpc);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["grpc-status"], "16");
    }
}
