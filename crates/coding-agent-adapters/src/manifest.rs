//! Agent manifests: one YAML file per agent, embedded in the binary and overridable.
//!
//! The detection part of a manifest (schema 1: `rules`, `prompt_box`, timings, …) belongs to
//! `pty-manager`; this module reads the whole file with its own types for the sections only this
//! crate uses (`install`, `version_args`, `memory_file`, `launch`, `credentials`, `models`) and
//! hands the detection part to the engine unchanged, except for the policy rewrite in
//! [`crate::policy`].
//!
//! Lookup order for `<type>.yaml`: the directory in `AGENT_ORCHESTRATOR_AGENTS_DIR` (tests), then
//! `$XDG_CONFIG_HOME/agent-orchestrator/agents` (or `~/.config/agent-orchestrator/agents`), then
//! the embedded manifest. An override replaces the whole manifest; a broken override is an error,
//! never silently skipped, because a typo must not disable detection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::{AgentType, Error, Result};

/// Environment variable naming a directory of manifest overrides (checked first).
pub const AGENTS_DIR_ENV: &str = "AGENT_ORCHESTRATOR_AGENTS_DIR";

/// A credential provider a CLI can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Anthropic (Claude models).
    Anthropic,
    /// OpenAI.
    Openai,
    /// Google (Gemini models).
    Google,
    /// OpenRouter.
    Openrouter,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 4] = [
        Provider::Anthropic,
        Provider::Openai,
        Provider::Google,
        Provider::Openrouter,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
            Provider::Google => "google",
            Provider::Openrouter => "openrouter",
        }
    }

    /// The conventional variables holding this provider's key, read when no key is configured
    /// explicitly.
    pub fn key_variables(self) -> &'static [&'static str] {
        match self {
            Provider::Anthropic => &["ANTHROPIC_API_KEY"],
            Provider::Openai => &["OPENAI_API_KEY"],
            Provider::Google => &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            Provider::Openrouter => &["OPENROUTER_API_KEY"],
        }
    }
}

/// How to install a CLI and where its documentation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallInfo {
    /// The install command as an argv (shown to people; never run by this crate).
    pub command: Vec<String>,
    /// Documentation link.
    pub docs: String,
}

impl InstallInfo {
    /// The install command as one line for display.
    pub fn command_line(&self) -> String {
        self.command
            .iter()
            .map(|a| {
                if a.chars()
                    .any(|c| c.is_whitespace() || "[]*?\"'$".contains(c))
                {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a CLI takes the initial task as an argument.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TaskArgv {
    /// It cannot: the task is typed after the session is ready.
    #[default]
    None,
    /// As the last positional argument.
    Positional,
    /// After this flag (Gemini: `-i <prompt>`).
    Flag(String),
}

impl Serialize for TaskArgv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            TaskArgv::None => s.serialize_str("none"),
            TaskArgv::Positional => s.serialize_str("positional"),
            TaskArgv::Flag(f) => s.serialize_str(f),
        }
    }
}

impl<'de> Deserialize<'de> for TaskArgv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "none" => TaskArgv::None,
            "positional" => TaskArgv::Positional,
            f if f.starts_with('-') => TaskArgv::Flag(f.to_owned()),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "task_argv must be none, positional or a flag: {other:?}"
                )));
            }
        })
    }
}

fn default_post_ready_delay() -> u64 {
    300
}

/// The `launch` section: how a run of the CLI is put together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSection {
    /// Flag that takes the model name (`--model`, `-m`).
    #[serde(default)]
    pub model_flag: Option<String>,
    /// Flag that takes a session id the orchestrator chooses (for resume).
    #[serde(default)]
    pub session_id_flag: Option<String>,
    /// How the initial task can be passed as an argument.
    #[serde(default)]
    pub task_argv: TaskArgv,
    /// Delay between `session_ready` and typing the task.
    #[serde(default = "default_post_ready_delay")]
    pub post_ready_delay_ms: u64,
    /// Codex: point a custom provider at the base URL with `-c` pairs (it skips the login menu).
    #[serde(default)]
    pub codex_provider: bool,
    /// Arguments that skip the trust dialog; added only when the caller trusts the workdir.
    #[serde(default)]
    pub trust_args: Vec<String>,
    /// Environment variables that trust the workdir; set only when the caller trusts it.
    #[serde(default)]
    pub trust_env: BTreeMap<String, String>,
    /// Arguments added when a custom base URL is used.
    #[serde(default)]
    pub base_url_args: Vec<String>,
    /// Arguments that load the memory file, added when it exists.
    #[serde(default)]
    pub memory_args: Vec<String>,
}

