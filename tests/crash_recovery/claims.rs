//! Claims for the tests here to put: a record by a key of its own, and
//! clients streaming claims at the Quorum, noting each acceptance with its
//! seq.

use crate::KEYS;
use onions::record::Record;
use onions::wire::Reply;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use testkit::servers::{attested_seq, owner_key, record, Client};

/// A work-0 record for `name`, by a key no other record uses.
pub(crate) fn claim(tag: u8, n: u32, name: &str) -> Record {
    record(&owner_key(KEYS, tag, n), name, 1, 0, &[])
}

/// A record the Quorum answered `accepted`, with the seq it attested.
#[derive(Clone)]
pub(crate) struct Accepted {
    pub(crate) record: Record,
    pub(crate) seq: u64,
}

/// What one streaming client saw.
pub(crate) struct StreamEnd {
    /// The connection died before every record was answered.
    pub(crate) cut: bool,
}

/// Starts a thread that puts `records` on one connection, as fast as the
/// Quorum answers, adding each acceptance to `accepted`. It stops early
/// when the connection dies; any answer other than `accepted` fails the
/// test (through the join).
pub(crate) fn stream_puts(
    addr: SocketAddr,
    key: String,
    records: Vec<Record>,
    accepted: Arc<Mutex<Vec<Accepted>>>,
) -> JoinHandle<StreamEnd> {
    std::thread::spawn(move || {
        let Some(mut client) = Client::try_connect(addr) else {
            return StreamEnd { cut: true };
        };
        for record in records {
            let Some(reply) = client.try_put(&record) else {
                return StreamEnd { cut: true };
            };
            assert!(
                matches!(reply, Reply::Accepted { .. }),
                "put {}: {reply}",
                record.name
            );
            let seq = attested_seq(&reply, &record, &key);
            accepted.lock().unwrap().push(Accepted { record, seq });
        }
        StreamEnd { cut: false }
    })
}
