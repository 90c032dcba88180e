//! The token exchange's second backend: clients registered with `"introspect": "<issuer>"`
//! are judged by the OIDC authenticator's RFC 7662 introspection of that issuer.

use tower_auth_core::ConfigError;
use tower_auth_hmac::ExchangeEndpoint;

/// `exchange` with the introspector its clients need: `oidc`'s introspection when it
/// introspects every issuer they name.
///
/// # Errors
/// A [`ConfigError`] naming `variable` (`AUTH_TOKEN_CLIENTS`) when a client names an issuer
/// the OIDC configuration does not introspect (or there is none in the chain).
pub(crate) fn wire(
    exchange: ExchangeEndpoint,
    #[cfg(feature = "oidc")] oidc: Option<&tower_auth_oidc::OidcAuthenticator>,
    cutoffs: &tower_auth_hmac::RevocationList,
    variable: &str,
) -> Result<ExchangeEndpoint, ConfigError> {
    let issuers: Vec<String> = exchange
        .clients()
        .introspected_issuers()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let Some(first) = issuers.first() else {
        return Ok(exchange);
    };
    #[cfg(feature = "oidc")]
    if let Some(oidc) = oidc
        && let Some(introspecting) = oidc.introspecting_issuer()
        && issuers.iter().all(|i| i == introspecting)
    {
        let (oidc, cutoffs) = (oidc.clone(), cutoffs.clone());
        return Ok(
            exchange.with_introspector(move |issuer: &str, token: &str| {
                let (oidc, cutoffs) = (oidc.clone(), cutoffs.clone());
                let (issuer, token) = (issuer.to_owned(), token.to_owned());
                let future: tower_auth_hmac::IntrospectFuture = Box::pin(async move {
                    let identity = oidc.introspect(&issuer, &token).await?;
                    // A cut-off subject gets no fresh role token: its upstream token may still
                    // be active at the IdP. SECURITY.md N16.
                    if cutoffs.is_cut_off(&identity) {
                        return Err(tower_auth_core::AuthError::invalid_token("subject_revoked"));
                    }
                    Ok(identity)
                });
                future
            }),
        );
    }
    #[cfg(feature = "oidc")]
    let introspecting = oidc.and_then(|o| o.introspecting_issuer());
    #[cfg(not(feature = "oidc"))]
    let (introspecting, _): (Option<&str>, _) = (None, cutoffs);
    let unknown = issuers
        .iter()
        .find(|i| Some(i.as_str()) != introspecting)
        .unwrap_or(first);
    Err(ConfigError::new(
        variable,
        format!(
            "a client has \"introspect\": {unknown:?}, but no OIDC_CONFIG issuer of that name \
             has introspection (and oidc must be in AUTH_MODE)"
        ),
    ))
}
