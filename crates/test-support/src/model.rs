//! A loopback fake model server that the real agent CLIs can run a whole turn against.
//!
//! [`FakeModel`] binds `127.0.0.1:0` and speaks the wire formats the supported CLIs use:
//!
//! | Path | API | Used by |
//! |---|---|---|
//! | `POST /v1/messages` (also `?beta=true`), `POST /v1/messages/count_tokens` | Anthropic Messages | Claude Code, Pi |
//! | `POST /v1/responses` (`GET` = WebSocket upgrade → 404) | OpenAI Responses | Codex |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions | Pi, Aider |
//! | `POST /v1beta/models/{m}:streamGenerateContent?alt=sse`, `:generateContent`, `:countTokens` | Gemini | Gemini CLI |
//! | `GET /v1/models`, `GET /v1beta/models` | model lists | all |
//! | `HEAD` any path | connectivity probe (200, no key needed) | Claude Code |
//!
//! Streams are server-sent events over chunked transfer encoding. Every request must carry the
//! server's key (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or `?key=`); others get 401.
//!
//! Replies are scripted (see [`ReplyKind`]): a tool result is answered with closing text; a
//! request whose latest user text asks to "create file X" gets a call of the write tool the agent
//! offers (Claude `Write`, Codex `exec_command`, Gemini `write_file`, Pi `write`), or, when it
//! offers no tools (Aider), a whole-file edit; side requests get a title, a value matching their
//! JSON schema or a commit message; anything else gets [`HELLO_TEXT`]. Text replies end with
//! [`TURN_COMPLETE_MARKER`].
//!
//! Every request is logged, with credentials redacted, for tests to assert on.
//!
//! ```
//! use test_support::model::{FakeModel, ReplyKind};
//!
//! let server = FakeModel::start().unwrap();
//! let body = serde_json::json!({
//!     "model": "fake-model",
//!     "messages": [{"role": "user", "content": "Say hello"}],
//! });
//! let mut reply = ureq::post(&format!("{}/v1/chat/completions", server.base_url()))
//!     .header("Authorization", &format!("Bearer {}", server.api_key()))
//!     .send_json(&body)
//!     .unwrap();
//! let text = reply.body_mut().read_to_string().unwrap();
//! assert!(text.contains("FAKE_TURN_COMPLETE"));
//! let log = server.requests();
//! assert_eq!(log[0].reply, ReplyKind::Hello);
//! assert_eq!(log[0].header("authorization"), Some("[redacted]"));
//! ```

mod anthropic;
mod chat;
mod gemini;
mod responses;
mod schema;
mod script;
mod sse;

pub use script::{DEFAULT_FILE_CONTENT, HELLO_TEXT, Reply, ReplyKind, TURN_COMPLETE_MARKER};

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::server::Loopback;
use script::{ScriptOptions, Turn};

/// The model id the server lists and that agent configs should name.
pub const MODEL_ID: &str = "fake-model";

/// The default key the server accepts. Long enough for Claude Code, which remembers an approved
/// key by its last 20 characters.
pub const DEFAULT_API_KEY: &str = "fake-key-for-loopback-tests-0123456789";

/// Largest request body read; agents send the whole conversation, which stays far below this.
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Header names whose values never reach the log.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "cookie",
];

/// The wire format a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Api {
    /// Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`).
    AnthropicMessages,
    /// OpenAI Responses (`/v1/responses`).
    OpenAiResponses,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    ChatCompletions,
    /// Gemini (`/v1beta/models/...`).
    Gemini,
    /// A model list (`GET /v1/models`).
    Models,
    /// A `HEAD` connectivity probe (Claude Code sends `HEAD /`): 200, empty, no key needed.
    Probe,
    /// Anything else (answered 404).
    Unknown,
}

/// One request the server received, as tests see it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, with any `key=` query value replaced by `[redacted]`.
    pub path: String,
    /// Headers in arrival order, names lower-cased; credential values replaced by `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// The request body as text (lossy UTF-8).
    pub body: String,
    /// The wire format, from the path.
    pub api: Api,
    /// Whether the request carried the server's key.
    pub authorized: bool,
    /// Whether the reply was streamed as server-sent events.
    pub streamed: bool,
    /// The status code sent.
    pub status: u16,
    /// What the script answered.
    pub reply: ReplyKind,
    /// The tool names the request offered (empty for side requests and tool-less agents).
    pub tools: Vec<String>,
    /// The latest user text the script read.
    pub user_text: String,
}

