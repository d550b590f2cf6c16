//! The Quorum's committer: the one thread that decides who owns a name,
//! assigns seqs, attests, and makes batches durable with one fsync.
//!
//! Workers have already verified each claim (signature, work, expiry), so
//! this thread does only what must be serial: the ownership rules of
//! protocol.md §6, against the live set and the claims earlier in the same
//! batch. Replies go out only after the batch is on disk.

use super::{LoopEvent, Outbox};
use crate::attest::Attestation;
use crate::canonical;
use crate::clock;
use crate::keys::SigningKey;
use crate::name::RegisteredName;
use crate::record::Record;
use crate::store::{Entry, Store};
use crate::wire::{self, Code, WireError};
use crossbeam_channel::Receiver;
use mio::Token;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Most claims committed with one fsync.
const MAX_BATCH: usize = 1024;

/// A verified claim waiting for an ownership decision.
pub struct Claim {
    /// The connection to answer.
    pub conn: Token,
    /// Its session number, for the log.
    pub session: u64,
    /// The request id.
    pub id: Value,
    /// The verified record.
    pub record: Record,
}

/// The live record a decision is made against: from the store, or an
/// earlier claim in the same batch.
struct Holder {
    record: Record,
    attestation: String,
}

/// What became of one claim.
enum Decision {
    /// Accepted: to be appended, then answered.
    Accept(Entry),
    /// The very record already live: answered with its attestation.
    Repeat(String),
    /// Refused.
    Refuse(WireError),
}

/// Runs the committer until every worker has dropped its sender.
pub fn run(store: &Store, key: SigningKey, claims: Receiver<Claim>, outbox: Outbox) {
    while let Ok(first) = claims.recv() {
        let mut batch = vec![first];
        batch.extend(claims.try_iter().take(MAX_BATCH - 1));
        commit_batch(store, &key, batch, &outbox);
        super::maybe_compact(store);
    }
}

fn commit_batch(store: &Store, key: &SigningKey, batch: Vec<Claim>, outbox: &Outbox) {
    let now = clock::now();
    let mut next_seq = store.head() + 1;
    let mut pending: HashMap<RegisteredName, Holder> = HashMap::new();
    let mut entries = Vec::new();
    let mut answers = Vec::with_capacity(batch.len());
    for claim in batch {
        let decision = decide(store, key, &claim, &mut pending, &mut next_seq, now);
        if let Decision::Accept(entry) = &decision {
            entries.push(entry.clone());
        }
        answers.push((claim, decision));
    }
    let durable = entries.is_empty() || append(store, &entries);
    for (claim, decision) in answers {
        answer(claim, decision, durable, outbox);
    }
    if durable && !entries.is_empty() {
        let pushes = entries
            .iter()
            .map(|e| (e.seq, wire::push_line(e.seq, &e.record, &e.attestation)))
            .collect();
        outbox.send(LoopEvent::Committed {
            pushes: Arc::new(pushes),
        });
    }
}

fn append(store: &Store, entries: &[Entry]) -> bool {
    match store.append(entries) {
        Ok(()) => true,
        Err(e) => {
            log::error!("cannot append {} records to the log: {e}", entries.len());
            false
        }
    }
}

fn answer(claim: Claim, decision: Decision, durable: bool, outbox: &Outbox) {
    let session = claim.session;
    let name = &claim.record.name;
    let bytes = match decision {
        Decision::Accept(entry) if durable => {
            log::info!(
                "session {session}: put {name} -> accepted seq {}",
                entry.seq
            );
            wire::accepted_line(&claim.id, &entry.attestation)
        }
        Decision::Accept(_) => WireError::new(
            &claim.id,
            Code::Internal,
            "the record could not be stored; try again",
        )
        .to_line(),
        Decision::Repeat(attestation) => {
            log::info!("session {session}: put {name} -> already live, same record");
            wire::accepted_line(&claim.id, &attestation)
        }
        Decision::Refuse(err) => {
            log::info!("session {session}: put {name} -> {err}");
            err.to_line()
        }
    };
    outbox.send(LoopEvent::Reply {
        conn: claim.conn,
        bytes,
        close: false,
    });
}

/// Applies protocol.md §6 to one claim.
fn decide(
    store: &Store,
    key: &SigningKey,
    claim: &Claim,
    pending: &mut HashMap<RegisteredName, Holder>,
    next_seq: &mut u64,
    now: u64,
) -> Decision {
    let record = &claim.record;
    let holder = match pending.remove(&record.name) {
        Some(h) => Some(h),
        None => match live_holder(store, &record.name, now) {
            Ok(h) => h,
            Err(e) => {
                log::error!(
                    "session {}: reading the live record of {}: {e}",
                    claim.session,
                    record.name
                );
                return Decision::Refuse(WireError::new(
                    &claim.id,
                    Code::Internal,
                    "storage error; try again",
                ));
            }
        },
    };
    let refusal = holder
        .as_ref()
        .and_then(|h| ownership_refusal(h, record, &claim.id));
    match (refusal, holder) {
        (Some(Ok(attestation)), Some(h)) => {
            pending.insert(record.name.clone(), h);
            Decision::Repeat(attestation)
        }
        (Some(Err(err)), Some(h)) => {
            pending.insert(record.name.clone(), h);
            Decision::Refuse(err)
        }
        _ => {
            let seq = *next_seq;
            *next_seq += 1;
            let attestation = Attestation::sign(record.id(), seq, now, key);
            let attestation = canonical::to_string(&attestation.to_value());
            pending.insert(
                record.name.clone(),
                Holder {
                    record: record.clone(),
                    attestation: attestation.clone(),
                },
            );
            Decision::Accept(Entry {
                seq,
                expires: record.expires,
                name: record.name.clone(),
                record: record.canonical(),
                attestation,
            })
        }
    }
}

/// `None` when `record` may replace `holder`; `Some(Ok(attestation))` for
/// a repeat of the live record; `Some(Err(..))` for a refusal.
fn ownership_refusal(
    holder: &Holder,
    record: &Record,
    id: &Value,
) -> Option<Result<String, WireError>> {
    let live = &holder.record;
    if live.id() == record.id() {
        return Some(Ok(holder.attestation.clone()));
    }
    if live.onion != record.onion {
        return Some(Err(WireError::new(
            id,
            Code::NameTaken,
            format!(
                "{} is held by another key until {}",
                record.name, live.expires
            ),
        )));
    }
    if record.serial <= live.serial {
        return Some(Err(WireError::new(
            id,
            Code::StaleSerial,
            format!(
                "serial {} is not above the live record's serial {}; use a higher --serial",
                record.serial, live.serial
            ),
        )));
    }
    None
}

fn live_holder(store: &Store, name: &RegisteredName, now: u64) -> std::io::Result<Option<Holder>> {
    let Some(entry) = store.get(name, now)? else {
        return Ok(None);
    };
    let record = Record::from_json(&entry.record)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(Some(Holder {
        record,
        attestation: entry.attestation,
    }))
}