impl Default for LaunchSection {
    fn default() -> Self {
        LaunchSection {
            model_flag: None,
            session_id_flag: None,
            task_argv: TaskArgv::None,
            post_ready_delay_ms: default_post_ready_delay(),
            codex_provider: false,
            trust_args: Vec::new(),
            trust_env: BTreeMap::new(),
            base_url_args: Vec::new(),
            memory_args: Vec::new(),
        }
    }
}

/// Which environment variables carry a provider's key and base URL for one CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEnv {
    /// Variables that receive the key (all of them).
    pub key_env: Vec<String>,
    /// Variables that receive the base URL (all of them).
    #[serde(default)]
    pub base_url_env: Vec<String>,
}

/// A model recommendation for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The provider whose key enables it.
    pub provider: Provider,
    /// Model for demanding work (`None`: the CLI's default).
    #[serde(default)]
    pub powerful: Option<String>,
    /// Model for quick work (`None`: the CLI's default).
    #[serde(default)]
    pub fast: Option<String>,
}

fn default_ready_settle() -> u64 {
    100
}
fn default_task_settle() -> u64 {
    1500
}
fn default_enter_delay() -> u64 {
    50
}
fn default_version_args() -> Vec<String> {
    vec!["--version".to_owned()]
}

/// The parts of a manifest file this crate reads (unknown top-level keys belong to the engine).
#[derive(Debug, Deserialize)]
struct ManifestFile {
    schema: u32,
    #[serde(rename = "type")]
    agent_type: String,
    #[serde(default)]
    name: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "default_ready_settle")]
    ready_settle_ms: u64,
    #[serde(default = "default_task_settle")]
    task_complete_settle_ms: u64,
    #[serde(default = "default_enter_delay")]
    min_enter_delay_ms: u64,
    #[serde(default)]
    rules: Vec<serde_yaml::Value>,
    install: InstallInfo,
    #[serde(default = "default_version_args")]
    version_args: Vec<String>,
    #[serde(default)]
    memory_file: Option<String>,
    #[serde(default)]
    launch: LaunchSection,
    #[serde(default)]
    credentials: BTreeMap<Provider, CredentialEnv>,
    #[serde(default)]
    models: Vec<ModelEntry>,
}

/// One agent's manifest: detection rules (for `pty-manager`) and everything needed to launch it.
#[derive(Debug, Clone)]
pub struct AgentManifest {
    /// The agent.
    pub agent: AgentType,
    /// Where it came from: `builtin` or the override file's path.
    pub source: String,
    /// Display name.
    pub name: String,
    /// Program, looked up on PATH.
    pub command: String,
    /// Arguments always passed.
    pub args: Vec<String>,
    /// Fixed environment variables (no secrets).
    pub env: BTreeMap<String, String>,
    /// `ready` must hold this long on an unchanged screen.
    pub ready_settle_ms: u64,
    /// A finished turn must hold this long.
    pub task_complete_settle_ms: u64,
    /// Minimum delay between typed text and its Enter.
    pub min_enter_delay_ms: u64,
    /// Install command and docs link.
    pub install: InstallInfo,
    /// Arguments of the version command (`--version`; Hermes: `version`).
    pub version_args: Vec<String>,
    /// The memory file the CLI reads from the workdir (`CLAUDE.md`, `AGENTS.md`, …).
    pub memory_file: Option<String>,
    /// Launch details.
    pub launch: LaunchSection,
    /// Credential variables per provider.
    pub credentials: BTreeMap<Provider, CredentialEnv>,
    /// Model recommendations.
    pub models: Vec<ModelEntry>,
    /// The whole document, for the policy rewrite of its rules.
    doc: serde_yaml::Value,
    /// Rule ids with their `category` (policy gates), in file order.
    rule_categories: Vec<(String, Option<String>)>,
    /// Each rule's written `safe` flag, in file order (with the categories: what a policy changes).
    rule_safe: Vec<bool>,
    /// Compiled adapters, one per distinct set of effective `safe` flags, shared by this
    /// manifest's clones: a session's adapter is built once per agent and policy, not per session.
    adapters: AdapterCache,
}

