//! Reloading `API_KEYS_FILE` when its content changes.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tower_auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet, ConfigError, sha256_digest};
use zeroize::Zeroizing;

/// Ends a background task when the last layer or service holding it is dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A key file and how to read it.
#[derive(Clone, Debug)]
pub(crate) struct KeyFile {
    pub(crate) path: PathBuf,
    pub(crate) variable: String,
}

impl KeyFile {
    /// Reads the file: its content, and a digest that identifies it to notice changes.
    fn read(&self) -> Result<(Zeroizing<String>, [u8; 32]), ConfigError> {
        let content = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| {
            ConfigError::new(
                &self.variable,
                format!("cannot read {}: {}", self.path.display(), e.kind()),
            )
        })?);
        let digest = sha256_digest(content.as_bytes());
        Ok((content, digest))
    }

    /// Reads and parses the file, with the digest of what was read.
    pub(crate) fn load(&self, admins: &Admins) -> Result<(ApiKeySet, [u8; 32]), ConfigError> {
        let (content, digest) = self.read()?;
        Ok((ApiKeySet::parse(&self.variable, &content, admins)?, digest))
    }

    /// Polls the file every `every` and swaps the keys when its content changes.
    ///
    /// Fails closed: a file that is deleted, empty or blank (emptying it is how a leaked key
    /// gets revoked in a hurry) leaves no key valid until it holds keys again. A file that
    /// cannot be parsed, or read for another reason, keeps the keys in force, whatever they
    /// are (no keys, after an emptying). Each change of state is logged once, as an error
    /// when no key is accepted or the file was not taken.
    pub(crate) fn watch(
        self,
        admins: Admins,
        authenticator: Arc<ApiKeyAuthenticator>,
        seen: [u8; 32],
        every: Duration,
    ) -> Result<TaskGuard, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new(
                &self.variable,
                "reloading the key file needs a Tokio runtime: build the layer inside one",
            )
        })?;
        let task = runtime.spawn(async move {
            let mut seen = Seen::Content(seen);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                self.poll(&admins, &authenticator, &mut seen);
            }
        });
        Ok(TaskGuard(task.abort_handle()))
    }

    /// One look at the file; `seen` is what the previous look found, so that each state is
    /// acted on and reported once.
    fn poll(&self, admins: &Admins, authenticator: &ApiKeyAuthenticator, seen: &mut Seen) {
        let variable = &*self.variable;
        let content = match std::fs::read_to_string(&self.path) {
            Ok(content) => Zeroizing::new(content),
            Err(error) if error.kind() == ErrorKind::NotFound => {
                if *seen != Seen::Missing {
                    *seen = Seen::Missing;
                    authenticator.replace(ApiKeySet::default());
                    tracing::error!(target: "auth", variable, path = %self.path.display(),
                        "API key file is gone: no API key is accepted until it is back");
                }
                return;
            }
            Err(error) => {
                let kind = error.kind();
                if *seen != Seen::Unreadable(kind) {
                    *seen = Seen::Unreadable(kind);
                    tracing::error!(target: "auth", variable, path = %self.path.display(), error = %kind,
                        "API key file cannot be read; the keys in force stay");
                }
                return;
            }
        };
        let digest = sha256_digest(content.as_bytes());
        if *seen == Seen::Content(digest) {
            return;
        }
        *seen = Seen::Content(digest);
        if content.trim().is_empty() {
            authenticator.replace(ApiKeySet::default());
            tracing::error!(target: "auth", variable, path = %self.path.display(),
                "API key file is empty: no API key is accepted until it holds keys");
            return;
        }
        match ApiKeySet::parse(variable, &content, admins) {
            Ok(set) if set.is_empty() => {
                authenticator.replace(set);
                tracing::error!(target: "auth", variable, path = %self.path.display(),
                    "API key file lists no keys: no API key is accepted until it holds keys");
            }
            Ok(set) => {
                tracing::info!(target: "auth::audit", event = "api_keys_reloaded", variable, keys = set.len(), "API keys reloaded");
                authenticator.replace(set);
            }
            Err(error) => {
                tracing::error!(target: "auth", %error,
                    "API key file not reloaded; the keys in force stay");
            }
        }
    }
}

/// What the last look at the key file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Content with this SHA-256, acted on (taken, or reported as empty or malformed).
    Content([u8; 32]),
    /// No file: no key is accepted.
    Missing,
    /// A file that could not be read.
    Unreadable(ErrorKind),
}
