//! The `Runtime` trait in the ElizaOS shape, and the standalone runtime the binary uses.
//!
//! An ElizaOS runtime hands an action four things: settings (`getSetting`), services
//! (`getService`), a model call (`useModel`) and a callback that posts a chat reply. The same four
//! are the whole interface between this crate's actions and whatever hosts them: the MCP server,
//! the HTTP API, the `run` subcommand, or a test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::model::{HttpModel, ModelSize};
use crate::scratch::ScratchStore;
use crate::services::{PtyService, WorkspaceService};
use crate::{Error, Result};

/// Name under which the PTY service is registered.
pub const PTY_SERVICE: &str = "PTY_SERVICE";
/// Name under which the workspace service is registered.
pub const CODING_WORKSPACE_SERVICE: &str = "CODING_WORKSPACE_SERVICE";
/// Name under which the scratch workspace records are registered.
pub const SCRATCH_SERVICE: &str = "SCRATCH_WORKSPACES";

/// A service the runtime can hand out by name.
#[derive(Clone)]
pub enum Service {
    /// `PTY_SERVICE`: agent sessions in pseudo-terminals.
    Pty(Arc<dyn PtyService>),
    /// `CODING_WORKSPACE_SERVICE`: git workspaces, pull requests and issues.
    Workspace(Arc<dyn WorkspaceService>),
    /// `SCRATCH_WORKSPACES`: scratch directories and their retention.
    Scratch(Arc<ScratchStore>),
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Service::Pty(_) => f.write_str("Service::Pty"),
            Service::Workspace(_) => f.write_str("Service::Workspace"),
            Service::Scratch(_) => f.write_str("Service::Scratch"),
        }
    }
}

/// What an action may use of its host.
pub trait Runtime: Send + Sync {
    /// A setting by name (`PTY_SERVICE_CONFIG`, `GITHUB_TOKEN`, …), or `None` when unset.
    fn get_setting(&self, key: &str) -> Option<String>;
    /// A registered service by name ([`PTY_SERVICE`], [`CODING_WORKSPACE_SERVICE`]).
    fn get_service(&self, name: &str) -> Option<Service>;
    /// One model call, text in and text out. Callers parse the answer with
    /// [`crate::model::parse_contract`]; a runtime without a model returns
    /// [`Error::ModelUnavailable`].
    fn use_model(&self, size: ModelSize, prompt: &str) -> Result<String>;
    /// Posts a chat message that is not the direct reply of an action (supervision notices,
    /// progress of long actions).
    fn reply(&self, text: &str);
}

/// Typed access to the two services, for any runtime.
pub trait RuntimeExt {
    /// The PTY service, if registered.
    fn pty(&self) -> Option<Arc<dyn PtyService>>;
    /// The workspace service, if registered.
    fn workspace(&self) -> Option<Arc<dyn WorkspaceService>>;
    /// The scratch workspace records, if registered.
    fn scratch(&self) -> Option<Arc<ScratchStore>>;
}

impl<R: Runtime + ?Sized> RuntimeExt for R {
    fn pty(&self) -> Option<Arc<dyn PtyService>> {
        match self.get_service(PTY_SERVICE) {
            Some(Service::Pty(p)) => Some(p),
            _ => None,
        }
    }
    fn workspace(&self) -> Option<Arc<dyn WorkspaceService>> {
        match self.get_service(CODING_WORKSPACE_SERVICE) {
            Some(Service::Workspace(w)) => Some(w),
            _ => None,
        }
    }
    fn scratch(&self) -> Option<Arc<ScratchStore>> {
        match self.get_service(SCRATCH_SERVICE) {
            Some(Service::Scratch(s)) => Some(s),
            _ => None,
        }
    }
}

/// Settings as users write them: an optional YAML file first, then the environment.
///
/// The YAML file is a mapping from setting name to value; a nested mapping (for example
/// `PTY_SERVICE_CONFIG: {maxConcurrentSessions: 4}`) is kept as its JSON text, which is how
/// ElizaOS stores structured settings too.
#[derive(Clone, Default)]
pub struct SettingsStore {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for SettingsStore {
    // Values can be secrets; only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsStore")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SettingsStore {
    /// Builds the store from environment pairs and an optional YAML file. File values win over
    /// the environment, so a project file can pin what a shell exports.
    pub fn load(
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Self> {
        let mut values: BTreeMap<String, String> = env.into_iter().collect();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
            for (k, v) in parse_yaml_settings(&text).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                source: e.into(),
            })? {
                values.insert(k, v);
            }
        }
        Ok(SettingsStore { values })
    }

    /// A store holding exactly these pairs (tests, embedding).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        SettingsStore {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A setting, `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<String> {
        self.values
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    /// Sets one value (the `run` subcommand's flags, tests).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }
}

