//! Anthropic Messages: `POST /v1/messages` (streaming and not) and `/v1/messages/count_tokens`.

use serde_json::{Value, json};

use super::script::{Reply, Turn};
use super::sse::{Sse, text_of, tool_names};

/// Reads a Messages request. Claude may append `role: "system"` messages after the user's, so the
/// turn is the last `user` message, not the last message.
pub(crate) fn parse(body: &Value) -> Turn {
    let tools = tool_names(&body["tools"]);
    let mut system = text_of(&body["system"]);
    let mut user_text = String::new();
    let mut after_tool_result = false;
    if let Some(messages) = body["messages"].as_array() {
        for m in messages.iter().filter(|m| m["role"] == "system") {
            system.push('\n');
            system.push_str(&text_of(&m["content"]));
        }
        if let Some(last) = messages.iter().rev().find(|m| m["role"] == "user") {
            user_text = text_of(&last["content"]);
            after_tool_result = last["content"]
                .as_array()
                .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
        }
    }
    let json_schema = (body["output_format"]["type"] == "json_schema")
        .then(|| body["output_format"]["schema"].clone());
    Turn {
        user_text,
        after_tool_result,
        tools,
        system,
        json_schema,
        raw: body.to_string(),
    }
}

fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0
    })
}

fn stop_reason(reply: &Reply) -> &'static str {
    match reply {
        Reply::Text(_) => "end_turn",
        Reply::ToolCall { .. } => "tool_use",
    }
}

/// The reply as one Messages response object.
pub(crate) fn message(reply: &Reply, model: &str, id: u64, input_tokens: u64) -> Value {
    let block = match reply {
        Reply::Text(text) => json!({"type": "text", "text": text}),
        Reply::ToolCall { name, arguments } => {
            json!({"type": "tool_use", "id": format!("toolu_fake{id}"), "name": name, "input": arguments})
        }
    };
    json!({
        "id": format!("msg_fake{id}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": usage(input_tokens, 10)
    })
}

/// The reply as the Messages event stream.
pub(crate) fn stream(reply: &Reply, model: &str, id: u64, input_tokens: u64) -> String {
    let mut sse = Sse::default();
    let mut start = message(reply, model, id, input_tokens);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"] = usage(input_tokens, 1);
    sse.event(
        "message_start",
        &json!({"type": "message_start", "message": start}),
    );
    match reply {
        Reply::Text(text) => {
            sse.event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for piece in super::sse::pieces(text) {
                sse.event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                );
            }
        }
        Reply::ToolCall { name, arguments } => {
            sse.event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {
                    "type": "tool_use", "id": format!("toolu_fake{id}"), "name": name, "input": {}
                }}),
            );
            sse.event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": {
                    "type": "input_json_delta", "partial_json": arguments.to_string()
                }}),
            );
        }
    }
    sse.event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    );
    sse.event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null}, "usage": {"output_tokens": 10}}),
    );
    sse.event("message_stop", &json!({"type": "message_stop"}));
    sse.finish()
}
