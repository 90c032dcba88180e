//! Revoking role tokens by `jti` before they expire, in memory and optionally in a file
//! that survives a restart.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use tower_auth_core::Clock;

/// How many revoked tokens a list holds unless told otherwise.
pub const DEFAULT_REVOCATION_CAPACITY: usize = 100_000;

/// Why a revocation was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationError {
    /// The list holds its capacity of tokens that have not expired yet. Dropping one of them
    /// would silently un-revoke it, so nothing is dropped: rotate the secret instead.
    Full,
    /// The token to revoke did not verify (only our own valid tokens are revoked by value).
    InvalidToken,
    /// The token has no `jti`, so it cannot be told apart from others: rotate the secret.
    NoTokenId,
    /// The revoking client already holds its share of the list
    /// ([`CLIENT_SHARE_PERCENT`]), or the list is past the part of it clients may fill: the
    /// rest is kept for admins, so that no client can stop them revoking.
    ClientQuota,
    /// A subject cut-off asked for a method whose credentials carry no issue time (an API
    /// key): remove the key instead.
    NoIssueTime,
}

/// How much of a list's capacity one client's own revocations may hold, in percent; and
/// clients together may fill the list up to `100 - CLIENT_SHARE_PERCENT` percent.
pub const CLIENT_SHARE_PERCENT: usize = 10;

/// What [`RevocationList::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The token is now revoked (it was not, or not for as long).
    Added,
    /// It was revoked already, for at least as long: nothing changed, nothing to write.
    Unchanged,
    /// It had expired: nothing to hold.
    Expired,
}

/// Who revokes, for the quota a client's revocations are held to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum By {
    /// An admin, or the library's own API: up to the capacity.
    Admin,
    /// A client revoking its own token (its `sub`): within its share.
    Client,
}

/// A revocation file larger than this is refused at start: a list at capacity takes a few
/// MiB.
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the revocation list is full",
            Self::InvalidToken => "the token to revoke is not a valid token of this issuer",
            Self::NoTokenId => "the token has no jti and cannot be revoked alone",
            Self::ClientQuota => "the client holds its share of the revocation list",
            Self::NoIssueTime => "the method's credentials carry no issue time to cut off by",
        })
    }
}

impl std::error::Error for RevocationError {}

/// Revoked token ids (`jti`), each kept only until its token would have expired anyway, so
/// the list stays bounded by the number of live tokens (and by a hard capacity).
///
/// Clones share the same list: keep one to revoke while an
/// [`HmacAuthenticator`](crate::HmacAuthenticator) checks against it. The check on the
/// request path is one atomic load when the list is empty and a read lock otherwise.
///
/// A list [`open`](Self::open)ed on a file (`AUTH_REVOCATION_FILE`) survives a restart:
/// [`persist`](Self::persist) writes it after a revocation. The file is one JSON document,
/// `{"revoked":[{"jti":"...","sub":"...","until":1700000000}]}`, where `until` is the Unix
/// second after which the token is refused anyway (its `exp` plus the leeway); it holds no
/// token and no secret. Entries past `until` are dropped when the file is read and when it
/// is written.
///
/// The list also holds subject cut-offs ([`revoke_subject`](Self::revoke_subject)): every
/// token of a subject issued up to a time, for OIDC and HMAC. In the file they are a second
/// array, `"cutoffs":[{"method":"hmac","issuer":"...","sub":"...","before":1700000001,"until":1731708001}]`
/// (`method` is `hmac` or `oidc`; tokens issued before `before` are refused; the entry is
/// dropped after `until`), left out while there is none, so files written before cut-offs
/// existed load unchanged.
///
/// ```
/// use tower_auth_core::Clock;
/// use tower_auth_hmac::RevocationList;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("revocation-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("revoked.json");
/// let clock = Clock::manual(1_700_000_000);
///
/// let list = RevocationList::open(&path, clock.clone())?; // no file yet: an empty list
/// list.revoke("jti-1", "agent", 1_700_003_600).unwrap();
/// list.persist().await?;
///
/// let after_restart = RevocationList::open(&path, clock)?;
/// assert!(after_restart.is_revoked("jti-1"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RevocationList {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<HashMap<Box<str>, Entry>>,
    len: AtomicUsize,
    /// Counts changes to `entries`, bumped under its write lock, so that a write of the
    /// file can tell whether what it would write is on disk already.
    generation: AtomicU64,
    capacity: usize,
    clock: Clock,
    file: Option<Backing>,
    /// Subjects whose tokens issued before a time are refused (`revoke_subject`).
    cutoffs: crate::cutoff::Cutoffs,
    /// Set when the list is shared through Redis.
    #[cfg(feature = "redis")]
    shared: std::sync::OnceLock<Arc<crate::shared::Shared>>,
}

