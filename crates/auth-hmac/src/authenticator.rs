//! [`HmacAuthenticator`]: role tokens as an `tower_auth_core::Authenticator`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tower_auth_core::jose::CompactJws;
use tower_auth_core::{
    Admins, AuthError, AuthMethod, Authenticator, Check, Credential, Identity, Outcome, Routing,
};

use crate::token::{self, Failure, Verified};
use crate::{AccessTokenClaims, HmacConfig, RevocationError, RevocationList, RoleTokenError};

/// Authenticates HS256 role tokens sent as `Authorization: Bearer`.
///
/// A token is this authenticator's when its unverified `iss` is the HMAC issuer; anything
/// else (another issuer's JWT, an API key, garbage) is [`Outcome::NotMine`], decided without
/// cryptography. A token of ours is then held to every rule (HS256 only, no `crit` or `b64`,
/// a valid signature under the current or previous secret, `exp`/`nbf`/`iat` with leeway,
/// the audience when one is configured, not revoked) and is [`Outcome::Rejected`] with
/// `invalid_token` on any failure. The answer is always [`Check::Ready`].
///
/// ```
/// use std::time::Duration;
/// use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
/// use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
///
/// let config = HmacConfig::builder("9c4e1a7f3b8d2e6a0c5f9b3d7e1a4c8f-role-tokens").build()?;
/// let token = config.mint("ops", ["runtime.metrics:read"], Duration::from_secs(60), None).unwrap();
/// let root = config.mint("root", ["runtime.metrics:read"], Duration::from_secs(60), None).unwrap();
/// let auth = HmacAuthenticator::new(config, Admins::new(["root"]));
/// let Check::Ready(Outcome::Authenticated(identity)) = auth.authenticate(Credential::Bearer(&token)) else {
///     panic!("a fresh token is valid");
/// };
/// assert!(identity.has_role("runtime.metrics:read"));
/// assert!(!identity.has_role("admin"));
/// let Check::Ready(Outcome::Authenticated(admin)) = auth.authenticate(Credential::Bearer(&root)) else {
///     panic!("a fresh token is valid");
/// };
/// assert!(admin.has_role("admin"));
///
/// auth.revoke_token(&token).unwrap();
/// assert!(matches!(auth.authenticate(Credential::Bearer(&token)), Check::Ready(Outcome::Rejected(_))));
/// # Ok::<(), tower_auth_core::ConfigError>(())
/// ```
pub struct HmacAuthenticator {
    config: HmacConfig,
    admins: Admins,
    revoked: RevocationList,
}

impl fmt::Debug for HmacAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacAuthenticator")
            .field("config", &self.config)
            .field("admins", &self.admins)
            .field("revoked", &self.revoked)
            .finish()
    }
}

impl HmacAuthenticator {
    /// An authenticator for `config` with its own empty revocation list, granting role
    /// `admin` to tokens whose subject `admins` lists (`AUTH_ADMINS`; `Admins::default()`
    /// for none). Admins are given where the authenticator is made, as
    /// `OidcAuthenticator::start` and `ApiKeySet::parse` take them.
    pub fn new(config: HmacConfig, admins: Admins) -> Self {
        let revoked = RevocationList::new(config.clock.clone());
        Self {
            config,
            admins,
            revoked,
        }
    }

    /// Checks against `list` instead of a list of its own, so that several authenticators
    /// (or one rebuilt on reload) share revocations.
    #[must_use]
    pub fn revocation_list(mut self, list: RevocationList) -> Self {
        self.revoked = list;
        self
    }

    /// The revocation list checked; clone it to revoke from elsewhere.
    pub fn revocations(&self) -> &RevocationList {
        &self.revoked
    }

    /// The configuration.
    pub fn config(&self) -> &HmacConfig {
        &self.config
    }

