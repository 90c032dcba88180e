//! Revocations shared by replicas through a real Redis (`AUTH_REDIS_URL`, feature `redis`):
//! in-process replicas built from environment variables, each behind its own server on
//! loopback, and `redis-server` started by the test on a free loopback port (killed and
//! restarted to make outages).
//!
//! Needs `redis-server` (Debian package `redis-server`): `tests/interop/run` installs it;
//! by hand, `apt-get install redis-server` and
//! `cargo test -p auth-tests --features interop --test interop_redis`.
#![cfg(feature = "interop")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use auth_tests::redis_server::RedisServer;
use auth_tests::{CapturedLogs, KEY_A, Reply, config, get, jump, send_body};
use axum::Router;
use axum::routing::get as get_route;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::Method;
use tower_auth::{AuthLayer, Identity};
use tower_auth_core::sha256_digest;

const HMAC_SECRET: &str = "Pq4Wz8Rk2Tn6Xb1Mc9Hd3Jv7Sf5Gl0Ya-shared-revocation";
const AGENT_SECRET: &str = "registration-secret-of-the-metrics-agent";
/// Redis's password: in the URL, and never in a log line.
const REDIS_PASSWORD: &str = "redis-Pa55-never-logged";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn clients() -> String {
    let digest = hex::encode(sha256_digest(AGENT_SECRET.as_bytes()));
    format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["metrics"]}}]"#)
}

/// A replica: the layer from the environment with `AUTH_REDIS_URL` and these variables,
/// served with `/whoami` and both endpoints on loopback.
struct Replica {
    addr: SocketAddr,
    layer: AuthLayer,
}

