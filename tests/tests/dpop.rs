//! DPoP-bound tokens (RFC 9449) end to end: the demo's router and gRPC server behind a layer
//! configured from variables, tokens of the test IdP bound by `cnf.jkt` to a client key, and
//! proofs signed by hand with that key (aws-lc-rs, not our verifier's code).

use std::net::SocketAddr;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use auth_examples::grpc::serve_grpc;
use auth_tests::idp::{SigningKey, TestIdp, b64};
use auth_tests::{KEY_A, config, get, send, serve};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tower_auth::AuthLayer;
use tower_auth_core::{Clock, sha256_digest};
use tower_auth_oidc::jwk_thumbprint;

/// A client's DPoP key: an ES256 key whose public JWK goes in each proof.
struct Client {
    key: SigningKey,
}

impl Client {
    fn new(name: &str) -> Self {
        Self {
            key: SigningKey::ec(name),
        }
    }

    /// The public JWK, as a proof carries it: only the key's own members.
    fn jwk(&self) -> Value {
        let jwk = self.key.jwk();
        json!({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]})
    }

    fn jkt(&self) -> String {
        jwk_thumbprint(self.jwk().as_object().unwrap()).unwrap()
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()})
    }

    /// Claims of a proof for `method` `htu`, presenting `token`, made now.
    fn claims(method: &str, htu: &str, token: &str) -> Value {
        json!({"jti": unique(), "htm": method, "htu": htu, "iat": Clock::system().now_unix(),
               "ath": b64(sha256_digest(token.as_bytes()))})
    }

    fn proof(&self, method: &str, htu: &str, token: &str) -> String {
        self.key
            .mint(&self.header(), &Self::claims(method, htu, token))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.mint(header, claims)
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A token of `idp` valid now, bound to `jkt` when given.
fn token(idp: &TestIdp, key: &SigningKey, jkt: Option<&str>) -> String {
    let now = Clock::system().now_unix();
    idp.token_with(key, |claims| {
        claims["sub"] = json!("alice");
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 600);
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({"jkt": jkt});
        }
    })
}

async fn layer(idp: &TestIdp, policy: &str, extra: &[(&str, &str)]) -> AuthLayer {
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": "api",
                                   "algorithms": ["RS256", "ES256"], "dpop": policy}]})
    .to_string();
    let mut vars = vec![("API_KEYS", KEY_A), ("OIDC_CONFIG", oidc.as_str())];
    vars.extend_from_slice(extra);
    config(&vars).build().await.unwrap()
}

struct Setup {
    idp: TestIdp,
    idp_key: SigningKey,
    client: Client,
    addr: SocketAddr,
}

impl Setup {
    async fn new(policy: &str) -> Self {
        let idp_key = SigningKey::rsa("rsa-1", 0);
        let idp = TestIdp::start(&[&idp_key]).await;
        let addr =
            auth_tests::serve_with_peers(auth_examples::router(layer(&idp, policy, &[]).await))
                .await;
        Self {
            idp,
            idp_key,
            client: Client::new("client"),
            addr,
        }
    }

    fn bound(&self) -> String {
        token(&self.idp, &self.idp_key, Some(&self.client.jkt()))
    }

    fn unbound(&self) -> String {
        token(&self.idp, &self.idp_key, None)
    }

