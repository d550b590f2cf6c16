//! The Quorum's committer: the one thread that decides who owns a name,
//! assigns seqs, attests, and makes batches durable with one fsync.
//!
//! Workers have already verified each put (signature, work, expiry), so
//! this thread does only what must be serial: the ownership rules of
//! PROTOCOL.md §6, against the live set and the puts earlier in the same
//! batch. Each batch is written with its signed head (PROTOCOL.md §10.4)
//! in one write and one fsync; replies and pushes go out only after that.
//! When no batch came for a while (`--head-interval`, at most
//! [`HEAD_INTERVAL`]), a head with a new time is signed alone, so records
//! that expired leave the tree and clients see a fresh head.

use super::events::{HeadMark, LoopEvent, Outbox, Outgoing, Reply};
use super::metrics::Metrics;
use super::shared::{maybe_compact, Shared};
use crate::attest::Attestation;
use crate::canonical;
use crate::clock;
use crate::head::SignedHead;
use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::onion::OnionAddress;
use crate::record::{Record, RecordId, Spelled};
use crate::store::{Entry, Store};
use crate::transfer::Transfer;
use crate::wire::{self, Code, Id, WireError};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use mio::Token;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most puts committed with one fsync.
const MAX_BATCH: usize = 1024;
pub use super::shared::HEAD_INTERVAL;

/// A put whose record the workers verified, waiting for the committer's
/// ownership decision and its answer.
pub struct PendingPut {
    /// The connection to answer.
    pub conn: Token,
    /// Its session number, for the log.
    pub session: u64,
    /// The request id.
    pub id: Id,
    /// The verified record.
    pub record: Record,
    /// Its canonical JSON and id, spelled once by the worker that
    /// verified it.
    pub spelled: Spelled,
}

/// The live record a decision is made against, from the store or an
/// earlier put in the same batch: what the ownership rules read of it.
struct Holder {
    /// Its id, which tells a repeat of it.
    id: RecordId,
    /// Its owner's key.
    onion: [u8; 32],
    /// Its serial.
    serial: u64,
    /// When it stops holding the name.
    expires: u64,
    /// True for a release (§12.3).
    release: bool,
    /// Its attestation, the answer to a repeat.
    attestation: String,
    /// True when it was accepted in this batch: a decision against it
    /// stands only if the batch becomes durable.
    in_batch: bool,
}

/// What became of one put.
enum Decision {
    /// Accepted: to be appended, then answered.
    Accept(Entry),
    /// The very record already live: answered with its attestation. The
    /// flag says whether it went live in this batch.
    Repeat(String, bool),
    /// Refused; the flag says whether because of a record of this batch.
    Refuse(WireError, bool),
}

impl Decision {
    /// True when the answer stands only if the batch becomes durable.
    fn rests_on_batch(&self) -> bool {
        match self {
            Decision::Accept(_) => true,
            Decision::Repeat(_, in_batch) | Decision::Refuse(_, in_batch) => *in_batch,
        }
    }
}

/// Signs and writes a head over the replayed log before the server answers
/// anything (PROTOCOL.md §10.4), so lookups and catch-up have one at once.
pub fn start(store: &Store, key: &SigningKey) -> Result<SignedHead, StartError> {
    seal(store, key, &[]).map_err(StartError)
}

/// Why the first head cannot be signed and written (the log cannot be
/// written to).
#[derive(Debug)]
pub struct StartError(pub std::io::Error);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot sign the first head: {}", self.0)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The Quorum's settings the committer applies.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The longest time between two signed heads (`--head-interval`).
    pub head_interval: Duration,
    /// The least time a release must hold its name, in seconds
    /// (`--release-cooldown`, PROTOCOL.md §12.3).
    pub release_cooldown: u64,
}

