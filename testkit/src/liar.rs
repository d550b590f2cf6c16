//! Lying servers: real processes speaking the protocol over real sockets,
//! whose answers are false, so tests can show that nothing believes them.
//!
//! A liar is the test binary itself, started again with only its
//! `liar_process` test selected and its orders in the environment
//! ([`Liar::start`]); every test file that starts liars declares that test
//! with [`liar_entry!`]. The process prints where it listens, logs one line
//! per lie to a file, and is stopped by its PID when its guard drops.
//!
//! Two kinds:
//! - a **mirror** that answers lookups with forgeries, taking the genuine
//!   material it mangles from an honest mirror, in turn from a list
//!   ([`Forgery`]);
//! - an **upstream** that relays a real Quorum's subscription stream to
//!   mirrors and lies with the Quorum's own key ([`Plan`]): heads over a
//!   root that does not match the records (a Quorum whose tree disagrees
//!   with its log), a split view (a name's records left out, and every
//!   head re-signed over what was sent: a fork of the real heads), or a
//!   live name handed to another key.

use crate::ChildGuard;
use onions::attest::Attestation;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::{self, Leaf, LeafKey, Proof, Terminal};
use onions::name::LookupName;
use onions::record::{Claim, Record, RecordId};
use onions::wire::{Id, Push, Reply, Request};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The environment variable that carries a liar's orders.
const ORDERS: &str = "ONIONS_TEST_LIAR";

/// Declares the `liar_process` test that [`Liar::start`] runs in a child
/// process. Ignored in normal runs; without orders it returns at once.
#[macro_export]
macro_rules! liar_entry {
    () => {
        #[test]
        #[ignore = "a lying server, started by tests as a child process"]
        fn liar_process() {
            $crate::liar::serve_from_env();
        }
    };
}

/// One way a lying mirror answers a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forgery {
    /// A record for the name asked, pointing to the attacker's service,
    /// signed by the attacker, attested and headed by the attacker's own
    /// "Quorum" key.
    Foreign,
    /// The genuine answer with the record's onion swapped for the attacker's.
    SwapOnion,
    /// The genuine, correctly proven answer for another name.
    OtherName,
    /// `not_found` for a registered name, with the genuine head and a proof
    /// that ends in an empty subtree where the name's leaf is.
    Deny,
    /// `not_found` with the genuine head and an absence proof that is valid
    /// against another root (a tree without the name).
    DenyOtherRoot,
    /// The genuine answer without its proof.
    StripProof,
    /// The first genuine answer it fetched for the name, replayed with its
    /// old head (a superseded record, or a head older than the limit).
    Replay,
}

/// What a liar process is told to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Orders {
    /// A lying mirror.
    Mirror {
        /// The honest mirror it takes genuine answers from.
        honest: SocketAddr,
        /// The name whose genuine answer [`Forgery::OtherName`] sends.
        other_name: String,
        /// Names whose answers [`Forgery::Replay`] captures at start.
        prefetch: Vec<String>,
        /// Forgeries, used in turn.
        forgeries: Vec<Forgery>,
    },
    /// A lying upstream.
    Upstream {
        /// The real Quorum it relays.
        quorum: SocketAddr,
        /// The Quorum's key file, to re-sign heads.
        key_file: PathBuf,
        /// How it lies.
        plan: Plan,
    },
}

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
}

