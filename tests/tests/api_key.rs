//! API keys end to end: the demo's router on 127.0.0.1:0, driven by a real HTTP client,
//! through SECURITY.md E1-E6 (extraction) and K1-K3 (API keys and the chain).

use auth_tests::{KEY_A, KEY_B, Reply, config, get, serve};
use std::net::SocketAddr;

const INVALID_TOKEN: &str = r#"Bearer realm="api", error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer realm="api", error="invalid_request""#;
const NO_ERROR: &str = r#"Bearer realm="api""#;

/// The demo router with `KEY_A` (named `ci`, roles for /metrics) and `KEY_B` (named `ops`, an admin).
async fn demo() -> SocketAddr {
    let keys = format!(
        r#"[{{"name":"ci","key":"{KEY_A}","roles":["runtime.health:read","runtime.metrics:read"]}},{{"name":"ops","key":"{KEY_B}"}}]"#
    );
    let auth = config(&[("API_KEYS", &keys), ("AUTH_ADMINS", "ops")])
        .build_blocking()
        .unwrap();
    serve(auth_examples::router(auth)).await
}

fn assert_refused(reply: &Reply, status: u16, challenge: &str, body: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(challenge),
        "{reply:?}"
    );
    assert_eq!(reply.body, body, "{reply:?}");
}

/// SECURITY.md E2.
#[tokio::test]
async fn a_valid_key_in_either_header_identifies_the_caller() {
    let addr = demo().await;
    let bearer = format!("Bearer {KEY_A}");
    let lower = format!("bearer {KEY_A}");
    let upper = format!("BEARER {KEY_A}");
    for headers in [
        [("x-api-key", KEY_A)],
        [("authorization", bearer.as_str())],
        [("authorization", &lower)],
        [("authorization", &upper)],
    ] {
        let reply = get(addr, "/whoami", &headers).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["subject"], "ci");
        assert_eq!(body["method"], "api_key");
        assert_eq!(
            body["roles"],
            serde_json::json!(["runtime.health:read", "runtime.metrics:read"])
        );
    }
}

/// SECURITY.md E1.
#[tokio::test]
async fn no_credential_is_401_without_an_error_code() {
    let addr = demo().await;
    assert_refused(
        &get(addr, "/whoami", &[]).await,
        401,
        NO_ERROR,
        r#"{"error":"unauthorized"}"#,
    );
    // Other schemes are not our credentials.
    for value in ["Basic dXNlcjpwYXNz", "Bearer-xyz abc", "Digest username=x"] {
        assert_refused(
            &get(addr, "/whoami", &[("authorization", value)]).await,
            401,
            NO_ERROR,
            r#"{"error":"unauthorized"}"#,
        );
    }
}

/// SECURITY.md E4.
#[tokio::test]
async fn query_string_credentials_are_never_read() {
    let addr = demo().await;
    for path in [
        format!("/whoami?access_token={KEY_A}"),
        format!("/whoami?api_key={KEY_A}"),
    ] {
        assert_refused(
            &get(addr, &path, &[]).await,
            401,
            NO_ERROR,
            r#"{"error":"unauthorized"}"#,
        );
    }
}

