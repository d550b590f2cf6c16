//! A witness (PROTOCOL.md §11): a mirror that also cosigns the heads its
//! audit matched, with a key of its own.
//!
//! The upstream thread hands every matched head to the cosigner thread
//! here. The cosigner refuses a head lower in seq or time than the last
//! one it cosigned, or in conflict with it (§10.5), and refuses everything
//! once the Quorum broke an ownership rule; otherwise it writes the head it
//! is about to cosign to `witness_state.json` with an fsync before anyone
//! can see a cosignature, so that a kill -9 can never make it sign two
//! conflicting heads. Then it holds its cosignatures in the server's book,
//! pushes them to its subscribers and sends them to each `--cosign-to`
//! server. At least every `--cosign-interval` it cosigns its last head
//! again with a fresh time, so that answers stay fresh while the Quorum is
//! silent or away.

use super::{LoopEvent, Outbox, Outgoing, Shared};
use crate::cosign::Cosignature;
use crate::head::{Evidence, SignedHead};
use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::store::{Entry, Store};
use crate::transport::{self, Endpoint, Route};
use crate::wire::{Id, Reply, Request, WitnessStatus};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The file in the state directory holding the witness key.
pub const WITNESS_KEY_FILE: &str = "witness_ed25519_secret_key";
/// The file in the state directory holding the last head cosigned.
const STATE_FILE: &str = "witness_state.json";
/// The longest wait for a `--cosign-to` server to connect or answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The default of `--cosign-interval`.
pub const COSIGN_INTERVAL: Duration = Duration::from_secs(60);

