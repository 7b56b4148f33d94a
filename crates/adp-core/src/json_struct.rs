//! MCP's JSON and protobuf's `google.protobuf.Struct`, both ways (the gateway's arguments
//! in, content and structured results out).

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PbValue};
use serde_json::{Map, Number, Value};

/// `None` unless `json` is an object (a Struct is always one).
pub fn struct_from_json(json: &Value) -> Option<Struct> {
    match json {
        Value::Object(map) => Some(Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), value_from_json(v)))
                .collect(),
        }),
        _ => None,
    }
}

fn value_from_json(json: &Value) -> PbValue {
    let kind = match json {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(value_from_json).collect(),
        }),
        Value::Object(_) => Kind::StructValue(struct_from_json(json).unwrap_or_default()),
    };
    PbValue { kind: Some(kind) }
}

pub fn struct_to_json(pb: Struct) -> Map<String, Value> {
    pb.fields
        .into_iter()
        .map(|(k, v)| (k, value_to_json(v)))
        .collect()
}

fn value_to_json(pb: PbValue) -> Value {
    match pb.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        // whole numbers go back as integers: tools' schemas often say "integer"
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Value::Number(Number::from(n as i64))
        }
        Some(Kind::NumberValue(n)) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(struct_to_json(s)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_mcp_shaped_json() {
        let original = json!({"type": "text", "text": "hi", "n": 3, "ratio": 0.5,
            "list": [1, "two", null, {"deep": true}]});
        let back = Value::Object(struct_to_json(struct_from_json(&original).unwrap()));
        assert_eq!(back, original);
        assert!(struct_from_json(&json!([1])).is_none());
    }
}
