//! The orchestrated side of `cargo xtask e2e`: one agent driven through `orchestrator-plugin`,
//! in-process, the way a chat agent drives it.
//!
//! `cargo xtask e2e` runs this in a child process (`xtask e2e --phase …`) whose whole environment
//! is the run's private world: `HOME` and `TMPDIR` inside the run's temporary root, `PATH`, and
//! nothing else. That is the environment a user's orchestrator process has, so the plugin's PTY
//! service (which passes `HOME`, `TMPDIR` and `PATH` on to agents) and its workspace service
//! (whose `git` reads `~/.gitconfig`) see only the world; no process-wide variable is changed.
//!
//! Every step goes through the plugin's public API: its settings store, `PTY_SERVICE` and
//! `CODING_WORKSPACE_SERVICE` built from those settings, and its chat actions
//! (PROVISION_WORKSPACE, SPAWN_CODING_AGENT, SEND_TO_CODING_AGENT, FINALIZE_WORKSPACE,
//! STOP_CODING_AGENT). The harness only watches the manager's event stream (the same stream the
//! plugin's supervision reads) and, where the `standard` preset leaves a prompt to a person,
//! answers it as that person would: with SEND_TO_CODING_AGENT.
//!
//! Each step's outcome is one line on stdout, `E2E-STEP {json}`, read by the parent.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator_plugin::actions::{self, ChatMemory, Message, Params};
use orchestrator_plugin::services::{GitWorkspaces, ManagedPty, PtyService};
use orchestrator_plugin::settings::{PtyServiceConfig, WorkspaceConfig};
use orchestrator_plugin::{SettingsStore, StandaloneRuntime};
use pty_manager::{QueueReceiver, SessionEvent, SessionStatus};
use serde_json::{Value, json};
use test_support::github::FakeGitHub;
use test_support::model::{FakeModel, FakeModelOptions, MODEL_ID};

use crate::agents::{self, Seed};
use crate::e2e::{self, FILE, FILE_CONTENT, TASK, World};

/// Prefix of a result line on stdout.
pub const STEP_PREFIX: &str = "E2E-STEP ";

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const TURN_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_WAIT: Duration = Duration::from_secs(20);
const LEFTOVER_WAIT: Duration = Duration::from_secs(15);

/// The URL the workspace service clones; the world's `~/.gitconfig` rewrites it to the local
/// bare remote, and the fake GitHub serves the same `owner/repo`.
const REMOTE_URL: &str = "https://github.com/e2e/hello.git";
const ROOM: &str = "e2e";

/// What the child is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The whole turn: provision → … → stop.
    Turn,
    /// A fresh HOME without credentials: the login state.
    Login,
    /// Credentials but no trust entry: the trust dialog.
    Trust,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Turn => "turn",
            Phase::Login => "login",
            Phase::Trust => "trust",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Phase::Turn, Phase::Login, Phase::Trust]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Prints one step's result for the parent (and a readable line on stderr).
fn report(agent: &str, step: &str, status: &str, took: Duration, note: &str) {
    eprintln!(
        "xtask e2e: {agent} {step}: {status} {:.1}s {}",
        took.as_secs_f64(),
        note.lines().next().unwrap_or("")
    );
    let line = json!({"step": step, "status": status, "ms": took.as_millis() as u64, "note": note});
    println!("{STEP_PREFIX}{line}");
}

/// Runs `f` as step `name`: reports ok with its note or fail with its error.
fn step<T>(
    agent: &str,
    name: &str,
    f: impl FnOnce() -> Result<(T, String), String>,
) -> Result<T, String> {
    let t = Instant::now();
    match f() {
        Ok((v, note)) => {
            report(agent, name, "ok", t.elapsed(), &note);
            Ok(v)
        }
        Err(e) => {
            report(agent, name, "fail", t.elapsed(), &e);
            Err(e)
        }
    }
}

