//! Example values for JSON schemas: structured-output side requests (titles, model routing) must
//! get an answer that validates against the schema they carry.

use serde_json::{Map, Value, json};

/// A value that satisfies `schema` for the keywords agents use in side requests: `type`,
/// `properties` (every property is filled, required or not), `items`, `enum`, `const`, `anyOf` /
/// `oneOf` (first branch), `minItems`, `minimum`. Gemini's upper-case type names are accepted.
pub fn example(schema: &Value) -> Value {
    example_at(schema, 0)
}

fn example_at(schema: &Value, depth: usize) -> Value {
    // Schemas in requests are shallow; the bound only protects against self-referencing input.
    if depth > 16 {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(v) = obj.get("const") {
        return v.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = obj
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return example_at(first, depth + 1);
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        // `["string", "null"]`: the first non-null type.
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if obj.contains_key("properties") => "object".to_owned(),
        _ => "string".to_owned(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), example_at(sub, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = obj.get("items").cloned().unwrap_or(json!({}));
            Value::Array((0..n).map(|_| example_at(&item, depth + 1)).collect())
        }
        "integer" => json!(obj.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(obj.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!("fake"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_schema_keywords() {
        let cases = [
            (json!({"type": "string"}), json!("fake")),
            (
                json!({"type": "STRING", "enum": ["flash", "pro"]}),
                json!("flash"),
            ),
            (json!({"const": 3}), json!(3)),
            (json!({"type": ["null", "integer"], "minimum": 2}), json!(2)),
            (
                json!({"type": "array", "items": {"type": "boolean"}, "minItems": 2}),
                json!([false, false]),
            ),
            (
                json!({"anyOf": [{"type": "number"}, {"type": "string"}]}),
                json!(0.0),
            ),
            (
                json!({"type": "object", "properties": {"reasoning": {"type": "string"}, "model_choice": {"type": "string", "enum": ["flash", "pro"]}}, "required": ["reasoning"]}),
                json!({"reasoning": "fake", "model_choice": "flash"}),
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(example(&schema), want, "for {schema}");
        }
    }
}
