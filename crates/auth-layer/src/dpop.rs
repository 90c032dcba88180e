//! DPoP-bound tokens (RFC 9449) at the layer: which scheme a token may come with, and its
//! proof, checked on every request after the token's own checks (which the validated-token
//! cache may answer; a proof is single use, so it never is).
//!
//! | Token | `Bearer` | `DPoP` |
//! |---|---|---|
//! | bound (`cnf.jkt`) | 401 `invalid_token` | the one `DPoP` proof must be valid and by the bound key |
//! | unbound | accepted (unless its issuer has `"dpop": "required"`) | 401 `invalid_token` |

use std::future::Future;
use std::pin::Pin;

use http::{HeaderValue, Request};
use tower_auth_core::{AuthError, AuthMethod, Identity, is_dpop_scheme};
use tower_auth_oidc::{DpopVerifier, ProofCheck, confirmation_jkt};

/// The verdict of [`bind`]: at once, or when the replay memory shared through Redis answers
/// (`AUTH_REDIS_URL`: one round trip per proof).
pub(crate) enum Bound {
    Now(Result<Identity, AuthError>),
    Pending(Pending),
}

/// The verdict on a proof waiting for the shared replay memory.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send>>;

/// The verdict on an accepted token once its scheme and proof are judged.
pub(crate) fn bind<B>(
    verifier: Option<&DpopVerifier>,
    request: &Request<B>,
    result: Result<Identity, AuthError>,
) -> Bound {
    let identity = match result {
        Ok(identity) => identity,
        Err(error) => return Bound::Now(Err(error)),
    };
    let dpop = is_dpop_scheme(request.headers());
    let jkt = match identity.claims() {
        Some(claims) => match confirmation_jkt(claims) {
            Ok(jkt) => jkt,
            Err(error) => return Bound::Now(Err(error)),
        },
        None => None,
    };
    let check = match (dpop, jkt) {
        (false, None) => ProofCheck::Done(Ok(())),
        // RFC 9449 section 7.2: a bound token is no bearer token; whoever copied it
        // without the key would otherwise use it.
        (false, Some(_)) => {
            ProofCheck::Done(Err(AuthError::invalid_token("dpop_bound_token_as_bearer")))
        }
        (true, None) => {
            ProofCheck::Done(Err(AuthError::invalid_token("dpop_scheme_unbound_token")))
        }
        (true, Some(jkt)) => {
            let (Some(verifier), AuthMethod::Oidc { issuer }) = (verifier, identity.method())
            else {
                return Bound::Now(Err(AuthError::invalid_token("dpop_scheme_unbound_token")));
            };
            // Under axum's `Router::nest` the request's path has lost its prefix; the proof
            // names the one the client sent, which axum keeps. SECURITY.md P23.
            #[cfg(feature = "axum")]
            let path = request
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .map_or(request.uri().path(), |original| original.0.path());
            #[cfg(not(feature = "axum"))]
            let path = request.uri().path();
            verifier.check_at(request, path, issuer, token(request), jkt)
        }
    };
    match check {
        ProofCheck::Done(result) => Bound::Now(result.map(|()| identity)),
        ProofCheck::Pending(proof) => {
            Bound::Pending(Box::pin(async move { proof.await.map(|()| identity) }))
        }
    }
}

/// The token of `Authorization: DPoP <token>`, which the extractor has already accepted.
fn token<B>(request: &Request<B>) -> &str {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(5..))
        .map_or("", str::trim_start)
}

/// The DPoP challenge offered beside the others on a 401 (RFC 9449 section 7.1), with the
/// algorithms a proof may use; none without a verifier or algorithms.
pub(crate) fn challenge(verifier: Option<&DpopVerifier>) -> Option<HeaderValue> {
    let verifier = verifier?;
    if verifier.algorithms().is_empty() {
        return None;
    }
    HeaderValue::from_str(&format!("DPoP algs=\"{}\"", verifier.algorithms())).ok()
}

/// The header that carries a server-issued nonce (RFC 9449 section 8.1).
const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// The challenge of a proof refused for its nonce (RFC 9449 section 9).
const USE_NONCE: &str = "DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\"";

/// Turns the answer to a proof refused for its nonce into the `use_dpop_nonce` one: a fresh
/// nonce in `DPoP-Nonce`, and the DPoP challenge (first, with the algorithms) saying so, in
/// place of the plain one. gRPC answers carry both as metadata beside `grpc-status` 16.
pub(crate) fn nonce_answer<B>(
    verifier: Option<&DpopVerifier>,
    error: &AuthError,
    response: &mut http::Response<B>,
) {
    let Some(verifier) = verifier else {
        return;
    };
    if !tower_auth_oidc::asks_for_nonce(error) {
        return;
    }
    let Some(nonce) = verifier
        .nonce()
        .and_then(|n| HeaderValue::from_str(&n).ok())
    else {
        return;
    };
    let challenge = if verifier.algorithms().is_empty() {
        USE_NONCE.to_owned()
    } else {
        format!("{USE_NONCE}, algs=\"{}\"", verifier.algorithms())
    };
    let Ok(challenge) = HeaderValue::from_str(&challenge) else {
        return;
    };
    let headers = response.headers_mut();
    let others: Vec<HeaderValue> = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter(|v| !v.as_bytes().starts_with(b"DPoP "))
        .cloned()
        .collect();
    headers.remove(http::header::WWW_AUTHENTICATE);
    headers.append(http::header::WWW_AUTHENTICATE, challenge);
    for other in others {
        headers.append(http::header::WWW_AUTHENTICATE, other);
    }
    headers.insert(DPOP_NONCE, nonce);
}
