//! Model calls: an HTTP client (Anthropic Messages or any OpenAI-compatible chat endpoint) and the
//! JSON contracts of BEHAVIOR.md §10.6.
//!
//! A model answers in prose around a JSON object. The first balanced object in the reply is parsed
//! and validated against its contract; anything else is "no answer", which callers treat as the
//! safe outcome (escalate to a person), never as a guess.

use std::time::Duration;

use serde_json::Value;

use crate::settings::Secret;
use crate::{Error, Result};

/// Which model a call wants. Supervision uses the small one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSize {
    /// A fast, cheap text model (`TEXT_SMALL`).
    Small,
    /// A stronger model (`TEXT_LARGE`).
    Large,
}

/// The wire protocol of a model endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST <base>/v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `POST <base>/chat/completions` with a bearer token (OpenAI and compatible servers).
    OpenAi,
}

/// A model client over ureq. Built from settings; the key never appears in `Debug`, errors or
/// URLs.
#[derive(Debug)]
pub struct HttpModel {
    provider: Provider,
    base_url: String,
    small_model: String,
    large_model: String,
    key: Option<Secret>,
    agent: ureq::Agent,
}

impl HttpModel {
    /// Reads `ORCHESTRATOR_MODEL_PROVIDER` (`anthropic` | `openai`), `ORCHESTRATOR_MODEL_BASE_URL`
    /// (else `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`), `ORCHESTRATOR_SMALL_MODEL`,
    /// `ORCHESTRATOR_LARGE_MODEL` and the provider's API key. Without a provider choice, a set
    /// `ANTHROPIC_API_KEY` picks Anthropic, else `OPENAI_API_KEY` or `OPENAI_BASE_URL` picks OpenAI.
    /// Returns `None` when nothing configures a model.
    pub fn from_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let explicit_base = get("ORCHESTRATOR_MODEL_BASE_URL");
        let provider = match get("ORCHESTRATOR_MODEL_PROVIDER")
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("anthropic") => Provider::Anthropic,
            Some("openai") | Some("openai-compatible") => Provider::OpenAi,
            Some(other) => {
                return Err(Error::InvalidSetting {
                    name: "ORCHESTRATOR_MODEL_PROVIDER".into(),
                    reason: format!("unknown provider {other} (use anthropic or openai)"),
                });
            }
            None if get("ANTHROPIC_API_KEY").is_some() => Provider::Anthropic,
            None if get("OPENAI_API_KEY").is_some()
                || get("OPENAI_BASE_URL").is_some()
                || explicit_base.is_some() =>
            {
                Provider::OpenAi
            }
            None => return Ok(None),
        };
        let (base, key, small, large) = match provider {
            Provider::Anthropic => (
                explicit_base
                    .or_else(|| get("ANTHROPIC_BASE_URL"))
                    .unwrap_or_else(|| "https://api.anthropic.com".into()),
                get("ANTHROPIC_API_KEY"),
                "claude-haiku-4-5",
                "claude-sonnet-4-5",
            ),
            Provider::OpenAi => (
                explicit_base
                    .or_else(|| get("OPENAI_BASE_URL"))
                    .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                get("OPENAI_API_KEY"),
                "gpt-4o-mini",
                "gpt-4o",
            ),
        };
        Ok(Some(Self::new(
            provider,
            &base,
            key.map(Secret::new),
            &get("ORCHESTRATOR_SMALL_MODEL").unwrap_or_else(|| small.into()),
            &get("ORCHESTRATOR_LARGE_MODEL").unwrap_or_else(|| large.into()),
        )))
    }

    /// A client for one endpoint.
    pub fn new(
        provider: Provider,
        base_url: &str,
        key: Option<Secret>,
        small_model: &str,
        large_model: &str,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpModel {
            provider,
            base_url: base_url.trim_end_matches('/').to_string(),
            small_model: small_model.into(),
            large_model: large_model.into(),
            key,
            agent,
        }
    }

    /// The endpoint this client posts to.
    pub fn endpoint(&self) -> String {
        match self.provider {
            Provider::Anthropic => format!("{}/v1/messages", self.base_url),
            Provider::OpenAi => format!("{}/chat/completions", self.base_url),
        }
    }

    /// One completion: the prompt as a single user message, the reply's text.
    pub fn complete(&self, size: ModelSize, prompt: &str) -> Result<String> {
        let model = match size {
            ModelSize::Small => &self.small_model,
            ModelSize::Large => &self.large_model,
        };
        let endpoint = self.endpoint();
        let fail = |reason: String| Error::Model {
            endpoint: endpoint.clone(),
            reason,
        };
        let messages = serde_json::json!([{"role": "user", "content": prompt}]);
        let mut req = self
            .agent
            .post(&endpoint)
            .header("content-type", "application/json");
        let body = match self.provider {
            Provider::Anthropic => {
                req = req.header("anthropic-version", "2023-06-01");
                if let Some(k) = &self.key {
                    req = req.header("x-api-key", k.expose());
                }
                serde_json::json!({"model": model, "max_tokens": 1024, "messages": messages})
            }
            Provider::OpenAi => {
                if let Some(k) = &self.key {
                    req = req.header("authorization", format!("Bearer {}", k.expose()));
                }
                serde_json::json!({"model": model, "max_tokens": 1024, "messages": messages})
            }
        };
        let mut resp = req
            .send_json(&body)
            .map_err(|e| fail(redact(&e.to_string(), self.key.as_ref())))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| fail(format!("reading the body: {e}")))?;
        if !(200..300).contains(&status) {
            let excerpt: String = text.chars().take(200).collect();
            return Err(fail(format!(
                "status {status}: {}",
                redact(&excerpt, self.key.as_ref())
            )));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("response is not JSON: {e}")))?;
        let out = match self.provider {
            Provider::Anthropic => v["content"].as_array().map(|parts| {
                parts
                    .iter()
                    .filter(|p| p["type"] == "text")
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("")
            }),
            Provider::OpenAi => v["choices"][0]["message"]["content"]
                .as_str()
                .map(str::to_string),
        };
        out.ok_or_else(|| fail("response has no text".into()))
    }
}

