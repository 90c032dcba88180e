//! Minting and verifying HS256 role tokens.
//!
//! Verification takes a direct path instead of a general JWT library: the shared JOSE rules
//! of [`tower_auth_core::jose`] (the same ones the OIDC validator applies), HMAC-SHA256 from
//! the selected crypto backend, and the role-token claims. It is stricter than RFC 7519 asks
//! and faster than `jsonwebtoken::decode` (see `benches/verify.rs`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use tower_auth_core::MAX_CREDENTIAL_LEN;
use tower_auth_core::jose::{self, CompactJws, JoseError, Peeked, TimeClaims};

use crate::HmacConfig;
use crate::mac::{self, TAG_LEN};

/// The header of every token we mint: `{"alg":"HS256","typ":"JWT"}`.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The longest lifetime a minted token may have.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The verified claims of a role token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// The subject (`sub`): who the token was issued to.
    pub sub: String,
    /// The roles (`roles`), without duplicates or empty names, in token order.
    pub roles: Vec<String>,
    /// The issuer (`iss`).
    pub iss: String,
    /// The audiences (`aud`); empty when the token has none.
    pub aud: Vec<String>,
    /// Expiry (`exp`), seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time (`iat`), seconds since the Unix epoch, if present.
    pub iat: Option<u64>,
    /// Not-before time (`nbf`), seconds since the Unix epoch, if present.
    pub nbf: Option<u64>,
    /// The token id (`jti`), by which it can be revoked, if present.
    pub jti: Option<String>,
    /// The token-exchange client the token was issued to (`client_id`, RFC 9068 section
    /// 2.2), which may revoke it at `POST /auth/revoke`; `None` for tokens minted otherwise,
    /// and for tokens the exchange issued before it recorded the client.
    pub client_id: Option<String>,
}

impl AccessTokenClaims {
    /// `exp` as a time.
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }
}

/// Whether a token was refused for being expired or for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoleTokenErrorKind {
    /// Malformed, wrongly signed, of another issuer or audience, not yet valid, or revoked.
    Invalid,
    /// Correctly signed and well-formed, but past `exp` plus the leeway.
    Expired,
}

/// Why a token was refused: a [`kind`](Self::kind) and a short [`reason`](Self::reason) code.
///
/// Neither `Debug` nor `Display` shows the token or a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleTokenError {
    kind: RoleTokenErrorKind,
    reason: &'static str,
    expired: Option<Box<AccessTokenClaims>>,
}

impl RoleTokenError {
    pub(crate) fn invalid(reason: &'static str) -> Self {
        Self {
            kind: RoleTokenErrorKind::Invalid,
            reason,
            expired: None,
        }
    }

    /// A shared JOSE rule broken. The reason is the shared one, except for an audience
    /// mismatch, which role tokens have always logged as `wrong_audience`.
    fn broke(rule: JoseError) -> Self {
        match rule {
            JoseError::AudienceMismatch => Self::invalid("wrong_audience"),
            rule => Self::invalid(rule.reason()),
        }
    }

    /// Invalid or expired.
    pub fn kind(&self) -> RoleTokenErrorKind {
        self.kind
    }

    /// A short code for logs: `bad_signature`, `token_expired`, `alg_not_hs256`, ...
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Whether the token was refused only for being expired.
    pub fn is_expired(&self) -> bool {
        self.kind == RoleTokenErrorKind::Expired
    }

    /// For an expired token, its claims: the signature and every other check passed, so
    /// they are authentic, only stale (for display, as `auth-token decode` does).
    pub fn expired_claims(&self) -> Option<&AccessTokenClaims> {
        self.expired.as_deref()
    }

    /// The same refusal as an [`tower_auth_core::AuthError`] (`invalid_token`, with this reason).
    pub fn to_auth_error(&self) -> tower_auth_core::AuthError {
        tower_auth_core::AuthError::invalid_token(self.reason)
    }
}

impl fmt::Debug for RoleTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleTokenError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for RoleTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RoleTokenErrorKind::Invalid => write!(f, "invalid token ({})", self.reason),
            RoleTokenErrorKind::Expired => write!(f, "expired token ({})", self.reason),
        }
    }
}

impl std::error::Error for RoleTokenError {}

/// Why verification did not produce claims.
pub(crate) enum Failure {
    /// Not a token of our issuer: another authenticator's business.
    NotMine,
    /// Ours, and refused.
    Refused(RoleTokenError),
}

impl From<RoleTokenError> for Failure {
    fn from(e: RoleTokenError) -> Self {
        Self::Refused(e)
    }
}

