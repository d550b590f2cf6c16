//! What `onions-hs` does for an onion-service operator: turn a claim into a
//! finished record (serial, proof of work, signature), remember serials so
//! renewals go up by themselves, and send records to a Quorum.
//!
//! The terminal side (flags, progress bar, messages) stays in the binary;
//! this module is the part tests and other programs can call. `life` makes
//! the records and statements that move and give up a name.

use crate::attest::Attestation;
use crate::keys::SigningKey;
use crate::record::{Claim, Record, RecordError};
use crate::transport::{self, Endpoint, RequestError, Route};
use crate::wire::{Id, Reply, Request, WireError};
use crate::work::{self, Progress};
use serde_json::{Map, Value};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod life;

/// File, in the directory where `onions-hs` runs, that remembers the last
/// serial each key used.
pub const DEFAULT_STATE_FILE: &str = "onions-hs.state";

/// Why the serial state file cannot be used.
#[derive(Debug)]
pub enum StateError {
    /// The file is not a JSON object of serials: move it away.
    NotStateFile(PathBuf),
    /// The file was missing and cannot be created there.
    Create(PathBuf, io::Error),
    /// The file cannot be read.
    Read(PathBuf, io::Error),
    /// The serials cannot be encoded.
    Encode(serde_json::Error),
    /// The file cannot be saved.
    Save(PathBuf, io::Error),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NotStateFile(path) => write!(
                f,
                "{}: not an onions-hs state file (a JSON object of serials); move it away",
                path.display()
            ),
            StateError::Create(path, e) => {
                write!(f, "{}: cannot create the serial state: {e}", path.display())
            }
            StateError::Read(path, e) => write!(f, "{}: {e}", path.display()),
            StateError::Encode(e) => write!(f, "cannot encode the serial state: {e}"),
            StateError::Save(path, e) => {
                write!(f, "{}: cannot save serial state: {e}", path.display())
            }
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::NotStateFile(_) => None,
            StateError::Create(_, e) | StateError::Read(_, e) | StateError::Save(_, e) => Some(e),
            StateError::Encode(e) => Some(e),
        }
    }
}

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
    pub fn open(path: &Path) -> Result<SerialBook, StateError> {
        let serials = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                _ => return Err(StateError::NotStateFile(path.to_owned())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Create it now, so an unwritable place fails before any work.
                write_atomically(path, b"{}\n")
                    .map_err(|e| StateError::Create(path.to_owned(), e))?;
                Map::new()
            }
            Err(e) => return Err(StateError::Read(path.to_owned(), e)),
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
    pub fn record(&mut self, onion: &str, serial: u64) -> Result<(), StateError> {
        let last = self.serials.get(onion).and_then(Value::as_u64).unwrap_or(0);
        self.serials
            .insert(onion.to_owned(), last.max(serial).into());
        let text = serde_json::to_string_pretty(&self.serials).map_err(StateError::Encode)?;
        write_atomically(&self.path, format!("{text}\n").as_bytes())
            .map_err(|e| StateError::Save(self.path.clone(), e))
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file,
/// never a mix: write a sibling, fsync it, rename it over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Why a record cannot be finished.
#[derive(Debug)]
pub enum FinishError {
    /// The claim breaks a rule every record must keep.
    Invalid(RecordError),
    /// No nonce below 2^53 gives the requested work.
    NoNonce,
}

impl fmt::Display for FinishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinishError::Invalid(e) => write!(f, "{e}"),
            FinishError::NoNonce => write!(f, "no nonce below 2^53 gives the requested work"),
        }
    }
}

impl std::error::Error for FinishError {}

impl From<RecordError> for FinishError {
    fn from(e: RecordError) -> Self {
        FinishError::Invalid(e)
    }
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
) -> Result<Record, FinishError> {
    finish_unsigned(
        Record::from_claim(claim, key),
        key,
        threads,
        interval,
        report,
    )
}