impl LoggedRequest {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// How a [`FakeModel`] behaves.
#[derive(Debug, Clone)]
pub struct FakeModelOptions {
    api_key: String,
    reply_delay: Duration,
    escalate_commands: bool,
}

impl Default for FakeModelOptions {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            reply_delay: Duration::ZERO,
            escalate_commands: false,
        }
    }
}

impl FakeModelOptions {
    /// The key requests must carry (default [`DEFAULT_API_KEY`]).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Wait this long before answering each model turn, so an agent's busy state stays on
    /// screen long enough to be seen (default none).
    pub fn reply_delay(mut self, delay: Duration) -> Self {
        self.reply_delay = delay;
        self
    }

    /// Make Codex's `exec_command` call ask for escalated sandbox permissions, which makes Codex
    /// show its approval prompt (default off).
    pub fn escalate_commands(mut self, on: bool) -> Self {
        self.escalate_commands = on;
        self
    }
}

/// State shared by the accept thread and the request handlers.
struct Shared {
    options: FakeModelOptions,
    log: Mutex<Vec<LoggedRequest>>,
    next_id: AtomicU64,
}

/// A running fake model server; it stops when dropped.
pub struct FakeModel {
    shared: Arc<Shared>,
    server: Loopback,
}

impl std::fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeModel")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl FakeModel {
    /// Starts a server with the default options.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(FakeModelOptions::default())
    }

    /// Starts a server on `127.0.0.1:0` with `options`.
    pub fn start_with(options: FakeModelOptions) -> Result<Self, Error> {
        let mut server = Loopback::bind("fake model")?;
        let shared = Arc::new(Shared {
            options,
            log: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let handler_shared = shared.clone();
        server.serve(move |request| spawn_handler(request, &handler_shared))?;
        Ok(Self { shared, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash or `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The key requests must carry.
    pub fn api_key(&self) -> &str {
        &self.shared.options.api_key
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for a logged request that satisfies `pred`; returns the first one.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        pred: impl Fn(&LoggedRequest) -> bool,
    ) -> Option<LoggedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return Some(r);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Serves `request` on its own thread: a delayed or long stream must not hold up the agent's other
/// requests (titles, token counts) that arrive meanwhile.
fn spawn_handler(request: tiny_http::Request, shared: &Arc<Shared>) {
    let shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("fake-model-req".into())
        .spawn(move || handle(request, &shared));
    // Out of threads: the request is dropped and the client sees the connection close.
    drop(spawned);
}

/// An answer before it is written.
struct Answer {
    status: u16,
    body: String,
    sse: bool,
    reply: ReplyKind,
    delay: bool,
}

impl Answer {
    fn json(status: u16, body: &Value, reply: ReplyKind) -> Self {
        Self {
            status,
            body: body.to_string(),
            sse: false,
            reply,
            delay: false,
        }
    }

    fn turn(body: String, sse: bool, reply: ReplyKind) -> Self {
        Self {
            status: 200,
            body,
            sse,
            reply,
            delay: true,
        }
    }
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    let method = request.method().as_str().to_owned();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let authorized = is_authorized(&headers, query, &shared.options.api_key);
    let mut raw = Vec::new();
    // Only POSTs have bodies here. On a `Connection: upgrade` request (Codex's WebSocket attempt)
    // tiny_http hands over the raw socket as the body, and reading it would wait for ever.
    let read_ok = method != "POST"
        || request
            .as_reader()
            .take(MAX_BODY)
            .read_to_end(&mut raw)
            .is_ok();
    let body = String::from_utf8_lossy(&raw).into_owned();
    let api = api_of(&method, path);
    let parsed: Option<Value> = serde_json::from_str(&body).ok();

    let mut turn = Turn::default();
    let answer = if !read_ok {
        Answer::json(
            400,
            &error_body("cannot read the request body"),
            ReplyKind::Refused,
        )
    } else if api == Api::Unknown {
        Answer::json(
            404,
            &error_body(&format!("no route for {method} {path}")),
            ReplyKind::Refused,
        )
    } else if api == Api::Probe {
        Answer::json(200, &Value::Null, ReplyKind::Fixed)
    } else if !authorized {
        Answer::json(
            401,
            &error_body("invalid or missing api key"),
            ReplyKind::Refused,
        )
    } else if api == Api::Models {
        Answer::json(200, &models_body(), ReplyKind::Fixed)
    } else if let Some(body_json) = &parsed {
        let (a, t) = answer_turn(api, path, query, body_json, raw.len() as u64, shared);
        turn = t;
        a
    } else {
        Answer::json(
            400,
            &error_body("the request body is not json"),
            ReplyKind::Refused,
        )
    };

    if answer.delay && !shared.options.reply_delay.is_zero() {
        std::thread::sleep(shared.options.reply_delay);
    }
    let entry = LoggedRequest {
        method,
        path: redact_query(&url),
        headers: headers
            .into_iter()
            .map(|(n, v)| {
                let v = if SECRET_HEADERS.contains(&n.as_str()) {
                    "[redacted]".to_owned()
                } else {
                    v
                };
                (n, v)
            })
            .collect(),
        body,
        api,
        authorized,
        streamed: answer.sse,
        status: answer.status,
        reply: answer.reply.clone(),
        tools: turn.tools,
        user_text: turn.user_text,
    };
    // Logged before the reply is written, so a test that saw the reply also sees the entry.
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);

    let content_type = if answer.sse {
        "text/event-stream"
    } else {
        "application/json"
    };
    let bytes = answer.body.into_bytes();
    // Streams go without a length, so tiny_http sends them chunked as streaming servers do;
    // plain JSON carries a Content-Length.
    let length = (!answer.sse).then_some(bytes.len());
    let response = tiny_http::Response::new(
        tiny_http::StatusCode(answer.status),
        vec![
            header("Content-Type", content_type),
            header("Cache-Control", "no-cache"),
        ],
        std::io::Cursor::new(bytes),
        length,
        None,
    );
    // The client may have gone away; nothing to do about it here.
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header")
}

/// Runs the script for a model request and encodes its reply.
fn answer_turn(
    api: Api,
    path: &str,
    query: &str,
    body: &Value,
    body_len: u64,
    shared: &Shared,
) -> (Answer, Turn) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let tokens = (body_len / 4).max(1);
    let model = body["model"].as_str().unwrap_or(MODEL_ID).to_owned();
    let options = ScriptOptions {
        escalate_commands: shared.options.escalate_commands,
    };
    let stream = body["stream"].as_bool().unwrap_or(false);
    match api {
        Api::AnthropicMessages if path.ends_with("/count_tokens") => (
            Answer::json(200, &json!({"input_tokens": tokens}), ReplyKind::Fixed),
            Turn::default(),
        ),
        Api::AnthropicMessages => {
            let turn = anthropic::parse(body);
            let (reply, kind) = script::decide(&turn, &options, true);
            let answer = if stream {
                Answer::turn(anthropic::stream(&reply, &model, id, tokens), true, kind)
            } else {
                let mut a =
                    Answer::json(200, &anthropic::message(&reply, &model, id, tokens), kind);
                a.delay = true;
                a
            };
            (answer, turn)
        }
        Api::OpenAiResponses => {
            let turn = responses::parse(body);
            let (reply, kind) = script::decide(&turn, &options, false);
            let answer = if stream {
                Answer::turn(responses::stream(&reply, &model, id, tokens), true, kind)
            } else {
                let mut a = Answer::json(200, &responses::object(&reply, &model, id, tokens), kind);
                a.delay = true;
                a
            };
            (answer, turn)
        }
        Api::ChatCompletions => {
            let turn = chat::parse(body);
            let (reply, kind) = script::decide(&turn, &options, false);
            let answer = if stream {
                let usage = body["stream_options"]["include_usage"]
                    .as_bool()
                    .unwrap_or(false);
                Answer::turn(chat::stream(&reply, &model, id, tokens, usage), true, kind)
            } else {
                let mut a = Answer::json(200, &chat::completion(&reply, &model, id, tokens), kind);
                a.delay = true;
                a
            };
            (answer, turn)
        }
        Api::Gemini => {
            let model = path
                .rsplit('/')
                .next()
                .and_then(|m| m.split(':').next())
                .unwrap_or(MODEL_ID)
                .to_owned();
            if path.ends_with(":countTokens") {
                return (
                    Answer::json(200, &json!({"totalTokens": tokens}), ReplyKind::Fixed),
                    Turn::default(),
                );
            }
            let turn = gemini::parse(body);
            let (reply, kind) = script::decide(&turn, &options, false);
            let answer = if path.ends_with(":streamGenerateContent") {
                let sse = query.split('&').any(|kv| kv == "alt=sse");
                if sse {
                    Answer::turn(gemini::stream(&reply, &model, tokens), true, kind)
                } else {
                    // Without `alt=sse` the stream is one JSON array of responses.
                    let body = json!([gemini::generate(&reply, &model, tokens)]).to_string();
                    Answer::turn(body, false, kind)
                }
            } else {
                let mut a = Answer::json(200, &gemini::generate(&reply, &model, tokens), kind);
                a.delay = true;
                a
            };
            (answer, turn)
        }
        Api::Models | Api::Probe | Api::Unknown => {
            unreachable!("routed before the script runs")
        }
    }
}

/// Routes a request to its API by method and path. Paths are accepted with or without the `/v1`
/// prefix, since agents differ in whether their base URL includes it.
fn api_of(method: &str, path: &str) -> Api {
    let p = path.strip_prefix("/v1").unwrap_or(path);
    match (method, p) {
        ("HEAD", _) => Api::Probe,
        ("GET", "/models") | ("GET", "beta/models") => Api::Models,
        ("POST", "/messages" | "/messages/count_tokens") => Api::AnthropicMessages,
        ("POST", "/responses") => Api::OpenAiResponses,
        ("POST", "/chat/completions") => Api::ChatCompletions,
        ("POST", p)
            if p.starts_with("beta/models/")
                && [":streamGenerateContent", ":generateContent", ":countTokens"]
                    .iter()
                    .any(|s| p.ends_with(s)) =>
        {
            Api::Gemini
        }
        _ => Api::Unknown,
    }
}

/// Whether any credential the APIs use carries `key`.
fn is_authorized(headers: &[(String, String)], query: &str, key: &str) -> bool {
    let header_ok = headers.iter().any(|(n, v)| match n.as_str() {
        "authorization" => v.strip_prefix("Bearer ").is_some_and(|t| t.trim() == key),
        "x-api-key" | "x-goog-api-key" | "api-key" => v.trim() == key,
        _ => false,
    });
    header_ok
        || query
            .split('&')
            .any(|kv| kv.strip_prefix("key=") == Some(key))
}

/// The URL with any `key=` query value hidden.
fn redact_query(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| {
            if kv.starts_with("key=") {
                "key=[redacted]".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

fn error_body(message: &str) -> Value {
    json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
}

/// One list that satisfies the OpenAI (`data`), Anthropic (`data`, `has_more`) and Gemini
/// (`models`) model-list readers.
fn models_body() -> Value {
    json!({
        "object": "list",
        "data": [{
            "id": MODEL_ID,
            "object": "model",
            "type": "model",
            "created": 0,
            "created_at": "2026-01-01T00:00:00Z",
            "display_name": "Fake Model",
            "owned_by": "test-support"
        }],
        "has_more": false,
        "first_id": MODEL_ID,
        "last_id": MODEL_ID,
        "models": [{
            "name": format!("models/{MODEL_ID}"),
            "displayName": "Fake Model",
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_accept_paths_with_and_without_v1() {
        let cases = [
            ("GET", "/v1/models", Api::Models),
            ("GET", "/models", Api::Models),
            ("GET", "/v1beta/models", Api::Models),
            ("POST", "/v1/messages", Api::AnthropicMessages),
            ("POST", "/v1/messages/count_tokens", Api::AnthropicMessages),
            ("POST", "/v1/responses", Api::OpenAiResponses),
            ("GET", "/v1/responses", Api::Unknown),
            ("POST", "/chat/completions", Api::ChatCompletions),
            (
                "POST",
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                Api::Gemini,
            ),
            ("POST", "/v1beta/models/x:countTokens", Api::Gemini),
            ("POST", "/v1beta/models/x:embed", Api::Unknown),
            ("DELETE", "/v1/messages", Api::Unknown),
            ("HEAD", "/", Api::Probe),
        ];
        for (m, p, want) in cases {
            assert_eq!(api_of(m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn credentials_are_checked_in_every_place_apis_put_them() {
        let h = |n: &str, v: &str| vec![(n.to_owned(), v.to_owned())];
        assert!(is_authorized(&h("authorization", "Bearer k1"), "", "k1"));
        assert!(is_authorized(&h("x-api-key", "k1"), "", "k1"));
        assert!(is_authorized(&h("x-goog-api-key", "k1"), "", "k1"));
        assert!(is_authorized(&[], "alt=sse&key=k1", "k1"));
        assert!(!is_authorized(&h("authorization", "Bearer k2"), "", "k1"));
        assert!(!is_authorized(&h("authorization", "k1"), "", "k1"));
        assert!(!is_authorized(&[], "key=k10", "k1"));
    }

    #[test]
    fn query_keys_are_redacted() {
        assert_eq!(
            redact_query("/v1beta/models/m:countTokens?key=secret&x=1"),
            "/v1beta/models/m:countTokens?key=[redacted]&x=1"
        );
        assert_eq!(redact_query("/v1/models"), "/v1/models");
    }
}
