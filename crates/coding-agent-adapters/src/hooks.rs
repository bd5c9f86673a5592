//! Hook telemetry (BEHAVIOR.md §7.9, §10.5): settings that make Claude Code and Gemini CLI report
//! their lifecycle events to the orchestrator, authenticated by a per-session secret, and the
//! parser and reply for what they report.
//!
//! - Claude: HTTP hooks in the `--settings` file (in the session's private directory, mode 0600).
//! - Gemini: command hooks in `.gemini/settings.json` that run a generated script; the script
//!   POSTs its stdin with both headers, which it reads from a 0600 file in the private directory
//!   (`curl --header @file`), so the token is in no argv, URL or workspace file.
//!
//! Gemini runs project hooks only in a trusted folder, and `--skip-trust` alone trusts it too late
//! for project settings to load: a launch with hooks sets `GEMINI_CLI_TRUST_WORKSPACE=true`
//! (only when the caller trusts the workdir; otherwise no hooks are written and the screen alone
//! is read). Both set-ups were checked against the installed CLIs (Claude Code 2.1.197 posts
//! `SessionEnd` with both headers; Gemini CLI 0.61.0 runs the script for `AfterAgent` and
//! `SessionEnd` and the script's POST carries both headers).
//!
//! Replies follow the session's approval preset: a tool the preset auto-approves is allowed, a
//! blocked one denied, anything else left to the CLI's own dialog (**Fix:** upstream allowed
//! everything).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::files::{ConfigFile, FileFormat, FileLocation};
use crate::{AgentType, ApprovalPreset, Decision, Error, Result, ToolCategory};

/// Header naming the orchestrator session.
pub const SESSION_HEADER: &str = "X-Parallax-Session-Id";
/// Header carrying the session's hook secret.
pub const TOKEN_HEADER: &str = "X-Parallax-Hook-Token";
/// Claude Code events the settings subscribe to (all exist in 2.1.197).
pub const CLAUDE_EVENTS: [&str; 8] = [
    "PreToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "StopFailure",
    "TaskCompleted",
    "SessionStart",
    "SessionEnd",
];
/// Gemini CLI events the settings subscribe to.
pub const GEMINI_EVENTS: [&str; 5] = [
    "BeforeTool",
    "AfterTool",
    "AfterAgent",
    "SessionEnd",
    "Notification",
];
/// Where the Gemini hook script is written, relative to the workdir.
pub const GEMINI_SCRIPT: &str = ".gemini/hooks/parallax-hook.sh";
/// The private file holding the Gemini hook's headers.
pub const GEMINI_HEADERS_FILE: &str = "gemini-hook-headers";

/// Where and how an agent reports to the orchestrator.
#[derive(Clone, PartialEq, Eq)]
pub struct HookEndpoint {
    url: String,
    session_id: String,
    token: String,
}

