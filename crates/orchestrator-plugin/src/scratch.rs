//! Scratch workspaces (BEHAVIOR.md §10.1, §10.2, §10.5): the `<baseDir>/<uuid>` directories
//! `START_CODING_TASK` makes when there is no repository, and what happens to them when their
//! task ends.
//!
//! `PARALLAX_SCRATCH_RETENTION` decides: `ephemeral` removes the directory when the task ends;
//! `pending_decision` (default) keeps it until a person decides (`keep`, `delete`, `promote`) or
//! `PARALLAX_SCRATCH_DECISION_TTL_MS` (default one day) passes, then removes it; `persistent`
//! (alias `keep`) keeps it. A task has ended when its session is no longer live (stopped, or
//! unknown to the PTY service); [`ScratchStore::sweep`] notices that and applies the policy, and
//! it reads time from an injected clock, so its tests need no sleeps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::services::PtyService;
use crate::{Error, Result};

/// Default time a finished scratch workspace waits for a decision: one day.
pub const DEFAULT_DECISION_TTL_MS: u64 = 86_400_000;

/// What happens to a scratch workspace when its task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Kept until a person decides or the decision TTL passes.
    #[default]
    PendingDecision,
    /// Removed at once.
    Ephemeral,
    /// Kept.
    Keep,
}

impl Retention {
    /// Parses `pending_decision`, `ephemeral`, `persistent` or `keep`.
    pub fn parse(s: &str) -> Option<Retention> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending_decision" => Some(Retention::PendingDecision),
            "ephemeral" => Some(Retention::Ephemeral),
            "persistent" | "keep" => Some(Retention::Keep),
            _ => None,
        }
    }
}

/// The scratch settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchConfig {
    /// `PARALLAX_SCRATCH_RETENTION`.
    pub retention: Retention,
    /// `PARALLAX_SCRATCH_DECISION_TTL_MS`.
    pub decision_ttl_ms: u64,
    /// Where scratch directories live (the workspace `baseDir`); nothing outside it is removed
    /// or created.
    pub base_dir: PathBuf,
}

impl ScratchConfig {
    /// Reads the two settings; an unknown retention or a TTL that is not a number is an error
    /// (never silently replaced by the default).
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>, base_dir: &Path) -> Result<Self> {
        let retention = match get("PARALLAX_SCRATCH_RETENTION").filter(|v| !v.trim().is_empty()) {
            None => Retention::default(),
            Some(v) => Retention::parse(&v).ok_or_else(|| Error::InvalidSetting {
                name: "PARALLAX_SCRATCH_RETENTION".into(),
                reason: format!("{v:?} is not pending_decision, ephemeral, persistent or keep"),
            })?,
        };
        let decision_ttl_ms =
            match get("PARALLAX_SCRATCH_DECISION_TTL_MS").filter(|v| !v.trim().is_empty()) {
                None => DEFAULT_DECISION_TTL_MS,
                Some(v) => v.trim().parse().map_err(|_| Error::InvalidSetting {
                    name: "PARALLAX_SCRATCH_DECISION_TTL_MS".into(),
                    reason: format!("{v:?} is not a number of milliseconds"),
                })?,
            };
        Ok(ScratchConfig {
            retention,
            decision_ttl_ms,
            base_dir: base_dir.to_path_buf(),
        })
    }
}

/// Where a scratch workspace is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScratchStatus {
    /// Its task runs.
    Active,
    /// The task ended; waiting for a person until `expiresAt`.
    PendingDecision,
    /// Kept (by decision or policy).
    Kept,
    /// Kept under a name chosen by a person.
    Promoted,
}

/// One scratch workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScratchRecord {
    /// The session working in it.
    pub session_id: String,
    /// The task's label.
    pub label: String,
    /// The directory.
    pub path: PathBuf,
    /// Where it is.
    pub status: ScratchStatus,
    /// When it was made (ms).
    pub created_at: u64,
    /// When its task ended (ms).
    pub ended_at: Option<u64>,
    /// When it is removed unless someone decides (ms); only while `pending_decision`.
    pub expires_at: Option<u64>,
    /// Why the last attempt to remove its directory failed; the next sweep tries again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removal_error: Option<String>,
}