struct Entry {
    /// Unix second after which the token is expired whatever the list says.
    until: u64,
    subject: Box<str>,
}

/// The file a list is kept in, and the generation of the list last written there. The mutex
/// also makes writes one at a time.
struct Backing {
    path: PathBuf,
    written: Mutex<u64>,
}

/// The file's document.
#[derive(Serialize, Deserialize)]
struct Document<'a> {
    #[serde(borrow)]
    revoked: Vec<Record<'a>>,
    /// Absent from files written before cut-offs existed, and when there are none.
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    cutoffs: Vec<CutoffRecord<'a>>,
}

/// A subject cut-off in the file: `method` is `hmac` or `oidc`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CutoffRecord<'a> {
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    issuer: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    before: u64,
    until: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<'a> {
    #[serde(borrow)]
    jti: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    until: u64,
}

impl Default for RevocationList {
    fn default() -> Self {
        Self::new(Clock::system())
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("RevocationList");
        s.field("len", &self.len())
            .field("capacity", &self.inner.capacity);
        if let Some(file) = &self.inner.file {
            s.field("file", &file.path);
        }
        s.finish()
    }
}

impl RevocationList {
    /// An empty list with [`DEFAULT_REVOCATION_CAPACITY`], forgetting entries by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self::with_capacity(clock, DEFAULT_REVOCATION_CAPACITY)
    }

    /// An empty list holding at most `capacity` unexpired revocations.
    pub fn with_capacity(clock: Clock, capacity: usize) -> Self {
        Self::build(clock, capacity, HashMap::new(), None)
    }

    fn build(
        clock: Clock,
        capacity: usize,
        entries: HashMap<Box<str>, Entry>,
        file: Option<Backing>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                len: AtomicUsize::new(entries.len()),
                entries: RwLock::new(entries),
                generation: AtomicU64::new(0),
                capacity,
                clock,
                file,
                cutoffs: crate::cutoff::Cutoffs::default(),
                #[cfg(feature = "redis")]
                shared: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A list with [`DEFAULT_REVOCATION_CAPACITY`] kept in the file at `path`: the
    /// revocations in it that have not expired by `clock`, or none when there is no file
    /// yet (it is created by the first [`persist`](Self::persist), mode 0600 on Unix).
    ///
    /// # Errors
    /// The file cannot be read, is not a document as described on [`RevocationList`], holds
    /// more unexpired entries than the capacity, or does not exist in a directory that does
    /// not exist either (no write could ever create it).
    pub fn open(path: impl Into<PathBuf>, clock: Clock) -> io::Result<Self> {
        let mut path = path.into();
        // A link is followed to the file it names, so that the rename of each write replaces
        // that file (on the volume the link points into), not the link.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            path = fs::canonicalize(&path)?;
        }
        let text = match read_bounded(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = directory_of(&path);
                if !dir.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "neither the file nor its directory {} exists",
                            dir.display()
                        ),
                    ));
                }
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let mut entries = HashMap::new();
        let cutoffs = crate::cutoff::Cutoffs::default();
        if !text.is_empty() {
            let document: Document<'_> = serde_json::from_slice(&text).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "not a JSON document {{\"revoked\":[{{\"jti\",\"sub\",\"until\"}}]}} (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            let now = clock.now_unix();
            for record in document.revoked.into_iter().filter(|r| r.until > now) {
                let entry = entries.entry(record.jti.into()).or_insert(Entry {
                    until: 0,
                    subject: record.sub.into(),
                });
                entry.until = entry.until.max(record.until);
            }
            for record in document.cutoffs {
                let method = crate::cutoff::method_from(&record.method, &record.issuer)
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a cut-off whose method is neither \"hmac\" nor \"oidc\"",
                        )
                    })?;
                let cutoff = crate::cutoff::Cutoff {
                    before: record.before,
                    until: record.until,
                };
                cutoffs
                    .insert(&method, &record.sub, cutoff, now)
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "holds more than the {} subject cut-offs a list holds",
                                crate::cutoff::MAX_SUBJECT_CUTOFFS
                            ),
                        )
                    })?;
            }
            if entries.len() > DEFAULT_REVOCATION_CAPACITY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "holds {} unexpired revocations, more than the {DEFAULT_REVOCATION_CAPACITY} a list holds",
                        entries.len()
                    ),
                ));
            }
        }
        check_writable(directory_of(&path))?;
        let file = Backing {
            path,
            written: Mutex::new(0),
        };
        let list = Self::build(clock, DEFAULT_REVOCATION_CAPACITY, entries, Some(file));
        let now = list.inner.clock.now_unix();
        for (method, subject, cutoff) in cutoffs.unexpired(now) {
            list.inner
                .cutoffs
                .insert(&method, &subject, cutoff, now)
                .expect("fewer than the cap, as read");
        }
        Ok(list)
    }

    /// The file the list is kept in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_ref().map(|f| f.path.as_path())
    }

    /// Revokes the token `jti` of `subject`, keeping the entry until `keep_until` (Unix
    /// seconds: the token's `exp` plus the verifier's leeway). Records an audit event
    /// (target `auth`) that names the `jti` and subject. The token is refused from now on;
    /// for a list kept in a file, [`persist`](Self::persist) then writes it down.
    ///
    /// # Errors
    /// [`RevocationError::Full`] when the list holds its capacity of unexpired entries.
    pub fn revoke(&self, jti: &str, subject: &str, keep_until: u64) -> Result<(), RevocationError> {
        let inserted = self.insert(jti, subject, keep_until, By::Admin)?;
        tracing::info!(target: "auth", event = "token_revoked", jti = ?jti, subject = ?subject, keep_until, already_expired = inserted == Inserted::Expired, "role token revoked");
        Ok(())
    }

    /// [`revoke`](Self::revoke) without its event, for callers that log a fuller one, with
    /// the quota of `by`. A list shared through Redis queues what it adds for the other
    /// replicas.
    pub(crate) fn insert(
        &self,
        jti: &str,
        subject: &str,
        keep_until: u64,
        by: By,
    ) -> Result<Inserted, RevocationError> {
        let inserted = self.insert_local(jti, subject, keep_until, by)?;
        #[cfg(feature = "redis")]
        if inserted == Inserted::Added
            && let Some(shared) = self.inner.shared.get()
        {
            shared.publish(jti, subject, keep_until);
        }
        Ok(inserted)
    }

    /// [`insert`](Self::insert) into this copy only (what comes from Redis, which the quota
    /// was checked for where it was revoked, arrives `By::Admin`).
    pub(crate) fn insert_local(
        &self,
        jti: &str,
        subject: &str,
        keep_until: u64,
        by: By,
    ) -> Result<Inserted, RevocationError> {
        let now = self.inner.clock.now_unix();
        if keep_until <= now {
            return Ok(Inserted::Expired);
        }
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if entries.get(jti).is_some_and(|e| e.until >= keep_until) {
            return Ok(Inserted::Unchanged);
        }
        if let By::Client = by {
            let capacity = self.inner.capacity;
            let share = capacity * CLIENT_SHARE_PERCENT / 100;
            // Counting the client's entries is a scan, made only once the list is big
            // enough for any one client to have reached its share.
            let over = entries.len() >= capacity - share
                || (entries.len() >= share
                    && entries
                        .values()
                        .filter(|e| e.until > now && *e.subject == *subject)
                        .count()
                        >= share);
            if over && !entries.contains_key(jti) {
                return Err(RevocationError::ClientQuota);
            }
        }
        if !entries.contains_key(jti) && entries.len() >= self.inner.capacity {
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= self.inner.capacity {
                self.inner.len.store(entries.len(), Ordering::Release);
                tracing::error!(target: "auth", event = "revocation_list_full", jti = ?jti, subject = ?subject, capacity = self.inner.capacity, "role token NOT revoked: the revocation list is full");
                return Err(RevocationError::Full);
            }
        }
        let entry = entries.entry(jti.into()).or_insert_with(|| Entry {
            until: keep_until,
            subject: subject.into(),
        });
        entry.until = entry.until.max(keep_until);
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        self.inner.len.store(entries.len(), Ordering::Release);
        Ok(Inserted::Added)
    }

    /// Writes the list to its file, if it has one, when it has changed since the last write:
    /// the unexpired entries into a temporary file in the same directory (mode 0600 on
    /// Unix), flushed to disk, then renamed over the file, so that a crash leaves the old
    /// list or the new one, never half of one.
    ///
    /// The writing runs on Tokio's blocking pool ([`tokio::task::spawn_blocking`]), not on
    /// the task that awaits it; writes are made one at a time, and one that finds its
    /// revocations written already by another returns at once. Needs a Tokio runtime; from
    /// synchronous code call [`persist_blocking`](Self::persist_blocking).
    ///
    /// # Errors
    /// The file could not be written (the revocations stay in force in memory).
    pub async fn persist(&self) -> io::Result<()> {
        if self.inner.file.is_none() {
            return Ok(());
        }
        let list = self.clone();
        tokio::task::spawn_blocking(move || list.persist_blocking())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    }

    /// As [`persist`](Self::persist), on the calling thread.
    ///
    /// # Errors
    /// As [`persist`](Self::persist).
    pub fn persist_blocking(&self) -> io::Result<()> {
        let Some(file) = &self.inner.file else {
            return Ok(());
        };
        let mut written = file.written.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.inner.clock.now_unix();
        let (generation, bytes) = {
            let entries = self
                .inner
                .entries
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let generation = self.inner.generation.load(Ordering::Relaxed);
            if generation == *written {
                return Ok(());
            }
            let mut revoked: Vec<Record<'_>> = entries
                .iter()
                .filter(|(_, entry)| entry.until > now)
                .map(|(jti, entry)| Record {
                    jti: (&**jti).into(),
                    sub: (&*entry.subject).into(),
                    until: entry.until,
                })
                .collect();
            revoked.sort_unstable_by(|a, b| a.jti.cmp(&b.jti));
            let held = self.inner.cutoffs.unexpired(now);
            let mut cutoffs: Vec<CutoffRecord<'_>> = held
                .iter()
                .filter_map(|(method, subject, cutoff)| {
                    let (kind, issuer) = crate::cutoff::method_parts(method)?;
                    Some(CutoffRecord {
                        method: kind.into(),
                        issuer: issuer.into(),
                        sub: (&**subject).into(),
                        before: cutoff.before,
                        until: cutoff.until,
                    })
                })
                .collect();
            cutoffs.sort_unstable_by(|a, b| {
                (&a.method, &a.issuer, &a.sub).cmp(&(&b.method, &b.issuer, &b.sub))
            });
            let bytes =
                serde_json::to_vec(&Document { revoked, cutoffs }).map_err(io::Error::other)?;
            (generation, bytes)
        };
        write_atomically(&file.path, &bytes)?;
        *written = generation;
        Ok(())
    }

    /// Whether `jti` is revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(jti)
    }

    /// Drops entries whose tokens have expired. [`revoke`](Self::revoke) does this itself
    /// when the list is full; call it from a timer to keep the list small.
    pub fn purge_expired(&self) {
        let now = self.inner.clock.now_unix();
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, entry| entry.until > now);
        self.inner.len.store(entries.len(), Ordering::Release);
        drop(entries);
        self.inner.cutoffs.purge_expired(now);
    }

    /// The clock entries expire by.
    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The subject cut-offs.
    pub(crate) fn cutoffs(&self) -> &crate::cutoff::Cutoffs {
        &self.inner.cutoffs
    }

    /// Records a change for the next [`persist`](Self::persist).
    pub(crate) fn changed(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The sharing through Redis, once attached.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(&self) -> Option<&Arc<crate::shared::Shared>> {
        self.inner.shared.get()
    }

    /// The unexpired entries: `(jti, subject, until)`.
    #[cfg(feature = "redis")]
    pub(crate) fn unexpired(&self) -> Vec<(Box<str>, Box<str>, u64)> {
        let now = self.inner.clock.now_unix();
        self.inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, entry)| entry.until > now)
            .map(|(jti, entry)| (jti.clone(), entry.subject.clone(), entry.until))
            .collect()
    }

    /// Shares the list through `shared`; `false` when it is shared already.
    #[cfg(feature = "redis")]
    pub(crate) fn attach(&self, shared: Arc<crate::shared::Shared>) -> bool {
        self.inner.shared.set(shared).is_ok()
    }

    /// The error a role token gets instead of a check against this list: set only for a
    /// list shared through Redis that has been out of touch for longer than allowed, with
    /// [`RedisFailure::Closed`](crate::RedisFailure::Closed).
    pub(crate) fn unavailable(&self) -> Option<tower_auth_core::AuthError> {
        #[cfg(feature = "redis")]
        if let Some(shared) = self.inner.shared.get() {
            return shared.unavailable();
        }
        None
    }

    /// The number of entries held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The directory `path` is in (`.` for a bare file name).