/// A running liar; stopped when dropped.
pub struct Liar {
    _guard: ChildGuard,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Liar {
    /// Starts a lying mirror on `ip` that mangles answers of `honest`.
    pub fn mirror(
        ip: &str,
        log: &Path,
        honest: SocketAddr,
        other_name: &str,
        prefetch: &[&str],
        forgeries: &[Forgery],
    ) -> Liar {
        let orders = Orders::Mirror {
            honest,
            other_name: other_name.to_owned(),
            prefetch: prefetch.iter().map(|s| s.to_string()).collect(),
            forgeries: forgeries.to_vec(),
        };
        Liar::start(ip, log, &orders)
    }

    /// Starts a lying upstream on `ip` relaying `quorum`, whose key is in
    /// `key_file`, lying as `plan` says.
    pub fn upstream(ip: &str, log: &Path, quorum: SocketAddr, key_file: &Path, plan: Plan) -> Liar {
        let orders = Orders::Upstream {
            quorum,
            key_file: key_file.to_owned(),
            plan,
        };
        Liar::start(ip, log, &orders)
    }

    /// Starts the test binary again as a liar with `orders`.
    fn start(ip: &str, log: &Path, orders: &Orders) -> Liar {
        let exe = std::env::current_exe().expect("the test binary's path");
        let listener_ip: std::net::IpAddr = ip.parse().expect("an IP address");
        let mut child = Command::new(exe)
            .args([
                "liar_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ORDERS, serde_json::to_string(orders).unwrap())
            .env("ONIONS_TEST_LIAR_IP", listener_ip.to_string())
            .env("ONIONS_TEST_LIAR_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a liar process");
        let stdout = child.stdout.take().expect("the liar's stdout");
        let guard = ChildGuard::new(child, format!("liar on {ip}"));
        let addr = read_address(stdout);
        Liar {
            _guard: guard,
            addr,
            log: log.to_owned(),
        }
    }

    /// Lies told so far (one log line each).
    pub fn lies(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|t| t.lines().filter(|l| l.starts_with("lie ")).count())
            .unwrap_or(0)
    }
}

/// Reads the `listening ADDR` line the liar prints (bounded by the
/// liar's own start, which is quick; the guard kills it if the test fails).
fn read_address(stdout: std::process::ChildStdout) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest writes "test liar_process ... " on the same line.
            if let Some((_, addr)) = line.split_once("listening ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the liar says where it listens within 30 s");
    addr.parse().expect("a socket address")
}

/// The body of `liar_process`: serves as the orders say, until killed.
pub fn serve_from_env() {
    let Ok(text) = std::env::var(ORDERS) else {
        return;
    };
    onions::keys::init().unwrap();
    let orders: Orders = serde_json::from_str(&text).unwrap();
    let ip = std::env::var("ONIONS_TEST_LIAR_IP").unwrap();
    let log = PathBuf::from(std::env::var("ONIONS_TEST_LIAR_LOG").unwrap());
    let listener = TcpListener::bind((ip.as_str(), 0)).unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap(),
    ));
    match orders {
        Orders::Mirror {
            honest,
            other_name,
            prefetch,
            forgeries,
        } => serve_mirror(&listener, honest, &other_name, &prefetch, &forgeries, &log),
        Orders::Upstream {
            quorum,
            key_file,
            plan,
        } => serve_upstream(&listener, quorum, &key_file, plan, &log),
    }
}

/// Writes one line to the liar's log.
fn note(log: &Mutex<std::fs::File>, line: &str) {
    let mut file = log.lock().unwrap();
    let _ = writeln!(file, "{line}");
}

// ------------------------------------------------------------ lying mirror

/// Asks the honest mirror for `name`.
fn honest_answer(honest: SocketAddr, name: &str) -> Reply {
    let stream = TcpStream::connect_timeout(&honest, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    let request = Request::Lookup {
        id: Id::Number(1),
        name: LookupName::from_user(name).unwrap(),
    };
    reader.get_mut().write_all(&request.to_line()).unwrap();
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    Reply::parse(&line).unwrap()
}

fn serve_mirror(
    listener: &TcpListener,
    honest: SocketAddr,
    other_name: &str,
    prefetch: &[String],
    forgeries: &[Forgery],
    log: &Mutex<std::fs::File>,
) {
    let captured: Vec<(String, Reply)> = prefetch
        .iter()
        .map(|n| (n.clone(), honest_answer(honest, n)))
        .collect();
    let mut turn = 0usize;
    for stream in listener.incoming().map_while(Result::ok) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let request = Request::parse(line.strip_suffix(b"\n").unwrap_or(&line));
            line.clear();
            let Ok(Request::Lookup { id, name }) = request else {
                continue;
            };
            let forgery = forgeries[turn % forgeries.len()];
            let genuine = honest_answer(honest, name.as_str());
            let bytes = if matches!(genuine, Reply::Found { .. }) || !needs_record(forgery) {
                turn += 1;
                note(log, &format!("lie {forgery:?} {name}"));
                forge(forgery, &name, id, genuine, honest, other_name, &captured)
            } else {
                note(log, &format!("honest {name}: nothing to mangle"));
                with_id(genuine, id).to_line()
            };
            if reader.get_mut().write_all(&bytes).is_err() {
                break;
            }
        }
    }
}

/// The attacker's service key.
fn attacker() -> SigningKey {
    SigningKey::from_seed(&[0xa7; 32])
}

/// True for forgeries made from the genuine record of the name asked.
fn needs_record(forgery: Forgery) -> bool {
    matches!(
        forgery,
        Forgery::SwapOnion | Forgery::Deny | Forgery::DenyOtherRoot | Forgery::StripProof
    )
}

