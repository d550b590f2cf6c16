//! Reverse lookups (PROTOCOL.md §12.5): which names point at an onion.
//!
//! A server's `names` reply is only a hint: it proves nothing. So every
//! name it lists is looked up again, with every check of [`check_reply`],
//! and shown only when its verified record holds the onion, as its owner
//! (`example.tor`) or as a subdomain's address (`www.example.tor`). A name
//! that fails is refused and logged, never shown: a lying server can leave
//! names out, but cannot make a client show a name that does not point at
//! the onion.

use super::{check_reply, Answer, LookupError, Policy, Resolution};
use crate::name::{LookupName, RegisteredName};
use crate::onion::OnionAddress;
use crate::record::Record;
use crate::transport::{self, Endpoint, RequestError, Route};
use crate::wire::{Id, Reply, Request};
use std::fmt;
use std::net::TcpStream;
use std::time::Duration;

/// A server's list of the names pointing at an onion, not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The onion asked about.
    pub onion: OnionAddress,
    /// The registered names the server listed, ascending.
    pub names: Vec<RegisteredName>,
    /// True when the server says more names point at the onion.
    pub more: bool,
}

/// A name confirmed to point at the onion.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The name that points at it: the registered name for its owner,
    /// `SUB.NAME` for a subdomain.
    pub name: LookupName,
    /// The verified answer that holds the onion.
    pub answer: Answer,
}

/// Why a listed name was not shown.
#[derive(Debug)]
pub enum Refusal {
    /// Its lookup gave no verified answer.
    Lookup(LookupError),
    /// A verified answer proves it unregistered.
    Absent,
    /// Its verified record has expired.
    Expired,
    /// Its verified record points elsewhere.
    Elsewhere,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Lookup(e) => write!(f, "its lookup failed: {e}"),
            Refusal::Absent => write!(f, "it is not registered (proof of absence holds)"),
            Refusal::Expired => write!(f, "its record has expired"),
            Refusal::Elsewhere => write!(f, "its verified record does not point at the onion"),
        }
    }
}

/// A listed name that was not shown, and why.
#[derive(Debug)]
pub struct Refused {
    /// The name the server listed.
    pub name: RegisteredName,
    /// Why it was not confirmed.
    pub why: Refusal,
}

/// What a reverse lookup came to: only confirmed names are shown.
#[derive(Debug)]
pub struct Pointing {
    /// The onion asked about.
    pub onion: OnionAddress,
    /// The names that point at it, in the order listed, the owner's before
    /// the subdomains' of each registered name.
    pub confirmed: Vec<Confirmed>,
    /// The listed names that were refused.
    pub refused: Vec<Refused>,
    /// True when the server says more names point at the onion than it
    /// listed.
    pub more: bool,
}

/// Asks `server` which names point at `onion`, then confirms each with a
/// verified lookup at the same server, at time `now`; `timeout` bounds
/// every step. Fails only when the reverse request itself gives no list.
pub fn reverse(
    server: &Endpoint,
    route: Route,
    onion: &OnionAddress,
    policy: &Policy,
    now: u64,
    timeout: Duration,
) -> Result<Pointing, LookupError> {
    let mut session = Session {
        server,
        route,
        timeout,
        stream: None,
    };
    let request = Request::Reverse {
        id: Id::Number(1),
        onion: *onion,
    };
    let reply = session.ask(&request).map_err(LookupError::Request)?;
    let listed = check_names(reply, onion)?;
    Ok(confirm(listed, policy, now, |name| {
        let request = Request::Lookup {
            id: Id::Number(2),
            name: name.clone(),
        };
        session.ask(&request).map_err(LookupError::Request)
    }))
}

/// The list in a reply to a reverse lookup of `onion`: a `names` reply for
/// that very onion (the wire module already checked its shape: at most
/// [`crate::wire::MAX_REVERSE_NAMES`] names, strictly ascending).
pub fn check_names(reply: Reply, onion: &OnionAddress) -> Result<Listed, LookupError> {
    match reply {
        Reply::Names {
            onion: echoed,
            names,
            more,
            ..
        } if echoed == *onion => Ok(Listed {
            onion: echoed,
            names,
            more,
        }),
        Reply::Names { onion: other, .. } => Err(LookupError::Forged(format!(
            "names for {other}, not for the onion asked"
        ))),
        Reply::Error(e) => Err(LookupError::Refused(e)),
        other => Err(LookupError::Unexpected(other.kind())),
    }
}

