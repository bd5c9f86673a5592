//! LIST_CODING_AGENTS.

use serde_json::json;

use super::util::pty;
use super::{Action, ActionContext, ActionResult, Needs};
use crate::services::{PlainStatus, SessionInfo, pty::SessionStatus};

pub(super) const ACTION: Action = Action {
    name: "LIST_CODING_AGENTS",
    similes: &[
        "SHOW_CODING_AGENTS",
        "GET_ACTIVE_AGENTS",
        "LIST_SESSIONS",
        "SHOW_CODING_SESSIONS",
    ],
    description: "List the coding agent sessions with their agent type, directory and status \
        (a blocked agent's waiting prompt is quoted).",
    examples: &[(
        "What are my coding agents doing?",
        "Active coding agents:\n\n1. ▶️ claude (3f2a9c1d...)\n   📁 /home/me/.milady/workspaces/…\n   Status: busy",
    )],
    schema,
    needs: Needs::Pty,
    handler,
};

fn schema() -> serde_json::Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

/// The emoji of a session in the listing.
pub(crate) fn emoji(s: &SessionInfo) -> &'static str {
    match s.status {
        SessionStatus::Busy => "▶️",
        SessionStatus::Ready => "⏸️",
        SessionStatus::Blocked | SessionStatus::Authenticating => "⚠️",
        SessionStatus::Error => "❌",
        _ if s.plain_status() == PlainStatus::Completed => "✅",
        _ => "❓",
    }
}

/// The status as a person reads it; a waiting prompt is quoted.
pub(crate) fn status_text(s: &SessionInfo) -> String {
    match (&s.status, &s.prompt, &s.error) {
        (SessionStatus::Blocked, Some(p), _) => format!("blocked — waiting: \"{}\"", p.trim()),
        (SessionStatus::Authenticating, Some(p), _) => {
            format!("authenticating — needs login: \"{}\"", p.trim())
        }
        (SessionStatus::Error, _, Some(e)) => format!("error: {e}"),
        (SessionStatus::Stopped, _, _) if s.completed => "stopped (task completed)".into(),
        (status, _, _) => status.as_str().into(),
    }
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(pty) = pty(ctx) else {
        return ActionResult::fail("PTY Service is not available.");
    };
    let mut sessions = pty.list_sessions();
    sessions.sort_by_key(|s| s.created_at_ms);
    let data = json!({
        "sessions": sessions.iter().map(|s| json!({
            "id": s.id,
            "agentType": s.agent_type,
            "status": s.status.as_str(),
            "plainStatus": s.plain_status().as_str(),
            "workdir": s.workdir.display().to_string(),
            "createdAt": s.created_at_ms,
            "lastActivity": s.last_activity_ms,
            "prompt": s.prompt,
        })).collect::<Vec<_>>()
    });
    if sessions.is_empty() {
        return ActionResult::ok(
            "No active coding agents. Use SPAWN_CODING_AGENT to start one.",
            data,
        );
    }
    let entries: Vec<String> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let short: String = s.id.chars().take(8).collect();
            format!(
                "{}. {} {} ({short}...)\n   📁 {}\n   Status: {}",
                i + 1,
                emoji(s),
                s.agent_type,
                s.workdir.display(),
                status_text(s)
            )
        })
        .collect();
    ActionResult::ok(
        format!("Active coding agents:\n\n{}", entries.join("\n\n")),
        data,
    )
}
