//! Protocol messages (protocol.md §7–8): parsing request lines and writing
//! reply lines.
//!
//! A server reads one line, turns it into a [`Request`] or a [`WireError`]
//! carrying the protocol's error code, and writes replies built here. Reply
//! lines that carry stored records are assembled from the stored canonical
//! text, so answering a lookup parses no JSON.

use crate::name::{LookupName, NameError};
use serde_json::Value;
use std::fmt;

/// The protocol's error codes (protocol.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The line is not UTF-8 JSON.
    BadJson,
    /// The line is longer than the server's limit.
    TooLarge,
    /// Unknown type, missing or ill-typed field.
    BadRequest,
    /// The record breaks a rule of §4.
    BadRecord,
    /// A signature does not verify.
    BadSignature,
    /// Not enough proof of work.
    InsufficientWork,
    /// The record has expired.
    Expired,
    /// Another key holds the name.
    NameTaken,
    /// The serial is not above the live record's.
    StaleSerial,
    /// No live record for the name.
    NotFound,
    /// A `put` sent to a mirror.
    ReadOnly,
    /// A limit was hit; try again later.
    Busy,
    /// The server failed; the request may be retried.
    Internal,
}

impl Code {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadJson => "bad_json",
            Code::TooLarge => "too_large",
            Code::BadRequest => "bad_request",
            Code::BadRecord => "bad_record",
            Code::BadSignature => "bad_signature",
            Code::InsufficientWork => "insufficient_work",
            Code::Expired => "expired",
            Code::NameTaken => "name_taken",
            Code::StaleSerial => "stale_serial",
            Code::NotFound => "not_found",
            Code::ReadOnly => "read_only",
            Code::Busy => "busy",
            Code::Internal => "internal",
        }
    }

    /// Maps a verification failure's code (from `RecordError::code` and
    /// friends) back to a [`Code`].
    pub fn from_verify(code: &str) -> Code {
        match code {
            "bad_signature" => Code::BadSignature,
            "insufficient_work" => Code::InsufficientWork,
            "expired" => Code::Expired,
            _ => Code::BadRecord,
        }
    }
}

/// A failed request: the code, a message a person can act on, and the
/// request's `id` (JSON `null` when it had none).
#[derive(Debug, Clone)]
pub struct WireError {
    /// The request's id, echoed back.
    pub id: Value,
    /// What kind of failure.
    pub code: Code,
    /// What was wrong, in words.
    pub message: String,
}

impl WireError {
    /// Builds an error for request `id`.
    pub fn new(id: &Value, code: Code, message: impl Into<String>) -> WireError {
        WireError {
            id: id.clone(),
            code,
            message: message.into(),
        }
    }

    /// The `error` reply line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "type": "error",
            "id": self.id,
            "code": self.code.as_str(),
            "message": self.message,
        });
        line(&value)
    }

    /// True for failures after which the connection is closed (§7: a line
    /// the server cannot parse or that is too long).
    pub fn closes_connection(&self) -> bool {
        matches!(self.code, Code::BadJson | Code::TooLarge)
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// A parsed request.
#[derive(Debug, Clone)]
pub enum Request {
    /// Submit a record (to the Quorum).
    Put {
        /// The request id.
        id: Value,
        /// The record, still as JSON: the verifier parses it.
        record: Value,
    },
    /// Ask for the live record of a name.
    Lookup {
        /// The request id.
        id: Value,
        /// The name asked for.
        name: LookupName,
    },
    /// Become a subscriber from seq `from`.
    Subscribe {
        /// The request id.
        id: Value,
        /// First seq wanted.
        from: u64,
    },
    /// Ask for the server's status.
    Status {
        /// The request id.
        id: Value,
    },
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Request, WireError> {
        let null = Value::Null;
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            WireError::new(&null, Code::BadJson, format!("not valid UTF-8 JSON: {e}"))
        })?;
        let object = value.as_object().ok_or_else(|| {
            WireError::new(&null, Code::BadRequest, "a request must be a JSON object")
        })?;
        let id = object.get("id").cloned().unwrap_or(Value::Null);
        if !(id.is_u64() || id.is_string()) {
            return Err(WireError::new(
                &Value::Null,
                Code::BadRequest,
                "a request needs an \"id\" that is an integer or a string",
            ));
        }
        let bad = |message: &str| WireError::new(&id, Code::BadRequest, message);
        match object.get("type").and_then(Value::as_str) {
            Some("put") => Ok(Request::Put {
                record: object
                    .get("record")
                    .cloned()
                    .ok_or_else(|| bad("put needs a \"record\""))?,
                id,
            }),
            Some("lookup") => {
                let text = object
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("lookup needs a \"name\" string"))?;
                let name = LookupName::from_user(text)
                    .map_err(|e: NameError| bad(&format!("name {text:?}: {e}")))?;
                Ok(Request::Lookup { id, name })
            }
            Some("subscribe") => {
                let from = object
                    .get("from")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("subscribe needs \"from\", a non-negative integer"))?;
                Ok(Request::Subscribe { id, from })
            }
            Some("status") => Ok(Request::Status { id }),
            Some(other) => Err(bad(&format!(
                "unknown type {other:?}; expected put, lookup, subscribe or status"
            ))),
            None => Err(bad("a request needs a \"type\" string")),
        }
    }
}

