//! Taking lost records back from a mirror (`--recover-from`): what a
//! Quorum whose log was damaged in the middle, or restored from an old
//! backup, does before it signs anything, so that it never hands out again
//! a seq its mirrors already hold.
//!
//! Every mirror holds the records with the Quorum's own attestations, which
//! verify by themselves: the Quorum subscribes to the mirror from its own
//! seq + 1, checks each record and that the attestation is its own, and
//! appends them durably, until it holds everything the mirror held.

use crate::keys::PublicKey;
use crate::store::{Entry, Store};
use crate::transport::{self, Endpoint, Route};
use crate::verify::Verifier;
use crate::wire::{Id, Push, Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// Records appended with one fsync.
const BATCH: usize = 1024;
/// The longest wait for the mirror to connect or send the next line.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Takes back from the mirror at `from` every record after the store's
/// seq, checked against the Quorum's own key `own`, and refuses when the
/// mirror holds less than `needed`. Returns how many were taken.
pub fn recover(
    store: &Store,
    own: PublicKey,
    from: &Endpoint,
    route: Route,
    needed: u64,
) -> Result<u64, String> {
    let fail = |e: String| format!("--recover-from {from}: {e}");
    let stream = transport::connect(from, route, TIMEOUT).map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| fail(e.to_string()))?;
    let mut reader = BufReader::new(stream);
    let start = store.seq() + 1;
    let request = Request::Subscribe {
        id: Id::Number(1),
        from: start,
    };
    reader
        .get_mut()
        .write_all(&request.to_line())
        .map_err(|e| fail(e.to_string()))?;
    let held = match Reply::parse(&read_line(&mut reader).map_err(fail)?) {
        Ok(Reply::Subscribed { seq, .. }) => seq,
        Ok(other) => return Err(fail(format!("answered subscribe with {other}"))),
        Err(e) => return Err(fail(format!("bad reply to subscribe: {e}"))),
    };
    if held < needed {
        return Err(fail(format!(
            "it holds records up to seq {held}, but the log held up to seq {needed}; try a mirror that is further along"
        )));
    }
    let verifier = Verifier {
        min_work: 0,
        trusted: vec![own],
        max_skew: None,
    };
    let mut batch = Vec::new();
    let mut taken = 0;
    while store.seq().max(batch.last().map_or(0, |e: &Entry| e.seq)) < held {
        let line = read_line(&mut reader).map_err(fail)?;
        match Push::parse(&line) {
            Ok(Ok(Push::Record {
                seq,
                record,
                attestation,
            })) => {
                if attestation.seq != seq {
                    return Err(fail(format!(
                        "sent seq {seq} with the attestation of another"
                    )));
                }
                verifier
                    .check_replica(&record, &attestation)
                    .map_err(|e| fail(format!("sent seq {seq} that fails verification: {e}")))?;
                let text = crate::canonical::to_string(&attestation.to_value());
                batch.push(Entry::new(seq, &record, text));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(fail(format!("refused: {e}"))),
            Err(e) => return Err(fail(format!("sent a bad line: {e}"))),
        }
        if batch.len() >= BATCH {
            taken += append(store, &mut batch).map_err(fail)?;
        }
    }
    taken += append(store, &mut batch).map_err(fail)?;
    Ok(taken)
}

/// Appends and empties `batch`; returns how many.
fn append(store: &Store, batch: &mut Vec<Entry>) -> Result<u64, String> {
    let n = batch.len() as u64;
    store
        .append(batch)
        .map_err(|e| format!("cannot append to the log: {e}"))?;
    batch.clear();
    Ok(n)
}

/// One line without its newline.
fn read_line(reader: &mut BufReader<std::net::TcpStream>) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) => Err("closed the connection".into()),
        Ok(_) => {
            line.pop();
            Ok(line)
        }
        Err(e) => Err(format!("read failed: {e}")),
    }
}
