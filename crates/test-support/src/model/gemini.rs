//! Gemini: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, `…:generateContent` and
//! `…:countTokens`.

use serde_json::{Value, json};

use super::script::{Reply, Turn};
use super::sse::{Sse, pieces, text_of};

/// Reads a generateContent request; a router request carries `responseJsonSchema`.
pub(crate) fn parse(body: &Value) -> Turn {
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    let system = text_of(&body["systemInstruction"]);
    let mut user_text = String::new();
    let mut after_tool_result = false;
    if let Some(last) = body["contents"]
        .as_array()
        .and_then(|c| c.iter().rev().find(|m| m["role"] == "user"))
    {
        user_text = text_of(&last["parts"]);
        after_tool_result = last["parts"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()));
    }
    let config = &body["generationConfig"];
    let json_schema = ["responseJsonSchema", "responseSchema"]
        .iter()
        .find_map(|k| config.get(*k).filter(|v| v.is_object()).cloned());
    Turn {
        user_text,
        after_tool_result,
        tools,
        system,
        json_schema,
        raw: body.to_string(),
    }
}

fn candidate(parts: Value, finished: bool) -> Value {
    let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if finished {
        c["finishReason"] = json!("STOP");
    }
    c
}

fn response(model: &str, candidates: Value, input_tokens: u64) -> Value {
    json!({
        "candidates": candidates,
        "usageMetadata": {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": 10,
            "totalTokenCount": input_tokens + 10
        },
        "modelVersion": model
    })
}

fn parts(reply: &Reply) -> Value {
    match reply {
        Reply::Text(text) => json!([{"text": text}]),
        Reply::ToolCall { name, arguments } => {
            json!([{"functionCall": {"name": name, "args": arguments}}])
        }
    }
}

/// The reply as a `streamGenerateContent?alt=sse` stream.
pub(crate) fn stream(reply: &Reply, model: &str, input_tokens: u64) -> String {
    let mut sse = Sse::default();
    match reply {
        Reply::Text(text) => {
            let p = pieces(text);
            let last = p.len() - 1;
            for (i, piece) in p.into_iter().enumerate() {
                sse.data(&response(
                    model,
                    json!([candidate(json!([{"text": piece}]), i == last)]),
                    input_tokens,
                ));
            }
        }
        Reply::ToolCall { .. } => {
            sse.data(&response(
                model,
                json!([candidate(parts(reply), true)]),
                input_tokens,
            ));
        }
    }
    sse.finish()
}

/// The reply as one `generateContent` response.
pub(crate) fn generate(reply: &Reply, model: &str, input_tokens: u64) -> Value {
    response(model, json!([candidate(parts(reply), true)]), input_tokens)
}
