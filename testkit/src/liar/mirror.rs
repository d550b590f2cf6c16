//! The lying mirror: answers lookups with forgeries ([`Forgery`]), made
//! from the genuine answers of an honest mirror it asks in turn, and
//! reverse lookups with the honest names and names of its own.

use super::{attacker, note};
use onions::attest::Attestation;
use onions::canonical;
use onions::head::SignedHead;
use onions::keys::SigningKey;
use onions::merkle::{self, Leaf, LeafKey, Proof, Terminal};
use onions::name::LookupName;
use onions::record::{Claim, Record, RecordId};
use onions::wire::{found_line, not_found_line, Id, Reply, Request};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

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
    /// No forgery: the honest mirror's answer, passed on, for a liar whose
    /// lie is elsewhere (a reverse answer naming what does not point at
    /// the onion, which clients must then refuse).
    Genuine,
}

/// Sends `request` to the honest mirror and returns its reply.
fn ask_honest(honest: SocketAddr, request: &Request) -> Reply {
    let stream = TcpStream::connect_timeout(&honest, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(&request.to_line()).unwrap();
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    Reply::parse(&line).unwrap()
}

/// Asks the honest mirror for `name`.
fn honest_answer(honest: SocketAddr, name: &str) -> Reply {
    let request = Request::Lookup {
        id: Id::Number(1),
        name: LookupName::from_user(name).unwrap(),
    };
    ask_honest(honest, &request)
}

/// How a lying mirror lies.
pub(super) struct MirrorLies {
    /// The honest mirror it takes genuine answers from.
    pub(super) honest: SocketAddr,
    /// The name whose genuine answer [`Forgery::OtherName`] sends.
    pub(super) other_name: String,
    /// Forgeries of lookups, used in turn.
    pub(super) forgeries: Vec<Forgery>,
    /// Names added to every reverse answer.
    pub(super) claims: Vec<String>,
}

pub(super) fn serve_mirror(
    listener: &TcpListener,
    lies: &MirrorLies,
    prefetch: &[String],
    log: &Mutex<std::fs::File>,
) {
    let captured: Vec<(String, Reply)> = prefetch
        .iter()
        .map(|n| (n.clone(), honest_answer(lies.honest, n)))
        .collect();
    let mut turn = 0usize;
    for stream in listener.incoming().map_while(Result::ok) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let request = Request::parse(line.strip_suffix(b"\n").unwrap_or(&line));
            line.clear();
            let bytes = match request {
                Ok(Request::Lookup { id, name }) => {
                    lie_about(lies, &mut turn, &name, id, &captured, log)
                }
                Ok(Request::Reverse { id, onion }) => lie_reverse(lies, id, onion, log),
                _ => continue,
            };
            if reader.get_mut().write_all(&bytes).is_err() {
                break;
            }
        }
    }
}

/// The reply to a lookup of `name`, forged as the forgery of this `turn`
/// says when there is something to mangle (the turn passes then).
fn lie_about(
    lies: &MirrorLies,
    turn: &mut usize,
    name: &LookupName,
    id: Id,
    captured: &[(String, Reply)],
    log: &Mutex<std::fs::File>,
) -> Vec<u8> {
    let forgery = lies.forgeries[*turn % lies.forgeries.len()];
    let genuine = honest_answer(lies.honest, name.as_str());
    if forgery == Forgery::Genuine {
        *turn += 1;
        note(log, &format!("honest {name}"));
        return with_id(genuine, id).to_line();
    }
    if matches!(genuine, Reply::Found { .. }) || !needs_record(forgery) {
        *turn += 1;
        note(log, &format!("lie {forgery:?} {name}"));
        let other = lies.other_name.as_str();
        forge(forgery, name, id, genuine, lies.honest, other, captured)
    } else {
        note(log, &format!("honest {name}: nothing to mangle"));
        with_id(genuine, id).to_line()
    }
}

/// The reply to a reverse lookup: the honest mirror's names and the
/// claimed ones, ascending, at most as many as a reply may hold.
fn lie_reverse(
    lies: &MirrorLies,
    id: Id,
    onion: onions::onion::OnionAddress,
    log: &Mutex<std::fs::File>,
) -> Vec<u8> {
    let request = Request::Reverse {
        id: id.clone(),
        onion,
    };
    let (mut names, more) = match ask_honest(lies.honest, &request) {
        Reply::Names { names, more, .. } => (names, more),
        other => return with_id(other, id).to_line(),
    };
    for claim in &lies.claims {
        names.push(onions::name::RegisteredName::parse(claim).unwrap());
    }
    names.sort();
    names.dedup();
    names.truncate(onions::wire::MAX_REVERSE_NAMES);
    note(log, &format!("lie reverse {onion}: {names:?}"));
    Reply::Names {
        id,
        onion,
        names,
        more,
    }
    .to_line()
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
            not_found_line(&id, &head.canonical(), &proof, "")
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
            not_found_line(&id, &head.canonical(), &proof, "")
        }
        Forgery::StripProof => {
            let mut line: serde_json::Value = serde_json::from_slice(&genuine().to_line()).unwrap();
            line.as_object_mut().unwrap().remove("proof");
            line["id"] = id.to_value();
            json_line(&line)
        }
        Forgery::Genuine => with_id(genuine(), id).to_line(),
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
fn with_id(mut reply: Reply, id: Id) -> Reply {
    match &mut reply {
        Reply::Found { id: old, .. }
        | Reply::NotFound { id: old, .. }
        | Reply::Names { id: old, .. } => *old = id,
        _ => {}
    }
    reply
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
    let attestation = canonical::to_string(&attestation.to_value());
    let (record, head) = (record.canonical(), head.canonical());
    found_line(&id, &record, &attestation, &head, &proof, "")
}
