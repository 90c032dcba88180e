//! Minting and verifying HS256 role tokens.
//!
//! Verification takes a direct path instead of a general JWT library: base64url with the
//! `base64` crate, HMAC-SHA256 from `aws-lc-rs` (the backend jsonwebtoken uses too) and a
//! strict JSON reader. It is stricter than RFC 7519 asks and about twice as fast as
//! `jsonwebtoken::decode` (see `benches/verify.rs`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Map, Value};
use tower_auth_core::{ConfigError, MAX_CREDENTIAL_LEN, Secret};

use crate::HmacConfig;
use crate::json;

/// The header of every token we mint: `{"alg":"HS256","typ":"JWT"}`.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// An HMAC-SHA256 tag is 32 bytes: 43 base64url characters without padding.
const SIGNATURE_B64_LEN: usize = 43;

/// 9999-12-31T23:59:59Z. A later `exp` or `nbf` is a mistake or an attack (`1e300`), not a date.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The longest lifetime a minted token may have.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// Reads a malformed segment as leniently as possible, only to tell whether it claims our
/// issuer; a token that needs it is always rejected.
const LENIENT_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

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
pub enum TokenErrorKind {
    /// Malformed, wrongly signed, of another issuer or audience, not yet valid, or revoked.
    Invalid,
    /// Correctly signed and well-formed, but past `exp` plus the leeway.
    Expired,
}

/// Why a token was refused: a [`kind`](Self::kind) and a short [`reason`](Self::reason) code.
///
/// Neither `Debug` nor `Display` shows the token or a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenError {
    kind: TokenErrorKind,
    reason: &'static str,
    expired: Option<Box<AccessTokenClaims>>,
}

impl TokenError {
    pub(crate) fn invalid(reason: &'static str) -> Self {
        Self {
            kind: TokenErrorKind::Invalid,
            reason,
            expired: None,
        }
    }

    /// Invalid or expired.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// A short code for logs: `bad_signature`, `token_expired`, `alg_not_hs256`, ...
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Whether the token was refused only for being expired.
    pub fn is_expired(&self) -> bool {
        self.kind == TokenErrorKind::Expired
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

impl fmt::Debug for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenError")
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TokenErrorKind::Invalid => write!(f, "invalid token ({})", self.reason),
            TokenErrorKind::Expired => write!(f, "expired token ({})", self.reason),
        }
    }
}

impl std::error::Error for TokenError {}

/// Why verification did not produce claims.
pub(crate) enum Failure {
    /// Not a token of our issuer: another authenticator's business.
    NotMine,
    /// Ours, and refused.
    Refused(TokenError),
}

impl From<TokenError> for Failure {
    fn from(e: TokenError) -> Self {
        Self::Refused(e)
    }
}

/// A token that passed every check: its claims, and all of its payload for the identity.
pub(crate) struct Verified {
    pub(crate) claims: AccessTokenClaims,
    pub(crate) payload: Map<String, Value>,
}

/// The header, judged on its own.
enum Header {
    Hs256,
    Bad(&'static str),
}

fn judge_header(segment: &str) -> Header {
    // The header we mint (PyJWT's too): known good without decoding it.
    if segment == HEADER_B64 {
        return Header::Hs256;
    }
    let Some(header) = URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|bytes| tower_auth_core::parse_strict_object(&bytes))
    else {
        return Header::Bad("malformed_header");
    };
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Header::Bad("alg_not_hs256");
    }
    // RFC 7515 section 4.1.11: we understand no extension, so any `crit` (even `[]`,
    // which the RFC forbids outright) refuses the token. RFC 7797 `b64` only has meaning
    // under `crit`, and an unencoded payload is never what we mint.
    if header.contains_key("crit") {
        return Header::Bad("crit_header");
    }
    if header.contains_key("b64") {
        return Header::Bad("b64_header");
    }
    Header::Hs256
}

