//! One run of an agent CLI: command, arguments, environment, how the task gets in, and the
//! configuration files the run needs (BEHAVIOR.md §7).
//!
//! [`plan_launch`] is pure: it decides and returns a [`LaunchSpec`]; nothing is written until the
//! caller passes `spec.files` to [`crate::write_files`] (and keeps the record to revert later).
//! Secrets (API keys, the hook token) go only into the environment or 0600 files in the private
//! directory, never into arguments; [`LaunchSpec`]'s `Debug` redacts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::files::{ConfigFile, FileFormat, FileLocation, FileRoots};
use crate::hooks::{HookEndpoint, claude_hook_settings, gemini_hook_files};
use crate::manifest::TaskArgv;
use crate::{
    AgentManifest, AgentType, AnswerPolicy, ApprovalConfig, ApprovalPreset, Error, PresetContext,
    Provider, Result, approval_config,
};

/// Credentials for the agent's providers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// API keys by provider.
    pub keys: BTreeMap<Provider, String>,
    /// Base URLs by provider (custom endpoints, local proxies).
    pub base_urls: BTreeMap<Provider, String>,
    /// Claude: `ANTHROPIC_AUTH_TOKEN` (a bearer token instead of a key).
    pub anthropic_auth_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("base_urls", &self.base_urls)
            .field(
                "anthropic_auth_token",
                &self.anthropic_auth_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// Keys and base URLs from the conventional variables (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`,
    /// `GEMINI_API_KEY`/`GOOGLE_API_KEY`, `OPENROUTER_API_KEY`; `ANTHROPIC_BASE_URL`,
    /// `OPENAI_BASE_URL`, `GOOGLE_GEMINI_BASE_URL`, `OPENROUTER_BASE_URL`;
    /// `ANTHROPIC_AUTH_TOKEN`), read through `env` so callers decide what is visible.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let mut c = Credentials::default();
        for p in Provider::ALL {
            if let Some(k) = p.key_variables().iter().find_map(|v| get(v)) {
                c.keys.insert(p, k);
            }
            let base = match p {
                Provider::Anthropic => "ANTHROPIC_BASE_URL",
                Provider::Openai => "OPENAI_BASE_URL",
                Provider::Google => "GOOGLE_GEMINI_BASE_URL",
                Provider::Openrouter => "OPENROUTER_BASE_URL",
            };
            if let Some(u) = get(base) {
                c.base_urls.insert(p, u);
            }
        }
        c.anthropic_auth_token = get("ANTHROPIC_AUTH_TOKEN");
        c
    }

    /// These credentials with `explicit` taking precedence, key by key.
    pub fn overridden_by(mut self, explicit: &Credentials) -> Self {
        self.keys
            .extend(explicit.keys.iter().map(|(k, v)| (*k, v.clone())));
        self.base_urls
            .extend(explicit.base_urls.iter().map(|(k, v)| (*k, v.clone())));
        if explicit.anthropic_auth_token.is_some() {
            self.anthropic_auth_token = explicit.anthropic_auth_token.clone();
        }
        self
    }

    /// Whether any key for `p` is present.
    pub fn has(&self, p: Provider) -> bool {
        self.keys.contains_key(&p)
    }
}

