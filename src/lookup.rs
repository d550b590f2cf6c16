//! Asking a server for a name and deciding whether to believe the answer.
//!
//! Used by `onions-hs lookup` and the client daemon alike, so the rule
//! "an answer is used only after protocol.md §9 holds and the record is for
//! the name asked" lives in one place: [`lookup`] never returns an
//! unverified [`Answer`].

use crate::attest::Attestation;
use crate::name::LookupName;
use crate::onion::OnionAddress;
use crate::record::Record;
use crate::transport::{self, Endpoint, RequestError, Route};
use crate::verify::{Verifier, VerifyError};
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// A verified answer for a lookup name.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The live record of the registered name.
    pub record: Record,
    /// The Quorum's attestation of it.
    pub attestation: Attestation,
    /// Where the looked-up name points: the subdomain's address, or the
    /// owner's for the bare name.
    pub target: OnionAddress,
}

/// Why a lookup gave no usable answer.
#[derive(Debug)]
pub enum LookupError {
    /// The server could not be asked, or it refused.
    Request(RequestError),
    /// The server says the name is not registered.
    NotFound,
    /// The answer failed verification: the server is lying or broken.
    Forged(VerifyError),
    /// The answer is a valid record for another name: the server is lying.
    WrongName(String),
    /// The record is genuine but has no such subdomain.
    NoSubdomain(String),
    /// The answer lacked a record or attestation.
    Malformed(String),
}

impl LookupError {
    /// True when the server gave an answer no honest server would give, so
    /// a client should stop asking it for a while.
    pub fn server_lied(&self) -> bool {
        matches!(
            self,
            LookupError::Forged(_) | LookupError::WrongName(_) | LookupError::Malformed(_)
        )
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Request(e) => e.fmt(f),
            LookupError::NotFound => write!(f, "not registered (not_found)"),
            LookupError::Forged(e) => write!(f, "answer failed verification: {e}"),
            LookupError::WrongName(name) => {
                write!(f, "answer is a record for {name}, not the name asked")
            }
            LookupError::NoSubdomain(sub) => write!(f, "the record has no subdomain {sub:?}"),
            LookupError::Malformed(why) => write!(f, "answer is malformed: {why}"),
        }
    }
}

impl std::error::Error for LookupError {}

/// Looks `name` up on `server` and verifies the answer at time `now`,
/// waiting at most `timeout` for each step.
pub fn lookup(
    server: &Endpoint,
    route: Route,
    name: &LookupName,
    verifier: &Verifier,
    now: u64,
    timeout: Duration,
) -> Result<Answer, LookupError> {
    let message = json!({"type": "lookup", "id": 1, "name": name.as_str()});
    let reply = match transport::request(server, route, &message, "found", timeout) {
        Err(RequestError::Refused { code, .. }) if code == "not_found" => {
            return Err(LookupError::NotFound)
        }
        other => other.map_err(LookupError::Request)?,
    };
    check_found(&reply, name, verifier, now)
}

/// Verifies a `found` reply for `name`: protocol.md §9, then the name.
pub fn check_found(
    reply: &Value,
    name: &LookupName,
    verifier: &Verifier,
    now: u64,
) -> Result<Answer, LookupError> {
    let part = |key: &str| {
        reply
            .get(key)
            .ok_or_else(|| LookupError::Malformed(format!("no {key}")))
    };
    let record = Record::from_value(part("record")?)
        .map_err(|e| LookupError::Forged(VerifyError::Record(e)))?;
    let attestation = Attestation::from_value(part("attestation")?)
        .map_err(|e| LookupError::Forged(VerifyError::Attestation(e)))?;
    verifier
        .check_answer(&record, &attestation, now)
        .map_err(LookupError::Forged)?;
    if record.name != name.registered() {
        return Err(LookupError::WrongName(record.name.to_string()));
    }
    let target = match name.subdomain() {
        None => record.onion,
        Some(sub) => *record
            .subdomains
            .get(&sub)
            .ok_or_else(|| LookupError::NoSubdomain(sub.to_string()))?,
    };
    Ok(Answer {
        record,
        attestation,
        target,
    })
}