/// The file's bytes, refused past [`MAX_FILE_BYTES`] (a wrong path such as `/dev/zero`
/// would otherwise hang start-up).
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Whether a file can be made in `dir`: found at start, not at the first revocation.
fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".revocations-probe-{}", std::process::id()));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write in {}: {e}", dir.display())))?;
    fs::remove_file(&probe)
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces the file at `path` with `bytes` by writing a temporary file beside it and
/// renaming it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = directory_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(".tmp");
    let temporary = dir.join(temporary);
    // A temporary file left by a crash: created anew, so that its mode is ours.
    let _ = fs::remove_file(&temporary);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut out| {
        out.write_all(bytes)?;
        out.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    // The rename itself is durable once the directory is flushed (on Unix; elsewhere a
    // directory cannot be opened as a file).
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn revoked_until_expiry_then_forgotten() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::new(clock.clone());
        assert!(!list.is_revoked("a"));
        list.revoke("a", "ops", 1_100).unwrap();
        assert!(list.is_revoked("a"));
        assert!(!list.is_revoked("b"));
        clock.advance(Duration::from_secs(100));
        list.purge_expired();
        assert!(!list.is_revoked("a"));
        assert!(list.is_empty());
    }

    #[test]
    fn already_expired_tokens_take_no_room() {
        let list = RevocationList::new(Clock::manual(1_000));
        list.revoke("old", "ops", 999).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn bounded_without_unrevoking_anything() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::with_capacity(clock.clone(), 2);
        list.revoke("a", "s", 1_010).unwrap();
        list.revoke("b", "s", 1_100).unwrap();
        assert_eq!(list.revoke("c", "s", 1_100), Err(RevocationError::Full));
        assert!(list.is_revoked("a") && list.is_revoked("b") && !list.is_revoked("c"));
        // Revoking again what is already held needs no room.
        list.revoke("a", "s", 1_020).unwrap();
        clock.advance(Duration::from_secs(30));
        list.revoke("c", "s", 1_100).unwrap();
        assert!(!list.is_revoked("a") && list.is_revoked("b") && list.is_revoked("c"));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn clones_share_the_list() {
        let list = RevocationList::default();
        let other = list.clone();
        list.revoke("x", "s", u64::MAX).unwrap();
        assert!(other.is_revoked("x"));
        assert_eq!(
            format!("{other:?}"),
            "RevocationList { len: 1, capacity: 100000 }"
        );
    }

    fn read(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_file_keeps_revocations_across_opens_and_drops_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.json");
        let clock = Clock::manual(1_000);
        let list = RevocationList::open(&path, clock.clone()).unwrap();
        assert!(
            list.is_empty() && !path.exists(),
            "a missing file is an empty list"
        );
        list.persist().await.unwrap();
        assert!(!path.exists(), "nothing revoked, nothing written");
        list.revoke("short", "a", 1_010).unwrap();
        list.revoke("long", "b", 2_000).unwrap();
        list.persist().await.unwrap();
        assert_eq!(
            read(&path),
            serde_json::json!({"revoked":[{"jti":"long","sub":"b","until":2_000},{"jti":"short","sub":"a","until":1_010}]})
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        clock.advance(Duration::from_secs(20));
        let reopened = RevocationList::open(&path, clock.clone()).unwrap();
        assert!(reopened.is_revoked("long") && !reopened.is_revoked("short"));
        assert_eq!(reopened.len(), 1, "expired on load: dropped");
        // On write, too: the expired entry leaves the file with the next revocation.
        list.revoke("third", "c", 3_000).unwrap();
        list.persist_blocking().unwrap();
        let jtis: Vec<String> = read(&path)["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["jti"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(jtis, ["long", "third"]);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn an_unusable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.json");
        for bad in [
            "not json",
            "[]",
            r#"{"revoked":[{"jti":"a","sub":"b"}]}"#,
            r#"{"revoked":[{"jti":"a","sub":"b","until":"soon"}]}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = RevocationList::open(&path, Clock::manual(0)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad}");
        }
        let nowhere = dir.path().join("missing-dir").join("revoked.json");
        assert!(RevocationList::open(&nowhere, Clock::manual(0)).is_err());
        let list = RevocationList::new(Clock::manual(0));
        assert!(list.file().is_none());
        list.persist_blocking().unwrap();
    }

    /// SECURITY.md S16: files written before cut-offs existed still load; cut-offs are
    /// written beside the revocations and read back, expired ones dropped.
    #[test]
    fn cut_offs_are_kept_in_the_file_and_old_files_still_load() {
        use tower_auth_core::{AuthMethod, Identity};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.json");
        fs::write(&path, r#"{"revoked":[{"jti":"j","sub":"s","until":5000}]}"#).unwrap();
        let clock = Clock::manual(1_000);
        let list = RevocationList::open(&path, clock.clone()).unwrap();
        assert!(list.is_revoked("j") && list.cut_off_subjects() == 0);
        list.set_cutoff_leeway(Duration::ZERO);
        let idp = AuthMethod::Oidc {
            issuer: "https://idp.example".into(),
        };
        list.revoke_subject(&idp, "alice").unwrap();
        list.persist_blocking().unwrap();
        let written = read(&path);
        assert_eq!(
            written["cutoffs"],
            serde_json::json!([{"method":"oidc","issuer":"https://idp.example","sub":"alice","before":1_001,"until":1_001 + crate::SUBJECT_CUTOFF_KEEP.as_secs()}])
        );
        let alice = |iat: u64| {
            Identity::builder("alice", idp.clone())
                .issued_at(std::time::UNIX_EPOCH + Duration::from_secs(iat))
                .build()
        };
        let reopened = RevocationList::open(&path, clock.clone()).unwrap();
        assert!(reopened.is_cut_off(&alice(1_000)) && !reopened.is_cut_off(&alice(1_001)));
        assert!(reopened.is_revoked("j"));
        // Past its keep, a cut-off is not loaded.
        clock.advance(crate::SUBJECT_CUTOFF_KEEP + Duration::from_secs(1));
        let later = RevocationList::open(&path, clock).unwrap();
        assert_eq!(later.cut_off_subjects(), 0);
        for bad in [
            r#"{"revoked":[],"cutoffs":[{"method":"api_key","issuer":"x","sub":"a","before":1,"until":9999}]}"#,
            r#"{"revoked":[],"cutoffs":[{"method":"hmac","issuer":"x","sub":"a","before":1}]}"#,
            r#"{"revoked":[],"cutoffs":{}}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = RevocationList::open(&path, Clock::manual(0)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad}");
        }
    }

    /// SECURITY.md R10.
    #[test]
    fn a_client_holds_at_most_its_share_and_never_the_admins_room() {
        let clock = Clock::manual(1_000);
        let list = RevocationList::with_capacity(clock, 100);
        // A tenth each: 10 for client a, then it is refused; b still has its share.
        for i in 0..10 {
            let jti = format!("a{i}");
            assert_eq!(
                list.insert(&jti, "a", 2_000, By::Client),
                Ok(Inserted::Added)
            );
        }
        assert_eq!(
            list.insert("a10", "a", 2_000, By::Client),
            Err(RevocationError::ClientQuota)
        );
        // Again what is held: nothing changes, nothing to write.
        assert_eq!(
            list.insert("a0", "a", 2_000, By::Client),
            Ok(Inserted::Unchanged)
        );
        for client in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            for i in 0..10 {
                let jti = format!("{client}{i}");
                assert_eq!(
                    list.insert(&jti, client, 2_000, By::Client),
                    Ok(Inserted::Added)
                );
            }
        }
        // 90 held: clients together stop there; the last tenth is the admins'.
        assert_eq!(
            list.insert("j0", "j", 2_000, By::Client),
            Err(RevocationError::ClientQuota)
        );
        for i in 0..10 {
            let jti = format!("admin{i}");
            assert_eq!(
                list.insert(&jti, "a", 2_000, By::Admin),
                Ok(Inserted::Added)
            );
        }
        assert_eq!(list.len(), 100);
    }

    /// SECURITY.md R8.
    #[test]
    fn a_link_a_huge_file_or_a_read_only_directory_is_handled_at_start() {
        let dir = tempfile::tempdir().unwrap();
        // A link: the file it names is the one written, and the link stays.
        let target = dir.path().join("volume-revoked.json");
        let link = dir.path().join("revoked.json");
        fs::write(&target, r#"{"revoked":[]}"#).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let list = RevocationList::open(&link, Clock::manual(1_000)).unwrap();
            list.revoke("t", "s", 2_000).unwrap();
            list.persist_blocking().unwrap();
            assert!(
                fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(read(&target)["revoked"][0]["jti"], "t");
        }
        // Past the size bound: refused, not read whole.
        let huge = dir.path().join("huge.json");
        let file = fs::File::create(&huge).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = RevocationList::open(&huge, Clock::manual(0)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A directory nothing can be written in: refused now, not at the first revocation.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let locked = dir.path().join("locked");
            fs::create_dir(&locked).unwrap();
            fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
            let path = locked.join("revoked.json");
            // Root writes anywhere: the check can only be seen failing as another user.
            let writable = fs::write(locked.join("x"), "").is_ok();
            let _ = fs::remove_file(locked.join("x"));
            assert_eq!(
                RevocationList::open(&path, Clock::manual(0)).is_err(),
                !writable
            );
        }
    }
}