/// What the caller wants from a run.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// The session's working directory (absolute).
    pub workdir: PathBuf,
    /// The session's private directory (settings files, hook headers); required for Claude
    /// settings and for hooks.
    pub private_dir: Option<PathBuf>,
    /// The agent's home directory, for onboarding files written on request.
    pub home: Option<PathBuf>,
    /// Model name for the model flag.
    pub model: Option<String>,
    /// Approval preset.
    pub preset: Option<ApprovalPreset>,
    /// The initial task.
    pub task: Option<String>,
    /// Pass the task as an argument where the CLI supports it (else typed after ready).
    pub task_via_argv: bool,
    /// Provider keys and base URLs.
    pub credentials: Credentials,
    /// The keys were supplied by the orchestrator's configuration (so the CLI's "use this API
    /// key?" question may be answered).
    pub supplied_credentials: bool,
    /// Trust the workdir: answer trust dialogs and pass the CLI's skip-trust flag.
    pub trust_workdir: bool,
    /// Answer first-run onboarding screens.
    pub accept_onboarding: bool,
    /// Write the agent's own config (onboarding seen, trust entry, approved key, auth type) into
    /// `home`, so the dialogs never show.
    pub write_agent_config: bool,
    /// The agent's version (Claude records it with onboarding).
    pub agent_version: Option<String>,
    /// A session id to hand to CLIs that accept one (for resume).
    pub session_id: Option<String>,
    /// Hook telemetry endpoint (Claude, Gemini).
    pub hooks: Option<HookEndpoint>,
    /// Whether the agent runs as root.
    pub running_as_root: bool,
    /// Extra arguments, appended before the task.
    pub extra_args: Vec<String>,
}

/// How the initial task reaches the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDelivery {
    /// No task.
    None,
    /// It is in the arguments; the session goes `busy` right after its first `ready`.
    Argv,
    /// Type it after `session_ready` and this delay, with the agent's submit delay before Enter.
    TypeAfterReady {
        /// The text.
        text: String,
        /// Delay after `session_ready`.
        post_ready_delay_ms: u64,
        /// Minimum delay between the text and its Enter.
        min_enter_delay_ms: u64,
    },
}

/// Everything needed to start one run.
#[derive(Clone)]
pub struct LaunchSpec {
    /// The agent.
    pub agent: AgentType,
    /// Program (looked up on PATH).
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variables to add (secrets included: never log them; see `secret_env`).
    pub env: BTreeMap<String, String>,
    /// Names of `env` entries that hold secrets.
    pub secret_env: Vec<String>,
    /// How the task gets in.
    pub task: TaskDelivery,
    /// Files to write before starting (merged; revert with the record [`crate::write_files`]
    /// returns).
    pub files: Vec<ConfigFile>,
    /// The directories `files` are relative to.
    pub roots: FileRoots,
    /// Which dialogs the session may answer.
    pub policy: AnswerPolicy,
    /// The preset as flags and files, when one was asked for.
    pub approval: Option<ApprovalConfig>,
    /// What was asked for but cannot be done for this CLI (shown to the user, logged).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for LaunchSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: BTreeMap<&String, &str> = self
            .env
            .iter()
            .map(|(k, v)| {
                let shown = if self.secret_env.contains(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k, shown)
            })
            .collect();
        f.debug_struct("LaunchSpec")
            .field("agent", &self.agent)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &env)
            .field("task", &self.task)
            .field(
                "files",
                &self.files.iter().map(|f| &f.location).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish()
    }
}

fn check_value(name: &'static str, v: &str) -> Result<()> {
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') || v.contains('\0') {
        return Err(Error::InvalidOption {
            name,
            reason: "contains a control character".to_owned(),
        });
    }
    Ok(())
}

fn check_url(name: &'static str, v: &str) -> Result<()> {
    let ok = (v.starts_with("http://") || v.starts_with("https://"))
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\".contains(c));
    if !ok {
        return Err(Error::InvalidOption {
            name,
            reason: "must be an http(s) URL without spaces or quotes".to_owned(),
        });
    }
    Ok(())
}

