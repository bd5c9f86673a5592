//! STOP_CODING_AGENT.

use serde_json::json;

use super::util::{default_session, pty};
use super::{Action, ActionContext, ActionResult, Needs};

pub(super) const ACTION: Action = Action {
    name: "STOP_CODING_AGENT",
    similes: &[
        "KILL_CODING_AGENT",
        "TERMINATE_AGENT",
        "END_CODING_SESSION",
        "CANCEL_AGENT",
    ],
    description: "Stop one coding agent session gracefully (default: the current one), or all of \
        them with all=true.",
    examples: &[
        (
            "Stop the coding agent",
            "Stopped coding agent session 3f2a….",
        ),
        ("Stop all the agents", "Stopped 3 coding session(s)."),
    ],
    schema,
    needs: Needs::PtyWithSession,
    handler,
};

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "sessionId": {"type": "string", "description": "session to stop; default: the current one"},
            "all": {"type": "boolean", "description": "stop every active session"}
        },
        "additionalProperties": false
    })
}

fn handler(ctx: &mut ActionContext<'_>) -> ActionResult {
    let Some(pty) = pty(ctx) else {
        return ActionResult::fail("PTY Service is not available.");
    };
    let live: Vec<_> = pty
        .list_sessions()
        .into_iter()
        .filter(|s| s.status.is_live())
        .collect();
    if ctx.bool_param("all") == Some(true) {
        if live.is_empty() {
            return ActionResult::fail("No active coding sessions to stop.");
        }
        let mut stopped = Vec::new();
        let mut errors = Vec::new();
        for s in &live {
            match pty.stop_session(&s.id, false) {
                Ok(()) => stopped.push(s.id.clone()),
                Err(e) => errors.push(format!("{}: {e}", s.id)),
            }
        }
        if stopped.is_empty() {
            return ActionResult::fail(format!("Failed to stop agent: {}", errors.join("; ")));
        }
        return ActionResult::ok(
            format!("Stopped {} coding session(s).", stopped.len()),
            json!({"stopped": stopped, "errors": errors}),
        );
    }
    let session = match default_session(ctx, &pty) {
        Some(Ok(s)) => s,
        Some(Err(id)) => return ActionResult::fail(format!("Session {id} not found.")),
        None => return ActionResult::fail("No active coding sessions to stop."),
    };
    match pty.stop_session(&session.id, false) {
        Ok(()) => ActionResult::ok(
            format!("Stopped coding agent session {}.", session.id),
            json!({"sessionId": session.id}),
        ),
        Err(e) => ActionResult::fail(format!("Failed to stop agent: {e}")),
    }
}
