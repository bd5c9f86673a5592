//! START_CODING_TASK: provision, spawn and deliver the task, for one agent or up to eight.

use std::path::PathBuf;

use serde_json::json;

use super::util::{first_forge_url, make_label, now_ms, spawn_failure, uuid_v4, workspace_config};
use super::{Action, ActionContext, ActionResult, Needs};
use crate::agent_types::resolve_agent_type;
use crate::model::{ModelSize, parse_brief};
use crate::runtime::RuntimeExt;
use crate::services::{ProvisionRequest, SpawnRequest};
use crate::settings::{agent_credentials, agent_model};

/// The most agents one call may start.
pub const MAX_AGENTS: usize = 8;

pub(super) const ACTION: Action = Action {
    name: "START_CODING_TASK",
    similes: &[
        "LAUNCH_CODING_TASK",
        "RUN_CODING_TASK",
        "START_AGENT_TASK",
        "SPAWN_AND_PROVISION",
        "CODE_THIS",
    ],
    description: "The usual way to get code written: clone the repository (or make a scratch \
        directory), start a coding agent in it and give it the task. `agents` starts up to 8 agents \
        at once from one clone, each in its own worktree and branch (`task one | codex:task two`).",
    examples: &[
        (
            "Fix the flaky login test in https://github.com/acme/app",
            "Cloned https://github.com/acme/app and started claude agent as \"app/fix-flaky-login\" with task: \"Fix the flaky login test\"\nSession ID: …",
        ),
        (
            "Have three agents write the parser, the CLI and the docs for acme/app",
            "Launched 3/3 agents on acme/app:\n  - \"app/parser-1\" (claude) [session: …]",
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
            "repo": {"type": "string", "description": "repository URL or owner/repo; default: the one named in the message, else the last used, else a scratch directory"},
            "agentType": {"type": "string", "description": "claude, codex, gemini, aider, pi, opencode, hermes or shell"},
            "task": {"type": "string", "description": "what the agent should do"},
            "agents": {"type": "string", "description": "several tasks separated by |, each optionally prefixed with type: (at most 8); overrides task"},
            "memoryContent": {"type": "string"},
            "label": {"type": "string"},
            "approvalPreset": {"type": "string", "enum": ["readonly", "standard", "permissive", "autonomous"]},
            "baseBranch": {"type": "string", "description": "branch to start from; default: the remote's default branch (what its HEAD points to), else main"}
        },
        "additionalProperties": false
    })
}