impl std::fmt::Debug for HookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookEndpoint")
            .field("url", &self.url)
            .field("session_id", &self.session_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => host,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl HookEndpoint {
    /// An endpoint. The URL must be plain `http://` on loopback with no query (secrets never go
    /// in a URL); the session id `[A-Za-z0-9._-]{1,64}`; the token at least 16 URL-safe chars.
    pub fn new(
        url: impl Into<String>,
        session_id: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<Self> {
        let (url, session_id, token) = (url.into(), session_id.into(), token.into());
        let bad = |name, reason: &str| Error::InvalidOption {
            name,
            reason: reason.to_owned(),
        };
        if !is_loopback_url(&url)
            || url.contains(['?', '#', '\'', '"', '\\', ' '])
            || url.chars().any(char::is_control)
        {
            return Err(bad(
                "hook url",
                "must be http:// on 127.0.0.1, localhost or [::1], without query or quotes",
            ));
        }
        let id_ok = |s: &str, min: usize, max: usize| {
            (min..=max).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !id_ok(&session_id, 1, 64) {
            return Err(bad("hook session id", "must be 1-64 of A-Z a-z 0-9 . _ -"));
        }
        if !id_ok(&token, 16, 256) {
            return Err(bad("hook token", "must be 16-256 of A-Z a-z 0-9 . _ -"));
        }
        Ok(HookEndpoint {
            url,
            session_id,
            token,
        })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The orchestrator session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether `given` is this session's token (compared in constant time).
    pub fn token_matches(&self, given: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn headers(&self) -> Value {
        json!({ SESSION_HEADER: self.session_id, TOKEN_HEADER: self.token })
    }
}

/// A fresh random hook token (64 hex chars from the OS random source).
pub fn generate_token() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("cannot read", "/dev/urandom", e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `hooks` part of Claude's `--settings` file: one HTTP hook per event of [`CLAUDE_EVENTS`].
pub fn claude_hook_settings(ep: &HookEndpoint) -> Value {
    let hook = json!({ "type": "http", "url": ep.url, "timeout": 5, "headers": ep.headers() });
    let mut hooks = serde_json::Map::new();
    for event in CLAUDE_EVENTS {
        let mut group = json!({ "hooks": [hook.clone()] });
        if matches!(event, "PreToolUse" | "PermissionRequest") {
            group["matcher"] = json!("*");
        }
        hooks.insert(event.to_owned(), json!([group]));
    }
    json!({ "hooks": hooks })
}

fn sh_single_quote(s: &str, what: &'static str) -> Result<String> {
    if s.contains('\'') || s.chars().any(char::is_control) {
        return Err(Error::InvalidOption {
            name: what,
            reason: "contains a quote or a control character".to_owned(),
        });
    }
    Ok(format!("'{s}'"))
}

/// The Gemini hook script: POST stdin to the endpoint with the headers from `headers_file`, print
/// the reply (the JSON Gemini reads). No nested quoting: every value appears once, single-quoted.
pub fn gemini_hook_script(ep: &HookEndpoint, headers_file: &Path) -> Result<String> {
    let headers = sh_single_quote(&format!("@{}", headers_file.display()), "hook headers path")?;
    let url = sh_single_quote(&ep.url, "hook url")?;
    Ok(format!(
        "#!/bin/sh\n\
         # Written by agent-orchestrator for one session; removed when the session ends.\n\
         # Forwards the Gemini CLI hook event on stdin to the orchestrator and prints its reply.\n\
         exec curl --silent --show-error --fail --max-time 5 --header {headers} \
         --data-binary @- {url}\n"
    ))
}

/// The files that install Gemini hook telemetry: the headers file (private, 0600), the script
/// (workspace, 0700) and the `hooks` entries merged into the workspace's `.gemini/settings.json`.
/// `workdir` and `private_dir` are needed because Gemini runs the script by absolute path.
pub fn gemini_hook_files(
    ep: &HookEndpoint,
    workdir: &Path,
    private_dir: &Path,
) -> Result<Vec<ConfigFile>> {
    let headers_path = private_dir.join(GEMINI_HEADERS_FILE);
    let script_path: PathBuf = workdir.join(GEMINI_SCRIPT);
    let command = sh_single_quote(&script_path.display().to_string(), "hook script path")?;
    let mut hooks = serde_json::Map::new();
    for event in GEMINI_EVENTS {
        let mut group = json!({
            "hooks": [{ "type": "command", "name": "parallax", "command": command, "timeout": 5000 }]
        });
        if matches!(event, "BeforeTool" | "AfterTool") {
            group["matcher"] = json!(".*");
        }
        hooks.insert(event.to_owned(), json!([group]));
    }
    Ok(vec![
        ConfigFile {
            location: FileLocation::Private(GEMINI_HEADERS_FILE.into()),
            format: FileFormat::Text,
            content: json!(format!(
                "{SESSION_HEADER}: {}\n{TOKEN_HEADER}: {}\nContent-Type: application/json\n",
                ep.session_id, ep.token
            )),
            mode: Some(0o600),
        },
        ConfigFile {
            location: FileLocation::Workspace(GEMINI_SCRIPT.into()),
            format: FileFormat::Text,
            content: json!(gemini_hook_script(ep, &headers_path)?),
            mode: Some(0o700),
        },
        ConfigFile {
            location: FileLocation::Workspace(".gemini/settings.json".into()),
            format: FileFormat::Json,
            content: json!({ "hooks": hooks }),
            mode: None,
        },
    ])
}

/// A lifecycle event an agent reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum HookEventKind {
    /// Claude: a tool is about to run.
    PreToolUse,
    /// Claude: a permission dialog is about to show.
    PermissionRequest,
    /// Claude or Gemini: a notification (`idle_prompt`, permission kinds, …).
    Notification,
    /// Claude: the turn ended.
    Stop,
    /// Claude: the turn ended with an error.
    StopFailure,
    /// Claude: a task completed.
    TaskCompleted,
    /// Claude: a session (re)started; carries the agent's session id.
    SessionStart,
    /// Claude or Gemini: the session ends.
    SessionEnd,
    /// Gemini: a tool is about to run.
    BeforeTool,
    /// Gemini: a tool finished.
    AfterTool,
    /// Gemini: the turn ended.
    AfterAgent,
}

impl HookEventKind {
    fn parse(s: &str) -> Option<Self> {
        use HookEventKind::*;
        Some(match s {
            "PreToolUse" => PreToolUse,
            "PermissionRequest" => PermissionRequest,
            "Notification" => Notification,
            "Stop" => Stop,
            "StopFailure" => StopFailure,
            "TaskCompleted" => TaskCompleted,
            "SessionStart" => SessionStart,
            "SessionEnd" => SessionEnd,
            "BeforeTool" => BeforeTool,
            "AfterTool" => AfterTool,
            "AfterAgent" => AfterAgent,
            _ => return None,
        })
    }
}

/// One parsed hook report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookReport {
    /// The event.
    pub event: HookEventKind,
    /// The tool, for tool events.
    pub tool_name: Option<String>,
    /// The tool's input, for tool events.
    pub tool_input: Option<Value>,
    /// Notification kind (`idle_prompt`, `permission_prompt`, …).
    pub notification_type: Option<String>,
    /// Message text (notifications; the failure text of `StopFailure`).
    pub message: Option<String>,
    /// The agent's working directory (informational only: never used to find a session).
    pub cwd: Option<String>,
    /// The agent's own session id (for resume).
    pub agent_session_id: Option<String>,
}

/// What a hook body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedHook {
    /// A known event.
    Event(HookReport),
    /// An event name this crate does not handle (reply `{status: "ignored", reason:
    /// "unknown_event"}`).
    UnknownEvent(String),
}

fn str_field(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
        .map(str::to_owned)
}

/// Parse a hook request body. A body that is not a JSON object is
/// `invalid hook payload: Invalid JSON body`; one without `hook_event_name` is
/// `invalid hook payload: Missing hook_event_name` (both 400 in §10.5).
pub fn parse_hook(body: &[u8]) -> Result<ParsedHook> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| Error::InvalidHook("Invalid JSON body".into()))?;
    if !v.is_object() {
        return Err(Error::InvalidHook("Invalid JSON body".into()));
    }
    let name = str_field(&v, &["hook_event_name"])
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidHook("Missing hook_event_name".into()))?;
    Ok(report_from(&v, &name))
}

