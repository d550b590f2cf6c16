//! The lying upstream: relays a real Quorum's subscription stream to
//! mirrors and lies with the Quorum's own key, as its [`Plan`] says.

use super::{attacker, note};
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::{self, Leaf, LeafKey};
use onions::record::{Claim, Record};
use onions::transfer::Transfer;
use onions::wire::{Id, Push, Reply, Request};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a lying upstream lies, with the Quorum's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Plan {
    /// Heads with this seq or more get a false root.
    FalseRoot(u64),
    /// Records of this name are left out, and every head is re-signed
    /// (same seq and time) over the records sent: heads that conflict
    /// with the Quorum's, each consistent with the stream it ends.
    Split(String),
    /// Once a head covers a record of this name, a record for it by
    /// another key, attested at the next seq, is sent with a head over
    /// it; nothing real is relayed after.
    HandOver(String),
    /// The same, the record carrying a transfer statement (PROTOCOL.md
    /// §12.2) signed by a key that never held the name.
    TransferFromStranger(String),
}

/// Every push relayed so far, with its record's seq (0 for a head).
type History = Mutex<Vec<(u64, Vec<u8>)>>;

/// Subscribers and the first seq each asked for.
type Subscribers = Mutex<Vec<(u64, TcpStream)>>;

/// Relays the Quorum's stream to every subscriber, lying as `plan` says.
pub(super) fn serve_upstream(
    listener: &TcpListener,
    quorum: SocketAddr,
    key_file: &Path,
    plan: Plan,
    log: &Arc<Mutex<std::fs::File>>,
) {
    let key = SigningKey::read_tor_file(key_file).unwrap();
    let history: Arc<History> = Arc::default();
    let subscribers: Arc<Subscribers> = Arc::default();
    {
        let (history, subscribers, log) = (history.clone(), subscribers.clone(), log.clone());
        std::thread::spawn(move || relay(quorum, &key, &plan, &history, &subscribers, &log));
    }
    for stream in listener.incoming().map_while(Result::ok) {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).is_err() {
            continue;
        }
        let Ok(Request::Subscribe { id, from }) = Request::parse(line.trim_ascii_end()) else {
            continue;
        };
        let mut stream = reader.into_inner();
        let past = history.lock().unwrap();
        let seq = past.iter().map(|(s, _)| *s).max().unwrap_or(0);
        let mut bytes = Reply::Subscribed { id, seq }.to_line();
        for (record_seq, push) in past.iter() {
            if *record_seq == 0 || *record_seq >= from {
                bytes.extend_from_slice(push);
            }
        }
        if stream.write_all(&bytes).is_ok() {
            subscribers.lock().unwrap().push((from, stream));
        }
    }
}

/// The records a lying upstream has sent: each name's newest, for the
/// roots of the heads it re-signs.
#[derive(Default)]
struct Sent {
    newest: std::collections::HashMap<LeafKey, (Leaf, u64)>,
    /// True once a name was handed over: nothing real is relayed after.
    handed: bool,
}

impl Sent {
    fn add(&mut self, seq: u64, record: &Record) {
        let key = LeafKey::of(&record.name);
        let leaf = Leaf {
            key,
            record: record.id(),
            seq,
        };
        self.newest.insert(key, (leaf, record.expires));
    }

    /// `head` re-signed over what was sent, as of its time.
    fn head(&self, head: &SignedHead, seq: u64, key: &SigningKey) -> SignedHead {
        let live: Vec<Leaf> = self
            .newest
            .values()
            .filter(|(_, expires)| *expires > head.time)
            .map(|(leaf, _)| *leaf)
            .collect();
        let root = merkle::reference_root(&live);
        SignedHead::sign(seq, head.time, live.len() as u64, root, key)
    }
}

