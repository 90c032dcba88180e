//! The JOSE rules every token validator shares: splitting a compact JWS, reading its
//! unverified `iss`, judging its header, and checking the registered claims.
//!
//! HMAC role tokens and OIDC tokens are read by this one module, so that a malformed form is
//! refused the same way by both, and a rule (what a NumericDate is, which header parameters
//! fail a token) is written once. Algorithms, keys and signatures stay with each validator.
//!
//! ```
//! use tower_auth_core::jose::{CompactJws, JoseError, Peeked, TimeClaims};
//!
//! // {"alg":"HS256","typ":"JWT"} . {"sub":"ops","iss":"auth-hmac","exp":1700003600} . (a MAC)
//! let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
//!              eyJzdWIiOiJvcHMiLCJpc3MiOiJhdXRoLWhtYWMiLCJleHAiOjE3MDAwMDM2MDB9.\
//!              c2lnbmF0dXJl";
//! let Peeked::Issuer(jws) = CompactJws::peek(token) else { panic!("it names an issuer") };
//! assert_eq!(jws.issuer(), "auth-hmac"); // routing: the owner is the HMAC validator
//! assert_eq!(jws.header()?.alg(), "HS256");
//! let claims = jws.claims()?;
//! let times = TimeClaims::read(&claims)?;
//! assert_eq!(times.check(1_700_000_000, 60), Ok(()));
//! assert_eq!(times.check(1_700_003_660, 60), Err(JoseError::Expired));
//!
//! // A token whose payload names nobody is nobody's.
//! assert!(matches!(CompactJws::peek("an-api-key"), Peeked::NoIssuer));
//! # Ok::<(), JoseError>(())
//! ```

mod base64url;
mod claims;
mod compact;
mod error;
mod header;

pub use claims::{
    MAX_NUMERIC_DATE, TimeClaims, audience_names_one_of, audiences, require_audience, subject,
};
pub use compact::{CompactJws, Peeked, looks_like_jws};
pub use error::JoseError;
pub use header::{Header, MAX_KID_LEN};

/// Decodes a segment of strict base64url into a strict JSON object, by the rules headers and
/// claims are read with (no duplicate member names, shallow, nothing after it): for JOSE
/// objects that are not routed by an issuer, such as a DPoP proof (RFC 9449).
pub fn strict_object_segment(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    crate::json::parse_strict_object(&base64url::decode(segment)?)
}
