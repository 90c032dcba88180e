//! Identity headers a client may not send: removed from every request.

use http::{HeaderMap, HeaderName};

/// Identity headers a client might send to impersonate someone behind a trusting proxy or
/// handler; they are removed from every request before it reaches the inner service.
pub static STRIPPED_IDENTITY_HEADERS: [HeaderName; 8] = [
    HeaderName::from_static("x-auth-subject"),
    HeaderName::from_static("x-auth-roles"),
    HeaderName::from_static("x-auth-method"),
    HeaderName::from_static("x-forwarded-user"),
    HeaderName::from_static("x-forwarded-email"),
    HeaderName::from_static("x-forwarded-groups"),
    HeaderName::from_static("x-remote-user"),
    HeaderName::from_static("remote-user"),
];

/// Removes [`STRIPPED_IDENTITY_HEADERS`] from `headers`.
///
/// A request almost never has one, so the names it does have are compared first, by length
/// and then bytes; removing all eight by name would hash each of them on every request.
pub(crate) fn strip_identity_headers(headers: &mut HeaderMap) {
    if headers.keys().any(|name| {
        STRIPPED_IDENTITY_HEADERS
            .iter()
            .any(|stripped| stripped.as_str() == name.as_str())
    }) {
        for name in &STRIPPED_IDENTITY_HEADERS {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn every_identity_header_is_stripped_and_nothing_else() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("x-request-id", HeaderValue::from_static("r"));
        strip_identity_headers(&mut headers);
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
        strip_identity_headers(&mut headers);
        let left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-api-key", "x-request-id"]);
    }
}