impl Replica {
    async fn start(redis: &RedisServer, extra: &[(&str, &str)]) -> Self {
        let (clients, keys, url) = (
            clients(),
            format!(r#"[{{"name":"ops-admin","key":"{KEY_A}","roles":["admin"]}}]"#),
            redis.url(),
        );
        let mut vars = vec![
            ("HMAC_SECRET", HMAC_SECRET),
            ("AUTH_TOKEN_CLIENTS", clients.as_str()),
            ("API_KEYS", keys.as_str()),
            ("AUTH_REDIS_URL", url.as_str()),
        ];
        vars.extend_from_slice(extra);
        let layer = config(&vars).build().await.unwrap();
        let router = Router::new()
            .route(
                "/whoami",
                get_route(|identity: Identity| async move { identity.subject().to_owned() }),
            )
            .merge(layer.exchange_endpoint().unwrap().clone().router())
            .merge(layer.revocation_endpoint().unwrap().clone().router())
            .layer(layer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, layer }
    }

    fn connected(&self) -> bool {
        self.layer.redis_sync().unwrap().is_connected()
    }

    fn pending(&self) -> usize {
        self.layer.redis_sync().unwrap().pending()
    }

    async fn token(&self) -> String {
        let reply = send_body(
            self.addr,
            Method::POST,
            "/auth/token",
            &[("content-type", "application/json")],
            &format!(r#"{{"client_id":"agent","credential":"{AGENT_SECRET}"}}"#),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn whoami(&self, token: &str) -> Reply {
        get(
            self.addr,
            "/whoami",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    async fn status(&self, token: &str) -> u16 {
        self.whoami(token).await.status
    }

    /// Revokes `token` at `POST /auth/revoke` as the client it was issued to.
    async fn revoke(&self, token: &str) {
        let basic = format!("Basic {}", STANDARD.encode(format!("agent:{AGENT_SECRET}")));
        let reply = send_body(
            self.addr,
            Method::POST,
            "/auth/revoke",
            &[FORM, ("authorization", &basic)],
            &format!("token={token}"),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

/// Polls `done` until it holds, failing after `within`; returns how long it took.
async fn within<F: AsyncFnMut() -> bool>(within: Duration, what: &str, mut done: F) -> Duration {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// SECURITY.md S1, S2, S7.
#[tokio::test]
async fn a_token_revoked_on_one_replica_is_refused_by_the_others_within_a_second() {
    let (logs, _guard) = CapturedLogs::start();
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let replicas = [
        Replica::start(&redis, &[]).await,
        Replica::start(&redis, &[]).await,
        Replica::start(&redis, &[]).await,
    ];
    assert!(replicas.iter().all(Replica::connected));
    let token = replicas[0].token().await;
    let other = replicas[0].token().await;
    for replica in &replicas {
        assert_eq!(replica.status(&token).await, 200);
    }
    replicas[0].revoke(&token).await;
    assert_eq!(
        replicas[0].status(&token).await,
        401,
        "refused at once here"
    );
    for (i, replica) in replicas.iter().enumerate().skip(1) {
        let delay = within(
            Duration::from_secs(1),
            "revocation reaches the replica",
            async || replica.status(&token).await == 401,
        )
        .await;
        println!("revocation reached replica {} after {delay:?}", i + 1);
        let reply = replica.whoami(&token).await;
        assert_eq!(reply.body, r#"{"error":"invalid_token"}"#);
    }
    for replica in &replicas {
        assert_eq!(replica.status(&other).await, 200, "only that token");
    }
    // A replica started now loads it from Redis before its first request.
    let late = Replica::start(&redis, &[]).await;
    assert_eq!(late.status(&token).await, 401);
    assert_eq!(late.status(&other).await, 200);
    let text = logs.text();
    assert!(
        text.contains("role token revoked on another replica"),
        "{text}"
    );
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
}

/// SECURITY.md S3, S6, S7.
#[tokio::test]
async fn start_up_with_redis_down_is_bounded_and_serves_then_catches_up() {
    let (logs, _guard) = CapturedLogs::start();
    let mut redis = RedisServer::stopped(REDIS_PASSWORD);
    let started = Instant::now();
    let replica = Replica::start(&redis, &[]).await;
    let took = started.elapsed();
    println!("start-up with Redis down took {took:?}");
    assert!(
        took < tower_auth_hmac::REDIS_START_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(!replica.connected());
    let token = replica.token().await;
    assert_eq!(
        replica.status(&token).await,
        200,
        "served from the local list"
    );
    // Revoked while Redis has never answered: queued.
    replica.revoke(&token).await;
    assert_eq!(replica.status(&token).await, 401);
    assert_eq!(replica.pending(), 1);

    redis.start().await;
    within(
        Duration::from_secs(10),
        "the replica connects",
        async || replica.connected() && replica.pending() == 0,
    )
    .await;
    let second = Replica::start(&redis, &[]).await;
    assert_eq!(
        second.status(&token).await,
        401,
        "the queued revocation was written"
    );
    let text = logs.text();
    assert!(text.contains("redis_unavailable"), "{text}");
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
}

/// SECURITY.md S2, G11: `build_blocking` (what `AuthLayer::from_env` calls) inside a
/// multi-threaded runtime loads the revocations too; outside one it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_blocking_shares_revocations_inside_a_multi_threaded_runtime() {
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let first = Replica::start(&redis, &[]).await;
    let token = first.token().await;
    first.revoke(&token).await;
    let url = redis.url();
    let vars = [
        ("HMAC_SECRET", HMAC_SECRET),
        ("AUTH_REDIS_URL", url.as_str()),
    ];
    let layer = config(&vars).build_blocking().unwrap();
    let sync = layer.redis_sync().unwrap();
    assert!(sync.is_connected());
    assert_eq!(sync.pending(), 0);
    let error = std::thread::scope(|scope| {
        scope
            .spawn(|| config(&vars).build_blocking().unwrap_err())
            .join()
            .unwrap()
    });
    assert_eq!(error.variable(), "AUTH_REDIS_URL");
    assert!(!error.to_string().contains(REDIS_PASSWORD), "{error}");
    // The layer built here refuses the token revoked on the other replica.
    let checked = Router::new()
        .route("/whoami", get_route(|| async { "ok" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, checked).await.unwrap() });
    let reply = get(
        addr,
        "/whoami",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

/// SECURITY.md S4, S5, S6, S7.
#[tokio::test]
async fn redis_lost_closed_refuses_after_max_stale_open_serves_and_both_recover() {
    let (logs, _guard) = CapturedLogs::start();
    let mut redis = RedisServer::started(REDIS_PASSWORD).await;
    let stale = ("AUTH_REDIS_MAX_STALE_SECS", "5");
    let closed = Replica::start(&redis, &[stale]).await;
    let open = Replica::start(&redis, &[stale, ("AUTH_REDIS_FAILURE", "open")]).await;
    let (before, token, during) = (
        closed.token().await,
        closed.token().await,
        open.token().await,
    );
    closed.revoke(&before).await;
    within(
        Duration::from_secs(1),
        "revocation reaches open",
        async || open.status(&before).await == 401,
    )
    .await;

    redis.kill();
    within(Duration::from_secs(5), "both notice", async || {
        !closed.connected() && !open.connected()
    })
    .await;
    // Within the max staleness the local lists serve.
    assert_eq!(closed.status(&token).await, 200);
    assert_eq!(open.status(&token).await, 200);
    assert_eq!(closed.status(&before).await, 401);

    // Past it (tokio's clock, moved), `closed` answers 503 for role tokens only.
    jump(Duration::from_secs(6)).await;
    let reply = closed.whoami(&token).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(reply.body, r#"{"error":"temporarily_unavailable"}"#);
    let by_key = get(closed.addr, "/whoami", &[("x-api-key", KEY_A)]).await;
    assert_eq!(by_key.status, 200, "API keys do not depend on Redis");
    // A token of ours with another token's signature fails anyway: 401, not 503.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let (_, signature) = before.rsplit_once('.').unwrap();
    let forged = closed.whoami(&format!("{signed}.{signature}")).await;
    assert_eq!(forged.status, 401, "{forged:?}");
    assert_eq!(forged.body, r#"{"error":"invalid_token"}"#);
    // `open` keeps serving, and says so.
    assert_eq!(open.status(&token).await, 200);
    assert_eq!(open.status(&before).await, 401);
    within(
        Duration::from_secs(10),
        "the stale event of open",
        async || logs.text().contains("failure=\"open\""),
    )
    .await;

    // A revocation during the outage: in force here at once, queued for the others.
    open.revoke(&during).await;
    assert_eq!(open.status(&during).await, 401);
    assert_eq!(open.pending(), 1);

    // Redis comes back empty (it keeps nothing on disk).
    redis.start().await;
    within(Duration::from_secs(15), "both reconnect", async || {
        closed.connected() && open.connected()
    })
    .await;
    assert_eq!(closed.status(&token).await, 200, "closed recovers");
    let delay = within(
        Duration::from_secs(2),
        "the outage's revocation",
        async || closed.status(&during).await == 401,
    )
    .await;
    println!(
        "revocation made during the outage reached the other replica {delay:?} after reconnecting"
    );
    assert_eq!(open.pending(), 0);
    // What was revoked before the outage was written back to the emptied Redis.
    let later = Replica::start(&redis, &[]).await;
    within(
        Duration::from_secs(2),
        "the earlier revocation, rewritten",
        async || later.status(&before).await == 401,
    )
    .await;
    assert_eq!(later.status(&during).await, 401);
    assert_eq!(later.status(&token).await, 200);
    let text = logs.text();
    assert!(text.contains("failure=\"closed\""), "{text}");
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
}

/// SECURITY.md S8.
#[tokio::test]
async fn entries_in_redis_expire_and_malformed_ones_are_skipped() {
    let (logs, _guard) = CapturedLogs::start();
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let first = Replica::start(&redis, &[]).await;
    let (set, stream) = (
        "tower-auth:auth-hmac:revoked",
        "tower-auth:auth-hmac:revocations",
    );
    // Written by something else: an expired entry, members and stream entries that are not
    // revocations of this format.
    redis.cli(&["ZADD", set, "1000", r#"["expired-jti","old"]"#]);
    redis.cli(&["ZADD", set, "4102444800", "not json"]);
    redis.cli(&["ZADD", set, "4102444800.5", r#"["half","second"]"#]);
    redis.cli(&["XADD", stream, "*", "jti", "no-sub-no-until"]);
    redis.cli(&["XADD", stream, "*", "jti", "j", "sub", "s", "until", "soon"]);
    let second = Replica::start(&redis, &[]).await;
    assert!(second.connected(), "garbage does not break the load");
    let token = first.token().await;
    first.revoke(&token).await;
    within(
        Duration::from_secs(1),
        "the real revocation after the garbage",
        async || second.status(&token).await == 401,
    )
    .await;
    // Each write drops the entries whose tokens have expired.
    within(
        Duration::from_secs(1),
        "the expired entry is dropped",
        async || {
            !redis
                .cli(&["ZRANGE", set, "0", "-1"])
                .contains("expired-jti")
        },
    )
    .await;
    assert_eq!(
        redis.cli(&["ZCARD", set]),
        "3",
        "the revocation and two foreign members"
    );
    let text = logs.text();
    assert!(text.contains("redis_malformed_revocations"), "{text}");
}

/// SECURITY.md S9.
#[tokio::test]
async fn a_revocation_file_and_redis_feed_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.json");
    let file = ("AUTH_REVOCATION_FILE", path.to_str().unwrap());
    let old_redis = RedisServer::started(REDIS_PASSWORD).await;
    let before = Replica::start(&old_redis, &[file]).await;
    let token = before.token().await;
    before.revoke(&token).await;
    assert!(std::fs::read_to_string(&path).unwrap().contains("\"jti\""));
    drop(before);

    // Another Redis that never heard of it: the replica with the file writes it there.
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let with_file = Replica::start(&redis, &[file]).await;
    let without = Replica::start(&redis, &[]).await;
    within(
        Duration::from_secs(1),
        "the file's revocation reaches Redis",
        async || without.status(&token).await == 401,
    )
    .await;
    // And what comes from Redis is written to the file.
    let other = without.token().await;
    let jti = {
        let payload = other.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    without.revoke(&other).await;
    within(Duration::from_secs(1), "written to the file", async || {
        with_file.status(&other).await == 401
            && std::fs::read_to_string(&path).unwrap().contains(&jti)
    })
    .await;
}

/// SECURITY.md S10, S15: an admin cuts off a subject on one replica; every other replica
/// refuses its tokens within a second (cached or not), a replica started later loads the
/// cut-off, and a token issued in a later second works everywhere.
#[tokio::test]
async fn a_subject_cut_off_on_one_replica_is_refused_by_the_others_within_a_second() {
    let (logs, _guard) = CapturedLogs::start();
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    // No clock leeway: a token of the second after the cut-off works (SECURITY.md S19).
    let exact = [("AUTH_LEEWAY_SECS", "0")];
    let replicas = [
        Replica::start(&redis, &exact).await,
        Replica::start(&redis, &exact).await,
    ];
    assert!(replicas.iter().all(Replica::connected));
    let token = replicas[0].token().await;
    for replica in &replicas {
        assert_eq!(replica.status(&token).await, 200);
    }
    let reply = send_body(
        replicas[0].addr,
        Method::POST,
        "/auth/revoke",
        &[FORM, ("x-api-key", KEY_A)],
        "subject=agent",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(replicas[0].status(&token).await, 401, "at once here");
    let delay = within(
        Duration::from_secs(1),
        "the cut-off reaches the other replica",
        async || replicas[1].status(&token).await == 401,
    )
    .await;
    println!("subject cut-off reached replica 2 after {delay:?}");
    let late = Replica::start(&redis, &exact).await;
    assert_eq!(late.status(&token).await, 401, "loaded at start");
    // The cut-off covers its own second: a token issued in the next one works everywhere.
    let mut fresh = String::new();
    within(
        Duration::from_secs(3),
        "a token of a later second",
        async || {
            fresh = replicas[1].token().await;
            replicas[1].status(&fresh).await == 200
        },
    )
    .await;
    for replica in replicas.iter().chain([&late]) {
        assert_eq!(replica.status(&fresh).await, 200);
        assert_eq!(replica.status(&token).await, 401);
    }
    let members = redis.cli(&["ZRANGE", "tower-auth:auth-hmac:cutoffs", "0", "-1"]);
    assert_eq!(members, r#"["hmac","auth-hmac","agent"]"#);
    let text = logs.text();
    assert!(
        text.contains("subject cut off on another replica"),
        "{text}"
    );
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
}

/// A window length (one to two hours) whose current epoch-aligned window is at least a
/// quarter gone and ends in more than a quarter: a test of shared counts never straddles two.
fn mid_window() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (3_600..7_200)
        .find(|w| (w / 4..w * 3 / 4).contains(&(now % w)))
        .unwrap()
}

/// SECURITY.md S17, S18: `AUTH_FAILURE_LIMIT` holds for the failures of every replica
/// together; each replica alone saw fewer than the limit.
#[tokio::test]
async fn the_failure_limit_counts_the_failures_of_every_replica() {
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let limit = format!("4/{}", mid_window());
    let vars = [("AUTH_FAILURE_LIMIT", limit.as_str())];
    let replicas = [
        Replica::start(&redis, &vars).await,
        Replica::start(&redis, &vars).await,
        Replica::start(&redis, &vars).await,
    ];
    let token = replicas[0].token().await;
    // Three failures, one on each replica: under the limit everywhere.
    for replica in &replicas {
        assert_eq!(replica.status("not-a-role-token").await, 401);
    }
    for replica in &replicas {
        assert_eq!(replica.status(&token).await, 200, "3 of 4");
    }
    // The fourth (the second on replica 1): the sum is at the limit.
    assert_eq!(replicas[0].status("not-a-role-token").await, 401);
    for (i, replica) in replicas.iter().enumerate() {
        let delay = within(
            Duration::from_secs(1),
            "the shared count reaches the replica",
            async || replica.status(&token).await == 429,
        )
        .await;
        println!("failure limit reached replica {} after {delay:?}", i + 1);
    }
    // Counted in Redis, under the issuer's namespace: 4 (good tokens count nothing).
    let keys = redis.cli(&["--scan", "--pattern", "tower-auth:*:fail:source:*"]);
    let mut keys = keys.lines();
    let key = keys.next().expect("one shared count");
    assert_eq!(keys.next(), None);
    assert_eq!(redis.cli(&["GET", key]), "4");
    let ttl: u64 = redis.cli(&["TTL", key]).parse().unwrap();
    assert!(ttl > 0, "it expires");
}

/// SECURITY.md S17, Y7: a source that used up `AUTH_FAILURE_LIMIT` on one replica is
/// refused by another within a read-back round of its first request there, though that
/// replica never counted a failure of it (before, a replica read back only the sums of the
/// sources it had counted: L guesses on one replica, then one on each other, L + N - 1).
#[tokio::test]
async fn a_source_over_its_limit_on_one_replica_is_refused_by_one_it_never_failed_on() {
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let limit = format!("4/{}", mid_window());
    let vars = [("AUTH_FAILURE_LIMIT", limit.as_str())];
    let replicas = [
        Replica::start(&redis, &vars).await,
        Replica::start(&redis, &vars).await,
    ];
    let token = replicas[0].token().await;
    for _ in 0..4 {
        assert_eq!(replicas[0].status("not-a-role-token").await, 401);
    }
    assert_eq!(
        replicas[0].status(&token).await,
        429,
        "the limit, on replica 1"
    );
    within(
        Duration::from_secs(1),
        "replica 1 writes the failures",
        async || {
            let keys = redis.cli(&["--scan", "--pattern", "tower-auth:*:fail:source:*"]);
            keys.lines()
                .next()
                .is_some_and(|key| redis.cli(&["GET", key]) == "4")
        },
    )
    .await;
    // What remains (S17): replica 2 checks the source's first request before it has read
    // the source's sum.
    assert_eq!(replicas[1].status(&token).await, 200, "the first request");
    let delay = within(
        Duration::from_secs(1),
        "replica 2 reads the sum of a source it never counted",
        async || replicas[1].status(&token).await == 429,
    )
    .await;
    println!("a source over its limit on replica 1 was refused by replica 2 after {delay:?}");
    assert_eq!(
        replicas[1].status("not-a-role-token").await,
        429,
        "no guess on replica 2"
    );
}

/// SECURITY.md S17: the token exchange's lock-out of a (client, source) pair holds for the
/// wrong secrets sent to every replica together.
#[tokio::test]
async fn the_exchange_lock_out_counts_the_failures_of_every_replica() {
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let settings = tower_auth_hmac::RedisSettings::new(&redis.url()).unwrap();
    let config = tower_auth_hmac::HmacConfig::builder(HMAC_SECRET)
        .build()
        .unwrap();
    let clients = tower_auth_hmac::TokenClients::parse("clients", &clients()).unwrap();
    let window = Duration::from_secs(mid_window());
    let mut servers = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let endpoint = tower_auth_hmac::ExchangeEndpoint::builder(config.clone(), clients.clone())
            .rate_limit(5, window)
            .build()
            .unwrap();
        counts.push(endpoint.share_limits(&settings, "exchange-test").unwrap());
        assert_eq!(
            endpoint
                .share_limits(&settings, "exchange-test")
                .unwrap_err(),
            tower_auth_hmac::ShareError::AlreadyShared
        );
        servers.push(auth_tests::serve_with_peers(endpoint.router()).await);
    }
    let exchange = async |addr: SocketAddr, secret: &str| {
        send_body(
            addr,
            Method::POST,
            "/auth/token",
            &[("content-type", "application/json")],
            &format!(r#"{{"client_id":"agent","credential":"{secret}"}}"#),
        )
        .await
        .status
    };
    // Four wrong secrets over three replicas, each written to Redis before the next.
    for i in 0..4 {
        assert_eq!(exchange(servers[i % 3], "wrong-secret").await, 401);
        within(
            Duration::from_secs(1),
            "the failure is written",
            async || counts[i % 3].pending() == 0,
        )
        .await;
    }
    for addr in &servers {
        assert_eq!(exchange(*addr, AGENT_SECRET).await, 200, "4 of 5");
    }
    assert_eq!(exchange(servers[1], "wrong-secret").await, 401);
    for (i, addr) in servers.iter().enumerate() {
        let delay = within(
            Duration::from_secs(1),
            "the lock-out reaches the replica",
            async || exchange(*addr, AGENT_SECRET).await == 429,
        )
        .await;
        println!(
            "exchange lock-out reached replica {} after {delay:?}",
            i + 1
        );
    }
    assert!(
        counts
            .iter()
            .all(tower_auth_hmac::SharedCounts::is_connected)
    );
}

/// SECURITY.md S19, S20: cutting a subject off again moves its one member in Redis (scored by
/// when it is dropped, which gives its `before`), and a replica that loads it refuses up to
/// the leeway after the cut-off's second.
#[tokio::test]
async fn cutting_a_subject_off_again_moves_its_one_member_in_redis() {
    use tower_auth_core::{AuthMethod, Clock};
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let settings = tower_auth_hmac::RedisSettings::new(&redis.url()).unwrap();
    let clock = Clock::manual(1_700_000_000);
    let list = tower_auth_hmac::RevocationList::new(clock.clone());
    let sync = list
        .share_through_redis(settings.clone(), "recut")
        .await
        .unwrap();
    let method = AuthMethod::Hmac {
        issuer: "auth-hmac".into(),
    };
    for _ in 0..2 {
        list.revoke_subject(&method, "alice").unwrap();
        within(
            Duration::from_secs(1),
            "the cut-off is written",
            async || sync.pending() == 0,
        )
        .await;
        clock.advance(Duration::from_secs(100));
    }
    assert_eq!(redis.cli(&["ZCARD", "recut:cutoffs"]), "1");
    let keep = tower_auth_hmac::SUBJECT_CUTOFF_KEEP.as_secs();
    // The second cut-off, at 1_700_000_100, with the default leeway of 60 s.
    let before = 1_700_000_100 + 1 + 60;
    assert_eq!(
        redis.cli(&["ZSCORE", "recut:cutoffs", r#"["hmac","auth-hmac","alice"]"#]),
        (before + keep).to_string()
    );
    let replica = tower_auth_hmac::RevocationList::new(Clock::manual(1_700_000_300));
    let _other = replica
        .share_through_redis(settings, "recut")
        .await
        .unwrap();
    let issued = |iat: u64| {
        tower_auth_core::Identity::builder("alice", method.clone())
            .issued_at(std::time::UNIX_EPOCH + Duration::from_secs(iat))
            .build()
    };
    assert!(replica.is_cut_off(&issued(before - 1)));
    assert!(!replica.is_cut_off(&issued(before)));
}

/// Issue 13's benchmark of propagation (BENCHMARKS.md): the delay from a revocation on one
/// replica to its refusal by another, over 200 revocations through a real `redis-server` on
/// loopback, p50 and p99 printed; each must be under the issue's second (SECURITY.md S1).
/// `cargo test -p auth-tests --features interop --test interop_redis -- --nocapture propagation`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_propagation_delay_over_200_revocations() {
    use tower_auth_core::Clock;
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let settings = tower_auth_hmac::RedisSettings::new(&redis.url()).unwrap();
    let (one, two) = (
        tower_auth_hmac::RevocationList::new(Clock::system()),
        tower_auth_hmac::RevocationList::new(Clock::system()),
    );
    let _one = one
        .share_through_redis(settings.clone(), "propagation")
        .await
        .unwrap();
    let _two = two
        .share_through_redis(settings, "propagation")
        .await
        .unwrap();
    let until = Clock::system().now_unix() + 3_600;
    let mut delays = Vec::with_capacity(200);
    for i in 0..200 {
        let jti = format!("jti-{i}");
        let start = Instant::now();
        one.revoke(&jti, "subject", until).unwrap();
        while !two.is_revoked(&jti) {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{jti} not within 1 s"
            );
            tokio::task::yield_now().await;
        }
        delays.push(start.elapsed());
    }
    delays.sort_unstable();
    let (p50, p99, max) = (delays[99], delays[197], delays[199]);
    println!("revocation propagation over 200: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(p99 < Duration::from_secs(1));
}

/// SECURITY.md S21, S3, S7: replicas share revocations over `rediss://`, trusting the CA
/// of `AUTH_REDIS_CA_FILE`; a replica that trusts another CA (or only the platform's store)
/// never talks to that server and, past the max staleness, answers 503 as when Redis is down.
#[tokio::test]
async fn revocations_are_shared_over_rediss_and_a_server_of_another_ca_is_refused() {
    let (logs, _guard) = CapturedLogs::start();
    let pki = auth_tests::pki::Pki::new();
    let (cert, key) = pki.server_files();
    let redis = RedisServer::started_tls(REDIS_PASSWORD, &cert, &key, &pki.path("ca.pem")).await;
    let url = redis.url();
    let ca = pki.path("ca.pem");
    let tls = [
        ("AUTH_REDIS_URL", url.as_str()),
        ("AUTH_REDIS_CA_FILE", ca.as_str()),
    ];
    let first = Replica::start(&redis, &tls).await;
    let second = Replica::start(&redis, &tls).await;
    assert!(first.connected() && second.connected());
    let token = first.token().await;
    let other = first.token().await;
    assert_eq!(second.status(&token).await, 200);
    first.revoke(&token).await;
    let delay = within(
        Duration::from_secs(1),
        "revocation reaches the replica over TLS",
        async || second.status(&token).await == 401,
    )
    .await;
    println!("revocation reached the other replica over rediss:// after {delay:?}");
    assert_eq!(second.status(&other).await, 200);

    let stranger = auth_tests::pki::Pki::new();
    let wrong_ca = stranger.path("ca.pem");
    for extra in [
        vec![("AUTH_REDIS_CA_FILE", wrong_ca.as_str())],
        // The platform's store does not know the test's CA either.
        vec![],
    ] {
        let mut vars = vec![
            ("AUTH_REDIS_URL", url.as_str()),
            ("AUTH_REDIS_MAX_STALE_SECS", "1"),
        ];
        vars.extend(extra);
        let refused = Replica::start(&redis, &vars).await;
        assert!(!refused.connected());
        let own = refused.token().await;
        let reply = within(
            Duration::from_secs(10),
            "closed answers 503 past the max staleness",
            async || refused.status(&own).await == 503,
        )
        .await;
        println!("a replica refusing the server's certificate answered 503 after {reply:?}");
        assert!(!refused.connected(), "never connected");
        assert_eq!(refused.pending(), 0);
        let reply = refused.whoami(&own).await;
        assert!(reply.header("retry-after").is_some(), "{reply:?}");
    }
    assert!(first.connected() && second.connected());
    let text = logs.text();
    assert!(!text.contains(REDIS_PASSWORD), "{text}");
}
