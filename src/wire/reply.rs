//! Replies (PROTOCOL.md §8, §10.6): decoded by clients, encoded by
//! servers, the latter straight from stored canonical text.

use super::status::Status;
use super::{error_of, field, object, text, uint, DecodeError, Id, WireError, MAX_REVERSE_NAMES};
use crate::attest::Attestation;
use crate::canonical;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::merkle::Proof;
use crate::name::RegisteredName;
use crate::onion::OnionAddress;
use crate::record::Record;
use serde_json::{Map, Value};

/// A server's reply to one request.
// A message lives for one exchange; boxing the record would only add an
// allocation to every answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A put was accepted (or was already live).
    Accepted {
        /// The request id.
        id: Id,
        /// The Quorum's attestation.
        attestation: Attestation,
    },
    /// A lookup's name has an entry.
    Found {
        /// The request id.
        id: Id,
        /// The record of the registered name.
        record: Record,
        /// Its attestation.
        attestation: Attestation,
        /// The head the answer is given against.
        head: SignedHead,
        /// The presence proof against the head's root.
        proof: Proof,
        /// Witnesses' cosignatures of the head (§11); absent on the wire
        /// when empty.
        cosignatures: Vec<Cosignature>,
    },
    /// A lookup's name has no entry.
    NotFound {
        /// The request id.
        id: Id,
        /// The head the answer is given against.
        head: SignedHead,
        /// The absence proof against the head's root.
        proof: Proof,
        /// Witnesses' cosignatures of the head (§11); absent on the wire
        /// when empty.
        cosignatures: Vec<Cosignature>,
    },
    /// The names that point at an onion, as the server's current head has
    /// them (§12.5): a hint, each name to be confirmed with a lookup.
    Names {
        /// The request id.
        id: Id,
        /// The address asked about, echoed.
        onion: OnionAddress,
        /// Registered names, strictly ascending, at most
        /// [`MAX_REVERSE_NAMES`].
        names: Vec<RegisteredName>,
        /// True when more names point at the onion than those listed.
        more: bool,
    },
    /// A `cosign` was taken (§11.3).
    Cosigned {
        /// The request id.
        id: Id,
        /// Valid cosignatures by distinct trusted witnesses the server now
        /// holds for that head.
        count: u64,
    },
    /// The connection is now a subscription.
    Subscribed {
        /// The request id.
        id: Id,
        /// The highest seq the server has applied.
        seq: u64,
    },
    /// The server's status.
    Status {
        /// The request id.
        id: Id,
        /// What it reports.
        status: Box<Status>,
    },
    /// The request failed.
    Error(WireError),
}

impl Reply {
    /// Parses one reply line.
    pub fn parse(line: &[u8]) -> Result<Reply, DecodeError> {
        let (map, kind) = object(line)?;
        let id = || Id::of_reply(map.get("id"));
        match kind.as_str() {
            "accepted" => Ok(Reply::Accepted {
                id: id()?,
                attestation: attestation(&map)?,
            }),
            "found" => Ok(Reply::Found {
                id: id()?,
                record: Record::from_value(field(&map, "record")?).map_err(DecodeError::Record)?,
                attestation: attestation(&map)?,
                head: head(&map)?,
                proof: proof(&map)?,
                cosignatures: cosignatures(&map)?,
            }),
            "not_found" => Ok(Reply::NotFound {
                id: id()?,
                head: head(&map)?,
                proof: proof(&map)?,
                cosignatures: cosignatures(&map)?,
            }),
            "names" => Ok(Reply::Names {
                id: id()?,
                onion: onion(&map)?,
                names: names(&map)?,
                more: flag(&map, "more")?,
            }),
            "cosigned" => Ok(Reply::Cosigned {
                id: id()?,
                count: uint(&map, "count")?,
            }),
            "subscribed" => Ok(Reply::Subscribed {
                id: id()?,
                seq: uint(&map, "head")?,
            }),
            "status" => Ok(Reply::Status {
                id: id()?,
                status: Box::new(Status::from_map(&map)?),
            }),
            "error" => Ok(Reply::Error(error_of(&map)?)),
            other => Err(DecodeError::Shape(format!("unknown reply type {other:?}"))),
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        match self {
            Reply::Accepted { id, attestation } => accepted_line(id, &att_text(attestation)),
            Reply::Found {
                id,
                record,
                attestation,
                head,
                proof,
                cosignatures,
            } => found_line(
                id,
                &record.canonical(),
                &att_text(attestation),
                &head.canonical(),
                proof,
                &cosignatures_text(cosignatures),
            ),
            Reply::NotFound {
                id,
                head,
                proof,
                cosignatures,
            } => not_found_line(
                id,
                &head.canonical(),
                proof,
                &cosignatures_text(cosignatures),
            ),
            Reply::Names {
                id,
                onion,
                names,
                more,
            } => names_line(id, onion, names, *more),
            Reply::Cosigned { id, count } => cosigned_line(id, *count),
            Reply::Subscribed { id, seq } => subscribed_line(id, *seq),
            Reply::Status { id, status } => status.to_line(id),
            Reply::Error(error) => error.to_line(),
        }
    }

    /// The reply's type as the protocol spells it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Accepted { .. } => "accepted",
            Reply::Found { .. } => "found",
            Reply::NotFound { .. } => "not_found",
            Reply::Names { .. } => "names",
            Reply::Cosigned { .. } => "cosigned",
            Reply::Subscribed { .. } => "subscribed",
            Reply::Status { .. } => "status",
            Reply::Error(_) => "error",
        }
    }
}

