//! The load: workers that each pick a credential and a path, send it over HTTP/1.1 (one
//! keep-alive connection per worker) or gRPC (streams multiplexed over a few HTTP/2
//! connections), and judge the answer with [`crate::model`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use crate::model::{self, Allowed, Answer, Span, Verdict};
use crate::{AUDIENCE, LEEWAY_SECS, World, random_secret, unix_now};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// gRPC workers share this many HTTP/2 connections.
const GRPC_CONNECTIONS: usize = 2;
/// At most this many wrong answers are printed in full.
const EXAMPLES: usize = 20;

/// Counts by credential kind: sent, and each answer.
#[derive(Clone, Default)]
pub(crate) struct KindStats {
    pub(crate) sent: u64,
    pub(crate) answers: BTreeMap<String, u64>,
    pub(crate) wrong: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) http: u64,
    pub(crate) grpc: u64,
    pub(crate) kinds: BTreeMap<&'static str, KindStats>,
    pub(crate) ambiguous: u64,
    pub(crate) wrong_refused: u64,
    pub(crate) wrong_accepted: u64,
    pub(crate) wrong_other: u64,
    pub(crate) examples: Vec<String>,
}

impl Stats {
    pub(crate) fn total(&self) -> u64 {
        self.http + self.grpc
    }

    pub(crate) fn merge(&mut self, other: Stats) {
        self.http += other.http;
        self.grpc += other.grpc;
        self.ambiguous += other.ambiguous;
        self.wrong_refused += other.wrong_refused;
        self.wrong_accepted += other.wrong_accepted;
        self.wrong_other += other.wrong_other;
        for (kind, k) in other.kinds {
            let mine = self.kinds.entry(kind).or_default();
            mine.sent += k.sent;
            mine.wrong += k.wrong;
            for (answer, n) in k.answers {
                *mine.answers.entry(answer).or_default() += n;
            }
        }
        for example in other.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(example);
            }
        }
    }

    pub(crate) fn print_kinds(&self) {
        println!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
            "credential", "sent", "ok", "401", "403", "503", "other", "wrong"
        );
        for (kind, k) in &self.kinds {
            let get = |name: &str| k.answers.get(name).copied().unwrap_or(0);
            let other: u64 = k
                .answers
                .iter()
                .filter(|(name, _)| !["ok", "401", "403", "503"].contains(&name.as_str()))
                .map(|(_, n)| n)
                .sum();
            println!(
                "{kind:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
                k.sent,
                get("ok"),
                get("401"),
                get("403"),
                get("503"),
                other,
                k.wrong
            );
        }
    }

    fn record(
        &mut self,
        kind: &'static str,
        answer: Answer,
        allowed: Allowed,
        detail: impl FnOnce() -> String,
    ) {
        let k = self.kinds.entry(kind).or_default();
        k.sent += 1;
        *k.answers.entry(answer.name()).or_default() += 1;
        if allowed.len() > 1 {
            self.ambiguous += 1;
        }
        let verdict = model::verdict(allowed, answer);
        if verdict == Verdict::Right {
            return;
        }
        k.wrong += 1;
        match verdict {
            Verdict::WrongRefused => self.wrong_refused += 1,
            Verdict::WrongAccepted => self.wrong_accepted += 1,
            _ => self.wrong_other += 1,
        }
        if self.examples.len() < EXAMPLES {
            let line = format!(
                "{verdict:?}: {kind}: answered {}, allowed {}; {}",
                answer.name(),
                allowed.names(),
                detail()
            );
            eprintln!("soak: {line}");
            self.examples.push(line);
        }
    }
}