fn redact(s: &str, key: Option<&Secret>) -> String {
    match key {
        Some(k) if !k.expose().is_empty() => s.replace(k.expose(), "<redacted>"),
        _ => s.to_string(),
    }
}

/// The first balanced `{…}` in `text`, honouring JSON strings and escapes, or `None`.
pub fn first_json_object(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(off) = text[start..].find('{') {
        let open = start + off;
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let candidate = &text[open..=i];
                        if serde_json::from_str::<Value>(candidate).is_ok() {
                            return Some(candidate);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
        start = open + 1;
    }
    None
}

/// A reply format a model call expects.
pub trait Contract: Sized {
    /// Validates a parsed object; the error says what is wrong.
    fn from_json(v: &Value) -> std::result::Result<Self, String>;
}

/// Parses the first balanced JSON object of a model reply and validates it.
pub fn parse_contract<T: Contract>(reply: &str) -> Result<T> {
    let obj = first_json_object(reply)
        .ok_or_else(|| Error::NoAnswer("no JSON object in the reply".into()))?;
    let v: Value = serde_json::from_str(obj).map_err(|e| Error::NoAnswer(e.to_string()))?;
    T::from_json(&v).map_err(Error::NoAnswer)
}

/// What a supervisor decides about a blocked prompt, a finished turn or an idle session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    /// Type a response (text or keys).
    Respond,
    /// The task is done: stop the session and report.
    Complete,
    /// Ask a person.
    Escalate,
    /// Do nothing.
    Ignore,
}

impl DecisionAction {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionAction::Respond => "respond",
            DecisionAction::Complete => "complete",
            DecisionAction::Escalate => "escalate",
            DecisionAction::Ignore => "ignore",
        }
    }
}

/// The decision contract: `{action, response?, useKeys?, keys?, reasoning, keyDecision?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: DecisionAction,
    /// Text to type (for `respond` without keys).
    pub response: Option<String>,
    /// Key names to press (for `respond` with `useKeys`).
    pub keys: Option<Vec<String>>,
    /// Why, in the model's words.
    pub reasoning: String,
    /// A short note other agents of the swarm should see (≤ 240 chars).
    pub key_decision: Option<String>,
}

impl Contract for Decision {
    fn from_json(v: &Value) -> std::result::Result<Self, String> {
        let action = match v["action"].as_str() {
            Some("respond") => DecisionAction::Respond,
            Some("complete") => DecisionAction::Complete,
            Some("escalate") => DecisionAction::Escalate,
            Some("ignore") => DecisionAction::Ignore,
            other => return Err(format!("unknown action {other:?}")),
        };
        let reasoning = v["reasoning"].as_str().unwrap_or("").trim().to_string();
        let response = v["response"]
            .as_str()
            .map(str::to_string)
            .filter(|s| !s.is_empty());
        let keys = match &v["keys"] {
            Value::Array(a) => Some(
                a.iter()
                    .map(|k| k.as_str().map(str::to_string).ok_or("keys must be strings"))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            ),
            Value::String(s) => Some(parse_key_list(s)),
            Value::Null => None,
            _ => return Err("keys must be a list of key names".into()),
        }
        .filter(|k| !k.is_empty());
        let use_keys = v["useKeys"].as_bool().unwrap_or(false) || response.is_none();
        let keys = if use_keys { keys } else { None };
        if action == DecisionAction::Respond && response.is_none() && keys.is_none() {
            return Err("respond needs response or keys".into());
        }
        let key_decision = v["keyDecision"]
            .as_str()
            .map(|s| s.chars().take(240).collect::<String>())
            .filter(|s| !s.trim().is_empty());
        Ok(Decision {
            action,
            response: if keys.is_some() { None } else { response },
            keys,
            reasoning,
            key_decision,
        })
    }
}