fn parse_yaml_settings(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let serde_yaml::Value::Mapping(map) = doc else {
        if matches!(doc, serde_yaml::Value::Null) {
            return Ok(Vec::new());
        }
        return Err("the top level must be a mapping of setting names".into());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let serde_yaml::Value::String(key) = k else {
            return Err("setting names must be strings".into());
        };
        let value = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Null => continue,
            other => {
                let json: serde_json::Value =
                    serde_yaml::from_value(other).map_err(|e| format!("{key}: {e}"))?;
                json.to_string()
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

type ReplySink = Box<dyn Fn(&str) + Send + Sync>;

/// The runtime of the `agent-orchestrator` binary: settings from env and YAML, the services it
/// was given, an HTTP model client when one is configured, and replies to a sink (stderr, an MCP
/// log, a test buffer).
pub struct StandaloneRuntime {
    settings: SettingsStore,
    pty: Option<Arc<dyn PtyService>>,
    workspace: Option<Arc<dyn WorkspaceService>>,
    scratch: Option<Arc<ScratchStore>>,
    model: Option<HttpModel>,
    sink: ReplySink,
    replies: Mutex<Vec<String>>,
}

impl std::fmt::Debug for StandaloneRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneRuntime")
            .field("settings", &self.settings)
            .field("pty", &self.pty.is_some())
            .field("workspace", &self.workspace.is_some())
            .field("model", &self.model)
            .finish()
    }
}

impl StandaloneRuntime {
    /// A runtime over these settings, with a model client if the settings configure one and no
    /// services yet.
    pub fn new(settings: SettingsStore) -> Result<Self> {
        let model = HttpModel::from_settings(&|k| settings.get(k))?;
        Ok(StandaloneRuntime {
            settings,
            pty: None,
            workspace: None,
            scratch: None,
            model,
            sink: Box::new(|_| {}),
            replies: Mutex::new(Vec::new()),
        })
    }

    /// Registers the PTY service.
    pub fn with_pty(mut self, pty: Arc<dyn PtyService>) -> Self {
        self.pty = Some(pty);
        self
    }

    /// Registers the workspace service.
    pub fn with_workspace(mut self, ws: Arc<dyn WorkspaceService>) -> Self {
        self.workspace = Some(ws);
        self
    }

    /// Registers the scratch workspace records.
    pub fn with_scratch(mut self, scratch: Arc<ScratchStore>) -> Self {
        self.scratch = Some(scratch);
        self
    }

    /// Where asynchronous chat replies go (besides being kept for [`Self::take_replies`]).
    pub fn with_reply_sink(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }

    /// Whether a model is configured (supervision needs one to decide anything).
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// The settings.
    pub fn settings(&self) -> &SettingsStore {
        &self.settings
    }

    /// Drains the replies posted so far.
    pub fn take_replies(&self) -> Vec<String> {
        std::mem::take(&mut *self.replies.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Runtime for StandaloneRuntime {
    fn get_setting(&self, key: &str) -> Option<String> {
        self.settings.get(key)
    }

    fn get_service(&self, name: &str) -> Option<Service> {
        match name {
            PTY_SERVICE => self.pty.clone().map(Service::Pty),
            CODING_WORKSPACE_SERVICE => self.workspace.clone().map(Service::Workspace),
            SCRATCH_SERVICE => self.scratch.clone().map(Service::Scratch),
            _ => None,
        }
    }

    fn use_model(&self, size: ModelSize, prompt: &str) -> Result<String> {
        match &self.model {
            Some(m) => m.complete(size, prompt),
            None => Err(Error::ModelUnavailable(
                "set ANTHROPIC_API_KEY or OPENAI_API_KEY (or ORCHESTRATOR_MODEL_BASE_URL)".into(),
            )),
        }
    }

    fn reply(&self, text: &str) {
        (self.sink)(text);
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_file_wins_over_env_and_nested_maps_become_json() {
        let dir = std::env::temp_dir().join(format!("op-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        std::fs::write(
            &file,
            "PTY_SERVICE_CONFIG:\n  maxSessions: 3\n  debug: true\nGITHUB_TOKEN: from-file\nEMPTY:\n",
        )
        .unwrap();
        let s = SettingsStore::load(
            [
                ("GITHUB_TOKEN".to_string(), "from-env".to_string()),
                ("OTHER".to_string(), "x".to_string()),
            ],
            Some(&file),
        )
        .unwrap();
        assert_eq!(s.get("GITHUB_TOKEN").as_deref(), Some("from-file"));
        assert_eq!(s.get("OTHER").as_deref(), Some("x"));
        let v: serde_json::Value =
            serde_json::from_str(&s.get("PTY_SERVICE_CONFIG").unwrap()).unwrap();
        assert_eq!(v["maxSessions"], 3);
        assert_eq!(s.get("EMPTY"), None);
        assert!(!format!("{s:?}").contains("from-file"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("op-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.yaml");
        std::fs::write(&file, "- a list\n").unwrap();
        let err = SettingsStore::load(Vec::new(), Some(&file)).unwrap_err();
        assert!(err.to_string().contains("c.yaml"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