/// Confirms each listed name with `lookup` (a request to the server for
/// that name) and every check of [`check_reply`] at time `now`; refused
/// names are logged.
pub fn confirm(
    listed: Listed,
    policy: &Policy,
    now: u64,
    mut lookup: impl FnMut(&LookupName) -> Result<Reply, LookupError>,
) -> Pointing {
    let mut pointing = Pointing {
        onion: listed.onion,
        confirmed: Vec::new(),
        refused: Vec::new(),
        more: listed.more,
    };
    for name in listed.names {
        let asked = LookupName::from(name.clone());
        let judged = lookup(&asked).and_then(|reply| check_reply(reply, &asked, policy, now));
        let why = match judged {
            Ok(Resolution::Found(answer)) => {
                let found = names_of(&answer.record, &listed.onion);
                if !found.is_empty() {
                    pointing
                        .confirmed
                        .extend(found.into_iter().map(|name| Confirmed {
                            name,
                            answer: answer.clone(),
                        }));
                    continue;
                }
                Refusal::Elsewhere
            }
            Ok(Resolution::Absent(_)) => Refusal::Absent,
            Ok(Resolution::Expired(_)) => Refusal::Expired,
            Err(e) => Refusal::Lookup(e),
        };
        log::warn!(
            "{name} was listed as pointing at {}, refused: {why}",
            listed.onion
        );
        pointing.refused.push(Refused { name, why });
    }
    pointing
}

/// The names of `record` that point at `onion`: the registered name when
/// it is the owner's, then `SUB.NAME` for each subdomain whose address it
/// is.
pub fn names_of(record: &Record, onion: &OnionAddress) -> Vec<LookupName> {
    let owner = (record.onion == *onion).then(|| LookupName::from(record.name.clone()));
    let subs = record
        .subdomains
        .iter()
        .filter(|(_, address)| *address == onion)
        .map(|(sub, _)| LookupName::under(sub, &record.name));
    owner.into_iter().chain(subs).collect()
}

/// One connection to a server for a request and the lookups that confirm
/// it, opened again after a failure.
struct Session<'a> {
    /// The server.
    server: &'a Endpoint,
    /// How to reach it.
    route: Route,
    /// Bound of every step.
    timeout: Duration,
    /// The open connection, if any.
    stream: Option<TcpStream>,
}

