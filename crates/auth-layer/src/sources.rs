//! Where else a credential may come from, each opt-in: an API key as the password of
//! `Authorization: Basic` (`API_KEY_BASIC`), and a bearer token in a cookie (`AUTH_COOKIE`).
//! Without either, extraction is the core extractor's alone.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};
use tower_auth_core::{
    AuthError, Credential, CredentialExtractor, MAX_CREDENTIAL_LEN, is_b64token,
};
use zeroize::Zeroizing;

use crate::service::Settings;

/// The opt-in sources of credentials.
#[derive(Clone, Debug, Default)]
pub(crate) struct CredentialSources {
    /// `Authorization: Basic base64(anything:KEY)` carries an API key.
    pub(crate) basic: bool,
    /// A cookie of this name may carry the bearer token.
    pub(crate) cookie: Option<Arc<str>>,
}

/// Room for a decoded Basic credential, which the returned [`Credential`] borrows; wiped
/// when dropped.
#[derive(Default)]
pub(crate) struct Scratch(Zeroizing<Vec<u8>>);

/// Standard base64, padded or not (RFC 7617 says padded; some clients leave it out).
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Settings {
    /// The request's credential, from the headers the layer reads.
    pub(crate) fn credential<'h>(
        &self,
        headers: &'h HeaderMap,
        scratch: &'h mut Scratch,
    ) -> Result<Option<Credential<'h>>, AuthError> {
        self.sources.extract(&self.extractor, headers, scratch)
    }
}

impl CredentialSources {
    /// Whether the request's credential is the token cookie: a request that carries it and
    /// passed extraction has no other credential (both at once are `invalid_request`).
    #[cfg(feature = "hmac")]
    pub(crate) fn came_from_cookie(&self, headers: &HeaderMap) -> bool {
        self.cookie
            .as_deref()
            .is_some_and(|name| matches!(cookie(headers, name), Ok(Some(_))))
    }

    /// The credential in `headers`: the core extractor's, then a Basic password, then the
    /// cookie. A cookie token beside an `Authorization` or API-key header, or a Basic
    /// password beside an API-key header, is two credentials: `invalid_request`.
    pub(crate) fn extract<'h>(
        &self,
        extractor: &CredentialExtractor,
        headers: &'h HeaderMap,
        scratch: &'h mut Scratch,
    ) -> Result<Option<Credential<'h>>, AuthError> {
        let found = extractor.extract(headers)?;
        if !self.basic && self.cookie.is_none() {
            return Ok(found);
        }
        let cookie = match &self.cookie {
            Some(name) => cookie(headers, name)?,
            None => None,
        };
        // The core extractor refused two Authorization headers already.
        let authorization = headers.get(AUTHORIZATION);
        if cookie.is_some() && (authorization.is_some() || found.is_some()) {
            return Err(AuthError::invalid_request("cookie_and_header"));
        }
        if self.basic
            && let Some(encoded) = authorization.and_then(|v| basic(v.as_bytes()))
        {
            if found.is_some() {
                return Err(AuthError::invalid_request("multiple_credentials"));
            }
            return basic_password(encoded, scratch).map(|key| Some(Credential::ApiKey(key)));
        }
        Ok(found.or(cookie.map(Credential::Bearer)))
    }
}

/// The credentials of `Basic <credentials>` (the scheme is case-insensitive), if that is the
/// scheme.
fn basic(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space..]),
        None => (value, &[][..]),
    };
    scheme
        .eq_ignore_ascii_case(b"basic")
        .then(|| rest.trim_ascii())
}