/// Runs the committer until every worker has dropped its sender.
pub fn run(
    shared: &Shared,
    key: SigningKey,
    puts: Receiver<PendingPut>,
    outbox: Outbox,
    rules: Rules,
) {
    let store = &shared.store;
    let interval = rules.head_interval;
    let mut last_head = Instant::now();
    loop {
        let wait = interval.saturating_sub(last_head.elapsed());
        let batch = match puts.recv_timeout(wait) {
            Ok(first) => {
                let mut batch = vec![first];
                batch.extend(puts.try_iter().take(MAX_BATCH - 1));
                batch
            }
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if commit_batch(shared, &key, batch, &outbox, &rules) {
            last_head = Instant::now();
        }
        maybe_compact(store);
    }
}

/// Signs a head over every applied record and `entries` (not yet
/// written) at the clock's time, and writes both with one fsync. The time
/// never goes below the previous head's; should the clock stand still while
/// the tree changed (a damaged log), it moves one second on rather than
/// sign two heads with the same seq and time.
fn seal(store: &Store, key: &SigningKey, entries: &[Entry]) -> std::io::Result<SignedHead> {
    let last = store.newest_head();
    let seq = entries
        .last()
        .map_or(store.seq(), |e| e.seq)
        .max(last.as_ref().map_or(0, |h| h.seq));
    let mut time = clock::now().max(last.as_ref().map_or(0, |h| h.time));
    let mut sealing = store.prepare(entries, seq, time)?;
    if let Some(last) = &last {
        let same_place = (last.seq, last.time) == (seq, time);
        if same_place && (last.root, last.size) != (sealing.root(), sealing.size()) {
            time += 1;
            sealing = store.prepare(entries, seq, time)?;
        }
    }
    let head = SignedHead::sign(seq, time, sealing.size(), sealing.root(), key);
    store.seal(entries, sealing, &head, true)?;
    Ok(head)
}

/// Decides a batch, writes the accepted records with their head, answers,
/// and fans out; an empty batch only signs a new head. Returns whether a
/// head was signed.
fn commit_batch(
    shared: &Shared,
    key: &SigningKey,
    batch: Vec<PendingPut>,
    outbox: &Outbox,
    rules: &Rules,
) -> bool {
    let store = &shared.store;
    let now = clock::now();
    let mut next_seq = store.seq() + 1;
    let mut pending: HashMap<RegisteredName, Holder> = HashMap::new();
    let mut entries = Vec::new();
    let mut answers = Vec::with_capacity(batch.len());
    for put in batch {
        let at = Moment {
            now,
            cooldown: rules.release_cooldown,
        };
        let decision = decide(store, key, &put, &mut pending, &mut next_seq, at);
        if let Decision::Accept(entry) = &decision {
            entries.push(entry.clone());
        }
        answers.push((put, decision));
    }
    let needs_head = !entries.is_empty() || answers.is_empty();
    let started = Instant::now();
    let head = if needs_head {
        match seal(store, key, &entries) {
            Ok(head) => Some(head),
            Err(e) => {
                log::error!(
                    "cannot write {} records and their head to the log: {e}",
                    entries.len()
                );
                None
            }
        }
    } else {
        None
    };
    let durable = entries.is_empty() || head.is_some();
    let replies: Vec<Reply> = answers
        .into_iter()
        .map(|(put, decision)| answer(put, decision, durable, &shared.metrics))
        .collect();
    outbox.send_replies(replies);
    let Some(head) = head else {
        return false;
    };
    let took = started.elapsed();
    shared.timings.record(took);
    log::debug!(
        "head seq {} time {} size {} signed and written in {} µs",
        head.seq,
        head.time,
        head.size,
        took.as_micros()
    );
    let mut pushes: Vec<Outgoing> = entries
        .iter()
        .map(|e| Outgoing::Record {
            seq: e.seq,
            line: wire::record_line(e.seq, &e.record, &e.attestation),
        })
        .collect();
    pushes.push(Outgoing::Head {
        mark: HeadMark::of(&head),
        line: wire::head_line(&head.canonical()),
        current: true,
    });
    outbox.send(LoopEvent::Committed {
        pushes: Arc::new(pushes),
    });
    true
}

/// The reply to one put of a batch, logged and counted; `durable` says
/// whether the batch was stored.
fn answer(put: PendingPut, decision: Decision, durable: bool, metrics: &Metrics) -> Reply {
    let session = put.session;
    let name = &put.record.name;
    if !durable && decision.rests_on_batch() {
        log::info!("session {session}: put {name} -> internal: the batch was not stored");
        let err = WireError::new(
            &put.id,
            Code::Internal,
            "the record could not be stored; try again",
        );
        metrics.put_refused(err.code);
        return Reply {
            conn: put.conn,
            bytes: metrics.error_line(&err),
            close: false,
        };
    }
    let bytes = match decision {
        Decision::Accept(entry) => {
            log::info!(
                "session {session}: put {name} -> accepted seq {}",
                entry.seq
            );
            metrics.put_accepted();
            wire::accepted_line(&put.id, &entry.attestation)
        }
        Decision::Repeat(attestation, _) => {
            log::info!("session {session}: put {name} -> already live, same record");
            metrics.put_accepted();
            wire::accepted_line(&put.id, &attestation)
        }
        Decision::Refuse(err, _) => {
            log::info!("session {session}: put {name} -> {err}");
            metrics.put_refused(err.code);
            metrics.error_line(&err)
        }
    };
    Reply {
        conn: put.conn,
        bytes,
        close: false,
    }
}

/// The clock and the cool-down a decision is made with.
#[derive(Clone, Copy)]
struct Moment {
    now: u64,
    cooldown: u64,
}

/// Applies PROTOCOL.md §6 and §12.2–12.3 to one put.
fn decide(
    store: &Store,
    key: &SigningKey,
    put: &PendingPut,
    pending: &mut HashMap<RegisteredName, Holder>,
    next_seq: &mut u64,
    at: Moment,
) -> Decision {
    let record = &put.record;
    let holder = match pending.remove(&record.name) {
        Some(h) => Some(h),
        None => match live_holder(store, &record.name, at.now) {
            Ok(h) => h,
            Err(e) => {
                log::error!(
                    "session {}: reading the live record of {}: {e}",
                    put.session,
                    record.name
                );
                return Decision::Refuse(
                    WireError::new(&put.id, Code::Internal, "storage error; try again"),
                    false,
                );
            }
        },
    };
    let in_batch = holder.as_ref().is_some_and(|h| h.in_batch);
    let refusal = ownership_refusal(holder.as_ref(), put, at)
        .map(|r| r.map_err(|(code, message)| WireError::new(&put.id, code, message)));
    if let Some(refusal) = refusal {
        if let Some(h) = holder {
            pending.insert(record.name.clone(), h);
        }
        return match refusal {
            Ok(attestation) => Decision::Repeat(attestation, in_batch),
            Err(err) => Decision::Refuse(err, in_batch),
        };
    }
    let seq = *next_seq;
    *next_seq += 1;
    let attestation = Attestation::sign(put.spelled.id(), seq, at.now, key);
    let attestation = canonical::to_string(&attestation.to_value());
    pending.insert(
        record.name.clone(),
        Holder {
            id: put.spelled.id(),
            onion: *record.onion.key().as_bytes(),
            serial: record.serial,
            expires: record.expires,
            release: record.release,
            attestation: attestation.clone(),
            in_batch: true,
        },
    );
    Decision::Accept(Entry::spelled(
        seq,
        record,
        put.spelled.clone(),
        attestation,
    ))
}

/// A refusal's code and message.
type Refusal = (Code, String);

/// `None` when `record` may follow `holder` (the record holding its name,
/// if any); `Some(Ok(attestation))` for a repeat of the live record;
/// `Some(Err(..))` for a refusal.
fn ownership_refusal(
    holder: Option<&Holder>,
    put: &PendingPut,
    at: Moment,
) -> Option<Result<String, Refusal>> {
    if let Some(h) = holder.filter(|h| h.id == put.spelled.id()) {
        return Some(Ok(h.attestation.clone()));
    }
    let (live, record) = (holder, &put.record);
    let refusal = if let Some(transfer) = &record.transfer {
        transfer_refusal(live, record, transfer, at.now)
    } else if record.release {
        live.map_or_else(
            || Some(not_held(record, "nothing to release")),
            |live| update_refusal(live, record).or_else(|| cooldown_refusal(record, at.cooldown)),
        )
    } else {
        live.and_then(|live| update_refusal(live, record))
    };
    refusal.map(Err)
}

/// §6: only the holder's onion may follow its record, with a higher serial.
fn update_refusal(live: &Holder, record: &Record) -> Option<Refusal> {
    if live.onion != *record.onion.key().as_bytes() {
        let why = if live.release {
            format!(
                "{} was released and is held until {} (the cool-down); claim it after that",
                record.name, live.expires
            )
        } else {
            format!(
                "{} is held by another key until {}",
                record.name, live.expires
            )
        };
        return Some((Code::NameTaken, why));
    }
    (record.serial <= live.serial).then(|| {
        (
            Code::StaleSerial,
            format!(
                "serial {} is not above the live record's serial {}; use a higher --serial",
                record.serial, live.serial
            ),
        )
    })
}

/// §12.2: the statement's signer holds the name at the serial it hands over.
fn transfer_refusal(
    live: Option<&Holder>,
    record: &Record,
    transfer: &Transfer,
    now: u64,
) -> Option<Refusal> {
    if now >= transfer.expires {
        return Some((
            Code::TransferExpired,
            format!(
                "the transfer statement expired at {} (now {now}); ask the owner for a new one",
                transfer.expires
            ),
        ));
    }
    let Some(live) = live else {
        return Some(not_held(
            record,
            "nothing to transfer; claim it without --transfer",
        ));
    };
    if live.onion == *transfer.to.key().as_bytes() {
        return Some((
            Code::TransferUsed,
            format!(
                "{} already belongs to {}: the statement was used; renew without --transfer",
                record.name, transfer.to
            ),
        ));
    }
    if live.onion != *transfer.from.key().as_bytes() {
        return Some((
            Code::NotOwner,
            format!(
                "the statement is signed by {}, but {} is held by another key",
                transfer.from, record.name
            ),
        ));
    }
    (live.serial != transfer.serial).then(|| {
        (
            Code::StaleSerial,
            format!(
                "the statement hands over serial {}, the live record has serial {}; ask the owner for a new statement",
                transfer.serial, live.serial
            ),
        )
    })
}

/// §12.3: a release holds its name for at least the Quorum's cool-down.
fn cooldown_refusal(record: &Record, cooldown: u64) -> Option<Refusal> {
    (record.expires < record.issued.saturating_add(cooldown)).then(|| {
        (
            Code::BadRelease,
            format!(
                "a release must hold the name for at least {cooldown} s (this Quorum's --release-cooldown); it holds it for {} s",
                record.expires - record.issued
            ),
        )
    })
}

/// The refusal of a transfer or release for a name no record holds.
fn not_held(record: &Record, what: &str) -> Refusal {
    (
        Code::NotOwner,
        format!("no live record holds {}: {what}", record.name),
    )
}

/// The fields of a stored record the ownership rules read, borrowed from
/// its canonical JSON. It was verified when it was stored, so its onion's
/// key point is not checked again: that check costs as much as a
/// signature, on the one committing thread, for every renewal.
#[derive(Deserialize)]
struct Stored<'a> {
    onion: &'a str,
    serial: u64,
    expires: u64,
    #[serde(default)]
    release: bool,
}

/// The live record holding `name` at `now` in the store, if any.
fn live_holder(store: &Store, name: &RegisteredName, now: u64) -> std::io::Result<Option<Holder>> {
    let Some(entry) = store.get(name, now)? else {
        return Ok(None);
    };
    let damaged = |why: String| {
        let why = format!("the stored record of {name} {why}");
        std::io::Error::new(std::io::ErrorKind::InvalidData, why)
    };
    let stored: Stored<'_> =
        serde_json::from_str(&entry.record).map_err(|e| damaged(format!("does not read: {e}")))?;
    let onion = OnionAddress::unchecked_key(stored.onion)
        .ok_or_else(|| damaged("has no onion address".into()))?;
    Ok(Some(Holder {
        id: RecordId::of_canonical(&entry.record),
        onion,
        serial: stored.serial,
        expires: stored.expires,
        release: stored.release,
        attestation: entry.attestation,
        in_batch: false,
    }))
}