impl Session<'_> {
    /// Sends `request` and reads its reply.
    fn ask(&mut self, request: &Request) -> Result<Reply, RequestError> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => transport::connect(self.server, self.route, self.timeout)
                .map_err(RequestError::Transport)?,
        };
        let line = transport::exchange(&mut stream, request, self.timeout)
            .map_err(RequestError::Transport)?;
        self.stream = Some(stream);
        Reply::parse(&line).map_err(RequestError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::Attestation;
    use crate::head::SignedHead;
    use crate::keys::SigningKey;
    use crate::merkle::{reference_proof, reference_root, Leaf, LeafKey};
    use crate::name::SubdomainKey;
    use crate::record::Claim;
    use crate::verify::Verifier;
    use crate::wire::{Code, WireError};
    use std::collections::BTreeMap;

    const NOW: u64 = 1_800_000_000;

    fn key(seed: u8) -> SigningKey {
        crate::keys::init().unwrap();
        SigningKey::from_seed(&[seed; 32])
    }

    fn onion(seed: u8) -> OnionAddress {
        OnionAddress::from_key(key(seed).public())
    }

    fn quorum() -> SigningKey {
        key(100)
    }

    fn policy() -> Policy {
        Policy {
            verifier: Verifier {
                trusted: vec![quorum().public()],
                ..Verifier::default()
            },
            max_head_age: super::super::DEFAULT_MAX_HEAD_AGE,
            witnesses: Default::default(),
        }
    }

    /// A signed record of `name` by the key with `owner`, with subdomains
    /// to the onions of `subs`.
    fn record(name: &str, owner: u8, subs: &[(&str, u8)]) -> Record {
        let name = RegisteredName::parse(name).unwrap();
        let subdomains: BTreeMap<SubdomainKey, OnionAddress> = subs
            .iter()
            .map(|(sub, seed)| (SubdomainKey::parse(sub, &name).unwrap(), onion(*seed)))
            .collect();
        let claim = Claim {
            name,
            subdomains,
            contact: String::new(),
            serial: 1,
            issued: NOW - 100,
            expires: NOW + 86_400,
            work: 0,
        };
        let mut record = Record::from_claim(claim, &key(owner));
        record.sign_with(&key(owner));
        record
    }

    /// A registry of `records` (seqs from 1) under one head: what an
    /// honest server answers to a lookup.
    struct Registry {
        records: Vec<Record>,
        leaves: Vec<Leaf>,
        head: SignedHead,
    }

    impl Registry {
        fn new(records: Vec<Record>) -> Registry {
            let leaves: Vec<Leaf> = records
                .iter()
                .zip(1..)
                .map(|(r, seq)| Leaf {
                    key: LeafKey::of(&r.name),
                    record: r.id(),
                    seq,
                })
                .collect();
            let n = leaves.len() as u64;
            let head = SignedHead::sign(n, NOW - 5, n, reference_root(&leaves), &quorum());
            Registry {
                records,
                leaves,
                head,
            }
        }

        fn answer(&self, name: &LookupName) -> Result<Reply, LookupError> {
            let key = LeafKey::of(&name.registered());
            let proof = reference_proof(&self.leaves, &key);
            let found = self
                .records
                .iter()
                .zip(1..)
                .find(|(r, _)| r.name == name.registered());
            Ok(match found {
                Some((record, seq)) => Reply::Found {
                    id: Id::Number(2),
                    record: record.clone(),
                    attestation: Attestation::sign(record.id(), seq, NOW - 50, &quorum()),
                    head: self.head.clone(),
                    proof,
                    cosignatures: Vec::new(),
                },
                None => Reply::NotFound {
                    id: Id::Number(2),
                    head: self.head.clone(),
                    proof,
                    cosignatures: Vec::new(),
                },
            })
        }
    }

    fn listed(onion_seed: u8, names: &[&str]) -> Listed {
        Listed {
            onion: onion(onion_seed),
            names: names
                .iter()
                .map(|n| RegisteredName::parse(n).unwrap())
                .collect(),
            more: false,
        }
    }

    fn shown(pointing: &Pointing) -> Vec<String> {
        pointing
            .confirmed
            .iter()
            .map(|c| c.name.to_string())
            .collect()
    }

    #[test]
    fn owners_and_subdomains_are_shown_and_the_rest_refused() {
        let registry = Registry::new(vec![
            record("example.tor", 1, &[("www", 2), ("blog", 2), ("me", 1)]),
            record("other.tor", 3, &[("mirror", 2)]),
            record("stranger.tor", 4, &[]),
        ]);
        let names = ["example.tor", "ghost.tor", "other.tor", "stranger.tor"];
        let pointing = confirm(listed(2, &names), &policy(), NOW, |n| registry.answer(n));
        assert_eq!(
            shown(&pointing),
            ["blog.example.tor", "www.example.tor", "mirror.other.tor"]
        );
        let refused: Vec<(&str, &Refusal)> = pointing
            .refused
            .iter()
            .map(|r| (r.name.as_str(), &r.why))
            .collect();
        assert!(
            matches!(
                refused.as_slice(),
                [
                    ("ghost.tor", Refusal::Absent),
                    ("stranger.tor", Refusal::Elsewhere)
                ]
            ),
            "{refused:?}"
        );
        let owner = confirm(listed(1, &["example.tor"]), &policy(), NOW, |n| {
            registry.answer(n)
        });
        assert_eq!(shown(&owner), ["example.tor", "me.example.tor"]);
    }

    #[test]
    fn a_forged_confirmation_is_refused_never_shown() {
        let genuine = Registry::new(vec![record("example.tor", 1, &[])]);
        let forged = Registry::new(vec![record("example.tor", 9, &[])]);
        let lying = |n: &LookupName| {
            let mut reply = forged.answer(n)?;
            if let Reply::Found { head, .. } = &mut reply {
                *head = genuine.head.clone();
            }
            Ok(reply)
        };
        let pointing = confirm(listed(9, &["example.tor"]), &policy(), NOW, lying);
        assert!(pointing.confirmed.is_empty());
        assert!(
            matches!(&pointing.refused[0].why, Refusal::Lookup(e) if e.server_lied()),
            "{:?}",
            pointing.refused
        );
        let busy = |_: &LookupName| {
            Ok(Reply::Error(WireError::new(
                &Id::Number(2),
                Code::Busy,
                "later",
            )))
        };
        let pointing = confirm(listed(1, &["example.tor"]), &policy(), NOW, busy);
        assert!(pointing.confirmed.is_empty());
        assert!(matches!(
            &pointing.refused[0].why,
            Refusal::Lookup(LookupError::Refused(_))
        ));
    }

    #[test]
    fn a_list_must_be_for_the_onion_asked() {
        let reply = |seed: u8| Reply::Names {
            id: Id::Number(1),
            onion: onion(seed),
            names: vec![RegisteredName::parse("example.tor").unwrap()],
            more: true,
        };
        let list = check_names(reply(1), &onion(1)).unwrap();
        assert_eq!(list.names.len(), 1);
        assert!(list.more);
        let err = check_names(reply(2), &onion(1)).unwrap_err();
        assert!(err.server_lied(), "{err}");
        let no_head = Reply::Error(WireError::new(&Id::Number(1), Code::NoHead, "none"));
        let err = check_names(no_head, &onion(1)).unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)) && !err.server_lied());
        let other = Reply::Cosigned {
            id: Id::Number(1),
            count: 1,
        };
        assert!(check_names(other, &onion(1)).unwrap_err().server_lied());
    }
}
