//! Providers (BEHAVIOR.md §10.3): text an ElizaOS agent puts in its context before choosing an
//! action.

use crate::runtime::{Runtime, RuntimeExt};
use crate::services::SessionInfo;
use crate::services::pty::SessionStatus;
use crate::supervision::{Coordinator, Level};

/// Name of the workspace context provider (position 1).
pub const ACTIVE_WORKSPACE_CONTEXT: &str = "ACTIVE_WORKSPACE_CONTEXT";
/// Name of the examples provider (position −1).
pub const CODING_AGENT_EXAMPLES: &str = "CODING_AGENT_EXAMPLES";

fn word(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Ready => "idle",
        SessionStatus::Busy => "working",
        SessionStatus::Starting | SessionStatus::Pending => "starting up",
        SessionStatus::Blocked => "waiting for input",
        other => other.as_str(),
    }
}

/// The `ACTIVE_WORKSPACE_CONTEXT` text: workspaces with their agents, standalone sessions, and
/// pending confirmations.
pub fn active_workspace_context(rt: &dyn Runtime, coordinator: Option<&Coordinator>) -> String {
    let sessions: Vec<SessionInfo> = rt
        .pty()
        .map(|p| p.list_sessions())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.status.is_live())
        .collect();
    let workspaces = rt.workspace().map(|w| w.list()).unwrap_or_default();
    let (level, pending) = match coordinator {
        Some(c) => c.with(|s, _| ((s.level(), s.pending()), Vec::new())),
        None => (Level::Autonomous, Vec::new()),
    };
    if sessions.is_empty() && workspaces.is_empty() && pending.is_empty() {
        return "# Active Workspaces & Agents\nNo active workspaces or coding agent sessions.\nUse START_CODING_TASK to launch a new coding agent.".into();
    }
    let mut out = vec!["# Active Workspaces & Agents".to_string()];
    let mut placed = std::collections::HashSet::new();
    if !workspaces.is_empty() {
        out.push(format!("## Workspaces ({})", workspaces.len()));
        for w in &workspaces {
            let agents: Vec<String> = sessions
                .iter()
                .filter(|s| s.workdir.starts_with(&w.path))
                .map(|s| {
                    placed.insert(s.id.clone());
                    format!("{}:{}", s.agent_type, word(s.status))
                })
                .collect();
            let name = w
                .label
                .clone()
                .unwrap_or_else(|| w.id.chars().take(8).collect());
            let agents = if agents.is_empty() {
                "no agents".to_string()
            } else {
                agents.join(", ")
            };
            out.push(format!(
                "  - \"{name}\" → {} (branch: {}, {agents})",
                w.repo, w.branch
            ));
        }
    }
    let standalone: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|s| !placed.contains(&s.id))
        .collect();
    if !standalone.is_empty() {
        out.push(format!("## Standalone Sessions ({})", standalone.len()));
        for s in standalone {
            out.push(format!(
                "  - \"{}\" ({}, {}) [session: {}]",
                s.name,
                s.agent_type,
                word(s.status),
                s.id
            ));
        }
    }
    if !pending.is_empty() {
        out.push(format!(
            "## Pending Confirmations ({}) — supervision: {}",
            pending.len(),
            level.as_str()
        ));
        for (id, prompt, action) in &pending {
            let label = sessions
                .iter()
                .find(|s| &s.id == id)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| id.clone());
            out.push(format!(
                "  - \"{label}\" blocked: \"{}\" → suggested: {action}",
                prompt.trim()
            ));
        }
    } else if level != Level::Autonomous {
        out.push(format!(
            "Swarm supervision: {} (no pending items)",
            level.as_str()
        ));
    }
    out.push("You can interact with agents using SEND_TO_CODING_AGENT (pass sessionId), stop them with STOP_CODING_AGENT, or finalize their work with FINALIZE_WORKSPACE.".into());
    out.join("\n")
}

/// The `CODING_AGENT_EXAMPLES` text: how to call the actions, recommending START_CODING_TASK.
pub fn coding_agent_examples() -> String {
    let mut out = vec![
        "# Coding agent actions".to_string(),
        "To get code written, prefer START_CODING_TASK: it clones the repository, starts the agent and gives it the task in one step.".to_string(),
    ];
    for a in crate::actions::all() {
        if let Some((user, reply)) = a.examples.first() {
            out.push(format!(
                "- {}: user \"{user}\" → \"{}\"",
                a.name,
                reply.lines().next().unwrap_or("")
            ));
        }
    }
    out.join("\n")
}