/// `value` as one JSON line, newline included.
pub fn line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Assembles `{"type":TYPE,<head>,"record":R,"attestation":A}\n` from stored
/// canonical text, where `head` is the already-encoded middle field.
fn record_line(kind: &str, head: &str, record: &str, attestation: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + attestation.len() + 64);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(b",\"record\":");
    out.extend_from_slice(record.as_bytes());
    out.extend_from_slice(b",\"attestation\":");
    out.extend_from_slice(attestation.as_bytes());
    out.extend_from_slice(b"}\n");
    out
}

/// The `found` reply to a lookup.
pub fn found_line(id: &Value, record: &str, attestation: &str) -> Vec<u8> {
    let head = format!("\"id\":{}", serde_json::to_string(id).unwrap_or_default());
    record_line("found", &head, record, attestation)
}

/// A `record` push to a subscriber.
pub fn push_line(seq: u64, record: &str, attestation: &str) -> Vec<u8> {
    record_line("record", &format!("\"seq\":{seq}"), record, attestation)
}

/// The `accepted` reply to a put.
pub fn accepted_line(id: &Value, attestation: &str) -> Vec<u8> {
    let mut out = format!(
        "{{\"type\":\"accepted\",\"id\":{},\"attestation\":",
        serde_json::to_string(id).unwrap_or_default()
    )
    .into_bytes();
    out.extend_from_slice(attestation.as_bytes());
    out.extend_from_slice(b"}\n");
    out
}

/// The `subscribed` reply.
pub fn subscribed_line(id: &Value, head: u64) -> Vec<u8> {
    line(&serde_json::json!({"type": "subscribed", "id": id, "head": head}))
}

/// A heartbeat to a quiet subscriber.
pub fn heartbeat_line(head: u64) -> Vec<u8> {
    line(&serde_json::json!({"type": "heartbeat", "head": head}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(line: &str) -> Code {
        Request::parse(line.as_bytes()).unwrap_err().code
    }

    #[test]
    fn classifies_bad_lines() {
        assert_eq!(code_of("{"), Code::BadJson);
        assert_eq!(code_of("\u{ff}"), Code::BadJson);
        assert_eq!(code_of("[1]"), Code::BadRequest);
        assert_eq!(code_of(r#"{"type":"dance","id":1}"#), Code::BadRequest);
        assert_eq!(code_of(r#"{"type":"lookup","id":1}"#), Code::BadRequest);
        assert_eq!(
            code_of(r#"{"type":"lookup","id":1.5,"name":"a.tor"}"#),
            Code::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"subscribe","id":"x","from":-1}"#),
            Code::BadRequest
        );
    }

    #[test]
    fn echoes_ids_and_builds_lines() {
        let err = Request::parse(br#"{"type":"nope","id":"abc"}"#).unwrap_err();
        assert_eq!(err.id, Value::from("abc"));
        let reply: Value = serde_json::from_slice(&err.to_line()).unwrap();
        assert_eq!(reply["code"], "bad_request");
        let found: Value =
            serde_json::from_slice(&found_line(&7.into(), "{}", "{\"a\":1}")).unwrap();
        assert_eq!(
            found,
            serde_json::json!({"type":"found","id":7,"record":{},"attestation":{"a":1}})
        );
        match Request::parse(br#"{"type":"lookup","id":2,"name":"WWW.Example.tor"}"#).unwrap() {
            Request::Lookup { name, .. } => assert_eq!(name.as_str(), "www.example.tor"),
            other => panic!("{other:?}"),
        }
    }
}
