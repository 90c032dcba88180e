//! Identity headers a client may not send: removed from every request.

use http::{HeaderMap, HeaderName};

/// Identity headers a client might send to impersonate someone behind a trusting proxy or
/// handler; they are removed from every request before it reaches the inner service.
///
/// Besides tower-auth's own names, those of common authenticating proxies: oauth2-proxy and
/// nginx `auth_request` (`X-Auth-Request-*`, `X-Forwarded-*`), Authelia and Authentik
/// (`Remote-*`), Azure App Service (`X-MS-Client-Principal*`) and Google IAP
/// (`X-Goog-Authenticated-User-*`). Tokens such proxies pass on (`X-Forwarded-Access-Token`,
/// `X-Goog-IAP-JWT-Assertion`) are left alone: an application behind both may verify them. Add more with
/// [`AuthLayerBuilder::strip_header`](crate::AuthLayerBuilder::strip_header) or
/// `AUTH_STRIP_HEADERS`.
pub static STRIPPED_IDENTITY_HEADERS: [HeaderName; 21] = [
    HeaderName::from_static("x-auth-subject"),
    HeaderName::from_static("x-auth-roles"),
    HeaderName::from_static("x-auth-method"),
    HeaderName::from_static("x-forwarded-user"),
    HeaderName::from_static("x-forwarded-email"),
    HeaderName::from_static("x-forwarded-groups"),
    HeaderName::from_static("x-forwarded-preferred-username"),
    HeaderName::from_static("x-remote-user"),
    HeaderName::from_static("remote-user"),
    HeaderName::from_static("remote-groups"),
    HeaderName::from_static("remote-email"),
    HeaderName::from_static("remote-name"),
    HeaderName::from_static("x-auth-request-user"),
    HeaderName::from_static("x-auth-request-email"),
    HeaderName::from_static("x-auth-request-groups"),
    HeaderName::from_static("x-auth-request-preferred-username"),
    HeaderName::from_static("x-ms-client-principal"),
    HeaderName::from_static("x-ms-client-principal-name"),
    HeaderName::from_static("x-ms-client-principal-id"),
    HeaderName::from_static("x-goog-authenticated-user-email"),
    HeaderName::from_static("x-goog-authenticated-user-id"),
];

/// The headers one layer strips: [`STRIPPED_IDENTITY_HEADERS`] and those the application
/// added.
#[derive(Clone, Debug)]
pub(crate) struct StrippedHeaders {
    extra: Vec<HeaderName>,
    /// Bit `n` is set when a stripped name is `n` bytes long (bit 63: 63 bytes or more), so
    /// that most of a request's header names are passed over with one test.
    lengths: u64,
}

fn length_bit(name: &str) -> u64 {
    1 << name.len().min(63)
}

impl Default for StrippedHeaders {
    fn default() -> Self {
        Self {
            extra: Vec::new(),
            lengths: STRIPPED_IDENTITY_HEADERS
                .iter()
                .fold(0, |bits, name| bits | length_bit(name.as_str())),
        }
    }
}

impl StrippedHeaders {
    /// Strips `name` too.
    pub(crate) fn add(&mut self, name: HeaderName) {
        if !self.names().any(|known| *known == name) {
            self.lengths |= length_bit(name.as_str());
            self.extra.push(name);
        }
    }

    /// The names the application added.
    pub(crate) fn added(&self) -> &[HeaderName] {
        &self.extra
    }

    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        STRIPPED_IDENTITY_HEADERS.iter().chain(&self.extra)
    }

    /// Removes every stripped header from `headers`.
    ///
    /// A request almost never has one, so the names it does have are compared first, by
    /// length and then bytes; removing them all by name would hash each of them on every
    /// request.
    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        if headers.keys().any(|name| {
            let name = name.as_str();
            self.lengths & length_bit(name) != 0
                && self.names().any(|stripped| stripped.as_str() == name)
        }) {
            for name in STRIPPED_IDENTITY_HEADERS.iter().chain(&self.extra) {
                headers.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn every_identity_header_is_stripped_and_nothing_else() {
        let stripped = StrippedHeaders::default();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("x-request-id", HeaderValue::from_static("r"));
        stripped.strip(&mut headers);
        assert_eq!(headers.len(), 2, "nothing to strip: untouched");

        for name in &STRIPPED_IDENTITY_HEADERS {
            headers.append(name, HeaderValue::from_static("root"));
            headers.append(name, HeaderValue::from_static("admin"));
        }
        // Header names are case-insensitive: any spelling arrives lowercased.
        headers.append(
            HeaderName::from_bytes(b"X-Forwarded-User").unwrap(),
            HeaderValue::from_static("root"),
        );
        stripped.strip(&mut headers);
        let left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-api-key", "x-request-id"]);
    }

    #[test]
    fn each_header_alone_is_found_added_ones_too() {
        let mut stripped = StrippedHeaders::default();
        // 63 bytes and more share a length bit.
        let long = HeaderName::from_bytes(&[b'x'; 70]).unwrap();
        let added = [HeaderName::from_static("x-user"), long.clone()];
        for name in &added {
            stripped.add(name.clone());
        }
        stripped.add(HeaderName::from_static("x-user"));
        stripped.add(HeaderName::from_static("remote-user"));
        assert_eq!(stripped.added(), added);
        for name in STRIPPED_IDENTITY_HEADERS.iter().chain(&added) {
            let mut headers = HeaderMap::new();
            headers.insert("x-request-id", HeaderValue::from_static("r"));
            headers.insert(name, HeaderValue::from_static("root"));
            stripped.strip(&mut headers);
            assert!(!headers.contains_key(name), "{name}");
            assert!(headers.contains_key("x-request-id"));
        }
        // The same length as a stripped name, another name: kept.
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-client-principal-idx", HeaderValue::from_static("v"));
        headers.insert(
            HeaderName::from_bytes(&[b'y'; 70]).unwrap(),
            HeaderValue::from_static("v"),
        );
        stripped.strip(&mut headers);
        assert_eq!(headers.len(), 2);
        // Without the additions, the default list leaves them alone.
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("root"));
        StrippedHeaders::default().strip(&mut headers);
        assert!(headers.contains_key("x-user"));
    }
}
