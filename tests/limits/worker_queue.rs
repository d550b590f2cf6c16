//! `--worker-queue`: a burst of claims that need proof-of-work checks is
//! partly answered `busy`, never anything else, and nothing is lost.

use crate::wire::assert_logged;
use crate::{KEYS, QUORUM_IP};
use onions::name::RegisteredName;
use onions::record::{Claim, Record};
use onions::wire::{Code, Reply};
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use testkit::checks::assert_found;
use testkit::servers::{attested_seq, owner_key, print_key, state_dir, Server};
use testkit::TempDir;

/// A work-`work` record for `name`, by a key of its own.
fn worked(tag: u8, n: u32, name: &str, work: u64) -> Record {
    let key = owner_key(KEYS, tag, n);
    let issued = onions::clock::now();
    let claim = Claim {
        name: RegisteredName::parse(name).unwrap(),
        subdomains: BTreeMap::new(),
        contact: String::new(),
        serial: 1,
        issued,
        expires: issued + 86_400,
        work,
    };
    onions::operator::finish_record(claim, &key, 1, Duration::from_millis(1), &mut |_| {}).unwrap()
}

#[test]
fn worker_queue_answers_busy_under_a_burst_and_loses_nothing() {
    const CLIENTS: usize = 30;
    const ROUNDS: usize = 10;
    let tmp = TempDir::new("worker-queue");
    let state = state_dir(&tmp, "quorum");
    let key = print_key(&state);
    let quorum = Server::quorum(
        QUORUM_IP,
        &state,
        &["--workers", "1", "--worker-queue", "1"],
    );
    // Checking any non-zero work costs the one worker an Argon2id call;
    // work 3 keeps making them cheap here.
    let records: Vec<Record> = (0..CLIENTS as u32)
        .map(|i| worked(70, i, &format!("burst-{i}.tor"), 3))
        .collect();

    // Bursts: every client sends its claim at once. A claim answered busy
    // is sent again in the next burst; an accepted one is answered the
    // same way again (a repeat of the live record).
    let mut busy = 0;
    for _ in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let burst: Vec<_> = records
            .iter()
            .cloned()
            .map(|record| {
                let mut client = quorum.client();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let reply = client.try_put(&record);
                    (record, reply)
                })
            })
            .collect();
        for thread in burst {
            let (record, reply) = thread.join().unwrap();
            let reply = reply.unwrap_or_else(|| panic!("no answer to {}", record.name));
            match &reply {
                Reply::Accepted { .. } => {
                    attested_seq(&reply, &record, &key);
                }
                Reply::Error(e) if e.code == Code::Busy => busy += 1,
                _ => panic!("put {}: neither accepted nor busy: {reply}", record.name),
            }
        }
        if busy > 0 {
            break;
        }
    }
    assert!(
        busy > 0,
        "{ROUNDS} bursts of {CLIENTS} never filled the queue"
    );
    assert_logged(&quorum, "--worker-queue");

    // The server keeps serving: one at a time, every claim gets in.
    let mut client = quorum.client();
    for record in &records {
        let reply = client.put(record);
        assert!(matches!(reply, Reply::Accepted { .. }), "{reply}");
    }
    let status = quorum.status();
    assert_eq!(status.records, CLIENTS as u64, "{status}");
    assert_eq!(status.seq, CLIENTS as u64, "{status}");
    let head = status.head.as_ref().expect("no head");
    assert_eq!(
        (head.seq, head.size),
        (CLIENTS as u64, CLIENTS as u64),
        "{status}"
    );
    for record in &records {
        let name = record.name.as_str();
        assert_found(&client.lookup(name), name, record, &key);
    }
}