/// Compiled adapters keyed by the rules' effective `safe` flags (a handful: one per preset and
/// onboarding/trust/key combination actually used).
#[derive(Clone, Default)]
struct AdapterCache(Arc<Mutex<Vec<CachedAdapter>>>);

/// One policy outcome (each rule's effective `safe` flag, in file order) and its adapter.
type CachedAdapter = (Vec<bool>, Arc<pty_manager::DeclarativeAdapter>);

impl std::fmt::Debug for AdapterCache {
    // The compiled rules would repeat the whole manifest; how many there are is what matters.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|c| c.len()).unwrap_or_default();
        write!(f, "AdapterCache({n} compiled)")
    }
}

impl AgentManifest {
    /// The embedded manifest of an agent.
    ///
    /// ```
    /// use coding_agent_adapters::{AgentManifest, AgentType};
    /// let m = AgentManifest::builtin(AgentType::Codex).unwrap();
    /// assert_eq!(m.command, "codex");
    /// assert!(m.args.contains(&"--no-daemon".to_string()));
    /// ```
    pub fn builtin(agent: AgentType) -> Result<Self> {
        Self::parse(agent, agent.builtin_manifest(), "builtin")
    }

    /// Parse and check a manifest text for `agent`.
    pub fn parse(agent: AgentType, text: &str, source: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidManifest {
            source_name: format!("{source} ({agent})"),
            reason,
        };
        let file: ManifestFile = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.schema != 1 {
            return Err(bad(format!(
                "unsupported schema {} (expected 1)",
                file.schema
            )));
        }
        if file.agent_type != agent.as_str() {
            return Err(bad(format!(
                "type is {:?}, expected {:?}",
                file.agent_type,
                agent.as_str()
            )));
        }
        if file.command.trim().is_empty() {
            return Err(bad("empty command".to_owned()));
        }
        let mut rule_categories = Vec::with_capacity(file.rules.len());
        let mut rule_safe = Vec::with_capacity(file.rules.len());
        for r in &file.rules {
            let id = r
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("a rule has no id".to_owned()))?;
            let category = r
                .get("category")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            if let Some(c) = category
                .as_deref()
                .filter(|c| crate::policy::Gate::parse(c).is_none())
            {
                return Err(bad(format!("rule {id}: unknown category {c:?}")));
            }
            rule_categories.push((id.to_owned(), category));
            rule_safe.push(r.get("safe").and_then(|v| v.as_bool()).unwrap_or(false));
        }
        let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let m = AgentManifest {
            agent,
            source: source.to_owned(),
            name: file.name,
            command: file.command,
            args: file.args,
            env: file.env,
            ready_settle_ms: file.ready_settle_ms,
            task_complete_settle_ms: file.task_complete_settle_ms,
            min_enter_delay_ms: file.min_enter_delay_ms,
            install: file.install,
            version_args: file.version_args,
            memory_file: file.memory_file,
            launch: file.launch,
            credentials: file.credentials,
            models: file.models,
            doc,
            rule_categories,
            rule_safe,
            adapters: AdapterCache::default(),
        };
        // The engine has the last word on the detection part (regexes, regions, fields).
        pty_manager::AdapterManifest::from_yaml(text).map_err(|e| Error::Detection {
            source_name: format!("{source} ({agent})"),
            source: e,
        })?;
        Ok(m)
    }

    /// Rule ids with their policy category, in file order.
    pub fn rule_categories(&self) -> &[(String, Option<String>)] {
        &self.rule_categories
    }

    /// The manifest as the engine should see it, with each rule's `safe` flag decided by
    /// `policy` (see [`crate::policy`]).
    pub fn detection_manifest(
        &self,
        policy: &crate::AnswerPolicy,
    ) -> Result<pty_manager::AdapterManifest> {
        let mut doc = self.doc.clone();
        if let Some(rules) = doc.get_mut("rules").and_then(|r| r.as_sequence_mut()) {
            for rule in rules {
                let category = rule
                    .get("category")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned);
                let Some(map) = rule.as_mapping_mut() else {
                    continue;
                };
                let written_safe = map.get("safe").and_then(|v| v.as_bool()).unwrap_or(false);
                let safe = written_safe && policy.allows(category.as_deref());
                map.insert("safe".into(), safe.into());
            }
        }
        let text = serde_yaml::to_string(&doc).map_err(|e| Error::InvalidManifest {
            source_name: self.source.clone(),
            reason: e.to_string(),
        })?;
        pty_manager::AdapterManifest::from_yaml(&text).map_err(|e| Error::Detection {
            source_name: self.source.clone(),
            source: e,
        })
    }

    /// A `pty-manager` adapter for this agent whose rules answer only what `policy` allows.
    ///
    /// A clone of [`AgentManifest::shared_adapter`]'s: its compiled rules are shared, only the
    /// manifest's fields are copied. Prefer `shared_adapter` where an `Arc` is wanted anyway.
    pub fn adapter(&self, policy: &crate::AnswerPolicy) -> Result<pty_manager::DeclarativeAdapter> {
        Ok(self.shared_adapter(policy)?.as_ref().clone())
    }

    /// The adapter for `policy`, compiled on first use and then shared by every session (and by
    /// every clone of this manifest) whose policy gives the rules the same `safe` flags.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use coding_agent_adapters::{AgentManifest, AgentType, AnswerPolicy, ApprovalPreset};
    /// let m = AgentManifest::builtin(AgentType::Claude).unwrap();
    /// let p = AnswerPolicy::for_preset(ApprovalPreset::Standard);
    /// assert!(Arc::ptr_eq(&m.shared_adapter(&p).unwrap(), &m.shared_adapter(&p).unwrap()));
    /// ```
    pub fn shared_adapter(
        &self,
        policy: &crate::AnswerPolicy,
    ) -> Result<Arc<pty_manager::DeclarativeAdapter>> {
        // The same computation as `detection_manifest`'s, without rewriting the document.
        let key: Vec<bool> = self
            .rule_safe
            .iter()
            .zip(&self.rule_categories)
            .map(|(safe, (_, category))| *safe && policy.allows(category.as_deref()))
            .collect();
        // Compiling under the lock makes a second caller wait for the first compile instead of
        // doing it again.
        let mut cache = self
            .adapters
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, a)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(a));
        }
        let adapter =
            pty_manager::DeclarativeAdapter::from_manifest(self.detection_manifest(policy)?)
                .map_err(|e| Error::Detection {
                    source_name: self.source.clone(),
                    source: e,
                })?;
        let adapter = Arc::new(adapter);
        cache.push((key, Arc::clone(&adapter)));
        Ok(adapter)
    }

    /// The compiled detection rules under `policy`, for [`pty_manager::explain`].
    pub fn rule_set(&self, policy: &crate::AnswerPolicy) -> Result<pty_manager::RuleSet> {
        let m = self.detection_manifest(policy)?;
        pty_manager::RuleSet::compile(&m.rules).map_err(|e| Error::Detection {
            source_name: self.source.clone(),
            source: e,
        })
    }
}