/// SplitMix64: the workers' choices.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        aws_lc_rs::rand::fill(&mut seed).unwrap();
        Self(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How a credential is judged.
enum Judge {
    /// 401 whatever the state.
    Refused,
    /// Accepted (200, or 403 on a role it lacks) whatever the state.
    Accepted { admin: bool },
    /// An API key by number (`None`: never issued).
    ApiKey { key: Option<u64>, admin: bool },
    /// An OIDC token whose claims pass, by its kid.
    Oidc {
        kid: String,
        good_sig: bool,
        admin: bool,
    },
    /// Accepted until `exp` (+ leeway), then 401; `kid` for an OIDC token.
    Expiring {
        exp: u64,
        kid: Option<String>,
        admin: bool,
    },
}

struct Case {
    kind: &'static str,
    /// Header name and value.
    header: Option<(&'static str, String)>,
    judge: Judge,
}

/// Tokens a worker reuses (the demo's token cache sees repeats), by name.
#[derive(Default)]
struct Minted {
    tokens: HashMap<String, (String, u64)>,
}

fn payload_exp(token: &str) -> u64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("exp").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

fn bearer(token: String) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {token}")))
}

/// A token with one payload character changed and the signature kept.
fn tamper_payload(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let claims = String::from_utf8({
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap()
    })
    .unwrap();
    let changed = claims.replacen("\"sub\":\"", "\"sub\":\"x", 1);
    parts[1] = crate::idp::b64(changed);
    parts.join(".")
}

/// A token with its signature's first byte changed.
fn tamper_signature(token: &str) -> String {
    use base64::Engine;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    bytes[0] ^= 0x01;
    format!("{input}.{}", crate::idp::b64(bytes))
}

impl Minted {
    /// The token named `name`, minted by `mint` when absent or when `stale` says so.
    fn get(
        &mut self,
        name: String,
        stale: impl FnOnce(u64) -> bool,
        mint: impl FnOnce() -> String,
    ) -> String {
        if let Some((token, minted)) = self.tokens.get(&name)
            && !stale(*minted)
        {
            return token.clone();
        }
        let token = mint();
        self.tokens.insert(name, (token.clone(), unix_now()));
        token
    }
}

fn claims(issuer: &str, admin: bool, exp: u64) -> serde_json::Value {
    let mut jti = [0u8; 12];
    aws_lc_rs::rand::fill(&mut jti).unwrap();
    let mut claims = json!({"iss": issuer, "sub": "soak-user", "aud": AUDIENCE,
                            "iat": unix_now() - 1, "exp": exp, "jti": crate::idp::b64(jti)});
    if admin {
        claims["roles"] = json!(["admin"]);
    }
    claims
}

fn pick(world: &World, rng: &mut Rng, minted: &mut Minted) -> Case {
    let admin = rng.chance(50);
    let roll = rng.below(100);
    match roll {
        0..=2 => Case {
            kind: "none",
            header: None,
            judge: Judge::Refused,
        },
        3..=32 => pick_api_key(world, rng, admin),
        33..=72 => pick_oidc(world, rng, minted, admin),
        _ => pick_hmac(world, rng, minted, admin),
    }
}

fn pick_api_key(world: &World, rng: &mut Rng, _admin: bool) -> Case {
    let keys = world.file_keys.read().unwrap();
    let (kind, key, secret) = match rng.below(5) {
        0 | 1 => {
            let id = *keys.live.back().unwrap();
            (
                "api_key_newest",
                Some(id),
                keys.secrets[id as usize].clone(),
            )
        }
        2 => {
            let id = *keys.live.front().unwrap();
            (
                "api_key_oldest",
                Some(id),
                keys.secrets[id as usize].clone(),
            )
        }
        3 => match keys.removed {
            Some(id) => (
                "api_key_removed",
                Some(id),
                keys.secrets[id as usize].clone(),
            ),
            None => ("api_key_unknown", None, random_secret()),
        },
        _ => {
            if rng.chance(50) {
                ("api_key_unknown", None, random_secret())
            } else {
                // One character of a live key changed: never issued.
                let id = *keys.live.back().unwrap();
                let mut secret = keys.secrets[id as usize].clone().into_bytes();
                secret[5] = if secret[5] == b'A' { b'B' } else { b'A' };
                ("api_key_tampered", None, String::from_utf8(secret).unwrap())
            }
        }
    };
    let header = if rng.chance(50) {
        ("x-api-key", secret)
    } else {
        ("authorization", format!("Bearer {secret}"))
    };
    Case {
        kind,
        header: Some(header),
        judge: Judge::ApiKey {
            key,
            admin: key.is_some_and(|id| id % 2 == 0),
        },
    }
}

fn pick_oidc(world: &World, rng: &mut Rng, minted: &mut Minted, admin: bool) -> Case {
    let issuer = world.idp.issuer();
    let (newest, oldest, withdrawn) = {
        let ring = world.keys.read().unwrap();
        let newest = *ring.published.last().unwrap();
        let oldest = ring.published[0];
        let withdrawn = oldest.checked_sub(1 + rng.below(2) as usize);
        (
            Arc::clone(&ring.all[newest]),
            Arc::clone(&ring.all[oldest]),
            withdrawn.map(|i| Arc::clone(&ring.all[i])),
        )
    };
    let far = unix_now() + 3600;
    // A quarter of the valid tokens are new (cold validations, token-cache churn).
    let fresh = rng.chance(25);
    let mut reuse = |name: String, key: &crate::idp::Key, admin: bool| {
        if fresh {
            key.mint(&claims(issuer, admin, far))
        } else {
            minted.get(name, |_| false, || key.mint(&claims(issuer, admin, far)))
        }
    };
    let oidc = |kind, token: String, kid: &str, good_sig, admin| Case {
        kind,
        header: bearer(token),
        judge: Judge::Oidc {
            kid: kid.to_owned(),
            good_sig,
            admin,
        },
    };
    match rng.below(12) {
        0..=2 => {
            let token = reuse(format!("{}-{admin}", newest.kid), &newest, admin);
            oidc("oidc_newest_key", token, &newest.kid, true, admin)
        }
        3 | 4 => {
            let token = reuse(format!("{}-{admin}", oldest.kid), &oldest, admin);
            oidc("oidc_older_key", token, &oldest.kid, true, admin)
        }
        5 => match withdrawn {
            Some(key) => {
                let token = reuse(format!("{}-{admin}", key.kid), &key, admin);
                oidc("oidc_withdrawn_key", token, &key.kid, true, admin)
            }
            None => {
                let token = reuse(format!("{}-{admin}", newest.kid), &newest, admin);
                oidc("oidc_newest_key", token, &newest.kid, true, admin)
            }
        },
        6 => {
            let token = reuse(format!("{}-{admin}", oldest.kid), &oldest, admin);
            oidc(
                "oidc_tampered_claims",
                tamper_payload(&token),
                &oldest.kid,
                false,
                admin,
            )
        }
        7 => {
            let token = reuse(format!("{}-{admin}", newest.kid), &newest, admin);
            oidc(
                "oidc_bad_signature",
                tamper_signature(&token),
                &newest.kid,
                false,
                admin,
            )
        }
        8 => {
            let rogue = &world.rogue;
            let token = reuse(format!("rogue-{admin}"), rogue, admin);
            oidc("oidc_unknown_kid", token, &rogue.kid, true, admin)
        }
        9 => {
            // Expires a few seconds after it is minted, and is used until well past that.
            let token = minted.get(
                format!("expiring-{}-{admin}", oldest.kid),
                |at| unix_now() > at + 6 + LEEWAY_SECS + 10,
                || oldest.mint(&claims(issuer, admin, unix_now() + 6)),
            );
            Case {
                kind: "oidc_expiring",
                judge: Judge::Expiring {
                    exp: payload_exp(&token),
                    kid: Some(oldest.kid.clone()),
                    admin,
                },
                header: bearer(token),
            }
        }
        10 => {
            let (kind, claims) = match rng.below(3) {
                0 => ("oidc_expired", claims(issuer, admin, unix_now() - 600)),
                1 => {
                    let mut c = claims(issuer, admin, far);
                    c["aud"] = json!("another-api");
                    ("oidc_wrong_audience", c)
                }
                _ => {
                    let mut c = claims(issuer, admin, far);
                    c["iss"] = json!("http://127.0.0.1:9/unknown");
                    ("oidc_unknown_issuer", c)
                }
            };
            let token = minted.get(
                format!("{kind}-{}", newest.kid),
                |_| false,
                || newest.mint(&claims),
            );
            Case {
                kind,
                header: bearer(token),
                judge: Judge::Refused,
            }
        }
        _ => {
            // alg HS256 with a published kid: never for OIDC.
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": newest.kid});
            let token = format!(
                "{}.{}.{}",
                crate::idp::b64(header.to_string()),
                crate::idp::b64(claims(issuer, admin, far).to_string()),
                crate::idp::b64([7u8; 32])
            );
            Case {
                kind: "oidc_alg_hs256",
                header: bearer(token),
                judge: Judge::Refused,
            }
        }
    }
}

fn pick_hmac(world: &World, rng: &mut Rng, minted: &mut Minted, admin: bool) -> Case {
    let roles: &[&str] = if admin { &["admin"] } else { &["reader"] };
    let hour = Duration::from_secs(3600);
    let fresh = rng.chance(25);
    let valid = |minted: &mut Minted| {
        let mint = || world.hmac.mint("soak-role", roles, hour, None).unwrap();
        if fresh {
            mint()
        } else {
            minted.get(format!("hmac-{admin}"), |_| false, mint)
        }
    };
    let refused = |kind, token: String| Case {
        kind,
        header: bearer(token),
        judge: Judge::Refused,
    };
    match rng.below(8) {
        0..=2 => Case {
            kind: "hmac_valid",
            header: bearer(valid(minted)),
            judge: Judge::Accepted { admin },
        },
        3 => refused(
            "hmac_expired",
            minted.get(
                format!("hmac-expired-{admin}"),
                |_| false,
                || {
                    world
                        .hmac_past
                        .mint("soak-role", roles, Duration::from_secs(600), None)
                        .unwrap()
                },
            ),
        ),
        4 => refused("hmac_tampered", tamper_payload(&valid(minted))),
        5 => refused(
            "hmac_other_secret",
            minted.get(
                format!("hmac-other-{admin}"),
                |_| false,
                || {
                    world
                        .hmac_other
                        .mint("soak-role", roles, hour, None)
                        .unwrap()
                },
            ),
        ),
        _ => {
            let token = minted.get(
                format!("hmac-expiring-{admin}"),
                |at| unix_now() > at + 6 + LEEWAY_SECS + 10,
                || {
                    world
                        .hmac
                        .mint("soak-role", roles, Duration::from_secs(6), None)
                        .unwrap()
                },
            );
            Case {
                kind: "hmac_expiring",
                judge: Judge::Expiring {
                    exp: payload_exp(&token),
                    kid: None,
                    admin,
                },
                header: bearer(token),
            }
        }
    }
}

/// The answers allowed for `judge` on a request over `span`.
fn allowed(world: &World, judge: &Judge, admin_path: bool, span: &Span) -> Allowed {
    let mut allowed = Allowed::default();
    match judge {
        Judge::Refused => allowed.add(Answer::Unauthenticated),
        Judge::Accepted { admin } => allowed.add(model::authenticated(admin_path, *admin)),
        Judge::ApiKey { key, admin } => {
            let (valid, invalid) = model::api_key(&world.files.read().unwrap(), *key, span);
            if valid {
                allowed.add(model::authenticated(admin_path, *admin));
            }
            if invalid {
                allowed.add(Answer::Unauthenticated);
            }
        }
        Judge::Oidc {
            kid,
            good_sig,
            admin,
        } => {
            let ok = model::authenticated(admin_path, *admin);
            allowed = world.idp.with_served(|served| {
                model::oidc(served, kid, *good_sig, ok, world.max_stale, span)
            });
        }
        Judge::Expiring { exp, kid, admin } => {
            let (unexpired, expired) = model::expiry(*exp, LEEWAY_SECS, span);
            let ok = model::authenticated(admin_path, *admin);
            if unexpired {
                match kid {
                    None => allowed.add(ok),
                    Some(kid) => {
                        allowed = world.idp.with_served(|served| {
                            model::oidc(served, kid, true, ok, world.max_stale, span)
                        });
                    }
                }
            }
            if expired {
                allowed.add(Answer::Unauthenticated);
            }
        }
    }
    allowed
}

pub(crate) async fn spawn(
    world: Arc<World>,
    http: usize,
    grpc: usize,
) -> Result<Vec<tokio::task::JoinHandle<Stats>>, Box<dyn std::error::Error>> {
    let mut workers = Vec::new();
    for _ in 0..http {
        workers.push(tokio::spawn(http_worker(Arc::clone(&world))));
    }
    let mut senders = Vec::new();
    for _ in 0..GRPC_CONNECTIONS.min(grpc.max(1)) {
        senders.push(grpc_connect(world.grpc).await?);
    }
    for i in 0..grpc {
        let sender = senders[i % senders.len()].clone();
        workers.push(tokio::spawn(grpc_worker(Arc::clone(&world), sender)));
    }
    Ok(workers)
}

type Http1 = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;
type Http2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn http_connect(addr: std::net::SocketAddr) -> std::io::Result<Http1> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn grpc_connect(addr: std::net::SocketAddr) -> std::io::Result<Http2> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    Ok(sender)
}

