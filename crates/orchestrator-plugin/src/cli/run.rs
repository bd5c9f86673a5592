//! `agent-orchestrator run`: one task end to end in the foreground.
//!
//! Provision (a clone of `--repo`, else a scratch directory), spawn the agent with the task, show
//! its terminal on stdout and its state on stderr, wait for the end of the task, then commit, push
//! and (with `--pr`) open a pull request.
//!
//! Exit status: 0 the task ended and its work landed (or there was nothing to commit); 1 the agent
//! ended in failure (non-zero exit, error, timeout); 2 set-up failed (bad arguments, agent not
//! installed or not launchable, provisioning failed); 3 landing the work failed (commit, push, PR).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_plugin::agent_types::resolve_agent_type;
use orchestrator_plugin::services::{
    PrRequest, ProvisionRequest, PtyService, SpawnRequest, WorkspaceService,
};
use orchestrator_plugin::settings::agent_credentials;
use pty_manager::{OutputChunk, SessionEvent, SessionStatus};

/// Arguments of `agent-orchestrator run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent: claude, codex, gemini, aider, pi, opencode, hermes or shell (aliases accepted).
    #[arg(long)]
    pub agent: String,
    /// Repository to clone (URL, owner/repo, local path); without it a scratch directory is used.
    #[arg(long)]
    pub repo: Option<String>,
    /// Branch to start from, and the pull request's target. Default: the remote's default branch
    /// (what its HEAD points to), else `main`.
    #[arg(long)]
    pub base_branch: Option<String>,
    /// Approval preset: readonly, standard, permissive, autonomous.
    #[arg(long)]
    pub preset: Option<String>,
    /// The task (for `shell`: one command line).
    #[arg(long)]
    pub task: String,
    /// Text for the agent's memory file (CLAUDE.md, AGENTS.md, …), kept out of the commit.
    #[arg(long)]
    pub memory: Option<String>,
    /// Open a pull request after pushing.
    #[arg(long)]
    pub pr: bool,
    /// Commit message (default: derived from the task).
    #[arg(long)]
    pub message: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
    /// YAML settings file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// One line on stderr in one write: `eprintln!` writes each piece of its format on its own
/// (stderr is unbuffered), and the agent's terminal, printed on stdout by another thread, could
/// land between them on a shared terminal.
fn say(line: &str) {
    say_to(&mut std::io::stderr(), line);
}

fn say_to(w: &mut impl Write, line: &str) {
    let _ = w.write_all(format!("{line}\n").as_bytes());
}

