//! What token endpoints answer: a token response (RFC 6749 section 5.1) or an error
//! response (section 5.2), as ours and every OAuth server send them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde::Deserialize;
use tower_auth_core::Secret;
use tower_auth_http::Reply;

use crate::transport::token_error;
use crate::{Token, TokenError, TokenErrorKind};

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// A token response with what a person's session keeps beside the access token.
pub(crate) struct Granted {
    pub(crate) token: Token,
    /// A new refresh token (rotation), or `None` to keep using the one presented.
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) id_token: Option<Secret>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A token response (RFC 6749 section 5.1) or error response (section 5.2), as ours and
/// every OAuth server send them. Lifetimes count from `started`, when the request was sent,
/// so that a slow answer never makes a token look fresher than it is.
pub(crate) fn token_from_reply(
    reply: Reply,
    started: tokio::time::Instant,
) -> Result<Token, TokenError> {
    granted_from_reply(reply, started).map(|granted| granted.token)
}

/// As [`token_from_reply`] for a request that proved a DPoP key: `token_type` may also be
/// `DPoP` (RFC 9449 section 5).
pub(crate) fn dpop_token_from_reply(
    reply: Reply,
    started: tokio::time::Instant,
) -> Result<Token, TokenError> {
    granted(reply, started, true).map(|granted| granted.token)
}

/// As [`token_from_reply`], with the refresh and ID tokens.
pub(crate) fn granted_from_reply(
    reply: Reply,
    started: tokio::time::Instant,
) -> Result<Granted, TokenError> {
    granted(reply, started, false)
}

fn granted(reply: Reply, started: tokio::time::Instant, dpop: bool) -> Result<Granted, TokenError> {
    if let Some(error) = reply.failure() {
        return Err(token_error(error));
    }
    if reply.status != StatusCode::OK {
        if let Ok(error) = serde_json::from_slice::<ErrorResponse>(&reply.body) {
            return Err(TokenError::oauth(
                &error.error,
                error.error_description.as_deref(),
            ));
        }
        // Section 5.2: a failed client authentication may come as a bare 401.
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(TokenError::new(
                TokenErrorKind::InvalidClient,
                "unauthorized",
            ));
        }
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "unexpected_status",
        ));
    }
    let response: TokenResponse = serde_json::from_slice(&reply.body)
        .map_err(|_| TokenError::new(TokenErrorKind::InvalidResponse, "not_a_token_response"))?;
    let access_token = Secret::from(response.access_token);
    // Section 7.1 and RFC 6750: we can only present bearer tokens; a DPoP or MAC token sent
    // as a bearer would be refused or, worse, accepted without its proof.
    // A DPoP token only where a proof was sent, and then only through `DpopLayer`.
    let presentable = response.token_type.eq_ignore_ascii_case("bearer")
        || (dpop && response.token_type.eq_ignore_ascii_case("dpop"));
    if !presentable {
        return Err(TokenError::new(
            TokenErrorKind::InvalidResponse,
            "not_bearer",
        ));
    }
    let lifetime =
        match &response.expires_in {
            None | Some(serde_json::Value::Null) => jwt_lifetime(access_token.expose_secret()),
            Some(value) => Some(expires_in(value).ok_or_else(|| {
                TokenError::new(TokenErrorKind::InvalidResponse, "bad_expires_in")
            })?),
        };
    Ok(Granted {
        token: Token::received(access_token, started, lifetime),
        refresh_token: response
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::from),
        id_token: response
            .id_token
            .filter(|t| !t.is_empty())
            .map(Secret::from),
    })
}

/// `expires_in`: positive seconds, as a number or (as some servers send it) a numeric string.
fn expires_in(value: &serde_json::Value) -> Option<Duration> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs >= 1.0)
        .then(|| Duration::from_secs_f64(secs.min(crate::token::MAX_LIFETIME.as_secs_f64())))
}

