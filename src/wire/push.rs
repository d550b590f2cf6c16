//! Pushes on a subscription (PROTOCOL.md §8, §10.6): records, heads and
//! heartbeats, decoded by the subscribing mirror and encoded by the server
//! straight from stored canonical text.

use super::reply::{end, open, put};
use super::{error_of, field, object, uint, DecodeError, WireError};
use crate::attest::Attestation;
use crate::canonical;
use crate::cosign::Cosignature;
use crate::head::SignedHead;
use crate::record::Record;

/// One message a subscriber receives after `subscribed`.
// A message lives for one exchange; boxing the record would only add an
// allocation to every answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// A record and its attestation, at its seq.
    Record {
        /// The record's seq.
        seq: u64,
        /// The record.
        record: Record,
        /// Its attestation.
        attestation: Attestation,
    },
    /// A signed head, after the records it covers.
    Head(SignedHead),
    /// Witnesses' cosignatures of a head (§11.3): every one the server
    /// holds for it, sent when that set changes.
    Cosignatures {
        /// The head they sign.
        head: SignedHead,
        /// The cosignatures.
        cosignatures: Vec<Cosignature>,
    },
    /// Nothing was sent for a while.
    Heartbeat {
        /// The highest seq the server has applied.
        seq: u64,
    },
}

impl Push {
    /// Parses one line of a subscription. An `error` line is a refusal:
    /// `Ok(Err(..))`.
    pub fn parse(line: &[u8]) -> Result<Result<Push, WireError>, DecodeError> {
        let (map, kind) = object(line)?;
        match kind.as_str() {
            "record" => Ok(Ok(Push::Record {
                seq: uint(&map, "seq")?,
                record: Record::from_value(field(&map, "record")?).map_err(DecodeError::Record)?,
                attestation: Attestation::from_value(field(&map, "attestation")?)
                    .map_err(DecodeError::Attestation)?,
            })),
            "head" => Ok(Ok(Push::Head(
                SignedHead::from_value(field(&map, "head")?).map_err(DecodeError::Head)?,
            ))),
            "cosignatures" => Ok(Ok(Push::Cosignatures {
                head: SignedHead::from_value(field(&map, "head")?).map_err(DecodeError::Head)?,
                cosignatures: Cosignature::list_from_value(field(&map, "cosignatures")?)
                    .map_err(DecodeError::Cosignature)?,
            })),
            "heartbeat" => Ok(Ok(Push::Heartbeat {
                seq: uint(&map, "head")?,
            })),
            "error" => Ok(Err(error_of(&map)?)),
            other => Err(DecodeError::Shape(format!("unknown push type {other:?}"))),
        }
    }

    /// The push as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        match self {
            Push::Record {
                seq,
                record,
                attestation,
            } => record_line(
                *seq,
                &record.canonical(),
                &canonical::to_string(&attestation.to_value()),
            ),
            Push::Head(head) => head_line(&head.canonical()),
            Push::Cosignatures { head, cosignatures } => cosignatures_line(
                &head.canonical(),
                &canonical::to_string(&Cosignature::list_to_value(cosignatures)),
            ),
            Push::Heartbeat { seq } => heartbeat_line(*seq),
        }
    }
}

/// A `record` push from stored canonical texts.
pub fn record_line(seq: u64, record: &str, attestation: &str) -> Vec<u8> {
    let seq = seq.to_string();
    line(
        "record",
        &[
            ("seq", &seq),
            ("record", record),
            ("attestation", attestation),
        ],
    )
}

/// A `head` push from the head's canonical text.
pub fn head_line(head: &str) -> Vec<u8> {
    line("head", &[("head", head)])
}

/// A `cosignatures` push from the head's canonical text and the list's.
pub fn cosignatures_line(head: &str, cosignatures: &str) -> Vec<u8> {
    line(
        "cosignatures",
        &[("head", head), ("cosignatures", cosignatures)],
    )
}

/// A heartbeat to a quiet subscriber; `seq` is the highest seq applied.
pub fn heartbeat_line(seq: u64) -> Vec<u8> {
    line("heartbeat", &[("head", &seq.to_string())])
}

/// The push line `{"type":KIND,"KEY":JSON,...}` from its already-encoded
/// fields: stored texts are copied once, into a buffer of the final size.
fn line(kind: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = open(kind, size + 2);
    for (key, json) in fields {
        put(&mut out, key, json);
    }
    end(out)
}
