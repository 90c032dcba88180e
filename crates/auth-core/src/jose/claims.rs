//! The registered claims every validator checks the same way: `exp`, `nbf`, `iat`, `sub`
//! and `aud` (RFC 7519 section 4.1).

use serde_json::{Map, Value};

use super::JoseError;

/// 9999-12-31T23:59:59Z. A later time is a mistake or an attack (`1e300`), not a date, and
/// refusing it keeps every time a plain `u64` that cannot overflow when a leeway is added.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Reads a NumericDate: a JSON integer of seconds since the epoch, from 0 to
/// [`MAX_NUMERIC_DATE`]. Strings, `null`, negative and larger numbers are refused, and so is
/// any number written with a fraction or an exponent.
///
/// RFC 7519 section 2 lets a NumericDate be non-integer; we refuse that, on purpose.
/// jsonwebtoken 11, which the OIDC signatures go through and most Rust services validate
/// with, reads `exp` and `nbf` as `u64` and refuses `1700000000.5` too, and the independent
/// issuers the interop suite runs (PyJWT, oidc-provider) write integers: a token that only a
/// lenient reader accepts is not portable. Integers also
/// leave nothing to decide: no rounding direction for `exp` versus `nbf`, no `-0.0`, no
/// precision loss past 2^53, and `1e300` is plainly not a date.
fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().filter(|&secs| secs <= MAX_NUMERIC_DATE),
        _ => None,
    }
}

/// `exp`, `nbf` and `iat` of a payload, in whole seconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeClaims {
    /// `exp`: required.
    pub exp: u64,
    /// `nbf`, if present.
    pub nbf: Option<u64>,
    /// `iat`, if present.
    pub iat: Option<u64>,
}

impl TimeClaims {
    /// Reads the three times; `exp` is required, and each present one must be a NumericDate.
    ///
    /// # Errors
    /// [`JoseError::MissingExp`], [`JoseError::BadExp`], [`JoseError::BadNbf`],
    /// [`JoseError::BadIat`].
    pub fn read(claims: &Map<String, Value>) -> Result<Self, JoseError> {
        let exp = claims.get("exp").ok_or(JoseError::MissingExp)?;
        let exp = numeric_date(exp).ok_or(JoseError::BadExp)?;
        let optional = |name: &str, error: JoseError| {
            claims
                .get(name)
                .map(|v| numeric_date(v).ok_or(error))
                .transpose()
        };
        Ok(Self {
            exp,
            nbf: optional("nbf", JoseError::BadNbf)?,
            iat: optional("iat", JoseError::BadIat)?,
        })
    }

    /// Checks the times against `now` with `leeway` seconds of clock difference allowed in
    /// each direction: `nbf` and `iat` may be up to `leeway` ahead of now, and the token
    /// stays valid until `exp + leeway` (RFC 7519 sections 4.1.4 and 4.1.5). Expiry is
    /// judged last, so that an expired token is known to be otherwise sound.
    ///
    /// # Errors
    /// [`JoseError::NotYetValid`], [`JoseError::IssuedInFuture`], [`JoseError::Expired`].
    pub fn check(&self, now: u64, leeway: u64) -> Result<(), JoseError> {
        let latest_start = now.saturating_add(leeway);
        if self.nbf.is_some_and(|nbf| nbf > latest_start) {
            return Err(JoseError::NotYetValid);
        }
        if self.iat.is_some_and(|iat| iat > latest_start) {
            return Err(JoseError::IssuedInFuture);
        }
        if now >= self.exp.saturating_add(leeway) {
            return Err(JoseError::Expired);
        }
        Ok(())
    }
}

/// `sub`: a non-empty string.
///
/// # Errors
/// [`JoseError::BadSubject`].
pub fn subject(claims: &Map<String, Value>) -> Result<&str, JoseError> {
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => Ok(sub),
        _ => Err(JoseError::BadSubject),
    }
}