/// The password of a Basic credential; the user name is never looked at.
fn basic_password<'s>(encoded: &[u8], scratch: &'s mut Scratch) -> Result<&'s str, AuthError> {
    if encoded.is_empty() {
        return Err(AuthError::invalid_request("empty_basic"));
    }
    if encoded.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::invalid_token("credential_too_large"));
    }
    BASIC
        .decode_vec(encoded, &mut scratch.0)
        .map_err(|_| AuthError::invalid_request("malformed_basic"))?;
    let Some(colon) = scratch.0.iter().position(|&b| b == b':') else {
        return Err(AuthError::invalid_request("malformed_basic"));
    };
    let password = &scratch.0[colon + 1..];
    if password.is_empty() {
        return Err(AuthError::invalid_token("empty_basic_password"));
    }
    // Keys are printable: a password that is not UTF-8 is an unknown key, as in the header.
    std::str::from_utf8(password).map_err(|_| AuthError::invalid_token("api_key_not_ascii"))
}

/// The value of cookie `name`, read across every `Cookie` header (HTTP/2 sends one per
/// cookie: RFC 9113 section 8.2.3). The name twice (another path or domain set it too) is
/// ambiguous: `invalid_request`. An empty value is no cookie (a browser's cleared cookie).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if &pair[..eq] != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return Err(AuthError::invalid_request("duplicate_cookie"));
            }
            found = Some(&pair[eq + 1..]);
        }
    }
    let Some(mut value) = found else {
        return Ok(None);
    };
    // RFC 6265 section 4.1.1: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ).
    if let Some(inner) = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
    {
        value = inner;
    }
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::invalid_token("credential_too_large"));
    }
    if !is_b64token(value) {
        return Err(AuthError::invalid_request("malformed_cookie"));
    }
    // is_b64token admits ASCII only.
    Ok(std::str::from_utf8(value).ok())
}

/// `API_KEY_BASIC` (`true` or `false`, default `false`) and `AUTH_COOKIE`. Basic passwords
/// are API keys: with `API_KEY_BASIC=true` the chain must check API keys.
pub(crate) fn from_env(
    vars: &crate::env::Vars<'_>,
    checks_api_keys: bool,
) -> Result<CredentialSources, tower_auth_core::ConfigError> {
    use tower_auth_core::ConfigError;
    let mut sources = CredentialSources::default();
    if let (name, Some(value)) = vars.read("API_KEY_BASIC") {
        sources.basic = crate::env::flag(&name, &value)?;
        if sources.basic && !checks_api_keys {
            return Err(ConfigError::new(
                name,
                "is true, but the chain checks no API keys (set API_KEYS or API_KEYS_FILE, and keep api_key in AUTH_MODE)",
            ));
        }
    }
    if let (name, Some(value)) = vars.read("AUTH_COOKIE") {
        let value = value.trim();
        if !is_cookie_name(value) {
            return Err(ConfigError::new(
                name,
                "is not a cookie name (an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)",
            ));
        }
        sources.cookie = Some(value.into());
    }
    Ok(sources)
}

