//! The protocol's messages (PROTOCOL.md §7–8, §10.6, §11.3 and §12.5), typed in both
//! directions: [`Request`]s that clients send, [`Reply`]s that servers
//! answer with, and [`Push`]es on a subscription, each decoded from a line
//! and encoded to one in this module and nowhere else.
//!
//! Servers answer lookups and push records from stored canonical text, so
//! the encoders that take text ([`reply::found_line`], [`push::record_line`]
//! and friends) copy it without parsing; the typed `to_line` of a message
//! goes through those same encoders, so both give the same bytes. No code
//! outside this module looks at a message's `"type"`.

mod push;
mod reply;
mod request;
mod status;

pub use push::{cosignatures_line, head_line, heartbeat_line, record_line, Push};
pub use reply::{
    accepted_line, cosignatures_text, cosigned_line, found_line, names_line, not_found_line,
    subscribed_line, Reply,
};
pub use request::Request;
pub use status::{
    AuditState, AuditStatus, CosignStatus, HeadTiming, Mismatch, Runtime, ServerRole, Status,
    UpstreamStatus, WitnessStatus,
};

use crate::attest::AttestError;
use crate::cosign::CosignError;
use crate::head::HeadError;
use crate::merkle::ProofError;
use crate::record::RecordError;
use serde_json::{Map, Value};
use std::fmt;

/// The protocol version these messages speak (status's `protocol`).
pub const PROTOCOL: u64 = 2;

/// Most names a `names` reply lists (PROTOCOL.md §12.5): enough for the
/// names one service really has, few enough that a client can confirm
/// each with a lookup.
pub const MAX_REVERSE_NAMES: usize = 16;

/// Longest reply line a client reads: PROTOCOL.md §10.6 asks for at least
/// 32 KiB, since a `found` reply with a long proof can pass 16 KiB.
pub const MAX_REPLY_LINE: usize = 64 * 1024;

/// A request's id, echoed in its reply: an integer or a string, or null in
/// an error reply to a request that had none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Id {
    /// No usable id.
    #[default]
    Null,
    /// An integer id.
    Number(u64),
    /// A string id.
    Text(String),
}

impl Id {
    /// The id of a request, if it is an integer or a string.
    fn of_request(value: Option<&Value>) -> Option<Id> {
        match value? {
            Value::Number(n) => n.as_u64().map(Id::Number),
            Value::String(s) => Some(Id::Text(s.clone())),
            _ => None,
        }
    }

    /// The id of a reply: as a request's, or null.
    fn of_reply(value: Option<&Value>) -> Result<Id, DecodeError> {
        match value {
            None | Some(Value::Null) => Ok(Id::Null),
            other => Id::of_request(other).ok_or_else(|| {
                DecodeError::Shape("id must be an integer, a string or null".into())
            }),
        }
    }

    /// The id as JSON.
    pub fn to_value(&self) -> Value {
        match self {
            Id::Null => Value::Null,
            Id::Number(n) => Value::from(*n),
            Id::Text(s) => Value::from(s.as_str()),
        }
    }

    /// Appends the id as JSON to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Id::Null => out.extend_from_slice(b"null"),
            Id::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Id::Text(_) => out.extend_from_slice(
                serde_json::to_string(&self.to_value())
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        }
    }
}

impl From<u64> for Id {
    fn from(n: u64) -> Id {
        Id::Number(n)
    }
}

/// The protocol's error codes (PROTOCOL.md §8, §10.6).
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
    /// The serial is not above the live record's, or a transfer statement
    /// hands over a serial the name no longer has.
    StaleSerial,
    /// A transfer statement is malformed, forged or does not fit its record
    /// (§12.2).
    BadTransfer,
    /// A transfer statement is past its `expires`.
    TransferExpired,
    /// A transfer or release for a name its signer does not hold.
    NotOwner,
    /// The name already belongs to the transfer's target: the statement
    /// was used.
    TransferUsed,
    /// A release holds the name for less than the Quorum's cool-down.
    BadRelease,
    /// A `put` sent to a mirror.
    ReadOnly,
    /// A limit was hit; try again later.
    Busy,
    /// The server has no current head to answer with.
    NoHead,
    /// The server failed; the request may be retried.
    Internal,
}

