//! The scripted "model": from what a request asks, decide what to answer.
//!
//! Every wire format (Anthropic, OpenAI, Gemini) is first read into a [`Turn`], the few facts
//! the script needs; the script then picks one [`Reply`], which the wire module encodes back.

use serde_json::{Value, json};
use std::sync::LazyLock;

use regex::Regex;

use super::schema;

/// The marker every scripted text reply ends with, so a test can tell that a turn finished.
pub const TURN_COMPLETE_MARKER: &str = "FAKE_TURN_COMPLETE";

/// The plain reply to anything that is neither a file task nor a side request.
pub const HELLO_TEXT: &str = "Hello from the fake model. FAKE_TURN_COMPLETE";

/// Content written when a task names a file but not what to put in it.
pub const DEFAULT_FILE_CONTENT: &str = "hello from the fake model\n";

/// What the script needs to know about one request, whatever its wire format.
#[derive(Debug, Default, Clone)]
pub(crate) struct Turn {
    /// Text of the latest user message (all its text parts joined by newlines).
    pub user_text: String,
    /// Whether the latest user turn carries a tool result rather than new text.
    pub after_tool_result: bool,
    /// Names of the tools the agent offers.
    pub tools: Vec<String>,
    /// System / developer instructions, joined.
    pub system: String,
    /// A JSON schema the answer must match (structured output), if the request carries one.
    pub json_schema: Option<Value>,
    /// The whole request body as text, searched for the working directory.
    pub raw: String,
}

/// The script's answer, before wire encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Assistant text; the turn ends.
    Text(String),
    /// One call of a tool; the turn pauses until the agent sends the result.
    ToolCall {
        /// The tool's name as the agent offered it.
        name: String,
        /// The call's arguments.
        arguments: Value,
    },
}

impl Reply {
    /// A short label for the request log: `text`, `tool_call:<name>`.
    pub fn label(&self) -> String {
        match self {
            Reply::Text(_) => "text".to_owned(),
            Reply::ToolCall { name, .. } => format!("tool_call:{name}"),
        }
    }
}

/// Which kind of reply the script chose, recorded in the request log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyKind {
    /// The plain greeting, ending with the marker.
    Hello,
    /// A call of the agent's write tool.
    WriteTool {
        /// The tool called.
        tool: String,
        /// The file the call writes (as given to the tool).
        path: String,
    },
    /// A whole-file edit in Aider's format, for agents that offer no tools.
    WholeFileEdit {
        /// The file the edit creates.
        path: String,
    },
    /// A call of the agent's shell tool with a command the user's text quoted.
    ShellTool {
        /// The tool called.
        tool: String,
        /// The command line passed to it.
        command: String,
    },
    /// The closing text after a tool result.
    AfterToolResult,
    /// A session title (`{"title": …}`).
    Title,
    /// A value generated to match a requested JSON schema (titles, routing).
    SchemaValue,
    /// A one-line commit message.
    CommitMessage,
    /// A token count, a model list or another fixed answer that does not run the script.
    Fixed,
    /// The request was refused (wrong key, unknown path, bad body).
    Refused,
}

/// Options that change the script.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScriptOptions {
    /// For `exec_command`, ask for escalated sandbox permissions, which makes Codex show its approval prompt.
    pub escalate_commands: bool,
}

/// How a write tool takes its arguments.
#[derive(Debug, Clone, Copy)]
enum ArgStyle {
    /// `{file_path, content}` with an absolute path (Claude `Write`, Gemini `write_file`).
    FilePathContent,
    /// `{path, content}` (Pi `write`).
    PathContent,
    /// `{cmd}`: a shell command line that writes the file (Codex `exec_command`).
    ExecCmd,
    /// `{command: [argv…]}` (older Codex `shell`).
    ShellArgv,
}

/// The write tools this script knows, in order of preference.
const WRITE_TOOLS: &[(&str, ArgStyle)] = &[
    ("Write", ArgStyle::FilePathContent),
    ("write_file", ArgStyle::FilePathContent),
    ("write", ArgStyle::PathContent),
    ("exec_command", ArgStyle::ExecCmd),
    ("shell", ArgStyle::ShellArgv),
];

