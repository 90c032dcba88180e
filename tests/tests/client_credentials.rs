//! tower-auth-client end to end: the client credentials grant against a real token endpoint on
//! 127.0.0.1:0, cached and refreshed by `TokenCache` on Tokio's clock.

use std::collections::HashMap;
use std::time::Duration;

use auth_tests::token_endpoint::{TOKEN_PATH, TokenEndpoint};
use auth_tests::{jump, token_text};
use tower_auth_client::{ClientAuth, ClientCredentials, TokenCache, TokenErrorKind};

const ID: &str = "reporting";
const SECRET: &str = "s3cr3t-7c4a8d09ca3762af61e59520943dc26494f8941b";

#[tokio::test]
async fn basic_and_post_with_scope_audience_and_resources() {
    // A secret with `:`, `%`, `+` and a space: form-encoded before base64 (RFC 6749 2.3.1).
    let awkward = "p:a%s+s w&rd=é";
    let endpoint = TokenEndpoint::start(&[(ID, SECRET), ("svc:a b", awkward)]).await;
    for (id, secret, auth, method) in [
        (ID, SECRET, ClientAuth::Basic, "client_secret_basic"),
        (ID, SECRET, ClientAuth::Post, "client_secret_post"),
        ("svc:a b", awkward, ClientAuth::Basic, "client_secret_basic"),
        ("svc:a b", awkward, ClientAuth::Post, "client_secret_post"),
    ] {
        let source = ClientCredentials::new(&endpoint.token_url(), id, secret)
            .unwrap()
            .auth_method(auth)
            .scope("orders:read orders:write")
            .audience("https://orders.example")
            .resource("urn:orders")
            .resource("https://orders.example/v2");
        let tokens = TokenCache::start(source).await.unwrap();
        let token = tokens.token().await.unwrap();
        assert!(token_text(&token).starts_with("opaque-"));
        let lifetime = token.lifetime().unwrap();
        assert_eq!(lifetime, Duration::from_secs(3600));
        let seen = endpoint.last_request();
        assert_eq!(seen.auth_method, method);
        assert_eq!(seen.client_id.as_deref(), Some(id));
        assert_eq!(seen.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(seen.scope.as_deref(), Some("orders:read orders:write"));
        assert_eq!(seen.audience.as_deref(), Some("https://orders.example"));
        assert_eq!(seen.resources, ["urn:orders", "https://orders.example/v2"]);
    }
    assert_eq!(endpoint.issued(), 4);
}

#[tokio::test]
async fn discovery_names_the_token_endpoint_once() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let source = ClientCredentials::from_issuer(endpoint.issuer(), ID, SECRET).unwrap();
    assert!(source.token_endpoint().is_none());
    let tokens = TokenCache::start(source.clone()).await.unwrap();
    assert_eq!(
        source.token_endpoint().unwrap().to_string(),
        endpoint.token_url()
    );
    tokens.refresh().await.unwrap();
    assert_eq!(
        (endpoint.discovery_requests(), endpoint.token_requests()),
        (1, 2)
    );
}

#[tokio::test]
async fn an_oauth_server_without_openid_discovery_is_found_by_its_rfc8414_metadata() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.serve_rfc8414_only();
    let source = ClientCredentials::from_issuer(endpoint.issuer(), ID, SECRET).unwrap();
    let tokens = TokenCache::start(source.clone()).await.unwrap();
    assert_eq!(
        source.token_endpoint().unwrap().to_string(),
        endpoint.token_url()
    );
    tokens.token().await.unwrap();
    assert_eq!(endpoint.token_requests(), 1);
    assert_eq!(
        endpoint.discovery_requests(),
        2,
        "404 at the OpenID path, then RFC 8414's"
    );
}

#[tokio::test]
async fn discovery_that_fails_otherwise_is_not_retried_elsewhere() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_status(Some((503, None)));
    let source = ClientCredentials::from_issuer(endpoint.issuer(), ID, SECRET).unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable);
    assert_eq!(
        endpoint.discovery_requests(),
        1,
        "an outage is not a reason to look elsewhere"
    );
}

#[tokio::test]
async fn discovery_for_another_issuer_is_refused() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_discovery_issuer(Some("https://evil.example".into()));
    let source = ClientCredentials::from_issuer(endpoint.issuer(), ID, SECRET).unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.reason()),
        (TokenErrorKind::InvalidResponse, "issuer_mismatch")
    );
    assert_eq!(endpoint.token_requests(), 0, "no secret sent anywhere");
}

#[tokio::test]
async fn reused_until_the_refresh_margin_and_refreshed_after() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let tokens = TokenCache::start(source).await.unwrap();
    let first = tokens.token().await.unwrap();
    // An hour-long token: margin max(5 min, 10%) = 360 s, plus up to 36 s of jitter.
    jump(Duration::from_secs(3600 - 396 - 1)).await;
    for _ in 0..10 {
        assert_eq!(
            token_text(&tokens.token().await.unwrap()),
            token_text(&first)
        );
    }
    assert_eq!((tokens.fetches(), endpoint.token_requests()), (1, 1));

    jump(Duration::from_secs(396 - 360 + 2)).await;
    // Due: the caller still gets the current token at once; one refresh starts beside it.
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        token_text(&first)
    );
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        token_text(&first)
    );
    assert_eq!(tokens.fetches(), 2);
    let second = tokens.refresh().await.unwrap();
    assert_ne!(token_text(&second), token_text(&first));
    assert_eq!(
        token_text(&tokens.token().await.unwrap()),
        token_text(&second)
    );
    assert_eq!(
        (tokens.fetches(), endpoint.token_requests()),
        (2, 2),
        "refresh() joined the fetch in flight"
    );
}

