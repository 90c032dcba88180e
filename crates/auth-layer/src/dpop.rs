//! DPoP-bound tokens (RFC 9449) at the layer: which scheme a token may come with, and its
//! proof, checked on every request after the token's own checks (which the validated-token
//! cache may answer; a proof is single use, so it never is).
//!
//! | Token | `Bearer` | `DPoP` |
//! |---|---|---|
//! | bound (`cnf.jkt`) | 401 `invalid_token` | the one `DPoP` proof must be valid and by the bound key |
//! | unbound | accepted (unless its issuer has `"dpop": "required"`) | 401 `invalid_token` |

use http::{HeaderValue, Request};
use tower_auth_core::{AuthError, AuthMethod, Identity, is_dpop_scheme};
use tower_auth_oidc::{DpopVerifier, confirmation_jkt};

/// The verdict on an accepted token once its scheme and proof are judged.
pub(crate) fn bind<B>(
    verifier: Option<&DpopVerifier>,
    request: &Request<B>,
    result: Result<Identity, AuthError>,
) -> Result<Identity, AuthError> {
    let identity = result?;
    let dpop = is_dpop_scheme(request.headers());
    let jkt = match identity.claims() {
        Some(claims) => confirmation_jkt(claims)?,
        None => None,
    };
    match (dpop, jkt) {
        (false, None) => Ok(identity),
        // RFC 9449 section 7.2: a bound token is no bearer token; whoever copied it
        // without the key would otherwise use it.
        (false, Some(_)) => Err(AuthError::invalid_token("dpop_bound_token_as_bearer")),
        (true, None) => Err(AuthError::invalid_token("dpop_scheme_unbound_token")),
        (true, Some(jkt)) => {
            let (Some(verifier), AuthMethod::Oidc { issuer }) = (verifier, identity.method())
            else {
                return Err(AuthError::invalid_token("dpop_scheme_unbound_token"));
            };
            verifier.verify(request, issuer, token(request), jkt)?;
            Ok(identity)
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
