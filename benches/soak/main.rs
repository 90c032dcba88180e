//! The soak (issue 18, item 4; run by `benches/soak.sh`): the demo, release build, at full load
//! over HTTP and gRPC with valid, expired, tampered and unknown API keys, OIDC tokens and HMAC
//! role tokens, while its IdP rotates keys, goes down in five ways and comes back, and its
//! `API_KEYS_FILE` is rewritten every few seconds. Every answer is judged against what the
//! demo may answer at that moment ([`model`]); the demo's RSS and open file descriptors are
//! sampled every few seconds.
//!
//! `soak --demo <path> --work <dir> [--seconds N] [--http N] [--grpc N]`
//!
//! Passes (exit 0) with zero wrong answers, RSS growth after warm-up under 10%, and file
//! descriptors flat; prints a summary either way.

mod idp;
mod load;
mod model;

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use idp::{Idp, Key, Mode};
use model::FileVersion;
use tower_auth_core::Clock;
use tower_auth_hmac::HmacConfig;

/// The demo's settings that the judge depends on.
pub(crate) const REFRESH_SECS: u64 = 4;
pub(crate) const LEEWAY_SECS: u64 = 5;
pub(crate) const AUDIENCE: &str = "soak-api";
/// The key file is rewritten this often; it lists the last [`KEYS_LIVE`] keys issued.
const KEY_FILE_EVERY: Duration = Duration::from_secs(3);
const KEYS_LIVE: usize = 5;
/// The IdP publishes a new key this often and withdraws all but the last two.
const ROTATE_EVERY: Duration = Duration::from_secs(20);
/// The outage programme, repeated: each outage follows [`UP_BETWEEN`] of normal service.
/// Two of them outlast max-stale (40 s), so the demo must fail closed and recover.
const OUTAGES: [(Mode, u64); 5] = [
    (Mode::Close, 15),
    (Mode::Unavailable, 25),
    (Mode::Refuse, 60),
    (Mode::Garbage, 20),
    (Mode::Hang, 55),
];
const UP_BETWEEN: u64 = 25;
/// How long after warm-up RSS must stay flat (issue 18: under 10% growth over 10 minutes).
const RSS_SPAN: Duration = Duration::from_secs(600);

/// One pass of the outage programme: each outage and the service before it.
fn programme() -> Duration {
    let secs: u64 = OUTAGES.iter().map(|(_, secs)| secs + UP_BETWEEN).sum();
    Duration::from_secs(secs)
}
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Random bytes, base64url: API keys and secrets.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    idp::b64(bytes)
}

/// The OIDC keys: every key made so far (index = number), and which are published.
pub(crate) struct KeyRing {
    pub(crate) all: Vec<Arc<Key>>,
    pub(crate) published: Vec<usize>,
}

/// The key file's keys: every key issued (number = index), and the live window.
pub(crate) struct FileKeys {
    pub(crate) secrets: Vec<String>,
    pub(crate) live: VecDeque<u64>,
    pub(crate) removed: Option<u64>,
}

/// What the load workers read.
pub(crate) struct World {
    pub(crate) idp: Idp,
    pub(crate) keys: RwLock<KeyRing>,
    /// Never published.
    pub(crate) rogue: Arc<Key>,
    pub(crate) file_keys: RwLock<FileKeys>,
    pub(crate) files: RwLock<Vec<FileVersion>>,
    pub(crate) hmac: HmacConfig,
    pub(crate) hmac_other: HmacConfig,
    pub(crate) hmac_past: HmacConfig,
    pub(crate) max_stale: Duration,
    pub(crate) stop: AtomicBool,
    pub(crate) http: std::net::SocketAddr,
    pub(crate) grpc: std::net::SocketAddr,
}

struct Args {
    demo: PathBuf,
    work: PathBuf,
    seconds: u64,
    http: usize,
    grpc: usize,
}

