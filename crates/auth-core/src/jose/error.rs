//! [`JoseError`]: which rule of the shared JOSE checks a token broke.

use std::fmt;

/// A rule of the compact JWS format or of the registered claims that a token broke.
///
/// Every validator answers these with `invalid_token`; [`reason`](Self::reason) is the
/// short code its log event carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoseError {
    /// Longer than [`MAX_CREDENTIAL_LEN`](crate::MAX_CREDENTIAL_LEN): refused before decoding.
    TooLarge,
    /// Not exactly three dot-separated segments (a JWE has five).
    NotThreeSegments,
    /// A segment with a character outside base64url (`=`, `+`, `/`, whitespace).
    BadBase64url,
    /// A header that is not strict base64url of a strict JSON object.
    MalformedHeader,
    /// A header without `alg`, or with a non-string one.
    MissingAlg,
    /// A header with `crit`: no extension is understood here.
    CritHeader,
    /// A header with `b64` (RFC 7797 unencoded payloads are never verified).
    B64Header,
    /// A `kid` that is not a string, or longer than [`MAX_KID_LEN`](super::MAX_KID_LEN).
    BadKid,
    /// A `typ` that is not a string.
    BadTyp,
    /// A payload that is not a strict JSON object (duplicate names, too deep, trailing data).
    MalformedPayload,
    /// An empty signature segment.
    EmptySignature,
    /// A signature segment that cannot be the signature (bad encoding or length).
    BadSignature,
    /// No `exp`.
    MissingExp,
    /// An `exp` that is not a NumericDate.
    BadExp,
    /// An `nbf` that is not a NumericDate.
    BadNbf,
    /// An `iat` that is not a NumericDate.
    BadIat,
    /// Past `exp` plus the leeway.
    Expired,
    /// Before `nbf` minus the leeway.
    NotYetValid,
    /// `iat` later than now plus the leeway.
    IssuedInFuture,
    /// A `sub` that is missing, empty or not a string.
    BadSubject,
    /// An `aud` that is missing where required, or neither a string nor an array of strings.
    BadAudience,
    /// An `aud` that names none of the expected audiences.
    AudienceMismatch,
}

impl JoseError {
    /// A short code for logs, the same for every validator.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "credential_too_large",
            Self::NotThreeSegments => "not_three_segments",
            Self::BadBase64url => "bad_base64url",
            Self::MalformedHeader => "malformed_header",
            Self::MissingAlg => "missing_alg",
            Self::CritHeader => "crit_header",
            Self::B64Header => "b64_header",
            Self::BadKid => "bad_kid",
            Self::BadTyp => "bad_typ",
            Self::MalformedPayload => "malformed_payload",
            Self::EmptySignature => "empty_signature",
            Self::BadSignature => "bad_signature",
            Self::MissingExp => "missing_exp",
            Self::BadExp => "bad_exp",
            Self::BadNbf => "bad_nbf",
            Self::BadIat => "bad_iat",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::BadSubject => "bad_subject",
            Self::BadAudience => "bad_aud",
            Self::AudienceMismatch => "aud_mismatch",
        }
    }
}

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid token ({})", self.reason())
    }
}

impl std::error::Error for JoseError {}

impl From<JoseError> for crate::AuthError {
    fn from(e: JoseError) -> Self {
        crate::AuthError::invalid_token(e.reason())
    }
}