/// Entry point of `xtask e2e --phase P --agent NAME --version V --root DIR`.
pub fn run_child(args: &[String]) -> ExitCode {
    let mut phase = None;
    let mut agent = None;
    let mut version = None;
    let mut root = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().cloned();
        match a.as_str() {
            "--phase" => phase = v.as_deref().and_then(Phase::parse),
            "--agent" => agent = v,
            "--version" => version = v,
            "--root" => root = v.map(PathBuf::from),
            _ => {}
        }
    }
    let (Some(phase), Some(agent), Some(version), Some(root)) = (phase, agent, version, root)
    else {
        eprintln!("xtask e2e: --phase turn|login|trust --agent NAME --version V --root DIR");
        return ExitCode::from(2);
    };
    let world = World::at(root);
    // Only as the parent starts it: inside its world, whose ~/.gitconfig points the forge URL at
    // the local bare remote. Started by hand with a real HOME, the clone would go to the network.
    let home_ok = std::env::var_os("HOME").is_some_and(|h| Path::new(&h) == world.home());
    if !home_ok || !world.home().is_dir() {
        eprintln!(
            "xtask e2e: --phase runs only as a child of `cargo xtask e2e` (HOME must be {})",
            world.home().display()
        );
        return ExitCode::from(2);
    }
    let r = match phase {
        Phase::Turn => turn(&agent, &version, &world),
        Phase::Login | Phase::Trust => state(&agent, &version, &world, phase),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask e2e: {agent} {}: {e}", phase.as_str());
            ExitCode::FAILURE
        }
    }
}

