//! Canonical JSON (PROTOCOL.md §3): the exact bytes that are signed and hashed.
//!
//! One object, keys in ascending byte order at every level, no whitespace,
//! integers in plain decimal, strings escaped only where JSON requires. This
//! module does not decide what may be inside a record (printable ASCII only);
//! `record` and `attest` check that before anything is signed or verified.

use serde_json::{Map, Value};

/// Every integer in the protocol is below this (2^53): the largest range
/// any JSON reader (an IEEE double) holds exactly.
pub const INT_LIMIT: u64 = 1 << 53;

/// Returns the canonical JSON text of `value`.
///
/// Floats are written as serde_json writes them; records and attestations
/// never hold one, because their parsers accept only integers.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

/// Writes a JSON string with the minimal escaping JSON requires: also how
/// the store spells back the strings of a packed text.
pub fn write_string(text: &str, out: &mut String) {
    out.push('"');
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
        out.push('"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when every character of `text` is printable ASCII (0x20–0x7E), the
/// only characters a record or attestation may hold.
pub fn is_printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// What a signature over the object `unsigned` signs: the `context` line
/// that keeps one kind of signed object from passing for another, then
/// the object's canonical JSON. Every signed object of the protocol is
/// signed so.
pub fn signed_bytes(context: &str, unsigned: Map<String, Value>) -> Vec<u8> {
    let body = to_string(&Value::Object(unsigned));
    [context.as_bytes(), body.as_bytes()].concat()
}

/// The object `unsigned` with its signature added as `sig` (Base64): a
/// signed object as it is sent and stored.
pub fn with_sig(mut unsigned: Map<String, Value>, sig: String) -> Value {
    unsigned.insert("sig".into(), sig.into());
    Value::Object(unsigned)
}

/// True when `value` holds a number that is not an integer anywhere: the
/// one kind of value whose canonical JSON serde_json may read back as a
/// neighbouring number, so the checks that canonical JSON round-trips
/// leave such values out (the protocol never uses one).
pub fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_level_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"z": "x", "B": [1, 2]}, "A": "q\"\\"});
        assert_eq!(
            to_string(&value),
            r#"{"A":"q\"\\","a":{"B":[1,2],"z":"x"},"b":1}"#
        );
    }

    #[test]
    fn escapes_only_what_json_requires() {
        assert_eq!(to_string(&json!("a/b\u{1}")), r#""a/b\u0001""#);
        assert!(is_printable_ascii(" ~azAZ09"));
        assert!(!is_printable_ascii("\u{7f}"));
        assert!(!is_printable_ascii("é"));
    }
}