/// Whether a payload segment names our issuer, however it is encoded or malformed: asked of
/// every token whose header is not ours, and of ours that fail strict parsing.
fn claims_our_issuer(segment: &str, issuer: &str) -> bool {
    let decoded = URL_SAFE_NO_PAD
        .decode(segment)
        .or_else(|_| LENIENT_URL.decode(segment))
        .or_else(|_| LENIENT_STANDARD.decode(segment));
    decoded.is_ok_and(|bytes| json::names_issuer(&bytes, issuer))
}

/// A NumericDate (RFC 7519 section 2): a non-negative number of seconds, fractions dropped.
fn numeric_date(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    let secs = match n.as_u64() {
        Some(secs) => secs,
        None => {
            let f = n.as_f64()?;
            if !(f.is_finite() && f >= 0.0 && f <= MAX_NUMERIC_DATE as f64) {
                return None;
            }
            f as u64
        }
    };
    (secs <= MAX_NUMERIC_DATE).then_some(secs)
}

fn optional_date(
    payload: &Map<String, Value>,
    name: &str,
    reason: &'static str,
) -> Result<Option<u64>, TokenError> {
    payload
        .get(name)
        .map(|v| numeric_date(v).ok_or(TokenError::invalid(reason)))
        .transpose()
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
) -> Result<Verified, TokenError> {
    let exp = match payload.get("exp") {
        None => return Err(TokenError::invalid("missing_exp")),
        Some(v) => numeric_date(v).ok_or(TokenError::invalid("bad_exp"))?,
    };
    let nbf = optional_date(&payload, "nbf", "bad_nbf")?;
    let iat = optional_date(&payload, "iat", "bad_iat")?;
    let sub = match payload.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(TokenError::invalid("bad_subject")),
    };
    let roles = match payload.get("roles") {
        None => Vec::new(),
        Some(v) => normalize_roles(string_list(v).ok_or(TokenError::invalid("bad_roles"))?),
    };
    let jti = match payload.get("jti") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(TokenError::invalid("bad_jti")),
    };
    let aud = match payload.get("aud") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(v) => string_list(v).ok_or(TokenError::invalid("bad_audience"))?,
    };
    match (&config.audience, payload.contains_key("aud")) {
        (Some(ours), _) if !aud.iter().any(|a| **a == **ours) => {
            return Err(TokenError::invalid("wrong_audience"));
        }
        (None, true) => return Err(TokenError::invalid("unexpected_audience")),
        _ => {}
    }
    let leeway = config.leeway_secs;
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::invalid("not_yet_valid"));
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::invalid("issued_in_future"));
    }
    let claims = AccessTokenClaims {
        sub,
        roles,
        iss: config.issuer.to_string(),
        aud,
        exp,
        iat,
        nbf,
        jti,
    };
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError {
            kind: TokenErrorKind::Expired,
            reason: "token_expired",
            expired: Some(Box::new(claims)),
        });
    }
    Ok(Verified { claims, payload })
}