/// A token that passed every check: its claims, and all of its payload for the identity.
pub(crate) struct Verified {
    pub(crate) claims: AccessTokenClaims,
    pub(crate) payload: Map<String, Value>,
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// Roles in first-seen order, without empty names or repeats.
pub(crate) fn normalize_roles<I, R>(roles: I) -> Vec<String>
where
    I: IntoIterator<Item = R>,
    R: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        let role = role.as_ref();
        if !role.is_empty() && !out.iter().any(|r| r == role) {
            out.push(role.to_owned());
        }
    }
    out
}

/// Checks the claims of a correctly signed token.
fn check_claims(
    config: &HmacConfig,
    payload: Map<String, Value>,
    now: u64,
) -> Result<Verified, RoleTokenError> {
    let times = TimeClaims::read(&payload).map_err(RoleTokenError::broke)?;
    let sub = jose::subject(&payload)
        .map_err(RoleTokenError::broke)?
        .to_owned();
    let roles = match payload.get("roles") {
        None => Vec::new(),
        Some(v) => normalize_roles(string_list(v).ok_or(RoleTokenError::invalid("bad_roles"))?),
    };
    let jti = match payload.get("jti") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RoleTokenError::invalid("bad_jti")),
    };
    let client_id = match payload.get("client_id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RoleTokenError::invalid("bad_client_id")),
    };
    let named = jose::audiences(&payload).map_err(RoleTokenError::broke)?;
    match (&config.audience, &named) {
        (Some(ours), _) => {
            jose::audience_names_one_of(named.as_deref(), &[&**ours])
                .map_err(RoleTokenError::broke)?;
        }
        // A token meant for a named audience is not for a service that has none
        // configured, as in PyJWT and jsonwebtoken.
        (None, Some(_)) => return Err(RoleTokenError::invalid("unexpected_audience")),
        (None, None) => {}
    }
    let aud = named
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let claims = AccessTokenClaims {
        sub,
        roles,
        iss: config.issuer.to_string(),
        aud,
        exp: times.exp,
        iat: times.iat,
        nbf: times.nbf,
        jti,
        client_id,
    };
    match times.check(now, config.leeway_secs) {
        Ok(()) => Ok(Verified { claims, payload }),
        // Judged last: every other check passed, so the claims are authentic, only stale.
        Err(JoseError::Expired) => Err(RoleTokenError {
            kind: RoleTokenErrorKind::Expired,
            reason: "token_expired",
            expired: Some(Box::new(claims)),
        }),
        Err(rule) => Err(RoleTokenError::broke(rule)),
    }
}

/// Verifies `token` as of `now` (Unix seconds): structure, header, signature, claims.
///
/// Whether the token is ours is decided from its unverified `iss` alone, without any
/// cryptography, so foreign tokens cost one base64url decode and a scan up to their `iss`.
pub(crate) fn verify(config: &HmacConfig, token: &str, now: u64) -> Result<Verified, Failure> {
    match CompactJws::peek_for(token, &[&*config.issuer]) {
        Peeked::TooLarge => Err(RoleTokenError::broke(JoseError::TooLarge).into()),
        Peeked::Issuer(jws) if jws.issuer() == &*config.issuer => {
            Ok(verify_jws(config, &jws, now)?)
        }
        Peeked::Issuer(_) | Peeked::NoIssuer => Err(Failure::NotMine),
    }
}

/// Verifies a token whose unverified `iss` is ours: every shared JOSE rule, `alg` HS256,
/// the MAC under the current or previous secret, then the claims.
pub(crate) fn verify_jws(
    config: &HmacConfig,
    jws: &CompactJws<'_>,
    now: u64,
) -> Result<Verified, RoleTokenError> {
    let header = jws.header().map_err(RoleTokenError::broke)?;
    if header.alg() != "HS256" {
        return Err(RoleTokenError::invalid("alg_not_hs256"));
    }
    let claims = jws.claims().map_err(RoleTokenError::broke)?;
    check_signature(config, jws)?;
    check_claims(config, claims, now)
}

fn check_signature(config: &HmacConfig, jws: &CompactJws<'_>) -> Result<(), RoleTokenError> {
    let mut buf = [0u8; TAG_LEN];
    let tag = jws
        .decode_signature(&mut buf)
        .map_err(RoleTokenError::broke)?;
    let signed = jws.signing_input().as_bytes();
    let valid = tag.len() == TAG_LEN
        && (config.current.verify(signed, tag)
            || config
                .previous
                .as_ref()
                .is_some_and(|previous| previous.verify(signed, tag)));
    if valid {
        Ok(())
    } else {
        Err(RoleTokenError::broke(JoseError::BadSignature))
    }
}

