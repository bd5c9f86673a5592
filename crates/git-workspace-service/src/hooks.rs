//! `on_complete` after provisioning: a command run as an argv with a minimal environment, and a
//! webhook POSTed only to allowed hosts. Neither can fail the provisioning; outcomes are logged.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::events::EventBus;
use crate::registry::WorkspaceRecord;
use crate::url::RepoUrl;

/// How long an `on_complete` command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Variables a hook command inherits from this process; everything else is left out.
const INHERITED: &[&str] = &["PATH", "HOME", "USER", "LANG", "TMPDIR"];

/// What to run once a workspace is provisioned (or failed to be).
#[derive(Debug, Clone, Default)]
pub struct OnComplete {
    /// Program and arguments (never a shell string). Runs in the workspace directory when it
    /// exists (else in the base directory), with `WORKSPACE_ID`, `REPO`, `BRANCH`, `STATUS`, `WORKSPACE_PATH` set.
    pub command: Option<Vec<String>>,
    /// URL to POST `{workspaceId, repo, branch, status, timestamp}` to; its host must be in
    /// `ServiceConfig::webhook_allowed_hosts`.
    pub webhook: Option<String>,
    /// Extra webhook headers (values are treated as secrets and redacted from logs).
    pub webhook_headers: Vec<(String, String)>,
    /// Also run when provisioning failed (default in BEHAVIOR.md: true).
    pub run_on_error: bool,
}

pub(crate) fn run(
    hook: &OnComplete,
    rec: &WorkspaceRecord,
    allowed_hosts: &[String],
    now_ms: u64,
    events: &EventBus,
    redactor: &crate::Redactor,
) {
    let status = rec.status.as_str();
    if let Some(argv) = &hook.command
        && let Some((program, args)) = argv.split_first()
    {
        let mut c = Command::new(program);
        c.args(args).env_clear();
        for k in INHERITED {
            if let Some(v) = std::env::var_os(k) {
                c.env(k, v);
            }
        }
        c.env("WORKSPACE_ID", &rec.id)
            .env("REPO", &rec.repo)
            .env("BRANCH", &rec.branch)
            .env("STATUS", status)
            .env("WORKSPACE_PATH", &rec.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Never the caller's own directory: the workspace, or (when provisioning failed and it
        // was removed) the base directory that holds it.
        let cwd = if rec.path.is_dir() {
            rec.path.clone()
        } else {
            rec.path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir)
        };
        c.current_dir(cwd);
        match c.spawn() {
            Ok(mut child) => {
                let start = Instant::now();
                loop {
                    match child.try_wait() {
                        Ok(Some(st)) if st.success() => break,
                        Ok(Some(st)) => {
                            events.log(&format!(
                                "on_complete command {program} for {} exited with {st}",
                                rec.id
                            ));
                            break;
                        }
                        Ok(None) if start.elapsed() > COMMAND_TIMEOUT => {
                            let _ = child.kill();
                            let _ = child.wait();
                            events.log(&format!(
                                "on_complete command {program} for {} timed out",
                                rec.id
                            ));
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                        Err(e) => {
                            events.log(&format!(
                                "on_complete command {program} for {}: {e}",
                                rec.id
                            ));
                            break;
                        }
                    }
                }
            }
            Err(e) => events.log(&format!(
                "on_complete command {program} for {} did not start: {e}",
                rec.id
            )),
        }
    }
    if let Some(url) = &hook.webhook {
        for (_, v) in &hook.webhook_headers {
            redactor.add(v);
        }
        let allowed = RepoUrl::parse(url, "")
            .ok()
            .filter(|u| u.url.starts_with("https://") || u.url.starts_with("http://"))
            .and_then(|u| u.host)
            .is_some_and(|h| allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(&h)));
        if !allowed {
            events.log(&format!(
                "on_complete webhook refused: host of {url} is not allowed"
            ));
            return;
        }
        let body = json!({
            "workspaceId": rec.id, "repo": rec.repo, "branch": rec.branch,
            "status": status, "timestamp": now_ms,
        });
        let agent = crate::forge::agent(url, Duration::from_secs(10));
        let mut req = agent.post(url);
        for (k, v) in &hook.webhook_headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send_json(&body) {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => events.log(&format!(
                "on_complete webhook {url} answered {}",
                r.status()
            )),
            Err(e) => events.log(&format!("on_complete webhook {url} failed: {e}")),
        }
    }
}