/// Every code, in the order of [`Code`]: for parsing, and for counting by
/// code.
pub const CODES: [Code; 18] = [
    Code::BadJson,
    Code::TooLarge,
    Code::BadRequest,
    Code::BadRecord,
    Code::BadSignature,
    Code::InsufficientWork,
    Code::Expired,
    Code::NameTaken,
    Code::StaleSerial,
    Code::BadTransfer,
    Code::TransferExpired,
    Code::NotOwner,
    Code::TransferUsed,
    Code::BadRelease,
    Code::ReadOnly,
    Code::Busy,
    Code::NoHead,
    Code::Internal,
];

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
            Code::BadTransfer => "bad_transfer",
            Code::TransferExpired => "transfer_expired",
            Code::NotOwner => "not_owner",
            Code::TransferUsed => "transfer_used",
            Code::BadRelease => "bad_release",
            Code::ReadOnly => "read_only",
            Code::Busy => "busy",
            Code::NoHead => "no_head",
            Code::Internal => "internal",
        }
    }

    /// The code spelled `text` on the wire.
    pub fn parse(text: &str) -> Option<Code> {
        CODES.into_iter().find(|c| c.as_str() == text)
    }

    /// Maps a verification failure's code (from `RecordError::code` and
    /// friends) back to a [`Code`].
    pub fn from_verify(code: &str) -> Code {
        match code {
            "bad_signature" => Code::BadSignature,
            "insufficient_work" => Code::InsufficientWork,
            "expired" => Code::Expired,
            "bad_transfer" => Code::BadTransfer,
            _ => Code::BadRecord,
        }
    }

    /// True for failures a client may retry elsewhere or later, rather than
    /// a refusal of what it sent.
    pub fn is_transient(self) -> bool {
        matches!(self, Code::Busy | Code::NoHead | Code::Internal)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed request: the code, a message a person can act on, and the
/// request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The request's id, echoed back.
    pub id: Id,
    /// What kind of failure.
    pub code: Code,
    /// What was wrong, in words.
    pub message: String,
}

impl WireError {
    /// Builds an error for request `id`.
    pub fn new(id: &Id, code: Code, message: impl Into<String>) -> WireError {
        WireError {
            id: id.clone(),
            code,
            message: message.into(),
        }
    }

    /// The `error` reply line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        line(&serde_json::json!({
            "type": "error",
            "id": self.id.to_value(),
            "code": self.code.as_str(),
            "message": self.message,
        }))
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

impl std::error::Error for WireError {}

/// Why a line from a server could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a JSON object.
    Json(String),
    /// A field missing, extra or of the wrong type, or an unknown type.
    Shape(String),
    /// The record in it breaks a rule.
    Record(RecordError),
    /// The attestation in it is malformed.
    Attestation(AttestError),
    /// The head in it is malformed.
    Head(HeadError),
    /// The proof in it is malformed.
    Proof(ProofError),
    /// A cosignature in it is malformed.
    Cosignature(CosignError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(why) => write!(f, "not a JSON object: {why}"),
            DecodeError::Shape(why) => write!(f, "malformed message: {why}"),
            DecodeError::Record(e) => write!(f, "bad record: {e}"),
            DecodeError::Attestation(e) => write!(f, "bad attestation: {e}"),
            DecodeError::Head(e) => write!(f, "bad head: {e}"),
            DecodeError::Proof(e) => write!(f, "bad proof: {e}"),
            DecodeError::Cosignature(e) => write!(f, "bad cosignatures: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// `value` as one JSON line, newline included.
fn line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A line parsed as a JSON object, with its `type`.
fn object(line: &[u8]) -> Result<(Map<String, Value>, String), DecodeError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| DecodeError::Json(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(DecodeError::Json("not an object".into()));
    };
    let kind = map
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError::Shape("no \"type\" string".into()))?
        .to_owned();
    Ok((map, kind))
}

/// Field `key` of `map`, or a shape error naming it.
fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a Value, DecodeError> {
    map.get(key)
        .ok_or_else(|| DecodeError::Shape(format!("no {key:?}")))
}

/// Integer field `key` of `map`.
fn uint(map: &Map<String, Value>, key: &str) -> Result<u64, DecodeError> {
    field(map, key)?
        .as_u64()
        .ok_or_else(|| DecodeError::Shape(format!("{key:?} must be a non-negative integer")))
}

/// String field `key` of `map`.
fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, DecodeError> {
    field(map, key)?
        .as_str()
        .ok_or_else(|| DecodeError::Shape(format!("{key:?} must be a string")))
}

/// An `error` message's parts.
fn error_of(map: &Map<String, Value>) -> Result<WireError, DecodeError> {
    let code = text(map, "code")?;
    Ok(WireError {
        id: Id::of_reply(map.get("id"))?,
        code: Code::parse(code)
            .ok_or_else(|| DecodeError::Shape(format!("unknown error code {code:?}")))?,
        message: text(map, "message")?.to_owned(),
    })
}

#[cfg(test)]
mod tests;
