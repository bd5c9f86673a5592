//! The MCP server: the actions as tools over stdio (JSON-RPC 2.0, one JSON message per line).
//!
//! Tool name = lower-case action name, input schema = the action's parameter schema, result =
//! the reply text (progress replies first) plus the action's data as `structuredContent`. A failed
//! action is a tool result with `isError: true`, so the calling model sees the reply; protocol
//! mistakes (unknown method, unknown tool, malformed JSON) are JSON-RPC errors.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

use crate::actions::{self, ChatMemory, Message};
use crate::runtime::Runtime;
use crate::{Error, Result};

/// JSON-RPC error codes.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters (including an unknown tool).
    pub const INVALID_PARAMS: i64 = -32602;
}

/// Protocol versions this server speaks, newest first.
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

/// An MCP server over one runtime.
pub struct McpServer<'a> {
    runtime: &'a dyn Runtime,
    memory: ChatMemory,
}

impl std::fmt::Debug for McpServer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").finish_non_exhaustive()
    }
}

impl<'a> McpServer<'a> {
    /// A server answering with this runtime's services.
    pub fn new(runtime: &'a dyn Runtime) -> Self {
        McpServer {
            runtime,
            memory: ChatMemory::default(),
        }
    }

    /// Serves until `input` ends. Each line is one message; each response is one line.
    pub fn serve(&self, input: impl BufRead, mut output: impl Write) -> Result<()> {
        for line in input.lines() {
            let line = line.map_err(|source| Error::Io {
                context: "reading stdin".into(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            if let Some(resp) = self.handle_line(&line) {
                writeln!(output, "{resp}")
                    .and_then(|_| output.flush())
                    .map_err(|source| Error::Io {
                        context: "writing stdout".into(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Answers one line; `None` for notifications.
    pub fn handle_line(&self, line: &str) -> Option<String> {
        let msg: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                return Some(
                    error(
                        Value::Null,
                        codes::PARSE_ERROR,
                        &format!("parse error: {e}"),
                    )
                    .to_string(),
                );
            }
        };
        self.handle(&msg).map(|v| v.to_string())
    }

    /// Answers one parsed message; `None` for notifications and responses.
    pub fn handle(&self, msg: &Value) -> Option<Value> {
        let Some(obj) = msg.as_object() else {
            return Some(error(
                Value::Null,
                codes::INVALID_REQUEST,
                "a message must be a JSON object",
            ));
        };
        let id = obj.get("id").cloned();
        let valid_id = matches!(id, None | Some(Value::String(_)) | Some(Value::Number(_)));
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            // A response from the client (we send no requests) or garbage.
            if obj.contains_key("result") || obj.contains_key("error") {
                return None;
            }
            return Some(error(
                id.unwrap_or(Value::Null),
                codes::INVALID_REQUEST,
                "missing method",
            ));
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") || !valid_id {
            return Some(error(
                id.unwrap_or(Value::Null),
                codes::INVALID_REQUEST,
                "not a JSON-RPC 2.0 request",
            ));
        }
        let Some(id) = id else {
            // Notifications (`notifications/initialized`, `notifications/cancelled`) need no answer.
            return None;
        };
        let params = obj.get("params").cloned().unwrap_or(json!({}));
        let result = match method {
            "initialize" => Ok(self.initialize(&params)),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(tools_list()),
            "tools/call" => self.call_tool(&params),
            "resources/list" => Ok(json!({"resources": []})),
            "prompts/list" => Ok(json!({"prompts": []})),
            other => Err((
                codes::METHOD_NOT_FOUND,
                format!("method not found: {other}"),
            )),
        };
        Some(match result {
            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Err((code, message)) => error(id, code, &message),
        })
    }

    fn initialize(&self, params: &Value) -> Value {
        let asked = params["protocolVersion"].as_str().unwrap_or("");
        let version = PROTOCOL_VERSIONS
            .iter()
            .find(|v| **v == asked)
            .copied()
            .unwrap_or(PROTOCOL_VERSIONS[0]);
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "agent-orchestrator", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Run CLI coding agents in pseudo-terminals. Use start_coding_task to clone a repo and start an agent on a task, list_coding_agents to see what each agent is doing, send_to_coding_agent to answer or instruct it, finalize_workspace to commit, push and open a pull request."
        })
    }

    fn call_tool(&self, params: &Value) -> std::result::Result<Value, (i64, String)> {
        let name = params["name"].as_str().ok_or((
            codes::INVALID_PARAMS,
            "tools/call needs a tool name".to_string(),
        ))?;
        let action = actions::all()
            .iter()
            .find(|a| a.tool_name() == name)
            .ok_or((codes::INVALID_PARAMS, format!("unknown tool: {name}")))?;
        let args = match &params["arguments"] {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m.clone(),
            _ => return Err((codes::INVALID_PARAMS, "arguments must be an object".into())),
        };
        if let Err(e) = check_arguments(&(action.schema)(), &args) {
            return Ok(json!({
                "content": [{"type": "text", "text": format!("invalid arguments for {name}: {e}")}],
                "isError": true
            }));
        }
        let message = Message::text("mcp", "");
        let mut progress = Vec::new();
        // The progress replies go out with the result, so no action may wait on one.
        let result = actions::run_with(
            action,
            self.runtime,
            &self.memory,
            &message,
            &args,
            &mut |t: &str| progress.push(t.to_string()),
            actions::Progress::Collected,
        );
        let mut content: Vec<Value> = progress
            .into_iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        content.push(json!({"type": "text", "text": result.text}));
        let mut out = json!({"content": content, "isError": !result.success});
        if result.data.is_object() {
            out["structuredContent"] = result.data;
        }
        Ok(out)
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The `tools/list` result.
pub fn tools_list() -> Value {
    let tools: Vec<Value> = actions::all()
        .iter()
        .map(|a| {
            json!({
                "name": a.tool_name(),
                "title": a.name,
                "description": a.description,
                "inputSchema": (a.schema)(),
            })
        })
        .collect();
    json!({"tools": tools})
}

/// Checks arguments against the subset of JSON Schema the actions use: known properties only,
/// each of its declared type (or one of `oneOf`), enums respected.
pub fn check_arguments(
    schema: &Value,
    args: &serde_json::Map<String, Value>,
) -> std::result::Result<(), String> {
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in args {
        let Some(p) = props.get(k) else {
            return Err(format!("unknown property {k}"));
        };
        if v.is_null() {
            continue;
        }
        let alternatives: Vec<&Value> = match p["oneOf"].as_array() {
            Some(a) => a.iter().collect(),
            None => vec![p],
        };
        if !alternatives.iter().any(|alt| type_ok(alt, v)) {
            return Err(format!("property {k} has the wrong type"));
        }
        if let Some(allowed) = p["enum"].as_array()
            && !allowed.contains(v)
        {
            return Err(format!(
                "property {k} must be one of {}",
                Value::Array(allowed.clone())
            ));
        }
    }
    Ok(())
}

fn type_ok(schema: &Value, v: &Value) -> bool {
    match schema["type"].as_str() {
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        Some("integer") => v.is_u64() || v.is_i64(),
        Some("number") => v.is_number(),
        Some("array") => v.as_array().is_some_and(|a| {
            a.iter()
                .all(|item| schema["items"].is_null() || type_ok(&schema["items"], item))
        }),
        Some("object") => v.is_object(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{SettingsStore, StandaloneRuntime};

    fn rt() -> StandaloneRuntime {
        StandaloneRuntime::new(SettingsStore::default()).unwrap()
    }

    #[test]
    fn protocol_errors_have_the_right_codes() {
        let rt = rt();
        let s = McpServer::new(&rt);
        let table = [
            ("{not json", codes::PARSE_ERROR),
            ("[1,2]", codes::INVALID_REQUEST),
            (r#"{"jsonrpc":"2.0","id":1}"#, codes::INVALID_REQUEST),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                codes::INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
                codes::METHOD_NOT_FOUND,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#,
                codes::INVALID_PARAMS,
            ),
        ];
        for (line, code) in table {
            let v: Value = serde_json::from_str(&s.handle_line(line).unwrap()).unwrap();
            assert_eq!(v["error"]["code"], code, "{line}");
        }
        assert!(
            s.handle_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .is_none()
        );
    }

    #[test]
    fn initialize_negotiates_the_version() {
        let rt = rt();
        let s = McpServer::new(&rt);
        let v = s.handle(&json!({"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2024-11-05"}})).unwrap();
        assert_eq!(v["id"], "a");
        assert_eq!(v["result"]["protocolVersion"], "2024-11-05");
        let v = s.handle(&json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01"}})).unwrap();
        assert_eq!(v["result"]["protocolVersion"], PROTOCOL_VERSIONS[0]);
        assert!(v["result"]["capabilities"]["tools"].is_object());
    }

    #[test]
    fn tools_are_the_actions_and_bad_arguments_are_tool_errors() {
        let rt = rt();
        let s = McpServer::new(&rt);
        let v = s
            .handle(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
            .unwrap();
        let names: Vec<&str> = v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 8);
        assert!(names.contains(&"spawn_coding_agent"));
        let v = s.handle(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stop_coding_agent","arguments":{"all":"yes please","bogus":1}}})).unwrap();
        assert_eq!(v["result"]["isError"], true);
        // Without a PTY service the action says so instead of pretending.
        let v = s.handle(&json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_coding_agents","arguments":{}}})).unwrap();
        assert_eq!(v["result"]["isError"], true);
        assert_eq!(
            v["result"]["content"][0]["text"],
            "PTY Service is not available."
        );
    }
}