/// The plugin's settings for `agent` talking to `model` from `home`: the same names a user puts
/// in the environment or the YAML settings file (BEHAVIOR.md §10.1). `with_key` leaves out every
/// credential; `write_config` lets the plugin write the agent's first-run configuration.
pub fn offline_settings(
    agent: &str,
    model: &FakeModel,
    home: &Path,
    base_dir: &Path,
    with_key: bool,
    write_config: bool,
) -> Vec<(String, String)> {
    let base = model.base_url();
    let key = model.api_key().to_owned();
    let mut s: Vec<(String, String)> = vec![
        ("HOME".into(), home.display().to_string()),
        (
            "CODING_WORKSPACE_CONFIG".into(),
            json!({"baseDir": base_dir.display().to_string(), "branchPrefix": "e2e"}).to_string(),
        ),
        (
            // The preset under test; the idle watchdog off (the run has its own timeouts).
            "PTY_SERVICE_CONFIG".into(),
            json!({"defaultApprovalPreset": "standard", "idleTimeoutMs": 0}).to_string(),
        ),
    ];
    if write_config {
        s.push(("ORCHESTRATOR_WRITE_AGENT_CONFIG".into(), "1".into()));
    }
    // The credentials and model names each CLI needs for the fake model, under the plugin's
    // setting names; the plugin maps them to each CLI's own variables and flags.
    let keyed: Vec<(&str, String)> = match agent {
        // Pi reads the Anthropic key and, through the models.json the plugin writes, the URL.
        "claude" | "pi" => vec![("ANTHROPIC_API_KEY", key), ("ANTHROPIC_BASE_URL", base)],
        "codex" => vec![
            ("OPENAI_API_KEY", key),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
            ("PARALLAX_CODEX_MODEL_POWERFUL", MODEL_ID.into()),
        ],
        "gemini" => vec![
            ("GOOGLE_GENERATIVE_AI_API_KEY", key),
            ("GOOGLE_GEMINI_BASE_URL", base),
        ],
        "aider" => vec![
            ("OPENAI_API_KEY", key),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
            (
                "PARALLAX_AIDER_MODEL_POWERFUL",
                format!("openai/{MODEL_ID}"),
            ),
        ],
        _ => Vec::new(),
    };
    if with_key {
        s.extend(keyed.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    // Variables that are not credentials but keep a CLI off the network, handed to the agent
    // through CUSTOM_CREDENTIAL_KEYS (the plugin passes nothing else from its environment).
    let extra: &[(&str, &str)] = match agent {
        "claude" => &[("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")],
        // litellm's own price-list download.
        "aider" => &[("LITELLM_LOCAL_MODEL_COST_MAP", "True")],
        _ => &[],
    };
    if !extra.is_empty() {
        let names: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        s.push(("CUSTOM_CREDENTIAL_KEYS".into(), names.join(",")));
        s.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    s
}

/// The plugin, as a host builds it: settings → PTY and workspace services → runtime.
struct Plugin {
    runtime: StandaloneRuntime,
    pty: Arc<ManagedPty>,
    memory: ChatMemory,
}

impl Plugin {
    fn start(settings: Vec<(String, String)>, github: Option<&FakeGitHub>) -> Result<Self, String> {
        let mut store = SettingsStore::from_pairs(settings);
        if let Some(gh) = github {
            store.set("GITHUB_TOKEN", gh.token());
            store.set("GITHUB_API_URL", gh.base_url());
        }
        let get = |k: &str| store.get(k);
        let pty_cfg =
            PtyServiceConfig::from_settings(&get).map_err(|e| format!("PTY settings: {e}"))?;
        let home = store.get("HOME").map(PathBuf::from);
        let ws_cfg = WorkspaceConfig::from_settings(&get, home.as_deref())
            .map_err(|e| format!("workspace settings: {e}"))?;
        let pty = Arc::new(
            ManagedPty::start(pty_cfg, |t| eprintln!("xtask e2e: [chat] {t}"))
                .map_err(|e| format!("PTY service: {e}"))?,
        );
        let api = store.get("GITHUB_API_URL");
        let ws = Arc::new(
            GitWorkspaces::open(&ws_cfg, api.as_deref())
                .map_err(|e| format!("workspace service: {e}"))?,
        );
        let runtime = StandaloneRuntime::new(store)
            .map_err(|e| format!("runtime: {e}"))?
            .with_pty(pty.clone())
            .with_workspace(ws)
            .with_reply_sink(|t| eprintln!("xtask e2e: [chat] {t}"));
        Ok(Plugin {
            runtime,
            pty,
            memory: ChatMemory::default(),
        })
    }

    /// Runs a chat action with these parameters; its reply text, or the failure's.
    fn action(&self, name: &str, params: Value) -> Result<Value, String> {
        let action = actions::find(name).ok_or_else(|| format!("no action {name}"))?;
        let params: Params = match params {
            Value::Object(m) => m,
            _ => Params::new(),
        };
        let message = Message::text(ROOM, "");
        let r = actions::run(
            action,
            &self.runtime,
            &self.memory,
            &message,
            &params,
            &mut |p| eprintln!("xtask e2e: [{name}] {p}"),
        );
        if r.success {
            Ok(r.data)
        } else {
            Err(format!("{name}: {}", r.text))
        }
    }

    fn events(&self) -> QueueReceiver<SessionEvent> {
        self.pty.manager().events()
    }

    fn screen(&self, id: &str) -> String {
        e2e::screen_text(self.pty.manager(), id)
    }

    /// The session's audit of automatic input, one short line per record.
    fn audit(&self, id: &str) -> Vec<String> {
        match self.pty.audit(id) {
            Ok(records) => records.iter().map(audit_line).collect(),
            Err(e) => vec![format!("(audit unavailable: {e})")],
        }
    }
}

fn audit_line(r: &Value) -> String {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| r.get(*n).filter(|v| !v.is_null()))
            .map(|v| match v {
                Value::String(s) => s.lines().next().unwrap_or("").trim().to_owned(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "rule {} answered `{}` to `{}`",
        field(&["rule_id"]),
        field(&["sent"]),
        field(&["prompt_excerpt"]),
    )
}

/// The session's status as the plugin reports it.
fn status_of(plugin: &Plugin, id: &str) -> String {
    plugin
        .pty
        .get_session(id)
        .map_or("unknown".into(), |s| s.status.as_str().to_owned())
}

fn str_field(v: &Value, k: &str) -> Result<String, String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the action's data has no `{k}`: {v}"))
}

/// Waits for the first event of session `id` that `pick` maps to a value.
fn wait<T>(
    events: &QueueReceiver<SessionEvent>,
    id: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
    pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> Option<T> {
    e2e::wait_event(events, id, timeout, seen, pick)
}

/// A bare remote whose `main` has a README and the `.gitignore` a repository used with Aider
/// has, and `~/.gitconfig` rewriting [`REMOTE_URL`] to it.
fn seed_remote(world: &World) -> Result<PathBuf, String> {
    let home = world.home();
    agents::write_gitconfig(&home)?;
    let gitconfig = home.join(".gitconfig");
    let seed = world.root.join("seed");
    let bare = world.root.join("remote.git");
    std::fs::create_dir_all(&seed).map_err(|e| e.to_string())?;
    let mut cfg = std::fs::read_to_string(&gitconfig).unwrap_or_default();
    cfg.push_str(&format!(
        "[protocol \"file\"]\n\tallow = always\n[url \"file://{}\"]\n\tinsteadOf = {REMOTE_URL}\n",
        bare.display()
    ));
    std::fs::write(&gitconfig, cfg).map_err(|e| e.to_string())?;
    e2e::git(world, &seed, &["init", "-q", "-b", "main"])?;
    std::fs::write(seed.join("README.md"), "# e2e\n").map_err(|e| e.to_string())?;
    // Aider keeps its chat history and tag cache in the repository; projects ignore them.
    std::fs::write(seed.join(".gitignore"), ".aider*\n").map_err(|e| e.to_string())?;
    e2e::git(world, &seed, &["add", "README.md", ".gitignore"])?;
    e2e::git(world, &seed, &["commit", "-q", "-m", "initial"])?;
    let bare_s = bare.display().to_string();
    e2e::git(
        world,
        &world.root,
        &["init", "-q", "--bare", "-b", "main", &bare_s],
    )?;
    e2e::git(world, &seed, &["push", "-q", &bare_s, "main"])?;
    Ok(bare)
}

/// Turns a rule's suggested answer into SEND_TO_CODING_AGENT parameters: `keys:a,b` as keys,
/// `text:y` (or bare text) as input, nothing as Enter.
fn answer_params(id: &str, answer: &str) -> Value {
    let answer = answer.strip_prefix("text:").unwrap_or(answer);
    if let Some(keys) = answer.strip_prefix("keys:") {
        let keys: Vec<&str> = keys.split(',').map(str::trim).collect();
        json!({"sessionId": id, "keys": keys})
    } else if answer.trim().is_empty() {
        json!({"sessionId": id, "keys": ["enter"]})
    } else {
        json!({"sessionId": id, "input": answer.trim()})
    }
}

/// The whole turn through the plugin. Every step reports; the first failure ends the flow, but
/// the session is always stopped through the plugin.
fn turn(agent: &str, _version: &str, world: &World) -> Result<(), String> {
    // Codex runs its tool call in its sandbox without asking; asking for escalated permissions
    // is what makes it show its approval prompt, which this run must see answered.
    let model = FakeModel::start_with(
        FakeModelOptions::default()
            .escalate_commands(agent == "codex")
            .reply_delay(Duration::from_millis(700)),
    )
    .map_err(|e| e.to_string())?;
    let github = FakeGitHub::start().map_err(|e| e.to_string())?;
    github.add_repo("e2e", "hello", "main");
    let bare = seed_remote(world)?;
    let settings = offline_settings(
        agent,
        &model,
        &world.home(),
        &world.root.join("workspaces"),
        true,
        true,
    );
    let plugin = Plugin::start(settings, Some(&github))?;
    let events = plugin.events();
    let mut seen = Vec::new();

    let (ws_id, workdir, branch) = step(agent, "provision", || {
        let parent = plugin.action("PROVISION_WORKSPACE", json!({"repo": REMOTE_URL}))?;
        let parent_id = str_field(&parent, "workspaceId")?;
        let wt = plugin.action(
            "PROVISION_WORKSPACE",
            json!({"useWorktree": true, "parentWorkspaceId": parent_id}),
        )?;
        if wt.get("isWorktree") != Some(&Value::Bool(true)) {
            return Err(format!("the second workspace is not a worktree: {wt}"));
        }
        let branch = str_field(&wt, "branch")?;
        let note = format!("PROVISION_WORKSPACE: clone, then worktree on branch {branch}");
        Ok((
            (
                str_field(&wt, "workspaceId")?,
                PathBuf::from(str_field(&wt, "path")?),
                branch,
            ),
            note,
        ))
    })?;

    let id = step(agent, "spawn", || {
        let d = plugin.action(
            "SPAWN_CODING_AGENT",
            json!({"agentType": agent, "workdir": workdir.display().to_string(),
                   "approvalPreset": "standard"}),
        )?;
        let id = str_field(&d, "sessionId")?;
        Ok((id, "SPAWN_CODING_AGENT, preset standard".into()))
    })?;

    let flow = turn_steps(agent, &plugin, &events, &id, &workdir, &mut seen);
    if flow.is_ok() {
        let _ = step(agent, "finalize", || {
            let title = format!("e2e: {agent} adds {FILE}");
            // Aider commits its own edits (its default outside `readonly`): FINALIZE lands a
            // branch ahead of the remote even with a clean tree, so every agent goes through it.
            let d = plugin.action(
                "FINALIZE_WORKSPACE",
                json!({"workspaceId": ws_id, "commitMessage": title, "prTitle": title,
                       "prBody": "Created by the end-to-end run.", "baseBranch": "main"}),
            )?;
            let head = e2e::git(world, &workdir, &["rev-parse", "HEAD"])?;
            if str_field(&d, "commit")? != head.trim() {
                return Err(format!(
                    "FINALIZE_WORKSPACE reported commit {:?}, HEAD is {}",
                    d.get("commit"),
                    head.trim()
                ));
            }
            let own = e2e::git(world, &workdir, &["log", "--format=%h %s", "-2"])?;
            let how = format!(
                "FINALIZE_WORKSPACE (last commits: {})",
                own.lines().collect::<Vec<_>>().join(" | ")
            );
            let bare_s = bare.display().to_string();
            let changed = e2e::git(
                world,
                &world.root,
                &["--git-dir", &bare_s, "diff", "--name-only", "main", &branch],
            )
            .map_err(|e| format!("branch {branch} not on the remote: {e}"))?;
            if changed.lines().collect::<Vec<_>>() != [FILE] {
                return Err(format!(
                    "the pushed branch should change only {FILE}; it changes {changed:?}"
                ));
            }
            let number = d.get("prNumber").and_then(Value::as_u64);
            let pulls = github.pulls("e2e", "hello");
            let on_forge = pulls.iter().any(|p| {
                p.get("number").and_then(Value::as_u64) == number
                    && p.pointer("/head/ref").and_then(Value::as_str) == Some(branch.as_str())
            });
            if number.is_none() || !on_forge {
                return Err(format!(
                    "no pull request #{number:?} from {branch} on the fake GitHub ({} there)",
                    pulls.len()
                ));
            }
            Ok((
                (),
                format!(
                    "{how}: commit {}, pushed {branch} (changes only {FILE}), PR #{}",
                    str_field(&d, "commit")?.chars().take(8).collect::<String>(),
                    number.unwrap_or(0)
                ),
            ))
        });
    }
    let _ = step(agent, "stop", || {
        plugin.action("STOP_CODING_AGENT", json!({"sessionId": id}))?;
        let reason = wait(&events, &id, STOP_WAIT, &mut seen, |ev| match ev {
            SessionEvent::Stopped { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        let status = status_of(&plugin, &id);
        let left = e2e::wait_no_processes(&world.home(), LEFTOVER_WAIT);
        match (reason, left.is_empty()) {
            (Some(r), true) => Ok((
                (),
                format!("STOP_CODING_AGENT: stopped ({r}), status {status}, no process left"),
            )),
            (Some(r), false) => Err(format!("stopped ({r}) but pids {left:?} survive")),
            (None, _) => Err(format!(
                "no session_stopped within {STOP_WAIT:?} (status {status}, pids {left:?})"
            )),
        }
    });
    flow
}

/// ready → send → permission → complete → file.
fn turn_steps(
    agent: &str,
    plugin: &Plugin,
    events: &QueueReceiver<SessionEvent>,
    id: &str,
    workdir: &Path,
    seen: &mut Vec<String>,
) -> Result<(), String> {
    step(agent, "ready", || {
        wait(events, id, READY_TIMEOUT, seen, |ev| {
            matches!(ev, SessionEvent::Ready { .. }).then_some(())
        })
        .ok_or_else(|| {
            format!(
                "no session_ready within {READY_TIMEOUT:?} (statuses: {seen:?}; status {}, \
                 prompt {:?}; audit: {:?}); screen:\n{}",
                status_of(plugin, id),
                plugin.pty.get_session(id).and_then(|s| s.prompt),
                plugin.audit(id),
                plugin.screen(id)
            )
        })?;
        let audit = plugin.audit(id);
        let mut note = format!("status {}", status_of(plugin, id));
        if !audit.is_empty() {
            note.push_str(&format!("; answered on the way: {}", audit.join("; ")));
        }
        Ok(((), note))
    })?;
    step(agent, "send", || {
        plugin.action(
            "SEND_TO_CODING_AGENT",
            json!({"sessionId": id, "input": TASK}),
        )?;
        Ok(((), "SEND_TO_CODING_AGENT".into()))
    })?;

    // Under `standard`, file writes and shell commands ask a person: the plugin reports the
    // session `blocked` with the prompt, and the person answers with SEND_TO_CODING_AGENT.
    let t = Instant::now();
    let audit_before = plugin.audit(id).len();
    let mut asked: Vec<String> = Vec::new();
    let mut problem: Option<String> = None;
    let mut answered_at = None;
    let done = wait(events, id, TURN_TIMEOUT, seen, |ev| match ev {
        SessionEvent::BlockingPrompt {
            info,
            auto_responded,
            ..
        } => {
            let first = info.prompt.lines().next().unwrap_or("").trim().to_owned();
            if *auto_responded {
                asked.push(format!(
                    "`{first}` answered by rule {:?} of the preset",
                    info.rule_id
                ));
                return None;
            }
            // A signal without a suggested answer (Codex's OSC 7501 `blocked` arrives before its
            // dialog is drawn) is not answered: keys sent before the dialog exists would be lost.
            let answer = info
                .suggested_response
                .clone()
                .filter(|a| !a.trim().is_empty())?;
            let key = format!("{:?}\u{1f}{}", info.rule_id, info.prompt);
            if asked.iter().any(|a| a.ends_with(&key)) {
                return None;
            }
            let s = plugin.pty.get_session(id);
            let status = s.as_ref().map(|s| s.status);
            let has_prompt = s.as_ref().and_then(|s| s.prompt.as_ref()).is_some();
            if status != Some(SessionStatus::Blocked) || !has_prompt {
                problem.get_or_insert(format!(
                    "a prompt was detected but the session reads {status:?} (prompt shown: {has_prompt})"
                ));
            }
            let r = plugin.action("SEND_TO_CODING_AGENT", answer_params(id, &answer));
            answered_at.get_or_insert(t.elapsed());
            match r {
                Ok(_) => asked.push(format!(
                    "{:?} prompt `{first}` (rule {:?}): session blocked, answered `{answer}` with SEND_TO_CODING_AGENT after {:.1}s\u{1f}{key}",
                    info.prompt_type,
                    info.rule_id,
                    t.elapsed().as_secs_f64()
                )),
                Err(e) => {
                    problem.get_or_insert(format!("answering `{first}` failed: {e}"));
                }
            }
            None
        }
        SessionEvent::TaskComplete {
            turn_output, error, ..
        } => Some((turn_output.clone(), error.clone())),
        SessionEvent::Stopped { reason, .. } => {
            Some((String::new(), Some(format!("the agent exited: {reason}"))))
        }
        _ => None,
    });
    let turn_time = t.elapsed();
    let audit: Vec<String> = plugin.audit(id).into_iter().skip(audit_before).collect();
    let asked: Vec<String> = asked
        .into_iter()
        .map(|a| a.split('\u{1f}').next().unwrap_or("").to_owned())
        .collect();
    let completed = matches!(done, Some((_, None)));
    let asks = agent != "pi";
    let mut note = if asked.is_empty() {
        String::new()
    } else {
        asked.join("; ")
    };
    note.push_str(&format!(
        "; audit of automatic input during the turn: {}",
        if audit.is_empty() {
            "none".to_owned()
        } else {
            audit.join("; ")
        }
    ));
    let perm_took = answered_at.unwrap_or(turn_time);
    match (&problem, asked.is_empty(), asks) {
        (Some(p), _, _) => report(
            agent,
            "permission",
            "fail",
            perm_took,
            &format!("{p}; {note}"),
        ),
        (None, true, false) => report(
            agent,
            "permission",
            "na",
            Duration::ZERO,
            &format!("pi never asks{note}"),
        ),
        (None, true, true) => report(
            agent,
            "permission",
            "fail",
            turn_time,
            &format!("no permission prompt was detected under the standard preset{note}"),
        ),
        (None, false, _) if completed => report(agent, "permission", "ok", perm_took, &note),
        (None, false, _) => report(
            agent,
            "permission",
            "fail",
            perm_took,
            &format!("{note}; but the turn did not complete"),
        ),
    }
    let out = done.as_ref().map(|(o, _)| o.clone()).unwrap_or_default();
    // The step's time is the whole turn, send to completion.
    match &done {
        Some((out, None)) => report(
            agent,
            "complete",
            "ok",
            turn_time,
            &format!(
                "task_complete, status {}, turn output {} bytes{}",
                status_of(plugin, id),
                out.len(),
                if out.contains("FAKE_TURN_COMPLETE") {
                    ", has the model's closing text"
                } else {
                    ""
                }
            ),
        ),
        Some((_, Some(e))) => {
            let e = format!("turn ended with an error: {e}");
            report(agent, "complete", "fail", turn_time, &e);
            return Err(e);
        }
        None => {
            let e = format!(
                "no task_complete within {TURN_TIMEOUT:?} (statuses: {seen:?}); screen:\n{}",
                plugin.screen(id)
            );
            report(agent, "complete", "fail", turn_time, &e);
            return Err(e);
        }
    }
    step(agent, "file", || {
        let got = std::fs::read_to_string(workdir.join(FILE)).map_err(|e| {
            format!(
                "{FILE} not created ({e}); the turn output was:\n{out}\nscreen now:\n{}",
                plugin.screen(id)
            )
        })?;
        if got.trim_end() == FILE_CONTENT.trim_end() {
            Ok(((), String::new()))
        } else {
            Err(format!("{FILE} holds {got:?}; the turn output was:\n{out}"))
        }
    })?;
    Ok(())
}

/// Login or trust on a fresh HOME, through the plugin: the session's status and prompt as the
/// plugin reports them, and what the preset answered (from the session's audit).
fn state(agent: &str, version: &str, world: &World, phase: Phase) -> Result<(), String> {
    let t = Instant::now();
    let step_name = phase.as_str();
    let r = state_inner(agent, version, world, phase);
    match r {
        Ok((status, note)) => report(agent, step_name, status, t.elapsed(), &note),
        Err(e) => report(agent, step_name, "fail", t.elapsed(), &e),
    }
    Ok(())
}

fn state_inner(
    agent: &str,
    version: &str,
    world: &World,
    phase: Phase,
) -> Result<(&'static str, String), String> {
    let model = FakeModel::start().map_err(|e| e.to_string())?;
    let base_dir = world.root.join("workspaces");
    let repo = base_dir.join("repo");
    std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
    let repo = repo.canonicalize().map_err(|e| e.to_string())?;
    let seed = if phase == Phase::Login {
        Seed::Nothing
    } else {
        Seed::NoTrust
    };
    // What the user's machine holds before the orchestrator starts: for the login check, at
    // most onboarding done (a Claude HOME with no file at all calls the vendor and exits); for
    // the trust check, the CLI configured for the fake model but the workdir never trusted.
    agents::offline_launch(
        agent,
        version,
        &model,
        &world.home(),
        &world.tmp(),
        &repo,
        seed,
    )?;
    e2e::git(world, &repo, &["init", "-q", "-b", "main"])?;
    let settings = offline_settings(
        agent,
        &model,
        &world.home(),
        &base_dir,
        phase == Phase::Trust,
        false,
    );
    let plugin = Plugin::start(settings, None)?;
    let events = plugin.events();
    let d = plugin.action(
        "SPAWN_CODING_AGENT",
        json!({"agentType": agent, "workdir": repo.display().to_string(),
               "approvalPreset": "standard"}),
    )?;
    let id = str_field(&d, "sessionId")?;
    let mut seen = Vec::new();
    let found = wait(&events, &id, READY_TIMEOUT, &mut seen, |ev| {
        match (phase, ev) {
            (
                Phase::Login,
                SessionEvent::LoginRequired { .. } | SessionEvent::AuthRequired { .. },
            ) => Some("login"),
            (Phase::Trust, SessionEvent::BlockingPrompt { info, .. })
                if info.prompt.to_lowercase().contains("trust") =>
            {
                Some("trust")
            }
            (_, SessionEvent::Ready { .. }) => Some("ready"),
            _ => None,
        }
    });
    // What the plugin reports about the session now.
    std::thread::sleep(Duration::from_millis(300));
    let info = plugin.pty.get_session(&id);
    let status = info.as_ref().map(|s| s.status);
    let status_word = status.map_or("unknown", |s| s.as_str());
    let prompt = info
        .as_ref()
        .and_then(|s| s.prompt.clone())
        .map(|p| p.lines().next().unwrap_or("").trim().to_owned());
    let screen = plugin.screen(&id);
    let audit = plugin.audit(&id);
    let _ = plugin.action("STOP_CODING_AGENT", json!({"sessionId": id}));
    let _ = wait(&events, &id, STOP_WAIT, &mut seen, |ev| {
        matches!(ev, SessionEvent::Stopped { .. }).then_some(())
    });
    let left = e2e::wait_no_processes(&world.home(), LEFTOVER_WAIT);
    let tail = if left.is_empty() {
        String::new()
    } else {
        format!("; pids {left:?} survive the stop")
    };
    let fail = |m: String| -> Result<(&'static str, String), String> { Err(format!("{m}{tail}")) };
    match (phase, found) {
        (Phase::Login, Some("login")) => {
            if status != Some(SessionStatus::Authenticating) || prompt.is_none() {
                return fail(format!(
                    "login detected, but the plugin reports status {status_word} with prompt {prompt:?}"
                ));
            }
            if !tail.is_empty() {
                return fail(String::new());
            }
            Ok((
                "ok",
                format!(
                    "status authenticating, prompt `{}`",
                    prompt.unwrap_or_default()
                ),
            ))
        }
        (Phase::Trust, Some(f)) => {
            let trust_answers: Vec<&String> = audit
                .iter()
                .filter(|a| a.to_lowercase().contains("trust"))
                .collect();
            if !tail.is_empty() {
                return fail(String::new());
            }
            if !trust_answers.is_empty() {
                return Ok((
                    "ok",
                    format!(
                        "trust dialog answered by the preset (trustWorkdir): {}; status now {status_word}",
                        trust_answers
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                ));
            }
            if f == "ready" && matches!(agent, "pi" | "aider") {
                return Ok(("na", format!("{agent} has no trust dialog")));
            }
            if f == "ready" && agent == "gemini" {
                return Ok((
                    "na",
                    "no dialog: the plugin launches Gemini with --skip-trust and \
                     GEMINI_CLI_TRUST_WORKSPACE=true, so the folder is trusted before it asks"
                        .into(),
                ));
            }
            fail(format!(
                "{f}, but no trust answer in the audit ({audit:?}); status {status_word}, prompt {prompt:?}; screen:\n{screen}"
            ))
        }
        (_, found) => fail(format!(
            "{} within {READY_TIMEOUT:?} (statuses {seen:?}, status {status_word}, prompt {prompt:?}); screen:\n{screen}",
            found.map_or("nothing detected".to_owned(), |f| format!("{f} instead")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_answer_becomes_send_parameters() {
        let table = [
            ("keys:enter", json!({"sessionId": "s", "keys": ["enter"]})),
            (
                "keys:down, enter",
                json!({"sessionId": "s", "keys": ["down", "enter"]}),
            ),
            ("text:y", json!({"sessionId": "s", "input": "y"})),
            ("y", json!({"sessionId": "s", "input": "y"})),
            ("text:", json!({"sessionId": "s", "keys": ["enter"]})),
        ];
        for (answer, want) in table {
            assert_eq!(answer_params("s", answer), want, "{answer}");
        }
    }

    #[test]
    fn offline_settings_name_credentials_only_with_a_key() {
        let model = FakeModel::start().unwrap();
        let home = Path::new("/h");
        for agent in ["claude", "codex", "gemini", "pi", "aider"] {
            let with = offline_settings(agent, &model, home, Path::new("/w"), true, true);
            let without = offline_settings(agent, &model, home, Path::new("/w"), false, false);
            let has_key = |s: &[(String, String)]| s.iter().any(|(_, v)| v == model.api_key());
            assert!(has_key(&with), "{agent}: no key");
            assert!(!has_key(&without), "{agent}: key without with_key");
            assert!(
                with.iter()
                    .any(|(k, v)| k == "ORCHESTRATOR_WRITE_AGENT_CONFIG" && v == "1")
            );
            assert!(
                !without
                    .iter()
                    .any(|(k, _)| k == "ORCHESTRATOR_WRITE_AGENT_CONFIG")
            );
            // Every name in CUSTOM_CREDENTIAL_KEYS has its value in the settings.
            if let Some((_, names)) = with.iter().find(|(k, _)| k == "CUSTOM_CREDENTIAL_KEYS") {
                for n in names.split(',') {
                    assert!(with.iter().any(|(k, _)| k == n), "{agent}: {n} unset");
                }
            }
            let preset = with
                .iter()
                .find(|(k, _)| k == "PTY_SERVICE_CONFIG")
                .unwrap();
            assert!(preset.1.contains("\"standard\""), "{agent}");
        }
    }
}
