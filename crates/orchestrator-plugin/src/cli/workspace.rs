//! `agent-orchestrator workspace`: provision, list, inspect, finalize and clean up git
//! workspaces over the persisted registry in `$AGENT_ORCHESTRATOR_HOME/workspaces` (default: the
//! user's data directory). Every subcommand prints JSON with `--json`.
//!
//! The forge is GitHub at `GITHUB_API_URL` (default `https://api.github.com`); `GITHUB_TOKEN`, if
//! set, is used for pull requests and, for repositories on the forge's host only, for git.

use std::path::PathBuf;
use std::process::ExitCode;

use git_workspace_service::registry::{Strategy, WorkspaceRecord};
use git_workspace_service::{
    FinalizeRequest, PrRequest, Provider, ProvisionRequest, RepoUrl, Secret, ServiceConfig,
    WorkspaceService,
};
use serde_json::json;

/// Arguments of `agent-orchestrator workspace`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Clone a repository (URL, path, file:// or owner/repo), or add a worktree of a workspace.
    Provision {
        /// Repository to clone.
        #[arg(long)]
        repo: String,
        /// Branch to start from. Default: the remote's default branch (what its HEAD points to),
        /// else `main`; a worktree: its clone's.
        #[arg(long)]
        base: Option<String>,
        /// Branch to create (validated as a git branch name); generated when absent.
        #[arg(long)]
        branch: Option<String>,
        /// Add a worktree of this (clone) workspace instead of cloning.
        #[arg(long = "worktree-of", value_name = "ID")]
        worktree_of: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every workspace in the registry.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a workspace's branch and working-tree status.
    Status {
        /// Workspace id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Commit if dirty, push, and open a pull request.
    Finalize {
        /// Workspace id.
        id: String,
        /// Commit message (default: "Agent work on BRANCH").
        #[arg(long)]
        message: Option<String>,
        /// Pull request title (default: the commit message's first line).
        #[arg(long = "pr-title")]
        pr_title: Option<String>,
        /// Pull request body.
        #[arg(long = "pr-body", default_value = "")]
        pr_body: String,
        /// Open the pull request as a draft.
        #[arg(long)]
        draft: bool,
        /// Commit and push only.
        #[arg(long = "no-pr")]
        no_pr: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a workspace (and its worktrees); refused for uncommitted or unpushed work.
    Cleanup {
        /// Workspace id.
        id: String,
        /// Delete even uncommitted or unpushed work.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `$AGENT_ORCHESTRATOR_HOME`, else the platform's per-user data directory.
fn home_dir() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("AGENT_ORCHESTRATOR_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(h));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let data = if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".local/share")))
    };
    data.map(|d| d.join("agent-orchestrator"))
}

fn open() -> Result<WorkspaceService, String> {
    let home = home_dir().ok_or("cannot find a data directory: set AGENT_ORCHESTRATOR_HOME")?;
    let mut config = ServiceConfig::new(home.join("workspaces"));
    config.github_token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret::new(t.trim()));
    let svc = WorkspaceService::open(config).map_err(|e| e.to_string())?;
    // Warnings (a failed fetch, a label not applied) go to stderr, redacted by the service.
    svc.events().on_log(Box::new(|line| {
        eprintln!("agent-orchestrator workspace: warning: {line}")
    }));
    Ok(svc)
}

fn print_json(v: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn record_json(r: &WorkspaceRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["isWorktree"] = json!(r.strategy == Strategy::Worktree);
    v
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match run_inner(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-orchestrator workspace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(command: Command) -> Result<(), String> {
    let svc = open()?;
    let err = |e: git_workspace_service::Error| svc.redactor().redact(&e.to_string());
    match command {
        Command::Provision {
            repo,
            base,
            branch,
            worktree_of,
            json,
        } => {
            let mut req = ProvisionRequest::clone_of(repo);
            req.base_branch = match (base, &worktree_of) {
                (Some(b), _) => b,
                (None, Some(parent)) => svc.get(parent).map(|p| p.base_branch).map_err(err)?,
                (None, None) => orchestrator_plugin::services::default_branch::default_base_branch(
                    &svc, None, &req.repo,
                ),
            };
            req.branch_name = branch;
            if let Some(parent) = worktree_of {
                req.strategy = Strategy::Worktree;
                req.parent_workspace = Some(parent);
            }
            let mut last_phase = String::new();
            let rec = svc
                .provision_with_progress(req, &mut |p| {
                    // One line per phase keeps the output readable; JSON mode stays quiet.
                    if !json && p.phase != last_phase {
                        eprintln!("{}", p.phase);
                        last_phase = p.phase.clone();
                    }
                })
                .map_err(err)?;
            if json {
                print_json(&record_json(&rec));
            } else {
                outln!("{}\t{}\t{}", rec.id, rec.branch, rec.path.display());
            }
        }
        Command::List { json } => {
            let all = svc.list();
            if json {
                print_json(&json!(all.iter().map(record_json).collect::<Vec<_>>()));
            } else {
                for r in all {
                    let kind = if r.strategy == Strategy::Worktree {
                        "worktree"
                    } else {
                        "clone"
                    };
                    outln!(
                        "{}\t{}\t{}\t{}\t{}",
                        r.id,
                        r.status.as_str(),
                        kind,
                        r.branch,
                        r.path.display()
                    );
                }
            }
        }
        Command::Status { id, json } => {
            let rec = svc.get(&id).map_err(err)?;
            let st = svc.status(&id).map_err(err)?;
            if json {
                let mut v = serde_json::to_value(&st).unwrap_or_default();
                v["id"] = json!(rec.id);
                v["status"] = json!(rec.status.as_str());
                v["path"] = json!(rec.path);
                print_json(&v);
            } else {
                outln!("workspace {} ({})", rec.id, rec.status.as_str());
                outln!("branch    {}", st.branch.as_deref().unwrap_or("(detached)"));
                outln!("state     {}", if st.clean { "clean" } else { "dirty" });
                for (label, paths) in [
                    ("staged", &st.staged),
                    ("modified", &st.modified),
                    ("untracked", &st.untracked),
                ] {
                    for p in paths {
                        outln!("{label:<9} {p}");
                    }
                }
                if let Some(c) = &st.compared_to {
                    outln!("vs {c}: ahead {}, behind {}", st.ahead, st.behind);
                }
            }
        }
        Command::Finalize {
            id,
            message,
            pr_title,
            pr_body,
            draft,
            no_pr,
            json,
        } => {
            let rec = svc.get(&id).map_err(err)?;
            // Refuse before committing or pushing anything: a PR needs the repository on the forge.
            let on_forge = RepoUrl::parse(&rec.repo, &svc.config().github.host)
                .is_ok_and(|r| r.provider(&svc.config().github.host) == Provider::Github);
            if !no_pr && !on_forge {
                return Err(format!(
                    "{} is not on {}, so no pull request can be opened; pass --no-pr",
                    rec.repo,
                    svc.config().github.host
                ));
            }
            let message = message.unwrap_or_else(|| format!("Agent work on {}", rec.branch));
            let title =
                pr_title.unwrap_or_else(|| message.lines().next().unwrap_or_default().to_owned());
            let req = FinalizeRequest {
                commit_message: Some(message),
                push: true,
                force_with_lease: false,
                pr: (!no_pr).then(|| PrRequest {
                    title,
                    body: pr_body,
                    draft,
                    ..PrRequest::default()
                }),
                cleanup: false,
            };
            let out = svc.finalize(&id, &req).map_err(err)?;
            if json {
                print_json(&json!({
                    "workspaceId": id,
                    "commit": out.commit,
                    "head": out.head,
                    "pushed": out.pushed,
                    "pr": out.pr.as_ref().map(|p| json!({"number": p.number, "url": p.url})),
                    "warnings": out.warnings,
                }));
            } else {
                match &out.commit {
                    Some(c) => outln!("committed {c}"),
                    None => outln!("nothing to commit"),
                }
                outln!("pushed {}", rec.branch);
                if let Some(pr) = &out.pr {
                    outln!("pull request #{} {}", pr.number, pr.url);
                }
                for w in &out.warnings {
                    eprintln!("warning: {w}");
                }
            }
        }
        Command::Cleanup { id, force, json } => {
            let removed = svc.cleanup(&id, force).map_err(err)?;
            if json {
                print_json(&json!({"success": true, "workspaceId": id, "removed": removed}));
            } else if removed {
                outln!("removed {id}");
            } else {
                outln!("nothing to remove for {id}");
            }
        }
    }
    Ok(())
}
