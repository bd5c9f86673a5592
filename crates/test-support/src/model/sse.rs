//! Server-sent events framing and small helpers shared by the wire formats.

use serde_json::Value;

/// Builds an event stream body.
#[derive(Debug, Default)]
pub(crate) struct Sse {
    body: String,
}

impl Sse {
    /// Adds `event: <name>` + `data: <json>`.
    pub fn event(&mut self, name: &str, data: &Value) {
        self.body.push_str("event: ");
        self.body.push_str(name);
        self.body.push('\n');
        self.data(data);
    }

    /// Adds an unnamed `data: <json>` event.
    pub fn data(&mut self, data: &Value) {
        self.raw_data(&data.to_string());
    }

    /// Adds `data: <text>` verbatim (e.g. `[DONE]`).
    pub fn raw_data(&mut self, text: &str) {
        self.body.push_str("data: ");
        self.body.push_str(text);
        self.body.push_str("\n\n");
    }

    /// The finished body.
    pub fn finish(self) -> String {
        self.body
    }
}

/// Splits reply text into a few deltas, as a model streams it; words stay whole.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(' ') {
        if i - start >= 16 {
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    if start < text.len() || out.is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// The names of the tools a request offers (`tools[].name`).
pub(crate) fn tool_names(tools: &Value) -> Vec<String> {
    tools
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// The text of a content value in any of the shapes the APIs use: a string, an array of parts
/// with `text`, or an object with `parts`. Parts are joined by newlines.
pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(text_of)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(o) => {
            if let Some(t) = o.get("text").and_then(Value::as_str) {
                t.to_owned()
            } else if let Some(parts) = o.get("parts") {
                text_of(parts)
            } else {
                String::new()
            }
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_rejoin_to_the_text() {
        for text in ["", "short", "Hello from the fake model. FAKE_TURN_COMPLETE"] {
            let p = pieces(text);
            assert!(!p.is_empty());
            assert_eq!(p.concat(), text);
        }
        assert!(pieces("Hello from the fake model. FAKE_TURN_COMPLETE").len() > 1);
    }

    #[test]
    fn text_is_read_from_every_content_shape() {
        let v = json!([{"type": "text", "text": "a"}, {"type": "tool_result"}, {"parts": [{"text": "b"}]}, "c"]);
        assert_eq!(text_of(&v), "a\nb\nc");
    }

    #[test]
    fn events_are_framed() {
        let mut s = Sse::default();
        s.event("x", &json!({"a": 1}));
        s.raw_data("[DONE]");
        assert_eq!(s.finish(), "event: x\ndata: {\"a\":1}\n\ndata: [DONE]\n\n");
    }
}