fn report_from(v: &Value, name: &str) -> ParsedHook {
    let Some(event) = HookEventKind::parse(name) else {
        return ParsedHook::UnknownEvent(name.to_owned());
    };
    ParsedHook::Event(HookReport {
        event,
        tool_name: str_field(v, &["tool_name"]),
        tool_input: v.get("tool_input").cloned(),
        notification_type: str_field(v, &["notification_type"]),
        message: str_field(v, &["message", "error", "reason"]),
        cwd: str_field(v, &["cwd"]),
        agent_session_id: str_field(v, &["session_id"]),
    })
}

/// Parse the JSON of an upstream marker row (`<PREFIX> {"event": …}`, region `markers`).
pub fn parse_marker(json_text: &str) -> Option<ParsedHook> {
    let v: Value = serde_json::from_str(json_text).ok()?;
    let name = str_field(&v, &["event", "hook_event_name"])?;
    Some(report_from(&v, &name))
}

/// What a report means for the session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HookEffect {
    /// A tool runs: set `tool_running`, reset the stall timer.
    ToolRunning {
        /// The tool.
        tool: String,
        /// Its approval category, when known.
        category: Option<ToolCategory>,
        /// What the preset decided.
        decision: Decision,
    },
    /// A permission dialog may be showing: check the screen (the screen decides prompts).
    CheckPrompt,
    /// The turn ended (`error` for `StopFailure`).
    TurnEnd {
        /// The failure text, if the turn failed.
        error: Option<String>,
    },
    /// Activity without a state change: reset the stall timer.
    Activity,
    /// The agent's own session id, for resume.
    AgentSession {
        /// The id.
        id: String,
    },
    /// Nothing to do (the process exit decides `stopped`).
    Note,
}

