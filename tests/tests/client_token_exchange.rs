//! OAuth 2.0 Token Exchange (RFC 8693) as a token source: a subject token from another cache
//! traded at a real token endpoint for a token for another audience.

use auth_tests::token_endpoint::TokenEndpoint;
use tower_auth_client::sts::{ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE};
use tower_auth_client::{
    ClientCredentials, FnSource, SubjectTokenExchange, Token, TokenCache, TokenError,
    TokenErrorKind, TokenSource,
};

const ID: &str = "gateway";
const SECRET: &str = "s3cr3t-2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e";

#[tokio::test]
async fn a_subject_token_is_exchanged_for_another_audience() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let own = TokenCache::start(ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap())
        .await
        .unwrap();
    let subject = own.token().await.unwrap();
    let exchange = SubjectTokenExchange::new(&endpoint.token_url(), ID, own.clone())
        .unwrap()
        .client_secret(SECRET)
        .audience("orders-api")
        .resource("https://orders.example")
        .scope("orders:read")
        .requested_token_type(ACCESS_TOKEN_TYPE);
    let token = exchange.fetch().await.unwrap();
    assert_ne!(
        token.secret().expose_secret(),
        subject.secret().expose_secret()
    );
    let request = endpoint.last_request();
    assert_eq!(
        request.grant_type.as_deref(),
        Some("urn:ietf:params:oauth:grant-type:token-exchange")
    );
    assert_eq!(
        request.subject_token_type.as_deref(),
        Some(ACCESS_TOKEN_TYPE)
    );
    assert_eq!(
        request.requested_token_type.as_deref(),
        Some(ACCESS_TOKEN_TYPE)
    );
    assert_eq!(request.audience.as_deref(), Some("orders-api"));
    assert_eq!(request.resources, ["https://orders.example"]);
    assert_eq!(request.auth_method, "client_secret_basic");
    assert!(token.expires_in().is_some());
    // The debug output names the settings, never a token or the secret.
    let debug = format!("{exchange:?}");
    assert!(
        !debug.contains(SECRET)
            && !debug.contains(std::str::from_utf8(subject.secret().expose_secret()).unwrap())
    );
}

#[tokio::test]
async fn a_refused_subject_or_a_missing_one_is_a_typed_error() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    // A subject token the IdP never issued: invalid_grant, Rejected.
    let forged = TokenCache::from(FnSource::new(|| async {
        Ok(Token::new("not-issued-here", None))
    }));
    let exchange = SubjectTokenExchange::new(&endpoint.token_url(), ID, forged)
        .unwrap()
        .client_secret(SECRET)
        .subject_token_type(JWT_TOKEN_TYPE);
    let error = exchange.fetch().await.unwrap_err();
    assert_eq!(error.kind(), TokenErrorKind::Rejected);
    assert_eq!(error.oauth_error(), Some("invalid_grant"));
    // No subject token to be had: no exchange is attempted.
    let requests = endpoint.token_requests();
    let none = TokenCache::from(FnSource::new(|| async {
        Err(TokenError::new(TokenErrorKind::Unavailable, "down"))
    }));
    let exchange = SubjectTokenExchange::new(&endpoint.token_url(), ID, none).unwrap();
    let error = exchange.fetch().await.unwrap_err();
    assert_eq!(error.reason(), "subject_token_unavailable");
    assert_eq!(error.kind(), TokenErrorKind::Unavailable);
    assert_eq!(endpoint.token_requests(), requests);
}
