//! Typed plugin settings, read through [`Runtime::get_setting`](crate::Runtime::get_setting)
//! exactly as users write them (BEHAVIOR.md §10.1).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// A secret value: shown as `<redacted>` by `Debug`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The approval presets of BEHAVIOR.md §7.10.
pub const APPROVAL_PRESETS: [&str; 4] = ["readonly", "standard", "permissive", "autonomous"];

/// `PTY_SERVICE_CONFIG` plus the related flat settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyServiceConfig {
    /// Sessions allowed at once (`maxConcurrentSessions`, alias `maxSessions`; default 8).
    pub max_concurrent_sessions: usize,
    /// A session idle (no output, not blocked) for longer than this is stopped and reported;
    /// 0 disables it (`idleTimeoutMs`; default 30 minutes).
    pub idle_timeout_ms: u64,
    /// Stall timer of busy sessions (`stallTimeoutMs`; default 4000).
    pub stall_timeout_ms: u64,
    /// Lines kept per session for `/output` (`maxLogLines`; default 1000).
    pub max_log_lines: usize,
    /// Verbose logging (`debug`).
    pub debug: bool,
    /// Whether the coding-agent adapters are registered (`registerCodingAdapters`; default true).
    pub register_coding_adapters: bool,
    /// Preset used when a spawn names none: `PARALLAX_DEFAULT_APPROVAL_PRESET` if valid, else
    /// `defaultApprovalPreset`, else `permissive`.
    pub default_approval_preset: String,
    /// Write each agent's own first-run configuration (onboarding seen, workdir trusted, the
    /// supplied key approved) into this home directory before launching it. Off unless
    /// `ORCHESTRATOR_WRITE_AGENT_CONFIG` is true; then `HOME`.
    pub agent_config_home: Option<std::path::PathBuf>,
    /// Where each session's PTY output is recorded (`<dir>/<session id>/output.raw`):
    /// `PARALLAX_DEBUG_CAPTURE` true → `.parallax/pty-captures` under the current directory.
    pub debug_capture_dir: Option<std::path::PathBuf>,
}