fn span(t0: Instant, u0: u64) -> Span {
    Span {
        t0,
        t1: Instant::now(),
        u0,
        u1: unix_now(),
    }
}

async fn http_worker(world: Arc<World>) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng::new();
    let mut minted = Minted::default();
    let mut sender: Option<Http1> = None;
    while !world.stop.load(Ordering::Relaxed) {
        let case = pick(&world, &mut rng, &mut minted);
        let admin_path = rng.chance(30);
        let path = if admin_path { "/admin" } else { "/whoami" };
        let mut request = Request::get(path).header("host", world.http.to_string());
        if let Some((name, value)) = &case.header {
            request = request.header(*name, value);
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let (t0, u0) = (Instant::now(), unix_now());
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                sender = Some(http_connect(world.http).await.ok()?);
            }
            let s = sender.as_mut()?;
            s.ready().await.ok()?;
            let response = s.send_request(request).await.ok()?;
            let status = response.status().as_u16();
            response.into_body().collect().await.ok()?;
            Some(match status {
                200 => Answer::Ok,
                401 => Answer::Unauthenticated,
                403 => Answer::Forbidden,
                503 => Answer::Unavailable,
                other => Answer::Other(other),
            })
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(Answer::Silent);
        if answer == Answer::Silent {
            sender = None;
        }
        let span = span(t0, u0);
        stats.http += 1;
        let allowed = allowed(&world, &case.judge, admin_path, &span);
        stats.record(case.kind, answer, allowed, || {
            describe(&world, "http", path, &case, &span)
        });
    }
    stats
}