/// How a witness is set up.
pub struct Setup {
    /// Its own key.
    pub key: SigningKey,
    /// Servers its cosignatures are sent to (`--cosign-to`; default: its
    /// upstream).
    pub cosign_to: Vec<Endpoint>,
    /// Direct, or through Tor's SOCKS port.
    pub route: Route,
    /// Longest time between two cosignatures of its last head.
    pub interval: Duration,
}

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
    pub fn load(dir: &Path, key: &SigningKey) -> Result<Report, String> {
        let path = dir.join(STATE_FILE);
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => Some(parse_state(&text).map_err(|e| {
                format!(
                    "{}: {e}; it holds the last head this witness cosigned: restore it, or remove it only if this key never cosigned anything",
                    path.display()
                )
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
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
    fn refusal(&self, head: &SignedHead) -> Option<String> {
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
    fn commit(&mut self, head: &SignedHead, time: u64) -> io::Result<()> {
        let text = json!({"v": 2, "head": head.to_value(), "time": time}).to_string();
        let path = self.dir.join(STATE_FILE);
        crate::operator::write_atomically(&path, format!("{text}\n").as_bytes())?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.last = Some((head.clone(), time));
        Ok(())
    }

    /// Keeps evidence in a file, logs it and raises the alarm.
    pub fn keep_evidence(&mut self, what: &str, value: &Value) {
        log::error!("WITNESS ALARM: {what}; evidence kept");
        self.alarm = Some(what.to_owned());
        match crate::evidence::write_value(&self.dir, value) {
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
fn parse_state(text: &str) -> Result<(SignedHead, u64), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let head = SignedHead::from_value(&value["head"]).map_err(|e| e.to_string())?;
    let time = value["time"]
        .as_u64()
        .ok_or("time must be an integer".to_owned())?;
    Ok((head, time))
}

/// The cosigner thread: cosigns matched heads as they come and its last
/// head again every interval, until the channel closes.
pub struct Cosigner {
    /// Shared server state (the book, the report).
    pub shared: Arc<Shared>,
    /// How the witness is set up.
    pub setup: Setup,
    /// For pushing cosignatures to subscribers.
    pub outbox: Outbox,
}

impl Cosigner {
    /// Runs until the upstream thread drops its sender.
    pub fn run(self, heads: Receiver<SignedHead>) {
        let mut senders: Vec<Sender> = self.setup.cosign_to.iter().map(Sender::new).collect();
        let mut due = Instant::now() + self.setup.interval;
        loop {
            let wait = due.saturating_duration_since(Instant::now());
            let mut batch = match heads.recv_timeout(wait) {
                Ok(head) => vec![head],
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => return,
            };
            batch.extend(heads.try_iter());
            if batch.is_empty() {
                batch.extend(self.last_head());
            }
            let made = self.cosign(batch);
            if !made.is_empty() {
                due = Instant::now() + self.setup.interval;
                self.publish(&made, &mut senders);
            } else if Instant::now() >= due {
                due = Instant::now() + self.setup.interval;
            }
        }
    }

    /// The last head cosigned, to cosign again.
    fn last_head(&self) -> Option<SignedHead> {
        let report = self.shared.witness.as_ref()?.lock();
        report.last.as_ref().map(|(h, _)| h.clone())
    }

    /// Checks `heads` in order and cosigns those that pass, the newest made
    /// durable first; returns the cosignatures made.
    fn cosign(&self, heads: Vec<SignedHead>) -> Vec<(SignedHead, Cosignature)> {
        let Some(report) = &self.shared.witness else {
            return Vec::new();
        };
        let mut report = report.lock();
        let now = crate::clock::now().max(report.last.as_ref().map_or(0, |(_, t)| *t));
        let mut passed: Vec<SignedHead> = Vec::new();
        for head in heads {
            let refusal = match passed.last() {
                Some(prev) if head.conflicts(prev) || head.seq < prev.seq => Some(format!(
                    "head seq {} conflicts with one just cosigned",
                    head.seq
                )),
                _ => report.refusal(&head),
            };
            match refusal {
                None => passed.push(head),
                Some(why) => self.refuse(&mut report, &head, &why),
            }
        }
        let Some(newest) = passed.last() else {
            return Vec::new();
        };
        if let Err(e) = report.commit(newest, now) {
            log::error!("witness: cannot record the head it cosigns, so it cosigns nothing: {e}");
            report.alarm = Some(format!("cannot write {STATE_FILE}: {e}"));
            return Vec::new();
        }
        report.made += passed.len() as u64;
        passed
            .into_iter()
            .map(|head| {
                let cosig = Cosignature::sign(&head, now, &self.setup.key);
                (head, cosig)
            })
            .collect()
    }

    /// Counts and logs a refused head; a conflict is evidence.
    fn refuse(&self, report: &mut Report, head: &SignedHead, why: &str) {
        report.refused += 1;
        let conflicting = report
            .last
            .as_ref()
            .filter(|(last, _)| head.conflicts(last))
            .map(|(last, _)| last.clone());
        match conflicting.and_then(|last| Evidence::new(head.clone(), last)) {
            Some(evidence) => report.keep_evidence(
                &format!("the Quorum signed conflicting heads: {why}"),
                &evidence.to_value(),
            ),
            None => {
                log::warn!("witness: not cosigning: {why}");
                if !report.halted {
                    report.alarm = Some(why.to_owned());
                }
            }
        }
    }

    /// Holds the cosignatures in the book, pushes them to subscribers and
    /// sends them to every `--cosign-to` server.
    fn publish(&self, made: &[(SignedHead, Cosignature)], senders: &mut [Sender]) {
        let mut pushes = Vec::new();
        {
            let mut book = self.shared.book.lock();
            for (head, cosig) in made {
                if let Err(e) = book.take(head, cosig) {
                    log::error!("witness: its own cosignature was not taken: {e}");
                }
                pushes.extend(
                    book.push_line(head)
                        .map(|line| Outgoing::Cosignatures { line }),
                );
            }
        }
        self.outbox.send(LoopEvent::Committed {
            pushes: Arc::new(pushes),
        });
        for sender in senders {
            sender.send(made, self.setup.route);
        }
    }
}

/// One `--cosign-to` server and the connection to it, kept open.
struct Sender {
    endpoint: Endpoint,
    conn: Option<BufReader<TcpStream>>,
    /// Whether the last try failed, so a down server is logged once.
    failing: bool,
}

impl Sender {
    fn new(endpoint: &Endpoint) -> Sender {
        Sender {
            endpoint: endpoint.clone(),
            conn: None,
            failing: false,
        }
    }

    /// Sends every cosignature, pipelined, and reads the replies.
    fn send(&mut self, made: &[(SignedHead, Cosignature)], route: Route) {
        match self.try_send(made, route) {
            Ok(()) => {
                if self.failing {
                    log::info!("witness: {} takes cosignatures again", self.endpoint);
                }
                self.failing = false;
            }
            Err(e) => {
                self.conn = None;
                if !self.failing {
                    log::warn!(
                        "witness: cannot send cosignatures to {}: {e}",
                        self.endpoint
                    );
                }
                self.failing = true;
            }
        }
    }

    fn try_send(&mut self, made: &[(SignedHead, Cosignature)], route: Route) -> Result<(), String> {
        if self.conn.is_none() {
            let stream = transport::connect(&self.endpoint, route, SEND_TIMEOUT)
                .map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(SEND_TIMEOUT))
                .map_err(|e| e.to_string())?;
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().ok_or("no connection")?;
        let mut lines = Vec::new();
        for (n, (head, cosig)) in made.iter().enumerate() {
            lines.extend(
                Request::Cosign {
                    id: Id::Number(n as u64),
                    head: head.clone(),
                    cosignature: cosig.clone(),
                }
                .to_line(),
            );
        }
        conn.get_mut()
            .write_all(&lines)
            .map_err(|e| e.to_string())?;
        for _ in made {
            let mut line = Vec::new();
            conn.read_until(b'\n', &mut line)
                .map_err(|e| e.to_string())?;
            if line.is_empty() {
                return Err("closed the connection".into());
            }
            match Reply::parse(&line) {
                Ok(Reply::Cosigned { .. }) => {}
                Ok(Reply::Error(e)) => {
                    log::warn!("witness: {} refused a cosignature: {e}", self.endpoint)
                }
                Ok(other) => return Err(format!("answered cosign with {}", other.kind())),
                Err(e) => return Err(format!("bad reply to cosign: {e}")),
            }
        }
        Ok(())
    }
}

/// Checks every record of `batch`, before it is applied, against the
/// record its name had (in the store or earlier in the batch): a broken
/// ownership rule (§6) is evidence, and the witness cosigns nothing more.
pub fn check_ownership(store: &Store, batch: &[Entry], report: &Mutex<Report>) {
    let mut earlier: HashMap<&RegisteredName, Entry> = HashMap::new();
    for entry in batch {
        let before = match earlier.get(&entry.name) {
            Some(e) => Some(e.clone()),
            None => match store.get(&entry.name, 0) {
                Ok(found) => found,
                Err(e) => {
                    log::error!(
                        "witness: cannot read the record before seq {}: {e}",
                        entry.seq
                    );
                    None
                }
            },
        };
        if let Some(before) = before {
            if let Some(evidence) = crate::evidence::Ownership::between(&before, entry) {
                let what = format!(
                    "the Quorum broke an ownership rule ({}) for {} at seq {} (earlier seq {}); this witness cosigns nothing more",
                    evidence.rule.as_str(),
                    entry.name,
                    entry.seq,
                    before.seq
                );
                let mut report = report.lock();
                report.halted = true;
                report.keep_evidence(&what, &evidence.to_value());
            }
        }
        earlier.insert(&entry.name, entry.clone());
    }
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
            err.contains(STATE_FILE) && err.contains("restore it"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
