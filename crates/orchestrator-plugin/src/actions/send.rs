//! SEND_TO_CODING_AGENT.

use serde_json::json;

use super::util::{default_session, pty};
use super::{Action, ActionContext, ActionResult, Needs};
use crate::model::parse_key_list;

pub(super) const ACTION: Action = Action {
    name: "SEND_TO_CODING_AGENT",
    similes: &[
        "MESSAGE_CODING_AGENT",
        "INPUT_TO_AGENT",
        "RESPOND_TO_AGENT",
        "TELL_CODING_AGENT",
    ],
    description: "Send text (one turn, typed then Enter) or key presses (e.g. [\"down\", \"enter\"]) \
        to a running coding agent. Without sessionId the conversation's current session is used.",
    examples: &[
        (
            "Tell the agent to also add tests",
            "Sent to coding agent: \"also add tests\"",
        ),
        (
            "Press enter on the agent's menu",
            "Sent key sequence to coding agent.",
        ),
    ],
    schema,
    needs: Needs::PtyWithSession,
    handler,
};

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "sessionId": {"type": "string", "description": "session to send to; default: the current one"},
            "input": {"type": "string", "description": "text to send as one turn"},
            "keys": {
                "description": "key names (enter, escape, up, ctrl+c, …) as a list or a comma-separated string",
                "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
            }
        },
        "additionalProperties": false
    })
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(pty) = pty(ctx) else {
        return ActionResult::fail("PTY Service is not available.");
    };
    if !pty.list_sessions().iter().any(|s| s.status.is_live()) {
        return ActionResult::fail("No active coding sessions. Spawn an agent first.");
    }
    let session = match default_session(ctx, &pty) {
        Some(Ok(s)) => s,
        Some(Err(id)) => return ActionResult::fail(format!("Session {id} not found.")),
        None => return ActionResult::fail("No active coding sessions. Spawn an agent first."),
    };
    let keys = match ctx.param("keys") {
        Some(serde_json::Value::String(s)) => Some(parse_key_list(s)),
        Some(_) => ctx.list_param("keys"),
        None => None,
    }
    .filter(|k| !k.is_empty());
    let data = json!({"sessionId": session.id});
    if let Some(keys) = keys {
        return match pty.send_keys(&session.id, &keys) {
            Ok(()) => {
                ctx.memory.set_session(&ctx.message.room_id, &session.id);
                ActionResult::ok("Sent key sequence to coding agent.", data)
            }
            Err(e) => ActionResult::fail(format!("Failed to send to agent: {e}")),
        };
    }
    let Some(input) = ctx.str_param("input") else {
        return ActionResult::fail("No input provided. Specify 'input' or 'keys' parameter.");
    };
    match pty.send_to_session(&session.id, &input) {
        Ok(()) => {
            ctx.memory.set_session(&ctx.message.room_id, &session.id);
            ActionResult::ok(format!("Sent to coding agent: \"{input}\""), data)
        }
        Err(e) => ActionResult::fail(format!("Failed to send to agent: {e}")),
    }
}