/// Decide how to run `manifest`'s CLI for `opts`.
pub fn plan_launch(manifest: &AgentManifest, opts: &LaunchOptions) -> Result<LaunchSpec> {
    let agent = manifest.agent;
    if !opts.workdir.is_absolute() {
        return Err(Error::InvalidOption {
            name: "workdir",
            reason: format!("{} is not absolute", opts.workdir.display()),
        });
    }
    if let Some(m) = &opts.model {
        check_value("model", m)?;
        if m.starts_with('-') || m.trim().is_empty() {
            return Err(Error::InvalidOption {
                name: "model",
                reason: format!("{m:?} is not a model name"),
            });
        }
    }
    for u in opts.credentials.base_urls.values() {
        check_url("base url", u)?;
    }
    let launch = &manifest.launch;
    let mut args = manifest.args.clone();
    let mut env = manifest.env.clone();
    let mut secret_env = Vec::new();
    let mut files = Vec::new();

    let mut warnings = Vec::new();
    if opts.trust_workdir {
        args.extend(launch.trust_args.iter().cloned());
        env.extend(launch.trust_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let (Some(flag), Some(model)) = (&launch.model_flag, &opts.model) {
        args.push(flag.clone());
        args.push(model.clone());
    }
    if let (Some(flag), Some(id)) = (&launch.session_id_flag, &opts.session_id) {
        check_value("session id", id)?;
        args.push(flag.clone());
        args.push(id.clone());
    }

    // Credentials: every variable the manifest names for a provider we have.
    let creds = &opts.credentials;
    let mut base_url_used = false;
    for (provider, vars) in &manifest.credentials {
        if let Some(key) = creds.keys.get(provider) {
            check_value("api key", key)?;
            for v in &vars.key_env {
                env.insert(v.clone(), key.clone());
                secret_env.push(v.clone());
            }
        }
        if let Some(url) = creds.base_urls.get(provider) {
            for v in &vars.base_url_env {
                env.insert(v.clone(), url.clone());
                base_url_used = true;
            }
        }
    }
    if agent == AgentType::Claude
        && let Some(t) = &creds.anthropic_auth_token
    {
        env.insert("ANTHROPIC_AUTH_TOKEN".into(), t.clone());
        secret_env.push("ANTHROPIC_AUTH_TOKEN".into());
    }
    if launch.codex_provider
        && (creds.has(Provider::Openai) || creds.base_urls.contains_key(&Provider::Openai))
    {
        // Codex ignores OPENAI_BASE_URL and shows its login menu even with a key; a custom
        // provider reading the key from the environment avoids both. One `-c` per value.
        let base = creds
            .base_urls
            .get(&Provider::Openai)
            .map(String::as_str)
            .unwrap_or("https://api.openai.com/v1");
        for kv in [
            "model_provider=\"parallax\"".to_owned(),
            "model_providers.parallax.name=\"parallax\"".to_owned(),
            format!("model_providers.parallax.base_url=\"{base}\""),
            "model_providers.parallax.env_key=\"OPENAI_API_KEY\"".to_owned(),
            "model_providers.parallax.wire_api=\"responses\"".to_owned(),
        ] {
            args.push("-c".into());
            args.push(kv);
        }
        base_url_used = false;
    }
    if base_url_used {
        args.extend(launch.base_url_args.iter().cloned());
    }
    if agent == AgentType::Pi && !creds.base_urls.is_empty() {
        // Pi takes base URLs only from its models.json; a provider entry with just `baseUrl`
        // keeps the built-in models and their auth.
        match &opts.home {
            Some(_) => {
                let providers: serde_json::Map<String, serde_json::Value> = creds
                    .base_urls
                    .iter()
                    .map(|(p, u)| (p.as_str().to_owned(), json!({ "baseUrl": u })))
                    .collect();
                files.push(ConfigFile {
                    location: FileLocation::Home(".pi/agent/models.json".into()),
                    format: FileFormat::Json,
                    content: json!({ "providers": providers }),
                    mode: None,
                });
            }
            None => warnings.push(
                "pi reads base URLs from ~/.pi/agent/models.json; no home directory was given, so \
                 the base URLs are not used"
                    .to_owned(),
            ),
        }
    }
    if let Some(mem) = &manifest.memory_file
        && !launch.memory_args.is_empty()
        && opts.workdir.join(mem).is_file()
    {
        args.extend(launch.memory_args.iter().cloned());
    }

    // The approval preset, and for Claude one private settings file with permissions and hooks.
    let approval = opts.preset.map(|p| {
        approval_config(
            agent,
            p,
            &PresetContext {
                workdir: Some(opts.workdir.clone()),
                running_as_root: opts.running_as_root,
            },
        )
    });
    let mut claude_settings = serde_json::Map::new();
    if let Some(a) = &approval {
        args.extend(a.cli_flags.iter().cloned());
        env.extend(a.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        for f in &a.workspace_files {
            if agent == AgentType::Claude {
                if let Some(o) = f.content.as_object() {
                    claude_settings.extend(o.clone());
                }
            } else {
                files.push(f.clone());
            }
        }
    }
    if let Some(ep) = &opts.hooks {
        match agent {
            AgentType::Claude => {
                if let Some(o) = claude_hook_settings(ep).as_object() {
                    claude_settings.extend(o.clone());
                }
            }
            // Gemini runs project hooks only in a trusted folder [real, 0.61.0].
            AgentType::Gemini if !opts.trust_workdir => warnings.push(
                "gemini hook telemetry needs a trusted workdir; the screen alone is read"
                    .to_owned(),
            ),
            AgentType::Gemini => {
                let private = opts.private_dir.as_deref().ok_or(Error::InvalidOption {
                    name: "private_dir",
                    reason: "hooks need a private directory for their headers file".to_owned(),
                })?;
                files.extend(gemini_hook_files(ep, &opts.workdir, private)?);
            }
            _ => {}
        }
    }
    if !claude_settings.is_empty() {
        let private = opts.private_dir.as_deref().ok_or(Error::InvalidOption {
            name: "private_dir",
            reason: "Claude's --settings file needs a private directory".to_owned(),
        })?;
        let name = "claude-settings.json";
        files.push(ConfigFile {
            location: FileLocation::Private(name.into()),
            format: FileFormat::Json,
            content: serde_json::Value::Object(claude_settings),
            mode: Some(0o600),
        });
        args.push("--settings".into());
        args.push(private.join(name).display().to_string());
    }
    if opts.write_agent_config {
        files.extend(agent_config_files(agent, opts)?);
    }
    args.extend(opts.extra_args.iter().cloned());

    // The task: an argument where the CLI takes one (and it cannot be mistaken for a flag),
    // else typed after ready.
    let task = match opts
        .task
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => TaskDelivery::None,
        Some(t) => {
            check_value("task", t)?;
            match (&launch.task_argv, opts.task_via_argv && !t.starts_with('-')) {
                (TaskArgv::Positional, true) => {
                    args.push(t.to_owned());
                    TaskDelivery::Argv
                }
                (TaskArgv::Flag(f), true) => {
                    args.push(f.clone());
                    args.push(t.to_owned());
                    TaskDelivery::Argv
                }
                _ => TaskDelivery::TypeAfterReady {
                    text: t.to_owned(),
                    post_ready_delay_ms: launch.post_ready_delay_ms,
                    min_enter_delay_ms: manifest.min_enter_delay_ms,
                },
            }
        }
    };

    let policy = AnswerPolicy {
        preset: opts.preset,
        accept_onboarding: opts.accept_onboarding,
        trust_workdir: opts.trust_workdir,
        supplied_api_key: opts.supplied_credentials
            && (creds.has(Provider::Anthropic) || creds.anthropic_auth_token.is_some()),
    };
    Ok(LaunchSpec {
        agent,
        command: manifest.command.clone(),
        args,
        env,
        secret_env,
        task,
        files,
        roots: FileRoots {
            workspace: opts.workdir.clone(),
            private_dir: opts.private_dir.clone(),
            home: opts.home.clone(),
        },
        policy,
        approval,
        warnings,
    })
}

/// The agent's own configuration that makes first-run dialogs not show, written on request.
fn agent_config_files(agent: AgentType, opts: &LaunchOptions) -> Result<Vec<ConfigFile>> {
    if opts.home.is_none() {
        return Err(Error::InvalidOption {
            name: "home",
            reason: "writing the agent's config needs its home directory".to_owned(),
        });
    }
    let workdir = opts.workdir.display().to_string();
    Ok(match agent {
        AgentType::Claude => {
            let mut c = serde_json::Map::new();
            if opts.accept_onboarding {
                c.insert("hasCompletedOnboarding".into(), json!(true));
                c.insert("theme".into(), json!("dark"));
                if let Some(v) = &opts.agent_version {
                    c.insert("lastOnboardingVersion".into(), json!(v));
                }
            }
            if opts.trust_workdir {
                c.insert(
                    "projects".into(),
                    json!({ workdir: { "hasTrustDialogAccepted": true, "projectOnboardingSeenCount": 1 } }),
                );
            }
            if opts.supplied_credentials
                && let Some(key) = opts.credentials.keys.get(&Provider::Anthropic)
            {
                {
                    // Claude remembers approved keys by their last 20 characters.
                    let tail: String = {
                        let chars: Vec<char> = key.chars().collect();
                        chars[chars.len().saturating_sub(20)..].iter().collect()
                    };
                    c.insert(
                        "customApiKeyResponses".into(),
                        json!({ "approved": [tail], "rejected": [] }),
                    );
                }
            }
            if c.is_empty() {
                Vec::new()
            } else {
                vec![ConfigFile {
                    location: FileLocation::Home(".claude.json".into()),
                    format: FileFormat::Json,
                    content: serde_json::Value::Object(c),
                    mode: Some(0o600),
                }]
            }
        }
        AgentType::Gemini => {
            let mut c = serde_json::Map::new();
            if opts.credentials.has(Provider::Google) {
                c.insert(
                    "security".into(),
                    json!({ "auth": { "selectedType": "gemini-api-key" } }),
                );
            }
            if opts.accept_onboarding {
                c.insert("privacy".into(), json!({ "usageStatisticsEnabled": false }));
                c.insert(
                    "general".into(),
                    json!({ "disableAutoUpdate": true, "disableUpdateNag": true }),
                );
            }
            if c.is_empty() {
                Vec::new()
            } else {
                vec![ConfigFile {
                    location: FileLocation::Home(".gemini/settings.json".into()),
                    format: FileFormat::Json,
                    content: serde_json::Value::Object(c),
                    mode: Some(0o600),
                }]
            }
        }
        // Codex keeps trust in TOML (`~/.codex/config.toml`); its trust dialog is answered by the
        // `codex.trust-folder` rule when the caller trusts the workdir. The others need nothing.
        _ => Vec::new(),
    })
}

/// Where the private settings file of a Claude run is (for callers that show it).
pub fn claude_settings_path(private_dir: &Path) -> PathBuf {
    private_dir.join("claude-settings.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    fn opts() -> LaunchOptions {
        LaunchOptions {
            workdir: "/w".into(),
            private_dir: Some("/p".into()),
            home: Some("/h".into()),
            ..LaunchOptions::default()
        }
    }

    fn plan(agent: AgentType, o: &LaunchOptions) -> LaunchSpec {
        let r = Registry::builtin().unwrap();
        plan_launch(r.get(agent), o).unwrap()
    }

    fn key(p: Provider, k: &str) -> Credentials {
        let mut c = Credentials::default();
        c.keys.insert(p, k.into());
        c
    }

    #[test]
    fn codex_runs_without_daemon_with_a_provider_for_the_key() {
        let mut o = opts();
        o.credentials = key(Provider::Openai, "sk-test-secret");
        o.credentials
            .base_urls
            .insert(Provider::Openai, "http://127.0.0.1:9/v1".into());
        o.model = Some("gpt-x".into());
        o.preset = Some(ApprovalPreset::Autonomous);
        let s = plan(AgentType::Codex, &o);
        assert_eq!(s.command, "codex");
        assert_eq!(&s.args[..2], ["--no-daemon", "--no-alt-screen"]);
        assert!(s.args.windows(2).any(|w| w == ["-m", "gpt-x"]));
        assert!(
            s.args
                .windows(2)
                .any(|w| w == ["-c", "model_provider=\"parallax\""])
        );
        assert!(s.args.windows(2).any(|w| w
            == [
                "-c",
                "model_providers.parallax.base_url=\"http://127.0.0.1:9/v1\""
            ]));
        assert!(
            s.args
                .windows(2)
                .any(|w| w == ["-c", "model_providers.parallax.wire_api=\"responses\""])
        );
        assert!(s.args.windows(2).any(|w| w == ["-a", "never"]));
        assert_eq!(s.env["OPENAI_API_KEY"], "sk-test-secret");
        assert!(
            !s.args.iter().any(|a| a.contains("sk-test-secret")),
            "key in argv"
        );
        assert!(!format!("{s:?}").contains("sk-test-secret"), "key in Debug");
        assert!(s.files.is_empty());
    }

    #[test]
    fn claude_settings_file_holds_permissions_and_hooks() {
        let mut o = opts();
        o.preset = Some(ApprovalPreset::Permissive);
        o.hooks = Some(
            HookEndpoint::new(
                "http://127.0.0.1:7/api/coding-agents/hooks",
                "s1",
                "abcdefghijklmnop",
            )
            .unwrap(),
        );
        o.credentials = key(Provider::Anthropic, "sk-ant-xyz");
        o.credentials
            .base_urls
            .insert(Provider::Anthropic, "http://127.0.0.1:7".into());
        o.model = Some("opus".into());
        let s = plan(AgentType::Claude, &o);
        assert!(
            s.args
                .windows(2)
                .any(|w| w == ["--settings", "/p/claude-settings.json"])
        );
        assert!(
            s.args
                .windows(2)
                .any(|w| w == ["--permission-mode", "acceptEdits"])
        );
        assert!(s.args.windows(2).any(|w| w == ["--model", "opus"]));
        assert_eq!(s.env["ANTHROPIC_API_KEY"], "sk-ant-xyz");
        assert_eq!(s.env["ANTHROPIC_BASE_URL"], "http://127.0.0.1:7");
        assert_eq!(s.env["DISABLE_AUTOUPDATER"], "1");
        assert!(!s.env.contains_key("CLAUDE_CODE_SIMPLE"));
        let f = &s.files[0];
        assert_eq!(
            f.location,
            FileLocation::Private("claude-settings.json".into())
        );
        assert_eq!(f.mode, Some(0o600));
        assert!(f.content["permissions"]["allow"].is_array());
        assert_eq!(f.content["hooks"]["Stop"][0]["hooks"][0]["type"], "http");
        // Not supplied by the orchestrator: the API-key question is not answered.
        assert!(!s.policy.supplied_api_key);
        assert!(!s.args.iter().any(|a| a.contains("abcdefghijklmnop")));
    }

    #[test]
    fn task_delivery() {
        let mut o = opts();
        o.task = Some("Fix the bug".into());
        let typed = plan(AgentType::Claude, &o);
        assert_eq!(
            typed.task,
            TaskDelivery::TypeAfterReady {
                text: "Fix the bug".into(),
                post_ready_delay_ms: 800,
                min_enter_delay_ms: 50
            }
        );
        o.task_via_argv = true;
        let c = plan(AgentType::Claude, &o);
        assert_eq!(c.task, TaskDelivery::Argv);
        assert_eq!(c.args.last().unwrap(), "Fix the bug");
        let g = plan(AgentType::Gemini, &o);
        assert!(g.args.ends_with(&["-i".into(), "Fix the bug".into()]));
        // Aider cannot take it as an argument: typed, with its own delays.
        let a = plan(AgentType::Aider, &o);
        assert!(matches!(
            a.task,
            TaskDelivery::TypeAfterReady {
                post_ready_delay_ms: 200,
                ..
            }
        ));
        // Codex's submit delay is 500 ms.
        o.task_via_argv = false;
        let x = plan(AgentType::Codex, &o);
        assert!(matches!(
            x.task,
            TaskDelivery::TypeAfterReady {
                min_enter_delay_ms: 500,
                ..
            }
        ));
        // A task that looks like a flag is never put on the command line.
        o.task_via_argv = true;
        o.task = Some("--dangerously-skip-permissions".into());
        let d = plan(AgentType::Claude, &o);
        assert!(matches!(d.task, TaskDelivery::TypeAfterReady { .. }));
        assert!(!d.args.iter().any(|a| a == "--dangerously-skip-permissions"));
    }

    #[test]
    fn gemini_trust_hooks_and_key() {
        let mut o = opts();
        o.trust_workdir = true;
        o.credentials = key(Provider::Google, "g-key");
        o.credentials
            .base_urls
            .insert(Provider::Google, "http://127.0.0.1:5".into());
        o.preset = Some(ApprovalPreset::Readonly);
        o.session_id = Some("0b0e9a4e-0000-4000-8000-000000000001".into());
        o.hooks =
            Some(HookEndpoint::new("http://127.0.0.1:7/h", "s1", "abcdefghijklmnop").unwrap());
        let s = plan(AgentType::Gemini, &o);
        assert!(s.args.contains(&"--skip-trust".to_owned()));
        assert_eq!(s.env["GEMINI_CLI_TRUST_WORKSPACE"], "true");
        assert!(s.warnings.is_empty());
        assert!(s.args.windows(2).any(|w| w == ["--approval-mode", "plan"]));
        assert!(s.args.windows(2).any(|w| w[0] == "--session-id"));
        assert_eq!(s.env["GEMINI_API_KEY"], "g-key");
        assert_eq!(s.env["GOOGLE_GEMINI_BASE_URL"], "http://127.0.0.1:5");
        assert!(s.policy.trust_workdir);
        let locations: Vec<_> = s.files.iter().map(|f| f.location.clone()).collect();
        assert!(locations.contains(&FileLocation::Workspace(".gemini/settings.json".into())));
        assert!(locations.contains(&FileLocation::Workspace(crate::hooks::GEMINI_SCRIPT.into())));
        // Without trust, no skip-trust flag and the trust rule stays report-only; Gemini would
        // not run project hooks, so none are written and the caller is told.
        let mut o = opts();
        o.hooks =
            Some(HookEndpoint::new("http://127.0.0.1:7/h", "s1", "abcdefghijklmnop").unwrap());
        let s = plan(AgentType::Gemini, &o);
        assert!(!s.args.contains(&"--skip-trust".to_owned()));
        assert!(!s.env.contains_key("GEMINI_CLI_TRUST_WORKSPACE"));
        assert!(!s.policy.trust_workdir);
        assert!(s.files.is_empty());
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn aider_flags_keys_in_env_and_memory() {
        let dir = crate::testutil::TempDir::new("launch-aider");
        std::fs::write(dir.path().join(".aider.conventions.md"), "be brief\n").unwrap();
        let mut o = opts();
        o.workdir = dir.path().to_owned();
        o.credentials = key(Provider::Openai, "sk-o");
        o.credentials
            .base_urls
            .insert(Provider::Openai, "http://127.0.0.1:3/v1".into());
        o.preset = Some(ApprovalPreset::Readonly);
        let s = plan(AgentType::Aider, &o);
        assert_eq!(s.env["OPENAI_API_KEY"], "sk-o");
        assert_eq!(s.env["OPENAI_API_BASE"], "http://127.0.0.1:3/v1");
        assert!(s.args.contains(&"--no-show-model-warnings".to_owned()));
        assert!(
            s.args
                .windows(2)
                .any(|w| w == ["--read", ".aider.conventions.md"])
        );
        assert!(s.args.windows(2).any(|w| w == ["--chat-mode", "ask"]));
        // Never both --yes-always and a readonly mode.
        assert!(!s.args.contains(&"--yes-always".to_owned()));
        assert!(!s.args.iter().any(|a| a.contains("sk-o")));
    }

    #[test]
    fn pi_base_urls_go_to_its_models_file() {
        let mut o = opts();
        o.credentials = key(Provider::Openai, "sk-o");
        o.credentials
            .base_urls
            .insert(Provider::Openai, "http://127.0.0.1:3/v1".into());
        let s = plan(AgentType::Pi, &o);
        assert_eq!(s.args, ["--offline"]);
        assert_eq!(s.env["OPENAI_API_KEY"], "sk-o");
        assert_eq!(
            s.files[0].location,
            FileLocation::Home(".pi/agent/models.json".into())
        );
        assert_eq!(
            s.files[0].content,
            json!({"providers": {"openai": {"baseUrl": "http://127.0.0.1:3/v1"}}})
        );
        o.home = None;
        let s = plan(AgentType::Pi, &o);
        assert!(s.files.is_empty());
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn hermes_maps_keys_to_its_variables() {
        let mut o = opts();
        o.credentials = key(Provider::Openai, "sk-o");
        o.credentials.keys.insert(Provider::Google, "g".into());
        let s = plan(AgentType::Hermes, &o);
        assert_eq!(s.args, ["chat"]);
        assert_eq!(s.env["OPENROUTER_API_KEY"], "sk-o");
        assert_eq!(s.env["OPENAI_API_KEY"], "sk-o");
        assert_eq!(s.env["GOOGLE_API_KEY"], "g");
        assert_eq!(s.env["GEMINI_API_KEY"], "g");
    }

    #[test]
    fn agent_config_only_when_asked() {
        let mut o = opts();
        o.trust_workdir = true;
        o.accept_onboarding = true;
        o.supplied_credentials = true;
        o.credentials = key(Provider::Anthropic, "sk-ant-0123456789abcdefghijXYZ");
        assert!(plan(AgentType::Claude, &o).files.is_empty());
        o.write_agent_config = true;
        o.agent_version = Some("2.1.197".into());
        let s = plan(AgentType::Claude, &o);
        assert!(s.policy.supplied_api_key);
        let f = &s.files[0];
        assert_eq!(f.location, FileLocation::Home(".claude.json".into()));
        assert_eq!(f.content["hasCompletedOnboarding"], true);
        assert_eq!(f.content["lastOnboardingVersion"], "2.1.197");
        assert_eq!(f.content["projects"]["/w"]["hasTrustDialogAccepted"], true);
        assert_eq!(
            f.content["customApiKeyResponses"]["approved"],
            json!(["3456789abcdefghijXYZ"])
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let r = Registry::builtin().unwrap();
        let m = r.get(AgentType::Claude);
        let mut o = opts();
        o.model = Some("--evil".into());
        assert!(plan_launch(m, &o).is_err());
        let mut o = opts();
        o.workdir = "relative".into();
        assert!(plan_launch(m, &o).is_err());
        let mut o = opts();
        o.credentials
            .base_urls
            .insert(Provider::Anthropic, "http://x\" -c evil".into());
        assert!(plan_launch(m, &o).is_err());
        let mut o = opts();
        o.private_dir = None;
        o.preset = Some(ApprovalPreset::Standard);
        assert!(
            plan_launch(m, &o).is_err(),
            "settings without a private dir"
        );
    }

    #[test]
    fn credentials_from_env() {
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-o".to_owned()),
            "GOOGLE_API_KEY" => Some("g".to_owned()),
            "ANTHROPIC_API_KEY" => Some("  ".to_owned()),
            "ANTHROPIC_BASE_URL" => Some("http://127.0.0.1:1".to_owned()),
            _ => None,
        };
        let c = Credentials::from_env(env);
        assert!(c.has(Provider::Openai) && c.has(Provider::Google));
        assert!(!c.has(Provider::Anthropic), "blank values are absent");
        assert_eq!(c.base_urls[&Provider::Anthropic], "http://127.0.0.1:1");
        let explicit = key(Provider::Openai, "sk-explicit");
        let merged = c.overridden_by(&explicit);
        assert_eq!(merged.keys[&Provider::Openai], "sk-explicit");
        assert!(!format!("{merged:?}").contains("sk-"));
    }
}
