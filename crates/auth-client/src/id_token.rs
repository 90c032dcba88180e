//! With the feature `oidc`: an ID token's signature, checked against the issuer's published
//! keys by `tower-auth-oidc` (which also checks `iss`, `aud` and `exp` again).

use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// Checks `id_token`'s signature with the keys of `issuer`'s `jwks_uri`, audience
/// `client_id`. The reason of a refusal is a short code.
pub(crate) async fn verify_signature(
    id_token: &str,
    issuer: &str,
    client_id: &str,
) -> Result<(), &'static str> {
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(issuer, client_id))
        .build()
        .map_err(|_| "id_token_keys_unavailable")?;
    let authenticator = OidcAuthenticator::start(config, Admins::default())
        .await
        .map_err(|_| "id_token_keys_unavailable")?;
    let outcome = match authenticator.authenticate(Credential::Bearer(id_token)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(future) => future.await,
    };
    match outcome {
        Outcome::Authenticated(_) => Ok(()),
        Outcome::NotMine => Err("id_token_issuer"),
        Outcome::Rejected(_) => Err("id_token_signature"),
    }
}