/// The manifests of every agent, after overrides.
#[derive(Debug, Clone)]
pub struct Registry {
    manifests: Vec<AgentManifest>,
}

impl Registry {
    /// The embedded manifests only.
    pub fn builtin() -> Result<Self> {
        Self::load(&[])
    }

    /// Embedded manifests, each replaced by `<dir>/<type>.yaml` from the first of `dirs` that has
    /// one.
    pub fn load(dirs: &[PathBuf]) -> Result<Self> {
        let mut manifests = Vec::with_capacity(AgentType::ALL.len());
        for agent in AgentType::ALL {
            let file = dirs
                .iter()
                .map(|d| d.join(format!("{agent}.yaml")))
                .find(|p| p.is_file());
            let m = match file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| Error::io("cannot read", &path, e))?;
                    AgentManifest::parse(agent, &text, &path.display().to_string())?
                }
                None => AgentManifest::builtin(agent)?,
            };
            manifests.push(m);
        }
        Ok(Registry { manifests })
    }

    /// Embedded manifests with the overrides of this process's environment
    /// ([`override_dirs`] over `std::env::var`).
    pub fn from_env() -> Result<Self> {
        Self::load(&override_dirs(|k| std::env::var(k).ok()))
    }

    /// The manifest of one agent.
    pub fn get(&self, agent: AgentType) -> &AgentManifest {
        // `load` fills every agent in `AgentType::ALL` order.
        &self.manifests[AgentType::ALL
            .iter()
            .position(|a| *a == agent)
            .unwrap_or_default()]
    }

    /// Every manifest, in [`AgentType::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = &AgentManifest> {
        self.manifests.iter()
    }
}