/// Works and signs `record`, built by [`Record::from_claim`] and given its
/// optional keys (a transfer statement, or the release mark; see [`life`]),
/// with `key`, as [`finish_record`] does.
pub fn finish_unsigned(
    mut record: Record,
    key: &SigningKey,
    threads: usize,
    interval: Duration,
    report: &mut dyn FnMut(Progress),
) -> Result<Record, FinishError> {
    crate::verify::check_static_rules(&record)?;
    let input = work::input(&record.work_body());
    record.nonce =
        work::solve(&input, record.work, threads, interval, report).ok_or(FinishError::NoNonce)?;
    record.sign_with(key);
    Ok(record)
}

/// Why the Quorum did not accept a record.
#[derive(Debug)]
pub enum SubmitError {
    /// The Quorum could not be asked, or its reply was unreadable.
    Request(RequestError),
    /// The Quorum refused the record, saying why.
    Refused(WireError),
    /// The Quorum answered with another kind of reply.
    Unexpected(&'static str),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Request(e) => e.fmt(f),
            SubmitError::Refused(e) => write!(f, "refused ({}): {}", e.code, e.message),
            SubmitError::Unexpected(kind) => write!(f, "answered a put with {kind}"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// Sends `record` to the Quorum and returns the attestation it answers with.
pub fn submit(
    server: &Endpoint,
    route: Route,
    record: &Record,
) -> Result<Attestation, SubmitError> {
    let message = Request::Put {
        id: Id::Number(1),
        record: record.to_value(),
    };
    match transport::request(server, route, &message, transport::NETWORK_TIMEOUT)
        .map_err(SubmitError::Request)?
    {
        Reply::Accepted { attestation, .. } => Ok(attestation),
        Reply::Error(e) => Err(SubmitError::Refused(e)),
        other => Err(SubmitError::Unexpected(other.kind())),
    }
}

/// Why the `--out` file cannot be written.
#[derive(Debug)]
pub enum OutputError {
    /// The path is a directory: give a file name.
    IsDirectory(PathBuf),
    /// The place cannot be written to.
    Unwritable(PathBuf, io::Error),
    /// Writing, syncing or renaming the file failed.
    Write(PathBuf, io::Error),
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::IsDirectory(path) => write!(
                f,
                "--out {}: is a directory; give a file name",
                path.display()
            ),
            OutputError::Unwritable(path, e) => {
                write!(f, "--out {}: cannot write there: {e}", path.display())
            }
            OutputError::Write(path, e) => write!(f, "--out {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutputError::IsDirectory(_) => None,
            OutputError::Unwritable(_, e) | OutputError::Write(_, e) => Some(e),
        }
    }
}

/// An output file that is checked for writability before any work is done
/// and appears whole or not at all: it is written to a sibling first, and
/// renamed over the target only on [`OutputFile::commit`].
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    tmp: PathBuf,
    file: std::fs::File,
}

impl OutputFile {
    /// Opens a new sibling `PATH.PID.tmp`, failing early if the place is
    /// unwritable or `path` is a directory.
    pub fn create(path: &Path) -> Result<OutputFile, OutputError> {
        if path.is_dir() {
            return Err(OutputError::IsDirectory(path.to_owned()));
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| OutputError::Unwritable(path.to_owned(), e))?;
        Ok(OutputFile {
            path: path.to_owned(),
            tmp,
            file,
        })
    }

    /// Writes `bytes`, syncs, and renames the file into place.
    pub fn commit(mut self, bytes: &[u8]) -> Result<(), OutputError> {
        let fail = |e: io::Error| OutputError::Write(self.path.clone(), e);
        self.file.write_all(bytes).map_err(fail)?;
        self.file.sync_all().map_err(fail)?;
        std::fs::rename(&self.tmp, &self.path).map_err(fail)
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // After a commit the sibling is gone and this fails harmlessly.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}