fn args() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    let (mut demo, mut work, mut seconds, mut http, mut grpc) = (None, None, 960, 16, 16);
    while let Some(arg) = args.next() {
        let mut value = || args.next();
        match arg.as_str() {
            "--demo" => demo = value().map(PathBuf::from),
            "--work" => work = value().map(PathBuf::from),
            "--seconds" => seconds = value()?.parse().ok()?,
            "--http" => http = value()?.parse().ok()?,
            "--grpc" => grpc = value()?.parse().ok()?,
            _ => return None,
        }
    }
    Some(Args {
        demo: demo?,
        work: work?,
        seconds,
        http,
        grpc,
    })
}

fn main() -> ExitCode {
    let Some(args) = args() else {
        eprintln!(
            "soak: run by benches/soak.sh: soak --demo <path> --work <dir> [--seconds N] [--http N] [--grpc N]"
        );
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::from(2)
        }
    }
}

/// The demo process, interrupted (then killed) when dropped.
struct Demo {
    child: Child,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<std::net::SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Writes the key file atomically (temporary file + rename), as an operator's tooling would.
fn write_keys(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

fn key_file_content(keys: &FileKeys) -> String {
    let entries: Vec<_> = keys
        .live
        .iter()
        .map(|&id| {
            let mut entry =
                serde_json::json!({"name": format!("key-{id}"), "key": keys.secrets[id as usize]});
            if id % 2 == 0 {
                entry["roles"] = serde_json::json!(["admin"]);
            }
            entry
        })
        .collect();
    serde_json::Value::Array(entries).to_string()
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.work)?;
    let idp = Idp::start().await;
    let first = Arc::new(tokio::task::spawn_blocking(|| Key::generate("k0".into(), 1)).await?);
    idp.set_published(vec![Arc::clone(&first)]);
    let rogue = Arc::new(tokio::task::spawn_blocking(|| Key::generate("rogue".into(), 2)).await?);

    let hmac_secret = random_secret();
    let leeway = Duration::from_secs(LEEWAY_SECS);
    let hmac = HmacConfig::builder(hmac_secret.clone())
        .leeway(leeway)
        .build()?;
    let hmac_other = HmacConfig::builder(random_secret())
        .leeway(leeway)
        .build()?;
    let hmac_past = HmacConfig::builder(hmac_secret.clone())
        .leeway(leeway)
        .clock(Clock::manual(unix_now() - 7200))
        .build()?;

    let key_path = args.work.join("api-keys.json");
    let mut file_keys = FileKeys {
        secrets: Vec::new(),
        live: VecDeque::new(),
        removed: None,
    };
    for id in 0..KEYS_LIVE as u64 {
        file_keys.secrets.push(random_secret());
        file_keys.live.push_back(id);
    }
    let first_version = FileVersion {
        at: Instant::now(),
        keys: Arc::new(file_keys.live.iter().copied().collect()),
    };
    write_keys(&key_path, &key_file_content(&file_keys))?;

    let (http, grpc) = (free_port()?, free_port()?);
    let oidc_config = format!(
        r#"{{"issuers":[{{"issuer":"{}","audience":"{AUDIENCE}"}}],"jwks_refresh_interval_secs":{REFRESH_SECS},"leeway_secs":{LEEWAY_SECS}}}"#,
        idp.issuer()
    );
    let log = std::fs::File::create(args.work.join("demo.log"))?;
    let err = std::fs::File::create(args.work.join("demo.err"))?;
    let child = Command::new(&args.demo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("BIND_ADDR", http.to_string())
        .env("GRPC_ADDR", grpc.to_string())
        .env("API_KEYS_FILE", &key_path)
        .env("OIDC_CONFIG", &oidc_config)
        .env("HMAC_SECRET", &hmac_secret)
        .env("AUTH_LEEWAY_SECS", LEEWAY_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()?;
    let pid = child.id();
    let mut demo = Demo { child };

    let world = Arc::new(World {
        idp: idp.clone(),
        keys: RwLock::new(KeyRing {
            all: vec![first],
            published: vec![0],
        }),
        rogue,
        file_keys: RwLock::new(file_keys),
        files: RwLock::new(vec![first_version]),
        hmac,
        hmac_other,
        hmac_past,
        max_stale: Duration::from_secs(REFRESH_SECS * 10),
        stop: AtomicBool::new(false),
        http,
        grpc,
    });

    // Ready: both ports answer and the first key set was served.
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = demo.child.try_wait() {
            return Err(format!(
                "the demo exited at start ({status}); see {}",
                args.work.join("demo.err").display()
            )
            .into());
        }
        let up = tokio::net::TcpStream::connect(http).await.is_ok()
            && tokio::net::TcpStream::connect(grpc).await.is_ok()
            && !idp.served().is_empty();
        if up {
            break;
        }
        if Instant::now() > ready_by {
            return Err("the demo did not start listening within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    println!(
        "soak: demo pid {pid} on http://{http} and grpc {grpc}, IdP {}; {} s, {} HTTP connections, {} gRPC streams",
        idp.issuer(),
        args.seconds,
        args.http,
        args.grpc
    );

    let events = Arc::new(Mutex::new(Events::default()));
    let controller = tokio::spawn(control_idp(
        Arc::clone(&world),
        Arc::clone(&events),
        started,
    ));
    let writer = tokio::spawn(rewrite_key_file(
        Arc::clone(&world),
        key_path.clone(),
        Arc::clone(&events),
    ));
    let sampler = tokio::spawn(sample(pid, started, Arc::clone(&world)));
    let workers = load::spawn(Arc::clone(&world), args.http, args.grpc).await?;

    // The demo must stay up throughout.
    let mut died = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(Some(status)) = demo.child.try_wait() {
            died = Some(status);
            break;
        }
    }
    world.stop.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    let mut stats = load::Stats::default();
    for worker in workers {
        stats.merge(worker.await?);
    }
    controller.abort();
    writer.abort();
    let samples = sampler.await?;
    drop(demo);

    let events = events.lock().unwrap().clone();
    Ok(report(
        &args, elapsed, &stats, &samples, &events, &world, died,
    ))
}

#[derive(Clone, Default)]
struct Events {
    rotations: u64,
    outages: Vec<(Mode, u64)>,
    file_writes: u64,
    malformed: u64,
    emptied: u64,
}

/// Rotates the IdP's keys every [`ROTATE_EVERY`] and runs the outage programme.
async fn control_idp(world: Arc<World>, events: Arc<Mutex<Events>>, started: Instant) {
    let mut next_rotation = started + ROTATE_EVERY;
    let mut programme = OUTAGES.iter().cycle();
    let mut next_change = started + Duration::from_secs(UP_BETWEEN);
    let mut outage: Option<Mode> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = Instant::now();
        if now >= next_rotation {
            next_rotation += ROTATE_EVERY;
            let n = world.keys.read().unwrap().all.len();
            let key = Arc::new(
                tokio::task::spawn_blocking(move || Key::generate(format!("k{n}"), n))
                    .await
                    .unwrap(),
            );
            let published = {
                let mut ring = world.keys.write().unwrap();
                ring.all.push(key);
                ring.published.push(n);
                let keep = ring.published.len().saturating_sub(2);
                ring.published.drain(..keep);
                ring.published
                    .iter()
                    .map(|&i| Arc::clone(&ring.all[i]))
                    .collect()
            };
            world.idp.set_published(published);
            events.lock().unwrap().rotations += 1;
        }
        if now >= next_change {
            match outage.take() {
                None => {
                    let &(mode, secs) = programme.next().unwrap();
                    world.idp.set_mode(mode);
                    outage = Some(mode);
                    next_change = now + Duration::from_secs(secs);
                    events
                        .lock()
                        .unwrap()
                        .outages
                        .push((mode, started.elapsed().as_secs()));
                    println!(
                        "soak: {:>4} s  IdP down ({}) for {secs} s",
                        started.elapsed().as_secs(),
                        mode.name()
                    );
                }
                Some(_) => {
                    world.idp.set_mode(Mode::Up);
                    next_change = now + Duration::from_secs(UP_BETWEEN);
                    println!("soak: {:>4} s  IdP up", started.elapsed().as_secs());
                }
            }
        }
    }
}

/// Rewrites the key file every [`KEY_FILE_EVERY`]: a new key in, the oldest out; every 11th
/// version malformed (the keys in force stay), every 29th empty (no key is valid).
async fn rewrite_key_file(world: Arc<World>, path: PathBuf, events: Arc<Mutex<Events>>) {
    let mut n: u64 = 0;
    loop {
        tokio::time::sleep(KEY_FILE_EVERY).await;
        n += 1;
        let (content, effective) = {
            let mut keys = world.file_keys.write().unwrap();
            let id = keys.secrets.len() as u64;
            keys.secrets.push(random_secret());
            keys.live.push_back(id);
            if keys.live.len() > KEYS_LIVE {
                keys.removed = keys.live.pop_front();
            }
            let previous = Arc::clone(&world.files.read().unwrap().last().unwrap().keys);
            if n % 11 == 10 {
                // Cut short: not JSON, so not taken.
                let full = key_file_content(&keys);
                (full[..full.len() / 2].to_owned(), previous)
            } else if n % 29 == 28 {
                (String::new(), Arc::new(HashSet::new()))
            } else {
                (
                    key_file_content(&keys),
                    Arc::new(keys.live.iter().copied().collect()),
                )
            }
        };
        {
            let mut e = events.lock().unwrap();
            e.file_writes += 1;
            if n % 11 == 10 {
                e.malformed += 1;
            } else if n % 29 == 28 {
                e.emptied += 1;
            }
        }
        // Recorded before the rename: the demo cannot read it earlier.
        world.files.write().unwrap().push(FileVersion {
            at: Instant::now(),
            keys: effective,
        });
        if let Err(error) = write_keys(&path, &content) {
            eprintln!("soak: cannot write the key file: {error}");
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: u64,
}

fn read_sample(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample { at, rss_kib, fds })
}

async fn sample(pid: u32, started: Instant, world: Arc<World>) -> Vec<Sample> {
    let mut samples = Vec::new();
    // Only while the load runs: once it stops, the demo's connections close.
    while !world.stop.load(Ordering::SeqCst) {
        if let Some(s) = read_sample(pid, started.elapsed()) {
            samples.push(s);
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    samples
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn report(
    args: &Args,
    elapsed: Duration,
    stats: &load::Stats,
    samples: &[Sample],
    events: &Events,
    world: &World,
    died: Option<std::process::ExitStatus>,
) -> bool {
    let secs = elapsed.as_secs_f64();
    let mut pass = true;
    println!();
    println!("== soak summary");
    println!(
        "{} s, {} cores, load average at the end: {}",
        elapsed.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "requests: {} ({:.0}/s): HTTP {} over {} connections, gRPC {} over {} streams",
        stats.total(),
        stats.total() as f64 / secs,
        stats.http,
        args.http,
        stats.grpc,
        args.grpc
    );
    stats.print_kinds();
    println!(
        "judged while the demo's state could change during the request (more than one answer allowed): {}",
        stats.ambiguous
    );
    println!(
        "IdP: {} key sets served, {} requests answered by an outage, {} rotations; outages (mode@s): {}",
        world.idp.served().len(),
        world.idp.refused(),
        events.rotations,
        events
            .outages
            .iter()
            .map(|(m, at)| format!("{}@{at}", m.name()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "key file: {} rewrites ({} malformed, {} empty), {} keys issued",
        events.file_writes,
        events.malformed,
        events.emptied,
        world.file_keys.read().unwrap().secrets.len()
    );
    let wrong = stats.wrong_refused + stats.wrong_accepted + stats.wrong_other;
    println!(
        "wrong answers: {wrong} (valid refused while its keys were available: {}, invalid accepted: {}, other: {})",
        stats.wrong_refused, stats.wrong_accepted, stats.wrong_other
    );
    for example in &stats.examples {
        println!("  {example}");
    }
    if wrong > 0 {
        pass = false;
    }
    if let Some(status) = died {
        println!("FAIL: the demo exited during the soak ({status})");
        pass = false;
    }

    // Warm-up: one whole outage programme and a minute, the time it takes every path of the
    // demo (each kind of outage, stale keys, fail-closed and recovery) to have run once and
    // its allocations to have reached their high-water mark (a 25-minute run grew to 26 MiB
    // in its first 6 minutes, then stayed within 24.5-26 MiB). A run too short to leave 10
    // minutes after that is judged after the first fifth (at most 60 s), which counts part
    // of the warm-up as growth; it says so.
    let full_warmup = programme() + Duration::from_secs(60);
    let warmup = if elapsed >= full_warmup + RSS_SPAN {
        full_warmup
    } else {
        println!(
            "note: shorter than {} s (one outage programme, a minute, then {} s): RSS judged after {} s, warm-up included",
            (full_warmup + RSS_SPAN).as_secs(),
            RSS_SPAN.as_secs(),
            (elapsed / 5).min(Duration::from_secs(60)).as_secs()
        );
        (elapsed / 5).min(Duration::from_secs(60))
    };
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= warmup).collect();
    let window = Duration::from_secs(30);
    let first: Vec<&Sample> = after
        .iter()
        .copied()
        .filter(|s| s.at < warmup + window)
        .collect();
    let last: Vec<&Sample> = after
        .iter()
        .copied()
        .filter(|s| s.at + window > elapsed)
        .collect();
    if first.is_empty() || last.is_empty() {
        println!("FAIL: too few samples of RSS and fds ({})", samples.len());
        return false;
    }
    let rss_base = median(first.iter().map(|s| s.rss_kib).collect());
    let rss_end = median(last.iter().map(|s| s.rss_kib).collect());
    let rss_max = after.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let growth = (rss_end as f64 / rss_base as f64 - 1.0) * 100.0;
    println!(
        "RSS: {:.1} MiB after warm-up ({} s; median of the next 30 s), {:.1} MiB at the end (median of the last 30 s): {growth:+.1}%; max {:.1} MiB; {} samples every {} s",
        rss_base as f64 / 1024.0,
        warmup.as_secs(),
        rss_end as f64 / 1024.0,
        rss_max as f64 / 1024.0,
        samples.len(),
        SAMPLE_EVERY.as_secs()
    );
    // The shape: one sample a minute.
    let series: Vec<String> = samples
        .iter()
        .filter(|s| s.at.as_secs() % 60 < SAMPLE_EVERY.as_secs())
        .map(|s| format!("{}m {:.1}", s.at.as_secs() / 60, s.rss_kib as f64 / 1024.0))
        .collect();
    println!("RSS by minute (MiB): {}", series.join(", "));
    if growth >= 10.0 {
        println!("FAIL: RSS grew {growth:.1}% (limit 10%)");
        pass = false;
    }
    let fd_base = median(first.iter().map(|s| s.fds).collect());
    let fd_end = median(last.iter().map(|s| s.fds).collect());
    let fd_min = after.iter().map(|s| s.fds).min().unwrap_or(0);
    let fd_max = after.iter().map(|s| s.fds).max().unwrap_or(0);
    println!(
        "fds: {fd_base} after warm-up, {fd_end} at the end (medians); min {fd_min}, max {fd_max}"
    );
    // Flat: the same at the end as after warm-up, give or take the IdP fetch or key-file read
    // in flight at a sample.
    if fd_end > fd_base + 2 {
        println!("FAIL: open file descriptors grew from {fd_base} to {fd_end}");
        pass = false;
    }
    println!("{}", if pass { "PASS" } else { "FAIL" });
    pass
}