impl Default for PtyServiceConfig {
    fn default() -> Self {
        PtyServiceConfig {
            max_concurrent_sessions: 8,
            idle_timeout_ms: 30 * 60 * 1000,
            stall_timeout_ms: 4000,
            max_log_lines: 1000,
            debug: false,
            register_coding_adapters: true,
            default_approval_preset: "permissive".into(),
            agent_config_home: None,
            debug_capture_dir: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPty {
    max_concurrent_sessions: Option<usize>,
    max_sessions: Option<usize>,
    idle_timeout_ms: Option<u64>,
    stall_timeout_ms: Option<u64>,
    max_log_lines: Option<usize>,
    debug: Option<bool>,
    register_coding_adapters: Option<bool>,
    default_approval_preset: Option<String>,
}

impl PtyServiceConfig {
    /// Reads `PTY_SERVICE_CONFIG` (JSON or YAML object) and `PARALLAX_DEFAULT_APPROVAL_PRESET`.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut c = PtyServiceConfig::default();
        if let Some(text) = get("PTY_SERVICE_CONFIG") {
            let raw: RawPty = parse_object("PTY_SERVICE_CONFIG", &text)?;
            if let Some(n) = raw.max_concurrent_sessions.or(raw.max_sessions) {
                if n == 0 {
                    return Err(Error::InvalidSetting {
                        name: "PTY_SERVICE_CONFIG".into(),
                        reason: "maxConcurrentSessions must be at least 1".into(),
                    });
                }
                c.max_concurrent_sessions = n;
            }
            c.idle_timeout_ms = raw.idle_timeout_ms.unwrap_or(c.idle_timeout_ms);
            c.stall_timeout_ms = raw.stall_timeout_ms.unwrap_or(c.stall_timeout_ms);
            c.max_log_lines = raw.max_log_lines.unwrap_or(c.max_log_lines);
            c.debug = raw.debug.unwrap_or(false);
            c.register_coding_adapters = raw.register_coding_adapters.unwrap_or(true);
            if let Some(p) = raw.default_approval_preset {
                c.default_approval_preset = check_preset("PTY_SERVICE_CONFIG", &p)?;
            }
        }
        if get("ORCHESTRATOR_WRITE_AGENT_CONFIG")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        {
            c.agent_config_home = get("HOME").map(std::path::PathBuf::from);
        }
        // The flat setting wins when it names a real preset; anything else falls back to the
        // config value, as BEHAVIOR.md §10.1 says.
        if let Some(v) = get("PARALLAX_DEBUG_CAPTURE").filter(|v| !v.trim().is_empty()) {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => {
                    let cwd = std::env::current_dir().map_err(|e| Error::InvalidSetting {
                        name: "PARALLAX_DEBUG_CAPTURE".into(),
                        reason: format!("cannot read the current directory: {e}"),
                    })?;
                    c.debug_capture_dir = Some(cwd.join(".parallax").join("pty-captures"));
                }
                "0" | "false" | "no" | "off" => {}
                other => {
                    return Err(Error::InvalidSetting {
                        name: "PARALLAX_DEBUG_CAPTURE".into(),
                        reason: format!("{other:?} is not true or false"),
                    });
                }
            }
        }
        if let Some(p) = get("PARALLAX_DEFAULT_APPROVAL_PRESET") {
            let p = p.trim().to_ascii_lowercase();
            if APPROVAL_PRESETS.contains(&p.as_str()) {
                c.default_approval_preset = p;
            }
        }
        Ok(c)
    }
}

/// `CODING_WORKSPACE_CONFIG` plus the related flat settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceConfig {
    /// Where workspaces live (`baseDir`, default `~/.milady/workspaces`, `~` expanded).
    pub base_dir: PathBuf,
    /// Branch prefix (`branchPrefix`, default `milady`).
    pub branch_prefix: String,
    /// Verbose logging.
    pub debug: bool,
    /// Workspaces older than this may be cleaned up; 0 = never (`workspaceTtlMs`, default one day).
    pub workspace_ttl_ms: u64,
    /// The forge token: `credentials.github.token`, else `GITHUB_TOKEN`.
    pub github_token: Option<Secret>,
    /// Scratch retention: `pending_decision` (default), `ephemeral` or `persistent`
    /// (`PARALLAX_SCRATCH_RETENTION`; `keep` = `persistent`).
    pub scratch_retention: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawWs {
    base_dir: Option<String>,
    branch_prefix: Option<String>,
    debug: Option<bool>,
    workspace_ttl_ms: Option<u64>,
    credentials: Option<RawCreds>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCreds {
    github: Option<RawGithub>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawGithub {
    token: Option<String>,
}

impl WorkspaceConfig {
    /// Reads `CODING_WORKSPACE_CONFIG`, `GITHUB_TOKEN` and `PARALLAX_SCRATCH_RETENTION`; `home`
    /// expands a leading `~`.
    pub fn from_settings(
        get: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Self> {
        let raw: RawWs = match get("CODING_WORKSPACE_CONFIG") {
            Some(text) => parse_object("CODING_WORKSPACE_CONFIG", &text)?,
            None => RawWs::default(),
        };
        let base = raw
            .base_dir
            .unwrap_or_else(|| "~/.milady/workspaces".to_string());
        let base_dir = expand_tilde(&base, home).ok_or_else(|| Error::InvalidSetting {
            name: "CODING_WORKSPACE_CONFIG".into(),
            reason: format!("baseDir {base} needs a home directory to expand `~`"),
        })?;
        let branch_prefix = raw.branch_prefix.unwrap_or_else(|| "milady".into());
        let github_token = raw
            .credentials
            .and_then(|c| c.github)
            .and_then(|g| g.token)
            .filter(|t| !t.trim().is_empty())
            .or_else(|| get("GITHUB_TOKEN"))
            .map(Secret::new);
        let retention = match get("PARALLAX_SCRATCH_RETENTION")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("ephemeral") => "ephemeral",
            Some("persistent") | Some("keep") => "persistent",
            _ => "pending_decision",
        };
        Ok(WorkspaceConfig {
            base_dir,
            branch_prefix,
            debug: raw.debug.unwrap_or(false),
            workspace_ttl_ms: raw.workspace_ttl_ms.unwrap_or(86_400_000),
            github_token,
            scratch_retention: retention.into(),
        })
    }
}

/// The environment variables an agent CLI reads for its key, from the plugin's settings
/// (BEHAVIOR.md §10.1). Google's two setting names are read in one place and handed to Gemini
/// under both names it accepts. `CUSTOM_CREDENTIAL_KEYS` adds named settings verbatim.
pub fn agent_credentials(get: &dyn Fn(&str) -> Option<String>) -> Vec<(String, Secret)> {
    let mut out = Vec::new();
    if let Some(k) = get("ANTHROPIC_API_KEY") {
        out.push(("ANTHROPIC_API_KEY".to_string(), Secret::new(k)));
    }
    if let Some(k) = get("OPENAI_API_KEY") {
        out.push(("OPENAI_API_KEY".to_string(), Secret::new(k)));
    }
    // Custom endpoints (proxies, gateways, local servers) travel with the keys.
    for name in [
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
    ] {
        if let Some(v) = get(name) {
            out.push((name.to_string(), Secret::new(v)));
        }
    }
    if let Some(k) = get("GOOGLE_GENERATIVE_AI_API_KEY").or_else(|| get("GENERATIVE_AI_API_KEY")) {
        out.push(("GEMINI_API_KEY".to_string(), Secret::new(k.clone())));
        out.push(("GOOGLE_API_KEY".to_string(), Secret::new(k)));
    }
    if let Some(list) = get("CUSTOM_CREDENTIAL_KEYS") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid
                && !out.iter().any(|(n, _)| n == name)
                && let Some(v) = get(name)
            {
                out.push((name.to_string(), Secret::new(v)));
            }
        }
    }
    out
}

/// The model setting of an agent type: `PARALLAX_<AGENT>_MODEL_POWERFUL`, else `…_FAST`. For
/// Aider, `PARALLAX_AIDER_PROVIDER` prefixes a model named without a provider (`sonnet` →
/// `anthropic/sonnet`), which is how Aider (through litellm) is told which provider to call.
pub fn agent_model(get: &dyn Fn(&str) -> Option<String>, agent_type: &str) -> Option<String> {
    let upper = agent_type.to_ascii_uppercase();
    let model = get(&format!("PARALLAX_{upper}_MODEL_POWERFUL"))
        .or_else(|| get(&format!("PARALLAX_{upper}_MODEL_FAST")))
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())?;
    let provider = (agent_type == "aider")
        .then(|| get("PARALLAX_AIDER_PROVIDER"))
        .flatten()
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty());
    match provider {
        Some(p) if !model.contains('/') => Some(format!("{p}/{model}")),
        _ => Some(model),
    }
}

