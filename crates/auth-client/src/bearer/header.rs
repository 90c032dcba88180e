//! What [`Bearer`](super::Bearer) writes on requests and reads from responses, in every
//! retry mode.

use http::{HeaderValue, Response, StatusCode};

use crate::{Token, TokenError, TokenErrorKind};

/// The `Authorization` value for `token`, or why it cannot be sent (not a b64token).
pub(crate) fn authorization(token: &Token) -> Result<HeaderValue, TokenError> {
    token
        .authorization()
        .cloned()
        .ok_or_else(|| TokenError::new(TokenErrorKind::InvalidResponse, "token_not_b64token"))
}

/// Whether the server refused the token: HTTP 401, or gRPC UNAUTHENTICATED in a
/// trailers-only response (the status in the headers, as servers send an early refusal).
pub(crate) fn unauthorized<T>(response: &Response<T>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|code| code.as_bytes() == b"16")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_or_a_trailers_only_unauthenticated_is_a_refused_token() {
        let mut response = Response::new(());
        assert!(!unauthorized(&response));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        assert!(unauthorized(&response));
        for (code, refused) in [("16", true), ("7", false), ("0", false)] {
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert("grpc-status", HeaderValue::from_static(code));
            assert_eq!(unauthorized(&response), refused, "{code}");
        }
    }
}