#[tokio::test]
async fn a_short_token_is_used_for_half_its_life() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_expires_in(Some(120));
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let tokens = TokenCache::start(source).await.unwrap();
    jump(Duration::from_secs(120 / 2 - 1)).await;
    tokens.token().await.unwrap();
    assert_eq!(tokens.fetches(), 1);
    jump(Duration::from_secs(8)).await;
    tokens.token().await.unwrap();
    assert_eq!(tokens.fetches(), 2);
}

#[tokio::test]
async fn one_request_for_a_hundred_concurrent_callers() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_expires_in(Some(600));
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let tokens = TokenCache::new(source);

    for round in 1..=2 {
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let tokens = tokens.clone();
            callers.spawn(async move { tokens.token().await.map(|t| token_text(&t)) });
        }
        let mut seen = HashMap::new();
        while let Some(result) = callers.join_next().await {
            *seen.entry(result.unwrap().unwrap()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 1, "everyone got the same token");
        assert_eq!(seen.into_values().next(), Some(100));
        assert_eq!(endpoint.token_requests(), round);
        // Past expiry: the next hundred again share one request.
        jump(Duration::from_secs(601)).await;
    }
}

#[tokio::test]
async fn endpoint_down_during_refresh_keeps_the_token_until_expiry_then_errs() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_expires_in(Some(600));
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let tokens = TokenCache::start(source).await.unwrap();
    let first = token_text(&tokens.token().await.unwrap());

    endpoint.set_down(true);
    // Due from 300 s to 330 s (half the lifetime, less up to 10% jitter).
    jump(Duration::from_secs(331)).await;
    assert_eq!(token_text(&tokens.token().await.unwrap()), first);
    let err = tokens.refresh().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err:?}");
    assert_eq!(
        tokens.fetches(),
        2,
        "refresh() joined the background attempt"
    );
    // Within the backoff no new attempt, and the old token is served.
    for _ in 0..20 {
        assert_eq!(token_text(&tokens.token().await.unwrap()), first);
    }
    assert_eq!(tokens.fetches(), 2);
    jump(Duration::from_secs(600 - 331 - 2)).await;
    assert_eq!(token_text(&tokens.token().await.unwrap()), first);
    assert_eq!(tokens.fetches(), 3, "retried after the backoff");

    // Expired, and the endpoint still down: a clear error, no token.
    if tokens.refresh().await.is_ok() {
        panic!("the endpoint is down");
    }
    jump(Duration::from_secs(3)).await;
    let err = tokens.token().await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err:?}");
    assert!(
        matches!(err.reason(), "request_failed" | "connect_failed"),
        "{err:?}"
    );
    assert!(tokens.current().is_none());

    // Back up: after the backoff the next caller gets a new token.
    endpoint.set_down(false);
    jump(Duration::from_secs(120)).await;
    let fresh = token_text(&tokens.token().await.unwrap());
    assert_ne!(fresh, first);
    assert_eq!(endpoint.issued(), 2);
}

#[tokio::test]
async fn server_errors_are_unavailable_with_retry_after() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    endpoint.set_status(Some((503, Some(30))));
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.reason()),
        (TokenErrorKind::Unavailable, "server_error")
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_at_start_up() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    for auth in [ClientAuth::Basic, ClientAuth::Post] {
        let source = ClientCredentials::new(&endpoint.token_url(), ID, "not-the-secret")
            .unwrap()
            .auth_method(auth);
        let err = TokenCache::start(source).await.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidClient, "{err:?}");
        assert!(err.is_invalid_client());
        assert_eq!(err.oauth_error(), Some("invalid_client"));
        assert!(!err.to_string().contains("not-the-secret"));
    }
    // The endpoint's switch: every secret is wrong now.
    endpoint.set_reject_all(true);
    let source = ClientCredentials::new(&endpoint.token_url(), ID, SECRET).unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert!(err.is_invalid_client());
    assert_eq!(endpoint.issued(), 0);
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_start_up_as_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{TOKEN_PATH}", closed.local_addr().unwrap());
    drop(closed);
    let source = ClientCredentials::new(&url, ID, SECRET).unwrap();
    let err = TokenCache::start(source).await.unwrap_err();
    assert_eq!(err.kind(), TokenErrorKind::Unavailable, "{err:?}");
}

#[tokio::test]
async fn from_lookup_end_to_end() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let issuer = endpoint.issuer().to_owned();
    for (url_var, url) in [
        ("AUTH_TOKEN_URL", endpoint.token_url()),
        ("AUTH_ISSUER", issuer),
    ] {
        let vars: HashMap<&str, String> = [
            ("AUTH_CLIENT_ID", ID.to_owned()),
            ("AUTH_CLIENT_SECRET", SECRET.to_owned()),
            (url_var, url),
            ("AUTH_SCOPE", "orders:read".to_owned()),
            ("AUTH_AUDIENCE", "api".to_owned()),
            ("AUTH_CLIENT_AUTH_METHOD", "client_secret_post".to_owned()),
        ]
        .into_iter()
        .collect();
        let tokens = TokenCache::from_lookup("", |name| vars.get(name).cloned()).unwrap();
        tokens.token().await.unwrap();
        let seen = endpoint.last_request();
        assert_eq!(seen.auth_method, "client_secret_post");
        assert_eq!(
            (seen.scope.as_deref(), seen.audience.as_deref()),
            (Some("orders:read"), Some("api"))
        );
    }
    assert!(endpoint.token_url().ends_with(TOKEN_PATH));
}
