//! [`TokenFile`]: a person's session kept on disk, as `gh`, `gcloud` and the Micromegas CLI
//! keep theirs: written atomically, readable by its owner only, and refused when it is not.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tower_auth_core::Secret;

/// The file name under the user's configuration directory.
const DEFAULT_NAME: &str = "tower-auth/tokens.json";

/// A session file larger than this is refused: a session takes a few KiB.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The tokens of one login: what [`TokenFile`] keeps.
#[derive(Clone)]
pub struct Session {
    access_token: Secret,
    refresh_token: Option<Secret>,
    id_token: Option<Secret>,
    /// When the access token expires, Unix seconds, if known.
    expires_at: Option<u64>,
    /// The issuer the tokens came from, for `status` and to refuse mixing sessions.
    issuer: String,
    client_id: String,
}

/// The file's JSON as written: tokens are text (RFC 6749 appendix A: printable ASCII, `"`
/// and `\` included, which JSON escapes).
#[derive(Serialize)]
struct Stored<'a> {
    access_token: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    issuer: &'a str,
    client_id: &'a str,
}

fn text(secret: &Secret) -> &str {
    std::str::from_utf8(secret.expose_secret()).unwrap_or_default()
}

impl Session {
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(&Stored {
            access_token: text(&self.access_token),
            refresh_token: self.refresh_token.as_ref().map(text),
            id_token: self.id_token.as_ref().map(text),
            expires_at: self.expires_at,
            issuer: &self.issuer,
            client_id: &self.client_id,
        })
    }

    fn from_json(bytes: &[u8]) -> serde_json::Result<Self> {
        // Owned strings: a token with an escaped character cannot be borrowed from the
        // text. Each moves into its `Secret`, which wipes it when dropped.
        #[derive(Deserialize)]
        struct Read {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default)]
            id_token: Option<String>,
            #[serde(default)]
            expires_at: Option<u64>,
            issuer: String,
            client_id: String,
        }
        let read: Read = serde_json::from_slice(bytes)?;
        Ok(Self {
            access_token: read.access_token.into(),
            refresh_token: read.refresh_token.map(Secret::from),
            id_token: read.id_token.map(Secret::from),
            expires_at: read.expires_at,
            issuer: read.issuer,
            client_id: read.client_id,
        })
    }
}