    /// The HMAC issuer, which must differ from every OIDC issuer in the chain.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Revokes the token `jti` of `subject`, which expires at `exp` (Unix seconds); the
    /// entry is kept until `exp` plus the leeway, when the token is refused anyway.
    ///
    /// # Errors
    /// [`RevocationError::Full`]; see [`RevocationList::revoke`].
    pub fn revoke(&self, jti: &str, subject: &str, exp: u64) -> Result<(), RevocationError> {
        self.revoked
            .revoke(jti, subject, exp.saturating_add(self.config.leeway_secs))
    }

    /// Revokes `token`, which must be a correctly signed token of ours (expired ones need no
    /// revocation and succeed); returns its claims.
    ///
    /// # Errors
    /// [`RevocationError::InvalidToken`] for a token that does not verify,
    /// [`RevocationError::NoTokenId`] for one without `jti`, [`RevocationError::Full`].
    pub fn revoke_token(&self, token: &str) -> Result<AccessTokenClaims, RevocationError> {
        let claims = match self.config.decode(token) {
            Ok(claims) => claims,
            Err(e) => match e.expired_claims() {
                Some(claims) => claims.clone(),
                None => return Err(RevocationError::InvalidToken),
            },
        };
        let jti = claims.jti.as_deref().ok_or(RevocationError::NoTokenId)?;
        self.revoke(jti, &claims.sub, claims.exp)?;
        Ok(claims)
    }

    fn check(&self, token: &str) -> Result<Verified, Failure> {
        let verified = token::verify(&self.config, token, self.config.clock.now_unix())?;
        Ok(self.not_revoked(verified)?)
    }

    fn not_revoked(&self, verified: Verified) -> Result<Verified, RoleTokenError> {
        if verified
            .claims
            .jti
            .as_deref()
            .is_some_and(|jti| self.revoked.is_revoked(jti))
        {
            return Err(RoleTokenError::invalid("token_revoked"));
        }
        Ok(verified)
    }

    fn outcome(&self, checked: Result<Verified, RoleTokenError>) -> Outcome {
        match checked {
            // A list shared through Redis, out of touch for too long (`closed`): the check
            // above cannot be trusted.
            Ok(verified) => match self.revoked.unavailable() {
                Some(e) => Outcome::Rejected(e),
                None => Outcome::Authenticated(self.identity(verified)),
            },
            Err(e) => Outcome::Rejected(AuthError::invalid_token(e.reason())),
        }
    }

    fn identity(&self, verified: Verified) -> Identity {
        let Verified { claims, payload } = verified;
        let mut builder = Identity::builder(
            claims.sub,
            AuthMethod::Hmac {
                issuer: Arc::clone(&self.config.issuer),
            },
        )
        .roles(claims.roles)
        .claims(payload)
        .expires_at(UNIX_EPOCH + Duration::from_secs(claims.exp))
        .admins(&self.admins);
        if let Some(iat) = claims.iat {
            builder = builder.issued_at(UNIX_EPOCH + Duration::from_secs(iat));
        }
        builder.build()
    }
}

impl Authenticator for HmacAuthenticator {
    fn method(&self) -> &'static str {
        "hmac"
    }

    fn authenticate(&self, credential: Credential<'_>) -> Check {
        let Credential::Bearer(token) = credential else {
            return Check::Ready(Outcome::NotMine);
        };
        Check::Ready(match self.check(token) {
            Ok(verified) => self.outcome(Ok(verified)),
            Err(Failure::NotMine) => Outcome::NotMine,
            Err(Failure::Refused(e)) => self.outcome(Err(e)),
        })
    }

    fn routing(&self) -> Routing {
        Routing::Issuers(vec![Arc::clone(&self.config.issuer)])
    }

    fn authenticate_jws(&self, jws: &CompactJws<'_>) -> Check {
        if jws.issuer() != &*self.config.issuer {
            return Check::Ready(Outcome::NotMine);
        }
        let now = self.config.clock.now_unix();
        let checked = token::verify_jws(&self.config, jws, now).and_then(|v| self.not_revoked(v));
        Check::Ready(self.outcome(checked))
    }
}