/// What the relay sends for one push from the Quorum: lines with their
/// record seq (0 for a head), or nothing.
fn lie(
    push: Push,
    line: &[u8],
    plan: &Plan,
    key: &SigningKey,
    sent: &mut Sent,
    log: &Mutex<std::fs::File>,
) -> Vec<(u64, Vec<u8>)> {
    match (plan, push) {
        (_, Push::Record { seq, record, .. }) => {
            if matches!(plan, Plan::Split(name) if record.name.as_str() == name) {
                note(log, &format!("lie left out seq {seq} ({})", record.name));
                return Vec::new();
            }
            if sent.handed {
                return Vec::new();
            }
            sent.add(seq, &record);
            vec![(seq, line.to_vec())]
        }
        (Plan::FalseRoot(from), Push::Head(head)) if head.seq >= *from => {
            let false_root = sodiumoxide::crypto::hash::sha256::hash(&head.root).0;
            let lie = SignedHead::sign(head.seq, head.time, head.size, false_root, key);
            note(
                log,
                &format!("lie head seq {} time {}", head.seq, head.time),
            );
            vec![(0, Push::Head(lie).to_line())]
        }
        (Plan::Split(_), Push::Head(head)) => {
            let lie = sent.head(&head, head.seq, key);
            note(
                log,
                &format!("lie head seq {} time {}", head.seq, head.time),
            );
            vec![(0, Push::Head(lie).to_line())]
        }
        (Plan::HandOver(name), Push::Head(head)) => {
            hand_over((name, false), &head, key, sent, line, log)
        }
        (Plan::TransferFromStranger(name), Push::Head(head)) => {
            hand_over((name, true), &head, key, sent, line, log)
        }
        (_, Push::Head(_)) => vec![(0, line.to_vec())],
        (_, Push::Heartbeat { .. } | Push::Cosignatures { .. }) => Vec::new(),
    }
}

/// Relays `head`; once it covers a record of `name`, follows it with a
/// record for `name` by the attacker (with a statement the attacker signed
/// itself when `by_statement`), attested at the next seq with the Quorum's
/// key, and a head over it (then relays nothing real again).
fn hand_over(
    (name, by_statement): (&str, bool),
    head: &SignedHead,
    key: &SigningKey,
    sent: &mut Sent,
    line: &[u8],
    log: &Mutex<std::fs::File>,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = vec![(0, line.to_vec())];
    let name = onions::name::RegisteredName::parse(name).unwrap();
    if sent.handed {
        return Vec::new();
    }
    if !sent.newest.contains_key(&LeafKey::of(&name)) {
        return out;
    }
    let issued = onions::clock::now();
    let heir = || SigningKey::from_seed(&[0xa8; 32]);
    let (signer, serial) = if by_statement {
        (heir(), 2)
    } else {
        (attacker(), 1)
    };
    let claim = Claim {
        name: name.clone(),
        subdomains: Default::default(),
        contact: "attacker".into(),
        serial,
        issued,
        expires: issued + 86_400,
        work: 0,
    };
    let mut record = Record::from_claim(claim, &signer);
    if by_statement {
        let to = onions::onion::OnionAddress::from_key(heir().public());
        let window = (issued, issued + 3600);
        record.transfer = Some(Transfer::sign(name, to, 1, window, &attacker()));
    }
    record.sign_with(&signer);
    let seq = head.seq + 1;
    let attestation = Attestation::sign(record.id(), seq, issued, key);
    sent.add(seq, &record);
    let forged = Push::Record {
        seq,
        record,
        attestation,
    };
    let after = sent.head(head, seq, key);
    note(
        log,
        &format!("lie handed {} over at seq {seq}", name_of(&forged)),
    );
    out.push((seq, forged.to_line()));
    out.push((0, Push::Head(after).to_line()));
    sent.handed = true;
    out
}

/// The name of a record push.
fn name_of(push: &Push) -> String {
    match push {
        Push::Record { record, .. } => record.name.to_string(),
        _ => String::new(),
    }
}

/// Follows the Quorum and hands every push on, lying as `plan` says.
fn relay(
    quorum: SocketAddr,
    key: &SigningKey,
    plan: &Plan,
    history: &History,
    subscribers: &Subscribers,
    log: &Mutex<std::fs::File>,
) {
    let stream = TcpStream::connect(quorum).unwrap();
    let mut reader = BufReader::new(stream);
    let subscribe = Request::Subscribe {
        id: Id::Number(1),
        from: 1,
    };
    reader.get_mut().write_all(&subscribe.to_line()).unwrap();
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    let mut sent = Sent::default();
    loop {
        line.clear();
        if !matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            return;
        }
        let Ok(Ok(push)) = Push::parse(line.trim_ascii_end()) else {
            continue;
        };
        if matches!(push, Push::Heartbeat { .. } | Push::Cosignatures { .. }) {
            let mut all = subscribers.lock().unwrap();
            all.retain_mut(|(_, s)| s.write_all(&line).is_ok());
            continue;
        }
        for (seq, out) in lie(push, &line, plan, key, &mut sent, log) {
            history.lock().unwrap().push((seq, out.clone()));
            subscribers
                .lock()
                .unwrap()
                .retain_mut(|(from, s)| (seq != 0 && seq < *from) || s.write_all(&out).is_ok());
        }
    }
}