impl Session {
    /// A session of tokens from `issuer` for `client_id`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        access_token: impl Into<Secret>,
    ) -> Self {
        Self {
            access_token: access_token.into(),
            refresh_token: None,
            id_token: None,
            expires_at: None,
            issuer: issuer.into(),
            client_id: client_id.into(),
        }
    }

    /// With a refresh token.
    #[must_use]
    pub fn refresh_token(mut self, token: impl Into<Secret>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// With an ID token.
    #[must_use]
    pub fn id_token(mut self, token: impl Into<Secret>) -> Self {
        self.id_token = Some(token.into());
        self
    }

    /// With the access token expiring at `at`.
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
        self
    }

    /// The access token.
    pub fn access(&self) -> &Secret {
        &self.access_token
    }

    /// The refresh token, if the issuer gave one.
    pub fn refresh(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// The ID token, if one was asked for.
    pub fn id(&self) -> Option<&Secret> {
        self.id_token.as_ref()
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client the tokens were issued to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How long the access token has left at `now`, if its expiry is known (zero once past).
    pub fn expires_in(&self, now: SystemTime) -> Option<Duration> {
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        self.expires_at
            .map(|at| Duration::from_secs(at.saturating_sub(now)))
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Where a person's session is kept: a JSON file of a [`Session`], mode 0600.
///
/// - [`store`](Self::store) writes a temporary file in the same directory (created with mode
///   0600, never readable by others even for a moment), flushes it to disk and renames it
///   over the file: a crash leaves the old session or the new one, never half of one.
/// - [`load`](Self::load) refuses a file that others can read or write (any of the group's
///   or others' permission bits), as `ssh` refuses such a private key, saying which
///   `chmod` mends it; and a file over 1 MiB.
/// - [`lock`](Self::lock) takes an exclusive lock on a companion `.lock` file, so that two
///   processes sharing the session do not both spend a single-use refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFile {
    path: PathBuf,
}

/// Held while a [`TokenFile`] is locked; dropping it releases the lock.
#[derive(Debug)]
pub struct TokenFileLock {
    _file: fs::File,
}

impl TokenFile {
    /// The session file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `AUTH_TOKEN_FILE` if set, else `tower-auth/tokens.json` under the user's configuration
    /// directory (`$XDG_CONFIG_HOME`, or `~/.config`; `%APPDATA%` on Windows). `None` when
    /// there is no such directory.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// As [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<PathBuf>) -> Option<Self> {
        if let Some(path) = get("AUTH_TOKEN_FILE").filter(|p| !p.as_os_str().is_empty()) {
            return Some(Self::new(path));
        }
        let config = get("XDG_CONFIG_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| get("HOME").map(|home| home.join(".config")))
            .or_else(|| get("APPDATA"))?;
        Some(Self::new(config.join(DEFAULT_NAME)))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session in the file; `None` when there is none.
    ///
    /// # Errors
    /// The file is readable or writable by others, too large, not a session, or cannot be
    /// read.
    pub fn load(&self) -> io::Result<Option<Session>> {
        let file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let metadata = file.metadata()?;
        check_private(&self.path, &metadata)?;
        if metadata.len() > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than a session file", self.path.display()),
            ));
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE_BYTES), &mut bytes)?;
        Session::from_json(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a session file (line {}, column {})",
                    self.path.display(),
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    /// Writes `session` to the file, atomically and readable by its owner only; creates the
    /// directory (mode 0700) when it does not exist.
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn store(&self, session: &Session) -> io::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let bytes = session.to_json().map_err(io::Error::other)?;
        let name = self
            .path
            .file_name()
            .map_or_else(|| "tokens".into(), |n| n.to_string_lossy().into_owned());
        // A name nobody can have taken: a crash may leave a temporary file behind, and a
        // container's next process has the same pid.
        let (temporary, mut file) = loop {
            let temporary = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
            match private_create(&temporary) {
                Ok(file) => break (temporary, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let written = (|| {
            file.write_all(&bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written?;
        // The rename is durable once the directory is.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Deletes the file (logging out); nothing to do when there is none.
    ///
    /// # Errors
    /// The file exists and cannot be removed.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Waits for the exclusive lock of this session (a companion file `<name>.lock`, since
    /// the session file itself is replaced at each write). Blocking: call it off the async
    /// runtime (`spawn_blocking`).
    ///
    /// # Errors
    /// The lock file cannot be created or locked.
    pub fn lock(&self) -> io::Result<TokenFileLock> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let file = match private_create(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::OpenOptions::new().write(true).open(&path)?
            }
            Err(e) => return Err(e),
        };
        file.lock()?;
        Ok(TokenFileLock { _file: file })
    }
}

/// Creates `path` new, mode 0600 from the first byte on Unix.
fn private_create(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a session file others may read or write, as `ssh` refuses such a key.
fn check_private(path: &Path, metadata: &fs::Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is accessible by others (mode {mode:o}); it holds your tokens: run `chmod 600 {}`, or log in again",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, metadata);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new("https://idp.example", "cli", "access-1")
            .refresh_token("refresh-1")
            .expires_at(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
    }

    #[test]
    fn stored_sessions_load_back_and_nothing_is_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("nested").join("tokens.json"));
        assert!(file.load().unwrap().is_none());
        file.store(&session()).unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.access().expose_secret(), b"access-1");
        assert_eq!(loaded.refresh().unwrap().expose_secret(), b"refresh-1");
        assert_eq!(
            (loaded.issuer(), loaded.client_id()),
            ("https://idp.example", "cli")
        );
        file.remove().unwrap();
        assert!(file.load().unwrap().is_none());
        file.remove().unwrap();
        fs::write(file.path(), "{").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(file.path(), fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(file.load().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    /// SECURITY.md O6.
    #[cfg(unix)]
    #[test]
    fn the_file_is_private_after_every_write_and_refused_when_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        for _ in 0..2 {
            file.store(&session()).unwrap();
            let mode = fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        for mode in [0o644, 0o640, 0o602] {
            fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).unwrap();
            let error = file.load().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
            assert!(error.to_string().contains("chmod 600"), "{error}");
            assert!(!error.to_string().contains("access-1"));
        }
    }

    /// SECURITY.md O6: a crash between writing and renaming leaves the old session whole.
    #[test]
    fn a_failed_write_leaves_the_old_session_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        file.store(&session()).unwrap();
        // A temporary file left by a writer that died before its rename.
        fs::write(dir.path().join(".tokens.json.999.tmp"), "{\"access_tok").unwrap();
        file.store(&session()).unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.access().expose_secret(), b"access-1");
        // A rename that cannot happen (the target is a directory): the old file stays.
        let blocked = TokenFile::new(dir.path().join("taken"));
        fs::create_dir(blocked.path()).unwrap();
        fs::write(blocked.path().join("x"), "").unwrap();
        assert!(blocked.store(&session()).is_err());
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".taken.")
            })
            .count();
        assert_eq!(leftovers, 0, "the temporary file is removed");
    }

    /// SECURITY.md O6: any token RFC 6749 allows (printable ASCII, `"` and `\\` included)
    /// comes back as it went in.
    #[test]
    fn tokens_with_characters_json_escapes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("tokens.json"));
        let odd = "r\\x\"y/~!";
        file.store(&session().refresh_token(odd).id_token("a\"b"))
            .unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.refresh().unwrap().expose_secret(), odd.as_bytes());
        assert_eq!(loaded.id().unwrap().expose_secret(), b"a\"b");
    }

    #[test]
    fn the_default_path_follows_the_environment() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            TokenFile::from_lookup(move |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| PathBuf::from(v))
            })
        };
        assert_eq!(
            lookup(&[("AUTH_TOKEN_FILE", "/tmp/t.json"), ("HOME", "/home/a")]),
            Some(TokenFile::new("/tmp/t.json"))
        );
        assert_eq!(
            lookup(&[("XDG_CONFIG_HOME", "/cfg"), ("HOME", "/home/a")]),
            Some(TokenFile::new("/cfg/tower-auth/tokens.json"))
        );
        assert_eq!(
            lookup(&[("HOME", "/home/a")]),
            Some(TokenFile::new("/home/a/.config/tower-auth/tokens.json"))
        );
        assert_eq!(lookup(&[]), None);
    }

    #[test]
    fn debug_shows_no_token() {
        let text = format!("{:?}", session().id_token("id-1"));
        assert!(
            !text.contains("access-1") && !text.contains("refresh-1") && !text.contains("id-1")
        );
    }
}
