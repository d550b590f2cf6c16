//! [`Report`]: what a witness has cosigned and refused. The last head it
//! cosigned is durable in `witness_state.json` (written and synced before
//! any cosignature of it is seen, read back at start) and bounds every
//! head it cosigns next; the counts, alarm and evidence files are what
//! `status` and the metrics show.

use crate::evidence::EvidenceFile;
use crate::head::{HeadError, SignedHead};
use crate::keys::SigningKey;
use crate::wire::WitnessStatus;
use serde_json::{json, Value};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The file in the state directory holding the last head cosigned.
pub(super) const STATE_FILE: &str = "witness_state.json";

/// Why `witness_state.json` cannot be read back at start.
#[derive(Debug)]
pub enum StateError {
    /// The file is damaged. It holds the last head this witness cosigned:
    /// restore it, or remove it only if this key never cosigned anything.
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: BadState,
    },
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What reading said.
        error: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Damaged { path, why } => write!(
                f,
                "{}: {why}; it holds the last head this witness cosigned: restore it, or remove it only if this key never cosigned anything",
                path.display()
            ),
            StateError::Read { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Damaged { why, .. } => Some(why),
            StateError::Read { error, .. } => Some(error),
        }
    }
}

/// What is wrong with a damaged `witness_state.json`.
#[derive(Debug)]
pub enum BadState {
    /// It is not JSON.
    NotJson(serde_json::Error),
    /// Its head cannot be read.
    Head(HeadError),
    /// Its time is not an integer.
    Time,
}

impl fmt::Display for BadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadState::NotJson(e) => write!(f, "not JSON: {e}"),
            BadState::Head(e) => write!(f, "{e}"),
            BadState::Time => write!(f, "time must be an integer"),
        }
    }
}

impl std::error::Error for BadState {}

/// What a witness has cosigned and refused: durable in part (the last
/// head), and what `status` shows.
#[derive(Debug)]
pub struct Report {
    /// Where `witness_state.json` and evidence files go.
    dir: PathBuf,
    /// Its public key, Base64.
    pub key: String,
    /// The last head it cosigned, and the time it gave.
    pub last: Option<(SignedHead, u64)>,
    /// Cosignatures made since start.
    pub made: u64,
    /// Heads refused since start.
    pub refused: u64,
    /// Why it stopped or refused, if it did; `status` reports it.
    pub alarm: Option<String>,
    /// True once an ownership rule was broken: it cosigns nothing more.
    pub halted: bool,
    /// Evidence files written.
    pub evidence: Vec<PathBuf>,
}

impl Report {
    /// The report of a witness holding `key`, with the last head it
    /// cosigned read back from `dir`.
    pub fn load(dir: &Path, key: &SigningKey) -> Result<Report, StateError> {
        let path = dir.join(STATE_FILE);
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => match parse_state(&text) {
                Ok(last) => Some(last),
                Err(why) => return Err(StateError::Damaged { path, why }),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(StateError::Read { path, error }),
        };
        Ok(Report {
            dir: dir.to_owned(),
            key: key.public().to_base64(),
            last,
            made: 0,
            refused: 0,
            alarm: None,
            halted: false,
            evidence: Vec::new(),
        })
    }

    /// What status shows.
    pub fn status(&self) -> WitnessStatus {
        WitnessStatus {
            key: self.key.clone(),
            last: self.last.as_ref().map(|(h, _)| h.clone()),
            at: self.last.as_ref().map_or(0, |(_, t)| *t),
            made: self.made,
            refused: self.refused,
            alarm: self.alarm.clone(),
            evidence: self
                .evidence
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }

    /// Why `head` must not be cosigned, if it must not.
    pub(super) fn refusal(&self, head: &SignedHead) -> Option<String> {
        if self.halted {
            return Some("this witness stopped cosigning after a broken ownership rule".into());
        }
        let (last, _) = self.last.as_ref()?;
        if head.conflicts(last) {
            return Some(format!(
                "head seq {} time {} conflicts with head seq {} time {} cosigned before",
                head.seq, head.time, last.seq, last.time
            ));
        }
        if head.seq < last.seq || head.time < last.time {
            return Some(format!(
                "head seq {} time {} is below head seq {} time {} cosigned before",
                head.seq, head.time, last.seq, last.time
            ));
        }
        None
    }

    /// Makes `head` at `time` the last cosigned, durably, before any
    /// cosignature of it is seen.
    pub(super) fn commit(&mut self, head: &SignedHead, time: u64) -> io::Result<()> {
        let text = json!({"v": 2, "head": head.to_value(), "time": time}).to_string();
        let path = self.dir.join(STATE_FILE);
        crate::operator::write_atomically(&path, format!("{text}\n").as_bytes())?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.last = Some((head.clone(), time));
        Ok(())
    }

    /// Keeps evidence in a file, logs it and raises the alarm.
    pub fn keep_evidence(&mut self, what: &str, evidence: &EvidenceFile) {
        log::error!("WITNESS ALARM: {what}; evidence kept");
        self.alarm = Some(what.to_owned());
        match crate::evidence::write_file(&self.dir, evidence) {
            Ok(path) => {
                log::error!("evidence written to {}", path.display());
                if !self.evidence.contains(&path) {
                    self.evidence.push(path);
                }
            }
            Err(e) => log::error!("cannot write evidence to {}: {e}", self.dir.display()),
        }
    }
}

/// Parses `witness_state.json`.
fn parse_state(text: &str) -> Result<(SignedHead, u64), BadState> {
    let value: Value = serde_json::from_str(text).map_err(BadState::NotJson)?;
    let head = SignedHead::from_value(&value["head"]).map_err(BadState::Head)?;
    let time = value["time"].as_u64().ok_or(BadState::Time)?;
    Ok((head, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64, time: u64, root: u8) -> SignedHead {
        SignedHead::sign(seq, time, 1, [root; 32], &SigningKey::from_seed(&[1; 32]))
    }

    fn dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("onions-witness-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_last_head_cosigned_survives_a_restart_and_bounds_the_next() {
        let dir = dir("restart");
        let key = SigningKey::from_seed(&[2; 32]);
        let mut report = Report::load(&dir, &key).unwrap();
        assert_eq!(report.refusal(&head(5, 100, 1)), None);
        report.commit(&head(5, 100, 1), 120).unwrap();
        let again = Report::load(&dir, &key).unwrap();
        assert_eq!(again.last, Some((head(5, 100, 1), 120)));
        assert!(again
            .refusal(&head(5, 100, 2))
            .unwrap()
            .contains("conflicts"));
        assert!(again
            .refusal(&head(4, 101, 1))
            .unwrap()
            .contains("conflicts"));
        assert!(again.refusal(&head(5, 99, 1)).unwrap().contains("below"));
        assert_eq!(again.refusal(&head(5, 100, 1)), None, "the same head again");
        assert_eq!(again.refusal(&head(6, 100, 3)), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_halted_witness_refuses_everything_and_a_damaged_state_is_named() {
        let dir = dir("halted");
        let key = SigningKey::from_seed(&[2; 32]);
        let mut report = Report::load(&dir, &key).unwrap();
        report.halted = true;
        assert!(report.refusal(&head(1, 1, 1)).is_some());
        std::fs::write(dir.join(STATE_FILE), "{").unwrap();
        let err = Report::load(&dir, &key).unwrap_err();
        assert!(
            matches!(&err, StateError::Damaged { path, why: BadState::NotJson(_) }
                if path.ends_with(STATE_FILE)),
            "{err}"
        );
        assert!(err.to_string().contains("restore it"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
