//! API keys as a Basic password (`API_KEY_BASIC`) and bearer tokens from a cookie
//! (`AUTH_COOKIE`), end to end: the demo's HTTP router and tonic server on 127.0.0.1:0, real
//! clients. SECURITY.md B1-B9.

use std::net::SocketAddr;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_tests::{CapturedLogs, KEY_A, KEY_B, Reply, get, serve};
use base64::Engine as _;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tower_auth::AuthConfig;

const BEARER_NO_ERROR: &str = r#"Bearer realm="api""#;
const INVALID_TOKEN: &str = r#"Bearer realm="api", error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer realm="api", error="invalid_request""#;
const BASIC: &str = r#"Basic realm="api""#;

fn keys() -> String {
    format!(r#"[{{"name":"ci","key":"{KEY_A}"}},{{"name":"ops","key":"{KEY_B}"}}]"#)
}

fn vars(extra: &[(&str, &str)]) -> Result<AuthConfig, tower_auth::ConfigError> {
    let keys = keys();
    let mut vars: Vec<(&str, &str)> = vec![("API_KEYS", &keys)];
    vars.extend_from_slice(extra);
    AuthConfig::from_lookup("", |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

/// The demo router with `KEY_A` (`ci`) and `KEY_B` (`ops`) and these variables besides.
async fn demo(extra: &[(&str, &str)]) -> SocketAddr {
    let auth = vars(extra).unwrap().build_blocking().unwrap();
    serve(auth_examples::router(auth)).await
}

fn basic(user_and_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_and_password)
    )
}

fn challenges(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

fn subject(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{reply:?}");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    body["subject"].as_str().unwrap().to_owned()
}

/// SECURITY.md B1: off by default, a Basic credential is none of ours, even with a good key.
#[tokio::test]
async fn basic_is_no_credential_while_api_key_basic_is_off() {
    for extra in [&[][..], &[("API_KEY_BASIC", "false")]] {
        let addr = demo(extra).await;
        let reply = get(
            addr,
            "/whoami",
            &[("authorization", &basic(&format!("u:{KEY_A}")))],
        )
        .await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(challenges(&reply), [BEARER_NO_ERROR]);
        assert_eq!(reply.body, r#"{"error":"unauthorized"}"#);
    }
}

/// SECURITY.md B2: the password is the key, whatever the user name (none, anything, one
/// with a colon in the password); the user name is never logged, nor the key.
#[tokio::test(flavor = "current_thread")]
async fn a_basic_password_is_an_api_key_and_the_user_name_is_never_logged() {
    let (logs, _guard) = CapturedLogs::start();
    let addr = demo(&[("API_KEY_BASIC", "true")]).await;
    for user in ["", "flight-sql-user", "x@y"] {
        let reply = get(
            addr,
            "/whoami",
            &[("authorization", &basic(&format!("{user}:{KEY_A}")))],
        )
        .await;
        assert_eq!(subject(&reply), "ci");
    }
    let lower = basic(&format!("jdbc-user-7f3a:{KEY_B}")).replacen("Basic", "basic", 1);
    assert_eq!(
        subject(&get(addr, "/whoami", &[("authorization", &lower)]).await),
        "ops"
    );
    // X-API-Key and Bearer keep working beside it.
    assert_eq!(
        subject(&get(addr, "/whoami", &[("x-api-key", KEY_A)]).await),
        "ci"
    );
    // A refused one is logged with a fingerprint, not the user name or the password.
    let reply = get(
        addr,
        "/whoami",
        &[(
            "authorization",
            &basic("jdbc-user-9c1e:wrong-password-5d2b"),
        )],
    )
    .await;
    assert_eq!(reply.status, 401);
    let logs = logs.text();
    assert!(logs.contains("outcome=\"rejected\""), "{logs}");
    for secret in [
        "jdbc-user-7f3a",
        "jdbc-user-9c1e",
        "wrong-password-5d2b",
        KEY_A,
        KEY_B,
    ] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}

/// SECURITY.md B2: a 401 offers Basic beside Bearer when Basic is on; a 400 does not.
#[tokio::test]
async fn a_401_offers_basic_beside_bearer() {
    let addr = demo(&[("API_KEY_BASIC", "true")]).await;
    let reply = get(addr, "/whoami", &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenges(&reply), [BEARER_NO_ERROR, BASIC]);
    let reply = get(addr, "/whoami", &[("authorization", "Bearer a b")]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(challenges(&reply), [INVALID_REQUEST]);
}

/// SECURITY.md B3: an empty or a wrong password is an invalid key, answered as a wrong key
/// in `X-API-Key` is.
#[tokio::test]
async fn an_empty_or_wrong_password_is_invalid_token() {
    let addr = demo(&[("API_KEY_BASIC", "true")]).await;
    let wrong = format!("u:{}", &KEY_B[..63]);
    for credentials in ["u:", ":", "ci:", wrong.as_str(), "u: "] {
        let reply = get(addr, "/whoami", &[("authorization", &basic(credentials))]).await;
        assert_eq!(reply.status, 401, "{credentials:?}: {reply:?}");
        assert_eq!(
            challenges(&reply),
            [INVALID_TOKEN, BASIC],
            "{credentials:?}"
        );
        assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
    }
    // Not UTF-8: no key can match.
    let latin1 = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(b"u:\xe9t\xe9")
    );
    assert_eq!(
        get(addr, "/whoami", &[("authorization", &latin1)])
            .await
            .status,
        401
    );
}

/// SECURITY.md B4: a malformed Basic credential or two credentials at once -> 400R; a
/// credential over 8 KiB -> 401T before it is decoded.
#[tokio::test]
async fn malformed_basic_is_invalid_request_and_oversized_is_invalid_token() {
    let addr = demo(&[("API_KEY_BASIC", "true")]).await;
    let no_colon = basic(KEY_A);
    let with_key_header = basic(&format!("u:{KEY_A}"));
    for headers in [
        &[("authorization", "Basic")][..],
        &[("authorization", "Basic ")],
        &[("authorization", "Basic !!!!")],
        &[("authorization", "Basic dXNlcg=x")],
        &[("authorization", no_colon.as_str())],
        &[
            ("authorization", with_key_header.as_str()),
            ("x-api-key", KEY_A),
        ],
    ] {
        let reply = get(addr, "/whoami", headers).await;
        assert_eq!(reply.status, 400, "{headers:?}: {reply:?}");
        assert_eq!(challenges(&reply), [INVALID_REQUEST], "{headers:?}");
    }
    // Over 8 KiB, and not even base64: refused for its size.
    let huge = format!("Basic {}", "!".repeat(8 * 1024 + 1));
    let reply = get(addr, "/whoami", &[("authorization", &huge)]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenges(&reply), [INVALID_TOKEN, BASIC]);
}

/// SECURITY.md B5.
#[test]
fn api_key_basic_must_be_a_switch_and_needs_api_keys() {
    for value in ["yes", "1", "", "on"] {
        let error = vars(&[("API_KEY_BASIC", value)]).unwrap_err();
        assert_eq!(error.variable(), "API_KEY_BASIC", "{value:?}");
    }
    assert!(vars(&[("API_KEY_BASIC", " TRUE ")]).is_ok());
    // Basic passwords are API keys: a chain without them cannot check one.
    let secret = "Zx8Qm2VtP9rK4LwN8bYc3HdF6sJg5KeA-hmac";
    let error = vars(&[
        ("AUTH_MODE", "hmac"),
        ("HMAC_SECRET", secret),
        ("API_KEY_BASIC", "true"),
    ])
    .unwrap_err();
    assert_eq!(error.variable(), "API_KEY_BASIC");
    let error = AuthConfig::from_lookup("", |name| {
        (name == "API_KEY_BASIC").then(|| "true".to_owned())
    })
    .unwrap_err();
    assert_eq!(error.variable(), "API_KEY_BASIC");
}

/// SECURITY.md B2: over gRPC the same metadata works, and the refusals are gRPC's.
#[tokio::test]
async fn a_basic_password_works_in_grpc_metadata() {
    let auth = grpc_auth(
        vars(&[("API_KEY_BASIC", "true")])
            .unwrap()
            .build_blocking()
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let call = |authorization: String| {
        let channel = channel.clone();
        async move {
            let mut request = tonic::Request::new(WhoAmIRequest {});
            request.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(authorization.as_str()).unwrap(),
            );
            DemoClient::new(channel)
                .who_am_i(request)
                .await
                .map(|r| r.into_inner().subject)
                .map_err(|status| status.code())
        }
    };
    assert_eq!(call(basic(&format!("svc:{KEY_B}"))).await, Ok("ops".into()));
    assert_eq!(call(basic("svc:")).await, Err(Code::Unauthenticated));
    assert_eq!(call(basic("no-colon")).await, Err(Code::Unauthenticated));
}

/// SECURITY.md B6: the cookie carries a bearer credential when no header does; with an
/// `Authorization` header of any scheme, or an API-key header, it is two credentials.
#[tokio::test]
async fn a_cookie_token_alone_authenticates_and_beside_a_header_is_invalid_request() {
    let addr = demo(&[("AUTH_COOKIE", "__Host-session")]).await;
    let cookie = format!("theme=dark; __Host-session={KEY_A}");
    assert_eq!(
        subject(&get(addr, "/whoami", &[("cookie", &cookie)]).await),
        "ci"
    );
    // Quoted, as RFC 6265 allows.
    let quoted = format!("__Host-session=\"{KEY_B}\"");
    assert_eq!(
        subject(&get(addr, "/whoami", &[("cookie", &quoted)]).await),
        "ops"
    );
    let bearer = format!("Bearer {KEY_A}");
    for headers in [
        [
            ("cookie", cookie.as_str()),
            ("authorization", bearer.as_str()),
        ],
        [("cookie", cookie.as_str()), ("authorization", "Basic dTpw")],
        [("cookie", cookie.as_str()), ("x-api-key", KEY_A)],
    ] {
        let reply = get(addr, "/whoami", &headers).await;
        assert_eq!(reply.status, 400, "{headers:?}: {reply:?}");
        assert_eq!(challenges(&reply), [INVALID_REQUEST]);
        assert_eq!(reply.body, r#"{"error":"invalid_request"}"#);
    }
    // Another cookie's name is no credential; the header alone still works.
    let other = format!("session={KEY_A}");
    assert_eq!(
        get(addr, "/whoami", &[("cookie", &other)]).await.status,
        401
    );
    assert_eq!(
        subject(&get(addr, "/whoami", &[("authorization", &bearer)]).await),
        "ci"
    );
}

/// SECURITY.md B7: the cookie twice, in one header or across several (as HTTP/2 sends
/// them), is ambiguous -> 400R; a cleared (empty) cookie is no credential -> 401∅.
#[tokio::test]
async fn a_repeated_cookie_is_invalid_request_and_an_empty_one_is_none() {
    let addr = demo(&[("AUTH_COOKIE", "session")]).await;
    let one = format!("session={KEY_A}");
    let twice = format!("session={KEY_A}; session={KEY_B}");
    for headers in [
        &[("cookie", twice.as_str())][..],
        &[("cookie", one.as_str()), ("cookie", one.as_str())],
        &[("cookie", one.as_str()), ("cookie", "a=1; session=")],
    ] {
        let reply = get(addr, "/whoami", headers).await;
        assert_eq!(reply.status, 400, "{headers:?}: {reply:?}");
        assert_eq!(challenges(&reply), [INVALID_REQUEST]);
    }
    // Several Cookie headers, the name once: read as one list.
    assert_eq!(
        subject(&get(addr, "/whoami", &[("cookie", "a=1"), ("cookie", &one)]).await),
        "ci"
    );
    for value in ["session=", "session=\"\""] {
        let reply = get(addr, "/whoami", &[("cookie", value)]).await;
        assert_eq!(reply.status, 401, "{value}");
        assert_eq!(challenges(&reply), [BEARER_NO_ERROR]);
    }
}

/// SECURITY.md B8: the bearer rules apply to a cookie token: over 8 KiB -> 401T, outside
/// b64token -> 400R; a wrong token -> 401T.
#[tokio::test]
async fn a_cookie_token_follows_the_bearer_rules() {
    let addr = demo(&[("AUTH_COOKIE", "session")]).await;
    let huge = format!("session={}", "a".repeat(8 * 1024 + 1));
    let reply = get(addr, "/whoami", &[("cookie", &huge)]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenges(&reply), [INVALID_TOKEN]);
    for value in ["session=a,b", "session=a%20b", "session=\"a"] {
        let reply = get(addr, "/whoami", &[("cookie", value)]).await;
        assert_eq!(reply.status, 400, "{value}: {reply:?}");
    }
    let wrong = format!("session={}", &KEY_A[..63]);
    let reply = get(addr, "/whoami", &[("cookie", &wrong)]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenges(&reply), [INVALID_TOKEN]);
}

/// SECURITY.md B9.
#[test]
fn auth_cookie_must_be_a_cookie_name() {
    for value in ["", "a b", "a=b", "a;b", "sessión"] {
        let error = vars(&[("AUTH_COOKIE", value)]).unwrap_err();
        assert_eq!(error.variable(), "AUTH_COOKIE", "{value:?}");
    }
}

/// Basic and the cookie together: each credential alone works, and both at once is two.
#[tokio::test]
async fn basic_and_cookie_together() {
    let addr = demo(&[("API_KEY_BASIC", "true"), ("AUTH_COOKIE", "session")]).await;
    let cookie = format!("session={KEY_A}");
    let password = basic(&format!("u:{KEY_B}"));
    assert_eq!(
        subject(&get(addr, "/whoami", &[("cookie", &cookie)]).await),
        "ci"
    );
    assert_eq!(
        subject(&get(addr, "/whoami", &[("authorization", &password)]).await),
        "ops"
    );
    let reply = get(
        addr,
        "/whoami",
        &[("cookie", &cookie), ("authorization", &password)],
    )
    .await;
    assert_eq!(reply.status, 400);
}
