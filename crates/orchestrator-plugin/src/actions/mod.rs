//! The chat actions of BEHAVIOR.md §10.2, in the ElizaOS shape: name, similes, description,
//! examples, a JSON Schema of parameters, `validate` and a handler returning text plus data.
//!
//! Parameters come from the model's structured parameters first, then from the message content
//! (its fields, then what its text says where BEHAVIOR.md names a fallback).

mod finalize;
mod issues;
mod list;
pub(crate) mod provision;
mod send;
mod spawn;
mod start_task;
mod stop;
mod util;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::runtime::{Runtime, RuntimeExt};

pub use util::{first_forge_url, make_label};

/// A random UUID v4 (workspace and private directory names).
pub fn new_id() -> String {
    util::uuid_v4()
}

/// Whether a session may be started in `workdir`: its real path (symlinks resolved, so `..` and
/// links cannot step out) lies inside the workspace base directory or the process's working
/// directory. SPAWN_CODING_AGENT, the HTTP API and the dashboard's spawn form all ask this.
pub fn workdir_allowed(rt: &dyn Runtime, workdir: &std::path::Path) -> bool {
    util::inside_roots(workdir, &util::allowed_roots(rt))
}

/// Helpers the HTTP API shares with the actions.
pub(crate) mod util_public {
    pub(crate) use super::util::workspace_config;
}

/// Parameters of one call, as JSON.
pub type Params = Map<String, Value>;

/// The chat message an action answers.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Conversation (room) id; remembers the current session, workspace and repo.
    pub room_id: String,
    /// What the person wrote.
    pub text: String,
    /// Structured content fields of the message (ElizaOS `content`), read after the parameters.
    pub content: Params,
}

impl Message {
    /// A message with text only.
    pub fn text(room: &str, text: &str) -> Self {
        Message {
            room_id: room.into(),
            text: text.into(),
            content: Params::new(),
        }
    }
}

/// What a handler returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionResult {
    /// Whether the action did what was asked.
    pub success: bool,
    /// The chat reply, verbatim from BEHAVIOR.md.
    pub text: String,
    /// Structured data (ids, sessions, URLs).
    pub data: Value,
}

impl ActionResult {
    pub(crate) fn ok(text: impl Into<String>, data: Value) -> Self {
        ActionResult {
            success: true,
            text: text.into(),
            data,
        }
    }
    pub(crate) fn fail(text: impl Into<String>) -> Self {
        ActionResult {
            success: false,
            text: text.into(),
            data: Value::Null,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Room {
    session: Option<String>,
    workspace: Option<String>,
    repo: Option<String>,
}

/// What the plugin remembers between calls: per conversation the current session, workspace and
/// repository, plus the most recent of each overall.
#[derive(Debug, Default)]
pub struct ChatMemory {
    inner: Mutex<(HashMap<String, Room>, Room)>,
}

impl ChatMemory {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Room>, &mut Room) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (rooms, last) = &mut *g;
        f(rooms, last)
    }
    /// Remembers the current session of a room.
    pub fn set_session(&self, room: &str, id: &str) {
        self.with(|rooms, last| {
            rooms.entry(room.into()).or_default().session = Some(id.into());
            last.session = Some(id.into());
        })
    }
    /// Remembers the current workspace of a room.
    pub fn set_workspace(&self, room: &str, id: &str) {
        self.with(|rooms, last| {
            rooms.entry(room.into()).or_default().workspace = Some(id.into());
            last.workspace = Some(id.into());
        })
    }
    /// Remembers the repository last used in a room.
    pub fn set_repo(&self, room: &str, repo: &str) {
        self.with(|rooms, last| {
            rooms.entry(room.into()).or_default().repo = Some(repo.into());
            last.repo = Some(repo.into());
        })
    }
    /// The room's session.
    pub fn session(&self, room: &str) -> Option<String> {
        self.with(|rooms, _| rooms.get(room).and_then(|r| r.session.clone()))
    }
    /// The room's workspace.
    pub fn workspace(&self, room: &str) -> Option<String> {
        self.with(|rooms, _| rooms.get(room).and_then(|r| r.workspace.clone()))
    }
    /// The room's repository, else the last one used anywhere.
    pub fn repo(&self, room: &str) -> Option<String> {
        self.with(|rooms, last| {
            rooms
                .get(room)
                .and_then(|r| r.repo.clone())
                .or_else(|| last.repo.clone())
        })
    }
}

/// Everything a handler gets.
pub struct ActionContext<'a> {
    /// The host.
    pub runtime: &'a dyn Runtime,
    /// The message being answered.
    pub message: &'a Message,
    /// Structured parameters chosen by the model (or sent by an MCP/HTTP client).
    pub params: &'a Params,
    /// Conversation memory.
    pub memory: &'a ChatMemory,
    /// Progress replies before the final one ("Cloning …").
    pub callback: &'a mut dyn FnMut(&str),
    /// How progress replies reach the person: an action that would wait for the person after
    /// telling them something returns instead when they arrive only with the result.
    pub progress: Progress,
}

impl ActionContext<'_> {
    /// A parameter: structured first, then the message content.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params
            .get(name)
            .filter(|v| !v.is_null())
            .or_else(|| self.message.content.get(name).filter(|v| !v.is_null()))
    }
    /// A non-empty string parameter (numbers are accepted as their text).
    pub fn str_param(&self, name: &str) -> Option<String> {
        match self.param(name)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    /// A boolean parameter (`true`, `"true"`, `"yes"`, `1`).
    pub fn bool_param(&self, name: &str) -> Option<bool> {
        parse_bool(self.param(name)?)
    }
    /// A list of strings given as a JSON list or a comma-separated string.
    pub fn list_param(&self, name: &str) -> Option<Vec<String>> {
        let items: Vec<String> = match self.param(name)? {
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
                .collect(),
            Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
            _ => return None,
        };
        let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
        (!items.is_empty()).then_some(items)
    }
    /// Sends a progress reply.
    pub fn progress(&mut self, text: &str) {
        (self.callback)(text)
    }
}

