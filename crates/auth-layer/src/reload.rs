//! Reloading `API_KEYS_FILE` when its content changes.

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

    /// Polls the file every `every` and swaps the keys when its content changes. A file
    /// that cannot be read or parsed keeps the keys in force and logs why.
    pub(crate) fn watch(
        self,
        admins: Admins,
        authenticator: Arc<ApiKeyAuthenticator>,
        mut seen: [u8; 32],
        every: Duration,
    ) -> Result<TaskGuard, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError::new(
                &self.variable,
                "reloading the key file needs a Tokio runtime: build the layer inside one",
            )
        })?;
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let parsed = self.read().and_then(|(content, digest)| {
                    if digest == seen {
                        return Ok(None);
                    }
                    // A bad file is reported once, not on every tick.
                    seen = digest;
                    ApiKeySet::parse(&self.variable, &content, &admins).map(Some)
                });
                match parsed {
                    Ok(None) => {}
                    Ok(Some(set)) => {
                        tracing::info!(target: "auth", variable = %self.variable, keys = set.len(), "API keys reloaded");
                        authenticator.replace(set);
                    }
                    Err(error) => {
                        tracing::error!(target: "auth", %error, "API key file not reloaded; the current keys stay in force");
                    }
                }
            }
        });
        Ok(TaskGuard(task.abort_handle()))
    }
}
