//! The fake model server spoken to over loopback with a real HTTP client, one case per wire format.

use serde_json::{Value, json};
use test_support::model::{
    Api, DEFAULT_FILE_CONTENT, FakeModel, FakeModelOptions, ReplyKind, TURN_COMPLETE_MARKER,
};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` with the server's key in `auth_header`; returns status, content type and body text.
fn post(server: &FakeModel, path: &str, auth_header: &str, body: &Value) -> (u16, String, String) {
    let value = if auth_header == "authorization" {
        format!("Bearer {}", server.api_key())
    } else {
        server.api_key().to_owned()
    };
    let mut resp = agent()
        .post(&format!("{}{path}", server.base_url()))
        .header(auth_header, &value)
        .send_json(body)
        .expect("request to the fake model");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let chunked = resp
        .headers()
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked");
    if ct == "text/event-stream" {
        assert!(chunked, "streams are sent chunked");
    }
    (status, ct, resp.body_mut().read_to_string().unwrap())
}

/// The JSON payloads of an event stream, with their event names (empty when unnamed).
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        let value = if data == "[DONE]" {
            json!("[DONE]")
        } else {
            serde_json::from_str(&data).unwrap_or_else(|e| panic!("bad event data {data:?}: {e}"))
        };
        out.push((name, value));
    }
    out
}

#[test]
fn anthropic_stream_calls_claudes_write_tool_then_closes_the_turn() {
    let server = FakeModel::start().unwrap();
    let tools =
        json!([{"name": "Read", "input_schema": {}}, {"name": "Write", "input_schema": {}}]);
    let first = json!({
        "model": "claude-x", "stream": true, "tools": tools,
        "system": [{"type": "text", "text": "Primary working directory: /tmp/repo"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Create file hello.txt containing 'hi'"}]},
            {"role": "system", "content": "a trailing reminder"}
        ]
    });
    let (status, ct, body) = post(&server, "/v1/messages?beta=true", "x-api-key", &first);
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
    let ev = events(&body);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[1].1["content_block"]["name"], "Write");
    let input: Value =
        serde_json::from_str(ev[2].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"file_path": "/tmp/repo/hello.txt", "content": "hi\n"})
    );
    assert_eq!(ev[4].1["delta"]["stop_reason"], "tool_use");
    let tool_id = ev[1].1["content_block"]["id"].as_str().unwrap().to_owned();

    let second = json!({
        "model": "claude-x", "stream": true, "tools": tools,
        "messages": [
            {"role": "user", "content": "Create file hello.txt containing 'hi'"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "Write", "input": input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]}
        ]
    });
    let (_, _, body) = post(&server, "/v1/messages", "x-api-key", &second);
    let text: String = events(&body)
        .iter()
        .filter_map(|(_, v)| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert!(text.ends_with(TURN_COMPLETE_MARKER), "{text}");

    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].api, Api::AnthropicMessages);
    assert_eq!(log[0].path, "/v1/messages?beta=true");
    assert_eq!(log[0].header("x-api-key"), Some("[redacted]"));
    assert!(log[0].authorized && log[0].streamed);
    assert_eq!(log[0].tools, ["Read", "Write"]);
    assert_eq!(
        log[0].reply,
        ReplyKind::WriteTool {
            tool: "Write".into(),
            path: "/tmp/repo/hello.txt".into()
        }
    );
    assert_eq!(log[1].reply, ReplyKind::AfterToolResult);
    assert!(!log.iter().any(|r| r.body.contains(server.api_key())));
}

#[test]
fn anthropic_title_request_and_token_count() {
    let server = FakeModel::start().unwrap();
    let title = json!({
        "model": "claude-haiku", "stream": false,
        "system": "Summarize this coding conversation in a short title. Return JSON with a single title field.",
        "messages": [{"role": "user", "content": "Create file hello.txt"}]
    });
    let (status, ct, body) = post(&server, "/v1/messages", "authorization", &title);
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let msg: Value = serde_json::from_str(&body).unwrap();
    let inner: Value = serde_json::from_str(msg["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(inner["title"].is_string());

    let (status, _, body) = post(
        &server,
        "/v1/messages/count_tokens",
        "x-api-key",
        &json!({"messages": [{"role": "user", "content": "hello"}]}),
    );
    assert_eq!(status, 200);
    let count: Value = serde_json::from_str(&body).unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0);
    let kinds: Vec<ReplyKind> = server.requests().into_iter().map(|r| r.reply).collect();
    assert_eq!(kinds, [ReplyKind::Title, ReplyKind::Fixed]);
}

#[test]
fn responses_stream_calls_exec_command_and_answers_schema_side_requests() {
    let server =
        FakeModel::start_with(FakeModelOptions::default().escalate_commands(true)).unwrap();
    let tools = json!([{"type": "function", "name": "exec_command", "parameters": {}}]);
    let task = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "create file hello.txt"}]});
    let first = json!({"model": "fake-model", "stream": true, "instructions": "You are Codex.", "tools": tools, "input": [task]});
    let (status, ct, body) = post(&server, "/v1/responses", "authorization", &first);
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
    let ev = events(&body);
    assert_eq!(ev.first().unwrap().0, "response.created");
    assert_eq!(ev.last().unwrap().0, "response.completed");
    for (i, (name, data)) in ev.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    let done = &ev
        .iter()
        .find(|(n, _)| n == "response.output_item.done")
        .unwrap()
        .1["item"];
    assert_eq!(done["type"], "function_call");
    assert_eq!(done["name"], "exec_command");
    let args: Value = serde_json::from_str(done["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args["cmd"],
        format!("printf '%s' '{DEFAULT_FILE_CONTENT}' > 'hello.txt'")
    );
    assert_eq!(args["sandbox_permissions"], "require_escalated");

    let second = json!({"model": "fake-model", "stream": true, "tools": tools, "input": [
        task, done, {"type": "function_call_output", "call_id": done["call_id"], "output": "ok"}
    ]});
    let (_, _, body) = post(&server, "/v1/responses", "authorization", &second);
    let completed = events(&body).pop().unwrap().1;
    let text = completed["response"]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.ends_with(TURN_COMPLETE_MARKER));

    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"], "additionalProperties": false});
    let side = json!({"model": "fake-model", "stream": true, "input": "name this thread",
        "text": {"format": {"type": "json_schema", "name": "title", "schema": schema, "strict": true}}});
    let (_, _, body) = post(&server, "/v1/responses", "authorization", &side);
    let completed = events(&body).pop().unwrap().1;
    let text = completed["response"]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    let value: Value = serde_json::from_str(text).unwrap();
    assert_eq!(value, json!({"title": "fake"}));
    assert_eq!(server.requests()[2].reply, ReplyKind::SchemaValue);
}

#[test]
fn websocket_upgrade_and_unknown_paths_get_404_and_are_logged() {
    let server = FakeModel::start().unwrap();
    let resp = agent()
        .get(&format!("{}/v1/responses", server.base_url()))
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let log = server.requests();
    assert_eq!(log[0].api, Api::Unknown);
    assert_eq!(log[0].reply, ReplyKind::Refused);
    assert_eq!(log[0].status, 404);
}

#[test]
fn a_head_probe_is_answered_without_a_key() {
    let server = FakeModel::start().unwrap();
    let resp = agent().head(&server.base_url()).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let log = server.requests();
    assert_eq!((log[0].api, log[0].status), (Api::Probe, 200));
}

#[test]
fn wrong_or_missing_key_is_refused() {
    let server = FakeModel::start_with(FakeModelOptions::default().api_key("right-key")).unwrap();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let url = format!("{}/v1/chat/completions", server.base_url());
    let resp = agent()
        .post(&url)
        .header("Authorization", "Bearer wrong-key")
        .send_json(&body)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = agent().post(&url).send_json(&body).unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = agent()
        .get(&format!("{}/v1/models", server.base_url()))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let log = server.requests();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|r| !r.authorized && r.reply == ReplyKind::Refused)
    );
    assert_eq!(log[0].header("authorization"), Some("[redacted]"));
}

#[test]
fn chat_completions_stream_with_usage_calls_pis_write_tool() {
    let server = FakeModel::start().unwrap();
    let tools = json!([{"type": "function", "function": {"name": "write", "parameters": {}}}]);
    let body = json!({
        "model": "fake-model", "stream": true, "stream_options": {"include_usage": true}, "tools": tools,
        "messages": [{"role": "system", "content": "You are pi."}, {"role": "user", "content": "Create file hello.txt"}]
    });
    let (status, _, text) = post(&server, "/v1/chat/completions", "authorization", &body);
    assert_eq!(status, 200);
    let ev = events(&text);
    assert_eq!(ev.last().unwrap().1, "[DONE]");
    let usage = &ev[ev.len() - 2].1;
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let call = ev
        .iter()
        .find_map(|(_, v)| v["choices"][0]["delta"]["tool_calls"].as_array().cloned())
        .unwrap();
    assert_eq!(call[0]["function"]["name"], "write");
    let args: Value =
        serde_json::from_str(call[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"path": "hello.txt", "content": DEFAULT_FILE_CONTENT})
    );
    assert!(
        ev.iter()
            .any(|(_, v)| v["choices"][0]["finish_reason"] == "tool_calls")
    );

    // Without include_usage no usage chunk is sent.
    let mut plain = body.clone();
    plain["stream_options"] = json!(null);
    plain["messages"][1]["content"] = json!("Say hello");
    let (_, _, text) = post(&server, "/v1/chat/completions", "authorization", &plain);
    assert!(!text.contains("\"usage\""));
    assert!(text.contains("FAKE_TURN_COMPLETE"));
}

#[test]
fn chat_completions_for_aider_whole_edit_and_non_streamed_commit_message() {
    let server = FakeModel::start().unwrap();
    let edit = json!({"model": "fake-model", "stream": true, "messages": [
        {"role": "system", "content": "Act as an expert software developer. Return the whole file."},
        {"role": "user", "content": "Create file hello.txt containing 'Hello'"}
    ]});
    let (_, _, text) = post(&server, "/v1/chat/completions", "authorization", &edit);
    let content: String = events(&text)
        .iter()
        .filter_map(|(_, v)| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        content,
        format!("hello.txt\n```\nHello\n```\n\n{TURN_COMPLETE_MARKER}")
    );

    let commit = json!({"model": "fake-model", "messages": [
        {"role": "system", "content": "You are an expert software engineer that generates concise, one-line Git commit messages."},
        {"role": "user", "content": "diff --git a/hello.txt b/hello.txt\n+Hello"}
    ]});
    let (status, ct, text) = post(&server, "/v1/chat/completions", "authorization", &commit);
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Add hello.txt");
    let log = server.requests();
    assert_eq!(
        log[0].reply,
        ReplyKind::WholeFileEdit {
            path: "hello.txt".into()
        }
    );
    assert_eq!(log[1].reply, ReplyKind::CommitMessage);
    assert!(!log[1].streamed);
}

#[test]
fn gemini_stream_generate_and_count_tokens() {
    let server = FakeModel::start().unwrap();
    let body = json!({
        "systemInstruction": {"parts": [{"text": "I'm currently working in the directory: /w/repo"}]},
        "tools": [{"functionDeclarations": [{"name": "read_file"}, {"name": "write_file"}]}],
        "contents": [{"role": "user", "parts": [{"text": "Create file hello.txt"}]}]
    });
    let path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
    let (status, ct, text) = post(&server, path, "x-goog-api-key", &body);
    assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
    let ev = events(&text);
    let call = &ev[0].1["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "write_file");
    assert_eq!(call["args"]["file_path"], "/w/repo/hello.txt");
    assert_eq!(
        ev.last().unwrap().1["candidates"][0]["finishReason"],
        "STOP"
    );
    assert_eq!(ev[0].1["modelVersion"], "gemini-2.5-pro");

    let mut after = body.clone();
    after["contents"] = json!([
        {"role": "user", "parts": [{"text": "Create file hello.txt"}]},
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {"output": "ok"}}}]}
    ]);
    let (_, _, text) = post(&server, path, "x-goog-api-key", &after);
    let joined: String = events(&text)
        .iter()
        .filter_map(|(_, v)| {
            v["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(joined.ends_with(TURN_COMPLETE_MARKER));

    // The router's side request: JSON matching the schema it gives.
    let router = json!({
        "contents": [{"role": "user", "parts": [{"text": "route this"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
            "type": "object",
            "properties": {"reasoning": {"type": "string"}, "model_choice": {"type": "string", "enum": ["flash", "pro"]}},
            "required": ["reasoning", "model_choice"]
        }}
    });
    let key = server.api_key().to_owned();
    let mut resp = agent()
        .post(&format!(
            "{}/v1beta/models/flash-lite:generateContent?key={key}",
            server.base_url()
        ))
        .send_json(&router)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let answer: Value = serde_json::from_str(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["model_choice"], "flash");

    let (status, _, text) = post(
        &server,
        "/v1beta/models/gemini-2.5-pro:countTokens",
        "x-goog-api-key",
        &json!({"contents": []}),
    );
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&text).unwrap()["totalTokens"]
            .as_u64()
            .is_some()
    );

    let log = server.requests();
    assert_eq!(
        log[2].path,
        "/v1beta/models/flash-lite:generateContent?key=[redacted]"
    );
    assert!(log.iter().all(|r| r.api == Api::Gemini && r.authorized));
}

#[test]
fn model_list_serves_every_readers_shape() {
    let server = FakeModel::start().unwrap();
    for path in ["/v1/models", "/v1beta/models"] {
        let mut resp = agent()
            .get(&format!("{}{path}", server.base_url()))
            .header("x-api-key", server.api_key())
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(v["data"][0]["id"], "fake-model");
        assert_eq!(v["models"][0]["name"], "models/fake-model");
    }
}

#[test]
fn a_delayed_reply_does_not_hold_up_other_requests() {
    let server = std::sync::Arc::new(
        FakeModel::start_with(
            FakeModelOptions::default().reply_delay(std::time::Duration::from_millis(800)),
        )
        .unwrap(),
    );
    let slow = {
        let server = server.clone();
        std::thread::spawn(move || {
            post(
                &server,
                "/v1/chat/completions",
                "authorization",
                &json!({"stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            )
        })
    };
    // The token count is answered while the turn is still being delayed.
    let (status, _, _) = post(
        &server,
        "/v1/messages/count_tokens",
        "x-api-key",
        &json!({"messages": []}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        server.requests().len(),
        1,
        "the delayed turn is logged only when answered"
    );
    let (status, _, _) = slow.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.requests().len(), 2);
}
