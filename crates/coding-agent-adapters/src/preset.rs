//! Approval presets (BEHAVIOR.md §7.10): what a session may do without asking, mapped to each
//! CLI's own flags and configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::files::{ConfigFile, FileFormat, FileLocation};
use crate::{AgentType, Error};

/// How much a session may do without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalPreset {
    /// Read-only. Safe for auditing.
    Readonly,
    /// Standard dev. Reads + web auto, writes/shell prompt.
    Standard,
    /// File ops auto-approved, shell still prompts. (The plugin's default.)
    Permissive,
    /// Everything auto-approved. Use with sandbox.
    Autonomous,
}

/// What a tool does, for approval decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCategory {
    /// Reading files (low risk).
    FileRead,
    /// Creating or editing files (medium).
    FileWrite,
    /// Running commands (high).
    Shell,
    /// Fetching or searching the web (medium).
    Web,
    /// Sub-agents, skills, MCP tools (medium).
    Agent,
    /// Plans and to-do lists (low).
    Planning,
    /// Asking the user (low).
    UserInteraction,
}

/// What a preset says about a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approved without asking.
    Allow,
    /// The CLI asks (the session becomes `blocked` unless someone answers).
    Ask,
    /// Refused.
    Deny,
}

impl ToolCategory {
    /// Every category.
    pub const ALL: [ToolCategory; 7] = [
        ToolCategory::FileRead,
        ToolCategory::FileWrite,
        ToolCategory::Shell,
        ToolCategory::Web,
        ToolCategory::Agent,
        ToolCategory::Planning,
        ToolCategory::UserInteraction,
    ];

    /// The snake-case name used in manifests (`category:`) and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCategory::FileRead => "file_read",
            ToolCategory::FileWrite => "file_write",
            ToolCategory::Shell => "shell",
            ToolCategory::Web => "web",
            ToolCategory::Agent => "agent",
            ToolCategory::Planning => "planning",
            ToolCategory::UserInteraction => "user_interaction",
        }
    }

    /// Parse a snake-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The category of a Claude Code tool (BEHAVIOR.md §7.10); MCP tools (`mcp__…`) are `agent`.
    pub fn of_claude_tool(tool: &str) -> Option<Self> {
        Some(match tool {
            "Read" | "Grep" | "Glob" | "LS" | "NotebookRead" => ToolCategory::FileRead,
            "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => ToolCategory::FileWrite,
            "Bash" | "BashOutput" | "KillShell" | "KillBash" => ToolCategory::Shell,
            "WebSearch" | "WebFetch" => ToolCategory::Web,
            "Task" | "Skill" | "Agent" => ToolCategory::Agent,
            "TodoWrite" | "ExitPlanMode" => ToolCategory::Planning,
            "AskUserQuestion" => ToolCategory::UserInteraction,
            t if t.starts_with("mcp__") => ToolCategory::Agent,
            _ => return None,
        })
    }

    /// The category of a Gemini CLI tool (BEHAVIOR.md §7.10).
    pub fn of_gemini_tool(tool: &str) -> Option<Self> {
        Some(match tool {
            "read_file" | "read_many_files" | "list_directory" | "glob" | "search_file_content" => {
                ToolCategory::FileRead
            }
            "write_file" | "replace" => ToolCategory::FileWrite,
            "run_shell_command" => ToolCategory::Shell,
            "web_fetch" | "google_web_search" => ToolCategory::Web,
            "activate_skill" | "get_internal_docs" => ToolCategory::Agent,
            "save_memory" | "write_todos" => ToolCategory::Planning,
            "ask_user" => ToolCategory::UserInteraction,
            _ => return None,
        })
    }
}

impl fmt::Display for ToolCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CLAUDE_TOOLS: &[(ToolCategory, &[&str])] = &[
    (
        ToolCategory::FileRead,
        &["Read", "Grep", "Glob", "LS", "NotebookRead"],
    ),
    (
        ToolCategory::FileWrite,
        &["Write", "Edit", "MultiEdit", "NotebookEdit"],
    ),
    (ToolCategory::Shell, &["Bash", "BashOutput", "KillShell"]),
    (ToolCategory::Web, &["WebSearch", "WebFetch"]),
    (ToolCategory::Agent, &["Task", "Skill"]),
    (ToolCategory::Planning, &["TodoWrite"]),
    (ToolCategory::UserInteraction, &["AskUserQuestion"]),
];