/// The reply to send and what the report means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookOutcome {
    /// What to do with the session.
    pub effect: HookEffect,
    /// The HTTP response body (JSON).
    pub reply: Value,
}

fn decide(
    agent: AgentType,
    tool: &str,
    preset: Option<ApprovalPreset>,
) -> (Option<ToolCategory>, Decision) {
    let category = match agent {
        AgentType::Gemini => ToolCategory::of_gemini_tool(tool),
        _ => ToolCategory::of_claude_tool(tool),
    };
    let decision = match (preset, category) {
        (Some(ApprovalPreset::Autonomous), _) => Decision::Allow,
        (Some(p), Some(c)) => p.decision(c),
        // A tool we cannot place, or no preset: the CLI asks; a person or a rule answers.
        _ => Decision::Ask,
    };
    (category, decision)
}

/// The session effect and the reply for a report, by the session's preset (§10.5 table).
pub fn respond(
    agent: AgentType,
    report: &HookReport,
    preset: Option<ApprovalPreset>,
) -> HookOutcome {
    use HookEventKind::*;
    let gemini = agent == AgentType::Gemini;
    let ack = if gemini {
        json!({ "continue": true })
    } else {
        json!({})
    };
    let tool = report.tool_name.clone().unwrap_or_default();
    match report.event {
        PreToolUse | BeforeTool => {
            let (category, decision) = decide(agent, &tool, preset);
            let reply = match (gemini, decision) {
                (false, d) => {
                    let word = match d {
                        Decision::Allow => "allow",
                        Decision::Deny => "deny",
                        Decision::Ask => "ask",
                    };
                    let mut out =
                        json!({ "hookEventName": "PreToolUse", "permissionDecision": word });
                    if d == Decision::Deny {
                        out["permissionDecisionReason"] = json!(deny_reason(&tool, preset));
                    }
                    json!({ "hookSpecificOutput": out })
                }
                (true, Decision::Allow) => json!({ "decision": "allow", "continue": true }),
                (true, Decision::Deny) => {
                    json!({ "decision": "deny", "reason": deny_reason(&tool, preset) })
                }
                (true, Decision::Ask) => json!({ "continue": true }),
            };
            HookOutcome {
                effect: HookEffect::ToolRunning {
                    tool,
                    category,
                    decision,
                },
                reply,
            }
        }
        PermissionRequest => {
            let (_, decision) = decide(agent, &tool, preset);
            let reply = match decision {
                Decision::Allow => json!({ "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest", "decision": { "behavior": "allow" } } }),
                Decision::Deny => json!({ "hookSpecificOutput": {
                    "hookEventName": "PermissionRequest", "decision": { "behavior": "deny" } } }),
                Decision::Ask => json!({}),
            };
            let effect = if decision == Decision::Ask {
                HookEffect::CheckPrompt
            } else {
                HookEffect::Activity
            };
            HookOutcome { effect, reply }
        }
        Notification => {
            let kind = report.notification_type.as_deref().unwrap_or("");
            let effect = if kind == "idle_prompt" {
                HookEffect::TurnEnd { error: None }
            } else if kind.contains("permission") || kind.contains("tool") {
                HookEffect::CheckPrompt
            } else {
                HookEffect::Activity
            };
            HookOutcome { effect, reply: ack }
        }
        Stop | TaskCompleted | AfterAgent => HookOutcome {
            effect: HookEffect::TurnEnd { error: None },
            reply: ack,
        },
        StopFailure => HookOutcome {
            effect: HookEffect::TurnEnd {
                error: Some(
                    report
                        .message
                        .clone()
                        .unwrap_or_else(|| "the turn failed".to_owned()),
                ),
            },
            reply: ack,
        },
        AfterTool => HookOutcome {
            effect: HookEffect::Activity,
            reply: json!({ "continue": true }),
        },
        SessionStart => HookOutcome {
            effect: match &report.agent_session_id {
                Some(id) => HookEffect::AgentSession { id: id.clone() },
                None => HookEffect::Note,
            },
            reply: ack,
        },
        SessionEnd => HookOutcome {
            effect: HookEffect::Note,
            reply: ack,
        },
    }
}