async fn grpc_worker(world: Arc<World>, mut sender: Http2) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng::new();
    let mut minted = Minted::default();
    while !world.stop.load(Ordering::Relaxed) {
        let case = pick(&world, &mut rng, &mut minted);
        let admin_path = rng.chance(30);
        let path = if admin_path {
            "/demo.v1.Demo/AdminPing"
        } else {
            "/demo.v1.Demo/WhoAmI"
        };
        let mut request = Request::post(format!("http://{}{path}", world.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some((name, value)) = &case.header {
            request = request.header(*name, value);
        }
        // An empty message: no compression flag, length 0.
        let request = request
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .unwrap();
        let (t0, u0) = (Instant::now(), unix_now());
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            sender.ready().await.ok()?;
            let response = sender.send_request(request).await.ok()?;
            if response.status() != 200 {
                return Some(Answer::Other(response.status().as_u16()));
            }
            let code = |headers: &http::HeaderMap| {
                headers
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u16>().ok())
            };
            let code = match code(response.headers()) {
                Some(code) => code,
                None => {
                    let body = response.into_body().collect().await.ok()?;
                    code(body.trailers()?)?
                }
            };
            Some(match code {
                0 => Answer::Ok,
                16 => Answer::Unauthenticated,
                7 => Answer::Forbidden,
                14 => Answer::Unavailable,
                other => Answer::Other(1000 + other),
            })
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(Answer::Silent);
        let span = span(t0, u0);
        stats.grpc += 1;
        let allowed = allowed(&world, &case.judge, admin_path, &span);
        stats.record(case.kind, answer, allowed, || {
            describe(&world, "grpc", path, &case, &span)
        });
        if answer == Answer::Silent && sender.is_closed() {
            match grpc_connect(world.grpc).await {
                Ok(s) => sender = s,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    stats
}

/// A wrong answer's circumstances, without the credential.
fn describe(world: &World, protocol: &str, path: &str, case: &Case, span: &Span) -> String {
    let rel = |at: Instant| {
        if at >= span.t0 {
            (at - span.t0).as_secs_f64()
        } else {
            -(span.t0 - at).as_secs_f64()
        }
    };
    let context = match &case.judge {
        Judge::Oidc { kid, .. } | Judge::Expiring { kid: Some(kid), .. } => {
            world.idp.with_served(|served| {
                let recent: Vec<String> = served
                    .iter()
                    .rev()
                    .filter(|s| s.at <= span.t1)
                    .take(3)
                    .map(|s| format!("{:+.3} s (has kid: {})", rel(s.at), s.kids.contains(kid)))
                    .collect();
                format!(
                    "; key sets served relative to sending: {}",
                    recent.join(", ")
                )
            })
        }
        Judge::ApiKey { key: Some(key), .. } => {
            let files = world.files.read().unwrap();
            let recent: Vec<String> = files
                .iter()
                .rev()
                .filter(|v| v.at <= span.t1)
                .take(4)
                .map(|v| format!("{:+.3} s (has key: {})", rel(v.at), v.keys.contains(key)))
                .collect();
            format!(
                "; key file versions relative to sending: {}",
                recent.join(", ")
            )
        }
        _ => String::new(),
    };
    let judge = match &case.judge {
        Judge::Refused => "always refused".to_owned(),
        Judge::Accepted { admin } => format!("always accepted (admin {admin})"),
        Judge::ApiKey { key, admin } => format!("API key {key:?} (admin {admin})"),
        Judge::Oidc {
            kid,
            good_sig,
            admin,
        } => format!("OIDC kid {kid}, good signature {good_sig} (admin {admin})"),
        Judge::Expiring { exp, kid, admin } => {
            format!("exp {exp}, kid {kid:?} (admin {admin})")
        }
    };
    format!(
        "{protocol} {path}; {judge}; sent at unix {} and answered {:.3} s later{context}",
        span.u0,
        (span.t1 - span.t0).as_secs_f64()
    )
}