impl ApprovalPreset {
    /// Every preset, least to most permissive.
    pub const ALL: [ApprovalPreset; 4] = [
        ApprovalPreset::Readonly,
        ApprovalPreset::Standard,
        ApprovalPreset::Permissive,
        ApprovalPreset::Autonomous,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPreset::Readonly => "readonly",
            ApprovalPreset::Standard => "standard",
            ApprovalPreset::Permissive => "permissive",
            ApprovalPreset::Autonomous => "autonomous",
        }
    }

    /// One-line description.
    pub fn description(self) -> &'static str {
        match self {
            ApprovalPreset::Readonly => "Read-only. Safe for auditing.",
            ApprovalPreset::Standard => "Standard dev. Reads + web auto, writes/shell prompt.",
            ApprovalPreset::Permissive => "File ops auto-approved, shell still prompts.",
            ApprovalPreset::Autonomous => "Everything auto-approved. Use with sandbox.",
        }
    }

    /// What this preset says about a category (the table of BEHAVIOR.md §7.10).
    ///
    /// ```
    /// use coding_agent_adapters::{ApprovalPreset, Decision, ToolCategory};
    /// assert_eq!(ApprovalPreset::Readonly.decision(ToolCategory::Shell), Decision::Deny);
    /// assert_eq!(ApprovalPreset::Permissive.decision(ToolCategory::Shell), Decision::Ask);
    /// assert_eq!(ApprovalPreset::Permissive.decision(ToolCategory::FileWrite), Decision::Allow);
    /// ```
    pub fn decision(self, category: ToolCategory) -> Decision {
        use ToolCategory::*;
        let low = matches!(category, FileRead | Planning | UserInteraction);
        match self {
            ApprovalPreset::Readonly if low => Decision::Allow,
            ApprovalPreset::Readonly => Decision::Deny,
            ApprovalPreset::Standard if low || category == Web => Decision::Allow,
            ApprovalPreset::Standard => Decision::Ask,
            ApprovalPreset::Permissive if category == Shell => Decision::Ask,
            ApprovalPreset::Permissive => Decision::Allow,
            ApprovalPreset::Autonomous => Decision::Allow,
        }
    }

    /// Whether the preset approves the category without asking.
    pub fn auto_approves(self, category: ToolCategory) -> bool {
        self.decision(category) == Decision::Allow
    }
}

impl fmt::Display for ApprovalPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApprovalPreset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        ApprovalPreset::ALL
            .into_iter()
            .find(|p| p.as_str() == t)
            .ok_or_else(|| Error::UnknownPreset(s.to_owned()))
    }
}

/// Facts about the run that change how a preset is expressed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresetContext {
    /// The session's working directory (Claude: `permissions.additionalDirectories`).
    pub workdir: Option<PathBuf>,
    /// Whether the agent runs as root (Claude refuses bypass mode as root).
    pub running_as_root: bool,
}

/// A preset expressed for one CLI: `approval_config(agent, preset)` of BEHAVIOR.md §7.10.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalConfig {
    /// The preset.
    pub preset: ApprovalPreset,
    /// Whether the CLI can enforce it at all (Hermes cannot).
    pub enforced: bool,
    /// Flags added to the command line.
    pub cli_flags: Vec<String>,
    /// Configuration merged into files (workspace or the session's private directory).
    pub workspace_files: Vec<ConfigFile>,
    /// Environment variables (none of the current CLIs need one).
    pub env_vars: BTreeMap<String, String>,
    /// `"<CLI name>: <description>"`.
    pub summary: String,
}