/// One forged reply line for a lookup of `name`, whose genuine answer is
/// `genuine` (a `found` for the forgeries that need one).
fn forge(
    forgery: Forgery,
    name: &LookupName,
    id: Id,
    genuine: Reply,
    honest: SocketAddr,
    other_name: &str,
    captured: &[(String, Reply)],
) -> Vec<u8> {
    let genuine = || genuine.clone();
    match forgery {
        Forgery::Foreign => foreign(name, id),
        Forgery::SwapOnion => {
            let Reply::Found {
                attestation,
                head,
                proof,
                record,
                ..
            } = genuine()
            else {
                panic!("the honest mirror does not know {name}");
            };
            let mut value = record.to_value();
            value["onion"] = onions::onion::OnionAddress::from_key(attacker().public())
                .to_string()
                .into();
            let mut line = serde_json::to_value(FoundParts {
                record: value,
                attestation: attestation.to_value(),
                head: head.to_value(),
                proof: proof.to_value(),
            })
            .unwrap();
            line["type"] = "found".into();
            line["id"] = id.to_value();
            json_line(&line)
        }
        Forgery::OtherName => with_id(honest_answer(honest, other_name), id).to_line(),
        Forgery::Deny => {
            let Reply::Found { head, proof, .. } = genuine() else {
                panic!("the honest mirror does not know {name}");
            };
            let proof = Proof {
                siblings: proof.siblings,
                terminal: Some(Terminal::Empty),
            };
            Reply::NotFound {
                id,
                head,
                proof,
                cosignatures: Vec::new(),
            }
            .to_line()
        }
        Forgery::DenyOtherRoot => {
            let Reply::Found { head, .. } = genuine() else {
                panic!("the honest mirror does not know {name}");
            };
            let others: Vec<Leaf> = (0u8..6)
                .map(|i| Leaf {
                    key: LeafKey([i.wrapping_mul(41); 32]),
                    record: RecordId([i; 32]),
                    seq: u64::from(i) + 1,
                })
                .collect();
            let proof = merkle::reference_proof(&others, &LeafKey::of(&name.registered()));
            Reply::NotFound {
                id,
                head,
                proof,
                cosignatures: Vec::new(),
            }
            .to_line()
        }
        Forgery::StripProof => {
            let mut line: serde_json::Value = serde_json::from_slice(&genuine().to_line()).unwrap();
            line.as_object_mut().unwrap().remove("proof");
            line["id"] = id.to_value();
            json_line(&line)
        }
        Forgery::Replay => {
            let (_, old) = captured
                .iter()
                .find(|(n, _)| n == name.as_str())
                .expect("a captured answer for the name");
            with_id(old.clone(), id).to_line()
        }
    }
}

/// The parts of a found reply, as JSON, for a forgery that alters a field
/// the typed reply would refuse to carry.
#[derive(Serialize)]
struct FoundParts {
    record: serde_json::Value,
    attestation: serde_json::Value,
    head: serde_json::Value,
    proof: serde_json::Value,
}

/// `value` as one line.
fn json_line(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap();
    bytes.push(b'\n');
    bytes
}

/// `reply` answering request `id`.
fn with_id(reply: Reply, id: Id) -> Reply {
    match reply {
        Reply::Found {
            record,
            attestation,
            head,
            proof,
            cosignatures,
            ..
        } => Reply::Found {
            id,
            record,
            attestation,
            head,
            proof,
            cosignatures,
        },
        Reply::NotFound {
            head,
            proof,
            cosignatures,
            ..
        } => Reply::NotFound {
            id,
            head,
            proof,
            cosignatures,
        },
        other => other,
    }
}

/// A complete, self-consistent answer made by the attacker's own keys.
fn foreign(name: &LookupName, id: Id) -> Vec<u8> {
    let fake_quorum = SigningKey::from_seed(&[0xa8; 32]);
    let issued = onions::clock::now();
    let claim = Claim {
        name: name.registered(),
        subdomains: Default::default(),
        contact: "attacker".into(),
        serial: 9,
        issued,
        expires: issued + 86_400,
        work: 0,
    };
    let mut record = Record::from_claim(claim, &attacker());
    record.sign_with(&attacker());
    let attestation = Attestation::sign(record.id(), 1, issued, &fake_quorum);
    let leaf = Leaf {
        key: LeafKey::of(&record.name),
        record: record.id(),
        seq: 1,
    };
    let head = SignedHead::sign(1, issued, 1, leaf.hash(), &fake_quorum);
    let proof = Proof {
        siblings: Vec::new(),
        terminal: None,
    };
    Reply::Found {
        id,
        record,
        attestation,
        head,
        proof,
        cosignatures: Vec::new(),
    }
    .to_line()
}

// ---------------------------------------------------------- lying upstream

/// Every push relayed so far, with its record's seq (0 for a head).
type History = Mutex<Vec<(u64, Vec<u8>)>>;

/// Subscribers and the first seq each asked for.
type Subscribers = Mutex<Vec<(u64, TcpStream)>>;

/// Relays the Quorum's stream to every subscriber, lying as `plan` says.
fn serve_upstream(
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
        (Plan::HandOver(name), Push::Head(head)) => hand_over(name, &head, key, sent, line, log),
        (_, Push::Head(_)) => vec![(0, line.to_vec())],
        (_, Push::Heartbeat { .. } | Push::Cosignatures { .. }) => Vec::new(),
    }
}

/// Relays `head`; once it covers a record of `name`, follows it with a
/// record for `name` by the attacker, attested at the next seq with the
/// Quorum's key, and a head over it (then relays nothing real again).
fn hand_over(
    name: &str,
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
    let claim = Claim {
        name,
        subdomains: Default::default(),
        contact: "attacker".into(),
        serial: 1,
        issued,
        expires: issued + 86_400,
        work: 0,
    };
    let mut record = Record::from_claim(claim, &attacker());
    record.sign_with(&attacker());
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