fn state_line(id: &str, text: &str) {
    let short: String = id.chars().take(16).collect();
    // Starts a line of its own: the agent's terminal may have left the cursor mid-line.
    say(&format!("\r\n[agent-orchestrator] {short}: {text}"));
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let sink: Arc<dyn Fn(&str) + Send + Sync> =
        Arc::new(|t: &str| say(&format!("[agent-orchestrator] {t}")));
    let services = match super::start_services(args.config.as_deref(), sink.clone()) {
        Ok(s) => s,
        Err(e) => return fail(2, &e.to_string()),
    };
    let Some(pty) = services.pty.clone() else {
        return fail(2, "PTY Service is not available.");
    };
    let agent = match resolve_agent_type(&args.agent) {
        Ok(a) => a,
        Err(e) => return fail(2, &e.to_string()),
    };
    if let Some(p) = &args.preset
        && !orchestrator_plugin::settings::APPROVAL_PRESETS.contains(&p.as_str())
    {
        return fail(2, &format!("unknown preset: {p}"));
    }

    // Workspace.
    let mut workspace_id = None;
    let workdir = match (&args.repo, &services.workspace) {
        (Some(repo), Some(ws)) => {
            say(&format!("[agent-orchestrator] Cloning {repo}..."));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let req = ProvisionRequest {
                repo: repo.clone(),
                base_branch: args.base_branch.clone().unwrap_or_default(),
                branch_name: Some(format!(
                    "{}/exec-{now}/coding-agent",
                    services.ws_config.branch_prefix
                )),
                use_worktree: false,
                parent_workspace_id: None,
                label: None,
            };
            match ws.provision(req) {
                Ok(w) => {
                    say(&format!(
                        "[agent-orchestrator] Workspace {} on branch {}",
                        w.path.display(),
                        w.branch
                    ));
                    workspace_id = Some(w.id.clone());
                    w.path
                }
                Err(e) => return fail(2, &format!("Failed to clone repository: {e}")),
            }
        }
        (Some(_), None) => {
            return fail(
                2,
                "Workspace Service is not available. Cannot clone repository.",
            );
        }
        (None, _) => {
            let dir = services
                .ws_config
                .base_dir
                .join(format!("scratch-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return fail(
                    2,
                    &format!("cannot create scratch directory {}: {e}", dir.display()),
                );
            }
            dir
        }
    };

    // Spawn and watch.
    let manager = pty.manager().clone();
    let events = manager.events();
    let shell = agent == "shell";
    let req = SpawnRequest {
        agent_type: agent.into(),
        name: Some(format!("run-{agent}")),
        workdir: workdir.clone(),
        // A shell's task is a command line; the session ends with it so its status is the run's.
        initial_task: if shell { None } else { Some(args.task.clone()) },
        memory_content: args.memory.clone(),
        approval_preset: args.preset.clone(),
        credentials: agent_credentials(&|k| services.settings.get(k)),
        supervised: false,
        model: orchestrator_plugin::settings::agent_model(&|k| services.settings.get(k), agent),
    };
    let info = match pty.spawn_session(req) {
        Ok(i) => i,
        Err(orchestrator_plugin::Error::AgentNotInstalled {
            display_name,
            install_command,
            docs_url,
        }) => {
            return fail(
                2,
                &format!(
                    "{display_name} CLI is not installed.\nInstall with: {install_command}\nDocs: {docs_url}"
                ),
            );
        }
        Err(e) => return fail(2, &format!("Failed to start coding agent: {e}")),
    };
    let id = info.id.clone();
    state_line(&id, &format!("started {agent} in {}", workdir.display()));
    let printer = match manager.attach(&id) {
        Ok(att) => Some(std::thread::spawn(move || {
            let mut out = std::io::stdout();
            let _ = out.write_all(&att.initial);
            while let Ok(chunk) = att.output.recv() {
                if let OutputChunk::Data(d) = chunk {
                    let _ = out.write_all(&d);
                    let _ = out.flush();
                }
            }
        })),
        Err(_) => None,
    };
    if shell {
        // The command once the shell shows its prompt (typed earlier, it showed twice), then
        // `exit`, queued behind it by the manager.
        let sent = pty_console::wait_ready_and_send(
            &Arc::downgrade(&manager),
            &id,
            &args.task,
            pty_console::TaskTiming::default(),
        )
        .map_err(|e| e.to_string())
        .and_then(|_| pty.send_to_session(&id, "exit").map_err(|e| e.to_string()));
        if let Err(e) = sent {
            return fail(2, &format!("Failed to send to agent: {e}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let outcome: Result<(), String> = loop {
        if Instant::now() >= deadline {
            let _ = pty.stop_session(&id, false);
            break Err(format!("timed out after {} s", args.timeout_secs));
        }
        let Ok(ev) = events.recv_timeout(Duration::from_millis(500)) else {
            if pty.get_session(&id).is_some_and(|s| !s.status.is_live()) {
                break Ok(());
            }
            continue;
        };
        match ev {
            SessionEvent::StatusChanged { session, from, to } if session.id == id => {
                let extra = match (&to, &session.prompt) {
                    (SessionStatus::Blocked, Some(p)) => format!(" — waiting: \"{p}\""),
                    _ => String::new(),
                };
                state_line(&id, &format!("{from} → {to}{extra}"));
            }
            SessionEvent::TaskComplete { session, error, .. } if session.id == id && !shell => {
                state_line(&id, "turn complete");
                let _ = pty.stop_session(&id, false);
                break match error {
                    None => Ok(()),
                    Some(e) => Err(format!("Coding agent encountered an error: {e}")),
                };
            }
            SessionEvent::BlockingPrompt {
                session,
                info,
                auto_responded,
            } if session.id == id => {
                let how = if auto_responded {
                    "answered by a rule"
                } else {
                    "waiting for a person"
                };
                state_line(&id, &format!("prompt ({how}): \"{}\"", info.prompt.trim()));
            }
            SessionEvent::Stopped {
                session,
                reason,
                code,
                ..
            } if session.id == id => {
                state_line(&id, &format!("stopped ({reason})"));
                break match code {
                    Some(0) => Ok(()),
                    _ if !shell => Ok(()),
                    _ => Err(format!("the task ended with {reason}")),
                };
            }
            SessionEvent::Error { session, error } if session.id == id => {
                break Err(format!("Coding agent encountered an error: {error}"));
            }
            _ => {}
        }
    };
    if let Some(p) = printer {
        let _ = p.join();
    }
    if let Err(e) = outcome {
        return fail(1, &e);
    }

    // Land the work.
    let (Some(ws), Some(wid)) = (&services.workspace, workspace_id) else {
        say(&format!(
            "[agent-orchestrator] Done. Work left in {}",
            workdir.display()
        ));
        return ExitCode::SUCCESS;
    };
    let first_line: String = args
        .task
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(60)
        .collect();
    let message = args.message.clone().unwrap_or_else(|| {
        format!("feat: {first_line}\n\nGenerated by agent-orchestrator run ({agent}).")
    });
    let sha = match ws.commit(&wid, &message, true) {
        Ok(Some(sha)) => sha,
        Ok(None) => {
            say("[agent-orchestrator] No changes to commit in this workspace.");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(3, &format!("Failed to finalize workspace: {e}")),
    };
    if let Err(e) = ws.push(&wid, true) {
        return fail(3, &format!("Failed to finalize workspace: {e}"));
    }
    let branch = ws.get(&wid).map(|w| w.branch).unwrap_or_default();
    say(&format!(
        "[agent-orchestrator] Commit: {}\n[agent-orchestrator] Pushed branch {branch}",
        &sha[..sha.len().min(8)]
    ));
    if args.pr {
        let pr = PrRequest {
            title: format!("[agent-orchestrator] {first_line}"),
            body: format!(
                "## Summary\n\n{}\n\n**Branch:** {branch}\n**Commit:** {sha}\n\n---\n*Generated by agent-orchestrator run*",
                args.task
            ),
            base_branch: args.base_branch.clone().unwrap_or_default(),
            ..PrRequest::default()
        };
        match ws.create_pr(&wid, pr) {
            Ok(pr) => say(&format!(
                "[agent-orchestrator] PR #{}: {}",
                pr.number, pr.url
            )),
            Err(e) => return fail(3, &format!("Failed to finalize workspace: {e}")),
        }
    }
    ExitCode::SUCCESS
}

fn fail(code: u8, message: &str) -> ExitCode {
    say(&format!("agent-orchestrator: {message}"));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each `write` call, as an unbuffered stderr would make one syscall of each.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_one_write() {
        let (id, text) = (String::from("pty-1"), String::from("ready → busy"));
        let mut w = Calls::default();
        say_to(&mut w, &format!("\r\n[agent-orchestrator] {id}: {text}"));
        assert_eq!(
            w.0,
            [b"\r\n[agent-orchestrator] pty-1: ready \xe2\x86\x92 busy\n".to_vec()]
        );
        // What `eprintln!` does with the same format: one write per piece.
        let mut e = Calls::default();
        let _ = writeln!(e, "\r\n[agent-orchestrator] {id}: {text}");
        assert!(e.0.len() > 1, "{:?}", e.0);
    }
}