/// `aud` as a list (RFC 7519 section 4.1.3: a string, or an array of strings); `None` when
/// absent.
///
/// # Errors
/// [`JoseError::BadAudience`] for any other value (`null`, a number, an object, an array
/// with a non-string item).
pub fn audiences(claims: &Map<String, Value>) -> Result<Option<Vec<&str>>, JoseError> {
    match claims.get("aud") {
        None => Ok(None),
        Some(Value::String(aud)) => Ok(Some(vec![aud.as_str()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(JoseError::BadAudience))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(JoseError::BadAudience),
    }
}

/// Checks that `aud` is present and names one of `expected` (an exact, case-sensitive match).
///
/// # Errors
/// [`JoseError::BadAudience`] when `aud` is missing or malformed,
/// [`JoseError::AudienceMismatch`] when it names none of `expected` (an empty array included).
pub fn require_audience<S: AsRef<str>>(
    claims: &Map<String, Value>,
    expected: &[S],
) -> Result<(), JoseError> {
    audience_names_one_of(audiences(claims)?.as_deref(), expected)
}

/// [`require_audience`] for an `aud` already read with [`audiences`].
///
/// # Errors
/// As [`require_audience`].
pub fn audience_names_one_of<S: AsRef<str>>(
    named: Option<&[&str]>,
    expected: &[S],
) -> Result<(), JoseError> {
    let named = named.ok_or(JoseError::BadAudience)?;
    if named
        .iter()
        .any(|aud| expected.iter().any(|e| e.as_ref() == *aud))
    {
        Ok(())
    } else {
        Err(JoseError::AudienceMismatch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn times(value: Value) -> Result<TimeClaims, JoseError> {
        TimeClaims::read(&object(value))
    }

    #[test]
    fn numeric_dates_are_non_negative_numbers_up_to_the_year_9999() {
        for (exp, verdict) in [
            (json!(0), Ok(0)),
            (json!(1_700_000_000), Ok(1_700_000_000)),
            (json!(MAX_NUMERIC_DATE), Ok(MAX_NUMERIC_DATE)),
            (json!(1.7e9), Err(JoseError::BadExp)),
            (json!(1_700_000_000.0), Err(JoseError::BadExp)),
            (json!(MAX_NUMERIC_DATE + 1), Err(JoseError::BadExp)),
            (json!(u64::MAX), Err(JoseError::BadExp)),
            (json!(1e300), Err(JoseError::BadExp)),
            (json!(-1), Err(JoseError::BadExp)),
            (json!(-0.5), Err(JoseError::BadExp)),
            (json!("1700000000"), Err(JoseError::BadExp)),
            (Value::Null, Err(JoseError::BadExp)),
            (json!(true), Err(JoseError::BadExp)),
            (json!([1]), Err(JoseError::BadExp)),
            (json!({}), Err(JoseError::BadExp)),
        ] {
            assert_eq!(
                times(json!({ "exp": exp })).map(|t| t.exp),
                verdict,
                "{exp}"
            );
        }
        assert_eq!(times(json!({})), Err(JoseError::MissingExp));
        assert_eq!(times(json!({"exp": 1, "nbf": "0"})), Err(JoseError::BadNbf));
        assert_eq!(times(json!({"exp": 1, "iat": -5})), Err(JoseError::BadIat));
    }

    /// The decision recorded on `numeric_date` (RFC 7519 section 2 allows fractions; we
    /// refuse them, as jsonwebtoken does): every time claim, whatever the fraction.
    #[test]
    fn fractional_numeric_dates_are_refused_like_jsonwebtoken_does() {
        for (claims, error) in [
            (json!({"exp": 2_000.5}), JoseError::BadExp),
            (json!({"exp": 2_000.0}), JoseError::BadExp),
            (json!({"exp": 2_000, "nbf": 1_000.1}), JoseError::BadNbf),
            (json!({"exp": 2_000, "iat": 1_000.9}), JoseError::BadIat),
        ] {
            assert_eq!(times(claims.clone()), Err(error), "{claims}");
        }
        assert_eq!(
            times(json!({"exp": 2_000, "nbf": 1_000, "iat": 1_000})),
            Ok(TimeClaims {
                exp: 2_000,
                nbf: Some(1_000),
                iat: Some(1_000)
            })
        );
    }

    #[test]
    fn time_window_with_leeway() {
        let check = |claims: Value, now| times(claims).unwrap().check(now, 60);
        assert_eq!(check(json!({"exp": 1_441}), 1_500), Ok(()));
        assert_eq!(check(json!({"exp": 1_440}), 1_500), Err(JoseError::Expired));
        assert_eq!(check(json!({"exp": 2_000, "iat": 1_560}), 1_500), Ok(()));
        assert_eq!(
            check(json!({"exp": 2_000, "iat": 1_561}), 1_500),
            Err(JoseError::IssuedInFuture)
        );
        // Not yet valid wins over expired: expiry is the last word.
        assert_eq!(
            check(json!({"exp": 1_000, "nbf": 1_600}), 1_500),
            Err(JoseError::NotYetValid)
        );
        assert_eq!(
            times(json!({"exp": MAX_NUMERIC_DATE}))
                .unwrap()
                .check(u64::MAX, u64::MAX),
            Err(JoseError::Expired)
        );
    }

    #[test]
    fn subject_and_audience() {
        assert_eq!(subject(&object(json!({"sub": "u1"}))), Ok("u1"));
        for sub in [json!(""), json!(1), Value::Null] {
            assert_eq!(
                subject(&object(json!({ "sub": sub }))),
                Err(JoseError::BadSubject)
            );
        }
        assert_eq!(subject(&object(json!({}))), Err(JoseError::BadSubject));

        let expected = ["api", "api2"];
        for (aud, verdict) in [
            (json!("api"), Ok(())),
            (json!(["other", "api2"]), Ok(())),
            (json!("API"), Err(JoseError::AudienceMismatch)),
            (json!([]), Err(JoseError::AudienceMismatch)),
            (json!(["other"]), Err(JoseError::AudienceMismatch)),
            (json!(["api", 1]), Err(JoseError::BadAudience)),
            (json!(["api", null]), Err(JoseError::BadAudience)),
            (json!({"aud": "api"}), Err(JoseError::BadAudience)),
            (Value::Null, Err(JoseError::BadAudience)),
            (json!(5), Err(JoseError::BadAudience)),
        ] {
            assert_eq!(
                require_audience(&object(json!({ "aud": aud })), &expected),
                verdict,
                "{aud}"
            );
        }
        assert_eq!(
            require_audience(&object(json!({})), &expected),
            Err(JoseError::BadAudience)
        );
        assert_eq!(audiences(&object(json!({}))), Ok(None));
    }
}