fn deny_reason(tool: &str, preset: Option<ApprovalPreset>) -> String {
    match preset {
        Some(p) => format!("{tool} is not allowed by the {p} approval preset"),
        None => format!("{tool} is not allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> HookEndpoint {
        HookEndpoint::new(
            "http://127.0.0.1:4567/api/coding-agents/hooks",
            "sess-1",
            "0123456789abcdef0123",
        )
        .unwrap()
    }

    #[test]
    fn endpoint_validation() {
        assert!(HookEndpoint::new("https://example.com/hooks", "s", "0123456789abcdef").is_err());
        assert!(HookEndpoint::new("http://10.0.0.1/hooks", "s", "0123456789abcdef").is_err());
        assert!(
            HookEndpoint::new("http://127.0.0.1:1/h?token=x", "s", "0123456789abcdef").is_err()
        );
        assert!(HookEndpoint::new("http://127.0.0.1:1/h", "s;rm", "0123456789abcdef").is_err());
        assert!(HookEndpoint::new("http://127.0.0.1:1/h", "s", "short").is_err());
        assert!(HookEndpoint::new("http://localhost:80/h", "s", "0123456789abcdef").is_ok());
        let e = ep();
        assert!(e.token_matches("0123456789abcdef0123"));
        assert!(!e.token_matches("0123456789abcdef0124"));
        assert!(!e.token_matches(""));
        assert!(!format!("{e:?}").contains("0123456789abcdef"));
        let t = generate_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, generate_token().unwrap());
    }

    #[test]
    fn claude_settings_have_http_hooks_with_both_headers() {
        let s = claude_hook_settings(&ep());
        for event in CLAUDE_EVENTS {
            let h = &s["hooks"][event][0]["hooks"][0];
            assert_eq!(h["type"], "http", "{event}");
            assert_eq!(h["url"], "http://127.0.0.1:4567/api/coding-agents/hooks");
            assert_eq!(h["timeout"], 5);
            assert_eq!(h["headers"][SESSION_HEADER], "sess-1");
            assert_eq!(h["headers"][TOKEN_HEADER], "0123456789abcdef0123");
        }
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
        assert!(s["hooks"]["Stop"][0].get("matcher").is_none());
    }

    #[test]
    fn gemini_script_posts_stdin_without_the_token_in_argv() {
        let files = gemini_hook_files(&ep(), Path::new("/w"), Path::new("/run/s1")).unwrap();
        let headers = files[0].content.as_str().unwrap();
        assert!(headers.contains("X-Parallax-Session-Id: sess-1\n"));
        assert!(headers.contains("X-Parallax-Hook-Token: 0123456789abcdef0123\n"));
        assert_eq!(files[0].mode, Some(0o600));
        assert_eq!(
            files[0].location,
            FileLocation::Private(GEMINI_HEADERS_FILE.into())
        );
        let script = files[1].content.as_str().unwrap();
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("--data-binary @-"));
        assert!(script.contains("--header '@/run/s1/gemini-hook-headers'"));
        assert!(
            !script.contains("0123456789abcdef0123"),
            "token in the script"
        );
        assert!(!script.contains("bash -c"));
        let settings = &files[2].content;
        for event in GEMINI_EVENTS {
            let h = &settings["hooks"][event][0]["hooks"][0];
            assert_eq!(h["type"], "command");
            assert_eq!(h["command"], "'/w/.gemini/hooks/parallax-hook.sh'");
        }
        assert!(gemini_hook_files(&ep(), Path::new("/it's"), Path::new("/p")).is_err());
    }

    #[test]
    fn gemini_script_really_posts_stdin_with_both_headers() {
        // Run the generated script against a one-shot loopback server (skipped without curl).
        if !Path::new("/usr/bin/curl").exists() && !Path::new("/bin/curl").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs curl for this test"
            );
            eprintln!("curl not installed; script execution not exercised");
            return;
        }
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = HookEndpoint::new(
            format!("http://127.0.0.1:{port}/hooks"),
            "sess-1",
            "0123456789abcdef0123",
        )
        .unwrap();
        let dir = crate::testutil::TempDir::new("gemini-hook");
        let files = gemini_hook_files(&e, &dir.path().join("w"), &dir.path().join("p")).unwrap();
        std::fs::create_dir_all(dir.path().join("w")).unwrap();
        std::fs::create_dir_all(dir.path().join("p")).unwrap();
        let roots = crate::FileRoots {
            workspace: dir.path().join("w"),
            private_dir: Some(dir.path().join("p")),
            home: None,
        };
        crate::write_files(&files, &roots).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&req).contains("\"AfterAgent\"}") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let body = "{\"continue\":true}";
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            String::from_utf8_lossy(&req).into_owned()
        });
        let mut child = std::process::Command::new(dir.path().join("w").join(GEMINI_SCRIPT))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"hook_event_name\":\"AfterAgent\"}")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let req = server.join().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"continue\":true}");
        assert!(req.starts_with("POST /hooks HTTP/1.1"), "{req}");
        assert!(req.contains("X-Parallax-Session-Id: sess-1"));
        assert!(req.contains("X-Parallax-Hook-Token: 0123456789abcdef0123"));
        assert!(req.ends_with("{\"hook_event_name\":\"AfterAgent\"}"));
    }

    #[test]
    fn parse_errors_and_unknown_events() {
        assert_eq!(
            parse_hook(b"nope").unwrap_err().to_string(),
            "invalid hook payload: Invalid JSON body"
        );
        assert_eq!(
            parse_hook(b"{\"tool_name\":\"Bash\"}")
                .unwrap_err()
                .to_string(),
            "invalid hook payload: Missing hook_event_name"
        );
        assert_eq!(
            parse_hook(b"{\"hook_event_name\":\"Frob\"}").unwrap(),
            ParsedHook::UnknownEvent("Frob".into())
        );
        let ParsedHook::Event(r) = parse_hook(
            br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"cwd":"/w","session_id":"abc"}"#,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.event, HookEventKind::PreToolUse);
        assert_eq!(r.tool_input, Some(json!({"command": "ls"})));
        assert_eq!(r.agent_session_id.as_deref(), Some("abc"));
        let ParsedHook::Event(m) =
            parse_marker(r#"{"event":"Notification","notification_type":"idle_prompt"}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(m.notification_type.as_deref(), Some("idle_prompt"));
        assert!(parse_marker("{broken").is_none());
    }

    fn report(event: &str, extra: Value) -> HookReport {
        let mut v = json!({ "hook_event_name": event });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        match parse_hook(v.to_string().as_bytes()).unwrap() {
            ParsedHook::Event(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_follow_the_preset() {
        use ApprovalPreset::*;
        let claude = |tool: &str, p| {
            respond(
                AgentType::Claude,
                &report("PreToolUse", json!({"tool_name": tool})),
                p,
            )
            .reply["hookSpecificOutput"]["permissionDecision"]
                .clone()
        };
        assert_eq!(claude("Read", Some(Readonly)), "allow");
        assert_eq!(claude("Bash", Some(Readonly)), "deny");
        assert_eq!(claude("Write", Some(Standard)), "ask");
        assert_eq!(claude("Write", Some(Permissive)), "allow");
        assert_eq!(claude("Bash", Some(Permissive)), "ask");
        assert_eq!(claude("Bash", Some(Autonomous)), "allow");
        assert_eq!(claude("Frobnicate", Some(Permissive)), "ask");
        assert_eq!(claude("Write", None), "ask");

        let gem = |tool: &str, p| {
            respond(
                AgentType::Gemini,
                &report("BeforeTool", json!({"tool_name": tool})),
                p,
            )
            .reply
        };
        assert_eq!(
            gem("write_file", Some(Permissive)),
            json!({"decision": "allow", "continue": true})
        );
        assert_eq!(
            gem("run_shell_command", Some(Permissive)),
            json!({"continue": true})
        );
        let deny = gem("run_shell_command", Some(Readonly));
        assert_eq!(deny["decision"], "deny");
        assert!(deny["reason"].as_str().unwrap().contains("readonly"));

        let pr = |tool: &str, p| {
            respond(
                AgentType::Claude,
                &report("PermissionRequest", json!({"tool_name": tool})),
                p,
            )
        };
        assert_eq!(
            pr("Edit", Some(Permissive)).reply["hookSpecificOutput"]["decision"]["behavior"],
            "allow"
        );
        assert_eq!(
            pr("Bash", Some(Readonly)).reply["hookSpecificOutput"]["decision"]["behavior"],
            "deny"
        );
        let ask = pr("Bash", Some(Standard));
        assert_eq!(ask.reply, json!({}));
        assert_eq!(ask.effect, HookEffect::CheckPrompt);
    }

    #[test]
    fn lifecycle_effects() {
        let c = |e: &str, extra| respond(AgentType::Claude, &report(e, extra), None);
        assert_eq!(
            c("Stop", json!({})).effect,
            HookEffect::TurnEnd { error: None }
        );
        assert_eq!(c("Stop", json!({})).reply, json!({}));
        assert_eq!(
            c("StopFailure", json!({"error": "rate limited"})).effect,
            HookEffect::TurnEnd {
                error: Some("rate limited".into())
            }
        );
        assert_eq!(
            c("Notification", json!({"notification_type": "idle_prompt"})).effect,
            HookEffect::TurnEnd { error: None }
        );
        assert_eq!(
            c(
                "Notification",
                json!({"notification_type": "permission_prompt"})
            )
            .effect,
            HookEffect::CheckPrompt
        );
        assert_eq!(
            c("SessionStart", json!({"session_id": "u-1"})).effect,
            HookEffect::AgentSession { id: "u-1".into() }
        );
        let g = |e: &str| respond(AgentType::Gemini, &report(e, json!({})), None);
        assert_eq!(g("AfterAgent").effect, HookEffect::TurnEnd { error: None });
        assert_eq!(g("AfterAgent").reply, json!({"continue": true}));
        assert_eq!(g("AfterTool").effect, HookEffect::Activity);
        assert_eq!(g("SessionEnd").reply, json!({"continue": true}));
    }
}
