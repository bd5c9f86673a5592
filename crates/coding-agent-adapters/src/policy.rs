//! Which dialogs may be answered automatically: policy, not manifest text.
//!
//! A manifest marks a rule `safe: true` when its answer is the right one *if* answering is allowed
//! at all, and names a `category` that gates it:
//!
//! | category | answered only when |
//! |---|---|
//! | `file_read` `file_write` `shell` `web` `agent` `planning` `user_interaction` | the session's approval preset auto-approves it (§7.10) |
//! | `onboarding` (theme, security notes, first-run questions) | the caller opted in ([`AnswerPolicy::accept_onboarding`]) |
//! | `trust` (trust this folder) | the caller trusts the workdir ([`AnswerPolicy::trust_workdir`]) |
//! | `supplied_api_key` (Claude's "use this API key?") | the key is one the orchestrator supplied |
//! | `bypass_permissions` (Claude's bypass-mode warning) | the preset is `autonomous` |
//!
//! Rules without a category (declining update offers, release notes, …) keep their `safe` flag.
//! [`crate::AgentManifest::detection_manifest`] applies the policy by rewriting `safe` before the
//! rules reach the engine, so the engine never holds an answer the policy forbids.
//!
//! The engine gates `permission` prompts by category itself
//! ([`pty_manager::AutoResponsePolicy::approved_categories`]); fill it with
//! [`AnswerPolicy::auto_response_policy`]. That is why trust dialogs are typed `project_select`
//! and the bypass warning `config`: their gates are decided here, not by the preset list.

use serde::{Deserialize, Serialize};

use crate::{ApprovalPreset, ToolCategory};

/// A rule's `category`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// A tool permission, gated by the approval preset.
    Tool(ToolCategory),
    /// First-run onboarding screens.
    Onboarding,
    /// Trusting the working directory.
    Trust,
    /// Approving an API key found in the environment.
    SuppliedApiKey,
    /// Accepting a bypass-permissions warning.
    BypassPermissions,
}

impl Gate {
    /// Parse a manifest category; `None` for an unknown one (manifests with one are rejected).
    pub fn parse(s: &str) -> Option<Gate> {
        Some(match s {
            "onboarding" => Gate::Onboarding,
            "trust" => Gate::Trust,
            "supplied_api_key" => Gate::SuppliedApiKey,
            "bypass_permissions" => Gate::BypassPermissions,
            other => Gate::Tool(ToolCategory::parse(other)?),
        })
    }
}

/// What the caller allows to be answered without a person.
///
/// The default answers nothing that is gated: no preset, no onboarding, no trust, no key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerPolicy {
    /// The session's approval preset (`None`: no tool dialog is answered).
    pub preset: Option<ApprovalPreset>,
    /// Answer first-run onboarding screens (theme, security notes, …).
    pub accept_onboarding: bool,
    /// Answer "trust this folder" for the session's workdir.
    pub trust_workdir: bool,
    /// The API key in the agent's environment was supplied by the orchestrator.
    pub supplied_api_key: bool,
}

impl AnswerPolicy {
    /// A policy that answers what `preset` approves and nothing else.
    pub fn for_preset(preset: ApprovalPreset) -> Self {
        AnswerPolicy {
            preset: Some(preset),
            ..AnswerPolicy::default()
        }
    }

    /// The tool categories the preset approves, as the engine's policy wants them.
    pub fn approved_categories(&self) -> Vec<String> {
        ToolCategory::ALL
            .into_iter()
            .filter(|c| self.preset.is_some_and(|p| p.auto_approves(*c)))
            .map(|c| c.as_str().to_owned())
            .collect()
    }

    /// The engine's auto-response policy for a session under this policy.
    pub fn auto_response_policy(&self) -> pty_manager::AutoResponsePolicy {
        pty_manager::AutoResponsePolicy {
            approved_categories: self.approved_categories(),
            ..Default::default()
        }
    }