/// What one [`ScratchStore::sweep`] did.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Session ids whose directories were removed (their records with them).
    pub removed: Vec<String>,
    /// Directories that could not be removed, by session id, when the failure is new (a record
    /// failing the same way as at the last sweep is not repeated): their records stay, with the
    /// reason in `removal_error`, and every sweep tries again.
    pub failed: Vec<(String, Error)>,
}

type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

/// The scratch workspaces of this process.
pub struct ScratchStore {
    config: ScratchConfig,
    clock: Clock,
    records: Mutex<BTreeMap<String, ScratchRecord>>,
}

impl std::fmt::Debug for ScratchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, the clock of the binary.
pub fn system_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ScratchStore {
    /// A store with this policy, reading time (ms) from `clock`.
    pub fn new(config: ScratchConfig, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        ScratchStore {
            config,
            clock: Box::new(clock),
            records: Mutex::new(BTreeMap::new()),
        }
    }

    /// The policy.
    pub fn config(&self) -> &ScratchConfig {
        &self.config
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ScratchRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the scratch directory `path` of session `session_id`.
    pub fn register(&self, session_id: &str, label: &str, path: &Path) {
        let now = (self.clock)();
        self.records().insert(
            session_id.to_string(),
            ScratchRecord {
                session_id: session_id.to_string(),
                label: label.to_string(),
                path: path.to_path_buf(),
                status: ScratchStatus::Active,
                created_at: now,
                ended_at: None,
                expires_at: None,
                removal_error: None,
            },
        );
    }

    /// Every record, by session id.
    pub fn list(&self) -> Vec<ScratchRecord> {
        self.records().values().cloned().collect()
    }

    /// One record.
    pub fn get(&self, session_id: &str) -> Option<ScratchRecord> {
        self.records().get(session_id).cloned()
    }

    /// Applies the policy: active records whose session is no longer live end (removed,
    /// pending a decision, or kept), and pending ones past their TTL are removed. Returns the
    /// session ids whose directories were removed, and those that could not be (one directory
    /// that cannot be removed never stops the others).
    pub fn sweep(&self, pty: &dyn PtyService) -> Sweep {
        let now = (self.clock)();
        let mut outcome = Sweep::default();
        let mut gone = Vec::new();
        {
            let mut records = self.records();
            for r in records.values_mut() {
                match r.status {
                    // Ended before, its directory not removed yet: try again.
                    ScratchStatus::Active if r.ended_at.is_some() => {
                        gone.push(r.session_id.clone());
                    }
                    ScratchStatus::Active => {
                        let live = pty
                            .get_session(&r.session_id)
                            .is_some_and(|s| s.status.is_live());
                        if live {
                            continue;
                        }
                        r.ended_at = Some(now);
                        match self.config.retention {
                            Retention::Ephemeral => gone.push(r.session_id.clone()),
                            Retention::Keep => r.status = ScratchStatus::Kept,
                            Retention::PendingDecision => {
                                r.status = ScratchStatus::PendingDecision;
                                r.expires_at =
                                    Some(now.saturating_add(self.config.decision_ttl_ms));
                            }
                        }
                    }
                    ScratchStatus::PendingDecision => {
                        if r.expires_at.is_some_and(|at| now >= at) {
                            gone.push(r.session_id.clone());
                        }
                    }
                    ScratchStatus::Kept | ScratchStatus::Promoted => {}
                }
            }
            for id in gone {
                let Some(r) = records.get_mut(&id) else {
                    continue;
                };
                match self.remove_dir(&r.path) {
                    Ok(()) => {
                        records.remove(&id);
                        outcome.removed.push(id);
                    }
                    Err(e) => {
                        // Reported when it starts failing, or fails differently, not at every
                        // sweep; the record shows it meanwhile.
                        let text = e.to_string();
                        if r.removal_error.as_deref() != Some(text.as_str()) {
                            r.removal_error = Some(text);
                            outcome.failed.push((id, e));
                        }
                    }
                }
            }
        }
        outcome
    }

    /// Keeps a scratch workspace whose task ended (no expiry).
    pub fn keep(&self, session_id: &str) -> Result<ScratchRecord> {
        let mut records = self.records();
        let r = records
            .get_mut(session_id)
            .ok_or_else(|| not_found(session_id))?;
        r.status = ScratchStatus::Kept;
        r.expires_at = None;
        r.removal_error = None;
        Ok(r.clone())
    }

    /// Removes a scratch workspace's directory and record. Refused while its session runs.
    pub fn delete(&self, session_id: &str, pty: &dyn PtyService) -> Result<()> {
        let mut records = self.records();
        let r = records
            .get(session_id)
            .ok_or_else(|| not_found(session_id))?;
        refuse_if_live(pty, session_id, "delete")?;
        self.remove_dir(&r.path)?;
        records.remove(session_id);
        Ok(())
    }

    /// Keeps a scratch workspace under a name: its directory moves to `<baseDir>/<name>`
    /// (default `scratch-<first 8 of the session id>`). Refused while its session runs, when the
    /// name is not 1–64 of `[A-Za-z0-9._-]` (not starting with `.`), or when the target exists.
    pub fn promote(
        &self,
        session_id: &str,
        name: Option<&str>,
        pty: &dyn PtyService,
    ) -> Result<ScratchRecord> {
        let mut records = self.records();
        let r = records
            .get_mut(session_id)
            .ok_or_else(|| not_found(session_id))?;
        refuse_if_live(pty, session_id, "promote")?;
        let short: String = session_id.chars().take(8).collect();
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("scratch-{short}"));
        let valid = name.len() <= 64
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::InvalidParameter(format!(
                "scratch name must be 1-64 of A-Z a-z 0-9 . _ - and not start with '.': {name:?}"
            )));
        }
        let target = self.config.base_dir.join(&name);
        if target.exists() {
            return Err(Error::Refused(format!(
                "{} already exists",
                target.display()
            )));
        }
        if r.path != target {
            std::fs::rename(&r.path, &target).map_err(|e| Error::Io {
                context: format!("moving {} to {}", r.path.display(), target.display()),
                source: e,
            })?;
        }
        r.path = target;
        r.status = ScratchStatus::Promoted;
        r.expires_at = None;
        r.removal_error = None;
        Ok(r.clone())
    }

    /// Removes `path` if it lies inside the base directory (it always does for records made by
    /// `START_CODING_TASK`; anything else is refused rather than deleted).
    fn remove_dir(&self, path: &Path) -> Result<()> {
        let Ok(real) = path.canonicalize() else {
            return Ok(()); // already gone
        };
        let base = self
            .config
            .base_dir
            .canonicalize()
            .unwrap_or_else(|_| self.config.base_dir.clone());
        if !real.starts_with(&base) || real == base {
            return Err(Error::Refused(format!(
                "{} is not a scratch directory under {}",
                path.display(),
                base.display()
            )));
        }
        std::fs::remove_dir_all(&real).map_err(|e| Error::Io {
            context: format!("removing {}", real.display()),
            source: e,
        })
    }

    /// Sweeps every `interval` on a background thread until the store is dropped.
    pub fn start_sweeper(
        store: &Arc<ScratchStore>,
        pty: Arc<dyn PtyService>,
        interval: Duration,
        on_error: impl Fn(&str) + Send + 'static,
    ) -> std::io::Result<()> {
        let weak: Weak<ScratchStore> = Arc::downgrade(store);
        std::thread::Builder::new()
            .name("scratch-sweeper".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(store) = weak.upgrade() else { return };
                    for (id, e) in store.sweep(pty.as_ref()).failed {
                        on_error(&format!(
                            "scratch workspace cleanup failed for session {id}: {e}"
                        ));
                    }
                }
            })
            .map(|_| ())
    }
}

fn not_found(id: &str) -> Error {
    Error::ScratchNotFound(id.to_string())
}

fn refuse_if_live(pty: &dyn PtyService, id: &str, what: &str) -> Result<()> {
    if pty.get_session(id).is_some_and(|s| s.status.is_live()) {
        return Err(Error::Refused(format!(
            "session {id} is still running; stop it before you {what} its scratch workspace"
        )));
    }
    Ok(())
}