static CREATE_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\bcreate\s+(?:a\s+)?(?:new\s+)?file\s+(?:named\s+|called\s+)?[`'"]?([A-Za-z0-9_][A-Za-z0-9_./-]*?)[`'"]?(?:[\s,:;]|\.(?:\s|$)|$)"#,
    )
    .expect("static regex")
});

static FILE_CONTENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:containing|with\s+(?:the\s+)?(?:content|contents|text))\s+[`'"]([^`'"\n]*)[`'"]"#,
    )
    .expect("static regex")
});

static WORKDIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:Primary working directory|[Ww]orking directory|working in the directory|<cwd>)\s*:?\s*(/[^\s'"<>\\]+)"#,
    )
    .expect("static regex")
});

/// "run shell command `…`": the command between the backticks is run with the agent's shell tool.
static SHELL_TASK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\brun\s+(?:the\s+)?shell\s+command\s+`([^`\n]+)`").expect("static regex")
});

/// Shell tools that take `{command}` as one command line (Gemini `run_shell_command`).
const SHELL_TOOLS: &[&str] = &["run_shell_command"];

static TITLE_REQUEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\btitle\b").expect("static regex"));

static COMMIT_REQUEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)commit message").expect("static regex"));

/// A file task found in user text: the relative path and the content to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileTask {
    pub path: String,
    pub content: String,
}

/// Finds "create file X [containing 'Y']" in the user's text.
pub(crate) fn file_task(text: &str) -> Option<FileTask> {
    let path = CREATE_FILE.captures(text)?.get(1)?.as_str().to_owned();
    let content = FILE_CONTENT
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| format!("{}\n", m.as_str()))
        .unwrap_or_else(|| DEFAULT_FILE_CONTENT.to_owned());
    Some(FileTask { path, content })
}

/// The agent's working directory, as its own prompt states it, if it does.
pub(crate) fn workdir(raw: &str) -> Option<String> {
    WORKDIR
        .captures(raw)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches(['.', ',']).to_owned())
}

/// Chooses the reply to a turn. `api_titles` is true for APIs whose title side request is a
/// tool-less request that mentions a title in its system prompt (Anthropic Messages).
pub(crate) fn decide(turn: &Turn, options: &ScriptOptions, api_titles: bool) -> (Reply, ReplyKind) {
    if let Some(schema) = &turn.json_schema {
        return (
            Reply::Text(schema::example(schema).to_string()),
            ReplyKind::SchemaValue,
        );
    }
    if turn.after_tool_result {
        return (
            Reply::Text(format!("The file is written. {TURN_COMPLETE_MARKER}")),
            ReplyKind::AfterToolResult,
        );
    }
    if turn.tools.is_empty() && COMMIT_REQUEST.is_match(&turn.system) {
        return (
            Reply::Text("Add hello.txt".to_owned()),
            ReplyKind::CommitMessage,
        );
    }
    if api_titles && turn.tools.is_empty() && TITLE_REQUEST.is_match(&turn.system) {
        return (
            Reply::Text(json!({"title": "Fake session"}).to_string()),
            ReplyKind::Title,
        );
    }
    if let Some(command) = SHELL_TASK
        .captures(&turn.user_text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        && let Some(tool) = SHELL_TOOLS
            .iter()
            .find(|name| turn.tools.iter().any(|t| t == *name))
    {
        return (
            Reply::ToolCall {
                name: (*tool).to_owned(),
                arguments: json!({"command": command, "description": "Run the requested command"}),
            },
            ReplyKind::ShellTool {
                tool: (*tool).to_owned(),
                command,
            },
        );
    }
    if let Some(task) = file_task(&turn.user_text) {
        if let Some((tool, style)) = WRITE_TOOLS
            .iter()
            .find(|(name, _)| turn.tools.iter().any(|t| t == name))
        {
            let (arguments, path) = tool_arguments(*style, &task, turn, options);
            return (
                Reply::ToolCall {
                    name: (*tool).to_owned(),
                    arguments,
                },
                ReplyKind::WriteTool {
                    tool: (*tool).to_owned(),
                    path,
                },
            );
        }
        if turn.tools.is_empty() {
            // Aider's "whole" edit format: the file name on its own line, then a fenced block.
            let text = format!(
                "{path}\n```\n{content}```\n\n{TURN_COMPLETE_MARKER}",
                path = task.path,
                content = task.content
            );
            return (
                Reply::Text(text),
                ReplyKind::WholeFileEdit { path: task.path },
            );
        }
    }
    (Reply::Text(HELLO_TEXT.to_owned()), ReplyKind::Hello)
}

/// Builds a write tool's arguments; returns them and the path they write.
fn tool_arguments(
    style: ArgStyle,
    task: &FileTask,
    turn: &Turn,
    options: &ScriptOptions,
) -> (Value, String) {
    match style {
        ArgStyle::FilePathContent | ArgStyle::PathContent => {
            let path = match workdir(&turn.raw) {
                Some(dir) if !task.path.starts_with('/') => {
                    format!("{}/{}", dir.trim_end_matches('/'), task.path)
                }
                _ => task.path.clone(),
            };
            let key = if matches!(style, ArgStyle::FilePathContent) {
                "file_path"
            } else {
                "path"
            };
            (json!({ key: path, "content": task.content }), path)
        }
        ArgStyle::ExecCmd => {
            let cmd = format!(
                "printf '%s' {} > {}",
                shell_quote(&task.content),
                shell_quote(&task.path)
            );
            let mut args = json!({ "cmd": cmd });
            if options.escalate_commands {
                args["sandbox_permissions"] = json!("require_escalated");
                args["justification"] = json!(format!("Create {}", task.path));
            }
            (args, task.path.clone())
        }
        ArgStyle::ShellArgv => {
            let cmd = format!(
                "printf '%s' {} > {}",
                shell_quote(&task.content),
                shell_quote(&task.path)
            );
            (
                json!({ "command": ["bash", "-lc", cmd] }),
                task.path.clone(),
            )
        }
    }
}

/// Single-quotes a word for a POSIX shell command line the agent will run.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_tasks_are_found_in_plain_wordings() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "Create file hello.txt containing 'hi there'",
                Some(("hello.txt", "hi there\n")),
            ),
            (
                "please create a new file named `docs/a.md` with the content \"x\"",
                Some(("docs/a.md", "x\n")),
            ),
            (
                "create file hello.txt.",
                Some(("hello.txt", DEFAULT_FILE_CONTENT)),
            ),
            ("Say hello", None),
            ("create a file", None),
        ];
        for (text, want) in cases {
            let got = file_task(text).map(|t| (t.path, t.content));
            let want = want.map(|(p, c)| (p.to_owned(), c.to_owned()));
            assert_eq!(got, want, "for {text:?}");
        }
    }

    #[test]
    fn a_quoted_shell_command_is_run_with_the_shell_tool_when_offered() {
        let mut turn = Turn {
            user_text: "Run shell command `read a; echo got:$a`".into(),
            tools: vec!["write_file".into(), "run_shell_command".into()],
            ..Turn::default()
        };
        let (reply, kind) = decide(&turn, &ScriptOptions::default(), false);
        assert_eq!(
            reply,
            Reply::ToolCall {
                name: "run_shell_command".into(),
                arguments: json!({"command": "read a; echo got:$a", "description": "Run the requested command"}),
            }
        );
        assert_eq!(
            kind,
            ReplyKind::ShellTool {
                tool: "run_shell_command".into(),
                command: "read a; echo got:$a".into()
            }
        );
        // Without a shell tool the request is plain text.
        turn.tools = vec!["write_file".into()];
        assert_eq!(
            decide(&turn, &ScriptOptions::default(), false).1,
            ReplyKind::Hello
        );
    }

    #[test]
    fn workdir_is_read_from_each_agents_wording() {
        let cases = [
            ("Primary working directory: /tmp/x/repo\n", "/tmp/x/repo"),
            ("<cwd>/work/r</cwd>", "/work/r"),
            ("I'm currently working in the directory: /a/b.", "/a/b"),
        ];
        for (raw, want) in cases {
            assert_eq!(workdir(raw).as_deref(), Some(want), "for {raw:?}");
        }
        assert_eq!(workdir("no directory here"), None);
    }

    fn turn(user: &str, tools: &[&str]) -> Turn {
        Turn {
            user_text: user.to_owned(),
            tools: tools.iter().map(|t| (*t).to_owned()).collect(),
            ..Turn::default()
        }
    }

    #[test]
    fn each_agents_write_tool_gets_its_own_arguments() {
        let mut t = turn("create file hello.txt", &["Read", "Write", "Bash"]);
        t.raw = "Primary working directory: /repo".to_owned();
        let (reply, kind) = decide(&t, &ScriptOptions::default(), true);
        assert_eq!(
            reply,
            Reply::ToolCall {
                name: "Write".into(),
                arguments: json!({"file_path": "/repo/hello.txt", "content": DEFAULT_FILE_CONTENT})
            }
        );
        assert_eq!(
            kind,
            ReplyKind::WriteTool {
                tool: "Write".into(),
                path: "/repo/hello.txt".into()
            }
        );

        let t = turn("create file hello.txt", &["read", "write", "bash"]);
        let (reply, _) = decide(&t, &ScriptOptions::default(), false);
        assert_eq!(
            reply,
            Reply::ToolCall {
                name: "write".into(),
                arguments: json!({"path": "hello.txt", "content": DEFAULT_FILE_CONTENT})
            }
        );

        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let t = turn("create file hello.txt containing 'it'", &["exec_command"]);
        let options = ScriptOptions {
            escalate_commands: true,
        };
        let (reply, _) = decide(&t, &options, false);
        let Reply::ToolCall { name, arguments } = reply else {
            panic!("expected a tool call")
        };
        assert_eq!(name, "exec_command");
        assert_eq!(arguments["cmd"], "printf '%s' 'it\n' > 'hello.txt'");
        assert_eq!(arguments["sandbox_permissions"], "require_escalated");
    }

    #[test]
    fn side_requests_and_follow_ups_get_their_own_replies() {
        let mut t = turn("anything", &[]);
        t.system = "Generate a concise title for this session".to_owned();
        assert_eq!(
            decide(&t, &ScriptOptions::default(), true).1,
            ReplyKind::Title
        );
        // Without the Anthropic convention the same words are an ordinary turn.
        assert_eq!(
            decide(&t, &ScriptOptions::default(), false).1,
            ReplyKind::Hello
        );

        t.system = "You write one-line Git commit messages.".to_owned();
        let (reply, kind) = decide(&t, &ScriptOptions::default(), false);
        assert_eq!(kind, ReplyKind::CommitMessage);
        assert_eq!(reply, Reply::Text("Add hello.txt".into()));

        let mut t = turn("create file hello.txt", &["Write"]);
        t.after_tool_result = true;
        let (reply, kind) = decide(&t, &ScriptOptions::default(), true);
        assert_eq!(kind, ReplyKind::AfterToolResult);
        assert!(matches!(reply, Reply::Text(s) if s.ends_with(TURN_COMPLETE_MARKER)));

        let mut t = turn("x", &[]);
        t.json_schema =
            Some(json!({"type": "object", "properties": {"title": {"type": "string"}}}));
        let (reply, kind) = decide(&t, &ScriptOptions::default(), false);
        assert_eq!(kind, ReplyKind::SchemaValue);
        let Reply::Text(text) = reply else { panic!() };
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["title"].is_string());
    }

    #[test]
    fn tool_less_agents_get_a_whole_file_edit() {
        let t = turn("Create file hello.txt containing 'Hello'", &[]);
        let (reply, kind) = decide(&t, &ScriptOptions::default(), false);
        assert_eq!(
            kind,
            ReplyKind::WholeFileEdit {
                path: "hello.txt".into()
            }
        );
        assert_eq!(
            reply,
            Reply::Text(format!(
                "hello.txt\n```\nHello\n```\n\n{TURN_COMPLETE_MARKER}"
            ))
        );
    }
}