    /// Whether a rule with this category may be answered. No category: yes (the rule's own `safe`
    /// decides); an unknown category: no.
    ///
    /// ```
    /// use coding_agent_adapters::{AnswerPolicy, ApprovalPreset};
    /// let p = AnswerPolicy::for_preset(ApprovalPreset::Permissive);
    /// assert!(p.allows(Some("file_write")));
    /// assert!(!p.allows(Some("shell")));
    /// assert!(!p.allows(Some("trust")));
    /// assert!(p.allows(None));
    /// ```
    pub fn allows(&self, category: Option<&str>) -> bool {
        let Some(c) = category else {
            return true;
        };
        match Gate::parse(c) {
            None => false,
            Some(Gate::Tool(t)) => self.preset.is_some_and(|p| p.auto_approves(t)),
            Some(Gate::Onboarding) => self.accept_onboarding,
            Some(Gate::Trust) => self.trust_workdir,
            Some(Gate::SuppliedApiKey) => self.supplied_api_key,
            Some(Gate::BypassPermissions) => self.preset == Some(ApprovalPreset::Autonomous),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentManifest, AgentType};

    fn safe_ids(agent: AgentType, policy: &AnswerPolicy) -> Vec<String> {
        let m = AgentManifest::builtin(agent).unwrap();
        m.detection_manifest(policy)
            .unwrap()
            .rules
            .into_iter()
            .filter(|r| r.safe)
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn default_policy_answers_no_gated_dialog() {
        for agent in AgentType::ALL {
            let m = AgentManifest::builtin(agent).unwrap();
            let safe = safe_ids(agent, &AnswerPolicy::default());
            for (id, cat) in m.rule_categories() {
                if cat.is_some() {
                    assert!(!safe.contains(id), "{id} answered without opt-in");
                }
            }
        }
    }

    #[test]
    fn trust_and_onboarding_need_opt_in() {
        let base = AnswerPolicy::for_preset(ApprovalPreset::Autonomous);
        for (agent, id) in [
            (AgentType::Claude, "claude.trust-folder"),
            (AgentType::Codex, "codex.trust-folder"),
            (AgentType::Gemini, "gemini.trust-folder"),
        ] {
            assert!(!safe_ids(agent, &base).contains(&id.to_owned()), "{id}");
            let opted = AnswerPolicy {
                trust_workdir: true,
                ..base.clone()
            };
            assert!(safe_ids(agent, &opted).contains(&id.to_owned()), "{id}");
        }
        let theme = "claude.theme".to_owned();
        assert!(!safe_ids(AgentType::Claude, &base).contains(&theme));
        let opted = AnswerPolicy {
            accept_onboarding: true,
            ..base
        };
        assert!(safe_ids(AgentType::Claude, &opted).contains(&theme));
    }

    #[test]
    fn tool_dialogs_follow_the_preset() {
        let ids = |p| safe_ids(AgentType::Claude, &AnswerPolicy::for_preset(p));
        let ro = ids(ApprovalPreset::Readonly);
        assert!(!ro.contains(&"claude.file-create".to_owned()));
        assert!(!ro.contains(&"claude.bash-permission".to_owned()));
        let perm = ids(ApprovalPreset::Permissive);
        assert!(perm.contains(&"claude.file-create".to_owned()));
        assert!(!perm.contains(&"claude.bash-permission".to_owned()));
        assert!(!perm.contains(&"claude.bypass-warning".to_owned()));
        let auto = ids(ApprovalPreset::Autonomous);
        assert!(auto.contains(&"claude.bash-permission".to_owned()));
        assert!(auto.contains(&"claude.bypass-warning".to_owned()));
        // A dialog whose tool is unknown is never answered, whatever the preset.
        assert!(!auto.contains(&"claude.tool-permission".to_owned()));
        // Codex command approval is `shell`: only autonomous answers it.
        let codex = |p| safe_ids(AgentType::Codex, &AnswerPolicy::for_preset(p));
        assert!(!codex(ApprovalPreset::Permissive).contains(&"codex.command-approval".to_owned()));
        assert!(codex(ApprovalPreset::Autonomous).contains(&"codex.command-approval".to_owned()));
    }

    #[test]
    fn api_key_approval_only_for_a_supplied_key() {
        let p = AnswerPolicy::for_preset(ApprovalPreset::Autonomous);
        let id = "claude.api-key-approval".to_owned();
        assert!(!safe_ids(AgentType::Claude, &p).contains(&id));
        let ours = AnswerPolicy {
            supplied_api_key: true,
            ..p
        };
        assert!(safe_ids(AgentType::Claude, &ours).contains(&id));
    }

    #[test]
    fn the_engine_answers_exactly_what_the_policy_allows() {
        use pty_manager::{Adapter, ScreenSnapshot, decide};
        let cases = [
            (
                AgentType::Claude,
                " Quick safety check: Is this a project you created or one you trust?\n ❯ 1. Yes, I trust this folder\n   2. No, exit\n Enter to confirm · Esc to cancel",
            ),
            (
                AgentType::Claude,
                " Do you want to create hello.txt?\n ❯ 1. Yes\n   2. Yes, allow all edits during this session (shift+tab)\n   3. No",
            ),
            (
                AgentType::Claude,
                " Bash command\n   ls\n Do you want to proceed?\n ❯ 1. Yes\n   2. No, and tell Claude what to do differently (esc)",
            ),
            (
                AgentType::Claude,
                " WARNING: Claude Code running in Bypass Permissions mode\n ❯ 1. No, exit\n   2. Yes, I accept",
            ),
        ];
        let policies = [
            AnswerPolicy::default(),
            AnswerPolicy::for_preset(ApprovalPreset::Permissive),
            AnswerPolicy {
                trust_workdir: true,
                ..AnswerPolicy::for_preset(ApprovalPreset::Autonomous)
            },
        ];
        // rows: policies; columns: cases (answered?)
        let want = [
            [false, false, false, false],
            [false, true, false, false],
            [true, true, true, true],
        ];
        for (policy, row) in policies.iter().zip(want) {
            let m = AgentManifest::builtin(AgentType::Claude).unwrap();
            let adapter = m.adapter(policy).unwrap();
            for ((_, screen), answered) in cases.iter().zip(row) {
                let snap = std::sync::Arc::new(ScreenSnapshot::from_text(screen, 120, 40));
                let obs = adapter.detector().observe(snap, None);
                let p = obs.prompts.first().expect(screen);
                let got = decide(&policy.auto_response_policy(), p, false).is_ok();
                assert_eq!(got, answered, "{policy:?}: {screen}");
            }
        }
    }

    #[test]
    fn ungated_safe_rules_stay_safe() {
        let safe = safe_ids(AgentType::Aider, &AnswerPolicy::default());
        assert!(safe.contains(&"aider.release-notes".to_owned()));
        assert!(safe.contains(&"aider.gitignore".to_owned()));
        assert!(!safe.contains(&"aider.question".to_owned()));
    }
}
