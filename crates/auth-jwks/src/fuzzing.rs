//! Doors into crate-private parsers for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Not an API: hidden from the documentation, absent unless the feature is on, and never to
//! be enabled in production. Each door runs the code the authenticator runs, in the same
//! order, and reports what it decided in plain types that the targets check properties on.

use jsonwebtoken::Algorithm;
use tower_auth_core::ConfigError;

use crate::config::{IssuerConfig, OidcConfig};
use crate::keys::{KeyKind, KeySet};
use crate::validate::{Routed, check_claims, check_header, route};

/// Every algorithm jsonwebtoken knows, to ask a key which ones it verifies.
const ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// One key a JWKS document yielded, as the key set holds it.
#[derive(Debug)]
pub struct JwksKey {
    /// Its `kid`.
    pub kid: Option<String>,
    /// Its key type and curve: `RSA`, `EC P-256`, `EC P-384` or `OKP Ed25519`.
    pub kind: &'static str,
    /// The algorithms it may verify (by jsonwebtoken's names).
    pub verifies: Vec<String>,
    /// The public material it is compared by: `n || e`, `x || y`, or `x`.
    pub material: Vec<u8>,
    /// Whether parsing the same document again, with this set as the previous one, keeps
    /// this very key (so that tokens cached under it stay valid).
    pub carried_over: bool,
}

/// Parses `document` as a fetched JWKS is parsed: the keys kept, or why the whole document
/// is refused.
pub fn jwks(document: &[u8]) -> Result<Vec<JwksKey>, &'static str> {
    let first = KeySet::parse(document, &KeySet::default())?;
    let again = KeySet::parse(document, &first)?;
    Ok(first
        .iter()
        .map(|key| JwksKey {
            kid: key.kid.as_deref().map(str::to_owned),
            kind: match key.kind {
                KeyKind::Rsa => "RSA",
                KeyKind::P256 => "EC P-256",
                KeyKind::P384 => "EC P-384",
                KeyKind::Ed25519 => "OKP Ed25519",
            },
            verifies: ALGORITHMS
                .iter()
                .filter(|&&alg| key.fits(alg))
                .map(|alg| format!("{alg:?}"))
                .collect(),
            material: key.material.to_vec(),
            carried_over: again.iter().any(|k| std::sync::Arc::ptr_eq(k, key)),
        })
        .collect())
}

/// How the OIDC validator judges a token before it needs keys.
#[derive(Debug, PartialEq, Eq)]
pub enum Structure {
    /// Not routed to the issuer.
    NotMine,
    /// Refused, with the reason code the validator answers with.
    Refused(&'static str),
    /// Structure, header policy and claims pass: the signature is next.
    NeedsKey,
}

/// One issuer's rules, as [`OidcAuthenticator`](crate::OidcAuthenticator) applies them to a
/// token before it looks for a key.
pub struct Judge {
    config: OidcConfig,
}

impl Judge {
    /// An issuer named `issuer` for `audience`, allowing every asymmetric algorithm.
    pub fn new(issuer: &str, audience: &str) -> Result<Self, ConfigError> {
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(issuer, audience).algorithms([
                "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
            ]))
            .build()?;
        Ok(Self { config })
    }

    /// Judges `token` at `now` (Unix seconds), in the order of the authenticator: route,
    /// header, claims.
    pub fn judge(&self, token: &str, now: u64) -> Structure {
        let names: Vec<&str> = self.config.issuers().collect();
        match route(token, &names) {
            Routed::NotMine => Structure::NotMine,
            Routed::TooLarge => {
                Structure::Refused(tower_auth_core::jose::JoseError::TooLarge.reason())
            }
            Routed::Mine(index, jws) => {
                let issuer = &self.config.issuers[index];
                let verdict = check_header(&jws, issuer).and_then(|_| {
                    let claims = jws.claims()?;
                    check_claims(&claims, issuer, now, self.config.leeway_secs)
                });
                match verdict {
                    Ok(_) => Structure::NeedsKey,
                    Err(e) => Structure::Refused(e.reason()),
                }
            }
        }
    }
}