    /// Without `AUTH_DPOP_ORIGIN`, an HTTP/1.1 request's origin is `https://` + its `Host`.
    fn htu(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    async fn whoami(&self, headers: &[(&str, &str)]) -> auth_tests::Reply {
        get(self.addr, "/whoami", headers).await
    }

    /// GET /whoami from the loopback address `from`.
    async fn whoami_from(&self, from: [u8; 4], headers: &[(&str, &str)]) -> auth_tests::Reply {
        use http_body_util::{BodyExt, Full};
        let mut sender = auth_tests::http1_from(self.addr, from).await;
        let mut request = http::Request::get("/whoami").header("host", self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(bytes::Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        auth_tests::Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

fn dpop(token: &str) -> String {
    format!("DPoP {token}")
}

fn assert_refused(reply: &auth_tests::Reply, status: u16, error: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}: {reply:?}");
    let challenges: Vec<&str> = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges[0].contains(&format!("error=\"{error}\"")),
        "{case}: {challenges:?}"
    );
    if status == 401 {
        assert!(
            challenges.contains(&r#"DPoP algs="RS256 ES256""#),
            "{case}: {challenges:?}"
        );
    }
}

/// The reasons the layer logs for its refusals, read one refusal at a time (the answer
/// itself never says why: SECURITY.md's answers are per kind).
struct Reasons {
    logs: auth_tests::CapturedLogs,
    _guard: auth_tests::CaptureGuard,
    seen: usize,
}

impl Reasons {
    fn start() -> Self {
        let (logs, _guard) = auth_tests::CapturedLogs::start();
        Self {
            logs,
            _guard,
            seen: 0,
        }
    }

    /// Asserts that the refusal logged since the last call was for `reason`.
    fn next(&mut self, reason: &str, case: &str) {
        let text = self.logs.text();
        let logged = &text[self.seen..];
        assert!(
            logged.contains(&format!("reason=\"{reason}\"")),
            "{case}: {logged}"
        );
        self.seen = text.len();
    }
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_and_unbound_bearer_tokens_still_work() {
    let s = Setup::new("allowed").await;
    let token = s.bound();
    let proof = s.client.proof("GET", &s.htu("/whoami"), &token);
    let reply = s
        .whoami(&[("authorization", &dpop(&token)), ("dpop", &proof)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("\"alice\""), "{}", reply.body);
    // The scheme is case-insensitive, and the token is now cached: the proof is still checked.
    let proof = s.client.proof("GET", &s.htu("/whoami"), &token);
    let reply = s
        .whoami(&[
            ("authorization", &format!("dpop {token}")),
            ("dpop", &proof),
        ])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = s
        .whoami(&[("authorization", &format!("Bearer {}", s.unbound()))])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // A 401 offers both schemes.
    let reply = s.whoami(&[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers.get_all("www-authenticate").iter().count(), 2);
}

/// SECURITY.md P1.
#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused() {
    let s = Setup::new("allowed").await;
    let mut reasons = Reasons::start();
    let token = s.bound();
    let proof = s.client.proof("GET", &s.htu("/whoami"), &token);
    for headers in [
        vec![("authorization", format!("Bearer {token}"))],
        vec![
            ("authorization", format!("Bearer {token}")),
            ("dpop", proof),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_refused(&s.whoami(&headers).await, 401, "invalid_token", "as bearer");
        reasons.next("dpop_bound_token_as_bearer", "as bearer");
    }
}

/// SECURITY.md P2, P3, P13.
#[tokio::test]
async fn a_missing_or_repeated_proof_and_an_unbound_dpop_token_are_refused() {
    let s = Setup::new("allowed").await;
    let mut reasons = Reasons::start();
    let token = s.bound();
    let auth = dpop(&token);
    assert_refused(
        &s.whoami(&[("authorization", &auth)]).await,
        401,
        "invalid_token",
        "P2",
    );
    reasons.next("dpop_proof_missing", "P2");
    let (p1, p2) = (
        s.client.proof("GET", &s.htu("/whoami"), &token),
        s.client.proof("GET", &s.htu("/whoami"), &token),
    );
    let reply = s
        .whoami(&[("authorization", &auth), ("dpop", &p1), ("dpop", &p2)])
        .await;
    assert_refused(&reply, 400, "invalid_request", "P3");
    reasons.next("dpop_proof_repeated", "P3");
    let unbound = s.unbound();
    let proof = s.client.proof("GET", &s.htu("/whoami"), &unbound);
    let reply = s
        .whoami(&[("authorization", &dpop(&unbound)), ("dpop", &proof)])
        .await;
    assert_refused(&reply, 401, "invalid_token", "P13 unbound token");
    reasons.next("dpop_scheme_unbound_token", "P13 unbound token");
    let reply = s
        .whoami(&[("authorization", &dpop(KEY_A)), ("dpop", &proof)])
        .await;
    assert_refused(&reply, 401, "invalid_token", "P13 API key");
    reasons.next("dpop_scheme_unbound_token", "P13 API key");
}

/// SECURITY.md P4, P5, P6, P7, P9, P10, P11, P12, P15, P16.
#[tokio::test]
async fn each_bad_proof_is_refused_with_invalid_token() {
    let s = Setup::new("allowed").await;
    let token = s.bound();
    let htu = s.htu("/whoami");
    let header = s.client.header();
    let claims = Client::claims("GET", &htu, &token);
    let now = Clock::system().now_unix();
    let with = |value: &Value, name: &str, member: Value| {
        let mut value = value.clone();
        value[name] = member;
        value
    };
    let fresh = || with(&claims, "jti", json!(unique()));
    let mut private_jwk = s.client.jwk();
    private_jwk["d"] = json!(b64([7u8; 32]));
    let none = format!(
        "{}.{}.",
        b64(with(&header, "alg", json!("none")).to_string()),
        b64(fresh().to_string())
    );
    let hs256 = {
        let h =
            json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"secret")}});
        let input = format!("{}.{}", b64(h.to_string()), b64(fresh().to_string()));
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"secret"),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(tag.as_ref()))
    };
    let ed = SigningKey::ed25519("ed");
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": ed.jwk()["x"]});
    // P15's header cases: `crit`, `b64`, an RSA key under 2048 bits, a P-384 key for ES256.
    let small_rsa = json!({"kty": "RSA", "e": "AQAB", "n": b64([0xc5u8; 128])});
    let p384 = {
        use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk =
            json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..])});
        let h = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let input = format!("{}.{}", b64(h.to_string()), b64(fresh().to_string()));
        let sig = pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    };
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "P4 another method",
            "dpop_proof_htm",
            s.client
                .sign(&header, &with(&fresh(), "htm", json!("POST"))),
        ),
        (
            "P5 another path",
            "dpop_proof_htu",
            s.client
                .sign(&header, &with(&fresh(), "htu", json!(s.htu("/admin")))),
        ),
        (
            "P5 another host",
            "dpop_proof_htu",
            s.client.sign(
                &header,
                &with(&fresh(), "htu", json!("https://api.example.com/whoami")),
            ),
        ),
        (
            "P5 plain http",
            "dpop_proof_htu",
            s.client.sign(
                &header,
                &with(&fresh(), "htu", json!(format!("http://{}/whoami", s.addr))),
            ),
        ),
        (
            "P6 another key",
            "dpop_key_mismatch",
            Client::new("other").proof("GET", &htu, &token),
        ),
        (
            "P7 stale iat",
            "dpop_proof_iat",
            s.client
                .sign(&header, &with(&fresh(), "iat", json!(now - 300))),
        ),
        (
            "P7 future iat",
            "dpop_proof_iat",
            s.client
                .sign(&header, &with(&fresh(), "iat", json!(now + 300))),
        ),
        (
            "P9 wrong ath",
            "dpop_proof_ath",
            s.client.sign(
                &header,
                &with(&fresh(), "ath", json!(b64(sha256_digest(b"another")))),
            ),
        ),
        ("P10 alg none", "dpop_proof_alg", none),
        ("P11 HS256", "dpop_proof_alg", hs256),
        (
            "P12 private key in jwk",
            "dpop_proof_private_key",
            s.client.sign(&with(&header, "jwk", private_jwk), &fresh()),
        ),
        (
            "P15 typ JWT",
            "dpop_proof_typ",
            s.client.sign(&with(&header, "typ", json!("JWT")), &fresh()),
        ),
        (
            "P15 crit",
            "dpop_proof_malformed",
            s.client
                .sign(&with(&header, "crit", json!(["exp"])), &fresh()),
        ),
        (
            "P15 b64 false",
            "dpop_proof_malformed",
            s.client.sign(&with(&header, "b64", json!(false)), &fresh()),
        ),
        (
            "P15 RSA 1024",
            "dpop_proof_key",
            s.client.sign(
                &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": small_rsa}),
                &fresh(),
            ),
        ),
        ("P15 P-384 key for ES256", "dpop_proof_key", p384),
        (
            "P16 EdDSA off the allow-list",
            "dpop_proof_alg",
            ed.mint(
                &json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed_jwk}),
                &fresh(),
            ),
        ),
    ];
    // Each case from its own source address: rejection log lines are limited per source.
    let (logs, _guard) = auth_tests::CapturedLogs::start();
    for (i, (case, reason, proof)) in cases.into_iter().enumerate() {
        let before = logs.text().len();
        let from = [127, 0, 0, 2 + u8::try_from(i).unwrap()];
        let reply = s
            .whoami_from(from, &[("authorization", &dpop(&token)), ("dpop", &proof)])
            .await;
        assert_refused(&reply, 401, "invalid_token", case);
        let logged = logs.text()[before..].to_owned();
        assert!(
            logged.contains(&format!("reason=\"{reason}\"")),
            "{case}: {logged}"
        );
    }
    // The same claims with a good header pass: each case failed for its own change.
    let good = s.client.sign(&header, &fresh());
    let reply = s
        .whoami(&[("authorization", &dpop(&token)), ("dpop", &good)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// SECURITY.md P8.
#[tokio::test]
async fn a_proof_is_accepted_once() {
    let s = Setup::new("allowed").await;
    let token = s.bound();
    let proof = s.client.proof("GET", &s.htu("/whoami"), &token);
    let headers = [("authorization", dpop(&token)), ("dpop", proof)];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(s.whoami(&headers).await.status, 200);
    let mut reasons = Reasons::start();
    assert_refused(&s.whoami(&headers).await, 401, "invalid_token", "P8 replay");
    reasons.next("dpop_proof_replayed", "P8 replay");
}

/// The proof's method and URL are the request's: a POST to another path needs its own.
#[tokio::test]
async fn the_proof_names_the_requests_method_and_path() {
    let s = Setup::new("allowed").await;
    let token = s.bound();
    let proof = s.client.proof("DELETE", &s.htu("/whoami?x=1"), &token);
    let reply = send(
        s.addr,
        http::Method::DELETE,
        "/whoami?page=2",
        &[("authorization", &dpop(&token)), ("dpop", &proof)],
    )
    .await;
    // Authenticated (the demo routes no DELETE): the proof matched without the query.
    assert_eq!(reply.status, 405, "{reply:?}");
}

/// SECURITY.md P14.
#[tokio::test]
async fn an_issuer_that_requires_dpop_refuses_unbound_tokens() {
    let s = Setup::new("required").await;
    let mut reasons = Reasons::start();
    let unbound = s.unbound();
    let reply = s
        .whoami(&[("authorization", &format!("Bearer {unbound}"))])
        .await;
    assert_refused(&reply, 401, "invalid_token", "P14 bearer");
    reasons.next("dpop_binding_required", "P14 bearer");
    let proof = s.client.proof("GET", &s.htu("/whoami"), &unbound);
    let reply = s
        .whoami(&[("authorization", &dpop(&unbound)), ("dpop", &proof)])
        .await;
    assert_refused(&reply, 401, "invalid_token", "P14 dpop");
    reasons.next("dpop_binding_required", "P14 dpop");
    let token = s.bound();
    let proof = s.client.proof("GET", &s.htu("/whoami"), &token);
    let reply = s
        .whoami(&[("authorization", &dpop(&token)), ("dpop", &proof)])
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// SECURITY.md P17.
#[tokio::test]
async fn a_malformed_cnf_is_refused() {
    let s = Setup::new("allowed").await;
    let mut reasons = Reasons::start();
    for (cnf, reason) in [
        (json!("jkt"), "malformed_cnf"),
        (json!({"jkt": 5}), "malformed_cnf_jkt"),
        (json!({"jkt": ""}), "malformed_cnf_jkt"),
    ] {
        let now = Clock::system().now_unix();
        let token = s.idp.token_with(&s.idp_key, |claims| {
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
            claims["cnf"] = cnf.clone();
        });
        let reply = s
            .whoami(&[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_refused(&reply, 401, "invalid_token", &format!("P17 {cnf}"));
        reasons.next(reason, &format!("P17 {cnf}"));
    }
}

/// Behind a proxy, proofs name the public origin (`AUTH_DPOP_ORIGIN`), not the inner host.
/// SECURITY.md P5, P19.
#[tokio::test]
async fn the_configured_origin_is_what_proofs_name() {
    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let origin = [("AUTH_DPOP_ORIGIN", "https://API.example.com:443")];
    let addr = serve(auth_examples::router(layer(&idp, "allowed", &origin).await)).await;
    let client = Client::new("client");
    let token = token(&idp, &idp_key, Some(&client.jkt()));
    let public = client.proof("GET", "https://api.example.com/whoami", &token);
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &dpop(&token)), ("dpop", &public)],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let inner = client.proof("GET", &format!("https://{addr}/whoami"), &token);
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &dpop(&token)), ("dpop", &inner)],
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");

    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": "api"}]}).to_string();
    for bad in [
        "api.example.com",
        "https://api.example.com/base",
        "ftp://api.example.com",
    ] {
        let error = tower_auth::AuthConfig::from_lookup("", |name| match name {
            "OIDC_CONFIG" => Some(oidc.clone()),
            "AUTH_DPOP_ORIGIN" => Some(bad.into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(error.variable(), "AUTH_DPOP_ORIGIN", "{bad}");
    }
    let error = tower_auth::AuthConfig::from_lookup("", |name| {
        (name == "AUTH_DPOP_ORIGIN").then(|| "https://api.example.com".into())
    })
    .unwrap_err();
    assert_eq!(error.variable(), "AUTH_DPOP_ORIGIN");
}

/// gRPC: `authorization: DPoP ...` and `dpop` metadata; `htu` from `:scheme`, `:authority`
/// and the method path. SECURITY.md P1, P3.
#[tokio::test]
async fn grpc_takes_the_proof_from_metadata() {
    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let auth = layer(&idp, "allowed", &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = Client::new("client");
    let token = token(&idp, &idp_key, Some(&client.jkt()));
    let htu = format!("http://{addr}/demo.v1.Demo/WhoAmI");
    let call = |metadata: Vec<(&'static str, String)>| {
        let channel = channel.clone();
        async move {
            let mut request = tonic::Request::new(WhoAmIRequest {});
            for (name, value) in metadata {
                request
                    .metadata_mut()
                    .append(name, MetadataValue::try_from(value.as_str()).unwrap());
            }
            DemoClient::new(channel)
                .who_am_i(request)
                .await
                .map(|r| r.into_inner().subject)
                .map_err(|s| s.code())
        }
    };
    let ok = call(vec![
        ("authorization", dpop(&token)),
        ("dpop", client.proof("POST", &htu, &token)),
    ])
    .await;
    assert_eq!(ok, Ok("alice".to_owned()));
    let as_bearer = call(vec![("authorization", format!("Bearer {token}"))]).await;
    assert_eq!(as_bearer, Err(Code::Unauthenticated));
    let two = call(vec![
        ("authorization", dpop(&token)),
        ("dpop", client.proof("POST", &htu, &token)),
        ("dpop", client.proof("POST", &htu, &token)),
    ])
    .await;
    assert_eq!(two, Err(Code::Unauthenticated));
    let wrong_path = call(vec![
        ("authorization", dpop(&token)),
        (
            "dpop",
            client.proof(
                "POST",
                &format!("http://{addr}/demo.v1.Demo/AdminPing"),
                &token,
            ),
        ),
    ])
    .await;
    assert_eq!(wrong_path, Err(Code::Unauthenticated));
}

/// Our client: `BearerLayer` then `DpopLayer` with a `DpopKey`, over hyper (HTTP/1.1, whose
/// origin the server is told with `AUTH_DPOP_ORIGIN`) and a tonic channel (HTTP/2, whose
/// `:scheme` and `:authority` name it): a fresh proof per request, so repeated calls pass.
#[tokio::test]
async fn our_client_sends_a_fresh_proof_per_request_over_hyper_and_tonic() {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client as HyperClient;
    use hyper_util::rt::TokioExecutor;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_auth_client::{BearerLayer, DpopKey, DpopLayer, StaticToken};

    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = listener.local_addr().unwrap();
    let origin = format!("http://{http_addr}");
    let auth = layer(&idp, "allowed", &[("AUTH_DPOP_ORIGIN", &origin)]).await;
    let router = auth_examples::router(auth.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    // The gRPC server gets its own layer without the origin setting: h2 names it.
    let grpc_auth = layer(&idp, "allowed", &[]).await;
    tokio::spawn(serve_grpc(grpc_auth, grpc_listener, std::future::pending()));

    let key = DpopKey::generate().unwrap();
    let token = token(&idp, &idp_key, Some(key.thumbprint()));
    let bearer = BearerLayer::new(StaticToken::new(token.as_str()).unwrap())
        .allow_origin(&origin)
        .unwrap();
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http();
    let client = ServiceBuilder::new()
        .layer(bearer)
        .layer(DpopLayer::new(key.clone()))
        .service(hyper);
    for _ in 0..3 {
        let request = http::Request::get(format!("{origin}/whoami"))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // Without the DPoP layer the same token goes as Bearer and is refused (P1).
    let plain = ServiceBuilder::new()
        .layer(
            BearerLayer::new(StaticToken::new(token.as_str()).unwrap())
                .allow_origin(&origin)
                .unwrap(),
        )
        .service(HyperClient::builder(TokioExecutor::new()).build_http());
    let request = http::Request::get(format!("{origin}/whoami"))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(plain.oneshot(request).await.unwrap().status(), 401);

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(BearerLayer::new(StaticToken::new(token.as_str()).unwrap()))
        .layer(
            DpopLayer::new(key)
                .origin(&format!("http://{grpc_addr}"))
                .unwrap(),
        )
        .service(channel);
    let mut demo = DemoClient::new(channel);
    for _ in 0..3 {
        let reply = demo.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
        assert_eq!(reply.subject, "alice");
    }
}

/// Our token source: `ClientCredentials::dpop` sends a proof with the token request, retries
/// once with the server's nonce on `use_dpop_nonce` (RFC 9449 section 8), accepts
/// `token_type: DPoP`, and the token it gets, bound to the key, passes through `DpopLayer`.
#[tokio::test]
async fn client_credentials_get_a_bound_token_after_a_nonce_challenge() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::response::IntoResponse;
    use http_body_util::Full;
    use hyper_util::client::legacy::Client as HyperClient;
    use hyper_util::rt::TokioExecutor;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_auth_client::{BearerLayer, ClientCredentials, DpopKey, DpopLayer, TokenCache};

    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = Arc::new(TestIdp::start(&[&idp_key]).await);
    let token_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", token_listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU32::new(0));
    let endpoint = {
        let (idp, idp_key, requests, token_url) = (
            Arc::clone(&idp),
            idp_key.clone(),
            Arc::clone(&requests),
            token_url.clone(),
        );
        axum::Router::new().route(
            "/token",
            axum::routing::post(move |headers: http::HeaderMap| async move {
                requests.fetch_add(1, Ordering::Relaxed);
                let proof = headers["dpop"].to_str().unwrap().to_owned();
                let segment = |i: usize| -> Value {
                    let part = proof.split('.').nth(i).unwrap();
                    serde_json::from_slice(&auth_tests::idp::unb64(part)).unwrap()
                };
                let (header, claims) = (segment(0), segment(1));
                if claims["nonce"] != "n-1" {
                    return (
                        http::StatusCode::BAD_REQUEST,
                        [("dpop-nonce", "n-1")],
                        r#"{"error":"use_dpop_nonce"}"#.to_owned(),
                    )
                        .into_response();
                }
                assert_eq!(
                    (&claims["htm"], &claims["htu"]),
                    (&json!("POST"), &json!(token_url))
                );
                assert!(claims.get("ath").is_none());
                let jkt = jwk_thumbprint(header["jwk"].as_object().unwrap()).unwrap();
                let token = token(&idp, &idp_key, Some(&jkt));
                axum::Json(json!({"access_token": token, "token_type": "DPoP", "expires_in": 600}))
                    .into_response()
            }),
        )
    };
    tokio::spawn(async move { axum::serve(token_listener, endpoint).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let auth = layer(&idp, "required", &[("AUTH_DPOP_ORIGIN", &origin)]).await;
    let router = auth_examples::router(auth);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let key = DpopKey::generate().unwrap();
    let source = ClientCredentials::new(&token_url, "reporter", "s3cr3t-0b8d2a4e6c1f3a5b7d9e")
        .unwrap()
        .dpop(key.clone());
    let tokens = TokenCache::start(source).await.unwrap();
    assert_eq!(
        requests.load(Ordering::Relaxed),
        2,
        "one nonce challenge, one grant"
    );
    let client = ServiceBuilder::new()
        .layer(BearerLayer::new(tokens).allow_origin(&origin).unwrap())
        .layer(DpopLayer::new(key))
        .service(HyperClient::builder(TokioExecutor::new()).build_http());
    for _ in 0..2 {
        let request = http::Request::get(format!("{origin}/whoami"))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(client.clone().oneshot(request).await.unwrap().status(), 200);
    }
}

/// A token endpoint that asks for a nonce again and again gets one retry, not a loop.
/// SECURITY.md P20.
#[tokio::test]
async fn a_nonce_challenge_is_answered_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::response::IntoResponse;
    use tower_auth_client::{ClientCredentials, DpopKey, TokenSource};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&requests);
    let endpoint = axum::Router::new().route(
        "/token",
        axum::routing::post(move || async move {
            let n = counted.fetch_add(1, Ordering::Relaxed);
            (
                http::StatusCode::BAD_REQUEST,
                [("dpop-nonce", format!("n-{n}"))],
                r#"{"error":"use_dpop_nonce"}"#,
            )
                .into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
    let source = ClientCredentials::new(&token_url, "reporter", "s3cr3t-0b8d2a4e6c1f3a5b7d9e")
        .unwrap()
        .dpop(DpopKey::generate().unwrap());
    let error = source.fetch().await.unwrap_err();
    // An OAuth error the client has no name for.
    assert_eq!(error.reason(), "oauth_error");
    assert_eq!(requests.load(Ordering::Relaxed), 2);
}

const NONCE_KEY: &str = "c4f1a9e07b3d5c2e8f6a1b9d0e7c3f5a";

/// A layer whose issuer asks for server nonces (`"dpop_nonce": true`), with `extra` variables.
async fn nonce_layer(idp: &TestIdp, extra: &[(&str, &str)]) -> AuthLayer {
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": "api",
                                   "algorithms": ["RS256", "ES256"], "dpop_nonce": true}]})
    .to_string();
    let mut vars = vec![("OIDC_CONFIG", oidc.as_str())];
    vars.extend_from_slice(extra);
    config(&vars).build().await.unwrap()
}

/// A proof of `client` for GET `htu` with `token`, carrying `nonce` when given.
fn proof_with_nonce(client: &Client, htu: &str, token: &str, nonce: Option<&str>) -> String {
    let mut claims = Client::claims("GET", htu, token);
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    client.sign(&client.header(), &claims)
}

/// The `use_dpop_nonce` answer: 401, the DPoP challenge first and saying so, and a nonce.
fn assert_asks_for_nonce(reply: &auth_tests::Reply, case: &str) -> String {
    assert_eq!(reply.status, 401, "{case}: {reply:?}");
    let challenges: Vec<&str> = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges[0],
        r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="RS256 ES256""#,
        "{case}"
    );
    assert!(
        challenges[1..].iter().all(|c| !c.starts_with("DPoP ")),
        "{case}: {challenges:?}"
    );
    reply.header("dpop-nonce").expect("a nonce").to_owned()
}

/// Server nonces (RFC 9449 section 9): a proof without one, or with a forged one, is answered
/// with `use_dpop_nonce` and a fresh `DPoP-Nonce`; with it, accepted, also by a replica that
/// shares `AUTH_DPOP_NONCE_KEY` and by no replica that does not. Asking for a nonce is no
/// failed authentication (`AUTH_FAILURE_LIMIT`). SECURITY.md P21.
#[tokio::test]
async fn an_issuer_with_nonces_asks_for_one_and_replicas_sharing_the_key_agree() {
    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let shared = [
        ("AUTH_DPOP_NONCE_KEY", NONCE_KEY),
        ("AUTH_FAILURE_LIMIT", "2/60"),
    ];
    let a =
        auth_tests::serve_with_peers(auth_examples::router(nonce_layer(&idp, &shared).await)).await;
    let b = serve(auth_examples::router(nonce_layer(&idp, &shared).await)).await;
    let other = serve(auth_examples::router(nonce_layer(&idp, &[]).await)).await;
    let client = Client::new("client");
    let token = token(&idp, &idp_key, Some(&client.jkt()));
    let htu = |addr: SocketAddr| format!("https://{addr}/whoami");
    let call = |addr: SocketAddr, proof: String| {
        let auth = dpop(&token);
        async move {
            get(
                addr,
                "/whoami",
                &[("authorization", &auth), ("dpop", &proof)],
            )
            .await
        }
    };
    // More nonce round trips than the failure limit allows failures: none is counted.
    let mut nonce = String::new();
    for i in 0..4 {
        let reply = call(a, proof_with_nonce(&client, &htu(a), &token, None)).await;
        nonce = assert_asks_for_nonce(&reply, &format!("no nonce {i}"));
    }
    let reply = call(a, proof_with_nonce(&client, &htu(a), &token, Some(&nonce))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = call(b, proof_with_nonce(&client, &htu(b), &token, Some(&nonce))).await;
    assert_eq!(
        reply.status, 200,
        "the replica with the same key: {reply:?}"
    );
    let reply = call(
        other,
        proof_with_nonce(&client, &htu(other), &token, Some(&nonce)),
    )
    .await;
    let fresh = assert_asks_for_nonce(&reply, "a replica with its own key");
    assert_ne!(fresh, nonce);
    let (slot, mac) = nonce.split_once('.').unwrap();
    let forged = format!("{}.{mac}", slot.parse::<u64>().unwrap() - 1);
    let reply = call(a, proof_with_nonce(&client, &htu(a), &token, Some(&forged))).await;
    assert_asks_for_nonce(&reply, "forged");
    // A weak key refuses start-up, naming the variable; so does one without OIDC_CONFIG.
    let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": "api"}]}).to_string();
    for (vars, variable) in [
        (
            vec![
                ("OIDC_CONFIG", oidc.clone()),
                ("AUTH_DPOP_NONCE_KEY", "x".repeat(40)),
            ],
            "AUTH_DPOP_NONCE_KEY",
        ),
        (
            vec![("AUTH_DPOP_NONCE_KEY", NONCE_KEY.to_owned())],
            "AUTH_DPOP_NONCE_KEY",
        ),
    ] {
        let error = tower_auth::AuthConfig::from_lookup("", |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap_err();
        assert_eq!(error.variable(), variable, "{error}");
        assert!(!error.to_string().contains(NONCE_KEY), "{error}");
    }
}

/// gRPC: the nonce comes back as `dpop-nonce` metadata beside UNAUTHENTICATED, with the
/// `use_dpop_nonce` challenge; a proof with it passes. SECURITY.md P21.
#[tokio::test]
async fn grpc_gets_the_nonce_in_metadata() {
    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let auth = nonce_layer(&idp, &[("AUTH_DPOP_NONCE_KEY", NONCE_KEY)]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_grpc(auth, listener, std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = Client::new("client");
    let token = token(&idp, &idp_key, Some(&client.jkt()));
    let htu = format!("http://{addr}/demo.v1.Demo/WhoAmI");
    let call = |nonce: Option<String>| {
        let mut claims = Client::claims("POST", &htu, &token);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let proof = client.sign(&client.header(), &claims);
        let mut request = tonic::Request::new(WhoAmIRequest {});
        let metadata = request.metadata_mut();
        metadata.insert("authorization", dpop(&token).parse().unwrap());
        metadata.insert("dpop", proof.parse().unwrap());
        let mut demo = DemoClient::new(channel.clone());
        async move { demo.who_am_i(request).await }
    };
    let status = call(None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let nonce = status
        .metadata()
        .get("dpop-nonce")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        status
            .metadata()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(r#"DPoP error="use_dpop_nonce""#),
        "{:?}",
        status.metadata()
    );
    let reply = call(Some(nonce.to_owned())).await.unwrap().into_inner();
    assert_eq!(reply.subject, "alice");
}

/// Our client against an issuer with nonces: `DpopLayer::retry_nonce` sends the refused
/// request once more with the server's nonce and remembers it; without it, the first request
/// gets the challenge and the next one carries the remembered nonce. Over tonic the nonce
/// comes from metadata the same way.
#[tokio::test]
async fn our_client_answers_a_nonce_challenge_and_remembers_the_nonce() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use http_body_util::Full;
    use hyper_util::client::legacy::Client as HyperClient;
    use hyper_util::rt::TokioExecutor;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_auth_client::{BearerLayer, DpopKey, DpopLayer, StaticToken};

    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let auth = nonce_layer(&idp, &[("AUTH_DPOP_ORIGIN", &origin)]).await;
    let router = auth_examples::router(auth);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let key = DpopKey::generate().unwrap();
    let token = token(&idp, &idp_key, Some(key.thumbprint()));
    let sent = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&sent);
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http();
    let counting = tower::service_fn(move |request: http::Request<Full<bytes::Bytes>>| {
        counted.fetch_add(1, Ordering::Relaxed);
        hyper.request(request)
    });
    let bearer = || {
        BearerLayer::new(StaticToken::new(token.as_str()).unwrap())
            .allow_origin(&origin)
            .unwrap()
    };
    let get_whoami = || {
        http::Request::get(format!("{origin}/whoami"))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let retrying = ServiceBuilder::new()
        .layer(bearer())
        .layer(DpopLayer::new(key.clone()).retry_nonce())
        .service(counting.clone());
    let response = retrying.clone().oneshot(get_whoami()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sent.load(Ordering::Relaxed), 2, "one challenge, one retry");
    let response = retrying.clone().oneshot(get_whoami()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(sent.load(Ordering::Relaxed), 3, "the nonce was remembered");

    let plain = ServiceBuilder::new()
        .layer(bearer())
        .layer(DpopLayer::new(key.clone()))
        .service(counting);
    let first = plain.clone().oneshot(get_whoami()).await.unwrap();
    assert_eq!(first.status(), 401);
    assert!(first.headers().contains_key("dpop-nonce"));
    let second = plain.clone().oneshot(get_whoami()).await.unwrap();
    assert_eq!(second.status(), 200);

    let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc_listener.local_addr().unwrap();
    let grpc_auth = nonce_layer(&idp, &[]).await;
    tokio::spawn(serve_grpc(grpc_auth, grpc_listener, std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(BearerLayer::new(StaticToken::new(token.as_str()).unwrap()))
        .layer(
            DpopLayer::new(key)
                .origin(&format!("http://{grpc_addr}"))
                .unwrap(),
        )
        .service(channel);
    let mut demo = DemoClient::new(channel);
    let first = demo.who_am_i(WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(first.code(), Code::Unauthenticated);
    let reply = demo.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(reply.subject, "alice");
}

/// Under axum's `Router::nest` the layer sees the path without its prefix; the proof names
/// the one the client sent (`OriginalUri`), and a proof for the stripped path is refused.
/// SECURITY.md P23.
#[tokio::test]
async fn under_a_nested_router_the_proof_names_the_clients_path() {
    let idp_key = SigningKey::rsa("rsa-1", 0);
    let idp = TestIdp::start(&[&idp_key]).await;
    let inner = auth_examples::router(layer(&idp, "allowed", &[]).await);
    let addr = serve(axum::Router::new().nest("/api", inner)).await;
    let client = Client::new("client");
    let token = token(&idp, &idp_key, Some(&client.jkt()));
    let call = |path: &str| {
        let proof = client.proof("GET", &format!("https://{addr}{path}"), &token);
        let auth = dpop(&token);
        async move {
            get(
                addr,
                "/api/whoami",
                &[("authorization", &auth), ("dpop", &proof)],
            )
            .await
        }
    };
    let reply = call("/api/whoami").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut reasons = Reasons::start();
    let reply = call("/whoami").await;
    assert_refused(&reply, 401, "invalid_token", "P23 the stripped path");
    reasons.next("dpop_proof_htu", "P23 the stripped path");
}