/// Claude's `--settings` `permissions` (and `sandbox`) for a preset.
pub fn claude_settings(preset: ApprovalPreset, ctx: &PresetContext) -> Value {
    let mut allow = Vec::new();
    let mut deny = Vec::new();
    for (cat, tools) in CLAUDE_TOOLS {
        let bypass_as_root = preset == ApprovalPreset::Autonomous && ctx.running_as_root;
        match preset.decision(*cat) {
            Decision::Allow => allow.extend(tools.iter().map(|t| Value::from(*t))),
            Decision::Deny => deny.extend(tools.iter().map(|t| Value::from(*t))),
            Decision::Ask if bypass_as_root => allow.extend(tools.iter().map(|t| Value::from(*t))),
            Decision::Ask => {}
        }
    }
    let mut permissions = json!({ "allow": allow, "deny": deny });
    if let Some(w) = &ctx.workdir {
        permissions["additionalDirectories"] = json!([w.display().to_string()]);
    }
    let mut settings = json!({ "permissions": permissions });
    if preset == ApprovalPreset::Autonomous && !ctx.running_as_root {
        settings["sandbox"] = json!({ "enabled": true, "autoAllowBashIfSandboxed": true });
    }
    settings
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// A preset as each CLI's flags and configuration.
///
/// ```
/// use coding_agent_adapters::{approval_config, AgentType, ApprovalPreset, PresetContext};
/// let c = approval_config(AgentType::Codex, ApprovalPreset::Readonly, &PresetContext::default());
/// assert_eq!(c.cli_flags, ["-s", "read-only", "-a", "on-request"]);
/// ```
pub fn approval_config(
    agent: AgentType,
    preset: ApprovalPreset,
    ctx: &PresetContext,
) -> ApprovalConfig {
    use ApprovalPreset::*;
    let mut enforced = true;
    let mut files = Vec::new();
    let cli_flags = match agent {
        AgentType::Claude => {
            files.push(ConfigFile {
                location: FileLocation::Private("claude-settings.json".into()),
                format: FileFormat::Json,
                content: claude_settings(preset, ctx),
                mode: Some(0o600),
            });
            match (preset, ctx.running_as_root) {
                (Permissive, _) | (Autonomous, true) => {
                    strings(&["--permission-mode", "acceptEdits"])
                }
                (Autonomous, false) => strings(&["--permission-mode", "bypassPermissions"]),
                _ => Vec::new(),
            }
        }
        // 0.169 accepts read-only | workspace-write | danger-full-access and
        // untrusted | on-request | never; upstream's `workspace-read`, `-a untrusted` for standard
        // and `--full-auto` are gone or wrong.
        AgentType::Codex => match preset {
            Readonly => strings(&["-s", "read-only", "-a", "on-request"]),
            Standard | Permissive => {
                strings(&["-s", "workspace-write", "-a", "on-request", "--search"])
            }
            Autonomous => strings(&["-s", "workspace-write", "-a", "never", "--search"]),
        },
        AgentType::Gemini => {
            let mode = match preset {
                Readonly => "plan",
                Standard => "default",
                Permissive => "auto_edit",
                Autonomous => "yolo",
            };
            strings(&["--approval-mode", mode])
        }
        // One source of truth: flags only, never a `.aider.conf.yml` that could contradict them.
        AgentType::Aider => match preset {
            Readonly => strings(&["--chat-mode", "ask", "--no-auto-commits"]),
            Standard => Vec::new(),
            Permissive | Autonomous => strings(&["--yes-always"]),
        },
        AgentType::Pi => match preset {
            Readonly => strings(&["--tools", "read,grep,find,ls"]),
            _ => Vec::new(),
        },
        AgentType::Opencode => {
            let (edit, bash, web) = match preset {
                Readonly => ("deny", "deny", "deny"),
                Standard => ("ask", "ask", "allow"),
                Permissive => ("allow", "ask", "allow"),
                Autonomous => ("allow", "allow", "allow"),
            };
            files.push(ConfigFile {
                location: FileLocation::Workspace("opencode.json".into()),
                format: FileFormat::Json,
                content: json!({ "permission": { "edit": edit, "bash": bash, "webfetch": web } }),
                mode: None,
            });
            Vec::new()
        }
        AgentType::Hermes => {
            enforced = false;
            Vec::new()
        }
    };
    let name = agent.display_name();
    let summary = if enforced {
        format!("{name}: {}", preset.description())
    } else {
        format!("{name}: cannot enforce approval presets ({preset} requested)")
    };
    ApprovalConfig {
        preset,
        enforced,
        cli_flags,
        workspace_files: files,
        env_vars: BTreeMap::new(),
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_table() {
        use ApprovalPreset::*;
        use Decision::*;
        use ToolCategory::*;
        // rows: preset; columns: file_read file_write shell web agent planning user_interaction
        let table = [
            (Readonly, [Allow, Deny, Deny, Deny, Deny, Allow, Allow]),
            (Standard, [Allow, Ask, Ask, Allow, Ask, Allow, Allow]),
            (Permissive, [Allow, Allow, Ask, Allow, Allow, Allow, Allow]),
            (Autonomous, [Allow; 7]),
        ];
        for (preset, row) in table {
            for (cat, want) in [
                FileRead,
                FileWrite,
                Shell,
                Web,
                Agent,
                Planning,
                UserInteraction,
            ]
            .into_iter()
            .zip(row)
            {
                assert_eq!(preset.decision(cat), want, "{preset} {cat}");
            }
        }
        assert_eq!("Permissive".parse::<ApprovalPreset>().unwrap(), Permissive);
        assert_eq!(
            "yolo".parse::<ApprovalPreset>().unwrap_err().to_string(),
            "unknown preset: yolo"
        );
    }

    #[test]
    fn codex_flags_use_values_codex_accepts() {
        let ctx = PresetContext::default();
        for p in ApprovalPreset::ALL {
            let f = approval_config(AgentType::Codex, p, &ctx).cli_flags;
            let s = &f[f.iter().position(|a| a == "-s").unwrap() + 1];
            let a = &f[f.iter().position(|a| a == "-a").unwrap() + 1];
            assert!(
                ["read-only", "workspace-write"].contains(&s.as_str()),
                "{p}: {s}"
            );
            assert!(["on-request", "never"].contains(&a.as_str()), "{p}: {a}");
            assert!(
                !f.iter()
                    .any(|x| x == "--full-auto" || x == "workspace-read")
            );
        }
        let auto = approval_config(AgentType::Codex, ApprovalPreset::Autonomous, &ctx);
        assert_eq!(
            auto.cli_flags,
            ["-s", "workspace-write", "-a", "never", "--search"]
        );
        assert!(
            auto.workspace_files.is_empty(),
            "codex never reads .codex/config.json"
        );
    }

    #[test]
    fn claude_settings_per_preset() {
        let ctx = PresetContext {
            workdir: Some("/w".into()),
            running_as_root: false,
        };
        let ro = claude_settings(ApprovalPreset::Readonly, &ctx);
        assert_eq!(ro["permissions"]["additionalDirectories"], json!(["/w"]));
        assert!(ro["permissions"].get("allowedDirectories").is_none());
        let allow = ro["permissions"]["allow"].as_array().unwrap();
        let deny = ro["permissions"]["deny"].as_array().unwrap();
        assert!(allow.contains(&json!("Read")) && allow.contains(&json!("TodoWrite")));
        assert!(deny.contains(&json!("Bash")) && deny.contains(&json!("Write")));
        assert!(deny.contains(&json!("WebFetch")) && deny.contains(&json!("Task")));
        let std = claude_settings(ApprovalPreset::Standard, &ctx);
        assert!(
            std["permissions"]["allow"]
                .as_array()
                .unwrap()
                .contains(&json!("WebFetch"))
        );
        assert_eq!(std["permissions"]["deny"], json!([]));
        let perm = claude_settings(ApprovalPreset::Permissive, &ctx);
        let allow = perm["permissions"]["allow"].as_array().unwrap();
        assert!(allow.contains(&json!("Write")) && allow.contains(&json!("Task")));
        assert!(!allow.contains(&json!("Bash")));
        let auto = claude_settings(ApprovalPreset::Autonomous, &ctx);
        assert_eq!(
            auto["sandbox"],
            json!({"enabled": true, "autoAllowBashIfSandboxed": true})
        );

        let c = approval_config(AgentType::Claude, ApprovalPreset::Autonomous, &ctx);
        assert_eq!(c.cli_flags, ["--permission-mode", "bypassPermissions"]);
        assert_eq!(
            c.summary,
            "Claude Code: Everything auto-approved. Use with sandbox."
        );
        // Claude refuses bypass mode as root: accept edits and allow everything instead.
        let root = PresetContext {
            running_as_root: true,
            ..ctx
        };
        let c = approval_config(AgentType::Claude, ApprovalPreset::Autonomous, &root);
        assert_eq!(c.cli_flags, ["--permission-mode", "acceptEdits"]);
        let allow = c.workspace_files[0].content["permissions"]["allow"].clone();
        assert!(allow.as_array().unwrap().contains(&json!("Bash")));
        assert!(c.workspace_files[0].content.get("sandbox").is_none());
    }

    #[test]
    fn other_clis() {
        let ctx = PresetContext::default();
        let flags = |a, p| approval_config(a, p, &ctx).cli_flags;
        use ApprovalPreset::*;
        assert_eq!(
            flags(AgentType::Gemini, Readonly),
            ["--approval-mode", "plan"]
        );
        assert_eq!(
            flags(AgentType::Gemini, Permissive),
            ["--approval-mode", "auto_edit"]
        );
        assert_eq!(
            flags(AgentType::Gemini, Autonomous),
            ["--approval-mode", "yolo"]
        );
        assert_eq!(
            flags(AgentType::Aider, Readonly),
            ["--chat-mode", "ask", "--no-auto-commits"]
        );
        assert!(flags(AgentType::Aider, Standard).is_empty());
        assert_eq!(flags(AgentType::Aider, Permissive), ["--yes-always"]);
        assert_eq!(
            flags(AgentType::Pi, Readonly),
            ["--tools", "read,grep,find,ls"]
        );
        assert!(flags(AgentType::Pi, Autonomous).is_empty());
        let oc = approval_config(AgentType::Opencode, Permissive, &ctx);
        assert_eq!(
            oc.workspace_files[0].content,
            json!({"permission": {"edit": "allow", "bash": "ask", "webfetch": "allow"}})
        );
        let h = approval_config(AgentType::Hermes, Readonly, &ctx);
        assert!(!h.enforced && h.cli_flags.is_empty());
        assert!(h.summary.contains("cannot enforce"), "{}", h.summary);
    }

    #[test]
    fn tool_categories() {
        assert_eq!(
            ToolCategory::of_claude_tool("Write"),
            Some(ToolCategory::FileWrite)
        );
        assert_eq!(
            ToolCategory::of_claude_tool("mcp__github__x"),
            Some(ToolCategory::Agent)
        );
        assert_eq!(ToolCategory::of_claude_tool("Frobnicate"), None);
        assert_eq!(
            ToolCategory::of_gemini_tool("run_shell_command"),
            Some(ToolCategory::Shell)
        );
    }
}
