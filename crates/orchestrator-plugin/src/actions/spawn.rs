//! SPAWN_CODING_AGENT.

use std::path::PathBuf;

use serde_json::json;

use super::util::{pty, spawn_failure};
use super::{Action, ActionContext, ActionResult, Needs};
use crate::services::SpawnRequest;
use crate::settings::{agent_credentials, agent_model};

pub(super) const ACTION: Action = Action {
    name: "SPAWN_CODING_AGENT",
    similes: &[
        "START_CODING_AGENT",
        "LAUNCH_CODING_AGENT",
        "CREATE_CODING_AGENT",
        "SPAWN_CODER",
        "RUN_CODING_AGENT",
    ],
    description: "Start a CLI coding agent (Claude Code, Codex, Gemini CLI, Aider, Pi, OpenCode, \
        Hermes or a shell) in a pseudo-terminal inside an existing workspace directory, optionally \
        with a first task. Prefer START_CODING_TASK when a repository still has to be cloned.",
    examples: &[
        (
            "Spawn a codex agent in my workspace to fix the failing test",
            "Started codex coding agent in /home/me/.milady/workspaces/1f0c… with task: \"fix the failing test\". Session ID: …",
        ),
        (
            "Start a shell agent in ./scratch",
            "Started shell coding agent in ./scratch. Session ID: …",
        ),
    ],
    schema,
    needs: Needs::Pty,
    handler,
};

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "agentType": {"type": "string", "description": "claude, codex, gemini, aider, pi, opencode, hermes or shell (aliases accepted)"},
            "workdir": {"type": "string", "description": "directory to run in; must be inside the workspace base dir or the current directory"},
            "task": {"type": "string", "description": "first task to give the agent"},
            "memoryContent": {"type": "string", "description": "text written to the agent's memory file (CLAUDE.md, AGENTS.md, …)"},
            "approvalPreset": {"type": "string", "enum": ["readonly", "standard", "permissive", "autonomous"]}
        },
        "additionalProperties": false
    })
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(pty) = pty(ctx) else {
        return ActionResult::fail("PTY Service is not available. Cannot spawn coding agent.");
    };
    let workdir: PathBuf = match ctx.str_param("workdir") {
        Some(w) => PathBuf::from(w),
        None => {
            let current = ctx
                .runtime
                .get_service(crate::runtime::CODING_WORKSPACE_SERVICE)
                .and_then(|_| {
                    let ws = crate::runtime::RuntimeExt::workspace(ctx.runtime)?;
                    super::util::default_workspace(ctx, &ws, "workspaceId")?.ok()
                });
            match current {
                Some(w) => w.path,
                None => {
                    return ActionResult::fail(
                        "No workspace found. Please provision a workspace first using PROVISION_WORKSPACE or provide a workdir.",
                    );
                }
            }
        }
    };
    if !super::workdir_allowed(ctx.runtime, &workdir) {
        return ActionResult::fail(
            "The specified workdir is outside of allowed directories. Please use a workspace directory.",
        );
    }
    let agent_type = match crate::selection::choose_agent_type(
        ctx.runtime,
        ctx.str_param("agentType").as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => return ActionResult::fail(format!("Failed to spawn coding agent: {e}")),
    };
    let task = ctx.str_param("task");
    let req = SpawnRequest {
        agent_type: agent_type.into(),
        name: None,
        workdir: workdir.clone(),
        initial_task: task.clone(),
        memory_content: ctx.str_param("memoryContent"),
        approval_preset: ctx.str_param("approvalPreset"),
        credentials: agent_credentials(&|k| ctx.runtime.get_setting(k)),
        supervised: false,
        model: agent_model(&|k| ctx.runtime.get_setting(k), agent_type),
    };
    match pty.spawn_session(req) {
        Ok(info) => {
            ctx.memory.set_session(&ctx.message.room_id, &info.id);
            let with_task = task
                .as_deref()
                .map(|t| format!(" with task: \"{t}\""))
                .unwrap_or_default();
            ActionResult::ok(
                format!(
                    "Started {agent_type} coding agent in {}{with_task}. Session ID: {}",
                    workdir.display(),
                    info.id
                ),
                json!({"sessionId": info.id, "agentType": agent_type, "workdir": workdir.display().to_string(), "status": info.status.as_str()}),
            )
        }
        Err(e) => ActionResult::fail(spawn_failure(&e, "Failed to spawn coding agent: ")),
    }
}