fn check_preset(setting: &str, p: &str) -> Result<String> {
    let p = p.trim().to_ascii_lowercase();
    if APPROVAL_PRESETS.contains(&p.as_str()) {
        Ok(p)
    } else {
        Err(Error::InvalidSetting {
            name: setting.into(),
            reason: format!("unknown preset: {p}"),
        })
    }
}

/// Parses a structured setting: JSON text, or YAML (a superset) for hand-written files.
fn parse_object<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .or_else(|_| serde_yaml::from_str(text))
        .map_err(|e: serde_yaml::Error| Error::InvalidSetting {
            name: name.into(),
            reason: e.to_string(),
        })
}

/// Expands a leading `~` or `~/`; other paths are returned as given.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    if path == "~" {
        return home.map(Path::to_path_buf);
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return home.map(|h| h.join(rest));
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn getter(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn pty_defaults_and_user_spellings() {
        assert_eq!(
            PtyServiceConfig::from_settings(&getter(&[])).unwrap(),
            PtyServiceConfig::default()
        );
        let c = PtyServiceConfig::from_settings(&getter(&[(
            "PTY_SERVICE_CONFIG",
            r#"{"maxSessions": 3, "idleTimeoutMs": 5000, "debug": true, "defaultApprovalPreset": "standard"}"#,
        )]))
        .unwrap();
        assert_eq!(c.max_concurrent_sessions, 3);
        assert_eq!(c.idle_timeout_ms, 5000);
        assert!(c.debug);
        assert_eq!(c.default_approval_preset, "standard");
        let c = PtyServiceConfig::from_settings(&getter(&[
            ("PTY_SERVICE_CONFIG", "{maxConcurrentSessions: 2}"),
            ("PARALLAX_DEFAULT_APPROVAL_PRESET", "readonly"),
        ]))
        .unwrap();
        assert_eq!(c.max_concurrent_sessions, 2);
        assert_eq!(c.default_approval_preset, "readonly");
        // An unknown flat value falls back to the config value.
        let c = PtyServiceConfig::from_settings(&getter(&[(
            "PARALLAX_DEFAULT_APPROVAL_PRESET",
            "yolo",
        )]))
        .unwrap();
        assert_eq!(c.default_approval_preset, "permissive");
        let e = PtyServiceConfig::from_settings(&getter(&[(
            "PTY_SERVICE_CONFIG",
            r#"{"defaultApprovalPreset": "yolo"}"#,
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("unknown preset: yolo"), "{e}");
    }

    #[test]
    fn aider_provider_prefixes_a_bare_model() {
        // (settings, agent, expected model)
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
        let table: [Row; 5] = [
            (
                &[("PARALLAX_AIDER_MODEL_FAST", "sonnet")],
                "aider",
                Some("sonnet"),
            ),
            (
                &[
                    ("PARALLAX_AIDER_MODEL_FAST", "sonnet"),
                    ("PARALLAX_AIDER_PROVIDER", "Anthropic"),
                ],
                "aider",
                Some("anthropic/sonnet"),
            ),
            (
                &[
                    ("PARALLAX_AIDER_MODEL_POWERFUL", "openai/gpt-4o"),
                    ("PARALLAX_AIDER_PROVIDER", "anthropic"),
                ],
                "aider",
                Some("openai/gpt-4o"),
            ),
            (&[("PARALLAX_AIDER_PROVIDER", "anthropic")], "aider", None),
            (
                &[
                    ("PARALLAX_CODEX_MODEL_FAST", "gpt-5"),
                    ("PARALLAX_AIDER_PROVIDER", "anthropic"),
                ],
                "codex",
                Some("gpt-5"),
            ),
        ];
        for (pairs, agent, want) in table {
            assert_eq!(
                agent_model(&getter(pairs), agent).as_deref(),
                want,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn debug_capture_is_a_boolean() {
        let dir = |v: &str| {
            PtyServiceConfig::from_settings(&getter(&[("PARALLAX_DEBUG_CAPTURE", v)]))
                .map(|c| c.debug_capture_dir)
        };
        assert!(
            dir("true")
                .unwrap()
                .unwrap()
                .ends_with(".parallax/pty-captures")
        );
        assert_eq!(dir("0").unwrap(), None);
        assert_eq!(dir("").unwrap(), None);
        assert!(
            dir("maybe")
                .unwrap_err()
                .to_string()
                .contains("PARALLAX_DEBUG_CAPTURE")
        );
    }

    #[test]
    fn workspace_config_expands_tilde_and_reads_token_from_either_place() {
        let home = Path::new("/home/u");
        let c = WorkspaceConfig::from_settings(&getter(&[]), Some(home)).unwrap();
        assert_eq!(c.base_dir, PathBuf::from("/home/u/.milady/workspaces"));
        assert_eq!(c.branch_prefix, "milady");
        assert_eq!(c.workspace_ttl_ms, 86_400_000);
        assert_eq!(c.github_token, None);
        assert_eq!(c.scratch_retention, "pending_decision");
        let c = WorkspaceConfig::from_settings(
            &getter(&[
                (
                    "CODING_WORKSPACE_CONFIG",
                    r#"{"baseDir": "~/ws", "credentials": {"github": {"token": "ghp_file"}}, "branchPrefix": "bot"}"#,
                ),
                ("GITHUB_TOKEN", "ghp_env"),
                ("PARALLAX_SCRATCH_RETENTION", "keep"),
            ]),
            Some(home),
        )
        .unwrap();
        assert_eq!(c.base_dir, PathBuf::from("/home/u/ws"));
        assert_eq!(c.github_token.as_ref().unwrap().expose(), "ghp_file");
        assert_eq!(c.branch_prefix, "bot");
        assert_eq!(c.scratch_retention, "persistent");
        assert!(!format!("{c:?}").contains("ghp_file"));
        let c = WorkspaceConfig::from_settings(&getter(&[("GITHUB_TOKEN", "ghp_env")]), Some(home))
            .unwrap();
        assert_eq!(c.github_token.unwrap().expose(), "ghp_env");
    }

    #[test]
    fn credentials_map_google_names_to_what_gemini_reads() {
        let creds = agent_credentials(&getter(&[
            ("GENERATIVE_AI_API_KEY", "g"),
            ("ANTHROPIC_API_KEY", "a"),
            ("CUSTOM_CREDENTIAL_KEYS", "MY_KEY, bad key ,MISSING"),
            ("MY_KEY", "m"),
        ]));
        let names: Vec<&str> = creds.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "ANTHROPIC_API_KEY",
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
                "MY_KEY"
            ]
        );
    }
}