impl std::fmt::Display for Reply {
    /// The reply's line, for messages and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.to_line()).trim_end())
    }
}

/// The `attestation` field.
fn attestation(map: &Map<String, Value>) -> Result<Attestation, DecodeError> {
    Attestation::from_value(field(map, "attestation")?).map_err(DecodeError::Attestation)
}

/// The `head` field.
fn head(map: &Map<String, Value>) -> Result<SignedHead, DecodeError> {
    SignedHead::from_value(field(map, "head")?).map_err(DecodeError::Head)
}

/// The `proof` field.
fn proof(map: &Map<String, Value>) -> Result<Proof, DecodeError> {
    Proof::from_value(field(map, "proof")?).map_err(DecodeError::Proof)
}

/// The `onion` field: a valid v3 address.
fn onion(map: &Map<String, Value>) -> Result<OnionAddress, DecodeError> {
    let value = text(map, "onion")?;
    OnionAddress::parse(value).map_err(|e| DecodeError::Shape(format!("onion {value:?}: {e}")))
}

/// The `names` field: registered names, strictly ascending (so none
/// twice), at most [`MAX_REVERSE_NAMES`].
fn names(map: &Map<String, Value>) -> Result<Vec<RegisteredName>, DecodeError> {
    let shape = |why: String| DecodeError::Shape(format!("\"names\" {why}"));
    let list = field(map, "names")?
        .as_array()
        .ok_or_else(|| shape("must be an array".into()))?;
    if list.len() > MAX_REVERSE_NAMES {
        return Err(shape(format!(
            "holds {} names, at most {MAX_REVERSE_NAMES} are allowed",
            list.len()
        )));
    }
    let mut names: Vec<RegisteredName> = Vec::with_capacity(list.len());
    for value in list {
        let text = value
            .as_str()
            .ok_or_else(|| shape("must hold strings".into()))?;
        let name = RegisteredName::parse(text).map_err(|e| shape(format!("{text:?}: {e}")))?;
        if names
            .last()
            .is_some_and(|last| last.as_str() >= name.as_str())
        {
            return Err(shape(format!("are not strictly ascending at {text:?}")));
        }
        names.push(name);
    }
    Ok(names)
}

/// Boolean field `key` of `map`.
fn flag(map: &Map<String, Value>, key: &str) -> Result<bool, DecodeError> {
    field(map, key)?
        .as_bool()
        .ok_or_else(|| DecodeError::Shape(format!("{key:?} must be true or false")))
}

/// The optional `cosignatures` field: empty when absent.
fn cosignatures(map: &Map<String, Value>) -> Result<Vec<Cosignature>, DecodeError> {
    match map.get("cosignatures") {
        None => Ok(Vec::new()),
        Some(value) => Cosignature::list_from_value(value).map_err(DecodeError::Cosignature),
    }
}

/// The canonical text of a list of cosignatures; empty for none, so that
/// the field is left out.
pub fn cosignatures_text(list: &[Cosignature]) -> String {
    if list.is_empty() {
        return String::new();
    }
    canonical::to_string(&Cosignature::list_to_value(list))
}

