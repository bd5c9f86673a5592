//! The HTTP API of BEHAVIOR.md §10.5, mounted on the console server (same token, same 1 MiB body
//! limit) through [`pty_console::Routes`].
//!
//! Routes keep upstream's shape (`/api/coding-agents…`, `/api/workspace…`, `/api/issues…`) and
//! camelCase JSON; every error is `{error}`. Routes whose backing feature is not in this build
//! answer 501 with what is missing, never a made-up value.

use std::sync::Arc;

use std::time::{Duration, Instant};

use pty_console::{HttpRequest, HttpResponse, RouteResponse, Routes, StreamResponse, StreamWriter};
use serde_json::{Value, json};

use crate::Error;
use crate::actions::util_public::workspace_config;
use crate::actions::workdir_allowed;
use crate::agent_types::resolve_agent_type;
use crate::model::{Decision, DecisionAction, parse_key_list};
use crate::runtime::{Runtime, RuntimeExt};
use crate::services::{IssueQuery, NewIssue, PrRequest, ProvisionRequest, SpawnRequest};
use crate::settings::{APPROVAL_PRESETS, PtyServiceConfig, agent_credentials, agent_model};
use crate::supervision::{Coordinator, EventSubscription, Level, task_json};

/// Default keep-alive interval of the coordinator event stream (BEHAVIOR.md §10.5).
pub const EVENT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Default number of coordinator event streams open at once; more are answered 503.
pub const MAX_EVENT_STREAMS: usize = 16;
/// How often an idle event stream looks whether its client left.
const STREAM_POLL: Duration = Duration::from_millis(200);

/// The path of the coordinator's server-sent-events stream.
pub const EVENTS_PATH: &str = "/api/coding-agents/coordinator/events";

/// The plugin's routes.
pub struct HttpApi {
    runtime: Arc<dyn Runtime>,
    coordinator: Option<Arc<Coordinator>>,
    ping_interval: Duration,
    max_streams: usize,
}

impl std::fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApi").finish_non_exhaustive()
    }
}

fn ok(v: Value) -> HttpResponse {
    HttpResponse::json(200, &v)
}

/// Where agents post their hooks; the one route reached without the console token (it checks
/// the session's own `X-Parallax-Hook-Token`, BEHAVIOR.md §10.5).
pub const HOOKS_PATH: &str = "/api/coding-agents/hooks";

fn err(status: u16, m: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::error(status, &m.to_string())
}

/// The status code of a service error.
fn status_of(e: &Error) -> u16 {
    match e {
        Error::SessionNotFound(_) | Error::WorkspaceNotFound(_) | Error::ScratchNotFound(_) => 404,
        Error::InvalidParameter(_)
        | Error::UnknownAgentType(_)
        | Error::AgentNotInstalled { .. } => 400,
        Error::SessionLimit(_) => 429,
        Error::OutsideAllowedRoots(_) => 403,
        Error::Refused(_) => 409,
        Error::NotImplemented(_) => 501,
        _ => 500,
    }
}

fn from_err(e: Error) -> HttpResponse {
    err(status_of(&e), e)
}

fn body(req: &HttpRequest) -> Result<Value, HttpResponse> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = req.json()?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(err(400, "Invalid JSON body"))
    }
}