/// Verifies `token` as of `now` (Unix seconds): structure, header, signature, claims.
///
/// Whether the token is ours is decided from its unverified `iss` alone, without any
/// cryptography, so foreign tokens cost one base64 decode and one JSON scan.
pub(crate) fn verify(config: &HmacConfig, token: &str, now: u64) -> Result<Verified, Failure> {
    if token.len() > MAX_CREDENTIAL_LEN {
        return Err(TokenError::invalid("token_too_large").into());
    }
    let mut segments = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return match token.split('.').nth(1) {
            Some(payload) if claims_our_issuer(payload, &config.issuer) => {
                Err(TokenError::invalid("not_three_segments").into())
            }
            _ => Err(Failure::NotMine),
        };
    };
    // Another issuer's token (an OIDC token earlier or later in the chain) has another
    // header: pass it on after the cheap payload scan, before parsing its header.
    if header != HEADER_B64 && !claims_our_issuer(payload, &config.issuer) {
        return Err(Failure::NotMine);
    }
    let header_verdict = judge_header(header);
    let strict = match header_verdict {
        Header::Hs256 => URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| tower_auth_core::parse_strict_object(&bytes)),
        Header::Bad(_) => None,
    };
    let Some(claims) = strict else {
        if !claims_our_issuer(payload, &config.issuer) {
            return Err(Failure::NotMine);
        }
        let reason = match header_verdict {
            Header::Bad(reason) => reason,
            Header::Hs256 => "malformed_payload",
        };
        return Err(TokenError::invalid(reason).into());
    };
    match claims.get("iss") {
        Some(Value::String(iss)) if **iss == *config.issuer => {}
        _ => return Err(Failure::NotMine),
    }
    check_signature(
        config,
        &token[..header.len() + 1 + payload.len()],
        signature,
    )?;
    Ok(check_claims(config, claims, now)?)
}

fn check_signature(config: &HmacConfig, signed: &str, signature: &str) -> Result<(), TokenError> {
    let bad = || TokenError::invalid("bad_signature");
    if signature.len() != SIGNATURE_B64_LEN {
        return Err(bad());
    }
    let mut tag = [0u8; 48];
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature, &mut tag)
        .map_err(|_| bad())?;
    let tag = tag.get(..len).ok_or_else(bad)?;
    let signed = signed.as_bytes();
    let valid = hmac::verify(&config.current, signed, tag).is_ok()
        || config
            .previous
            .as_ref()
            .is_some_and(|previous| hmac::verify(previous, signed, tag).is_ok());
    if valid { Ok(()) } else { Err(bad()) }
}

#[derive(Serialize)]
struct Payload<'a> {
    sub: &'a str,
    roles: &'a [String],
    iat: u64,
    exp: u64,
    jti: &'a str,
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// A fresh random `jti`: 128 bits, base64url.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    // The system generator failing is not something a token issuer can recover from.
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl HmacConfig {
    /// Mints a token for `subject` with `roles` (duplicates and empty names dropped),
    /// valid for `expires_in` from now, with this configuration's issuer and, if given,
    /// `audience`. It carries a random `jti`, so it can be revoked.
    ///
    /// # Errors
    /// An empty subject, a lifetime under one second or over [`MAX_TOKEN_LIFETIME`], or so
    /// many roles that the token would exceed 8 KiB.
    pub fn create_access_token<I, R>(
        &self,
        subject: &str,
        roles: I,
        expires_in: Duration,
        audience: Option<&str>,
    ) -> Result<String, ConfigError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<str>,
    {
        self.mint(subject, roles, expires_in, audience)
            .map(|(token, _)| token)
    }

    /// Mints a token and returns it with its `jti`.
    pub(crate) fn mint<I, R>(
        &self,
        subject: &str,
        roles: I,
        expires_in: Duration,
        audience: Option<&str>,
    ) -> Result<(String, String), ConfigError>
    where
        I: IntoIterator<Item = R>,
        R: AsRef<str>,
    {
        if subject.is_empty() {
            return Err(ConfigError::new("subject", "must not be empty"));
        }
        if expires_in < Duration::from_secs(1) || expires_in > MAX_TOKEN_LIFETIME {
            return Err(ConfigError::new(
                "expires_in",
                "must be from one second to 366 days",
            ));
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
        })
        .map_err(|_| ConfigError::new("subject", "cannot be encoded"))?;
        let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 50);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let tag = hmac::sign(&self.current, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        if token.len() > MAX_CREDENTIAL_LEN {
            return Err(ConfigError::new(
                "roles",
                "make a token over 8 KiB, which no verifier accepts",
            ));
        }
        Ok((token, jti))
    }

    /// Verifies `token` with this configuration (secrets, issuer, audience, leeway,
    /// clock), returning its claims. No revocation list is consulted: that is the
    /// authenticator's.
    ///
    /// # Errors
    /// A [`TokenError`] that says whether the token is expired or otherwise invalid; a
    /// token of another issuer is invalid with reason `wrong_issuer`.
    pub fn decode_access_token(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
        match verify(self, token, self.clock.now_unix()) {
            Ok(verified) => Ok(verified.claims),
            Err(Failure::NotMine) => Err(TokenError::invalid("wrong_issuer")),
            Err(Failure::Refused(e)) => Err(e),
        }
    }
}