/// `keys:down,enter` or `down,enter` → `["down", "enter"]` (validation is the PTY layer's).
pub fn parse_key_list(s: &str) -> Vec<String> {
    let s = s.trim();
    let s = s.strip_prefix("keys:").unwrap_or(s);
    s.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// The stall classifier's contract: `{state, prompt?, suggestedResponse?}` (BEHAVIOR.md §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// `still_working`, `waiting_for_input`, `task_complete` or `error`.
    pub state: String,
    /// The prompt the agent waits on (or the error text).
    pub prompt: Option<String>,
    /// A suggested answer: text, or `keys:a,b`.
    pub suggested_response: Option<String>,
}

impl Contract for Classification {
    fn from_json(v: &Value) -> std::result::Result<Self, String> {
        let state = match v["state"].as_str() {
            Some("tool_running") | Some("still_working") => "still_working",
            Some("waiting_for_input") => "waiting_for_input",
            Some("task_complete") => "task_complete",
            Some("error") => "error",
            other => return Err(format!("unknown state {other:?}")),
        };
        Ok(Classification {
            state: state.into(),
            prompt: v["prompt"].as_str().map(str::to_string),
            suggested_response: v["suggestedResponse"].as_str().map(str::to_string),
        })
    }
}

/// The swarm brief: 3–10 bullet lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief(pub String);

/// Extracts a brief from a model reply: the bullet lines, if there are 3 to 10 of them.
pub fn parse_brief(reply: &str) -> Option<Brief> {
    let lines: Vec<&str> = reply
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- ") || l.starts_with("* ") || l.starts_with("• "))
        .collect();
    (3..=10)
        .contains(&lines.len())
        .then(|| Brief(lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_object_is_found_in_prose_and_braces_in_strings_do_not_confuse_it() {
        let table = [
            ("Sure! {\"a\": 1} and {\"b\": 2}", Some("{\"a\": 1}")),
            ("x {\"a\": \"}{\"} y", Some("{\"a\": \"}{\"}")),
            (
                "```json\n{\"a\": {\"b\": [1, {\"c\": 2}]}}\n```",
                Some("{\"a\": {\"b\": [1, {\"c\": 2}]}}"),
            ),
            ("{not json} then {\"ok\": true}", Some("{\"ok\": true}")),
            ("{\"esc\": \"a\\\"}\"}", Some("{\"esc\": \"a\\\"}\"}")),
            ("no object", None),
            ("{\"open\": ", None),
        ];
        for (input, want) in table {
            assert_eq!(first_json_object(input), want, "input {input:?}");
        }
    }

    #[test]
    fn decisions_are_validated() {
        let ok: Decision = parse_contract(
            r#"I think: {"action":"respond","response":"y","reasoning":"safe read"}"#,
        )
        .unwrap();
        assert_eq!(ok.action, DecisionAction::Respond);
        assert_eq!(ok.response.as_deref(), Some("y"));
        let keys: Decision = parse_contract(
            r#"{"action":"respond","useKeys":true,"keys":"keys:down,enter","reasoning":"menu"}"#,
        )
        .unwrap();
        assert_eq!(keys.keys.unwrap(), ["down", "enter"]);
        for bad in [
            r#"{"action":"respond","reasoning":"nothing to type"}"#,
            r#"{"action":"approve","reasoning":"x"}"#,
            "{\"action\": \"respond\", ",
            "just prose",
        ] {
            assert!(parse_contract::<Decision>(bad).is_err(), "{bad}");
        }
        let long = format!(
            r#"{{"action":"complete","reasoning":"done","keyDecision":"{}"}}"#,
            "k".repeat(300)
        );
        let d: Decision = parse_contract(&long).unwrap();
        assert_eq!(d.key_decision.unwrap().len(), 240);
    }

    #[test]
    fn classification_maps_tool_running_to_still_working() {
        let c: Classification = parse_contract(r#"{"state":"tool_running"}"#).unwrap();
        assert_eq!(c.state, "still_working");
        assert!(parse_contract::<Classification>(r#"{"state":"sleeping"}"#).is_err());
    }

    #[test]
    fn briefs_need_three_to_ten_bullets() {
        assert!(parse_brief("- a\n- b").is_none());
        assert_eq!(
            parse_brief("Plan:\n- a\n- b\n* c\n").unwrap().0,
            "- a\n- b\n* c"
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let m = HttpModel::new(
            Provider::OpenAi,
            "http://127.0.0.1:9/v1/",
            Some(Secret::new("sk-secret")),
            "s",
            "l",
        );
        assert_eq!(m.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
        assert!(!format!("{m:?}").contains("sk-secret"));
        let err = m.complete(ModelSize::Small, "hi").unwrap_err().to_string();
        assert!(!err.contains("sk-secret"), "{err}");
    }
}