/// Override directories, most important first: `AGENT_ORCHESTRATOR_AGENTS_DIR`, then the user's
/// config directory (`$XDG_CONFIG_HOME` or `$HOME/.config`) + `agent-orchestrator/agents`.
pub fn override_dirs(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = env(AGENTS_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    let config = env("XDG_CONFIG_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        });
    if let Some(c) = config {
        dirs.push(c.join("agent-orchestrator").join("agents"));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Gate;
    use crate::{AnswerPolicy, ApprovalPreset};
    use pty_manager::Adapter;

    #[test]
    fn adapters_are_compiled_once_per_policy_and_shared() {
        let m = AgentManifest::builtin(AgentType::Claude).unwrap();
        let standard = AnswerPolicy::for_preset(ApprovalPreset::Standard);
        let a = m.shared_adapter(&standard).unwrap();
        // Same policy, a clone of the manifest (the registry's is cloned by callers): same one.
        assert!(Arc::ptr_eq(&a, &m.shared_adapter(&standard).unwrap()));
        assert!(Arc::ptr_eq(
            &a,
            &m.clone().shared_adapter(&standard).unwrap()
        ));
        // `adapter` hands out a clone sharing the compiled rules.
        assert!(Arc::ptr_eq(
            a.detector().rules(),
            m.adapter(&standard).unwrap().detector().rules()
        ));
        // A policy that changes which rules are safe gets its own, with its own answers.
        let trusting = AnswerPolicy {
            trust_workdir: true,
            ..standard.clone()
        };
        let b = m.shared_adapter(&trusting).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let safe = |x: &pty_manager::DeclarativeAdapter| -> Vec<String> {
            x.manifest()
                .rules
                .iter()
                .filter(|r| r.safe)
                .map(|r| r.id.clone())
                .collect()
        };
        assert!(safe(&b).contains(&"claude.trust-folder".to_owned()));
        assert!(!safe(&a).contains(&"claude.trust-folder".to_owned()));
        // Each is what compiling the policy's manifest directly gives.
        for (policy, x) in [(&standard, &a), (&trusting, &b)] {
            let direct = pty_manager::DeclarativeAdapter::from_manifest(
                m.detection_manifest(policy).unwrap(),
            )
            .unwrap();
            assert_eq!(safe(&direct), safe(x));
        }
        assert_eq!(m.adapters.0.lock().unwrap().len(), 2);
        assert!(format!("{m:?}").contains("AdapterCache(2 compiled)"));
    }

    #[test]
    fn every_builtin_manifest_parses_and_compiles() {
        for agent in AgentType::ALL {
            let m = AgentManifest::builtin(agent).unwrap_or_else(|e| panic!("{agent}: {e}"));
            assert_eq!(m.agent, agent);
            assert!(!m.install.command.is_empty(), "{agent}");
            assert!(m.install.docs.starts_with("https://"), "{agent}");
            assert!(m.memory_file.is_some(), "{agent}");
            let set = m.rule_set(&crate::AnswerPolicy::default()).unwrap();
            assert_eq!(set.len(), m.rule_categories().len());
            for (id, cat) in m.rule_categories() {
                assert!(id.starts_with(&format!("{agent}.")), "{id}");
                if let Some(c) = cat {
                    assert!(Gate::parse(c).is_some(), "{id}: {c}");
                }
            }
        }
    }

    #[test]
    fn facts_from_behavior_are_in_the_manifests() {
        let r = Registry::builtin().unwrap();
        let codex = r.get(AgentType::Codex);
        assert!(codex.args.iter().any(|a| a == "--no-daemon"));
        assert_eq!(codex.min_enter_delay_ms, 500);
        assert_eq!(r.get(AgentType::Gemini).min_enter_delay_ms, 500);
        assert_eq!(r.get(AgentType::Claude).ready_settle_ms, 3000);
        assert_eq!(r.get(AgentType::Hermes).version_args, ["version"]);
        assert_eq!(r.get(AgentType::Claude).launch.post_ready_delay_ms, 800);
        assert_eq!(
            r.get(AgentType::Gemini).launch.task_argv,
            TaskArgv::Flag("-i".into())
        );
        assert_eq!(r.get(AgentType::Aider).launch.task_argv, TaskArgv::None);
        let aider = r.get(AgentType::Aider);
        for flag in [
            "--no-check-update",
            "--no-show-release-notes",
            "--analytics-disable",
        ] {
            assert!(aider.args.iter().any(|a| a == flag), "{flag}");
        }
    }

    #[test]
    fn overrides_replace_a_manifest_and_broken_ones_fail() {
        let dir = crate::testutil::TempDir::new("manifest-override");
        let text = AgentType::Pi
            .builtin_manifest()
            .replace("command: pi\n", "command: my-pi\n");
        std::fs::write(dir.path().join("pi.yaml"), text).unwrap();
        let r = Registry::load(&[dir.path().to_owned()]).unwrap();
        assert_eq!(r.get(AgentType::Pi).command, "my-pi");
        assert!(r.get(AgentType::Pi).source.ends_with("pi.yaml"));
        assert_eq!(r.get(AgentType::Claude).source, "builtin");

        // A typo in a rule key must not silently disable the rule.
        let typo = AgentType::Pi
            .builtin_manifest()
            .replacen("    pattern:", "    patern:", 1);
        std::fs::write(dir.path().join("pi.yaml"), typo).unwrap();
        assert!(Registry::load(&[dir.path().to_owned()]).is_err());
        // Nor may a category the policy does not know.
        let cat = AgentType::Claude.builtin_manifest().replacen(
            "category: file_write",
            "category: files",
            1,
        );
        std::fs::write(dir.path().join("pi.yaml"), AgentType::Pi.builtin_manifest()).unwrap();
        std::fs::write(dir.path().join("claude.yaml"), cat).unwrap();
        let e = Registry::load(&[dir.path().to_owned()]).unwrap_err();
        assert!(e.to_string().contains("unknown category"), "{e}");
    }

    #[test]
    fn override_dirs_order() {
        let env = |k: &str| match k {
            AGENTS_DIR_ENV => Some("/tmp/agents".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(
            override_dirs(env),
            [
                PathBuf::from("/tmp/agents"),
                PathBuf::from("/home/u/.config/agent-orchestrator/agents")
            ]
        );
        let xdg = |k: &str| (k == "XDG_CONFIG_HOME").then(|| "/x".to_owned());
        assert_eq!(
            override_dirs(xdg),
            [PathBuf::from("/x/agent-orchestrator/agents")]
        );
    }
}