/// An attestation's canonical text.
fn att_text(attestation: &Attestation) -> String {
    canonical::to_string(&attestation.to_value())
}

/// Starts a reply line: `{"type":KIND,"id":ID`.
fn start(kind: &str, id: &Id, capacity: usize) -> Vec<u8> {
    let mut out = open(kind, capacity + 64);
    out.extend_from_slice(b",\"id\":");
    id.write(&mut out);
    out
}

/// Starts a line of any message: `{"type":KIND`, in a buffer with room
/// for `capacity` bytes more.
pub(super) fn open(kind: &str, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + 10 + capacity);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
    out
}

/// Appends `,"KEY":` and the already-encoded `json`.
pub(super) fn put(out: &mut Vec<u8>, key: &str, json: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(json.as_bytes());
}

/// Appends `,"proof":` and the proof.
fn put_proof(out: &mut Vec<u8>, proof: &Proof) {
    let mut text = String::with_capacity(48 * proof.siblings.len() + 64);
    proof.write_json(&mut text);
    put(out, "proof", &text);
}

/// Ends a line.
pub(super) fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(b"}\n");
    out
}

/// Appends `,"cosignatures":` and the list, unless it is empty (`""`).
fn put_cosignatures(out: &mut Vec<u8>, cosignatures: &str) {
    if !cosignatures.is_empty() {
        put(out, "cosignatures", cosignatures);
    }
}

/// The `found` reply from stored canonical texts; `cosignatures` is the
/// list's canonical text, or empty to leave the field out.
pub fn found_line(
    id: &Id,
    record: &str,
    attestation: &str,
    head: &str,
    proof: &Proof,
    cosignatures: &str,
) -> Vec<u8> {
    let size = record.len()
        + attestation.len()
        + head.len()
        + 48 * proof.siblings.len()
        + cosignatures.len();
    let mut out = start("found", id, size);
    put(&mut out, "record", record);
    put(&mut out, "attestation", attestation);
    put(&mut out, "head", head);
    put_proof(&mut out, proof);
    put_cosignatures(&mut out, cosignatures);
    end(out)
}

/// The `not_found` reply from the head's canonical text; `cosignatures`
/// as for [`found_line`].
pub fn not_found_line(id: &Id, head: &str, proof: &Proof, cosignatures: &str) -> Vec<u8> {
    let size = head.len() + 48 * proof.siblings.len() + cosignatures.len();
    let mut out = start("not_found", id, size);
    put(&mut out, "head", head);
    put_proof(&mut out, proof);
    put_cosignatures(&mut out, cosignatures);
    end(out)
}

/// The `cosigned` reply: how many trusted witnesses' cosignatures the
/// server holds for the head.
pub fn cosigned_line(id: &Id, count: u64) -> Vec<u8> {
    let mut out = start("cosigned", id, 16);
    put(&mut out, "count", &count.to_string());
    end(out)
}

/// The `names` reply to a reverse lookup (§12.5); `names` as the server
/// found them: ascending, at most [`MAX_REVERSE_NAMES`].
pub fn names_line(id: &Id, onion: &OnionAddress, names: &[RegisteredName], more: bool) -> Vec<u8> {
    let size = names.iter().map(|n| n.as_str().len() + 3).sum::<usize>() + 80;
    let mut out = start("names", id, size);
    let list: Vec<&str> = names.iter().map(RegisteredName::as_str).collect();
    put(&mut out, "onion", &format!("\"{onion}\""));
    put(
        &mut out,
        "names",
        &serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()),
    );
    put(&mut out, "more", if more { "true" } else { "false" });
    end(out)
}

/// The `accepted` reply to a put from the attestation's canonical text.
pub fn accepted_line(id: &Id, attestation: &str) -> Vec<u8> {
    let mut out = start("accepted", id, attestation.len());
    put(&mut out, "attestation", attestation);
    end(out)
}

/// The `subscribed` reply; `seq` is the highest seq applied (sent as
/// `head`, the integer of PROTOCOL.md §8).
pub fn subscribed_line(id: &Id, seq: u64) -> Vec<u8> {
    let mut out = start("subscribed", id, 16);
    put(&mut out, "head", &seq.to_string());
    end(out)
}