/// SECURITY.md K1.
#[tokio::test]
async fn wrong_short_long_or_padded_keys_get_the_same_401() {
    let addr = demo().await;
    let long = format!("{KEY_A}{KEY_A}");
    let truncated = &KEY_A[..KEY_A.len() - 1];
    let inner_space = format!("{} {}", &KEY_A[..10], &KEY_A[10..]);
    let padded_inside = format!("{KEY_A} x");
    let nbsp_padded = format!("{KEY_A}\u{a0}");
    for key in [
        "wrong",
        "x",
        truncated,
        &long,
        &inner_space,
        &padded_inside,
        &nbsp_padded,
        &KEY_A.to_uppercase(),
    ] {
        let reply = get(addr, "/whoami", &[("x-api-key", key)]).await;
        assert_refused(&reply, 401, INVALID_TOKEN, r#"{"error":"invalid_token"}"#);
    }
    for token in ["wrong", truncated, &long] {
        let reply = get(
            addr,
            "/whoami",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_refused(&reply, 401, INVALID_TOKEN, r#"{"error":"invalid_token"}"#);
    }
}

/// RFC 9110 section 5.5: a field value does not include leading or trailing whitespace, and
/// a recipient must exclude it before evaluating the value. The HTTP parser strips it, so
/// ` KEY ` *is* `KEY` on the wire; padding the transport keeps (inside the value, or a
/// non-ASCII space) is refused above, and the extractor itself never trims (tower-auth-core tests).
#[tokio::test]
async fn leading_and_trailing_whitespace_is_not_part_of_a_header_value() {
    let addr = demo().await;
    for key in [format!(" {KEY_A} "), format!("\t{KEY_A}\t")] {
        assert_eq!(
            get(addr, "/whoami", &[("x-api-key", &key)]).await.status,
            200
        );
    }
}

/// SECURITY.md E3.
#[tokio::test]
async fn malformed_requests_are_400_invalid_request() {
    let addr = demo().await;
    let bearer = format!("Bearer {KEY_A}");
    let cases: [&[(&str, &str)]; 6] = [
        &[("authorization", "Bearer")],
        &[("authorization", "Bearer a b")],
        &[("authorization", "Bearer a=b")],
        &[("authorization", &bearer), ("authorization", &bearer)],
        &[("authorization", &bearer), ("x-api-key", KEY_A)],
        &[("x-api-key", KEY_A), ("x-api-key", KEY_A)],
    ];
    for headers in cases {
        assert_refused(
            &get(addr, "/whoami", headers).await,
            400,
            INVALID_REQUEST,
            r#"{"error":"invalid_request"}"#,
        );
    }
}

/// SECURITY.md E5.
#[tokio::test]
async fn oversized_credentials_are_401_before_any_parsing() {
    let addr = demo().await;
    let big = "a".repeat(8 * 1024 + 1);
    assert_refused(
        &get(addr, "/whoami", &[("x-api-key", &big)]).await,
        401,
        INVALID_TOKEN,
        r#"{"error":"invalid_token"}"#,
    );
    // Not valid b64token either: the size decides first.
    let big_bad = format!("Bearer {}!", "a".repeat(8 * 1024));
    assert_refused(
        &get(addr, "/whoami", &[("authorization", &big_bad)]).await,
        401,
        INVALID_TOKEN,
        r#"{"error":"invalid_token"}"#,
    );
}

/// SECURITY.md C6.
#[tokio::test]
async fn missing_role_is_403_with_the_needed_scope() {
    let addr = demo().await;
    let reply = get(addr, "/admin", &[("x-api-key", KEY_A)]).await;
    assert_refused(
        &reply,
        403,
        r#"Bearer realm="api", error="insufficient_scope", scope="admin""#,
        r#"{"error":"insufficient_scope"}"#,
    );
    let reply = get(addr, "/metrics", &[("x-api-key", KEY_B)]).await;
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            r#"Bearer realm="api", error="insufficient_scope", scope="runtime.health:read runtime.metrics:read""#
        )
    );
    // AUTH_ADMINS names `ops`; `ci` holds both metrics roles.
    assert_eq!(
        get(addr, "/admin", &[("x-api-key", KEY_B)]).await.status,
        200
    );
    assert_eq!(
        get(addr, "/metrics", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    // 401 (who are you?) comes before 403 (you may not).
    assert_eq!(get(addr, "/admin", &[]).await.status, 401);
}

#[tokio::test]
async fn health_is_public_and_reports_the_mode() {
    let addr = demo().await;
    let reply = get(addr, "/health", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        r#"{"auth_mode":"api_key","issuers":[],"methods":{"api_key":"ready"},"status":"ok"}"#
    );
    // A bad credential on a public route is not refused.
    assert_eq!(
        get(addr, "/health", &[("x-api-key", "wrong")]).await.status,
        200
    );
}

/// SECURITY.md K3.
#[tokio::test]
async fn spoofed_exempt_paths_stay_protected() {
    let addr = demo().await;
    for path in [
        "/health/../admin",
        "//admin",
        "//health",
        "/health/",
        "/Health",
        "/health%2F..%2Fadmin",
        "/health;/admin",
        "/health/./",
        "/%68ealth",
    ] {
        let reply = get(addr, path, &[]).await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }
}

#[tokio::test]
async fn an_exempt_route_still_gets_the_identity() {
    let auth = config(&[
        ("API_KEYS", KEY_A),
        ("AUTH_PUBLIC_PATHS", "/whoami-optional"),
    ])
    .build_blocking()
    .unwrap();
    let app = axum::Router::new()
        .route(
            "/whoami-optional",
            axum::routing::get(|id: Option<tower_auth_core::Identity>| async move {
                id.map_or("anonymous".to_owned(), |i| i.subject().to_owned())
            }),
        )
        .layer(auth);
    let addr = serve(app).await;
    assert_eq!(get(addr, "/whoami-optional", &[]).await.body, "anonymous");
    assert_eq!(
        get(addr, "/whoami-optional", &[("x-api-key", KEY_A)])
            .await
            .body,
        "key-1"
    );
    assert_eq!(
        get(addr, "/whoami-optional", &[("x-api-key", "wrong")])
            .await
            .body,
        "anonymous"
    );
}

#[tokio::test]
async fn identity_headers_sent_by_the_client_are_stripped() {
    let auth = config(&[("API_KEYS", KEY_A)]).build_blocking().unwrap();
    let app = axum::Router::new()
        .route(
            "/echo",
            axum::routing::get(|headers: http::HeaderMap| async move {
                tower_auth::STRIPPED_IDENTITY_HEADERS
                    .iter()
                    .filter(|h| headers.contains_key(*h))
                    .count()
                    .to_string()
            }),
        )
        .route(
            "/health",
            axum::routing::get(|headers: http::HeaderMap| async move {
                headers.contains_key("x-auth-subject").to_string()
            }),
        )
        .layer(auth);
    let addr = serve(app).await;
    let spoofed: Vec<(&str, &str)> = tower_auth::STRIPPED_IDENTITY_HEADERS
        .iter()
        .map(|h| (h.as_str(), "root"))
        .collect();
    let mut with_key = spoofed.clone();
    with_key.push(("x-api-key", KEY_A));
    assert_eq!(get(addr, "/echo", &with_key).await.body, "0");
    assert_eq!(get(addr, "/health", &spoofed).await.body, "false");
}

/// The identity headers of authenticating proxies (oauth2-proxy and nginx `auth_request`,
/// Azure App Service, Google IAP), named here rather than read from the crate's list.
const PROXY_IDENTITY_HEADERS: [&str; 13] = [
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Groups",
    "X-Auth-Request-Preferred-Username",
    "X-Forwarded-Preferred-Username",
    "X-MS-Client-Principal",
    "X-MS-Client-Principal-Name",
    "X-MS-Client-Principal-Id",
    "X-Goog-Authenticated-User-Email",
    "X-Goog-Authenticated-User-Id",
    "Remote-Groups",
    "Remote-Email",
    "Remote-Name",
];

/// Serves `auth` in front of a handler that answers with the names of the headers it got.
async fn header_echo(auth: tower_auth::AuthLayer) -> SocketAddr {
    let names = |headers: http::HeaderMap| async move {
        let mut names: Vec<&str> = headers.keys().map(http::HeaderName::as_str).collect();
        names.sort_unstable();
        names.join(",")
    };
    let app = axum::Router::new()
        .route("/echo", axum::routing::get(names))
        .route("/health", axum::routing::get(names))
        .layer(auth);
    serve(app).await
}

/// SECURITY.md E6.
#[tokio::test]
async fn proxy_identity_headers_and_configured_ones_never_reach_the_handler() {
    let from_env = config(&[
        ("API_KEYS", KEY_A),
        ("AUTH_STRIP_HEADERS", "X-Proxy-User, x-team"),
    ])
    .build_blocking()
    .unwrap();
    let in_code = from_env
        .clone()
        .into_builder()
        .strip_header(http::HeaderName::from_static("x-tenant"))
        .build()
        .unwrap();
    let off = config(&[
        ("AUTH_MODE", "none"),
        ("AUTH_STRIP_HEADERS", "x-proxy-user"),
    ])
    .build_blocking()
    .unwrap();
    let configured = ["x-proxy-user", "x-team", "x-tenant"];
    for (auth, added) in [
        (from_env, &configured[..2]),
        (in_code, &configured[..]),
        (off, &configured[..1]),
    ] {
        let addr = header_echo(auth).await;
        for name in PROXY_IDENTITY_HEADERS.iter().chain(added) {
            // Authenticated, exempt with and without a credential.
            for (path, key) in [
                ("/echo", Some(KEY_A)),
                ("/health", Some(KEY_A)),
                ("/health", None),
            ] {
                let mut headers = vec![(*name, "root"), ("x-request-id", "r1")];
                headers.extend(key.map(|k| ("x-api-key", k)));
                let reply = get(addr, path, &headers).await;
                assert_eq!(reply.status, 200, "{name} {path}: {reply:?}");
                let got: Vec<&str> = reply.body.split(',').collect();
                assert!(got.contains(&"x-request-id"), "{got:?}");
                assert!(
                    !got.contains(&name.to_ascii_lowercase().as_str()),
                    "{name} reached the handler on {path}"
                );
            }
        }
    }
    // Names nobody configured still pass: the list is not "every x- header".
    let addr = header_echo(config(&[("API_KEYS", KEY_A)]).build_blocking().unwrap()).await;
    let reply = get(addr, "/health", &[("x-tenant", "t"), ("x-proxy-user", "u")]).await;
    assert!(
        reply.body.contains("x-proxy-user") && reply.body.contains("x-tenant"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn rotation_two_keys_at_once() {
    let auth = config(&[("API_KEYS", &format!("{KEY_A},{KEY_B}"))])
        .build_blocking()
        .unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_B)]).await.status,
        200
    );
}

#[tokio::test]
async fn keys_may_be_configured_as_digests_only() {
    let digest = format!("sha256:{}", hex_digest(KEY_A));
    let auth = config(&[("API_KEYS", &digest)]).build_blocking().unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        200
    );
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", &digest)]).await.status,
        401
    );
}

#[tokio::test]
async fn a_custom_api_key_header() {
    let auth = config(&[("API_KEYS", KEY_A), ("API_KEY_HEADER", "X-Service-Token")])
        .build_blocking()
        .unwrap();
    let addr = serve(auth_examples::router(auth)).await;
    assert_eq!(
        get(addr, "/whoami", &[("x-service-token", KEY_A)])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/whoami", &[("x-api-key", KEY_A)]).await.status,
        401
    );
}

fn hex_digest(key: &str) -> String {
    tower_auth_core::sha256_digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