/// Which service an action needs to be offered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `PTY_SERVICE`.
    Pty,
    /// `PTY_SERVICE` and at least one live session (checked within 2 s).
    PtyWithSession,
    /// `CODING_WORKSPACE_SERVICE`.
    Workspace,
}

/// One chat action.
pub struct Action {
    /// Name, e.g. `SPAWN_CODING_AGENT`.
    pub name: &'static str,
    /// Other names a model may use.
    pub similes: &'static [&'static str],
    /// What it does, for the model choosing actions.
    pub description: &'static str,
    /// Example exchanges: (what the person says, what the agent answers).
    pub examples: &'static [(&'static str, &'static str)],
    /// The parameters' JSON Schema.
    pub schema: fn() -> Value,
    /// What `validate` checks.
    pub needs: Needs,
    /// The handler.
    pub handler: fn(&mut ActionContext<'_>) -> ActionResult,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Action").field("name", &self.name).finish()
    }
}

impl Action {
    /// Whether the action can run now: its service exists (and for SEND/STOP a session exists,
    /// waiting up to 2 s for one being spawned).
    pub fn validate(&self, runtime: &dyn Runtime) -> bool {
        match self.needs {
            Needs::Pty => runtime.pty().is_some(),
            Needs::Workspace => runtime.workspace().is_some(),
            Needs::PtyWithSession => {
                let Some(pty) = runtime.pty() else {
                    return false;
                };
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    if pty.list_sessions().iter().any(|s| s.status.is_live()) {
                        return true;
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Whether `name` is this action's name or one of its similes (case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        let n = name.trim().to_ascii_uppercase();
        self.name == n || self.similes.contains(&n.as_str())
    }

    /// The MCP tool name: the lower-case action name.
    pub fn tool_name(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

/// Every action, in the order a model sees them.
pub fn all() -> &'static [Action] {
    &ACTIONS
}

/// The action with this name or simile.
pub fn find(name: &str) -> Option<&'static Action> {
    ACTIONS
        .iter()
        .find(|a| a.answers_to(name) || a.tool_name() == name.trim())
}

static ACTIONS: [Action; 8] = [
    start_task::ACTION,
    spawn::ACTION,
    send::ACTION,
    stop::ACTION,
    list::ACTION,
    provision::ACTION,
    finalize::ACTION,
    issues::ACTION,
];

/// How progress replies reach the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// As they are sent (a chat message, a line on the terminal).
    Live,
    /// Only with the result, as from the MCP server (a tool call has one result): an action
    /// then never waits for the person after a progress reply they cannot have seen yet
    /// (MANAGE_ISSUES returns the device code and finishes the authorization in the background
    /// instead of waiting for it).
    Collected,
}

/// Runs an action with parameters; `callback` delivers each progress reply to the person as it
/// is sent ([`Progress::Live`]).
pub fn run(
    action: &Action,
    runtime: &dyn Runtime,
    memory: &ChatMemory,
    message: &Message,
    params: &Params,
    callback: &mut dyn FnMut(&str),
) -> ActionResult {
    run_with(
        action,
        runtime,
        memory,
        message,
        params,
        callback,
        Progress::Live,
    )
}

/// [`run`] with the way progress replies reach the person.
pub fn run_with(
    action: &Action,
    runtime: &dyn Runtime,
    memory: &ChatMemory,
    message: &Message,
    params: &Params,
    callback: &mut dyn FnMut(&str),
    progress: Progress,
) -> ActionResult {
    let mut ctx = ActionContext {
        runtime,
        message,
        params,
        memory,
        callback,
        progress,
    };
    (action.handler)(&mut ctx)
}

/// A yes/no parameter: a boolean, `true`/`yes`/`1` or `false`/`no`/`0` as text, or the number 0
/// or 1; anything else is no answer. (`0.0` read as true, `n.as_i64()` being `None` for it, and
/// `all: 0.0` stopped every session.)
fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_parameters_are_read_strictly() {
        use serde_json::json;
        for (v, want) in [
            (json!(true), Some(true)),
            (json!("Yes"), Some(true)),
            (json!(1), Some(true)),
            (json!(1.0), Some(true)),
            (json!(false), Some(false)),
            (json!("no"), Some(false)),
            (json!(0), Some(false)),
            (json!(0.0), Some(false)),
            (json!(2), None),
            (json!(0.5), None),
            (json!("maybe"), None),
            (json!(null), None),
        ] {
            assert_eq!(parse_bool(&v), want, "{v}");
        }
    }

    #[test]
    fn names_and_similes_are_unique_and_schemas_are_objects() {
        let mut seen = std::collections::HashSet::new();
        for a in all() {
            assert!(seen.insert(a.name), "{}", a.name);
            for s in a.similes {
                assert!(seen.insert(s), "{s}");
            }
            let schema = (a.schema)();
            assert_eq!(schema["type"], "object", "{}", a.name);
            assert!(schema["properties"].is_object(), "{}", a.name);
            assert!(!a.examples.is_empty(), "{}", a.name);
            assert!(!a.description.is_empty());
        }
        assert_eq!(find("spawn_coder").unwrap().name, "SPAWN_CODING_AGENT");
        assert_eq!(
            find("list_coding_agents").unwrap().name,
            "LIST_CODING_AGENTS"
        );
    }
}