/// The claims of a minted token, `iss` first: whoever reads a payload only for its first
/// `iss` (a chain routing it, a validator called alone) stops after a few bytes.
#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    sub: &'a str,
    roles: &'a [String],
    iat: u64,
    exp: u64,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

/// A fresh random `jti`: 128 bits, base64url.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    mac::fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why [`HmacConfig::mint`] made no token: a fault of this one call, not of the
/// configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MintError {
    /// The subject is empty.
    EmptySubject,
    /// The lifetime is under one second or over [`MAX_TOKEN_LIFETIME`].
    LifetimeOutOfRange,
    /// The roles make a token over 8 KiB, which no verifier accepts.
    TooLarge,
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptySubject => "cannot mint a role token: the subject is empty",
            Self::LifetimeOutOfRange => {
                "cannot mint a role token: the lifetime must be from one second to 366 days"
            }
            Self::TooLarge => {
                "cannot mint a role token: its roles make it over 8 KiB, which no verifier accepts"
            }
        })
    }
}

impl std::error::Error for MintError {}

impl HmacConfig {
    /// Mints a token for `subject` with `roles` (duplicates and empty names dropped),
    /// valid for `expires_in` from now on this configuration's clock, with its issuer and,
    /// if given, `audience`. It carries a random `jti`, so it can be revoked.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_auth_hmac::{HmacConfig, MintError};
    ///
    /// let config = HmacConfig::builder("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-hmac").audience("api").build()?;
    /// let token = config.mint("ops", ["runtime.health:read"], Duration::from_secs(3600), Some("api")).unwrap();
    /// let claims = config.decode(&token).unwrap();
    /// assert_eq!(claims.sub, "ops");
    /// assert_eq!(claims.roles, ["runtime.health:read"]);
    ///
    /// let refused = config.mint("ops", ["a"], Duration::ZERO, None).unwrap_err();
    /// assert_eq!(refused, MintError::LifetimeOutOfRange);
    /// # Ok::<(), tower_auth_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// A [`MintError`]: an empty subject, a lifetime under one second or over
    /// [`MAX_TOKEN_LIFETIME`], or so many roles that the token would exceed 8 KiB.
    pub fn mint<I, R>(
        &self,
        subject: &str,
        roles: I,
        expires_in: Duration,
        audience: Option<&str>,
    ) -> Result<String, MintError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<str>,
    {
        self.mint_with_jti(subject, roles, expires_in, audience, None)
            .map(|(token, _)| token)
    }

    /// Mints a token and returns it with its `jti`; `client_id` records the exchange client
    /// it is issued to.
    pub(crate) fn mint_with_jti<I, R>(
        &self,
        subject: &str,
        roles: I,
        expires_in: Duration,
        audience: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<(String, String), MintError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<str>,
    {
        if subject.is_empty() {
            return Err(MintError::EmptySubject);
        }
        if expires_in < Duration::from_secs(1) || expires_in > MAX_TOKEN_LIFETIME {
            return Err(MintError::LifetimeOutOfRange);
        }
        let now = self.clock.now_unix();
        let roles = normalize_roles(roles);
        let jti = new_jti();
        let payload = serde_json::to_vec(&Payload {
            sub: subject,
            roles: &roles,
            iat: now,
            exp: now.saturating_add(expires_in.as_secs()),
            jti: &jti,
            iss: &self.issuer,
            aud: audience,
            client_id,
        })
        // Strings and integers always serialise; were that ever to fail, no token of
        // bounded size exists, which is what `TooLarge` says.
        .map_err(|_| MintError::TooLarge)?;
        let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 50);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let tag = self.current.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(MintError::TooLarge);
        }
        Ok((token, jti))
    }

    /// Verifies `token` with this configuration (secrets, issuer, audience, leeway,
    /// clock), returning its claims. No revocation list is consulted: that is the
    /// authenticator's, which answers for a revoked token with reason `token_revoked`.
    ///
    /// # Errors
    /// A [`RoleTokenError`] that says whether the token is expired or otherwise invalid; a
    /// token of another issuer is invalid with reason `wrong_issuer`.
    pub fn decode(&self, token: &str) -> Result<AccessTokenClaims, RoleTokenError> {
        match verify(self, token, self.clock.now_unix()) {
            Ok(verified) => Ok(verified.claims),
            Err(Failure::NotMine) => Err(RoleTokenError::invalid("wrong_issuer")),
            Err(Failure::Refused(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_constant_is_what_it_says() {
        let decoded = URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap();
        assert_eq!(decoded, br#"{"alg":"HS256","typ":"JWT"}"#);
    }
}