struct Plan {
    agent_type: &'static str,
    task: String,
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(pty) = ctx.runtime.pty() else {
        return ActionResult::fail("PTY Service is not available. Cannot start coding task.");
    };
    let default_type = match crate::selection::choose_agent_type(
        ctx.runtime,
        ctx.str_param("agentType").as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => return ActionResult::fail(format!("Failed to start coding agent: {e}")),
    };
    let multi = ctx.str_param("agents");
    let mut plans = Vec::new();
    if let Some(spec) = &multi {
        let parts: Vec<&str> = spec
            .split('|')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return ActionResult::fail("No agent tasks provided in agents parameter.");
        }
        if parts.len() > MAX_AGENTS {
            return ActionResult::fail(format!(
                "Too many agents requested ({}). Maximum is {MAX_AGENTS}.",
                parts.len()
            ));
        }
        for p in parts {
            let (t, task) = match p.split_once(':') {
                Some((prefix, rest))
                    if resolve_agent_type(prefix).is_ok() && !prefix.contains(' ') =>
                {
                    (
                        resolve_agent_type(prefix).unwrap_or(default_type),
                        rest.trim(),
                    )
                }
                _ => (default_type, p),
            };
            plans.push(Plan {
                agent_type: t,
                task: task.to_string(),
            });
        }
    } else {
        let task = ctx
            .str_param("task")
            .unwrap_or_else(|| ctx.message.text.trim().to_string());
        plans.push(Plan {
            agent_type: default_type,
            task,
        });
    }
    let repo = ctx
        .str_param("repo")
        .or_else(|| first_forge_url(&ctx.message.text))
        .or_else(|| ctx.memory.repo(&ctx.message.room_id));
    let ws = ctx.runtime.workspace();
    if repo.is_some() && ws.is_none() {
        return ActionResult::fail("Workspace Service is not available. Cannot clone repository.");
    }
    // The same forge allowlist as PROVISION_WORKSPACE.
    if repo
        .as_deref()
        .is_some_and(|r| !super::provision::repo_allowed(r))
    {
        return ActionResult::fail(
            "Repository URL must be from github.com, gitlab.com, or bitbucket.org.",
        );
    }
    let base_label = ctx
        .str_param("label")
        .unwrap_or_else(|| make_label(repo.as_deref(), &plans[0].task));
    let config = match workspace_config(ctx.runtime) {
        Ok(c) => c,
        Err(e) => return ActionResult::fail(format!("Failed to start coding agent: {e}")),
    };
    if let Some(r) = &repo {
        ctx.memory.set_repo(&ctx.message.room_id, r);
    }

    // A shared brief helps parallel agents not to collide; without a model there is simply none.
    let brief = if plans.len() > 1 {
        let tasks: Vec<String> = plans.iter().map(|p| format!("- {}", p.task)).collect();
        let prompt = format!(
            "You plan work for {n} coding agents working in parallel on {repo}. Their tasks:\n{}\n\n\
             Write 3 to 10 short bullet lines (each starting with \"- \") of shared context: \
             conventions, who owns which files, what not to touch. Output only the bullets.",
            tasks.join("\n"),
            n = plans.len(),
            repo = repo.as_deref().unwrap_or("a scratch directory"),
        );
        ctx.runtime
            .use_model(ModelSize::Small, &prompt)
            .ok()
            .and_then(|r| parse_brief(&r))
    } else {
        None
    };

    let n = plans.len();
    if n > 1 {
        let on = repo
            .as_deref()
            .map(|r| format!(" on {r}"))
            .unwrap_or_default();
        ctx.progress(&format!("Launching {n} agents{on}..."));
    } else if let Some(r) = &repo {
        ctx.progress(&format!("Cloning {r}..."));
    }
    let exec = now_ms();
    let prefix = &config.branch_prefix;
    // Empty: the workspace service starts from the remote's default branch (`master`, `trunk`…).
    let base_branch = ctx.str_param("baseBranch").unwrap_or_default();
    // Several agents on a repository share one clone, each in its own worktree on its own
    // branch: one download, and every agent's work lands on a separate branch.
    let shared_clone = match (&repo, &ws) {
        (Some(r), Some(ws)) if n > 1 => {
            let req = ProvisionRequest {
                repo: r.clone(),
                base_branch: base_branch.clone(),
                branch_name: Some(format!("{prefix}/exec-{exec}/base")),
                use_worktree: false,
                parent_workspace_id: None,
                label: Some(base_label.clone()),
            };
            match ws.provision(req) {
                Ok(w) => Some(w),
                Err(e) => return ActionResult::fail(format!("Failed to clone repository: {e}")),
            }
        }
        _ => None,
    };
    let mut launched = Vec::new();
    let mut failed = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let mut scratch_dir = false;
        let label = if n > 1 {
            format!("{base_label}-{}", i + 1)
        } else {
            base_label.clone()
        };
        // Each agent gets its own workspace: a clone of the repo (one agent), a worktree of the
        // shared clone (several), or a scratch directory.
        let (workdir, workspace_id): (PathBuf, Option<String>) = match (&repo, &ws) {
            (Some(r), Some(ws)) => {
                let req = ProvisionRequest {
                    repo: r.clone(),
                    // Worktrees start where the shared clone did (empty = the clone's base).
                    base_branch: base_branch.clone(),
                    branch_name: Some(if n > 1 {
                        format!("{prefix}/exec-{exec}/coding-agent-{}", i + 1)
                    } else {
                        format!("{prefix}/exec-{exec}/coding-agent")
                    }),
                    use_worktree: shared_clone.is_some(),
                    parent_workspace_id: shared_clone.as_ref().map(|c| c.id.clone()),
                    label: Some(label.clone()),
                };
                match ws.provision(req) {
                    Ok(w) => {
                        ctx.memory.set_workspace(&ctx.message.room_id, &w.id);
                        (w.path, Some(w.id))
                    }
                    Err(e) => {
                        if n == 1 {
                            return ActionResult::fail(format!("Failed to clone repository: {e}"));
                        }
                        failed.push(format!("\"{label}\": {e}"));
                        continue;
                    }
                }
            }
            _ => {
                scratch_dir = true;
                let dir = config.base_dir.join(uuid_v4());
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    let msg = format!("cannot create scratch directory {}: {e}", dir.display());
                    if n == 1 {
                        return ActionResult::fail(format!("Failed to start coding agent: {msg}"));
                    }
                    failed.push(format!("\"{label}\": {msg}"));
                    continue;
                }
                (dir, None)
            }
        };
        let task = match &brief {
            Some(b) => format!(
                "{}\n\n--- Shared Context (from project planning) ---\n{}\n--- End Shared Context ---",
                plan.task, b.0
            ),
            None => plan.task.clone(),
        };
        let req = SpawnRequest {
            agent_type: plan.agent_type.into(),
            name: Some(label.clone()),
            workdir: workdir.clone(),
            initial_task: (!task.is_empty()).then_some(task),
            memory_content: ctx.str_param("memoryContent"),
            approval_preset: ctx.str_param("approvalPreset"),
            credentials: agent_credentials(&|k| ctx.runtime.get_setting(k)),
            supervised: true,
            model: agent_model(&|k| ctx.runtime.get_setting(k), plan.agent_type),
        };
        match pty.spawn_session(req) {
            Ok(info) => {
                ctx.memory.set_session(&ctx.message.room_id, &info.id);
                if scratch_dir && let Some(store) = ctx.runtime.scratch() {
                    store.register(&info.id, &label, &workdir);
                }
                if n > 1 {
                    ctx.progress(&format!(
                        "[{}/{n}] Spawned {} agent as \"{label}\"",
                        i + 1,
                        plan.agent_type
                    ));
                }
                launched.push(json!({
                    "sessionId": info.id, "label": label, "agentType": plan.agent_type,
                    "workdir": workdir.display().to_string(), "workspaceId": workspace_id,
                    "task": plan.task,
                }));
            }
            Err(e) => {
                if scratch_dir {
                    // Nothing ran in it: the empty scratch directory goes.
                    let _ = std::fs::remove_dir(&workdir);
                }
                if n == 1 {
                    return ActionResult::fail(spawn_failure(&e, "Failed to start coding agent: "));
                }
                failed.push(format!("\"{label}\": {}", spawn_failure(&e, "")));
            }
        }
    }
    let data = json!({"agents": launched, "repo": repo,
        "cloneWorkspaceId": shared_clone.as_ref().map(|c| c.id.clone())});
    if n == 1 {
        let a = &launched[0];
        let with_task = if plans[0].task.is_empty() {
            String::new()
        } else {
            format!(" with task: \"{}\"", plans[0].task)
        };
        let text = match &repo {
            Some(r) => format!(
                "Cloned {r} and started {} agent as \"{}\"{with_task}\nSession ID: {}",
                plans[0].agent_type,
                base_label,
                a["sessionId"].as_str().unwrap_or_default()
            ),
            None => format!(
                "Started {} agent as \"{}\" in scratch workspace{with_task}\nSession ID: {}",
                plans[0].agent_type,
                base_label,
                a["sessionId"].as_str().unwrap_or_default()
            ),
        };
        return ActionResult::ok(text, data);
    }
    let on = repo
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    let mut text = format!("Launched {}/{n} agents{on}:", launched.len());
    for a in &launched {
        text.push_str(&format!(
            "\n  - \"{}\" ({}) [session: {}]",
            a["label"].as_str().unwrap_or_default(),
            a["agentType"].as_str().unwrap_or_default(),
            a["sessionId"].as_str().unwrap_or_default()
        ));
    }
    if !failed.is_empty() {
        text.push_str(&format!("\nFailed: {}", failed.join(", ")));
    }
    ActionResult {
        success: !launched.is_empty(),
        text,
        data,
    }
}