fn s(v: &Value, k: &str) -> Option<String> {
    v[k].as_str()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// A CLI agent type from a query value (aliases accepted; `shell` has no CLI config).
fn agent_of(name: &str) -> Result<coding_agent_adapters::AgentType, HttpResponse> {
    let t = resolve_agent_type(name).map_err(|e| err(400, e))?;
    t.parse::<coding_agent_adapters::AgentType>()
        .map_err(|_| err(400, format!("{t} has no approval configuration")))
}

impl HttpApi {
    /// Routes over this runtime's services, with the coordinator if supervision runs.
    pub fn new(runtime: Arc<dyn Runtime>, coordinator: Option<Arc<Coordinator>>) -> Self {
        HttpApi {
            runtime,
            coordinator,
            ping_interval: EVENT_PING_INTERVAL,
            max_streams: MAX_EVENT_STREAMS,
        }
    }

    /// Sets the event stream's `:ping` interval (default [`EVENT_PING_INTERVAL`]) and how many
    /// streams may be open at once (default [`MAX_EVENT_STREAMS`]).
    pub fn with_event_stream(mut self, ping_interval: Duration, max_streams: usize) -> Self {
        self.ping_interval = ping_interval.max(Duration::from_millis(10));
        self.max_streams = max_streams;
        self
    }

    /// `GET …/coordinator/events`: `:ok`, a `snapshot` event, then one `data:` line per
    /// coordinator event as it happens and `:ping` whenever the stream was quiet for the ping
    /// interval, until the client leaves.
    fn events(&self) -> RouteResponse {
        let Some(c) = &self.coordinator else {
            return err(503, "Supervision is not running.").into();
        };
        // Subscribe before the snapshot, so nothing falls between them (an event may show in
        // both; never in neither).
        let Some(sub) = c.open_stream(self.max_streams) else {
            return err(503, "Too many open event streams").into();
        };
        let snap = c.with(|s, _| (s.snapshot(), Vec::new()));
        let ping = self.ping_interval;
        RouteResponse::Stream(
            StreamResponse::new("text/event-stream", move |w| {
                write_events(w, &sub, &snap, ping)
            })
            .with_header("Cache-Control", "no-cache")
            .with_header("X-Accel-Buffering", "no"),
        )
    }

    fn agents(&self, req: &HttpRequest, seg: &[&str]) -> HttpResponse {
        let Some(pty) = self.runtime.pty() else {
            return err(503, "PTY Service is not available.");
        };
        let m = req.method.as_str();
        match (m, seg) {
            ("GET", []) => ok(Value::Array(
                pty.list_sessions().iter().map(|s| s.to_json()).collect(),
            )),
            ("POST", ["spawn"]) => self.spawn(req),
            ("GET", ["settings"]) => {
                let cfg = PtyServiceConfig::from_settings(&|k| self.runtime.get_setting(k))
                    .unwrap_or_default();
                ok(json!({
                    "defaultApprovalPreset": cfg.default_approval_preset,
                    "agentSelectionStrategy": self.runtime.get_setting("PARALLAX_AGENT_SELECTION_STRATEGY").unwrap_or_else(|| "fixed".into()),
                    "defaultAgentType": self.runtime.get_setting("PARALLAX_DEFAULT_AGENT_TYPE").unwrap_or_else(|| "claude".into()),
                }))
            }
            ("GET", ["approval-presets"]) => ok(Value::Array(
                coding_agent_adapters::ApprovalPreset::ALL
                    .iter()
                    .map(|p| json!({"name": p.as_str(), "description": p.description()}))
                    .collect(),
            )),
            ("GET", ["preflight"]) => {
                let registry = match coding_agent_adapters::Registry::builtin() {
                    Ok(r) => r,
                    Err(e) => return err(500, e),
                };
                let path = std::env::var_os("PATH");
                let rows = coding_agent_adapters::preflight::preflight_all(
                    &registry,
                    path.as_deref(),
                    coding_agent_adapters::preflight::VERSION_TIMEOUT,
                );
                ok(json!(rows))
            }
            ("GET", ["approval-config"]) => {
                let agent = match req.query_param("agentType").map(agent_of) {
                    Some(Ok(a)) => a,
                    Some(Err(r)) => return r,
                    None => return err(400, "agentType is required"),
                };
                let preset_name = req
                    .query_param("preset")
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        PtyServiceConfig::from_settings(&|k| self.runtime.get_setting(k))
                            .unwrap_or_default()
                            .default_approval_preset
                    });
                let Ok(preset) = preset_name.parse::<coding_agent_adapters::ApprovalPreset>()
                else {
                    return err(400, format!("unknown preset: {preset_name}"));
                };
                let ctx = coding_agent_adapters::PresetContext::default();
                ok(json!(coding_agent_adapters::approval_config(
                    agent, preset, &ctx
                )))
            }
            ("GET", ["workspace-files"]) => {
                let agent = match req.query_param("agentType").map(agent_of) {
                    Some(Ok(a)) => a,
                    Some(Err(r)) => return r,
                    None => return err(400, "agentType is required"),
                };
                let manifest = match coding_agent_adapters::AgentManifest::builtin(agent) {
                    Ok(m) => m,
                    Err(e) => return err(500, e),
                };
                ok(json!({
                    "agentType": agent.as_str(),
                    "memoryFilePath": manifest.memory_file,
                    "files": coding_agent_adapters::memory::workspace_files(&manifest),
                }))
            }
            ("GET", ["metrics"]) => {
                // Per agent type, from the sessions this process knows, with the score `ranked`
                // selection uses.
                let by_type: serde_json::Map<String, Value> =
                    crate::selection::service_metrics(pty.as_ref())
                        .into_iter()
                        .map(|(t, m)| {
                            let mut v = json!(m);
                            v["meanCompletionMs"] = json!(m.mean_completion_ms());
                            v["score"] = json!(m.score());
                            (t, v)
                        })
                        .collect();
                ok(Value::Object(by_type))
            }
            ("GET", ["scratch"]) => {
                let Some(store) = self.runtime.scratch() else {
                    return err(503, "Scratch workspaces are not available.");
                };
                // A directory that cannot be removed is shown by its record's `removalError`.
                store.sweep(pty.as_ref());
                ok(json!(store.list()))
            }
            ("POST", [id, "scratch", op @ ("keep" | "delete" | "promote")]) => {
                let Some(store) = self.runtime.scratch() else {
                    return err(503, "Scratch workspaces are not available.");
                };
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let r = match *op {
                    "keep" => store
                        .keep(id)
                        .map(|r| json!({"success": true, "scratch": r})),
                    "promote" => store
                        .promote(id, s(&b, "name").as_deref(), pty.as_ref())
                        .map(|r| json!({"success": true, "scratch": r})),
                    _ => store
                        .delete(id, pty.as_ref())
                        .map(|()| json!({"success": true, "deleted": true, "sessionId": id})),
                };
                match r {
                    Ok(v) => ok(v),
                    Err(e) => from_err(e),
                }
            }
            ("POST", ["hooks"]) => self.hooks(req),
            (_, ["hooks"]) => err(405, "Method not allowed"),
            ("GET", ["coordinator", rest @ ..]) | ("POST", ["coordinator", rest @ ..]) => {
                self.coordinator(req, rest)
            }
            ("GET", [id]) => match pty.get_session(id) {
                Some(s) => ok(s.to_json()),
                None => err(404, format!("Session {id} not found")),
            },
            ("POST", [id, "send"]) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                if pty.get_session(id).is_none() {
                    return err(404, format!("Session {id} not found"));
                }
                let r = if !b["keys"].is_null() {
                    let keys = match &b["keys"] {
                        Value::String(k) => parse_key_list(k),
                        other => list(other),
                    };
                    if keys.is_empty() {
                        return err(400, "keys must name at least one key");
                    }
                    pty.send_keys(id, &keys)
                } else if let Some(input) = s(&b, "input") {
                    pty.send_to_session(id, &input)
                } else {
                    return err(400, "Specify 'input' or 'keys'");
                };
                match r {
                    Ok(()) => ok(json!({"success": true})),
                    Err(e) => from_err(e),
                }
            }
            ("POST", [id, "stop"]) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match pty.stop_session(id, b["force"].as_bool().unwrap_or(false)) {
                    Ok(()) => ok(json!({"success": true, "sessionId": id})),
                    Err(e) => from_err(e),
                }
            }
            ("GET", [id, "output"]) => {
                // At most `maxLogLines` (PTY_SERVICE_CONFIG, default 1000) per request.
                let max = PtyServiceConfig::from_settings(&|k| self.runtime.get_setting(k))
                    .map(|c| c.max_log_lines)
                    .unwrap_or(1000)
                    .max(1);
                let lines = req
                    .query_param("lines")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100usize)
                    .min(max);
                match pty.output_lines(id, lines) {
                    Ok(l) => ok(json!({"sessionId": id, "output": l.join("\n")})),
                    Err(e) => from_err(e),
                }
            }
            ("GET", [id, "buffered-output"]) => match pty.raw_output(id) {
                Ok(b) => ok(json!({"sessionId": id, "output": String::from_utf8_lossy(&b)})),
                Err(e) => from_err(e),
            },
            ("GET", [id, "audit"]) => match pty.audit(id) {
                Ok(a) => ok(json!({"sessionId": id, "records": a})),
                Err(e) => from_err(e),
            },
            _ => err(404, "Not found"),
        }
    }

    fn spawn(&self, req: &HttpRequest) -> HttpResponse {
        let Some(pty) = self.runtime.pty() else {
            return err(503, "PTY Service is not available.");
        };
        let b = match body(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let agent = match crate::selection::choose_agent_type(
            self.runtime.as_ref(),
            s(&b, "agentType").as_deref(),
        ) {
            Ok(a) => a,
            Err(e) => return err(400, e),
        };
        let Some(workdir) = s(&b, "workdir") else {
            return err(400, "workdir is required");
        };
        let workdir = std::path::PathBuf::from(workdir);
        if !workdir_allowed(self.runtime.as_ref(), &workdir) {
            return err(
                403,
                "The specified workdir is outside of allowed directories.",
            );
        }
        if let Some(p) = s(&b, "approvalPreset")
            && !APPROVAL_PRESETS.contains(&p.as_str())
        {
            return err(400, format!("unknown preset: {p}"));
        }
        let mut credentials = agent_credentials(&|k| self.runtime.get_setting(k));
        if let Some(custom) = b["customCredentials"].as_object() {
            for (k, v) in custom {
                let valid =
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if let (true, Some(v)) = (valid, v.as_str()) {
                    credentials.push((k.clone(), crate::settings::Secret::new(v)));
                }
            }
        }
        let r = SpawnRequest {
            agent_type: agent.into(),
            name: s(&b["metadata"], "label"),
            workdir: workdir.clone(),
            initial_task: s(&b, "task"),
            memory_content: s(&b, "memoryContent"),
            approval_preset: s(&b, "approvalPreset"),
            credentials,
            supervised: self.coordinator.is_some(),
            model: agent_model(&|k| self.runtime.get_setting(k), agent),
        };
        match pty.spawn_session(r) {
            Ok(info) => HttpResponse::json(
                201,
                &json!({
                "sessionId": info.id, "agentType": agent,
                "workdir": workdir.display().to_string(), "status": info.status.as_str()}),
            ),
            Err(e) => from_err(e),
        }
    }

    fn hooks(&self, req: &HttpRequest) -> HttpResponse {
        let Some(pty) = self.runtime.pty() else {
            return err(503, "PTY Service is not available.");
        };
        let id = req.header("x-parallax-session-id").unwrap_or("");
        // Reached without the console token (see `self_authenticated`): no hook token, no entry.
        let Some(token) = req
            .header("x-parallax-hook-token")
            .filter(|t| !t.is_empty())
        else {
            return err(401, "Invalid hook token");
        };
        let (status, body) = pty.hook(id, token, &req.body);
        HttpResponse::json(status, &body)
    }

    fn coordinator(&self, req: &HttpRequest, rest: &[&str]) -> HttpResponse {
        let Some(c) = &self.coordinator else {
            return err(503, "Supervision is not running.");
        };
        let m = req.method.as_str();
        match (m, rest) {
            ("GET", ["status"]) => ok(c.with(|s, now| {
                let tasks: Vec<Value> = s.tasks().map(task_json).collect();
                (
                    json!({"supervisionLevel": s.level().as_str(), "taskCount": tasks.len(),
                        "pendingCount": s.pending().len(), "paused": s.is_paused(now),
                        "tasks": tasks}),
                    Vec::new(),
                )
            })),
            ("GET", ["tasks", id]) => {
                match c.with(|s, _| (s.task(id).map(task_json), Vec::new())) {
                    Some(t) => ok(t),
                    None => err(404, "Task context not found"),
                }
            }
            ("GET", ["pending"]) => ok(Value::Array(c.with(|s, _| {
                (
                    s.pending()
                        .into_iter()
                        .map(|(id, p, a)| json!({"sessionId": id, "prompt": p, "suggested": a}))
                        .collect(),
                    Vec::new(),
                )
            }))),
            ("POST", ["confirm", id]) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                // A decision is never guessed: `approved` must be a JSON boolean (a string
                // "false" or 0 used to approve).
                let Some(approved) = b["approved"].as_bool() else {
                    return err(400, "approved must be true or false");
                };
                if b.get("override")
                    .is_some_and(|o| !o.is_object() && !o.is_null())
                {
                    return err(400, "override must be an object");
                }
                // The prompt the person saw, when the client sends it: a newer prompt that
                // replaced it is not answered with this decision.
                let seen = match b.get("prompt") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(p)) => Some(p.clone()),
                    Some(_) => return err(400, "prompt must be a string"),
                };
                let over = b.get("override").filter(|o| o.is_object()).map(|o| {
                    let keys = if o["useKeys"].as_bool().unwrap_or(false) {
                        Some(list(&o["keys"]))
                    } else {
                        None
                    };
                    Decision {
                        action: DecisionAction::Respond,
                        response: if keys.is_some() {
                            None
                        } else {
                            s(o, "response")
                        },
                        keys,
                        reasoning: "override from a person".into(),
                        key_decision: None,
                    }
                });
                if over.as_ref().is_some_and(|d| {
                    d.response.is_none() && d.keys.as_ref().is_none_or(|k| k.is_empty())
                }) {
                    return err(400, "override needs response or keys");
                }
                let id = id.to_string();
                match c.with(|s, now| {
                    match s.confirm_seen(now, &id, seen.as_deref(), approved, over) {
                        Ok(Some(effects)) => (Some(Ok(())), effects),
                        Ok(None) => (None, Vec::new()),
                        Err(current) => (Some(Err(current)), Vec::new()),
                    }
                }) {
                    Some(Ok(())) => {
                        ok(json!({"success": true, "sessionId": id, "approved": approved}))
                    }
                    Some(Err(current)) => err(
                        409,
                        format!("the pending prompt changed; it is now: {current}"),
                    ),
                    None => err(404, "No pending confirmation"),
                }
            }
            ("POST", ["pause"]) => {
                c.pause();
                ok(json!({"success": true, "paused": true}))
            }
            ("POST", ["resume"]) => {
                c.resume();
                ok(json!({"success": true, "paused": false}))
            }
            ("GET", ["supervision"]) => ok(json!({"level": c.level().as_str()})),
            ("POST", ["supervision"]) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match s(&b, "level").as_deref().and_then(Level::parse) {
                    Some(l) => {
                        c.set_level(l);
                        ok(json!({"success": true, "level": l.as_str()}))
                    }
                    None => err(400, "level must be autonomous, confirm or notify"),
                }
            }
            _ => err(404, "Not found"),
        }
    }

    fn workspace(&self, req: &HttpRequest, seg: &[&str]) -> HttpResponse {
        let Some(ws) = self.runtime.workspace() else {
            return err(503, "Workspace Service is not available.");
        };
        let m = req.method.as_str();
        match (m, seg) {
            ("POST", ["provision"]) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let use_worktree = b["useWorktree"].as_bool().unwrap_or(false);
                let repo = s(&b, "repo").unwrap_or_default();
                if repo.is_empty() && !use_worktree {
                    return err(400, "repo is required");
                }
                // The same forge allowlist as PROVISION_WORKSPACE.
                if !repo.is_empty() && !crate::actions::provision::repo_allowed(&repo) {
                    return err(
                        400,
                        "Repository URL must be from github.com, gitlab.com, or bitbucket.org.",
                    );
                }
                let prefix = workspace_config(self.runtime.as_ref())
                    .map(|c| c.branch_prefix)
                    .unwrap_or_else(|_| "milady".into());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let r = ProvisionRequest {
                    repo,
                    // Empty: the remote's default branch (a worktree: its clone's).
                    base_branch: s(&b, "baseBranch").unwrap_or_default(),
                    branch_name: Some(
                        s(&b, "branchName")
                            .unwrap_or_else(|| format!("{prefix}/exec-{now}/coding-agent")),
                    ),
                    use_worktree,
                    parent_workspace_id: s(&b, "parentWorkspaceId"),
                    label: None,
                };
                match ws.provision(r) {
                    Ok(w) => HttpResponse::json(
                        201,
                        &json!({"id": w.id, "path": w.path.display().to_string(), "branch": w.branch, "isWorktree": w.is_worktree}),
                    ),
                    Err(e) => from_err(e),
                }
            }
            ("GET", [id]) => match ws.get(id) {
                None => err(404, format!("Workspace {id} not found")),
                Some(_) => match ws.status(id) {
                    Ok(st) => ok(
                        json!({"branch": st["branch"], "clean": st["clean"], "staged": st["staged"], "modified": st["modified"], "untracked": st["untracked"]}),
                    ),
                    Err(e) => from_err(e),
                },
            },
            ("DELETE", [id]) => {
                if ws.get(id).is_none() {
                    return err(404, format!("Workspace {id} not found"));
                }
                let force = req.query_param("force") == Some("true");
                match ws.cleanup(id, force) {
                    Ok(_) => ok(json!({"success": true, "workspaceId": id})),
                    Err(e) => from_err(e),
                }
            }
            ("POST", [id, op @ ("commit" | "push" | "pr")]) => {
                let Some(w) = ws.get(id) else {
                    return err(404, format!("Workspace {id} not found"));
                };
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                match *op {
                    "commit" => match ws.commit(
                        id,
                        &s(&b, "message")
                            .unwrap_or_else(|| "feat: automated changes from coding agent".into()),
                        true,
                    ) {
                        Ok(sha) => ok(json!({"sha": sha})),
                        Err(e) => from_err(e),
                    },
                    "push" => match ws.push(id, b["setUpstream"].as_bool().unwrap_or(true)) {
                        Ok(()) => ok(json!({"success": true, "branch": w.branch})),
                        Err(e) => from_err(e),
                    },
                    _ => {
                        let Some(title) = s(&b, "title") else {
                            return err(400, "title is required");
                        };
                        let pr = PrRequest {
                            title,
                            body: s(&b, "body").unwrap_or_default(),
                            base_branch: s(&b, "baseBranch").unwrap_or_default(),
                            draft: b["draft"].as_bool().unwrap_or(false),
                            labels: list(&b["labels"]),
                            reviewers: list(&b["reviewers"]),
                        };
                        match ws.create_pr(id, pr) {
                            Ok(pr) => HttpResponse::json(201, &json!(pr)),
                            Err(e) => from_err(e),
                        }
                    }
                }
            }
            _ => err(404, "Not found"),
        }
    }

    fn issues(&self, req: &HttpRequest, seg: &[&str]) -> HttpResponse {
        let Some(ws) = self.runtime.workspace() else {
            return err(503, "Workspace Service is not available.");
        };
        let m = req.method.as_str();
        match (m, seg) {
            ("GET", []) => {
                let Some(repo) = req.query_param("repo").filter(|r| !r.is_empty()) else {
                    return err(400, "repo is required");
                };
                let q = IssueQuery {
                    state: req.query_param("state").unwrap_or("open").to_string(),
                    labels: list(&Value::String(
                        req.query_param("labels").unwrap_or("").to_string(),
                    )),
                };
                match ws.list_issues(repo, &q) {
                    Ok(i) => ok(json!(i)),
                    Err(e) => from_err(e),
                }
            }
            ("POST", []) => {
                let b = match body(req) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let (Some(repo), Some(title)) = (s(&b, "repo"), s(&b, "title")) else {
                    return err(400, "repo and title are required");
                };
                let n = NewIssue {
                    title,
                    body: s(&b, "body").unwrap_or_default(),
                    labels: list(&b["labels"]),
                };
                match ws.create_issue(&repo, &n) {
                    Ok(i) => HttpResponse::json(201, &json!(i)),
                    Err(e) => from_err(e),
                }
            }
            (_, [owner, repo, number, rest @ ..]) => {
                let Ok(n) = number.parse::<u64>() else {
                    return err(400, "issue number must be a number");
                };
                let full = format!("{owner}/{repo}");
                match (m, rest) {
                    ("GET", []) => match ws.get_issue(&full, n) {
                        Ok(i) => ok(json!(i)),
                        Err(e) => from_err(e),
                    },
                    ("POST", ["comment"]) => {
                        let b = match body(req) {
                            Ok(b) => b,
                            Err(r) => return r,
                        };
                        let Some(text) = s(&b, "body") else {
                            return err(400, "body is required");
                        };
                        match ws.add_comment(&full, n, &text) {
                            Ok(url) => HttpResponse::json(201, &json!({"url": url})),
                            Err(e) => from_err(e),
                        }
                    }
                    ("POST", ["close"]) => {
                        let u = crate::services::IssueUpdate {
                            state: Some("closed".into()),
                            ..Default::default()
                        };
                        match ws.update_issue(&full, n, &u) {
                            Ok(i) => ok(json!(i)),
                            Err(e) => from_err(e),
                        }
                    }
                    _ => err(404, "Not found"),
                }
            }
            _ => err(404, "Not found"),
        }
    }
}

