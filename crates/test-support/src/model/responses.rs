//! OpenAI Responses: `POST /v1/responses`, streamed. (Codex's WebSocket upgrade on `GET` is
//! answered 404 by the router, and Codex falls back to HTTP.)

use serde_json::{Value, json};

use super::script::{Reply, Turn};
use super::sse::{Sse, pieces, text_of, tool_names};

/// Reads a Responses request. The turn is after a tool result when the last input item that is a
/// user message or a tool output is a tool output.
pub(crate) fn parse(body: &Value) -> Turn {
    let tools = tool_names(&body["tools"]);
    let mut system = text_of(&body["instructions"]);
    let mut user_text = String::new();
    let mut after_tool_result = false;
    match &body["input"] {
        Value::String(s) => user_text = s.clone(),
        Value::Array(items) => {
            for item in items {
                let ty = item["type"].as_str().unwrap_or("message");
                let role = item["role"].as_str().unwrap_or("");
                match (ty, role) {
                    ("function_call_output" | "custom_tool_call_output", _) => {
                        after_tool_result = true;
                    }
                    ("message", "user") => {
                        user_text = text_of(&item["content"]);
                        after_tool_result = false;
                    }
                    ("message", "system" | "developer") => {
                        system.push('\n');
                        system.push_str(&text_of(&item["content"]));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let format = &body["text"]["format"];
    let json_schema = (format["type"] == "json_schema").then(|| format["schema"].clone());
    Turn {
        user_text,
        after_tool_result,
        tools,
        system,
        json_schema,
        raw: body.to_string(),
    }
}

fn item(reply: &Reply, id: u64, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    match reply {
        Reply::Text(text) => json!({
            "id": format!("msg_fake{id}"),
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": if done {
                json!([{"type": "output_text", "text": text, "annotations": []}])
            } else {
                json!([])
            }
        }),
        Reply::ToolCall { name, arguments } => json!({
            "id": format!("fc_fake{id}"),
            "type": "function_call",
            "status": status,
            "call_id": format!("call_fake{id}"),
            "name": name,
            "arguments": if done { arguments.to_string() } else { String::new() }
        }),
    }
}

fn response(model: &str, id: u64, status: &str, output: Value, input_tokens: u64) -> Value {
    json!({
        "id": format!("resp_fake{id}"),
        "object": "response",
        "created_at": 0,
        "status": status,
        "model": model,
        "output": output,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + 10
        }
    })
}

/// The reply as the Responses event stream.
pub(crate) fn stream(reply: &Reply, model: &str, id: u64, input_tokens: u64) -> String {
    let mut sse = Sse::default();
    let mut seq = 0u64;
    let mut ev = |sse: &mut Sse, name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        sse.event(name, &data);
    };
    let pending = response(model, id, "in_progress", json!([]), input_tokens);
    ev(&mut sse, "response.created", json!({"response": pending}));
    ev(
        &mut sse,
        "response.in_progress",
        json!({"response": pending}),
    );
    ev(
        &mut sse,
        "response.output_item.added",
        json!({"output_index": 0, "item": item(reply, id, false)}),
    );
    match reply {
        Reply::Text(text) => {
            let item_id = format!("msg_fake{id}");
            let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": []});
            ev(
                &mut sse,
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part("")}),
            );
            for piece in pieces(text) {
                ev(
                    &mut sse,
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
                );
            }
            ev(
                &mut sse,
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            );
            ev(
                &mut sse,
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part(text)}),
            );
        }
        Reply::ToolCall { arguments, .. } => {
            let item_id = format!("fc_fake{id}");
            let args = arguments.to_string();
            ev(
                &mut sse,
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": 0, "delta": args}),
            );
            ev(
                &mut sse,
                "response.function_call_arguments.done",
                json!({"item_id": item_id, "output_index": 0, "arguments": args}),
            );
        }
    }
    let done = item(reply, id, true);
    ev(
        &mut sse,
        "response.output_item.done",
        json!({"output_index": 0, "item": done}),
    );
    ev(
        &mut sse,
        "response.completed",
        json!({"response": response(model, id, "completed", json!([done]), input_tokens)}),
    );
    sse.finish()
}

/// The reply as one (non-streamed) response object.
pub(crate) fn object(reply: &Reply, model: &str, id: u64, input_tokens: u64) -> Value {
    response(
        model,
        id,
        "completed",
        json!([item(reply, id, true)]),
        input_tokens,
    )
}
