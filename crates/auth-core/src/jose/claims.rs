//! The registered claims every validator checks the same way: `exp`, `nbf`, `iat`, `sub`
//! and `aud` (RFC 7519 section 4.1).

use serde_json::{Map, Value};

use super::JoseError;

/// 9999-12-31T23:59:59Z. A later time is a mistake or an attack (`1e300`), not a date, and
/// refusing it keeps every time a plain `u64` that cannot overflow when a leeway is added.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Reads a NumericDate: a JSON number of seconds since the epoch, from 0 to
/// [`MAX_NUMERIC_DATE`]. Strings, `null`, negative and larger numbers are refused.
///
/// RFC 7519 section 2 defines a NumericDate as a JSON numeric value and says that
/// non-integer values can be represented, so `1700000000.5` is a valid `exp`: refusing it
/// would refuse tokens of issuers that compute times as `Date.now() / 1000`. A fraction is
/// rounded in the direction that shortens the token's validity, never lengthens it: down
/// for an end (`exp`), up for a start (`nbf`, `iat`). The answer is whole seconds, the
/// resolution every other time here has.
fn numeric_date(value: &Value, bound: Bound) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return (secs <= MAX_NUMERIC_DATE).then_some(secs);
    }
    // Negative integers fail as_u64 and land here with a negative f64.
    let f = n.as_f64()?;
    if !(f.is_finite() && f >= 0.0 && f <= MAX_NUMERIC_DATE as f64) {
        return None;
    }
    let secs = match bound {
        Bound::End => f.floor(),
        Bound::Start => f.ceil(),
    };
    // In range after the check above, so the conversion is exact.
    Some(secs as u64).filter(|&s| s <= MAX_NUMERIC_DATE)
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
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
        let exp = numeric_date(exp, Bound::End).ok_or(JoseError::BadExp)?;
        let optional = |name: &str, error: JoseError| {
            claims
                .get(name)
                .map(|v| numeric_date(v, Bound::Start).ok_or(error))
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
            (json!(1.7e9), Ok(1_700_000_000)),
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

    /// The decision recorded on `numeric_date` (RFC 7519 section 2): fractions are valid,
    /// and rounded toward the shorter validity.
    #[test]
    fn fractional_numeric_dates_are_accepted_and_round_toward_shorter_validity() {
        let t = times(json!({"exp": 2_000.9, "nbf": 1_000.1, "iat": 1_000.5})).unwrap();
        assert_eq!((t.exp, t.nbf, t.iat), (2_000, Some(1_001), Some(1_001)));
        // At the edges the rounding decides: exp 1440.9 is over at 1500 with 60 s of
        // leeway, and nbf 1560.1 has not begun then.
        let leeway = 60;
        assert_eq!(
            times(json!({"exp": 1_440.9})).unwrap().check(1_500, leeway),
            Err(JoseError::Expired)
        );
        assert_eq!(
            times(json!({"exp": 1_441.0})).unwrap().check(1_500, leeway),
            Ok(())
        );
        assert_eq!(
            times(json!({"exp": 2_000, "nbf": 1_560.1}))
                .unwrap()
                .check(1_500, leeway),
            Err(JoseError::NotYetValid)
        );
        assert_eq!(
            times(json!({"exp": 2_000, "nbf": 1_560.0}))
                .unwrap()
                .check(1_500, leeway),
            Ok(())
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
