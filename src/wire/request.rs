//! Requests (PROTOCOL.md §8): what a server parses from each line it
//! reads, and what clients send.

use super::{line, Code, Id, WireError};
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::name::{LookupName, NameError};
use crate::onion::OnionAddress;
use serde_json::{json, Value};

/// A lookup as clients send it (`{"type":"lookup","id":N,"name":"..."}`,
/// the name without escapes), read without building a JSON value: the
/// fast path of [`Request::parse`], the request a mirror answers most.
/// Anything else, valid or not, takes the general path, which alone
/// decides the errors.
#[derive(serde::Deserialize)]
struct PlainLookup<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: u64,
    name: &'a str,
}

impl PlainLookup<'_> {
    /// The lookup `line` holds, when it is one in the plain form with a
    /// valid name.
    fn parse(line: &[u8]) -> Option<Request> {
        let plain: PlainLookup = serde_json::from_slice(line).ok()?;
        if plain.kind != "lookup" {
            return None;
        }
        let name = LookupName::from_user(plain.name).ok()?;
        Some(Request::Lookup {
            id: Id::Number(plain.id),
            name,
        })
    }
}

/// A parsed request.
// A message lives for one exchange; boxing the head would only add an
// allocation to every cosignature.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Submit a record (to the Quorum).
    Put {
        /// The request id.
        id: Id,
        /// The record, still as JSON: the verifier parses it.
        record: Value,
    },
    /// Ask for the live record of a name.
    Lookup {
        /// The request id.
        id: Id,
        /// The name asked for.
        name: LookupName,
    },
    /// Ask which registered names point at an onion (§12.5): a hint the
    /// client confirms with lookups.
    Reverse {
        /// The request id.
        id: Id,
        /// The address asked about.
        onion: OnionAddress,
    },
    /// Become a subscriber from seq `from`.
    Subscribe {
        /// The request id.
        id: Id,
        /// First seq wanted.
        from: u64,
    },
    /// A witness's cosignature of a head, to be held and passed on
    /// (§11.3).
    Cosign {
        /// The request id.
        id: Id,
        /// The head cosigned.
        head: SignedHead,
        /// The cosignature.
        cosignature: Cosignature,
    },
    /// Ask for the server's status.
    Status {
        /// The request id.
        id: Id,
    },
}

impl Request {
    /// Parses one request line (without its newline); a failure carries
    /// the protocol's error code and the request's id when it had one.
    pub fn parse(line: &[u8]) -> Result<Request, WireError> {
        match PlainLookup::parse(line) {
            Some(lookup) => Ok(lookup),
            None => Request::parse_general(line),
        }
    }

    /// [`Request::parse`] of any request, through a JSON value.
    pub(super) fn parse_general(line: &[u8]) -> Result<Request, WireError> {
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            WireError::new(
                &Id::Null,
                Code::BadJson,
                format!("not valid UTF-8 JSON: {e}"),
            )
        })?;
        let object = value.as_object().ok_or_else(|| {
            WireError::new(
                &Id::Null,
                Code::BadRequest,
                "a request must be a JSON object",
            )
        })?;
        let Some(id) = Id::of_request(object.get("id")) else {
            return Err(WireError::new(
                &Id::Null,
                Code::BadRequest,
                "a request needs an \"id\" that is an integer or a string",
            ));
        };
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
            Some("reverse") => {
                let text = object
                    .get("onion")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("reverse needs an \"onion\" string"))?;
                let onion =
                    OnionAddress::parse(text).map_err(|e| bad(&format!("onion {text:?}: {e}")))?;
                Ok(Request::Reverse { id, onion })
            }
            Some("subscribe") => {
                let from = object
                    .get("from")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("subscribe needs \"from\", a non-negative integer"))?;
                Ok(Request::Subscribe { id, from })
            }
            Some("cosign") => {
                let head = object
                    .get("head")
                    .ok_or_else(|| bad("cosign needs a \"head\""))
                    .and_then(|v| {
                        SignedHead::from_value(v).map_err(|e| bad(&format!("cosign: {e}")))
                    })?;
                let cosignature = object
                    .get("cosignature")
                    .ok_or_else(|| bad("cosign needs a \"cosignature\""))
                    .and_then(|v| {
                        Cosignature::from_value(v).map_err(|e| bad(&format!("cosign: {e}")))
                    })?;
                Ok(Request::Cosign {
                    id,
                    head,
                    cosignature,
                })
            }
            Some("status") => Ok(Request::Status { id }),
            Some(other) => Err(bad(&format!(
                "unknown type {other:?}; expected put, lookup, reverse, subscribe, cosign or status"
            ))),
            None => Err(bad("a request needs a \"type\" string")),
        }
    }

    /// The request as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        line(&match self {
            Request::Put { id, record } => {
                json!({"type": "put", "id": id.to_value(), "record": record})
            }
            Request::Lookup { id, name } => {
                json!({"type": "lookup", "id": id.to_value(), "name": name.as_str()})
            }
            Request::Reverse { id, onion } => {
                json!({"type": "reverse", "id": id.to_value(), "onion": onion.to_string()})
            }
            Request::Subscribe { id, from } => {
                json!({"type": "subscribe", "id": id.to_value(), "from": from})
            }
            Request::Cosign {
                id,
                head,
                cosignature,
            } => json!({
                "type": "cosign",
                "id": id.to_value(),
                "head": head.to_value(),
                "cosignature": cosignature.to_value(),
            }),
            Request::Status { id } => json!({"type": "status", "id": id.to_value()}),
        })
    }
}
