//! What `onions-hs` does for an onion-service operator: turn a claim into a
//! finished record (serial, proof of work, signature), remember serials so
//! renewals go up by themselves, and send records to a Quorum.
//!
//! The terminal side (flags, progress bar, messages) stays in the binary;
//! this module is the part tests and other programs can call.

use crate::attest::Attestation;
use crate::keys::SigningKey;
use crate::record::{Claim, Record};
use crate::transport::{self, Endpoint, Route, TransportError};
use crate::work::{self, Progress};
use serde_json::{json, Map, Value};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File, in the directory where `onions-hs` runs, that remembers the last
/// serial each key used.
pub const DEFAULT_STATE_FILE: &str = "onions-hs.state";

/// How long to wait for a Quorum or mirror, per step, in seconds. Generous,
/// since a first connection to an onion service can take tens of seconds.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// The last serial used by each key, kept in a small JSON file so that a
/// renewal or update is signed with a higher serial without the operator
/// counting.
#[derive(Debug)]
pub struct SerialBook {
    path: PathBuf,
    serials: Map<String, Value>,
}

impl SerialBook {
    /// Opens the book at `path`; a missing file is an empty book.
    pub fn open(path: &Path) -> Result<SerialBook, String> {
        let serials = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(format!(
                        "{}: not an onions-hs state file (a JSON object of serials); move it away",
                        path.display()
                    ))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(SerialBook {
            path: path.to_owned(),
            serials,
        })
    }

    /// The serial to use next for the key of `onion`.
    pub fn next(&self, onion: &str) -> u64 {
        self.serials.get(onion).and_then(Value::as_u64).unwrap_or(0) + 1
    }

    /// Records that `onion`'s key used `serial`, durably (write, fsync, rename).
    pub fn record(&mut self, onion: &str, serial: u64) -> Result<(), String> {
        let last = self.serials.get(onion).and_then(Value::as_u64).unwrap_or(0);
        self.serials.insert(onion.to_owned(), last.max(serial).into());
        let text = serde_json::to_string_pretty(&self.serials)
            .map_err(|e| format!("cannot encode the serial state: {e}"))?;
        write_atomically(&self.path, format!("{text}\n").as_bytes())
            .map_err(|e| format!("{}: cannot save serial state: {e}", self.path.display()))
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file,
/// never a mix: write a sibling, fsync it, rename it over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Builds, works and signs a record for `claim` with `key`.
///
/// `threads` search for the nonce; `report` sees progress about every
/// `interval`. Fails only if no nonce below 2^53 works.
pub fn finish_record(
    claim: Claim,
    key: &SigningKey,
    threads: usize,
    interval: Duration,
    report: &mut dyn FnMut(Progress),
) -> Result<Record, String> {
    let mut record = Record::from_claim(claim, key);
    let input = work::input(&record.work_body());
    record.nonce = work::solve(&input, record.work, threads, interval, report)
        .ok_or("no nonce below 2^53 gives the requested work")?;
    record.sign_with(key);
    Ok(record)
}

/// Why a server refused or failed a request.
#[derive(Debug)]
pub enum RequestError {
    /// The server could not be reached, or its reply was unreadable.
    Transport(TransportError),
    /// The server answered with an `error` message.
    Refused {
        /// The protocol error code.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The server answered with something other than what was asked.
    Unexpected(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Transport(e) => e.fmt(f),
            RequestError::Refused { code, message } => write!(f, "refused ({code}): {message}"),
            RequestError::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Sends one request to `server` along `route` and returns the reply if its
/// `type` is `expect`.
pub fn request(
    server: &Endpoint,
    route: Route,
    message: &Value,
    expect: &str,
) -> Result<Value, RequestError> {
    let mut stream =
        transport::connect(server, route, NETWORK_TIMEOUT).map_err(RequestError::Transport)?;
    let reply = transport::exchange(&mut stream, message, NETWORK_TIMEOUT)
        .map_err(RequestError::Transport)?;
    match reply.get("type").and_then(Value::as_str) {
        Some(t) if t == expect => Ok(reply),
        Some("error") => Err(RequestError::Refused {
            code: text_field(&reply, "code"),
            message: text_field(&reply, "message"),
        }),
        _ => Err(RequestError::Unexpected(crate::canonical::to_string(&reply))),
    }
}

fn text_field(reply: &Value, key: &str) -> String {
    reply
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("(none given)")
        .to_owned()
}

/// Sends `record` to the Quorum and returns the attestation it answers with.
pub fn submit(server: &Endpoint, route: Route, record: &Record) -> Result<Attestation, RequestError> {
    let message = json!({"type": "put", "id": 1, "record": record.to_value()});
    let reply = request(server, route, &message, "accepted")?;
    let attestation = reply
        .get("attestation")
        .ok_or_else(|| RequestError::Unexpected("accepted without an attestation".into()))?;
    Attestation::from_value(attestation).map_err(|e| RequestError::Unexpected(e.to_string()))
}
