//! OpenAI Chat Completions: `POST /v1/chat/completions`, streamed (with
//! `stream_options.include_usage`) or not (Aider's commit message).

use serde_json::{Value, json};

use super::script::{Reply, Turn};
use super::sse::{Sse, pieces, text_of};

/// Reads a Chat Completions request: the turn follows a tool result when the last non-system
/// message has role `tool`.
pub(crate) fn parse(body: &Value) -> Turn {
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect();
    let mut system = String::new();
    let mut user_text = String::new();
    let mut after_tool_result = false;
    for m in body["messages"].as_array().into_iter().flatten() {
        match m["role"].as_str().unwrap_or("") {
            "system" | "developer" => {
                system.push_str(&text_of(&m["content"]));
                system.push('\n');
            }
            "user" => {
                user_text = text_of(&m["content"]);
                after_tool_result = false;
            }
            "tool" => after_tool_result = true,
            _ => {}
        }
    }
    let format = &body["response_format"];
    let json_schema =
        (format["type"] == "json_schema").then(|| format["json_schema"]["schema"].clone());
    Turn {
        user_text,
        after_tool_result,
        tools,
        system,
        json_schema,
        raw: body.to_string(),
    }
}

fn usage(input_tokens: u64) -> Value {
    json!({"prompt_tokens": input_tokens, "completion_tokens": 10, "total_tokens": input_tokens + 10})
}

fn finish_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "stop",
        Reply::ToolCall { .. } => "tool_calls",
    }
}

fn chunk(model: &str, id: u64, choices: Value) -> Value {
    json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": choices
    })
}

/// The reply as a completion event stream, ending with `data: [DONE]`.
pub(crate) fn stream(
    reply: &Reply,
    model: &str,
    id: u64,
    input_tokens: u64,
    include_usage: bool,
) -> String {
    let mut sse = Sse::default();
    let delta = |d: Value| json!([{"index": 0, "delta": d, "finish_reason": null}]);
    sse.data(&chunk(
        model,
        id,
        delta(json!({"role": "assistant", "content": ""})),
    ));
    match reply {
        Reply::Text(text) => {
            for piece in pieces(text) {
                sse.data(&chunk(model, id, delta(json!({"content": piece}))));
            }
        }
        Reply::ToolCall { name, arguments } => {
            sse.data(&chunk(
                model,
                id,
                delta(json!({"tool_calls": [{
                    "index": 0,
                    "id": format!("call_fake{id}"),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments.to_string()}
                }]})),
            ));
        }
    }
    sse.data(&chunk(
        model,
        id,
        json!([{"index": 0, "delta": {}, "finish_reason": finish_reason(reply)}]),
    ));
    if include_usage {
        let mut last = chunk(model, id, json!([]));
        last["usage"] = usage(input_tokens);
        sse.data(&last);
    }
    sse.raw_data("[DONE]");
    sse.finish()
}

/// The reply as one completion object.
pub(crate) fn completion(reply: &Reply, model: &str, id: u64, input_tokens: u64) -> Value {
    let message = match reply {
        Reply::Text(text) => json!({"role": "assistant", "content": text}),
        Reply::ToolCall { name, arguments } => json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": format!("call_fake{id}"),
                "type": "function",
                "function": {"name": name, "arguments": arguments.to_string()}
            }]
        }),
    };
    json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply)}],
        "usage": usage(input_tokens)
    })
}
