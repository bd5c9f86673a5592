//! PROVISION_WORKSPACE.

use std::path::Path;

use serde_json::json;

use super::util::{default_workspace, first_forge_url, now_ms, workspace_config};
use super::{Action, ActionContext, ActionResult, Needs};
use crate::runtime::RuntimeExt;
use crate::services::ProvisionRequest;

pub(super) const ACTION: Action = Action {
    name: "PROVISION_WORKSPACE",
    similes: &[
        "CREATE_WORKSPACE",
        "CLONE_REPO",
        "SETUP_WORKSPACE",
        "PREPARE_WORKSPACE",
    ],
    description: "Clone a repository (github.com, gitlab.com, bitbucket.org, or a local path) into a \
        new workspace on its own branch, or add a worktree of an existing workspace.",
    examples: &[(
        "Clone https://github.com/acme/app so we can work on it",
        "Created workspace at /home/me/.milady/workspaces/…\nBranch: milady/exec-1764000000000/coding-agent\nType: clone",
    )],
    schema,
    needs: Needs::Workspace,
    handler,
};

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "repo": {"type": "string", "description": "repository URL, owner/repo, or a local path"},
            "baseBranch": {"type": "string", "description": "branch to start from; default: the remote's default branch (what its HEAD points to), else main; a worktree: its clone's"},
            "useWorktree": {"type": "boolean", "description": "add a worktree of a parent workspace instead of cloning"},
            "parentWorkspaceId": {"type": "string", "description": "the parent clone of a worktree"}
        },
        "additionalProperties": false
    })
}

/// Remote URLs must be on a known forge; local paths, `file://` and `owner/repo` pass. An
/// scp-style address (`[user@]host:path`, a `:` before any `/`) is a remote too, whatever its
/// user: `evil.example:org/repo` used to pass as `owner/repo` and git took it for SSH.
pub(crate) fn repo_allowed(repo: &str) -> bool {
    let scp = !repo.contains("://")
        && repo
            .find(':')
            .is_some_and(|c| repo.find('/').is_none_or(|s| c < s));
    let remote = repo.contains("://") && !repo.starts_with("file://") || scp;
    if !remote {
        return repo.starts_with("file://")
            || Path::new(repo).exists()
            || (repo.split('/').count() == 2 && !repo.starts_with('/') && !repo.starts_with('.'));
    }
    let authority = match repo.split_once("://") {
        Some((_, rest)) => rest.split('/').next().unwrap_or(""),
        None => repo.split(':').next().unwrap_or(""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    ["github.com", "gitlab.com", "bitbucket.org"].contains(&host)
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(ws) = ctx.runtime.workspace() else {
        return ActionResult::fail("Workspace Service is not available.");
    };
    let use_worktree = ctx.bool_param("useWorktree").unwrap_or(false);
    // Empty: the remote's default branch (a worktree: its clone's), chosen by the service.
    let base_branch = ctx.str_param("baseBranch").unwrap_or_default();
    let prefix = workspace_config(ctx.runtime)
        .map(|c| c.branch_prefix)
        .unwrap_or_else(|_| "milady".into());
    let branch = format!("{prefix}/exec-{}/coding-agent", now_ms());
    let req = if use_worktree {
        let parent = match default_workspace(ctx, &ws, "parentWorkspaceId") {
            Some(Ok(p)) => p,
            _ => {
                return ActionResult::fail(
                    "Worktree mode requires a parent workspace. Clone a repo first or specify parentWorkspaceId.",
                );
            }
        };
        ProvisionRequest {
            repo: parent.repo.clone(),
            base_branch,
            branch_name: Some(branch),
            use_worktree: true,
            parent_workspace_id: Some(parent.id),
            label: None,
        }
    } else {
        let Some(repo) = ctx
            .str_param("repo")
            .or_else(|| first_forge_url(&ctx.message.text))
        else {
            return ActionResult::fail(
                "Please specify a repository URL or use worktree mode with a parent workspace.",
            );
        };
        if !repo_allowed(&repo) {
            return ActionResult::fail(
                "Repository URL must be from github.com, gitlab.com, or bitbucket.org.",
            );
        }
        ProvisionRequest {
            repo,
            base_branch,
            branch_name: Some(branch),
            use_worktree: false,
            parent_workspace_id: None,
            label: None,
        }
    };
    match ws.provision(req) {
        Ok(w) => {
            ctx.memory.set_workspace(&ctx.message.room_id, &w.id);
            ctx.memory.set_repo(&ctx.message.room_id, &w.repo);
            let kind = if w.is_worktree { "worktree" } else { "clone" };
            ActionResult::ok(
                format!(
                    "Created workspace at {}\nBranch: {}\nType: {kind}",
                    w.path.display(),
                    w.branch
                ),
                json!({"workspaceId": w.id, "path": w.path.display().to_string(), "branch": w.branch, "isWorktree": w.is_worktree}),
            )
        }
        Err(e) => ActionResult::fail(format!("Failed to provision workspace: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::repo_allowed;

    #[test]
    fn only_known_forges_for_remote_urls() {
        let table = [
            ("https://github.com/a/b", true),
            ("https://gitlab.com/a/b.git", true),
            ("git@github.com:a/b.git", true),
            ("https://evil.example/a/b", false),
            ("ssh://git@evil.example/a/b", false),
            ("file:///tmp/x.git", true),
            ("acme/app", true),
            ("/definitely/not/here", false),
            ("evil.example:org/repo", false),
            ("git@evil.example:org/repo", false),
            ("github.com:org/repo", true),
            ("https://github.com:443/a/b", true),
            ("https://user@evil.example/github.com/b", false),
        ];
        for (r, want) in table {
            assert_eq!(repo_allowed(r), want, "{r}");
        }
    }
}