/// Whether `name` is a cookie name (an RFC 9110 token, as RFC 6265 section 4.1.1 asks).
pub(crate) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};
    use tower_auth_core::AuthErrorKind;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        map
    }

    fn extract(
        sources: &CredentialSources,
        pairs: &[(&str, &str)],
    ) -> Result<Option<String>, AuthErrorKind> {
        let headers = headers(pairs);
        let mut scratch = Scratch::default();
        sources
            .extract(&CredentialExtractor::default(), &headers, &mut scratch)
            .map(|c| c.map(|c| format!("{}:{}", c.transport(), c.expose())))
            .map_err(|e| e.kind())
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn basic_is_no_credential_unless_turned_on() {
        let value = format!("Basic {}", b64("user:key"));
        let off = CredentialSources::default();
        assert_eq!(extract(&off, &[("authorization", &value)]), Ok(None));
        let on = CredentialSources {
            basic: true,
            cookie: None,
        };
        for scheme in ["Basic", "basic", "BASIC"] {
            let value = format!("{scheme} {}", b64("ignored:the-key:with-colon"));
            assert_eq!(
                extract(&on, &[("authorization", &value)]),
                Ok(Some("api_key_header:the-key:with-colon".into()))
            );
        }
        // Without padding, and with no user name.
        let unpadded = format!("Basic {}", b64(":k1").trim_end_matches('='));
        assert_eq!(
            extract(&on, &[("authorization", &unpadded)]),
            Ok(Some("api_key_header:k1".into()))
        );
        // Bearer still works.
        assert_eq!(
            extract(&on, &[("authorization", "Bearer t")]),
            Ok(Some("bearer:t".into()))
        );
    }

    #[test]
    fn bad_basic_credentials() {
        let on = CredentialSources {
            basic: true,
            cookie: None,
        };
        let basic = |raw: &str| format!("Basic {raw}");
        let over = format!("Basic {}", "QUFB".repeat(MAX_CREDENTIAL_LEN / 4 + 1));
        for (value, kind) in [
            ("Basic".to_owned(), AuthErrorKind::InvalidRequest),
            ("Basic ".to_owned(), AuthErrorKind::InvalidRequest),
            (basic("!!!"), AuthErrorKind::InvalidRequest),
            (basic("dXNlcg=x"), AuthErrorKind::InvalidRequest),
            (basic(&b64("no-colon")), AuthErrorKind::InvalidRequest),
            (basic(&b64("user:")), AuthErrorKind::InvalidToken),
            (basic(&b64(":")), AuthErrorKind::InvalidToken),
            (over, AuthErrorKind::InvalidToken),
        ] {
            assert_eq!(
                extract(&on, &[("authorization", &value)]),
                Err(kind),
                "{value:.40}"
            );
        }
        let latin1 = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b"u:\xff")
        );
        assert_eq!(
            extract(&on, &[("authorization", &latin1)]),
            Err(AuthErrorKind::InvalidToken)
        );
        let value = basic(&b64("u:k"));
        assert_eq!(
            extract(&on, &[("authorization", &value), ("x-api-key", "k")]),
            Err(AuthErrorKind::InvalidRequest)
        );
    }

    #[test]
    fn a_cookie_carries_a_bearer_token_alone() {
        let on = CredentialSources {
            basic: false,
            cookie: Some("session".into()),
        };
        for cookies in [
            &[("cookie", "session=abc.def")][..],
            &[("cookie", "theme=dark; session=abc.def; x=1")],
            &[("cookie", "theme=dark"), ("cookie", "session=\"abc.def\"")],
        ] {
            assert_eq!(extract(&on, cookies), Ok(Some("bearer:abc.def".into())));
        }
        for cookies in [
            &[("cookie", "Session=abc")][..],
            &[("cookie", "session2=abc")],
            &[("cookie", "session=")],
            &[("cookie", "session")],
        ] {
            assert_eq!(extract(&on, cookies), Ok(None), "{cookies:?}");
        }
        let over = format!("session={}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        for (cookies, kind) in [
            (
                &[("cookie", "session=a"), ("authorization", "Bearer b")][..],
                AuthErrorKind::InvalidRequest,
            ),
            (
                &[("cookie", "session=a"), ("authorization", "Basic eDp5")],
                AuthErrorKind::InvalidRequest,
            ),
            (
                &[("cookie", "session=a"), ("x-api-key", "k")],
                AuthErrorKind::InvalidRequest,
            ),
            (
                &[("cookie", "session=a; session=b")],
                AuthErrorKind::InvalidRequest,
            ),
            (
                &[("cookie", "session=a"), ("cookie", "session=a")],
                AuthErrorKind::InvalidRequest,
            ),
            (&[("cookie", "session=a b")], AuthErrorKind::InvalidRequest),
            (&[("cookie", "session=a,b")], AuthErrorKind::InvalidRequest),
            (&[("cookie", over.as_str())], AuthErrorKind::InvalidToken),
        ] {
            assert_eq!(extract(&on, cookies), Err(kind), "{cookies:.60?}");
        }
    }

    #[test]
    fn cookie_names_are_tokens() {
        assert!(is_cookie_name("__Host-session"));
        for bad in ["", "a b", "a=b", "a;b", "a\"b", "é"] {
            assert!(!is_cookie_name(bad), "{bad}");
        }
    }
}