/// Mints an HS256 role token with issuer [`DEFAULT_ISSUER`](crate::DEFAULT_ISSUER); see
/// [`HmacConfig::create_access_token`] to mint with another issuer or a manual clock.
///
/// # Errors
/// A secret under 32 bytes (the error names `HMAC_SECRET`), an empty subject, or a lifetime
/// under one second or over [`MAX_TOKEN_LIFETIME`].
///
/// ```
/// use std::time::Duration;
/// use tower_auth_core::Secret;
/// use tower_auth_hmac::{create_access_token, decode_access_token};
///
/// let secret = Secret::from("k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-hmac");
/// let token = create_access_token("ops", &secret, ["runtime.health:read"], Duration::from_secs(3600), Some("api"))?;
/// let claims = decode_access_token(&token, &secret, Some("api")).unwrap();
/// assert_eq!(claims.sub, "ops");
/// assert_eq!(claims.roles, ["runtime.health:read"]);
/// # Ok::<(), tower_auth_core::ConfigError>(())
/// ```
pub fn create_access_token<I, R>(
    subject: &str,
    secret: &Secret,
    roles: I,
    expires_in: Duration,
    audience: Option<&str>,
) -> Result<String, ConfigError>
where
    I: IntoIterator<Item = R>,
    R: AsRef<str>,
{
    HmacConfig::new(secret.clone())?.create_access_token(subject, roles, expires_in, audience)
}

/// Verifies a token minted with issuer [`DEFAULT_ISSUER`](crate::DEFAULT_ISSUER) and
/// `secret`, requiring `audience` when given (and no `aud` at all when not), with the
/// default 60 s leeway and the system clock.
///
/// # Errors
/// A [`TokenError`]: [`TokenErrorKind::Expired`] or [`TokenErrorKind::Invalid`]. A secret
/// under 32 bytes verifies nothing: invalid, reason `secret_too_short`.
pub fn decode_access_token(
    token: &str,
    secret: &Secret,
    audience: Option<&str>,
) -> Result<AccessTokenClaims, TokenError> {
    let config =
        HmacConfig::new(secret.clone()).map_err(|_| TokenError::invalid("secret_too_short"))?;
    let config = match audience {
        Some(audience) => config.audience(audience),
        None => config,
    };
    config.decode_access_token(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_constant_is_what_it_says() {
        let decoded = URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap();
        assert_eq!(decoded, br#"{"alg":"HS256","typ":"JWT"}"#);
        assert!(matches!(judge_header(HEADER_B64), Header::Hs256));
        // The same header spelled differently takes the full path and is judged the same.
        let spaced = URL_SAFE_NO_PAD.encode(br#"{ "typ": "JWT", "alg": "HS256" }"#);
        assert!(matches!(judge_header(&spaced), Header::Hs256));
    }

    #[test]
    fn numeric_dates() {
        let date = |json: &str| numeric_date(&serde_json::from_str(json).unwrap());
        assert_eq!(date("0"), Some(0));
        assert_eq!(date("1700000000"), Some(1_700_000_000));
        assert_eq!(date("1700000000.9"), Some(1_700_000_000));
        assert_eq!(date("253402300799"), Some(MAX_NUMERIC_DATE));
        for bad in [
            "253402300800",
            "1e300",
            "-1",
            "-0.5",
            "\"1\"",
            "null",
            "true",
            "[1]",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }
}