/// Without `expires_in` (section 5.1 makes it only RECOMMENDED), a JWT access token's own
/// `exp` says how long it lives; read unverified, for scheduling only.
fn jwt_lifetime(token: &[u8]) -> Option<Duration> {
    let token = std::str::from_utf8(token).ok()?;
    let mut segments = token.split('.');
    let (_, payload, _) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    exp.checked_sub(now)
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn parse(status: u16, body: &str) -> Result<Token, TokenError> {
        token_from_reply(reply(status, body), tokio::time::Instant::now())
    }

    #[tokio::test]
    async fn a_dpop_token_type_is_taken_only_after_a_proof() {
        let body = r#"{"access_token":"abc","token_type":"DPoP","expires_in":60}"#;
        let now = tokio::time::Instant::now();
        assert!(dpop_token_from_reply(reply(200, body), now).is_ok());
        assert_eq!(
            token_from_reply(reply(200, body), now)
                .unwrap_err()
                .reason(),
            "not_bearer"
        );
        let mac = r#"{"access_token":"abc","token_type":"mac"}"#;
        assert!(dpop_token_from_reply(reply(200, mac), now).is_err());
    }

    #[tokio::test]
    async fn token_responses() {
        let token = parse(
            200,
            r#"{"access_token":"abc","token_type":"bearer","expires_in":3600,"scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(token.secret().expose_secret(), b"abc");
        assert_eq!(token.lifetime(), Some(Duration::from_secs(3600)));
        let token = parse(
            200,
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
        let token = parse(200, r#"{"access_token":"abc","token_type":"Bearer"}"#).unwrap();
        assert_eq!(token.lifetime(), None);

        for (body, reason) in [
            (
                r#"{"access_token":"abc","token_type":"DPoP","expires_in":60}"#,
                "not_bearer",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":0}"#,
                "bad_expires_in",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":-5}"#,
                "bad_expires_in",
            ),
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":true}"#,
                "bad_expires_in",
            ),
            (r#"{"token_type":"Bearer"}"#, "not_a_token_response"),
            ("<html>", "not_a_token_response"),
        ] {
            let err = parse(200, body).unwrap_err();
            assert_eq!(
                (err.kind(), err.reason()),
                (TokenErrorKind::InvalidResponse, reason),
                "{body}"
            );
        }
    }

    #[test]
    fn jwt_exp_when_expires_in_is_missing() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 120));
        let lifetime = jwt_lifetime(format!("e30.{payload}.sig").as_bytes()).unwrap();
        assert!(lifetime <= Duration::from_secs(120) && lifetime >= Duration::from_secs(110));
        let past = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now - 1));
        assert_eq!(jwt_lifetime(format!("e30.{past}.sig").as_bytes()), None);
        assert_eq!(jwt_lifetime(b"opaque"), None);
        assert_eq!(jwt_lifetime(b"a.b.c.d"), None);
    }

    #[tokio::test]
    async fn error_responses() {
        let err = parse(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
        let err = parse(
            400,
            r#"{"error":"invalid_client","error_description":"no such client"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidClient);
        assert_eq!(err.description(), Some("no such client"));
        let err = parse(401, "nope").unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::InvalidClient, "unauthorized")
        );
        let err = parse(400, r#"{"error":"invalid_scope"}"#).unwrap_err();
        assert_eq!(
            (err.kind(), err.oauth_error()),
            (TokenErrorKind::Rejected, Some("invalid_scope"))
        );
        let err = parse(404, "not found").unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidResponse);
        let err = parse(302, "").unwrap_err();
        assert_eq!(err.reason(), "redirect_refused");
        let mut busy = reply(503, r#"{"error":"invalid_client"}"#);
        busy.retry_after = Some(Duration::from_secs(7));
        let err = token_from_reply(busy, tokio::time::Instant::now()).unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::Unavailable);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let err = parse(429, "").unwrap_err();
        assert_eq!(
            (err.kind(), err.reason()),
            (TokenErrorKind::Unavailable, "rate_limited")
        );
    }
}