/// The body of one event stream; returns when the client leaves, a write fails, the coordinator
/// drops the subscription (the client fell too far behind) or the server stops.
fn write_events(w: &mut StreamWriter<'_>, sub: &EventSubscription, snap: &Value, ping: Duration) {
    let opening = format!(":ok\n\nevent: snapshot\ndata: {snap}\n\n");
    if w.send(opening.as_bytes()).is_err() {
        return;
    }
    let mut last_write = Instant::now();
    loop {
        match sub.recv_timeout(STREAM_POLL.min(ping)) {
            Ok(event) => {
                if w.send(format!("data: {event}\n\n").as_bytes()).is_err() {
                    return;
                }
                last_write = Instant::now();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if w.is_closed() {
                    return;
                }
                if last_write.elapsed() >= ping {
                    if w.send(b":ping\n\n").is_err() {
                        return;
                    }
                    last_write = Instant::now();
                }
            }
        }
    }
}

impl Routes for HttpApi {
    fn respond(&self, req: &HttpRequest) -> Option<RouteResponse> {
        if req.method == "GET" && req.path.trim_end_matches('/') == EVENTS_PATH {
            return Some(self.events());
        }
        self.handle(req).map(RouteResponse::Whole)
    }

    fn handle(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let seg = req.segments();
        match seg.as_slice() {
            ["api", "coding-agents", rest @ ..] => Some(self.agents(req, rest)),
            ["api", "workspace", rest @ ..] => Some(self.workspace(req, rest)),
            ["api", "issues", rest @ ..] => Some(self.issues(req, rest)),
            _ => None,
        }
    }

    /// The hooks endpoint is called by agents, which hold their session's hook token and never
    /// the console token; [`HttpApi`]'s `hooks` handler checks that token itself.
    fn self_authenticated(&self, _method: &str, path: &str) -> bool {
        path == HOOKS_PATH
    }
}
